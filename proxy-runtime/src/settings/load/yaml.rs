//! YAML files: read with a bound on their size, parsed once per load (saphyr-parser's
//! events) into [`Raw`] values that keep the line of every key, and cut down to the
//! settings' section.
//!
//! Anchors are shared, not copied, while the document is parsed, and the top-level keys
//! that belong to the application are dropped as soon as they are read; aliases and merge
//! keys (`<<: *base`) are expanded only inside the settings' section, within a budget of
//! values. So neither a large application section nor an alias bomb can make a load use
//! more than a bounded amount of time and memory. Plain scalars are read by YAML 1.2's
//! core schema (`true`, `~`, `0x1E`, `1.5`, ...); quoted ones are text.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use crate::redact::redact_text;
use crate::settings::schema::Scalar;

use super::node::{Entry, Raw};

/// Largest YAML file read, in bytes.
pub(crate) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Deepest nesting accepted, aliases included, in the whole file (a bound on the depth of
/// the tree's recursion, serde_yaml's too).
const MAX_DEPTH: usize = 128;
/// Most values the settings' section may hold once aliases and merge keys are expanded.
pub(crate) const MAX_VALUES: usize = 100_000;

/// Why a YAML source could not be used: the 1-based line, where there is one, and what is
/// wrong (redacted: parser messages may quote the input).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) line: Option<usize>,
    pub(crate) reason: String,
}

impl Failure {
    fn new(line: Option<usize>, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }
}

/// Reads a YAML file as UTF-8 text, refusing one larger than [`MAX_FILE_BYTES`] (which
/// also ends a read of an endless file such as `/dev/zero`).
pub(crate) fn read_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the file is larger than {} MiB; a settings file is far smaller",
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// What a document holds for the settings.
#[derive(Debug)]
pub(crate) enum Section {
    /// The document is empty, or has no such top-level key.
    Absent,
    /// The settings' values, and the line of the section's key (none for a whole document).
    Found(Raw, Option<usize>),
}

/// Parses `text` and returns the value of its top-level key `section` (or the whole
/// document, for `None`), with aliases and merge keys applied.
pub(crate) fn section(text: &str, section: Option<&str>) -> Result<Section, Failure> {
    let Some((root, top_keys)) = parse(text, section)? else {
        return Ok(Section::Absent);
    };
    let mut budget = MAX_VALUES;
    let Some(name) = section else {
        return Ok(Section::Found(to_raw(&root, &mut budget)?, None));
    };
    let entries = match &*root {
        YNode::Map(entries) => entries,
        YNode::Scalar {
            text,
            plain: true,
            tag: None,
        } if is_null(text) => {
            return Ok(Section::Absent);
        }
        _ => {
            return Err(Failure::new(
                None,
                format!("expected a mapping with a `{name}:` key at the top"),
            ));
        }
    };
    let mut found = entries
        .iter()
        .filter(|(key, _)| key.text.as_deref() == Ok(name));
    if let Some((key, value)) = found.next() {
        if let Some((again, _)) = found.next() {
            return Err(Failure::new(
                Some(again.line),
                format!("`{name}` is given more than once at the top of the file"),
            ));
        }
        return Ok(Section::Found(to_raw(value, &mut budget)?, Some(key.line)));
    }
    // The section may come from a merge key at the top (`<<: *defaults`).
    if let Some((key, value)) = merged_entry(entries, name, 0, 0, &mut 0)? {
        return Ok(Section::Found(to_raw(value, &mut budget)?, Some(key.line)));
    }
    // A misspelled section would leave every setting at its default (proxies disabled):
    // an error, unless the file has the section too.
    if let Some((key, line)) = top_keys.iter().find(|(key, _)| near(key, name)) {
        return Err(Failure::new(
            Some(*line),
            format!(
                "no `{name}:` section, but `{key}:` is at the top: did you mean `{name}`? (if `{key}:` is your application's own, add an empty `{name}: {{}}`)"
            ),
        ));
    }
    Ok(Section::Absent)
}

/// Whether a top-level key looks like a misspelling of the section's name: the same in
/// another case, or within three edits and about as long (`proxies` for `proxy`, not
/// `pro` or `proxy_pool_size`).
fn near(key: &str, name: &str) -> bool {
    let about_as_long = key.len() + 1 >= name.len() && key.len() <= name.len() + 2;
    key != name
        && (key.eq_ignore_ascii_case(name)
            || (about_as_long && proxy_rules::edit_distance(&key.to_ascii_lowercase(), name) <= 3))
}

/// The entry `name` that a mapping gets from its merge keys, looked up without expanding
/// anything else. A chain of merges deeper than [`MAX_DEPTH`], or more than
/// [`MAX_VALUES`] mappings visited (merges of merges can branch), is an error at `line`
/// (the merge key at the top), not a section silently absent.
fn merged_entry<'a>(
    entries: &'a [(Key, Rc<YNode>)],
    name: &str,
    depth: usize,
    line: usize,
    visits: &mut usize,
) -> Result<Option<(&'a Key, &'a Rc<YNode>)>, Failure> {
    for (key, value) in entries.iter().filter(|(key, _)| key.merge) {
        let at = if depth == 0 { key.line } else { line };
        if depth >= MAX_DEPTH {
            return Err(too_deep(at));
        }
        let sources: Vec<&YNode> = match &**value {
            YNode::Seq(items) => items.iter().map(|i| &**i).collect(),
            other => vec![other],
        };
        for source in sources {
            let YNode::Map(source) = source else { continue };
            *visits += 1;
            if *visits > MAX_VALUES {
                return Err(Failure::new(
                    Some(at),
                    format!("the merge keys at the top reach more than {MAX_VALUES} mappings"),
                ));
            }
            if let Some((k, v)) = source.iter().find(|(k, _)| k.text.as_deref() == Ok(name)) {
                return Ok(Some((k, v)));
            }
            if let Some(found) = merged_entry(source, name, depth + 1, at, visits)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// A parsed node. Aliases share the node of their anchor.
#[derive(Debug)]
enum YNode {
    Scalar {
        text: String,
        plain: bool,
        tag: Option<Tag>,
    },
    Seq(Vec<Rc<YNode>>),
    Map(Vec<(Key, Rc<YNode>)>),
    /// A collection with a tag other than `!!map` or `!!seq`.
    Tagged,
}

/// A mapping key: its text (or why it cannot be a setting's key), its line, and whether it
/// is the merge key `<<`.
#[derive(Debug)]
struct Key {
    text: Result<String, &'static str>,
    line: usize,
    merge: bool,
}

/// A collection being parsed.
struct Frame {
    anchor: usize,
    tagged: bool,
    /// The height of the deepest child so far.
    height: usize,
    kind: FrameKind,
}

enum FrameKind {
    Seq(Vec<Rc<YNode>>),
    Map {
        entries: Vec<(Key, Rc<YNode>)>,
        key: Option<Key>,
    },
}

/// Parses the single document of `text`: its root, and the text and line of every
/// top-level key. With a section name, the other top-level values are dropped as soon as
/// they are read (their anchors are kept, for aliases in the section).
type Parsed = (Rc<YNode>, Vec<(String, usize)>);

fn parse(text: &str, section: Option<&str>) -> Result<Option<Parsed>, Failure> {
    let mut parser = Parser::new_from_str(text);
    let mut anchors: HashMap<usize, (Rc<YNode>, usize)> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(Rc<YNode>, usize)> = None;
    let mut top_keys = Vec::new();
    let mut documents = 0;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            Failure::new(
                Some(e.marker().line()),
                format!("invalid YAML: {}", redact_text(e.info())),
            )
        })?;
        let line = span.start.line();
        let done = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Failure::new(
                        Some(line),
                        "the file holds more than one YAML document",
                    ));
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = YNode::Scalar {
                    text: text.into_owned(),
                    plain: style == ScalarStyle::Plain,
                    tag: tag.map(|t| t.into_owned()),
                };
                Some((Rc::new(node), 0, anchor))
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some((node, height)) => Some((node.clone(), *height, 0)),
                None => {
                    return Err(Failure::new(
                        Some(line),
                        "an alias refers to the node that contains it",
                    ));
                }
            },
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(line));
                }
                let is_map = matches!(event, Event::MappingStart(..));
                let core = if is_map { "map" } else { "seq" };
                let tagged = tag
                    .as_ref()
                    .is_some_and(|t| !(t.is_yaml_core_schema() && t.suffix == core));
                stack.push(Frame {
                    anchor,
                    tagged,
                    height: 0,
                    kind: if is_map {
                        FrameKind::Map {
                            entries: Vec::new(),
                            key: None,
                        }
                    } else {
                        FrameKind::Seq(Vec::new())
                    },
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else {
                    return Err(Failure::new(
                        Some(line),
                        "invalid YAML: unbalanced collection",
                    ));
                };
                let height = frame.height + 1;
                if height > MAX_DEPTH {
                    return Err(too_deep(line));
                }
                let node = match (frame.tagged, frame.kind) {
                    (true, _) => YNode::Tagged,
                    (false, FrameKind::Seq(items)) => YNode::Seq(items),
                    (false, FrameKind::Map { entries, .. }) => YNode::Map(entries),
                };
                Some((Rc::new(node), height, frame.anchor))
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        let Some((node, height, anchor)) = done else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, (node.clone(), height));
        }
        let top_level = stack.len() == 1;
        match stack.last_mut() {
            None => root = Some((node, height)),
            Some(frame) => {
                frame.height = frame.height.max(height);
                match &mut frame.kind {
                    FrameKind::Seq(items) => items.push(node),
                    FrameKind::Map {
                        key: key @ None, ..
                    } => *key = Some(key_of(&node, &span)),
                    FrameKind::Map { entries, key } => {
                        let Some(key) = key.take() else { continue };
                        if top_level && let Ok(text) = &key.text {
                            top_keys.push((text.clone(), key.line));
                        }
                        let keep = !top_level
                            || key.merge
                            || section.is_none_or(|s| key.text.as_deref() == Ok(s));
                        if keep {
                            entries.push((key, node));
                        }
                    }
                }
            }
        }
    }
    Ok(root.map(|(node, _)| (node, top_keys)))
}

fn too_deep(line: usize) -> Failure {
    Failure::new(
        Some(line),
        format!("the YAML is nested deeper than {MAX_DEPTH} levels (aliases included)"),
    )
}

fn key_of(node: &YNode, span: &Span) -> Key {
    let line = span.start.line();
    match node {
        YNode::Scalar { text, plain, tag } => Key {
            text: match tag.as_ref().map(core_tag) {
                Some(None) => Err("YAML tags other than the core schema's are not supported here"),
                _ => Ok(text.clone()),
            },
            line,
            merge: *plain && tag.is_none() && text == "<<",
        },
        _ => Key {
            text: Err("a mapping key must be text"),
            line,
            merge: false,
        },
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Converts the section's nodes, expanding aliases and merge keys within `budget` values.
fn to_raw(node: &YNode, budget: &mut usize) -> Result<Raw, Failure> {
    if *budget == 0 {
        return Err(Failure::new(
            None,
            format!(
                "the settings expand to more than {MAX_VALUES} values (through aliases or merge keys); a settings file holds far fewer"
            ),
        ));
    }
    *budget -= 1;
    Ok(match node {
        YNode::Scalar { text, plain, tag } => scalar(text, *plain, tag.as_ref()),
        YNode::Seq(items) => Raw::Seq(
            items
                .iter()
                .map(|item| to_raw(item, budget))
                .collect::<Result<_, _>>()?,
        ),
        YNode::Tagged => {
            Raw::Unsupported("YAML tags other than the core schema's are not supported here")
        }
        YNode::Map(entries) => match entries.iter().find_map(|(key, _)| key.text.as_ref().err()) {
            Some(why) => Raw::Unsupported(why),
            None => Raw::Map(entries_of(entries, budget)?),
        },
    })
}

/// A mapping's entries: its own, then those of its merge keys (`<<: *a` or `<<: [*a, *b]`)
/// that it does not give itself, earlier merged mappings first.
fn entries_of(entries: &[(Key, Rc<YNode>)], budget: &mut usize) -> Result<Vec<Entry>, Failure> {
    let mut out = Vec::with_capacity(entries.len());
    let mut given = std::collections::HashSet::new();
    let mut merged: Vec<(&Key, &Rc<YNode>)> = Vec::new();
    for (key, value) in entries {
        if key.merge {
            merged.push((key, value));
            continue;
        }
        let text = key.text.clone().unwrap_or_default();
        given.insert(text.clone());
        out.push(Entry {
            key: text,
            line: Some(key.line),
            value: to_raw(value, budget)?,
        });
    }
    for (key, value) in merged {
        let sources: Vec<&YNode> = match &**value {
            YNode::Map(_) => vec![&**value],
            YNode::Seq(items) => items.iter().map(|i| &**i).collect(),
            _ => {
                return Err(Failure::new(
                    Some(key.line),
                    "a merge key `<<` takes a mapping or a list of mappings",
                ));
            }
        };
        for source in sources {
            if !matches!(source, YNode::Map(_)) {
                return Err(Failure::new(
                    Some(key.line),
                    "a merge key `<<` takes a mapping or a list of mappings",
                ));
            }
            let Raw::Map(source) = to_raw(source, budget)? else {
                return Err(Failure::new(
                    Some(key.line),
                    "a merged mapping must have text keys",
                ));
            };
            for entry in source {
                if given.insert(entry.key.clone()) {
                    out.push(entry);
                }
            }
        }
    }
    Ok(out)
}

/// The core-schema type a tag names (`!!str`, `!!int`, ...), or `None` for any other tag.
fn core_tag(tag: &Tag) -> Option<&str> {
    let core = ["str", "int", "bool", "null", "float", "map", "seq"];
    (tag.is_yaml_core_schema() && core.contains(&tag.suffix.as_str()))
        .then_some(tag.suffix.as_str())
}

/// A scalar by YAML 1.2's core schema: plain scalars may be null, booleans or numbers;
/// quoted ones are text. A core tag (`!!str 12`, `!!int "12"`) decides the type instead,
/// and a value that is not of that type is an error; other tags are not supported.
fn scalar(text: &str, plain: bool, tag: Option<&Tag>) -> Raw {
    let wrong = Raw::Unsupported("the value does not match its YAML tag");
    match tag.map(core_tag) {
        None if !plain => Raw::Scalar(Scalar::Text(text.to_owned())),
        None => resolve_plain(text),
        Some(Some("str")) => Raw::Scalar(Scalar::Text(text.to_owned())),
        Some(Some("null")) if is_null(text) => Raw::Null,
        Some(Some("bool")) => match boolean(text) {
            Some(b) => Raw::Scalar(Scalar::Bool(b)),
            None => wrong,
        },
        Some(Some("int")) => match integer(text) {
            Some(Some(i)) => Raw::Scalar(Scalar::Int(i)),
            _ => wrong,
        },
        Some(Some("float")) => {
            match float(text).or_else(|| integer(text).flatten().map(|i| i as f64)) {
                Some(x) => Raw::Scalar(Scalar::Float(x)),
                None => wrong,
            }
        }
        Some(Some(_)) => wrong,
        Some(None) => {
            Raw::Unsupported("YAML tags other than the core schema's are not supported here")
        }
    }
}

fn resolve_plain(text: &str) -> Raw {
    if is_null(text) {
        return Raw::Null;
    }
    if let Some(b) = boolean(text) {
        return Raw::Scalar(Scalar::Bool(b));
    }
    if let Some(int) = integer(text) {
        return match int {
            Some(i) => Raw::Scalar(Scalar::Int(i)),
            None => Raw::Unsupported("this integer is out of range"),
        };
    }
    if let Some(x) = float(text) {
        return Raw::Scalar(Scalar::Float(x));
    }
    Raw::Scalar(Scalar::Text(text.to_owned()))
}

fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// An integer of the core schema (`[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`), and, as
/// serde_yaml read them too, `0b[01]+` and a sign before `0x`, `0o` and `0b`:
/// `Some(None)` when it is one but does not fit.
fn integer(text: &str) -> Option<Option<i128>> {
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let radix = [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find_map(|(prefix, radix)| unsigned.strip_prefix(prefix).map(|d| (d, radix)));
    let (body, radix) = match radix {
        Some((body, radix)) => (body, radix),
        None => (unsigned, 10),
    };
    if !digits(body, radix) {
        return None;
    }
    Some(
        i128::from_str_radix(body, radix)
            .ok()
            .map(|i| if negative { -i } else { i }),
    )
}

/// A float of the core schema: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`,
/// `[-+]?.inf` and `.nan` in three spellings each.
fn float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let negative = text.starts_with('-');
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => all_digits(int) && all_digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && all_digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    // An integer was matched before; here a fraction or an exponent is needed.
    if mantissa_ok && exponent_ok && (frac.is_some() || exponent.is_some()) {
        text.parse::<f64>().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Raw {
        match section(text, Some("proxy")).unwrap() {
            Section::Found(raw, _) => raw,
            Section::Absent => panic!("no section in {text:?}"),
        }
    }

    fn keys_and_lines(raw: &Raw) -> Vec<(String, Option<usize>)> {
        match raw {
            Raw::Map(entries) => entries.iter().map(|e| (e.key.clone(), e.line)).collect(),
            other => panic!("not a mapping: {other:?}"),
        }
    }

    #[test]
    fn keys_keep_their_lines() {
        let doc = "app: 1\nproxy:\n  enabled: true\n  default:\n    http:\n      url: x\n";
        let Section::Found(raw, line) = section(doc, Some("proxy")).unwrap() else {
            panic!("absent")
        };
        assert_eq!(line, Some(2));
        assert_eq!(
            keys_and_lines(&raw),
            [
                ("enabled".to_owned(), Some(3)),
                ("default".to_owned(), Some(4))
            ]
        );
    }

    #[test]
    fn floats_by_the_core_schema_grammar() {
        for (text, want) in [
            ("1.5", 1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("+1.0", 1.0),
            ("-2.5e+2", -250.0),
            ("1.5E-3", 0.0015),
            ("1e3", 1000.0),
            (".5e1", 5.0),
        ] {
            assert_eq!(float(text), Some(want), "{text:?}");
        }
        for text in [
            ".", "e3", "1e", "1e+", "1ex", "1.5x", "1..5", "a.5", "1.a", "12", "+", ".e1",
            "1.5e1.5",
        ] {
            assert_eq!(float(text), None, "{text:?}");
        }
        assert!(float(".nan").unwrap().is_nan());
    }

    #[test]
    fn only_core_tags_decide_a_type() {
        let local = |suffix: &str| {
            let doc = format!("proxy: {{enabled: !{suffix} true}}\n");
            section(&doc, Some("proxy")).map(|s| match s {
                Section::Found(raw, _) => format!("{raw:?}"),
                Section::Absent => "absent".to_owned(),
            })
        };
        // `!bool` is a local tag that happens to end like a core one: not supported.
        let shown = local("bool").unwrap();
        assert!(shown.contains("Unsupported"), "{shown}");
        let shown = local("!bool").unwrap();
        assert!(shown.contains("Scalar(Scalar(true))"), "{shown}");
        assert!(matches!(scalar("~", true, None), Raw::Null));
        let null = |text: &str| format!("{:?}", found(&format!("proxy: {{a: !!null {text}}}\n")));
        assert!(null("~").contains("Null"), "{}", null("~"));
        assert!(null("yes").contains("Unsupported"), "{}", null("yes"));
    }

    #[test]
    fn core_schema_scalars() {
        let cases: [(&str, Raw); 12] = [
            ("true", Raw::Scalar(Scalar::Bool(true))),
            ("FALSE", Raw::Scalar(Scalar::Bool(false))),
            ("~", Raw::Null),
            ("", Raw::Null),
            ("0x1E", Raw::Scalar(Scalar::Int(30))),
            ("0o17", Raw::Scalar(Scalar::Int(15))),
            ("-12", Raw::Scalar(Scalar::Int(-12))),
            ("+7", Raw::Scalar(Scalar::Int(7))),
            ("1.5", Raw::Scalar(Scalar::Float(1.5))),
            ("2e3", Raw::Scalar(Scalar::Float(2000.0))),
            ("yes", Raw::Scalar(Scalar::Text("yes".into()))),
            ("1.2.3", Raw::Scalar(Scalar::Text("1.2.3".into()))),
        ];
        for (text, want) in cases {
            let got = scalar(text, true, None);
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{text:?}");
        }
        assert!(matches!(
            scalar("true", false, None),
            Raw::Scalar(Scalar::Text(_))
        ));
        assert!(matches!(
            scalar("99999999999999999999999999999999999999999", true, None),
            Raw::Unsupported(_)
        ));
    }

    #[test]
    fn core_tags_decide_the_type() {
        let doc = "proxy: {a: !!int '12', b: !!str 12, c: !!bool 'true', d: !!float 2, e: !!null ~, f: !!int x, g: !custom 1}\n";
        let Raw::Map(entries) = found(doc) else {
            panic!()
        };
        let shown: Vec<String> = entries.iter().map(|e| format!("{:?}", e.value)).collect();
        assert_eq!(
            shown,
            [
                "Scalar(Scalar(12))",
                "Scalar(Scalar(12))",
                "Scalar(Scalar(true))",
                "Scalar(Scalar(2.0))",
                "Null",
                "Unsupported(\"the value does not match its YAML tag\")",
                "Unsupported(\"YAML tags other than the core schema's are not supported here\")",
            ]
        );
        assert!(matches!(&entries[0].value, Raw::Scalar(Scalar::Int(12))));
        assert!(matches!(&entries[1].value, Raw::Scalar(Scalar::Text(_))));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let doc = "base: &base\n  url: a\n  timeout_seconds: 5\nproxy:\n  http:\n    <<: *base\n    url: b\n  ws: *base\n";
        let raw = found(doc);
        let Raw::Map(entries) = raw else { panic!() };
        let http = keys_and_lines(&entries[0].value);
        assert_eq!(
            http,
            [
                ("url".to_owned(), Some(7)),
                ("timeout_seconds".to_owned(), Some(3))
            ]
        );
        let Raw::Map(http) = &entries[0].value else {
            panic!()
        };
        assert!(matches!(&http[0].value, Raw::Scalar(Scalar::Text(t)) if t == "b"));
        assert_eq!(keys_and_lines(&entries[1].value).len(), 2);
    }

    #[test]
    fn aliases_cost_nothing_outside_the_section_and_a_budget_inside() {
        let mut doc = String::from("a: &a [");
        doc.push_str(&vec!["x"; 10_000].join(","));
        doc.push_str("]\nb: &b [");
        doc.push_str(&vec!["*a"; 100].join(","));
        doc.push_str("]\nc: &c {");
        doc.push_str(
            &(0..50)
                .map(|i| format!("k{i}: *b"))
                .collect::<Vec<_>>()
                .join(","),
        );
        doc.push_str("}\nproxy:\n  enabled: true\n");
        // Outside the section the aliases cost nothing: 50 aliases of 100 aliases of
        // 10,000 values are never expanded.
        let Section::Found(..) = section(&doc, Some("proxy")).unwrap() else {
            panic!()
        };
        // Inside, they are refused once the budget is spent: through a merge key, and
        // through a plain alias.
        for inside in ["proxy:\n  m: {<<: [*c]}\n", "proxy: *c\n"] {
            let bomb = doc.replace("proxy:\n  enabled: true\n", inside);
            let err = section(&bomb, Some("proxy")).unwrap_err();
            assert!(
                err.reason.contains("more than 100000 values"),
                "{inside}: {err:?}"
            );
        }
        let deep = {
            let mut d = String::from("l0: &l0 {v: [1]}\n");
            for i in 1..30 {
                d.push_str(&format!(
                    "l{i}: &l{i} {{a: *l{p}, b: *l{p}, c: *l{p}}}\n",
                    p = i - 1
                ));
            }
            d.push_str("proxy: *l29\n");
            d
        };
        let err = section(&deep, Some("proxy")).unwrap_err();
        assert!(err.reason.contains("more than 100000 values"), "{err:?}");
    }

    #[test]
    fn nesting_and_documents_are_bounded() {
        let deep = format!("proxy: {}{}", "[".repeat(200), "]".repeat(200));
        assert!(
            section(&deep, Some("proxy"))
                .unwrap_err()
                .reason
                .contains("deeper")
        );
        let mut chain = String::from("l0: &l0 [1]\n");
        for i in 1..150 {
            chain.push_str(&format!("l{i}: &l{i} [*l{}]\n", i - 1));
        }
        assert!(
            section(&chain, Some("proxy"))
                .unwrap_err()
                .reason
                .contains("deeper")
        );
        let two = "proxy: {}\n---\nproxy: {}\n";
        assert!(
            section(two, Some("proxy"))
                .unwrap_err()
                .reason
                .contains("more than one")
        );
        assert!(matches!(
            section("", Some("proxy")).unwrap(),
            Section::Absent
        ));
        assert!(matches!(
            section("app: 1\n", Some("proxy")).unwrap(),
            Section::Absent
        ));
        for misspelled in ["Proxy", "proxies", "prxy", "PROXY"] {
            let doc = format!("app: 1\n{misspelled}:\n  enabled: true\n");
            let err = section(&doc, Some("proxy")).unwrap_err();
            assert_eq!(err.line, Some(2), "{misspelled}");
            assert!(
                err.reason.contains("did you mean `proxy`?"),
                "{}",
                err.reason
            );
        }
        for unrelated in ["pro", "app", "proxy_pool_size"] {
            let doc = format!("{unrelated}: 1\n");
            assert!(
                matches!(section(&doc, Some("proxy")).unwrap(), Section::Absent),
                "{unrelated}"
            );
        }
        let with_both = "proxies: [a]\nproxy: {}\n";
        assert!(matches!(
            section(with_both, Some("proxy")).unwrap(),
            Section::Found(..)
        ));
        let twice = "proxy: {}\nproxy: {}\n";
        assert_eq!(section(twice, Some("proxy")).unwrap_err().line, Some(2));
    }
}
