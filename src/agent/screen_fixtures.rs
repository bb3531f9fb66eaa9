//! Test support: the screens captured from the real agents (`tests/fixtures/screens/`), and
//! checks that an adapter reads every one of them as expected.

use std::path::PathBuf;

use super::adapter::{Adapter, Composer, Screen};

/// What a fixture must be read as.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// A question whose text contains this.
    Asks(&'static str),
    IsBusy,
    IsUnknown,
    /// Ready, nothing typed.
    Empty,
    /// Ready with exactly this typed.
    Typed(&'static str),
}

fn dir(agent: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/screens")
        .join(agent)
}

/// A fixture's plain capture (`<name>.txt`).
pub fn load(agent: &str, name: &str) -> String {
    let path = dir(agent).join(format!("{name}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `<name>.txt` of `agent` is listed in `expected` and read as it says.
pub fn check_all(adapter: &Adapter, agent: &str, expected: &[(&str, Expect)]) {
    let mut names: Vec<String> = std::fs::read_dir(dir(agent))
        .expect("fixture folder")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".txt").map(str::to_owned))
        .collect();
    names.sort();
    let listed: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    for name in &names {
        assert!(
            listed.contains(&name.as_str()),
            "fixture {agent}/{name}.txt has no expectation"
        );
    }
    let mut failures = Vec::new();
    for (name, want) in expected {
        let got = adapter.classify(&load(agent, name));
        if !reads_as(want, &got) {
            failures.push(format!("{agent}/{name}: wanted {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn reads_as(want: &Expect, got: &Screen) -> bool {
    match (want, got) {
        (Expect::Asks(text), Screen::Question(q)) => q.contains(text),
        (Expect::IsBusy, Screen::Busy) | (Expect::IsUnknown, Screen::Unknown) => true,
        (
            Expect::Empty,
            Screen::Ready {
                composer: Composer::Empty,
            },
        ) => true,
        (
            Expect::Typed(t),
            Screen::Ready {
                composer: Composer::Text(got),
            },
        ) => got == t,
        _ => false,
    }
}

/// Each `<name>.ansi` (the same screen captured with `-e`) reads as its `.txt` does, except
/// those in `styled_only`, which the attributes tell apart: they read as listed there (and
/// not as their plain twin does).
pub fn styled_agrees(adapter: &Adapter, agent: &str, styled_only: &[(&str, Expect)]) {
    let mut checked = 0;
    for entry in std::fs::read_dir(dir(agent))
        .expect("fixture folder")
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "ansi") {
            continue;
        }
        let styled = std::fs::read_to_string(&path).expect("read fixture");
        let plain = std::fs::read_to_string(path.with_extension("txt")).expect("plain twin");
        let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or("");
        if let Some((_, want)) = styled_only.iter().find(|(n, _)| *n == name) {
            let got = adapter.classify(&styled);
            assert!(
                reads_as(want, &got),
                "{}: wanted {want:?}, got {got:?}",
                path.display()
            );
            assert_ne!(got, adapter.classify(&plain), "{}", path.display());
            checked += 1;
            continue;
        }
        assert_eq!(
            adapter.classify(&styled),
            adapter.classify(&plain),
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked > 0, "no styled fixtures for {agent}");
}
