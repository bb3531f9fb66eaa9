//! `batty report` and the attempts of `batty task show` through the binary, on a record and a
//! board written in a sandbox whose git history decides what counts as merged.

use batty::record::{
    self, Delivered, EndOutcome, Ended, Entry, Event, FileChange, Merge, MergeResult, Review, Run,
    RunAction,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::common::Sandbox;

const BOARD: &str = ".batty/kanban/v1";
const RECORD: &str = ".batty/logs/v1/attempts.jsonl";

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + secs, 0).unwrap()
}

fn task(sb: &Sandbox, id: u64, title: &str, status: &str, extra: &str) {
    sb.write(
        format!("{BOARD}/tasks/{id:03}-task.md"),
        &format!("---\nid: {id}\ntitle: {title}\nstatus: {status}\npriority: medium\n{extra}---\n"),
    );
}

fn commit(sb: &Sandbox, file: &str) -> String {
    sb.write(file, file);
    sb.git(["add", file]);
    sb.git(["commit", "-q", "-m", file]);
    sb.git(["rev-parse", "HEAD"])
}

fn delivered(secs: i64, task: u64, attempt: u32, agent: &str, base: &str) -> Entry {
    Entry::at(
        at(secs),
        Event::Delivered(Delivered {
            task,
            attempt,
            agent: agent.into(),
            base: Some(base.into()),
            note: None,
            pid: None,
        }),
    )
}

fn done(secs: i64, task: u64, attempt: u32, agent: &str, base: &str, head: &str) -> Entry {
    Entry::at(
        at(secs),
        Event::Ended(Ended {
            task,
            attempt,
            agent: agent.into(),
            outcome: EndOutcome::Done,
            error: None,
            base: Some(base.into()),
            head: Some(head.into()),
            files: vec![FileChange {
                path: format!("t{task}.txt"),
                insertions: 1,
                deletions: 0,
                binary: false,
            }],
        }),
    )
}

fn merge(secs: i64, task: u64, attempt: u32, result: MergeResult, landed: Option<&str>) -> Entry {
    Entry::at(
        at(secs),
        Event::Merge(Merge {
            task,
            attempt,
            agent: "brave-otter".into(),
            outcome: result,
            base: None,
            head: None,
            gate: Some("true".into()),
            gate_secs: Some(0.5),
            exit_code: Some(0),
            landed: landed.map(str::to_owned),
            error: (result == MergeResult::Conflict).then(|| "t3.txt".to_owned()),
        }),
    )
}

fn run(secs: i64, action: RunAction, pid: u32) -> Entry {
    Entry::at(at(secs), Event::Run(Run { action, pid }))
}

/// A phase `v1` run: task 1 merged onto `main`, task 2 landed on a branch since dropped from
/// `main`, task 3 given to review after a supervisor crash and a conflict, task 4 never
/// started, task 5 waiting on task 3. The record ends with a garbage line and a torn one.
fn sandbox() -> (Sandbox, String) {
    let sb = Sandbox::new();
    sb.write(".git/info/exclude", ".batty/\n");
    sb.write(
        format!("{BOARD}/config.yml"),
        &batty::board::default_config_yml("v1"),
    );
    let base = sb.git(["rev-parse", "HEAD"]);
    let landed1 = commit(&sb, "t1.txt");
    sb.git(["checkout", "-q", "-b", "gone"]);
    let landed2 = commit(&sb, "t2.txt");
    sb.git(["checkout", "-q", "main"]);
    task(&sb, 1, "Parse the config", "done", "");
    task(&sb, 2, "Add the gate", "done", "");
    let reason = "merge failed 1 times; last: conflict in `t3.txt`";
    task(
        &sb,
        3,
        "Fix the login",
        "review",
        &format!("blocked: true\nblock_reason: '{reason}'\n"),
    );
    task(&sb, 4, "Write docs", "backlog", "");
    task(&sb, 5, "Ship it", "todo", "depends_on:\n    - 3\n");
    let path = sb.path(RECORD);
    let entries = [
        run(0, RunAction::Start, 4_000_001),
        delivered(0, 1, 1, "brave-otter", &base),
        done(60, 1, 1, "brave-otter", &base, &landed1),
        merge(70, 1, 1, MergeResult::Merged, Some(&landed1)),
        delivered(80, 3, 1, "calm-fox", &base),
        // kill -9: no end, no stop; the next supervisor redoes task 3.
        run(500, RunAction::Start, 4_000_002),
        delivered(500, 3, 2, "calm-fox", &base),
        done(560, 3, 2, "calm-fox", &base, "ffff"),
        merge(570, 3, 2, MergeResult::Conflict, None),
        Entry::at(
            at(571),
            Event::Review(Review {
                task: 3,
                reason: reason.into(),
                rejected_ref: Some("refs/batty/v1/rejected/3-2".into()),
            }),
        ),
        delivered(580, 2, 1, "brave-otter", &base),
        done(640, 2, 1, "brave-otter", &base, &landed2),
        merge(650, 2, 1, MergeResult::Merged, Some(&landed2)),
        run(700, RunAction::Stop, 4_000_002),
    ];
    for e in &entries {
        record::append(&path, e).unwrap();
    }
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("not json\n{\"v\":1,\"at\":\"2026-05-28T20:40");
    std::fs::write(&path, text).unwrap();
    (sb, landed1)
}

#[test]
fn json_matches_the_board_and_the_target_branch() {
    let (sb, landed1) = sandbox();
    let out = sb.batty(["report", "--json"]).ok();
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{}", out.stderr);
    assert!(
        warnings[0].starts_with("warning: ") && warnings[0].contains("attempts.jsonl:15: "),
        "{}",
        out.stderr
    );
    assert!(
        warnings[1].contains("attempts.jsonl:16: the last line is cut short"),
        "{}",
        out.stderr
    );
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (r["phase"].as_str(), r["target"].as_str()),
        (Some("v1"), Some("main"))
    );
    let statuses: Vec<(u64, &str)> = r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_u64().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            (1, "merged"),
            (2, "not_on_target"),
            (3, "review"),
            (4, "not_started"),
            (5, "waiting_on_dependency"),
        ]
    );
    let totals = &r["totals"];
    assert_eq!(totals["tasks"], 5);
    assert_eq!(totals["done"], 2);
    assert_eq!(totals["merged"], 1, "only task 1's commit is on main");
    assert_eq!(totals["not_on_target"], serde_json::json!([2]));
    assert_eq!(totals["in_review"][0]["task"], 3);
    assert_eq!(
        totals["in_review"][0]["reason"],
        "merge failed 1 times; last: conflict in `t3.txt`"
    );
    assert_eq!(totals["never_started"], 1);
    assert_eq!(totals["waiting_on_dependency"], serde_json::json!([5]));
    let one = &r["tasks"][0];
    assert_eq!(one["merged"], landed1.as_str());
    assert_eq!(one["title"], "Parse the config");
    assert_eq!(one["secs"], 60);
    assert_eq!(one["attempts"][0]["files"][0]["path"], "t1.txt");
    let three = &r["tasks"][2];
    let outcomes: Vec<&str> = three["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["restarted", "conflict"]);
    assert_eq!(three["agents"], serde_json::json!(["calm-fox"]));
    assert_eq!(three["last_failure"]["outcome"], "conflict");
    // The first run crashed after its last line (80 s); the second stopped at 700 s.
    assert_eq!(
        (r["runs"].as_u64(), r["crashes"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(r["wall_secs"], 80 + 200);
    assert_eq!(r["problems"].as_array().unwrap().len(), 2);
}

#[test]
fn markdown_and_text_show_every_task() {
    let (sb, _) = sandbox();
    let md = sb.batty(["report", "v1", "--markdown"]).ok().stdout;
    assert!(
        md.starts_with("### batty report: `v1` onto `main`\n"),
        "{md}"
    );
    assert!(
        md.contains("| #1 Parse the config | ✓ merged | 1 | brave-otter | 1m00s | `"),
        "{md}"
    );
    assert!(
        md.contains("**Totals:** 5 tasks: 2 done (1 merged on `main`"),
        "{md}"
    );
    let text = sb.batty(["report", "v1"]).ok().stdout;
    assert_eq!(
        text.lines().filter(|l| l.starts_with('#')).count(),
        5,
        "{text}"
    );
    assert!(
        text.contains("in review: #3 merge failed 1 times"),
        "{text}"
    );
}

#[test]
fn task_show_lists_the_attempts() {
    let (sb, _) = sandbox();
    let out = sb.batty(["task", "show", "3", "--json"]).ok();
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["id"], 3);
    let attempts = json["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1]["agent"], "calm-fox");
    assert_eq!(attempts[1]["error"], "t3.txt");
    let text = sb.batty(["task", "show", "3"]).ok().stdout;
    let section = text.split("\nattempts:\n").nth(1).expect(&text);
    let lines: Vec<&str> = section.lines().collect();
    assert!(
        lines[0].starts_with("  1  calm-fox  2026-05-28 20:28:00Z  "),
        "{text}"
    );
    assert!(lines[0].contains("restarted"), "{text}");
    assert!(
        lines[1].contains("conflict") && lines[1].ends_with(": t3.txt"),
        "{text}"
    );
    assert!(lines[2].contains("2 unreadable line(s)"), "{text}");
    // A task never attempted shows no section, and its JSON an empty array.
    let four = sb.batty(["task", "show", "4"]).ok().stdout;
    assert!(!four.contains("attempts:"), "{four}");
    let four: Value =
        serde_json::from_str(&sb.batty(["task", "show", "4", "--json"]).ok().stdout).unwrap();
    assert_eq!(four["attempts"], serde_json::json!([]));
}

#[test]
fn the_phase_must_be_named_when_there_are_several() {
    let (sb, _) = sandbox();
    sb.write(
        ".batty/kanban/v2/config.yml",
        &batty::board::default_config_yml("v2"),
    );
    sb.batty(["report"])
        .fails(1)
        .error_mentions("several boards: v1, v2");
    sb.batty(["report", "v3"])
        .fails(1)
        .error_mentions("no board at");
    sb.batty(["report", "a/b"])
        .fails(1)
        .error_mentions("invalid phase name");
    // A phase that never ran reports its board, all not started.
    let out = sb.batty(["report", "v2", "--json"]).ok();
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(r["totals"]["tasks"], 0);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}
