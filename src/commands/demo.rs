//! `batty demo`: the whole loop on a throwaway repository: a board of demo tasks worked by
//! demo agents on a tmux server of the demo's own, merged onto `main` through a gate, with a
//! progress line while it runs and the report at the end. It runs the same way with or
//! without a terminal (it attaches only to a terminal), and whatever it started is gone when
//! it returns.

mod cleanup;
mod progress;
mod script;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Context as _, Result, user, user_hint};
use crate::git::Git;
use crate::paths::Project;
use crate::proc::Cmd;
use crate::status::PhaseStatus;

use cleanup::Place;
use progress::Progress;
use script::PHASE;

/// Show the whole loop on a throwaway repository: about ten demo tasks (with dependencies and
/// priorities, one that asks a question batty answers, one the merge gate rejects once),
/// worked by demo agents on a tmux server of the demo's own and merged onto `main`. Prints
/// progress and a summary; exits 0 only when every task merged. Attaches to the session when
/// run in a terminal (detach with `C-b d`; the demo goes on). Removes everything it started
/// when it ends.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder for the demo repository (must not exist), kept afterwards [default: a folder
    /// in the temp dir, removed at the end].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the demo repository in the temp dir, to look around afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Number of agents.
    #[arg(long, short = 'n', default_value_t = 3)]
    pub parallel: usize,
    /// Milliseconds each demo task takes.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub delay: u64,
    /// Do not attach to the session, even in a terminal.
    #[arg(long)]
    pub no_attach: bool,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
}

/// Set by SIGINT, SIGTERM or SIGHUP: the demo stops and cleans up instead of dying.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn run(args: Args) -> Result<()> {
    if args.parallel == 0 || args.parallel > 16 {
        return Err(user("`--parallel` must be between 1 and 16 for the demo"));
    }
    // Nothing is made before tmux and git are known to be there and new enough.
    let probe = crate::tmux::Tmux::new(crate::tmux::Server::Default);
    probe.require_version()?;
    crate::git::require_version()?;
    catch_signals();
    let started = Instant::now();
    let place = Place::create(args.dir.clone(), args.keep)?;
    let demo = Demo {
        exe: std::env::current_exe().context("cannot find the batty binary")?,
        place,
    };
    note(format!("demo repository: {}", demo.place.repo.display()));
    demo.make_repo(args.delay)?;
    let parallel = args.parallel.to_string();
    demo.batty(&[
        "work",
        PHASE,
        "--parallel",
        &parallel,
        "--agent",
        "demo",
        "--exit-when-done",
    ])?;
    let session = crate::paths::session_name(PHASE);
    let attach_cmd = format!(
        "tmux -S {} attach -t {session}",
        crate::proc::shell_word(&demo.place.socket.to_string_lossy())
    );
    note(format!(
        "{} demo agents at work on {} tasks in tmux session `{session}`; watch them: {attach_cmd}",
        args.parallel,
        script::TASKS.len()
    ));
    note("stop it with Ctrl-C: everything the demo started is removed");
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if terminal && !args.no_attach && !crate::tmux::Tmux::inside_tmux() {
        demo.attach(&session);
    }
    let deadline = started + Duration::from_secs(args.timeout);
    demo.wait(deadline, terminal)?;
    let report = demo.report()?;
    print!("{}", crate::record::render::text(&report));
    let (merged, total) = (report.totals.merged, report.totals.tasks);
    let took = started.elapsed().as_secs_f64();
    if demo.place.keeps_repo() {
        let repo = crate::proc::shell_word(&demo.place.repo.to_string_lossy());
        note(format!(
            "look around: cd {repo} && batty report {PHASE}; git -C {repo} log --oneline main"
        ));
    } else {
        note("the demo repository is removed (keep it with --keep or --dir DIR)");
    }
    drop(demo);
    if merged == total && total == script::TASKS.len() {
        note(format!(
            "demo done: {merged}/{total} tasks merged onto `main` in {took:.1} s"
        ));
        Ok(())
    } else {
        Err(user(format!(
            "the demo ended with {merged} of {} tasks merged onto `main`",
            script::TASKS.len()
        )))
    }
}

/// A progress line or note on stdout, unless `-q`.
fn note(line: impl std::fmt::Display) {
    super::ui::note(line);
}

fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(user(
            "the demo was interrupted; everything it started is removed",
        ))
    } else {
        Ok(())
    }
}

struct Demo {
    exe: PathBuf,
    place: Place,
}

impl Demo {
    fn project(&self) -> Project {
        Project::new(&self.place.repo)
    }

    /// `batty <args>` in the demo repository, on the demo's tmux server.
    fn batty(&self, args: &[&str]) -> Result<String> {
        interrupted()?;
        let out = Cmd::new(&self.exe)
            .args(args)
            .current_dir(&self.place.repo)
            .env(crate::tmux::SOCKET_ENV, &self.place.socket)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .env_remove("BATTY_BOARD")
            .env_remove("BATTY_PHASE")
            .env_remove("BATTY_AGENT")
            .read()?;
        Ok(out)
    }

    fn git(&self, args: &[&str]) -> Result<()> {
        interrupted()?;
        Git::new(&self.place.repo).run(args)?;
        Ok(())
    }

    /// The repository, its board (tasks, config, gate) and a first commit of it all.
    fn make_repo(&self, delay: u64) -> Result<()> {
        let repo = &self.place.repo;
        self.git(&["init", "-q", "-b", "main"])?;
        // The demo's own identity, so agents and merges can commit on a machine without one.
        self.git(&["config", "user.name", "batty demo"])?;
        self.git(&["config", "user.email", "demo@batty.invalid"])?;
        let write = |name: &str, text: &str| {
            std::fs::write(repo.join(name), text)
                .with_context(|| format!("cannot write {}", repo.join(name).display()))
        };
        write(
            "README.md",
            "# batty demo\n\nA throwaway repository worked by batty's demo agents.\n",
        )?;
        write("demo-gate.sh", &script::gate_script())?;
        // `batty init` wants a commit to start worktrees from.
        self.git(&["add", "-A"])?;
        self.git(&["commit", "-q", "-m", "The demo's README and merge gate"])?;
        self.batty(&["init", "--phase", PHASE])?;
        let socket = self.place.socket.to_string_lossy().into_owned();
        write(".batty/config.yml", &script::config(delay, &socket))?;
        for task in script::TASKS {
            let mut add = vec!["task", "add", "--phase", PHASE, task.title];
            add.extend(["--priority", task.priority]);
            let deps: Vec<String> = task.depends_on.iter().map(u64::to_string).collect();
            let deps = deps.join(",");
            if !deps.is_empty() {
                add.extend(["--depends-on", &deps]);
            }
            self.batty(&add)?;
        }
        self.git(&["add", "-A"])?;
        self.git(&["commit", "-q", "-m", "The demo's board and config"])
    }

    /// Hands the terminal to tmux until the person detaches or the session ends.
    fn attach(&self, session: &str) {
        note("attaching (detach with C-b d: the demo goes on here)");
        let tmux = crate::tmux::Tmux::new(crate::tmux::Server::Path(self.place.socket.clone()));
        let status = tmux
            .cmd()
            .args(["attach-session", "-t", session])
            .env_remove("TMUX")
            .to_command()
            .status();
        if let Err(err) = status {
            note(format!("could not attach: {err}"));
        }
    }

    /// Shows progress until the supervisor has finished (`--exit-when-done` wrote its
    /// summary and it ended), or fails when it stopped early, the deadline passed or the
    /// demo was interrupted.
    fn wait(&self, deadline: Instant, terminal: bool) -> Result<()> {
        let project = self.project();
        let status_file = project.status_file(PHASE);
        let summary = project.logs_dir(PHASE).join("summary.txt");
        let queue = crate::merge::queue_file(&project, PHASE);
        let (tx, rx) = crossbeam_channel::unbounded();
        let watch_err = |e: notify::Error| {
            crate::error::Error::internal(format!("cannot watch the demo's files: {e}"))
        };
        let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            let _ = tx.send(());
        })
        .map_err(watch_err)?;
        for dir in [project.phase_run_dir(PHASE), project.logs_dir(PHASE)] {
            use notify::Watcher as _;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            watcher
                .watch(&dir, notify::RecursiveMode::NonRecursive)
                .map_err(watch_err)?;
        }
        let mut shown = String::new();
        let mut supervisor = None;
        let live = terminal && !super::ui::quiet();
        let result = loop {
            if let Err(err) = interrupted() {
                break Err(err);
            }
            if let Some(status) = PhaseStatus::load(&status_file) {
                supervisor = Some(status.supervisor_pid);
                let merged = crate::merge::MergeQueue::load(&queue)
                    .map(|q| q.merged_count())
                    .unwrap_or(0);
                let line = Progress::of(&status, merged).line();
                if line != shown {
                    show_progress(&line, live);
                    shown = line;
                }
            }
            let running = supervisor.is_some_and(crate::tmux::process_running);
            if summary.exists() && !running {
                break Ok(());
            }
            if supervisor.is_some() && !running && !summary.exists() {
                break Err(user_hint(
                    "the demo's supervisor stopped before the demo was over",
                    "run it again with `--keep` and look at the event logs in `.batty/logs/demo/`",
                ));
            }
            if Instant::now() > deadline {
                break Err(user_hint(
                    "the demo did not finish in time",
                    "give it longer with `--timeout SECS`, or fewer tasks per agent with \
                     `--parallel N`",
                ));
            }
            // Files tell when something changed; the supervisor's end is seen within this.
            let _ = rx.recv_timeout(Duration::from_millis(250));
            while rx.try_recv().is_ok() {}
        };
        if live && !shown.is_empty() {
            println!();
        }
        result
    }

    /// What became of each task, as `batty report` shows it.
    fn report(&self) -> Result<crate::record::report::Report> {
        use crate::record::{self, History, report};
        let project = self.project();
        let board = crate::board::Board::load(&project.board_dir(PHASE))?;
        let (entries, _) = record::read(&project.attempts_file(PHASE));
        let history = History::fold(&entries);
        let on_target = report::on_target(project.root(), "main", &history.landed_commits())?;
        Ok(report::build(&report::Inputs {
            phase: PHASE,
            target: "main",
            entries: &entries,
            board: &board,
            on_target: &on_target.landed,
            merging: true,
            now: history.last_at().unwrap_or_else(chrono::Utc::now),
        }))
    }
}

/// One progress line: redrawn in place on a terminal, one line per change elsewhere.
fn show_progress(line: &str, live: bool) {
    if super::ui::quiet() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if live {
        let _ = write!(out, "\r\x1b[2K{line}");
    } else {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}
