-- pgbench script: what todo-api sends for
--   GET /api/tasks?status=pending&priority=high,urgent&tags=work&sort=due_date&page_size=20
-- (daemons/todo-api/list.c h_tasks_list: in one read-only snapshot the
-- page, the total, and the user's sync sequence for X-Sync-Seq), the
-- columns being STORE_TASK_COLUMNS of store.c.  Run with -M extended; the
-- -D variables come from bench/api/run.sh.
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT t.id::text, t.user_id, t.title, t.description, t.priority, t.status, (extract(epoch from t.due_at) * 1000000)::bigint, t.timezone, array_to_json(t.tags)::text, t.rrule, t.rrule_zone, t.rrule_anchor, t.series_id::text, t.occurrence, t.version, (extract(epoch from t.created_at) * 1000000)::bigint, (extract(epoch from t.updated_at) * 1000000)::bigint, (extract(epoch from t.completed_at) * 1000000)::bigint, te_task_reminders(t.id)::text FROM tasks t WHERE t.user_id = :user AND t.status = :status AND t.priority = ANY(:prios::smallint[]) AND t.tags_lower @> :tags::text[] ORDER BY t.due_at ASC NULLS LAST, t.created_at, t.id LIMIT :lim OFFSET :off;
SELECT count(*) FROM tasks t WHERE t.user_id = :user AND t.status = :status AND t.priority = ANY(:prios::smallint[]) AND t.tags_lower @> :tags::text[];
SELECT coalesce((SELECT seq FROM user_seq WHERE user_id = :user), 0);
COMMIT;
