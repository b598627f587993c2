//! The config file (`config/ngayle.yaml`) and the environment variables over it: the unit and
//! the service [`Settings`], every value checked where it is written.
//!
//! Holds what each key means, its default and its limits. Does not read the environment (that
//! is [`crate::schedule`]'s loader) nor parse date or duration syntax ([`super::syntax`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveTime, Weekday};

use super::syntax::{address_problem, deliverable, parse_duration, seconds_or_minutes};
use super::{Field, MAX_CONNECTIONS_LIMIT, Resolver, SourceFile, entries, k, pick};
use crate::diag::allowed_help;
use crate::schedule::env::{self, EnvValue};
use crate::schedule::{DEFAULT_MAX_CONNECTIONS, Secret, Settings, TIMEZONE, Unit, raw};
use crate::yaml::{self, List, ParseError, Scalar, Seg};

/// Where the files are when the config does not name them, relative to the config's folder.
/// Written once: the loader reads them there, and `Settings` records them.
pub const DEFAULT_STAFF: &str = "staff.yaml";
pub const DEFAULT_CALENDARS: &str = "../calendars";
pub const DEFAULT_STATE: &str = "../var/ngayle.sqlite";
pub const DEFAULT_OUTBOX: &str = "../var/outbox";
/// The email templates' folder beside the config (not a key: the built-in ones are used when
/// it does not exist).
pub const TEMPLATES_DIR: &str = "templates";
/// The file of the calendars folder that holds the tasks (`tasks.yaml`) rather than events.
pub const TASKS_STEM: &str = "tasks";

/// The config file, parsed once: the loader finds the other files with it, then
/// [`super::resolve`] checks it.
#[derive(Debug)]
pub struct ParsedConfig(Result<raw::Config, ParseError>);

impl ParsedConfig {
    pub fn parse(f: &SourceFile) -> ParsedConfig {
        ParsedConfig(yaml::parse(&f.text))
    }

    /// The staff file and the calendars folder of the config at `config_path`: as written
    /// (trimmed), else the defaults, also when the config does not parse (so that the default
    /// files' mistakes are reported in the same run). A bad value is reported by `resolve`;
    /// the loader looks where it says.
    pub fn places(&self, config_path: &Path) -> (PathBuf, PathBuf) {
        let dir = config_path.parent().unwrap_or(Path::new(""));
        let c = self.0.as_ref().ok();
        let named = |v: Option<&Option<Scalar>>, default: &str| {
            let text = v
                .and_then(Option::as_ref)
                .and_then(|s| s.text())
                .map(str::trim)
                .filter(|s| !s.is_empty());
            place(dir, text, default)
        };
        (
            named(c.map(|c| &c.staff), DEFAULT_STAFF),
            named(c.map(|c| &c.calendars), DEFAULT_CALENDARS),
        )
    }
}

/// `named` (or `default`) in the folder `dir`, normalised.
fn place(dir: &Path, named: Option<&str>, default: &str) -> PathBuf {
    crate::schedule::normalize(&dir.join(named.unwrap_or(default)))
}

/// The shortest `NGAYLE_FEED_SECRET` taken: 256 bits written in hex would be 64; this refuses
/// a word or a short password, which could be guessed from a link.
const MIN_FEED_SECRET_BYTES: usize = 32;

/// Why links to `public_url` in emails would not open for their readers, given the address
/// the service listens on; `None` when nothing shows that they would not.
///
/// The rule never warns about a reverse proxy or a port forward: a host name other than
/// `localhost` (`https://lich.truong.edu.vn` in front of `127.0.0.1:8080`) and an IP address
/// other than the one listened on are taken as correct, whatever their ports, because a proxy
/// or a router may stand between them. It warns when the URL cannot be reached from another
/// machine — a loopback host (`localhost`, 127.0.0.0/8, `::1`) or the unspecified address
/// (`0.0.0.0`, `::`) — and when it names exactly the IP address listened on but another
/// port (explicit, or the scheme's 80/443), where nothing but this service can answer.
fn public_url_problem(public_url: &str, listen: SocketAddr) -> Option<String> {
    let url = url::Url::parse(public_url).ok()?;
    let ip = match url.host()? {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            if d == "localhost" || d.ends_with(".localhost") {
                return Some(format!(
                    "`{public_url}` là tên của chính máy chạy dịch vụ (localhost): máy của người nhận không tới được"
                ));
            }
            return None;
        }
        url::Host::Ipv4(a) => std::net::IpAddr::V4(a),
        url::Host::Ipv6(a) => std::net::IpAddr::V6(a),
    };
    if ip.is_loopback() {
        return Some(format!(
            "`{public_url}` là địa chỉ nội bộ của chính máy chạy dịch vụ (loopback): máy của người nhận không tới được"
        ));
    }
    if ip.is_unspecified() {
        return Some(format!(
            "`{public_url}` dùng địa chỉ {ip}, chỉ để nghe trên mọi giao diện mạng, không phải địa chỉ để mở"
        ));
    }
    let port = url.port_or_known_default()?;
    if ip == listen.ip() && port != listen.port() {
        return Some(format!(
            "`{public_url}` là địa chỉ của máy này ({ip}) nhưng ở cổng {port}, trong khi dịch vụ nghe ở cổng {}",
            listen.port()
        ));
    }
    None
}

impl Resolver {
    pub(super) fn config(
        &mut self,
        f: &SourceFile,
        parsed: ParsedConfig,
        env: &[EnvValue],
    ) -> Option<(Unit, Settings)> {
        // A variable set in the environment replaces the key; its mistakes are reported against
        // `$NAME` (a secret's value shown as `[ẩn]`).
        let over = |name: &str| -> Option<(SourceFile, Option<Scalar>)> {
            let v = env.iter().find(|e| e.name == name)?;
            Some((
                SourceFile {
                    path: env::pseudo_path(name),
                    text: if env::is_secret(name) {
                        "[ẩn]".to_string()
                    } else {
                        v.value.clone()
                    },
                },
                Some(Scalar::Text(v.value.clone())),
            ))
        };
        let c = self.parsed(f, parsed.0)?;
        if yaml::is_blank(&f.text) {
            self.error(
                f,
                &[],
                "tệp cấu hình trống",
                "cần ít nhất `unit: {name: …}`; xem config/ngayle.yaml mẫu",
            );
            return None;
        }
        self.unknown_keys(f, &[], &c.unknown, raw::Config::KEYS);
        let unit = match &c.unit {
            None => {
                self.error(
                    f,
                    &[],
                    "thiếu `unit:` (tên đơn vị)",
                    "thêm `unit: {name: Trường …, place: …}`",
                );
                None
            }
            Some(u) => {
                self.unknown_keys(f, &[k("unit")], &u.unknown, raw::Unit::KEYS);
                let name = self.text((f, &[k("unit"), k("name")], &u.name), "tên đơn vị");
                let place = self
                    .optional_text((f, &[k("unit"), k("place")], &u.place), "địa phương")
                    .unwrap_or_default();
                name.map(|name| Unit { name, place })
            }
        };
        if let Some(tz) = self.optional_text((f, &[k("timezone")], &c.timezone), "múi giờ")
            && tz != TIMEZONE
        {
            self.error(
                f,
                &[k("timezone")],
                format!("múi giờ `{tz}` không được hỗ trợ"),
                format!("ngayle tính lịch Việt Nam theo giờ `{TIMEZONE}` (UTC+7); bỏ dòng này hoặc ghi `timezone: {TIMEZONE}`"),
            );
        }
        let calendars_dir = self.path_setting(
            &None,
            (f, &[k("calendars")], &c.calendars),
            "thư mục lịch",
            DEFAULT_CALENDARS,
        );
        let staff_path = self.path_setting(
            &None,
            (f, &[k("staff")], &c.staff),
            "tệp nhân sự",
            DEFAULT_STAFF,
        );
        let state = self.path_setting(
            &over(env::STATE),
            (f, &[k("state")], &c.state),
            "tệp dữ liệu",
            DEFAULT_STATE,
        );
        let grace_path = [k("shutdown_grace")];
        let shutdown_grace = self.seconds_setting(
            pick(
                &over(env::SHUTDOWN_GRACE),
                f,
                &grace_path,
                &c.shutdown_grace,
            ),
            ("thời gian chờ khi dừng", "thời gian chờ"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(600), "10m"),
        );

        let default_http = raw::Http::default();
        let http = c.http.as_ref().unwrap_or(&default_http);
        self.unknown_keys(f, &[k("http")], &http.unknown, raw::Http::KEYS);
        let listen_path = [k("http"), k("listen")];
        let listen = self.setting(
            pick(&over(env::LISTEN), f, &listen_path, &http.listen),
            "địa chỉ nghe",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            |s| {
                s.parse::<SocketAddr>().map_err(|_| {
                    (
                        format!("`{s}` không phải địa chỉ IP:cổng"),
                        "ví dụ `127.0.0.1:8080`, hoặc `0.0.0.0:8080` để nghe trên mọi giao diện mạng".into(),
                    )
                })
            },
        );
        let url_path = [k("http"), k("public_url")];
        let env_url = over(env::PUBLIC_URL);
        let (uf, up, uv) = pick(&env_url, f, &url_path, &http.public_url);
        let public_url = match self.optional_text((uf, up, uv), "địa chỉ công khai") {
            None => listen.map(|a| format!("http://{a}")),
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                Some(u.trim_end_matches('/').to_string())
            }
            Some(u) => {
                self.error(
                    uf,
                    up,
                    format!("`{u}` không phải địa chỉ web"),
                    "ghi đầy đủ, ví dụ `https://lich.truong.edu.vn`",
                );
                None
            }
        };
        let token_path = [k("http"), k("feed_token")];
        let feed_token = self.secret(
            pick(&over(env::FEED_TOKEN), f, &token_path, &http.feed_token),
            "mã bảo vệ lịch",
            |t| {
                if t.chars().count() < 16 {
                    Err((
                        "mã bảo vệ lịch quá ngắn (cần ít nhất 16 ký tự)".into(),
                        "dùng một chuỗi ngẫu nhiên dài, ví dụ kết quả của `openssl rand -hex 16`"
                            .into(),
                    ))
                } else {
                    Ok(())
                }
            },
        );
        let conns_path = [k("http"), k("max_connections")];
        let max_connections = self.setting(
            pick(&over(env::MAX_CONNECTIONS), f, &conns_path, &http.max_connections),
            "số kết nối tối đa",
            DEFAULT_MAX_CONNECTIONS,
            |t| {
                t.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_CONNECTIONS_LIMIT).contains(n))
                    .ok_or_else(|| {
                        (
                            format!("số kết nối tối đa `{t}` không hợp lệ"),
                            format!(
                                "viết một số nguyên từ 1 đến {MAX_CONNECTIONS_LIMIT}; mặc định {DEFAULT_MAX_CONNECTIONS}"
                            ),
                        )
                    })
            },
        );

        let default_mail = raw::Mail::default();
        let mail = c.mail.as_ref().unwrap_or(&default_mail);
        self.unknown_keys(f, &[k("mail")], &mail.unknown, raw::Mail::KEYS);
        let mail_from = match self
            .optional_text((f, &[k("mail"), k("from")], &mail.from), "địa chỉ gửi")
        {
            None => {
                if c.mail.is_some() {
                    self.error(
                        f,
                        &[k("mail"), k("from")],
                        "thiếu `from` (địa chỉ gửi thư nhắc việc)",
                        "ví dụ `from: \"Trường MN Hoa Phượng <nhacviec@truong.edu.vn>\"`",
                    );
                    None
                } else {
                    Some("ngayle <ngayle@localhost>".to_string())
                }
            }
            Some(m) => self.mailbox(f, &[k("mail"), k("from")], m),
        };
        let reply_to = self
            .optional_text(
                (f, &[k("mail"), k("reply_to")], &mail.reply_to),
                "địa chỉ trả lời",
            )
            .and_then(|m| self.mailbox(f, &[k("mail"), k("reply_to")], m));
        let smtp_path = [k("mail"), k("smtp")];
        let smtp = self.secret(
            pick(&over(env::SMTP_URL), f, &smtp_path, &mail.smtp),
            "máy chủ SMTP",
            |u| {
                if ["smtp://", "smtps://"].iter().any(|p| u.starts_with(p)) {
                    Ok(())
                } else {
                    Err((
                        "địa chỉ SMTP phải bắt đầu bằng `smtp://` (STARTTLS) hoặc `smtps://` (TLS)".into(),
                        "ví dụ `smtps://nhacviec@truong.edu.vn@smtp.gmail.com`; để trống (`~`) để ghi thư vào thư mục outbox".into(),
                    ))
                }
            },
        );
        // Only where the links go out: mail to people. (Outbox mode is a trial run.)
        if smtp.is_some()
            && let (Some(url), Some(addr)) = (&public_url, listen)
            && let Some(problem) = public_url_problem(url, addr)
        {
            self.warning(
                uf,
                up,
                format!("liên kết lịch trong thư nhắc việc sẽ không mở được: {problem}"),
                format!(
                    "đặt `http.public_url` (hoặc biến {}) thành địa chỉ người nhận mở được từ điện thoại, máy tính của họ, ví dụ `https://lich.truong.edu.vn` (qua máy chủ web chuyển tiếp) hoặc `http://192.168.1.10:8080` (trong mạng nội bộ)",
                    env::PUBLIC_URL
                ),
            );
        }
        let feed_secret = env.iter().find(|e| e.name == env::FEED_SECRET).and_then(|e| {
            if e.value.len() < MIN_FEED_SECRET_BYTES {
                let f = SourceFile {
                    path: env::pseudo_path(env::FEED_SECRET),
                    text: "[ẩn]".to_string(),
                };
                self.error(
                    &f,
                    &[],
                    format!("khoá lịch riêng quá ngắn (cần ít nhất {MIN_FEED_SECRET_BYTES} ký tự)"),
                    "dùng một chuỗi ngẫu nhiên dài, ví dụ kết quả của `openssl rand -hex 32`; mọi máy chạy ngayle dùng chung một khoá",
                );
                None
            } else {
                Some(Secret::new(e.value.clone()))
            }
        });
        let outbox = self.path_setting(
            &over(env::OUTBOX),
            (f, &[k("mail"), k("outbox")], &mail.outbox),
            "thư mục outbox",
            DEFAULT_OUTBOX,
        );

        let default_rem = raw::Reminders::default();
        let rem = c.reminders.as_ref().unwrap_or(&default_rem);
        self.unknown_keys(f, &[k("reminders")], &rem.unknown, raw::Reminders::KEYS);
        let send_at = match self.optional_text(
            (f, &[k("reminders"), k("send_at")], &rem.send_at),
            "giờ gửi",
        ) {
            None => NaiveTime::from_hms_opt(7, 30, 0),
            Some(t) => self.time_of_day(f, &[k("reminders"), k("send_at")], &t),
        };
        let workdays = self.workdays(f, rem.workdays.as_ref());
        let catch_up_path = [k("reminders"), k("catch_up")];
        let catch_up = self.setting(
            (f, &catch_up_path, &rem.catch_up),
            "thời hạn gửi bù",
            chrono::Duration::days(3),
            |t| {
                parse_duration(t, &['m', 'h', 'd', 'w']).map_err(|why| {
                    (
                        format!("thời hạn `{t}` không hợp lệ: {why}"),
                        "viết một số nguyên và đơn vị: `30m` hoặc `30 phút`, `12h` hoặc `12 giờ`, `3d` hoặc `3 ngày`, `1w` hoặc `1 tuần`".into(),
                    )
                })
            },
        );

        let ack_path = [k("reminders"), k("ack_valid_for")];
        let ack_valid_for = self.setting(
            (f, &ack_path, &rem.ack_valid_for),
            "thời hạn của liên kết \"Đã xong\"",
            chrono::Duration::days(30),
            |t| {
                parse_duration(t, &['d', 'w']).map_err(|why| {
                    (
                        format!("thời hạn `{t}` không hợp lệ: {why}"),
                        "viết số ngày hoặc tuần: `30d` hoặc `30 ngày`, `2w` hoặc `2 tuần`".into(),
                    )
                })
            },
        );
        let escalate_path = [k("reminders"), k("escalate_after")];
        let escalate_after = self.setting(
            (f, &escalate_path, &rem.escalate_after),
            "thời gian chờ trước khi báo việc chưa xong",
            chrono::Duration::hours(2),
            |t| {
                parse_duration(t, &['m', 'h', 'd', 'w']).map_err(|why| {
                    (
                        format!("thời hạn `{t}` không hợp lệ: {why}"),
                        "viết một số nguyên và đơn vị: `30m` hoặc `30 phút`, `2h` hoặc `2 giờ`, `1d` hoặc `1 ngày`".into(),
                    )
                })
            },
        );
        let lease_path = [k("reminders"), k("lease")];
        let lease = self.seconds_setting(
            (f, &lease_path, &rem.lease),
            ("thời hạn giữ lời nhắc", "thời hạn giữ"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(3600), "60m"),
        );
        let reload_warn_shrink = self.reload(f, c.reload.as_ref());

        Some((
            unit?,
            Settings {
                config_path: f.path.clone(),
                calendars_dir,
                staff_path,
                listen: listen?,
                public_url: public_url?,
                feed_token,
                max_connections: max_connections?,
                mail_from: mail_from?,
                reply_to,
                smtp,
                smtp_password: env
                    .iter()
                    .find(|e| e.name == env::SMTP_PASSWORD)
                    .map(|e| Secret::new(e.value.clone())),
                feed_secret,
                outbox,
                state,
                send_at: send_at?,
                workdays: workdays?,
                catch_up: catch_up?,
                ack_valid_for: ack_valid_for?,
                escalate_after: escalate_after?,
                lease: lease?,
                shutdown_grace: shutdown_grace?,
                reload_warn_shrink: reload_warn_shrink?,
            },
        ))
    }

    /// An optional secret (the feed token, the SMTP URL): `None` when unset or refused by
    /// `valid` (see [`Resolver::checked`]).
    fn secret(
        &mut self,
        (f, path, v): Field,
        what: &str,
        valid: impl FnOnce(&str) -> Result<(), (String, String)>,
    ) -> Option<Secret> {
        let t = self.optional_text((f, path, v), what)?;
        self.checked(f, path, &t, valid)?;
        Some(Secret::new(t))
    }

    /// A duration in seconds or minutes from `1s` to `max`, `default` when unset (each with
    /// how the admin writes it, for the help); `what` is (what it is, how a message names it).
    fn seconds_setting(
        &mut self,
        field: Field,
        (what, name): (&str, &str),
        default: (Duration, &str),
        max: (Duration, &str),
    ) -> Option<Duration> {
        self.setting(field, what, default.0, |t| {
            seconds_or_minutes(t, Duration::from_secs(1), max.0).ok_or_else(|| {
                (
                    format!("{name} `{t}` không hợp lệ"),
                    format!(
                        "viết số giây hoặc phút, từ `1s` đến `{}`; mặc định `{}`",
                        max.1, default.1
                    ),
                )
            })
        })
    }

    /// A file or folder: from the environment (`from_env`) relative to the working directory,
    /// like any path there; else as written in the config, or `default`, relative to the
    /// config's folder.
    fn path_setting(
        &mut self,
        from_env: &Option<(SourceFile, Option<Scalar>)>,
        (f, path, v): Field,
        what: &str,
        default: &str,
    ) -> PathBuf {
        match from_env {
            Some((ef, v)) => crate::schedule::normalize(Path::new(
                &self.optional_text((ef, &[], v), what).unwrap_or_default(),
            )),
            None => {
                let dir = f.path.parent().unwrap_or(Path::new(""));
                place(
                    dir,
                    self.optional_text((f, path, v), what).as_deref(),
                    default,
                )
            }
        }
    }

    /// `reload.warn_shrink`: a share like `20%` (default), from `0%` (warn at any loss) to
    /// `100%` (never).
    fn reload(&mut self, f: &SourceFile, r: Option<&raw::Reload>) -> Option<u8> {
        let Some(r) = r else {
            return Some(20);
        };
        self.unknown_keys(f, &[k("reload")], &r.unknown, raw::Reload::KEYS);
        let path = [k("reload"), k("warn_shrink")];
        let Some(t) = self.optional_text((f, &path, &r.warn_shrink), "ngưỡng cảnh báo")
        else {
            return Some(20);
        };
        match t.strip_suffix('%').map(|n| n.trim().parse::<u8>()) {
            Some(Ok(n @ 0..=100)) => Some(n),
            _ => {
                self.error(
                    f,
                    &path,
                    format!("`{t}` không phải tỉ lệ phần trăm"),
                    "viết một số nguyên từ 0 đến 100 và dấu `%`, ví dụ `warn_shrink: 20%` (mặc định); `100%` để không bao giờ cảnh báo",
                );
                None
            }
        }
    }

    /// A sender's mailbox (`Tên <a@b>` or `a@b`), checked with the parser the mailer uses.
    fn mailbox(&mut self, f: &SourceFile, path: &[Seg], m: String) -> Option<String> {
        let addr = match (m.rfind('<'), m.ends_with('>')) {
            (Some(i), true) => &m[i + 1..m.len() - 1],
            _ => m.as_str(),
        };
        // The address first: its mistake is the one worth naming.
        let problem = match (deliverable(addr), m.parse::<lettre::message::Mailbox>()) {
            (Err(why), _) => Some(why),
            (Ok(()), Err(e)) => Some(address_problem(e)),
            (Ok(()), Ok(_)) => None,
        };
        match problem {
            None => Some(m),
            Some(why) => {
                self.error(
                    f,
                    path,
                    format!("`{m}` không phải địa chỉ email"),
                    format!("{why}; ví dụ `nhacviec@truong.edu.vn` hoặc `\"Tên <nhacviec@truong.edu.vn>\"`"),
                );
                None
            }
        }
    }

    pub(super) fn time_of_day(
        &mut self,
        f: &SourceFile,
        path: &[Seg],
        t: &str,
    ) -> Option<NaiveTime> {
        match NaiveTime::parse_from_str(t, "%H:%M") {
            Ok(time) => Some(time),
            Err(_) => {
                self.error(
                    f,
                    path,
                    format!("giờ `{t}` không hợp lệ"),
                    "viết giờ:phút theo 24 giờ trong ngoặc kép, ví dụ `\"07:30\"` hoặc `\"14:00\"`",
                );
                None
            }
        }
    }

    fn workdays(&mut self, f: &SourceFile, list: Option<&List>) -> Option<Vec<Weekday>> {
        const DAYS: &[(&str, Weekday)] = &[
            ("mon", Weekday::Mon),
            ("tue", Weekday::Tue),
            ("wed", Weekday::Wed),
            ("thu", Weekday::Thu),
            ("fri", Weekday::Fri),
            ("sat", Weekday::Sat),
            ("sun", Weekday::Sun),
        ];
        let names: Vec<&str> = DAYS.iter().map(|d| d.0).collect();
        let Some(list) = list else {
            return Some(DAYS[..5].iter().map(|d| d.1).collect());
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, text) in entries(Some(list)) {
            let path = [k("reminders"), k("workdays"), Seg::Index(i)];
            let text = text.to_lowercase();
            match DAYS.iter().find(|d| d.0 == text) {
                Some(&(_, d)) if !out.contains(&d) => out.push(d),
                Some(_) => self.warning(f, &path, format!("ngày `{text}` lặp lại"), ""),
                None => {
                    ok = false;
                    self.error(
                        f,
                        &path,
                        format!("`{text}` không phải tên ngày trong tuần"),
                        allowed_help(&text, &names),
                    );
                }
            }
        }
        if ok && out.is_empty() {
            self.error(
                f,
                &[k("reminders"), k("workdays")],
                "danh sách ngày làm việc trống: thư nhắc sẽ không bao giờ được gửi",
                "ví dụ `workdays: [mon, tue, wed, thu, fri]`",
            );
            return None;
        }
        ok.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::NaiveDate;

    use super::super::{SourceFile, Sources, resolve};
    use crate::schedule::env::{self, EnvValue};

    /// The shipped files with `env` as the environment.
    fn shipped(env: Vec<EnvValue>) -> Sources {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |rel: &str| SourceFile {
            path: dir.join(rel),
            text: std::fs::read_to_string(dir.join(rel)).unwrap_or_default(),
        };
        Sources {
            config: read("config/ngayle.yaml"),
            staff: Some(read("config/staff.yaml")),
            tasks: Some(read("calendars/tasks.yaml")),
            days_off: None,
            layers: vec![read("calendars/national.yaml")],
            templates: Vec::new(),
            env,
        }
    }

    #[test]
    fn the_smtp_password_is_a_secret_of_the_settings_taken_as_written() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default();
        let (schedule, diags) = resolve(&shipped(Vec::new()), today);
        assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
        assert_eq!(schedule.map(|s| s.settings.smtp_password), Some(None));

        let password = EnvValue {
            name: env::SMTP_PASSWORD,
            value: " mật khẩu ".to_string(),
        };
        let (schedule, _) = resolve(&shipped(vec![password]), today);
        let Some(password) = schedule.and_then(|s| s.settings.smtp_password) else {
            panic!("no password in the settings");
        };
        assert_eq!(password.expose(), " mật khẩu ");
        assert_eq!(format!("{password:?}"), "[redacted]");
    }

    #[test]
    fn public_url_warnings_spare_proxies_and_port_forwards() {
        use super::public_url_problem;
        let listen = |a: &str| a.parse().unwrap_or_else(|e| panic!("{a}: {e}"));
        let table = [
            ("http://127.0.0.1:8080", "127.0.0.1:8080", true),
            ("http://localhost:8080", "127.0.0.1:8080", true),
            ("http://[::1]:8080", "[::1]:8080", true),
            ("http://127.0.1.1", "0.0.0.0:8080", true),
            ("http://0.0.0.0:8080", "0.0.0.0:8080", true),
            ("http://192.168.1.10:8081", "192.168.1.10:8080", true),
            ("http://192.168.1.10", "192.168.1.10:8080", true),
            // A reverse proxy in front of a loopback listener, on its own ports.
            ("https://lich.truong.edu.vn", "127.0.0.1:8080", false),
            ("http://lich.truong.edu.vn:8000", "127.0.0.1:8080", false),
            // The listener itself, reached directly.
            ("http://192.168.1.10:8080", "192.168.1.10:8080", false),
            ("http://192.168.1.10:8080", "0.0.0.0:8080", false),
            // Another address (a router forwarding 80 to 8080, a proxy on another machine).
            ("http://203.0.113.5", "0.0.0.0:8080", false),
            ("http://203.0.113.5:9000", "192.168.1.10:8080", false),
            ("https://192.168.1.10", "127.0.0.1:8080", false),
        ];
        for (url, addr, warns) in table {
            assert_eq!(
                public_url_problem(url, listen(addr)).is_some(),
                warns,
                "{url} listening on {addr}"
            );
        }
    }

    #[test]
    fn the_feed_secret_comes_from_the_environment_and_a_short_one_is_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default();
        let (schedule, _) = resolve(&shipped(Vec::new()), today);
        assert_eq!(schedule.map(|s| s.settings.feed_secret), Some(None));
        let secret = |value: &str| EnvValue {
            name: env::FEED_SECRET,
            value: value.to_string(),
        };
        let long = "k".repeat(32);
        let (schedule, _) = resolve(&shipped(vec![secret(&long)]), today);
        let got = schedule.and_then(|s| s.settings.feed_secret);
        assert_eq!(got.as_ref().map(|s| s.expose()), Some(long.as_str()));
        let (schedule, diags) = resolve(&shipped(vec![secret("short")]), today);
        assert!(schedule.is_none());
        let shown: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert!(
            shown
                .iter()
                .any(|d| d.contains("$NGAYLE_FEED_SECRET") && !d.contains("short")),
            "{shown:?}"
        );
    }
}
