//! A running supervisor follows `.batty/config.yml`: a valid edit takes effect (the gate here),
//! an invalid one is reported with its file and line and the previous configuration stays.

use crate::common::e2e5::{DEADLINE, E2e, PHASE, Setup};
use crate::common::wait_until;

fn write_config(e: &E2e, gate: &str) {
    e.configure(Setup {
        gate: Some(gate),
        max_attempts: 1,
        ..Setup::default()
    });
}

#[test]
fn a_gate_fixed_while_running_is_the_gate_a_retry_runs_and_a_broken_edit_changes_nothing() {
    let e = E2e::new();
    let ran = e.outside("gate-ran");
    write_config(&e, "false");
    let first = e.add_task("First");
    e.work(1, false);
    wait_until("the red gate to send #1 to review", DEADLINE, || {
        (e.task_status(first) == "review").then_some(())
    });
    assert_eq!(e.landed(first), 0);

    // The fix: a gate that passes and leaves a mark, so we know which gate ran.
    let fixed = format!("echo ran >> {}", ran.display());
    write_config(&e, &fixed);
    wait_until("the supervisor to reload", DEADLINE, || {
        e.events().contains("configuration reloaded").then_some(())
    });
    e.sb.batty(["merge", PHASE, "--retry", &first.to_string()])
        .ok();
    wait_until("#1 to land through the fixed gate", DEADLINE, || {
        (e.landed(first) == 1 && e.task_status(first) == "done").then_some(())
    });
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "ran\n");

    // A broken edit: named with its line, and the fixed gate stays in force.
    let good = e.sb.read(".batty/config.yml");
    e.sb.write(
        ".batty/config.yml",
        &format!("{good}supervisor:\n  silence: [not, a, duration\n"),
    );
    let reported = wait_until("the broken edit reported", DEADLINE, || {
        let events = e.events();
        events
            .lines()
            .find(|l| l.contains("previous configuration stays"))
            .map(str::to_owned)
    });
    assert!(reported.contains(".batty/config.yml:"), "{reported}");
    let second = e.add_task("Second");
    wait_until(
        "#2 to land through the gate that was in force",
        DEADLINE,
        || (e.landed(second) == 1).then_some(()),
    );
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "ran\nran\n");
    // The supervisor's own log, where both edits were reported.
    let log = e.sb.batty(["logs", PHASE]).ok().stdout;
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("previous configuration stays"), "{log}");
    // The broken file does not keep the session from being stopped.
    let out = e.sb.batty(["stop", PHASE]).ok();
    assert!(out.stderr.contains("config.yml:"), "{}", out.stderr);
    assert!(out.stdout.contains("stopped session"), "{}", out.stdout);
    assert!(!e.session_alive());
    e.assert_tidy();
}
