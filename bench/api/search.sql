-- pgbench script: what todo-api sends for
--   GET /api/tasks?q=invoice&sort=due_date&page_size=20
-- (daemons/todo-api/list.c h_tasks_list; the pattern is the LIKE-escaped
-- term between two percent signs, matched against the trigram-indexed
-- tasks.search column).  Run with -M extended; the -D variables come from
-- bench/api/run.sh.
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT t.id::text, t.user_id, t.title, t.description, t.priority, t.status, (extract(epoch from t.due_at) * 1000000)::bigint, t.timezone, array_to_json(t.tags)::text, t.rrule, t.rrule_zone, t.rrule_anchor, t.series_id::text, t.occurrence, t.version, (extract(epoch from t.created_at) * 1000000)::bigint, (extract(epoch from t.updated_at) * 1000000)::bigint, (extract(epoch from t.completed_at) * 1000000)::bigint, te_task_reminders(t.id)::text FROM tasks t WHERE t.user_id = :user AND t.search ILIKE :pat ORDER BY t.due_at ASC NULLS LAST, t.created_at, t.id LIMIT :lim OFFSET :off;
SELECT count(*) FROM tasks t WHERE t.user_id = :user AND t.search ILIKE :pat;
SELECT coalesce((SELECT seq FROM user_seq WHERE user_id = :user), 0);
COMMIT;
