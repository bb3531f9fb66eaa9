//! Splitting a task file into front matter and body, and reading the front matter into raw
//! values for the known keys. serde-saphyr is the parser of record; a strict fast path reads
//! the one-line-per-key layout kanban-md writes (anything else goes to serde-saphyr), because a
//! board of 10,000 tasks must load in well under 100 ms. Also splits the front matter text into
//! per-key chunks so a rewrite keeps untouched keys, unknown keys and comments byte for byte.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The known front matter keys, in the order kanban-md writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Id,
    Title,
    Status,
    Priority,
    Created,
    Updated,
    Started,
    Completed,
    Assignee,
    Tags,
    Due,
    Estimate,
    Parent,
    DependsOn,
    Blocked,
    BlockReason,
    ClaimedBy,
    ClaimedAt,
    Class,
}

impl Field {
    pub const ALL: [Field; 19] = [
        Field::Id,
        Field::Title,
        Field::Status,
        Field::Priority,
        Field::Created,
        Field::Updated,
        Field::Started,
        Field::Completed,
        Field::Assignee,
        Field::Tags,
        Field::Due,
        Field::Estimate,
        Field::Parent,
        Field::DependsOn,
        Field::Blocked,
        Field::BlockReason,
        Field::ClaimedBy,
        Field::ClaimedAt,
        Field::Class,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Title => "title",
            Field::Status => "status",
            Field::Priority => "priority",
            Field::Created => "created",
            Field::Updated => "updated",
            Field::Started => "started",
            Field::Completed => "completed",
            Field::Assignee => "assignee",
            Field::Tags => "tags",
            Field::Due => "due",
            Field::Estimate => "estimate",
            Field::Parent => "parent",
            Field::DependsOn => "depends_on",
            Field::Blocked => "blocked",
            Field::BlockReason => "block_reason",
            Field::ClaimedBy => "claimed_by",
            Field::ClaimedAt => "claimed_at",
            Field::Class => "class",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    fn is_list(self) -> bool {
        matches!(self, Field::Tags | Field::DependsOn)
    }
}

/// A known key's value as text: a scalar (`None` for null) or a list of scalars.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Scalar(Option<String>),
    List(Vec<String>),
}

/// The front matter's top-level keys in order, and the raw values of the known ones.
#[derive(Debug, Default, PartialEq)]
pub struct RawFront {
    pub keys: Vec<String>,
    pub known: Vec<(Field, RawValue)>,
    /// [`TIMEOUT_KEY`]'s value when it is a scalar.
    pub timeout: Option<String>,
}

/// batty's own key, unknown to kanban-md (kept as it keeps any unknown key): how long an
/// attempt at the task may take (`45m`), instead of `supervisor.task_timeout`.
pub const TIMEOUT_KEY: &str = "timeout";

/// A task file cut at its front matter delimiters.
#[derive(Debug)]
pub struct Split<'a> {
    /// The front matter text, each line ending in `\n`.
    pub front: &'a str,
    /// Everything after the closing `---\n`, exactly as in the file.
    pub tail: &'a str,
    /// The body: the tail without its leading blank lines (as kanban-md reads it).
    pub body: &'a str,
}

/// A problem at a 1-based line of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

fn fail<T>(line: usize, reason: impl Into<String>) -> Result<T, LineError> {
    Err(LineError {
        line,
        reason: reason.into(),
    })
}

/// Splits a task file as kanban-md does: it starts with `---\n` and the front matter ends at
/// the next line that is exactly `---`.
pub fn split(text: &str) -> Result<Split<'_>, LineError> {
    if text.starts_with("---\r\n") {
        return fail(
            1,
            "the file has CRLF line endings; kanban-md reads only LF (`\\n`) files",
        );
    }
    let Some(rest) = text.strip_prefix("---\n") else {
        return fail(1, "the file does not start with `---` (YAML front matter)");
    };
    let (front, tail) = if let Some(idx) = rest.find("\n---\n") {
        (&rest[..idx + 1], &rest[idx + 5..])
    } else if rest.ends_with("\n---") {
        (&rest[..rest.len() - 3], "")
    } else if let Some(tail) = rest.strip_prefix("---\n") {
        ("", tail)
    } else {
        return fail(1, "the front matter is not closed by a `---` line");
    };
    if let Some(pos) = front.find('\r') {
        let line = 2 + front[..pos].matches('\n').count();
        return fail(
            line,
            "the front matter has CRLF line endings; kanban-md reads only LF (`\\n`) files",
        );
    }
    Ok(Split {
        front,
        tail,
        body: tail.trim_start_matches('\n'),
    })
}

/// Reads the front matter: the fast path when the layout is simple, serde-saphyr otherwise.
/// Lines in errors are lines of the whole file (the front matter starts on line 2).
pub fn parse(front: &str) -> Result<RawFront, LineError> {
    match parse_fast(front) {
        Some(raw) => Ok(raw),
        None => parse_saphyr(front),
    }
}

/// The parser of record.
pub fn parse_saphyr(front: &str) -> Result<RawFront, LineError> {
    if front.trim().is_empty() {
        return Ok(RawFront::default());
    }
    // kanban-md reads YAML 1.2: `yes` is a word, and `.inf` under a key batty does not know
    // must not make the whole task unreadable.
    let options = serde_saphyr::options! {
        strict_booleans: true,
        non_finite_float_policy: serde_saphyr::options::NonFiniteFloatPolicy::AsString,
    };
    let raw: Option<RawFront> =
        serde_saphyr::from_str_with_options(front, options).map_err(|e| {
            let (line, reason) = crate::config::yaml_error(&e);
            LineError {
                line: line.map_or(1, |l| l as usize + 1),
                reason,
            }
        })?;
    Ok(raw.unwrap_or_default())
}

impl<'de> de::Deserialize<'de> for RawFront {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FrontVisitor;
        impl<'de> Visitor<'de> for FrontVisitor {
            type Value = RawFront;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of front matter keys")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFront, A::Error> {
                let mut raw = RawFront::default();
                while let Some(key) = map.next_key::<String>()? {
                    match Field::from_name(&key) {
                        Some(field) if field.is_list() => {
                            let ListOrScalar(items) = map.next_value()?;
                            raw.known.push((field, RawValue::List(items)));
                        }
                        Some(field) => {
                            let value: Option<String> = map.next_value()?;
                            raw.known.push((field, RawValue::Scalar(value)));
                        }
                        None if key == TIMEOUT_KEY => {
                            let AnyScalar(value) = map.next_value()?;
                            raw.timeout = value;
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    raw.keys.push(key);
                }
                Ok(raw)
            }
        }
        d.deserialize_map(FrontVisitor)
    }
}

/// Any value: a scalar as text, anything else (a list, a mapping, null) as `None`.
struct AnyScalar(Option<String>);

impl<'de> de::Deserialize<'de> for AnyScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = AnyScalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AnyScalar, E> {
                Ok(AnyScalar(Some(v.to_owned())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AnyScalar, E> {
                Ok(AnyScalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AnyScalar, E> {
                Ok(AnyScalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AnyScalar, E> {
                Ok(AnyScalar(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<AnyScalar, E> {
                Ok(AnyScalar(Some(v.to_string())))
            }
            fn visit_none<E: de::Error>(self) -> Result<AnyScalar, E> {
                Ok(AnyScalar(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<AnyScalar, E> {
                Ok(AnyScalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyScalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(AnyScalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyScalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyScalar(None))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// A list key written as a sequence, a single scalar, or null.
struct ListOrScalar(Vec<String>);

impl<'de> de::Deserialize<'de> for ListOrScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = ListOrScalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of scalars")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListOrScalar, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Option<String>>()? {
                    items.extend(item);
                }
                Ok(ListOrScalar(items))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListOrScalar, E> {
                Ok(ListOrScalar(vec![v.to_owned()]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ListOrScalar, E> {
                Ok(ListOrScalar(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ListOrScalar, E> {
                Ok(ListOrScalar(vec![v.to_string()]))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ListOrScalar, E> {
                Ok(ListOrScalar(vec![v.to_string()]))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ListOrScalar, E> {
                Ok(ListOrScalar(vec![v.to_string()]))
            }
            fn visit_none<E: de::Error>(self) -> Result<ListOrScalar, E> {
                Ok(ListOrScalar(Vec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ListOrScalar, E> {
                Ok(ListOrScalar(Vec::new()))
            }
        }
        d.deserialize_any(ListVisitor)
    }
}

/// The fast path: every line is `key: scalar`, `key:` or a `- scalar` list item under such a
/// key, with plain or simply quoted scalars. Returns `None` for anything else.
pub fn parse_fast(front: &str) -> Option<RawFront> {
    if !front.is_empty() && !front.ends_with('\n') {
        return None;
    }
    let mut raw = RawFront::default();
    let mut lines = front.lines().peekable();
    while let Some(line) = lines.next() {
        if has_unusual_chars(line) {
            return None;
        }
        let (key, rest) = line.split_once(':')?;
        if !is_simple_key(key) || raw.keys.iter().any(|k| k == key) {
            return None;
        }
        let value = if rest.is_empty() {
            let mut items = Vec::new();
            let mut indent = None;
            while let Some(next) = lines.peek() {
                if !next.starts_with(' ') {
                    break;
                }
                if has_unusual_chars(next) {
                    return None;
                }
                let item = next.trim_start_matches(' ');
                let depth = next.len() - item.len();
                if *indent.get_or_insert(depth) != depth {
                    return None;
                }
                items.push(fast_scalar(
                    item.strip_prefix("- ")?.trim_start_matches(' '),
                )??);
                lines.next();
            }
            if items.is_empty() {
                RawValue::Scalar(None)
            } else {
                RawValue::List(items)
            }
        } else {
            let value = fast_scalar(rest.strip_prefix(' ')?.trim_start_matches(' '))?;
            RawValue::Scalar(value)
        };
        if let Some(field) = Field::from_name(key) {
            let value = match (field.is_list(), value) {
                (true, RawValue::Scalar(Some(s))) if resolves_to_non_string(&s) => return None,
                (true, RawValue::Scalar(s)) => RawValue::List(s.into_iter().collect()),
                (false, RawValue::List(_)) => return None,
                (_, v) => v,
            };
            raw.known.push((field, value));
        } else if key == TIMEOUT_KEY
            && let RawValue::Scalar(value) = value
        {
            raw.timeout = value;
        }
        raw.keys.push(key.to_owned());
    }
    Some(raw)
}

fn has_unusual_chars(line: &str) -> bool {
    line.chars().any(|c| {
        c < ' '
            || c == '\u{7f}'
            || ('\u{80}'..='\u{9f}').contains(&c)
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
    })
}

fn is_simple_key(key: &str) -> bool {
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
}

/// A scalar on one line: `Some(None)` for null, `Some(Some(text))`, or `None` when only the full
/// parser can say.
fn fast_scalar(v: &str) -> Option<Option<String>> {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Some(None),
        _ => {}
    }
    if v.starts_with(' ') || v.ends_with(' ') {
        return None;
    }
    if let Some(inner) = v.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        if inner.contains(['"', '\\']) {
            return None;
        }
        return Some(Some(inner.to_owned()));
    }
    if let Some(inner) = v.strip_prefix('\'') {
        let inner = inner.strip_suffix('\'')?;
        let unescaped = inner.replace("''", "'");
        if unescaped.matches('\'').count() * 2 != inner.matches('\'').count() {
            return None;
        }
        return Some(Some(unescaped));
    }
    let first = v.chars().next()?;
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || v.contains(": ") || v.contains(" #") {
        return None;
    }
    if v.ends_with(':') {
        return None;
    }
    Some(Some(v.to_owned()))
}

/// A plain scalar a YAML reader may take for a bool or a number written some other way
/// (`yes`, `01`, `1e3`, `.inf`). Read into a string they stay as written, but a list key
/// given one bare scalar is read as any value, so the full parser decides what it becomes.
fn resolves_to_non_string(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) {
        return true;
    }
    let canonical_int = v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
    let numberish = v.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '.'));
    numberish && !canonical_int
}

/// One top-level key of the front matter as written: comment and blank lines before it, and
/// its own lines (key line and continuation lines).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub key: String,
    pub leading: String,
    pub text: String,
}

/// The front matter cut into chunks, one per top-level key, plus comment lines after the last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub chunks: Vec<Chunk>,
    pub trailer: String,
}

/// Cuts `front` into chunks that match `keys` (the keys the parser found, in order); `None`
/// when the text cannot be cut that way (flow mappings over several lines, complex keys).
pub fn layout(front: &str, keys: &[String]) -> Option<Layout> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut pending = String::new();
    for line in front.split_inclusive('\n') {
        let starts_key = !line.starts_with([' ', '\t', '#', '\n']);
        if starts_key {
            chunks.push(Chunk {
                key: String::new(),
                leading: std::mem::take(&mut pending),
                text: line.to_owned(),
            });
        } else if line.starts_with(['#', '\n']) || line.trim().is_empty() {
            pending.push_str(line);
        } else {
            let current = chunks.last_mut()?;
            current.text.push_str(&pending);
            pending.clear();
            current.text.push_str(line);
        }
    }
    if chunks.len() != keys.len() {
        return None;
    }
    for (chunk, key) in chunks.iter_mut().zip(keys) {
        let text = chunk.text.as_str();
        let plain = text.starts_with(key.as_str()) && text[key.len()..].starts_with(':');
        let quoted = text.starts_with(['"', '\'']);
        if !plain && !quoted {
            return None;
        }
        chunk.key = key.clone();
    }
    Some(Layout {
        chunks,
        trailer: pending,
    })
}

/// The 1-based file line of `key` in the front matter (for problems found after parsing).
pub fn line_of_key(front: &str, key: &str) -> usize {
    front
        .lines()
        .position(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .map_or(1, |i| i + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_kanban_md() {
        let s = split("---\nid: 1\n---\n\nBody\n").unwrap();
        assert_eq!(s.front, "id: 1\n");
        assert_eq!(s.tail, "\nBody\n");
        assert_eq!(s.body, "Body\n");
        let s = split("---\nid: 1\n---").unwrap();
        assert_eq!((s.front, s.tail), ("id: 1\n", ""));
        assert_eq!(split("id: 1\n").unwrap_err().line, 1);
        assert!(
            split("---\nid: 1\n")
                .unwrap_err()
                .reason
                .contains("not closed")
        );
        assert!(
            split("---\r\nid: 1\r\n---\r\n")
                .unwrap_err()
                .reason
                .contains("CRLF")
        );
        assert_eq!(split("---\nid: 1\ntitle: x\r\n---\n").unwrap_err().line, 3);
    }

    #[test]
    fn fast_path_agrees_with_saphyr_on_kanban_md_output() {
        let front = "id: 3\ntitle: 'it''s: done'\nstatus: todo\npriority: \"yes\"\n\
                     created: 2026-02-01T12:00:00Z\ntags:\n    - a b\n    - \"1\"\n\
                     depends_on:\n    - 1\nblocked: true\ntype: story\nempty:\n";
        let fast = parse_fast(front).expect("simple layout");
        assert_eq!(fast, parse_saphyr(front).unwrap());
        assert_eq!(fast.keys.len(), 10);
        assert!(
            fast.known
                .contains(&(Field::Title, RawValue::Scalar(Some("it's: done".into()))))
        );
    }

    #[test]
    fn fast_path_declines_what_it_does_not_know() {
        for front in [
            "title: |\n    a\n",
            "tags: [a, b]\n",
            "title: a # comment\n",
            "# comment\nid: 1\n",
            "title: \"a\\tb\"\n",
            "title: &x a\n",
            "x:\n    y: 1\n",
            "\"quoted\": 1\n",
            "id: 1\nid: 2\n",
            "title: multi\n  line\n",
        ] {
            assert!(parse_fast(front).is_none(), "{front:?}");
        }
    }

    #[test]
    fn saphyr_errors_carry_file_lines() {
        let err = parse("id: 1\ntitle: [a\n").unwrap_err();
        assert!(err.line >= 3, "{err:?}");
        let err = parse("id: 1\nid: 2\n").unwrap_err();
        assert_eq!(err.line, 3, "{err:?}");
        assert!(err.reason.contains("duplicate"), "{err:?}");
    }

    #[test]
    fn layout_keeps_comments_and_continuations() {
        let front =
            "# top\nid: 1\ntags:\n    - a\n# inside\n    - b\nx: |\n    text\n\n    more\n# end\n";
        let raw = parse(front).unwrap();
        let layout = layout(front, &raw.keys).unwrap();
        assert_eq!(layout.chunks.len(), 3);
        assert_eq!(layout.chunks[0].leading, "# top\n");
        assert_eq!(layout.chunks[1].text, "tags:\n    - a\n# inside\n    - b\n");
        assert_eq!(layout.chunks[2].text, "x: |\n    text\n\n    more\n");
        assert_eq!(layout.trailer, "# end\n");
        let flow = "x: {a: 1,\n}\n";
        let raw = parse(flow).unwrap();
        assert!(super::layout(flow, &raw.keys).is_none());
    }

    proptest::proptest! {
        /// Whenever the fast path accepts a front matter, serde-saphyr reads the same.
        #[test]
        fn fast_path_never_disagrees_with_saphyr(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["id", "title", "tags", "x", "depends_on", "k-2"]),
                    proptest::collection::vec(
                        proptest::sample::select(vec![
                            "a", "1", " ", ":", ": ", "#", " #", "'", "''", "\"", "-", "- ", "[", "]",
                            "~", "null", "yes", "Off", "01", "1.5", ".inf", "\\", "é", "\t", "    - ", "\n    - ", "\n",
                        ]),
                        0..6,
                    ),
                ),
                0..5,
            )
        ) {
            let front: String = lines
                .iter()
                .map(|(k, v)| format!("{k}:{}\n", v.concat()))
                .collect();
            if let Some(fast) = parse_fast(&front) {
                let full = parse_saphyr(&front);
                proptest::prop_assert_eq!(Ok(fast), full, "front matter:\n{}", front);
            }
        }
    }
}
