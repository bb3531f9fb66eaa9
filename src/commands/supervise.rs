//! `batty supervise <phase>`: the supervisor, run by `batty work` in window 0 of the session.

/// Watch the agents of a phase and hand them the board's tasks (started by `batty work`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The phase whose session this supervises.
    pub phase: String,
    /// End the session once every task is terminal and every agent idle.
    #[arg(long)]
    pub exit_when_done: bool,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("being rewritten")
}
