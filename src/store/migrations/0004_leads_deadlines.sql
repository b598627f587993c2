-- Issue 15: a task can have several reminders (`remind: [7d, 1d]`), each its own key, and a
-- deadline.
-- * `lead`: which reminder of the task. '' for a task's first (longest lead): the key every
--   reminder had before this migration, so that each recorded reminder keeps its row and is
--   never sent again; else the lead as written, normalized (`1d`, `120m`).
-- * `deadline_at`: when the work is due (Unix seconds, UTC); a reminder still waiting once its
--   deadline has passed is skipped. NULL for rows recorded before this migration.
-- SQLite cannot change a primary key in place: the table is rebuilt, every row copied.
CREATE TABLE reminders_v4 (
    event_id        TEXT    NOT NULL,
    occurrence_date TEXT    NOT NULL,  -- YYYY-MM-DD
    task_id         TEXT    NOT NULL,
    person_id       TEXT    NOT NULL,
    lead            TEXT    NOT NULL DEFAULT '',
    email           TEXT    NOT NULL,
    due_at          INTEGER NOT NULL,  -- when it goes out, Unix seconds, UTC
    deadline_at     INTEGER,           -- when the work is due, Unix seconds, UTC
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    message_id      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    claimed_by      TEXT,
    lease_until     INTEGER,
    skip_reason     TEXT,
    PRIMARY KEY (event_id, occurrence_date, task_id, person_id, lead)
) STRICT, WITHOUT ROWID;

INSERT INTO reminders_v4 (event_id, occurrence_date, task_id, person_id, lead, email, due_at,
                          deadline_at, status, attempts, next_attempt_at, last_error, message_id,
                          created_at, updated_at, sent_at, claimed_by, lease_until, skip_reason)
SELECT event_id, occurrence_date, task_id, person_id, '', email, due_at,
       NULL, status, attempts, next_attempt_at, last_error, message_id,
       created_at, updated_at, sent_at, claimed_by, lease_until, skip_reason
FROM reminders;

DROP TABLE reminders;
ALTER TABLE reminders_v4 RENAME TO reminders;
CREATE INDEX reminders_by_status ON reminders (status, due_at);

-- Facts about the store itself. `started_at` (Unix seconds, UTC): when it began keeping
-- reminders — reminders due before it are not pending work (a new install does not catch up
-- on the weeks before it existed). Set by the first tick of a new store; for a store that
-- already holds reminders, the earliest one's due time (every later one was planned).
CREATE TABLE store_meta (
    key   TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

INSERT INTO store_meta (key, value)
SELECT 'started_at', MIN(due_at) FROM reminders HAVING COUNT(*) > 0;
