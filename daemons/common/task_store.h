/* Task persistence shared by the daemons that change tasks (todo-api,
 * todo-worker): rows <-> te_task_t, the per-user change sequence, the
 * change log and the outbox.  Write functions run inside the transaction
 * store_begin_write() opened; statements whose results are not needed are
 * deferred and sent with the commit (one round trip).
 *
 * Threads: functions may run on many threads at once, each with its own
 * connection (the deferred batch is per thread). */
#ifndef TD_TASK_STORE_H
#define TD_TASK_STORE_H

#include <json-c/json.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <todoevents/todoevents.h>

#include "pg.h"

/* Who makes a change: the events' partition key, trace and time. */
typedef struct store_ctx_s {
    const char *user;        /* the user id (JWT sub) */
    const char *traceparent; /* W3C traceparent for the events, "" or NULL for none */
    te_time_t now;           /* the change's time (milliseconds) */
    const char *source;      /* CloudEvents source, e.g. "/todo-api" */
} store_ctx_t;

/* 1 when s is a UUID in text form. */
int store_is_uuid(const char *s);

/* The columns store_task_from_row() reads, in order. */
extern const char STORE_TASK_COLUMNS[];

/* A loaded task: the model plus server-side state. */
typedef struct stored_task_s {
    te_task_t *task;
    int version;
    te_time_t series_start; /* recurring: the series' DTSTART (0 = none) */
    int series_ended;       /* recurring: COUNT/UNTIL reached */
    json_object *reminders; /* the reminders as shown (array), owned */
} stored_task_t;

void stored_task_clear(stored_task_t *st);

/* Row r of res (columns STORE_TASK_COLUMNS starting at column col0) into
 * st.  0 or -1 (out of memory / bad row). */
int store_task_from_row(const PGresult *res, int r, int col0, stored_task_t *st);

/* Loads the user's task (FOR UPDATE when lock).  1 found, 0 not found,
 * -1 error (errstr). */
int store_task_load(PGconn *c, const char *user, const char *id, int lock, stored_task_t *st,
                    char *errstr, size_t errstr_size);

/* t truncated to the millisecond (the API keeps times to the ms). */
te_time_t store_ms(te_time_t t);
/* UTC with milliseconds ("2026-04-01T10:00:00.000Z"); buf: TE_TIME_STRLEN. */
void store_fmt_ms(te_time_t t, char buf[TE_TIME_STRLEN]);

/* Rewrites the time string o[key] (if any) as UTC with milliseconds
 * ("…:00.000Z"), the API's one time format. */
void store_ms_time(json_object *o, const char *key);

/* The task as the API shows it (library JSON + reminders + version). */
json_object *store_task_json(const stored_task_t *st, te_time_t now);

/* Starts a write for user: BEGIN and lock the user's sequence row (held
 * until commit, so the user's changes get sequence numbers in commit
 * order).  0 or -1 (rolled back). */
int store_begin_write(PGconn *c, const char *user, char *errstr, size_t errstr_size);
int store_commit(PGconn *c, char *errstr, size_t errstr_size);
void store_rollback(PGconn *c);

/* Inserts (insert=1) or updates the task row from st->task (version is
 * st->version).  0 or -1. */
int store_task_write(PGconn *c, const stored_task_t *st, int insert, char *errstr, size_t errstr_size);
/* Replaces the task's reminders with the task model's, keeping rows that
 * did not change (their status stays); recomputes remind_at; cancels
 * pending ones when the task is completed, re-arms cancelled future ones
 * when it is pending again.  Reloads st->reminders.  had_any: the task
 * had reminders before (0 with none wanted: nothing to do).  0 or -1. */
int store_sync_reminders(PGconn *c, stored_task_t *st, int had_any, te_time_t now, char *errstr,
                         size_t errstr_size);
int store_task_delete(PGconn *c, const char *user, const char *id, char *errstr, size_t errstr_size);

/* Records one change: the change-log row and its events in the outbox
 * (task.events + sync.events) under the user's next sequence number,
 * notified to the relay.  op: created,
 * updated, completed, deleted.  task_json: state after (NULL for deleted);
 * changes: field -> {old,new} (may be NULL).  Both borrowed.
 * also_updated: for op completed, also emit task.updated (other fields
 * changed in the same request). */
int store_record_change(PGconn *c, const store_ctx_t *ctx, const char *op, const char *task_id,
                        json_object *task_json, json_object *changes, int also_updated,
                        char *errstr, size_t errstr_size);

/* field -> {old, new} for every client-visible field that differs. NULL
 * when nothing changed. */
json_object *store_diff(json_object *before, json_object *after);

/* Current sequence of user (0 when none yet); -1 on error. */
long long store_user_seq(PGconn *c, const char *user, char *errstr, size_t errstr_size);

/* The schema's migrations (generated from daemons/todo-api/migrations). */
extern const td_migration_t schema_migrations[];
extern const size_t schema_migrations_count;

#endif
