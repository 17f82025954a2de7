/* Start-up pieces every daemon shares (see daemon.h). */
#include "daemon.h"

#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "env.h"
#include "log.h"
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
