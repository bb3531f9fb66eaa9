//! Shell completions and man pages are generated from the parser itself, and every option
//! reaches them.

use crate::common::Sandbox;

#[test]
fn completions_for_each_shell_know_the_commands_and_options() {
    let sb = Sandbox::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef batty"),
        ("fish", "complete -c batty"),
    ] {
        let out = sb.batty(["completions", shell]).ok();
        assert!(
            out.stdout.contains(marker),
            "{shell}: {}",
            &out.stdout[..200.min(out.stdout.len())]
        );
        for word in ["doctor", "status", "dry-run", "exit-when-done", "watch"] {
            assert!(out.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    sb.batty(["completions", "tcsh"]).fails(1);
}

#[test]
fn man_pages_cover_every_command() {
    let sb = Sandbox::new();
    let page = sb.batty(["man"]).ok().stdout;
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH batty"),
        "{}",
        &page[..200]
    );
    let dir = sb.root.join("man");
    sb.batty(["man", "--dir", dir.to_str().unwrap()]).ok();
    for name in [
        "batty.1",
        "batty-work.1",
        "batty-doctor.1",
        "batty-task-add.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".SH OPTIONS") || name == "batty.1", "{name}");
    }
    let work = std::fs::read_to_string(dir.join("batty-work.1")).unwrap();
    assert!(
        work.contains("Print the plan and change nothing"),
        "option help reaches the page"
    );
}
