/* gatehouse — the audit log's nginx glue: a small module of its own in the
 * same .so (ngx_http_gatehouse_audit_module), so the main module's tables
 * stay as they are.
 *
 * Access denials are decided on the event loop, which must never wait for
 * a disk. Each worker copies a denial into an in-memory queue (a memcpy)
 * and hands whole batches to nginx's thread pool, where one durable LMDB
 * transaction appends the batch (gh_audit_events). While a batch is being
 * written the next one fills; a full queue drops the newest denials and the
 * next batch records how many ("audit.dropped"), so a flood of denials can
 * cost memory and disk only up to a bound. Allowed requests go to the
 * decision log; with "gatehouse_audit_allows on" they are queued too.
 *
 * A per-worker timer also asks for a checkpoint once a minute, so a quiet
 * log's last records are signed within GH_AUDIT_CP_SECONDS + a minute.
 */
#include "ngx_http_gatehouse.h"

#include "gatehouse/audit.h"
#include "gatehouse/error.h"
#include "gatehouse/session.h"

#define GH_AQ_MAX          256         /* queued records per worker */
#define GH_AQ_PATH_MAX     512         /* bytes of a path kept in a record */
#define GH_AQ_CHECK_MS     60000       /* checkpoint timer */

typedef struct {
    int64_t   time;
    unsigned  allowed:1;
    char      user[GH_EMAIL_MAX + 1];
    char      tenant[GH_TENANT_MAX + 1];
    char      addr[GH_ADDR_TEXT_MAX];
    char      session[33];
    char      request_id[33];
    char      reason[48];
    char      target[64 + GH_AQ_PATH_MAX + 24];
    char      detail[GH_RULE_NAME_MAX + GH_ID_HEXLEN + 48];
} gh_aq_entry_t;

typedef struct {
    ngx_uint_t         n;
    ngx_uint_t         dropped;
    gh_aq_entry_t      e[GH_AQ_MAX];
    gh_audit_event_t   ev[GH_AQ_MAX + 1];
    char               drop_text[64];
    int                rc;
} gh_aq_batch_t;

typedef struct {
    ngx_flag_t  allows;      /* gatehouse_audit_allows */
} gh_audit_main_conf_t;

static ngx_int_t gh_audit_postconf(ngx_conf_t *cf);
static void *gh_audit_create_main_conf(ngx_conf_t *cf);
static char *gh_audit_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t gh_audit_init_process(ngx_cycle_t *cycle);
static void gh_audit_exit_process(ngx_cycle_t *cycle);

static ngx_command_t  gh_audit_commands[] = {
    { ngx_string("gatehouse_audit_allows"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(gh_audit_main_conf_t, allows),
      NULL },
      ngx_null_command
};

static ngx_http_module_t  gh_audit_module_ctx = {
    NULL,                         /* preconfiguration */
    gh_audit_postconf,            /* postconfiguration */
    gh_audit_create_main_conf,
    gh_audit_init_main_conf,
    NULL, NULL, NULL, NULL
};

ngx_module_t  ngx_http_gatehouse_audit_module = {
    NGX_MODULE_V1,
    &gh_audit_module_ctx,
    gh_audit_commands,
    NGX_HTTP_MODULE,
    NULL,                         /* init master */
    NULL,                         /* init module */
    gh_audit_init_process,
    NULL, NULL,
    gh_audit_exit_process,
    NULL,
    NGX_MODULE_V1_PADDING
};

/* Per worker: the batch the event loop fills, the one a thread writes. */
static gh_aq_batch_t      *gh_aq_fill;
static gh_aq_batch_t      *gh_aq_busy;
static ngx_thread_task_t  *gh_aq_task;
static ngx_uint_t          gh_aq_in_flight;
static ngx_event_t         gh_aq_timer;
static ngx_thread_task_t  *gh_cp_task;
static ngx_uint_t          gh_cp_in_flight;


static void *
gh_audit_create_main_conf(ngx_conf_t *cf)
{
    gh_audit_main_conf_t  *c;

    c = ngx_pcalloc(cf->pool, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->allows = NGX_CONF_UNSET;
    return c;
}


static char *
gh_audit_init_main_conf(ngx_conf_t *cf, void *conf)
{
    gh_audit_main_conf_t  *c = conf;

    ngx_conf_init_value(c->allows, 0);
    return NGX_CONF_OK;
}


/* ---- the thread side: one transaction per batch ---- */

static void
gh_aq_thread(void *data, ngx_log_t *log)
{
    gh_aq_batch_t  *b = data;
    ngx_uint_t      i, n = 0;

    for (i = 0; i < b->n; i++) {
        gh_aq_entry_t     *e = &b->e[i];
        gh_audit_event_t  *ev = &b->ev[n++];

        ngx_memzero(ev, sizeof(*ev));
        ev->time = e->time;
        ev->user = e->user;
        ev->tenant = e->tenant;
        ev->addr = e->addr;
        ev->session = e->session;
        ev->request_id = e->request_id;
        ev->action = e->allowed ? "access.allow" : "access.deny";
        ev->result = e->allowed ? "success" : "denied";
        ev->reason = e->reason;
        ev->target = e->target;
        ev->detail = e->detail;
    }
    if (b->dropped > 0) {
        gh_audit_event_t  *ev = &b->ev[n++];

        ngx_memzero(ev, sizeof(*ev));
        ngx_snprintf((u_char *) b->drop_text, sizeof(b->drop_text) - 1,
                     "%ui access records not written: queue full%Z",
                     b->dropped);
        ev->user = "-";
        ev->action = "audit.dropped";
        ev->result = "failure";
        ev->reason = "queue_full";
        ev->detail = b->drop_text;
    }
    b->rc = gh_audit_events(b->ev, n);
}


static void gh_aq_post(ngx_log_t *log);

static void
gh_aq_done(ngx_event_t *ev)
{
    gh_aq_batch_t  *b = gh_aq_busy;

    if (b->rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "gatehouse: %ui access audit record(s) not written: %s",
                      b->n, gh_strerror(b->rc));
    }
    b->n = 0;
    b->dropped = 0;
    gh_aq_in_flight = 0;
    if (gh_aq_fill->n > 0 || gh_aq_fill->dropped > 0) {
        gh_aq_post(ev->log);
    }
}


/* Hand the filled batch to the thread pool (event loop only). */
static void
gh_aq_post(ngx_log_t *log)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    gh_aq_batch_t                   *b;

    if (gh_aq_in_flight) {
        return;   /* gh_aq_done posts what filled meanwhile */
    }
    mcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                              ngx_http_gatehouse_module);
    if (mcf == NULL || mcf->pool == NULL || gh_aq_task == NULL) {
        return;
    }
    b = gh_aq_fill;
    gh_aq_fill = gh_aq_busy;
    gh_aq_busy = b;
    gh_aq_task->ctx = b;
    if (ngx_thread_task_post(mcf->pool, gh_aq_task) != NGX_OK) {
        /* queue full: swap back and retry with the next record */
        gh_aq_busy = gh_aq_fill;
        gh_aq_fill = b;
        return;
    }
    gh_aq_in_flight = 1;
}


/* ---- the event loop side: queue a decided request ---- */

static void
gh_aq_copy(char *dst, size_t cap, const u_char *src, size_t len)
{
    if (len >= cap) {
        len = cap - 1;
    }
    ngx_memcpy(dst, src, len);
    dst[len] = '\0';
}


static ngx_int_t
gh_audit_log_phase(ngx_http_request_t *r)
{
    gh_audit_main_conf_t           *amcf;
    ngx_http_gatehouse_loc_conf_t  *lcf;
    ngx_http_gatehouse_ctx_t       *ctx;
    gh_aq_entry_t                  *e;
    ngx_uint_t                      denied, allowed;
    u_char                         *p, *end;

    if (r != r->main || gh_aq_fill == NULL) {
        return NGX_OK;
    }
    ctx = ngx_http_get_module_ctx(r, ngx_http_gatehouse_module);
    if (ctx == NULL) {
        return NGX_OK;
    }
    amcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_audit_module);
    /* a denial: the policy said no (403), or a signed-in request's path
     * could not be read unambiguously (400) */
    denied = !ctx->allowed
             && (ctx->status == NGX_HTTP_FORBIDDEN
                 || (ctx->status == NGX_HTTP_BAD_REQUEST
                     && ctx->authenticated));
    allowed = ctx->decided && ctx->allowed && amcf->allows;
    if (!denied && !allowed) {
        return NGX_OK;
    }
    if (gh_aq_fill->n == GH_AQ_MAX) {
        gh_aq_fill->dropped++;
        gh_aq_post(r->connection->log);
        return NGX_OK;
    }
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_gatehouse_module);

    e = &gh_aq_fill->e[gh_aq_fill->n++];
    e->time = (int64_t) ngx_time();
    e->allowed = allowed ? 1 : 0;
    ngx_cpystrn((u_char *) e->user, (u_char *) ctx->user.email,
                sizeof(e->user));
    ngx_cpystrn((u_char *) e->tenant, (u_char *) ctx->user.tenant,
                sizeof(e->tenant));
    ngx_cpystrn((u_char *) e->addr, ctx->addr_text, sizeof(e->addr));
    ngx_cpystrn((u_char *) e->request_id, ctx->request_id,
                sizeof(e->request_id));
    if (ctx->authenticated || ctx->pwchange) {
        gh_audit_session_ref(ctx->key, e->session);
    } else {
        e->session[0] = '\0';
    }
    ngx_cpystrn((u_char *) e->reason,
                (u_char *) (ctx->reason ? ctx->reason : ""),
                sizeof(e->reason));
    p = (u_char *) e->target;
    end = p + sizeof(e->target) - 1;
    p = ngx_slprintf(p, end, "%V %V ", &lcf->app, &r->method_name);
    gh_aq_copy((char *) p, (size_t) (end - p) + 1, r->uri.data,
               ngx_min(r->uri.len, GH_AQ_PATH_MAX));
    p = ngx_snprintf((u_char *) e->detail, sizeof(e->detail) - 1,
                     "rule %s; status %ui; user id %s",
                     ctx->rule[0] ? (char *) ctx->rule : "-",
                     ctx->status ? ctx->status : NGX_HTTP_OK, ctx->user.id);
    *p = '\0';

    gh_aq_post(r->connection->log);
    return NGX_OK;
}


/* ---- checkpoints of a quiet log ---- */

static void
gh_cp_thread(void *data, ngx_log_t *log)
{
    (void) gh_audit_checkpoint(0);
}


static void
gh_cp_done(ngx_event_t *ev)
{
    gh_cp_in_flight = 0;
}


static void
gh_aq_tick(ngx_event_t *ev)
{
    ngx_http_gatehouse_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                              ngx_http_gatehouse_module);
    /* records left queued when the pool's queue was full */
    if (gh_aq_fill != NULL && (gh_aq_fill->n > 0 || gh_aq_fill->dropped > 0)) {
        gh_aq_post(ev->log);
    }
    if (!gh_cp_in_flight && mcf != NULL && mcf->pool != NULL
        && gh_cp_task != NULL
        && ngx_thread_task_post(mcf->pool, gh_cp_task) == NGX_OK)
    {
        gh_cp_in_flight = 1;
    }
    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(ev, GH_AQ_CHECK_MS);
    }
}


static ngx_int_t
gh_audit_init_process(ngx_cycle_t *cycle)
{
    ngx_http_gatehouse_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }
    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_gatehouse_module);
    if (mcf == NULL || !mcf->used) {
        return NGX_OK;
    }
    gh_aq_fill = ngx_calloc(sizeof(gh_aq_batch_t), cycle->log);
    gh_aq_busy = ngx_calloc(sizeof(gh_aq_batch_t), cycle->log);
    gh_aq_task = ngx_calloc(sizeof(ngx_thread_task_t), cycle->log);
    gh_cp_task = ngx_calloc(sizeof(ngx_thread_task_t), cycle->log);
    if (gh_aq_fill == NULL || gh_aq_busy == NULL || gh_aq_task == NULL
        || gh_cp_task == NULL)
    {
        return NGX_ERROR;
    }
    gh_aq_task->handler = gh_aq_thread;
    gh_aq_task->event.handler = gh_aq_done;
    gh_aq_task->event.log = cycle->log;
    gh_cp_task->handler = gh_cp_thread;
    gh_cp_task->event.handler = gh_cp_done;
    gh_cp_task->event.log = cycle->log;

    gh_aq_timer.handler = gh_aq_tick;
    gh_aq_timer.log = cycle->log;
    gh_aq_timer.data = NULL;
    gh_aq_timer.cancelable = 1;
    ngx_add_timer(&gh_aq_timer, GH_AQ_CHECK_MS);
    return NGX_OK;
}


/* A worker that exits writes what is still queued (the thread pools are
 * gone by now, and no request waits any more: blocking is fine here). The
 * main module, listed first in the .so, has already closed the log: open
 * it once more. */
static void
gh_audit_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    char                             dir[NGX_MAX_PATH];

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_gatehouse_module);
    /* a batch still "in flight" was written: the thread pools ran every
     * queued task before they stopped */
    if (gh_aq_fill != NULL && (gh_aq_fill->n > 0 || gh_aq_fill->dropped > 0)
        && mcf != NULL && mcf->data.len < sizeof(dir))
    {
        ngx_memcpy(dir, mcf->data.data, mcf->data.len);
        dir[mcf->data.len] = '\0';
        if (gh_audit_open(dir) == 0) {
            gh_aq_thread(gh_aq_fill, cycle->log);
            gh_audit_close();
        }
        gh_aq_fill->n = 0;
    }
    if (gh_aq_timer.timer_set) {
        ngx_del_timer(&gh_aq_timer);
    }
}


static ngx_int_t
gh_audit_postconf(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = gh_audit_log_phase;
    return NGX_OK;
}


/* ---- thread-side records for the main module's jobs ---- */

void
gh_audit_logout(const char *email, const char *tenant, const char *addr,
    const char *request_id, const uint8_t key[32], int rc)
{
    char  ref[33];

    gh_audit_session_ref(key, ref);
    {
        gh_audit_event_t  ev;

        ngx_memzero(&ev, sizeof(ev));
        ev.user = email;
        ev.tenant = tenant;
        ev.addr = addr;
        ev.session = ref;
        ev.request_id = request_id;
        ev.action = "logout";
        ev.target = ref;
        ev.result = rc == 0 ? "success" : "failure";
        ev.reason = rc == 0 ? "" : gh_strerror(rc);
        ev.detail = "session ended";
        (void) gh_audit_event(&ev);
    }
}


void
gh_audit_job(const char *actor, const char *tenant, const char *addr,
    const char *request_id, const char *event, const char *detail,
    const char *token)
{
    uint8_t  key[32];
    char     ref[33];

    ref[0] = '\0';
    if (token != NULL && token[0] != '\0'
        && gh_token_key(token, ngx_strlen(token), key) == 0)
    {
        gh_audit_session_ref(key, ref);
        gh_wipe(key, sizeof(key));
    }
    (void) gh_audit_in_session(actor, tenant, addr, request_id, event,
                               detail, ref[0] ? ref : NULL);
}
