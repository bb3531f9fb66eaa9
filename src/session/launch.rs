//! How an agent's window is made and its executor (re)started, for `batty work` and for the
//! supervisor's revival of a dead agent alike: the executor pane runs the agent in its
//! worktree with the batty variables, its output piped to the pty log, and both panes tagged
//! (`@batty_agent`, `@batty_role`) so that the supervisor finds them by name, never by a
//! remembered id or a position.

use crate::paths::Project;
use crate::proc::shell_word;
use crate::tmux::{PaneSpec, Scope, Tmux, TmuxError, WindowSetup};

use super::state::AgentRecord;

/// Rows of the log pane under each executor.
pub const LOG_PANE_LINES: u32 = 10;

/// Variables removed from agent panes: tmux sets `TMUX`/`TMUX_PANE` in every pane, and
/// `CLAUDECODE` (inherited when batty runs inside Claude Code) makes Claude Code refuse to
/// start.
pub const STRIPPED_ENV: &[&str] = &["CLAUDECODE", "TMUX", "TMUX_PANE"];

/// The pane option naming the agent a pane belongs to.
pub const AGENT_OPTION: &str = "@batty_agent";
/// The pane option saying which pane of the agent's window it is: `executor` or `log`.
pub const ROLE_OPTION: &str = "@batty_role";

/// What starting an agent's panes needs to know.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub project: &'a Project,
    pub phase: &'a str,
    /// This batty binary, for the log pane and the log writer.
    pub exe: &'a str,
    /// `logs.max_bytes`.
    pub max_log_bytes: u64,
}

/// The panes of a window made by [`Launch::window`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panes {
    pub window: String,
    pub executor: String,
    pub log: String,
}

impl Launch<'_> {
    /// The executor pane: `command` through `sh -c`, in the agent's worktree, with the batty
    /// variables set and the tmux/Claude Code ones removed.
    pub fn executor(&self, record: &AgentRecord, command: &str) -> PaneSpec {
        let board = self.project.board_dir(self.phase);
        let mut env = vec![
            ("BATTY_PHASE".to_owned(), self.phase.to_owned()),
            ("BATTY_AGENT".to_owned(), record.name.clone()),
            (
                "BATTY_BOARD".to_owned(),
                board.to_string_lossy().into_owned(),
            ),
        ];
        if let Some(port) = record.port {
            env.push(("BATTY_PORT".to_owned(), port.to_string()));
        }
        PaneSpec {
            cwd: record.worktree.clone(),
            argv: vec!["sh".into(), "-c".into(), command.to_owned()],
            env,
            unset: STRIPPED_ENV.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The log pane: `batty logs <phase> <agent> --follow`.
    pub fn log(&self, agent: &str) -> PaneSpec {
        PaneSpec {
            cwd: self.project.root().to_owned(),
            argv: vec![
                self.exe.to_owned(),
                "logs".into(),
                self.phase.to_owned(),
                agent.to_owned(),
                "--follow".into(),
            ],
            env: Vec::new(),
            unset: STRIPPED_ENV.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// `batty log-writer <pty log> --max-bytes N`, which pipe-pane feeds the executor's output.
    pub fn pipe(&self, agent: &str) -> String {
        format!(
            "exec {} log-writer {} --max-bytes {}",
            shell_word(self.exe),
            shell_word(&self.project.pty_log(self.phase, agent).to_string_lossy()),
            self.max_log_bytes
        )
    }

    /// A new window at `index` of `session` for the agent: executor above, log below, both
    /// tagged.
    pub fn window(
        &self,
        tmux: &Tmux,
        session: &str,
        index: u32,
        record: &AgentRecord,
        command: &str,
    ) -> Result<Panes, TmuxError> {
        let setup = WindowSetup {
            remain_on_exit: true,
            pipe_to: Some(self.pipe(&record.name)),
        };
        let created = tmux.new_window(
            session,
            index,
            &record.name,
            &self.executor(record, command),
            &setup,
        )?;
        let log = tmux.split_window(&created.pane_id, LOG_PANE_LINES, &self.log(&record.name))?;
        tag(tmux, &created.pane_id, &record.name, "executor")?;
        tag(tmux, &log, &record.name, "log")?;
        Ok(Panes {
            window: created.window_id,
            executor: created.pane_id,
            log,
        })
    }

    /// Restarts the agent in its executor pane (killing what runs there), pipes its output
    /// again (tmux closes the pipe when a pane's program ends) and tags the pane.
    pub fn respawn(
        &self,
        tmux: &Tmux,
        pane: &str,
        record: &AgentRecord,
        command: &str,
    ) -> Result<(), TmuxError> {
        tmux.respawn_pane(pane, &self.executor(record, command))?;
        // The pane's pipe may have survived the respawn or not; `pipe-pane -o` on an open
        // pipe would close it, so it is opened only when none is.
        if tmux.display(pane, "#{pane_pipe}")?.trim() != "1" {
            tmux.pipe_pane(pane, &self.pipe(&record.name))?;
        }
        tag(tmux, pane, &record.name, "executor")
    }
}

/// Marks a pane as the agent's `role` pane.
pub fn tag(tmux: &Tmux, pane: &str, agent: &str, role: &str) -> Result<(), TmuxError> {
    tmux.set_option(Scope::Pane(pane), AGENT_OPTION, agent)?;
    tmux.set_option(Scope::Pane(pane), ROLE_OPTION, role)
}
