/* todo-worker: consumes task.events — activity log and recurring tasks
 * (docs/worker.md).  Configuration from the environment; /healthz,
 * /readyz and /metrics on TE_WORKER_LISTEN; graceful shutdown on SIGTERM
 * (the handler call in progress completes, offsets are committed). */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "dapr.h"
#include "env.h"
#include "http.h"
#include "log.h"
#include "outbox_relay.h"
#include "pg.h"
#include "worker.h"

typedef struct ops_s {
    td_pg_pool_t *pool;      /* for /readyz */
    td_intake_t in;
    relay_t *relay;
} ops_t;

static void ops_handler(td_http_req_t *req, td_http_resp_t *resp, void *arg) {
    ops_t *ops = arg;
    if (!td_intake_ops(&ops->in, req, resp, ops->pool))
        td_http_resp_set(resp, 404, "application/json", "{\"status\":\"not found\"}", 23);
}

int main(int argc, char **argv) {
    const char *pg_url = NULL, *brokers = NULL;
    int early = td_daemon_init(argc, argv, "todo-worker", "docs/worker.md", &pg_url, &brokers);
    if (early >= 0) return early;
    sigset_t sigs; /* taken by sigwait() below */
    td_block_signals(&sigs);

    int status = 1;
    worker_t w = {.pg_url = (char *)pg_url};
    ops_t ops = {0};
    te_conf_t *conf = NULL;
    td_http_server_t *srv = NULL;
    char err[TE_ERRSTR_SIZE];
    int bad = 0;
    int retention = (int)td_env_long_named("TE_SYNC_RETENTION_DAYS", 7, 1, 3650, &bad);
    if (bad) goto out;
    if (td_env_bool("TE_MIGRATE", 1) && td_migrate(pg_url) != 0) goto out;
    /* Kafka mode (brokers set): a failure the handler calls transient
     * (RETRY: the database is down) is retried for about a quarter of an
     * hour (back-off up to 10 s) before the record is dead-lettered with
     * the reason.  Dapr mode: 100 deliveries of the same event id. */
    if (brokers) {
        if (!(conf = td_kafka_conf(brokers, "todo-worker"))) goto out;
        if (te_conf_set(conf, "group.id", td_env_str("TE_WORKER_GROUP", "todo-worker"), err, sizeof err) != TE_OK ||
            te_conf_set(conf, "te.max.attempts", "100", err, sizeof err) != TE_OK) {
            td_logf(TD_LOG_ERROR, NULL, "consumer settings: %s", err);
            goto out;
        }
    }
    static const char *const EV_LBL[] = {"type", "result", NULL};
    static const char *const PART_LBL[] = {"partition", NULL};
    w.m_events = td_counter("te_worker_events_total", "Task events handled, by type and result", EV_LBL);
    w.m_next = td_histogram("te_worker_next_occurrence_seconds",
                            "Completion event time to the next occurrence committed", NULL, NULL, 0);
    w.m_lag = td_gauge("te_worker_lag_seconds", "Age of the last record handled, per partition", PART_LBL);
    static const char *const TOPICS[] = {"task.events"};
    if (td_intake_init(&ops.in, conf, "todo-worker", TOPICS, 1, worker_handle, &w, 100) != 0) goto out;
    ops.pool = td_pg_pool_new(pg_url, 1);
    if (td_env_bool("TE_OUTBOX_RELAY", 1) &&
        !(ops.relay = relay_start(pg_url, conf, td_dapr_global(), retention, err, sizeof err))) {
        td_logf(TD_LOG_ERROR, NULL, "outbox relay: %s", err);
        goto out;
    }
    td_http_config_t hc = {.listen = td_env_str("TE_WORKER_LISTEN", "127.0.0.1:8081"),
                           .threads = ops.in.app ? TD_DAPR_APP_THREADS : 1,
                           .max_body = ops.in.app ? TD_DAPR_APP_MAX_BODY : 4096, .timeout_s = 30};
    if (!(srv = td_http_start(&hc, ops_handler, &ops, err, sizeof err))) {
        td_logf(TD_LOG_ERROR, NULL, "%s", err);
        goto out;
    }
    if (td_intake_start(&ops.in) != 0) goto out;
    td_logf(TD_LOG_INFO, NULL, "todo-worker serving on %s (group %s)", hc.listen,
            td_env_str("TE_WORKER_GROUP", "todo-worker"));
    int sig = 0;
    sigwait(&sigs, &sig);
    td_logf(TD_LOG_INFO, NULL, "signal %d: shutting down", sig);
    status = 0;
out:
    atomic_store(&w.stopping, 1);
    td_intake_halt(&ops.in); /* Dapr deliveries from now on: RETRY */
    td_http_stop(srv);
    td_intake_stop(&ops.in);
    relay_stop(ops.relay);
    td_pg_pool_destroy(ops.pool);
    if (w.conn) PQfinish(w.conn);
    te_conf_destroy(conf);
    if (status == 0) td_logf(TD_LOG_INFO, NULL, "stopped");
    td_metrics_shutdown();
    return status;
}
