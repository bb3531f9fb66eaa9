//! `batty completions` and `batty man`: shell completions and the man page, generated from
//! the same clap definitions the parser uses, so they cannot drift from the options.

use clap::CommandFactory;

use crate::error::{Context as _, Result};

/// Print a completion script for a shell, e.g. `batty completions bash >
/// ~/.local/share/bash-completion/completions/batty`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Print batty's man page (roff), or with --dir write one page per command into a folder
/// (`batty.1`, `batty-work.1`, `batty-task-add.1`, ...), e.g. for `man -l` or a `man1/`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write every command's page into this folder instead of printing `batty.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut cmd = crate::cli::Cli::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "batty", &mut std::io::stdout());
    Ok(())
}

pub fn man(args: ManArgs) -> Result<()> {
    let pages = pages().context("cannot render the man pages")?;
    match args.dir {
        None => {
            use std::io::Write;
            let (_, top) = &pages[0];
            std::io::stdout()
                .write_all(top)
                .context("cannot write the man page")
        }
        Some(dir) => {
            for (name, text) in &pages {
                let path = dir.join(name);
                crate::fsutil::write_atomic(&path, text)
                    .with_context(|| format!("cannot write `{}`", path.display()))?;
            }
            super::ui::note(format!("wrote {} pages to {}", pages.len(), dir.display()));
            Ok(())
        }
    }
}

/// Every visible command's page as `(file name, roff)`, `batty.1` first.
pub fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        let man = clap_mangen::Man::new(cmd.clone());
        let mut text = Vec::new();
        man.render(&mut text)?;
        out.push((man.get_filename(), text));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, out)?;
        }
        Ok(())
    }
    let mut cmd = crate::cli::Cli::command().disable_help_subcommand(true);
    // Building names each subcommand's page (`batty-work`).
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, &mut out)?;
    Ok(out)
}
