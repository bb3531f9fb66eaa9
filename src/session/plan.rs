//! `batty work` as a plan: from what exists (run state, tmux session, worktrees, the
//! supervisor's status) to the steps that bring the phase to N running agents. Pure: nothing
//! here runs git or tmux, so `--dry-run` prints exactly what a real run would do.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::names;
use super::state::{AgentRecord, RunState};
use crate::paths::{Project, agent_branch};
use crate::status::{AgentState, PhaseStatus};
use crate::tmux::Pane;
use crate::worktree::WorktreeEntry;

/// Name of window 0, where the supervisor runs.
pub const SUPERVISOR_WINDOW: &str = "batty";

/// What the user asked for, validated.
#[derive(Debug, Clone)]
pub struct Request {
    pub phase: String,
    pub parallel: usize,
    pub kind: String,
    pub base: String,
    /// `--new`: recreate worktrees and branches.
    pub recreate: bool,
    pub port_base: Option<u16>,
}

/// What exists now.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub state: Option<RunState>,
    /// The phase's session: id and every pane in it.
    pub session: Option<(String, Vec<Pane>)>,
    pub worktrees: Vec<WorktreeEntry>,
    /// Agent names with a branch `batty/<phase>/<name>`.
    pub branches: Vec<String>,
    /// Agent names with a folder under `.batty/worktrees/<phase>/`.
    pub folders: Vec<String>,
    pub status: Option<PhaseStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaneStep {
    Keep(String),
    /// Dead (its program exited): restart it.
    Respawn(String),
    /// Missing (the log pane was closed): split it off again.
    Split,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowStep {
    Create {
        index: u32,
    },
    Existing {
        window_id: String,
        /// The tab number a person presses (`prefix 1`).
        index: u32,
        executor: PaneStep,
        log: PaneStep,
    },
    /// `--new`: the window goes with its worktree and comes back fresh.
    Recreate {
        window_id: String,
        old_index: u32,
        index: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorktreeStep {
    Create,
    Reuse,
    Recreate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorStep {
    /// Started as the first window of a new session.
    WithSession,
    Keep {
        pane: String,
        index: u32,
    },
    Respawn {
        pane: String,
        index: u32,
    },
    Create {
        index: u32,
    },
}

#[derive(Debug, Clone)]
pub struct AgentPlan {
    pub name: String,
    pub worktree: WorktreeStep,
    pub window: WindowStep,
}

#[derive(Debug, Clone)]
pub struct Removal {
    pub name: String,
    pub window_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub phase: String,
    pub session_name: String,
    /// `None`: the session is created.
    pub session_id: Option<String>,
    pub supervisor: SupervisorStep,
    pub agents: Vec<AgentPlan>,
    pub removals: Vec<Removal>,
    /// The run state once the plan is carried out (pane ids are filled in then).
    pub state: RunState,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot go down to {parallel} agent(s): {busy} still working")]
    Busy { parallel: usize, busy: String },
}

impl crate::error::Diagnose for PlanError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::User
    }
    fn hint(&self) -> Option<String> {
        Some("wait until they are idle (`batty status`), or stop the phase".to_owned())
    }
}

/// Builds the plan. Names come from the run state, then leftover worktrees or branches of
/// the phase, then fresh ones.
pub fn plan(project: &Project, req: &Request, world: &World) -> Result<Plan, PlanError> {
    let mut state = world.state.clone().unwrap_or_else(|| RunState {
        phase: req.phase.clone(),
        base: req.base.clone(),
        ..Default::default()
    });
    state.base = req.base.clone();
    let panes: &[Pane] = world
        .session
        .as_ref()
        .map(|(_, p)| p.as_slice())
        .unwrap_or(&[]);
    let session_id = world.session.as_ref().map(|(id, _)| id.clone());

    // Agents that go away must be idle.
    let leaving: Vec<&AgentRecord> = state
        .active()
        .iter()
        .filter(|a| a.index >= req.parallel)
        .collect();
    let busy: Vec<String> = leaving
        .iter()
        .filter_map(|a| {
            let s = world.status.as_ref()?.agents.get(&a.name)?;
            let working = s.task.is_some()
                || matches!(
                    s.state,
                    AgentState::Busy | AgentState::Asking | AgentState::Stuck
                );
            working.then(|| match s.task {
                Some(t) => format!("`{}` (task {t})", a.name),
                None => format!("`{}` ({})", a.name, s.state.as_str()),
            })
        })
        .collect();
    if !busy.is_empty() {
        return Err(PlanError::Busy {
            parallel: req.parallel,
            busy: busy.join(", "),
        });
    }
    let removals = leaving
        .iter()
        .map(|a| Removal {
            name: a.name.clone(),
            window_id: find_window(a, panes).map(|(w, _)| w.to_owned()),
        })
        .collect();

    // Names for new agents: drawn from a seed of the project and phase, so a `--dry-run`
    // names the agents the real run then makes.
    let mut taken: BTreeSet<String> = state.agents.iter().map(|a| a.name.clone()).collect();
    let mut leftovers: Vec<String> = world
        .folders
        .iter()
        .chain(&world.branches)
        .filter(|n| !taken.contains(*n))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    taken.extend(leftovers.iter().cloned());
    leftovers.reverse();
    let seed = names::seed(&project.root().to_string_lossy(), &req.phase);
    while state.agents.len() < req.parallel {
        let name = leftovers
            .pop()
            .unwrap_or_else(|| names::generate(seed, &|n| taken.contains(n)));
        taken.insert(name.clone());
        let index = state.agents.len();
        state.agents.push(AgentRecord {
            worktree: project.worktree_dir(&req.phase, &name),
            branch: agent_branch(&req.phase, &name),
            name,
            index,
            kind: req.kind.clone(),
            window_id: None,
            executor_pane: None,
            log_pane: None,
            port: None,
            setup_done: false,
            extra: Default::default(),
        });
    }
    state.parallel = req.parallel;

    let mut used: BTreeSet<u32> = panes.iter().map(|p| p.window_index).collect();
    let free_index = |want: u32, used: &mut BTreeSet<u32>| {
        let index = (want..).find(|i| !used.contains(i)).unwrap_or(want);
        used.insert(index);
        index
    };

    let supervisor = if session_id.is_none() {
        used.insert(0);
        SupervisorStep::WithSession
    } else {
        let pane = panes
            .iter()
            .find(|p| Some(&p.pane_id) == state.supervisor_pane.as_ref())
            .or_else(|| panes.iter().find(|p| p.window_name == SUPERVISOR_WINDOW));
        match pane {
            Some(p) if p.dead => SupervisorStep::Respawn {
                pane: p.pane_id.clone(),
                index: p.window_index,
            },
            Some(p) => SupervisorStep::Keep {
                pane: p.pane_id.clone(),
                index: p.window_index,
            },
            None => SupervisorStep::Create {
                index: free_index(0, &mut used),
            },
        }
    };

    let mut agents = Vec::new();
    for record in state.agents.iter_mut().take(req.parallel) {
        record.port = req.port_base.map(|b| b.saturating_add(record.index as u16));
        let known = world
            .worktrees
            .iter()
            .any(|e| same(&e.path, &record.worktree));
        let has_branch = world.branches.contains(&record.name);
        let worktree = match (req.recreate, known || has_branch) {
            (true, true) => WorktreeStep::Recreate,
            (_, _) if known => WorktreeStep::Reuse,
            _ => WorktreeStep::Create,
        };
        let want = record.index as u32 + 1;
        let window = match find_window(record, panes) {
            None => WindowStep::Create {
                index: free_index(want, &mut used),
            },
            Some((window_id, window_panes)) if worktree == WorktreeStep::Recreate => {
                WindowStep::Recreate {
                    window_id: window_id.to_owned(),
                    old_index: window_panes.first().map_or(want, |p| p.window_index),
                    index: free_index(want, &mut used),
                }
            }
            Some((window_id, window_panes)) if executor_of(record, &window_panes).is_none() => {
                // Its executor pane was killed and only the log pane is left: a log pane is
                // never taken for an agent, so the window is made again.
                {
                    let old = window_panes.first().map_or(want, |p| p.window_index);
                    WindowStep::Recreate {
                        window_id: window_id.to_owned(),
                        old_index: old,
                        index: old,
                    }
                }
            }
            Some((window_id, window_panes)) => {
                let exec = executor_of(record, &window_panes);
                let others = || {
                    window_panes
                        .iter()
                        .filter(|p| Some(&p.pane_id) != exec.map(|e| &e.pane_id))
                };
                let log = others()
                    .find(|p| p.role == "log")
                    .or_else(|| others().next())
                    .copied();
                let step = |p: Option<&Pane>| match p {
                    Some(p) if p.dead => PaneStep::Respawn(p.pane_id.clone()),
                    Some(p) => PaneStep::Keep(p.pane_id.clone()),
                    None => PaneStep::Split,
                };
                WindowStep::Existing {
                    window_id: window_id.to_owned(),
                    index: window_panes.first().map_or(want, |p| p.window_index),
                    executor: step(exec),
                    log: step(log),
                }
            }
        };
        agents.push(AgentPlan {
            name: record.name.clone(),
            worktree,
            window,
        });
    }
    Ok(Plan {
        phase: req.phase.clone(),
        session_name: crate::paths::session_name(&req.phase),
        session_id,
        supervisor,
        agents,
        removals,
        state,
    })
}

/// The executor pane of an agent's window: the pane tagged as its executor; in a window an
/// older batty made (no tags), the recorded pane or the topmost one. A pane tagged as a log
/// pane is never it.
fn executor_of<'p>(record: &AgentRecord, window: &[&'p Pane]) -> Option<&'p Pane> {
    if let Some(p) = window
        .iter()
        .find(|p| p.agent == record.name && p.role == "executor")
    {
        return Some(p);
    }
    let untagged: Vec<&'p Pane> = window
        .iter()
        .filter(|p| p.role.is_empty())
        .copied()
        .collect();
    untagged
        .iter()
        .find(|p| Some(&p.pane_id) == record.executor_pane.as_ref())
        .or_else(|| untagged.iter().min_by_key(|p| p.top))
        .copied()
}

/// The window of an agent: the one holding a pane tagged with its name, else by the id in
/// the run state, else (state lost, window made by an older batty) by its name.
fn find_window<'p>(record: &AgentRecord, panes: &'p [Pane]) -> Option<(&'p str, Vec<&'p Pane>)> {
    let by_tag = panes
        .iter()
        .find(|p| p.agent == record.name && p.window_index != 0);
    let by_id = || {
        record.window_id.as_ref().and_then(|id| {
            panes
                .iter()
                .find(|p| &p.window_id == id && p.agent.is_empty())
        })
    };
    let first = by_tag.or_else(by_id).or_else(|| {
        panes
            .iter()
            .find(|p| p.window_name == record.name && p.window_index != 0 && p.agent.is_empty())
    })?;
    let window_panes = panes
        .iter()
        .filter(|p| p.window_id == first.window_id)
        .collect();
    Some((first.window_id.as_str(), window_panes))
}

fn same(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

impl Plan {
    /// True when nothing would change.
    pub fn is_noop(&self) -> bool {
        matches!(self.supervisor, SupervisorStep::Keep { .. })
            && self.removals.iter().all(|r| r.window_id.is_none())
            && self.agents.iter().all(|a| {
                a.worktree == WorktreeStep::Reuse
                    && matches!(
                        &a.window,
                        WindowStep::Existing {
                            executor: PaneStep::Keep(_),
                            log: PaneStep::Keep(_),
                            ..
                        }
                    )
            })
    }
}

impl Plan {
    /// The pid of the supervisor pane the plan keeps, from `panes`, for telling our own
    /// supervisor from another one holding the board's lock.
    pub fn kept_supervisor<'p>(&self, panes: &'p [Pane]) -> Option<&'p Pane> {
        match &self.supervisor {
            SupervisorStep::Keep { pane, .. } => panes.iter().find(|p| &p.pane_id == pane),
            _ => None,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.session_id {
            None => writeln!(f, "create session `{}`", self.session_name)?,
            Some(_) => writeln!(f, "reuse session `{}`", self.session_name)?,
        }
        match &self.supervisor {
            SupervisorStep::WithSession => writeln!(f, "  supervisor: start in window 0 `batty`")?,
            SupervisorStep::Keep { index, .. } => {
                writeln!(f, "  supervisor: running in window {index}")?
            }
            SupervisorStep::Respawn { index, .. } => writeln!(
                f,
                "  supervisor: restart it in window {index} (it has exited)"
            )?,
            SupervisorStep::Create { index } => {
                writeln!(f, "  supervisor: recreate window {index} `batty`")?
            }
        }
        for (a, record) in self.agents.iter().zip(&self.state.agents) {
            let worktree = match a.worktree {
                WorktreeStep::Create => "create worktree",
                WorktreeStep::Reuse => "reuse worktree",
                WorktreeStep::Recreate => "recreate worktree",
            };
            let window = match &a.window {
                WindowStep::Create { index } => format!("create window {index}"),
                WindowStep::Recreate {
                    old_index, index, ..
                } => {
                    format!("replace window {old_index} with window {index}")
                }
                WindowStep::Existing {
                    index,
                    executor,
                    log,
                    ..
                } => {
                    let mut fixes = Vec::new();
                    if let PaneStep::Respawn(_) = executor {
                        fixes.push("restart the agent (it has exited)".to_owned());
                    }
                    match log {
                        PaneStep::Respawn(_) => fixes.push("restart the log pane".to_owned()),
                        PaneStep::Split => fixes.push("add the log pane".to_owned()),
                        PaneStep::Keep(_) => {}
                    }
                    if fixes.is_empty() {
                        format!("window {index} running")
                    } else {
                        format!("window {index}: {}", fixes.join(", "))
                    }
                }
            };
            writeln!(
                f,
                "  agent `{}`: {worktree} `{}` on `{}` (from `{}`); {window}",
                a.name,
                record.worktree.display(),
                record.branch,
                self.state.base
            )?;
        }
        for r in &self.removals {
            match &r.window_id {
                Some(_) => writeln!(f, "  agent `{}`: close its window (worktree kept)", r.name)?,
                None => writeln!(f, "  agent `{}`: parked (worktree kept)", r.name)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
