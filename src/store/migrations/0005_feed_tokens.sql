-- Personal feed links (issue 15): each person's feed URL carries a token made from the server's
-- secret (kept here unless the environment gives one: NGAYLE_FEED_SECRET) and the person's
-- generation, which `ngayle feeds --revoke` bumps so that the old link stops working.
CREATE TABLE feed_secret (
    id         INTEGER PRIMARY KEY CHECK (id = 1),  -- one row
    secret     BLOB    NOT NULL,                    -- 32 random bytes from the OS
    created_at INTEGER NOT NULL                     -- Unix seconds, UTC
) STRICT;

-- Only people whose link was revoked have a row; the others are at generation 0.
CREATE TABLE feed_generations (
    person_id  TEXT    NOT NULL PRIMARY KEY,
    generation INTEGER NOT NULL CHECK (generation > 0),
    revoked_at INTEGER NOT NULL                     -- Unix seconds, UTC
) STRICT, WITHOUT ROWID;
