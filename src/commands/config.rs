//! `batty config`: the effective configuration, each value with where it came from.

use serde::Serialize;

use crate::config::{Config, Entry, effective, show_value};
use crate::error::{Context as _, Result};

/// Print the effective configuration: every setting with its value and where it came from
/// (`default`, `.batty/config.yml:LINE`, or an environment variable). Every key is described
/// in docs/config.md.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: `{"file": ..., "entries": [{"key", "value", "origin"}]}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Out<'a> {
    file: String,
    entries: &'a [Entry],
}

pub fn run(args: Args) -> Result<()> {
    let project = super::project()?;
    let path = project.config_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let shown = path
        .strip_prefix(project.root())
        .unwrap_or(&path)
        .to_owned();
    let config = match &text {
        Some(text) => Config::parse(&shown, text)?,
        None => Config::default(),
    };
    let socket = std::env::var(crate::tmux::SOCKET_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let env: Vec<(&str, &str, &str)> = socket
        .as_deref()
        .map(|s| ("tmux.socket", crate::tmux::SOCKET_ENV, s))
        .into_iter()
        .collect();
    let entries = effective(&config, text.as_deref(), &shown, &env);
    if args.json {
        let out = Out {
            file: shown.display().to_string(),
            entries: &entries,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print!("{}", render(&entries));
    Ok(())
}

/// `KEY  VALUE  ORIGIN` columns; unset values show as `(unset)`.
fn render(entries: &[Entry]) -> String {
    let rows: Vec<[String; 3]> = entries
        .iter()
        .map(|e| {
            let value = show_value(&e.value);
            [e.key.clone(), value, e.origin.to_string()]
        })
        .collect();
    let mut widths = [0usize; 2];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for [key, value, origin] in &rows {
        out.push_str(&format!(
            "{key:<k$}  {value:<v$}  {origin}\n",
            k = widths[0],
            v = widths[1]
        ));
    }
    out
}
