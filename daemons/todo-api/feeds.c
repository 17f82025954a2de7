/* GET /api/activity (the activity log, cursor-paginated, with a summary)
 * and GET /api/sync (the user's change log after a sequence number). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "task_store.h"

void h_activity(rq_t *rq, td_http_resp_t *resp) {
    td_http_req_t *h = rq->http;
    const char *vals[8];
    int n = 0;
    char where[1024] = "a.user_id = $1";
    vals[n++] = rq->user;
    static const char *const RANGE[2] = {"from", "to"};
    for (int i = 0; i < 2; i++) {
        const char *v = td_http_param(h, RANGE[i]);
        te_time_t t;
        if (!v) continue;
        if (te_time_parse(v, &t, NULL, NULL, 0) != TE_OK) {
            api_invalid(rq, resp, RANGE[i], "must be an RFC 3339 date-time");
            return;
        }
        vals[n++] = v;
        api_sql_and(where, sizeof where, i == 0 ? "a.occurred_at >= ?::timestamptz"
                                             : "a.occurred_at < ?::timestamptz", n);
    }
    int range_params = n; /* the summary covers the period only */
    char type_buf[128];
    const char *et = td_http_param(h, "event_type");
    if (et) {
        if (!*et || strlen(et) > 100) {
            api_invalid(rq, resp, "event_type", "must be an event type such as task.completed");
            return;
        }
        if (strncmp(et, "com.", 4) != 0) {
            snprintf(type_buf, sizeof type_buf, "com.todo.%s", et);
            et = type_buf;
        }
        vals[n++] = et;
        api_sql_and(where, sizeof where, "a.event_type = ?", n);
    }
    long long limit = 50;
    const char *v = td_http_param(h, "limit");
    if (v && api_parse_uint(v, 1, 100, &limit) != 0) {
        api_invalid(rq, resp, "limit", "must be an integer from 1 to 100");
        return;
    }
    /* cursor = "<occurred_at µs>.<id>" of the last item of the previous page */
    char cur_t[32], cur_id[24], ts[TE_TIME_STRLEN];
    if ((v = td_http_param(h, "cursor"))) {
        long long ct, cid;
        const char *dot = strchr(v, '.');
        if (!dot || (size_t)(dot - v) >= sizeof cur_t || api_parse_uint(dot + 1, 1, INT64_MAX, &cid) != 0) {
            api_invalid(rq, resp, "cursor", "is not a cursor from a previous page");
            return;
        }
        memcpy(cur_t, v, (size_t)(dot - v));
        cur_t[dot - v] = '\0';
        if (api_parse_uint(cur_t, 0, INT64_MAX, &ct) != 0 ||
            te_time_format_utc((te_time_t)ct, ts, sizeof ts) != TE_OK) {
            api_invalid(rq, resp, "cursor", "is not a cursor from a previous page");
            return;
        }
        snprintf(cur_id, sizeof cur_id, "%lld", cid);
        vals[n++] = ts;
        vals[n++] = cur_id;
        char cond[96];
        snprintf(cond, sizeof cond, "(a.occurred_at, a.id) < ($%d::timestamptz, $%d::bigint)", n - 1, n);
        size_t len = strlen(where);
        snprintf(where + len, sizeof where - len, " AND %s", cond);
    }
    char lim[24];
    snprintf(lim, sizeof lim, "%lld", limit + 1);
    vals[n++] = lim;
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT a.id, a.event_id, a.event_type, a.entity_type, a.entity_id, "
             "te_ts(a.occurred_at), a.details::text, "
             "(extract(epoch from a.occurred_at) * 1000000)::bigint "
             "FROM activity a WHERE %s ORDER BY a.occurred_at DESC, a.id DESC LIMIT $%d",
             where, n);
    char rwhere[512] = "a.user_id = $1";
    if (range_params >= 2) {
        /* rebuild the from/to part with the same numbering */
        int k = 2;
        for (int i = 0; i < 2; i++)
            if (td_http_param(h, RANGE[i]))
                api_sql_and(rwhere, sizeof rwhere, i == 0 ? "a.occurred_at >= ?::timestamptz"
                                                       : "a.occurred_at < ?::timestamptz", k++);
    }
    char ssql[1024];
    snprintf(ssql, sizeof ssql,
             "SELECT count(*) FILTER (WHERE event_type = 'com.todo.task.created'), "
             "count(*) FILTER (WHERE event_type = 'com.todo.task.updated'), "
             "count(*) FILTER (WHERE event_type = 'com.todo.task.completed'), "
             "count(*) FILTER (WHERE event_type = 'com.todo.task.deleted') "
             "FROM activity a WHERE %s", rwhere);
    PGconn *c = api_conn(rq, resp);
    if (!c) return;
    PGresult *res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    PGresult *sum = PQexecParams(c, ssql, range_params, NULL, vals, NULL, NULL, 0);
    td_pg_release(rq->api->pool, c);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQresultStatus(sum) != PGRES_TUPLES_OK) {
        api_internal(rq, resp, "activity",
                     PQresultStatus(res) != PGRES_TUPLES_OK ? PQresultErrorMessage(res)
                                                            : PQresultErrorMessage(sum));
        PQclear(res);
        PQclear(sum);
        return;
    }
    json_object *items = json_object_new_array();
    int rows = PQntuples(res), shown = rows > limit ? (int)limit : rows;
    for (int r = 0; r < shown; r++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(strtoll(PQgetvalue(res, r, 0), NULL, 10)));
        json_object_object_add(o, "event_id", json_object_new_string(PQgetvalue(res, r, 1)));
        json_object_object_add(o, "event_type", json_object_new_string(PQgetvalue(res, r, 2)));
        json_object_object_add(o, "entity_type", json_object_new_string(PQgetvalue(res, r, 3)));
        json_object_object_add(o, "entity_id", json_object_new_string(PQgetvalue(res, r, 4)));
        json_object_object_add(o, "occurred_at", json_object_new_string(PQgetvalue(res, r, 5)));
        json_object_object_add(o, "details", json_tokener_parse(PQgetvalue(res, r, 6)));
        json_object_array_add(items, o);
    }
    json_object *out = json_object_new_object();
    json_object_object_add(out, "items", items);
    if (rows > limit) {
        char cursor[64];
        snprintf(cursor, sizeof cursor, "%s.%s", PQgetvalue(res, shown - 1, 7),
                 PQgetvalue(res, shown - 1, 0));
        json_object_object_add(out, "next_cursor", json_object_new_string(cursor));
    } else {
        json_object_object_add(out, "next_cursor", NULL);
    }
    json_object *s = json_object_new_object();
    static const char *const KEYS[4] = {"created", "updated", "completed", "deleted"};
    for (int i = 0; i < 4; i++)
        json_object_object_add(s, KEYS[i], json_object_new_int64(strtoll(PQgetvalue(sum, 0, i), NULL, 10)));
    json_object_object_add(out, "summary", s);
    PQclear(res);
    PQclear(sum);
    api_json(resp, 200, out);
}

void h_sync(rq_t *rq, td_http_resp_t *resp) {
    long long since = 0, limit = 500;
    const char *v;
    if ((v = td_http_param(rq->http, "since")) && api_parse_uint(v, 0, INT64_MAX, &since) != 0) {
        api_invalid(rq, resp, "since", "must be a sequence number >= 0");
        return;
    }
    if ((v = td_http_param(rq->http, "limit")) && api_parse_uint(v, 1, 1000, &limit) != 0) {
        api_invalid(rq, resp, "limit", "must be an integer from 1 to 1000");
        return;
    }
    char since_s[24], lim_s[24];
    snprintf(since_s, sizeof since_s, "%lld", since);
    snprintf(lim_s, sizeof lim_s, "%lld", limit + 1);
    const char *vals[3] = {rq->user, since_s, lim_s};
    PGconn *c = api_conn(rq, resp);
    if (!c) return;
    /* One snapshot for the pruning check and the rows. */
    PQclear(PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    PGresult *head = PQexecParams(
        c, "SELECT coalesce(max(seq), 0), coalesce(max(pruned_seq), 0) FROM user_seq WHERE user_id = $1",
        1, NULL, vals, NULL, NULL, 0);
    PGresult *res = PQexecParams(
        c,
        "SELECT seq, op, task_id::text, task::text, changes::text, te_ts(at) FROM changes "
        "WHERE user_id = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3::int",
        3, NULL, vals, NULL, NULL, 0);
    PQclear(PQexec(c, "COMMIT"));
    td_pg_release(rq->api->pool, c);
    if (PQresultStatus(head) != PGRES_TUPLES_OK || PQresultStatus(res) != PGRES_TUPLES_OK) {
        api_internal(rq, resp, "sync", PQresultErrorMessage(PQresultStatus(head) != PGRES_TUPLES_OK ? head : res));
        PQclear(head);
        PQclear(res);
        return;
    }
    long long current = strtoll(PQgetvalue(head, 0, 0), NULL, 10);
    long long pruned = strtoll(PQgetvalue(head, 0, 1), NULL, 10);
    PQclear(head);
    char cur_s[24];
    snprintf(cur_s, sizeof cur_s, "%lld", current);
    td_http_resp_header(resp, "X-Sync-Seq", cur_s);
    if (since < pruned || since > current) {
        PQclear(res);
        api_problem(rq, resp, 410, "gone",
                    since > current ? "since is ahead of the server's change log: fetch the tasks again"
                                    : "changes before this point were pruned: fetch the tasks again",
                    NULL);
        return;
    }
    json_object *changes = json_object_new_array();
    int rows = PQntuples(res), shown = rows > limit ? (int)limit : rows;
    long long last = since;
    for (int r = 0; r < shown; r++) {
        json_object *o = json_object_new_object();
        last = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        json_object_object_add(o, "seq", json_object_new_int64(last));
        json_object_object_add(o, "op", json_object_new_string(PQgetvalue(res, r, 1)));
        json_object_object_add(o, "task_id", json_object_new_string(PQgetvalue(res, r, 2)));
        json_object_object_add(o, "task", PQgetisnull(res, r, 3) ? NULL : json_tokener_parse(PQgetvalue(res, r, 3)));
        if (!PQgetisnull(res, r, 4))
            json_object_object_add(o, "changes", json_tokener_parse(PQgetvalue(res, r, 4)));
        json_object_object_add(o, "at", json_object_new_string(PQgetvalue(res, r, 5)));
        json_object_array_add(changes, o);
    }
    PQclear(res);
    json_object *out = json_object_new_object();
    json_object_object_add(out, "changes", changes);
    json_object_object_add(out, "seq", json_object_new_int64(last));
    json_object_object_add(out, "has_more", json_object_new_boolean(rows > limit));
    api_json(resp, 200, out);
}
