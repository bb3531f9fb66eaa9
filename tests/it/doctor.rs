//! `batty doctor [--fix]`: each kind of leftover is made for real, found with what to do, and
//! fixed only when no work can be lost.

use std::time::{Duration, SystemTime};

use crate::common::{Sandbox, wait_until};

/// `batty init --phase v1` with a plain-shell agent.
fn project() -> Sandbox {
    let sb = Sandbox::new();
    sb.batty(["init", "--phase", "v1"]).ok();
    let config = sb.read(".batty/config.yml");
    sb.write(
        ".batty/config.yml",
        &config.replace("agents: {}", "agents:\n  shell: { command: \"sh\" }"),
    );
    sb.git(["add", "-A"]);
    sb.git(["commit", "-q", "-m", "batty"]);
    sb
}

fn lines_with<'a>(out: &'a str, label: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(label)).collect()
}

#[test]
fn a_clean_project_is_clean() {
    let sb = project();
    let out = sb.batty(["doctor"]).ok();
    assert!(
        lines_with(&out.stdout, "problem").is_empty(),
        "{}",
        out.stdout
    );
    assert!(
        lines_with(&out.stdout, "fixable").is_empty(),
        "{}",
        out.stdout
    );
    for what in [
        "ok       tmux ",
        "ok       git version",
        "ok       config `.batty/config.yml`",
        "ok       board `v1`",
        "ok       agent `shell` runs `sh`",
    ] {
        assert!(out.stdout.contains(what), "{what}:\n{}", out.stdout);
    }
}

#[test]
fn leftovers_are_found_and_only_the_safe_ones_fixed() {
    let sb = project();
    sb.batty(["work", "v1", "-n", "2", "--agent", "shell"]).ok();
    sb.batty(["stop", "v1"]).ok();
    let state: serde_json::Value =
        serde_json::from_str(&sb.read(".batty/run/v1/state.json")).unwrap();
    let gone = state["agents"][0]["worktree"].as_str().unwrap().to_owned();
    let gone_branch = state["agents"][0]["branch"].as_str().unwrap().to_owned();
    std::fs::remove_dir_all(&gone).unwrap();
    // A folder git does not know, with a file in it: never deleted.
    sb.write(".batty/worktrees/v1/ghost-fox/notes.txt", "mine\n");
    // Lone branches: one holding nothing new, one holding a commit.
    sb.git(["branch", "batty/v1/lost-owl"]);
    sb.git(["checkout", "-q", "-b", "batty/v1/busy-owl"]);
    sb.write("work.txt", "work\n");
    sb.git(["add", "work.txt"]);
    sb.git(["commit", "-q", "-m", "unmerged work"]);
    sb.git(["checkout", "-q", "main"]);
    // Stale run state: a supervisor snapshot nobody keeps, a half-done write of a dead
    // process, and the run folder of a phase that is gone.
    sb.write(".batty/run/v1/status.json", "{}");
    let dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    sb.write(format!(".batty/run/v1/.state.json.{pid}.tmp"), "{");
    sb.write(".batty/run/gone/state.json", "{}");
    // Rotated logs: an old one and a fresh one.
    sb.write(".batty/logs/v1/a.pty.log.old", "old\n");
    sb.write(".batty/logs/v1/b.pty.log.old", "fresh\n");
    let old = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(sb.path(".batty/logs/v1/a.pty.log.old"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    // An orphan session of a project that no longer exists.
    let orphan = sb.tmux([
        "new-session",
        "-d",
        "-P",
        "-F",
        "#{session_id}",
        "-s",
        "batty-elsewhere",
        "sleep",
        "600",
    ]);
    sb.tmux([
        "set-option",
        "-t",
        &orphan,
        "@batty_root",
        "/nonexistent/project",
    ]);
    // A board problem and an agent that is not installed.
    sb.write(".batty/kanban/v1/tasks/009-bad.md", "---\nid: [\n---\n");
    let config = sb.read(".batty/config.yml");
    sb.write(
        ".batty/config.yml",
        &config.replace(
            "agents:\n",
            "agents:\n  ghost: { command: \"no-such-agent-xyz --go\" }\n",
        ),
    );

    let out = sb.batty(["doctor"]).fails(1);
    let report = out.stdout.clone();
    let expect = [
        format!("fixable  git still lists worktree `{gone}`, whose folder is gone"),
        "problem  `.batty/worktrees/v1/ghost-fox` is not a git worktree".to_owned(),
        "fixable  branch `batty/v1/lost-owl` has no worktree and nothing that `main` lacks".to_owned(),
        "problem  branch `batty/v1/busy-owl` has no worktree but 1 commit(s) not on `main`".to_owned(),
        "fixable  `.batty/run/v1/status.json` is a snapshot of a supervisor that is no longer running".to_owned(),
        format!("fixable  `.batty/run/v1/.state.json.{pid}.tmp` is a half-done write"),
        "fixable  `.batty/run/gone` is the run state of phase `gone`".to_owned(),
        "fixable  `.batty/logs/v1/a.pty.log.old` is a rotated log older than 7 days".to_owned(),
        "fixable  session `batty-elsewhere` is an orphan: its project folder is gone".to_owned(),
        "problem  .batty/kanban/v1/tasks/009-bad.md".to_owned(),
        "problem  agent `ghost`: `no-such-agent-xyz` is not installed (not on PATH)".to_owned(),
    ];
    for line in &expect {
        assert!(
            report.lines().any(|l| l.starts_with(line.as_str())),
            "missing {line:?}:\n{report}"
        );
    }
    assert!(
        !report.contains("b.pty.log.old"),
        "a fresh rotated log is fine:\n{report}"
    );
    assert!(
        !report.contains(&format!("branch `{gone_branch}`")),
        "a branch whose worktree git still lists is not lone:\n{report}"
    );
    assert!(
        out.stderr
            .contains("hint: `batty doctor --fix` repairs the safe ones"),
        "{}",
        out.stderr
    );

    let out = sb.batty(["doctor", "--fix"]).fails(1);
    assert_eq!(lines_with(&out.stdout, "fixed").len(), 7, "{}", out.stdout);
    assert_eq!(
        lines_with(&out.stdout, "fixable").len(),
        0,
        "{}",
        out.stdout
    );
    let worktrees = sb.git(["worktree", "list", "--porcelain"]);
    assert!(!worktrees.contains(&gone), "pruned:\n{worktrees}");
    let branches = sb.git(["branch", "--list", "batty/*"]);
    assert!(
        !branches.contains("lost-owl") && branches.contains("busy-owl"),
        "{branches}"
    );
    assert!(
        sb.path(".batty/worktrees/v1/ghost-fox/notes.txt").is_file(),
        "unknown folder kept"
    );
    assert!(!sb.path(".batty/run/v1/status.json").exists());
    assert!(
        !sb.path(format!(".batty/run/v1/.state.json.{pid}.tmp"))
            .exists()
    );
    assert!(
        sb.path(".batty/run/v1/state.json").is_file(),
        "the run state itself is kept"
    );
    assert!(!sb.path(".batty/run/gone").exists());
    assert!(!sb.path(".batty/logs/v1/a.pty.log.old").exists());
    assert!(sb.path(".batty/logs/v1/b.pty.log.old").exists());
    assert!(
        sb.tmux_ok(["has-session", "-t", &orphan]).is_none(),
        "orphan killed"
    );

    // What is left needs a person; once they act, doctor is clean.
    std::fs::remove_dir_all(sb.path(".batty/worktrees/v1/ghost-fox")).unwrap();
    sb.git(["branch", "-D", "batty/v1/busy-owl"]);
    std::fs::remove_file(sb.path(".batty/kanban/v1/tasks/009-bad.md")).unwrap();
    sb.write(".batty/config.yml", &config);
    // The pruned worktree's branch is lone now, with nothing unmerged on it.
    let out = sb.batty(["doctor", "--fix"]).ok();
    assert!(
        out.stdout
            .contains(&format!("fixed    deleted branch `{gone_branch}`")),
        "{}",
        out.stdout
    );
    let out = sb.batty(["doctor"]).ok();
    assert!(
        lines_with(&out.stdout, "problem").is_empty(),
        "{}",
        out.stdout
    );
}

#[test]
fn a_session_without_its_supervisor_is_restarted_by_fix() {
    let sb = project();
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    let lock = sb.path(".batty/run/v1/supervisor.lock");
    let holder = wait_until("the supervisor runs", Duration::from_secs(20), || {
        batty::session::lock::holder(&lock)
    });
    std::process::Command::new("kill")
        .arg(holder.pid.to_string())
        .status()
        .unwrap();
    wait_until("the supervisor is gone", Duration::from_secs(20), || {
        batty::session::lock::holder(&lock).is_none().then_some(())
    });
    let out = sb.batty(["doctor"]).fails(1);
    assert!(
        out.stdout.contains(
            "fixable  session `batty-v1` is up but its supervisor is not running: its supervisor has exited"
        ),
        "{}",
        out.stdout
    );
    let out = sb.batty(["doctor", "--fix"]).run();
    assert!(
        out.stdout
            .contains("fixed    restarted the supervisor of `v1`"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let again = wait_until("a supervisor again", Duration::from_secs(20), || {
        batty::session::lock::holder(&lock)
    });
    assert_ne!(again.pid, holder.pid);
}
