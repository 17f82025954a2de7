/* /api/tags: the user's tags (created ones and every tag in use). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "task_store.h"
#include "tasks.h"

static const char TAGS_SQL[] =
    "WITH used AS (SELECT te_fold(x) AS k, min(x) AS name, count(*) AS n "
    "              FROM tasks t, unnest(t.tags) x WHERE t.user_id = $1 GROUP BY te_fold(x)), "
    "     made AS (SELECT name, name_lower FROM tags WHERE user_id = $1) "
    "SELECT coalesce(m.name, u.name), coalesce(u.n, 0) FROM made m "
    "FULL JOIN used u ON u.k = m.name_lower %s ORDER BY 1";

static json_object *tag_json(const char *name, const char *count) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "task_count", json_object_new_int64(strtoll(count, NULL, 10)));
    return o;
}

void h_tags_list(rq_t *rq, td_http_resp_t *resp) {
    PGconn *c = api_conn(rq, resp);
    if (!c) return;
    char sql[1024];
    snprintf(sql, sizeof sql, TAGS_SQL, "");
    const char *v[1] = {rq->user};
    PGresult *res = PQexecParams(c, sql, 1, NULL, v, NULL, NULL, 0);
    td_pg_release(rq->api->pool, c);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        api_internal(rq, resp, "list tags", PQresultErrorMessage(res));
        PQclear(res);
        return;
    }
    json_object *items = json_object_new_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_object_array_add(items, tag_json(PQgetvalue(res, r, 0), PQgetvalue(res, r, 1)));
    PQclear(res);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "items", items);
    api_json(resp, 200, o);
}

/* The task model's tag rules, reported as field "name". */
static int check_tag_name(rq_t *rq, td_http_resp_t *resp, json_object *name) {
    if (!name || !json_object_is_type(name, json_type_string)) {
        api_invalid(rq, resp, "name", name ? "must be a string" : "is required");
        return -1;
    }
    te_task_t *t = te_task_new();
    te_problems_t *p = te_problems_new();
    int rc = 0;
    if (!t || !p) {
        api_internal(rq, resp, "tag", "out of memory");
        rc = -1;
    } else {
        te_task_set_title(t, "tag check");
        te_task_add_tag(t, json_object_get_string(name));
        char err[TE_ERRSTR_SIZE];
        if (te_task_validate(t, p, err, sizeof err) != TE_OK) {
            for (size_t i = 0; i < te_problems_count(p); i++)
                if (strncmp(te_problems_field(p, i), "tags", 4) == 0) {
                    api_invalid(rq, resp, "name", te_problems_reason(p, i));
                    rc = -1;
                    break;
                }
        }
    }
    te_problems_destroy(p);
    te_task_destroy(t);
    return rc;
}

void h_tags_create(rq_t *rq, td_http_resp_t *resp) {
    json_object *body = api_body_object(rq, resp, 0), *name = NULL;
    if (!body) return;
    json_object_object_get_ex(body, "name", &name);
    if (check_tag_name(rq, resp, name) != 0) {
        json_object_put(body);
        return;
    }
    const char *n = json_object_get_string(name);
    PGconn *c = api_conn(rq, resp);
    if (!c) {
        json_object_put(body);
        return;
    }
    /* A tag already in use on a task exists too. */
    const char *v[2] = {rq->user, n};
    PGresult *res = PQexecParams(
        c,
        "INSERT INTO tags (user_id, name, name_lower) SELECT $1, $2, te_fold($2) "
        "WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.user_id = $1 AND t.tags_lower @> ARRAY[te_fold($2)]) "
        "ON CONFLICT DO NOTHING RETURNING name",
        2, NULL, v, NULL, NULL, 0);
    td_pg_release(rq->api->pool, c);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        api_internal(rq, resp, "create tag", PQresultErrorMessage(res));
    } else if (PQntuples(res) == 0) {
        api_problem(rq, resp, 409, "conflict", "the tag exists already", NULL);
    } else {
        api_json(resp, 201, tag_json(n, "0"));
    }
    PQclear(res);
    json_object_put(body);
}

/* Removes the tag from one locked task; 0 ok, -1 error. */
static int untag(rq_t *rq, PGconn *c, const char *task_id, const char *name,
                 char *err, size_t errsize) {
    stored_task_t cur = {0};
    int found = store_task_load(c, rq->user, task_id, 1, &cur, err, errsize);
    if (found <= 0) return found;
    te_task_t *next = te_task_clone(cur.task);
    if (!next) {
        stored_task_clear(&cur);
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    te_task_clear_tags(next);
    for (size_t i = 0; i < te_task_tag_count(cur.task); i++)
        if (strcasecmp(te_task_tag(cur.task, i), name) != 0) te_task_add_tag(next, te_task_tag(cur.task, i));
    json_object *after = NULL;
    int rc = task_apply_locked(rq, c, &cur, next, &after, err, errsize);
    if (rc <= 0) te_task_destroy(next);
    json_object_put(after);
    stored_task_clear(&cur);
    return rc < 0 ? -1 : 0;
}

void h_tag_delete(rq_t *rq, td_http_resp_t *resp) {
    const char *name = rq->path_params[0];
    PGconn *c = api_conn(rq, resp);
    if (!c) return;
    char err[512];
    int rc = store_begin_write(c, rq->user, err, sizeof err), hits = 0;
    const char *v[2] = {rq->user, name};
    PGresult *res = NULL;
    if (rc == 0) {
        res = PQexecParams(c,
                           "WITH d AS (DELETE FROM tags WHERE user_id = $1 AND name_lower = te_fold($2) "
                           "RETURNING 1) SELECT NULL::text FROM d UNION ALL "
                           "SELECT t.id::text FROM tasks t WHERE t.user_id = $1 "
                           "AND t.tags_lower @> ARRAY[te_fold($2)] ORDER BY 1",
                           2, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            snprintf(err, sizeof err, "%s", PQresultErrorMessage(res));
            rc = -1;
        }
    }
    for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
        hits++;
        if (!PQgetisnull(res, r, 0)) rc = untag(rq, c, PQgetvalue(res, r, 0), name, err, sizeof err);
    }
    PQclear(res);
    if (rc == 0 && hits > 0) rc = store_commit(c, err, sizeof err);
    else store_rollback(c);
    td_pg_release(rq->api->pool, c);
    if (rc != 0) api_internal(rq, resp, "delete tag", err);
    else if (hits == 0) api_problem(rq, resp, 404, "not-found", "no such tag", NULL);
    else td_http_resp_set(resp, 204, NULL, NULL, 0);
}
