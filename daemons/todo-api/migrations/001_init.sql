-- 001: tasks, reminders, tags, change log, outbox, processed events, activity.
-- Applied by todo-api (td_pg_migrate) in one transaction under an advisory lock.

-- Substring search (GET /api/tasks?q=) uses trigram indexes.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Tags compare ASCII case-insensitively, as the task model does
-- (PostgreSQL's lower() would also fold non-ASCII letters).
CREATE FUNCTION te_fold(s text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT translate(s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') $$;

-- Per-user change sequence.  Taking this row lock first in every write
-- transaction serialises one user's writes, so sequence order = commit order
-- and one user's outbox rows get ids in commit order.
CREATE TABLE user_seq (
    user_id    text PRIMARY KEY,
    seq        bigint NOT NULL,
    pruned_seq bigint NOT NULL DEFAULT 0   -- changes up to here were pruned
);

CREATE TABLE tasks (
    id           uuid PRIMARY KEY,
    user_id      text NOT NULL,
    title        text NOT NULL,
    description  text,
    priority     smallint NOT NULL CHECK (priority BETWEEN 0 AND 3),
    status       text NOT NULL CHECK (status IN ('pending', 'completed')),
    due_at       timestamptz,
    timezone     text,
    tags         text[] NOT NULL DEFAULT '{}',
    tags_lower   text[] NOT NULL DEFAULT '{}',   -- te_fold(tags), for tag filters
    rrule        text,
    rrule_zone   text,
    rrule_anchor text,
    series_id    uuid,
    occurrence   integer,
    version      integer NOT NULL DEFAULT 1,
    -- title, description and tags joined by U+001F (which a search term
    -- cannot contain), for one trigram-indexed ILIKE
    search       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX tasks_user_created ON tasks (user_id, created_at, id);
CREATE INDEX tasks_user_due ON tasks (user_id, due_at);
CREATE INDEX tasks_tags_lower ON tasks USING gin (tags_lower);
CREATE INDEX tasks_search ON tasks USING gin (search gin_trgm_ops);
CREATE INDEX tasks_series ON tasks (series_id) WHERE series_id IS NOT NULL;

CREATE TABLE reminders (
    id             uuid PRIMARY KEY,
    task_id        uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    user_id        text NOT NULL,
    offset_minutes integer CHECK (offset_minutes BETWEEN 0 AND 10080),
    at             timestamptz,
    remind_at      timestamptz,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sent', 'late', 'missed', 'failed', 'cancelled')),
    sent_at        timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((offset_minutes IS NULL) <> (at IS NULL))
);
CREATE INDEX reminders_task ON reminders (task_id, created_at);
CREATE INDEX reminders_pending ON reminders (remind_at) WHERE status = 'pending';

CREATE TABLE tags (
    user_id    text NOT NULL,
    name       text NOT NULL,
    name_lower text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, name_lower)
);

-- Every change of a user's tasks, for GET /api/sync (pruned after
-- TE_SYNC_RETENTION_DAYS).
CREATE TABLE changes (
    user_id text NOT NULL,
    seq     bigint NOT NULL,
    op      text NOT NULL,
    task_id uuid NOT NULL,
    task    jsonb,
    changes jsonb,
    at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX changes_at ON changes (at);

-- Events written with the change they describe; the relay publishes and
-- then deletes them.  claimed_at: handed to the producer, delivery pending.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    text NOT NULL,           -- the structured-mode CloudEvent (JSON)
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz,
    parked_at  timestamptz,              -- Kafka refused it for good (see error)
    error      text
);
CREATE INDEX outbox_unclaimed ON outbox (id) WHERE claimed_at IS NULL AND parked_at IS NULL;

-- Consumers' idempotency: (consumer, event id) written in the same
-- transaction as the side effect.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Activity log (filled by todo-worker from task.events).
CREATE TABLE activity (
    id          bigserial PRIMARY KEY,
    event_id    text NOT NULL UNIQUE,
    user_id     text NOT NULL,
    event_type  text NOT NULL,
    entity_type text NOT NULL,
    entity_id   text NOT NULL,
    occurred_at timestamptz NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activity_user_time ON activity (user_id, occurred_at DESC, id DESC);

-- RFC 3339 in UTC with milliseconds, the API's one time format.
CREATE FUNCTION te_ts(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- A reminder as the API shows it: exactly one of offset_minutes / at.
CREATE FUNCTION te_reminder_json(r reminders) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT jsonb_build_object('id', r.id, 'remind_at', te_ts(r.remind_at),
                                    'status', r.status, 'sent_at', te_ts(r.sent_at),
                                    'created_at', te_ts(r.created_at))
              || CASE WHEN r.offset_minutes IS NOT NULL
                      THEN jsonb_build_object('offset_minutes', r.offset_minutes)
                      ELSE jsonb_build_object('at', te_ts(r.at)) END $$;

CREATE FUNCTION te_task_reminders(task uuid) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(jsonb_agg(te_reminder_json(r) ORDER BY r.created_at, r.offset_minutes, r.at, r.id), '[]'::jsonb)
          FROM reminders r WHERE r.task_id = task $$;

-- Wake-ups at commit: the outbox relay (LISTEN te_outbox) and the reminder
-- scheduler (LISTEN te_reminders).  Statement triggers: one notification
-- per statement, folded into one per transaction by PostgreSQL.
CREATE FUNCTION te_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('te_outbox', ''); RETURN NULL; END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION te_notify_outbox();

CREATE FUNCTION te_notify_reminders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('te_reminders', ''); RETURN NULL; END $$;
CREATE TRIGGER reminders_notify AFTER INSERT OR UPDATE ON reminders
    FOR EACH STATEMENT EXECUTE FUNCTION te_notify_reminders();
