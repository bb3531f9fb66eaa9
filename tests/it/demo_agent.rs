//! `batty demo-agent`: tasks read from stdin (piped, and pasted through a real tmux pane) are
//! worked on, committed in the working directory's repo, and reported.

use std::path::Path;
use std::time::Duration;

use crate::common::{Sandbox, wait_until};
use batty::agent::{Composer, Reply, Screen, TaskMessage};

/// The message the supervisor would paste, as the demo adapter phrases it.
fn message(id: u64, title: &str, body: &str) -> String {
    let demo = batty::agent::builtin("demo", Path::new(crate::common::BATTY)).unwrap();
    demo.phrase_task(&TaskMessage {
        id,
        title: title.into(),
        body: body.into(),
        board_path: "/nowhere/.batty/kanban/v1".into(),
    })
}

const READY: Screen = Screen::Ready {
    composer: Composer::Empty,
};

fn log_subjects(sb: &Sandbox) -> Vec<String> {
    sb.git(["log", "--format=%s"])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn piped_tasks_are_committed_one_after_another() {
    let sb = Sandbox::new();
    // A multi-line message, the Enter after it, a second message, then end of input.
    let input = format!(
        "{}\n\n{}\n",
        message(4, "Add login", "Make a login page.\n\nKeep it small."),
        message(5, "Add logout", "")
    );
    let out = sb.batty(["demo-agent", "--lines", "2"]).stdin(input).ok();
    assert!(out.stdout.starts_with("demo> "), "{}", out.stdout);
    for needle in [
        "working on #4\nstep 1/2 of #4\nstep 2/2 of #4\ncommitted #4\n",
        "working on #5\n",
        "committed #5\n",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle:?} in:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.ends_with("demo> "), "{}", out.stdout);
    assert_eq!(
        log_subjects(&sb),
        ["Task #5: Add logout", "Task #4: Add login", "initial"]
    );
    assert_eq!(sb.read("demo/task-4.txt"), "Add login\n");
    assert_eq!(sb.read("demo/task-5.txt"), "Add logout\n");
    // `batty task done` ran (it may fail here: there is no board); either way it went on.
    assert!(
        out.stdout.contains("finished #5") || out.stderr.contains("task done 5"),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn question_is_asked_and_stray_enters_are_not_answers() {
    let sb = Sandbox::new();
    let input = format!(
        "{}\n\n\ny\n{}\nno\n",
        message(1, "One", ""),
        message(2, "Two", "")
    );
    let out = sb
        .batty(["demo-agent", "--ask", "--lines", "0", "--no-done"])
        .stdin(input)
        .ok();
    assert!(
        out.stdout
            .contains("working on #1\nContinue? [y/n] committed #1\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Continue? [y/n] dropped #2\n"),
        "{}",
        out.stdout
    );
    assert_eq!(log_subjects(&sb), ["Task #1: One", "initial"]);
}

#[test]
fn ask_on_one_task_with_own_text() {
    let sb = Sandbox::new();
    let input = format!("{}\n{}\ny\n", message(1, "One", ""), message(2, "Two", ""));
    let out = sb
        .batty([
            "demo-agent",
            "--ask-on",
            "2",
            "--ask-text",
            "Really? [y/n]",
            "--no-done",
        ])
        .stdin(input)
        .ok();
    assert_eq!(
        out.stdout.matches("Really? [y/n]").count(),
        1,
        "{}",
        out.stdout
    );
    assert_eq!(log_subjects(&sb).len(), 3);
}

#[test]
fn file_and_content_templates() {
    let sb = Sandbox::new();
    let out = sb
        .batty([
            "demo-agent",
            "--file",
            "shared/{id}/notes.md",
            "--content",
            "# {title}\\nby task {id}\\n",
            "--no-done",
        ])
        .stdin(message(9, "Notes", "") + "\n")
        .ok();
    assert!(out.stdout.contains("committed #9"), "{}", out.stdout);
    assert_eq!(sb.read("shared/9/notes.md"), "# Notes\nby task 9\n");
    assert_eq!(sb.git(["status", "--porcelain"]), "");
}

#[test]
fn failed_commit_is_reported_and_the_agent_goes_on() {
    let sb = Sandbox::new();
    let input = format!("{}\n{}\n", message(1, "One", ""), message(2, "Two", ""));
    let out = sb.batty(["demo-agent", "--fail-commit"]).stdin(input).ok();
    assert!(
        out.stderr
            .contains("demo-agent: task #1: commit failed (--fail-commit)"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("working on #2"), "{}", out.stdout);
    assert_eq!(log_subjects(&sb), ["initial"]);
    assert!(sb.path("demo/task-1.txt").exists());
}

#[test]
fn repeated_task_with_nothing_new_is_not_an_error() {
    let sb = Sandbox::new();
    // The same task twice (a reminder): the second time there is nothing to commit.
    let input = format!("{}\n{}\n", message(1, "Same", ""), message(1, "Same", ""));
    let out = sb.batty(["demo-agent", "--no-done"]).stdin(input).ok();
    assert_eq!(
        out.stdout.matches("committed #1").count(),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("no changes for #1\nfinished #1"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn a_commit_that_git_refuses_is_reported() {
    let sb = Sandbox::new();
    // A hook that rejects every commit.
    sb.write(
        ".git/hooks/pre-commit",
        "#!/bin/sh\necho 'rejected by hook' >&2\nexit 1\n",
    );
    let hook = sb.path(".git/hooks/pre-commit");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sb
        .batty(["demo-agent", "--no-done"])
        .stdin(message(1, "One", "") + "\n")
        .ok();
    assert!(
        out.stderr.contains("demo-agent: task #1: `git commit")
            && out.stderr.contains("rejected by hook"),
        "{}",
        out.stderr
    );
    assert_eq!(log_subjects(&sb), ["initial"]);
}

#[test]
fn forget_done_skips_the_report_only_the_first_time() {
    let sb = Sandbox::new();
    let input = format!("{}\n{}\n", message(6, "Six", ""), message(6, "Six", ""));
    let out = sb
        .batty(["demo-agent", "--forget-done", "6"])
        .stdin(input)
        .ok();
    // The first delivery commits without reporting; the reminder runs `batty task done 6`
    // (which fails here: there is no board), and nothing else runs it.
    assert!(
        out.stdout.contains("committed #6\nfinished #6"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stderr.matches("task done 6").count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn dies_on_the_given_task() {
    let sb = Sandbox::new();
    let input = format!("{}\n{}\n", message(1, "One", ""), message(2, "Two", ""));
    let out = sb
        .batty(["demo-agent", "--die-on", "2", "--no-done"])
        .stdin(input)
        .fails(3);
    assert!(out.stdout.contains("committed #1"), "{}", out.stdout);
    assert!(out.stdout.ends_with("dying on #2\n"), "{}", out.stdout);
}

#[test]
fn odd_input_never_crashes() {
    let sb = Sandbox::new();
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(b"\xff\xfe garbage\n\x1b[31m\x00\x07\n");
    input.extend_from_slice(&vec![b'x'; 100_000]);
    input.extend_from_slice(b"\nTask #abc: nope\nTask #18446744073709551616: too big\n");
    input.extend_from_slice(b"\x1b[200~Task #3: pasted\r\n\x1b[201~\n");
    input.extend_from_slice(b"exit\nTask #4: after exit\n");
    let out = sb.batty(["demo-agent", "--no-done"]).stdin(input).ok();
    assert!(out.stdout.contains("committed #3"), "{}", out.stdout);
    assert!(!out.stdout.contains("#4"), "{}", out.stdout);
    // End of input in the middle of a message: a quiet exit.
    sb.batty(["demo-agent"])
        .stdin("Task #5: cut off\nbody")
        .ok();
}

/// The real delivery path: a pane with a pty, text pasted with `paste-buffer -p`, then Enter;
/// the demo adapter reads the pane's screen as ready, asking, and ready again.
#[test]
fn pasted_into_a_tmux_pane() {
    let sb = Sandbox::new();
    sb.start_tmux();
    let cmd = format!(
        "cd {} && {} demo-agent --ask --lines 1 --no-done",
        batty::proc::shell_word(&sb.repo.to_string_lossy()),
        batty::proc::shell_word(crate::common::BATTY)
    );
    let pane = sb.tmux([
        "new-window",
        "-d",
        "-P",
        "-F",
        "#{pane_id}",
        "-t",
        "harness",
        "env",
        &format!("HOME={}", sb.root.join("home").display()),
        "GIT_CONFIG_GLOBAL=/dev/null",
        "GIT_AUTHOR_NAME=Batty Test",
        "GIT_AUTHOR_EMAIL=test@batty.invalid",
        "GIT_COMMITTER_NAME=Batty Test",
        "GIT_COMMITTER_EMAIL=test@batty.invalid",
        "sh",
        "-c",
        &cmd,
    ]);
    let demo = batty::agent::builtin("demo", Path::new(crate::common::BATTY)).unwrap();
    let screen = |sb: &Sandbox| sb.tmux(["capture-pane", "-p", "-t", &pane]);
    let deadline = Duration::from_secs(10);
    wait_until("the demo prompt", deadline, || {
        (demo.classify(&screen(&sb)) == READY).then_some(())
    });

    let text = message(1, "Pasted task", "First line.\n\nSecond paragraph.");
    // load-buffer from a file (the harness gives tmux no stdin).
    let file = sb.root.join("msg.txt");
    std::fs::write(&file, &text).unwrap();
    sb.tmux(["load-buffer", "-b", "t", &file.to_string_lossy()]);
    sb.tmux(["paste-buffer", "-p", "-d", "-b", "t", "-t", &pane]);
    sb.tmux(["send-keys", "-t", &pane, "Enter"]);

    let q = wait_until("the question", deadline, || {
        match demo.classify(&screen(&sb)) {
            Screen::Question(q) => Some(q),
            _ => None,
        }
    });
    assert_eq!(demo.answer_for(&q), Some(&Reply::Text("y".into())));
    sb.tmux(["send-keys", "-t", &pane, "-l", "y"]);
    sb.tmux(["send-keys", "-t", &pane, "Enter"]);
    wait_until("the commit", deadline, || {
        let s = screen(&sb);
        (s.contains("committed #1") && demo.classify(&s) == READY).then_some(())
    });
    assert_eq!(log_subjects(&sb), ["Task #1: Pasted task", "initial"]);
}
