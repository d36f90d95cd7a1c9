//! The value trees of a load: [`Raw`], a source's values as written, and [`Node`], the
//! checked tree every source is read into and merged, leaf by leaf, with each leaf's
//! [`Origin`]. Nothing here reads a source or knows the schema.

use std::collections::BTreeMap;

use crate::settings::schema::{LeafValue, Scalar};

use super::origin::{KeyPath, Origin, Origins};

/// A value as a source holds it, before the schema is applied.
#[derive(Debug)]
pub(crate) enum Raw {
    Null,
    Scalar(Scalar),
    Map(Vec<Entry>),
    Seq(Vec<Raw>),
    /// Something the source cannot express as a setting (a YAML tag, a non-text key, ...):
    /// the message saying so.
    Unsupported(&'static str),
}

/// One key of a mapping, with its line where the source has lines.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) line: Option<usize>,
    pub(crate) value: Raw,
}

/// A checked value: leaves read by their type, struct and map keys final.
pub(crate) enum Node {
    Leaf(Box<dyn LeafValue>, Origin),
    Map(BTreeMap<String, Node>, Origin),
    List(Vec<Node>, Origin),
    /// A value that was given but rejected (its error is already recorded): it counts as
    /// present, so it is not reported missing as well.
    Invalid,
}

impl Node {
    /// An empty mapping.
    pub(crate) fn map(origin: Origin) -> Self {
        Node::Map(BTreeMap::new(), origin)
    }

    /// Puts `over` on top of `self`, leaf by leaf (a list is a leaf: replaced whole).
    pub(crate) fn merge(&mut self, over: Node) {
        match (self, over) {
            (Node::Map(base, _), Node::Map(over, _)) => {
                for (k, v) in over {
                    match base.get_mut(&k) {
                        Some(existing) => existing.merge(v),
                        None => {
                            base.insert(k, v);
                        }
                    }
                }
            }
            (base, over) => *base = over,
        }
    }

    /// Whether the tree holds any value.
    pub(crate) fn has_leaves(&self) -> bool {
        match self {
            Node::Leaf(..) => true,
            Node::List(items, _) => items.iter().any(Node::has_leaves),
            Node::Map(entries, _) => entries.values().any(Node::has_leaves),
            Node::Invalid => false,
        }
    }

    /// The origin of every leaf, by path.
    pub(crate) fn origins(&self) -> Origins {
        fn walk(node: &Node, path: &mut KeyPath, out: &mut Origins) {
            match node {
                Node::Leaf(_, origin) => out.insert(path.clone(), origin.clone()),
                Node::List(items, _) => {
                    for (i, item) in items.iter().enumerate() {
                        path.push(i.to_string());
                        walk(item, path, out);
                        path.pop();
                    }
                }
                Node::Map(entries, _) => {
                    for (key, child) in entries {
                        path.push(key.clone());
                        walk(child, path, out);
                        path.pop();
                    }
                }
                Node::Invalid => {}
            }
        }
        let mut out = Origins::default();
        walk(self, &mut KeyPath::root(), &mut out);
        out
    }
}
