/* Task rows, reminders, change log and outbox (see store.h). */
#include "task_store.h"

#include <uuid/uuid.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"

const char STORE_TASK_COLUMNS[] =
    "t.id::text, t.user_id, t.title, t.description, t.priority, t.status, " US("t.due_at")
    ", t.timezone, array_to_json(t.tags)::text, t.rrule, t.rrule_zone, t.rrule_anchor, "
    "t.series_id::text, t.occurrence, t.version, " US("t.created_at") ", " US("t.updated_at")
    ", " US("t.completed_at") ", te_task_reminders(t.id)::text, " US("t.series_start")
    ", t.series_ended";

enum { C_ID, C_USER, C_TITLE, C_DESC, C_PRIO, C_STATUS, C_DUE, C_TZ, C_TAGS, C_RRULE, C_RZONE,
       C_RANCHOR, C_SERIES, C_OCC, C_VERSION, C_CREATED, C_UPDATED, C_COMPLETED, C_REMINDERS,
       C_SERIES_START, C_SERIES_ENDED };

static void fail(char *errstr, size_t size, const char *what, const PGresult *res,
                 const PGconn *c) {
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    snprintf(errstr, size, "%s: %s", what, m ? m : (c ? PQerrorMessage(c) : "error"));
}

static int ok(PGresult *res) {
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Runs a parameterised statement; the result is returned only on success. */
static PGresult *run(PGconn *c, const char *what, const char *sql, int n, const char *const *v,
                     char *errstr, size_t size) {
    PGresult *res = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
    if (!ok(res)) {
        fail(errstr, size, what, res, c);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Writes inside a transaction are deferred and sent together (one round
 * trip: libpq pipeline) when a result is needed or at commit.  The batch
 * is per thread: a connection is used by one thread at a time. */
#define BATCH_MAX 16
#define BATCH_PARAMS 20
typedef struct batch_s {
    PGconn *conn;       /* the connection with an open write transaction */
    long long seq;      /* the user's sequence as of the last change */
    int n;
    struct {
        const char *sql; /* static text */
        const char *what;
        int nparams;
        char *params[BATCH_PARAMS];
    } q[BATCH_MAX];
} batch_t;
static __thread batch_t tl_batch;

static void batch_clear(batch_t *b) {
    for (int i = 0; i < b->n; i++)
        for (int k = 0; k < b->q[i].nparams; k++) free(b->q[i].params[k]);
    b->n = 0;
}

/* Runs what is pending on c (nothing when no batch is open on c). */
static int batch_flush(PGconn *c, char *errstr, size_t size) {
    batch_t *b = &tl_batch;
    if (b->conn != c || b->n == 0) return 0;
    td_pg_stmt_t st[BATCH_MAX];
    for (int i = 0; i < b->n; i++)
        st[i] = (td_pg_stmt_t){b->q[i].sql, b->q[i].nparams, (const char *const *)b->q[i].params, NULL};
    int rc = td_pg_pipeline(c, st, (size_t)b->n, errstr, size);
    for (int i = 0; rc == 0 && i < b->n; i++) PQclear(st[i].res);
    batch_clear(b);
    return rc;
}

/* Runs now, or defers while a write batch is open on c (the copies of the
 * parameters live in the batch). */
static int exec_or_defer(PGconn *c, const char *what, const char *sql, int n, const char *const *v,
                         char *errstr, size_t size) {
    batch_t *b = &tl_batch;
    if (b->conn != c) {
        PGresult *res = run(c, what, sql, n, v, errstr, size);
        PQclear(res);
        return res ? 0 : -1;
    }
    if (b->n == BATCH_MAX && batch_flush(c, errstr, size) != 0) return -1;
    b->q[b->n].sql = sql;
    b->q[b->n].what = what;
    b->q[b->n].nparams = n;
    for (int k = 0; k < n; k++) b->q[b->n].params[k] = v[k] ? strdup(v[k]) : NULL;
    b->n++;
    return 0;
}

int store_is_uuid(const char *s) {
    uuid_t u;
    return s && strlen(s) == 36 && uuid_parse(s, u) == 0;
}

void stored_task_clear(stored_task_t *st) {
    te_task_destroy(st->task);
    json_object_put(st->reminders);
    memset(st, 0, sizeof *st);
}

static const char *val(const PGresult *res, int r, int c) {
    return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

static te_time_t val_time(const PGresult *res, int r, int c) {
    const char *v = val(res, r, c);
    return v ? (te_time_t)strtoll(v, NULL, 10) : 0;
}

int store_task_from_row(const PGresult *res, int r, int col0, stored_task_t *st) {
    memset(st, 0, sizeof *st);
    te_task_t *t = te_task_new();
    if (!t) return -1;
    st->task = t;
#define V(c) val(res, r, col0 + (c))
    int bad = te_task_set_id(t, V(C_ID)) || te_task_set_user_id(t, V(C_USER)) ||
              te_task_set_title(t, V(C_TITLE)) || te_task_set_description(t, V(C_DESC)) ||
              te_task_set_priority(t, (te_priority_t)atoi(V(C_PRIO))) ||
              te_task_set_status(t, strcmp(V(C_STATUS), "completed") == 0 ? TE_STATUS_COMPLETED
                                                                         : TE_STATUS_PENDING) ||
              te_task_set_due(t, V(C_DUE) != NULL, val_time(res, r, col0 + C_DUE)) ||
              te_task_set_timezone(t, V(C_TZ)) ||
              te_task_set_created_at(t, val_time(res, r, col0 + C_CREATED)) ||
              te_task_set_updated_at(t, val_time(res, r, col0 + C_UPDATED)) ||
              te_task_set_completed_at(t, val_time(res, r, col0 + C_COMPLETED));
    if (!bad && V(C_RRULE))
        bad = te_task_set_recurrence(t, V(C_RRULE), V(C_RZONE), V(C_RANCHOR)) ||
              te_task_set_series(t, V(C_SERIES), V(C_OCC) ? atoi(V(C_OCC)) : 0);
    json_object *tags = json_tokener_parse(V(C_TAGS) ? V(C_TAGS) : "[]");
    for (size_t i = 0; !bad && tags && i < json_object_array_length(tags); i++)
        bad = te_task_add_tag(t, json_object_get_string(json_object_array_get_idx(tags, i)));
    json_object_put(tags);
    st->version = atoi(V(C_VERSION));
    st->series_start = val_time(res, r, col0 + C_SERIES_START);
    st->series_ended = V(C_SERIES_ENDED) && strcmp(V(C_SERIES_ENDED), "t") == 0;
    st->reminders = json_tokener_parse(V(C_REMINDERS) ? V(C_REMINDERS) : "[]");
    for (size_t i = 0; !bad && st->reminders && i < json_object_array_length(st->reminders); i++) {
        json_object *rem = json_object_array_get_idx(st->reminders, i), *x;
        te_reminder_t rm = {0};
        if (json_object_object_get_ex(rem, "offset_minutes", &x)) {
            rm.kind = TE_REMINDER_RELATIVE;
            rm.offset_minutes = json_object_get_int(x);
        } else if (json_object_object_get_ex(rem, "at", &x)) {
            rm.kind = TE_REMINDER_ABSOLUTE;
            bad = te_time_parse(json_object_get_string(x), &rm.at, NULL, NULL, 0) != TE_OK;
        }
        if (!bad) bad = te_task_add_reminder(t, &rm);
    }
#undef V
    if (bad || !st->reminders) {
        stored_task_clear(st);
        return -1;
    }
    return 0;
}

int store_task_load(PGconn *c, const char *user, const char *id, int lock, stored_task_t *st,
                    char *errstr, size_t size) {
    if (!store_is_uuid(id)) return 0;
    if (batch_flush(c, errstr, size) != 0) return -1;
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s FROM tasks t WHERE t.id = $1::uuid AND t.user_id = $2%s",
             STORE_TASK_COLUMNS, lock ? " FOR UPDATE" : "");
    const char *v[2] = {id, user};
    PGresult *res = run(c, "load task", sql, 2, v, errstr, size);
    if (!res) return -1;
    int found = PQntuples(res) == 1;
    if (found && store_task_from_row(res, 0, 0, st) != 0) {
        snprintf(errstr, size, "load task: unreadable row");
        found = -1;
    }
    PQclear(res);
    return found;
}

te_time_t store_ms(te_time_t t) { return t - ((t % 1000) + 1000) % 1000; }

/* UTC with milliseconds ("" when absent); buf: TE_TIME_STRLEN bytes. */
static void fmt_time(te_time_t t, int present, char *buf) {
    t = store_ms(t);
    if (!present || te_time_format_utc(t, buf, TE_TIME_STRLEN - 4) != TE_OK) {
        buf[0] = '\0';
    } else if (!strchr(buf, '.')) {
        size_t n = strlen(buf); /* "...SSZ" -> "...SS.000Z" */
        memcpy(buf + n - 1, ".000Z", 6);
    }
}

void store_fmt_ms(te_time_t t, char buf[TE_TIME_STRLEN]) { fmt_time(t, 1, buf); }

void store_ms_time(json_object *o, const char *key) {
    json_object *v = NULL;
    te_time_t t;
    char buf[TE_TIME_STRLEN];
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
        te_time_parse(json_object_get_string(v), &t, NULL, NULL, 0) != TE_OK)
        return;
    fmt_time(t, 1, buf);
    if (buf[0]) json_object_object_add(o, key, json_object_new_string(buf));
}

json_object *store_task_json(const stored_task_t *st, te_time_t now) {
    json_object *o = NULL;
    if (te_task_to_json_object(st->task, now, &o) != TE_OK) return NULL;
    static const char *const TIMES[] = {"due_date", "created_at", "updated_at", "completed_at"};
    for (size_t i = 0; i < sizeof TIMES / sizeof TIMES[0]; i++) store_ms_time(o, TIMES[i]);
    json_object_object_add(o, "reminders", json_object_get(st->reminders));
    json_object_object_add(o, "version", json_object_new_int(st->version));
    json_object *rec = NULL;
    if (json_object_object_get_ex(o, "recurrence", &rec) && json_object_is_type(rec, json_type_object))
        json_object_object_add(rec, "ended", json_object_new_boolean(st->series_ended));
    return o;
}

int store_begin_write(PGconn *c, const char *user, char *errstr, size_t size) {
    /* Lock the user's sequence row first, always (one lock order: no
     * deadlocks); it is held until commit, so the next numbers are ours. */
    const char *v[1] = {user};
    td_pg_stmt_t st[2] = {
        {"BEGIN", 0, NULL, NULL},
        {"INSERT INTO user_seq (user_id, seq) VALUES ($1, 0) ON CONFLICT (user_id) "
         "DO UPDATE SET seq = user_seq.seq RETURNING seq",
         1, v, NULL}};
    batch_clear(&tl_batch);
    tl_batch.conn = NULL;
    if (td_pg_pipeline(c, st, 2, errstr, size) != 0) {
        store_rollback(c);
        return -1;
    }
    tl_batch.conn = c;
    tl_batch.seq = strtoll(PQgetvalue(st[1].res, 0, 0), NULL, 10);
    PQclear(st[0].res);
    PQclear(st[1].res);
    return 0;
}

int store_commit(PGconn *c, char *errstr, size_t size) {
    int rc = exec_or_defer(c, "commit", "COMMIT", 0, NULL, errstr, size);
    if (rc == 0) rc = batch_flush(c, errstr, size);
    tl_batch.conn = NULL;
    return rc;
}

void store_rollback(PGconn *c) {
    if (tl_batch.conn == c) {
        batch_clear(&tl_batch);
        tl_batch.conn = NULL;
    }
    PQclear(PQexec(c, "ROLLBACK"));
}


/* tasks.search from the title ($3), description ($4) and tags ($9). */
#define SEARCH_EXPR                                                                              \
    "($3 || E'\\x1f' || coalesce($4, '') || E'\\x1f' || "                                     \
    "array_to_string(ARRAY(SELECT json_array_elements_text($9::json)), E'\\x1f'))"

static int rrule_present(const te_task_t *t) { return te_task_rrule(t) != NULL; }

int store_task_write(PGconn *c, const stored_task_t *st, int insert, char *errstr, size_t size) {
    const te_task_t *t = st->task;
    te_time_t due;
    int has_due = te_task_due(t, &due);
    char due_s[TE_TIME_STRLEN], cr_s[TE_TIME_STRLEN], up_s[TE_TIME_STRLEN], co_s[TE_TIME_STRLEN];
    fmt_time(due, has_due, due_s);
    fmt_time(te_task_created_at(t), 1, cr_s);
    fmt_time(te_task_updated_at(t), 1, up_s);
    fmt_time(te_task_completed_at(t), te_task_completed_at(t) != 0, co_s);
    char prio[4], occ[16], ver[16], start_s[TE_TIME_STRLEN];
    fmt_time(st->series_start, rrule_present(t) && st->series_start != 0, start_s);
    snprintf(prio, sizeof prio, "%d", (int)te_task_priority(t));
    snprintf(occ, sizeof occ, "%d", te_task_occurrence(t));
    snprintf(ver, sizeof ver, "%d", st->version);
    json_object *tags = json_object_new_array();
    for (size_t i = 0; i < te_task_tag_count(t); i++)
        json_object_array_add(tags, json_object_new_string(te_task_tag(t, i)));
    const char *rrule = te_task_rrule(t);
    const char *v[20] = {
        te_task_id(t), te_task_user_id(t), te_task_title(t), te_task_description(t), prio,
        te_status_name(te_task_status(t)), due_s[0] ? due_s : NULL, te_task_timezone(t),
        json_object_to_json_string_ext(tags, JSON_C_TO_STRING_PLAIN),
        rrule, rrule ? te_task_recurrence_zone(t) : NULL,
        rrule ? te_task_recurrence_anchor(t) : NULL, rrule ? te_task_series_id(t) : NULL,
        rrule ? occ : NULL, ver, cr_s, up_s, co_s[0] ? co_s : NULL, start_s[0] ? start_s : NULL,
        rrule && st->series_ended ? "true" : "false"};
    static const char ins[] =
        "INSERT INTO tasks (id, user_id, title, description, priority, status, due_at, timezone, "
        "tags, tags_lower, rrule, rrule_zone, rrule_anchor, series_id, occurrence, version, "
        "created_at, updated_at, completed_at, search, series_start, series_ended) VALUES ($1::uuid, $2, $3, $4, $5::smallint, $6, "
        "$7::timestamptz, $8, ARRAY(SELECT json_array_elements_text($9::json)), "
        "ARRAY(SELECT te_fold(json_array_elements_text($9::json))), $10, $11, $12, $13::uuid, "
        "$14::int, $15::int, $16::timestamptz, $17::timestamptz, $18::timestamptz, " SEARCH_EXPR
        ", $19::timestamptz, $20::boolean)";
    static const char upd[] =
        "UPDATE tasks SET title = $3, description = $4, priority = $5::smallint, status = $6, "
        "due_at = $7::timestamptz, timezone = $8, "
        "tags = ARRAY(SELECT json_array_elements_text($9::json)), "
        "tags_lower = ARRAY(SELECT te_fold(json_array_elements_text($9::json))), rrule = $10, "
        "rrule_zone = $11, rrule_anchor = $12, series_id = $13::uuid, occurrence = $14::int, "
        "version = $15::int, created_at = $16::timestamptz, updated_at = $17::timestamptz, "
        "completed_at = $18::timestamptz, search = " SEARCH_EXPR ", series_start = $19::timestamptz, "
        "series_ended = $20::boolean WHERE id = $1::uuid AND user_id = $2";
    int rc = exec_or_defer(c, insert ? "insert task" : "update task", insert ? ins : upd, 20, v,
                           errstr, size);
    json_object_put(tags);
    return rc;
}

static int reload_reminders(PGconn *c, stored_task_t *st, char *errstr, size_t size) {
    const char *v[1] = {te_task_id(st->task)};
    PGresult *res = run(c, "reminders", "SELECT te_task_reminders($1::uuid)::text", 1, v, errstr,
                        size);
    if (!res) return -1;
    json_object *r = json_tokener_parse(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!r) {
        snprintf(errstr, size, "reminders: unreadable");
        return -1;
    }
    json_object_put(st->reminders);
    st->reminders = r;
    return 0;
}

int store_sync_reminders(PGconn *c, stored_task_t *st, int had_any, te_time_t now, char *errstr,
                         size_t size) {
    const te_task_t *t = st->task;
    if (!had_any && te_task_reminder_count(t) == 0) {
        json_object_put(st->reminders);
        st->reminders = json_object_new_array();
        return st->reminders ? 0 : -1;
    }
    if (batch_flush(c, errstr, size) != 0) return -1;
    const char *id = te_task_id(t);
    /* The wanted set as JSON: [{"offset_minutes": n} | {"at": "..."}]. */
    json_object *want = json_object_new_array();
    for (size_t i = 0; i < te_task_reminder_count(t); i++) {
        te_reminder_t rm;
        te_task_reminder(t, i, &rm);
        json_object *o = json_object_new_object();
        if (rm.kind == TE_REMINDER_RELATIVE) {
            json_object_object_add(o, "offset_minutes", json_object_new_int(rm.offset_minutes));
        } else {
            char at[TE_TIME_STRLEN];
            fmt_time(rm.at, 1, at);
            json_object_object_add(o, "at", json_object_new_string(at));
        }
        json_object_array_add(want, o);
    }
    te_time_t due;
    char due_s[TE_TIME_STRLEN], now_s[TE_TIME_STRLEN];
    fmt_time(due, te_task_due(t, &due), due_s);
    fmt_time(now, 1, now_s);
    const char *v[5] = {id, json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN),
                        due_s[0] ? due_s : NULL, te_status_name(te_task_status(t)), now_s};
    /* Keep rows whose (offset | at) is still wanted, drop the others, add
     * the new ones, then recompute every remind_at and status. */
    static const char sql[] =
        "WITH w AS (SELECT (e->>'offset_minutes')::int AS off, (e->>'at')::timestamptz AS at "
        "           FROM json_array_elements($2::json) e), "
        "del AS (DELETE FROM reminders r WHERE r.task_id = $1::uuid AND NOT EXISTS ("
        "        SELECT 1 FROM w WHERE w.off IS NOT DISTINCT FROM r.offset_minutes "
        "        AND w.at IS NOT DISTINCT FROM r.at)), "
        "ins AS (INSERT INTO reminders (id, task_id, user_id, offset_minutes, at, created_at) "
        "        SELECT gen_random_uuid(), $1::uuid, t.user_id, w.off, w.at, $3::timestamptz "
        "        FROM w, tasks t WHERE t.id = $1::uuid AND NOT EXISTS ("
        "          SELECT 1 FROM reminders r WHERE r.task_id = $1::uuid "
        "          AND w.off IS NOT DISTINCT FROM r.offset_minutes "
        "          AND w.at IS NOT DISTINCT FROM r.at)) "
        "SELECT 1";
    const char *v3[3] = {v[0], v[1], v[4]};
    PGresult *res = run(c, "reminders", sql, 3, v3, errstr, size);
    json_object_put(want);
    if (!res) return -1;
    PQclear(res);
    /* moved: its time changed.  rearm: it moved to (or, uncompleted, is
     * again) a future time — pending again.  Either way a firing in
     * progress for the old time is abandoned (fire_id reset; todo-reminder
     * drops its deliveries), so a reminder moved into the past fires at
     * once.  A completed task's reminders are cancelled, also sent ones
     * moved to a future time, so that uncompleting re-arms them. */
    static const char resched[] =
        "UPDATE reminders r SET remind_at = n.ra, "
        " status = CASE WHEN $3 = 'completed' THEN "
        "                 CASE WHEN r.status = 'pending' OR (n.moved AND n.future) THEN 'cancelled' "
        "                      ELSE r.status END "
        "               WHEN n.rearm THEN 'pending' ELSE r.status END, "
        " sent_at = CASE WHEN n.moved AND n.future THEN NULL ELSE r.sent_at END, "
        " fire_id = CASE WHEN $3 <> 'completed' AND (n.rearm OR (n.moved AND r.status = 'pending')) "
        "                THEN NULL ELSE r.fire_id END, "
        " late = CASE WHEN $3 <> 'completed' AND (n.rearm OR (n.moved AND r.status = 'pending')) "
        "             THEN false ELSE r.late END "
        "FROM (SELECT id, ra, moved, future, future AND (status = 'cancelled' OR moved) AS rearm "
        "      FROM (SELECT id, status, ra, ra IS DISTINCT FROM remind_at AS moved, "
        "                   coalesce(ra > $4::timestamptz, false) AS future "
        "            FROM (SELECT id, status, remind_at, CASE WHEN offset_minutes IS NOT NULL "
        "                         THEN $2::timestamptz - offset_minutes * interval '1 minute' "
        "                         ELSE at END AS ra FROM reminders WHERE task_id = $1::uuid) x) y) n "
        "WHERE r.id = n.id AND (n.moved OR n.rearm OR ($3 = 'completed' AND r.status = 'pending'))";
    const char *v2[4] = {id, v[2], v[3], v[4]};
    res = run(c, "reschedule reminders", resched, 4, v2, errstr, size);
    if (!res) return -1;
    PQclear(res);
    return reload_reminders(c, st, errstr, size);
}

int store_task_delete(PGconn *c, const char *user, const char *id, char *errstr, size_t size) {
    const char *v[2] = {id, user};
    return exec_or_defer(c, "delete task", "DELETE FROM tasks WHERE id = $1::uuid AND user_id = $2", 2,
                         v, errstr, size);
}

static const char *const DIFF_FIELDS[] = {"title",    "description", "priority",   "status",
                                          "tags",     "due_date",    "timezone",   "reminders",
                                          "recurrence", "completed_at", NULL};

/* What a client set on a reminder ({offset_minutes} or {at}): status and
 * remind_at follow from other fields and are not changes of their own. */
static json_object *reminders_set(json_object *arr) {
    json_object *out = json_object_new_array();
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *r = json_object_array_get_idx(arr, i), *x, *o = json_object_new_object();
        if (json_object_object_get_ex(r, "offset_minutes", &x))
            json_object_object_add(o, "offset_minutes", json_object_get(x));
        if (json_object_object_get_ex(r, "at", &x)) json_object_object_add(o, "at", json_object_get(x));
        json_object_array_add(out, o);
    }
    return out;
}

static int same_field(const char *name, json_object *a, json_object *b) {
    if (strcmp(name, "reminders") != 0) return json_object_equal(a, b);
    json_object *x = reminders_set(a), *y = reminders_set(b);
    int same = json_object_equal(x, y);
    json_object_put(x);
    json_object_put(y);
    return same;
}

json_object *store_diff(json_object *before, json_object *after) {
    json_object *changes = NULL;
    for (size_t i = 0; DIFF_FIELDS[i]; i++) {
        json_object *a = NULL, *b = NULL;
        json_object_object_get_ex(before, DIFF_FIELDS[i], &a);
        json_object_object_get_ex(after, DIFF_FIELDS[i], &b);
        if (same_field(DIFF_FIELDS[i], a, b)) continue;
        if (!changes) changes = json_object_new_object();
        json_object *ch = json_object_new_object();
        json_object_object_add(ch, "old", json_object_get(a));
        json_object_object_add(ch, "new", json_object_get(b));
        json_object_object_add(changes, DIFF_FIELDS[i], ch);
    }
    return changes;
}

/* Builds, checks and encodes one event; *out freed with te_free. */
static int encode_event(const store_ctx_t *rq, const char *type, const char *task_id, json_object *data,
                        char **out, size_t *len, char *errstr, size_t size) {
    te_event_t *ev = NULL;
    char subject[64];
    snprintf(subject, sizeof subject, "tasks/%s", task_id);
    te_err_t e = te_event_create(&ev, type, rq->source ? rq->source : "/todo-api", errstr, size);
    if (e == TE_OK) e = te_event_set_subject(ev, subject, errstr, size);
    if (e == TE_OK) e = te_event_set_partitionkey(ev, rq->user, errstr, size);
    if (e == TE_OK && rq->traceparent && rq->traceparent[0])
        e = te_event_set_traceparent(ev, rq->traceparent, errstr, size);
    if (e == TE_OK) e = te_event_set_time(ev, rq->now);
    if (e == TE_OK) e = te_event_set_data_object(ev, json_object_get(data));
    if (e == TE_OK) {
        te_problems_t *p = te_problems_new();
        e = te_catalog_validate_event(ev, p);
        if (e != TE_OK && p && te_problems_count(p) > 0)
            te_problems_format(p, 0, errstr, size);
        te_problems_destroy(p);
    }
    if (e == TE_OK) e = te_event_to_json(ev, 0, out, len, errstr, size);
    te_event_destroy(ev);
    return e == TE_OK ? 0 : -1;
}

/* Outbox rows of one change (at most 3 events). */
typedef struct outrows_s {
    char *payload[3];
    const char *topic[3];
    int n;
} outrows_t;

static int add_event(outrows_t *o, const store_ctx_t *rq, const char *type, const char *task_id, json_object *data,
                     char *errstr, size_t size) {
    char why[TE_ERRSTR_SIZE];
    size_t len;
    if (encode_event(rq, type, task_id, data, &o->payload[o->n], &len, why, sizeof why) != 0) {
        snprintf(errstr, size, "event %s: %s", type, why);
        return -1;
    }
    o->topic[o->n++] = te_catalog_topic_for(type);
    return 0;
}

static int outbox_insert(PGconn *c, const outrows_t *o, const char *key, char *errstr, size_t size) {
    /* static texts: the deferred batch keeps a pointer to the SQL */
    static const char *const SQL[4] = {
        NULL, "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3)",
        "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3), ($4, $5, $6)",
        "INSERT INTO outbox (topic, key, payload) VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9)"};
    const char *v[9];
    for (int i = 0; i < o->n; i++) {
        v[3 * i] = o->topic[i];
        v[3 * i + 1] = key;
        v[3 * i + 2] = o->payload[i];
    }
    return exec_or_defer(c, "outbox", SQL[o->n], 3 * o->n, v, errstr, size);
}

int store_record_change(PGconn *c, const store_ctx_t *rq, const char *op, const char *task_id,
                        json_object *task_json, json_object *changes, int also_updated,
                        char *errstr, size_t size) {
    char at[TE_TIME_STRLEN], type[64];
    fmt_time(rq->now, 1, at);
    const char *v[6] = {rq->user, op, task_id,
                        task_json ? json_object_to_json_string_ext(task_json, JSON_C_TO_STRING_PLAIN)
                                  : NULL,
                        changes ? json_object_to_json_string_ext(changes, JSON_C_TO_STRING_PLAIN)
                                : NULL,
                        at};
    /* The user's next sequence number (the row is locked since
     * store_begin_write) and the change-log row. */
    if (tl_batch.conn != c) {
        snprintf(errstr, size, "change log: no write transaction");
        return -1;
    }
    long long seq = ++tl_batch.seq;
    char seq_s[24];
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    const char *cv[7] = {v[0], v[1], v[2], v[3], v[4], v[5], seq_s};
    if (exec_or_defer(c, "change log",
                      "WITH s AS (UPDATE user_seq SET seq = $7::bigint WHERE user_id = $1) "
                      "INSERT INTO changes (user_id, seq, op, task_id, task, changes, at) "
                      "VALUES ($1, $7::bigint, $2, $3::uuid, $4::jsonb, $5::jsonb, $6::timestamptz)",
                      7, cv, errstr, size) != 0)
        return -1;

    outrows_t o = {.n = 0};
    int rc = 0;
    /* task.events: task.updated (with changes), then the op's own event */
    if ((strcmp(op, "updated") == 0 || also_updated) && changes) {
        json_object *upd = json_object_new_object();
        json_object_object_add(upd, "task_id", json_object_new_string(task_id));
        json_object_object_add(upd, "user_id", json_object_new_string(rq->user));
        json_object_object_add(upd, "changes", json_object_get(changes));
        json_object_object_add(upd, "task", json_object_get(task_json));
        rc = add_event(&o, rq, "com.todo.task.updated", task_id, upd, errstr, size);
        json_object_put(upd);
    }
    if (rc == 0 && strcmp(op, "updated") != 0) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "task_id", json_object_new_string(task_id));
        json_object_object_add(d, "user_id", json_object_new_string(rq->user));
        if (strcmp(op, "deleted") == 0) {
            json_object_object_add(d, "deleted_at", json_object_new_string(at));
        } else {
            json_object_object_add(d, "task", json_object_get(task_json));
            if (strcmp(op, "completed") == 0) {
                json_object *ca = NULL;
                json_object_object_get_ex(task_json, "completed_at", &ca);
                json_object_object_add(d, "completed_at", json_object_get(ca));
            }
        }
        snprintf(type, sizeof type, "com.todo.task.%s", op);
        rc = add_event(&o, rq, type, task_id, d, errstr, size);
        json_object_put(d);
    }
    /* sync.events: the change with its sequence number */
    if (rc == 0) {
        json_object *sy = json_object_new_object();
        json_object_object_add(sy, "user_id", json_object_new_string(rq->user));
        json_object_object_add(sy, "seq", json_object_new_int64(seq));
        json_object_object_add(sy, "task_id", json_object_new_string(task_id));
        json_object_object_add(sy, "op", json_object_new_string(op));
        json_object_object_add(sy, "task", task_json ? json_object_get(task_json) : NULL);
        if (changes) json_object_object_add(sy, "changes", json_object_get(changes));
        snprintf(type, sizeof type, "com.todo.sync.task.%s", op);
        rc = add_event(&o, rq, type, task_id, sy, errstr, size);
        json_object_put(sy);
    }
    if (rc == 0) rc = outbox_insert(c, &o, rq->user, errstr, size);
    for (int i = 0; i < o.n; i++) te_free(o.payload[i]);
    return rc;
}

long long store_user_seq(PGconn *c, const char *user, char *errstr, size_t size) {
    const char *v[1] = {user};
    PGresult *res = run(c, "user sequence",
                        "SELECT coalesce((SELECT seq FROM user_seq WHERE user_id = $1), 0)", 1, v,
                        errstr, size);
    if (!res) return -1;
    long long s = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return s;
}
