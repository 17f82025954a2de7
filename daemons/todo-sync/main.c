/* todo-sync: every change and in-app notification to all of a user's
 * WebSocket sessions (docs/sync.md).  Configuration from the environment;
 * SIGTERM closes every session (1001) and exits 0. */
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "daemon.h"
#include "dapr.h"
#include "env.h"
#include "log.h"
#include "sync.h"

typedef struct run_s {
    sync_t *s;
    const char *listen;
    long ping_s, pong_s;
    int rc;
} run_t;

static void *server_main(void *arg) {
    run_t *r = arg;
    r->rc = server_run(r->s, r->listen, r->ping_s, r->pong_s);
    if (r->rc != 0) kill(getpid(), SIGTERM);
    return NULL;
}

/* Dapr mode: the deliveries on TE_SYNC_DAPR_LISTEN (health and metrics
 * stay on TE_SYNC_LISTEN). */
static void dapr_routes(td_http_req_t *req, td_http_resp_t *resp, void *arg) {
    td_intake_t *in = arg;
    if (!td_dapr_app_serve(in->app, req, resp))
        td_http_resp_set(resp, 404, "application/json", "{\"status\":\"not found\"}", 23);
}

int main(int argc, char **argv) {
    const char *pg_url = NULL, *brokers = NULL;
    int early = td_daemon_init(argc, argv, "todo-sync", "docs/sync.md", &pg_url, &brokers);
    if (early >= 0) return early;
    sigset_t sigs;
    td_block_signals(&sigs);
    int status = 1, bad = 0;
    static sync_t s;
    s.pg_url = pg_url;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cu_cv, NULL);
    run_t run = {.s = &s, .listen = td_env_str("TE_SYNC_LISTEN", "127.0.0.1:8083")};
    s.max_queue = td_env_long_named("TE_SYNC_MAX_QUEUE", 1000, 1, 1000000, &bad);
    s.max_queue_bytes = td_env_long_named("TE_SYNC_MAX_QUEUE_BYTES", 4L << 20, 1024, 1L << 30, &bad);
    s.max_sessions = td_env_long_named("TE_SYNC_MAX_SESSIONS", 20000, 1, 1000000, &bad);
    s.max_catchup = td_env_long_named("TE_SYNC_MAX_CATCHUP", 500, 1, 10000000, &bad);
    /* a catch-up is queued at once: one larger than the queue limit would
     * close the session (1008) on every reconnect instead of telling it to
     * resync; half leaves room for the live changes meanwhile */
    if (s.max_catchup > (s.max_queue > 1 ? s.max_queue / 2 : 1)) {
        long cap = s.max_queue > 1 ? s.max_queue / 2 : 1;
        if (td_env_str("TE_SYNC_MAX_CATCHUP", NULL))
            td_logf(TD_LOG_WARN, NULL, "TE_SYNC_MAX_CATCHUP %ld lowered to %ld: half of TE_SYNC_MAX_QUEUE",
                    s.max_catchup, cap);
        s.max_catchup = cap;
    }
    run.ping_s = td_env_long_named("TE_SYNC_PING_S", 20, 1, 3600, &bad);
    run.pong_s = td_env_long_named("TE_SYNC_PONG_TIMEOUT_S", 60, 2, 7200, &bad);
    /* a descriptor per session: the soft limit goes up to the hard one, and
     * the sessions are capped below it (with room for the rest), so that a
     * full server closes new sessions (1013) instead of failing accept() */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        /* the soft limit set to what the sessions need (up to the hard
         * one): libwebsockets sizes its descriptor table by it (16 bytes a
         * descriptor, zero-filled), and ignores limits over 10 M */
        rlim_t want = (rlim_t)s.max_sessions + 1024;
        if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) want = rl.rlim_max;
        if (rl.rlim_cur != want) {
            rl.rlim_cur = want;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)s.max_sessions + 256 > rl.rlim_cur) {
            long cap = rl.rlim_cur > 512 ? (long)rl.rlim_cur - 256 : (long)rl.rlim_cur / 2;
            td_logf(TD_LOG_WARN, NULL, "TE_SYNC_MAX_SESSIONS %ld lowered to %ld: open files are limited to %llu",
                    s.max_sessions, cap, (unsigned long long)rl.rlim_cur);
            s.max_sessions = cap;
        }
    }
    if (run.pong_s < run.ping_s + 2) { /* pings go out from a 1 s sweep: up to 1 s late */
        td_logf(TD_LOG_ERROR, NULL, "TE_SYNC_PONG_TIMEOUT_S must be at least TE_SYNC_PING_S + 2");
        bad = 1;
    }
    te_conf_t *conf = NULL;
    td_intake_t in = {0};
    td_http_server_t *dapr_srv = NULL;
    pthread_t catchup_thread, server_thread;
    int catchup_started = 0, server_started = 0;
    char err[TE_ERRSTR_SIZE];
    if (bad || !(s.jwt = td_jwt_from_env())) goto out;
    if (brokers && !(conf = td_kafka_conf(brokers, "todo-sync"))) goto out;
    /* a group of its own per replica: every replica sees every event */
    char group[64];
    uuid_t u;
    uuid_generate_random(u);
    char us[37];
    uuid_unparse_lower(u, us);
    snprintf(group, sizeof group, "todo-sync-%.8s", us);
    const char *g = td_env_str("TE_SYNC_GROUP", group);
    if (conf && (te_conf_set(conf, "group.id", g, err, sizeof err) != TE_OK ||
                 (!td_env_str("TE_RDKAFKA_AUTO_OFFSET_RESET", NULL) &&
                  te_conf_set(conf, "auto.offset.reset", "latest", err, sizeof err) != TE_OK))) {
        td_logf(TD_LOG_ERROR, NULL, "consumer settings: %s", err);
        goto out;
    }
    static const char *const TYPE[] = {"type", NULL}, *const REASON[] = {"reason", NULL},
                             *const RESULT[] = {"result", NULL};
    s.m_conns = td_gauge("te_sync_connections", "Open WebSocket sessions", NULL);
    s.m_sent = td_counter("te_sync_messages_sent_total", "Messages written to sessions, by type", TYPE);
    s.m_dropped = td_counter("te_sync_dropped_total", "Sessions closed or refused for a limit, by reason", REASON);
    s.m_fanout = td_histogram("te_sync_fanout_seconds", "Event time to the message written to a session", NULL,
                              NULL, 0);
    s.m_catchup = td_counter("te_sync_catchup_total", "Catch-ups from the change log, by result", RESULT);
    td_metric_set(s.m_conns, NULL, 0);
    static const char *const TOPICS[] = {TE_TOPIC_SYNC_EVENTS, TE_TOPIC_NOTIFICATION_SEND};
    if (td_intake_init(&in, conf, "todo-sync", TOPICS, 2, feed_handle, &s, 3) != 0) goto out;
    s.consumer = in.consumer;
    if (in.app) { /* Dapr mode: the sidecar delivers to a port of its own */
        td_http_config_t hc = {.listen = td_env_str("TE_SYNC_DAPR_LISTEN", "127.0.0.1:8084"),
                               .threads = TD_DAPR_APP_THREADS, .max_body = TD_DAPR_APP_MAX_BODY, .timeout_s = 30};
        if (!(dapr_srv = td_http_start(&hc, dapr_routes, &in, err, sizeof err))) {
            td_logf(TD_LOG_ERROR, NULL, "TE_SYNC_DAPR_LISTEN: %s", err);
            goto out;
        }
    }
    atomic_store(&s.pg_ok, 1);
    if (pthread_create(&catchup_thread, NULL, catchup_main, &s) != 0) goto out;
    catchup_started = 1;
    if (pthread_create(&server_thread, NULL, server_main, &run) != 0) goto out;
    server_started = 1;
    if (td_intake_start(&in) != 0) goto out;
    if (in.consumer) td_logf(TD_LOG_INFO, NULL, "todo-sync: consumer group %s", g);
    int sig = 0;
    sigwait(&sigs, &sig);
    td_logf(TD_LOG_INFO, NULL, "signal %d: shutting down", sig);
    status = run.rc == 0 ? 0 : 1;
out:
    atomic_store(&s.stopping, 1);
    td_intake_halt(&in); /* nothing feeds the server after this */
    td_http_stop(dapr_srv);
    server_wake(&s);
    if (server_started) pthread_join(server_thread, NULL);
    pthread_mutex_lock(&s.mu);
    pthread_cond_broadcast(&s.cu_cv);
    pthread_mutex_unlock(&s.mu);
    if (catchup_started) pthread_join(catchup_thread, NULL);
    /* anything the threads left behind */
    while (s.feed_head) {
        feed_item_t *n = s.feed_head->next;
        msg_unref(s.feed_head->msg);
        free(s.feed_head);
        s.feed_head = n;
    }
    while (s.done_head) {
        catchup_t *n = s.done_head->next;
        catchup_free(s.done_head);
        s.done_head = n;
    }
    td_intake_stop(&in); /* after the server thread, which reads its stats */
    te_conf_destroy(conf);
    te_jwt_verifier_destroy(s.jwt);
    if (status == 0) td_logf(TD_LOG_INFO, NULL, "stopped");
    td_metrics_shutdown();
    return status;
}
