/* What todo-worker does with each task event: an activity entry (exactly
 * once: unique event id, the activity.recorded event in the same
 * statement), and for a completed recurring task its next occurrence
 * (exactly once per series and due date: checked under the user's
 * sequence lock, which every writer of the user's tasks takes first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "daemon.h"
#include "log.h"
#include "pg.h"
#include "task_store.h"
#include "worker.h"

#define SOURCE "/todo-worker"

static void new_uuid(char out[37]) {
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}


static const char *str_member(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* Runs a statement: 1 when it returned a row, 0 none, -1 error (err). */
static int any_row(PGconn *c, const char *what, const char *sql, int nparams,
                   const char *const *v, char *err, size_t n) {
    PGresult *res = PQexecParams(c, sql, nparams, NULL, v, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) > 0 : -1;
    if (rc < 0) snprintf(err, n, "%s: %s", what, PQresultErrorMessage(res));
    PQclear(res);
    return rc;
}

/* What the activity entry keeps of the event. */
static json_object *details_of(json_object *data) {
    json_object *d = json_object_new_object(), *task = NULL, *changes = NULL;
    if (json_object_object_get_ex(data, "task", &task) && task) {
        const char *title = str_member(task, "title"), *status = str_member(task, "status");
        if (title) json_object_object_add(d, "title", json_object_new_string(title));
        if (status) json_object_object_add(d, "status", json_object_new_string(status));
    }
    if (json_object_object_get_ex(data, "changes", &changes) &&
        json_object_is_type(changes, json_type_object)) {
        json_object *names = json_object_new_array();
        json_object_object_foreach(changes, k, v) {
            (void)v;
            json_object_array_add(names, json_object_new_string(k));
        }
        json_object_object_add(d, "changed", names);
    }
    return d;
}

/* One statement: the activity row (unless this event id has one) and its
 * activity.recorded event in the outbox.  1 recorded, 0 duplicate, -1. */
static int record_activity(PGconn *c, const te_event_t *ev, json_object *data, const char *user,
                           const char *task_id, char *err, size_t n) {
    char activity_id[37], occurred[TE_TIME_STRLEN];
    te_time_t t = 0;
    if (te_event_time(ev, &t) != TE_OK) t = te_time_now();
    store_fmt_ms(t, occurred);
    new_uuid(activity_id);
    json_object *details = details_of(data);
    json_object *ad = json_object_new_object();
    json_object_object_add(ad, "activity_id", json_object_new_string(activity_id));
    json_object_object_add(ad, "user_id", json_object_new_string(user));
    json_object_object_add(ad, "event_id", json_object_new_string(te_event_id(ev)));
    json_object_object_add(ad, "event_type", json_object_new_string(te_event_type(ev)));
    json_object_object_add(ad, "entity_type", json_object_new_string("task"));
    json_object_object_add(ad, "entity_id", json_object_new_string(task_id));
    json_object_object_add(ad, "occurred_at", json_object_new_string(occurred));
    json_object_object_add(ad, "details", json_object_get(details));

    char *payload = td_event_json(TE_EVENT_ACTIVITY_RECORDED, SOURCE, NULL, user,
                                  te_event_traceparent(ev), ad, err, n);
    if (!payload) {
        json_object_put(details);
        return -1;
    }
    const char *v[8] = {te_event_id(ev), user, te_event_type(ev), task_id, occurred,
                        json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN),
                        activity_id, payload};
    int rc = any_row(c, "activity",
                     "WITH a AS (INSERT INTO activity (event_id, user_id, event_type, entity_type, "
                     "                                 entity_id, occurred_at, details, activity_id) "
                     "           VALUES ($1, $2, $3, 'task', $4, $5::timestamptz, $6::jsonb, $7::uuid) "
                     "           ON CONFLICT (event_id) DO NOTHING RETURNING 1) "
                     "INSERT INTO outbox (topic, key, payload) SELECT 'activity.log', $2, $8 FROM a "
                     "RETURNING 1",
                     8, v, err, n);
    te_free(payload);
    json_object_put(details);
    return rc;
}

/* The next task of cur's series, due at next (a new model the caller
 * destroys): same fields, relative reminders only, pending. */
static te_task_t *next_task(const te_task_t *cur, te_time_t next, te_time_t now) {
    te_task_t *t = te_task_clone(cur);
    if (!t) return NULL;
    char id[37];
    new_uuid(id);
    te_task_set_id(t, id);
    te_task_set_status(t, TE_STATUS_PENDING);
    te_task_set_due(t, 1, next);
    te_task_set_completed_at(t, 0);
    te_task_set_created_at(t, now);
    te_task_set_updated_at(t, now);
    te_task_set_series(t, te_task_series_id(cur), te_task_occurrence(cur) + 1);
    te_task_clear_reminders(t);
    for (size_t i = 0; i < te_task_reminder_count(cur); i++) {
        te_reminder_t r;
        if (te_task_reminder(cur, i, &r) == TE_OK && r.kind == TE_REMINDER_RELATIVE)
            te_task_add_reminder(t, &r);
    }
    return t;
}

/* 1 when the series already has a task due at `due`. */
static int exists_at(PGconn *c, const char *user, const char *series, te_time_t due, char *err,
                     size_t n) {
    char due_s[TE_TIME_STRLEN];
    store_fmt_ms(due, due_s);
    const char *v[3] = {user, series, due_s};
    return any_row(c, "series",
                   "SELECT 1 FROM tasks WHERE user_id = $1 AND series_id = $2::uuid "
                   "AND due_at = $3::timestamptz",
                   3, v, err, n);
}

/* Marks the series ended on the completed task (a task.updated). */
static int end_series(PGconn *c, const store_ctx_t *ctx, stored_task_t *cur, char *err, size_t n) {
    json_object *before = store_task_json(cur, ctx->now);
    cur->series_ended = 1;
    cur->version++;
    te_task_set_updated_at(cur->task, ctx->now);
    json_object *after = store_task_json(cur, ctx->now);
    json_object *changes = store_diff(before, after);
    int rc = before && after ? 0 : -1;
    if (rc == 0) rc = store_task_write(c, cur, 0, err, n);
    if (rc == 0)
        rc = store_record_change(c, ctx, "updated", te_task_id(cur->task), after, changes, 0, err, n);
    json_object_put(before);
    json_object_put(after);
    json_object_put(changes);
    return rc;
}

typedef enum { NEXT_CREATED, NEXT_NONE, NEXT_DUPLICATE, NEXT_ENDED } next_result_t;

/* Creates the next occurrence after a completion.  -1 on a database error
 * (retry), -2 when the task's rule cannot be evaluated (permanent). */
static int next_occurrence(PGconn *c, const store_ctx_t *ctx, const char *task_id,
                           next_result_t *out, char *err, size_t n) {
    *out = NEXT_NONE;
    if (store_begin_write(c, ctx->user, err, n) != 0) return -1;
    stored_task_t cur = {0};
    int found = store_task_load(c, ctx->user, task_id, 1, &cur, err, n);
    te_time_t due;
    /* gone, uncompleted since, not recurring, or ended: nothing to do */
    if (found <= 0 || te_task_status(cur.task) != TE_STATUS_COMPLETED || !te_task_rrule(cur.task) ||
        cur.series_ended || !te_task_due(cur.task, &due)) {
        store_rollback(c);
        stored_task_clear(&cur);
        return found < 0 ? -1 : 0;
    }
    te_anchor_t anchor = TE_ANCHOR_SCHEDULE;
    te_anchor_parse(te_task_recurrence_anchor(cur.task), &anchor);
    te_recurrence_t *r = NULL;
    te_time_t next = 0;
    te_err_t e = te_recurrence_new(te_task_rrule(cur.task), cur.series_start ? cur.series_start : due,
                                   te_task_recurrence_zone(cur.task), anchor, &r, err, n);
    if (e == TE_OK)
        e = te_recurrence_next_due(r, due, te_task_completed_at(cur.task),
                                   (unsigned)te_task_occurrence(cur.task), &next);
    te_recurrence_destroy(r);
    int rc = 0;
    if (e == TE_ERR_SERIES_ENDED) {
        rc = end_series(c, ctx, &cur, err, n);
        *out = NEXT_ENDED;
    } else if (e != TE_OK) {
        if (!err[0]) snprintf(err, n, "recurrence: %s", te_err2str(e));
        rc = -2;
    } else {
        int dup = exists_at(c, ctx->user, te_task_series_id(cur.task), next, err, n);
        if (dup != 0) {
            rc = dup < 0 ? -1 : 0;
            *out = NEXT_DUPLICATE;
        } else {
            stored_task_t nt = {.task = next_task(cur.task, next, ctx->now),
                                .version = 1,
                                .series_start = cur.series_start ? cur.series_start : due};
            json_object *j = NULL;
            rc = nt.task ? 0 : -1;
            if (rc == 0) rc = store_task_write(c, &nt, 1, err, n);
            if (rc == 0) rc = store_sync_reminders(c, &nt, 0, ctx->now, err, n);
            if (rc == 0 && !(j = store_task_json(&nt, ctx->now))) rc = -1;
            if (rc == 0)
                rc = store_record_change(c, ctx, "created", te_task_id(nt.task), j, NULL, 0, err, n);
            json_object_put(j);
            stored_task_clear(&nt);
            *out = NEXT_CREATED;
        }
    }
    if (rc == 0 && (*out == NEXT_CREATED || *out == NEXT_ENDED)) rc = store_commit(c, err, n);
    else store_rollback(c);
    stored_task_clear(&cur);
    return rc;
}

te_handler_result_t worker_handle(const te_event_t *ev, const te_record_t *rec, void *opaque,
                                  char *errstr, size_t errstr_size) {
    worker_t *w = opaque;
    const char *type = te_event_type(ev);
    char part[16];
    snprintf(part, sizeof part, "%d", (int)rec->partition);
    if (rec->timestamp_ms > 0) {
        const char *pl[1] = {part};
        td_metric_set(w->m_lag, pl, (double)(te_time_now() / 1000 - rec->timestamp_ms) / 1000.0);
    }
    if (strncmp(type, "com.todo.task.", 14) != 0) {
        const char *l[2] = {type, "ignored"};
        td_metric_inc(w->m_events, l, 1);
        return TE_HANDLER_OK;
    }
    json_object *data = (json_object *)te_event_data_object(ev);
    const char *user = str_member(data, "user_id"), *task_id = str_member(data, "task_id");
    if (!user || !task_id) { /* the catalogue requires both: cannot happen after validation */
        snprintf(errstr, errstr_size, "event without user_id/task_id");
        return TE_HANDLER_FAIL;
    }
    errstr[0] = '\0';
    /* while PostgreSQL is down it keeps trying for a few seconds (the
     * partition waits; the consumer then retries the record with back-off) */
    PGconn *c = td_pg_keep(&w->conn, w->pg_url, &w->stopping, errstr, errstr_size);
    if (!c) return TE_HANDLER_RETRY;
    int rec_rc = record_activity(c, ev, data, user, task_id, errstr, errstr_size);
    if (rec_rc < 0) {
        const char *l[2] = {type, "retry"};
        td_metric_inc(w->m_events, l, 1);
        return TE_HANDLER_RETRY;
    }
    const char *result = rec_rc ? "ok" : "duplicate";
    if (strcmp(type, "com.todo.task.completed") == 0) {
        store_ctx_t ctx = {user, te_event_traceparent(ev), te_time_now() / 1000 * 1000, SOURCE};
        next_result_t what;
        int rc = next_occurrence(c, &ctx, task_id, &what, errstr, errstr_size);
        if (rc == -1) {
            const char *l[2] = {type, "retry"};
            td_metric_inc(w->m_events, l, 1);
            return TE_HANDLER_RETRY;
        }
        if (rc == -2) {
            const char *l[2] = {type, "failed"};
            td_metric_inc(w->m_events, l, 1);
            return TE_HANDLER_FAIL;
        }
        if (what == NEXT_CREATED) {
            te_time_t at;
            if (te_event_time(ev, &at) == TE_OK)
                td_metric_observe(w->m_next, NULL, (double)(te_time_now() - at) / 1e6);
            td_logf(TD_LOG_INFO, NULL, "next occurrence created for task %s", task_id);
        } else if (what == NEXT_DUPLICATE) {
            result = "duplicate";
        }
    }
    const char *l[2] = {type, result};
    td_metric_inc(w->m_events, l, 1);
    return TE_HANDLER_OK;
}
