/* The outbox relay: publishes the outbox rows to Kafka and deletes each
 * row only after the broker acknowledged it.
 *
 * - One active relay across replicas: a session advisory lock.  Others
 *   stand by and take over when the holder's connection ends.  One sender
 *   keeps one user's events in commit order (their rows get ascending ids
 *   because the user's sequence row lock is held until commit).
 * - Claiming: rows are marked claimed (FOR UPDATE SKIP LOCKED) before they
 *   are handed to the idempotent producer, which retries without a
 *   deadline (message.timeout.ms=0): with Kafka down, records wait in the
 *   producer (at most TE_OUTBOX_INFLIGHT) and the rest in the table.
 * - A new leader first un-claims everything: what the previous leader had
 *   in flight is sent again (at-least-once; consumers dedupe by event id).
 * - Woken by LISTEN te_outbox and every second; deliveries wake it through
 *   a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dapr.h"
#include "log.h"
#include "metrics.h"
#include "outbox_relay.h"
#include "pg.h"

#define RELAY_LOCK "7465000002"
#define BATCH 500

typedef struct idlist_s {
    long long *v;
    size_t n, cap;
} idlist_t;

struct relay_s {
    char *pg_url;
    te_conf_t *conf;          /* to recreate the producer after a fatal error */
    te_producer_t *producer;  /* Kafka mode */
    td_dapr_t *dapr;          /* Dapr mode: the sidecar publishes */
    double dapr_backoff, dapr_retry_at, dapr_logged; /* relay thread only */
    int started;
    pthread_t thread;
    atomic_int stop;
    atomic_int kafka_ok;
    int wake[2];
    pthread_mutex_t mu;       /* guards done/failed/parked/park_error */
    idlist_t done, failed, parked;
    char park_error[256];
    atomic_int fatal;         /* the producer hit a fatal error */
    size_t max_inflight;
    int retention_days;
    td_metric_t *m_backlog, *m_published, *m_delivery, *m_errors, *m_leader, *m_parked;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int idlist_push(idlist_t *l, long long id) {
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 256;
        long long *nv = realloc(l->v, c * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = c;
    }
    l->v[l->n++] = id;
    return 0;
}

static void on_delivery(const te_delivery_t *d, void *opaque) {
    relay_t *r = opaque;
    long long id = (long long)(intptr_t)d->msg_opaque;
    pthread_mutex_lock(&r->mu);
    int was_empty = r->done.n == 0 && r->failed.n == 0 && r->parked.n == 0;
    if (d->err == TE_OK) {
        idlist_push(&r->done, id);
    } else if (d->fatal) {
        /* the producer is unusable: the relay recreates it and resends */
        atomic_store(&r->fatal, 1);
    } else if (d->err == TE_ERR_CLOSED) {
        /* purged at shutdown: left claimed, the next leader resends */
    } else if (!d->retriable) {
        /* e.g. record too large: can never be delivered */
        idlist_push(&r->parked, id);
        snprintf(r->park_error, sizeof r->park_error, "%s", d->errstr);
    } else {
        idlist_push(&r->failed, id);
    }
    pthread_mutex_unlock(&r->mu);
    if (d->err == TE_OK) {
        td_metric_observe(r->m_delivery, NULL, (double)d->latency_us / 1e6);
        td_metric_inc(r->m_published, NULL, 1);
    } else {
        td_metric_inc(r->m_errors, NULL, 1);
        td_logf(TD_LOG_WARN, NULL, "outbox: delivery of row %lld failed: %s", id, d->errstr);
    }
    if (was_empty) {
        char b = 1;
        ssize_t w = write(r->wake[1], &b, 1);
        (void)w;
    }
}

/* "{1,2,3}" for = ANY($1::bigint[]). */
static char *array_literal(const idlist_t *l) {
    char *s = malloc(l->n * 21 + 3), *w = s;
    if (!s) return NULL;
    *w++ = '{';
    for (size_t i = 0; i < l->n; i++) w += sprintf(w, "%s%lld", i ? "," : "", l->v[i]);
    *w++ = '}';
    *w = '\0';
    return s;
}

/* Runs sql with $1 = the ids as a bigint[] literal (and $2 = extra). */
static int exec_ids(PGconn *c, const char *sql, const idlist_t *l, const char *extra) {
    char *arr = array_literal(l);
    if (!arr) return -1;
    const char *v[2] = {arr, extra};
    PGresult *res = PQexecParams(c, sql, extra ? 2 : 1, NULL, v, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc) td_logf(TD_LOG_ERROR, NULL, "outbox: %s", PQresultErrorMessage(res));
    PQclear(res);
    free(arr);
    return rc;
}

static const char SQL_DELETE[] = "DELETE FROM outbox WHERE id = ANY($1::bigint[])";
static const char SQL_UNCLAIM[] = "UPDATE outbox SET claimed_at = NULL WHERE id = ANY($1::bigint[])";
static const char SQL_PARK[] =
    "UPDATE outbox SET claimed_at = NULL, parked_at = now(), error = $2 WHERE id = ANY($1::bigint[])";

static void park(relay_t *r, PGconn *c, const idlist_t *ids, const char *why) {
    if (!ids->n) return;
    td_logf(TD_LOG_ERROR, NULL, "outbox: %zu event(s) parked, Kafka refuses them: %s", ids->n, why);
    td_metric_inc(r->m_parked, NULL, (double)ids->n);
    exec_ids(c, SQL_PARK, ids, why);
}

/* Deletes delivered rows, un-claims failed ones (leader only: a standby's
 * failures are the new leader's to resend), parks refused ones.  -1 on a
 * database error (the lists are kept for the next try). */
static int settle(relay_t *r, PGconn *c, int leader) {
    idlist_t done, failed, parked;
    char why[256];
    pthread_mutex_lock(&r->mu);
    done = r->done;
    failed = r->failed;
    parked = r->parked;
    snprintf(why, sizeof why, "%s", r->park_error);
    memset(&r->done, 0, sizeof r->done);
    memset(&r->failed, 0, sizeof r->failed);
    memset(&r->parked, 0, sizeof r->parked);
    pthread_mutex_unlock(&r->mu);
    int rc = 0;
    if (done.n && exec_ids(c, SQL_DELETE, &done, NULL) != 0) rc = -1;
    if (leader && failed.n && exec_ids(c, SQL_UNCLAIM, &failed, NULL) != 0) rc = -1;
    if (leader) park(r, c, &parked, why);
    if (rc != 0) {
        /* put them back */
        pthread_mutex_lock(&r->mu);
        for (size_t i = 0; i < done.n; i++) idlist_push(&r->done, done.v[i]);
        for (size_t i = 0; i < failed.n; i++) idlist_push(&r->failed, failed.v[i]);
        pthread_mutex_unlock(&r->mu);
    }
    free(done.v);
    free(failed.v);
    free(parked.v);
    return rc;
}

static te_headers_t *ce_headers(void) {
    static const char ct[] = "application/cloudevents+json; charset=UTF-8";
    te_headers_t *h = te_headers_new();
    if (h) te_headers_add(h, "content-type", ct, sizeof ct - 1);
    return h;
}

static size_t outstanding(relay_t *r) { return r->producer ? te_producer_outstanding(r->producer) : 0; }

/* Dapr mode: one POST per row, in id order; the first refusal leaves it
 * and every later row for the next round (a user's order is kept), after
 * a back-off (0.5 s doubling to 10 s).  A row the sidecar calls malformed
 * (400) or Kafka too large is parked, as Kafka mode parks what the broker
 * refuses for good (TE_ERR_INVALID). */
static te_err_t send_dapr(relay_t *r, const char *topic, const char *key, const char *payload, size_t len,
                          long long id, char *err, size_t err_size) {
    double t0 = now_s();
    int st = td_dapr_publish(r->dapr, topic, key, payload, len, err, err_size);
    if (st != 0) {
        td_metric_inc(r->m_errors, NULL, 1);
        if (st == 400 || (st == 500 && (strstr(err, "MessageSizeTooLarge") || strstr(err, "too large"))))
            return TE_ERR_INVALID;
        if (r->dapr_backoff == 0 || t0 - r->dapr_logged >= 30) {
            td_logf(TD_LOG_WARN, NULL, "outbox: %s (sending again with back-off)", err);
            r->dapr_logged = t0;
        }
        r->dapr_backoff = r->dapr_backoff ? (r->dapr_backoff * 2 > 10 ? 10 : r->dapr_backoff * 2) : 0.5;
        r->dapr_retry_at = t0 + r->dapr_backoff;
        return TE_ERR_QUEUE_FULL;
    }
    if (r->dapr_backoff) td_logf(TD_LOG_INFO, NULL, "outbox: the Dapr sidecar accepts events again");
    r->dapr_backoff = 0;
    td_metric_observe(r->m_delivery, NULL, now_s() - t0);
    td_metric_inc(r->m_published, NULL, 1);
    pthread_mutex_lock(&r->mu);
    idlist_push(&r->done, id);
    pthread_mutex_unlock(&r->mu);
    return TE_OK;
}

/* Claims and sends one batch.  Returns rows sent, -1 on a database error. */
static int claim_and_send(relay_t *r, PGconn *c, const te_headers_t *hdr) {
    if (r->dapr && now_s() < r->dapr_retry_at) return 0; /* backing off */
    size_t out = outstanding(r);
    if (out >= r->max_inflight) return 0;
    size_t want = r->max_inflight - out;
    if (want > BATCH) want = BATCH;
    char lim[16];
    snprintf(lim, sizeof lim, "%zu", want);
    const char *v[1] = {lim};
    PGresult *res = PQexecParams(
        c,
        "WITH c AS (SELECT id FROM outbox WHERE claimed_at IS NULL AND parked_at IS NULL "
        "           ORDER BY id LIMIT $1::int "
        "           FOR UPDATE SKIP LOCKED) "
        "UPDATE outbox o SET claimed_at = now() FROM c WHERE o.id = c.id "
        "RETURNING o.id, o.topic, o.key, o.payload",
        1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        td_logf(TD_LOG_ERROR, NULL, "outbox claim: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    /* RETURNING has no order: send in id order */
    int *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
    long long *ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    for (int i = 0; idx && ids && i < n; i++) {
        ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        int j = i;
        while (j > 0 && ids[idx[j - 1]] > ids[i]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    idlist_t unsent = {0}, refused = {0};
    char why[TE_ERRSTR_SIZE] = "";
    for (int k = 0; idx && ids && k < n; k++) {
        int i = idx[k];
        const char *key = PQgetvalue(res, i, 2), *payload = PQgetvalue(res, i, 3);
        char err[TE_ERRSTR_SIZE];
        te_err_t e = unsent.n  ? TE_ERR_QUEUE_FULL
                     : r->dapr ? send_dapr(r, PQgetvalue(res, i, 1), key, payload, (size_t)PQgetlength(res, i, 3),
                                           ids[i], err, sizeof err)
                               : te_producer_send_raw(r->producer, PQgetvalue(res, i, 1), key, strlen(key),
                                                      payload, (size_t)PQgetlength(res, i, 3), hdr,
                                                      (void *)(intptr_t)ids[i], err, sizeof err);
        if (e == TE_OK) continue;
        if (e == TE_ERR_QUEUE_FULL || (!r->dapr && te_producer_fatal_error(r->producer, NULL, 0) != TE_OK)) {
            /* try again later (after the producer was recreated) */
            if (!unsent.n && e != TE_ERR_QUEUE_FULL) atomic_store(&r->fatal, 1);
            idlist_push(&unsent, ids[i]);
        } else {
            /* this record can never be sent (too large, unknown topic...) */
            snprintf(why, sizeof why, "%s", err);
            idlist_push(&refused, ids[i]);
        }
    }
    PQclear(res);
    if (unsent.n) exec_ids(c, SQL_UNCLAIM, &unsent, NULL);
    park(r, c, &refused, why);
    free(unsent.v);
    free(refused.v);
    free(idx);
    free(ids);
    return n - (int)unsent.n; /* rows sent (or parked): a full batch means more may wait */
}

static void update_backlog(relay_t *r, PGconn *c) {
    PGresult *res = PQexec(c, "SELECT count(*) FROM outbox");
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        td_metric_set(r->m_backlog, NULL, (double)strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    PQclear(res);
}

static void prune_changes(relay_t *r, PGconn *c) {
    char days[16];
    snprintf(days, sizeof days, "%d", r->retention_days);
    const char *v[1] = {days};
    PGresult *res = PQexecParams(
        c,
        "WITH d AS (DELETE FROM changes WHERE at < now() - make_interval(days => $1::int) "
        "           RETURNING user_id, seq) "
        "UPDATE user_seq u SET pruned_seq = greatest(u.pruned_seq, m.s) "
        "FROM (SELECT user_id, max(seq) AS s FROM d GROUP BY user_id) m WHERE u.user_id = m.user_id",
        1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        td_logf(TD_LOG_WARN, NULL, "change log pruning: %s", PQresultErrorMessage(res));
    PQclear(res);
}

/* Waits for a notification, a delivery, or the timeout. */
static void wait_for_work(relay_t *r, PGconn *c, int timeout_ms) {
    td_pg_wait(c, r->wake[0], timeout_ms);
}

static int try_lead(relay_t *r, PGconn *c) {
    PGresult *res = PQexec(c, "SELECT pg_try_advisory_lock(" RELAY_LOCK ")");
    int got = PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!got) return 0;
    /* What we ourselves still have in flight must finish before claims are
     * reset, or it would be sent twice; give up the lock if it does not. */
    if (r->producer && te_producer_flush(r->producer, 10000) != TE_OK) {
        PQclear(PQexec(c, "SELECT pg_advisory_unlock(" RELAY_LOCK ")"));
        return 0;
    }
    settle(r, c, 0);
    res = PQexec(c, "UPDATE outbox SET claimed_at = NULL WHERE claimed_at IS NOT NULL");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (ok) ok = td_pg_exec(c, "LISTEN te_outbox", NULL, 0) == 0;
    return ok;
}

/* After a fatal producer error (e.g. an idempotence sequence error) every
 * send fails: replace the producer and resend what it had in flight. */
static int recreate_producer(relay_t *r, PGconn *c) {
    char err[TE_ERRSTR_SIZE] = "";
    te_producer_fatal_error(r->producer, err, sizeof err);
    td_logf(TD_LOG_ERROR, NULL, "outbox: Kafka producer failed (%s): recreating it", err);
    te_producer_destroy(r->producer); /* purges: those rows stay claimed */
    r->producer = te_producer_new(r->conf, on_delivery, r, err, sizeof err);
    if (!r->producer) {
        td_logf(TD_LOG_ERROR, NULL, "outbox: cannot create a producer: %s", err);
        return -1;
    }
    atomic_store(&r->fatal, 0);
    PGresult *res = PQexec(c, "UPDATE outbox SET claimed_at = NULL WHERE claimed_at IS NOT NULL");
    PQclear(res);
    return 0;
}

static void *relay_main(void *arg) {
    relay_t *r = arg;
    PGconn *c = NULL;
    int leader = 0;
    double next_backlog = 0, next_kafka = 0, next_prune = 0, retry_at = 0;
    te_headers_t *hdr = ce_headers();
    while (!atomic_load(&r->stop)) {
        double t = now_s();
        if (t >= next_kafka) {
            char err[TE_ERRSTR_SIZE] = "the Dapr sidecar does not answer /v1.0/healthz/outbound";
            int okk = r->dapr ? td_dapr_ok(r->dapr)
                              : te_producer_prepare(r->producer, "task.events", 1000, err, sizeof err) == TE_OK;
            if (okk != atomic_exchange(&r->kafka_ok, okk))
                td_logf(okk ? TD_LOG_INFO : TD_LOG_WARN, NULL, okk ? "kafka reachable" : "kafka unreachable: %s", err);
            next_kafka = t + (okk ? 5 : 2);
        }
        if (!c || PQstatus(c) != CONNECTION_OK) {
            if (t < retry_at) {
                wait_for_work(r, NULL, 200);
                continue;
            }
            if (c) PQfinish(c);
            c = td_pg_connect(r->pg_url);
            leader = 0;
            td_metric_set(r->m_leader, NULL, 0);
            if (PQstatus(c) != CONNECTION_OK) {
                td_logf(TD_LOG_WARN, NULL, "outbox relay: postgres: %s", PQerrorMessage(c));
                retry_at = t + 1;
                continue;
            }
        }
        if (!leader) {
            leader = try_lead(r, c);
            td_metric_set(r->m_leader, NULL, leader);
            if (leader) td_logf(TD_LOG_INFO, NULL, "outbox relay: active");
            else {
                settle(r, c, 0);
                wait_for_work(r, NULL, 1000);
                continue;
            }
        }
        if (!r->dapr && (atomic_load(&r->fatal) || te_producer_fatal_error(r->producer, NULL, 0) != TE_OK)) {
            if (recreate_producer(r, c) != 0) {
                wait_for_work(r, NULL, 1000);
                continue;
            }
        }
        if (settle(r, c, 1) != 0) {
            wait_for_work(r, c, 200);
            continue;
        }
        int sent = claim_and_send(r, c, hdr);
        t = now_s();
        if (t >= next_backlog) {
            update_backlog(r, c);
            next_backlog = t + 5;
        }
        if (t >= next_prune) {
            prune_changes(r, c);
            next_prune = t + 3600;
        }
        if (sent == BATCH) continue; /* more waiting */
        wait_for_work(r, c, outstanding(r) ? 100 : 1000);
    }
    /* Shutdown: let what was sent be acknowledged, record it, stop. */
    if (r->producer) te_producer_flush(r->producer, 5000);
    if (c && PQstatus(c) == CONNECTION_OK) settle(r, c, leader);
    te_headers_destroy(hdr);
    if (c) PQfinish(c);
    return NULL;
}

relay_t *relay_start(const char *pg_url, const te_conf_t *kafka_conf, td_dapr_t *dapr, int retention_days,
                     char *errstr, size_t errstr_size) {
    relay_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->pg_url = strdup(pg_url);
    r->retention_days = retention_days;
    pthread_mutex_init(&r->mu, NULL);
    r->wake[0] = r->wake[1] = -1;
    const char *mi = getenv("TE_OUTBOX_INFLIGHT");
    r->max_inflight = mi && atoi(mi) > 0 ? (size_t)atoi(mi) : 10000;
    r->m_backlog = td_gauge("te_outbox_backlog", "Outbox rows not yet acknowledged by Kafka", NULL);
    r->m_published = td_counter("te_outbox_published_total", "Outbox events acknowledged by Kafka", NULL);
    r->m_errors = td_counter("te_kafka_delivery_errors_total", "Failed Kafka deliveries (retried)", NULL);
    r->m_delivery = td_histogram("te_kafka_delivery_seconds", "Send to broker acknowledgement", NULL, NULL, 0);
    r->m_parked = td_counter("te_outbox_parked_total", "Outbox events Kafka refused for good (kept, parked_at set)", NULL);
    r->m_leader = td_gauge("te_outbox_relay_active", "1 when this replica's relay holds the lock", NULL);
    atomic_init(&r->kafka_ok, 0);
    r->dapr = dapr;
    if (dapr) {
        if (pipe(r->wake) != 0 || fcntl(r->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
            fcntl(r->wake[1], F_SETFL, O_NONBLOCK) != 0 || pthread_create(&r->thread, NULL, relay_main, r) != 0) {
            snprintf(errstr, errstr_size, "cannot start the relay");
            relay_stop(r);
            return NULL;
        }
        r->started = 1;
        return r;
    }
    te_conf_t *conf = te_conf_dup(kafka_conf);
    char size[32];
    size_t sz = sizeof size;
    /* No delivery deadline unless configured: a record waits for Kafka. */
    if (conf && te_conf_get(conf, "message.timeout.ms", size, &sz) == TE_ERR_NOT_FOUND)
        te_conf_set(conf, "message.timeout.ms", "0", NULL, 0);
    if (!conf || pipe(r->wake) != 0 || fcntl(r->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(r->wake[1], F_SETFL, O_NONBLOCK) != 0 ||
        !(r->producer = te_producer_new(conf, on_delivery, r, errstr, errstr_size))) {
        if (!conf) snprintf(errstr, errstr_size, "out of memory");
        te_conf_destroy(conf);
        relay_stop(r);
        return NULL;
    }
    r->conf = conf;
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        snprintf(errstr, errstr_size, "cannot start the relay thread");
        te_producer_destroy(r->producer);
        r->producer = NULL;
        relay_stop(r);
        return NULL;
    }
    r->started = 1;
    return r;
}

void relay_stop(relay_t *r) {
    if (!r) return;
    if (r->started) {
        atomic_store(&r->stop, 1);
        char b = 1;
        ssize_t w = write(r->wake[1], &b, 1);
        (void)w;
        pthread_join(r->thread, NULL);
    }
    te_producer_destroy(r->producer);
    if (r->wake[0] >= 0) close(r->wake[0]);
    if (r->wake[1] >= 0) close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    free(r->done.v);
    free(r->failed.v);
    free(r->parked.v);
    te_conf_destroy(r->conf);
    free(r->pg_url);
    free(r);
}

int relay_kafka_ok(relay_t *r) { return atomic_load(&r->kafka_ok) && !atomic_load(&r->fatal); }
