/* Start-up pieces every daemon shares (see daemon.h). */
#include "daemon.h"
#include "dapr.h"

#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "log.h"
#include "metrics.h"
#include "pg.h"
#include "task_store.h"

static void kafka_log(void *opaque, int level, const char *facility, const char *message) {
    (void)opaque;
    td_log_level_t l = level <= 3 ? TD_LOG_ERROR : level == 4 ? TD_LOG_WARN : level <= 6 ? TD_LOG_INFO : TD_LOG_DEBUG;
    if (!td_log_enabled(l)) return;
    json_object *f = json_object_new_object();
    json_object_object_add(f, "facility", json_object_new_string(facility));
    td_log(l, NULL, message, f);
}

typedef struct kconf_arg_s {
    te_conf_t *conf;
    int bad;
} kconf_arg_t;

static void kafka_env(const char *key, const char *value, void *arg) {
    kconf_arg_t *a = arg;
    char err[TE_ERRSTR_SIZE];
    if (te_conf_set(a->conf, key, value, err, sizeof err) != TE_OK) {
        td_logf(TD_LOG_ERROR, NULL, "TE_RDKAFKA_ setting %s: %s", key, err);
        a->bad = 1;
    }
}

te_conf_t *td_kafka_conf(const char *brokers, const char *client_id) {
    te_conf_t *conf = te_conf_new();
    if (!conf) return NULL;
    char err[TE_ERRSTR_SIZE];
    if (te_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != TE_OK) {
        td_logf(TD_LOG_ERROR, NULL, "TE_KAFKA_BROKERS: %s", err);
        te_conf_destroy(conf);
        return NULL;
    }
    te_conf_set(conf, "client.id", client_id, NULL, 0);
    te_conf_set_log_cb(conf, kafka_log, NULL);
    /* TE_RDKAFKA_<PROPERTY>: its own prefix, so that the services'
     * TE_KAFKA_* settings (port, libs...) never reach librdkafka. */
    kconf_arg_t a = {conf, 0};
    td_env_each_prefixed("TE_RDKAFKA_", NULL, kafka_env, &a);
    if (a.bad) {
        te_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int td_migrate(const char *pg_url) {
    td_pg_pool_t *pool = td_pg_pool_new(pg_url, 1);
    char err[512];
    PGconn *c = pool ? td_pg_acquire(pool, err, sizeof err) : NULL;
    int applied = 0, rc = -1;
    if (c) {
        rc = td_pg_migrate(c, schema_migrations, schema_migrations_count, &applied, err, sizeof err);
        td_pg_release(pool, c);
    }
    if (rc == 0) td_logf(TD_LOG_INFO, NULL, "migrations: %d applied, schema version %d", applied,
                         schema_migrations_count ? schema_migrations[schema_migrations_count - 1].version : 0);
    else td_logf(TD_LOG_ERROR, NULL, "migrations failed: %s", err);
    td_pg_pool_destroy(pool);
    return rc;
}

/* A numeric setting; a bad value is reported by name. */
long td_env_long_named(const char *name, long def, long min, long max, int *bad) {
    int b = 0;
    long v = td_env_long(name, def, min, max, &b);
    if (b) {
        td_logf(TD_LOG_ERROR, NULL, "%s must be an integer from %ld to %ld", name, min, max);
        *bad = 1;
    }
    return v;
}

void td_block_signals(sigset_t *sigs) {
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
}

char *td_event_json(const char *type, const char *source, const char *id, const char *partitionkey,
                    const char *traceparent, json_object *data, char *errstr, size_t errstr_size) {
    te_event_t *ev = NULL;
    char *out = NULL;
    errstr[0] = '\0';
    te_err_t e = te_event_create(&ev, type, source, errstr, errstr_size);
    if (e == TE_OK && id) e = te_event_set_id(ev, id, errstr, errstr_size);
    if (e == TE_OK) e = te_event_set_partitionkey(ev, partitionkey, errstr, errstr_size);
    if (e == TE_OK && traceparent && traceparent[0])
        e = te_event_set_traceparent(ev, traceparent, errstr, errstr_size);
    if (e == TE_OK) e = te_event_set_data_object(ev, data);
    else json_object_put(data);
    if (e == TE_OK) e = te_catalog_validate_event(ev, NULL);
    if (e == TE_OK) e = te_event_to_json(ev, 0, &out, NULL, errstr, errstr_size);
    te_event_destroy(ev);
    if (e != TE_OK && !errstr[0]) snprintf(errstr, errstr_size, "%s event: %s", type, te_err2str(e));
    return e == TE_OK ? out : NULL;
}

void td_consumer_lag_metric(te_consumer_t *consumer) {
    int64_t lag = te_consumer_lag(consumer);
    if (lag >= 0)
        td_metric_set(td_gauge("te_consumer_lag_records",
                               "Records on the assigned partitions not yet taken from Kafka", NULL),
                      NULL, (double)lag);
}

static void ops_respond(td_http_resp_t *resp, int status, const char *body) {
    td_http_resp_set(resp, status, "application/json", body, strlen(body));
}

int td_consumer_ops(td_http_req_t *req, td_http_resp_t *resp, td_pg_pool_t *pool, te_consumer_t *consumer) {
    const char *path = td_http_path(req);
    if (strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 && strcmp(path, "/metrics") != 0)
        return 0;
    if (strcmp(td_http_method(req), "GET") != 0) {
        ops_respond(resp, 405, "{\"status\":\"method not allowed\"}");
    } else if (strcmp(path, "/healthz") == 0) {
        ops_respond(resp, 200, "{\"status\":\"ok\"}");
    } else if (strcmp(path, "/readyz") == 0) {
        char err[256];
        PGconn *c = td_pg_acquire(pool, err, sizeof err);
        int pg_ok = c && td_pg_exec(c, "SELECT 1", err, sizeof err) == 0;
        if (c) td_pg_release(pool, c);
        te_consumer_stats_t st = {0};
        if (consumer) te_consumer_stats(consumer, &st);
        int assigned = !consumer || st.rebalances > 0; /* partitions assigned at least once */
        td_dapr_t *dapr = td_dapr_global();
        if (dapr) assigned = td_dapr_ok(dapr); /* Dapr mode: the sidecar answers */
        char body[160];
        snprintf(body, sizeof body, "{\"status\":\"%s\",\"checks\":{\"postgres\":\"%s\",\"%s\":\"%s\"}}",
                 pg_ok && assigned ? "ready" : "not ready", pg_ok ? "ok" : "unavailable", dapr ? "dapr" : "kafka",
                 dapr ? (assigned ? "ok" : "unavailable") : assigned ? "assigned" : "waiting for partitions");
        ops_respond(resp, pg_ok && assigned ? 200 : 503, body);
    } else if (strcmp(path, "/metrics") == 0) {
        te_consumer_stats_t st = {0};
        if (consumer) te_consumer_stats(consumer, &st);
        static const struct {
            const char *name, *help;
            size_t off;
        } C[] = {
            {"te_consumer_received_total", "Records taken from Kafka", offsetof(te_consumer_stats_t, received)},
            {"te_consumer_handled_total", "Records handled", offsetof(te_consumer_stats_t, handled_ok)},
            {"te_consumer_retries_total", "Handler retries", offsetof(te_consumer_stats_t, retries)},
            {"te_consumer_dead_lettered_total", "Records dead-lettered", offsetof(te_consumer_stats_t, dead_lettered)},
            {"te_consumer_poison_total", "Records that were not valid CloudEvents", offsetof(te_consumer_stats_t, poison)},
        };
        for (size_t i = 0; consumer && i < sizeof C / sizeof C[0]; i++) /* Dapr mode counts itself */
            td_metric_set(td_counter(C[i].name, C[i].help, NULL), NULL,
                          (double)*(const uint64_t *)((const char *)&st + C[i].off));
        if (consumer) td_consumer_lag_metric(consumer);
        size_t len = 0;
        char *text = td_metrics_render(&len);
        resp->status = text ? 200 : 500;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = text;
        resp->body_len = len;
    }
    return 1;
}


te_jwt_verifier_t *td_jwt_from_env(void) {
    te_jwt_verifier_t *v = NULL;
    char err[TE_ERRSTR_SIZE];
    int ferr = 0, configured = 0;
    if (te_jwt_verifier_new(&v) != TE_OK) return NULL;
    char *secret = td_env_secret_ex("TE_JWT_SECRET", &ferr, err, sizeof err);
    if (ferr) {
        td_logf(TD_LOG_ERROR, NULL, "%s", err);
        goto fail;
    }
    if (secret) {
        te_err_t e = te_jwt_verifier_set_secret(v, secret, strlen(secret));
        free(secret);
        if (e != TE_OK) {
            td_logf(TD_LOG_ERROR, NULL, "TE_JWT_SECRET: %s (at least %d bytes)", te_err2str(e),
                    TE_JWT_HS256_MIN_SECRET);
            goto fail;
        }
        configured = 1;
    }
    const char *pk = td_env_str("TE_JWT_PUBLIC_KEY_FILE", NULL);
    if (pk) {
        FILE *f = fopen(pk, "r");
        char pem[16384];
        size_t n = f ? fread(pem, 1, sizeof pem - 1, f) : 0;
        if (f) fclose(f);
        if (!n || te_jwt_verifier_set_public_key_pem(v, pem, n, err, sizeof err) != TE_OK) {
            td_logf(TD_LOG_ERROR, NULL, "TE_JWT_PUBLIC_KEY_FILE %s: %s", pk, n ? err : "cannot be read");
            goto fail;
        }
        configured = 1;
    }
    if (!configured) {
        td_logf(TD_LOG_ERROR, NULL, "set TE_JWT_SECRET (or TE_JWT_SECRET_FILE) or TE_JWT_PUBLIC_KEY_FILE");
        goto fail;
    }
    if (td_env_str("TE_JWT_ISSUER", NULL)) te_jwt_verifier_set_issuer(v, td_env_str("TE_JWT_ISSUER", NULL));
    if (td_env_str("TE_JWT_AUDIENCE", NULL))
        te_jwt_verifier_set_audience(v, td_env_str("TE_JWT_AUDIENCE", NULL));
    te_jwt_verifier_set_leeway(v, (int)td_env_long_named("TE_JWT_LEEWAY", 30, 0, 3600, NULL));
    return v;
fail:
    te_jwt_verifier_destroy(v);
    return NULL;
}

const char *td_pg_url_from_env(void) {
    static char *url; /* kept for the process's life */
    if (url) return url;
    char err[512];
    int bad = 0;
    url = td_env_secret_ex("TE_PG_URL", &bad, err, sizeof err);
    if (bad) td_logf(TD_LOG_ERROR, NULL, "%s", err);
    return url;
}

int td_daemon_init(int argc, char **argv, const char *name, const char *doc, const char **pg_url,
                   const char **brokers) {
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("%s %s\n", name, te_version_str());
        return 0;
    }
    if (argc > 2 || strcmp(cmd, "serve") != 0) {
        fprintf(stderr, "usage: %s [serve|version]\n  configuration: environment variables, see %s\n", name, doc);
        return 2;
    }
    td_log_init(name);
    int dapr = td_transport_dapr();
    if (dapr < 0 || (dapr && td_dapr_global_init() != 0)) return 2;
    *pg_url = td_pg_url_from_env();
    *brokers = td_env_str("TE_KAFKA_BROKERS", NULL);
    if (dapr && *brokers) { /* the sidecar consumes: no Kafka consumer besides */
        td_logf(TD_LOG_WARN, NULL, "TE_KAFKA_BROKERS is ignored with TE_TRANSPORT=dapr");
        *brokers = NULL;
    }
    if (!*pg_url || (!*brokers && !dapr)) {
        td_logf(TD_LOG_ERROR, NULL, dapr ? "TE_PG_URL is required" : "TE_PG_URL and TE_KAFKA_BROKERS are required");
        return 2;
    }
    return -1;
}

void *td_consumer_thread(void *consumer) {
    char err[TE_ERRSTR_SIZE];
    if (te_consumer_run(consumer, err, sizeof err) != TE_OK) {
        td_logf(TD_LOG_ERROR, NULL, "consumer stopped: %s", err);
        kill(getpid(), SIGTERM); /* let main shut the rest down */
    }
    return NULL;
}

int td_intake_init(td_intake_t *in, const te_conf_t *conf, const char *source, const char *const *topics,
                   size_t count, te_handler_cb handler, void *opaque, int max_attempts) {
    memset(in, 0, sizeof *in);
    if (!conf) {
        td_dapr_sub_t subs[8];
        for (size_t i = 0; i < count && i < 8; i++)
            subs[i] = (td_dapr_sub_t){.topic = topics[i], .handler = handler, .opaque = opaque};
        /* the servers have TD_DAPR_APP_THREADS threads: two stay for probes */
        in->app = td_dapr_app_new(td_dapr_global(), subs, count < 8 ? count : 8, source, max_attempts,
                                  TD_DAPR_APP_THREADS - 2);
        if (!in->app) td_logf(TD_LOG_ERROR, NULL, "out of memory");
        return in->app ? 0 : -1;
    }
    char err[TE_ERRSTR_SIZE];
    in->consumer = te_consumer_new(conf, topics, count, handler, opaque, err, sizeof err);
    if (!in->consumer) td_logf(TD_LOG_ERROR, NULL, "consumer: %s", err);
    return in->consumer ? 0 : -1;
}

int td_intake_start(td_intake_t *in) {
    if (!in->consumer) return 0;
    if (pthread_create(&in->thread, NULL, td_consumer_thread, in->consumer) != 0) return -1;
    in->started = 1;
    return 0;
}

void td_intake_halt(td_intake_t *in) {
    if (in->started) {
        te_consumer_stop(in->consumer);
        pthread_join(in->thread, NULL);
        in->started = 0;
    }
    td_dapr_app_stop(in->app);
}

void td_intake_stop(td_intake_t *in) {
    td_intake_halt(in);
    te_consumer_destroy(in->consumer);
    td_dapr_app_destroy(in->app);
    memset(in, 0, sizeof *in);
}

int td_intake_ops(td_intake_t *in, td_http_req_t *req, td_http_resp_t *resp, td_pg_pool_t *pool) {
    return td_dapr_app_serve(in->app, req, resp) || td_consumer_ops(req, resp, pool, in->consumer);
}
