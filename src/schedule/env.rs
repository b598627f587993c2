//! The schedule's `NGAYLE_*` environment variables: their names, the config key each one
//! overrides, and how they are read (`NAME_FILE`, the SMTP password's order).
//!
//! This is the only module that names them or reads them: the loader calls [`read`], and
//! `resolve` checks each value as if it stood at the key it overrides (its mistakes reported
//! against the pseudo-file [`pseudo_path`] `$NAME`). What a value means is not decided here.
//! The command line's own variables (`NGAYLE_CONFIG`, `NGAYLE_LOG_FORMAT`) belong to `cli`.

use std::path::{Path, PathBuf};

use super::load::io_reason;
use crate::diag::{Diagnostic, Pos};

pub const LISTEN: &str = "NGAYLE_LISTEN";
pub const PUBLIC_URL: &str = "NGAYLE_PUBLIC_URL";
pub const FEED_TOKEN: &str = "NGAYLE_FEED_TOKEN";
pub const MAX_CONNECTIONS: &str = "NGAYLE_MAX_CONNECTIONS";
pub const SMTP_URL: &str = "NGAYLE_SMTP_URL";
pub const OUTBOX: &str = "NGAYLE_OUTBOX";
pub const STATE: &str = "NGAYLE_STATE";
pub const SHUTDOWN_GRACE: &str = "NGAYLE_SHUTDOWN_GRACE";
/// The SMTP password: it overrides no key, only the password in `mail.smtp`'s URL.
pub const SMTP_PASSWORD: &str = "NGAYLE_SMTP_PASSWORD";
/// The secret the personal feed links are made from, for replicas that do not share one
/// database (without it, each database keeps a secret of its own). It overrides no key.
pub const FEED_SECRET: &str = "NGAYLE_FEED_SECRET";

/// The environment variables that override the config file: (variable, key it overrides,
/// secret). A secret's value is never shown in a diagnostic. Each may also come from a file
/// named by the same variable with `_FILE` (meant for the secrets: systemd credentials,
/// Docker secrets).
pub const ENV_KEYS: &[(&str, &str, bool)] = &[
    (LISTEN, "http.listen", false),
    (PUBLIC_URL, "http.public_url", false),
    (FEED_TOKEN, "http.feed_token", true),
    (MAX_CONNECTIONS, "http.max_connections", false),
    (SMTP_URL, "mail.smtp", true),
    (OUTBOX, "mail.outbox", false),
    (STATE, "state", false),
    (SHUTDOWN_GRACE, "shutdown_grace", false),
];

/// What `NAME_FILE` adds to a variable's name.
const FILE_SUFFIX: &str = "_FILE";

/// An environment variable's value, read by the loader (`schedule::env::read`).
#[derive(Debug, Clone)]
pub struct EnvValue {
    pub name: &'static str,
    pub value: String,
}

/// The pseudo-file a variable's mistakes are reported against: `$NAME`, its whole "text" the
/// value (or `[ẩn]` for a secret).
pub fn pseudo_path(name: &str) -> PathBuf {
    PathBuf::from(format!("${name}"))
}

/// Whether `name` is one of [`ENV_KEYS`] whose value must never be shown.
pub fn is_secret(name: &str) -> bool {
    ENV_KEYS.iter().any(|(n, _, s)| *n == name && *s)
}

/// Reads the variables of [`ENV_KEYS`] and the SMTP password. An empty variable counts as
/// unset. `NAME_FILE` names a file holding the value and wins over `NAME`; a file that cannot
/// be read is an error, reported against `$NAME_FILE`.
///
/// The password keeps the order it always had: the file (`NGAYLE_SMTP_PASSWORD_FILE`; an
/// empty file counts as none, because systemd's unit hands over an empty credential until the
/// admin puts one in place) beats `NGAYLE_SMTP_PASSWORD`, which beats the password in the URL
/// (the mailer's last resort). Unlike the keys' values it is taken as written, blanks and all.
pub fn read(diags: &mut Vec<Diagnostic>) -> Vec<EnvValue> {
    let mut out = Vec::new();
    for (name, _, _) in ENV_KEYS {
        let file_var = format!("{name}{FILE_SUFFIX}");
        let value = match file_value(&file_var) {
            Ok(Some(text)) => Some(text),
            Ok(None) => std::env::var(name).ok(),
            Err((path, e)) => {
                diags.push(
                    Diagnostic::error(
                        &pseudo_path(&file_var),
                        Pos::START,
                        format!("không đọc được tệp {}: {}", path.display(), io_reason(&e)),
                    )
                    .with_help(
                        "biến này chỉ tới tệp chứa giá trị; kiểm tra đường dẫn và quyền đọc",
                    ),
                );
                None
            }
        };
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            out.push(EnvValue { name, value });
        }
    }
    let file_var = format!("{SMTP_PASSWORD}{FILE_SUFFIX}");
    let password = match file_value(&file_var) {
        Ok(Some(p)) if !p.is_empty() => Some(p),
        Ok(_) => std::env::var(SMTP_PASSWORD).ok().filter(|p| !p.is_empty()),
        Err((path, e)) => {
            diags.push(
                Diagnostic::error(
                    &pseudo_path(&file_var),
                    Pos::START,
                    format!(
                        "không đọc được tệp mật khẩu SMTP {}: {}",
                        path.display(),
                        io_reason(&e)
                    ),
                )
                .with_help(format!(
                    "{file_var} chỉ tới tệp chứa mật khẩu (một dòng): kiểm tra đường dẫn và quyền đọc của dịch vụ, hoặc bỏ biến này nếu máy chủ thư không cần mật khẩu"
                )),
            );
            None
        }
    };
    if let Some(value) = password {
        out.push(EnvValue {
            name: SMTP_PASSWORD,
            value,
        });
    }
    // The feed secret: its file, else its variable; taken as written, bar the file's last
    // line break (an empty value counts as unset: the database's secret is used).
    let file_var = format!("{FEED_SECRET}{FILE_SUFFIX}");
    let secret = match file_value(&file_var) {
        Ok(Some(s)) if !s.is_empty() => Some(s),
        Ok(_) => std::env::var(FEED_SECRET).ok().filter(|s| !s.is_empty()),
        Err((path, e)) => {
            diags.push(
                Diagnostic::error(
                    &pseudo_path(&file_var),
                    Pos::START,
                    format!("không đọc được tệp khoá lịch riêng {}: {}", path.display(), io_reason(&e)),
                )
                .with_help(format!(
                    "{file_var} chỉ tới tệp chứa khoá (một dòng): kiểm tra đường dẫn và quyền đọc của dịch vụ, hoặc bỏ biến này để dùng khoá lưu trong tệp dữ liệu"
                )),
            );
            None
        }
    };
    if let Some(value) = secret {
        out.push(EnvValue {
            name: FEED_SECRET,
            value,
        });
    }
    out
}

/// The text of the file named by `file_var`, without its trailing line breaks (an editor's
/// last newline); `None` when the variable is unset or empty.
fn file_value(file_var: &str) -> Result<Option<String>, (PathBuf, std::io::Error)> {
    let Some(path) = std::env::var_os(file_var).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim_end_matches(['\r', '\n']).to_string())),
        Err(e) => Err((Path::new(&path).to_path_buf(), e)),
    }
}
