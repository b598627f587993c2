//! YAML with positions: parse a file through the `serde_yaml` API and find where a node is.
//!
//! `serde_yaml` reports positions only inside its own errors, and has no spanned values. We get
//! positions for our own (semantic) diagnostics by asking the parser again: [`locate`] walks to a
//! node by its path (`events[3].date`) and fails on purpose there, and the error carries the
//! node's line and column. This is only done when there is something to report, so a valid
//! schedule is parsed once.
//!
//! The raw types of the files use [`Scalar`] and [`List`], which accept any scalar or a single
//! item where a list is expected, so that wrong values become located diagnostics of ours (with
//! what is allowed) instead of a single fatal type error from the parser.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::DeserializeOwned};

use crate::diag::Pos;

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
pub fn locate(text: &str, path: &[Seg]) -> Pos {
    // Too deep to parse quickly: `parse` has refused it already, at its own position.
    if too_deep(text, MAX_DEPTH).is_some() {
        return Pos::START;
    }
    (0..=path.len())
        .rev()
        .find_map(|n| locate_exact(text, &path[..n]))
        .unwrap_or(Pos::START)
}

const MARKER: &str = "\u{0}ngayle-locate\u{0}";

fn locate_exact(text: &str, path: &[Seg]) -> Option<Pos> {
    let de = serde_yaml::Deserializer::from_str(text);
    match (Locator { path }).deserialize(de) {
        Ok(()) => None,
        Err(e) => {
            if !e.to_string().contains(MARKER) {
                return None;
            }
            e.location().map(|l| within(text, l.line(), l.column()))
        }
    }
}

/// The parser's position as `check` shows it, where lines end at newlines only. The parser
/// also ends a line at a lone `\r`, NEL, U+2028 and U+2029, and at the end of a text without a
/// final newline it moves to the line after the last: the text is walked to the character the
/// parser means, counting both ways.
fn within(text: &str, line: usize, column: usize) -> Pos {
    let (mut parser, mut ours) = ((1, 1), Pos::START);
    let mut chars = text.chars().peekable();
    while parser < (line, column) {
        let Some(ch) = chars.next() else { break };
        let crlf = ch == '\r' && chars.next_if_eq(&'\n').is_some();
        parser = if matches!(ch, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            (parser.0 + 1, 1)
        } else {
            (parser.0, parser.1 + 1)
        };
        ours = if ch == '\n' || crlf {
            Pos {
                line: ours.line + 1,
                column: 1,
            }
        } else {
            Pos {
                column: ours.column + 1,
                ..ours
            }
        };
    }
    ours
}

/// Walks to `path` and fails there, so that the parser stamps the failure with the position.
struct Locator<'p, 'a> {
    path: &'p [Seg<'a>],
}

impl<'de> DeserializeSeed<'de> for Locator<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locator<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match self.path.split_first() {
            None => Err(de::Error::custom(MARKER)),
            Some((Seg::KeyName(want), [])) => {
                while map.next_key_seed(KeyFinder { want })?.is_some() {
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(())
            }
            Some((Seg::Key(want), rest)) => {
                while let Some(key) = map.next_key::<Scalar>()? {
                    if key.text() == Some(want) {
                        return map.next_value_seed(Locator { path: rest });
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(())
            }
            Some(_) => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(())
            }
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self.path.split_first() {
            None => Err(de::Error::custom(MARKER)),
            Some((Seg::Index(want), rest)) => {
                let mut i = 0;
                while i < *want {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        return Ok(());
                    }
                    i += 1;
                }
                seq.next_element_seed(Locator { path: rest }).map(|_| ())
            }
            Some(_) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(())
            }
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        if self.path.is_empty() {
            return Err(de::Error::custom(MARKER));
        }
        let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

impl Locator<'_, '_> {
    fn leaf<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(MARKER))
        } else {
            Ok(())
        }
    }
}

/// Reads a mapping key and fails on the wanted one, so that its own position is reported.
struct KeyFinder<'a> {
    want: &'a str,
}

impl<'de> DeserializeSeed<'de> for KeyFinder<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyFinder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if v == self.want {
            Err(E::custom(MARKER))
        } else {
            Ok(())
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.visit_str(&v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
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
