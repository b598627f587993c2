//! Raw types: the admin's files exactly as written, before any checking.
//!
//! Every field is optional and every value a [`Scalar`] or [`List`], so that the parser only
//! fails on YAML syntax or a grossly wrong shape; everything else is checked in
//! [`super::resolve`], which reports each problem at its own line and column.

use serde::Deserialize;

use crate::yaml::{List, Scalar, Unknown};

/// `config/ngayle.yaml`.
#[derive(Debug, Default, Deserialize)]
pub struct Config {
    pub unit: Option<Unit>,
    pub timezone: Option<Scalar>,
    pub calendars: Option<Scalar>,
    pub staff: Option<Scalar>,
    pub http: Option<Http>,
    pub mail: Option<Mail>,
    pub state: Option<Scalar>,
    pub reminders: Option<Reminders>,
    pub shutdown_grace: Option<Scalar>,
    pub reload: Option<Reload>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Config {
    pub const KEYS: &[&str] = &[
        "unit",
        "timezone",
        "calendars",
        "staff",
        "http",
        "mail",
        "state",
        "reminders",
        "shutdown_grace",
        "reload",
    ];
}

/// `reload:` in `config/ngayle.yaml`.
#[derive(Debug, Default, Deserialize)]
pub struct Reload {
    pub warn_shrink: Option<Scalar>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Reload {
    pub const KEYS: &[&str] = &["warn_shrink"];
}

#[derive(Debug, Default, Deserialize)]
pub struct Unit {
    pub name: Option<Scalar>,
    pub place: Option<Scalar>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Unit {
    pub const KEYS: &[&str] = &["name", "place"];
}

#[derive(Debug, Default, Deserialize)]
pub struct Http {
    pub listen: Option<Scalar>,
    pub public_url: Option<Scalar>,
    pub feed_token: Option<Scalar>,
    pub max_connections: Option<Scalar>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Http {
    pub const KEYS: &[&str] = &["listen", "public_url", "feed_token", "max_connections"];
}

#[derive(Debug, Default, Deserialize)]
pub struct Mail {
    pub from: Option<Scalar>,
    pub reply_to: Option<Scalar>,
    pub smtp: Option<Scalar>,
    pub outbox: Option<Scalar>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Mail {
    pub const KEYS: &[&str] = &["from", "reply_to", "smtp", "outbox"];
}

#[derive(Debug, Default, Deserialize)]
pub struct Reminders {
    pub send_at: Option<Scalar>,
    pub workdays: Option<List>,
    pub catch_up: Option<Scalar>,
    pub lease: Option<Scalar>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Reminders {
    pub const KEYS: &[&str] = &["send_at", "workdays", "catch_up", "lease"];
}

/// `config/staff.yaml`.
#[derive(Debug, Default, Deserialize)]
pub struct Staff {
    pub groups: Option<Vec<Group>>,
    pub people: Option<Vec<Person>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Staff {
    pub const KEYS: &[&str] = &["groups", "people"];
}

#[derive(Debug, Default, Deserialize)]
pub struct Group {
    pub id: Option<Scalar>,
    pub name: Option<Scalar>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Group {
    pub const KEYS: &[&str] = &["id", "name"];
}

#[derive(Debug, Default, Deserialize)]
pub struct Person {
    pub id: Option<Scalar>,
    pub name: Option<Scalar>,
    pub title: Option<Scalar>,
    pub email: Option<Scalar>,
    pub groups: Option<List>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Person {
    pub const KEYS: &[&str] = &["id", "name", "title", "email", "groups"];
}

/// `calendars/tasks.yaml`.
#[derive(Debug, Default, Deserialize)]
pub struct Tasks {
    pub tasks: Option<Vec<Task>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Tasks {
    pub const KEYS: &[&str] = &["tasks"];
}

#[derive(Debug, Default, Deserialize)]
pub struct Task {
    pub id: Option<Scalar>,
    pub title: Option<Scalar>,
    #[serde(rename = "do")]
    pub what: Option<Scalar>,
    pub before: Option<Scalar>,
    pub at: Option<Scalar>,
    pub who: Option<List>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Task {
    pub const KEYS: &[&str] = &["id", "title", "do", "before", "at", "who"];
}

/// `calendars/<layer>.yaml`.
#[derive(Debug, Default, Deserialize)]
pub struct Layer {
    pub name: Option<Scalar>,
    pub events: Option<Vec<Event>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Layer {
    pub const KEYS: &[&str] = &["name", "events"];
}

#[derive(Debug, Default, Deserialize)]
pub struct Event {
    pub id: Option<Scalar>,
    pub name: Option<Scalar>,
    pub date: Option<Scalar>,
    pub lunar: Option<Scalar>,
    pub since: Option<Scalar>,
    pub only: Option<Scalar>,
    pub days: Option<Scalar>,
    pub category: Option<Scalar>,
    pub day_off: Option<Scalar>,
    pub tasks: Option<List>,
    pub round_tasks: Option<List>,
    pub note: Option<Scalar>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl Event {
    pub const KEYS: &[&str] = &[
        "id",
        "name",
        "date",
        "lunar",
        "since",
        "only",
        "days",
        "category",
        "day_off",
        "tasks",
        "round_tasks",
        "note",
    ];
}
