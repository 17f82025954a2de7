/* Start-up pieces every daemon shares: the Kafka configuration from the
 * environment, the schema migrations, numeric settings reported by name.
 * Call them from the main thread before other threads start. */
#ifndef TD_DAEMON_H
#define TD_DAEMON_H

#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <todoevents/jwt.h>
#include <todoevents/kafka.h>

#include "http.h"
#include "pg.h"

/* bootstrap.servers = brokers, client.id, librdkafka's log into the JSON
 * log, and every TE_RDKAFKA_<PROPERTY> variable (a bad one is logged by
 * name).  NULL on a bad setting. */
te_conf_t *td_kafka_conf(const char *brokers, const char *client_id);

/* Applies the schema migrations (logged).  0 or -1. */
int td_migrate(const char *pg_url);

/* An integer setting in [min, max]; a bad value is logged by name and
 * sets *bad. */
long td_env_long_named(const char *name, long def, long min, long max, int *bad);

/* Blocks SIGTERM and SIGINT (every thread started afterwards inherits the
 * mask; the main thread takes them with sigwait(sigs)) and ignores
 * SIGPIPE. */
void td_block_signals(sigset_t *sigs);

/* A CloudEvent of the catalogue as JSON (te_free() it): type, source, id
 * (NULL: a new UUID), partitionkey, traceparent (NULL or "" for none) and
 * data (taken over, also on failure).  Checked against the catalogue.
 * NULL with errstr on failure. */
char *td_event_json(const char *type, const char *source, const char *id, const char *partitionkey,
                    const char *traceparent, json_object *data, char *errstr, size_t errstr_size);

/* TE_PG_URL (or _FILE, _SECRET), read once and kept.  NULL (logged when
 * it could not be read) when unset. */
const char *td_pg_url_from_env(void);

/* The start every consumer daemon shares: "version" prints the version,
 * anything but "serve" the usage (doc: where the settings are described);
 * then the JSON log as name; with TE_TRANSPORT=dapr the Dapr client
 * (td_dapr_global_init: waits for the sidecar); then TE_PG_URL (required)
 * and TE_KAFKA_BROKERS (required in Kafka mode, NULL in Dapr mode) into
 * *pg_url / *brokers.  Returns -1 to go on, else the exit status. */
int td_daemon_init(int argc, char **argv, const char *name, const char *doc, const char **pg_url,
                   const char **brokers);

/* A thread body: te_consumer_run(consumer) until stopped; a consumer that
 * fails for good is logged and SIGTERMs the process (main shuts down). */
void *td_consumer_thread(void *consumer);

/* Where a consumer daemon's events come from: in Kafka mode a te_consumer
 * on a thread of its own, in Dapr mode the sidecar's deliveries to the
 * daemon's HTTP server (dapr.h).  The handler is the same in both. */
typedef struct td_intake_s {
    te_consumer_t *consumer;      /* Kafka mode, else NULL */
    struct td_dapr_app_s *app;    /* Dapr mode, else NULL */
    pthread_t thread;
    int started;
} td_intake_t;

/* conf (group.id and the rest set; NULL in Dapr mode: td_dapr_global()
 * is used), topics (count), handler and opaque as for te_consumer_new();
 * source names the dead-letter records in Dapr mode, max_attempts is the
 * Dapr-mode attempts per event id (Kafka mode: te.max.attempts in conf).
 * 0, or -1 (logged). */
int td_intake_init(td_intake_t *in, const te_conf_t *conf, const char *source, const char *const *topics,
                   size_t count, te_handler_cb handler, void *opaque, int max_attempts);
/* Kafka mode: starts the consumer thread.  0 or -1. */
int td_intake_start(td_intake_t *in);
/* Stops taking events: Kafka mode stops and joins the consumer (the handler
 * call in progress completes, offsets are committed); Dapr mode answers
 * RETRY from now on.  Call it before stopping the HTTP server that serves
 * the deliveries.  The consumer stays readable (stats) until _stop. */
void td_intake_halt(td_intake_t *in);
/* td_intake_halt(), then frees.  After every thread that reads in->consumer
 * (ops routes) has stopped.  Zeroed structure: no-op. */
void td_intake_stop(td_intake_t *in);
/* The threads of an HTTP server that serves Dapr deliveries (two are kept
 * for probes), and its body limit (twice Kafka's default largest record). */
#define TD_DAPR_APP_THREADS 8
#define TD_DAPR_APP_MAX_BODY (2u << 20)
/* An ops server's handler: the Dapr routes (1 = answered) and then
 * td_consumer_ops(). */
int td_intake_ops(td_intake_t *in, td_http_req_t *req, td_http_resp_t *resp, td_pg_pool_t *pool);

/* The JWT verifier every user-facing daemon uses: TE_JWT_SECRET[_FILE]
 * (HS256) and/or TE_JWT_PUBLIC_KEY_FILE (RS256/ES256), TE_JWT_ISSUER,
 * TE_JWT_AUDIENCE, TE_JWT_LEEWAY (30 s).  NULL (logged) on a bad or
 * missing setting. */
te_jwt_verifier_t *td_jwt_from_env(void);

/* Sets the gauge te_consumer_lag_records from te_consumer_lag() (left as
 * it was while the lag is unknown). */
void td_consumer_lag_metric(te_consumer_t *consumer);

/* The operations routes of a daemon built around a consumer: /healthz,
 * /readyz (PostgreSQL answers, partitions assigned), /metrics (with the
 * consumer's counters; consumer NULL: none).  1 when path was one of them (answered), 0 when
 * not (resp untouched). */
int td_consumer_ops(td_http_req_t *req, td_http_resp_t *resp, td_pg_pool_t *pool, te_consumer_t *consumer);

#endif
