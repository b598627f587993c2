//! "Đã xong" links, pure: which task occurrence and person a link is for, its signed token,
//! and what a person may send back (done or not, a note, a link).
//!
//! A token is `EVENT.YYYYMMDD.TASK.PERSON.YYYYMMDD.TAG`: the occurrence's event, first day,
//! task and person, the last day the link works (the task's deadline plus
//! `reminders.ack_valid_for`), and the first 20 bytes of an HMAC-SHA256 of all of them under
//! the server's secret (the one of the personal feeds), in base32. Ids are `a-z`, `0-9` and
//! `-`, so the dots cannot be confused with them; the fields are length-prefixed under the
//! HMAC. Verifying compares the tag in constant time and only then looks at the date, so a
//! forged link and an expired one are told apart only for links the server made.

use chrono::NaiveDate;

use crate::store::FeedKeys;

/// Who and what a link acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AckKey {
    pub event_id: String,
    /// The occurrence's first day.
    pub date: NaiveDate,
    pub task_id: String,
    pub person_id: String,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of ours, or changed: its tag does not match.
    Invalid,
    /// Made by the server, but its last day has passed.
    Expired(NaiveDate),
}

/// The longest note and link kept, in characters.
pub const NOTE_MAX: usize = 2000;
pub const LINK_MAX: usize = 2000;

/// The token of `key`, valid until `last_day` (included).
pub fn token(keys: &FeedKeys, key: &AckKey, last_day: NaiveDate) -> String {
    let date = key.date.format("%Y%m%d").to_string();
    let last = last_day.format("%Y%m%d").to_string();
    let tag = keys.tag(
        b"ngayle ack v1",
        &[&key.event_id, &date, &key.task_id, &key.person_id, &last],
    );
    format!(
        "{}.{date}.{}.{}.{last}.{tag}",
        key.event_id, key.task_id, key.person_id
    )
}

/// The page of `key`'s link under the service's public URL.
pub fn url(public_url: &str, keys: &FeedKeys, key: &AckKey, last_day: NaiveDate) -> String {
    format!("{public_url}{PATH_PREFIX}{}", token(keys, key, last_day))
}

/// Where the pages of the links are served: `/xong/TOKEN`.
pub const PATH_PREFIX: &str = "/xong/";

/// The last day a link works: the deadline's day (Asia/Ho_Chi_Minh) plus `valid_for`.
pub fn last_day(deadline: chrono::DateTime<chrono::Utc>, valid_for: chrono::Duration) -> NaiveDate {
    let day = crate::vietnam::local(deadline).date_naive();
    day.checked_add_signed(valid_for).unwrap_or(day)
}

/// The key a token is for, if the server made it and `today` is not past its last day.
pub fn verify(keys: &FeedKeys, token: &str, today: NaiveDate) -> Result<AckKey, TokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [event_id, date, task_id, person_id, last, tag] = parts.as_slice() else {
        return Err(TokenError::Invalid);
    };
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 200
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if ![event_id, task_id, person_id].iter().all(|s| id_ok(s)) {
        return Err(TokenError::Invalid);
    }
    let day = |s: &str| {
        (s.len() == 8)
            .then(|| NaiveDate::parse_from_str(s, "%Y%m%d").ok())
            .flatten()
    };
    let (Some(date_value), Some(last_day)) = (day(date), day(last)) else {
        return Err(TokenError::Invalid);
    };
    let expected = keys.tag(
        b"ngayle ack v1",
        &[event_id, date, task_id, person_id, last],
    );
    if !crate::store::same_secret(expected.as_bytes(), tag.as_bytes()) {
        return Err(TokenError::Invalid);
    }
    if today > last_day {
        return Err(TokenError::Expired(last_day));
    }
    Ok(AckKey {
        event_id: (*event_id).to_string(),
        date: date_value,
        task_id: (*task_id).to_string(),
        person_id: (*person_id).to_string(),
    })
}

/// What a person answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Done ("Đã xong"), or not ("Chưa làm được", with the reason in `note`).
    pub done: bool,
    pub note: String,
    /// The post's or the photo's address, `http(s)://…`, or empty.
    pub link: String,
}

impl Answer {
    /// The answer from the form's fields (`ket_qua` = `xong` | `chua`, `ghi_chu`, `lien_ket`),
    /// or what to tell the person when it cannot be kept.
    pub fn from_form(result: &str, note: &str, link: &str) -> Result<Answer, String> {
        let done = match result {
            "xong" => true,
            "chua" => false,
            _ => return Err("Hãy chọn \"Đã xong\" hoặc \"Chưa làm được\".".into()),
        };
        // Line breaks are kept in a note; other control characters (pasted in) are not.
        let note: String = note
            .replace("\r\n", "\n")
            .chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
            .collect();
        let note = note.trim().to_string();
        if note.chars().count() > NOTE_MAX {
            return Err(format!(
                "Ghi chú dài quá {NOTE_MAX} ký tự; hãy viết ngắn lại."
            ));
        }
        if !done && note.is_empty() {
            return Err("Hãy ghi lý do chưa làm được.".into());
        }
        let link = link.trim().to_string();
        if link.chars().count() > LINK_MAX {
            return Err(format!("Liên kết dài quá {LINK_MAX} ký tự."));
        }
        if !link.is_empty() {
            let ok = url::Url::parse(&link)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(
                    "Liên kết phải là một địa chỉ web bắt đầu bằng http:// hoặc https:// (địa chỉ bài đăng, ảnh)."
                        .into(),
                );
            }
        }
        Ok(Answer { done, note, link })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn key() -> AckKey {
        AckKey {
            event_id: "quoc-khanh".into(),
            date: NaiveDate::from_ymd_opt(2026, 9, 2).unwrap_or_default(),
            task_id: "treo-co".into(),
            person_id: "bao-ve".into(),
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn a_token_opens_its_key_until_its_last_day_and_nothing_else() {
        let keys = FeedKeys::new(b"secret one", BTreeMap::new());
        let t = token(&keys, &key(), day(2026, 10, 2));
        assert!(
            t.starts_with("quoc-khanh.20260902.treo-co.bao-ve.20261002."),
            "{t}"
        );
        assert_eq!(verify(&keys, &t, day(2026, 10, 2)), Ok(key()));
        assert_eq!(
            verify(&keys, &t, day(2026, 10, 3)),
            Err(TokenError::Expired(day(2026, 10, 2)))
        );
        // Another secret, another person, a later last day, a changed tag: not ours.
        let other = FeedKeys::new(b"secret two", BTreeMap::new());
        assert_eq!(
            verify(&other, &t, day(2026, 9, 1)),
            Err(TokenError::Invalid)
        );
        for (from, to) in [
            (".bao-ve.", ".hieu-truong."),
            (".20261002.", ".20271002."),
            (".treo-co.", ".tin-bai-web."),
        ] {
            let changed = t.replace(from, to);
            assert_ne!(changed, t);
            assert_eq!(
                verify(&keys, &changed, day(2026, 9, 1)),
                Err(TokenError::Invalid)
            );
        }
        let mut flipped = t.clone();
        let last = flipped.pop().unwrap_or('a');
        flipped.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(
            verify(&keys, &flipped, day(2026, 9, 1)),
            Err(TokenError::Invalid)
        );
        for junk in [
            "",
            ".....",
            "a.b.c.d.e.f",
            "Q.20260902.t.p.20261002.x",
            &"a".repeat(5000),
        ] {
            assert_eq!(
                verify(&keys, junk, day(2026, 9, 1)),
                Err(TokenError::Invalid),
                "{junk}"
            );
        }
    }

    #[test]
    fn answers_are_checked_before_they_are_kept() {
        let a = Answer::from_form("xong", " Đã treo\r\ncờ\u{1b} ", "https://example.org/bai")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a,
            Answer {
                done: true,
                note: "Đã treo\ncờ".into(),
                link: "https://example.org/bai".into()
            }
        );
        assert!(
            Answer::from_form("chua", "", "").is_err(),
            "a reason is needed"
        );
        assert!(Answer::from_form("chua", "Mưa to", "").is_ok_and(|a| !a.done));
        assert!(Answer::from_form("", "x", "").is_err());
        assert!(Answer::from_form("xong", "", "javascript:alert(1)").is_err());
        assert!(Answer::from_form("xong", "", "ftp://example.org/x").is_err());
        assert!(Answer::from_form("xong", &"x".repeat(NOTE_MAX + 1), "").is_err());
    }
}
