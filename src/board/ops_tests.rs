//! Changes under people's hands: a save made while batty changes a task (in place or by
//! rename, at every point of the compare-and-swap) keeps both sides' fields.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::board::files::{HOOK, Stage};
use crate::board::{Board, default_config_yml, parse_timestamp};

const TASK: &str = "---\nid: 1\ntitle: Fix login\nstatus: todo\npriority: low\n---\n\nThe body.\n";

fn board(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = default_config_yml("t").replace("next_id: 1\n", "next_id: 10\n");
    std::fs::write(dir.path().join("config.yml"), config).unwrap();
    std::fs::create_dir(dir.path().join("tasks")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join("tasks").join(name), text).unwrap();
    }
    dir
}

fn now() -> Timestamp {
    parse_timestamp("2026-03-01T10:00:00Z").unwrap()
}

/// A person's save of `path`: the file as it is now with `key: value` set in its front matter,
/// written in place (truncate and write, as `echo >` does) or to a swap file renamed over it
/// (as editors do).
fn person_saves(path: &Path, key: &str, value: &str, by_rename: bool) {
    let text = std::fs::read_to_string(path).unwrap();
    let (front, rest) = text[4..].split_once("\n---\n").unwrap();
    let mut lines: Vec<String> = front
        .lines()
        .filter(|l| !l.starts_with(&format!("{key}:")))
        .map(str::to_owned)
        .collect();
    lines.push(format!("{key}: {value}"));
    let new = format!("---\n{}\n---\n{rest}", lines.join("\n"));
    if by_rename {
        let swap = path.with_file_name(".person.swp");
        std::fs::write(&swap, new).unwrap();
        std::fs::rename(&swap, path).unwrap();
    } else {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.write_all(new.as_bytes()).unwrap();
    }
}

fn set_hook(f: impl FnMut(Stage) + 'static) {
    HOOK.with(|h| *h.borrow_mut() = Some(Box::new(f)));
}

fn clear_hook() {
    HOOK.with(|h| h.borrow_mut().take());
}

fn read(dir: &Path) -> Task {
    Board::load(dir).unwrap().task(1).unwrap().clone()
}

fn extra_value(path: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")).map(str::to_owned))
}

#[test]
fn a_claim_is_reapplied_on_top_of_a_save_made_during_it() {
    for by_rename in [false, true] {
        let dir = board(&[("001-fix-login.md", TASK)]);
        let path = dir.path().join("tasks/001-fix-login.md");
        let target = path.clone();
        let mut saved = false;
        set_hook(move |stage| {
            if stage == Stage::BeforeCheck && !saved {
                saved = true;
                person_saves(&target, "priority", "critical", by_rename);
                person_saves(&target, "reviewer", "ada", by_rename);
            }
        });
        let statuses = vec!["todo".to_owned()];
        let claimed = claim(dir.path(), 1, "brave-otter", &statuses, now());
        clear_hook();
        let claimed = claimed.unwrap();
        assert_eq!(claimed.priority, "critical", "by rename: {by_rename}");
        let t = read(dir.path());
        assert_eq!(
            (
                t.status.as_str(),
                t.priority.as_str(),
                t.claimed_by.as_deref()
            ),
            ("in-progress", "critical", Some("brave-otter")),
            "by rename: {by_rename}"
        );
        assert_eq!(extra_value(&path, "reviewer").as_deref(), Some("ada"));
        assert_eq!(t.body, "The body.\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o444);
    }
}

#[test]
fn a_save_that_makes_the_task_not_ready_stops_the_claim() {
    let dir = board(&[("001-fix-login.md", TASK)]);
    let target = dir.path().join("tasks/001-fix-login.md");
    let mut saved = false;
    set_hook(move |stage| {
        if stage == Stage::BeforeSwap && !saved {
            saved = true;
            person_saves(&target, "status", "done", true);
        }
    });
    let statuses = vec!["todo".to_owned()];
    let result = claim(dir.path(), 1, "brave-otter", &statuses, now());
    clear_hook();
    assert!(
        matches!(result, Err(BoardError::NotReady { .. })),
        "{result:?}"
    );
    let t = read(dir.path());
    assert_eq!((t.status.as_str(), t.claimed_by), ("done", None));
}

#[test]
fn with_a_plain_rename_a_save_after_the_check_is_lost() {
    // What the exchange buys: the same save, with the swap done by rename(2), is overwritten.
    let dir = board(&[("001-fix-login.md", TASK)]);
    let target = dir.path().join("tasks/001-fix-login.md");
    let hooked = target.clone();
    let mut saved = false;
    set_hook(move |stage| {
        if stage == Stage::BeforeSwap && !saved {
            saved = true;
            person_saves(&hooked, "reviewer", "ada", true);
        }
    });
    force_plain_rename_for_test(true);
    let result = move_to(dir.path(), 1, "review", None, now());
    force_plain_rename_for_test(false);
    clear_hook();
    result.unwrap();
    assert_eq!(extra_value(&target, "reviewer"), None);
    assert!(!files::last_commit().exchanged);
}

fn force_plain_rename_for_test(on: bool) {
    files::force_plain_rename(on);
}

#[test]
fn symlinked_task_files_stay_links() {
    let dir = board(&[]);
    let elsewhere = dir.path().join("notes");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("fix.md"), TASK).unwrap();
    let link = dir.path().join("tasks/001-fix-login.md");
    std::os::unix::fs::symlink("../notes/fix.md", &link).unwrap();
    let statuses = vec!["todo".to_owned()];
    claim(dir.path(), 1, "brave-otter", &statuses, now()).unwrap();
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink());
    let text = std::fs::read_to_string(elsewhere.join("fix.md")).unwrap();
    assert!(text.contains("claimed_by: brave-otter\n"), "{text}");
    let mode = std::fs::metadata(elsewhere.join("fix.md"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444);
    // A new title renames the link, not its target.
    update(dir.path(), 1, now(), |t, _| {
        t.title = "Fix logout".into();
        Ok(())
    })
    .unwrap();
    let renamed = dir.path().join("tasks/001-fix-logout.md");
    assert!(
        std::fs::symlink_metadata(&renamed)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!link.exists());
    assert!(elsewhere.join("fix.md").exists());
    let left: Vec<PathBuf> = std::fs::read_dir(dir.path().join("tasks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, [renamed]);
}

#[test]
fn titles_must_be_one_line_and_dependencies_must_not_loop() {
    let dir = board(&[
        ("001-fix-login.md", TASK),
        (
            "002-b.md",
            "---\nid: 2\ntitle: b\nstatus: todo\ndepends_on:\n    - 1\n---\n",
        ),
    ]);
    let new = |title: &str| NewTask {
        title: title.into(),
        ..NewTask::default()
    };
    for bad in ["two\nlines", "bell\x07", "\x1b]2;HACKED\x07"] {
        let err = create(dir.path(), new(bad), now()).unwrap_err();
        assert!(err.to_string().contains("a title is one line"), "{err}");
    }
    let err = update(dir.path(), 1, now(), |t, _| {
        t.depends_on = vec![2];
        Ok(())
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "dependency cycle: #1 -> #2 -> #1; a task cannot wait for itself"
    );
    let err = update(dir.path(), 1, now(), |t, _| {
        t.depends_on = vec![1];
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(err, BoardError::Cycle { .. }), "{err}");
    let err = update(dir.path(), 1, now(), |t, _| {
        t.depends_on = vec![99];
        Ok(())
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid task: task #99 does not exist");
    assert_eq!(read(dir.path()).depends_on, Vec::<u64>::new());
}

#[test]
fn create_trusts_next_id_and_steps_past_a_taken_one() {
    let dir = board(&[("001-fix-login.md", TASK)]);
    let t = create(
        dir.path(),
        NewTask {
            title: "Ten".into(),
            ..NewTask::default()
        },
        now(),
    )
    .unwrap();
    assert_eq!((t.id, t.file_name()), (10, "010-ten.md"));
    let config = std::fs::read_to_string(dir.path().join("config.yml")).unwrap();
    assert!(config.contains("\nnext_id: 11\n"));
    // A person sets next_id back; the index knows #10 is taken, and the folder has 011.
    std::fs::write(
        dir.path().join("config.yml"),
        config.replace("next_id: 11", "next_id: 10"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tasks/011-by-hand.md"),
        "---\nid: 11\ntitle: by hand\nstatus: todo\n---\n",
    )
    .unwrap();
    let t = create(
        dir.path(),
        NewTask {
            title: "Next".into(),
            ..NewTask::default()
        },
        now(),
    )
    .unwrap();
    assert_eq!(t.id, 12);
    let config = std::fs::read_to_string(dir.path().join("config.yml")).unwrap();
    assert!(config.contains("\nnext_id: 13\n"), "{config}");
    assert!(Board::load(dir.path()).unwrap().problems().is_empty());
}

#[test]
fn a_config_edit_during_create_is_kept() {
    let dir = board(&[]);
    let config = dir.path().join("config.yml");
    let hooked = config.clone();
    let mut saved = false;
    set_hook(move |stage| {
        if stage == Stage::BeforeSwap
            && !saved
            && !hooked.with_file_name("tasks").join("010-x.md").exists()
        {
            saved = true;
            let text = std::fs::read_to_string(&hooked).unwrap();
            std::fs::write(
                &hooked,
                text.replace("board:\n    name: t\n", "board:\n    name: renamed\n"),
            )
            .unwrap();
        }
    });
    let t = create(
        dir.path(),
        NewTask {
            title: "x".into(),
            ..NewTask::default()
        },
        now(),
    );
    clear_hook();
    assert_eq!(t.unwrap().id, 10);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("name: renamed\n") && text.contains("next_id: 11\n"),
        "{text}"
    );
}

/// One person's save in a schedule: in place or by rename, of key `p<key>`.
#[derive(Debug, Clone)]
struct Save {
    by_rename: bool,
    key: u8,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("BATTY_CAS_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    /// batty makes `changes` changes one after another (each sets `estimate` and adds a tag);
    /// a person saves the file at the points the schedule says: before a change, or at each
    /// point of a change's compare-and-swap. Afterwards the file holds every field each side
    /// set last, unless batty gave up on a change (and said so).
    #[test]
    fn no_interleaving_of_saves_and_changes_loses_a_field(
        changes in 1usize..5,
        before in proptest::collection::vec(proptest::option::of((any::<bool>(), 0u8..4)), 5),
        during in proptest::collection::vec(proptest::option::of((any::<bool>(), 0u8..4)), 0..30),
    ) {
        let dir = board(&[("001-fix-login.md", TASK)]);
        let path = dir.path().join("tasks/001-fix-login.md");
        let expected = std::rc::Rc::new(std::cell::RefCell::new(std::collections::BTreeMap::<u8, String>::new()));
        let counter = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let save = {
            let path = path.clone();
            let expected = expected.clone();
            let counter = counter.clone();
            move |s: Save| {
                let n = counter.get();
                counter.set(n + 1);
                let value = format!("v{n}");
                person_saves(&path, &format!("p{}", s.key), &value, s.by_rename);
                expected.borrow_mut().insert(s.key, value);
            }
        };
        let schedule: std::collections::VecDeque<Option<Save>> = during
            .into_iter()
            .map(|o| o.map(|(by_rename, key)| Save { by_rename, key }))
            .collect();
        let schedule = std::rc::Rc::new(std::cell::RefCell::new(schedule));
        {
            let save = save.clone();
            let schedule = schedule.clone();
            set_hook(move |_stage| {
                let next = schedule.borrow_mut().pop_front().flatten();
                if let Some(s) = next {
                    save(s);
                }
            });
        }
        let mut applied: Vec<usize> = Vec::new();
        for (n, first) in before.iter().enumerate().take(changes) {
            if let Some((by_rename, key)) = *first {
                save(Save { by_rename, key });
            }
            let result = update(dir.path(), 1, now(), |t, _| {
                t.estimate = Some(format!("b{n}"));
                let tag = format!("b{n}");
                if !t.tags.contains(&tag) {
                    t.tags.push(tag);
                }
                Ok(())
            });
            match result {
                Ok(_) => applied.push(n),
                Err(BoardError::Contended { .. }) => {}
                Err(e) => {
                    clear_hook();
                    return Err(TestCaseError::fail(format!("change {n}: {e}")));
                }
            }
        }
        clear_hook();
        let task = read(dir.path());
        for n in &applied {
            prop_assert!(task.tags.contains(&format!("b{n}")), "tag b{} lost: {:?}", n, task.tags);
        }
        if let Some(last) = applied.last() {
            prop_assert_eq!(task.estimate.clone(), Some(format!("b{last}")));
        }
        for (key, value) in expected.borrow().iter() {
            prop_assert_eq!(
                extra_value(&path, &format!("p{key}")),
                Some(value.clone()),
                "person's p{} lost", key
            );
        }
        prop_assert_eq!(task.body.as_str(), "The body.\n");
        let left = std::fs::read_dir(dir.path().join("tasks")).unwrap().count();
        prop_assert_eq!(left, 1, "temp files left");
    }
}
