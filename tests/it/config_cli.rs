//! `batty config` shows each effective value and where it came from, and docs/config.md
//! documents every key of the schema with the default the code uses.

use std::collections::BTreeMap;

use crate::common::Sandbox;

const DOC: &str = include_str!("../../docs/config.md");

/// `key -> default` from the reference table.
fn documented() -> BTreeMap<String, String> {
    DOC.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| {
            let (key, rest) = l.split_once("` | ")?;
            let (default, _) = rest.split_once(" | ")?;
            Some((key.to_owned(), default.trim().to_owned()))
        })
        .filter(|(k, _)| k.contains('.') || !k.chars().any(|c| c.is_ascii_uppercase()))
        .collect()
}

#[test]
fn every_key_is_documented_with_its_default() {
    let doc = documented();
    let schema = batty::config::schema_defaults();
    let mut wrong = Vec::new();
    for (key, value) in &schema {
        let shown = batty::config::show_value(value);
        match doc.get(key) {
            None => wrong.push(format!(
                "`{key}` (default {shown}) is not in docs/config.md"
            )),
            Some(d) if *d != shown => wrong.push(format!(
                "`{key}`: docs say {d}, the code's default is {shown}"
            )),
            Some(_) => {}
        }
    }
    for key in doc.keys() {
        if !schema.iter().any(|(k, _)| k == key) {
            wrong.push(format!(
                "docs/config.md lists `{key}`, which the schema does not have"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(schema.len() >= 20, "the schema walk lost keys: {schema:?}");
}

#[test]
fn config_shows_values_and_their_origins() {
    let sb = Sandbox::new();
    sb.write(
        ".batty/config.yml",
        "# mine\nsupervisor:\n  silence: 150ms\nagents:\n  bot: { command: \"bot --x\" }\n",
    );
    let out = sb
        .batty(["config"])
        .env("BATTY_TMUX_SOCKET", "/tmp/x.sock")
        .ok();
    let line = |key: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no `{key}` in:\n{}", out.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("supervisor.silence"),
        "supervisor.silence 150ms .batty/config.yml:3"
    );
    assert_eq!(
        line("supervisor.max_retries"),
        "supervisor.max_retries 3 default"
    );
    assert_eq!(
        line("agents.bot.command"),
        "agents.bot.command bot --x .batty/config.yml:5"
    );
    assert_eq!(line("merge.gate"), "merge.gate (unset) default");
    assert_eq!(
        line("tmux.socket"),
        "tmux.socket /tmp/x.sock $BATTY_TMUX_SOCKET"
    );

    let json: serde_json::Value =
        serde_json::from_str(&sb.batty(["config", "--json"]).ok().stdout).unwrap();
    assert_eq!(json["file"], ".batty/config.yml");
    let silence = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "supervisor.silence")
        .unwrap();
    assert_eq!(silence["value"], "150ms");
    assert_eq!(
        silence["origin"],
        serde_json::json!({"path": ".batty/config.yml", "line": 3})
    );
}

#[test]
fn the_file_batty_init_writes_holds_the_documented_defaults() {
    let sb = Sandbox::new();
    sb.batty(["init"]).ok();
    let out = sb
        .batty(["config", "--json"])
        .env("BATTY_TMUX_SOCKET", "")
        .ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let doc = documented();
    for e in json["entries"].as_array().unwrap() {
        let key = e["key"].as_str().unwrap();
        if key == "agents" {
            continue;
        }
        assert_eq!(
            batty::config::show_value(&e["value"]),
            doc[key],
            "`batty init`'s config.yml sets `{key}` to something else than its documented default"
        );
    }
}
