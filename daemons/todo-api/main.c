/* todo-api: configuration from the environment, start-up, graceful
 * shutdown.  docs/api.md describes the settings and the routes. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "env.h"
#include "daemon.h"
#include "log.h"
#include "task_store.h"




static void usage(void) {
    fprintf(stderr, "usage: todo-api [serve|migrate|version]\n"
                    "  configuration: environment variables, see docs/api.md\n");
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("todo-api %s\n", te_version_str());
        return 0;
    }
    if (argc > 2 || (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0)) {
        usage();
        return 2;
    }
    td_log_init("todo-api");
    int dapr = td_transport_dapr();
    if (dapr < 0 || (dapr && td_dapr_global_init() != 0)) return 2;
    const char *pg_url = td_pg_url_from_env();
    if (!pg_url) {
        td_logf(TD_LOG_ERROR, NULL, "TE_PG_URL is required");
        return 2;
    }
    if (strcmp(cmd, "migrate") == 0) {
        int rc = td_migrate(pg_url);
        td_metrics_shutdown();
        return rc == 0 ? 0 : 1;
    }

    sigset_t sigs; /* taken by sigwait() below */
    td_block_signals(&sigs);

    api_t api = {0};
    int bad = 0, status = 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* Handlers mostly wait for PostgreSQL: a few per CPU keep it busy. */
    long def_threads = 4 * (ncpu > 0 ? ncpu : 1);
    if (def_threads > 32) def_threads = 32;
    long threads = td_env_long_named("TE_API_THREADS", def_threads, 1, 256, &bad);
    api.max_body = (size_t)td_env_long_named("TE_API_MAX_BODY", 65536, 1024, 16 << 20, &bad);
    api.rate = (double)td_env_long_named("TE_RATE_LIMIT", 50, 0, 1000000, &bad);
    api.burst = (double)td_env_long_named("TE_RATE_BURST", 100, 1, 1000000, &bad);
    api.idem_ttl = (int)td_env_long_named("TE_IDEMPOTENCY_TTL", 86400, 60, 30 * 86400, &bad);
    int retention = (int)td_env_long_named("TE_SYNC_RETENTION_DAYS", 7, 1, 3650, &bad);
    const char *brokers = td_env_str("TE_KAFKA_BROKERS", NULL);
    api.dapr = td_dapr_global();
    if (!brokers && !api.dapr) td_logf(TD_LOG_ERROR, NULL, "TE_KAFKA_BROKERS is required");
    if (bad || (!brokers && !api.dapr) || !(api.jwt = td_jwt_from_env())) goto out;
    if (!api.dapr && !(api.kafka_conf = td_kafka_conf(brokers, "todo-api"))) goto out;
    if (td_env_bool("TE_MIGRATE", 1) && td_migrate(pg_url) != 0) goto out;

    static const char *const LBL[] = {"route", "method", "status", NULL};
    api.m_latency = td_histogram("te_http_request_duration_seconds", "HTTP request latency", LBL, NULL, 0);
    api.m_in_flight = td_gauge("te_http_requests_in_flight", "Requests being served", NULL);
    api.m_rate_limited = td_counter("te_rate_limited_total", "Requests answered 429", NULL);
    td_metric_set(td_gauge("te_pg_up", "1 when PostgreSQL answered the last use", NULL), NULL, 1);
    api.pool = td_pg_pool_new(pg_url, (int)threads);
    char err[512];
    int rerr = 0;
    char *redis_url = td_env_secret_ex("TE_REDIS_URL", &rerr, err, sizeof err);
    if (rerr) {
        td_logf(TD_LOG_ERROR, NULL, "%s", err);
        goto out;
    }
    if (redis_url) {
        api.redis = td_redis_new(redis_url, (int)threads, err, sizeof err);
        free(redis_url);
        if (!api.redis) {
            td_logf(TD_LOG_ERROR, NULL, "TE_REDIS_URL: %s", err);
            goto out;
        }
        if (!td_redis_ping(api.redis))
            td_logf(TD_LOG_WARN, NULL, "redis unavailable: serving without idempotency keys and rate limits");
    } else {
        td_logf(TD_LOG_WARN, NULL, api.dapr ? "TE_REDIS_URL not set: no rate limit (idempotency keys: Dapr state store)"
                                            : "TE_REDIS_URL not set: no idempotency keys, no rate limit");
    }
    /* The relay starts first: handlers read api.relay (for /readyz). */
    if (td_env_bool("TE_OUTBOX_RELAY", 1) &&
        !(api.relay = relay_start(pg_url, api.kafka_conf, api.dapr, retention, err, sizeof err))) {
        td_logf(TD_LOG_ERROR, NULL, "outbox relay: %s", err);
        goto out;
    }
    td_http_config_t hc = {.listen = td_env_str("TE_API_LISTEN", "127.0.0.1:8080"),
                           .threads = (int)threads,
                           .max_body = api.max_body,
                           .timeout_s = 60};
    td_http_server_t *srv = td_http_start(&hc, api_dispatch, &api, err, sizeof err);
    if (!srv) {
        td_logf(TD_LOG_ERROR, NULL, "%s", err);
        goto out;
    }
    json_object *f = json_object_new_object();
    json_object_object_add(f, "listen", json_object_new_string(hc.listen));
    json_object_object_add(f, "port", json_object_new_int(td_http_port(srv)));
    json_object_object_add(f, "threads", json_object_new_int((int)threads));
    json_object_object_add(f, "version", json_object_new_string(te_version_str()));
    td_log(TD_LOG_INFO, NULL, "todo-api serving", f);

    int sig = 0;
    sigwait(&sigs, &sig);
    td_logf(TD_LOG_INFO, NULL, "signal %d: shutting down", sig);
    td_http_stop(srv); /* finishes in-flight requests */
    status = 0;
out:
    relay_stop(api.relay);
    td_redis_destroy(api.redis);
    td_pg_pool_destroy(api.pool);
    te_conf_destroy(api.kafka_conf);
    te_jwt_verifier_destroy(api.jwt);
    if (status == 0) td_logf(TD_LOG_INFO, NULL, "stopped");
    td_metrics_shutdown();
    return status;
}
