//! The pages people open (issue 17): the page of a reminder's "Đã xong" link, shown by a GET
//! and answered by a POST. A GET never changes anything (mail scanners open links); a POST
//! records only for a token the server made, not past its last day, for a task still in the
//! calendar and still given to that person.

use chrono::{DateTime, Utc};

use crate::ack::{self, AckKey, Answer, TokenError};
use crate::feeds::Feeds;
use crate::occurrence::{Occurrence, occurrences};
use crate::schedule::{Person, Schedule, Task};
use crate::store::{Recorded, Store, StoreError};
use crate::template::{AckPage, AckTaskCtx, AnswerCtx, PersonCtx, UnitCtx};
use crate::vietnam;

/// What a person sent from the page's form.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AckForm {
    pub ket_qua: Option<String>,
    pub ghi_chu: Option<String>,
    pub lien_ket: Option<String>,
}

/// The page of `token`, with `form` recorded first when it is a POST; its HTTP status and
/// HTML.
pub async fn ack(
    feeds: &Feeds,
    store: &Store,
    token: &str,
    form: Option<AckForm>,
    choice: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(u16, String), StoreError> {
    let schedule = feeds.schedule();
    let unit = UnitCtx {
        name: schedule.unit.name.clone(),
        place: schedule.unit.place.clone(),
    };
    let keys = feeds.keys(store).await?;
    let page = match ack::verify(&keys, token, vietnam::today(now)) {
        Err(TokenError::Invalid) => AckPage::new(unit, "invalid", 404),
        Err(TokenError::Expired(last)) => AckPage {
            expired_on: vietnam::date(last),
            ..AckPage::new(unit, "expired", 410)
        },
        Ok(key) => match find(schedule, &key) {
            None => AckPage::new(unit, "gone", 404),
            Some(found) => {
                answer_page(schedule, store, unit, &key, &found, form, choice, now).await?
            }
        },
    };
    let html = match schedule.templates.render_page(&page) {
        Ok(html) => html,
        Err(e) => {
            // The template was test-rendered at load with every state: this is a bug.
            tracing::error!(error = %e, "không dựng được trang \"Đã xong\"");
            return Ok((500, "Lỗi dựng trang, xin thử lại sau.\n".into()));
        }
    };
    Ok((page.status, html))
}

/// The task occurrence and person a key names, if the calendar still has them.
struct Found<'s> {
    occurrence: Occurrence<'s>,
    task: &'s Task,
    person: &'s Person,
}

fn find<'s>(schedule: &'s Schedule, key: &AckKey) -> Option<Found<'s>> {
    let occurrence = occurrences(schedule, key.date, key.date)
        .into_iter()
        .find(|o| o.event.id == key.event_id && o.date == key.date)?;
    let task = *occurrence.tasks.iter().find(|t| t.id == key.task_id)?;
    let person = schedule
        .assignees(task)
        .into_iter()
        .find(|p| p.id == key.person_id)?;
    Some(Found {
        occurrence,
        task,
        person,
    })
}

#[allow(clippy::too_many_arguments)]
async fn answer_page(
    schedule: &Schedule,
    store: &Store,
    unit: UnitCtx,
    key: &AckKey,
    found: &Found<'_>,
    form: Option<AckForm>,
    choice: Option<&str>,
    now: DateTime<Utc>,
) -> Result<AckPage, StoreError> {
    let o = &found.occurrence;
    let deadline = crate::plan::deadline_of(schedule, o.date, found.task);
    let mut page = AckPage {
        person: Some(PersonCtx {
            name: found.person.name.clone(),
            title: found.person.title.clone(),
            email: found.person.email.clone(),
        }),
        task: Some(AckTaskCtx {
            title: found.task.title.clone(),
            what: found.task.what.clone(),
            due: deadline
                .map(|d| vietnam::time_day(vietnam::local(d)))
                .unwrap_or_default(),
            event_title: o.title.clone(),
            event_date: vietnam::date(o.date),
            weekday: vietnam::weekday(o.date).to_string(),
            lunar: o
                .lunar()
                .map(|l| vietnam::lunar_short(&l))
                .unwrap_or_default(),
            class: o.class.map(|c| c.name_vi().to_string()),
        }),
        done_when: found.task.done_when.word(),
        choice: if choice == Some("chua") {
            "chua"
        } else {
            "xong"
        },
        ..AckPage::new(unit, "form", 200)
    };
    if let Some(form) = form {
        let (result, note, link) = (
            form.ket_qua.unwrap_or_default(),
            form.ghi_chu.unwrap_or_default(),
            form.lien_ket.unwrap_or_default(),
        );
        page.choice = if result == "chua" { "chua" } else { "xong" };
        match Answer::from_form(&result, &note, &link) {
            Err(message) => {
                // Shown again with what was typed, nothing recorded.
                page.status = 422;
                page.message = message;
                page.note = note;
                page.link = link;
            }
            Ok(answer) => {
                let recorded = store
                    .acknowledge(key, &answer, found.task.done_when, now)
                    .await?;
                tracing::info!(
                    event = %key.event_id,
                    date = %key.date,
                    task = %key.task_id,
                    person = %key.person_id,
                    done = answer.done,
                    "{}",
                    match recorded {
                        Recorded::Same => "trả lời \"Đã xong\" lặp lại: không đổi",
                        _ if answer.done => "đã ghi: việc đã xong",
                        _ => "đã ghi: chưa làm được",
                    }
                );
                page.state = "saved";
                page.saved = match recorded {
                    Recorded::New => "new",
                    Recorded::Changed => "changed",
                    Recorded::Same => "same",
                };
                page.note = answer.note;
                page.link = answer.link;
            }
        }
    }
    let answers = store.acks_of(&key.event_id, key.date, &key.task_id).await?;
    // The form shows what this person answered last, when the request did not say.
    if page.state == "form"
        && page.message.is_empty()
        && let Some(mine) = answers.iter().find(|a| a.person_id == key.person_id)
    {
        if choice.is_none() {
            page.choice = if mine.done { "xong" } else { "chua" };
        }
        page.note = mine.note.clone();
        page.link = mine.link.clone();
    }
    let assigned = schedule.assignees(found.task);
    page.answers = answers
        .iter()
        .map(|a| AnswerCtx {
            name: assigned
                .iter()
                .find(|p| p.id == a.person_id)
                .map_or_else(|| a.person_id.clone(), |p| p.name.clone()),
            done: a.done,
            note: a.note.clone(),
            link: a.link.clone(),
            at: vietnam::time_day(vietnam::local(a.answered_at)),
        })
        .collect();
    Ok(page)
}
