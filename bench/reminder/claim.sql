-- The scheduler baseline of bench/reminder/run.sh: one firing transaction
-- of todo-reminder (daemons/todo-reminder/scheduler.c, fire_batch), with
-- the same statements and round trips:
--   BEGIN;
--   the claim (CLAIM_SQL verbatim: up to :batch due reminders, pending and
--   not fired, FOR UPDATE SKIP LOCKED; firing id, fired_at, late / missed
--   by :late and :grace s; title, due date and channels read back);
--   then one pipeline of
--     OUTBOX_SQL verbatim: the com.todo.reminder.due events to the outbox,
--     intake.c CREATE_SQL verbatim: the firings still current, one delivery
--       row per channel, the in-app notification.send outbox rows (none
--       here: the bench's channels are webhook only),
--     SELECT te_reminders_settle($1::uuid[]) (SETTLE_SQL) for the firings
--       with an in-app channel, only when there are any (none here),
--     COMMIT.
-- The daemon builds the events (and, for an in-app channel, the
-- notification) in C from the claim's rows; here the claim statement also
-- builds them, server-side, and hands them back as the parameters of the
-- pipeline (\gset): the JSON [user, event] pairs, the JSON items
-- [{fire_id, reminder_id, user_id, channels, event, nid, note}] and the
-- uuid[] of the in-app firings — the texts the daemon sends, of about the
-- same size (the server's JSON has a few more spaces).  pgbench -M extended,
-- as many connections as the daemon has scheduler threads (SKIP LOCKED
-- splits the burst between them, as between the threads), fires all N.
\set late 30
\set grace 3600
BEGIN;
WITH claimed AS (
    WITH due AS (SELECT id FROM reminders
                  WHERE status = 'pending' AND fire_id IS NULL AND remind_at <= clock_timestamp()
                  ORDER BY remind_at LIMIT :batch FOR UPDATE SKIP LOCKED)
    UPDATE reminders r SET fire_id = gen_random_uuid(), fired_at = clock_timestamp(),
           late = clock_timestamp() - r.remind_at > :late * interval '1 second',
           status = CASE WHEN clock_timestamp() - r.remind_at > :grace * interval '1 second'
                         THEN 'missed' ELSE r.status END
      FROM due WHERE r.id = due.id
    RETURNING r.id, r.fire_id, r.task_id, r.user_id, te_ts(r.remind_at) AS remind_at, r.late, r.status,
      (SELECT t.title FROM tasks t WHERE t.id = r.task_id) AS title,
      (SELECT te_ts(t.due_at) FROM tasks t WHERE t.id = r.task_id) AS due_date,
      coalesce((SELECT array_to_json(s.channels)::text FROM notification_settings s
                 WHERE s.user_id = r.user_id), '["in_app"]') AS channels),
ev AS (
    SELECT c.*, gen_random_uuid() AS nid,
           json_build_object('specversion', '1.0', 'id', c.fire_id, 'source', '/todo-reminder',
                             'type', 'com.todo.reminder.due', 'time', te_ts(clock_timestamp()),
                             'partitionkey', c.user_id,
                             'data', json_build_object(
                                 'reminder_id', c.id, 'task_id', c.task_id, 'user_id', c.user_id,
                                 'title', c.title, 'remind_at', c.remind_at, 'due_date', c.due_date,
                                 'channels', c.channels::json, 'late', c.late))::text AS event
      FROM claimed c WHERE c.status <> 'missed'),
it AS (
    SELECT ev.*,
           CASE WHEN ev.channels::jsonb ? 'in_app' THEN
           json_build_object('specversion', '1.0', 'id', gen_random_uuid(), 'source', '/todo-reminder',
                             'type', 'com.todo.notification.send', 'time', te_ts(clock_timestamp()),
                             'partitionkey', ev.user_id,
                             'data', json_build_object(
                                 'notification_id', ev.nid, 'user_id', ev.user_id, 'title', ev.title,
                                 'body', coalesce('Due ' || ev.due_date, 'Reminder'), 'task_id', ev.task_id,
                                 'reminder_id', ev.id, 'kind', 'reminder',
                                 'created_at', te_ts(clock_timestamp())))::text END AS note
      FROM ev)
SELECT coalesce(json_agg(json_build_array(user_id, event)), '[]') AS pairs,
       coalesce(json_agg(json_build_object('fire_id', fire_id, 'reminder_id', id, 'user_id', user_id,
                                           'channels', channels::json, 'event', event, 'nid', nid,
                                           'note', note)), '[]') AS items,
       coalesce(array_agg(fire_id) FILTER (WHERE note IS NOT NULL), '{}') AS fires,
       count(*) FILTER (WHERE note IS NOT NULL) AS in_app
  FROM it \gset
\startpipeline
INSERT INTO outbox (topic, key, payload)
SELECT 'reminder.due', e->>0, e->>1 FROM json_array_elements(:pairs::json) e;
WITH x AS (SELECT (e->>'fire_id')::uuid AS fire_id, (e->>'reminder_id')::uuid AS reminder_id,
                  e->>'user_id' AS user_id, e->'channels' AS channels, e->>'event' AS event,
                  (e->>'nid')::uuid AS nid, e->>'note' AS note
             FROM json_array_elements(:items::json) e),
cur AS (SELECT x.* FROM x JOIN reminders r
          ON r.id = x.reminder_id AND r.fire_id = x.fire_id AND r.status = 'pending'),
ins AS (INSERT INTO reminder_deliveries (fire_id, channel, reminder_id, user_id, delivery_id,
            status, attempts, next_attempt_at, last_attempt_at, delivered_at, event)
        SELECT cur.fire_id, ch, cur.reminder_id, cur.user_id,
               CASE WHEN ch = 'in_app' THEN cur.nid ELSE gen_random_uuid() END,
               CASE WHEN ch = 'in_app' THEN 'sent' ELSE 'pending' END, (ch = 'in_app')::int,
               clock_timestamp(), CASE WHEN ch = 'in_app' THEN clock_timestamp() END,
               CASE WHEN ch = 'in_app' THEN clock_timestamp() END, cur.event
          FROM cur, json_array_elements_text(cur.channels) ch
        ON CONFLICT DO NOTHING RETURNING fire_id, channel),
ob AS (INSERT INTO outbox (topic, key, payload)
       SELECT 'notification.send', x.user_id, x.note FROM ins JOIN x USING (fire_id)
        WHERE ins.channel = 'in_app' RETURNING 1),
made AS (SELECT fire_id, count(*) AS n, bool_or(channel = 'in_app') AS in_app FROM ins GROUP BY fire_id)
SELECT x.fire_id, cur.fire_id IS NOT NULL, coalesce(made.n, 0), coalesce(made.in_app, false),
       (SELECT count(*) FROM ob)
  FROM x LEFT JOIN cur USING (fire_id) LEFT JOIN made USING (fire_id);
\if :in_app > 0
SELECT te_reminders_settle(:fires::uuid[]);
\endif
COMMIT;
\endpipeline
