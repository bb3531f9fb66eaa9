//! The tmux wrapper against a real server: literal text delivery and error classification.

use std::time::Duration;

use crate::common::{Sandbox, wait_until};
use batty::tmux::{PaneSpec, Server, Tmux, TmuxError, WindowSetup};

fn tmux(sb: &Sandbox) -> Tmux {
    Tmux::new(Server::Path(sb.sock.clone()))
}

#[test]
fn hostile_text_arrives_byte_exact() {
    let sb = Sandbox::new();
    sb.start_tmux();
    let t = tmux(&sb);
    let out = sb.root.join("received");
    let spec = PaneSpec {
        cwd: sb.root.clone(),
        argv: vec![
            "sh".into(),
            "-c".into(),
            format!("exec cat > {}", out.display()),
        ],
        ..Default::default()
    };
    let created = t
        .new_session("hostile", "w", &spec, &WindowSetup::default())
        .unwrap();
    let hostile = "-t %0 ; kill-server ; #{pane_id} #(touch pwned) C-c Enter \u{1b}[31mred\u{1b}[0m $(id) `id` 'q' \"d\" \\ ~";
    t.send_line(&created.pane_id, hostile).unwrap();
    t.send_line(&created.pane_id, "second line").unwrap();
    let got = wait_until("both lines received", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&out).ok()?;
        text.ends_with("second line\n").then_some(text)
    });
    assert_eq!(got, format!("{hostile}\nsecond line\n"));
    assert!(!sb.root.join("pwned").exists());
    assert!(
        !sb.tmux(["list-buffers"]).contains("batty-"),
        "buffers are deleted"
    );
}

#[test]
fn errors_are_classified_and_panes_listed() {
    let sb = Sandbox::new();
    let t = tmux(&sb);
    assert!(t.sessions().unwrap().is_empty(), "no server: no sessions");
    assert!(matches!(
        t.list_panes_session("$9"),
        Err(TmuxError::NoServer { .. })
    ));
    t.require_version().unwrap();

    let spec = PaneSpec {
        cwd: sb.root.clone(),
        argv: vec!["sh".into(), "-c".into(), "exit 5".into()],
        ..Default::default()
    };
    let keep = WindowSetup {
        remain_on_exit: true,
        pipe_to: None,
    };
    let created = t.new_session("s1", "main\tname", &spec, &keep).unwrap();
    // tmux marks the pane dead as soon as the program exits and fills in the exit status
    // when it reaps it. tmux 3.3a on a loaded machine sometimes misses the SIGCHLD and never
    // reaps; another SIGCHLD makes it look again (the supervisor does not rely on the status).
    let server_pid = sb.tmux(["display-message", "-p", "#{pid}"]);
    let panes = wait_until(
        "pane dead with its exit status",
        Duration::from_secs(10),
        || {
            let panes = t.list_panes_session(&created.session_id).ok()?;
            if panes[0].dead && panes[0].dead_status.is_none() {
                let _ = std::process::Command::new("kill")
                    .args(["-CHLD", &server_pid])
                    .status();
            }
            (panes[0].dead && panes[0].dead_status.is_some()).then_some(panes)
        },
    );
    assert_eq!(panes[0].dead_status, Some(5));
    assert_eq!(panes[0].window_name, "main\tname");
    assert_eq!(
        t.find_session("s1").unwrap(),
        Some(created.session_id.clone())
    );

    let err = t.kill_pane("%999").unwrap_err();
    assert!(matches!(err, TmuxError::NoSuchTarget { .. }), "{err}");
    assert!(err.is_absent());
    let err = t.list_panes_session("$999").unwrap_err();
    assert!(err.is_absent(), "{err}");

    let live = PaneSpec {
        cwd: sb.root.clone(),
        argv: vec!["sh".into(), "-c".into(), "echo ready; exec cat".into()],
        ..Default::default()
    };
    let w = t
        .new_window(&created.session_id, 4, "#{x}", &live, &keep)
        .unwrap();
    t.rename_window(&w.window_id, "renamed #{y}").unwrap();
    assert_eq!(
        t.display(&w.window_id, "#{window_name} #{window_index}")
            .unwrap(),
        "renamed #{y} 4"
    );
    wait_until("screen captured", Duration::from_secs(10), || {
        t.capture_pane(&w.pane_id)
            .ok()?
            .contains("ready")
            .then_some(())
    });
    let log = t.split_window(&w.pane_id, 5, &live).unwrap();
    let all = t.list_panes_all().unwrap();
    assert!(
        all.iter()
            .any(|p| p.pane_id == log && p.window_id == w.window_id)
    );
    t.kill_session(&created.session_id).unwrap();
}

#[test]
fn a_capture_comes_with_the_cursor_row_it_was_taken_at() {
    let sb = Sandbox::new();
    sb.start_tmux();
    let t = tmux(&sb);
    let spec = PaneSpec {
        cwd: sb.root.clone(),
        argv: vec![
            "sh".into(),
            "-c".into(),
            "printf 'one\\ntwo\\n> typed'; exec cat >/dev/null".into(),
        ],
        ..Default::default()
    };
    let created = t
        .new_session("cursor", "w", &spec, &WindowSetup::default())
        .unwrap();
    let (screen, row) = wait_until("the prompt drawn", Duration::from_secs(10), || {
        let (screen, row) = t.capture_pane_styled_at(&created.pane_id).ok()?;
        screen.contains("> typed").then_some((screen, row))
    });
    assert_eq!(row, Some(2), "{screen:?}");
    assert!(screen.starts_with("one\ntwo\n> typed"), "{screen:?}");
    t.send_keys(&created.pane_id, &["Enter"]).unwrap();
    let row = wait_until(
        "the cursor on the next line",
        Duration::from_secs(10),
        || {
            let (_, row) = t.capture_pane_styled_at(&created.pane_id).ok()?;
            (row == Some(3)).then_some(row)
        },
    );
    assert_eq!(row, Some(3));
}
