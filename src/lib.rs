//! ngayle ("ngày lễ"): Vietnamese holidays and commemoration days for schools and public
//! offices — the schedule an admin edits in YAML, the Vietnamese lunar calendar, the dated
//! occurrences, and the command line around them.
//!
//! The core (`lunar`, `schedule::resolve`, `occurrence`) is pure: it takes the file texts and
//! "today" as arguments and does no I/O. See ARCHITECTURE.md for the map.

pub mod cli;
pub mod diag;
pub mod lunar;
pub mod occurrence;
pub mod schedule;
pub mod yaml;
