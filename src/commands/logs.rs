//! `batty logs`: an agent's event log (or its raw pty log), optionally followed.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use crate::error::user_hint;
use crate::paths::{validate_agent, validate_phase};
use crate::session::RunState;

/// Show an agent's event log: what the supervisor did and saw (tasks, answers, states).
#[derive(Debug, clap::Args)]
pub struct Args {
    pub phase: String,
    pub agent: String,
    /// Keep printing what is appended (until interrupted).
    #[arg(long, short)]
    pub follow: bool,
    /// Show the agent's terminal output (`<agent>.pty.log`) instead, escape codes and all.
    #[arg(long)]
    pub raw: bool,
}

/// Pause between looks at a followed file: quick enough for a person, idle for the CPU.
const POLL: Duration = Duration::from_millis(150);

pub fn run(args: Args) -> crate::error::Result<()> {
    validate_phase(&args.phase)?;
    validate_agent(&args.agent)?;
    let project = super::project()?;
    let (phase, agent) = (args.phase.as_str(), args.agent.as_str());
    let path = if args.raw {
        project.pty_log(phase, agent)
    } else {
        project.event_log(phase, agent)
    };
    if !args.follow {
        // A followed log may be asked for before the run state names the agent (log panes
        // start with their window); a one-off look at an unknown agent is a mistake.
        let known =
            RunState::load(&project.run_state(phase))?.is_some_and(|s| s.agent(agent).is_some());
        if !known && !path.exists() {
            return Err(user_hint(
                format!("no agent `{agent}` in phase `{phase}`"),
                format!("see the agents with `batty status {phase}`"),
            ));
        }
    }
    let mut out = std::io::stdout().lock();
    let mut pos = print_from(&path, 0, &mut out)?;
    if args.follow {
        loop {
            std::thread::sleep(POLL);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len < pos {
                // Rotated or truncated: start over on the new file.
                pos = 0;
            }
            if len > pos {
                pos = print_from(&path, pos, &mut out)?;
            }
        }
    }
    Ok(())
}

/// Prints `path` from byte `pos`; returns the new position. A missing file prints nothing.
fn print_from(path: &Path, pos: u64, out: &mut impl Write) -> crate::error::Result<u64> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pos),
        Err(e) => return Err(e.into()),
    };
    file.seek(SeekFrom::Start(pos))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(pos + bytes.len() as u64)
}
