-- "Đã xong" (issue 17): what each person answered for a task of an occurrence, through the
-- signed link of a reminder email. One row per person and task occurrence: answering again
-- updates it (the first answer's time is kept). A done row stops the reminders still to be
-- sent: the person's own, or everyone's for that task occurrence when `scope` is 'any' (the
-- task's `done_when` when it was answered).
CREATE TABLE acks (
    event_id        TEXT    NOT NULL,
    occurrence_date TEXT    NOT NULL,  -- YYYY-MM-DD
    task_id         TEXT    NOT NULL,
    person_id       TEXT    NOT NULL,
    done            INTEGER NOT NULL CHECK (done IN (0, 1)),
    scope           TEXT    NOT NULL CHECK (scope IN ('any', 'all')),
    note            TEXT    NOT NULL DEFAULT '',
    link            TEXT    NOT NULL DEFAULT '',
    first_at        INTEGER NOT NULL,  -- Unix seconds, UTC: the first answer
    answered_at     INTEGER NOT NULL,  -- the last change
    PRIMARY KEY (event_id, occurrence_date, task_id, person_id)
) STRICT, WITHOUT ROWID;
