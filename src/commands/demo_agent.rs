//! `batty demo-agent`: a stand-in coding agent for tests and demos. It reads tasks at its
//! `demo> ` prompt, pretends to work, writes and commits a file, and reports the task done.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use crate::agent::demo::{DemoTask, Inbox, Input, fill};
use crate::proc::Cmd;

/// A built-in demo coding agent (for tests and `batty demo`).
///
/// Shows the prompt `demo> ` and reads one task per message: a first line
/// `Task #<id>: <title>`, then lines up to one naming `batty task done <id>` (or an empty line
/// right after the first). For each task it prints `working on #<id>`, simulates work, writes
/// a file in its working directory, commits it with git, runs `batty task done <id>` and shows
/// its prompt again. Failures are reported on stderr and it carries on. It exits on end of
/// input or `exit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Milliseconds of simulated work per task.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub delay: u64,
    /// Lines of output printed while working.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub lines: u32,
    /// Ask a yes/no question before committing every task.
    #[arg(long)]
    pub ask: bool,
    /// Ask the question only for this task (repeatable).
    #[arg(long, value_name = "ID")]
    pub ask_on: Vec<u64>,
    /// The question asked; an answer starting with `y` goes on, anything else drops the task.
    #[arg(long, value_name = "TEXT", default_value = "Continue? [y/n]")]
    pub ask_text: String,
    /// File written for each task, relative to the working directory; `{id}` and `{title}`
    /// are filled in.
    #[arg(long, value_name = "PATH", default_value = "demo/task-{id}.txt")]
    pub file: String,
    /// Content of that file; `{id}` and `{title}` are filled in, `{n}` with how many times
    /// this task has come (2 on a reminder), `\n` is a line break.
    #[arg(long, value_name = "TEXT", default_value = "{title}\\n")]
    pub content: String,
    /// Do not commit: report a failed commit and leave the task unfinished.
    #[arg(long)]
    pub fail_commit: bool,
    /// Commit, but do not run `batty task done`.
    #[arg(long)]
    pub no_done: bool,
    /// The first time this task comes, commit but do not run `batty task done`, as a
    /// forgetful agent would; a second delivery (a reminder) finishes it (repeatable).
    #[arg(long, value_name = "ID")]
    pub forget_done: Vec<u64>,
    /// Exit with code 3 on receiving this task, as a crashing agent would (repeatable).
    #[arg(long, value_name = "ID")]
    pub die_on: Vec<u64>,
    /// Exit with code 3 as soon as this task's first line arrives, in the middle of its paste
    /// (repeatable): the rest of the message, and its Enter, meet a program that is gone.
    #[arg(long, value_name = "ID")]
    pub die_reading: Vec<u64>,
    /// Commit this task's file, then exit with code 3 before reporting it done, as an agent
    /// that crashes mid-task would (repeatable).
    #[arg(long, value_name = "ID")]
    pub crash_on: Vec<u64>,
    /// Exit (code 0) after finishing this many tasks, as an agent whose context ran out does.
    #[arg(long, value_name = "N")]
    pub exit_after: Option<u32>,
    /// The first time this task comes, stop responding: print nothing, read nothing, ignore
    /// interrupts; only killing the process ends it (repeatable).
    #[arg(long, value_name = "ID")]
    pub hang_on: Vec<u64>,
    /// The first time this task comes, print progress forever without finishing, until
    /// interrupted (C-c): then show the prompt with the task dropped (repeatable).
    #[arg(long, value_name = "ID")]
    pub spin_on: Vec<u64>,
    /// Remember in this folder which task each failure above (`--die-on`, `--die-reading`,
    /// `--crash-on`, `--hang-on`, `--spin-on`) was done for, so that it happens once per task
    /// across restarts. Without it, dying and crashing happen every time the task comes, and
    /// hangs and spins once per process.
    #[arg(long, value_name = "DIR")]
    pub once_dir: Option<std::path::PathBuf>,
}

const PROMPT: &str = "demo> ";

pub fn run(args: Args) -> crate::error::Result<()> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut inbox = Inbox::new();
    let mut forgotten = Vec::new();
    let mut deliveries: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let mut once = Once {
        dir: args.once_dir.clone(),
        seen: Vec::new(),
    };
    let mut finished = 0u32;
    prompt();
    while let Some(line) = read_line(&mut input) {
        match inbox.push_line(&line) {
            Input::Exit => break,
            Input::Reading => {
                if let Some(id) = inbox.reading_task()
                    && args.die_reading.contains(&id)
                    && once.fails("die-reading", id)
                {
                    say(&format!("dying while reading #{id}"));
                    std::process::exit(3);
                }
                continue;
            }
            Input::Ignored => {}
            Input::Task(task) => {
                let id = task.id;
                if args.die_on.contains(&id) && once.fails("die-on", id) {
                    say(&format!("dying on #{id}"));
                    std::process::exit(3);
                }
                let stall = if args.hang_on.contains(&id) {
                    Some(Stall::Hang)
                } else if args.spin_on.contains(&id) {
                    Some(Stall::Spin)
                } else {
                    None
                };
                if let Some(stall) = stall
                    && once.stalls(id)
                {
                    say(&format!("working on #{id}"));
                    stall_until_interrupted(stall, id);
                    say(&format!("interrupted; dropped #{id}"));
                    prompt();
                    continue;
                }
                let crash = args.crash_on.contains(&id) && once.fails("crash-on", id);
                let skip_done =
                    args.no_done || (args.forget_done.contains(&id) && !forgotten.contains(&id));
                if skip_done {
                    forgotten.push(id);
                }
                let n = deliveries.entry(id).or_insert(0);
                *n += 1;
                match work(&args, &task, *n, skip_done, crash, &mut input) {
                    Worked::InputEnded => return Ok(()),
                    Worked::Finished => finished += 1,
                    Worked::Dropped => {}
                }
                if args.exit_after.is_some_and(|n| finished >= n) {
                    say(&format!(
                        "finished {finished} task(s); context full, exiting"
                    ));
                    return Ok(());
                }
            }
        }
        prompt();
    }
    Ok(())
}

/// Which failures already happened, with `--once-dir` across processes.
struct Once {
    dir: Option<std::path::PathBuf>,
    /// Tasks this process stalled on.
    seen: Vec<u64>,
}

impl Once {
    /// Whether a dying or crashing flag fires for task `id` now: every time, or with
    /// `--once-dir` only the first time (a marker file is made atomically).
    fn fails(&self, what: &str, id: u64) -> bool {
        match &self.dir {
            None => true,
            Some(dir) => first_time(dir, what, id),
        }
    }

    /// Whether a hang or spin happens for task `id` now: once per process, or with
    /// `--once-dir` once ever.
    fn stalls(&mut self, id: u64) -> bool {
        if self.seen.contains(&id) {
            return false;
        }
        self.seen.push(id);
        match &self.dir {
            None => true,
            Some(dir) => first_time(dir, "stall", id),
        }
    }
}

/// Makes `<dir>/<what>-<id>`; true when this call made it. A folder that cannot be written
/// counts as "not the first time", so a broken setup never loops on a failure.
fn first_time(dir: &Path, what: &str, id: u64) -> bool {
    let _ = std::fs::create_dir_all(dir);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(format!("{what}-{id}")))
        .is_ok()
}

/// How a task the agent never finishes goes.
#[derive(Debug, Clone, Copy)]
enum Stall {
    /// Silent, deaf to interrupts: only a kill ends it.
    Hang,
    /// Progress lines forever, until interrupted.
    Spin,
}

/// Set by the SIGINT handler while a spin runs.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Stalls until SIGINT (a hang: never). Outside a stall an interrupt ends the agent, as
/// before; during a spin it only ends the spin, as a real agent's Escape or C-c does.
fn stall_until_interrupted(stall: Stall, id: u64) {
    use std::sync::atomic::Ordering;
    INTERRUPTED.store(false, Ordering::SeqCst);
    let handler = match stall {
        Stall::Hang => libc::SIG_IGN,
        Stall::Spin => on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t,
    };
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let previous = unsafe { libc::signal(libc::SIGINT, handler) };
    let mut n = 0u64;
    while !INTERRUPTED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if let Stall::Spin = stall {
            n += 1;
            say(&format!("step {n} of #{id}, still going"));
        }
    }
    // SAFETY: puts back the disposition `signal` returned above.
    unsafe { libc::signal(libc::SIGINT, previous) };
}

/// How [`work`] ended.
enum Worked {
    Finished,
    /// Not finished: the question was answered no, or committing or reporting failed.
    Dropped,
    InputEnded,
}

/// Does one task.
fn work(
    args: &Args,
    task: &DemoTask,
    n: u32,
    skip_done: bool,
    crash: bool,
    input: &mut impl BufRead,
) -> Worked {
    say(&format!("working on #{}", task.id));
    let steps = args.lines.max(1);
    let pause = Duration::from_millis(args.delay) / steps;
    for step in 1..=steps {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        if step <= args.lines {
            say(&format!("step {step}/{} of #{}", args.lines, task.id));
        }
    }
    if args.ask || args.ask_on.contains(&task.id) {
        print!("{} ", args.ask_text);
        let _ = std::io::stdout().flush();
        let Some(reply) = read_answer(input) else {
            return Worked::InputEnded;
        };
        if !reply.to_lowercase().starts_with('y') {
            say(&format!("dropped #{}", task.id));
            return Worked::Dropped;
        }
    }
    match finish(args, task, n, skip_done, crash) {
        Ok(()) => {
            say(&format!("finished #{}", task.id));
            Worked::Finished
        }
        Err(message) => {
            eprintln!("demo-agent: task #{}: {message}", task.id);
            Worked::Dropped
        }
    }
}

/// Writes, commits and reports the task; the first failure is returned.
fn finish(
    args: &Args,
    task: &DemoTask,
    n: u32,
    skip_done: bool,
    crash: bool,
) -> Result<(), String> {
    if let Some(target) = rebase_target(task) {
        rebase_keeping_ours(&target)?;
    }
    let rel = fill(&args.file, task);
    let content = fill(
        &args
            .content
            .replace("\\n", "\n")
            .replace("{n}", &n.to_string()),
        task,
    );
    let path = Path::new(&rel);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, content).map_err(|e| format!("cannot write {rel}: {e}"))?;
    if args.fail_commit {
        return Err("commit failed (--fail-commit)".into());
    }
    let git = |args: &[&str]| Cmd::new("git").args(args).run().map_err(|e| e.to_string());
    let changed = !git(&["status", "--porcelain", "--", &rel])?
        .stdout
        .trim()
        .is_empty();
    if changed {
        git(&["add", "--", &rel])?;
        let message = format!("Task #{}: {}", task.id, task.title);
        git(&["commit", "-q", "-m", &message])?;
        say(&format!("committed #{}", task.id));
    } else {
        // Done before (a reminder for finished work): nothing new to commit.
        say(&format!("no changes for #{}", task.id));
    }
    if crash {
        say(&format!("crashing on #{}", task.id));
        std::process::exit(3);
    }
    if skip_done {
        return Ok(());
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| "batty".into());
    Cmd::new(exe)
        .args(["task", "done", &task.id.to_string()])
        .run()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A task sent back after a failed merge says "Run `git rebase <target>`".
fn rebase_target(task: &DemoTask) -> Option<String> {
    task.body.iter().find_map(|line| {
        let start = line.find("`git rebase ")? + "`git rebase ".len();
        let end = line[start..].find('`')? + start;
        let target = line[start..end].trim();
        (!target.is_empty() && !target.starts_with('-')).then(|| target.to_owned())
    })
}

/// Replays this branch onto `target`, resolving conflicts in favour of the demo's own work
/// (a real agent would merge both changes by hand).
fn rebase_keeping_ours(target: &str) -> Result<(), String> {
    say(&format!("rebasing onto {target}"));
    // In a rebase, "theirs" is the commit being replayed: the demo's own change.
    let rebased = Cmd::new("git")
        .args(["rebase", "--strategy-option=theirs", target])
        .run();
    if let Err(err) = rebased {
        let _ = Cmd::new("git").args(["rebase", "--abort"]).run();
        return Err(format!("rebase onto {target} failed: {err}"));
    }
    Ok(())
}

/// The next line without its line break, lossily decoded; `None` at end of input or on a
/// read error (the terminal went away).
fn read_line(input: &mut impl BufRead) -> Option<String> {
    let mut buf = Vec::new();
    match input.read_until(b'\n', &mut buf) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                buf.pop();
            }
            Some(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}

/// The first non-empty line: a stray Enter (a retried delivery) is not an answer.
fn read_answer(input: &mut impl BufRead) -> Option<String> {
    loop {
        let line = crate::agent::demo::clean_line(&read_line(input)?);
        let line = line.trim();
        if !line.is_empty() {
            return Some(line.to_owned());
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn prompt() {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{PROMPT}");
    let _ = out.flush();
}
