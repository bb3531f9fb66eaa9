//! `batty task`: read and change the tasks on a board.

use std::io::Write;
use std::path::PathBuf;

use crate::error::Context;

use crate::board::{self, Board, NewTask, Task, TaskJson};
use crate::error::{user, user_hint};

/// Read and change the tasks on a board.
///
/// The board is the one given by --board, or by --phase (`.batty/kanban/<phase>/`), or by the
/// BATTY_BOARD environment variable, or the phase of the agent worktree you are in, or the
/// only board of the project.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Use the board of this phase (`.batty/kanban/<phase>/`).
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "board")]
    pub phase: Option<String>,
    /// Use the board in this folder.
    #[arg(long, global = true, value_name = "DIR")]
    pub board: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Box<TaskCommand>>,
}

#[derive(Debug, clap::Subcommand)]
pub enum TaskCommand {
    /// Create a task.
    Add(AddArgs),
    /// List tasks (by id), or the ready set in dispatch order with --ready.
    List(ListArgs),
    /// Show one task.
    Show(IdArgs),
    /// Move a task to a status.
    Move(MoveArgs),
    /// Change fields of a task.
    Edit(EditArgs),
    /// Move a task to the board's done status.
    Done(DoneArgs),
    /// Clear a task's claim and put it back in `todo` (unless it is done).
    Release(ReleaseArgs),
    /// Claim a ready task for an agent and move it to `in-progress`, as the supervisor does.
    Claim(ClaimArgs),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The task's title.
    pub title: String,
    /// Priority, one of the board's `priorities` (default: the board's default).
    #[arg(long)]
    pub priority: Option<String>,
    /// Status to create it in (default: the board's default status).
    #[arg(long)]
    pub status: Option<String>,
    /// Class of service (expedite, fixed-date, standard, intangible).
    #[arg(long)]
    pub class: Option<String>,
    /// Ids of tasks that must be done first, e.g. `1,2`.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub depends_on: Vec<u64>,
    /// A tag (repeat, or separate with commas).
    #[arg(long = "tag", value_delimiter = ',', value_name = "TAG")]
    pub tags: Vec<String>,
    /// The task's markdown body.
    #[arg(long)]
    pub body: Option<String>,
    /// Who the task is for.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Due date, YYYY-MM-DD.
    #[arg(long)]
    pub due: Option<String>,
    /// Id of the parent task.
    #[arg(long)]
    pub parent: Option<u64>,
    /// Print the task as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only these statuses (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Only tasks ready for dispatch, best first (statuses from `supervisor.dispatch_statuses`).
    #[arg(long)]
    pub ready: bool,
    /// Print kanban-md's JSON: an array of task objects.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The task's id.
    pub id: u64,
    /// Print the task as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct MoveArgs {
    /// The task's id.
    pub id: u64,
    /// The status to move it to, one of the board's statuses.
    pub status: String,
    /// Print the task as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// The task's id.
    pub id: u64,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    /// New status, one of the board's statuses.
    #[arg(long)]
    pub status: Option<String>,
    /// New priority, one of the board's priorities.
    #[arg(long)]
    pub priority: Option<String>,
    /// New class of service.
    #[arg(long)]
    pub class: Option<String>,
    /// New assignee.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Add a tag (repeat, or separate with commas).
    #[arg(long = "add-tag", value_delimiter = ',', value_name = "TAG")]
    pub add_tags: Vec<String>,
    /// Remove a tag.
    #[arg(long = "remove-tag", value_delimiter = ',', value_name = "TAG")]
    pub remove_tags: Vec<String>,
    /// Replace the dependencies, e.g. `1,2` (an empty value clears them).
    #[arg(long, value_delimiter = ',', value_name = "IDS", num_args = 0..=1)]
    pub depends_on: Option<Vec<u64>>,
    /// Replace the body.
    #[arg(long)]
    pub body: Option<String>,
    /// Due date, YYYY-MM-DD (an empty value clears it).
    #[arg(long)]
    pub due: Option<String>,
    /// Mark the task blocked, with a reason.
    #[arg(long, value_name = "REASON", conflicts_with = "unblock")]
    pub block: Option<String>,
    /// Clear the blocked mark and its reason.
    #[arg(long)]
    pub unblock: bool,
    /// Print the task as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DoneArgs {
    /// The task's id.
    pub id: u64,
    /// A note appended to the task's body.
    #[arg(long)]
    pub note: Option<String>,
    /// Print the task as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// The task's id.
    pub id: u64,
    /// Why, for the board's activity log.
    #[arg(long)]
    pub reason: Option<String>,
    /// Print the task as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ClaimArgs {
    /// The task's id.
    pub id: u64,
    /// The agent that takes the task.
    #[arg(long)]
    pub agent: String,
    /// Print the task as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> crate::error::Result<()> {
    let Some(command) = args.command else {
        return Err(user_hint(
            "`batty task` needs a subcommand",
            "run `batty task --help`",
        ));
    };
    let dir = board_dir(args.phase.as_deref(), args.board)?;
    let now = board::now();
    match *command {
        TaskCommand::Add(a) => {
            let due = a.due.as_deref().map(parse_due).transpose()?;
            let task = board::create(
                &dir,
                NewTask {
                    title: a.title,
                    status: a.status,
                    priority: a.priority,
                    class: a.class,
                    assignee: a.assignee,
                    tags: a.tags,
                    due,
                    parent: a.parent,
                    depends_on: a.depends_on,
                    body: a.body.unwrap_or_default(),
                    ..NewTask::default()
                },
                now,
            )?;
            print_task(&task, a.json, || {
                format!(
                    "created #{} `{}`: {}",
                    task.id,
                    task.file_name(),
                    task.title
                )
            })
        }
        TaskCommand::List(a) => list(&dir, a),
        TaskCommand::Show(a) => {
            let board = Board::load(&dir)?;
            let task = match board.task(a.id) {
                Some(task) => task,
                None => match board.problems().iter().find(|p| file_id(p) == Some(a.id)) {
                    Some(problem) => return Err(board::BoardError::BadFile(problem.clone()).into()),
                    None => return Err(board::BoardError::NotFound { id: a.id, dir }.into()),
                },
            };
            let attempts = crate::record::show::for_task(&dir, a.id);
            if a.json {
                return print_json(&attempts.json(TaskJson::new(task)));
            }
            let mut out = std::io::stdout().lock();
            write_details(&mut out, task)?;
            attempts.write(&mut out)?;
            Ok(())
        }
        TaskCommand::Move(a) => {
            let before = status_of(&dir, a.id);
            let task = board::move_to(&dir, a.id, &a.status, None, now)?;
            print_task(&task, a.json, || {
                format!("moved #{}: {} -> {}", task.id, before, task.status)
            })
        }
        TaskCommand::Edit(a) => edit(&dir, a, now),
        TaskCommand::Done(a) => {
            let task = board::update(&dir, a.id, now, |t, config| {
                t.status = config.done_status().to_owned();
                if let Some(note) = a.note.as_deref().filter(|n| !n.trim().is_empty()) {
                    append_note(&mut t.body, note);
                }
                Ok(())
            })?;
            print_task(&task, a.json, || {
                format!("#{} is {}: {}", task.id, task.status, task.title)
            })
        }
        TaskCommand::Release(a) => {
            let task = board::release(&dir, a.id, a.reason.as_deref(), now)?;
            print_task(&task, a.json, || {
                format!("released #{} (now {})", task.id, task.status)
            })
        }
        TaskCommand::Claim(a) => {
            let statuses = dispatch_statuses(&dir)?;
            let task = board::claim(&dir, a.id, &a.agent, &statuses, now)?;
            print_task(&task, a.json, || {
                format!("claimed #{} for {}", task.id, a.agent)
            })
        }
    }
}

fn list(dir: &std::path::Path, a: ListArgs) -> crate::error::Result<()> {
    let board = Board::load(dir)?;
    report_problems(&board);
    let mut tasks: Vec<&Task> = if a.ready {
        let statuses = dispatch_statuses(dir)?;
        board.ready(&statuses, &board::now())
    } else {
        let mut all: Vec<&Task> = board.tasks().iter().collect();
        all.sort_by_key(|t| t.id);
        all
    };
    if !a.status.is_empty() {
        tasks.retain(|t| a.status.contains(&t.status));
    }
    if a.json {
        let json: Vec<TaskJson> = tasks.iter().map(|t| TaskJson::new(t)).collect();
        return print_json(&json);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if tasks.is_empty() {
        writeln!(out, "no tasks")?;
        return Ok(());
    }
    let width = |f: &dyn Fn(&Task) -> usize, min: usize| {
        tasks.iter().map(|t| f(t)).max().unwrap_or(0).max(min)
    };
    let w_id = width(&|t| t.id.to_string().len() + 1, 2);
    let w_status = width(&|t| t.status.len(), 6);
    let w_priority = width(&|t| t.priority.len(), 8);
    let w_claim = width(&|t| t.claimed_by.as_deref().map_or(1, str::len), 7);
    writeln!(
        out,
        "{:<w_id$}  {:<w_status$}  {:<w_priority$}  {:<w_claim$}  TITLE",
        "ID", "STATUS", "PRIORITY", "CLAIMED"
    )?;
    for t in tasks {
        let mut title = t.title.replace('\n', " ");
        if t.blocked {
            title.push_str(" [blocked]");
        }
        writeln!(
            out,
            "{:<w_id$}  {:<w_status$}  {:<w_priority$}  {:<w_claim$}  {}",
            format!("#{}", t.id),
            t.status,
            t.priority,
            t.claimed_by.as_deref().unwrap_or("-"),
            title
        )?;
    }
    out.flush()?;
    Ok(())
}

fn edit(dir: &std::path::Path, a: EditArgs, now: board::Timestamp) -> crate::error::Result<()> {
    let due = match a.due.as_deref() {
        Some("") => Some(None),
        Some(d) => Some(Some(parse_due(d)?)),
        None => None,
    };
    let board_for_deps = match &a.depends_on {
        Some(deps) if !deps.is_empty() => Some(Board::load(dir)?),
        _ => None,
    };
    if let (Some(board), Some(deps)) = (&board_for_deps, &a.depends_on) {
        for dep in deps {
            if *dep == a.id || board.task(*dep).is_none() {
                return Err(user(format!(
                    "task #{dep} does not exist (or is #{} itself)",
                    a.id
                )));
            }
        }
    }
    let task = board::update(dir, a.id, now, |t, _| {
        if let Some(title) = a.title {
            t.title = title;
        }
        if let Some(status) = a.status {
            t.status = status;
        }
        if let Some(priority) = a.priority {
            t.priority = priority;
        }
        if let Some(class) = a.class {
            t.class = Some(class).filter(|c| !c.is_empty());
        }
        if let Some(assignee) = a.assignee {
            t.assignee = Some(assignee).filter(|c| !c.is_empty());
        }
        for tag in a.add_tags {
            if !t.tags.contains(&tag) {
                t.tags.push(tag);
            }
        }
        t.tags.retain(|tag| !a.remove_tags.contains(tag));
        if let Some(deps) = a.depends_on {
            t.depends_on = deps;
        }
        if let Some(body) = a.body {
            t.body = body;
        }
        if let Some(due) = due {
            t.due = due;
        }
        if let Some(reason) = a.block {
            t.blocked = true;
            t.block_reason = Some(reason).filter(|r| !r.is_empty());
        }
        if a.unblock {
            t.blocked = false;
            t.block_reason = None;
        }
        Ok(())
    })?;
    print_task(&task, a.json, || {
        format!("updated #{}: {}", task.id, task.title)
    })
}

/// The board folder from the flags, `BATTY_BOARD`, the worktree we are in, or the only board.
fn board_dir(phase: Option<&str>, board: Option<PathBuf>) -> crate::error::Result<PathBuf> {
    if let Some(dir) = board {
        return Ok(dir);
    }
    let cwd = std::env::current_dir()?;
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    let worktree = board::discover::worktree_origin(&cwd);
    let project = || -> crate::error::Result<crate::paths::Project> {
        match &worktree {
            Some((root, _)) => Ok(crate::paths::Project::new(root)),
            None => crate::commands::project(),
        }
    };
    if let Some(phase) = phase {
        crate::paths::validate_phase(phase)?;
        return Ok(project()?.board_dir(phase));
    }
    if let Some(dir) = std::env::var_os("BATTY_BOARD").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let project = project()?;
    if let Some((_, phase)) = &worktree {
        return Ok(project.board_dir(phase));
    }
    let boards = board::discover::boards(&project.boards_dir());
    match boards.as_slice() {
        [only] => Ok(project.board_dir(only)),
        [] => Err(user_hint(
            format!("no board in {}", project.boards_dir().display()),
            "run `batty init --phase NAME` to make one",
        )),
        many => Err(user_hint(
            format!("several boards: {}", many.join(", ")),
            "choose one with `--phase NAME`",
        )),
    }
}

/// `supervisor.dispatch_statuses` from `.batty/config.yml` of the board's project.
fn dispatch_statuses(board_dir: &std::path::Path) -> crate::error::Result<Vec<String>> {
    let start = board_dir
        .canonicalize()
        .unwrap_or_else(|_| board_dir.to_owned());
    let config = match crate::paths::Project::discover(&start) {
        Some(project) => crate::config::Config::load(&project.config_file())?,
        None => crate::config::Config::default(),
    };
    Ok(config.supervisor.dispatch_statuses)
}

fn report_problems(board: &Board) {
    let mut err = std::io::stderr().lock();
    for problem in board.problems() {
        let _ = writeln!(err, "warning: {problem}");
    }
    for cycle in board.cycles() {
        let ids: Vec<String> = cycle
            .iter()
            .chain(cycle.first())
            .map(|id| format!("#{id}"))
            .collect();
        let _ = writeln!(err, "warning: dependency cycle: {}", ids.join(" -> "));
    }
}

fn file_id(problem: &board::Problem) -> Option<u64> {
    let name = problem.path.file_name()?.to_str()?;
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn status_of(dir: &std::path::Path, id: u64) -> String {
    Board::load(dir)
        .ok()
        .and_then(|b| b.task(id).map(|t| t.status.clone()))
        .unwrap_or_else(|| "?".into())
}

fn parse_due(text: &str) -> crate::error::Result<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| user(format!("invalid due date `{text}`: use YYYY-MM-DD")))
}

fn append_note(body: &mut String, note: &str) {
    if !body.is_empty() {
        if !body.ends_with('\n') {
            body.push('\n');
        }
        body.push('\n');
    }
    body.push_str(note.trim_end());
    body.push('\n');
}

fn print_task(task: &Task, json: bool, line: impl FnOnce() -> String) -> crate::error::Result<()> {
    if json {
        return print_json(&TaskJson::new(task));
    }
    println!("{}", line());
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> crate::error::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value).context("cannot write JSON")?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

fn write_details(out: &mut impl Write, t: &Task) -> std::io::Result<()> {
    let time = |ts: &Option<board::Timestamp>| ts.as_ref().map(board::format_rfc3339_nano);
    let ids = |ids: &[u64]| {
        ids.iter()
            .map(|i| format!("#{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(out, "#{} {}", t.id, t.title)?;
    let rows: [(&str, Option<String>); 15] = [
        ("status", Some(t.status.clone())),
        (
            "priority",
            Some(t.priority.clone()).filter(|p| !p.is_empty()),
        ),
        ("class", t.class.clone()),
        ("assignee", t.assignee.clone()),
        ("tags", Some(t.tags.join(", ")).filter(|s| !s.is_empty())),
        ("due", t.due.map(|d| d.to_string())),
        ("estimate", t.estimate.clone()),
        ("parent", t.parent.map(|p| format!("#{p}"))),
        (
            "depends on",
            Some(ids(&t.depends_on)).filter(|s| !s.is_empty()),
        ),
        (
            "blocked",
            t.blocked
                .then(|| t.block_reason.clone().unwrap_or_else(|| "yes".into())),
        ),
        ("claimed by", t.claimed_by.clone()),
        ("claimed at", time(&t.claimed_at)),
        ("created", time(&t.created)),
        ("updated", time(&t.updated)),
        ("file", Some(t.path().display().to_string())),
    ];
    for (name, value) in rows {
        if let Some(value) = value {
            writeln!(out, "  {name:<11} {value}")?;
        }
    }
    if !t.body.is_empty() {
        writeln!(out)?;
        write!(out, "{}", t.body)?;
        if !t.body.ends_with('\n') {
            writeln!(out)?;
        }
    }
    Ok(())
}
