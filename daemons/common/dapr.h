/* td_store (internal to the daemons) — the Dapr transport (docs/dapr.md):
 * a client of the sidecar's HTTP API (publish, state, secrets, output
 * bindings) and the app side of Dapr pub/sub (/dapr/subscribe and the
 * delivery routes), which runs the same te_handler_cb as Kafka mode.
 *
 * Threads: a td_dapr_t may be used by any number of threads at once (it
 * keeps a pool of libcurl handles, so connections to the sidecar stay
 * open).  td_dapr_app_serve() may be called from any HTTP worker thread;
 * it runs the handlers one at a time (as the Kafka consumer does).
 *
 * Ownership: strings given are copied; strings returned are malloc'd and
 * freed by the caller (free()). */
#ifndef TD_DAPR_H
#define TD_DAPR_H

#include <json-c/json.h>
#include <stddef.h>
#include <todoevents/kafka.h>

#include "http.h"
#include "redis.h"

typedef struct td_dapr_s td_dapr_t;

/* TE_TRANSPORT: 0 = kafka (default), 1 = dapr, -1 = anything else (logged). */
int td_transport_dapr(void);

/* The process's client, from TE_DAPR_* (created by td_dapr_global_init()). */
td_dapr_t *td_dapr_global(void);

/* Creates the process's client, waits (TE_DAPR_WAIT_S) until the sidecar
 * answers GET /v1.0/healthz/outbound, and lets td_env_secret() read
 * NAME_SECRET settings from the secret store.  Main thread, before other
 * threads start.  0, or -1 (logged). */
int td_dapr_global_init(void);
void td_dapr_global_cleanup(void); /* registered with atexit() by the init */

/* The sidecar's base URL (no trailing '/') and the API token (or NULL). */
const char *td_dapr_base(const td_dapr_t *d);
const char *td_dapr_token(const td_dapr_t *d);

/* 1 when the sidecar answers GET /v1.0/healthz/outbound with 2xx now. */
int td_dapr_ok(td_dapr_t *d);

/* One request to the sidecar: method, path below the base URL, body (NULL
 * = none) of type ctype.  Returns the HTTP status, or -1 with errstr when
 * there was no answer.  *out (may be NULL) gets the body (NUL-terminated,
 * length in *out_len), *etag (may be NULL) the ETag header or NULL.
 * if_match (may be NULL) is sent as If-Match. */
int td_dapr_call(td_dapr_t *d, const char *method, const char *path, const char *ctype,
                 const char *body, size_t len, const char *if_match, char **out, size_t *out_len,
                 char **etag, char *errstr, size_t errstr_size);

/* Publishes a structured CloudEvent (JSON) on topic with partitionKey =
 * key (and the event's traceparent as the request's).  0 when the sidecar
 * accepted it (204); else, with errstr, the HTTP status of the refusal, or
 * -1 when there was no answer. */
int td_dapr_publish(td_dapr_t *d, const char *topic, const char *key, const char *event_json,
                    size_t len, char *errstr, size_t errstr_size);

/* The value of key (NULL = secret) of a secret in the secret store.
 * malloc'd, or NULL with errstr (never containing a value). */
char *td_dapr_secret(td_dapr_t *d, const char *secret, const char *key, char *errstr,
                     size_t errstr_size);

/* Invokes an output binding: {"operation": operation, "data": data,
 * "metadata": metadata} (data and metadata taken over; either may be
 * NULL).  0 on 200/204, else -1 with errstr. */
int td_dapr_binding(td_dapr_t *d, const char *binding, const char *operation, json_object *data,
                    json_object *metadata, char *errstr, size_t errstr_size);

/* Idempotency keys in the state store, with the semantics of
 * td_redis_idem_begin/finish/abort (redis.h). */
td_idem_rc_t td_dapr_idem_begin(td_dapr_t *d, const char *user, const char *key,
                                const char *fingerprint, int ttl_s, td_idem_resp_t *out);
void td_dapr_idem_finish(td_dapr_t *d, const char *user, const char *key, const char *fingerprint,
                         int ttl_s, const td_idem_resp_t *resp);
void td_dapr_idem_abort(td_dapr_t *d, const char *user, const char *key);

/* ---- the app side of pub/sub ------------------------------------------- */

typedef struct td_dapr_sub_s {
    const char *topic;      /* e.g. TE_TOPIC_TASK_EVENTS */
    te_handler_cb handler;  /* as for te_consumer_new() */
    void *opaque;
} td_dapr_sub_t;

typedef struct td_dapr_app_s td_dapr_app_t;

/* subs copied (count entries).  source: the CloudEvents source of the
 * dead-letter records.  max_attempts: handler attempts of one event id
 * before it is dead-lettered (as te.max.attempts).  max_inflight:
 * deliveries served at once (the rest are answered RETRY at once): keep it
 * below the HTTP server's threads so that probes always find one.  A
 * delivery that waits more than 5 s for the handler is answered RETRY.
 * NULL on OOM. */
td_dapr_app_t *td_dapr_app_new(td_dapr_t *d, const td_dapr_sub_t *subs, size_t count,
                               const char *source, int max_attempts, int max_inflight);
/* From now on deliveries are answered RETRY without running the handler
 * (shutdown: Dapr redelivers to another replica or after the restart). */
void td_dapr_app_stop(td_dapr_app_t *a);
void td_dapr_app_destroy(td_dapr_app_t *a); /* NULL ok */

/* Answers GET /dapr/subscribe and POST /dapr/events/<topic>: 1 when the
 * request was one of them (resp filled), 0 otherwise.  a may be NULL
 * (Kafka mode): returns 0. */
int td_dapr_app_serve(td_dapr_app_t *a, td_http_req_t *req, td_http_resp_t *resp);

#endif
