/* gatehouse — core-internal: what core/store.c lends core/store_admin.c.
 * Not a public header: nothing outside core/ may include it (it names
 * LMDB types). */
#ifndef GATEHOUSE_STORE_INT_H
#define GATEHOUSE_STORE_INT_H

#include <jansson.h>
#include <lmdb.h>
#include "gatehouse/store.h"

int     gh_store_int_begin(gh_store_t *st, int rdonly, MDB_txn **txn);
int     gh_store_int_commit(MDB_txn **txn);   /* clears *txn */
void    gh_store_int_abort(MDB_txn **txn);    /* NULL-safe, clears *txn */
MDB_dbi gh_store_int_admin(gh_store_t *st);   /* the "admin" database */
int     gh_store_int_err(int mdb_rc);         /* MDB_* -> GH_E* */

/* Strict record decoding, as store.c's own: a record is one JSON object
 * of 1..8192 bytes, no duplicate keys (GH_ESTORE otherwise; *o to be
 * json_decref'd); a string member fits cap with its NUL and holds no
 * NUL; an integer member is an integer. */
int     gh_store_int_json(const MDB_val *v, json_t **o);
int     gh_store_int_jstr(json_t *o, const char *k, char *dst, size_t cap);
int     gh_store_int_jint(json_t *o, const char *k, int64_t *out);

#endif
