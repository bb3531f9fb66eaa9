//! `batty task` on boards people and scripts have been at: special files named `*.md`,
//! terminal escapes in task text, broken dependencies, bad arguments, leftovers of killed
//! writers, symlinked files, and saves racing batty's own writes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{BATTY, Sandbox, wait_until};

const TASKS: &str = ".batty/kanban/main/tasks";

fn task(id: u64, extra: &str) -> String {
    format!("---\nid: {id}\ntitle: Task {id}\nstatus: todo\npriority: medium\n{extra}---\n")
}

fn board_with(files: &[(&str, &str)]) -> Sandbox {
    let sb = Sandbox::new();
    sb.batty(["init"]).ok();
    for (name, text) in files {
        sb.write(format!("{TASKS}/{name}"), text);
    }
    sb
}

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// Runs `batty <args>` and waits for it at most `deadline`; a process still running then is
/// killed and the test fails (a hang is the bug this guards against).
fn batty_within(sb: &Sandbox, args: &[&str], deadline: Duration) -> std::process::Output {
    let mut cmd = Command::new(BATTY);
    cmd.args(args)
        .current_dir(&sb.repo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    sb.apply_env(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`batty {}` still running after {deadline:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_fifo_named_like_a_task_hangs_nothing() {
    let sb = board_with(&[("001-task-1.md", &task(1, ""))]);
    mkfifo(&sb.path(format!("{TASKS}/002-fifo.md")));
    std::fs::create_dir(sb.path(format!("{TASKS}/003-dir.md"))).unwrap();
    let _sock =
        std::os::unix::net::UnixListener::bind(sb.path(format!("{TASKS}/004-sock.md"))).unwrap();
    let deadline = Duration::from_secs(10);
    let out = batty_within(&sb, &["task", "list"], deadline);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    for (name, what) in [
        ("002-fifo.md", "a FIFO"),
        ("003-dir.md", "a directory"),
        ("004-sock.md", "a socket"),
    ] {
        let line = format!("{name}: {what} named like a task file, not a regular file; skipped");
        assert!(stderr.contains(&line), "{stderr}");
    }
    assert!(String::from_utf8(out.stdout).unwrap().contains("#1 "));
    for args in [
        &["task", "show", "2"][..],
        &["task", "show", "1"],
        &["task", "add", "Another"],
        &["task", "move", "1", "review"],
        &["task", "list", "--ready", "--json"],
    ] {
        batty_within(&sb, args, deadline);
    }
    sb.batty(["task", "show", "2"])
        .fails(1)
        .error_mentions("002-fifo.md: a FIFO");
}

#[test]
fn terminal_escapes_in_task_text_are_printed_escaped() {
    let evil = "\x1b]2;HACKED-TITLE\x07 fix \x1b[31mred";
    let sb = board_with(&[(
        "001-evil.md",
        &format!(
            "---\nid: 1\ntitle: \"{}\"\nstatus: todo\nassignee: \"\\e[2J\"\n---\n\nbody \x1b[1mbold\x1b[0m\n",
            evil.replace('\x1b', "\\e").replace('\x07', "\\a")
        ),
    )]);
    let escaped = "\\e]2;HACKED-TITLE\\a fix \\e[31mred";
    let commands: &[&[&str]] = &[
        &["task", "list"],
        &["task", "list", "--ready"],
        &["task", "show", "1"],
        &["task", "move", "1", "todo"],
        &["task", "edit", "1", "--priority", "high"],
        &["task", "claim", "1", "--agent", "brave-otter"],
        &["task", "release", "1"],
        &["task", "done", "1"],
    ];
    for args in commands {
        let out = sb.batty(*args).ok();
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !all.contains('\x1b') && !all.contains('\x07'),
            "{args:?}: {all:?}"
        );
        if matches!(args[1], "list" | "show" | "edit" | "done") {
            assert!(out.stdout.contains(escaped), "{args:?}: {}", out.stdout);
        }
    }
    let show = sb.batty(["task", "show", "1"]).ok().stdout;
    assert!(
        show.contains("assignee    \\e[2J") && show.contains("body \\e[1mbold\\e[0m"),
        "{show}"
    );
    // JSON carries the text exactly, escaped as JSON escapes it.
    let json = sb.batty(["task", "show", "1", "--json"]).ok().stdout;
    assert!(
        json.contains(r#""title": "\u001b]2;HACKED-TITLE\u0007 fix \u001b[31mred""#),
        "{json}"
    );
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["title"], evil);
    // A problem naming a file with an escape in its name is escaped too.
    sb.write(format!("{TASKS}/\x1b[5m.md"), "not a task");
    let out = sb.batty(["task", "list"]).ok();
    assert!(
        out.stderr.contains("\\e[5m.md:1: the file does not start"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains('\x1b'));
}

#[test]
fn cycles_are_refused_with_their_path() {
    let sb = board_with(&[
        ("001-task-1.md", &task(1, "")),
        ("002-task-2.md", &task(2, "depends_on:\n    - 1\n")),
        ("003-task-3.md", &task(3, "depends_on:\n    - 2\n")),
        // #4 waits for #5, which does not exist yet: the next task added is #5.
        ("004-task-4.md", &task(4, "depends_on:\n    - 5\n")),
    ]);
    let config = sb.path(".batty/kanban/main/config.yml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("next_id: 1\n", "next_id: 5\n")).unwrap();
    let before = std::fs::read_to_string(sb.path(format!("{TASKS}/001-task-1.md"))).unwrap();
    sb.batty(["task", "edit", "1", "--depends-on", "3"])
        .fails(1)
        .error_mentions("dependency cycle: #1 -> #3 -> #2 -> #1");
    sb.batty(["task", "edit", "1", "--depends-on", "1"])
        .fails(1)
        .error_mentions("dependency cycle: #1 -> #1");
    let after = std::fs::read_to_string(sb.path(format!("{TASKS}/001-task-1.md"))).unwrap();
    assert_eq!(before, after, "a refused edit writes nothing");
    sb.batty(["task", "add", "Closes a loop", "--depends-on", "4"])
        .fails(1)
        .error_mentions("dependency cycle: #5 -> #4 -> #5");
    assert!(
        !sb.read(".batty/kanban/main/config.yml")
            .contains("next_id: 6")
    );
    // A cycle written by hand is reported by `task list`, which still lists.
    sb.write(
        format!("{TASKS}/001-task-1.md"),
        &task(1, "depends_on:\n    - 3\n"),
    );
    let out = sb.batty(["task", "list"]).ok();
    assert!(
        out.stderr
            .contains("001-task-1.md:6: dependency cycle: #1 -> #3 -> #2 -> #1;"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("#3 "));
}

#[test]
fn unknown_statuses_and_missing_dependencies_are_reported_and_not_dispatched() {
    let sb = board_with(&[
        (
            "001-task-1.md",
            &task(1, "").replace("status: todo", "status: nonsense"),
        ),
        ("002-task-2.md", &task(2, "depends_on:\n    - 99\n")),
        ("003-task-3.md", &task(3, "")),
    ]);
    let out = sb.batty(["task", "list", "--ready"]).ok();
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{}", out.stderr);
    assert!(warnings[0].ends_with(
        "001-task-1.md:4: status `nonsense` is not one of the board's statuses (backlog, todo, in-progress, review, done, archived); the task is never dispatched"
    ), "{}", warnings[0]);
    assert!(
        warnings[1].ends_with(
            "002-task-2.md:6: depends on #99, which is not on the board; the task is not dispatched"
        ),
        "{}",
        warnings[1]
    );
    let ids: Vec<&str> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(ids, ["#3"]);
    let show = sb.batty(["task", "show", "2"]).ok().stdout;
    assert!(
        show.contains("ready       no: it depends on #99, which is not on the board"),
        "{show}"
    );
    let show = sb.batty(["task", "show", "3"]).ok().stdout;
    assert!(show.contains("ready       yes"), "{show}");
    sb.batty(["task", "claim", "2", "--agent", "brave-otter"])
        .fails(1)
        .error_mentions("task #2 is not ready: it depends on #99, which is not on the board");
}

#[test]
fn bad_arguments_are_errors_that_say_what_to_do() {
    let sb = board_with(&[("001-task-1.md", &task(1, ""))]);
    sb.batty(["task", "list", "--status", "todo,bogus"])
        .fails(1)
        .error_mentions(
            "unknown status `bogus` (the board has: backlog, todo, in-progress, review, done, archived)",
        );
    for title in ["two\nlines", "tab\there", "\x1b]2;x\x07"] {
        sb.batty(["task", "add", title])
            .fails(1)
            .error_mentions("a title is one line of text");
        sb.batty(["task", "edit", "1", "--title", title])
            .fails(1)
            .error_mentions("a title is one line of text");
    }
    sb.batty(["task", "add", "ok", "--tag", "a\nb"])
        .fails(1)
        .error_mentions("the tag `a\\nb` has a control character");
    let out = sb.batty(["task", "edit", "1"]).fails(1);
    out.error_mentions("nothing to change for #1");
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    let out = sb.batty(["task", "edit", "1", "--priority", "medium"]).ok();
    assert_eq!(
        out.stdout.trim(),
        "#1 unchanged: it already has those values"
    );
    let board = sb.path(".batty/kanban/main");
    let not_found = format!("task #42 not found in {}", board.display());
    for args in [
        &["task", "show", "42"][..],
        &["task", "move", "42", "done"],
        &["task", "done", "42"],
        &["task", "edit", "42", "--priority", "high"],
        &["task", "release", "42"],
        &["task", "claim", "42", "--agent", "brave-otter"],
    ] {
        sb.batty(args).fails(1).error_mentions(&not_found);
    }
    assert_eq!(
        sb.read(".batty/kanban/main/tasks/001-task-1.md"),
        task(1, "")
    );
}

#[test]
fn leftover_temp_files_go_when_their_writer_is_gone() {
    let sb = board_with(&[("001-task-1.md", &task(1, ""))]);
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let mut alive = Command::new("sleep").arg("60").spawn().unwrap();
    let stale = sb.path(format!("{TASKS}/.001-task-1.md.{gone_pid}.8.tmp"));
    let live = sb.path(format!("{TASKS}/.001-task-1.md.{}.0.tmp", alive.id()));
    std::fs::write(&stale, "half a task").unwrap();
    std::fs::write(&live, "being written").unwrap();
    let out = sb.batty(["task", "list"]).ok();
    assert_eq!(out.stderr, "");
    assert!(!stale.exists(), "the dead writer's temp file is removed");
    assert!(live.exists(), "a live writer's temp file stays");
    alive.kill().unwrap();
    alive.wait().unwrap();
    batty::board::remove_leftover_temps(&sb.path(".batty/kanban/main")).unwrap();
    assert!(!live.exists());
}

#[test]
fn a_symlinked_task_file_stays_a_link() {
    let sb = board_with(&[]);
    sb.write("notes/login.md", &task(1, ""));
    let link = sb.path(format!("{TASKS}/001-task-1.md"));
    std::os::unix::fs::symlink("../../../../notes/login.md", &link).unwrap();
    sb.batty(["task", "claim", "1", "--agent", "brave-otter"])
        .ok();
    sb.batty(["task", "edit", "1", "--priority", "high"]).ok();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let text = sb.read("notes/login.md");
    assert!(
        text.contains("claimed_by: brave-otter\n") && text.contains("priority: high\n"),
        "{text}"
    );
}

#[test]
fn saves_by_rename_racing_batty_are_all_kept() {
    let sb = board_with(&[("001-task-1.md", &task(1, ""))]);
    let path = sb.path(format!("{TASKS}/001-task-1.md"));
    const SAVES: usize = 100;
    // A person saving with an editor, over and over: read the file, add a key, write a swap
    // file, rename it over the task file. Paced by a pseudo-random 2-8 ms: far faster than a
    // person, and about as long as one change of batty's takes (its temp file's fsync is most
    // of it), so many saves land inside a change.
    let person = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            for i in 0..SAVES {
                let text = std::fs::read_to_string(&path).unwrap();
                let new = text.replacen("\n---\n", &format!("\nnote{i}: saved\n---\n"), 1);
                let swap = path.with_file_name(".001-task-1.md.swp");
                std::fs::write(&swap, new).unwrap();
                std::fs::rename(&swap, &path).unwrap();
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                std::thread::sleep(Duration::from_micros(2000 + seed % 6000));
            }
        })
    };
    let mut changes = 0;
    while !person.is_finished() {
        let priority = ["low", "high"][changes % 2];
        sb.batty(["task", "edit", "1", "--priority", priority]).ok();
        changes += 1;
    }
    person.join().unwrap();
    assert!(changes > 5, "batty changed the task {changes} times");
    let text = std::fs::read_to_string(&path).unwrap();
    for i in 0..SAVES {
        assert!(
            text.contains(&format!("\nnote{i}: saved\n")),
            "save {i} lost:\n{text}"
        );
    }
    let left = wait_until(
        "the task folder holds one file",
        Duration::from_secs(5),
        || {
            let n = std::fs::read_dir(sb.path(TASKS)).unwrap().count();
            (n == 1).then_some(n)
        },
    );
    assert_eq!(left, 1);
}
