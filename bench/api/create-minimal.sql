-- pgbench script: create.sql without the four statements of
-- store_sync_reminders (reminders CTE, reschedule UPDATE,
-- pg_notify('te_reminders'), SELECT te_task_reminders), which todo-api runs
-- on every create even when the task has no reminders.  What a create of a
-- task without reminders needs at least: the second baseline of
-- docs/bench-api.md.  Run with -M extended like create.sql.
\set u random(1, :users)
\set prio random(0, 3)
BEGIN;
INSERT INTO user_seq (user_id, seq) VALUES ('bench-user-' || lpad(:u::text, 3, '0'), 0) ON CONFLICT (user_id) DO UPDATE SET seq = user_seq.seq RETURNING seq, user_id AS uid \gset
INSERT INTO tasks (id, user_id, title, description, priority, status, due_at, timezone, tags, tags_lower, rrule, rrule_zone, rrule_anchor, series_id, occurrence, version, created_at, updated_at, completed_at) VALUES (gen_random_uuid(), :uid, :title, :descr, :prio::smallint, :status, :due::timestamptz, :tz, ARRAY(SELECT json_array_elements_text(:tags::json)), ARRAY(SELECT lower(json_array_elements_text(:tags::json))), NULL, NULL, NULL, NULL::uuid, NULL::int, 1::int, :now::timestamptz, :now::timestamptz, NULL::timestamptz) RETURNING id::text AS tid \gset
UPDATE user_seq SET seq = seq + 1 WHERE user_id = :uid RETURNING seq \gset
INSERT INTO changes (user_id, seq, op, task_id, task, changes, at) VALUES (:uid, :seq::bigint, 'created', :tid::uuid, :taskjson::jsonb, NULL::jsonb, :now::timestamptz);
INSERT INTO outbox (topic, key, payload) VALUES ('task.events', :uid, :evtask);
INSERT INTO outbox (topic, key, payload) VALUES ('sync.events', :uid, :evsync);
SELECT pg_notify('te_outbox', '');
COMMIT;
