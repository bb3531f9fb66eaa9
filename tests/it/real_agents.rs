//! The real coding agents (Claude Code, Codex, Aider, as `scripts/install-agents` installs
//! them) driven by the `batty` binary against the fake model server on 127.0.0.1. Each
//! test skips, saying why, when the programs are not installed, unless
//! `BATTY_REQUIRE_AGENTS=1` (CI) makes that a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::e2e::{PHASE, Project, session};
use crate::common::fake_model::{FakeModel, Options, Turn};
use crate::common::{BATTY, Sandbox};

/// A whole run may take this long: the agents start in seconds, the fake model answers at
/// once (or after its delay), and 2 cores are shared.
const RUN: Duration = Duration::from_secs(120);

/// The folder holding `claude`, `codex` and `aider`: `BATTY_AGENTS_BIN` (what
/// `scripts/install-agents` printed), else the script's default folder; `None` (the test
/// skips) when one is missing there, or a panic under `BATTY_REQUIRE_AGENTS=1`.
fn agents_bin(agent: &str) -> Option<PathBuf> {
    let bin = match std::env::var_os("BATTY_AGENTS_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let cache = std::env::var_os("BATTY_AGENTS_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/batty-agents"))
                });
            cache?.join("bin")
        }
    };
    if bin.join(agent).is_file() {
        return Some(bin);
    }
    let why = format!(
        "{agent} is not installed in {} (run scripts/install-agents and set BATTY_AGENTS_BIN)",
        bin.display()
    );
    if std::env::var("BATTY_REQUIRE_AGENTS").as_deref() == Ok("1") {
        panic!("BATTY_REQUIRE_AGENTS=1: {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// A project for one agent kind: fresh HOME prepared the way a user's would be after the
/// agent's own setup (a model server configured, Claude Code's onboarding done), a board of
/// `tasks` tasks, the merge queue on, the preset on or off.
struct Run {
    p: Project,
    model: FakeModel,
    bin: PathBuf,
    agent: &'static str,
}

impl Run {
    fn new(agent: &'static str, options: Options, tasks: usize, mode: Mode) -> Option<Run> {
        Run::with_supervisor(
            agent,
            options,
            tasks,
            mode,
            "supervisor:\n  answer_grace: 200ms\n",
        )
    }

    /// With `supervisor` (YAML, the whole `supervisor:` key or nothing for the defaults).
    fn with_supervisor(
        agent: &'static str,
        options: Options,
        tasks: usize,
        mode: Mode,
        supervisor: &str,
    ) -> Option<Run> {
        let bin = agents_bin(agent)?;
        let model = FakeModel::start(options);
        let p = Project::new(&[], "");
        p.sb.write(
            ".batty/config.yml",
            &format!(
                "{supervisor}merge:\n  enabled: true\nagents:\n  {agent}:\n{}",
                agent_yaml(agent, mode, &model)
            ),
        );
        prepare_home(&p.sb, agent, &model);
        // Aider writes a placeholder identity into .git/config when git has none, and two
        // aiders starting at once then crash on its lock; a user's git has one.
        p.sb.git(["config", "user.name", "Batty Test"]);
        p.sb.git(["config", "user.email", "test@batty.invalid"]);
        for i in 1..=tasks {
            p.add(&format!("Add file {i}"), &[]);
        }
        Some(Run {
            p,
            model,
            bin,
            agent,
        })
    }

    /// `batty work p --parallel n --agent <agent> --exit-when-done`.
    fn work(&self, n: usize) {
        self.work_with(n, &["--exit-when-done"]);
    }

    /// `batty work p --parallel n --agent <agent> [more]`, with the agents' environment.
    fn work_with(&self, n: usize, more: &[&str]) {
        let n = n.to_string();
        let mut argv = vec!["work", PHASE, "--parallel", &n, "--agent", self.agent];
        argv.extend_from_slice(more);
        let mut cmd = self.p.sb.batty(argv);
        for (key, value) in self.agent_env() {
            cmd = cmd.env(key, value);
        }
        cmd.ok();
    }

    /// What the agents need besides the sandbox's environment: their folder and batty's
    /// first on PATH, the fake model's address, no update checks.
    fn agent_env(&self) -> Vec<(&'static str, String)> {
        let batty_dir = Path::new(BATTY).parent().expect("batty has a folder");
        let path = format!(
            "{}:{}:{}",
            self.bin.display(),
            batty_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("PATH", path),
            ("ANTHROPIC_BASE_URL", self.model.url()),
            ("ANTHROPIC_API_KEY", API_KEY.to_owned()),
            ("DISABLE_AUTOUPDATER", "1".to_owned()),
            ("LITELLM_LOCAL_MODEL_COST_MAP", "True".to_owned()),
        ]
    }

    /// Every agent's event log.
    fn events(&self) -> String {
        self.p
            .agents()
            .iter()
            .map(|a| self.p.events(a))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_done(&self, ids: &[u64]) {
        self.p.wait("every task done", RUN, || {
            ids.iter()
                .all(|id| self.p.status_of(*id) == "done")
                .then_some(())
        });
    }

    fn wait_merged(&self, ids: &[u64]) {
        self.p.wait("every task's file on main", RUN, || {
            ids.iter()
                .all(|id| has_file(&self.p.sb, &format!("main:work/task-{id}.txt")))
                .then_some(())
        });
    }
}

fn has_file(sb: &Sandbox, spec: &str) -> bool {
    let mut cmd = std::process::Command::new("git");
    cmd.args(["cat-file", "-e", spec]).current_dir(&sb.repo);
    sb.apply_env(&mut cmd);
    cmd.output().is_ok_and(|o| o.status.success())
}

const API_KEY: &str = "sk-ant-fake-0123456789abcdefghij";

/// What a person would have set up once for the agent in their HOME.
fn prepare_home(sb: &Sandbox, agent: &str, model: &FakeModel) {
    let home = sb.root.join("home");
    match agent {
        "claude" => {
            // Onboarding's connectivity check goes to the real service, not the base URL;
            // the key is one the user approved ("Do you want to use this API key?").
            let tail = &API_KEY[API_KEY.len() - 20..];
            let json = serde_json::json!({
                "hasCompletedOnboarding": true,
                "customApiKeyResponses": { "approved": [tail], "rejected": [] },
            });
            std::fs::write(home.join(".claude.json"), json.to_string()).unwrap();
        }
        "codex" => {
            std::fs::create_dir_all(home.join(".codex")).unwrap();
            let toml = format!(
                "model = \"gpt-5\"\nmodel_provider = \"fake\"\n\n[model_providers.fake]\n\
                 name = \"fake\"\nbase_url = \"{}/v1\"\nwire_api = \"responses\"\n",
                model.url()
            );
            std::fs::write(home.join(".codex/config.toml"), toml).unwrap();
        }
        _ => {}
    }
}

/// How the agent is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The unattended preset.
    Unattended,
    /// As a person who wants to be asked runs it (Claude Code: `--permission-mode default`).
    Attended,
    /// With the program's own defaults (Claude Code 2.1: auto mode).
    Defaults,
}

/// The agent's section of the config.
fn agent_yaml(agent: &str, mode: Mode, model: &FakeModel) -> String {
    let mut yaml = String::new();
    if mode == Mode::Unattended {
        yaml.push_str("    unattended: true\n");
    }
    match agent {
        // A known model name avoids aider's unknown-model questions; it stays offline.
        "aider" => yaml.push_str(&format!(
            "    args: [\"--model\", \"openai/gpt-4o\", \"--openai-api-base\", \"{}/v1\", \
             \"--openai-api-key\", \"fake\", \"--no-check-update\", \"--no-show-release-notes\", \
             \"--analytics-disable\"]\n",
            model.url()
        )),
        // Claude Code 2.1 starts in auto mode (a classifier decides); a person who wants to
        // be asked runs it in the default mode.
        "claude" if mode == Mode::Attended => {
            yaml.push_str("    args: [\"--permission-mode\", \"default\"]\n")
        }
        _ => {}
    }
    if yaml.is_empty() {
        yaml.push_str("    args: []\n");
    }
    yaml
}

/// Each commit on `main` after the first, oldest first: its subject and the files it changed.
fn main_commits(sb: &Sandbox) -> Vec<(String, Vec<String>)> {
    let log = sb.git(["log", "--reverse", "--format=@%s", "--name-only", "main~0"]);
    let mut commits: Vec<(String, Vec<String>)> = Vec::new();
    for line in log.lines() {
        if let Some(subject) = line.strip_prefix('@') {
            commits.push((subject.to_owned(), Vec::new()));
        } else if !line.trim().is_empty()
            && let Some(last) = commits.last_mut()
        {
            last.1.push(line.to_owned());
        }
    }
    commits.remove(0);
    commits
}

/// 2 agents, 3 tasks, the preset on, a fresh HOME: the first-run dialogs (the folder trust of
/// each worktree) are answered, every task is done and merged, each by its own commits.
fn board_unattended(agent: &'static str) {
    let Some(run) = Run::new(agent, Options::default(), 3, Mode::Unattended) else {
        return;
    };
    run.work(2);
    run.wait_done(&[1, 2, 3]);
    run.wait_merged(&[1, 2, 3]);
    run.p.wait_session_ends();
    let events = run.events();
    if agent != "aider" {
        assert!(
            events.contains("answered keys"),
            "the trust dialog was answered:\n{events}"
        );
    }
    // No task's commit landed inside another task's merge: each commit on main touches the
    // files of one task only, and each task's file arrived once.
    let commits = main_commits(&run.p.sb);
    for id in 1..=3u64 {
        let file = format!("work/task-{id}.txt");
        let adding: Vec<_> = commits.iter().filter(|(_, f)| f.contains(&file)).collect();
        assert_eq!(adding.len(), 1, "{file} on main: {commits:?}");
        assert_eq!(adding[0].1, std::slice::from_ref(&file), "{commits:?}");
    }
    for id in 1..=3u64 {
        assert!(
            !run.model.task_requests(id).is_empty(),
            "task {id} reached the model"
        );
    }
    assert!(
        !events.contains("needs a person"),
        "nothing needed a person:\n{events}"
    );
    for name in run.p.agents() {
        let wt = run.p.sb.path(format!(".batty/worktrees/{PHASE}/{name}"));
        let untracked = run.p.sb.git_in(
            &wt,
            [
                "ls-files",
                "--others",
                "--exclude-standard",
                "--",
                ".gitignore",
            ],
        );
        assert_eq!(untracked, "", "{name} was left an untracked .gitignore");
    }
}

/// Without the preset, the agent's permission prompt reaches a person once: the window is
/// flagged `!` and one event says so.
fn permission_escalated(agent: &'static str) {
    let options = Options {
        // Codex's sandbox refuses the commit on its own; asking for escalated permission
        // brings its approval prompt.
        ask_permission: agent == "codex",
        ..Options::default()
    };
    let Some(run) = Run::new(agent, options, 1, Mode::Attended) else {
        return;
    };
    run.work(1);
    let name = run.p.agents()[0].clone();
    run.p.wait("the window flagged for a person", RUN, || {
        let names = run.p.sb.tmux([
            "list-windows",
            "-t",
            &format!("={}", session()),
            "-F",
            "#{window_name}",
        ]);
        names.lines().any(|w| w == format!("{name}!")).then_some(())
    });
    run.p.wait("the escalation in the event log", RUN, || {
        run.p.events(&name).contains("needs a person").then_some(())
    });
    // The question stays on screen: it is not escalated again while it waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        let n = run.p.events(&name).matches("needs a person").count();
        assert_eq!(n, 1, "{}", run.p.events(&name));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(
        run.p.status_of(1),
        "done",
        "{}\n{}",
        run.events(),
        run.p.sb.tmux([
            "capture-pane",
            "-p",
            "-t",
            &format!("={}:{name}!.0", session())
        ])
    );
    if agent == "aider" {
        // Keys pressed while aider works wait in the terminal and answer its next question
        // with the default ("Run shell command? [Yes]"): once sent, the task gets no Enter.
        let events = run.p.events(&name);
        assert!(!events.contains("pressed Enter"), "{events}");
    }
    run.p.sb.batty(["stop", PHASE]).ok();
}

/// A model that takes seconds per answer: the agent is busy meanwhile, so no reminder is sent
/// and the task reaches the model once.
fn slow_model(agent: &'static str) {
    let options = Options {
        delay: Duration::from_secs(4),
        ..Options::default()
    };
    let Some(run) = Run::new(agent, options, 1, Mode::Unattended) else {
        return;
    };
    run.work(1);
    run.wait_done(&[1]);
    run.p.wait_session_ends();
    let events = run.events();
    assert!(!events.contains("reminded"), "{events}");
    let asked: Vec<_> = run
        .model
        .requests()
        .into_iter()
        .filter(|r| r.turn == Turn::Task(1))
        .collect();
    assert_eq!(asked.len(), 1, "the task reached the model once:\n{events}");
}

mod bench;

mod claude {
    use super::*;

    /// A new user's first run: Claude Code as it comes (auto mode, whose checks go to the
    /// model) through a gateway. Its one-time billing notice comes up at the first check,
    /// holding the tool call; it is answered and the task is done without a person.
    #[test]
    fn its_default_mode_through_a_gateway_runs_a_task() {
        let Some(run) = Run::new("claude", Options::default(), 1, Mode::Defaults) else {
            return;
        };
        run.work(1);
        run.wait_done(&[1]);
        run.p.wait_session_ends();
        let events = run.events();
        // The raw pty log is no proof: Claude's renderer moves the cursor over cells that
        // did not change (spaces included), so a line is not always written in one piece.
        // The event log names the dialog by its first line.
        assert!(
            events.contains("question: We're changing auto mode"),
            "the notice came up:\n{events}"
        );
        assert!(events.contains("answered keys Enter"), "{events}");
        assert!(!events.contains("needs a person"), "{events}");
    }

    #[test]
    fn two_agents_finish_a_board_unattended_and_merged() {
        super::board_unattended("claude");
    }

    #[test]
    fn a_permission_prompt_is_escalated_once() {
        super::permission_escalated("claude");
    }

    #[test]
    fn a_slow_model_causes_no_reminder() {
        super::slow_model("claude");
    }
}

mod codex {
    #[test]
    fn two_agents_finish_a_board_unattended_and_merged() {
        super::board_unattended("codex");
    }

    #[test]
    fn a_permission_prompt_is_escalated_once() {
        super::permission_escalated("codex");
    }

    #[test]
    fn a_slow_model_causes_no_reminder() {
        super::slow_model("codex");
    }
}

mod aider {
    #[test]
    fn two_agents_finish_a_board_unattended_and_merged() {
        super::board_unattended("aider");
    }

    #[test]
    fn a_permission_prompt_is_escalated_once() {
        super::permission_escalated("aider");
    }

    #[test]
    fn a_slow_model_causes_no_reminder() {
        super::slow_model("aider");
    }
}

/// A new user whose agent is not installed: `batty work` says which agent and command, and
/// what to do, before anything starts (no session of agents that die at once).
#[test]
fn an_agent_not_on_path_stops_work_before_it_starts() {
    let p = Project::new(&[], "");
    p.add("Add file 1", &[]);
    let empty = p.sb.root.join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    for (agent, program) in [("claude", "claude"), ("codex", "codex"), ("aider", "aider")] {
        let out =
            p.sb.batty(["work", PHASE, "--agent", agent])
                .env("PATH", format!("{}:/usr/bin:/bin", empty.display()))
                .fails(1);
        out.error_mentions(&format!("agent `{agent}`: `{program}` is not on PATH"));
        assert!(
            out.stderr.contains(&format!(
                "hint: install it, or say how to start it with `agents.{agent}.command`"
            )),
            "{}",
            out.stderr
        );
        assert!(!p.session_alive(), "nothing started for {agent}");
    }
}

/// `batty work --unattended`, stopped, then `batty work` without it: the agents started now
/// run without the preset's flags, and the run state the supervisor reads its answers from
/// says so (it said "unattended" still, and aider's "Run shell command?" was answered "y"
/// for a person who had not asked for that).
#[test]
fn an_earlier_runs_preset_does_not_stick() {
    let p = Project::new(&[], "");
    let unattended = |p: &Project| -> Vec<bool> {
        let state: serde_json::Value =
            serde_json::from_str(&p.sb.read(format!(".batty/run/{PHASE}/state.json"))).unwrap();
        state["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["unattended"] == true)
            .collect()
    };
    p.work(2, "demo", &["--unattended"]);
    assert_eq!(unattended(&p), [true, true]);
    p.sb.batty(["stop", PHASE]).ok();
    p.work(2, "demo", &[]);
    assert_eq!(unattended(&p), [false, false]);
    // Agents kept running keep how they were started.
    p.sb.batty(["stop", PHASE]).ok();
    p.work(1, "demo", &["--unattended"]);
    p.work(2, "demo", &[]);
    assert_eq!(unattended(&p), [true, false]);
    p.sb.batty(["stop", PHASE]).ok();
}

/// Not a test: serves the fake model for trying an agent by hand, on `FAKE_MODEL_PORT`,
/// writing every request to `FAKE_MODEL_LOG` (JSON lines) for `FAKE_MODEL_SECS` seconds.
/// `FAKE_MODEL_DELAY_MS` and `FAKE_MODEL_ASK=1` set its options.
#[test]
#[ignore = "a tool: serves the fake model for trying an agent by hand"]
fn serve_fake_model_by_hand() {
    let env = |k: &str| std::env::var(k).ok();
    let port = env("FAKE_MODEL_PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let secs = env("FAKE_MODEL_SECS")
        .and_then(|p| p.parse().ok())
        .unwrap_or(600);
    let delay = env("FAKE_MODEL_DELAY_MS")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let model = FakeModel::start_on(
        port,
        Options {
            delay: Duration::from_millis(delay),
            ask_permission: env("FAKE_MODEL_ASK").as_deref() == Some("1"),
            ask_question: env("FAKE_MODEL_QUESTION").as_deref() == Some("1"),
        },
    );
    eprintln!("fake model on {}", model.url());
    let log = env("FAKE_MODEL_LOG").unwrap_or_else(|| "/tmp/fake-model.jsonl".into());
    let mut written = 0;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        let requests = model.requests();
        let mut text = String::new();
        for r in &requests[written..] {
            let line = serde_json::json!({
                "ms": r.at.duration_since(start).as_millis() as u64,
                "method": r.method,
                "path": r.path,
                "api": format!("{:?}", r.api),
                "turn": format!("{:?}", r.turn),
                "headers": r.headers,
                "body": r.json().unwrap_or(serde_json::Value::String(r.body.clone())),
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
        written = requests.len();
        if !text.is_empty() {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The README's hook wiring, fed the JSON Claude Code 2.1.332 sent: a permission prompt is
/// reported as asking, with Claude Code's message as the note.
#[test]
fn claude_hook_json_reaches_agent_status() {
    let sb = Sandbox::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hooks/claude");
    let hook =
        std::fs::read_to_string(fixtures.join("notification-permission-prompt.json")).unwrap();
    let sent: serde_json::Value = serde_json::from_str(&hook).unwrap();
    assert_eq!(
        sent["notification_type"], "permission_prompt",
        "the README's matcher"
    );
    let board = sb.path(".batty/kanban/v1");
    std::fs::create_dir_all(&board).unwrap();
    sb.batty(["agent-status", "asking", "--hook-json", "--quiet-outside"])
        .env("BATTY_AGENT", "otter")
        .env("BATTY_PHASE", "v1")
        .env("BATTY_BOARD", &board)
        .stdin(hook)
        .ok();
    let report = sb.read(".batty/run/v1/agents/otter.status");
    assert!(report.contains("Claude needs your permission"), "{report}");
    for event in ["user-prompt-submit", "pre-tool-use", "stop"] {
        let json = std::fs::read_to_string(fixtures.join(format!("{event}.json"))).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(v["hook_event_name"].is_string(), "{event}: {v}");
    }
}
