//! The README must not drift from the code: its test command is what CI runs, its YAML
//! examples are valid configuration, and every `batty` subcommand and flag it shows exists.

use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../../README.md");
const CI: &str = include_str!("../../.ci/run");

/// The fenced blocks of `lang` in the README, in order.
fn blocks(lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in README.lines() {
        match &mut current {
            None if line.trim_start() == format!("```{lang}") => current = Some(String::new()),
            Some(text) if line.trim_start() == "```" => {
                out.push(std::mem::take(text));
                current = None;
            }
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn ci_runs_the_readme_test_command() {
    let section = README
        .split("## Tests")
        .nth(1)
        .expect("README has a Tests section");
    let command = section
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .map(str::trim)
        .expect("the Tests section has a sh block");
    let last = CI
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap();
    assert_eq!(
        last, command,
        ".ci/run must end with the README's test command"
    );
}

#[test]
fn readme_yaml_examples_are_valid_config() {
    let yaml = blocks("yaml");
    assert!(yaml.len() >= 2, "README lost its configuration examples");
    for text in yaml {
        if let Err(err) = batty::config::Config::parse(Path::new("README.md"), &text) {
            panic!("README example does not parse: {err}\n{text}");
        }
    }
}

#[test]
fn readme_commands_and_flags_exist() {
    let bin = env!("CARGO_BIN_EXE_batty");
    let mut checked = 0;
    for block in blocks("sh") {
        for line in block.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some(rest) = line.strip_prefix("batty ") else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            // `task` and others have subcommands: take the leading plain words as the path.
            let path: Vec<&str> = words
                .iter()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                .take(2)
                .copied()
                .collect();
            let help = Command::new(bin)
                .args(&path)
                .arg("--help")
                .output()
                .unwrap();
            let help_text = String::from_utf8_lossy(&help.stdout).into_owned();
            let path = if help.status.success() {
                path
            } else {
                path[..1].to_vec()
            };
            let help_text = if help.status.success() {
                help_text
            } else {
                let out = Command::new(bin)
                    .args(&path)
                    .arg("--help")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "`batty {}` does not exist",
                    path.join(" ")
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let flag = flag.trim_matches(|c: char| "[]|".contains(c));
                let flag = flag.split(['=', ']']).next().unwrap_or(flag);
                assert!(
                    help_text.contains(flag),
                    "README shows `batty {} {flag}`, which `--help` does not list",
                    path.join(" ")
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} README commands checked");
}
