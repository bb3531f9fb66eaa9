//! `batty demo`: the whole loop on a throwaway repository with the built-in demo agent.

use std::path::{Path, PathBuf};

use crate::error::Context as _;

use crate::error::user;
use crate::git::Git;
use crate::proc::Cmd;

/// Show the whole loop on a throwaway repository: a board of demo tasks with dependencies,
/// worked by demo agents in a tmux session, merged onto `main` as they finish.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder for the demo repository (must not exist) [default: a new folder in the temp dir].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Number of agents.
    #[arg(long, short = 'n', default_value_t = 3)]
    pub parallel: usize,
    /// Milliseconds each demo task takes.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub delay: u64,
    /// Set everything up and start the session, but do not attach to it.
    #[arg(long)]
    pub no_attach: bool,
}

const TASKS: &[(&str, &str)] = &[
    ("Sketch the data model", ""),
    ("Write the storage layer", "1"),
    ("Add the HTTP handlers", "2"),
    ("Write the command-line client", "1"),
    ("Add request logging", ""),
    ("Document the API", "3"),
    ("Add an integration test", "3,4"),
    ("Tidy up the README", ""),
];

pub fn run(args: Args) -> crate::error::Result<()> {
    if args.parallel == 0 || args.parallel > 16 {
        return Err(user("`--parallel` must be between 1 and 16 for the demo"));
    }
    let dir = match args.dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("batty-demo-{}", std::process::id())),
    };
    if dir.exists() {
        return Err(user(format!(
            "`{}` already exists; the demo needs a new folder",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe().context("finding the batty binary")?;
    make_repo(&dir)?;
    let batty = |args: &[&str]| -> crate::error::Result<String> {
        Ok(Cmd::new(&exe).args(args).current_dir(&dir).read()?)
    };
    batty(&["init", "--phase", "demo"])?;
    let config = format!(
        "# The demo: agents that pretend to work for {}ms per task; task 3 asks a question\n\
         # the demo adapter answers by itself.\n\
         agents:\n  demo:\n    args: [\"--delay\", \"{}\", \"--lines\", \"5\", \"--ask-on\", \"3\"]\n",
        args.delay, args.delay
    );
    std::fs::write(dir.join(".batty/config.yml"), config).context("writing the demo config")?;
    for (title, deps) in TASKS {
        let mut add = vec!["task", "add", "--phase", "demo", title];
        if !deps.is_empty() {
            add.extend(["--depends-on", deps]);
        }
        batty(&add)?;
    }
    git(&dir, &["add", "-A"])?;
    git(&dir, &["commit", "-q", "-m", "Demo board"])?;
    let parallel = args.parallel.to_string();
    let mut work = vec!["work", "demo", "--parallel", &parallel, "--agent", "demo"];
    println!("demo repository: {}", dir.display());
    if args.no_attach {
        println!("{}", batty(&work)?);
        println!("watch it with: cd {} && batty attach demo", dir.display());
        return Ok(());
    }
    work.push("--attach");
    // Attaching hands the terminal to tmux: run it in the foreground with our stdio.
    let status = Cmd::new(&exe)
        .args(&work)
        .current_dir(&dir)
        .to_command()
        .status()
        .context("running `batty work`")?;
    if !status.success() {
        return Err(user(format!("`batty work` failed ({status})")));
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> crate::error::Result<()> {
    Git::new(dir).run(args)?;
    Ok(())
}

fn make_repo(dir: &Path) -> crate::error::Result<()> {
    git(dir, &["init", "-q", "-b", "main"])?;
    // The demo's own identity, so agents and merges can commit on a machine without one.
    git(dir, &["config", "user.name", "batty demo"])?;
    git(dir, &["config", "user.email", "demo@batty.invalid"])?;
    std::fs::write(
        dir.join("README.md"),
        "# batty demo\n\nA throwaway repository worked by batty's demo agents.\n",
    )?;
    git(dir, &["add", "README.md"])?;
    git(dir, &["commit", "-q", "-m", "Start the demo"])
}
