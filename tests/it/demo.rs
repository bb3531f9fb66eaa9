//! `batty demo`, run as CI runs it: no terminal, its own tmux server, every task merged, and
//! nothing it started left behind.

use std::path::Path;

use crate::common::Sandbox;

/// Processes whose environment mentions `needle` (the demo's temp folder): the demo's tmux
/// server hands its socket's path to everything it runs.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if String::from_utf8_lossy(&environ).contains(needle) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn demo_without_a_terminal_merges_every_task_and_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let tmp = sb.root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = sb
        .batty(["demo", "--delay", "0", "--parallel", "3"])
        .env("TMPDIR", &tmp)
        .ok();
    // Progress while it ran, then the report: every task merged, the rejected one twice.
    assert!(
        out.stdout.contains("tasks done · agents:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("10/10 tasks done"),
        "no final progress line:\n{}",
        out.stdout
    );
    let last = out
        .stdout
        .lines()
        .rfind(|l| l.contains("tasks done · agents:"))
        .unwrap();
    assert!(last.ends_with("merged 10"), "{last}");
    let table: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(table.len(), 10, "one row per task:\n{}", out.stdout);
    assert!(
        table.iter().all(|row| row.contains("merged")),
        "{}",
        out.stdout
    );
    let tries = |id: &str| -> u32 {
        let row = table
            .iter()
            .find(|r| r.starts_with(&format!("{id} ")))
            .unwrap();
        row.split_whitespace().nth(3).unwrap().parse().unwrap()
    };
    assert_eq!(
        tries("#7"),
        2,
        "the gate rejects task 7 once:\n{}",
        out.stdout
    );
    assert_eq!(tries("#1"), 1);
    assert!(
        out.stdout
            .contains("demo done: 10/10 tasks merged onto `main`"),
        "{}",
        out.stdout
    );
    // It told where to watch, on a server of its own inside its temp folder.
    let socket_line = out
        .stdout
        .lines()
        .find(|l| l.contains("watch them: tmux -S "))
        .expect("the attach command is printed");
    assert!(socket_line.contains(&tmp.to_string_lossy().into_owned()));
    assert!(out.stdout.contains("stop it with Ctrl-C"), "{}", out.stdout);
    // Nothing left: no temp folder, no process of its server, not the server itself.
    assert_eq!(entries(&tmp), Vec::<String>::new());
    let left = processes_mentioning(&tmp.to_string_lossy());
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    // The harness's own server (which `BATTY_TMUX_SOCKET` named) was never used.
    assert!(!sb.sock.exists());
}

#[test]
fn demo_in_a_named_folder_keeps_the_repository_with_every_task_on_main() {
    let sb = Sandbox::new();
    let tmp = sb.root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let dir = sb.root.join("demo");
    let dir_arg = dir.to_string_lossy().into_owned();
    let out = sb
        .batty(["demo", "--delay", "0", "--parallel", "2", "--dir", &dir_arg])
        .env("TMPDIR", &tmp)
        .ok();
    assert!(out.stdout.contains("look around: cd "), "{}", out.stdout);
    let log = sb.git_in(&dir, ["log", "--format=%s", "main"]);
    for id in 1..=10 {
        assert!(
            log.lines().any(|l| l.starts_with(&format!("Task #{id}:"))),
            "task {id} is not on main:\n{log}"
        );
    }
    assert!(sb.git_in(&dir, ["rev-list", "--merges", "main"]).is_empty());
    // The question task was asked and answered by batty.
    let events: String = std::fs::read_dir(dir.join(".batty/logs/demo"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".events.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(
        events.contains("answered"),
        "no answer in the event logs:\n{events}"
    );
    assert_eq!(entries(&tmp), Vec::<String>::new());
    assert!(processes_mentioning(&tmp.to_string_lossy()).is_empty());
    // A second demo into the same folder is refused before it makes anything.
    sb.batty(["demo", "--dir", &dir_arg])
        .env("TMPDIR", &tmp)
        .fails(1)
        .error_mentions("already exists");
    assert_eq!(entries(&tmp), Vec::<String>::new());
}

#[test]
fn demo_without_tmux_says_how_to_install_it_and_makes_nothing() {
    let sb = Sandbox::new();
    let tmp = sb.root.join("tmp");
    let bin = sb.root.join("bin");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    let git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(git.trim(), bin.join("git")).unwrap();
    let out = sb
        .batty(["demo"])
        .env("TMPDIR", &tmp)
        .env("PATH", &bin)
        .fails(1);
    out.error_mentions("tmux");
    assert!(out.stderr.contains("hint: install tmux"), "{}", out.stderr);
    assert_eq!(entries(&tmp), Vec::<String>::new());
}
