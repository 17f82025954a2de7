/* Operations routes: /healthz, /readyz, /metrics, /openapi.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

void h_healthz(rq_t *rq, td_http_resp_t *resp) {
    (void)rq;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    api_json(resp, 200, o);
}

void h_readyz(rq_t *rq, td_http_resp_t *resp) {
    api_t *api = rq->api;
    char err[256];
    int pg_ok = 0;
    PGconn *c = td_pg_acquire(api->pool, err, sizeof err);
    if (c) {
        pg_ok = td_pg_exec(c, "SELECT 1", err, sizeof err) == 0;
        td_pg_release(api->pool, c);
    }
    int kafka_ok = api->relay ? relay_kafka_ok(api->relay) : 1;
    json_object *checks = json_object_new_object();
    json_object_object_add(checks, "postgres", json_object_new_string(pg_ok ? "ok" : "unavailable"));
    json_object_object_add(checks, "kafka",
                           json_object_new_string(!api->relay ? "not used" : kafka_ok ? "ok" : "unavailable"));
    json_object_object_add(checks, "redis",
                           json_object_new_string(!api->redis ? "not configured"
                                                  : td_redis_up(api->redis) ? "ok" : "unavailable"));
    json_object *o = json_object_new_object();
    int ready = pg_ok && kafka_ok;
    json_object_object_add(o, "status", json_object_new_string(ready ? "ready" : "not ready"));
    json_object_object_add(o, "checks", checks);
    api_json(resp, ready ? 200 : 503, o);
}

void h_metrics(rq_t *rq, td_http_resp_t *resp) {
    td_metric_set(td_gauge("te_pg_up", "1 when PostgreSQL answered the last use", NULL), NULL,
                  td_pg_up(rq->api->pool));
    size_t len = 0;
    char *text = td_metrics_render(&len);
    if (!text) {
        td_http_resp_set(resp, 500, NULL, NULL, 0);
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = text;
    resp->body_len = len;
}

/* --- OpenAPI 3.1, generated from the route table ------------------------- */

static json_object *jstr(const char *s) { return json_object_new_string(s); }

static json_object *ref(const char *name) {
    char buf[96];
    snprintf(buf, sizeof buf, "#/components/schemas/%s", name);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "$ref", jstr(buf));
    return o;
}

static json_object *schema_obj(const char *type) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", jstr(type));
    return o;
}

static json_object *content(const char *media, json_object *schema) {
    json_object *c = json_object_new_object(), *m = json_object_new_object();
    json_object_object_add(m, "schema", schema);
    json_object_object_add(c, media, m);
    return c;
}

static json_object *response(const char *desc, const char *media, json_object *schema) {
    json_object *r = json_object_new_object();
    json_object_object_add(r, "description", jstr(desc));
    if (schema) json_object_object_add(r, "content", content(media, schema));
    return r;
}

static json_object *param(const char *name, const char *in, int required) {
    json_object *p = json_object_new_object();
    json_object_object_add(p, "name", jstr(name));
    json_object_object_add(p, "in", jstr(in));
    json_object_object_add(p, "required", json_object_new_boolean(required));
    json_object_object_add(p, "schema", schema_obj(strcmp(name, "page") == 0 || strcmp(name, "page_size") == 0 ||
                                                           strcmp(name, "since") == 0 || strcmp(name, "limit") == 0
                                                       ? "integer" : "string"));
    return p;
}

static json_object *components(void) {
    json_object *s = json_object_new_object();
    json_object *problem = schema_obj("object");
    json_object *pp = json_object_new_object();
    static const char *const PF[] = {"type", "title", "detail", "instance", "trace_id", NULL};
    for (size_t i = 0; PF[i]; i++) json_object_object_add(pp, PF[i], schema_obj("string"));
    json_object_object_add(pp, "status", schema_obj("integer"));
    json_object *inv = schema_obj("array");
    json_object *item = schema_obj("object"), *ip = json_object_new_object();
    json_object_object_add(ip, "name", schema_obj("string"));
    json_object_object_add(ip, "reason", schema_obj("string"));
    json_object_object_add(item, "properties", ip);
    json_object_object_add(inv, "items", item);
    json_object_object_add(pp, "invalid_params", inv);
    json_object_object_add(problem, "properties", pp);
    json_object_object_add(s, "Problem", problem);

    /* Task and its inputs: documented by the catalogue's task state schema
     * (share/todoevents/schemas); here the top-level shape. */
    json_object *task = schema_obj("object"), *tp = json_object_new_object();
    static const char *const TS[] = {"id", "user_id", "title", "description", "priority", "status",
                                     "due_date", "timezone", "created_at", "updated_at", "completed_at", NULL};
    for (size_t i = 0; TS[i]; i++) json_object_object_add(tp, TS[i], schema_obj("string"));
    json_object_object_add(tp, "tags", schema_obj("array"));
    json_object_object_add(tp, "reminders", schema_obj("array"));
    json_object_object_add(tp, "recurrence", schema_obj("object"));
    json_object_object_add(tp, "overdue", schema_obj("boolean"));
    json_object_object_add(tp, "version", schema_obj("integer"));
    json_object_object_add(task, "properties", tp);
    json_object_object_add(s, "Task", task);
    json_object *in = schema_obj("object"), *req = json_object_new_array();
    json_object_array_add(req, jstr("title"));
    json_object_object_add(in, "required", req);
    json_object_object_add(s, "TaskInput", in);
    json_object_object_add(s, "TaskPatch", schema_obj("object"));
    json_object_object_add(s, "ReminderInput", schema_obj("object"));
    json_object_object_add(s, "NotificationSettingsInput", schema_obj("object"));
    json_object *tag = schema_obj("object"), *treq = json_object_new_array();
    json_object_array_add(treq, jstr("name"));
    json_object_object_add(tag, "required", treq);
    json_object_object_add(s, "TagInput", tag);
    json_object *comp = json_object_new_object();
    json_object_object_add(comp, "schemas", s);
    json_object *sec = json_object_new_object(), *bearer = json_object_new_object();
    json_object_object_add(bearer, "type", jstr("http"));
    json_object_object_add(bearer, "scheme", jstr("bearer"));
    json_object_object_add(bearer, "bearerFormat", jstr("JWT"));
    json_object_object_add(sec, "bearerAuth", bearer);
    json_object_object_add(comp, "securitySchemes", sec);
    return comp;
}

static json_object *operation(const api_route_t *r) {
    json_object *op = json_object_new_object();
    json_object_object_add(op, "operationId", jstr(r->op_id));
    json_object_object_add(op, "summary", jstr(r->summary));
    json_object *params = json_object_new_array();
    for (const char *p = strchr(r->path, '{'); p; p = strchr(p + 1, '{')) {
        char name[32];
        size_t n = strcspn(p + 1, "}");
        if (n >= sizeof name) n = sizeof name - 1;
        memcpy(name, p + 1, n);
        name[n] = '\0';
        json_object_array_add(params, param(name, "path", 1));
    }
    for (size_t i = 0; r->query && r->query[i]; i++)
        json_object_array_add(params, param(r->query[i], "query", 0));
    if (r->auth) {
        json_object_array_add(params, param("Idempotency-Key", "header", 0));
        json_object *sec = json_object_new_array(), *req = json_object_new_object();
        json_object_object_add(req, "bearerAuth", json_object_new_array());
        json_object_array_add(sec, req);
        json_object_object_add(op, "security", sec);
    }
    json_object_object_add(op, "parameters", params);
    if (r->body) {
        json_object *rb = json_object_new_object();
        json_object_object_add(rb, "required", json_object_new_boolean(1));
        json_object_object_add(rb, "content", content("application/json", ref(r->body)));
        json_object_object_add(op, "requestBody", rb);
    }
    json_object *resps = json_object_new_object();
    char code[8];
    snprintf(code, sizeof code, "%d", r->ok_status);
    int is_task = strstr(r->op_id, "Task") && strcmp(r->op_id, "listTasks") != 0 && r->ok_status != 204;
    json_object_object_add(resps, code,
                           r->ok_status == 204 ? response("No content", NULL, NULL)
                           : strcmp(r->path, "/metrics") == 0
                               ? response("Prometheus text format", "text/plain", schema_obj("string"))
                               : response("Success", "application/json",
                                          is_task ? ref("Task") : schema_obj("object")));
    json_object_object_add(resps, "default",
                           response("Problem (RFC 7807)", "application/problem+json", ref("Problem")));
    json_object_object_add(op, "responses", resps);
    return op;
}

void h_openapi(rq_t *rq, td_http_resp_t *resp) {
    (void)rq;
    size_t n;
    const api_route_t *routes = api_routes(&n);
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "openapi", jstr("3.1.0"));
    json_object *info = json_object_new_object();
    json_object_object_add(info, "title", jstr("todo-api"));
    json_object_object_add(info, "version", jstr(te_version_str()));
    json_object_object_add(info, "description", jstr("Task API of libtodoevents (docs/api.md)."));
    json_object_object_add(doc, "info", info);
    json_object *paths = json_object_new_object();
    for (size_t i = 0; i < n; i++) {
        json_object *item = NULL;
        if (!json_object_object_get_ex(paths, routes[i].path, &item)) {
            item = json_object_new_object();
            json_object_object_add(paths, routes[i].path, item);
        }
        char m[8];
        size_t k = 0;
        for (; routes[i].method[k] && k < sizeof m - 1; k++) m[k] = (char)(routes[i].method[k] | 0x20);
        m[k] = '\0';
        json_object_object_add(item, m, operation(&routes[i]));
    }
    json_object_object_add(doc, "paths", paths);
    json_object_object_add(doc, "components", components());
    api_json(resp, 200, doc);
}
