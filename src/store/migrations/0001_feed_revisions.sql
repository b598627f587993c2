-- When the content of each feed event was last modified: the event's DTSTAMP and
-- LAST-MODIFIED, so that a feed's bytes change only when its content does.
CREATE TABLE feed_revisions (
    feed        TEXT    NOT NULL,  -- 'all' or 'group:<id>'
    uid         TEXT    NOT NULL,  -- the VEVENT UID (event id, year, unit)
    hash        TEXT    NOT NULL,  -- hash of the event's text without timestamps
    modified_at INTEGER NOT NULL,  -- Unix seconds, UTC
    PRIMARY KEY (feed, uid)
) STRICT, WITHOUT ROWID;
