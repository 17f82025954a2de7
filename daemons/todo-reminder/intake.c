/* The reminder.due consumer: turns each firing into one delivery row per
 * channel (docs/reminder.md).  One round trip per event: the check that the
 * firing is still current, the delivery rows (their primary key makes a
 * redelivered event a no-op), the in-app notification in the outbox, and
 * the reminder's status when nothing else is left to deliver. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "daemon.h"
#include "log.h"
#include "pg.h"
#include "reminder.h"
#include "task_store.h"

static const char INTAKE_SQL[] =
    "WITH cur AS (SELECT id FROM reminders "
    "              WHERE id = $1::uuid AND fire_id = $2::uuid AND status = 'pending' FOR UPDATE), "
    "ins AS (INSERT INTO reminder_deliveries (fire_id, channel, reminder_id, user_id, delivery_id, "
    "            status, attempts, next_attempt_at, last_attempt_at, delivered_at, event) "
    "        SELECT $2::uuid, ch, $1::uuid, $3, "
    "               CASE WHEN ch = 'in_app' THEN $5::uuid ELSE gen_random_uuid() END, "
    "               CASE WHEN ch = 'in_app' THEN 'sent' ELSE 'pending' END, (ch = 'in_app')::int, "
    "               clock_timestamp(), CASE WHEN ch = 'in_app' THEN clock_timestamp() END, "
    "               CASE WHEN ch = 'in_app' THEN clock_timestamp() END, $6 "
    "          FROM cur, json_array_elements_text($4::json) ch "
    "        ON CONFLICT DO NOTHING RETURNING channel), "
    "ob AS (INSERT INTO outbox (topic, key, payload) "
    "       SELECT 'notification.send', $3, $7 FROM ins WHERE channel = 'in_app' RETURNING 1) "
    "SELECT (SELECT count(*) FROM cur), (SELECT count(*) FROM ins), (SELECT count(*) FROM ob), "
    "       (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

static const char *str_member(const json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* The in-app notification (notification_id = its delivery id). */
static char *notification_event(const te_event_t *ev, json_object *data, const char *nid, char *err,
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
    return td_event_json(TE_EVENT_NOTIFICATION_SEND, SOURCE, NULL, user, te_event_traceparent(ev), d,
                         err, n);
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
    /* the consumer validated the data against the catalogue */
    json_object *data = (json_object *)te_event_data_object(ev), *channels = NULL;
    const char *rid = str_member(data, "reminder_id"), *user = str_member(data, "user_id");
    const char *remind_at = str_member(data, "remind_at");
    if (!json_object_object_get_ex(data, "channels", &channels) || !channels) {
        channels = NULL;
    }
    char nid[37];
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, nid);
    char *note = notification_event(ev, data, nid, errstr, errstr_size);
    char *event_json = NULL;
    if (!note || te_event_to_json(ev, 0, &event_json, NULL, errstr, errstr_size) != TE_OK) {
        te_free(note);
        return TE_HANDLER_FAIL; /* cannot happen for a valid event */
    }
    PGconn *c = rem_conn(r, &r->intake_conn, errstr, errstr_size);
    if (!c) {
        te_free(note);
        te_free(event_json);
        td_metric_inc(r->m_events, L_RETRY, 1);
        return TE_HANDLER_RETRY;
    }
    const char *v[7] = {rid, te_event_id(ev), user,
                        channels ? json_object_to_json_string_ext(channels, JSON_C_TO_STRING_PLAIN)
                                 : "[\"in_app\"]",
                        nid, event_json, note};
    const char *settle_v[1] = {te_event_id(ev)};
    td_pg_stmt_t st[4] = {
        {"BEGIN", 0, NULL, NULL},
        {INTAKE_SQL, 7, v, NULL},
        {"SELECT te_reminder_settle($1::uuid)", 1, settle_v, NULL},
        {"COMMIT", 0, NULL, NULL},
    };
    int rc = td_pg_pipeline(c, st, 4, errstr, errstr_size);
    te_free(note);
    te_free(event_json);
    if (rc != 0) {
        td_pg_exec(c, "ROLLBACK", NULL, 0);
        td_metric_inc(r->m_events, L_RETRY, 1);
        return TE_HANDLER_RETRY;
    }
    int current = atoi(PQgetvalue(st[1].res, 0, 0)), inserted = atoi(PQgetvalue(st[1].res, 0, 1));
    int in_app = atoi(PQgetvalue(st[1].res, 0, 2));
    long long now_ms = strtoll(PQgetvalue(st[1].res, 0, 3), NULL, 10);
    for (int i = 0; i < 4; i++) PQclear(st[i].res);
    if (!current) {
        td_metric_inc(r->m_events, L_STALE, 1);
        td_logf(TD_LOG_DEBUG, NULL, "reminder %s: firing %s no longer current (completed, moved or deleted)",
                rid, te_event_id(ev));
    } else if (!inserted) {
        td_metric_inc(r->m_events, L_DUP, 1);
    } else {
        td_metric_inc(r->m_events, L_OK, 1);
        te_time_t due = 0;
        if (in_app && remind_at && te_time_parse(remind_at, &due, NULL, NULL, 0) == TE_OK) {
            static const char *const L_IN_APP[] = {"in_app"};
            td_metric_observe(r->m_lateness, L_IN_APP, (double)now_ms / 1e3 - (double)due / 1e6);
            td_metric_inc(r->m_attempts, (const char *const[]){"in_app", "ok"}, 1);
        }
    }
    return TE_HANDLER_OK;
}
