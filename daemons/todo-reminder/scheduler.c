/* The scheduler: fires due reminders on time, once (docs/reminder.md).
 *
 * One transaction per batch claims due reminders with FOR UPDATE SKIP
 * LOCKED, gives each a firing id (the reminder.due event id), and in one
 * more statement writes the events to the outbox and creates their
 * deliveries (intake.c): a reminder
 * is fired exactly when its row says so, whatever happens to this process
 * or its replicas, and a burst of thousands is a handful of statements.
 * Times come from PostgreSQL's clock, which every replica shares. */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "pg.h"
#include "reminder.h"

/* $1 batch, $2 late after (s), $3 grace (s).  now(): the transaction
 * began just before, and unlike clock_timestamp() it bounds the index scan
 * (future reminders are not read). */
static const char CLAIM_SQL[] =
    "WITH due AS (SELECT id FROM reminders "
    "              WHERE status = 'pending' AND fire_id IS NULL AND remind_at <= now() "
    "              ORDER BY remind_at LIMIT $1 FOR UPDATE SKIP LOCKED) "
    "UPDATE reminders r SET fire_id = gen_random_uuid(), fired_at = clock_timestamp(), "
    "       late = now() - r.remind_at > $2 * interval '1 second', "
    "       status = CASE WHEN now() - r.remind_at > $3 * interval '1 second' "
    "                     THEN 'missed' ELSE r.status END "
    "  FROM due WHERE r.id = due.id "
    "RETURNING r.id, r.fire_id, r.task_id, r.user_id, te_ts(r.remind_at), r.late, r.status, "
    "  (SELECT t.title FROM tasks t WHERE t.id = r.task_id), "
    "  (SELECT te_ts(t.due_at) FROM tasks t WHERE t.id = r.task_id), "
    "  coalesce((SELECT array_to_json(s.channels)::text FROM notification_settings s "
    "             WHERE s.user_id = r.user_id), '[\"in_app\"]')";

/* The reminder.due data of claimed row i. */
static json_object *due_data(const PGresult *res, int i) {
    json_object *d = json_object_new_object();
    json_object_object_add(d, "reminder_id", json_object_new_string(PQgetvalue(res, i, 0)));
    json_object_object_add(d, "task_id", json_object_new_string(PQgetvalue(res, i, 2)));
    json_object_object_add(d, "user_id", json_object_new_string(PQgetvalue(res, i, 3)));
    json_object_object_add(d, "title", json_object_new_string(PQgetvalue(res, i, 7)));
    json_object_object_add(d, "remind_at", json_object_new_string(PQgetvalue(res, i, 4)));
    json_object_object_add(d, "due_date", PQgetisnull(res, i, 8) ? NULL
                                                                 : json_object_new_string(PQgetvalue(res, i, 8)));
    json_object *ch = json_tokener_parse(PQgetvalue(res, i, 9));
    json_object_object_add(d, "channels", ch ? ch : json_object_new_array());
    json_object_object_add(d, "late", json_object_new_boolean(PQgetvalue(res, i, 5)[0] == 't'));
    return d;
}

/* Fires one batch.  Returns the number of reminders claimed, -1 on error. */
static int fire_batch(rem_t *r, PGconn *c, char *err, size_t n) {
    if (td_pg_exec(c, "BEGIN", err, n) != 0) return -1;
    char batch[24], late[24], grace[24];
    snprintf(batch, sizeof batch, "%ld", r->cfg.batch);
    snprintf(late, sizeof late, "%ld", r->cfg.late_after_s);
    snprintf(grace, sizeof grace, "%ld", r->cfg.grace_s);
    const char *v[3] = {batch, late, grace};
    PGresult *res = PQexecParams(c, CLAIM_SQL, 3, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, n, "claim reminders: %s", PQresultErrorMessage(res));
        PQclear(res);
        td_pg_exec(c, "ROLLBACK", NULL, 0);
        return -1;
    }
    int rows = PQntuples(res), due = 0, lates = 0, missed = 0, rc = rows;
    intake_batch_t b;
    intake_batch_init(&b);
    for (int i = 0; i < rows && rc >= 0; i++) {
        if (strcmp(PQgetvalue(res, i, 6), "missed") == 0) {
            missed++;
            td_logf(TD_LOG_WARN, NULL, "reminder %s of task %s missed: due %s, beyond the grace window",
                    PQgetvalue(res, i, 0), PQgetvalue(res, i, 2), PQgetvalue(res, i, 4));
            continue;
        }
        json_object *data = due_data(res, i);
        char *ev = td_event_json(TE_EVENT_REMINDER_DUE, SOURCE, PQgetvalue(res, i, 1), PQgetvalue(res, i, 3),
                                 NULL, json_object_get(data), err, n);
        if (!ev || intake_batch_add(&b, PQgetvalue(res, i, 1), data, ev, NULL, err, n) != 0) rc = -1;
        json_object_put(data);
        te_free(ev);
        if (PQgetvalue(res, i, 5)[0] == 't') lates++;
        else due++;
    }
    PQclear(res);
    td_pg_stmt_t st[3];
    size_t ns = 0;
    if (rc >= 0 && intake_batch_count(&b) > 0) ns += intake_batch_statements(&b, 1, st);
    if (rc >= 0) {
        st[ns++] = (td_pg_stmt_t){"COMMIT", 0, NULL, NULL};
        if (td_pg_pipeline(c, st, ns, err, n) != 0) rc = -1;
    }
    if (rc < 0) {
        td_pg_exec(c, "ROLLBACK", NULL, 0);
    } else if (ns > 1) {
        int current = 0, made = 0;
        intake_batch_account(r, &b, st[0].res, &current, &made);
    }
    if (rc >= 0)
        for (size_t i = 0; i < ns; i++) PQclear(st[i].res);
    intake_batch_free(&b);
    if (rc < 0) return -1;
    static const char *const L_DUE[] = {"due"}, *const L_LATE[] = {"late"}, *const L_MISSED[] = {"missed"};
    if (due) td_metric_inc(r->m_fired, L_DUE, due);
    if (lates) td_metric_inc(r->m_fired, L_LATE, lates);
    if (missed) td_metric_inc(r->m_fired, L_MISSED, missed);
    if (lates) td_logf(TD_LOG_INFO, NULL, "fired %d reminders late (after downtime)", lates);
    return rc;
}

/* Milliseconds until the earliest waiting reminder (capped), from
 * PostgreSQL's clock. */
static long next_wait_ms(rem_t *r, PGconn *c) {
    PGresult *res = PQexec(c, "SELECT extract(epoch FROM min(remind_at) - clock_timestamp()) * 1000 "
                              "FROM reminders WHERE status = 'pending' AND fire_id IS NULL");
    long wait = r->cfg.max_sleep_ms;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && !PQgetisnull(res, 0, 0)) {
        double ms = ceil(strtod(PQgetvalue(res, 0, 0), NULL));
        wait = ms <= 0 ? 0 : ms < (double)wait ? (long)ms : wait;
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        wait = 1000;
    }
    PQclear(res);
    return wait;
}

/* Several scheduler threads claim side by side in a burst (SKIP LOCKED
 * splits it between them); each has its own connection and wake-up pipe.
 * Between bursts only the first one watches the clock. */
typedef struct sched_thread_s {
    rem_t *r;
    struct scheduler_s *sched;
    pthread_t thread;
    int wake[2];
    int first; /* waits for the next due time (LISTEN, timer), prunes; the
                  others sleep until it finds a full batch (a burst) */
} sched_thread_t;

/* Delivery rows of finished firings older than the retention, hourly, in
 * batches of 10 000 until none is left (the reminders keep their status and
 * sent_at; a firing still in progress keeps its rows, whose primary key
 * makes a redelivered event a no-op). */
static void prune_deliveries(rem_t *r, PGconn *c) {
    char days[24];
    snprintf(days, sizeof days, "%ld", r->cfg.retention_days);
    const char *v[1] = {days};
    long total = 0;
    for (int more = 1; more && !atomic_load(&r->stopping);) {
        PGresult *res = PQexecParams(
            c,
            "DELETE FROM reminder_deliveries WHERE ctid = ANY (ARRAY("
            "  SELECT d.ctid FROM reminder_deliveries d "
            "   WHERE d.created_at < now() - make_interval(days => $1::int) "
            "     AND d.status IN ('sent', 'failed', 'cancelled') "
            "     AND NOT EXISTS (SELECT 1 FROM reminders r WHERE r.fire_id = d.fire_id "
            "                     AND r.status = 'pending') LIMIT 10000))",
            1, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            td_logf(TD_LOG_WARN, NULL, "pruning delivery rows: %s", PQresultErrorMessage(res));
            more = 0;
        } else {
            long n = strtol(PQcmdTuples(res), NULL, 10);
            total += n;
            more = n == 10000;
        }
        PQclear(res);
    }
    if (total) td_logf(TD_LOG_INFO, NULL, "pruned %ld delivery rows older than %ld days", total, r->cfg.retention_days);
}

struct scheduler_s {
    long n;       /* threads (all wake-up pipes exist before any starts) */
    long started; /* threads running */
    sched_thread_t *t;
};

static void wake_one(sched_thread_t *t) {
    char b = 1;
    if (t->wake[1] >= 0 && write(t->wake[1], &b, 1) < 0) {
        /* the pipe is full: a wake-up is pending anyway */
    }
}

void scheduler_wake(scheduler_t *s) {
    for (long i = 0; s && i < s->n; i++) wake_one(&s->t[i]);
}

static void *scheduler_main(void *arg) {
    sched_thread_t *t = arg;
    rem_t *r = t->r;
    PGconn *conn = NULL;
    int listening_pid = 0, down_logged = 0;
    time_t next_prune = time(NULL) + 60;
    while (!atomic_load(&r->stopping)) {
        char err[512] = "";
        PGconn *c = td_pg_keep(&conn, r->cfg.pg_url, &r->stopping, err, sizeof err);
        if (!c) {
            if (!down_logged++) td_logf(TD_LOG_ERROR, NULL, "scheduler: %s", err);
            td_pg_wait(NULL, t->wake[0], 1000);
            continue;
        }
        if (t->first && time(NULL) >= next_prune) {
            next_prune = time(NULL) + 3600;
            prune_deliveries(r, c);
        }
        if (down_logged) td_logf(TD_LOG_INFO, NULL, "scheduler: PostgreSQL is back");
        down_logged = 0;
        if (t->first && PQbackendPID(c) != listening_pid) { /* a new connection */
            if (td_pg_exec(c, "LISTEN te_reminders", err, sizeof err) != 0) {
                td_logf(TD_LOG_ERROR, NULL, "scheduler: %s", err);
                td_pg_wait(NULL, t->wake[0], 1000);
                continue;
            }
            listening_pid = PQbackendPID(c);
        }
        int fired = fire_batch(r, c, err, sizeof err);
        if (fired < 0) {
            td_logf(TD_LOG_ERROR, NULL, "scheduler: %s", err);
            td_pg_wait(NULL, t->wake[0], 1000);
            continue;
        }
        if (fired >= r->cfg.batch) { /* a burst: more are due, and the others help */
            if (t->first)
                for (long i = 1; i < t->sched->n; i++) wake_one(&t->sched->t[i]);
            continue;
        }
        if (!t->first) { /* until the next burst */
            td_pg_wait(NULL, t->wake[0], (int)r->cfg.max_sleep_ms);
            continue;
        }
        long wait = next_wait_ms(r, c);
        /* due but not claimed: another thread or replica holds them; look again soon */
        if (wait == 0 && fired == 0) wait = 20;
        if (wait > 0) td_pg_wait(c, t->wake[0], (int)wait);
    }
    if (conn) PQfinish(conn);
    return NULL;
}

scheduler_t *scheduler_start(rem_t *r, long threads, char *err, size_t n) {
    scheduler_t *s = calloc(1, sizeof *s);
    if (s) s->t = calloc((size_t)threads, sizeof *s->t);
    if (!s || !s->t) {
        free(s);
        snprintf(err, n, "scheduler: out of memory");
        return NULL;
    }
    int ok = 1;
    for (; s->n < threads; s->n++) { /* every pipe first: the first thread wakes the others */
        sched_thread_t *t = &s->t[s->n];
        t->r = r;
        t->sched = s;
        t->first = s->n == 0;
        if (pipe(t->wake) != 0) {
            ok = 0;
            break;
        }
        fcntl(t->wake[0], F_SETFL, O_NONBLOCK);
        fcntl(t->wake[1], F_SETFL, O_NONBLOCK);
    }
    for (; ok && s->started < s->n; s->started++)
        if (pthread_create(&s->t[s->started].thread, NULL, scheduler_main, &s->t[s->started]) != 0) ok = 0;
    if (!ok) {
        snprintf(err, n, "scheduler: cannot start its threads");
        atomic_store(&r->stopping, 1); /* the daemon does not start */
        scheduler_stop(s);
        return NULL;
    }
    return s;
}

void scheduler_stop(scheduler_t *s) {
    if (!s) return;
    scheduler_wake(s); /* r->stopping is set */
    for (long i = 0; i < s->started; i++) pthread_join(s->t[i].thread, NULL);
    for (long i = 0; i < s->n; i++) {
        close(s->t[i].wake[0]);
        close(s->t[i].wake[1]);
    }
    free(s->t);
    free(s);
}
