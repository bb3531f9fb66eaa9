//! Sessions and panes as `list-sessions`/`list-panes` report them: TAB-separated `-F` fields
//! with the one free-text field (a name) last, so a name holding a TAB cannot shift the rest.

use super::TmuxError;

pub(crate) const SESSION_FORMAT: &str = "#{session_id}\t#{session_name}";

pub(crate) const PANE_FORMAT: &str = "#{session_id}\t#{window_id}\t#{window_index}\t#{pane_id}\t#{pane_index}\t#{pane_top}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_pid}\t#{pane_current_command}\t#{@batty_agent}\t#{@batty_role}\t#{window_name}";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub name: String,
}

/// One pane, with the window it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pane {
    pub session_id: String,
    pub window_id: String,
    pub window_index: u32,
    pub pane_id: String,
    pub pane_index: u32,
    /// Row of the pane's top edge: the executor is the pane with the smallest.
    pub top: u32,
    /// The pane's program exited and the pane stays (remain-on-exit).
    pub dead: bool,
    /// Exit status of a dead pane's program.
    pub dead_status: Option<i32>,
    pub pid: Option<u32>,
    pub current_command: String,
    /// The agent this pane belongs to (`@batty_agent`), empty when untagged.
    pub agent: String,
    /// `executor` or `log` (`@batty_role`), empty when untagged.
    pub role: String,
    pub window_name: String,
}

fn bad(output: &str) -> TmuxError {
    TmuxError::Parse {
        cmdline: "tmux list-panes".into(),
        output: output.to_owned(),
    }
}

pub(crate) fn parse_sessions(out: &str) -> Result<Vec<Session>, TmuxError> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (id, name) = line.split_once('\t').ok_or_else(|| bad(line))?;
            Ok(Session {
                id: id.to_owned(),
                name: name.to_owned(),
            })
        })
        .collect()
}

pub(crate) fn parse_panes(out: &str) -> Result<Vec<Pane>, TmuxError> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|line| parse_pane(line).ok_or_else(|| bad(line)))
        .collect()
}

fn parse_pane(line: &str) -> Option<Pane> {
    let mut f = line.splitn(13, '\t');
    let mut next = || f.next();
    let session_id = next()?.to_owned();
    let window_id = next()?.to_owned();
    let window_index = next()?.parse().ok()?;
    let pane_id = next()?.to_owned();
    let pane_index = next()?.parse().ok()?;
    let top = next()?.parse().ok()?;
    let dead = next()? == "1";
    let dead_status = next()?.parse().ok();
    let pid = next()?.parse().ok();
    let current_command = next()?.to_owned();
    let agent = next()?.to_owned();
    let role = next()?.to_owned();
    let window_name = next()?.to_owned();
    Some(Pane {
        session_id,
        window_id,
        window_index,
        pane_id,
        pane_index,
        top,
        dead,
        dead_status,
        pid,
        current_command,
        agent,
        role,
        window_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_last_may_hold_tabs() {
        let out = "$1\t@2\t1\t%3\t0\t0\t1\t4\t123\tsh\totter\texecutor\tname\twith tab\n$1\t@2\t1\t%4\t1\t40\t0\t\t124\tbatty\t\t\tx\n";
        let panes = parse_panes(out).unwrap();
        assert_eq!(panes.len(), 2);
        assert_eq!(panes[0].window_name, "name\twith tab");
        assert_eq!(
            (panes[0].agent.as_str(), panes[0].role.as_str()),
            ("otter", "executor")
        );
        assert_eq!(panes[1].agent, "");
        assert!(panes[0].dead);
        assert_eq!(panes[0].dead_status, Some(4));
        assert_eq!(panes[1].dead_status, None);
        assert_eq!(panes[1].top, 40);
        assert!(parse_panes("garbage").is_err());
    }

    #[test]
    fn sessions() {
        let s = parse_sessions("$0\tbatty-v1\n$1\ta\tb\n").unwrap();
        assert_eq!(s[1].name, "a\tb");
    }
}

/// True while process `pid` exists and is not a zombie: a pane's program that exited but
/// that tmux has not reaped yet counts as gone.
pub fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        // No /proc (not Linux): ask the kernel whether the pid exists.
        Err(_) if !std::path::Path::new("/proc/self").exists() => {
            // SAFETY: signal 0 only checks that the process exists; nothing is sent.
            unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod process_tests {
    use super::process_running;

    #[test]
    fn running_exited_and_zombie_processes() {
        assert!(process_running(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited but not waited for: a zombie, which does not count as running.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while process_running(pid) {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::yield_now();
        }
        child.wait().unwrap();
        assert!(!process_running(pid));
    }
}
