//! `batty logs --follow` (the log pane): what is appended shows up, across rotation and a file
//! that appears later; and `-q`/`-v`/`NO_COLOR` shape what batty prints.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{BATTY, Sandbox, shell_project, wait_until};

#[test]
fn follow_sees_appends_a_late_file_and_rotation() {
    let sb = shell_project("");
    let log = sb.path(".batty/logs/v1/brave-otter.events.log");
    let mut cmd = Command::new(BATTY);
    cmd.args(["logs", "v1", "brave-otter", "--follow"])
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
        });
    };
    let append = |text: &str| {
        use std::io::Write;
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    // The file does not exist yet when the pane starts.
    std::thread::sleep(Duration::from_millis(200));
    append("one\n");
    wait_for("one\n");
    append("two\n");
    wait_for("one\ntwo\n");
    // Rotation: renamed away, a new file in its place.
    std::fs::rename(&log, sb.path(".batty/logs/v1/brave-otter.events.log.old")).unwrap();
    append("three\n");
    wait_for("one\ntwo\nthree\n");
    append("four\n");
    wait_for("three\nfour\n");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn quiet_and_verbose_and_no_color() {
    let sb = Sandbox::new();
    let out = sb.batty(["-q", "init"]).ok();
    assert_eq!(out.stdout, "", "-q keeps notes off stdout");
    assert!(sb.path(".batty/config.yml").is_file());
    let out = sb.batty(["status", "-v"]).ok();
    assert!(out.stdout.starts_with("phase main:"), "{}", out.stdout);
    let out = sb.batty(["-vv", "status"]).ok();
    assert!(
        out.stderr.contains("DEBUG"),
        "-vv logs the tmux and git calls: {}",
        out.stderr
    );
    sb.batty(["-q", "-v", "status"]).fails(1);
    // Not a terminal: no colour codes, whatever NO_COLOR says.
    let out = sb.batty(["status", "nope"]).env("NO_COLOR", "").fails(1);
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
}
