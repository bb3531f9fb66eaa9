//! Rerunning `batty work`: idempotent, repairs what was killed, grows and shrinks, reuses
//! agents across runs; `batty stop` keeps or cleans up.

use crate::common::{Sandbox, shell_project as project};

fn state(sb: &Sandbox) -> serde_json::Value {
    serde_json::from_str(&sb.read(".batty/run/v1/state.json")).unwrap()
}

fn windows(sb: &Sandbox) -> Vec<String> {
    let mut w: Vec<String> = sb
        .tmux([
            "list-windows",
            "-t",
            "=batty-v1",
            "-F",
            "#{window_index} #{window_name} #{window_panes}",
        ])
        .lines()
        .map(str::to_owned)
        .collect();
    w.sort();
    w
}

fn names(st: &serde_json::Value) -> Vec<String> {
    st["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rerun_is_idempotent_and_repairs_a_killed_window() {
    let sb = project("");
    sb.batty(["work", "v1", "-n", "2", "--agent", "shell"]).ok();
    let first = state(&sb);
    let before = windows(&sb);
    assert_eq!(before.len(), 3);

    sb.batty(["work", "v1", "--agent", "shell"]).ok();
    assert_eq!(windows(&sb), before);
    assert_eq!(state(&sb)["agents"], first["agents"]);

    let victim = first["agents"][1]["window_id"].as_str().unwrap();
    sb.tmux(["kill-window", "-t", victim]);
    let out = sb.batty(["work", "v1", "--dry-run"]).ok();
    assert!(out.stdout.contains("create window 2"), "{}", out.stdout);
    sb.batty(["work", "v1"]).ok();
    assert_eq!(windows(&sb), before, "repaired, not duplicated");
    let after = state(&sb);
    assert_eq!(names(&after), names(&first));
    assert_ne!(
        after["agents"][1]["window_id"],
        first["agents"][1]["window_id"]
    );
    assert_eq!(
        after["agents"][0]["window_id"],
        first["agents"][0]["window_id"]
    );
}

#[test]
fn dead_supervisor_and_executor_are_respawned() {
    let sb = project("");
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    let st = state(&sb);
    let exec = st["agents"][0]["executor_pane"]
        .as_str()
        .unwrap()
        .to_owned();
    // The supervisor first (a live one would restart the agent by itself).
    sb.tmux(["respawn-pane", "-k", "-t", "=batty-v1:0", "exit 5"]);
    crate::common::wait_until(
        "supervisor dead",
        std::time::Duration::from_secs(10),
        || {
            (sb.tmux(["display-message", "-p", "-t", "=batty-v1:0", "#{pane_dead}"]) == "1")
                .then_some(())
        },
    );
    // The agent dies the way the supervisor did: its program replaced by one that exits.
    sb.tmux(["respawn-pane", "-k", "-t", &exec, "exit 7"]);
    let mut seen = String::new();
    let dead = crate::common::wait_until_or_timeout(std::time::Duration::from_secs(10), || {
        seen = sb.tmux([
            "display-message",
            "-p",
            "-t",
            &exec,
            "#{pane_dead} #{pane_dead_status} #{pane_current_command}",
        ]);
        // Dead is what counts: tmux 3.3a was seen to mark it dead with no exit status.
        seen.starts_with("1 ").then_some(())
    });
    assert!(
        dead.is_some(),
        "executor not dead: {seen:?}; screen:\n{}",
        sb.tmux(["capture-pane", "-p", "-t", &exec])
    );
    let out = sb.batty(["work", "v1"]).ok();
    assert!(
        out.stdout.contains("restarted `shell` in window 1"),
        "{}",
        out.stdout
    );
    assert_eq!(
        sb.tmux(["display-message", "-p", "-t", &exec, "#{pane_dead}"]),
        "0"
    );
    // Window 0 stays (remain-on-exit) even while no supervisor runs, and comes back.
    assert!(windows(&sb)[0].starts_with("0 batty 1"));
}

#[test]
fn parallel_goes_down_for_idle_agents_and_up_again_with_the_same_names() {
    let sb = project("");
    sb.batty(["work", "v1", "-n", "3", "--agent", "shell"]).ok();
    let first = names(&state(&sb));
    // No supervisor: the snapshot below is the only word on the agents.
    sb.tmux(["respawn-pane", "-k", "-t", "=batty-v1:0", "sleep 600"]);

    // A busy agent is not taken away.
    std::fs::write(
        sb.path(".batty/run/v1/status.json"),
        format!(
            r#"{{"supervisor_pid":1,"tasks_done":0,"tasks_total":3,"agents":{{"{}":{{"state":"busy","task":7,"since":0}}}}}}"#,
            first[2]
        ),
    )
    .unwrap();
    let out = sb.batty(["work", "v1", "-n", "1"]).fails(1);
    out.error_mentions(&format!(
        "cannot go down to 1 agent(s): `{}` (task 7) still working",
        first[2]
    ));
    assert_eq!(windows(&sb).len(), 4);
    // Its writer is not running: the bar says so rather than showing the snapshot.
    assert_eq!(
        sb.batty(["status", "v1", "--bar"]).ok().stdout,
        "v1: supervisor not running (batty work v1)\n"
    );

    std::fs::remove_file(sb.path(".batty/run/v1/status.json")).unwrap();
    sb.batty(["work", "v1", "-n", "1"]).ok();
    let w = windows(&sb);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[1].starts_with(&format!("1 {} ", first[0])));
    assert!(
        sb.path(format!(".batty/worktrees/v1/{}", first[2]))
            .is_dir(),
        "worktree kept"
    );

    sb.batty(["work", "v1", "-n", "3"]).ok();
    assert_eq!(names(&state(&sb)), first);
    assert_eq!(windows(&sb).len(), 4);
}

#[test]
fn stop_keeps_worktrees_and_a_new_run_reuses_them() {
    let sb = project("");
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    let name = names(&state(&sb))[0].clone();
    let wt = sb.path(format!(".batty/worktrees/v1/{name}"));
    std::fs::write(wt.join("notes.txt"), "work in progress\n").unwrap();

    let out = sb.batty(["stop", "v1"]).ok();
    assert_eq!(out.stdout, "stopped session `batty-v1`\n");
    assert!(sb.tmux_ok(["has-session", "-t", "=batty-v1"]).is_none());
    let st = sb.batty(["status", "v1", "--json"]).ok();
    assert!(
        st.stdout.contains("\"state\": \"stopped\""),
        "{}",
        st.stdout
    );

    sb.batty(["work", "v1"]).ok();
    assert_eq!(names(&state(&sb)), [name.as_str()]);
    assert_eq!(
        std::fs::read_to_string(wt.join("notes.txt")).unwrap(),
        "work in progress\n"
    );

    // --clean refuses while that file is uncommitted, and names it.
    let out = sb.batty(["stop", "v1", "--clean"]).fails(1);
    out.error_mentions("`notes.txt`");
    assert!(out.stderr.contains("--force"));
    assert!(
        sb.tmux_ok(["has-session", "-t", "=batty-v1"]).is_some(),
        "refusal kills nothing"
    );

    sb.batty(["stop", "v1", "--clean", "--force"]).ok();
    assert!(!wt.exists());
    assert_eq!(sb.git(["branch", "--list", "batty/*"]), "");
    assert!(!sb.path(".batty/run/v1/state.json").exists());
    assert_eq!(sb.git(["worktree", "list"]).lines().count(), 1);
}

#[test]
fn leftover_worktree_folder_and_branch_are_adopted() {
    let sb = project("");
    // A branch without a worktree, as a crashed or cleaned-up run leaves it.
    sb.git(["branch", "batty/v1/old-otter"]);
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    assert_eq!(names(&state(&sb)), ["old-otter"]);
    assert_eq!(
        sb.git_in(
            &sb.path(".batty/worktrees/v1/old-otter"),
            ["branch", "--show-current"]
        ),
        "batty/v1/old-otter"
    );
}

#[test]
fn stop_releases_the_claims_of_its_agents() {
    let sb = project("");
    std::fs::remove_dir_all(sb.path(".batty/kanban/v1")).unwrap();
    sb.batty(["init", "--phase", "v1"]).ok();
    sb.write(
        ".batty/config.yml",
        "agents:\n  shell: { command: \"sh\" }\n",
    );
    sb.batty(["task", "add", "--phase", "v1", "Held by an agent"])
        .ok();
    sb.batty(["task", "add", "--phase", "v1", "Held by a person"])
        .ok();
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    let agent = names(&state(&sb))[0].clone();
    // No supervisor: it would give back a claim its agent does not hold before `stop` can.
    sb.tmux(["respawn-pane", "-k", "-t", "=batty-v1:0", "sleep 600"]);
    sb.batty(["task", "claim", "1", "--phase", "v1", "--agent", &agent])
        .ok();
    sb.batty([
        "task",
        "claim",
        "2",
        "--phase",
        "v1",
        "--agent",
        "someone-else",
    ])
    .ok();

    let out = sb.batty(["stop", "v1"]).ok();
    assert!(
        out.stdout.contains("released 1 claim(s): #1"),
        "{}",
        out.stdout
    );
    let tasks: serde_json::Value = serde_json::from_str(
        &sb.batty(["task", "list", "--phase", "v1", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    let by_id = |id: u64| {
        tasks
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()
            .clone()
    };
    assert!(
        by_id(1).get("claimed_by").is_none_or(|v| v.is_null()),
        "{}",
        by_id(1)
    );
    assert_eq!(by_id(2)["claimed_by"], "someone-else");
}

#[test]
fn another_project_with_the_same_phase_never_touches_our_session() {
    let sb = project("");
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    let before = windows(&sb);

    // A second project on the same tmux server, with a phase of the same name.
    let other = sb.root.join("other");
    std::fs::create_dir_all(other.join(".batty/kanban/v1/tasks")).unwrap();
    std::fs::write(other.join(".batty/kanban/v1/config.yml"), "version: 1\n").unwrap();
    std::fs::write(
        other.join(".batty/config.yml"),
        "agents:\n  shell: { command: \"sh\" }\n",
    )
    .unwrap();
    sb.git_in(&sb.root, ["init", "-q", "-b", "main", "other"]);
    sb.git_in(&other, ["commit", "-q", "--allow-empty", "-m", "start"]);
    let repo = sb.repo.to_string_lossy().into_owned();
    for args in [
        &["work", "v1", "--agent", "shell"][..],
        &["stop", "v1"][..],
        &["attach", "v1"][..],
    ] {
        sb.batty(args)
            .cwd(&other)
            .fails(1)
            .error_mentions(&format!("belongs to the project in {repo}"));
    }
    assert_eq!(windows(&sb), before, "our session is untouched");
    sb.batty(["stop", "v1"]).ok();
}

/// One supervisor per board, whatever the tmux server: a `batty work` on another server
/// (another socket, as another `-L`, `-S` or `TMUX_TMPDIR` gives) refuses before it builds
/// anything, naming the running supervisor's pid, its socket and how to attach to it; on the
/// same server a rerun still repairs.
#[test]
fn a_second_server_is_refused_while_a_supervisor_runs() {
    let sb = project("");
    // A board the supervisor can read, so it stays up.
    sb.write(
        ".batty/kanban/v1/config.yml",
        &batty::board::default_config_yml("v1"),
    );
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    let lock = sb.path(".batty/run/v1/supervisor.lock");
    let holder = crate::common::wait_until(
        "the supervisor holds the board",
        std::time::Duration::from_secs(20),
        || batty::session::lock::holder(&lock),
    );
    assert_eq!(holder.socket, sb.sock);
    let other = sb.root.join("other.sock");
    // Should the refusal ever fail, the server it started must not outlive the test.
    struct KillOnDrop(std::path::PathBuf);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("tmux")
                .arg("-S")
                .arg(&self.0)
                .arg("kill-server")
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let _other_server = KillOnDrop(other.clone());
    let out = sb
        .batty(["work", "v1", "-n", "2", "--agent", "shell"])
        .env("BATTY_TMUX_SOCKET", &other)
        .fails(1);
    out.error_mentions(&format!(
        "another supervisor has the board of phase `v1`: pid {}, on tmux socket `{}`",
        holder.pid,
        sb.sock.display()
    ));
    assert!(
        out.stderr.contains(&format!(
            "attach to it with `tmux -S {} attach -t =batty-v1`",
            sb.sock.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        !other.exists(),
        "no tmux server was started on the other socket"
    );
    assert_eq!(
        state(&sb)["agents"].as_array().unwrap().len(),
        1,
        "no agent was added"
    );
    assert_eq!(
        std::fs::read_dir(sb.path(".batty/worktrees/v1"))
            .unwrap()
            .count(),
        1,
        "no worktree was created"
    );
    // The same server: a rerun repairs as before.
    let exec = state(&sb)["agents"][0]["executor_pane"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.tmux(["kill-pane", "-t", &exec]);
    sb.batty(["work", "v1"]).ok();
    assert_eq!(windows(&sb).len(), 2);
}
