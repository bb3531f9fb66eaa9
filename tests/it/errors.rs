//! Bad input and a bad environment are one-line errors (exit 1) that name the thing and, with
//! a `hint:`, what to do: unknown commands and phases, config mistakes in batty's words, a
//! socket path too long for tmux, a folder that is not a normal repository, two `batty work`
//! at once.

use std::process::{Command, Stdio};

use crate::common::{BATTY, Sandbox, shell_project};

fn hint(out: &crate::common::Outcome) -> String {
    out.stderr
        .lines()
        .find_map(|l| l.strip_prefix("hint: "))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn unknown_commands_suggest_only_near_misses() {
    let sb = Sandbox::new();
    let out = sb.batty(["bogus"]).fails(1);
    out.error_mentions("unknown command `batty bogus`");
    assert_eq!(hint(&out), "see the commands with `batty --help`");
    assert!(!out.stderr.contains("logs"), "{}", out.stderr);
    let out = sb.batty(["stauts"]).fails(1);
    assert_eq!(hint(&out), "did you mean `batty status`?");
    let out = sb.batty(["task", "lsit"]).fails(1);
    assert_eq!(hint(&out), "did you mean `batty task list`?");
}

#[test]
fn unknown_phases_are_errors_everywhere() {
    let sb = shell_project("");
    for args in [
        vec!["merge", "nope"],
        vec!["merge", "nope", "--retry", "1"],
        vec!["stop", "nope"],
        vec!["attach", "nope"],
        vec!["status", "nope"],
        vec!["logs", "nope", "brave-otter"],
    ] {
        let out = sb.batty(&args).fails(1);
        out.error_mentions("no phase `nope` in this project");
        assert!(hint(&out).contains("`v1`"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn config_errors_speak_batty_not_the_yaml_library() {
    let sb = shell_project("supervisor:\n  silence: 1s\nsupervisor:\n  max_retries: 2\n");
    let out = sb.batty(["work", "v1"]).fails(1);
    out.error_mentions(".batty/config.yml:5: duplicate key `supervisor`");
    assert!(!out.stderr.contains("Options"), "{}", out.stderr);
    assert_eq!(
        hint(&out),
        "every key, its default and meaning: docs/config.md in batty's source, or the commented file `batty init` writes"
    );
    let sb = shell_project("supervisr: {}\n");
    sb.batty(["status"])
        .fails(1)
        .error_mentions(".batty/config.yml:3: unknown field `supervisr`");
}

#[test]
fn a_socket_path_too_long_for_tmux_is_refused_before_tmux_runs() {
    let sb = Sandbox::new();
    let long = sb.root.join("x".repeat(120)).join("sock");
    let sb2 = shell_project(&format!("tmux:\n  socket: {}\n", long.display()));
    for args in [vec!["work", "v1", "--agent", "shell"], vec!["status"]] {
        let out = sb2.batty(&args).env("BATTY_TMUX_SOCKET", "").fails(1);
        out.error_mentions("unix sockets allow at most 107");
        out.error_mentions(&long.display().to_string());
        assert!(
            hint(&out).contains("shorter `tmux.socket`"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("tmux -S"), "{}", out.stderr);
    }
    assert!(
        !sb2.path(".batty/worktrees").exists(),
        "nothing was created"
    );
    let out = sb2
        .batty(["work", "v1", "--agent", "shell"])
        .env("BATTY_TMUX_SOCKET", &long)
        .fails(1);
    assert!(hint(&out).contains("`BATTY_TMUX_SOCKET`"), "{}", out.stderr);
}

#[test]
fn outside_a_normal_repository_errors_point_the_right_way() {
    let sb = Sandbox::new();
    let plain = sb.root.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let out = sb.batty(["init"]).cwd(&plain).fails(1);
    out.error_mentions("is not in a git repository");
    assert!(hint(&out).contains("git init"), "{}", out.stderr);
    assert!(!plain.join(".batty").exists());
    // `.batty/` made by hand in a plain folder: `work` says the same, not "detached HEAD".
    std::fs::create_dir_all(plain.join(".batty/kanban/v1")).unwrap();
    sb.batty(["work", "v1"])
        .cwd(&plain)
        .fails(1)
        .error_mentions("is not in a git repository");

    let empty = sb.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    sb.git_in(&empty, ["init", "-q", "-b", "main"]);
    let out = sb.batty(["init"]).cwd(&empty).fails(1);
    out.error_mentions("has no commit yet");
    assert!(hint(&out).starts_with("commit first"), "{}", out.stderr);
    std::fs::create_dir_all(empty.join(".batty/kanban/v1")).unwrap();
    let out = sb.batty(["work", "v1"]).cwd(&empty).fails(1);
    out.error_mentions("has no commit yet");
    assert!(!out.stderr.contains("does not exist"), "{}", out.stderr);

    let bare = sb.root.join("bare.git");
    sb.git_in(&sb.root, ["init", "-q", "--bare", "bare.git"]);
    let out = sb.batty(["init"]).cwd(&bare).fails(1);
    out.error_mentions("is a bare repository or a git folder");
    assert!(
        !bare.join(".batty").exists(),
        "nothing written into the git folder"
    );
    sb.batty(["init"])
        .cwd(sb.repo.join(".git"))
        .fails(1)
        .error_mentions("a bare repository or a git folder");
    assert!(!sb.repo.join(".git/.batty").exists());
}

#[test]
fn two_works_at_once_take_turns() {
    let sb = shell_project("");
    let spawn = || {
        let mut cmd = Command::new(BATTY);
        cmd.args(["work", "v1", "-n", "3", "--agent", "shell"])
            .current_dir(&sb.repo)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        sb.apply_env(&mut cmd);
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(0),
            "both runs succeed, the second repairing nothing: {:?}\n{stderr}",
            out.status
        );
    }
    let windows = sb.tmux(["list-windows", "-t", "=batty-v1", "-F", "#{window_index}"]);
    assert_eq!(
        windows.lines().count(),
        4,
        "one supervisor and three agents: {windows}"
    );
}

/// While another `batty work` of the phase holds its turn, a second one says so and waits;
/// it goes on as soon as the turn is free.
#[test]
fn a_second_work_waits_for_the_first() {
    use batty::session::lock;
    let sb = shell_project("");
    let path = sb.path(".batty/run/v1/work.lock");
    let first = lock::Holder {
        pid: std::process::id(),
        socket: sb.sock.clone(),
        session: "batty-v1".into(),
    };
    let turn = lock::take(&path, &first).unwrap();
    let mut cmd = Command::new(BATTY);
    cmd.args(["work", "v1", "--agent", "shell"])
        .current_dir(&sb.repo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    sb.apply_env(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(&mut stdout);
        reader.read_line(&mut line).unwrap();
    }
    assert_eq!(
        line,
        format!(
            "waiting for another `batty work v1` (pid {}) to finish\n",
            first.pid
        )
    );
    assert!(
        sb.tmux_ok(["has-session", "-t", "=batty-v1"]).is_none(),
        "nothing is built while it waits"
    );
    drop(turn);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    sb.tmux(["has-session", "-t", "=batty-v1"]);
}
