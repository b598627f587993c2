//! ngayle ("ngày lễ"): Vietnamese holidays and commemoration days for schools and public
//! offices — the schedule an admin edits in YAML, the Vietnamese lunar calendar, the dated
//! occurrences, and the command line around them.
//!
//! The core (`lunar`, `schedule::resolve`, `occurrence`, `feed`, `plan`) is pure: it takes the
//! file texts, "today" and ranges as arguments and does no I/O. See ARCHITECTURE.md for the map.
//!
//! Public are the modules that the binary (`cli`), the integration tests, the benches and the
//! fuzz targets use; `diag` and `template` are internal (their types reach callers through
//! `schedule::LoadReport` and the schedule).

pub mod ack;
pub mod cli;
pub mod daemon;
pub mod days_off;
pub mod delivery;
mod diag;
pub mod feed;
pub mod feeds;
pub mod http;
pub mod lunar;
pub mod mail;
pub mod occurrence;
pub mod pages;
pub mod plan;
pub mod report;
pub mod schedule;
pub mod status;
pub mod store;
mod template;
pub mod vietnam;
pub mod yaml;

/// 64-bit FNV-1a: a stable, dependency-free content hash for versions and ETags (not for
/// security: nothing secret is hashed with it).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
