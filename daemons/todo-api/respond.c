/* JSON and RFC 7807 problem responses, body and query checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include "api.h"
#include "log.h"
#include "task_store.h"

static const struct {
    const char *slug;
    const char *title;
} problem_titles[] = {
    {"malformed-json", "Request body is not a JSON object"},
    {"validation", "Request is not valid"},
    {"unauthorized", "Authentication required"},
    {"not-found", "Not found"},
    {"method-not-allowed", "Method not allowed"},
    {"conflict", "Conflict"},
    {"gone", "Sync position too old"},
    {"precondition-failed", "Precondition failed"},
    {"payload-too-large", "Request body too large"},
    {"unsupported-media-type", "Unsupported media type"},
    {"idempotency-key-reused", "Idempotency-Key reused with a different request"},
    {"rate-limited", "Too many requests"},
    {"internal", "Internal server error"},
    {"unavailable", "Service unavailable"},
};

void api_json(td_http_resp_t *resp, int status, json_object *body) {
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    td_http_resp_set(resp, status, "application/json", s, len);
    json_object_put(body);
}

void api_problem(rq_t *rq, td_http_resp_t *resp, int status, const char *slug, const char *detail,
                 const te_problems_t *invalid) {
    const char *title = "Error";
    for (size_t i = 0; i < sizeof problem_titles / sizeof problem_titles[0]; i++)
        if (strcmp(problem_titles[i].slug, slug) == 0) title = problem_titles[i].title;
    char type[96];
    snprintf(type, sizeof type, "urn:todoevents:problem:%s", slug);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "title", json_object_new_string(title));
    json_object_object_add(o, "status", json_object_new_int(status));
    if (!detail && invalid && te_problems_count(invalid) > 0) {
        static __thread char buf[512];
        snprintf(buf, sizeof buf, "%s: %s", te_problems_field(invalid, 0),
                 te_problems_reason(invalid, 0));
        detail = buf;
    }
    if (detail) json_object_object_add(o, "detail", json_object_new_string(detail));
    json_object_object_add(o, "instance", json_object_new_string(td_http_path(rq->http)));
    if (rq->trace_id[0])
        json_object_object_add(o, "trace_id", json_object_new_string(rq->trace_id));
    if (invalid && te_problems_count(invalid) > 0) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < te_problems_count(invalid); i++) {
            json_object *p = json_object_new_object();
            json_object_object_add(p, "name", json_object_new_string(te_problems_field(invalid, i)));
            json_object_object_add(p, "reason",
                                   json_object_new_string(te_problems_reason(invalid, i)));
            json_object_array_add(arr, p);
        }
        json_object_object_add(o, "invalid_params", arr);
    }
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    td_http_resp_set(resp, status, "application/problem+json", s, len);
    json_object_put(o);
}

void api_invalid(rq_t *rq, td_http_resp_t *resp, const char *name, const char *reason) {
    te_problems_t *p = te_problems_new();
    if (p) te_problems_add(p, name, "%s", reason);
    api_problem(rq, resp, 400, "validation", NULL, p);
    te_problems_destroy(p);
}

void api_internal(rq_t *rq, td_http_resp_t *resp, const char *what, const char *errstr) {
    if (!td_pg_up(rq->api->pool)) { /* the connection broke under us */
        api_unavailable(rq, resp, errstr);
        return;
    }
    td_logf(TD_LOG_ERROR, rq->trace_id, "%s: %s", what, errstr);
    api_problem(rq, resp, 500, "internal", NULL, NULL);
}

void api_unavailable(rq_t *rq, td_http_resp_t *resp, const char *errstr) {
    td_logf(TD_LOG_ERROR, rq->trace_id, "%s", errstr);
    td_http_resp_header(resp, "Retry-After", "1");
    api_problem(rq, resp, 503, "unavailable", "the database is unreachable", NULL);
}

PGconn *api_conn(rq_t *rq, td_http_resp_t *resp) {
    char err[256];
    PGconn *c = td_pg_acquire(rq->api->pool, err, sizeof err);
    if (!c) api_unavailable(rq, resp, err);
    return c;
}

static int media_type_is(const char *ct, const char *want) {
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0) return 0;
    const char *rest = ct + n;
    while (*rest == ' ' || *rest == '\t') rest++;
    return *rest == '\0' || *rest == ';';
}

/* json-c keeps strings with their length, but C consumers stop at a NUL:
 * "\u0000" anywhere would silently truncate a title.  Returns the path of
 * the first string (or member name) containing one. */
static int find_nul(json_object *o, char *path, size_t size) {
    size_t len = strlen(path);
    switch (json_object_get_type(o)) {
    case json_type_string:
        return strlen(json_object_get_string(o)) != (size_t)json_object_get_string_len(o);
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            snprintf(path + len, size - len, "[%zu]", i);
            if (find_nul(json_object_array_get_idx(o, i), path, size)) return 1;
        }
        break;
    case json_type_object: {
        struct lh_entry *e;
        for (e = json_object_get_object(o)->head; e; e = e->next) {
            snprintf(path + len, size - len, "%s%s", len ? "." : "", (const char *)e->k);
            if (find_nul((json_object *)e->v, path, size)) return 1;
        }
        break;
    }
    default:
        break;
    }
    path[len] = '\0';
    return 0;
}

json_object *api_body_object(rq_t *rq, td_http_resp_t *resp, int merge_patch_ok) {
    const char *ct = td_http_header(rq->http, "Content-Type");
    if (!ct || !(media_type_is(ct, "application/json") ||
                 (merge_patch_ok && media_type_is(ct, "application/merge-patch+json")))) {
        api_problem(rq, resp, 415, "unsupported-media-type",
                    merge_patch_ok ? "send application/json or application/merge-patch+json"
                                   : "send application/json",
                    NULL);
        return NULL;
    }
    size_t len;
    const char *body = td_http_body(rq->http, &len);
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        api_internal(rq, resp, "body", "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int trailing = 0;
    for (size_t i = used; o && i < len; i++)
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n') trailing = 1;
    if (!o || jerr != json_tokener_success || trailing || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        char detail[200];
        if (len == 0)
            snprintf(detail, sizeof detail, "the request has no body");
        else if (o == NULL || jerr != json_tokener_success)
            snprintf(detail, sizeof detail, "invalid JSON: %s", json_tokener_error_desc(jerr));
        else if (trailing)
            snprintf(detail, sizeof detail, "invalid JSON: data after the value");
        else
            snprintf(detail, sizeof detail, "the body must be a JSON object");
        api_problem(rq, resp, 400, "malformed-json", detail, NULL);
        return NULL;
    }
    /* a member name with a NUL also hides from json-c's lookups */
    char path[256] = "";
    if (memchr(body, 0, len) != NULL || find_nul(o, path, sizeof path)) {
        json_object_put(o);
        api_invalid(rq, resp, path[0] ? path : "body", "must not contain U+0000");
        return NULL;
    }
    return o;
}

int api_parse_uint(const char *s, long long min, long long max, long long *out) {
    if (!s || !*s) return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno || v < min || v > max) return -1;
    *out = v;
    return 0;
}

void api_sql_and(char *where, size_t size, const char *cond, int n) {
    size_t len = strlen(where);
    len += (size_t)snprintf(where + len, size - len, " AND ");
    for (const char *p = cond; *p && len + 8 < size; p++) {
        if (*p == '?') len += (size_t)snprintf(where + len, size - len, "$%d", n);
        else where[len++] = *p;
    }
    where[len] = '\0';
}

int api_check_params(rq_t *rq, td_http_resp_t *resp, const char *const *allowed) {
    for (size_t i = 0; i < td_http_param_count(rq->http); i++) {
        const td_http_param_t *p = td_http_param_at(rq->http, i);
        int ok = 0;
        for (size_t j = 0; allowed && allowed[j]; j++)
            if (strcmp(allowed[j], p->name) == 0) ok = 1;
        if (!ok) {
            api_invalid(rq, resp, p->name, "unknown query parameter");
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(td_http_param_at(rq->http, j)->name, p->name) == 0) {
                api_invalid(rq, resp, p->name, "given more than once");
                return -1;
            }
    }
    return 0;
}

