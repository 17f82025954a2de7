/* Request pipeline: trace context, routing, body limit, JWT auth, query
 * check, rate limit, Idempotency-Key, the handler, metrics and the access
 * log.  The route table is also what /openapi.json describes. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "log.h"

static const char *const Q_LIST[] = {"q",        "status", "priority", "tags", "due_from",
                                     "due_to",   "overdue", "sort",    "page", "page_size", NULL};
static const char *const Q_ACTIVITY[] = {"from", "to", "event_type", "limit", "cursor", NULL};
static const char *const Q_SYNC[] = {"since", "limit", NULL};

static const api_route_t ROUTES[] = {
    {"GET", "/api/tasks", h_tasks_list, 1, "listTasks", "List, search and filter tasks", Q_LIST, NULL, 200},
    {"POST", "/api/tasks", h_tasks_create, 1, "createTask", "Create a task", NULL, "TaskInput", 201},
    {"GET", "/api/tasks/{id}", h_task_get, 1, "getTask", "Get a task", NULL, NULL, 200},
    {"PUT", "/api/tasks/{id}", h_task_put, 1, "replaceTask", "Replace a task", NULL, "TaskInput", 200},
    {"PATCH", "/api/tasks/{id}", h_task_patch, 1, "patchTask", "Change a task (JSON merge patch)", NULL, "TaskPatch", 200},
    {"DELETE", "/api/tasks/{id}", h_task_delete, 1, "deleteTask", "Delete a task", NULL, NULL, 204},
    {"POST", "/api/tasks/{id}/complete", h_task_complete, 1, "completeTask", "Mark a task completed", NULL, NULL, 200},
    {"POST", "/api/tasks/{id}/uncomplete", h_task_uncomplete, 1, "uncompleteTask", "Mark a task pending again", NULL, NULL, 200},
    {"PATCH", "/api/tasks/{id}/toggle", h_task_toggle, 1, "toggleTask", "Toggle completed/pending", NULL, NULL, 200},
    {"GET", "/api/tasks/{id}/reminders", h_reminders_list, 1, "listReminders", "List a task's reminders", NULL, NULL, 200},
    {"POST", "/api/tasks/{id}/reminders", h_reminders_add, 1, "addReminder", "Add a reminder", NULL, "ReminderInput", 201},
    {"DELETE", "/api/tasks/{id}/reminders/{reminder_id}", h_reminder_delete, 1, "deleteReminder", "Remove a reminder", NULL, NULL, 204},
    {"GET", "/api/tags", h_tags_list, 1, "listTags", "List tags with task counts", NULL, NULL, 200},
    {"POST", "/api/tags", h_tags_create, 1, "createTag", "Create a tag", NULL, "TagInput", 201},
    {"DELETE", "/api/tags/{name}", h_tag_delete, 1, "deleteTag", "Delete a tag and remove it from every task", NULL, NULL, 204},
    {"GET", "/api/notification-settings", h_settings_get, 1, "getNotificationSettings", "Where the user's reminders go", NULL, NULL, 200},
    {"PUT", "/api/notification-settings", h_settings_put, 1, "putNotificationSettings", "Set where the user's reminders go", NULL, "NotificationSettingsInput", 200},
    {"GET", "/api/activity", h_activity, 1, "listActivity", "Activity log with a summary", Q_ACTIVITY, NULL, 200},
    {"GET", "/api/sync", h_sync, 1, "sync", "Changes after a sequence number", Q_SYNC, NULL, 200},
    {"GET", "/healthz", h_healthz, 0, "healthz", "Liveness", NULL, NULL, 200},
    {"GET", "/readyz", h_readyz, 0, "readyz", "Readiness (PostgreSQL and Kafka reachable)", NULL, NULL, 200},
    {"GET", "/metrics", h_metrics, 0, "metrics", "Prometheus metrics", NULL, NULL, 200},
    {"GET", "/openapi.json", h_openapi, 0, "openapi", "This description", NULL, NULL, 200},
};

const api_route_t *api_routes(size_t *n) {
    *n = sizeof ROUTES / sizeof ROUTES[0];
    return ROUTES;
}

/* Matches path against tmpl; fills params (pointers into buf). */
static int match(const char *tmpl, const char *path, char *buf, size_t bufsize,
                 const char *params[API_MAX_PATH_PARAMS]) {
    size_t np = 0, used = 0;
    const char *t = tmpl, *p = path;
    while (*t && *p) {
        if (*t != '/' || *p != '/') return 0;
        t++;
        p++;
        size_t tl = strcspn(t, "/"), pl = strcspn(p, "/");
        /* a tag name may contain '/' (%2F arrives decoded): {name} at the
         * end of a template takes the rest of the path */
        if (strncmp(t, "{name}", 6) == 0 && t[tl] == '\0') pl = strlen(p);
        if (*t == '{') {
            if (pl == 0 || np == API_MAX_PATH_PARAMS || used + pl + 1 > bufsize) return 0;
            memcpy(buf + used, p, pl);
            buf[used + pl] = '\0';
            params[np++] = buf + used;
            used += pl + 1;
        } else if (tl != pl || strncmp(t, p, tl) != 0) {
            return 0;
        }
        t += tl;
        p += pl;
    }
    return *t == '\0' && *p == '\0';
}

static void hex(const unsigned char *b, size_t n, char *out) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Continues the caller's W3C trace (new span) or starts one. */
static void trace_init(rq_t *rq) {
    unsigned char span[8], trace[16];
    char span_hex[17];
    RAND_bytes(span, sizeof span);
    hex(span, sizeof span, span_hex);
    const char *tp = td_http_header(rq->http, "traceparent");
    char flags[3] = "01";
    if (tp && te_traceparent_check(tp, NULL, 0) == TE_OK) {
        memcpy(rq->trace_id, tp + 3, 32);
        rq->trace_id[32] = '\0';
        memcpy(flags, tp + 53, 2);
    } else {
        RAND_bytes(trace, sizeof trace);
        hex(trace, sizeof trace, rq->trace_id);
    }
    snprintf(rq->traceparent, sizeof rq->traceparent, "00-%s-%s-%s", rq->trace_id, span_hex, flags);
}

static int authenticate(rq_t *rq, td_http_resp_t *resp) {
    const char *h = td_http_header(rq->http, "Authorization");
    char err[TE_ERRSTR_SIZE] = "missing bearer token";
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tok = h + 7;
        while (*tok == ' ') tok++;
        if (te_jwt_verify(rq->api->jwt, tok, strlen(tok), rq->now, rq->user, sizeof rq->user, NULL,
                          err, sizeof err) == TE_OK)
            return 0;
    } else if (h) {
        snprintf(err, sizeof err, "use the Bearer scheme");
    }
    rq->user[0] = '\0';
    td_http_resp_header(resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    api_problem(rq, resp, 401, "unauthorized", err, NULL);
    return -1;
}

/* Value of a response header set by a handler (copied into buf). */
static const char *resp_header(const td_http_resp_t *resp, const char *name, char *buf, size_t size) {
    size_t n = strlen(name);
    for (const char *l = resp->headers; l && *l;) {
        const char *nl = strchr(l, '\n');
        if (!nl) break;
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            size_t vl = (size_t)(nl - (l + n + 2));
            if (vl >= size) vl = size - 1;
            memcpy(buf, l + n + 2, vl);
            buf[vl] = '\0';
            return buf;
        }
        l = nl + 1;
    }
    return NULL;
}

static int idem_key_ok(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n > 255) return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e) return 0;
    return 1;
}

static void fingerprint(rq_t *rq, char out[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    size_t blen;
    const char *body = td_http_body(rq->http, &blen);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, td_http_method(rq->http), strlen(td_http_method(rq->http)) + 1);
    EVP_DigestUpdate(ctx, td_http_path(rq->http), strlen(td_http_path(rq->http)) + 1);
    EVP_DigestUpdate(ctx, body, blen);
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    hex(md, 32, out);
}

/* The idempotency records live in Redis, or in Dapr mode in the state
 * store (docs/dapr.md). */
static td_idem_rc_t idem_begin(api_t *api, const char *user, const char *key, const char *fp, td_idem_resp_t *out) {
    return api->dapr ? td_dapr_idem_begin(api->dapr, user, key, fp, api->idem_ttl, out)
                     : td_redis_idem_begin(api->redis, user, key, fp, api->idem_ttl, out);
}

static void idem_finish(api_t *api, const char *user, const char *key, const char *fp, const td_idem_resp_t *r) {
    if (api->dapr) td_dapr_idem_finish(api->dapr, user, key, fp, api->idem_ttl, r);
    else td_redis_idem_finish(api->redis, user, key, fp, api->idem_ttl, r);
}

static void idem_abort(api_t *api, const char *user, const char *key) {
    if (api->dapr) td_dapr_idem_abort(api->dapr, user, key);
    else td_redis_idem_abort(api->redis, user, key);
}

/* Runs the handler under the Idempotency-Key protocol (docs/api.md). */
static void run_idempotent(rq_t *rq, td_http_resp_t *resp, const api_route_t *r, const char *key) {
    char fp[65];
    fingerprint(rq, fp);
    td_idem_resp_t stored = {0};
    api_t *api = rq->api;
    td_idem_rc_t rc = idem_begin(api, rq->user, key, fp, &stored);
    switch (rc) {
    case TD_IDEM_REPLAY:
        td_http_resp_set(resp, stored.status, stored.content_type && *stored.content_type
                                                  ? (strstr(stored.content_type, "problem") ? "application/problem+json" : "application/json")
                                                  : NULL,
                         stored.body_len ? stored.body : NULL, stored.body_len);
        if (stored.location && *stored.location) td_http_resp_header(resp, "Location", stored.location);
        if (stored.etag && *stored.etag) td_http_resp_header(resp, "ETag", stored.etag);
        td_http_resp_header(resp, "Idempotent-Replayed", "true");
        td_idem_resp_clear(&stored);
        return;
    case TD_IDEM_MISMATCH:
        api_problem(rq, resp, 422, "idempotency-key-reused",
                    "this Idempotency-Key was used for a different request", NULL);
        return;
    case TD_IDEM_IN_PROGRESS:
        td_http_resp_header(resp, "Retry-After", "1");
        api_problem(rq, resp, 409, "conflict", "a request with this Idempotency-Key is in progress", NULL);
        return;
    case TD_IDEM_UNAVAILABLE:
        td_logf(TD_LOG_WARN, rq->trace_id, "%s unavailable: Idempotency-Key not enforced",
                api->dapr ? "state store" : "redis");
        r->fn(rq, resp);
        return;
    case TD_IDEM_NEW:
        break;
    }
    r->fn(rq, resp);
    if (resp->status >= 200 && resp->status < 300) {
        char loc[256], etag[32];
        td_idem_resp_t out = {.status = resp->status,
                              .location = (char *)resp_header(resp, "Location", loc, sizeof loc),
                              .etag = (char *)resp_header(resp, "ETag", etag, sizeof etag),
                              .content_type = (char *)resp->content_type,
                              .body = resp->body,
                              .body_len = resp->body_len};
        idem_finish(api, rq->user, key, fp, &out);
    } else {
        idem_abort(api, rq->user, key);
    }
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void api_dispatch(td_http_req_t *req, td_http_resp_t *resp, void *arg) {
    api_t *api = arg;
    double t0 = mono();
    /* milliseconds: what the API writes back */
    rq_t rq = {.api = api, .http = req, .route = "unmatched", .now = te_time_now() / 1000 * 1000};
    trace_init(&rq);
    const char *method = td_http_method(req), *path = td_http_path(req);
    td_metric_inc(api->m_in_flight, NULL, 1);

    if (api->dapr && strcmp(path, "/dapr/subscribe") == 0) { /* Dapr asks: nothing */
        td_http_resp_set(resp, 200, "application/json", "[]", 2);
        td_metric_inc(api->m_in_flight, NULL, -1);
        return;
    }
    const api_route_t *route = NULL;
    int path_matched = 0;
    char allow[128] = "";
    char pbuf[512];
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        const char *params[API_MAX_PATH_PARAMS] = {NULL, NULL};
        if (!match(ROUTES[i].path, path, pbuf, sizeof pbuf, params)) continue;
        path_matched = 1;
        size_t al = strlen(allow);
        snprintf(allow + al, sizeof allow - al, "%s%s", al ? ", " : "", ROUTES[i].method);
        if (strcmp(ROUTES[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(ROUTES[i].method, "GET") == 0 && !route)) {
            route = &ROUTES[i];
            memcpy(rq.path_params, params, sizeof params);
            rq.route = route->path;
            /* keep scanning to complete Allow only when needed */
            break;
        }
    }
    if (!route) {
        if (path_matched) {
            td_http_resp_header(resp, "Allow", allow);
            api_problem(&rq, resp, 405, "method-not-allowed", NULL, NULL);
        } else {
            api_problem(&rq, resp, 404, "not-found", "no such route", NULL);
        }
    } else if (td_http_body_too_large(req)) {
        char d[96];
        snprintf(d, sizeof d, "the body is larger than %zu bytes", api->max_body);
        api_problem(&rq, resp, 413, "payload-too-large", d, NULL);
    } else if (route->auth && authenticate(&rq, resp) != 0) {
        /* 401 answered */
    } else if (api_check_params(&rq, resp, route->query) != 0) {
        /* 400 answered */
    } else {
        int limited = 0;
        if (route->auth && api->redis && api->rate > 0) {
            int retry = 1;
            if (td_redis_rate_take(api->redis, rq.user, api->rate, api->burst, &retry) == TD_REDIS_LIMITED) {
                char ra[16];
                snprintf(ra, sizeof ra, "%d", retry > 0 ? retry : 1);
                td_http_resp_header(resp, "Retry-After", ra);
                api_problem(&rq, resp, 429, "rate-limited", "slow down: too many requests", NULL);
                td_metric_inc(api->m_rate_limited, NULL, 1);
                limited = 1;
            }
        }
        const char *key = td_http_header(req, "Idempotency-Key");
        int write = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
        if (limited) {
            /* answered */
        } else if (key && write && route->auth) {
            if (!idem_key_ok(key)) api_invalid(&rq, resp, "Idempotency-Key", "must be 1 to 255 printable ASCII characters");
            else if (api->redis || api->dapr) run_idempotent(&rq, resp, route, key);
            else route->fn(&rq, resp);
        } else {
            route->fn(&rq, resp);
        }
    }
    td_http_resp_header(resp, "traceparent", rq.traceparent);
    td_metric_inc(api->m_in_flight, NULL, -1);
    double dt = mono() - t0;
    char status[8];
    snprintf(status, sizeof status, "%d", resp->status);
    const char *labels[3] = {rq.route, method, status};
    td_metric_observe(api->m_latency, labels, dt);
    if (td_log_enabled(TD_LOG_INFO) && strcmp(rq.route, "/metrics") != 0 &&
        strcmp(rq.route, "/healthz") != 0 && strcmp(rq.route, "/readyz") != 0) {
        json_object *f = json_object_new_object();
        json_object_object_add(f, "method", json_object_new_string(method));
        json_object_object_add(f, "route", json_object_new_string(rq.route));
        json_object_object_add(f, "status", json_object_new_int(resp->status));
        json_object_object_add(f, "duration_ms", json_object_new_double(dt * 1000.0));
        if (rq.user[0]) json_object_object_add(f, "user", json_object_new_string(rq.user));
        td_log(TD_LOG_INFO, rq.trace_id, "request", f);
    }
}
