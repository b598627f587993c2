//! An upgrade keeps every recorded reminder: the state database the previous release left
//! (`tests/fixtures/state-before-leads.sqlite`, made by `scripts/upgrade-fixture.sh` with the
//! release before migration 0004, after a real tick on its shipped files) is migrated by this
//! build, and no reminder it recorded is sent again.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::support::Project;

/// (Key without its lead, lead) → (status, message id, sent at, due at) of every row.
type Rows = BTreeMap<(String, String), (String, Option<String>, Option<i64>, i64)>;

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
                        AS k, {lead} AS lead, status, message_id, sent_at, due_at FROM reminders"
            );
            let all = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            pool.close().await;
            all.iter()
                .map(|r| {
                    (
                        (r.get::<String, _>("k"), r.get::<String, _>("lead")),
                        (
                            r.get("status"),
                            r.get("message_id"),
                            r.get("sent_at"),
                            r.get("due_at"),
                        ),
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
    // A dry run first says what each real run then sends (it reads the old rows the same way).
    let count = |out: &str, verb: &str| -> usize {
        out.split(verb)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("`{verb} N thư` in {out}"))
    };
    for now in ["2024-04-29T07:31:00+07:00", "2024-04-29T17:00:00+07:00"] {
        let dry = p.run(&["send-due", "--now", now, "--dry-run"]);
        assert_eq!(dry.code, Some(0), "{}{}", dry.stdout, dry.stderr);
        let r = p.run(&["send-due", "--now", now]);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
        assert_eq!(
            count(&dry.stdout, "Sẽ gửi "),
            count(&r.stdout, "Đã gửi "),
            "{}\n{}",
            dry.stdout,
            r.stdout
        );
    }
    let after = rows(&state, true);
    // Each old row is still there, as it was: under the lead of the reminder it was (the one
    // this build plans nearest its instant), or under `''` when this build plans none for it.
    let mut adopted = 0;
    for ((key, _), old) in &before {
        let same: Vec<&String> = after
            .iter()
            .filter(|((k, _), r)| k == key && *r == old)
            .map(|((_, lead), _)| lead)
            .collect();
        // (Rows never tried look alike: a sent one has its Message-ID.)
        assert!(
            same.len() == 1 || (old.1.is_none() && !same.is_empty()),
            "{key} kept once as it was: {same:?}"
        );
        adopted += usize::from(!same[0].is_empty());
    }
    assert!(
        adopted * 2 > before.len(),
        "most old rows take their lead: {adopted} of {}",
        before.len()
    );
    // What went out after the upgrade is only what the old release never recorded.
    let old_ids: Vec<&Option<String>> = before.values().map(|r| &r.1).collect();
    let new_sent: Vec<&(String, String)> = after
        .iter()
        .filter(|(_, r)| r.0 == "sent" && !old_ids.contains(&&r.1))
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
    // No email went twice for one reminder: an occurrence's task for a person the old release
    // had sent gets another email only for another lead of a task that has two now (the
    // shipped `pano-bang-ron` and `su-kien-toan-truong`), never for its one reminder again —
    // also where the days off moved its send day (29/4/2024 is a day off now).
    const TWO_LEADS: [&str; 2] = ["pano-bang-ron", "su-kien-toan-truong"];
    for (key, lead) in &new_sent {
        let had_sent = before.iter().any(|((k, _), r)| k == key && r.0 == "sent");
        let task = key.split('/').nth(2).unwrap_or_default();
        assert!(
            !had_sent || TWO_LEADS.contains(&task),
            "{key}/{lead} was sent before the upgrade"
        );
    }
    // And a second upgrade-time run changes nothing.
    let r = p.run(&["send-due", "--now", "2024-04-29T17:01:00+07:00"]);
    assert!(r.stdout.contains("Đã gửi 0 thư"), "{}", r.stdout);
}
