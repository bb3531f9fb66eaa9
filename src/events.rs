//! Each agent's event log (`.batty/logs/<phase>/<agent>.events.log`): one line per thing the
//! supervisor did or saw (task delivered, answer sent, state change), shown in the log pane.

use std::io::Write;
use std::path::Path;

/// Appends `HH:MM:SS message` to the event log at `path`.
pub fn append(path: &Path, message: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let now = chrono::Local::now().format("%H:%M:%S");
    // One write per line so concurrent writers never interleave within a line.
    let line = format!("{now} {}\n", message.replace('\n', " / "));
    file.write_all(line.as_bytes())
}
