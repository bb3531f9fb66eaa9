//! `batty merge`.

/// (not built yet)
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    Err(crate::error::user("`batty merge` is not built yet"))
}
