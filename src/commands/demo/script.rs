//! What the demo is made of: its tasks (dependencies, priorities, the one that asks a
//! question, the one the gate rejects once), its config and its merge gate. Plain data and
//! text; `demo.rs` writes them.

/// One demo task: its title, priority and the ids it depends on.
pub struct DemoTask {
    pub title: &'static str,
    pub priority: &'static str,
    pub depends_on: &'static [u64],
}

/// The board, in id order (ids start at 1, as `batty task add` gives them).
pub const TASKS: &[DemoTask] = &[
    DemoTask {
        title: "Sketch the data model",
        priority: "high",
        depends_on: &[],
    },
    DemoTask {
        title: "Write the storage layer",
        priority: "high",
        depends_on: &[1],
    },
    DemoTask {
        title: "Add the HTTP handlers",
        priority: "medium",
        depends_on: &[2],
    },
    DemoTask {
        title: "Write the command-line client",
        priority: "medium",
        depends_on: &[1],
    },
    DemoTask {
        title: "Add request logging",
        priority: "low",
        depends_on: &[],
    },
    DemoTask {
        title: "Document the API",
        priority: "medium",
        depends_on: &[3],
    },
    DemoTask {
        title: "Add an integration test",
        priority: "high",
        depends_on: &[3, 4],
    },
    DemoTask {
        title: "Tidy up the README",
        priority: "low",
        depends_on: &[],
    },
    DemoTask {
        title: "Set up continuous integration",
        priority: "medium",
        depends_on: &[7],
    },
    DemoTask {
        title: "Tag the first release",
        priority: "medium",
        depends_on: &[6, 8, 9],
    },
];

/// The task whose agent asks `Continue? [y/n]`, which the demo adapter answers by itself.
pub const ASKS: u64 = 3;
/// The task whose first merge the gate rejects, so it goes back to its agent once.
pub const REJECTED_ONCE: u64 = 7;

/// The demo's phase (its session is `batty-demo` on the demo's own tmux server).
pub const PHASE: &str = "demo";

/// The gate script committed into the demo repository and run by the merge queue in its
/// worktree. The marker lives in the repository's git folder, shared by every worktree.
pub fn gate_script() -> String {
    format!(
        "#!/bin/sh\n\
         # The demo's merge gate. It rejects the work of task #{id} once, on purpose, so you\n\
         # can watch batty send it back to its agent with this output; the next try passes.\n\
         marker=\"$(git rev-parse --git-common-dir)/demo-gate-rejected-once\"\n\
         if [ -f demo/task-{id}.txt ] && [ ! -e \"$marker\" ]; then\n\
         \x20 : > \"$marker\"\n\
         \x20 echo \"demo gate: the test for task #{id} fails (on purpose, once)\"\n\
         \x20 exit 1\n\
         fi\n\
         echo \"demo gate: ok\"\n",
        id = REJECTED_ONCE
    )
}

/// `.batty/config.yml` of the demo repository.
pub fn config(delay_ms: u64, socket: &str) -> String {
    format!(
        "# batty demo: demo agents that pretend to work for {delay_ms} ms per task. Task #{ASKS}'s\n\
         # agent asks a question the demo adapter answers; the gate rejects task #{REJECTED_ONCE} once.\n\
         agents:\n\
         \x20 demo:\n\
         \x20   args: [\"--delay\", \"{delay_ms}\", \"--lines\", \"3\", \"--ask-on\", \"{ASKS}\"]\n\
         merge:\n\
         \x20 gate: \"sh demo-gate.sh\"\n\
         tmux:\n\
         \x20 socket: '{}'\n",
        socket.replace('\'', "''")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_ten_tasks_whose_dependencies_come_first() {
        assert!((8..=12).contains(&TASKS.len()));
        for (i, t) in TASKS.iter().enumerate() {
            let id = i as u64 + 1;
            assert!(t.depends_on.iter().all(|&d| d >= 1 && d < id), "#{id}");
            assert!(["high", "medium", "low"].contains(&t.priority));
        }
        for special in [ASKS, REJECTED_ONCE] {
            assert!((1..=TASKS.len() as u64).contains(&special));
        }
        assert_ne!(ASKS, REJECTED_ONCE);
    }

    #[test]
    fn config_parses_with_the_gate_and_the_question() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config(250, "/tmp/it's/sock")).unwrap();
        let c = crate::config::Config::load(&path).unwrap();
        assert_eq!(c.merge.gate.as_deref(), Some("sh demo-gate.sh"));
        assert_eq!(c.tmux.socket.as_deref(), Some("/tmp/it's/sock"));
        let args = &c.agents["demo"].args;
        assert!(args.windows(2).any(|w| w == ["--ask-on", "3"]), "{args:?}");
        assert!(args.windows(2).any(|w| w == ["--delay", "250"]), "{args:?}");
    }

    #[test]
    fn gate_rejects_the_chosen_task_once() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .unwrap()
        };
        assert!(run(&["init", "-q"]).status.success());
        std::fs::write(dir.path().join("demo-gate.sh"), gate_script()).unwrap();
        let gate = || {
            std::process::Command::new("sh")
                .arg("demo-gate.sh")
                .current_dir(dir.path())
                .output()
                .unwrap()
        };
        assert!(gate().status.success(), "nothing to reject yet");
        std::fs::create_dir_all(dir.path().join("demo")).unwrap();
        std::fs::write(
            dir.path().join(format!("demo/task-{REJECTED_ONCE}.txt")),
            "x",
        )
        .unwrap();
        let first = gate();
        assert!(!first.status.success());
        assert!(String::from_utf8_lossy(&first.stdout).contains("on purpose"));
        assert!(gate().status.success(), "the second try passes");
    }
}
