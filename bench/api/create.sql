-- pgbench script: the SQL transaction todo-api runs for POST /api/tasks
-- (daemons/todo-api/tasks.c h_tasks_create -> store.c: store_begin_write,
-- store_task_write, store_record_change, store_commit), statement for
-- statement, for a task without reminders or recurrence (no reminder
-- statements then), pipelined as the API sends them: BEGIN and the user
-- lock in one round trip, the writes and COMMIT in a second.  The NOTIFY
-- for the relay comes from the outbox's statement trigger, as in the API.  Run with -M extended: every variable is a bind parameter,
-- as PQexecParams sends them.  The -D variables (bench/api/run.sh) are the
-- task JSON and the two CloudEvents of a real create captured from the API.
\set u random(1, :users)
\set prio random(0, 3)
\set r1 random(1, 9223372036854775807)
\set r2 random(1, 9223372036854775807)
\startpipeline
BEGIN;
INSERT INTO user_seq (user_id, seq) VALUES ('bench-user-' || lpad(:u::text, 3, '0'), 0) ON CONFLICT (user_id) DO UPDATE SET seq = user_seq.seq RETURNING seq;
\endpipeline
\startpipeline
INSERT INTO tasks (id, user_id, title, description, priority, status, due_at, timezone, tags, tags_lower, rrule, rrule_zone, rrule_anchor, series_id, occurrence, version, created_at, updated_at, completed_at, search) VALUES ((lpad(to_hex(:r1::bigint), 16, '0') || lpad(to_hex(:r2::bigint), 16, '0'))::uuid, 'bench-user-' || lpad(:u::text, 3, '0'), :title, :descr, :prio::smallint, :status, :due::timestamptz, :tz, ARRAY(SELECT json_array_elements_text(:tags::json)), ARRAY(SELECT te_fold(json_array_elements_text(:tags::json))), NULL, NULL, NULL, NULL::uuid, NULL::int, 1::int, :now::timestamptz, :now::timestamptz, NULL::timestamptz, (:title || E'\\x1f' || coalesce(:descr, '') || E'\\x1f' || array_to_string(ARRAY(SELECT json_array_elements_text(:tags::json)), E'\\x1f')));
WITH s AS (UPDATE user_seq SET seq = seq + 1 WHERE user_id = 'bench-user-' || lpad(:u::text, 3, '0') RETURNING seq) INSERT INTO changes (user_id, seq, op, task_id, task, changes, at) SELECT 'bench-user-' || lpad(:u::text, 3, '0'), s.seq, 'created', (lpad(to_hex(:r1::bigint), 16, '0') || lpad(to_hex(:r2::bigint), 16, '0'))::uuid, :taskjson::jsonb, NULL::jsonb, :now::timestamptz FROM s;
INSERT INTO outbox (topic, key, payload) VALUES ('task.events', 'bench-user-' || lpad(:u::text, 3, '0'), :evtask), ('sync.events', 'bench-user-' || lpad(:u::text, 3, '0'), :evsync);
COMMIT;
\endpipeline
