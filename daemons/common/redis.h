/* td_common (internal to the daemons) — Redis client for idempotency keys
 * and per-user rate limiting (hiredis, synchronous API).
 *
 * A td_redis_t is a small pool of connections (size given at creation)
 * guarded by a mutex and a condition variable.  Connect and command
 * timeouts are TE_REDIS_TIMEOUT_MS each (500 ms by default).  When Redis is down, calls fail fast with
 * TD_REDIS_UNAVAILABLE / TD_IDEM_UNAVAILABLE (the caller fails open: no
 * rate limit, key ignored) and a reconnect is attempted at most once per
 * second, by one thread while the others keep failing fast.  A pooled
 * connection the server has closed (restart, idle timeout, CLIENT KILL) is
 * noticed before use (non-blocking peek) and replaced transparently.  A
 * command that fails on a pooled connection anyway fails (UNAVAILABLE),
 * drops the pool and the next call reconnects; a failure on a fresh
 * connection (or of the connect itself) marks Redis down.  State changes are logged once (warn "redis unavailable",
 * info "redis available again") and exported as the gauge te_redis_up
 * (registered with td_gauge, shared by every client of the process).
 * Passwords never appear in logs or errstr.
 *
 * Writing to a socket the server has closed raises SIGPIPE:
 * td_redis_new() therefore sets SIGPIPE to SIG_IGN if it is still SIG_DFL.
 *
 * Ownership: td_redis_new() copies the URL.  td_idem_resp_t strings are
 * malloc'd by td_redis_idem_begin() and freed by td_idem_resp_clear().
 *
 * Thread-safety: every function may be called from any number of threads
 * at once, except td_redis_destroy(), which must be the last call (no
 * call in flight) and must come before td_metrics_shutdown() (the client
 * updates the te_redis_up gauge).
 *
 * Timeouts do not cover host name resolution (getaddrinfo) of the URL's
 * host; use an IP address or a name the resolver answers quickly (a
 * Kubernetes service name is fine). */
#ifndef TD_REDIS_H
#define TD_REDIS_H

#include <stddef.h>

typedef struct td_redis_s td_redis_t;

/* URL: redis://host[:port][/db] or redis://[user]:password@host[:port][/db]
 * (user/password %-decoded; AUTH then SELECT on every connection); host
 * may be [ipv6]; port defaults to 6379, db to 0.  pool_size < 1 counts as
 * 1.  Makes one connection attempt (at most 200 ms) but does not need
 * Redis to be up.  NULL only on a bad URL (reason in errstr) or OOM. */
td_redis_t *td_redis_new(const char *url, int pool_size, char *errstr, size_t errstr_size);
void td_redis_destroy(td_redis_t *r); /* NULL ok */

int td_redis_up(td_redis_t *r);   /* last known state, 1/0 (0 for NULL) */
int td_redis_ping(td_redis_t *r); /* 1 if PING answers now (tries to reconnect at once) */

/* Number of TCP connection attempts so far (for tests and debugging). */
unsigned long td_redis_connect_attempts(td_redis_t *r);

typedef enum { TD_REDIS_OK = 0, TD_REDIS_LIMITED = 1, TD_REDIS_UNAVAILABLE = -1 } td_redis_rc_t;

/* Token bucket per user: one EVALSHA (EVAL on NOSCRIPT) of a Lua script
 * that reads the server's TIME, so every replica of a daemon shares the
 * bucket.  rate tokens/s, burst capacity (< 1 counts as 1).  OK = allowed;
 * LIMITED = *retry_after_s (if not NULL) set to the whole seconds (>= 1)
 * until a token is available.  Redis key "te:rl:" + user, a hash that
 * expires once the bucket would be full again (PEXPIRE).  rate <= 0 (or
 * not a number) = no limit: OK without asking Redis. */
td_redis_rc_t td_redis_rate_take(td_redis_t *r, const char *user, double rate, double burst,
                                 int *retry_after_s);

/* Idempotency keys.  Redis key "te:idem:" + user + ":" + hex SHA-256 of
 * the client's key (bounded length, no ambiguity), a hash with the fields
 * st ("p" in progress / "d" done), fp, status, loc, etag, ct, body
 * (binary-safe). */
typedef struct td_idem_resp_s {
    int status;
    char *location;     /* NULL when absent */
    char *etag;         /* NULL when absent */
    char *content_type; /* NULL when absent */
    char *body;         /* body_len bytes, NUL-terminated beyond them; may hold NULs */
    size_t body_len;
} td_idem_resp_t; /* strings malloc'd; td_idem_resp_clear() frees them */
void td_idem_resp_clear(td_idem_resp_t *resp); /* frees and zeroes; NULL ok */

typedef enum {
    TD_IDEM_NEW = 0,
    TD_IDEM_REPLAY = 1,
    TD_IDEM_MISMATCH = 2,
    TD_IDEM_IN_PROGRESS = 3,
    TD_IDEM_UNAVAILABLE = -1
} td_idem_rc_t;

/* Atomically (one Lua script): no record -> store an "in progress" marker
 * {fingerprint} that expires after min(ttl_s, 60) s and return NEW; a
 * completed record with the same fingerprint -> *out filled (body always
 * non-NULL) and REPLAY; another fingerprint (in progress or completed) ->
 * MISMATCH; in progress with the same fingerprint -> IN_PROGRESS.
 * fingerprint: a caller-made string (e.g. hex SHA-256 of method, path,
 * body).  *out (may be NULL) is zeroed first, its old contents are not
 * freed.  ttl_s < 1 counts as 1.  NULL user/key/fingerprint ->
 * UNAVAILABLE. */
td_idem_rc_t td_redis_idem_begin(td_redis_t *r, const char *user, const char *key,
                                 const char *fingerprint, int ttl_s, td_idem_resp_t *out);

/* Stores the final response in place of the marker, expiring after ttl_s
 * (the caller only stores 2xx).  Does nothing when the key now holds a
 * record with another fingerprint; stores even if the marker has expired.
 * Failures are logged, not returned. */
void td_redis_idem_finish(td_redis_t *r, const char *user, const char *key,
                          const char *fingerprint, int ttl_s, const td_idem_resp_t *resp);

/* Deletes the in-progress marker (non-2xx or error) so the client may
 * retry; a completed record is left alone. */
void td_redis_idem_abort(td_redis_t *r, const char *user, const char *key);

/* The Redis key of (user, key) into buf: "te:idem:<user>:<sha256 hex>".
 * Returns 0, or -1 when buf is too small / an argument is NULL. */
int td_redis_idem_key(const char *user, const char *key, char *buf, size_t size);

#endif /* TD_REDIS_H */
