/* gatehouse — the audit trail, through one function.
 *
 * Security events (login failures with their internal reason, lockouts,
 * unlocks, password changes, policy changes) go through gh_audit() and
 * nowhere else, so the tamper-evident audit store (the audit issue) can
 * replace its body without touching a caller.
 *
 * For now each event is one JSON line appended to DATA/audit.log (mode
 * 0600): {"time":..., "actor":..., "tenant":..., "addr":..., "request_id":
 * ..., "event":..., "detail":...}. The file is opened O_APPEND and every
 * record is a single write(2), so concurrent writers (nginx workers, their
 * thread-pool threads, the CLI) need no lock: on a local file system an
 * O_APPEND write lands whole at the end of the file. Values are JSON
 * strings (CR, LF and other control characters escaped; invalid UTF-8
 * replaced by '?'), so a user-controlled value can never forge a record.
 * Never pass a secret.
 *
 * gh_audit() does blocking file I/O: call it from a thread-pool thread or
 * the CLI, never from an nginx event loop.
 */
#ifndef GATEHOUSE_AUDIT_H
#define GATEHOUSE_AUDIT_H

#define GH_AUDIT_FILE "audit.log"

/* Open DATA/audit.log for this process (idempotent). 0, GH_ETOOBIG for an
 * over-long path or GH_EIO. */
int gh_audit_open(const char *datadir);
void gh_audit_close(void);

/* Append one event. actor: who did it ("cli:root", an email, "-");
 * tenant, addr, request_id: NULL or "" when not known; event: a short
 * code (docs/password-policy.md lists them); detail: free text, may be
 * NULL. Returns 0, GH_ENOTINIT when gh_audit_open was not called, GH_EIO
 * or GH_ENOMEM. A failure never undoes the event: callers log it. */
int gh_audit(const char *actor, const char *tenant, const char *addr,
             const char *request_id, const char *event, const char *detail);

#endif
