//! Hands the checked tree to serde: the typed settings are built straight from it.
//!
//! Leaves were read once by their [`SettingsLeaf`](crate::settings::schema::SettingsLeaf)
//! type while the tree was built; a leaf type whose `Deserialize` calls
//! [`deserialize_leaf`](crate::settings::schema::deserialize_leaf) asks for the magic
//! newtype [`LEAF_TOKEN`], and is offered that value through the
//! [`handoff`] instead of reading it again. An error a
//! `Deserialize` impl raises keeps the origin of the value it was reading.

use std::any::Any;
use std::fmt;

use serde::de::{self, Visitor};

use crate::settings::handoff::{self, LEAF_TOKEN};
use crate::settings::schema::{LeafValue, Scalar};

use super::node::Node;
use super::origin::Origin;

/// A serde error, with the origin of the value being read when it was raised.
#[derive(Debug)]
pub(crate) struct DeError {
    pub(crate) message: String,
    pub(crate) origin: Option<Origin>,
}

impl DeError {
    fn at(mut self, origin: &Origin) -> Self {
        if self.origin.is_none() {
            self.origin = Some(origin.clone());
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            origin: None,
        }
    }
}

pub(crate) struct NodeDeserializer(pub(crate) Node);

fn visit_scalar<'de, V: Visitor<'de>>(scalar: Scalar, visitor: V) -> Result<V::Value, DeError> {
    match scalar {
        Scalar::Bool(b) => visitor.visit_bool(b),
        Scalar::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
            (Ok(i), _) => visitor.visit_i64(i),
            (_, Ok(u)) => visitor.visit_u64(u),
            _ => visitor.visit_i128(i),
        },
        Scalar::Float(x) => visitor.visit_f64(x),
        Scalar::Text(t) => visitor.visit_string(t),
    }
}

impl<'de> de::Deserializer<'de> for NodeDeserializer {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Node::Leaf(value, origin) => {
                visit_scalar(value.to_scalar(), visitor).map_err(|e| e.at(&origin))
            }
            Node::Map(entries, origin) => visitor
                .visit_map(Entries {
                    entries: entries.into_iter(),
                    value: None,
                })
                .map_err(|e| e.at(&origin)),
            Node::List(items, origin) => visitor
                .visit_seq(Items(items.into_iter()))
                .map_err(|e| e.at(&origin)),
            Node::Invalid => Err(de::Error::custom("a rejected value")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Node::Leaf(value, origin) if name == LEAF_TOKEN => {
                let scalar = value.to_scalar();
                let result = handoff::offer(value.into_any(), || {
                    visitor.visit_newtype_struct(NodeDeserializer(Node::Leaf(
                        Box::new(ScalarLeaf(scalar)),
                        origin.clone(),
                    )))
                });
                result.map_err(|e| e.at(&origin))
            }
            node => visitor.visit_newtype_struct(NodeDeserializer(node)),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// A mapping's entries for serde. An error raised while a value is read (by its
/// `Deserialize`, or a `deserialize_with` function) keeps that value's origin.
struct Entries {
    entries: std::collections::btree_map::IntoIter<String, Node>,
    value: Option<Node>,
}

impl<'de> de::MapAccess<'de> for Entries {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(de::value::StringDeserializer::<DeError>::new(key))
            .map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("a value without its key"))?;
        deserialize_at(seed, value)
    }
}

/// `seed` read from `node`; an error raised meanwhile keeps the node's origin.
fn deserialize_at<'de, V: de::DeserializeSeed<'de>>(
    seed: V,
    node: Node,
) -> Result<V::Value, DeError> {
    let origin = match &node {
        Node::Leaf(_, origin) | Node::Map(_, origin) | Node::List(_, origin) => {
            Some(origin.clone())
        }
        Node::Invalid => None,
    };
    seed.deserialize(NodeDeserializer(node))
        .map_err(|e| match &origin {
            Some(origin) => e.at(origin),
            None => e,
        })
}

/// A list's items for serde.
struct Items(std::vec::IntoIter<Node>);

impl<'de> de::SeqAccess<'de> for Items {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.0
            .next()
            .map(|node| deserialize_at(seed, node))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A leaf given as its scalar form (what a leaf type that does not take its value typed
/// reads).
struct ScalarLeaf(Scalar);

impl LeafValue for ScalarLeaf {
    fn to_scalar(&self) -> Scalar {
        self.0.clone()
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use serde::de::Error as _;

    use super::DeError;

    /// Which `visit_*` a number reaches (a visitor of someone's own may have no others).
    struct Which;

    impl serde::de::Visitor<'_> for Which {
        type Value = &'static str;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number")
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok("i64")
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok("u64")
        }
    }

    #[test]
    fn integers_reach_the_visitor_as_i64_or_u64_as_other_formats_give_them() {
        use serde::de::Deserializer as _;
        let leaf = |i: i128| {
            super::NodeDeserializer(super::Node::Leaf(
                Box::new(super::ScalarLeaf(crate::settings::schema::Scalar::Int(i))),
                crate::settings::load::origin::Origin::settings(),
            ))
        };
        assert_eq!(leaf(-1).deserialize_any(Which).unwrap(), "i64");
        assert_eq!(
            leaf(i128::from(i64::MAX)).deserialize_any(Which).unwrap(),
            "i64"
        );
        assert_eq!(
            leaf(i128::from(u64::MAX)).deserialize_any(Which).unwrap(),
            "u64"
        );
    }

    #[test]
    fn an_error_displays_its_message() {
        // A `deserialize_with` function may wrap the error it was given by its `Display`.
        assert_eq!(
            DeError::custom("expected a port").to_string(),
            "expected a port"
        );
    }
}
