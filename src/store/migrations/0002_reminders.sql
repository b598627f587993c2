-- One row per reminder: event, occurrence date, task, person. The primary key is what makes a
-- second send impossible: a reminder is sent at most once per key (bar the one message in
-- flight when the process dies, which is resent: its rows are still 'sending').
CREATE TABLE reminders (
    event_id        TEXT    NOT NULL,
    occurrence_date TEXT    NOT NULL,  -- YYYY-MM-DD
    task_id         TEXT    NOT NULL,
    person_id       TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    due_at          INTEGER NOT NULL,  -- Unix seconds, UTC
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,           -- after a temporary failure: not before this
    last_error      TEXT,
    message_id      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    PRIMARY KEY (event_id, occurrence_date, task_id, person_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX reminders_by_status ON reminders (status, due_at);
