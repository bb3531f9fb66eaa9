//! `batty demo`: a throwaway repository worked end to end by demo agents.

use std::time::Duration;

use crate::common::{Sandbox, wait_until};

#[test]
fn demo_runs_the_whole_loop_and_lands_every_task_on_main() {
    let sb = Sandbox::new();
    let dir = sb.root.join("demo");
    let dir_arg = dir.to_string_lossy().into_owned();
    sb.batty([
        "demo",
        "--no-attach",
        "--delay",
        "0",
        "--parallel",
        "2",
        "--dir",
        &dir_arg,
    ])
    .ok();
    let log = wait_until(
        "every demo task merged onto main",
        Duration::from_secs(60),
        || {
            let log = sb.git_in(&dir, ["log", "--format=%s", "main"]);
            (log.lines().filter(|l| l.starts_with("Task #")).count() == 8).then_some(log)
        },
    );
    assert!(sb.git_in(&dir, ["rev-list", "--merges", "main"]).is_empty());
    for id in 1..=8 {
        assert!(
            log.contains(&format!("Task #{id}:")),
            "task {id} missing:\n{log}"
        );
    }
    // A second demo into the same folder is refused, and the first one is untouched.
    let again = sb
        .batty(["demo", "--no-attach", "--dir", &dir_arg])
        .fails(1);
    again.error_mentions("already exists");
}
