//! The merge gate: a shell command run on the merged tree with a time limit, in a process group
//! of its own so a timeout (or crash recovery) can end it and everything it started.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::proc::Cmd;

use super::MergeError;

/// Lines of gate output quoted back to the agent.
pub const TAIL_LINES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GateRun {
    pub passed: bool,
    /// `exit code 1`, `killed by signal 9`, `timed out after 30m`.
    pub status: String,
    /// The exit code, when the gate exited by itself.
    pub code: Option<i32>,
    /// How long it ran.
    pub took: Duration,
    /// The last lines this run wrote.
    pub tail: String,
}

/// Runs `gate` with `sh -c` in `dir`, appending its output to `log`; `started` gets the
/// process group id as soon as the gate runs (so a crash can be cleaned up).
pub(crate) fn run(
    gate: &str,
    dir: &Path,
    log: &Path,
    timeout: Duration,
    env: &[(&str, String)],
    started: impl FnOnce(u32),
) -> Result<GateRun, MergeError> {
    let io = |source| MergeError::Io {
        path: log.to_owned(),
        source,
    };
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io)?;
    let start = file.seek(SeekFrom::End(0)).map_err(io)?;
    let mut cmd = Cmd::new("sh").args(["-c", gate]).current_dir(dir);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    let mut command = cmd.to_command();
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(io)?)
        .stderr(file.try_clone().map_err(io)?)
        .process_group(0);
    let mut child = command.spawn().map_err(|source| MergeError::GateSpawn {
        gate: gate.to_owned(),
        dir: dir.to_owned(),
        source,
    })?;
    let pgid = child.id();
    let began = std::time::Instant::now();
    started(pgid);

    let (tx, rx) = crossbeam_channel::bounded(1);
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, timed_out) = match rx.recv_timeout(timeout) {
        Ok(status) => (status, false),
        Err(_) => {
            kill_group(pgid);
            // The leader dies with its group, so this wait is short.
            (
                rx.recv()
                    .unwrap_or_else(|_| Err(std::io::Error::other("gate waiter ended"))),
                true,
            )
        }
    };
    let _ = waiter.join();
    let took = began.elapsed();
    let status = status.map_err(io)?;
    let status_text = if timed_out {
        format!("timed out after {}", humantime::format_duration(timeout))
    } else if let Some(code) = status.code() {
        format!("exit code {code}")
    } else {
        use std::os::unix::process::ExitStatusExt;
        format!("killed by signal {}", status.signal().unwrap_or(0))
    };
    let _ = writeln!(file, "== gate {status_text}");
    let tail = read_tail(log, start).map_err(io)?;
    Ok(GateRun {
        passed: status.success() && !timed_out,
        status: status_text,
        code: status.code().filter(|_| !timed_out),
        took,
        tail,
    })
}

/// Ends a gate's whole process group.
pub(crate) fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid)
        && pgid > 1
    {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// The last [`TAIL_LINES`] lines written to `log` after byte `start`.
fn read_tail(log: &Path, start: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::open(log)?;
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("== gate "))
        .collect();
    let from = lines.len().saturating_sub(TAIL_LINES);
    Ok(lines[from..]
        .iter()
        .map(|l| {
            let l = l.trim_end();
            match l.char_indices().nth(300) {
                Some((i, _)) => format!("{}...", &l[..i]),
                None => l.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn pass_fail_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/m.log");
        let ok = run(
            "echo fine",
            dir.path(),
            &log,
            Duration::from_secs(10),
            &[],
            |_| {},
        )
        .unwrap();
        assert!(ok.passed);
        assert_eq!(ok.code, Some(0));
        let red = run(
            "for i in $(seq 1 30); do echo line$i; done; echo boom >&2; exit 3",
            dir.path(),
            &log,
            Duration::from_secs(10),
            &[],
            |_| {},
        )
        .unwrap();
        assert!(!red.passed);
        assert_eq!(red.status, "exit code 3");
        assert_eq!(red.code, Some(3));
        let lines: Vec<&str> = red.tail.lines().collect();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line12");
        assert_eq!(lines[TAIL_LINES - 1], "boom");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.starts_with("fine\n"), "log keeps earlier runs: {text}");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("m.log");
        let pidfile = dir.path().join("grandchild.pid");
        let gate = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let t = Instant::now();
        let r = run(
            &gate,
            dir.path(),
            &log,
            Duration::from_millis(300),
            &[],
            |_| {},
        )
        .unwrap();
        assert!(!r.passed);
        assert!(r.status.starts_with("timed out"), "{}", r.status);
        assert_eq!(r.code, None);
        assert!(r.took >= Duration::from_millis(300), "{:?}", r.took);
        assert!(t.elapsed() < Duration::from_secs(5));
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_alive(&pid) {
            assert!(
                Instant::now() < deadline,
                "grandchild {pid} outlived the timeout"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Running and not a zombie waiting for init to reap it.
    fn process_alive(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat.rsplit(") ").next().unwrap_or("").starts_with('Z'),
            Err(_) => false,
        }
    }
}
