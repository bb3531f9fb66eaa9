//! `batty attach`: hand the terminal to the phase's tmux session.

use crate::config::Config;
use crate::error::user_hint;
use crate::paths::{session_name, validate_phase};
use crate::tmux::Tmux;

/// Attach to the phase's tmux session (switch to it when already inside tmux).
#[derive(Debug, clap::Args)]
pub struct Args {
    pub phase: String,
}

pub fn run(args: Args) -> crate::error::Result<()> {
    validate_phase(&args.phase)?;
    let project = super::project()?;
    let config = Config::load(&project.config_file())?;
    let tmux = Tmux::from_config(&config.tmux);
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
