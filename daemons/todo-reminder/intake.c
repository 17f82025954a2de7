/* Turning firings into deliveries (docs/reminder.md): for each reminder.due,
 * one delivery row per channel (their primary key, firing id + channel,
 * makes a repeated event a no-op), the in-app notification in the outbox,
 * and the reminder's status when nothing else is left to deliver.
 *
 * Two callers share it: the scheduler, for the reminders it fires, in its
 * firing transaction (a batch of up to TE_REMINDER_BATCH in one statement:
 * this is what delivers a burst on time), and the reminder.due consumer,
 * for any event whose deliveries do not exist yet (one fired elsewhere,
 * or in an older version) — for the scheduler's own events it only finds
 * them there, with one read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "daemon.h"
#include "log.h"
#include "pg.h"
#include "reminder.h"
#include "task_store.h"

/* $1: [{fire_id, reminder_id, user_id, channels, event, nid, note}].  The
 * firing must still be the reminder's current one (it may have been moved,
 * completed or deleted since).  $2: also write each event to the outbox
 * (the scheduler's own firings).  One row per item: fire_id, current,
 * deliveries created, in-app created. */
static const char CREATE_SQL[] =
    "WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(fire_id uuid, reminder_id uuid, "
    "             user_id text, channels json, event text, nid uuid, note text)), "
    "cur AS (SELECT x.* FROM x JOIN reminders r "
    "          ON r.id = x.reminder_id AND r.fire_id = x.fire_id AND r.status = 'pending' "
    "        FOR UPDATE OF r), "
    "ins AS (INSERT INTO reminder_deliveries (fire_id, channel, reminder_id, user_id, delivery_id, "
    "            status, attempts, next_attempt_at, last_attempt_at, delivered_at, event) "
    "        SELECT cur.fire_id, ch, cur.reminder_id, cur.user_id, "
    "               CASE WHEN ch = 'in_app' THEN cur.nid ELSE gen_random_uuid() END, "
    "               CASE WHEN ch = 'in_app' THEN 'sent' ELSE 'pending' END, (ch = 'in_app')::int, "
    "               clock_timestamp(), CASE WHEN ch = 'in_app' THEN clock_timestamp() END, "
    "               CASE WHEN ch = 'in_app' THEN clock_timestamp() END, cur.event "
    "          FROM cur, json_array_elements_text(cur.channels) ch "
    "        ON CONFLICT DO NOTHING RETURNING fire_id, channel), "
    "ob AS (INSERT INTO outbox (topic, key, payload) "
    "       SELECT 'notification.send', x.user_id, x.note FROM ins JOIN x USING (fire_id) "
    "        WHERE ins.channel = 'in_app' RETURNING 1), "
    "pub AS (INSERT INTO outbox (topic, key, payload) "
    "        SELECT 'reminder.due', cur.user_id, cur.event FROM cur WHERE $2::boolean RETURNING 1), "
    "made AS (SELECT fire_id, count(*) AS n, bool_or(channel = 'in_app') AS in_app FROM ins GROUP BY fire_id) "
    "SELECT x.fire_id, cur.fire_id IS NOT NULL, coalesce(made.n, 0), coalesce(made.in_app, false), "
    "       (SELECT count(*) FROM ob), (SELECT count(*) FROM pub) "
    "  FROM x LEFT JOIN cur USING (fire_id) LEFT JOIN made USING (fire_id)";

/* $1: the items; the firings with an in-app delivery (a note) can be
 * finished by it. */
static const char SETTLE_SQL[] =
    "SELECT te_reminders_settle(ARRAY(SELECT (e->>'fire_id')::uuid FROM json_array_elements($1::json) e "
    "                                  WHERE e->>'note' IS NOT NULL))";

static const char *str_member(const json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* The in-app notification of a reminder.due's data (notification_id = its
 * delivery id). */
static char *notification_event(json_object *data, const char *nid, const char *traceparent, char *err,
                                size_t n) {
    const char *user = str_member(data, "user_id"), *title = str_member(data, "title");
    const char *due = str_member(data, "due_date");
    char body[160], created[TE_TIME_STRLEN];
    if (due) snprintf(body, sizeof body, "Due %s", due);
    else snprintf(body, sizeof body, "Reminder");
    store_fmt_ms(te_time_now(), created);
    json_object *d = json_object_new_object();
    json_object_object_add(d, "notification_id", json_object_new_string(nid));
    json_object_object_add(d, "user_id", json_object_new_string(user));
    json_object_object_add(d, "title", json_object_new_string(title ? title : ""));
    json_object_object_add(d, "body", json_object_new_string(body));
    json_object_object_add(d, "task_id", json_object_new_string(str_member(data, "task_id")));
    json_object_object_add(d, "reminder_id", json_object_new_string(str_member(data, "reminder_id")));
    json_object_object_add(d, "kind", json_object_new_string("reminder"));
    json_object_object_add(d, "created_at", json_object_new_string(created));
    return td_event_json(TE_EVENT_NOTIFICATION_SEND, SOURCE, NULL, user, traceparent, d, err, n);
}

void intake_batch_init(intake_batch_t *b) {
    memset(b, 0, sizeof *b);
    b->items = json_object_new_array();
    b->remind_at = json_object_new_object();
}

int intake_batch_add(intake_batch_t *b, const char *fire_id, json_object *data, const char *event_json,
                     const char *traceparent, char *err, size_t n) {
    char nid[37];
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, nid);
    json_object *channels = NULL;
    if (!json_object_object_get_ex(data, "channels", &channels) || !channels) {
        channels = json_object_new_array();
        json_object_array_add(channels, json_object_new_string("in_app"));
    } else {
        json_object_get(channels);
    }
    int in_app = 0;
    for (size_t i = 0; i < json_object_array_length(channels); i++)
        in_app |= strcmp(json_object_get_string(json_object_array_get_idx(channels, i)), "in_app") == 0;
    /* the notification only when there is an in-app channel */
    char *note = in_app ? notification_event(data, nid, traceparent, err, n) : NULL;
    if (in_app && !note) {
        json_object_put(channels);
        return -1;
    }
    json_object *it = json_object_new_object();
    json_object_object_add(it, "fire_id", json_object_new_string(fire_id));
    json_object_object_add(it, "reminder_id", json_object_new_string(str_member(data, "reminder_id")));
    json_object_object_add(it, "user_id", json_object_new_string(str_member(data, "user_id")));
    json_object_object_add(it, "channels", channels);
    json_object_object_add(it, "event", json_object_new_string(event_json));
    json_object_object_add(it, "nid", json_object_new_string(nid));
    json_object_object_add(it, "note", note ? json_object_new_string(note) : NULL);
    json_object_array_add(b->items, it);
    if (in_app) b->in_app++;
    const char *at = str_member(data, "remind_at");
    json_object_object_add(b->remind_at, fire_id, json_object_new_string(at ? at : ""));
    te_free(note);
    return 0;
}

size_t intake_batch_count(const intake_batch_t *b) { return json_object_array_length(b->items); }

size_t intake_batch_statements(intake_batch_t *b, int publish, td_pg_stmt_t st[2]) {
    b->p_items[0] = json_object_to_json_string_ext(b->items, JSON_C_TO_STRING_PLAIN);
    b->p_items[1] = publish ? "true" : "false";
    st[0] = (td_pg_stmt_t){CREATE_SQL, 2, b->p_items, NULL};
    st[1] = (td_pg_stmt_t){SETTLE_SQL, 1, b->p_items, NULL};
    return b->in_app ? 2 : 1;
}

void intake_batch_account(rem_t *r, intake_batch_t *b, const PGresult *created, int *current, int *made) {
    static const char *const L_IN_APP[] = {"in_app"}, *const L_IN_APP_OK[] = {"in_app", "ok"};
    te_time_t now = te_time_now();
    *current = *made = 0;
    for (int i = 0; created && i < PQntuples(created); i++) {
        *current += PQgetvalue(created, i, 1)[0] == 't';
        *made += atoi(PQgetvalue(created, i, 2)) > 0;
        if (PQgetvalue(created, i, 3)[0] != 't') continue;
        json_object *at = NULL;
        te_time_t due = 0;
        if (json_object_object_get_ex(b->remind_at, PQgetvalue(created, i, 0), &at) &&
            te_time_parse(json_object_get_string(at), &due, NULL, NULL, 0) == TE_OK)
            td_metric_observe(r->m_lateness, L_IN_APP, (double)(now - due) / 1e6);
        td_metric_inc(r->m_attempts, L_IN_APP_OK, 1);
    }
}

void intake_batch_free(intake_batch_t *b) {
    json_object_put(b->items);
    json_object_put(b->remind_at);
    memset(b, 0, sizeof *b);
}

te_handler_result_t intake_handle(const te_event_t *ev, const te_record_t *rec, void *opaque,
                                  char *errstr, size_t errstr_size) {
    (void)rec;
    rem_t *r = opaque;
    static const char *const L_OK[] = {"ok"}, *const L_STALE[] = {"stale"},
                             *const L_DUP[] = {"duplicate"}, *const L_RETRY[] = {"retry"},
                             *const L_IGNORED[] = {"ignored"};
    if (strcmp(te_event_type(ev), TE_EVENT_REMINDER_DUE) != 0) {
        td_metric_inc(r->m_events, L_IGNORED, 1);
        return TE_HANDLER_OK;
    }
    PGconn *c = td_pg_keep(&r->intake_conn, r->cfg.pg_url, &r->stopping, errstr, errstr_size);
    if (!c) {
        td_metric_inc(r->m_events, L_RETRY, 1);
        return TE_HANDLER_RETRY;
    }
    /* the usual case: the scheduler created the deliveries with the event */
    const char *fv[1] = {te_event_id(ev)};
    PGresult *seen = PQexecParams(c, "SELECT 1 FROM reminder_deliveries WHERE fire_id = $1::uuid LIMIT 1", 1,
                                  NULL, fv, NULL, NULL, 0);
    int status = PQresultStatus(seen), dup = status == PGRES_TUPLES_OK && PQntuples(seen) > 0;
    if (status != PGRES_TUPLES_OK) snprintf(errstr, errstr_size, "%s", PQresultErrorMessage(seen));
    PQclear(seen);
    if (status != PGRES_TUPLES_OK) {
        td_metric_inc(r->m_events, L_RETRY, 1);
        return TE_HANDLER_RETRY;
    }
    if (dup) {
        td_metric_inc(r->m_events, L_DUP, 1);
        return TE_HANDLER_OK;
    }
    /* the consumer validated the data against the catalogue */
    json_object *data = (json_object *)te_event_data_object(ev);
    char *event_json = NULL;
    if (te_event_to_json(ev, 0, &event_json, NULL, errstr, errstr_size) != TE_OK) return TE_HANDLER_FAIL;
    intake_batch_t b;
    intake_batch_init(&b);
    int rc = intake_batch_add(&b, te_event_id(ev), data, event_json, te_event_traceparent(ev), errstr,
                              errstr_size);
    te_free(event_json);
    if (rc != 0) {
        intake_batch_free(&b);
        return TE_HANDLER_FAIL; /* cannot happen for a valid event */
    }
    td_pg_stmt_t st[4] = {{"BEGIN", 0, NULL, NULL}};
    size_t ns = 1 + intake_batch_statements(&b, 0, st + 1);
    st[ns++] = (td_pg_stmt_t){"COMMIT", 0, NULL, NULL};
    if (td_pg_pipeline(c, st, ns, errstr, errstr_size) != 0) {
        td_pg_exec(c, "ROLLBACK", NULL, 0);
        intake_batch_free(&b);
        td_metric_inc(r->m_events, L_RETRY, 1);
        return TE_HANDLER_RETRY;
    }
    int current = 0, made = 0;
    intake_batch_account(r, &b, st[1].res, &current, &made);
    for (size_t i = 0; i < ns; i++) PQclear(st[i].res);
    intake_batch_free(&b);
    if (!current) {
        td_metric_inc(r->m_events, L_STALE, 1);
        td_logf(TD_LOG_DEBUG, NULL, "reminder.due %s is no longer current (completed, moved or deleted)",
                te_event_id(ev));
    } else {
        td_metric_inc(r->m_events, made ? L_OK : L_DUP, 1);
    }
    return TE_HANDLER_OK;
}
