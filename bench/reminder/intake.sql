-- The consumer baseline of bench/reminder/run.sh: what todo-reminder's
-- reminder.due handler now sends for each of the scheduler's own events
-- (daemons/todo-reminder/intake.c, intake_handle): one read,
--   SELECT 1 FROM reminder_deliveries WHERE fire_id = $1::uuid LIMIT 1,
-- which finds the delivery rows the firing transaction created (the event
-- is then a "duplicate" and nothing else happens).  For the k-th firing
-- claim.sql made (bench_fired row k; k counts the client's transactions,
-- from -D k=0): the daemon passes the event's id as a parameter, here it is
-- read in a subquery (one more index probe, on a small table).  pgbench
-- -M extended on one connection sends the events one after the other, as
-- the consumer does.
\set k :k + 1
SELECT 1 FROM reminder_deliveries
 WHERE fire_id = (SELECT b.fire_id FROM bench_fired b WHERE b.n = :k)::uuid LIMIT 1;
