//! `batty task`: read and change the tasks on a board.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Context;

use crate::board::{self, Board, NewTask, Task, TaskJson};
use crate::error::{user, user_hint};
use crate::text::{escape_control, one_line};

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
        TaskCommand::Add(a) => add(&dir, a, now),
        TaskCommand::List(a) => list(&dir, a),
        TaskCommand::Show(a) => show(&dir, a),
        TaskCommand::Move(a) => {
            let mut before = String::new();
            let task = board::update(&dir, a.id, now, |t, config| {
                before = t.status.clone();
                if !config.has_status(&a.status) {
                    return Err(unknown_status(config, &a.status));
                }
                t.status = a.status.clone();
                Ok(())
            })?;
            print_task(&task, a.json, || {
                format!(
                    "moved #{}: {} -> {}",
                    task.id,
                    one_line(&before),
                    one_line(&task.status)
                )
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
                format!(
                    "#{} is {}: {}",
                    task.id,
                    one_line(&task.status),
                    title_line(&task)
                )
            })
        }
        TaskCommand::Release(a) => {
            let task = board::release(&dir, a.id, a.reason.as_deref(), now)?;
            print_task(&task, a.json, || {
                format!("released #{} (now {})", task.id, one_line(&task.status))
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

fn add(dir: &Path, a: AddArgs, now: board::Timestamp) -> crate::error::Result<()> {
    let due = a.due.as_deref().map(parse_due).transpose()?;
    for tag in &a.tags {
        one_line_arg("tag", tag)?;
    }
    if let Some(assignee) = &a.assignee {
        one_line_arg("assignee", assignee)?;
    }
    let task = board::create(
        dir,
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
            one_line(task.file_name()),
            title_line(&task)
        )
    })
}

fn list(dir: &Path, a: ListArgs) -> crate::error::Result<()> {
    let mut board = Board::load(dir)?;
    for removed in board.remove_leftover_temps() {
        tracing::info!("removed a leftover temp file: {}", removed.display());
    }
    if let Some(bad) = a.status.iter().find(|s| !board.config().has_status(s)) {
        return Err(unknown_status(board.config(), bad).into());
    }
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
    struct Row<'a> {
        id: String,
        status: Cow<'a, str>,
        priority: Cow<'a, str>,
        claim: Cow<'a, str>,
        title: String,
    }
    let rows: Vec<Row> = tasks
        .iter()
        .map(|t| {
            let mut title = title_line(t);
            if t.blocked {
                title.push_str(" [blocked]");
            }
            Row {
                id: format!("#{}", t.id),
                status: one_line(&t.status),
                priority: one_line(&t.priority),
                claim: one_line(t.claimed_by.as_deref().unwrap_or("-")),
                title,
            }
        })
        .collect();
    let width =
        |f: &dyn Fn(&Row) -> usize, min: usize| rows.iter().map(f).max().unwrap_or(0).max(min);
    let w_id = width(&|r| r.id.chars().count(), 2);
    let w_status = width(&|r| r.status.chars().count(), 6);
    let w_priority = width(&|r| r.priority.chars().count(), 8);
    let w_claim = width(&|r| r.claim.chars().count(), 7);
    writeln!(
        out,
        "{:<w_id$}  {:<w_status$}  {:<w_priority$}  {:<w_claim$}  TITLE",
        "ID", "STATUS", "PRIORITY", "CLAIMED"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<w_id$}  {:<w_status$}  {:<w_priority$}  {:<w_claim$}  {}",
            r.id, r.status, r.priority, r.claim, r.title
        )?;
    }
    out.flush()?;
    Ok(())
}

/// One task, read from its own file (and its dependencies', for whether it is ready).
fn show(dir: &Path, a: IdArgs) -> crate::error::Result<()> {
    let (config, task) = board::find_task(dir, a.id)?;
    let attempts = crate::record::show::for_task(dir, a.id);
    if a.json {
        return print_json(&attempts.json(TaskJson::new(&task)));
    }
    let ready = if config.is_terminal(&task.status) {
        None
    } else {
        let statuses = dispatch_statuses(dir)?;
        Some(
            board::readiness(&config, &task, &statuses, &board::now())
                .map_or_else(|| "yes".to_owned(), |why| format!("no: {why}")),
        )
    };
    let mut out = std::io::stdout().lock();
    write_details(&mut out, &task, ready)?;
    attempts.write(&mut out)?;
    Ok(())
}

fn edit(dir: &Path, a: EditArgs, now: board::Timestamp) -> crate::error::Result<()> {
    let nothing = a.title.is_none()
        && a.status.is_none()
        && a.priority.is_none()
        && a.class.is_none()
        && a.assignee.is_none()
        && a.add_tags.is_empty()
        && a.remove_tags.is_empty()
        && a.depends_on.is_none()
        && a.body.is_none()
        && a.due.is_none()
        && a.block.is_none()
        && !a.unblock;
    if nothing {
        return Err(user_hint(
            format!("nothing to change for #{}", a.id),
            "give a field to change, e.g. `--priority high` (see `batty task edit --help`)",
        ));
    }
    let due = match a.due.as_deref() {
        Some("") => Some(None),
        Some(d) => Some(Some(parse_due(d)?)),
        None => None,
    };
    for tag in &a.add_tags {
        one_line_arg("tag", tag)?;
    }
    if let Some(assignee) = &a.assignee {
        one_line_arg("assignee", assignee)?;
    }
    let mut changed = false;
    let task = board::update(dir, a.id, now, |t, _| {
        let before = t.clone();
        if let Some(title) = &a.title {
            t.title = title.clone();
        }
        if let Some(status) = &a.status {
            t.status = status.clone();
        }
        if let Some(priority) = &a.priority {
            t.priority = priority.clone();
        }
        if let Some(class) = &a.class {
            t.class = Some(class.clone()).filter(|c| !c.is_empty());
        }
        if let Some(assignee) = &a.assignee {
            t.assignee = Some(assignee.clone()).filter(|c| !c.is_empty());
        }
        for tag in &a.add_tags {
            if !t.tags.contains(tag) {
                t.tags.push(tag.clone());
            }
        }
        t.tags.retain(|tag| !a.remove_tags.contains(tag));
        if let Some(deps) = &a.depends_on {
            t.depends_on = deps.clone();
        }
        if let Some(body) = &a.body {
            t.body = body.clone();
        }
        if let Some(due) = due {
            t.due = due;
        }
        if let Some(reason) = &a.block {
            t.blocked = true;
            t.block_reason = Some(reason.clone()).filter(|r| !r.is_empty());
        }
        if a.unblock {
            t.blocked = false;
            t.block_reason = None;
        }
        changed = *t != before;
        Ok(())
    })?;
    print_task(&task, a.json, || {
        if changed {
            format!("updated #{}: {}", task.id, title_line(&task))
        } else {
            format!("#{} unchanged: it already has those values", task.id)
        }
    })
}

fn unknown_status(config: &board::BoardConfig, status: &str) -> board::BoardError {
    board::BoardError::Unknown {
        what: "status",
        value: status.to_owned(),
        allowed: config.status_names().collect::<Vec<_>>().join(", "),
    }
}

/// Refuses a control character (a line break, an escape) in a one-line field given on the
/// command line.
fn one_line_arg(what: &str, value: &str) -> crate::error::Result<()> {
    if value.chars().any(char::is_control) {
        return Err(user(format!(
            "the {what} `{}` has a control character; it must be one line of text",
            one_line(value)
        )));
    }
    Ok(())
}

/// A title for one line of output: line breaks of a multi-line title become spaces, and
/// control characters are escaped.
fn title_line(task: &Task) -> String {
    one_line(&task.title.replace('\n', " ")).into_owned()
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
fn dispatch_statuses(board_dir: &Path) -> crate::error::Result<Vec<String>> {
    let start = board_dir
        .canonicalize()
        .unwrap_or_else(|_| board_dir.to_owned());
    let config = match crate::paths::Project::discover(&start) {
        Some(project) => crate::config::Config::load(&project.config_file())?,
        None => crate::config::Config::default(),
    };
    Ok(config.supervisor.dispatch_statuses)
}

/// Board problems on stderr, one line each (the list is still printed on stdout).
fn report_problems(board: &Board) {
    let mut err = std::io::stderr().lock();
    for problem in board.problems() {
        let _ = writeln!(err, "warning: {problem}");
    }
}

fn parse_due(text: &str) -> crate::error::Result<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        user(format!(
            "invalid due date `{}`: use YYYY-MM-DD",
            one_line(text)
        ))
    })
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

fn write_details(out: &mut impl Write, t: &Task, ready: Option<String>) -> std::io::Result<()> {
    let time = |ts: &Option<board::Timestamp>| ts.as_ref().map(board::format_rfc3339_nano);
    let ids = |ids: &[u64]| {
        ids.iter()
            .map(|i| format!("#{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(out, "#{} {}", t.id, title_line(t))?;
    let rows: [(&str, Option<String>); 16] = [
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
        ("ready", ready),
        ("file", Some(t.path().display().to_string())),
    ];
    for (name, value) in rows {
        if let Some(value) = value {
            writeln!(out, "  {name:<11} {}", one_line(&value))?;
        }
    }
    if !t.body.is_empty() {
        writeln!(out)?;
        let body = escape_control(&t.body);
        write!(out, "{body}")?;
        if !body.ends_with('\n') {
            writeln!(out)?;
        }
    }
    Ok(())
}
