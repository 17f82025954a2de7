/* GET /api/tasks: search, filters, sorting, pagination with a total.
 * The WHERE clause is built from fixed fragments; every value is a
 * parameter. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "task_store.h"

#define MAX_PARAMS 12

typedef struct qb_s {
    char where[2048];
    const char *vals[MAX_PARAMS];
    char *owned[MAX_PARAMS];
    int n;
} qb_t;

/* Adds a value; returns its $ number. */
static int qb_val(qb_t *q, const char *v, int owned) {
    q->vals[q->n] = v;
    q->owned[q->n] = owned ? (char *)v : NULL;
    return ++q->n;
}

static void qb_and(qb_t *q, const char *cond, int a) { api_sql_and(q->where, sizeof q->where, cond, a); }

static void qb_free(qb_t *q) {
    for (int i = 0; i < q->n; i++) free(q->owned[i]);
}

/* "%" + q with LIKE wildcards escaped + "%". */
static char *like_pattern(const char *q) {
    size_t n = strlen(q);
    char *p = malloc(2 * n + 3), *w = p;
    if (!p) return NULL;
    *w++ = '%';
    for (const char *s = q; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\') *w++ = '\\';
        *w++ = *s;
    }
    *w++ = '%';
    *w = '\0';
    return p;
}

/* Comma list -> a PostgreSQL array literal ({"a","b"}, every element
 * quoted and escaped: the value is a bind parameter, the planner sees the
 * elements); each item checked and normalised by ok(). */
static char *csv_array(const char *csv, int (*ok)(const char *item, char *norm, size_t size),
                       const char **bad) {
    size_t cap = 2 * strlen(csv) + 8, len = 0;
    char *out = malloc(cap), *copy = strdup(csv), *save = NULL;
    char norm[256];
    *bad = NULL;
    if (!out || !copy) {
        *bad = "out of memory";
    } else {
        out[len++] = '{';
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            if (!*tok || ok(tok, norm, sizeof norm) != 0) {
                *bad = "contains an invalid value";
                break;
            }
            size_t need = len + 2 * strlen(norm) + 4;
            if (need >= cap) {
                char *n2 = realloc(out, cap = 2 * need);
                if (!n2) {
                    *bad = "out of memory";
                    break;
                }
                out = n2;
            }
            if (len > 1) out[len++] = ',';
            out[len++] = '"';
            for (const char *c = norm; *c; c++) {
                if (*c == '"' || *c == '\\') out[len++] = '\\';
                out[len++] = *c;
            }
            out[len++] = '"';
        }
        if (!*bad && len == 1) *bad = "must not be empty";
        out[len++] = '}';
        out[len] = '\0';
    }
    free(copy);
    if (*bad) {
        free(out);
        return NULL;
    }
    return out;
}

static int priority_item(const char *s, char *norm, size_t size) {
    te_priority_t p;
    if (te_priority_parse(s, &p) != TE_OK) return -1;
    snprintf(norm, size, "%d", (int)p);
    return 0;
}

static int tag_item(const char *s, char *norm, size_t size) {
    if (strlen(s) >= size) return -1;
    size_t i = 0;
    for (; s[i]; i++) norm[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    norm[i] = '\0';
    return 0;
}

static const struct {
    const char *name;
    const char *expr;
} SORTS[] = {
    {"due_date", "t.due_at"},
    {"priority", "t.priority"},
    {"created_at", "t.created_at"},
    {"created", "t.created_at"},
    {"title", "lower(t.title)"},
};

void h_tasks_list(rq_t *rq, td_http_resp_t *resp) {
    td_http_req_t *h = rq->http;
    qb_t q = {.n = 0};
    char now_s[TE_TIME_STRLEN];
    te_time_format_utc(rq->now, now_s, sizeof now_s);
    snprintf(q.where, sizeof q.where, "t.user_id = $%d", qb_val(&q, rq->user, 0));
    const char *v, *bad = NULL;
    long long page = 1, page_size = 20;

    if ((v = td_http_param(h, "page")) && api_parse_uint(v, 1, 1000000, &page) != 0) {
        api_invalid(rq, resp, "page", "must be an integer >= 1");
        return;
    }
    if ((v = td_http_param(h, "page_size")) && api_parse_uint(v, 1, 100, &page_size) != 0) {
        api_invalid(rq, resp, "page_size", "must be an integer from 1 to 100");
        return;
    }
    if ((v = td_http_param(h, "status"))) {
        if (strcmp(v, "pending") != 0 && strcmp(v, "completed") != 0) {
            api_invalid(rq, resp, "status", "must be pending or completed");
            return;
        }
        qb_and(&q, "t.status = ?", qb_val(&q, v, 0));
    }
    if ((v = td_http_param(h, "priority"))) {
        char *j = csv_array(v, priority_item, &bad);
        if (!j) {
            api_invalid(rq, resp, "priority", "must be a comma-separated list of low, medium, high, urgent");
            qb_free(&q);
            return;
        }
        qb_and(&q, "t.priority = ANY(?::smallint[])", qb_val(&q, j, 1));
    }
    if ((v = td_http_param(h, "tags"))) {
        char *j = csv_array(v, tag_item, &bad);
        if (!j) {
            api_invalid(rq, resp, "tags", "must be a comma-separated list of tags");
            qb_free(&q);
            return;
        }
        qb_and(&q, "t.tags_lower @> ?::text[]", qb_val(&q, j, 1));
    }
    static const char *const DUE[2] = {"due_from", "due_to"};
    for (int i = 0; i < 2; i++) {
        te_time_t t;
        if (!(v = td_http_param(h, DUE[i]))) continue;
        if (te_time_parse(v, &t, NULL, NULL, 0) != TE_OK) {
            api_invalid(rq, resp, DUE[i], "must be an RFC 3339 date-time");
            qb_free(&q);
            return;
        }
        qb_and(&q, i == 0 ? "t.due_at >= ?::timestamptz" : "t.due_at < ?::timestamptz",
               qb_val(&q, v, 0));
    }
    if ((v = td_http_param(h, "overdue"))) {
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
            api_invalid(rq, resp, "overdue", "must be true or false");
            qb_free(&q);
            return;
        }
        qb_and(&q,
               strcmp(v, "true") == 0
                   ? "(t.status = 'pending' AND t.due_at < ?::timestamptz)"
                   : "NOT (t.status = 'pending' AND t.due_at IS NOT NULL AND t.due_at < ?::timestamptz)",
               qb_val(&q, now_s, 0));
    }
    if ((v = td_http_param(h, "q"))) {
        int ctl = 0;
        for (const unsigned char *c = (const unsigned char *)v; *c; c++) ctl |= *c < 0x20 || *c == 0x7f;
        if (!*v || strlen(v) > 200 || ctl) {
            api_invalid(rq, resp, "q", "must be 1 to 200 characters without control characters");
            qb_free(&q);
            return;
        }
        /* title, description and tags in one trigram-indexed column */
        qb_and(&q, "t.search ILIKE ?", qb_val(&q, like_pattern(v), 1));
    }
    const char *sort = td_http_param(h, "sort");
    int desc = 0;
    const char *sort_expr = "t.due_at";
    if (sort) {
        if (*sort == '-') {
            desc = 1;
            sort++;
        }
        sort_expr = NULL;
        for (size_t i = 0; i < sizeof SORTS / sizeof SORTS[0]; i++)
            if (strcmp(SORTS[i].name, sort) == 0) sort_expr = SORTS[i].expr;
        if (!sort_expr) {
            api_invalid(rq, resp, "sort",
                        "must be due_date, priority, created_at or title, optionally prefixed by -");
            qb_free(&q);
            return;
        }
    }
    char offset[24], limit[24];
    snprintf(limit, sizeof limit, "%lld", page_size);
    snprintf(offset, sizeof offset, "%lld", (page - 1) * page_size);
    int lp = qb_val(&q, limit, 0), op = qb_val(&q, offset, 0);
    char sql[4096], csql[2400];
    /* The page and the total as two statements: a window count would make
     * PostgreSQL produce every matching row before the page is cut. */
    snprintf(sql, sizeof sql,
             "SELECT %s FROM tasks t WHERE %s "
             "ORDER BY %s %s NULLS LAST, t.created_at, t.id LIMIT $%d OFFSET $%d",
             STORE_TASK_COLUMNS, q.where, sort_expr, desc ? "DESC" : "ASC", lp, op);
    snprintf(csql, sizeof csql, "SELECT count(*) FROM tasks t WHERE %s", q.where);

    PGconn *c = api_conn(rq, resp);
    if (!c) {
        qb_free(&q);
        return;
    }
    char err[512] = "";
    long long total = -1, seq = -1;
    /* One snapshot: X-Sync-Seq must not be newer than the list. */
    PQclear(PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    PGresult *res = PQexecParams(c, sql, q.n, NULL, q.vals, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        PGresult *cr = PQexecParams(c, csql, q.n - 2, NULL, q.vals, NULL, NULL, 0);
        if (PQresultStatus(cr) == PGRES_TUPLES_OK) total = strtoll(PQgetvalue(cr, 0, 0), NULL, 10);
        else snprintf(err, sizeof err, "%s", PQresultErrorMessage(cr));
        PQclear(cr);
        if (total >= 0) seq = store_user_seq(c, rq->user, err, sizeof err);
    } else {
        snprintf(err, sizeof err, "%s", PQresultErrorMessage(res));
    }
    PQclear(PQexec(c, "COMMIT"));
    td_pg_release(rq->api->pool, c);
    qb_free(&q);
    if (total < 0 || seq < 0) {
        PQclear(res);
        api_internal(rq, resp, "list tasks", err);
        return;
    }
    json_object *items = json_object_new_array();
    for (int r = 0; r < PQntuples(res); r++) {
        stored_task_t st;
        if (store_task_from_row(res, r, 0, &st) != 0) continue;
        json_object_array_add(items, store_task_json(&st, rq->now));
        stored_task_clear(&st);
    }
    PQclear(res);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "items", items);
    json_object_object_add(o, "page", json_object_new_int64(page));
    json_object_object_add(o, "page_size", json_object_new_int64(page_size));
    json_object_object_add(o, "total", json_object_new_int64(total));
    json_object_object_add(o, "total_pages", json_object_new_int64((total + page_size - 1) / page_size));
    char seq_s[24];
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    td_http_resp_header(resp, "X-Sync-Seq", seq_s);
    api_json(resp, 200, o);
}
