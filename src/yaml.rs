//! YAML with positions: parse a file through the `serde_yaml` API and find where a node is.
//!
//! `serde_yaml` reports positions only inside its own errors, and has no spanned values. The
//! positions of our own (semantic) diagnostics come from [`Positions`]: the first time a node
//! of a file is located, the file is read once more by the same parser, event by event, into
//! an index of where each node starts (`index.rs`); every diagnostic of that file is then
//! answered from the index, so `check` costs the file's size plus its diagnostics. A valid
//! schedule is parsed once: nothing is indexed until there is something to report. The
//! positions are those that `serde_yaml` gives an error raised at the node (what `locate` did
//! before the index, by failing on purpose there).
//!
//! The raw types of the files use [`Scalar`] and [`List`], which accept any scalar or a single
//! item where a list is expected, so that wrong values become located diagnostics of ours (with
//! what is allowed) instead of a single fatal type error from the parser.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::DeserializeOwned};

use crate::diag::Pos;

mod explain;
mod index;
#[cfg(test)]
mod oracle;

pub use explain::{Explained, explain};
use index::Index;

/// The largest input file we read; a calendar is a few kilobytes.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// A YAML scalar of any kind (string, number, boolean), kept as the text the admin wrote, or
/// marked as a collection when a mapping or a list stands where a single value belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Text(String),
    /// A mapping or a sequence where a single value was expected.
    Collection,
}

impl Scalar {
    /// The text, if this is a scalar.
    pub fn text(&self) -> Option<&str> {
        match self {
            Scalar::Text(s) => Some(s),
            Scalar::Collection => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a single value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Text(String::new()))
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Text(String::new()))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
                Scalar::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Collection)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Collection)
            }
            fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Scalar, A::Error> {
                // A tagged value (`!tag x`): keep it as a collection-like "not a plain value".
                let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
                de::VariantAccess::newtype_variant::<IgnoredAny>(variant)?;
                Ok(Scalar::Collection)
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of scalars; a single scalar is taken as a list of one (`tasks: treo-co`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List(pub Vec<Scalar>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = List;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list like [a, b]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Scalar>()? {
                    items.push(item);
                }
                Ok(List(items))
            }
            fn visit_unit<E>(self) -> Result<List, E> {
                Ok(List(Vec::new()))
            }
            fn visit_none<E>(self) -> Result<List, E> {
                Ok(List(Vec::new()))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<List, D::Error> {
                List::deserialize(d)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<List, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(List(vec![Scalar::Collection]))
            }
            fn visit_bool<E>(self, v: bool) -> Result<List, E> {
                Ok(List(vec![Scalar::Text(v.to_string())]))
            }
            fn visit_i64<E>(self, v: i64) -> Result<List, E> {
                Ok(List(vec![Scalar::Text(v.to_string())]))
            }
            fn visit_u64<E>(self, v: u64) -> Result<List, E> {
                Ok(List(vec![Scalar::Text(v.to_string())]))
            }
            fn visit_f64<E>(self, v: f64) -> Result<List, E> {
                Ok(List(vec![Scalar::Text(v.to_string())]))
            }
            fn visit_str<E>(self, v: &str) -> Result<List, E> {
                Ok(List(vec![Scalar::Text(v.to_owned())]))
            }
        }
        d.deserialize_any(V)
    }
}

/// Keys of a mapping that the raw type does not know (collected with `#[serde(flatten)]`).
pub type Unknown = BTreeMap<String, IgnoredAny>;

/// A parse failure: the parser's message and where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
    /// The text nests deeper than [`MAX_DEPTH`]; it was not given to the parser.
    pub too_deep: bool,
}

/// The deepest nesting of collections a file may have. Our formats need fewer than ten levels;
/// the parser takes super-linear time on very deep input (100 000 levels: half a minute), so
/// deeper text is refused before it is parsed.
pub const MAX_DEPTH: usize = 64;

/// Parses a whole document into `T`. An empty document (only comments or blanks) is `T`'s
/// `Default`, so that an empty file is reported by the caller with a message of its own.
pub fn parse<T: DeserializeOwned + Default>(text: &str) -> Result<T, ParseError> {
    if is_blank(text) {
        return Ok(T::default());
    }
    if let Some(pos) = too_deep(text, MAX_DEPTH) {
        return Err(ParseError {
            pos,
            message: format!("more than {MAX_DEPTH} levels of nesting"),
            too_deep: true,
        });
    }
    serde_yaml::from_str(text).map_err(|e| {
        let pos = e
            .location()
            .map(|l| within(text, l.line(), l.column()))
            .unwrap_or(Pos::START);
        let mut message = e.to_string();
        // The parser appends the position we already report in front of the line.
        let suffix = format!(" at line {} column {}", pos.line, pos.column);
        if let Some(i) = message.find(&suffix) {
            message.replace_range(i..i + suffix.len(), "");
        }
        ParseError {
            pos,
            message,
            too_deep: false,
        }
    })
}

/// Where the nesting of `text` first goes deeper than `max` levels, by a cheap scan that does
/// not parse: each block collection (a line more indented than the one holding it, each `- `
/// of a compact `- - x`) and each flow `[` / `{` is a level; quoted scalars, comments and block
/// scalars (`|`, `>`) are skipped. The count can be off by one for a scalar item, never by
/// more, so a limit far above what our files use refuses only absurd nesting.
pub fn too_deep(text: &str, max: usize) -> Option<Pos> {
    // Indentation columns of the open block collections.
    let mut block: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    // Inside a block scalar: the indentation its lines must exceed.
    let mut literal: Option<usize> = None;
    // Line breaks as YAML counts them: LF, CRLF or a lone CR.
    let lines = text
        .split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'));
    for (n, line) in lines.enumerate() {
        let indent = line.bytes().take_while(|&b| b == b' ').count();
        let rest = &line[indent..];
        if let Some(parent) = literal {
            if rest.trim().is_empty() || indent > parent {
                continue;
            }
            literal = None;
        }
        let at = |column: usize| Pos {
            line: n + 1,
            column: column + 1,
        };
        // Character columns: `indent` counts spaces, one byte each.
        let mut column = indent;
        let mut chars = rest.chars().peekable();
        let mut prev: Option<char> = None;
        let mut prev_word: Option<char> = None;
        if quote.is_none() && flow == 0 {
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            while block.last().is_some_and(|&top| top > indent) {
                block.pop();
            }
            if block.last().is_none_or(|&top| top < indent) {
                block.push(indent);
                if block.len() > max {
                    return Some(at(indent));
                }
            }
            // A compact `- - x`: each dash opens the item that the next one is in.
            while chars.peek() == Some(&'-') {
                let mut ahead = chars.clone();
                ahead.next();
                if !matches!(ahead.peek(), Some(' ') | None) {
                    break;
                }
                chars.next();
                column += 1;
                while chars.peek() == Some(&' ') {
                    chars.next();
                    column += 1;
                }
                if chars.peek().is_none() || chars.peek() == Some(&'#') {
                    break;
                }
                block.push(column);
                if block.len() + flow > max {
                    return Some(at(column));
                }
                prev = Some(' ');
                prev_word = Some('-');
            }
        }
        let mut content = String::new();
        while let Some(c) = chars.next() {
            match quote {
                Some('"') => {
                    if c == '\\' {
                        chars.next();
                        column += 1;
                    } else if c == '"' {
                        quote = None;
                    }
                }
                Some(_) => {
                    if c == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                            column += 1;
                        } else {
                            quote = None;
                        }
                    }
                }
                None => {
                    let token_start = prev.is_none_or(|p| p == ' ' || p == '\t')
                        || (flow > 0 && matches!(prev, Some('[' | '{' | ',')));
                    let after_indicator = prev_word.is_none_or(|w| matches!(w, ':' | '-' | '?'));
                    match c {
                        '#' if prev.is_none_or(|p| p == ' ' || p == '\t') => break,
                        '"' | '\'' if token_start => quote = Some(c),
                        '[' | '{' if flow > 0 || (token_start && after_indicator) => {
                            flow += 1;
                            if block.len() + flow > max {
                                return Some(at(column));
                            }
                        }
                        ']' | '}' if flow > 0 => flow -= 1,
                        _ => {}
                    }
                }
            }
            if c != ' ' && c != '\t' {
                prev_word = Some(c);
            }
            prev = Some(c);
            column += 1;
            if flow == 0 && quote.is_none() {
                content.push(c);
            } else {
                content.clear();
            }
        }
        // `key: |`, `- >-`: the lines after, more indented, are text.
        if flow == 0 && quote.is_none() {
            let content = content.trim_end();
            let word = content.rsplit([' ', '\t']).next().unwrap_or_default();
            let before = content[..content.len() - word.len()].trim_end();
            if word.starts_with(['|', '>'])
                && word[1..]
                    .chars()
                    .all(|c| matches!(c, '+' | '-' | '0'..='9'))
                && (before.is_empty() || before.ends_with([':', '-']))
            {
                literal = Some(indent);
            }
        }
    }
    None
}

/// True when the text holds no YAML node: only blanks, comments and document markers.
pub fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// One step of a path into a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// The value under this key of a mapping.
    Key(&'a str),
    /// The key itself (to point at an unknown or misspelt key).
    KeyName(&'a str),
    /// The n-th item of a sequence.
    Index(usize),
}

/// Where the node at `path` starts. Falls back to the nearest ancestor that exists (a missing
/// key is reported at the mapping that lacks it), and to the start of the file.
///
/// This reads the whole text: to locate several nodes of one file, use [`Positions`].
pub fn locate(text: &str, path: &[Seg]) -> Pos {
    Located::new(text).locate(path)
}

/// The nodes of one text, indexed, or nothing when the text nests too deeply to be parsed
/// quickly (`parse` has refused it already, at its own position).
#[derive(Debug)]
struct Located(Option<Index>);

impl Located {
    fn new(text: &str) -> Self {
        Located(
            too_deep(text, MAX_DEPTH)
                .is_none()
                .then(|| Index::new(text)),
        )
    }

    fn locate(&self, path: &[Seg]) -> Pos {
        let Some(index) = &self.0 else {
            return Pos::START;
        };
        (0..=path.len())
            .rev()
            .find_map(|n| index.exact(&path[..n]))
            .unwrap_or(Pos::START)
    }
}

/// Positions in the input files of one run: each file's text is indexed in one pass the first
/// time one of its nodes is located, so a valid schedule is parsed once and a file with
/// thousands of diagnostics is parsed twice, not thousands of times.
///
/// A file is known by its path, as diagnostics name it and as [`crate::schedule::LoadReport`]
/// finds its text; the same path must come with the same text (its length is checked, and a
/// different one indexes the new text).
#[derive(Debug, Default)]
pub struct Positions {
    files: RefCell<HashMap<PathBuf, (usize, Located)>>,
}

impl Positions {
    /// Where the node at `path` of the file `file` (whose text is `text`) starts, as [`locate`].
    pub fn locate(&self, file: &Path, text: &str, path: &[Seg]) -> Pos {
        let mut files = self.files.borrow_mut();
        let known = files.get(file).is_some_and(|(len, _)| *len == text.len());
        if !known {
            files.insert(file.to_path_buf(), (text.len(), Located::new(text)));
        }
        files
            .get(file)
            .map_or(Pos::START, |(_, located)| located.locate(path))
    }
}

/// The parser's position as `check` shows it, where lines end at newlines only. The parser
/// also ends a line at a lone `\r`, NEL, U+2028 and U+2029, and at the end of a text without a
/// final newline it moves to the line after the last: the text is walked to the character the
/// parser means, counting both ways.
fn within(text: &str, line: usize, column: usize) -> Pos {
    Within::new(text).to(line, column)
}

/// The walk of [`within`], resumable: positions asked for in increasing order cost one walk of
/// the text in all.
struct Within<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    parser: (usize, usize),
    ours: Pos,
}

impl<'a> Within<'a> {
    fn new(text: &'a str) -> Self {
        Within {
            chars: text.chars().peekable(),
            parser: (1, 1),
            ours: Pos::START,
        }
    }

    /// Our position of the parser's 1-based `line` and `column`, which are not before the
    /// previous ones asked for.
    fn to(&mut self, line: usize, column: usize) -> Pos {
        while self.parser < (line, column) {
            let Some(ch) = self.chars.next() else { break };
            let crlf = ch == '\r' && self.chars.next_if_eq(&'\n').is_some();
            self.parser = if matches!(ch, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') {
                (self.parser.0 + 1, 1)
            } else {
                (self.parser.0, self.parser.1 + 1)
            };
            self.ours = if ch == '\n' || crlf {
                Pos {
                    line: self.ours.line + 1,
                    column: 1,
                }
            } else {
                Pos {
                    column: self.ours.column + 1,
                    ..self.ours
                }
            };
        }
        self.ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
name: Quốc gia
events:
  - id: a
    date: 30/4
  - id: b   # comment
    lunar: 10/3
    tasks: [x, y]
";

    fn p(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn locates_values_keys_and_items() {
        use Seg::*;
        assert_eq!(locate(DOC, &[Key("name")]), p(1, 7));
        assert_eq!(
            locate(DOC, &[Key("events"), Index(0), Key("date")]),
            p(4, 11)
        );
        assert_eq!(
            locate(DOC, &[Key("events"), Index(1), KeyName("lunar")]),
            p(6, 5)
        );
        assert_eq!(
            locate(DOC, &[Key("events"), Index(1), Key("tasks"), Index(1)]),
            p(7, 16)
        );
        assert_eq!(locate(DOC, &[Key("events"), Index(1)]), p(5, 5));
        // A missing key falls back to the mapping that lacks it.
        assert_eq!(
            locate(DOC, &[Key("events"), Index(0), Key("since")]),
            p(3, 5)
        );
        assert_eq!(locate(DOC, &[Key("nope"), Index(9)]), p(1, 1));
    }

    /// Every path into `text` that the index can name (each key as it reads and as it is
    /// written, each item, one past the last, a missing key), with the position the old
    /// parse-and-fail walk gives for it.
    fn differs_from_the_walk(text: &str) -> Vec<String> {
        let located = Located::new(text);
        let mut out = Vec::new();
        let probes = located.0.as_ref().map(Index::probes).unwrap_or_default();
        // The walk parses the text for each path: a big file is sampled.
        let step = probes.len() / 150 + 1;
        for path in probes.iter().step_by(step) {
            let segs: Vec<Seg> = path.iter().map(index::Probe::seg).collect();
            let (new, old) = (located.locate(&segs), oracle::locate(text, &segs));
            if new != old {
                out.push(format!("{segs:?}: index {new:?}, walk {old:?}"));
            }
        }
        for segs in [
            vec![],
            vec![Seg::Key("nope"), Seg::Index(3)],
            vec![Seg::Index(0)],
        ] {
            let (new, old) = (located.locate(&segs), oracle::locate(text, &segs));
            if new != old {
                out.push(format!("{segs:?}: index {new:?}, walk {old:?}"));
            }
        }
        out
    }

    #[test]
    fn the_index_gives_the_positions_of_the_parse_and_fail_walk() {
        let mut big = String::new();
        for i in 0..40 {
            big.push_str(&format!("k{i}: {i}\n"));
            if i == 25 {
                big.push_str("!!int x: y\nk3: again\n");
            }
        }
        let mut texts: Vec<String> = [
            DOC,
            "a: 1\nb: [x, y]\n",
            "base: &b {x: 1, y: [2, 3]}\nuse: *b\nk: &k key\n*k : v\nl: [*b, &c z, *c]\n",
            "a: !x 1\nb: !!int 0x10\nc: !!int abc\nd: !t {e: f}\n!y k: v\n? !!str 1\n: v\n!z [q]: 2\n",
            "e: !!bool yes\nf: !!float 1.5\ng: !!null ~\nh: !!null x\ni: ! x\nj: !!str 0x1\n",
            "1.0: a\nTrue: b\n010: c\n0x10: d\n~: e\n'': f\n340282366920938463463374607431768211455: g\n-0x10: h\n.inf: i\n-5: j\n1e3: k\n0o17: l\n+1: m\n",
            "a:\r  b: 1\r  c: [x,\r    y]\r",
            "a:\r\n  b: 1\r\n",
            "a: x\u{85}b: y\n",
            "a: \"x\u{2028}y\"\nb: 1\n",
            "a: 1\nb: 2",
            "a:\n  b: 1\n  c: [\n",
            "a: 1\nb: *nope\nc: 2\n",
            "a: {b: 1\n",
            "a: 1\n---\nb: 2\n",
            "\u{feff}a: 1\nb: 2\n",
            "",
            "# c\n",
            "---\n",
            "...\n",
            "a: 1\na: 2\nb: {c: 1, c: 2}\n",
            "tên: Trường\ntasks: [x, ỹ, \"z\"]\n",
            "a: |\n  x\n  y\nb: >\n  z\nc: 'it''s'\n",
            "? a\n: 1\n? [x]\n: 2\n? {y: z}\n: 3\n",
            "{a: [1, {b: 2}], c: d}",
            "- a\n- [b, c]\n- {d: e}\n- - f\n  - g\n",
            "a:\n  - &x {b: 1}\n  - *x\n  - !t *x\n",
            "a: \"\\ud800\"\nb: 1\n",
            "a: [1, 2\nb: 3\n",
            "a:\n\t- b\n",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        texts.push(big);
        for shipped in [
            include_str!("../calendars/national.yaml"),
            include_str!("../calendars/tasks.yaml"),
            include_str!("../config/ngayle.yaml"),
            include_str!("../config/staff.yaml"),
        ] {
            // Cut at a few places: the walk goes as far as the parse error.
            let cuts = (1..6).map(|k| shipped.len() * k / 6);
            for cut in cuts {
                let cut = (cut..shipped.len())
                    .find(|&i| shipped.is_char_boundary(i))
                    .unwrap_or(shipped.len());
                texts.push(shipped[..cut].to_string());
            }
            texts.push(shipped.to_string());
        }
        for text in &texts {
            let bad = differs_from_the_walk(text);
            assert!(bad.is_empty(), "{text:?}:\n{}", bad.join("\n"));
        }
    }

    #[test]
    fn nesting_depth_is_counted_without_parsing() {
        // Our files nest a few levels; text in quotes, comments and block scalars is not
        // nesting.
        let ours = "a:\n  - b: [x, {y: z}]\n    c: \"[[[[\"  # [[[[\n    d: |\n      [[[[ {{{{\n      - - - -\n    e: 'it''s [ok'\n    f: a [b\n";
        assert_eq!(too_deep(ours, 5), None);
        assert_eq!(too_deep(ours, 4), Some(p(2, 12)));
        assert_eq!(too_deep("- - - x\n", 2), Some(p(1, 5)));
        assert_eq!(too_deep("a:\r  b:\r    c: [d]\r", 3), Some(p(3, 8)));
        for shipped in [
            include_str!("../calendars/national.yaml"),
            include_str!("../calendars/tasks.yaml"),
            include_str!("../config/ngayle.yaml"),
            include_str!("../config/staff.yaml"),
        ] {
            assert_eq!(too_deep(shipped, 6), None);
        }
    }

    #[test]
    fn syntax_errors_are_located() {
        #[derive(Deserialize, Default)]
        struct T {
            #[allow(dead_code)]
            name: Option<Scalar>,
        }
        let e = parse::<T>("name: [a\nother: b\n").err();
        let e = e
            .as_ref()
            .map(|e| (e.pos, e.message.contains("at line 2 column 6")));
        assert_eq!(e, Some((Pos { line: 2, column: 6 }, false)));
        assert!(parse::<T>("# only a comment\n\n").is_ok());
    }
}
