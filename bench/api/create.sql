-- pgbench script: the SQL transaction todo-api runs for POST /api/tasks
-- (daemons/todo-api/tasks.c h_tasks_create -> store.c: store_begin_write,
-- store_task_write, store_sync_reminders, store_record_change,
-- store_commit), statement for statement, for a task without reminders or
-- recurrence.  Run with -M extended: every variable is a bind parameter,
-- as PQexecParams sends them.  The -D variables (bench/api/run.sh) are the
-- task JSON and the two CloudEvents of a real create captured from the API.
\set u random(1, :users)
\set prio random(0, 3)
BEGIN;
INSERT INTO user_seq (user_id, seq) VALUES ('bench-user-' || lpad(:u::text, 3, '0'), 0) ON CONFLICT (user_id) DO UPDATE SET seq = user_seq.seq RETURNING seq, user_id AS uid \gset
INSERT INTO tasks (id, user_id, title, description, priority, status, due_at, timezone, tags, tags_lower, rrule, rrule_zone, rrule_anchor, series_id, occurrence, version, created_at, updated_at, completed_at) VALUES (gen_random_uuid(), :uid, :title, :descr, :prio::smallint, :status, :due::timestamptz, :tz, ARRAY(SELECT json_array_elements_text(:tags::json)), ARRAY(SELECT lower(json_array_elements_text(:tags::json))), NULL, NULL, NULL, NULL::uuid, NULL::int, 1::int, :now::timestamptz, :now::timestamptz, NULL::timestamptz) RETURNING id::text AS tid \gset
WITH w AS (SELECT (e->>'offset_minutes')::int AS off, (e->>'at')::timestamptz AS at FROM json_array_elements(:empty::json) e), del AS (DELETE FROM reminders r WHERE r.task_id = :tid::uuid AND NOT EXISTS (SELECT 1 FROM w WHERE w.off IS NOT DISTINCT FROM r.offset_minutes AND w.at IS NOT DISTINCT FROM r.at)), ins AS (INSERT INTO reminders (id, task_id, user_id, offset_minutes, at, created_at) SELECT gen_random_uuid(), :tid::uuid, t.user_id, w.off, w.at, now() FROM w, tasks t WHERE t.id = :tid::uuid AND NOT EXISTS (SELECT 1 FROM reminders r WHERE r.task_id = :tid::uuid AND w.off IS NOT DISTINCT FROM r.offset_minutes AND w.at IS NOT DISTINCT FROM r.at)) SELECT 1;
UPDATE reminders r SET remind_at = n.ra, status = CASE WHEN :status = 'completed' THEN CASE WHEN r.status = 'pending' THEN 'cancelled' ELSE r.status END WHEN n.ra > :now::timestamptz AND (r.status = 'cancelled' OR n.ra IS DISTINCT FROM r.remind_at) THEN 'pending' ELSE r.status END, sent_at = CASE WHEN :status <> 'completed' AND n.ra > :now::timestamptz AND n.ra IS DISTINCT FROM r.remind_at THEN NULL ELSE r.sent_at END FROM (SELECT id, CASE WHEN offset_minutes IS NOT NULL THEN :due::timestamptz - offset_minutes * interval '1 minute' ELSE at END AS ra FROM reminders WHERE task_id = :tid::uuid) n WHERE r.id = n.id;
SELECT pg_notify('te_reminders', :tid);
SELECT te_task_reminders(:tid::uuid)::text;
UPDATE user_seq SET seq = seq + 1 WHERE user_id = :uid RETURNING seq \gset
INSERT INTO changes (user_id, seq, op, task_id, task, changes, at) VALUES (:uid, :seq::bigint, 'created', :tid::uuid, :taskjson::jsonb, NULL::jsonb, :now::timestamptz);
INSERT INTO outbox (topic, key, payload) VALUES ('task.events', :uid, :evtask);
INSERT INTO outbox (topic, key, payload) VALUES ('sync.events', :uid, :evsync);
SELECT pg_notify('te_outbox', '');
COMMIT;
