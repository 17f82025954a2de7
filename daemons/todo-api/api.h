/* todo-api internals: the shared context, the per-request context, and the
 * modules' entry points.  docs/api.md is the external contract. */
#ifndef TODO_API_H
#define TODO_API_H

#include <json-c/json.h>
#include <stddef.h>
#include <todoevents/todoevents.h>

#include "http.h"
#include "metrics.h"
#include "pg.h"
#include "dapr.h"
#include "redis.h"

#include "outbox_relay.h"

/* Process-wide state: created at start, read-only while serving (the
 * objects it points to are thread-safe). */
typedef struct api_s {
    td_pg_pool_t *pool;
    td_redis_t *redis;              /* NULL without TE_REDIS_URL */
    td_dapr_t *dapr;                /* Dapr mode (docs/dapr.md), else NULL */
    te_jwt_verifier_t *jwt;
    te_conf_t *kafka_conf;          /* librdkafka settings (the relay's producer) */
    relay_t *relay;                 /* NULL with TE_OUTBOX_RELAY=0 */
    size_t max_body;
    double rate, burst;             /* rate 0 = no limit */
    int idem_ttl;
    td_metric_t *m_latency, *m_in_flight, *m_rate_limited;
} api_t;

#define API_MAX_PATH_PARAMS 2

/* One request, on one worker thread. */
typedef struct rq_s {
    api_t *api;
    td_http_req_t *http;
    const char *route;              /* template, e.g. "/api/tasks/{id}" */
    const char *path_params[API_MAX_PATH_PARAMS];
    char user[129];                 /* JWT sub; "" on public routes */
    char trace_id[33];
    char traceparent[56];           /* this request's span, for events */
    te_time_t now;
} rq_t;

typedef void (*api_handler_t)(rq_t *rq, td_http_resp_t *resp);

/* --- respond.c: JSON and RFC 7807 responses ----------------------------- */
/* Takes ownership of body (json_object_put'ed). */
void api_json(td_http_resp_t *resp, int status, json_object *body);
/* problem+json; invalid may be NULL (no invalid_params).  detail may be NULL. */
void api_problem(rq_t *rq, td_http_resp_t *resp, int status, const char *slug, const char *detail,
                 const te_problems_t *invalid);
/* One invalid parameter (validation, 400). */
void api_invalid(rq_t *rq, td_http_resp_t *resp, const char *name, const char *reason);
void api_internal(rq_t *rq, td_http_resp_t *resp, const char *what, const char *errstr);
/* 503 when PostgreSQL is unreachable. */
void api_unavailable(rq_t *rq, td_http_resp_t *resp, const char *errstr);
/* Parses the body as a JSON object (415/400 problems on failure; NULL). */
json_object *api_body_object(rq_t *rq, td_http_resp_t *resp, int merge_patch_ok);
/* Checks the query parameters against the route's allowed list (400 on an
 * unknown one).  0 ok. */
int api_check_params(rq_t *rq, td_http_resp_t *resp, const char *const *allowed);
/* A query parameter: digits only, in [min, max].  0 or -1. */
int api_parse_uint(const char *s, long long min, long long max, long long *out);
/* Appends " AND " + cond to the SQL text where, every '?' in cond written
 * as the bind parameter $n (cond is a fixed fragment, never input). */
void api_sql_and(char *where, size_t size, const char *cond, int n);
/* Acquire a pooled connection or answer 503 (NULL). */
PGconn *api_conn(rq_t *rq, td_http_resp_t *resp);

/* --- router.c ------------------------------------------------------------ */
void api_dispatch(td_http_req_t *req, td_http_resp_t *resp, void *arg);
/* The route table, for /openapi.json. */
typedef struct api_route_s {
    const char *method;
    const char *path;
    api_handler_t fn;
    int auth;                       /* needs a JWT */
    const char *op_id;
    const char *summary;
    const char *const *query;       /* allowed query parameters (NULL-terminated) */
    const char *body;               /* request body schema name or NULL */
    int ok_status;
} api_route_t;
const api_route_t *api_routes(size_t *n);

/* --- handlers ------------------------------------------------------------ */
void h_tasks_list(rq_t *rq, td_http_resp_t *resp);
void h_tasks_create(rq_t *rq, td_http_resp_t *resp);
void h_task_get(rq_t *rq, td_http_resp_t *resp);
void h_task_put(rq_t *rq, td_http_resp_t *resp);
void h_task_patch(rq_t *rq, td_http_resp_t *resp);
void h_task_delete(rq_t *rq, td_http_resp_t *resp);
void h_task_complete(rq_t *rq, td_http_resp_t *resp);
void h_task_uncomplete(rq_t *rq, td_http_resp_t *resp);
void h_task_toggle(rq_t *rq, td_http_resp_t *resp);
void h_reminders_list(rq_t *rq, td_http_resp_t *resp);
void h_reminders_add(rq_t *rq, td_http_resp_t *resp);
void h_reminder_delete(rq_t *rq, td_http_resp_t *resp);
void h_tags_list(rq_t *rq, td_http_resp_t *resp);
void h_tags_create(rq_t *rq, td_http_resp_t *resp);
void h_tag_delete(rq_t *rq, td_http_resp_t *resp);
void h_settings_get(rq_t *rq, td_http_resp_t *resp);
void h_settings_put(rq_t *rq, td_http_resp_t *resp);
void h_activity(rq_t *rq, td_http_resp_t *resp);
void h_sync(rq_t *rq, td_http_resp_t *resp);
void h_healthz(rq_t *rq, td_http_resp_t *resp);
void h_readyz(rq_t *rq, td_http_resp_t *resp);
void h_metrics(rq_t *rq, td_http_resp_t *resp);
void h_openapi(rq_t *rq, td_http_resp_t *resp);



#endif
