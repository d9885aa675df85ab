//! Where each field of a kubelet config file is (its line), and a parser's error told by
//! its position alone: a finding never quotes the file.

use std::collections::BTreeMap;
use std::fmt;

use super::join;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Where each field of a file is: its path (`providers[0].matchImages[1]`, as in a finding)
/// to its 1-based line. Read by a second parse of the text into a tree of spans, so the
/// checks can keep to plain values.
#[derive(Debug, Default)]
pub(super) struct Lines(BTreeMap<String, usize>);

impl Lines {
    pub(super) fn of(text: &str) -> Lines {
        let mut map = BTreeMap::new();
        if let Ok(node) = serde_saphyr::from_str::<Spanned<Node>>(text) {
            walk(&node.value, "", &mut map);
        }
        Lines(map)
    }

    /// The line of `path`, else of the nearest field that holds it.
    pub(super) fn line(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.0.get(path) {
                return Some(*line);
            }
            if path.is_empty() {
                return None;
            }
            path = &path[..path.rfind(['.', '[']).unwrap_or(0)];
        }
    }
}

fn walk(node: &Node, at: &str, map: &mut BTreeMap<String, usize>) {
    let mut visit = |path: String, line: u64, value: &Node| {
        if line > 0 {
            map.entry(path.clone()).or_insert(line as usize);
        }
        walk(value, &path, map);
    };
    match node {
        Node::Leaf => {}
        Node::List(items) => {
            for (i, v) in items.iter().enumerate() {
                visit(format!("{at}[{i}]"), v.referenced.line(), &v.value);
            }
        }
        Node::Map(entries) => {
            for (k, v) in entries {
                visit(join(at, &k.value.0), k.referenced.line(), &v.value);
            }
        }
    }
}

/// A YAML node with the spans of its entries and nothing of its scalars.
enum Node {
    Leaf,
    List(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
}

/// A mapping key (a scalar) as text.
struct Key(String);

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML node")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key(String::new()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

/// A parser's error in pullcred's words: where, never what (its message quotes the input).
pub(super) fn syntax_error(e: &serde_saphyr::Error) -> (Option<usize>, String) {
    match e.location().filter(|l| l.line() > 0) {
        Some(l) => (
            Some(l.line() as usize),
            format!(
                "not YAML (nor JSON): a syntax error at column {}",
                l.column()
            ),
        ),
        None => (None, "not YAML (nor JSON)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_each_field_and_fall_back_to_the_one_that_holds_it() {
        let text = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: pullcred\n    matchImages:\n      - \"a.example.com\"\n      - b.example.com\n    tokenAttributes:\n      cacheType: Token\n";
        let lines = Lines::of(text);
        for (path, line) in [
            ("apiVersion", Some(1)),
            ("providers", Some(3)),
            ("providers[0]", Some(4)),
            ("providers[0].name", Some(4)),
            ("providers[0].matchImages[1]", Some(7)),
            ("providers[0].tokenAttributes.cacheType", Some(9)),
            // Missing fields: the line of the mapping that should hold them.
            (
                "providers[0].tokenAttributes.requireServiceAccount",
                Some(8),
            ),
            ("providers[0].defaultCacheDuration", Some(4)),
            ("", None),
        ] {
            assert_eq!(lines.line(path), line, "{path}");
        }
        // JSON is YAML, positions included.
        let json = "{\n  \"kind\": \"x\",\n  \"providers\": [\n    {\"name\": \"p\"}\n  ]\n}\n";
        let lines = Lines::of(json);
        assert_eq!(lines.line("kind"), Some(2));
        assert_eq!(lines.line("providers[0].name"), Some(4));
    }
}
