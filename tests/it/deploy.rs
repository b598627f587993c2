//! The systemd unit shipped in `deploy/`: `systemd-analyze verify` accepts it as it is
//! installed, and it keeps the sandboxing and the signals the daemon relies on. And the
//! Dockerfile's dependency layer can load Cargo.toml: every target it declares is there
//! (building and running the image is scripts/container.sh, in CI).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::repo;

const UNIT: &str = "deploy/ngayle.service";
/// The path the unit runs, as `install -m 0755 … /usr/bin/ngayle` puts it (deploy/README.md).
const INSTALLED_BIN: &str = "/usr/bin/ngayle";

fn unit_text() -> String {
    let path = repo().join(UNIT);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One `Key=value` line of a unit file, with the section it is in.
#[derive(Debug)]
struct Directive {
    line: usize,
    section: String,
    key: String,
    value: String,
}

/// The directives of a unit file, in order. Comments (`#`, `;`), blank lines and
/// backslash-continued lines as systemd reads them; no specifier or quote processing.
fn directives(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let (start, joined) = match pending.take() {
            Some((start, mut acc)) => {
                if line.starts_with('#') || line.starts_with(';') {
                    pending = Some((start, acc));
                    continue;
                }
                acc.push(' ');
                acc.push_str(line);
                (start, acc)
            }
            None => {
                if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                    continue;
                }
                (i + 1, line.to_string())
            }
        };
        if let Some(cont) = joined.strip_suffix('\\') {
            pending = Some((start, cont.trim_end().to_string()));
            continue;
        }
        if let Some(name) = joined.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let Some((key, value)) = joined.split_once('=') else {
            panic!("{UNIT}:{start}: not `Key=value`: {joined:?}");
        };
        out.push(Directive {
            line: start,
            section: section.clone(),
            key: key.trim().to_string(),
            value: value.trim().to_string(),
        });
    }
    assert!(pending.is_none(), "{UNIT}: ends inside a continued line");
    out
}

/// Every value of `section`/`key`, in file order.
fn values<'a>(all: &'a [Directive], section: &str, key: &str) -> Vec<&'a str> {
    all.iter()
        .filter(|d| d.section == section && d.key == key)
        .map(|d| d.value.as_str())
        .collect()
}

/// The value systemd ends up with for a single-valued setting: the last assignment.
fn last<'a>(all: &'a [Directive], section: &str, key: &str) -> &'a str {
    values(all, section, key)
        .last()
        .copied()
        .unwrap_or_else(|| panic!("{UNIT}: no {key}= in [{section}]"))
}

/// Quotes a path for an `ExecStart=` command line: inside double quotes `\` and `"` are
/// C-escaped, and `%` (specifiers) and `$` (variables) are doubled.
fn exec_quote(path: &str) -> String {
    let mut q = String::from("\"");
    for c in path.chars() {
        match c {
            '\\' => q.push_str("\\\\"),
            '"' => q.push_str("\\\""),
            '%' => q.push_str("%%"),
            '$' => q.push_str("$$"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// The unit with its `ExecStart=` program replaced by `bin` (the only change), because
/// `systemd-analyze verify` fails when the program it names does not exist.
fn with_program(text: &str, bin: &Path) -> String {
    let quoted = exec_quote(&bin.to_string_lossy());
    let mut replaced = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.strip_prefix("ExecStart=") {
            Some(cmd) => {
                let args = cmd.strip_prefix(INSTALLED_BIN).unwrap_or_else(|| {
                    panic!("{UNIT}: ExecStart= does not run {INSTALLED_BIN}: {line:?}")
                });
                assert!(
                    args.is_empty() || args.starts_with(' '),
                    "{UNIT}: ExecStart= runs something other than {INSTALLED_BIN}: {line:?}"
                );
                replaced += 1;
                format!("ExecStart={quoted}{args}")
            }
            None => line.to_string(),
        })
        .collect();
    assert_eq!(replaced, 1, "{UNIT}: expected exactly one ExecStart= line");
    lines.join("\n") + "\n"
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let required = std::env::var("NGAYLE_REQUIRE_SYSTEMD").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // The file name is the unit name: keep it.
    let unit = dir.path().join("ngayle.service");
    let text = with_program(&unit_text(), Path::new(env!("CARGO_BIN_EXE_ngayle")));
    std::fs::write(&unit, text).unwrap_or_else(|e| panic!("write {}: {e}", unit.display()));

    // --man=no: verify would otherwise look up `man:` links of Documentation= (none today,
    // but a man page that is not installed must not fail the build). --generators=no: do
    // not run the host's unit generators, the result must not depend on the machine.
    // --recursive-errors=no (systemd >= 250): the exit status is about this unit only, not
    // about the host's own units it is ordered after (network-online.target and the like).
    let output = Command::new("systemd-analyze")
        .args([
            "verify",
            "--man=no",
            "--generators=no",
            "--recursive-errors=no",
        ])
        .arg(&unit)
        .current_dir(dir.path())
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("LC_ALL", "C")
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                !required,
                "systemd-analyze not installed, and NGAYLE_REQUIRE_SYSTEMD=1 \
                 (apt-get install systemd)"
            );
            eprintln!(
                "skipped: systemd-analyze not installed (set NGAYLE_REQUIRE_SYSTEMD=1 to fail)"
            );
            return;
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = format!(
        "systemd-analyze verify {}\nstatus: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        unit.display(),
        output.status
    );
    assert!(output.status.success(), "verify failed\n{shown}");
    // Warnings about the unit name the file (`…/ngayle.service:12: Unknown key …`) or the
    // unit (`ngayle.service: Command … is not executable`); verify still exits 0 after
    // some of them (an ignored setting), so they are checked line by line. No environment
    // warning has been seen with systemd 252, in a VM or as non-root: none is filtered.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ngayle.service"))
        .collect();
    assert!(
        about_unit.is_empty(),
        "verify warned about the unit\n{shown}"
    );
    // Anything else concerns the host's other units: report it, but it is not ours.
    if !stderr.trim().is_empty() {
        eprintln!("systemd-analyze verify, about other units of this host:\n{stderr}");
    }
}

#[test]
fn unit_is_sandboxed_and_reloads_on_sighup() {
    let text = unit_text();
    let all = directives(&text);

    for d in &all {
        assert!(
            ["Unit", "Service", "Install"].contains(&d.section.as_str()),
            "{UNIT}:{}: {}= outside [Unit], [Service], [Install]",
            d.line,
            d.key
        );
    }

    // Sandboxing: each of these must be set (last assignment wins) exactly to this value.
    let hardening = [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictRealtime", "yes"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0077"),
        ("DynamicUser", "yes"),
        ("ConfigurationDirectory", "ngayle"),
        ("Restart", "on-failure"),
        ("RestartSec", "5"),
        ("KillSignal", "SIGTERM"),
    ];
    for (key, want) in hardening {
        assert_eq!(last(&all, "Service", key), want, "{UNIT}: [Service] {key}=");
    }

    // List settings: check what systemd accumulates.
    let families: BTreeSet<&str> = last(&all, "Service", "RestrictAddressFamilies")
        .split_whitespace()
        .collect();
    assert_eq!(
        families,
        BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"]),
        "{UNIT}: RestrictAddressFamilies="
    );
    let filters = values(&all, "Service", "SystemCallFilter");
    assert_eq!(
        filters.first().copied(),
        Some("@system-service"),
        "{UNIT}: the first SystemCallFilter= must be the @system-service allow list"
    );
    assert!(
        filters.iter().skip(1).all(|f| f.starts_with('~')),
        "{UNIT}: later SystemCallFilter= lines may only deny: {filters:?}"
    );
    // An empty CapabilityBoundingSet= drops every capability; a later line would add some.
    assert_eq!(
        values(&all, "Service", "CapabilityBoundingSet"),
        vec![""],
        "{UNIT}: CapabilityBoundingSet= must be set once, empty"
    );
    let state = last(&all, "Service", "StateDirectory");
    assert_eq!(
        state.split_whitespace().next(),
        Some("ngayle"),
        "{UNIT}: StateDirectory="
    );

    // What runs, and how it is told to reload and to stop.
    assert_eq!(
        last(&all, "Service", "ExecStart"),
        format!("{INSTALLED_BIN} serve"),
        "{UNIT}: ExecStart="
    );
    let reload = last(&all, "Service", "ExecReload");
    let words: Vec<&str> = reload.split_whitespace().collect();
    assert!(
        words.first().is_some_and(|w| w.ends_with("/kill"))
            && words.contains(&"-HUP")
            && words.contains(&"$MAINPID"),
        "{UNIT}: ExecReload= must send SIGHUP to the main process: {reload:?}"
    );

    let env: Vec<&str> = values(&all, "Service", "Environment")
        .into_iter()
        .flat_map(str::split_whitespace)
        .collect();
    for want in [
        "NGAYLE_CONFIG=/etc/ngayle/config/ngayle.yaml",
        "NGAYLE_STATE=/var/lib/ngayle/ngayle.sqlite",
        "NGAYLE_OUTBOX=/var/lib/ngayle/outbox",
    ] {
        assert!(env.contains(&want), "{UNIT}: no Environment={want}");
    }
    // systemd must wait longer than the daemon's own grace period before SIGKILL.
    let secs = |v: &str| -> u64 {
        v.trim_end_matches('s')
            .parse()
            .unwrap_or_else(|e| panic!("{UNIT}: {v:?} is not a number of seconds: {e}"))
    };
    let grace = env
        .iter()
        .find_map(|kv| kv.strip_prefix("NGAYLE_SHUTDOWN_GRACE="))
        .map_or(10, secs);
    let stop = secs(last(&all, "Service", "TimeoutStopSec"));
    assert!(
        stop > grace,
        "{UNIT}: TimeoutStopSec={stop} must exceed the {grace} s shutdown grace"
    );

    // The default connection cap, with room for the rest, fits under the descriptor limit.
    let nofile = limit_nofile();
    let cap = ngayle::schedule::DEFAULT_MAX_CONNECTIONS as u64;
    assert!(
        nofile >= cap + 64,
        "{UNIT}: LimitNOFILE={nofile} leaves too little above http.max_connections ({cap})"
    );

    let after: Vec<&str> = values(&all, "Unit", "After")
        .into_iter()
        .flat_map(str::split_whitespace)
        .collect();
    let wants: Vec<&str> = values(&all, "Unit", "Wants")
        .into_iter()
        .flat_map(str::split_whitespace)
        .collect();
    assert!(after.contains(&"network-online.target"), "{UNIT}: After=");
    assert!(wants.contains(&"network-online.target"), "{UNIT}: Wants=");
    assert_eq!(
        last(&all, "Install", "WantedBy"),
        "multi-user.target",
        "{UNIT}: WantedBy="
    );
}

#[test]
fn exec_quote_escapes_what_systemd_expands() {
    assert_eq!(exec_quote("/a b/%n$X\\\""), r#""/a b/%%n$$X\\\"""#);
}

/// The unit's `LimitNOFILE=` soft limit (the first of `soft:hard`), or systemd's default soft
/// limit of 1,024 when the unit does not set one.
pub(crate) fn limit_nofile() -> u64 {
    let all = directives(&unit_text());
    values(&all, "Service", "LimitNOFILE")
        .last()
        .map_or(1024, |v| {
            let soft = v.split(':').next().unwrap_or_default();
            soft.parse()
                .unwrap_or_else(|e| panic!("{UNIT}: LimitNOFILE={v}: {e}"))
        })
}

const DOCKERFILE: &str = "deploy/Dockerfile";

/// The source file of every target Cargo.toml declares (`[lib]`, `[[bin]]`, `[[bench]]`,
/// `[[test]]`, `[[example]]`): its `path`, or cargo's default for its `name`, whichever of
/// `DIR/NAME.rs` and `DIR/NAME/main.rs` the repository has. Targets cargo only discovers are
/// left out: a build without their files simply does not discover them.
fn declared_targets(manifest: &str) -> Vec<String> {
    #[derive(Default)]
    struct Target {
        kind: &'static str,
        name: Option<String>,
        path: Option<String>,
    }
    fn string_value(line: &str, key: &str) -> Option<String> {
        let (k, v) = line.split_once('=')?;
        if k.trim() != key {
            return None;
        }
        let v = v.trim();
        let v = v.strip_prefix('"')?;
        Some(v[..v.find('"')?].to_string())
    }
    let mut targets: Vec<Target> = Vec::new();
    let mut current: Option<Target> = None;
    for raw in manifest.lines() {
        let line = raw.trim();
        if line.starts_with('[') {
            targets.extend(current.take());
            let kind = match line.split('#').next().unwrap_or_default().trim() {
                "[lib]" => "lib",
                "[[bin]]" => "bin",
                "[[bench]]" => "bench",
                "[[test]]" => "test",
                "[[example]]" => "example",
                _ => continue,
            };
            current = Some(Target {
                kind,
                ..Target::default()
            });
        } else if let Some(t) = current.as_mut() {
            t.name = t.name.take().or_else(|| string_value(line, "name"));
            t.path = t.path.take().or_else(|| string_value(line, "path"));
        }
    }
    targets.extend(current);
    targets
        .into_iter()
        .map(|t| {
            if let Some(path) = t.path {
                return path;
            }
            let name = t
                .name
                .unwrap_or_else(|| panic!("Cargo.toml: a {} target without name", t.kind));
            let dir = match t.kind {
                "lib" => return "src/lib.rs".to_string(),
                "bin" => "src/bin",
                "bench" => "benches",
                "test" => "tests",
                _ => "examples",
            };
            let file = format!("{dir}/{name}.rs");
            if repo().join(&file).is_file() {
                file
            } else {
                format!("{dir}/{name}/main.rs")
            }
        })
        .collect()
}

/// The Dockerfile's instructions, continuation lines joined, comments left out.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut acc = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('#') || (acc.is_empty() && line.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(cont) => {
                acc.push_str(cont);
                acc.push(' ');
            }
            None => {
                acc.push_str(line);
                out.push(std::mem::take(&mut acc));
            }
        }
    }
    out
}

/// The targets of `targets` that the first stage of `dockerfile` lacks when its first
/// `cargo build` runs: not copied from the build context to the same place, and not made as
/// a placeholder (`> PATH` or `touch PATH`) in that RUN.
fn missing_in_dependency_layer(dockerfile: &str, targets: &[String]) -> Vec<String> {
    let mut copied: Vec<(String, String)> = Vec::new();
    let mut placeholders: Vec<String> = Vec::new();
    let mut built = false;
    for ins in instructions(dockerfile) {
        let mut words = ins.split_whitespace();
        let op = words.next().unwrap_or_default().to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        match op.as_str() {
            "COPY" | "ADD" if !args.iter().any(|a| a.starts_with("--from")) => {
                let args: Vec<&str> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
                if let Some((dst, srcs)) = args.split_last() {
                    for src in srcs {
                        copied.push((src.to_string(), dst.to_string()));
                    }
                }
            }
            "RUN" if ins.contains("cargo build") => {
                for pair in args.windows(2) {
                    if pair[0] == ">" || pair[0] == "touch" {
                        placeholders.push(pair[1].trim_start_matches("./").to_string());
                    }
                }
                built = true;
                break;
            }
            _ => {}
        }
    }
    assert!(built, "{DOCKERFILE}: no RUN with `cargo build`");
    // Where a file of the build context lands (relative to WORKDIR) through one COPY.
    let lands = |path: &str, src: &str, dst: &str| -> Option<String> {
        let src = src.trim_start_matches("./");
        let dst = dst.trim_start_matches("./");
        let rest = match src.strip_suffix('/') {
            Some(dir) => path.strip_prefix(dir)?.strip_prefix('/')?.to_string(),
            None if path == src => path.rsplit('/').next().unwrap_or(path).to_string(),
            None => return None,
        };
        Some(match dst {
            "" | "." => rest,
            d if d.ends_with('/') => format!("{d}{rest}"),
            d if src.ends_with('/') => format!("{d}/{rest}"),
            d => d.to_string(),
        })
    };
    targets
        .iter()
        .filter(|t| {
            !placeholders.contains(t)
                && !copied
                    .iter()
                    .any(|(src, dst)| lands(t, src, dst).as_deref() == Some(t.as_str()))
        })
        .cloned()
        .collect()
}

/// The Dockerfile builds the dependencies with only Cargo.toml and Cargo.lock of the real
/// sources, and cargo refuses a manifest whose declared targets have no file: each target
/// needs a copy or a placeholder there, or `docker build` fails at its first step (as it did
/// when Cargo.toml had gained benches the Dockerfile did not know).
#[test]
fn dockerfile_dependency_layer_has_every_cargo_target() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("read Cargo.toml: {e}"));
    let targets = declared_targets(&manifest);
    for bench in ["benches/lunar.rs", "benches/feed.rs"] {
        assert!(
            targets.iter().any(|t| t == bench),
            "Cargo.toml: {bench} not among {targets:?}"
        );
    }
    for t in &targets {
        assert!(
            repo().join(t).is_file(),
            "Cargo.toml declares {t}, which does not exist"
        );
    }
    let path = repo().join(DOCKERFILE);
    let dockerfile =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        missing_in_dependency_layer(&dockerfile, &targets),
        Vec::<String>::new(),
        "{DOCKERFILE}: targets of Cargo.toml missing when the dependencies are built"
    );
}

/// The check above catches the Dockerfile that made a placeholder for one bench only.
#[test]
fn dependency_layer_check_reports_a_target_without_file() {
    let old = "FROM rust AS builder\nWORKDIR /build\nCOPY Cargo.toml Cargo.lock ./\n\
               RUN mkdir -p src benches \\\n && echo 'fn main() {}' > src/main.rs \\\n \
               && touch src/lib.rs \\\n && echo 'fn main() {}' > benches/lunar.rs \\\n \
               && cargo build --release --locked\nCOPY benches/ benches/\n";
    let targets: Vec<String> = [
        "src/lib.rs",
        "src/main.rs",
        "benches/lunar.rs",
        "benches/feed.rs",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        missing_in_dependency_layer(old, &targets),
        ["benches/feed.rs"]
    );
    let copied = old.replace(
        "COPY Cargo.toml Cargo.lock ./\n",
        "COPY Cargo.toml Cargo.lock ./\nCOPY benches/ benches/\n",
    );
    assert_eq!(
        missing_in_dependency_layer(&copied, &targets),
        Vec::<String>::new()
    );
}
