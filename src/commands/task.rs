//! `batty task`: read and change the tasks on a board.

/// Read and change the tasks on a board.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<TaskCommand>,
}

#[derive(Debug, clap::Subcommand)]
pub enum TaskCommand {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    Err(crate::error::user("`batty task` is not built yet"))
}
