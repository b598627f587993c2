//! The parser's syntax errors said in Vietnamese, at the place to fix, with what to do.
//!
//! The parser (libyaml) names what it met where it gave up, in English ("mapping values are
//! not allowed in this context"); an admin needs the mistake behind it. The common ones each
//! get their own message and help: a `: ` inside a value, a tab, a line indented too far or
//! too little, a quote or a bracket left open. The others keep the parser's words after a
//! Vietnamese lead. Pure: a function of the text and the error.

use super::{ParseError, within};
use crate::diag::Pos;

/// A syntax error as `check` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub pos: Pos,
    pub message: String,
    pub help: String,
}

/// What the error `e` of parsing `text` means, and where to fix it.
pub fn explain(text: &str, e: &ParseError) -> Explained {
    let lines: Vec<&str> = text.lines().collect();
    let line = |n: usize| lines.get(n.wrapping_sub(1)).copied().unwrap_or_default();
    let m = e.message.as_str();
    let explained = |pos, message: String, help: String| Explained { pos, message, help };

    if m.contains("tab character") {
        let at = line(e.pos.line);
        let column = at
            .chars()
            .take_while(|c| c.is_whitespace())
            .position(|c| c == '\t')
            .map_or(e.pos.column, |i| i + 1);
        return explained(
            Pos {
                line: e.pos.line,
                column,
            },
            "ký tự tab dùng để thụt lề".to_string(),
            "YAML chỉ thụt lề bằng dấu cách: thay tab bằng dấu cách, thẳng cột với các khóa cùng mục (trong trình soạn thảo, chọn chèn dấu cách khi nhấn Tab)".to_string(),
        );
    }
    // Where the parser says a quoted scalar, a flow list or mapping began.
    let opened = opened_at(m).map(|(l, c)| within(text, l, c));
    if m.contains("while scanning a quoted scalar")
        && let Some(pos) = opened
    {
        return unclosed_quote(pos, char_at(line(pos.line), pos.column).unwrap_or('"'));
    }
    // A quote left open that a later quote closed: the error comes after it.
    if let Some((pos, quote)) = open_quote(&lines, e.pos.line) {
        return unclosed_quote(pos, quote);
    }
    for (kind, open, close, example) in [
        ("flow sequence", '[', ']', "`tasks: [treo-co, tin-bai-web]`"),
        (
            "flow mapping",
            '{',
            '}',
            "`unit: {name: Trường …, place: …}`",
        ),
    ] {
        if m.contains(&format!("while parsing a {kind}"))
            && let Some(pos) = opened
        {
            return explained(
                pos,
                format!("dấu `{open}` mở ở đây chưa được đóng"),
                format!(
                    "thêm `{close}` ở cuối danh sách, trên cùng dòng, ví dụ {example}; các mục cách nhau bằng dấu phẩy"
                ),
            );
        }
    }
    if m.contains("mapping values are not allowed") {
        let at = line(e.pos.line);
        let before: String = at.chars().take(e.pos.column.saturating_sub(1)).collect();
        if let Some((key, _)) = key_value(&before) {
            // `name: Ngày hội: Trường …`: the second `: ` starts a key for the parser.
            let value = key_value(at).map(|(_, v)| v).unwrap_or_default();
            let quoted = format!(
                "{key}: \"{}\"",
                value.replace('\\', "\\\\").replace('"', "\\\"")
            );
            return explained(
                e.pos,
                format!(
                    "giá trị của `{key}` có dấu `: `, nên YAML hiểu nhầm phần sau là một khóa mới"
                ),
                format!("đặt cả giá trị trong dấu ngoặc kép: `{quoted}`"),
            );
        }
        return bad_indent(
            &lines,
            e.pos.line,
            "dòng này thụt lề sâu hơn các khóa cùng mục ở trên",
        );
    }
    if m.contains("did not find expected '-' indicator")
        || m.contains("did not find expected key")
        || m.contains("did not find expected <document start>")
    {
        return bad_indent(
            &lines,
            e.pos.line,
            "thụt lề sai: dòng này không thẳng cột với khóa nào ở trên",
        );
    }
    if m.contains("cannot start any") {
        let at = line(e.pos.line);
        let c = char_at(at, e.pos.column).unwrap_or('?');
        let help = match key_value(at) {
            Some((key, value)) => format!(
                "đặt cả giá trị trong dấu ngoặc kép: `{key}: \"{}\"`",
                value.replace('"', "\\\"")
            ),
            None => "đặt giá trị trong dấu ngoặc kép".to_string(),
        };
        return explained(
            e.pos,
            format!("giá trị không được bắt đầu bằng `{c}` khi không có dấu ngoặc kép"),
            help,
        );
    }
    // Type errors of the document's shape (serde's words: `groups: invalid type: …`).
    if let Some((path, rest)) = m.split_once(": invalid type: ") {
        let (message, help) = if rest.ends_with("expected a sequence") {
            (
                format!("`{path}` phải là một danh sách"),
                "viết mỗi mục trên một dòng bắt đầu bằng `- `, thụt vào dưới khóa, hoặc `[a, b]` trên một dòng".to_string(),
            )
        } else {
            (
                format!("`{path}` phải là một bảng các khóa `khóa: giá trị`"),
                "mỗi mục là các dòng `khóa: giá trị` thẳng cột, ví dụ `- id: csvc` rồi `  name: Cơ sở vật chất` ở dòng dưới".to_string(),
            )
        };
        return explained(e.pos, message, help);
    }
    if let Some(rest) = m
        .split(": ")
        .find_map(|p| p.strip_prefix("duplicate field `"))
    {
        let key = rest.trim_end_matches('`');
        // The parser points at the item: the second line of the key is the one to remove.
        let second = (e.pos.line..=lines.len())
            .filter(|&n| key_value(line(n)).is_some_and(|(k, _)| k == key))
            .nth(1);
        let pos = second.map_or(e.pos, |n| Pos {
            line: n,
            column: line(n)
                .chars()
                .take_while(|&c| c == ' ' || c == '-')
                .count()
                + 1,
        });
        return explained(
            pos,
            format!("khóa `{key}` viết hai lần trong cùng một mục"),
            "xóa một trong hai dòng; nếu đây là mục mới, thêm dòng `- id: …` trước nó".to_string(),
        );
    }
    explained(
        e.pos,
        format!("YAML không hợp lệ ({m})"),
        "kiểm tra thụt lề (dùng dấu cách, không dùng tab), dấu `:` sau mỗi khóa và dấu ngoặc của danh sách `[a, b]`".to_string(),
    )
}

fn unclosed_quote(pos: Pos, quote: char) -> Explained {
    let inside = if quote == '\'' { "''" } else { "\\\"" };
    Explained {
        pos,
        message: format!("dấu `{quote}` mở ở đây chưa được đóng"),
        help: format!(
            "thêm `{quote}` ở cuối giá trị, trên cùng dòng; một dấu `{quote}` ở giữa giá trị thì viết `{inside}`"
        ),
    }
}

/// A line more or less indented than its neighbours: which column its key belongs at, from
/// the line above (a list item's dash under the dash above, a key under the key above).
fn bad_indent(lines: &[&str], line: usize, message: &str) -> Explained {
    let at = lines.get(line.wrapping_sub(1)).copied().unwrap_or_default();
    let indent = at.chars().take_while(|&c| c == ' ').count();
    let pos = Pos {
        line,
        column: indent + 1,
    };
    let rest = &at[indent..];
    let is_item = rest.starts_with("- ") || rest == "-";
    let name = key_value(rest)
        .map(|(k, _)| k.trim_start_matches("- ").to_string())
        .unwrap_or_else(|| rest.trim().to_string());
    // The nearest line above with content (not a comment): where its key or its dash is.
    let above = (1..line).rev().find_map(|n| {
        let l = lines.get(n - 1)?;
        let t = l.trim_start();
        (!t.is_empty() && !t.starts_with('#')).then_some((n, *l))
    });
    let help = match above {
        Some((n, l)) => {
            let dash = l.chars().take_while(|&c| c == ' ').count();
            let t = l.trim_start();
            let key = if t.starts_with("- ") { dash + 2 } else { dash };
            let (target, what) = if is_item {
                // An item's dash goes under the previous item's dash.
                let dash_above = lines[..(line - 1).min(lines.len())]
                    .iter()
                    .rev()
                    .map(|l| (l.chars().take_while(|&c| c == ' ').count(), l.trim_start()))
                    .find(|(_, t)| t.starts_with("- "))
                    .map_or(dash, |(d, _)| d);
                (dash_above, "dấu `-` của mục trên".to_string())
            } else {
                let above_key = key_value(t.trim_start_matches("- "))
                    .map_or_else(|| t.to_string(), |(k, _)| k.to_string());
                (key, format!("`{above_key}` ở dòng {n}"))
            };
            format!(
                "thụt `{name}` {target} dấu cách, thẳng cột với {what}; các khóa của cùng một mục phải thẳng cột với nhau"
            )
        }
        None => "dòng đầu tiên không thụt lề; các khóa của cùng một mục phải thẳng cột với nhau"
            .to_string(),
    };
    Explained {
        pos,
        message: message.to_string(),
        help,
    }
}

/// `key: value` of a line (`- ` and the indentation removed): the key, and the value trimmed;
/// `None` when the line holds no `key: ` (or `key:` at its end) outside quotes and brackets.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
    if t.starts_with(['"', '\'', '[', '{', '#']) {
        return None;
    }
    let (key, value) = match t.find(": ") {
        Some(i) => (&t[..i], &t[i + 2..]),
        None => (t.strip_suffix(':')?, ""),
    };
    (!key.is_empty() && !key.contains(' ')).then_some((key, value.trim()))
}

/// The parser's "… at line L column C" of where a construct began (1-based, its coordinates).
fn opened_at(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.rfind(" at line ")? + " at line ".len()..];
    let (line, rest) = rest.split_once(" column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// The character at a 1-based column of `line`.
fn char_at(line: &str, column: usize) -> Option<char> {
    line.chars().nth(column.checked_sub(1)?)
}

/// The first of lines `1..=upto` whose value opens a quote it does not close on that line
/// (`name: "Ngày …` without its `"`): where and which quote.
fn open_quote(lines: &[&str], upto: usize) -> Option<(Pos, char)> {
    for (i, l) in lines.iter().take(upto).enumerate() {
        let indent = l.chars().take_while(|&c| c == ' ').count();
        let t = &l[indent..];
        let value = match key_value(t) {
            Some((_, v)) => v,
            None => match t.strip_prefix("- ") {
                Some(v) => v.trim_start(),
                None => continue,
            },
        };
        let Some(quote) = value.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
            continue;
        };
        if !closes(&value[1..], quote) {
            // `value` is a part of `t`, which is the line after its indentation.
            let skip = (value.as_ptr() as usize).saturating_sub(t.as_ptr() as usize);
            let column = l.get(..indent + skip).map_or(1, |s| s.chars().count() + 1);
            return Some((
                Pos {
                    line: i + 1,
                    column,
                },
                quote,
            ));
        }
    }
    None
}

/// Whether `rest` (after an opening `quote`) holds its closing quote: `\"` does not close a
/// double-quoted scalar, `''` does not close a single-quoted one.
fn closes(rest: &str, quote: char) -> bool {
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                chars.next();
            }
            c if c == quote => {
                // `''` in a single-quoted scalar is a quote, not its end.
                let doubled = quote == '\'' && chars.next_if_eq(&'\'').is_some();
                if !doubled {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain_text(text: &str) -> Explained {
        match super::super::parse::<super::super::Unknown>(text) {
            Err(e) => explain(text, &e),
            Ok(_) => panic!("parsed: {text:?}"),
        }
    }

    #[test]
    fn common_mistakes() {
        let p = |line, column| Pos { line, column };
        for (text, pos, message, help) in [
            (
                "a:\n  - id: x\n    name: Ngày hội: Trường\n",
                p(3, 19),
                "giá trị của `name`",
                "`name: \"Ngày hội: Trường\"`",
            ),
            ("a:\n  b: 1\n\tc: 2\n", p(3, 1), "tab", "dấu cách"),
            (
                "a:\n  b: 1\n    c: 2\n",
                p(3, 5),
                "sâu hơn",
                "thụt `c` 2 dấu cách",
            ),
            (
                "a:\n  - b: 1\n    c: 2\n   d: 3\n",
                p(4, 4),
                "thụt lề sai",
                "thụt `d` 4 dấu cách",
            ),
            ("a:\n  b: \"x\n  c: 2\n", p(2, 6), "dấu `\"`", "`\\\"`"),
            ("a:\n  b: 'x\n  c: 2\n", p(2, 6), "dấu `'`", "`''`"),
            // Closed by a later quote, the error comes after: the open one is named.
            ("a:\n  b: \"x\n  c: \"2\"\n", p(2, 6), "dấu `\"`", ""),
            ("a:\n  b: [x, y\n  c: 2\n", p(2, 6), "dấu `[`", "`]`"),
            ("a: {b: 1\nc: 2\n", p(1, 4), "dấu `{`", "`}`"),
            ("a:\n  b: @x\n", p(2, 6), "`@`", "`b: \"@x\"`"),
        ] {
            let e = explain_text(text);
            assert_eq!(e.pos, pos, "{text:?}: {e:?}");
            assert!(e.message.contains(message), "{text:?}: {e:?}");
            assert!(e.help.contains(help), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn shape_mistakes() {
        #[derive(Debug, Default, serde::Deserialize)]
        #[allow(dead_code)]
        struct Item {
            id: Option<String>,
            name: Option<String>,
        }
        #[derive(Debug, Default, serde::Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            groups: Option<Vec<Item>>,
        }
        let p = |line, column| Pos { line, column };
        for (text, pos, message) in [
            ("groups: csvc\n", p(1, 9), "`groups` phải là một danh sách"),
            (
                "groups:\n  - csvc\n",
                p(2, 5),
                "`groups[0]` phải là một bảng",
            ),
            (
                "groups:\n  - id: a\n    name: A\n    name: B\n",
                p(4, 5),
                "khóa `name` viết hai lần",
            ),
        ] {
            let e = match super::super::parse::<Doc>(text) {
                Err(e) => explain(text, &e),
                Ok(d) => panic!("parsed: {d:?}"),
            };
            assert_eq!(e.pos, pos, "{text:?}: {e:?}");
            assert!(e.message.contains(message), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn other_errors_keep_the_parsers_words() {
        let e = explain_text("a: *x\n");
        assert!(e.message.starts_with("YAML không hợp lệ ("), "{e:?}");
        assert!(e.message.contains("unknown anchor"), "{e:?}");
    }

    /// Every one-character slip anywhere in a small file is explained without a panic, at a
    /// line of the file.
    #[test]
    fn any_slip_is_explained_within_the_file() {
        let doc =
            "name: Thử\nevents:\n  - id: a\n    name: \"Ngày\"\n    tasks: [x, y]\n    u: {a: 1}\n";
        let n = doc.chars().count();
        for i in 0..=n {
            for slip in [" ", "\t", ":", ": ", "\"", "'", "[", "{", "- ", "\n ", "@"] {
                let text: String = doc
                    .chars()
                    .take(i)
                    .chain(slip.chars())
                    .chain(doc.chars().skip(i))
                    .collect();
                if let Err(e) = super::super::parse::<super::super::Unknown>(&text) {
                    let x = explain(&text, &e);
                    assert!(
                        x.pos.line >= 1 && x.pos.line <= text.lines().count() + 1,
                        "{text:?}: {x:?}"
                    );
                    assert!(
                        !x.message.is_empty() && !x.help.is_empty(),
                        "{text:?}: {x:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn escaped_quotes_do_not_close() {
        assert!(!closes("a\\\" b", '"'));
        assert!(closes("a\\\" b\"", '"'));
        assert!(!closes("it''s", '\''));
        assert!(closes("it''s'", '\''));
    }
}
