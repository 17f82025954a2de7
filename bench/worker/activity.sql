-- The baseline of part (a) of bench/worker/run.sh: the one statement
-- todo-worker sends per com.todo.task.created event (record_activity() in
-- daemons/todo-worker/handle.c: the activity row and its
-- com.todo.activity.recorded outbox row), with the same bind parameters,
-- run by pgbench -M extended on one connection as the worker runs it
-- (one event after the other, each statement its own transaction).
-- The ids the worker generates in C are generated here by the server.
\set u random(1, :users)
WITH a AS (INSERT INTO activity (event_id, user_id, event_type, entity_type, entity_id,
                                 occurred_at, details, activity_id)
           VALUES (gen_random_uuid()::text, 'bench-worker-' || lpad(:u::text, 3, '0'),
                   'com.todo.task.created', 'task', gen_random_uuid()::text,
                   :occurred::timestamptz, :details::jsonb, gen_random_uuid())
           ON CONFLICT (event_id) DO NOTHING RETURNING 1)
INSERT INTO outbox (topic, key, payload)
SELECT 'activity.log', 'bench-worker-' || lpad(:u::text, 3, '0'), :payload FROM a RETURNING 1;
