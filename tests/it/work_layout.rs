//! `batty work` layouts on a real tmux server and git repo: windows, panes, cwd, env, logs.

use std::time::Duration;

use crate::common::{Sandbox, shell_project as project, wait_until};

const WAIT: Duration = Duration::from_secs(10);

/// `window_index window_name pane_id pane_top pane_current_path` for every pane of the session.
fn panes(sb: &Sandbox) -> Vec<Vec<String>> {
    sb.tmux([
        "list-panes",
        "-s",
        "-t",
        "=batty-v1",
        "-F",
        "#{window_index}\t#{window_name}\t#{pane_id}\t#{pane_top}\t#{pane_current_path}",
    ])
    .lines()
    .map(|l| l.split('\t').map(str::to_owned).collect())
    .collect()
}

fn state(sb: &Sandbox) -> serde_json::Value {
    serde_json::from_str(&sb.read(".batty/run/v1/state.json")).unwrap()
}

/// Runs `command` in a pane and waits for the file it writes.
fn run_in_pane(sb: &Sandbox, pane: &str, command: &str, out: &std::path::Path) -> String {
    sb.tmux(["send-keys", "-t", pane, command, "Enter"]);
    wait_until(&format!("{} written", out.display()), WAIT, || {
        let text = std::fs::read_to_string(out).ok()?;
        text.ends_with("END\n").then_some(text)
    })
}

#[test]
fn one_agent_layout_env_and_pty_log() {
    let sb = project("worktree: { port_base: 4100 }\n");
    sb.batty(["work", "v1", "--parallel", "1", "--agent", "shell"])
        .env("CLAUDECODE", "1")
        .ok();
    let st = state(&sb);
    let agent = &st["agents"][0];
    let name = agent["name"].as_str().unwrap();
    let exec = agent["executor_pane"].as_str().unwrap();
    let worktree = sb.path(format!(".batty/worktrees/v1/{name}"));
    assert_eq!(
        agent["worktree"].as_str().unwrap(),
        worktree.to_str().unwrap()
    );

    let panes = panes(&sb);
    let windows: Vec<(&str, &str)> = panes
        .iter()
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    assert_eq!(windows, [("0", "batty"), ("1", name), ("1", name)]);
    let exec_row = panes.iter().find(|p| p[2] == exec).unwrap();
    let log_row = panes.iter().find(|p| p[1] == name && p[2] != exec).unwrap();
    assert_eq!(exec_row[3], "0", "executor on top");
    assert!(log_row[3].parse::<u32>().unwrap() > 0, "log pane below");
    assert_eq!(exec_row[4], worktree.to_str().unwrap());
    assert_eq!(
        sb.git_in(&worktree, ["branch", "--show-current"]),
        format!("batty/v1/{name}")
    );

    let out = sb.root.join("env.txt");
    let env = run_in_pane(
        &sb,
        exec,
        &format!("env > {}; echo END >> {}", out.display(), out.display()),
        &out,
    );
    let vars: Vec<&str> = env.lines().collect();
    assert!(vars.contains(&"BATTY_PHASE=v1"), "{env}");
    assert!(
        vars.contains(&format!("BATTY_AGENT={name}").as_str()),
        "{env}"
    );
    let board = sb.path(".batty/kanban/v1");
    assert!(
        vars.contains(&format!("BATTY_BOARD={}", board.display()).as_str()),
        "{env}"
    );
    assert!(vars.contains(&"BATTY_PORT=4100"), "{env}");
    for banned in ["TMUX=", "TMUX_PANE=", "CLAUDECODE="] {
        assert!(
            !vars.iter().any(|v| v.starts_with(banned)),
            "{banned} in {env}"
        );
    }

    // pipe-pane copies the executor's output into the pty log.
    sb.tmux(["send-keys", "-t", exec, "echo pty-mark-$((6*7))", "Enter"]);
    let log = sb.path(format!(".batty/logs/v1/{name}.pty.log"));
    wait_until("pty log has the output", WAIT, || {
        std::fs::read_to_string(&log)
            .ok()?
            .contains("pty-mark-42")
            .then_some(())
    });
    let raw = sb.batty(["logs", "v1", name, "--raw"]).ok();
    assert!(raw.stdout.contains("pty-mark-42"));

    // The log pane follows the event log.
    let log_pane = agent["log_pane"].as_str().unwrap();
    std::fs::write(
        sb.path(format!(".batty/logs/v1/{name}.events.log")),
        "12:00:00 hello-event\n",
    )
    .unwrap();
    wait_until("log pane shows the event", WAIT, || {
        sb.tmux(["capture-pane", "-p", "-t", log_pane])
            .contains("hello-event")
            .then_some(())
    });

    let status = sb.batty(["status", "v1", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let phase = &json["phases"][0];
    assert_eq!(phase["running"], true);
    assert_eq!(phase["agents"][0]["name"], name);
    assert_eq!(phase["agents"][0]["state"], "unknown");
    assert_eq!(phase["agents"][0]["pane"], exec);
}

#[test]
fn four_agents_get_their_own_windows_worktrees_and_ports() {
    let sb = project("worktree: { port_base: 5000 }\n");
    let out = sb.batty(["work", "v1", "-n", "4", "--agent", "shell"]).ok();
    assert!(out.stdout.contains("4 agent(s)"), "{}", out.stdout);
    let st = state(&sb);
    let agents = st["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 4);
    let panes = panes(&sb);
    assert_eq!(panes.len(), 1 + 4 * 2);
    let mut names: Vec<&str> = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        let name = a["name"].as_str().unwrap();
        names.push(name);
        assert_eq!(a["port"], 5000 + i as u64);
        let rows: Vec<_> = panes.iter().filter(|p| p[1] == name).collect();
        assert_eq!(rows.len(), 2, "{name}: {panes:?}");
        assert_eq!(rows[0][0], (i + 1).to_string());
        let exec = rows
            .iter()
            .find(|p| p[2] == a["executor_pane"].as_str().unwrap())
            .unwrap();
        assert_eq!(exec[4], a["worktree"].as_str().unwrap());
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4, "names are unique");
    let listed = sb.git(["worktree", "list"]);
    assert_eq!(listed.lines().count(), 5, "{listed}");
    // Every executor writes its own pty log.
    for a in agents {
        let name = a["name"].as_str().unwrap();
        sb.tmux([
            "send-keys",
            "-t",
            a["executor_pane"].as_str().unwrap(),
            &format!("echo I-am-{name}"),
            "Enter",
        ]);
        let log = sb.path(format!(".batty/logs/v1/{name}.pty.log"));
        wait_until("pty log", WAIT, || {
            std::fs::read_to_string(&log)
                .ok()?
                .contains(&format!("I-am-{name}"))
                .then_some(())
        });
    }
}

#[test]
fn dry_run_changes_nothing() {
    let sb = project("");
    let out = sb
        .batty(["work", "v1", "-n", "2", "--agent", "shell", "--dry-run"])
        .ok();
    assert!(
        out.stdout.starts_with("create session `batty-v1`\n"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("create worktree").count(),
        2,
        "{}",
        out.stdout
    );
    assert!(!sb.path(".batty/run/v1/state.json").exists());
    assert!(!sb.path(".batty/worktrees").exists());
    assert!(sb.tmux_ok(["has-session", "-t", "=batty-v1"]).is_none());

    // The agents the dry run names are the ones the real run makes, in the windows it said.
    let named: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("agent `")?
                .split('`')
                .next()
                .map(str::to_owned)
        })
        .collect();
    let real = sb.batty(["work", "v1", "-n", "2", "--agent", "shell"]).ok();
    let state: serde_json::Value =
        serde_json::from_str(&sb.read(".batty/run/v1/state.json")).unwrap();
    let made: Vec<String> = state["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(named, made);
    for (i, name) in made.iter().enumerate() {
        assert!(
            out.stdout.contains(&format!("agent `{name}`"))
                && out.stdout.contains(&format!("create window {}", i + 1)),
            "{}",
            out.stdout
        );
        assert!(
            real.stdout.contains(&format!(
                "agent `{name}`: started `shell` in window {}",
                i + 1
            )),
            "progress names the tab: {}",
            real.stdout
        );
    }
    assert!(!real.stdout.contains('@'), "no window ids: {}", real.stdout);
}

#[test]
fn hostile_phase_names_are_refused() {
    let sb = project("");
    for (phase, needle) in [
        ("a/b", "`/` is not allowed"),
        ("..", "`..` is not allowed"),
        ("a b", "spaces are not allowed"),
        ("x\u{1b}[1m", "invalid phase name"),
        ("-rf", "must not start with `-`"),
    ] {
        sb.batty(["work", "--agent", "shell", "--", phase])
            .fails(1)
            .error_mentions(needle);
    }
    assert!(
        sb.tmux_ok(["list-sessions"]).is_none(),
        "no server was started"
    );
}

#[test]
fn missing_board_and_unknown_agent_are_user_errors() {
    let sb = project("");
    let out = sb.batty(["work", "v2", "--agent", "shell"]).fails(1);
    out.error_mentions("no board for phase `v2`");
    assert!(
        out.stderr
            .contains("hint: create it with `batty init --phase v2`")
    );
    sb.batty(["work", "v1", "--agent", "nobot"])
        .fails(1)
        .error_mentions(
            "unknown agent `nobot`; known agents: `claude`, `codex`, `aider`, `demo`, `shell`",
        );
}

#[test]
fn failing_post_create_stops_that_agent_only() {
    let sb = project("worktree:\n  post_create: \"echo preparing; echo no-npm >&2; exit 3\"\n");
    let out = sb
        .batty(["work", "v1", "-n", "1", "--agent", "shell"])
        .fails(1);
    assert!(out.stderr.contains("not started"), "{}", out.stderr);
    assert!(out.stderr.contains("preparing no-npm"), "{}", out.stderr);
    let name = state(&sb)["agents"][0]["name"].as_str().unwrap().to_owned();
    let events = sb.read(format!(".batty/logs/v1/{name}.events.log"));
    assert!(events.contains("no-npm"), "{events}");
    // The supervisor window is there; the agent's is not.
    let windows: Vec<String> = panes(&sb).into_iter().map(|p| p[1].clone()).collect();
    assert_eq!(windows, ["batty"]);
}

/// Progress lines come as each step finishes, not all at the end: the session's line is
/// there while an agent's slow `post_create` still runs.
#[test]
fn progress_is_printed_as_it_happens() {
    use std::io::BufRead;
    let sb = project("worktree:\n  post_create: \"sleep 3\"\n");
    let mut cmd = std::process::Command::new(crate::common::BATTY);
    cmd.args(["work", "v1", "--agent", "shell"])
        .current_dir(&sb.repo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    sb.apply_env(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert_eq!(
        first,
        "created session `batty-v1`, supervisor in window 0\n"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "printed before the run ended"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        rest.contains("worktree ready") && rest.contains("started `shell` in window 1"),
        "{rest}"
    );
}
