//! Where the nodes of one YAML document start, found in one pass of the parser: the index that
//! [`super::locate`] answers from.
//!
//! The index reads the document with the parser `serde_yaml` itself uses (`libyaml-rs`, at the
//! version `yaml_serde` pins), keeps the document's events as `serde_yaml`'s loader does (the
//! first document only, up to a parse error, aliases pointing at their anchor), and walks to a
//! path the way a deserializer that fails on purpose at the node would: the position is the one
//! that `serde_yaml` would have put in such an error, so diagnostics point where they always
//! did. Keys are compared as `serde_yaml` resolves them (`1.0` is the number 1, `True` the
//! boolean `true`); that resolution is the part of `yaml_serde`'s `de.rs` copied below.
//!
//! It holds no text after it is built; it does not deserialize values.

use std::cell::OnceCell;
use std::collections::HashMap;

use super::Seg;
use crate::diag::Pos;

/// The nodes of a document, each with where it starts.
#[derive(Debug)]
pub struct Index {
    nodes: Vec<Node>,
    /// The document's root, when it has one before any parse error.
    root: Option<usize>,
}

#[derive(Debug)]
struct Node {
    /// The parser's position of the node's first character (its anchor or tag, if any), as
    /// `check` shows it.
    pos: Pos,
    /// A tag of the admin's (`!x`), which `serde_yaml` reads as an enum.
    custom_tag: bool,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Scalar(Scalar),
    Seq(Vec<usize>),
    /// Keys and values in order; a value is missing when the document fails after its key.
    Map(Map),
    /// An alias (`*a`): `serde_yaml` reads the anchored node in its place.
    Alias(usize),
    /// The empty document.
    Void,
}

#[derive(Debug)]
struct Scalar {
    value: Box<[u8]>,
    tag: Option<Box<[u8]>>,
    plain: bool,
}

#[derive(Debug, Default)]
struct Map {
    entries: Vec<(usize, Option<usize>)>,
    /// The keys of a large mapping, made on its first lookup (a small one is scanned).
    keys: OnceCell<Keys>,
}

/// The first entry for each key text, as each of the two lookups reads keys, and the entry at
/// which each lookup would fail.
#[derive(Debug, Default)]
struct Keys {
    value: HashMap<String, usize>,
    value_fails: Option<usize>,
    name: HashMap<String, usize>,
    name_fails: Option<usize>,
}

/// Above this many entries a mapping's keys are hashed on the first lookup.
const SCAN: usize = 16;

/// How a key reads, for the two kinds of lookup.
enum KeyText {
    /// Matches this text.
    Text(String),
    /// Matches nothing, and the lookup goes on.
    Nothing,
    /// The deserializer fails on this key: the lookup ends here, unfound.
    Fails,
}

impl Index {
    /// Reads `text` once. Text that fails to parse keeps the nodes before the failure.
    pub fn new(text: &str) -> Index {
        let events = events(text);
        let mut nodes: Vec<Node> = Vec::with_capacity(events.len());
        let mut marks: Vec<(usize, usize)> = Vec::with_capacity(events.len());
        let mut anchors: HashMap<Box<[u8]>, usize> = HashMap::new();
        let mut open: Vec<usize> = Vec::new();
        let mut root = None;
        for (event, mark) in events {
            let (kind, anchor, custom_tag) = match event {
                Event::Scalar(s, anchor) => {
                    let custom = custom_tag(s.tag.as_deref());
                    (Kind::Scalar(s), anchor, custom)
                }
                Event::SeqStart(tag, anchor) => {
                    (Kind::Seq(Vec::new()), anchor, custom_tag(tag.as_deref()))
                }
                Event::MapStart(tag, anchor) => (
                    Kind::Map(Map::default()),
                    anchor,
                    custom_tag(tag.as_deref()),
                ),
                Event::Alias(name) => match anchors.get(&name) {
                    Some(&target) => (Kind::Alias(target), None, false),
                    // `serde_yaml` stops the document at an unknown anchor.
                    None => break,
                },
                Event::Void => (Kind::Void, None, false),
                Event::End => {
                    open.pop();
                    continue;
                }
            };
            let id = nodes.len();
            if let Some(name) = anchor {
                anchors.insert(name, id);
            }
            let collection = matches!(kind, Kind::Seq(_) | Kind::Map(_));
            nodes.push(Node {
                pos: Pos::START,
                custom_tag,
                kind,
            });
            marks.push(mark);
            match open.last().map(|&p| &mut nodes[p].kind) {
                Some(Kind::Seq(items)) => items.push(id),
                Some(Kind::Map(map)) => match map.entries.last_mut() {
                    Some((_, value @ None)) => *value = Some(id),
                    _ => map.entries.push((id, None)),
                },
                _ => root = root.or(Some(id)),
            }
            if collection {
                open.push(id);
            }
        }
        for (node, pos) in nodes.iter_mut().zip(positions(text, &marks)) {
            node.pos = pos;
        }
        Index { nodes, root }
    }

    /// Where the node at `path` starts, if the walk of a failing deserializer reaches it.
    pub fn exact(&self, path: &[Seg]) -> Option<Pos> {
        self.walk(self.root?, path)
    }

    fn walk(&self, id: usize, path: &[Seg]) -> Option<Pos> {
        let id = self.target(id);
        let node = &self.nodes[id];
        // A tagged node is an enum to `serde_yaml`: the walk fails at it, or goes on into it.
        if node.custom_tag && path.is_empty() {
            return Some(node.pos);
        }
        match (&node.kind, path.split_first()) {
            // A scalar the deserializer fails on ends the walk before the visitor sees it.
            (Kind::Scalar(s), None) => (!matches!(resolve(s), Resolved::Fails)).then_some(node.pos),
            (Kind::Void | Kind::Seq(_) | Kind::Map(_), None) => Some(node.pos),
            (Kind::Seq(items), Some((Seg::Index(i), rest))) => self.walk(*items.get(*i)?, rest),
            (Kind::Map(map), Some((Seg::KeyName(want), []))) => {
                let (key, _) = map.entries[self.find(map, want, true)?];
                Some(self.nodes[self.target(key)].pos)
            }
            (Kind::Map(map), Some((Seg::Key(want), rest))) => {
                let (_, value) = map.entries[self.find(map, want, false)?];
                self.walk(value?, rest)
            }
            _ => None,
        }
    }

    /// The node an alias stands for (the node itself otherwise).
    fn target(&self, id: usize) -> usize {
        match self.nodes[id].kind {
            Kind::Alias(target) => target,
            _ => id,
        }
    }

    /// The first entry of `map` whose key reads as `want`; `name` for a lookup of the key
    /// itself (read as a string, other values fail) rather than of its value (read as any
    /// single value).
    fn find(&self, map: &Map, want: &str, name: bool) -> Option<usize> {
        if map.entries.len() <= SCAN {
            for (i, &(key, _)) in map.entries.iter().enumerate() {
                match self.key_text(key, name) {
                    KeyText::Text(t) if t == want => return Some(i),
                    KeyText::Fails => return None,
                    _ => {}
                }
            }
            return None;
        }
        let keys = map.keys.get_or_init(|| {
            let mut keys = Keys::default();
            for (i, &(key, _)) in map.entries.iter().enumerate() {
                for name in [false, true] {
                    let (seen, fails) = if name {
                        (&mut keys.name, &mut keys.name_fails)
                    } else {
                        (&mut keys.value, &mut keys.value_fails)
                    };
                    if fails.is_some() {
                        continue;
                    }
                    match self.key_text(key, name) {
                        KeyText::Text(t) => {
                            seen.entry(t).or_insert(i);
                        }
                        KeyText::Fails => *fails = Some(i),
                        KeyText::Nothing => {}
                    }
                }
            }
            keys
        });
        let (seen, fails) = if name {
            (&keys.name, keys.name_fails)
        } else {
            (&keys.value, keys.value_fails)
        };
        seen.get(want)
            .copied()
            .filter(|&i| fails.is_none_or(|f| i < f))
    }

    /// How a key reads: for a value lookup as [`super::Scalar`] reads it, for a key-name
    /// lookup as a string compared to the name.
    fn key_text(&self, key: usize, name: bool) -> KeyText {
        let node = &self.nodes[self.target(key)];
        if node.custom_tag {
            return if name {
                KeyText::Fails
            } else {
                KeyText::Nothing
            };
        }
        let Kind::Scalar(s) = &node.kind else {
            return KeyText::Nothing;
        };
        match resolve(s) {
            Resolved::Fails => KeyText::Fails,
            Resolved::Unit if name => KeyText::Nothing,
            Resolved::Unit => KeyText::Text(String::new()),
            Resolved::Bool(b) => KeyText::Text(b.to_string()),
            Resolved::U64(n) => KeyText::Text(n.to_string()),
            Resolved::I64(n) => KeyText::Text(n.to_string()),
            Resolved::U128(_) | Resolved::I128(_) if name => KeyText::Fails,
            Resolved::U128(n) => KeyText::Text(n.to_string()),
            Resolved::I128(n) => KeyText::Text(n.to_string()),
            Resolved::F64(f) => KeyText::Text(f.to_string()),
            Resolved::Str(s) => KeyText::Text(s),
        }
    }
}

/// Whether a tag makes `serde_yaml` read the node as an enum: any tag but the standard ones
/// (`!!str` is `tag:yaml.org,2002:str`). As `yaml_serde`'s `parse_tag`.
fn custom_tag(tag: Option<&[u8]>) -> bool {
    match tag {
        Some([b'!', rest @ ..]) => {
            std::str::from_utf8(if rest.is_empty() { b"!" } else { rest }).is_ok()
        }
        _ => false,
    }
}

// ---- the parser's events, as `yaml_serde`'s loader keeps them ----

enum Event {
    Scalar(Scalar, Option<Box<[u8]>>),
    SeqStart(Option<Box<[u8]>>, Option<Box<[u8]>>),
    MapStart(Option<Box<[u8]>>, Option<Box<[u8]>>),
    Alias(Box<[u8]>),
    /// The end of a sequence or a mapping.
    End,
    /// A stream with no document.
    Void,
}

/// The events of the first document of `text` with their marks (0-based line and column), up
/// to its end or the first parse error. The calls are those of `yaml_serde`'s own
/// `libyaml/parser.rs`; `libyaml-rs` has no safe interface.
fn events(text: &str) -> Vec<(Event, (usize, usize))> {
    use libyaml_rs as sys;
    use std::mem::MaybeUninit;

    /// The parser, on the heap because it must not move once it has its input.
    struct Parser(Box<MaybeUninit<sys::yaml_parser_t>>);
    impl Drop for Parser {
        fn drop(&mut self) {
            // SAFETY: the parser was initialised (the value is only made after that).
            unsafe { sys::yaml_parser_delete(self.0.as_mut_ptr()) }
        }
    }
    /// Copies a NUL-terminated string owned by the event.
    ///
    /// # Safety
    /// `p` is null or points at a NUL-terminated string.
    unsafe fn owned(p: *const u8) -> Option<Box<[u8]>> {
        if p.is_null() {
            return None;
        }
        // SAFETY: as the caller promises.
        let c = unsafe { std::ffi::CStr::from_ptr(p.cast()) };
        Some(c.to_bytes().into())
    }

    let mut out = Vec::new();
    let mut raw = Box::new(MaybeUninit::<sys::yaml_parser_t>::uninit());
    // SAFETY: the pointer is to owned, writable memory that does not move (a box). An
    // initialisation failure is an allocation failure, where nothing is indexed.
    if unsafe { sys::yaml_parser_initialize(raw.as_mut_ptr()).fail } {
        return out;
    }
    let mut parser = Parser(raw);
    let p = parser.0.as_mut_ptr();
    // SAFETY: the parser is initialised; `text` outlives it (it is dropped in this function).
    unsafe {
        sys::yaml_parser_set_encoding(p, sys::YAML_UTF8_ENCODING);
        sys::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
    }
    loop {
        let mut event = MaybeUninit::<sys::yaml_event_t>::uninit();
        // SAFETY: an initialised parser and room for one event; on success the event is
        // initialised, read through its type's union member, and deleted once.
        let (event, mark) = unsafe {
            if sys::yaml_parser_parse(p, event.as_mut_ptr()).fail {
                break;
            }
            let e = event.as_mut_ptr();
            let m = (*e).start_mark;
            let mark = (m.line as usize, m.column as usize);
            // `None`: an event the walk does not need; `Some(None)`: the end of the first
            // document (or of the stream); `Some(Some(_))`: a node or the end of one.
            let read = match (*e).type_ {
                sys::YAML_STREAM_END_EVENT => Some(out.is_empty().then_some(Event::Void)),
                sys::YAML_DOCUMENT_END_EVENT => Some(None),
                sys::YAML_ALIAS_EVENT => Some(owned((*e).data.alias.anchor).map(Event::Alias)),
                sys::YAML_SCALAR_EVENT => {
                    let d = &(*e).data.scalar;
                    let value = if d.value.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(d.value, d.length as usize)
                    };
                    Some(Some(Event::Scalar(
                        Scalar {
                            value: value.into(),
                            tag: owned(d.tag),
                            plain: matches!(d.style, sys::YAML_PLAIN_SCALAR_STYLE),
                        },
                        owned(d.anchor),
                    )))
                }
                sys::YAML_SEQUENCE_START_EVENT => {
                    let d = &(*e).data.sequence_start;
                    Some(Some(Event::SeqStart(owned(d.tag), owned(d.anchor))))
                }
                sys::YAML_MAPPING_START_EVENT => {
                    let d = &(*e).data.mapping_start;
                    Some(Some(Event::MapStart(owned(d.tag), owned(d.anchor))))
                }
                sys::YAML_SEQUENCE_END_EVENT | sys::YAML_MAPPING_END_EVENT => {
                    Some(Some(Event::End))
                }
                // Stream and document starts carry nothing the walk needs.
                _ => None,
            };
            sys::yaml_event_delete(e);
            match read {
                None => continue,
                Some(None) => break,
                Some(Some(event)) => (event, mark),
            }
        };
        let last = matches!(event, Event::Void);
        out.push((event, mark));
        if last {
            break;
        }
    }
    drop(parser);
    out
}

/// Each mark (0-based, as the parser counts: a line also ends at a lone `\r`, NEL, U+2028 and
/// U+2029) as `check` shows it: [`super::within`] for each, in one walk of the text.
fn positions(text: &str, marks: &[(usize, usize)]) -> Vec<Pos> {
    let mut order: Vec<usize> = (0..marks.len()).collect();
    order.sort_by_key(|&i| marks[i]);
    let mut out = vec![Pos::START; marks.len()];
    let mut walk = super::Within::new(text);
    for i in order {
        let (line, column) = marks[i];
        out[i] = walk.to(line + 1, column + 1);
    }
    out
}

// ---- scalars, resolved as `yaml_serde` 0.10 resolves them (its de.rs, MIT OR Apache-2.0) ----

#[derive(Debug, PartialEq)]
enum Resolved {
    Unit,
    Bool(bool),
    U64(u64),
    I64(i64),
    U128(u128),
    I128(i128),
    F64(f64),
    Str(String),
    /// The deserializer fails on it (not UTF-8, a `!!int` that is not an integer, …).
    Fails,
}

const TAG_NULL: &[u8] = b"tag:yaml.org,2002:null";
const TAG_BOOL: &[u8] = b"tag:yaml.org,2002:bool";
const TAG_INT: &[u8] = b"tag:yaml.org,2002:int";
const TAG_FLOAT: &[u8] = b"tag:yaml.org,2002:float";

/// A scalar that is not tagged as an enum, as `visit_scalar` gives it to a visitor.
fn resolve(s: &Scalar) -> Resolved {
    let Ok(v) = std::str::from_utf8(&s.value) else {
        return Resolved::Fails;
    };
    match s.tag.as_deref() {
        Some(TAG_BOOL) => parse_bool(v).map_or(Resolved::Fails, Resolved::Bool),
        Some(TAG_INT) => int(v).unwrap_or(Resolved::Fails),
        Some(TAG_FLOAT) => parse_f64(v).map_or(Resolved::Fails, Resolved::F64),
        Some(TAG_NULL) => {
            if parse_null(v) {
                Resolved::Unit
            } else {
                Resolved::Fails
            }
        }
        Some(tag) if tag.starts_with(b"!") && s.plain => untagged(v),
        Some(_) => Resolved::Str(v.to_string()),
        None if s.plain => untagged(v),
        None => Resolved::Str(v.to_string()),
    }
}

fn untagged(v: &str) -> Resolved {
    if v.is_empty() || parse_null(v) {
        return Resolved::Unit;
    }
    if let Some(b) = parse_bool(v) {
        return Resolved::Bool(b);
    }
    if let Some(n) = int(v) {
        return n;
    }
    if !digits_but_not_number(v)
        && let Some(f) = parse_f64(v)
    {
        return Resolved::F64(f);
    }
    Resolved::Str(v.to_string())
}

fn parse_null(v: &str) -> bool {
    matches!(v, "null" | "Null" | "NULL" | "~")
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// `visit_int`: the first of u64, i64 (negative), u128, i128 that the text is.
fn int(v: &str) -> Option<Resolved> {
    use std::num::ParseIntError;
    fn unsigned<T>(s: &str, radix: fn(&str, u32) -> Result<T, ParseIntError>) -> Option<T> {
        let unpositive = s.strip_prefix('+').unwrap_or(s);
        for (prefix, base) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(rest) = unpositive.strip_prefix(prefix) {
                if rest.starts_with(['+', '-']) {
                    return None;
                }
                if let Ok(n) = radix(rest, base) {
                    return Some(n);
                }
            }
        }
        if unpositive.starts_with(['+', '-']) || digits_but_not_number(s) {
            return None;
        }
        radix(unpositive, 10).ok()
    }
    fn negative<T>(s: &str, radix: fn(&str, u32) -> Result<T, ParseIntError>) -> Option<T> {
        for (prefix, base) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
            if let Some(rest) = s.strip_prefix(prefix)
                && let Ok(n) = radix(&format!("-{rest}"), base)
            {
                return Some(n);
            }
        }
        if digits_but_not_number(s) {
            return None;
        }
        radix(s, 10).ok()
    }
    if let Some(n) = unsigned(v, u64::from_str_radix) {
        return Some(Resolved::U64(n));
    }
    if let Some(n) = negative(v, i64::from_str_radix) {
        return Some(Resolved::I64(n));
    }
    if let Some(n) = unsigned(v, u128::from_str_radix) {
        return Some(Resolved::U128(n));
    }
    negative(v, i128::from_str_radix).map(Resolved::I128)
}

fn parse_f64(v: &str) -> Option<f64> {
    let unpositive = match v.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => return None,
        Some(u) => u,
        None => v,
    };
    if let ".inf" | ".Inf" | ".INF" = unpositive {
        return Some(f64::INFINITY);
    }
    if let "-.inf" | "-.Inf" | "-.INF" = v {
        return Some(f64::NEG_INFINITY);
    }
    if let ".nan" | ".NaN" | ".NAN" = v {
        return Some(f64::NAN.copysign(1.0));
    }
    unpositive.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Leading zeros then digits is a string in YAML 1.2.
fn digits_but_not_number(v: &str) -> bool {
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    v.len() > 1 && v.starts_with('0') && v[1..].bytes().all(|b| b.is_ascii_digit())
}

/// A step of a path, owned (tests make paths from the index to compare it with the walk).
#[cfg(test)]
#[derive(Debug, Clone)]
pub enum Probe {
    Key(String),
    KeyName(String),
    Index(usize),
}

#[cfg(test)]
impl Probe {
    pub fn seg(&self) -> Seg<'_> {
        match self {
            Probe::Key(k) => Seg::Key(k),
            Probe::KeyName(k) => Seg::KeyName(k),
            Probe::Index(i) => Seg::Index(*i),
        }
    }
}

#[cfg(test)]
impl Index {
    /// Paths to every node, up to a few levels: each key as it reads and as it is written,
    /// each item and one past the last, and a missing key.
    pub fn probes(&self) -> Vec<Vec<Probe>> {
        let mut out = Vec::new();
        if let Some(root) = self.root {
            self.probe(root, &mut Vec::new(), &mut out);
        }
        out
    }

    fn probe(&self, id: usize, path: &mut Vec<Probe>, out: &mut Vec<Vec<Probe>>) {
        out.push(path.clone());
        if path.len() >= 5 {
            return;
        }
        let mut go = |this: &Self, step: Probe, next: Option<usize>, path: &mut Vec<Probe>| {
            path.push(step);
            match next {
                Some(n) => this.probe(n, path, out),
                None => out.push(path.clone()),
            }
            path.pop();
        };
        match &self.nodes[self.target(id)].kind {
            Kind::Seq(items) => {
                for (i, &item) in items.iter().enumerate() {
                    go(self, Probe::Index(i), Some(item), path);
                }
                go(self, Probe::Index(items.len()), None, path);
            }
            Kind::Map(map) => {
                for &(key, value) in &map.entries {
                    let mut texts = Vec::new();
                    if let KeyText::Text(t) = self.key_text(key, false) {
                        texts.push(t);
                    }
                    if let Kind::Scalar(s) = &self.nodes[self.target(key)].kind {
                        texts.push(String::from_utf8_lossy(&s.value).into_owned());
                    }
                    for t in texts {
                        go(self, Probe::KeyName(t.clone()), None, path);
                        go(self, Probe::Key(t), value, path);
                    }
                }
                go(self, Probe::Key("nope".into()), None, path);
            }
            _ => {}
        }
    }
}
