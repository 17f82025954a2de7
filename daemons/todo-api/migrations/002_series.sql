-- 002: recurring series, for todo-worker's next occurrences.
-- series_start: the series' DTSTART (its first due date), kept on every
-- occurrence; reset when the rule changes (a changed rule starts anew from
-- the task's due date).  series_ended: COUNT/UNTIL reached, no next task.
ALTER TABLE tasks ADD COLUMN series_start timestamptz;
ALTER TABLE tasks ADD COLUMN series_ended boolean NOT NULL DEFAULT false;
UPDATE tasks SET series_start = due_at WHERE rrule IS NOT NULL AND series_start IS NULL;

-- The activity.recorded event's id.
ALTER TABLE activity ADD COLUMN activity_id uuid NOT NULL DEFAULT gen_random_uuid();
