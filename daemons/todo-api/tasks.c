/* /api/tasks: create, read, replace, patch, delete, complete/uncomplete/
 * toggle.  Every write is one transaction: the task row, its reminders,
 * the change-log row and the events in the outbox. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "api.h"
#include "task_store.h"
#include "tasks.h"

/* Members a client may not set: the server owns them. */
static const char *const SERVER_FIELDS[] = {"id",      "user_id",      "created_at", "updated_at",
                                            "completed_at", "overdue", "version",    NULL};

static void strip_server_fields(json_object *obj) {
    for (size_t i = 0; SERVER_FIELDS[i]; i++) json_object_object_del(obj, SERVER_FIELDS[i]);
    json_object *rec = NULL;
    if (json_object_object_get_ex(obj, "recurrence", &rec) &&
        json_object_is_type(rec, json_type_object)) {
        json_object_object_del(rec, "series_id");
        json_object_object_del(rec, "occurrence");
    }
}

/* Parses and validates a task from obj (not modified); 400 on problems. */
static te_task_t *task_from_object(rq_t *rq, td_http_resp_t *resp, json_object *obj,
                                   const char *strip_prefix) {
    te_task_t *t = NULL;
    te_problems_t *p = te_problems_new();
    char err[TE_ERRSTR_SIZE];
    te_err_t e = te_task_from_json_object(obj, &t, p, err, sizeof err);
    if (e != TE_OK) {
        if (strip_prefix && p) {
            /* POST .../reminders: report "offset_minutes", not "reminders[3].offset_minutes" */
            te_problems_t *q = te_problems_new();
            size_t n = strlen(strip_prefix);
            for (size_t i = 0; q && i < te_problems_count(p); i++) {
                const char *f = te_problems_field(p, i);
                if (strncmp(f, strip_prefix, n) == 0 && f[n] == '.') f += n + 1;
                else if (strcmp(f, strip_prefix) == 0) f = "reminder";
                te_problems_add(q, f, "%s", te_problems_reason(p, i));
            }
            te_problems_destroy(p);
            p = q;
        }
        if (p && te_problems_count(p) == 0) te_problems_add(p, "body", "%s", err);
        api_problem(rq, resp, 400, "validation", NULL, p);
        te_problems_destroy(p);
        return NULL;
    }
    te_problems_destroy(p);
    /* the API keeps times to the millisecond */
    te_time_t due;
    if (te_task_due(t, &due)) te_task_set_due(t, 1, store_ms(due));
    size_t nrem = te_task_reminder_count(t);
    te_reminder_t rems[TE_TASK_MAX_REMINDERS + 1];
    for (size_t i = 0; i < nrem && i <= TE_TASK_MAX_REMINDERS; i++) {
        te_task_reminder(t, i, &rems[i]);
        rems[i].at = store_ms(rems[i].at);
    }
    te_task_clear_reminders(t);
    for (size_t i = 0; i < nrem && i <= TE_TASK_MAX_REMINDERS; i++) te_task_add_reminder(t, &rems[i]);
    return t;
}

static void set_etag(td_http_resp_t *resp, int version) {
    char etag[24];
    snprintf(etag, sizeof etag, "\"%d\"", version);
    td_http_resp_header(resp, "ETag", etag);
}

static void respond_task(td_http_resp_t *resp, int status, const stored_task_t *st, json_object *j) {
    set_etag(resp, st->version);
    api_json(resp, status, j);
}

/* The model JSON of a stored task (reminders as {offset_minutes}|{at}). */
static json_object *model_json(const stored_task_t *st, te_time_t now) {
    json_object *o = NULL;
    if (te_task_to_json_object(st->task, now, &o) != TE_OK) return NULL;
    return o;
}

void h_tasks_create(rq_t *rq, td_http_resp_t *resp) {
    json_object *obj = api_body_object(rq, resp, 0);
    if (!obj) return;
    strip_server_fields(obj);
    te_task_t *t = task_from_object(rq, resp, obj, NULL);
    json_object_put(obj);
    if (!t) return;
    uuid_t u;
    char id[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, id);
    stored_task_t st = {.task = t, .version = 1};
    te_task_set_id(t, id);
    te_task_set_user_id(t, rq->user);
    te_task_set_created_at(t, rq->now);
    te_task_set_updated_at(t, rq->now);
    te_task_set_completed_at(t, te_task_status(t) == TE_STATUS_COMPLETED ? rq->now : 0);
    if (te_task_rrule(t)) {
        te_task_set_series(t, id, 1);
        te_task_due(t, &st.series_start); /* DTSTART: the first due date */
    }

    char err[512];
    PGconn *c = api_conn(rq, resp);
    if (!c) {
        stored_task_clear(&st);
        return;
    }
    json_object *j = NULL;
    int rc = store_begin_write(c, rq->user, err, sizeof err);
    if (rc == 0) rc = store_task_write(c, &st, 1, err, sizeof err);
    if (rc == 0) rc = store_sync_reminders(c, &st, 0, rq->now, err, sizeof err);
    if (rc == 0 && !(j = store_task_json(&st, rq->now))) rc = -1;
    if (rc == 0) rc = store_record_change(c, &(store_ctx_t){rq->user, rq->traceparent, rq->now, "/todo-api"}, "created", id, j, NULL, 0, err, sizeof err);
    if (rc == 0) rc = store_commit(c, err, sizeof err);
    else store_rollback(c);
    td_pg_release(rq->api->pool, c);
    if (rc != 0) {
        json_object_put(j);
        stored_task_clear(&st);
        api_internal(rq, resp, "create task", err);
        return;
    }
    char loc[64];
    snprintf(loc, sizeof loc, "/api/tasks/%s", id);
    td_http_resp_header(resp, "Location", loc);
    respond_task(resp, 201, &st, j);
    stored_task_clear(&st);
}

/* Loads the request's task for reading; 1 loaded, else answered (404/5xx). */
static int load_for_read(rq_t *rq, td_http_resp_t *resp, stored_task_t *st) {
    PGconn *c = api_conn(rq, resp);
    if (!c) return 0;
    char err[512];
    int found = store_task_load(c, rq->user, rq->path_params[0], 0, st, err, sizeof err);
    td_pg_release(rq->api->pool, c);
    if (found < 0) api_internal(rq, resp, "load task", err);
    else if (found == 0) api_problem(rq, resp, 404, "not-found", "no such task", NULL);
    return found == 1;
}

void h_task_get(rq_t *rq, td_http_resp_t *resp) {
    stored_task_t st;
    if (!load_for_read(rq, resp, &st)) return;
    respond_task(resp, 200, &st, store_task_json(&st, rq->now));
    stored_task_clear(&st);
}

/* If-Match against the current version: 0 ok, -1 answered 412. */
static int check_if_match(rq_t *rq, td_http_resp_t *resp, int version) {
    const char *im = td_http_header(rq->http, "If-Match");
    if (!im || strcmp(im, "*") == 0) return 0;
    char etag[24];
    snprintf(etag, sizeof etag, "\"%d\"", version);
    /* a list of entity tags; W/ prefixes compare weakly (as equal) */
    const char *p = im;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (strncmp(p, "W/", 2) == 0) p += 2;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ') n--;
        if (n == strlen(etag) && strncmp(p, etag, n) == 0) return 0;
        p += strcspn(p, ",");
    }
    api_problem(rq, resp, 412, "precondition-failed", "the task changed: fetch it again", NULL);
    return -1;
}

int task_apply_locked(rq_t *rq, PGconn *c, stored_task_t *cur,
                      te_task_t *next, json_object **after_out, char *err, size_t errsize) {
    *after_out = NULL;
    te_task_t *t = next;
    te_task_set_id(t, te_task_id(cur->task));
    te_task_set_user_id(t, rq->user);
    te_task_set_created_at(t, te_task_created_at(cur->task));
    te_task_set_updated_at(t, rq->now);
    int was_done = te_task_status(cur->task) == TE_STATUS_COMPLETED;
    int is_done = te_task_status(t) == TE_STATUS_COMPLETED;
    te_task_set_completed_at(t, !is_done ? 0 : was_done ? te_task_completed_at(cur->task) : rq->now);
    if (te_task_rrule(t)) {
        if (te_task_series_id(cur->task))
            te_task_set_series(t, te_task_series_id(cur->task), te_task_occurrence(cur->task));
        else
            te_task_set_series(t, te_task_id(cur->task), 1);
    }
    /* Nothing to write when the client-visible model is unchanged (a
     * second "complete", a PUT of the same fields). */
    json_object *mb = NULL, *ma = NULL, *model_changes = NULL;
    if (te_task_to_json_object(cur->task, rq->now, &mb) == TE_OK &&
        te_task_to_json_object(t, rq->now, &ma) == TE_OK)
        model_changes = store_diff(mb, ma);
    int model_ok = mb && ma;
    json_object_put(mb);
    json_object_put(ma);
    if (!model_ok) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    if (!model_changes) return 0;
    json_object_put(model_changes);
    json_object *before = store_task_json(cur, rq->now);
    stored_task_t st = {.task = t, .version = cur->version + 1};
    /* A new or changed rule starts its series anew at the due date. */
    const char *old_rule = te_task_rrule(cur->task), *new_rule = te_task_rrule(t);
    if (new_rule && old_rule && strcmp(old_rule, new_rule) == 0 && cur->series_start) {
        st.series_start = cur->series_start;
        st.series_ended = cur->series_ended;
    } else if (new_rule) {
        te_task_due(t, &st.series_start);
    }
    json_object *after = NULL, *changes = NULL;
    int rc = before ? 0 : -1;
    if (rc == 0) rc = store_task_write(c, &st, 0, err, errsize);
    if (rc == 0)
        rc = store_sync_reminders(c, &st, json_object_array_length(cur->reminders) > 0, rq->now, err,
                                  errsize);
    if (rc == 0 && !(after = store_task_json(&st, rq->now))) rc = -1;
    if (rc == 0) changes = store_diff(before, after);
    if (rc == 0 && changes) {
        const char *op = (!was_done && is_done) ? "completed" : "updated";
        int also = 0;
        if (strcmp(op, "completed") == 0) {
            json_object_object_foreach(changes, k, v) {
                (void)v;
                if (strcmp(k, "status") != 0 && strcmp(k, "completed_at") != 0) also = 1;
            }
        }
        rc = store_record_change(c, &(store_ctx_t){rq->user, rq->traceparent, rq->now, "/todo-api"}, op, te_task_id(t), after, changes, also, err, errsize);
    }
    json_object_put(before);
    json_object_put(changes);
    int changed = rc == 0 && changes != NULL;
    if (rc != 0 || !changed) {
        json_object_put(after);
        st.task = NULL; /* still the caller's */
        stored_task_clear(&st);
        return rc != 0 ? -1 : 0;
    }
    /* cur takes over the new state */
    te_task_destroy(cur->task);
    json_object_put(cur->reminders);
    cur->task = t;
    cur->version = st.version;
    cur->series_start = st.series_start;
    cur->series_ended = st.series_ended;
    cur->reminders = st.reminders;
    *after_out = after;
    return 1;
}

/* How a write route derives the new task from the current one.  Returns
 * the new task (validated), or NULL after answering (400...). */
typedef te_task_t *(*mutate_fn)(rq_t *rq, td_http_resp_t *resp, const stored_task_t *cur,
                                void *arg);

/* Load (locked) -> If-Match -> mutate -> apply -> commit -> respond. */
static void update_task(rq_t *rq, td_http_resp_t *resp, mutate_fn mutate, void *arg,
                        int created_status, json_object *(*render)(rq_t *, const stored_task_t *,
                                                                   json_object *, void *)) {
    PGconn *c = api_conn(rq, resp);
    if (!c) return;
    char err[512];
    stored_task_t cur = {0};
    json_object *after = NULL;
    int rc = store_begin_write(c, rq->user, err, sizeof err);
    int found = rc == 0 ? store_task_load(c, rq->user, rq->path_params[0], 1, &cur, err, sizeof err)
                        : -1;
    if (found <= 0) {
        store_rollback(c);
        td_pg_release(rq->api->pool, c);
        if (found == 0) api_problem(rq, resp, 404, "not-found", "no such task", NULL);
        else api_internal(rq, resp, "update task", err);
        return;
    }
    te_task_t *next = NULL;
    if (check_if_match(rq, resp, cur.version) == 0) next = mutate(rq, resp, &cur, arg);
    if (!next) {
        store_rollback(c);
        td_pg_release(rq->api->pool, c);
        stored_task_clear(&cur);
        return;
    }
    int changed = task_apply_locked(rq, c, &cur, next, &after, err, sizeof err);
    if (changed <= 0) {
        te_task_destroy(next); /* still ours: not applied */
        store_rollback(c);
    } else if (store_commit(c, err, sizeof err) != 0) {
        changed = -1;
    }
    td_pg_release(rq->api->pool, c);
    if (changed < 0) {
        json_object_put(after);
        stored_task_clear(&cur);
        api_internal(rq, resp, "update task", err);
        return;
    }
    if (!after) after = store_task_json(&cur, rq->now);
    if (render) {
        json_object *out = render(rq, &cur, after, arg);
        json_object_put(after);
        set_etag(resp, cur.version);
        if (out) api_json(resp, created_status, out);
        else td_http_resp_set(resp, 204, NULL, NULL, 0);
    } else {
        respond_task(resp, created_status, &cur, after);
    }
    stored_task_clear(&cur);
}

static te_task_t *mutate_put(rq_t *rq, td_http_resp_t *resp, const stored_task_t *cur, void *arg) {
    (void)cur;
    json_object *obj = arg;
    strip_server_fields(obj);
    return task_from_object(rq, resp, obj, NULL);
}

/* RFC 7396: members of patch replace those of target, null removes, and an
 * object merges into an object member recursively. */
static void merge_patch(json_object *target, json_object *patch) {
    json_object_object_foreach(patch, k, v) {
        json_object *cur = NULL;
        if (v == NULL) {
            json_object_object_del(target, k);
        } else if (json_object_is_type(v, json_type_object) &&
                   json_object_object_get_ex(target, k, &cur) && json_object_is_type(cur, json_type_object)) {
            merge_patch(cur, v);
        } else if (json_object_is_type(v, json_type_object)) {
            json_object *fresh = json_object_new_object();
            merge_patch(fresh, v); /* drops the patch's nulls */
            json_object_object_add(target, k, fresh);
        } else {
            json_object_object_add(target, k, json_object_get(v));
        }
    }
}

/* JSON merge patch over the task's model JSON. */
static te_task_t *mutate_patch(rq_t *rq, td_http_resp_t *resp, const stored_task_t *cur, void *arg) {
    json_object *patch = arg;
    json_object *merged = model_json(cur, rq->now);
    if (!merged) {
        api_internal(rq, resp, "patch", "out of memory");
        return NULL;
    }
    strip_server_fields(merged);
    strip_server_fields(patch);
    /* the seed's "completed" flag wins over the current status */
    if (json_object_object_get_ex(patch, "completed", NULL) &&
        !json_object_object_get_ex(patch, "status", NULL))
        json_object_object_del(merged, "status");
    /* the seed's simple recurrence form replaces an RRULE (and back) */
    json_object *prec = NULL, *mrec = NULL;
    if (json_object_object_get_ex(patch, "recurrence", &prec) && json_object_is_type(prec, json_type_object) &&
        json_object_object_get_ex(merged, "recurrence", &mrec) && json_object_is_type(mrec, json_type_object) &&
        (json_object_object_get_ex(prec, "type", NULL) || json_object_object_get_ex(prec, "rrule", NULL)))
        json_object_object_del(merged, "recurrence");
    merge_patch(merged, patch);
    te_task_t *t = task_from_object(rq, resp, merged, NULL);
    json_object_put(merged);
    return t;
}

static te_task_t *mutate_status(rq_t *rq, td_http_resp_t *resp, const stored_task_t *cur, void *arg) {
    const char *what = arg;
    te_task_t *t = te_task_clone(cur->task);
    if (!t) {
        api_internal(rq, resp, "status", "out of memory");
        return NULL;
    }
    te_status_t s = te_task_status(cur->task);
    if (strcmp(what, "complete") == 0) s = TE_STATUS_COMPLETED;
    else if (strcmp(what, "uncomplete") == 0) s = TE_STATUS_PENDING;
    else s = s == TE_STATUS_COMPLETED ? TE_STATUS_PENDING : TE_STATUS_COMPLETED;
    te_task_set_status(t, s);
    return t;
}

void h_task_put(rq_t *rq, td_http_resp_t *resp) {
    json_object *obj = api_body_object(rq, resp, 0);
    if (!obj) return;
    update_task(rq, resp, mutate_put, obj, 200, NULL);
    json_object_put(obj);
}

void h_task_patch(rq_t *rq, td_http_resp_t *resp) {
    json_object *obj = api_body_object(rq, resp, 1);
    if (!obj) return;
    update_task(rq, resp, mutate_patch, obj, 200, NULL);
    json_object_put(obj);
}

void h_task_complete(rq_t *rq, td_http_resp_t *resp) {
    update_task(rq, resp, mutate_status, "complete", 200, NULL);
}
void h_task_uncomplete(rq_t *rq, td_http_resp_t *resp) {
    update_task(rq, resp, mutate_status, "uncomplete", 200, NULL);
}
void h_task_toggle(rq_t *rq, td_http_resp_t *resp) {
    update_task(rq, resp, mutate_status, "toggle", 200, NULL);
}

void h_task_delete(rq_t *rq, td_http_resp_t *resp) {
    PGconn *c = api_conn(rq, resp);
    if (!c) return;
    char err[512];
    stored_task_t cur = {0};
    int rc = store_begin_write(c, rq->user, err, sizeof err);
    int found = rc == 0 ? store_task_load(c, rq->user, rq->path_params[0], 1, &cur, err, sizeof err)
                        : -1;
    if (found == 1 && check_if_match(rq, resp, cur.version) != 0) found = -2;
    if (found == 1) {
        rc = store_task_delete(c, rq->user, rq->path_params[0], err, sizeof err);
        if (rc == 0)
            rc = store_record_change(c, &(store_ctx_t){rq->user, rq->traceparent, rq->now, "/todo-api"}, "deleted", rq->path_params[0], NULL, NULL, 0, err,
                                     sizeof err);
        if (rc == 0) rc = store_commit(c, err, sizeof err);
        if (rc != 0) found = -1;
    }
    if (found != 1) store_rollback(c);
    td_pg_release(rq->api->pool, c);
    stored_task_clear(&cur);
    if (found == 1) td_http_resp_set(resp, 204, NULL, NULL, 0);
    else if (found == 0) api_problem(rq, resp, 404, "not-found", "no such task", NULL);
    else if (found == -1) api_internal(rq, resp, "delete task", err);
    /* -2: 412 already answered */
}

/* --- reminders ----------------------------------------------------------- */

static te_task_t *mutate_add_reminder(rq_t *rq, td_http_resp_t *resp, const stored_task_t *cur,
                                      void *arg) {
    json_object *body = arg;
    json_object *merged = model_json(cur, rq->now);
    if (!merged) {
        api_internal(rq, resp, "reminder", "out of memory");
        return NULL;
    }
    strip_server_fields(merged);
    json_object *arr = NULL;
    if (!json_object_object_get_ex(merged, "reminders", &arr) || !arr) {
        arr = json_object_new_array();
        json_object_object_add(merged, "reminders", arr);
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "reminders[%zu]", json_object_array_length(arr));
    json_object *r = json_object_new_object();
    json_object_object_foreach(body, k, v) {
        if (strcmp(k, "offset_minutes") == 0 || strcmp(k, "at") == 0)
            json_object_object_add(r, k, json_object_get(v));
    }
    json_object_array_add(arr, r);
    te_task_t *t = task_from_object(rq, resp, merged, prefix);
    json_object_put(merged);
    return t;
}

static json_object *render_new_reminder(rq_t *rq, const stored_task_t *st, json_object *after,
                                        void *arg) {
    (void)rq;
    (void)after;
    json_object *body = arg, *want_off = NULL, *want_at = NULL;
    json_object_object_get_ex(body, "offset_minutes", &want_off);
    json_object_object_get_ex(body, "at", &want_at);
    te_time_t want_t = 0;
    if (want_at) te_time_parse(json_object_get_string(want_at), &want_t, NULL, NULL, 0);
    for (size_t i = 0; i < json_object_array_length(st->reminders); i++) {
        json_object *r = json_object_array_get_idx(st->reminders, i), *x;
        if (want_off && json_object_object_get_ex(r, "offset_minutes", &x) &&
            json_object_get_int(x) == json_object_get_int(want_off))
            return json_object_get(r);
        te_time_t at;
        if (want_at && json_object_object_get_ex(r, "at", &x) &&
            te_time_parse(json_object_get_string(x), &at, NULL, NULL, 0) == TE_OK && at == want_t)
            return json_object_get(r);
    }
    return json_object_new_object();
}

void h_reminders_add(rq_t *rq, td_http_resp_t *resp) {
    json_object *body = api_body_object(rq, resp, 0);
    if (!body) return;
    int has_off = json_object_object_get_ex(body, "offset_minutes", NULL);
    int has_at = json_object_object_get_ex(body, "at", NULL);
    if (has_off == has_at) {
        api_invalid(rq, resp, has_off ? "at" : "offset_minutes",
                    has_off ? "give offset_minutes or at, not both"
                            : "give offset_minutes (minutes before the due date) or at (RFC 3339)");
    } else {
        update_task(rq, resp, mutate_add_reminder, body, 201, render_new_reminder);
    }
    json_object_put(body);
}

static te_task_t *mutate_del_reminder(rq_t *rq, td_http_resp_t *resp, const stored_task_t *cur,
                                      void *arg) {
    (void)arg;
    const char *rid = rq->path_params[1];
    size_t n = json_object_array_length(cur->reminders), idx = n;
    for (size_t i = 0; i < n; i++) {
        json_object *x;
        if (json_object_object_get_ex(json_object_array_get_idx(cur->reminders, i), "id", &x) &&
            strcmp(json_object_get_string(x), rid) == 0)
            idx = i;
    }
    if (idx == n) {
        api_problem(rq, resp, 404, "not-found", "no such reminder", NULL);
        return NULL;
    }
    te_task_t *t = te_task_clone(cur->task);
    if (!t) {
        api_internal(rq, resp, "reminder", "out of memory");
        return NULL;
    }
    te_task_clear_reminders(t);
    for (size_t i = 0; i < te_task_reminder_count(cur->task); i++) {
        te_reminder_t r;
        if (i == idx || te_task_reminder(cur->task, i, &r) != TE_OK) continue;
        te_task_add_reminder(t, &r);
    }
    return t;
}

static json_object *render_nothing(rq_t *rq, const stored_task_t *st, json_object *after, void *arg) {
    (void)rq;
    (void)st;
    (void)after;
    (void)arg;
    return NULL;
}

void h_reminder_delete(rq_t *rq, td_http_resp_t *resp) {
    update_task(rq, resp, mutate_del_reminder, NULL, 204, render_nothing);
}

void h_reminders_list(rq_t *rq, td_http_resp_t *resp) {
    stored_task_t st;
    if (!load_for_read(rq, resp, &st)) return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "items", json_object_get(st.reminders));
    stored_task_clear(&st);
    api_json(resp, 200, o);
}
