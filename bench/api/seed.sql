-- Seeds :n tasks for the user :'user' (psql -v user=... -v n=...), varied
-- like a real list: 70 % pending; priorities low..urgent evenly; tags from
-- a few combinations (about a third carry "work"); due dates spread over a
-- year around now, 1 in 10 without one; about 1 title in 10 contains
-- "invoice" (the search term of the q= measurement).  Columns as the
-- migrations define them, tags_lower and search included.
INSERT INTO user_seq (user_id, seq) VALUES (:'user', :n)
    ON CONFLICT (user_id) DO UPDATE SET seq = user_seq.seq + :n;
WITH g AS (
    SELECT i,
           string_to_array((ARRAY['work,reports', 'home', 'Work,meetings,team', 'errands,home',
                                  'personal', 'work', 'health,personal', '', 'finance,Work',
                                  'garden'])[1 + i % 10], ',') AS tags,
           now() - interval '300 days' + (i * interval '1 hour') * 0.06 AS created
    FROM generate_series(1, :n) i
)
INSERT INTO tasks (id, user_id, title, description, priority, status, due_at, timezone,
                   tags, tags_lower, version, created_at, updated_at, completed_at, search)
SELECT gen_random_uuid(), :'user',
       (ARRAY['Pay the invoice', 'Call the plumber', 'Write the weekly report', 'Buy groceries',
              'Book the dentist', 'Review pull request', 'Plan the sprint', 'Renew passport',
              'Water the plants', 'Prepare slides'])[1 + (i * 7) % 10] || ' #' || i,
       CASE WHEN i % 3 = 0 THEN NULL
            ELSE 'Task ' || i || ': details, links and notes for whoever picks this up.' END,
       (i * 13) % 4,
       CASE WHEN i % 10 < 7 THEN 'pending' ELSE 'completed' END,
       CASE WHEN i % 10 = 9 THEN NULL
            ELSE now() - interval '180 days' + ((i * 37) % 365) * interval '1 day'
                 + ((i * 11) % 24) * interval '1 hour' END,
       'Europe/Berlin',
       tags, ARRAY(SELECT te_fold(x) FROM unnest(tags) x),
       1, created, created,
       CASE WHEN i % 10 < 7 THEN NULL ELSE created + interval '2 days' END,
       ''
FROM g;
-- tasks.search as store.c writes it: title, description, tags joined by U+001F
UPDATE tasks SET search = title || E'\x1f' || coalesce(description, '') || E'\x1f'
                          || array_to_string(tags, E'\x1f')
WHERE user_id = :'user';
ANALYZE tasks;
ANALYZE user_seq;
