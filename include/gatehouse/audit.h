/* gatehouse — the tamper-evident audit log.
 *
 * Security events (logins and their failures with the internal reason,
 * lockouts, MFA events, sign-outs, every administrative action with its
 * before and after, access denials) go through gh_audit_event() — or the
 * older, smaller gh_audit() — and nowhere else.
 *
 * Records live in their own LMDB environment, DATA/audit.mdb (see
 * docs/audit.md): sequence number -> SHA-256 chain hash || canonical JSON.
 * Each record's hash is SHA-256(previous hash || canonical record), so an
 * edit, a deletion or a reordering breaks the chain at that record. Every
 * GH_AUDIT_CP_RECORDS records or GH_AUDIT_CP_SECONDS seconds a checkpoint
 * signs the head hash with the gateway's current JWT signing key (ES256),
 * so cutting records off after a checkpoint is detected too.
 *
 * Values are JSON strings (control characters escaped, invalid UTF-8
 * replaced by '?'), so a user-controlled value can never forge a record or
 * a syslog line. Never pass a secret.
 *
 * Every append is one durable LMDB write transaction: blocking I/O. Call
 * it from a thread-pool thread or the CLI, never from an nginx event loop
 * (the gateway queues denials and writes them from its thread pool).
 * Any thread may call any function (MDB_NOTLS, writers serialised by LMDB).
 */
#ifndef GATEHOUSE_AUDIT_H
#define GATEHOUSE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "gatehouse/store.h"

#define GH_AUDIT_FILE       "audit.log"    /* the old JSON-lines file: no
                                              longer written (docs/audit.md) */
#define GH_AUDIT_DIR        "audit.mdb"    /* the LMDB environment */
#define GH_AUDIT_CP_RECORDS 256            /* checkpoint every N records */
#define GH_AUDIT_CP_SECONDS 600            /* ... or T seconds */
#define GH_AUDIT_RETENTION_DAYS 400
#define GH_AUDIT_VALUE_MAX  1024           /* bytes of one field; longer is
                                              cut */
#define GH_AUDIT_TARGET_MAX 255            /* syslog target text */

/* Open DATA/audit.mdb for this process, creating it when missing
 * (idempotent; a second call with another datadir is GH_EINVAL). 0,
 * GH_ETOOBIG for an over-long path, GH_EIO or GH_ESTORE. */
int gh_audit_open(const char *datadir);
void gh_audit_close(void);

/* The main store whose JWT signing keys sign checkpoints (the process's own
 * handle; never opened twice). Without it, checkpoints wait. NULL detaches. */
void gh_audit_use_store(gh_store_t *st);

/* One event, the full record. Every field may be NULL (recorded as "").
 * user/tenant/addr/session: the actor (session: gh_audit_session_ref of the
 * actor's session key); action: a dotted code ("login.failure",
 * "role.grant", "access.deny" — docs/audit.md lists them); target: what it
 * was done to; result: "success", "failure" or "denied"; reason: the
 * internal reason code; detail: free text; before/after: the state before
 * and after an administrative change (short text). */
typedef struct {
    const char *user;
    const char *tenant;
    const char *addr;
    const char *session;
    const char *action;
    const char *target;
    const char *result;
    const char *reason;
    const char *request_id;
    const char *detail;
    const char *before;
    const char *after;
    int64_t     time;          /* seconds; 0 = now */
} gh_audit_event_t;

/* Append one event. 0, GH_ENOTINIT when gh_audit_open was not called,
 * GH_ESTORE, GH_EFULL, GH_ENOMEM. A failure never undoes the event:
 * callers log it. */
int gh_audit_event(const gh_audit_event_t *ev);
/* Append n events in one durable transaction (the gateway's denial queue). */
int gh_audit_events(const gh_audit_event_t *ev, size_t n);

/* The older entry point (kept: other modules call it). actor: who did it
 * ("cli:root", an email, "-"); event: a short code, mapped to an action
 * and result (docs/audit.md); detail: free text, the reason when it starts
 * with one ("bad_password; 3 consecutive failures"). */
int gh_audit(const char *actor, const char *tenant, const char *addr,
             const char *request_id, const char *event, const char *detail);

/* The same, in a session (its gh_audit_session_ref, or NULL). */
int gh_audit_in_session(const char *actor, const char *tenant,
                        const char *addr, const char *request_id,
                        const char *event, const char *detail,
                        const char *session);

/* A session's reference for the actor field: the first 16 bytes of
 * SHA-256("gatehouse-audit-session" || key) as hex (32 characters + NUL).
 * key is the session's store key (itself the SHA-256 of the cookie): the
 * reference links the records of one session, and reveals neither. */
void gh_audit_session_ref(const uint8_t key[32], char out[33]);

/* Sign the head now if records were appended since the last checkpoint and
 * force is set or GH_AUDIT_CP_SECONDS have passed (a worker's timer calls
 * it so a quiet log is still signed). 0, GH_ENOTFOUND when no signing key
 * is available, or an error. */
int gh_audit_checkpoint(int force);

/* ---- settings (kept in audit.mdb, read by every writer) ---- */

/* "syslog": "udp:HOST:PORT", "tcp:HOST:PORT", "unix:/path" or "off";
 * "checkpoint.records", "checkpoint.seconds", "retention.days": decimal.
 * GH_EINVAL for an unknown name or a bad value. */
int gh_audit_setting_set(const char *datadir, const char *name,
                         const char *value);
int gh_audit_setting_get(const char *datadir, const char *name, char *out,
                         size_t cap);
/* Check a syslog target's syntax: 0 or GH_EINVAL. */
int gh_audit_target_check(const char *target);

/* ---- reading: verification and export (any data directory, e.g. a
 * backup; the process's own gh_audit_open is not needed) ---- */

typedef struct {
    uint64_t first;        /* first sequence number present (after pruning) */
    uint64_t last;         /* last one */
    uint64_t records;
    uint64_t checkpoints;  /* verified checkpoint signatures */
    uint64_t bad;          /* the first bad sequence number, 0 when intact */
    int      key_bound;    /* 1: signing keys checked against master.key */
    char     why[200];     /* what is wrong, when bad */
} gh_audit_report_t;

/* Walk the anchor, the chain and every checkpoint of DATA/audit.mdb.
 * st: that directory's store (the public keys); mk: its master key or NULL
 * (with it, each signing key is also proven to be the one sealed under
 * master.key, not one planted in the store). 0 when intact, GH_EDENIED
 * when tampered (rep->bad, rep->why), GH_ENOTINIT when there is no log,
 * another code when it cannot be read. */
int gh_audit_verify(const char *datadir, gh_store_t *st, const uint8_t *mk,
                    gh_audit_report_t *rep);

/* The same, also checking the chain against a hash held outside the log
 * (a SIEM's copy of a record or checkpoint, a note in a ticket): record
 * expect_seq must exist and have expect_hash. This catches a rollback
 * that removed the checkpoints too. expect_seq 0: no such check. */
int gh_audit_verify_expect(const char *datadir, gh_store_t *st,
                           const uint8_t *mk, uint64_t expect_seq,
                           const uint8_t expect_hash[32],
                           gh_audit_report_t *rep);

/* Call cb with each record whose time >= since, in sequence order, as one
 * JSON line (no newline): {"seq":..,"hash":"..","record":{...}}. A non-zero
 * return from cb stops and is returned. */
int gh_audit_export(const char *datadir, int64_t since,
                    int (*cb)(const char *line, size_t len, void *arg),
                    void *arg);

/* Retention: records older than before (seconds) are written to archive
 * (a new file, JSON lines as export, fsync'd) and then deleted with their
 * checkpoints in one transaction that stores a signed anchor (the first
 * kept sequence number and the hash before it) so the rest still verifies,
 * and appends an "audit.prune" record. Needs gh_audit_open and
 * gh_audit_use_store (the anchor is signed). *pruned gets the count; 0
 * records is not an error (no archive written). */
int gh_audit_prune(int64_t before, const char *archive, uint64_t *pruned);

/* ---- test and forensic path: raw records (never used by the product) ---- */
int gh_audit_raw_get(const char *datadir, uint64_t seq, void *out, size_t cap,
                     size_t *len);
int gh_audit_raw_put(const char *datadir, uint64_t seq, const void *val,
                     size_t len);
int gh_audit_raw_del(const char *datadir, uint64_t seq);
/* Rewrite the head to (seq, its stored hash), as a careful attacker would
 * after truncating. */
int gh_audit_raw_set_head(const char *datadir, uint64_t seq);

#endif
