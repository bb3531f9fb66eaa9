//! Issue 11's race: a person edits task files while a live supervisor claims them, 100 rounds
//! of each kind of edit (`BATTY_RACE_ROUNDS=N` for more), on real tmux and git with demo agents
//! and the merge queue on. Each round creates a task and edits it around its claim; at the end
//! every edit is in its file, every task was delivered once, and its work is on `main` once.
//!
//! - in place: the task is written in place, then rewritten in place five times a few
//!   milliseconds apart (read, add a line, truncate and write), as scripts and `echo >` do;
//! - by rename: the same through a swap file renamed over the task, as editors save;
//! - stale buffer: the task is saved from an editor, and the same buffer, plus a line, is
//!   saved again once batty's claim is on disk, as a person still typing in it would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use batty::merge::EntryState;

use crate::common::e2e5::{DEADLINE, E2e, PHASE, Setup};
use crate::common::wait_until;

const AGENTS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    InPlace,
    Rename,
    StaleBuffer,
}

fn rounds() -> u64 {
    std::env::var("BATTY_RACE_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

#[test]
fn edits_in_place_racing_claims_are_kept_and_no_task_is_done_twice() {
    race(Edit::InPlace);
}

#[test]
fn saves_by_rename_racing_claims_are_kept_and_no_task_is_done_twice() {
    race(Edit::Rename);
}

#[test]
fn stale_buffers_saved_over_claims_keep_the_edit_and_the_claim() {
    race(Edit::StaleBuffer);
}

fn race(edit: Edit) {
    let e = E2e::new();
    // Work takes long enough that every edit of a round lands before its task is done.
    e.configure(Setup {
        delay_ms: 150,
        demo_args: &["--lines", "1"],
        ..Setup::default()
    });
    e.work(AGENTS, false);
    wait_until("the agents idle", DEADLINE, || {
        e.agents_idle(AGENTS).then_some(())
    });
    let tasks = e.sb.path(format!(".batty/kanban/{PHASE}/tasks"));
    let rounds = rounds();
    let t0 = std::time::Instant::now();
    let mut people: Vec<std::thread::JoinHandle<Round>> = Vec::new();
    let mut open: Vec<PathBuf> = Vec::new();
    for id in 1..=rounds {
        // Fewer rounds at a time than agents: an idle agent claims each new task at once.
        wait_until("an agent free for the next round", DEADLINE, || {
            open.retain(|p| !is_done(p));
            (open.len() < AGENTS - 1).then_some(())
        });
        let path = tasks.join(batty::board::file_name(id, &title(id)));
        open.push(path.clone());
        people.push(std::thread::spawn(move || person(edit, &path, id)));
    }
    let rounds_made: Vec<Round> = people
        .into_iter()
        .map(|p| p.join().expect("the person's thread"))
        .collect();
    eprintln!("rounds done at {:?}", t0.elapsed());
    let ids: Vec<u64> = (1..=rounds).collect();
    wait_until(
        "every task merged",
        DEADLINE + Duration::from_millis(600) * rounds as u32,
        || {
            let q = e.queue();
            let idle = q.list().iter().all(|x| x.state == EntryState::Merged);
            let landed = ids.iter().all(|id| q.landed.iter().any(|l| l.task == *id));
            (idle && landed).then_some(())
        },
    );
    let landings = e.queue().landed;

    eprintln!("merged at {:?}", t0.elapsed());
    let events = e.events();
    let subjects = e.subjects("main");
    for (&id, round) in ids.iter().zip(&rounds_made) {
        let text =
            std::fs::read_to_string(tasks.join(batty::board::file_name(id, &title(id)))).unwrap();
        for line in &round.made {
            assert!(text.contains(line), "task #{id} lost `{line}`:\n{text}");
        }
        assert!(text.contains("\nstatus: done\n"), "task #{id}:\n{text}");
        let delivered = crate::common::e2e::deliveries(&events, id);
        assert_eq!(delivered, 1, "task #{id} delivered {delivered} times");
        let times = landings.iter().filter(|l| l.task == id).count();
        assert_eq!(times, 1, "task #{id} landed {times} times");
        let subject = format!("Task #{id}: {}", title(id));
        let landed = subjects.iter().filter(|s| **s == subject).count();
        assert_eq!(landed, 1, "task #{id}'s work is on main {landed} times");
        assert!(e.sb.path(format!("demo/task-{id}.txt")).is_file());
    }
    const WRITTEN_BACK: &str = "was saved from a copy older than its claim; claim written back";
    for (&id, round) in ids.iter().zip(&rounds_made) {
        let about: Vec<&str> = events
            .lines()
            .filter(|l| l.contains(&format!("#{id} ")) || l.contains(&format!("#{id}:")))
            .collect();
        let shown = || about.join("\n");
        // A save taken as a person's release frees the agent: the symptom of issue 11.
        assert!(
            !about.iter().any(|l| l.contains("freed")
                || l.contains("released")
                || l.contains("not delivered")),
            "task #{id} was let go:\n{}",
            shown()
        );
        // Each save made on a copy without the claim may have replaced it, and is told (and
        // undone) once; a save on a copy that had the claim kept it.
        let told = about.iter().filter(|l| l.contains(WRITTEN_BACK)).count();
        assert!(
            told <= round.unclaimed_saves,
            "task #{id}'s claim written back {told} times, by {} saves made on copies without it:\n{}",
            round.unclaimed_saves,
            shown()
        );
    }
    let written_back = events.matches(WRITTEN_BACK).count();
    if edit == Edit::StaleBuffer {
        // Every round saves its buffer over the claim. The supervisor writes the claim back
        // when it sees that save while the task is in progress; a save it sees only as part of
        // the agent's `done` write, which lands on top of it, needs nothing written back (the
        // edit and the single delivery are checked above for every task). Most rounds must see
        // the save in progress, or the race is not being run.
        assert!(
            written_back * 2 >= rounds as usize,
            "{written_back} of {rounds} saves over a claim had it written back"
        );
    }
    eprintln!(
        "{edit:?}: {rounds} rounds, {} edits kept, {written_back} saves over a claim had it written back",
        rounds_made.iter().map(|r| r.made.len()).sum::<usize>()
    );
    e.stop();
    e.assert_tidy();
}

fn title(id: u64) -> String {
    format!("race {id}")
}

fn task_text(id: u64) -> String {
    format!(
        "---\nid: {id}\ntitle: {}\nstatus: todo\npriority: medium\n\
         created: 2026-01-01T00:00:00Z\nupdated: 2026-01-01T00:00:00Z\n---\n\nWhat to do.\n",
        title(id)
    )
}

/// `text` with `line` added as the last front matter key.
fn with_line(text: &str, line: &str) -> String {
    text.replacen("\n---\n", &format!("\n{line}\n---\n"), 1)
}

fn is_done(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains("\nstatus: done\n"))
}

/// An editor's save: a swap file beside the task, renamed over it.
fn save_by_rename(path: &Path, text: &str) {
    let name = path.file_name().unwrap().to_string_lossy();
    let swap = path.with_file_name(format!(".{name}.swp"));
    std::fs::write(&swap, text).unwrap();
    std::fs::rename(&swap, path).unwrap();
}

/// A write in place (truncate, then write). `false` when the file is read-only to us (batty
/// leaves claimed files 0444, as kanban-md does): that edit was refused, not made.
fn write_in_place(path: &Path, text: &str) -> bool {
    match std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(true)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(text.as_bytes()).unwrap();
            true
        }
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => false,
        Err(err) => panic!("write {}: {err}", path.display()),
    }
}

/// What a person did in one round.
struct Round {
    /// The lines they added, each in a save that was made.
    made: Vec<String>,
    /// How many of their saves after the task's creation were made on a copy without
    /// `claimed_by`: each may have replaced batty's claim.
    unclaimed_saves: usize,
}

/// One round of a person's edits to task `id`.
fn person(edit: Edit, path: &Path, id: u64) -> Round {
    let mut made = Vec::new();
    let mut unclaimed_saves = 0;
    let unclaimed = |text: &str| !text.contains("\nclaimed_by: ");
    let mut seed = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut pause = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 8000));
    };
    match edit {
        Edit::InPlace | Edit::Rename => {
            if edit == Edit::InPlace {
                assert!(write_in_place(path, &task_text(id)));
            } else {
                save_by_rename(path, &task_text(id));
            }
            for k in 0..5 {
                pause();
                let line = format!("note{k}: {edit:?} {id}");
                let text = std::fs::read_to_string(path).unwrap();
                let new = with_line(&text, &line);
                let saved = if edit == Edit::InPlace {
                    write_in_place(path, &new)
                } else {
                    save_by_rename(path, &new);
                    true
                };
                if saved {
                    made.push(line);
                    unclaimed_saves += usize::from(unclaimed(&text));
                }
            }
        }
        Edit::StaleBuffer => {
            let buffer = task_text(id);
            save_by_rename(path, &buffer);
            wait_until(&format!("task #{id} claimed"), DEADLINE, || {
                let text = std::fs::read_to_string(path).ok()?;
                text.contains("\nclaimed_by: ").then_some(())
            });
            pause();
            let line = format!("note: typed on after saving #{id}");
            save_by_rename(path, &with_line(&buffer, &line));
            made.push(line);
            unclaimed_saves += usize::from(unclaimed(&buffer));
        }
    }
    Round {
        made,
        unclaimed_saves,
    }
}
