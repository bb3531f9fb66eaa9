//! Several processes on one board at once: `batty task add` never hands out one id twice, and
//! `batty task claim` never gives one task to two agents.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use crate::common::{BATTY, Sandbox};

/// Runs one shell loop per script at the same time (each `$BATTY` call is its own process)
/// and returns their stdouts; every loop must exit 0.
fn run_loops_at_once(sb: &Sandbox, scripts: &[String]) -> Vec<String> {
    let children: Vec<_> = scripts
        .iter()
        .map(|script| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(script)
                .env("BATTY", BATTY)
                .current_dir(&sb.repo)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            sb.apply_env(&mut cmd);
            cmd.spawn().expect("spawn sh")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "loop failed: {stderr}");
            String::from_utf8(out.stdout).unwrap()
        })
        .collect()
}

#[test]
fn two_processes_creating_fifty_tasks_each_get_a_hundred_ids() {
    let sb = Sandbox::new();
    sb.batty(["init"]).ok();
    let scripts: Vec<String> = ["a", "b"]
        .iter()
        .map(|who| {
            format!(
                r#"for i in $(seq 50); do "$BATTY" task add "{who} $i" >/dev/null || exit 1; done"#
            )
        })
        .collect();
    run_loops_at_once(&sb, &scripts);
    let out = sb.batty(["task", "list", "--json"]).ok();
    assert_eq!(out.stderr, "", "no problems reported");
    let tasks: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let ids: BTreeSet<u64> = tasks.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=100).collect::<BTreeSet<u64>>());
    let config = sb.read(".batty/kanban/main/config.yml");
    assert!(config.contains("\nnext_id: 101\n"), "{config}");
}

#[test]
fn two_processes_claiming_the_same_ready_set_never_share_a_task() {
    let sb = Sandbox::new();
    sb.batty(["init"]).ok();
    const TASKS: u64 = 20;
    for i in 1..=TASKS {
        sb.batty(["task", "add", &format!("task {i}")]).ok();
    }
    // Both agents try every task in the same order, so they collide on each one. A lost
    // claim must exit 1 with a reason; anything else fails the loop.
    let scripts: Vec<String> = ["brave-otter", "calm-heron"]
        .iter()
        .map(|agent| {
            format!(
                r#"for id in $(seq {TASKS}); do
                     if "$BATTY" task claim "$id" --agent {agent} >/dev/null 2>"../err-{agent}"; then echo "$id";
                     else code=$?; [ $code -eq 1 ] && grep -q -e "is claimed by" -e "not ready" "../err-{agent}" || exit 1; fi
                   done"#
            )
        })
        .collect();
    let outputs = run_loops_at_once(&sb, &scripts);
    let won = |out: &str| -> BTreeSet<u64> { out.lines().map(|l| l.parse().unwrap()).collect() };
    let (a, b) = (won(&outputs[0]), won(&outputs[1]));
    assert!(
        a.is_disjoint(&b),
        "claimed twice: {:?}",
        a.intersection(&b).collect::<Vec<_>>()
    );
    assert_eq!(a.len() + b.len(), TASKS as usize, "every task claimed once");
    let out = sb.batty(["task", "list", "--json"]).ok();
    let tasks: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    for t in &tasks {
        let id = t["id"].as_u64().unwrap();
        let owner = if a.contains(&id) {
            "brave-otter"
        } else {
            "calm-heron"
        };
        assert_eq!(t["claimed_by"], owner, "task #{id}");
        assert_eq!(t["status"], "in-progress", "task #{id}");
    }
}
