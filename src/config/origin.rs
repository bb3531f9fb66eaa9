//! Where each effective setting comes from: its default, a line of `.batty/config.yml`, or an
//! environment variable. Keys are dotted paths (`supervisor.silence`, `agents.mybot.command`),
//! taken from the schema itself by serialising the config, so a new key is listed with no
//! change here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::Config;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Origin {
    /// The code's default (`"default"` in JSON).
    #[serde(serialize_with = "default_text")]
    Default,
    /// `path:line` of the config file.
    File { path: PathBuf, line: u64 },
    /// An environment variable that overrides the file.
    Env { env: String },
}

fn default_text<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("default")
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env { env } => write!(f, "${env}"),
        }
    }
}

/// One effective setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub key: String,
    pub value: serde_json::Value,
    pub origin: Origin,
}

/// Every setting of `config` (parsed from `text`, the file at `shown`) with its origin, in
/// schema order. `env` overrides are given as `(key, variable, value)`.
pub fn effective(
    config: &Config,
    text: Option<&str>,
    shown: &Path,
    env: &[(&str, &str, &str)],
) -> Vec<Entry> {
    let lines = text
        .and_then(|t| serde_saphyr::from_str::<KeyTree>(t).ok())
        .unwrap_or_default();
    let value = serde_json::to_value(config).unwrap_or_default();
    let mut out = Vec::new();
    flatten(&value, "", &mut out);
    out.into_iter()
        .map(|(key, value)| {
            let path: Vec<&str> = key.split('.').collect();
            let origin = match lines.line(&path) {
                Some(line) => Origin::File {
                    path: shown.to_owned(),
                    line,
                },
                None => Origin::Default,
            };
            let (value, origin) = match env.iter().find(|(k, _, _)| *k == key) {
                Some((_, var, v)) => (
                    serde_json::Value::String((*v).to_owned()),
                    Origin::Env {
                        env: (*var).to_owned(),
                    },
                ),
                None => (value, origin),
            };
            Entry { key, value, origin }
        })
        .collect()
}

/// A value as `batty config` and docs/config.md show it: strings bare, unset as `(unset)`,
/// anything else as compact JSON.
pub fn show_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "(unset)".to_owned(),
        serde_json::Value::String(s) => crate::text::one_line(s).into_owned(),
        other => crate::text::one_line(&other.to_string()).into_owned(),
    }
}

/// Every key of the schema with its default, as docs/config.md must list them: the
/// sections' keys, and under `agents.<name>.` the keys of one agent.
pub fn schema_defaults() -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    flatten(
        &serde_json::to_value(Config::default()).unwrap_or_default(),
        "",
        &mut out,
    );
    out.retain(|(k, _)| k != "agents");
    flatten(
        &serde_json::to_value(super::AgentConfig::default()).unwrap_or_default(),
        "agents.<name>",
        &mut out,
    );
    out
}

/// The leaves of a JSON value as dotted keys: objects are walked (an empty one is a leaf, as
/// `agents: {}` is), arrays and scalars are values.
pub fn flatten(
    value: &serde_json::Value,
    prefix: &str,
    out: &mut Vec<(String, serde_json::Value)>,
) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &key, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// The keys of a YAML file and the line each is on, read with the same parser as the config.
#[derive(Debug, Default)]
struct KeyTree(BTreeMap<String, (u64, KeyTree)>);

impl KeyTree {
    fn line(&self, path: &[&str]) -> Option<u64> {
        let (first, rest) = path.split_first()?;
        let (line, sub) = self.0.get(*first)?;
        if rest.is_empty() {
            Some(*line)
        } else {
            sub.line(rest)
        }
    }
}

impl<'de> Deserialize<'de> for KeyTree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyTree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

macro_rules! leaf {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<KeyTree, E> {
            Ok(KeyTree::default())
        })*
    };
}

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = KeyTree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyTree, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<serde_saphyr::Spanned<String>>()? {
            let value: KeyTree = map.next_value()?;
            out.insert(key.value, (key.referenced.line(), value));
        }
        Ok(KeyTree(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyTree, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyTree::default())
    }

    leaf!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<KeyTree, E> {
        Ok(KeyTree::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<KeyTree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_name_the_line_of_each_key() {
        let text =
            "# comment\nsupervisor:\n  silence: 150ms\n\nagents:\n  shell: { command: \"sh\" }\n";
        let config = Config::parse(Path::new("c.yml"), text).unwrap();
        let entries = effective(
            &config,
            Some(text),
            Path::new(".batty/config.yml"),
            &[("tmux.socket", "BATTY_TMUX_SOCKET", "/tmp/s")],
        );
        let get = |key: &str| entries.iter().find(|e| e.key == key).unwrap();
        let silence = get("supervisor.silence");
        assert_eq!(silence.value, "150ms");
        assert_eq!(silence.origin.to_string(), ".batty/config.yml:3");
        assert_eq!(get("supervisor.max_retries").origin, Origin::Default);
        assert_eq!(
            get("agents.shell.command").origin.to_string(),
            ".batty/config.yml:6"
        );
        assert_eq!(get("tmux.socket").origin.to_string(), "$BATTY_TMUX_SOCKET");
        assert_eq!(get("tmux.socket").value, "/tmp/s");
        assert_eq!(
            serde_json::to_value(&get("merge.gate").origin).unwrap(),
            "default"
        );
        assert_eq!(
            serde_json::to_value(&silence.origin).unwrap(),
            serde_json::json!({"path": ".batty/config.yml", "line": 3})
        );
    }
}
