//! `batty status`: every phase in every state (not started, running, supervisor down,
//! stopped, after merges), the board's counts, questions in the stable JSON documented in
//! docs/status-json.md, and `--watch` redrawing on change.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::e2e::{PHASE, Project, RUN, yaml_str};
use crate::common::{BATTY, Sandbox, shell_project, wait_until};

/// A shell-agent project whose board is a real kanban-md board.
fn project() -> Sandbox {
    let sb = shell_project("");
    sb.write(
        ".batty/kanban/v1/config.yml",
        &batty::board::default_config_yml("v1"),
    );
    sb
}

const DOC: &str = include_str!("../../docs/status-json.md");

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn status_without_a_phase_works_before_any_run_and_with_old_run_files() {
    let sb = project();
    sb.batty(["task", "add", "--phase", "v1", "a", "--status", "todo"])
        .ok();
    // A file an older layout left in `.batty/run/` is not a phase.
    sb.write(".batty/run/v1.merge.json", "{\"entries\": []}");
    let out = sb.batty(["status"]).ok();
    assert_eq!(
        out.stdout,
        "phase v1: not-started, session `batty-v1`, tasks 0/1 done (1 todo)\n\
         hint: start it with `batty work v1`\n"
    );
    let report = json(&sb.batty(["status", "--json"]).ok().stdout);
    assert_eq!(report["version"], 1);
    assert_eq!(report["phases"][0]["state"], "not-started");
    assert_eq!(report["phases"][0]["tasks_by_status"]["todo"], 1);
    sb.batty(["status", "nope"])
        .fails(1)
        .error_mentions("no phase `nope` in this project");
}

#[test]
fn stopped_phase_shows_the_board_now_and_no_stale_windows() {
    let sb = project();
    sb.batty(["work", "v1", "-n", "2", "--agent", "shell"]).ok();
    let running = json(&sb.batty(["status", "v1", "--json"]).ok().stdout);
    let agents = running["phases"][0]["agents"].as_array().unwrap().clone();
    assert_eq!(agents[0]["window"], 1);
    assert_eq!(agents[1]["window"], 2);
    sb.batty(["stop", "v1"]).ok();
    sb.batty(["task", "add", "--phase", "v1", "a", "--status", "done"])
        .ok();
    let out = sb.batty(["status"]).ok();
    assert!(
        out.stdout
            .starts_with("phase v1: stopped, session `batty-v1`, tasks 1/1 done (1 done)\n"),
        "{}",
        out.stdout
    );
    let report = json(&sb.batty(["status", "--json"]).ok().stdout);
    let p = &report["phases"][0];
    assert_eq!(
        (p["state"].as_str(), p["running"].as_bool()),
        (Some("stopped"), Some(false))
    );
    for a in p["agents"].as_array().unwrap() {
        assert_eq!(a["state"], "stopped");
        assert!(
            a["window"].is_null() && a["pane"].is_null(),
            "stale panes: {a}"
        );
    }
}

#[test]
fn a_session_whose_supervisor_died_says_what_to_run() {
    let sb = project();
    sb.batty(["work", "v1", "-n", "1", "--agent", "shell"]).ok();
    let state: serde_json::Value = json(&sb.read(".batty/run/v1/state.json"));
    let sup = state["supervisor_pane"].as_str().unwrap().to_owned();
    wait_until("the supervisor holds its lock", RUN, || {
        let r = json(&sb.batty(["status", "v1", "--json"]).ok().stdout);
        (r["phases"][0]["state"] == "running").then_some(())
    });
    let pid = sb.tmux(["display-message", "-p", "-t", &sup, "#{pane_pid}"]);
    Command::new("kill").arg(&pid).status().unwrap();
    let report = wait_until("status sees the supervisor gone", RUN, || {
        let r = json(&sb.batty(["status", "v1", "--json"]).ok().stdout);
        (r["phases"][0]["state"] == "supervisor-down").then_some(r)
    });
    let p = &report["phases"][0];
    assert_eq!(p["running"], true);
    assert_eq!(p["supervisor"]["running"], false);
    assert_eq!(p["hint"], "restart it with `batty work v1`");
    assert!(
        p["problem"]
            .as_str()
            .unwrap()
            .contains("its supervisor is not running"),
        "{p}"
    );
    let text = sb.batty(["status", "v1"]).ok().stdout;
    assert!(
        text.contains("problem: session `batty-v1` is up but its supervisor is not running")
            && text.contains("hint: restart it with `batty work v1`"),
        "{text}"
    );
    assert_eq!(
        sb.batty(["status", "v1", "--bar"]).ok().stdout,
        "v1: supervisor not running (batty work v1)\n"
    );
    sb.batty(["work", "v1"]).ok();
    wait_until("running again", RUN, || {
        let r = json(&sb.batty(["status", "v1", "--json"]).ok().stdout);
        (r["phases"][0]["state"] == "running").then_some(())
    });
}

/// The key paths of a JSON value: `a.b`, arrays as `a[].b`.
fn paths(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(key.clone());
                if key != "phases[].tasks_by_status" {
                    paths(v, &key, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// An asking agent's question is in the JSON, and the documented keys are exactly the keys
/// of real output (a merge entry with a reason included).
#[test]
fn json_has_the_question_and_matches_its_documentation() {
    let question = "Deploy to prod? [y/n]";
    let p = Project::new(
        &[],
        &format!(
            "agents:\n  demo:\n    args: ['--ask-on', '1', '--ask-text', {}]\n",
            yaml_str(question)
        ),
    );
    p.add("ship it", &[]);
    p.work(1, "demo", &[]);
    let agent = p.agents().remove(0);
    batty::merge::MergeQueue::update(&p.sb.path(format!(".batty/run/{PHASE}/merge.json")), |q| {
        q.push(7, &agent, "b", "base", "tip");
        q.mark_merging(7)?;
        q.mark_failed(7, "conflict in `a.txt`".into())?;
        Ok(())
    })
    .unwrap();
    let report = p.wait("the agent shown asking", RUN, || {
        let r = json(&p.sb.batty(["status", PHASE, "--json"]).ok().stdout);
        (r["phases"][0]["agents"][0]["state"] == "asking").then_some(r)
    });
    assert_eq!(
        report["phases"][0]["agents"][0]["question"],
        question,
        "{}",
        p.dump()
    );
    assert_eq!(report["phases"][0]["agents"][0]["task"], 1);
    let text = p.sb.batty(["status", PHASE]).ok().stdout;
    assert!(
        text.contains(&format!("  {agent} asks: {question}")),
        "{text}"
    );

    let mut real = BTreeSet::new();
    paths(&report, "", &mut real);
    let documented: BTreeSet<String> = DOC
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let undocumented: Vec<_> = real.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&real).collect();
    assert!(
        undocumented.is_empty(),
        "keys not in docs/status-json.md: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "documented keys not in the output: {missing:?}"
    );
}

#[test]
fn watch_redraws_when_the_board_changes() {
    let sb = project();
    let mut cmd = Command::new(BATTY);
    cmd.args(["status", "--watch"])
        .current_dir(&sb.repo)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    sb.apply_env(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |needle: &str| {
        wait_until(needle, Duration::from_secs(10), || {
            while let Ok(chunk) = rx.try_recv() {
                seen.push_str(&chunk);
            }
            seen.contains(needle).then_some(())
        })
    };
    wait_for("tasks 0/0 done");
    sb.batty(["task", "add", "--phase", "v1", "a", "--status", "todo"])
        .ok();
    wait_for("tasks 0/1 done (1 todo)");
    child.kill().unwrap();
    child.wait().unwrap();
}
