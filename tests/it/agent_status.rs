//! `batty agent-status`: an agent's report lands in `.batty/run/<phase>/agents/<agent>.status`, where
//! the supervisor's reader picks it up.

use crate::common::Sandbox;
use batty::watch::{ReportReader, ReportedState};

fn reports(sb: &Sandbox, phase: &str, agent: &str) -> Vec<batty::watch::Report> {
    let path = sb.path(format!(".batty/run/{phase}/agents/{agent}.status"));
    ReportReader::new(path, 0)
        .read()
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn in_pane(sb: &Sandbox, args: &[&str]) -> crate::common::Run {
    let board = sb.path(".batty/kanban/v1");
    std::fs::create_dir_all(&board).unwrap();
    sb.batty(args)
        .env("BATTY_AGENT", "otter")
        .env("BATTY_PHASE", "v1")
        .env("BATTY_BOARD", &board)
}

#[test]
fn reports_are_appended_for_the_supervisor() {
    let sb = Sandbox::new();
    let out = in_pane(&sb, &["agent-status", "busy"]).ok();
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");
    in_pane(
        &sb,
        &["agent-status", "asking", "--note", "Allow `rm -rf`?"],
    )
    .ok();
    in_pane(&sb, &["agent-status", "idle"]).ok();
    let got = reports(&sb, "v1", "otter");
    let states: Vec<_> = got.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            ReportedState::Busy,
            ReportedState::Asking,
            ReportedState::Idle
        ]
    );
    assert_eq!(got[1].note.as_deref(), Some("Allow `rm -rf`?"));
    assert!(got[0].at_ms > 1_600_000_000_000);
}

#[test]
fn works_from_a_worktree_subfolder_via_batty_board() {
    let sb = Sandbox::new();
    let wt = sb.path(".batty/worktrees/v1/otter/src");
    std::fs::create_dir_all(&wt).unwrap();
    in_pane(&sb, &["agent-status", "busy"]).cwd(&wt).ok();
    assert_eq!(reports(&sb, "v1", "otter").len(), 1);
}

#[test]
fn without_batty_board_the_project_is_found_from_the_cwd() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path(".batty")).unwrap();
    sb.batty(["agent-status", "idle"])
        .env("BATTY_AGENT", "otter")
        .env("BATTY_PHASE", "v2")
        .ok();
    assert_eq!(reports(&sb, "v2", "otter")[0].state, ReportedState::Idle);
}

#[test]
fn hook_json_message_becomes_the_note() {
    let sb = Sandbox::new();
    in_pane(&sb, &["agent-status", "asking", "--hook-json"])
        .stdin(r#"{"hook_event_name":"Notification","message":"Claude needs your permission to use Bash"}"#)
        .ok();
    // Not JSON: still reported, without a note.
    in_pane(&sb, &["agent-status", "idle", "--hook-json"])
        .stdin("garbage")
        .ok();
    let got = reports(&sb, "v1", "otter");
    assert_eq!(
        got[0].note.as_deref(),
        Some("Claude needs your permission to use Bash")
    );
    assert_eq!(got[1].note, None);
}

#[test]
fn outside_a_pane_is_a_clear_error() {
    let sb = Sandbox::new();
    let out = sb.batty(["agent-status", "idle"]).fails(1);
    out.error_mentions("not inside a batty agent pane");
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    // Hooks shared with ordinary sessions can ask for silence.
    let out = sb.batty(["agent-status", "idle", "--quiet-outside"]).ok();
    assert_eq!(out.stderr, "");
    assert!(!sb.path(".batty").exists());
}

#[test]
fn bad_environment_is_rejected() {
    let sb = Sandbox::new();
    in_pane(&sb, &["agent-status", "idle"])
        .env("BATTY_AGENT", "../evil")
        .fails(1)
        .error_mentions("invalid agent name");
    in_pane(&sb, &["agent-status", "idle"])
        .env("BATTY_BOARD", "relative/board")
        .fails(1)
        .error_mentions("BATTY_BOARD");
    sb.batty(["agent-status", "sleeping"]).fails(1);
    assert!(!sb.path(".batty/run").exists());
}
