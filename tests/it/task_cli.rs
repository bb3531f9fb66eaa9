//! `batty task` through the binary: each subcommand, board choice, problems reported once,
//! exit codes, and every untouched file byte-identical after every command.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::Sandbox;

const BOARD: &str = ".batty/kanban/main";

/// A sandbox whose `main` board is a copy of `tests/fixtures/board`.
fn with_fixture_board() -> Sandbox {
    let sb = Sandbox::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/board");
    copy_dir(&src, &sb.path(BOARD));
    sb
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under the board, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Files that differ between two snapshots (added, removed or changed), minus bookkeeping
/// (the activity log, the lock, the id index).
fn changed(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<String> {
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| k.display().to_string())
        .filter(|k| k != "activity.jsonl" && k != ".lock" && k != batty::board::INDEX_FILE)
        .collect();
    names.dedup();
    names
}

#[test]
fn each_command_touches_only_its_task() {
    let sb = with_fixture_board();
    let dir = sb.path(BOARD);
    let cases: &[(&[&str], &[&str])] = &[
        (&["task", "list"], &[]),
        (&["task", "list", "--json"], &[]),
        (&["task", "list", "--ready"], &[]),
        (&["task", "show", "3"], &[]),
        (&["task", "show", "5", "--json"], &[]),
        (
            &["task", "move", "3", "review"],
            &["tasks/003-auth-flow.md"],
        ),
        (
            &["task", "edit", "4", "--unblock"],
            &["tasks/004-blocked-task.md"],
        ),
        (
            &["task", "edit", "6", "--title", "Renamed"],
            &["tasks/006-hand-written.md", "tasks/006-renamed.md"],
        ),
        (
            &["task", "done", "5", "--note", "shipped"],
            &["tasks/005-multi-line-title.md"],
        ),
        (
            &["task", "claim", "4", "--agent", "calm-heron"],
            &["tasks/004-blocked-task.md"],
        ),
        (&["task", "release", "4"], &["tasks/004-blocked-task.md"]),
        (
            &["task", "add", "Brand new"],
            &["config.yml", "tasks/009-brand-new.md"],
        ),
    ];
    for (args, touched) in cases {
        let before = snapshot(&dir);
        sb.batty(*args).ok();
        let after = snapshot(&dir);
        let mut want: Vec<String> = touched.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(
            changed(&before, &after),
            want,
            "after `batty {}`",
            args.join(" ")
        );
    }
    // `add` changed only the `next_id` line of config.yml.
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/board/config.yml"),
    )
    .unwrap();
    assert_eq!(
        sb.read(format!("{BOARD}/config.yml")),
        fixture.replace("next_id: 9", "next_id: 10")
    );
}

#[test]
fn rewrites_keep_comments_unknown_keys_and_layout() {
    let sb = with_fixture_board();
    let path = format!("{BOARD}/tasks/006-hand-written.md");
    let before = sb.read(&path);
    sb.batty(["task", "move", "6", "in-progress"]).ok();
    let after = sb.read(&path);
    let kept: Vec<&str> = before
        .lines()
        .filter(|l| !l.starts_with("status:"))
        .collect();
    let now: Vec<&str> = after
        .lines()
        .filter(|l| !l.starts_with("status:") && !l.starts_with("updated:"))
        .collect();
    assert_eq!(now, kept, "{after}");
    assert!(after.contains("status: in-progress\n"), "{after}");
    let activity = sb.read(format!("{BOARD}/activity.jsonl"));
    assert!(
        activity.contains(r#""action":"move","task_id":6,"detail":"todo -> in-progress""#),
        "{activity}"
    );
}

#[test]
fn bad_files_are_reported_once_and_skipped() {
    let sb = with_fixture_board();
    std::fs::write(
        sb.path(format!("{BOARD}/tasks/010-crlf.md")),
        "---\r\nid: 10\r\n---\r\n",
    )
    .unwrap();
    std::fs::write(
        sb.path(format!("{BOARD}/tasks/011-binary.md")),
        b"---\nid: 11\ntitle: \xff\xfe\n---\n",
    )
    .unwrap();
    std::fs::write(
        sb.path(format!("{BOARD}/tasks/012-huge.md")),
        vec![b'x'; 2 * 1024 * 1024],
    )
    .unwrap();
    std::fs::write(
        sb.path(format!("{BOARD}/tasks/013-dup.md")),
        "---\nid: 3\ntitle: Same id\nstatus: todo\n---\n",
    )
    .unwrap();
    let out = sb.batty(["task", "list"]).ok();
    let warnings: Vec<&str> = out.stderr.lines().collect();
    let expect = [
        "007-broken-yaml.md:5: ",
        "008-no-front-matter.md:1: the file does not start with `---`",
        "010-crlf.md:1: the file has CRLF line endings",
        "011-binary.md:3: the file is not valid UTF-8",
        "012-huge.md: the file is larger than 1024 KiB",
        "013-dup.md:2: duplicate id 3 (also in `003-auth-flow.md`)",
    ];
    assert_eq!(warnings.len(), expect.len(), "{}", out.stderr);
    for (line, want) in warnings.iter().zip(expect) {
        assert!(
            line.starts_with("warning: ") && line.contains(want),
            "{line:?} lacks {want:?}"
        );
    }
    for id in ["#1 ", "#2 ", "#3 ", "#4 ", "#5 ", "#6 "] {
        assert!(out.stdout.contains(id), "{id} missing:\n{}", out.stdout);
    }
    sb.batty(["task", "show", "7"])
        .fails(1)
        .error_mentions("007-broken-yaml.md:5:");
}

#[test]
fn ready_set_in_pick_order_as_json() {
    let sb = with_fixture_board();
    // #2 (expedite) is claimed until 2099; release it so the expedite class comes first.
    sb.batty(["task", "release", "2"]).ok();
    let out = sb.batty(["task", "list", "--ready", "--json"]).ok();
    let tasks: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let ids: Vec<u64> = tasks.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    // #2 expedite first; #3 waits for #2; #4 is blocked; #5 (high) before #6 (medium).
    assert_eq!(ids, [2, 5, 6]);
    let first = &tasks[0];
    // Keys in kanban-md's order (Go struct order), read from the text itself.
    let first_object = out.stdout.split("\n  },").next().unwrap();
    let keys: Vec<&str> = first_object
        .lines()
        .filter_map(|l| l.strip_prefix("    \"")?.split_once('"').map(|(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        [
            "id", "title", "status", "priority", "created", "updated", "started", "assignee",
            "estimate", "class", "body", "file"
        ]
    );
    assert_eq!(first["status"], "todo");
}

#[test]
fn claims_are_exclusive_and_read_only() {
    let sb = with_fixture_board();
    let file = sb.path(format!("{BOARD}/tasks/006-hand-written.md"));
    let out = sb
        .batty(["task", "claim", "6", "--agent", "calm-heron", "--json"])
        .ok();
    let task: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (task["status"].as_str(), task["claimed_by"].as_str()),
        (Some("in-progress"), Some("calm-heron"))
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o444
    );
    // The same agent again: fine and unchanged; another agent: refused.
    sb.batty(["task", "claim", "6", "--agent", "calm-heron"])
        .ok();
    sb.batty(["task", "claim", "6", "--agent", "other-bot"])
        .fails(1)
        .error_mentions("task #6 is claimed by `calm-heron`");
    sb.batty(["task", "claim", "3", "--agent", "other-bot"])
        .fails(1)
        .error_mentions("task #3 is not ready: it waits for #2");
    // A claimed file can still be changed by batty, and stays read-only.
    sb.batty(["task", "edit", "6", "--priority", "high"]).ok();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o444
    );
    let out = sb
        .batty(["task", "release", "6", "--reason", "agent died"])
        .ok();
    assert_eq!(out.stdout.trim(), "released #6 (now todo)");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert!(
        mode & 0o200 != 0,
        "released file is writable again: {mode:o}"
    );
    let activity = sb.read(format!("{BOARD}/activity.jsonl"));
    assert!(
        activity.contains(r#""action":"release","task_id":6,"detail":"calm-heron: agent died""#),
        "{activity}"
    );
}

#[test]
fn board_is_chosen_by_flag_env_worktree_or_being_the_only_one() {
    let sb = Sandbox::new();
    sb.batty(["init"]).ok();
    sb.batty(["task", "add", "On main"]).ok();
    sb.batty(["init", "--phase", "v2"]).ok();
    sb.batty(["task", "list"])
        .fails(1)
        .error_mentions("several boards: main, v2");
    sb.batty(["task", "add", "--phase", "v2", "On v2"]).ok();
    let v2 = sb.path(".batty/kanban/v2");
    let listed = sb
        .batty(["task", "list", "--board", v2.to_str().unwrap()])
        .ok()
        .stdout;
    assert!(
        listed.contains("On v2") && !listed.contains("On main"),
        "{listed}"
    );
    let listed = sb
        .batty(["task", "list"])
        .env("BATTY_BOARD", &v2)
        .ok()
        .stdout;
    assert!(listed.contains("On v2"), "{listed}");
    // Inside an agent worktree (which may carry a committed copy of `.batty/`), the phase of
    // the worktree picks the main checkout's board.
    let wt = sb.path(".batty/worktrees/v2/brave-otter/src");
    std::fs::create_dir_all(&wt).unwrap();
    std::fs::create_dir_all(sb.path(".batty/worktrees/v2/brave-otter/.batty/kanban/stale"))
        .unwrap();
    sb.batty(["task", "done", "1"]).cwd(&wt).ok();
    let listed = sb
        .batty(["task", "list", "--phase", "v2", "--json"])
        .ok()
        .stdout;
    assert!(listed.contains(r#""status": "done""#), "{listed}");
    sb.batty(["task", "list", "--phase", "nope"])
        .fails(1)
        .error_mentions("no board at");
    sb.batty(["task", "list", "--phase", "a/b"])
        .fails(1)
        .error_mentions("invalid phase name");
}

#[test]
fn add_edit_show_and_errors() {
    let sb = Sandbox::new();
    sb.batty(["init"]).ok();
    let out = sb
        .batty([
            "task",
            "add",
            "Fix: login",
            "--priority",
            "high",
            "--tag",
            "auth,web",
            "--body",
            "Two\nlines",
        ])
        .ok();
    assert_eq!(
        out.stdout.trim(),
        "created #1 `001-fix-login.md`: Fix: login"
    );
    let text = sb.read(format!("{BOARD}/tasks/001-fix-login.md"));
    assert!(
        text.contains("title: 'Fix: login'\n") && text.contains("tags:\n    - auth\n    - web\n"),
        "{text}"
    );
    assert!(text.ends_with("---\n\nTwo\nlines\n"), "{text}");
    sb.batty([
        "task",
        "add",
        "Second",
        "--depends-on",
        "1",
        "--due",
        "2026-03-01",
    ])
    .ok();
    let text = sb.read(format!("{BOARD}/tasks/002-second.md"));
    assert!(
        text.contains("due: \"2026-03-01\"\ndepends_on:\n    - 1\n"),
        "{text}"
    );
    sb.batty(["task", "add", "Bad", "--depends-on", "9"])
        .fails(1)
        .error_mentions("task #9 does not exist");
    sb.batty(["task", "add", "Bad", "--priority", "urgent"])
        .fails(1)
        .error_mentions("unknown priority `urgent`");
    sb.batty(["task", "add", "Bad", "--due", "tomorrow"])
        .fails(1)
        .error_mentions("invalid due date");
    sb.batty([
        "task",
        "edit",
        "2",
        "--block",
        "needs a key",
        "--add-tag",
        "x",
    ])
    .ok();
    let show = sb.batty(["task", "show", "2"]).ok().stdout;
    assert!(
        show.starts_with("#2 Second\n") && show.contains("blocked     needs a key"),
        "{show}"
    );
    sb.batty(["task", "move", "2", "nowhere"])
        .fails(1)
        .error_mentions("unknown status `nowhere`");
    sb.batty(["task", "show", "42"])
        .fails(1)
        .error_mentions("task #42 not found");
    sb.batty(["task"]).fails(1);
}

#[test]
fn a_task_folder_that_is_a_symlink_loop_is_a_clear_error() {
    let sb = Sandbox::new();
    sb.batty(["init"]).ok();
    let tasks = sb.path(format!("{BOARD}/tasks"));
    std::fs::remove_dir(&tasks).unwrap();
    std::os::unix::fs::symlink(&tasks, &tasks).unwrap();
    sb.batty(["task", "list"])
        .fails(1)
        .error_mentions("cannot read")
        .error_mentions("symbolic links");
    std::fs::remove_file(sb.path(format!("{BOARD}/config.yml"))).unwrap();
    sb.batty(["task", "list"])
        .fails(1)
        .error_mentions("no board in");
    sb.batty(["task", "list", "--phase", "main"])
        .fails(1)
        .error_mentions("`config.yml` is missing");
}
