//! The way [`super::locate`] found positions before the index (test only): walk to the node
//! through the `serde_yaml` deserializer and fail on purpose there, so that the parser stamps
//! the error with the node's position. It re-parses the file for every node, so it is kept
//! only as the reference the index is compared with.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{MAX_DEPTH, Scalar, Seg, too_deep, within};
use crate::diag::Pos;

/// Where the node at `path` starts, found by failing there; as `locate`.
pub fn locate(text: &str, path: &[Seg]) -> Pos {
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
