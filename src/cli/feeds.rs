//! `ngayle feeds [--format table|tsv] [--revoke PERSON]…`: every feed's address — the full
//! feed, each group's, each person's own — and revoking a person's link.
//!
//! The addresses are under `http.public_url`, the same ones the emails carry. A person's
//! token is made from the keys in the state database (`store::FeedKeys`): this command and the
//! running service read the same ones, so a revocation here closes the old link there from its
//! next request on.

use std::io::Write;
use std::path::Path;

use super::{Failure, Format, load_or_report, table};
use crate::diag::did_you_mean;
use crate::feeds::person_url;
use crate::schedule::Schedule;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Revoke this person's link (their id in staff.yaml): the old address stops working at
    /// once, also while `serve` runs; the new one is printed. May be repeated.
    #[arg(long, value_name = "PERSON")]
    pub revoke: Vec<String>,
}

pub fn run(config: &Path, args: &Args, out: &mut impl Write) -> Result<(), Failure> {
    let report = load_or_report(config)?;
    let Some(schedule) = &report.schedule else {
        return Err(Failure::Invalid);
    };
    for id in &args.revoke {
        if schedule.person(id).is_none() {
            let ids = schedule.people.iter().map(|p| p.id.as_str());
            let hint = did_you_mean(id, ids)
                .map(|c| format!(" — có phải là `{c}`?"))
                .unwrap_or_default();
            return Err(Failure::Usage(format!(
                "không có người `{id}` trong danh sách nhân sự{hint}"
            )));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let keys = runtime
        .block_on(async {
            let store = Store::open(&schedule.settings.state).await?;
            let now = chrono::Utc::now();
            for id in &args.revoke {
                store.revoke_feed(id, now).await?;
            }
            store
                .feed_keys(schedule.settings.feed_secret.as_ref(), true)
                .await
        })
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let public = &schedule.settings.public_url;
    if !args.revoke.is_empty() {
        for id in &args.revoke {
            let Some(p) = schedule.person(id) else {
                continue;
            };
            let url = person_url(public, &keys.token(&p.id));
            match args.format {
                Format::Tsv => writeln!(out, "person\t{}\t{}\t{}\t{url}", p.id, p.name, p.email)?,
                Format::Table => writeln!(
                    out,
                    "Đã thu hồi liên kết cũ của {} ({}): liên kết đó không mở được nữa.\nLiên kết mới: {url}",
                    p.name, p.id
                )?,
            }
        }
        return Ok(());
    }
    let shared = shared_urls(schedule);
    let people: Vec<[String; 4]> = schedule
        .people
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.id.clone(),
                p.email.clone(),
                person_url(public, &keys.token(&p.id)),
            ]
        })
        .collect();
    match args.format {
        Format::Tsv => {
            for (kind, id, name, url) in &shared {
                writeln!(out, "{kind}\t{id}\t{name}\t\t{url}")?;
            }
            for [name, id, email, url] in &people {
                writeln!(out, "person\t{id}\t{name}\t{email}\t{url}")?;
            }
        }
        Format::Table => {
            let groups: Vec<[String; 3]> = shared
                .iter()
                .map(|(_, id, name, url)| [name.clone(), id.clone(), url.clone()])
                .collect();
            writeln!(out, "Lịch chung và lịch của từng nhóm:")?;
            out.write_all(table(&["Lịch", "Id", "Địa chỉ"], &groups).as_bytes())?;
            writeln!(
                out,
                "\nLịch riêng của từng người (chỉ việc của người đó, có nhắc trước hạn; thư nhắc việc dẫn tới đây):"
            )?;
            out.write_all(table(&["Tên", "Id", "Email", "Địa chỉ"], &people).as_bytes())?;
            writeln!(
                out,
                "\n{} người, {} nhóm. Lịch riêng là của riêng từng người: nếu lộ ra ngoài, chạy `ngayle feeds --revoke ID` để thu hồi và cấp liên kết mới.",
                people.len(),
                schedule.groups.len()
            )?;
        }
    }
    Ok(())
}

/// The full feed's, the days-off feed's and each group's (kind, id, name, URL), with the feed
/// token when one is set.
fn shared_urls(schedule: &Schedule) -> Vec<(&'static str, String, String, String)> {
    let settings = &schedule.settings;
    let with_token = |url: String| match &settings.feed_token {
        Some(t) => format!("{url}?token={}", t.expose()),
        None => url,
    };
    let mut out = vec![(
        "all",
        String::new(),
        "Lịch chung (mọi ngày lễ, mọi việc)".to_string(),
        with_token(format!(
            "{}{}",
            settings.public_url,
            crate::http::FULL_FEED_PATH
        )),
    )];
    out.push((
        "days-off",
        crate::feed::DAYS_OFF_FEED.to_string(),
        "Ngày nghỉ lễ, Tết (chỉ các đợt nghỉ và ngày làm bù)".to_string(),
        with_token(format!(
            "{}/calendar/{}.ics",
            settings.public_url,
            crate::feed::DAYS_OFF_FEED
        )),
    ));
    for g in &schedule.groups {
        out.push((
            "group",
            g.id.clone(),
            g.name.clone(),
            with_token(format!("{}/calendar/{}.ics", settings.public_url, g.id)),
        ));
    }
    out
}
