//! `batty completions`.
#[derive(Debug, clap::Args)]
pub struct Args {}
#[derive(Debug, clap::Args)]
pub struct ManArgs {}
pub fn run(_: Args) -> crate::error::Result<()> {
    Ok(())
}
pub fn man(_: ManArgs) -> crate::error::Result<()> {
    Ok(())
}
