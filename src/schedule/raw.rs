//! Raw types: the admin's files exactly as written, before any checking.
//!
//! Every field is optional and every value a [`Scalar`] or [`List`], so that the parser only
//! fails on YAML syntax or a grossly wrong shape; everything else is checked in
//! [`super::resolve`], which reports each problem at its own line and column.

use serde::Deserialize;

use crate::yaml::{List, Scalar, Unknown};

/// Declares a raw type from one list of its keys: a struct whose fields are all optional,
/// with the keys it does not know collected in `unknown`, and its `KEYS` (as written in the
/// file, for "did you mean"), so that the two cannot disagree. `field as "key"` is a key that
/// is not a Rust name (`do`).
macro_rules! raw_type {
    ($(#[$doc:meta])* $name:ident { $($field:ident $(as $key:literal)?: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        pub struct $name {
            $($(#[serde(rename = $key)])? pub $field: Option<$ty>,)*
            #[serde(flatten)]
            pub unknown: Unknown,
        }

        impl $name {
            pub const KEYS: &[&str] = &[$(raw_type!(@key $field $($key)?)),*];
        }
    };
    (@key $field:ident $key:literal) => {
        $key
    };
    (@key $field:ident) => {
        stringify!($field)
    };
}

raw_type! {
    /// `config/ngayle.yaml`.
    Config {
        unit: Unit,
        timezone: Scalar,
        calendars: Scalar,
        staff: Scalar,
        http: Http,
        mail: Mail,
        state: Scalar,
        reminders: Reminders,
        shutdown_grace: Scalar,
        reload: Reload,
    }
}

raw_type! {
    /// `reload:` in `config/ngayle.yaml`.
    Reload { warn_shrink: Scalar }
}

raw_type! {
    Unit { name: Scalar, place: Scalar }
}

raw_type! {
    Http { listen: Scalar, public_url: Scalar, feed_token: Scalar, max_connections: Scalar }
}

raw_type! {
    Mail { from: Scalar, reply_to: Scalar, smtp: Scalar, outbox: Scalar }
}

raw_type! {
    Reminders { send_at: Scalar, workdays: List, catch_up: Scalar, lease: Scalar, ack_valid_for: Scalar, escalate_after: Scalar }
}

raw_type! {
    /// `config/staff.yaml`.
    Staff { groups: Vec<Group>, people: Vec<Person> }
}

raw_type! {
    Group { id: Scalar, name: Scalar, lead: Scalar, digest: Scalar }
}

raw_type! {
    Person { id: Scalar, name: Scalar, title: Scalar, email: Scalar, groups: List, digest: Scalar }
}

raw_type! {
    /// `calendars/tasks.yaml`.
    Tasks { tasks: Vec<Task> }
}

raw_type! {
    Task {
        id: Scalar,
        title: Scalar,
        what as "do": Scalar,
        due: Scalar,
        remind: List,
        before: Scalar,
        at: Scalar,
        moves as "move": Scalar,
        who: List,
        done_when: Scalar,
        escalate_to: List,
    }
}

raw_type! {
    /// `calendars/<layer>.yaml`.
    Layer { name: Scalar, events: Vec<Event> }
}

raw_type! {
    Event {
        id: Scalar,
        name: Scalar,
        date: Scalar,
        lunar: Scalar,
        since: Scalar,
        only: Scalar,
        days: Scalar,
        category: Scalar,
        day_off: Scalar,
        tasks: List,
        round_tasks: List,
        note: Scalar,
        from: Scalar,
        until: Scalar,
        title: Scalar,
    }
}

raw_type! {
    /// `calendars/ngay-nghi.yaml`: each year's decisions on days off.
    DaysOff { decisions: Vec<Decision> }
}

raw_type! {
    Decision {
        year: Scalar,
        holiday: List,
        name: Scalar,
        off: List,
        work: List,
        cancel: List,
        document: Scalar,
        source: Scalar,
    }
}

#[cfg(test)]
mod tests {
    /// The keys are the fields' names as written in the files, in order (`what` is `do`).
    #[test]
    fn keys_are_the_fields() {
        assert_eq!(
            super::Task::KEYS,
            &[
                "id",
                "title",
                "do",
                "due",
                "remind",
                "before",
                "at",
                "move",
                "who",
                "done_when",
                "escalate_to"
            ]
        );
        assert_eq!(super::Staff::KEYS, &["groups", "people"]);
    }

    /// The JSON Schemas in schema/ (what an editor checks as the admin types) name exactly the
    /// keys of each raw type, and no other (`additionalProperties: false`): a key added here
    /// without its schema, or a key the schema invented, fails.
    #[test]
    fn the_schemas_have_the_keys_of_the_raw_types() {
        use super::*;
        let cases: &[(&str, &str, &[&str])] = &[
            ("ngayle", "", Config::KEYS),
            ("ngayle", "/properties/unit", Unit::KEYS),
            ("ngayle", "/properties/http/anyOf/0", Http::KEYS),
            ("ngayle", "/properties/mail/anyOf/0", Mail::KEYS),
            ("ngayle", "/properties/reminders/anyOf/0", Reminders::KEYS),
            ("ngayle", "/properties/reload/anyOf/0", Reload::KEYS),
            ("staff", "", Staff::KEYS),
            ("staff", "/properties/groups/items", Group::KEYS),
            ("staff", "/properties/people/items", Person::KEYS),
            ("tasks", "", Tasks::KEYS),
            ("tasks", "/$defs/task", Task::KEYS),
            ("layer", "", Layer::KEYS),
            ("layer", "/$defs/event", Event::KEYS),
            ("ngay-nghi", "", DaysOff::KEYS),
            ("ngay-nghi", "/$defs/decision", Decision::KEYS),
        ];
        for &(file, at, keys) in cases {
            let path = format!("{}/schema/{file}.schema.json", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let schema: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            let object = schema
                .pointer(at)
                .unwrap_or_else(|| panic!("{path}: nothing at {at:?}"));
            let mut named: Vec<&str> = object["properties"]
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let mut want = keys.to_vec();
            named.sort_unstable();
            want.sort_unstable();
            assert_eq!(named, want, "{path} at {at:?}");
            assert_eq!(
                object["additionalProperties"],
                serde_json::Value::Bool(false),
                "{path} at {at:?}: an unknown key must be refused"
            );
        }
    }
}
