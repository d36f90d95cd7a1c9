//! YAML files: reading the settings' section into a [`Raw`] value, and finding the line of
//! a key for error messages.
//!
//! serde_yaml's value type keeps no positions, so a key's line is found on demand (only
//! when there is an error to report) by deserializing the text again with a seed that
//! fails at that key: serde_yaml attaches the position of the event being read to an error
//! raised there.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::redact::redact_text;
use crate::schema::Scalar;

use super::tree::Raw;

/// Parses a YAML document. Returns the whole document, or `Err((line, reason))`.
pub(crate) fn parse(text: &str) -> Result<serde_yaml::Value, (Option<usize>, String)> {
    let mut doc = serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        // serde_yaml's messages may quote the input; keep them, redacted.
        (line, redact_text(&e.to_string()).into_owned())
    })?;
    // Merge keys (`<<: *anchor`) are applied, so that a section assembled from anchors
    // is read as the operator sees it.
    doc.apply_merge().map_err(|e| {
        (
            e.location().map(|l| l.line()),
            redact_text(&e.to_string()).into_owned(),
        )
    })?;
    Ok(doc)
}

/// Converts a YAML value, keeping keys as the file wrote them.
pub(crate) fn to_raw(value: serde_yaml::Value) -> Raw {
    use serde_yaml::Value;
    match value {
        Value::Null => Raw::Null,
        Value::Bool(b) => Raw::Scalar(Scalar::Bool(b)),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Raw::Scalar(Scalar::Int(i128::from(i))),
            (_, Some(u), _) => Raw::Scalar(Scalar::Int(i128::from(u))),
            (_, _, Some(x)) => Raw::Scalar(Scalar::Float(x)),
            _ => Raw::Unsupported("this number is not supported here"),
        },
        Value::String(s) => Raw::Scalar(Scalar::Text(s)),
        Value::Sequence(_) => Raw::Seq,
        Value::Tagged(_) => Raw::Unsupported("YAML tags are not supported here"),
        Value::Mapping(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Raw::Unsupported("a mapping key must be text"),
                };
                entries.push((key, to_raw(v)));
            }
            Raw::Map(entries)
        }
    }
}

/// The 1-based line of the key at `path` (keys as written in the file), if found.
pub(crate) fn line_of(text: &str, path: &[String]) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    let de = serde_yaml::Deserializer::from_str(text);
    match (Locate { path }).deserialize(de) {
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| l.line()),
        _ => None,
    }
}

const FOUND: &str = "\u{0}located";

struct Locate<'a> {
    path: &'a [String],
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((target, rest)) = self.path.split_first() else {
            return Ok(());
        };
        while let Some(hit) = map.next_key_seed(Key {
            target,
            last: rest.is_empty(),
        })? {
            if hit {
                return map.next_value_seed(Locate { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// Reads one key; fails (to capture the position) when it is the last key of the path.
struct Key<'a> {
    target: &'a str,
    last: bool,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl Key<'_> {
    fn check<E: de::Error>(&self, key: &str) -> Result<bool, E> {
        match (key == self.target, self.last) {
            (true, true) => Err(E::custom(FOUND)),
            (hit, _) => Ok(hit),
        }
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.check(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.check(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "app: 1\nproxy:\n  enabled: true\n  default:\n    http:\n      url: x\n      timeout_secnds: 3\n";

    fn p(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn lines_of_keys() {
        assert_eq!(line_of(DOC, &p(&["proxy"])), Some(2));
        assert_eq!(line_of(DOC, &p(&["proxy", "enabled"])), Some(3));
        assert_eq!(
            line_of(DOC, &p(&["proxy", "default", "http", "url"])),
            Some(6)
        );
        assert_eq!(
            line_of(DOC, &p(&["proxy", "default", "http", "timeout_secnds"])),
            Some(7)
        );
        assert_eq!(line_of(DOC, &p(&["proxy", "nope"])), None);
        assert_eq!(line_of(DOC, &[]), None);
    }
}
