/* Webhook and email delivery (docs/reminder.md).
 *
 * The dispatcher claims a batch of due delivery rows (FOR UPDATE SKIP LOCKED,
 * then a lease, so that no transaction stays open during the network
 * calls), sends them all at once, and records the outcomes in one
 * transaction: sent; pending again with exponential back-off; or, after
 * the last attempt, failed with its notification.dlq record in the outbox.
 * A result is recorded only while the lease it was claimed with is still
 * the row's, so a thread that took over an expired lease wins. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "pg.h"
#include "reminder.h"

#define BATCH 256

/* The rows, with what sending needs: whether the firing is still the
 * reminder's current one, its time (lateness), the user's targets. */
static const char CLAIM_SQL[] =
    "WITH due AS (SELECT fire_id, channel FROM reminder_deliveries "
    "              WHERE status = 'pending' AND next_attempt_at <= now() "
    "              ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED), "
    "expired AS (SELECT fire_id, channel FROM reminder_deliveries "
    "             WHERE status = 'sending' AND lease_until <= now() "
    "             ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED), "
    "c AS (SELECT * FROM expired UNION ALL SELECT * FROM due LIMIT $1), "
    "u AS (UPDATE reminder_deliveries d SET status = 'sending', attempts = d.attempts + 1, "
    "             last_attempt_at = clock_timestamp(), lease_token = gen_random_uuid(), "
    "             lease_until = clock_timestamp() + $2 * interval '1 second' "
    "        FROM c WHERE d.fire_id = c.fire_id AND d.channel = c.channel "
    "      RETURNING d.fire_id, d.channel, d.delivery_id, d.reminder_id, d.user_id, "
    "                d.lease_token, d.attempts, d.event) "
    "SELECT u.fire_id, u.channel, u.delivery_id, u.reminder_id, u.user_id, u.lease_token, "
    "       u.attempts, u.event, coalesce(r.fire_id = u.fire_id AND r.status = 'pending', false), "
    "       (extract(epoch FROM r.remind_at) * 1000)::bigint, s.webhook_url, s.webhook_secret, s.email "
    "  FROM u LEFT JOIN reminders r ON r.id = u.reminder_id "
    "  LEFT JOIN notification_settings s ON s.user_id = u.user_id";

/* outcome: ok, error, cancel (the firing is no longer current), lost (a
 * lease ran out after the last attempt: the attempt never reported), skip
 * (not started: shutdown, or no time left in the lease; no attempt). */
static const char RESULT_SQL[] =
    "WITH x AS (SELECT * FROM json_to_recordset($1::json) "
    "             AS x(fire_id uuid, channel text, lease uuid, outcome text, error text)) "
    "UPDATE reminder_deliveries d SET "
    "  status = CASE WHEN x.outcome = 'ok' THEN 'sent' WHEN x.outcome = 'cancel' THEN 'cancelled' "
    "                WHEN x.outcome = 'skip' THEN 'pending' "
    "                WHEN x.outcome = 'lost' OR d.attempts >= $2 THEN 'failed' ELSE 'pending' END, "
    "  attempts = d.attempts - (x.outcome IN ('cancel', 'lost', 'skip'))::int, "
    "  delivered_at = CASE WHEN x.outcome = 'ok' THEN clock_timestamp() END, "
    "  error = CASE WHEN x.outcome = 'ok' THEN NULL WHEN x.outcome = 'skip' THEN d.error ELSE x.error END, "
    "  next_attempt_at = CASE WHEN x.outcome = 'error' AND d.attempts < $2 "
    "      THEN clock_timestamp() + $3 * power(2, least(d.attempts - 1, 20)) * interval '1 millisecond' "
    "      ELSE d.next_attempt_at END, "
    "  lease_until = NULL, lease_token = NULL "
    "  FROM x WHERE d.fire_id = x.fire_id AND d.channel = x.channel AND d.status = 'sending' "
    "   AND d.lease_token = x.lease "
    "RETURNING d.fire_id, d.channel, d.status, d.attempts, te_ts(d.last_attempt_at), d.delivery_id, "
    "  d.reminder_id, d.user_id, d.error, d.event, "
    "  (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

static const char DLQ_SQL[] =
    "INSERT INTO outbox (topic, key, payload) "
    "SELECT 'notification.dlq', e->>0, e->>1 FROM json_array_elements($1::json) e";
static const char SETTLE_SQL[] =
    "SELECT te_reminders_settle(ARRAY(SELECT f::uuid FROM json_array_elements_text($1::json) f))";

static void copy(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src ? src : ""); }

static char *dup_or_null(const PGresult *res, int i, int col) {
    return PQgetisnull(res, i, col) ? NULL : strdup(PQgetvalue(res, i, col));
}

static void delivery_free(delivery_t *d) {
    free(d->event);
    free(d->webhook_url);
    free(d->webhook_secret);
    free(d->email);
    memset(d, 0, sizeof *d);
}

/* Claims up to max due deliveries into d.  Count or -1. */
static int claim(rem_t *r, PGconn *c, delivery_t *d, int max, char *err, size_t n) {
    char lim[16], lease[24];
    snprintf(lim, sizeof lim, "%d", max);
    snprintf(lease, sizeof lease, "%ld", r->cfg.lease_s);
    const char *v[2] = {lim, lease};
    PGresult *res = PQexecParams(c, CLAIM_SQL, 2, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, n, "claim deliveries: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        delivery_t *x = &d[i];
        memset(x, 0, sizeof *x);
        copy(x->fire_id, sizeof x->fire_id, PQgetvalue(res, i, 0));
        copy(x->channel, sizeof x->channel, PQgetvalue(res, i, 1));
        copy(x->delivery_id, sizeof x->delivery_id, PQgetvalue(res, i, 2));
        copy(x->reminder_id, sizeof x->reminder_id, PQgetvalue(res, i, 3));
        copy(x->user_id, sizeof x->user_id, PQgetvalue(res, i, 4));
        copy(x->lease, sizeof x->lease, PQgetvalue(res, i, 5));
        x->attempts = atoi(PQgetvalue(res, i, 6));
        x->event = dup_or_null(res, i, 7);
        x->current = PQgetvalue(res, i, 8)[0] == 't';
        x->remind_at_ms = strtoll(PQgetvalue(res, i, 9), NULL, 10);
        x->webhook_url = dup_or_null(res, i, 10);
        x->webhook_secret = dup_or_null(res, i, 11);
        x->email = dup_or_null(res, i, 12);
    }
    PQclear(res);
    return rows;
}

/* The notification.dlq record of a delivery that failed for good. */
static char *dlq_event(const PGresult *res, int i, char *err, size_t n) {
    json_object *d = json_object_new_object();
    json_object *orig = json_tokener_parse(PQgetvalue(res, i, 9));
    json_object_object_add(d, "original_topic", json_object_new_string(TE_TOPIC_REMINDER_DUE));
    json_object_object_add(d, "original_event", orig ? orig : json_object_new_string(PQgetvalue(res, i, 9)));
    const char *why = PQgetisnull(res, i, 8) ? "" : PQgetvalue(res, i, 8);
    json_object_object_add(d, "error", json_object_new_string(why[0] ? why : "delivery failed"));
    json_object_object_add(d, "attempt_count", json_object_new_int(atoi(PQgetvalue(res, i, 3))));
    json_object_object_add(d, "last_attempt_at", json_object_new_string(PQgetvalue(res, i, 4)));
    json_object_object_add(d, "channel", json_object_new_string(PQgetvalue(res, i, 1)));
    json_object_object_add(d, "delivery_id", json_object_new_string(PQgetvalue(res, i, 5)));
    json_object_object_add(d, "reminder_id", json_object_new_string(PQgetvalue(res, i, 6)));
    return td_event_json(TE_EVENT_NOTIFICATION_DLQ, SOURCE, NULL, PQgetvalue(res, i, 7), NULL, d, err, n);
}

/* Records the outcomes of d[0..n) in one transaction.  0 or -1. */
static int record(rem_t *r, PGconn *c, delivery_t *d, int n, char *err, size_t errn) {
    json_object *rows = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        const char *outcome = !d[i].current ? "cancel"
                              : d[i].attempts > r->cfg.max_attempts ? "lost"
                              : d[i].skipped ? "skip"
                              : d[i].ok ? "ok" : "error";
        json_object_object_add(o, "fire_id", json_object_new_string(d[i].fire_id));
        json_object_object_add(o, "channel", json_object_new_string(d[i].channel));
        json_object_object_add(o, "lease", json_object_new_string(d[i].lease));
        json_object_object_add(o, "outcome", json_object_new_string(outcome));
        json_object_object_add(o, "error", json_object_new_string(
            strcmp(outcome, "lost") == 0 ? "the last attempt did not report (its process stopped)"
                                         : d[i].error));
        json_object_array_add(rows, o);
    }
    char max[16], backoff[24];
    snprintf(max, sizeof max, "%ld", r->cfg.max_attempts);
    snprintf(backoff, sizeof backoff, "%ld", r->cfg.backoff_ms);
    const char *v[3] = {json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN), max, backoff};
    int rc = td_pg_exec(c, "BEGIN", err, errn);
    PGresult *res = rc == 0 ? PQexecParams(c, RESULT_SQL, 3, NULL, v, NULL, NULL, 0) : NULL;
    json_object_put(rows);
    if (rc == 0 && PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errn, "record deliveries: %s", PQresultErrorMessage(res));
        rc = -1;
    }
    json_object *dlq = json_object_new_array(), *settle = json_object_new_array();
    int nres = rc == 0 ? PQntuples(res) : 0;
    for (int i = 0; i < nres && rc == 0; i++) {
        const char *status = PQgetvalue(res, i, 2);
        if (strcmp(status, "pending") != 0) json_object_array_add(settle, json_object_new_string(PQgetvalue(res, i, 0)));
        if (strcmp(status, "failed") != 0) continue;
        char *ev = dlq_event(res, i, err, errn);
        if (!ev) {
            rc = -1;
            break;
        }
        json_object *pair = json_object_new_array();
        json_object_array_add(pair, json_object_new_string(PQgetvalue(res, i, 7)));
        json_object_array_add(pair, json_object_new_string(ev));
        json_object_array_add(dlq, pair);
        te_free(ev);
    }
    if (rc == 0) {
        const char *dv[1] = {json_object_to_json_string_ext(dlq, JSON_C_TO_STRING_PLAIN)};
        const char *sv[1] = {json_object_to_json_string_ext(settle, JSON_C_TO_STRING_PLAIN)};
        td_pg_stmt_t st[3];
        size_t ns = 0; /* no empty inserts: each would wake the outbox relay */
        if (json_object_array_length(dlq) > 0) st[ns++] = (td_pg_stmt_t){DLQ_SQL, 1, dv, NULL};
        if (json_object_array_length(settle) > 0) st[ns++] = (td_pg_stmt_t){SETTLE_SQL, 1, sv, NULL};
        st[ns++] = (td_pg_stmt_t){"COMMIT", 0, NULL, NULL};
        rc = td_pg_pipeline(c, st, ns, err, errn);
        for (size_t i = 0; rc == 0 && i < ns; i++) PQclear(st[i].res);
    }
    if (rc != 0) {
        td_pg_exec(c, "ROLLBACK", NULL, 0);
    } else {
        /* metrics for what was recorded */
        for (int i = 0; i < nres; i++) {
            const char *ch = PQgetvalue(res, i, 1), *status = PQgetvalue(res, i, 2);
            if (strcmp(status, "cancelled") == 0) continue;
            int ok = strcmp(status, "sent") == 0;
            td_metric_inc(r->m_attempts, (const char *const[]){ch, ok ? "ok" : "error"}, 1);
            if (strcmp(status, "failed") == 0) {
                td_metric_inc(r->m_dlq, (const char *const[]){ch}, 1);
                td_logf(TD_LOG_WARN, NULL, "%s delivery %s of reminder %s failed after %s attempts: %s", ch,
                        PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), PQgetvalue(res, i, 3),
                        PQgetvalue(res, i, 8));
            }
            if (!ok) continue;
            long long now_ms = strtoll(PQgetvalue(res, i, 10), NULL, 10);
            for (int k = 0; k < n; k++)
                if (strcmp(d[k].fire_id, PQgetvalue(res, i, 0)) == 0 && strcmp(d[k].channel, ch) == 0)
                    td_metric_observe(r->m_lateness, (const char *const[]){ch},
                                      (double)(now_ms - d[k].remind_at_ms) / 1000.0);
        }
    }
    PQclear(res);
    json_object_put(dlq);
    json_object_put(settle);
    return rc;
}

/* Milliseconds until the next delivery row comes due (capped at 5 s: a
 * new row also notifies). */
static int next_wait_ms(PGconn *c) {
    PGresult *res = PQexec(c,
        "SELECT extract(epoch FROM least("
        "  (SELECT min(next_attempt_at) FROM reminder_deliveries WHERE status = 'pending'), "
        "  (SELECT min(lease_until) FROM reminder_deliveries WHERE status = 'sending')) "
        "  - clock_timestamp()) * 1000");
    int wait = 5000;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && !PQgetisnull(res, 0, 0)) {
        double ms = strtod(PQgetvalue(res, 0, 0), NULL) + 1;
        wait = ms <= 0 ? 0 : ms < wait ? (int)ms : wait;
    }
    PQclear(res);
    return wait;
}

/* One dispatcher claims (the only thread of the process that does: no
 * herd of threads woken by every new row); each claimed batch goes to an
 * idle sender, which sends it and records the outcomes on its own
 * connection. */
typedef struct sender_s {
    struct delivery_pool_s *pool;
    pthread_t thread;
    delivery_t d[BATCH];
    int n;        /* claimed, not yet recorded (0: idle) */
    PGconn *conn;
} sender_t;

struct delivery_pool_s {
    rem_t *r;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* a sender got a batch, or closing */
    int closing;        /* under mu: the dispatcher has stopped; senders leave when idle */
    int wake[2];        /* senders -> dispatcher: one became idle */
    pthread_t dispatcher;
    int dispatcher_started;
    long nsenders;
    sender_t *senders;
};

static void pool_wake(delivery_pool_t *p) {
    char b = 1;
    if (write(p->wake[1], &b, 1) < 0) {
        /* full: the dispatcher has a wake-up pending anyway */
    }
}

static void *sender_main(void *arg) {
    sender_t *s = arg;
    delivery_pool_t *p = s->pool;
    rem_t *r = p->r;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        /* not r->stopping: a batch the dispatcher hands over while the
         * daemon stops is still sent (or skipped) and recorded */
        while (s->n == 0 && !p->closing) pthread_cond_wait(&p->cv, &p->mu);
        int n = s->n;
        pthread_mutex_unlock(&p->mu);
        if (n == 0) break; /* closing, nothing claimed */
        /* send the current ones (the rest are recorded as cancelled / lost) */
        delivery_t *send[BATCH];
        size_t ns = 0;
        for (int i = 0; i < n; i++)
            if (s->d[i].current && s->d[i].attempts <= r->cfg.max_attempts) send[ns++] = &s->d[i];
        channels_send(&r->cfg, send, ns, &r->stopping);
        /* record; while PostgreSQL is down keep trying (the lease keeps the
         * rows ours for TE_NOTIFY_LEASE_S) */
        char err[512] = "";
        for (int tries = 0;; tries++) {
            PGconn *c = td_pg_keep(&s->conn, r->cfg.pg_url, &r->stopping, err, sizeof err);
            if (c && record(r, c, s->d, n, err, sizeof err) == 0) break;
            if (tries == 0 || atomic_load(&r->stopping)) td_logf(TD_LOG_ERROR, NULL, "delivery: %s", err);
            if (atomic_load(&r->stopping) || tries > 40) break; /* the lease will hand them over */
            td_pg_wait(NULL, r->stop_pipe[0], 1000);
        }
        for (int i = 0; i < n; i++) delivery_free(&s->d[i]);
        pthread_mutex_lock(&p->mu);
        s->n = 0;
        pthread_mutex_unlock(&p->mu);
        pool_wake(p);
    }
    if (s->conn) PQfinish(s->conn);
    channels_thread_done();
    return NULL;
}

static sender_t *idle_sender(delivery_pool_t *p) {
    sender_t *found = NULL;
    pthread_mutex_lock(&p->mu);
    for (long i = 0; i < p->nsenders && !found; i++)
        if (p->senders[i].n == 0) found = &p->senders[i];
    pthread_mutex_unlock(&p->mu);
    return found;
}

static void *dispatcher_main(void *arg) {
    delivery_pool_t *p = arg;
    rem_t *r = p->r;
    PGconn *conn = NULL;
    int listening_pid = 0, down_logged = 0;
    while (!atomic_load(&r->stopping)) {
        char err[512] = "";
        sender_t *s = idle_sender(p);
        if (!s) { /* every sender busy: wait for one */
            td_pg_wait(NULL, p->wake[0], 1000);
            continue;
        }
        PGconn *c = td_pg_keep(&conn, r->cfg.pg_url, &r->stopping, err, sizeof err);
        if (!c) {
            if (!down_logged++) td_logf(TD_LOG_ERROR, NULL, "delivery: %s", err);
            td_pg_wait(NULL, p->wake[0], 1000);
            continue;
        }
        down_logged = 0;
        if (PQbackendPID(c) != listening_pid) {
            if (td_pg_exec(c, "LISTEN te_deliveries", err, sizeof err) != 0) {
                td_logf(TD_LOG_ERROR, NULL, "delivery: %s", err);
                td_pg_wait(NULL, p->wake[0], 1000);
                continue;
            }
            listening_pid = PQbackendPID(c);
        }
        int n = claim(r, c, s->d, BATCH, err, sizeof err);
        if (n < 0) {
            td_logf(TD_LOG_ERROR, NULL, "delivery: %s", err);
            td_pg_wait(NULL, p->wake[0], 1000);
            continue;
        }
        if (n == 0) {
            int wait = next_wait_ms(c);
            if (wait == 0) wait = 20; /* due but claimed by another replica: look again soon */
            td_pg_wait(c, p->wake[0], wait);
            continue;
        }
        pthread_mutex_lock(&p->mu);
        s->n = n;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    if (conn) PQfinish(conn);
    return NULL;
}

delivery_pool_t *delivery_start(rem_t *r, char *err, size_t n) {
    delivery_pool_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    p->r = r;
    p->wake[0] = p->wake[1] = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->senders = calloc((size_t)r->cfg.threads, sizeof *p->senders);
    if (!p->senders || pipe(p->wake) != 0 || fcntl(p->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(p->wake[1], F_SETFL, O_NONBLOCK) != 0) {
        snprintf(err, n, "delivery: out of resources");
        delivery_stop(p);
        return NULL;
    }
    for (; p->nsenders < r->cfg.threads; p->nsenders++) {
        p->senders[p->nsenders].pool = p;
        if (pthread_create(&p->senders[p->nsenders].thread, NULL, sender_main, &p->senders[p->nsenders]) != 0) {
            snprintf(err, n, "delivery: cannot start threads");
            delivery_stop(p);
            return NULL;
        }
    }
    if (pthread_create(&p->dispatcher, NULL, dispatcher_main, p) != 0) {
        snprintf(err, n, "delivery: cannot start threads");
        delivery_stop(p);
        return NULL;
    }
    p->dispatcher_started = 1;
    return p;
}

void delivery_stop(delivery_pool_t *p) {
    if (!p) return;
    /* the dispatcher claims no more once r->stopping is set (a start that
     * failed half-way stops it too); each sender then records the batch
     * it has (requests not started are skipped, not attempts) and leaves */
    atomic_store(&p->r->stopping, 1);
    if (p->wake[1] >= 0) pool_wake(p);
    if (p->dispatcher_started) pthread_join(p->dispatcher, NULL);
    pthread_mutex_lock(&p->mu);
    p->closing = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (long i = 0; i < p->nsenders; i++) pthread_join(p->senders[i].thread, NULL);
    for (int i = 0; i < 2; i++)
        if (p->wake[i] >= 0) close(p->wake[i]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->senders);
    free(p);
}
