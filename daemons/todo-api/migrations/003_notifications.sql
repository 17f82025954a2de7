-- 003: reminder firing and delivery (todo-reminder, docs/reminder.md).
-- fire_id: the current firing (= the reminder.due event id), NULL while
-- waiting; reset when the reminder is moved or re-armed, which abandons a
-- firing in progress.  fired_at: when it was fired.
-- late: fired after the late threshold.
ALTER TABLE reminders ADD COLUMN fire_id uuid;
ALTER TABLE reminders ADD COLUMN fired_at timestamptz;
ALTER TABLE reminders ADD COLUMN late boolean NOT NULL DEFAULT false;
CREATE INDEX reminders_due ON reminders (remind_at) WHERE status = 'pending' AND fire_id IS NULL;
CREATE UNIQUE INDEX reminders_fire ON reminders (fire_id);
-- The scheduler needs waking only when a reminder comes to wait for its
-- time: added, moved or re-armed — not when it is fired or settled (a
-- statement trigger would also fire for the scheduler's own claims, even
-- empty ones, and wake it in a loop).  Notifications of one transaction
-- are folded into one by PostgreSQL.
DROP TRIGGER reminders_notify ON reminders;
CREATE TRIGGER reminders_notify_insert AFTER INSERT ON reminders
    FOR EACH ROW WHEN (NEW.status = 'pending' AND NEW.fire_id IS NULL)
    EXECUTE FUNCTION te_notify_reminders();
CREATE TRIGGER reminders_notify_update AFTER UPDATE OF remind_at, fire_id, status ON reminders
    FOR EACH ROW WHEN (NEW.status = 'pending' AND NEW.fire_id IS NULL
                       AND (OLD.remind_at IS DISTINCT FROM NEW.remind_at
                            OR OLD.fire_id IS NOT NULL OR OLD.status <> 'pending'))
    EXECUTE FUNCTION te_notify_reminders();

-- Where a user's reminders go.  No row = in-app only.
CREATE TABLE notification_settings (
    user_id        text PRIMARY KEY,
    channels       text[] NOT NULL CHECK (channels <@ ARRAY['in_app', 'webhook', 'email']
                                          AND cardinality(channels) > 0),
    webhook_url    text,
    webhook_secret text,
    email          text,
    updated_at     timestamptz NOT NULL
);

-- One row per firing and channel: the primary key makes a redelivered
-- reminder.due a no-op.  attempts counts attempts started; a 'sending'
-- row whose lease ran out is taken over by another delivery thread.
CREATE TABLE reminder_deliveries (
    fire_id         uuid NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('in_app', 'webhook', 'email')),
    reminder_id     uuid NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    delivery_id     uuid NOT NULL UNIQUE,
    status          text NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    lease_token     uuid,           -- the claim's: a result is recorded only while it is the row's
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    error           text,
    event           text NOT NULL,  -- the reminder.due CloudEvent (webhook body, dead-letter record)
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (fire_id, channel)
);
CREATE INDEX reminder_deliveries_due ON reminder_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX reminder_deliveries_lease ON reminder_deliveries (lease_until)
    WHERE status = 'sending';
CREATE INDEX reminder_deliveries_reminder ON reminder_deliveries (reminder_id);
CREATE INDEX reminder_deliveries_created ON reminder_deliveries (created_at);

CREATE FUNCTION te_notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('te_deliveries', ''); RETURN NULL; END $$;
CREATE TRIGGER reminder_deliveries_notify AFTER INSERT ON reminder_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION te_notify_deliveries();

-- Settles the firings whose deliveries are all finished: sent / late, or
-- failed when a channel failed.  A firing no longer current (moved,
-- cancelled) is left alone.  The reminder rows are locked first, in
-- firing-id order (no deadlock between concurrent callers), and the
-- deliveries read afterwards (each statement of a volatile SQL function
-- has its own snapshot): two threads recording the last two channels of a
-- firing at once then see each other's outcome, and one of them settles.
CREATE FUNCTION te_reminders_settle(fires uuid[]) RETURNS void LANGUAGE sql AS $$
    SELECT 1 FROM reminders WHERE fire_id = ANY (fires) ORDER BY fire_id FOR UPDATE;
    UPDATE reminders r
       SET status = CASE WHEN d.failed THEN 'failed' WHEN r.late THEN 'late' ELSE 'sent' END,
           sent_at = d.first
      FROM (SELECT fire_id, bool_or(status = 'failed') AS failed, min(delivered_at) AS first,
                   bool_or(status IN ('pending', 'sending')) AS open
              FROM reminder_deliveries WHERE fire_id = ANY (fires) GROUP BY fire_id) d
     WHERE r.fire_id = d.fire_id AND r.status = 'pending' AND NOT d.open $$;

-- A reminder as the API shows it, now with its last firing's deliveries.
CREATE OR REPLACE FUNCTION te_reminder_json(r reminders) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT jsonb_build_object('id', r.id, 'remind_at', te_ts(r.remind_at),
                                    'status', r.status, 'sent_at', te_ts(r.sent_at),
                                    'created_at', te_ts(r.created_at),
                                    'deliveries', coalesce((
                                        SELECT jsonb_agg(jsonb_build_object(
                                                   'channel', d.channel, 'status', d.status,
                                                   'attempts', d.attempts,
                                                   'delivered_at', te_ts(d.delivered_at),
                                                   'error', d.error) ORDER BY d.channel)
                                          FROM reminder_deliveries d WHERE d.fire_id = r.fire_id),
                                        '[]'::jsonb))
              || CASE WHEN r.offset_minutes IS NOT NULL
                      THEN jsonb_build_object('offset_minutes', r.offset_minutes)
                      ELSE jsonb_build_object('at', te_ts(r.at)) END $$;
