//! An upgrade keeps every recorded reminder: the state database the previous release left
//! (`tests/fixtures/state-before-leads.sqlite`, made by `scripts/upgrade-fixture.sh` with the
//! release before migration 0004, after a real tick on its shipped files) is migrated by this
//! build, and no reminder it recorded is sent again.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::support::Project;

/// Key → (status, message id, sent at) of every row, and the lead of each key.
type Rows = BTreeMap<String, (String, Option<String>, Option<i64>)>;

fn rows(path: &std::path::Path, with_lead: bool) -> Rows {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .block_on(async {
            let url = format!("sqlite://{}?mode=ro", path.display());
            let pool = sqlx::SqlitePool::connect(&url)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let lead = if with_lead { "lead" } else { "''" };
            let sql = format!(
                "SELECT event_id || '/' || occurrence_date || '/' || task_id || '/' || person_id
                        || CASE WHEN {lead} = '' THEN '' ELSE '/' || {lead} END AS k,
                        status, message_id, sent_at FROM reminders"
            );
            let all = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            pool.close().await;
            all.iter()
                .map(|r| {
                    (
                        r.get::<String, _>("k"),
                        (r.get("status"), r.get("message_id"), r.get("sent_at")),
                    )
                })
                .collect()
        })
}

fn emails(p: &Project) -> usize {
    std::fs::read_dir(p.path().join("var/outbox"))
        .map(|d| d.flatten().count())
        .unwrap_or(0)
}

#[test]
fn a_database_of_the_previous_release_keeps_every_reminder_and_resends_none() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/state-before-leads.sqlite");
    let before = rows(&fixture, false);
    let sent_before = before.values().filter(|r| r.0 == "sent").count();
    assert!(
        sent_before > 20,
        "the fixture holds a real tick: {before:?}"
    );
    let p = Project::shipped();
    let state = p.path().join("var/ngayle.sqlite");
    std::fs::create_dir_all(p.path().join("var")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&fixture, &state).unwrap_or_else(|e| panic!("{e}"));

    // The same instant as the old release's tick, a minute later, then the rest of the day:
    // this build's plan (with today's tasks, some with two reminders) over that database.
    for now in ["2024-04-29T07:31:00+07:00", "2024-04-29T17:00:00+07:00"] {
        let r = p.run(&["send-due", "--now", now]);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    }
    let after = rows(&state, true);
    for (key, old) in &before {
        assert_eq!(after.get(key), Some(old), "{key} kept as it was");
    }
    // What went out after the upgrade is only what the old release never recorded.
    let new_sent: Vec<&String> = after
        .iter()
        .filter(|(k, r)| r.0 == "sent" && !before.contains_key(*k))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        after.values().filter(|r| r.0 == "sent").count(),
        sent_before + new_sent.len()
    );
    assert!(
        !new_sent.is_empty(),
        "the day's later reminders went out: {after:?}"
    );
    assert!(emails(&p) > 0 && emails(&p) <= new_sent.len());
    // And a second upgrade-time run changes nothing.
    let r = p.run(&["send-due", "--now", "2024-04-29T17:01:00+07:00"]);
    assert!(r.stdout.contains("Đã gửi 0 thư"), "{}", r.stdout);
}
