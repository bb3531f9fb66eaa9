//! `batty attach`: hand the terminal to the phase's tmux session.

use crate::config::Config;
use crate::error::{Result, user_hint};
use crate::paths::session_name;

/// Attach to the phase's tmux session (switch to it when already inside tmux).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The phase whose session to attach to.
    pub phase: String,
}

pub fn run(args: Args) -> Result<()> {
    let project = super::project()?;
    super::known_phase(&project, &args.phase)?;
    let config = Config::load(&project.config_file())?;
    let tmux = super::tmux(&config)?;
    let name = session_name(&args.phase);
    let Some(id) = crate::session::tag::find(&tmux, &project, &args.phase)? else {
        return Err(user_hint(
            format!("no session `{name}` is running"),
            format!("start it with `batty work {}`", args.phase),
        ));
    };
    tmux.attach(&id)?;
    Ok(())
}
