//! A seeded simulation of the core in a world of scripted agents, a board people edit, a merge
//! queue and supervisor restarts. Each seed drives the core through a random interleaving and
//! checks the invariants after every step; a failing seed prints the command that replays it.
//!
//! `cargo test --lib supervisor::sim` runs 2,000 seeds; `BATTY_SIM_SEEDS=100000` runs more;
//! `BATTY_SIM_SEED=<n>` replays one, printing each step.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::RngExt as _;
use proptest::test_runner::{RngAlgorithm, TestRng};

use crate::agent::{Composer, Screen};
use crate::board::{Board, BoardConfig, FileRead, Task, Timestamp};

use super::agent::Life;
use super::core::{Core, MergeState};
use super::event::{
    AgentSpec, BoardWrite, Effect, Event, MergeVerdict, Outcome, PaneSeen, QueuedWork, Ready,
    Record, Time,
};
use super::settings::Settings;

const BOARD: &str = "/sim/board";
const MAX_ATTEMPTS: u32 = 3;

struct Rng(TestRng);

impl Rng {
    fn new(seed: u64) -> Rng {
        // XorShift: a seed's world needs no cryptographic stream, and ChaCha was an eighth
        // of the simulation's time in a debug build.
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8..].copy_from_slice(&(!seed).to_le_bytes());
        Rng(TestRng::from_seed(RngAlgorithm::XorShift, &bytes))
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.0.random::<u64>() % n
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            return None;
        }
        Some(items[self.below(items.len() as u64) as usize].clone())
    }
}

/// What a scripted agent is doing, as the world knows it (the core only sees its screens,
/// output and exits).
#[derive(Debug, Clone, PartialEq)]
enum Doing {
    Prompt,
    /// Pasted text waiting in the composer.
    Composer(String),
    Working {
        task: u64,
        steps: u32,
    },
    Asking {
        task: u64,
        steps: u32,
        question: String,
    },
    Hung {
        task: u64,
    },
    Dead,
}

#[derive(Debug, Clone)]
struct SimAgent {
    name: String,
    pid: u32,
    pane: String,
    doing: Doing,
    /// The core's Exited for this death has not been sent yet.
    death_pending: bool,
    /// Some deaths are never reported by the pid watcher: only a pane listing finds them.
    death_silent: bool,
}

/// A result or a report on its way to the core.
#[derive(Debug, Clone)]
struct InFlight {
    at: Time,
    event: Event,
}

struct World {
    rng: Rng,
    now: Time,
    config: BoardConfig,
    tasks: BTreeMap<u64, Task>,
    agents: BTreeMap<String, SimAgent>,
    next_pid: u32,
    next_id: u64,
    inflight: Vec<InFlight>,
    /// What the driver hands back within the same turn, before it looks at anything new: the
    /// task as a board write left it.
    echoes: VecDeque<Event>,
    /// Every record line the core asked for, in order (survives supervisor restarts).
    record: Vec<Record>,
    /// The merge queue: task -> (attempt, agent, base, head), and what became of each.
    queue: VecDeque<(u64, u32, String)>,
    merges: BTreeMap<u64, MergeState>,
    /// Tasks that crash whichever agent gets them.
    poison: BTreeSet<u64>,
    /// Disruptions stop in the calm phase.
    calm: bool,
    finished: bool,
    trace: bool,
    steps: u32,
    /// How many times each task was delivered to an agent that worked on it.
    worked: BTreeMap<u64, Vec<String>>,
    done_by: BTreeMap<u64, String>,
}

fn board_config() -> BoardConfig {
    static CONFIG: std::sync::OnceLock<BoardConfig> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            BoardConfig::parse(Path::new(BOARD), &crate::board::default_config_yml("sim"))
                .expect("the default board config parses")
        })
        .clone()
}

fn task_at(id: u64, status: &str, depends_on: Vec<u64>) -> Task {
    let mut t = Task::blank(id, format!("task {id}"), status.into(), "medium".into());
    t.path = Path::new(BOARD)
        .join("tasks")
        .join(format!("{id:03}-task-{id}.md"));
    t.depends_on = depends_on;
    t
}

fn settings(rng: &mut Rng) -> Settings {
    let mut config = crate::config::Config::default();
    let s = &mut config.supervisor;
    s.silence = Time::from_millis(300);
    s.delivery_timeout = Time::from_secs(5);
    s.answer_grace = Time::from_millis(500);
    s.reminder_settle = Time::from_secs(2 + rng.below(8));
    s.max_attempts = MAX_ATTEMPTS;
    s.max_restarts = 3 + rng.below(3) as u32;
    s.restart_window = Time::from_secs(600);
    s.restart_backoff = Time::from_secs(1);
    s.stuck_after = Time::from_secs(60);
    s.task_timeout = Time::from_secs(600);
    s.interrupt_grace = Time::from_secs(10);
    // Compiled once: building the adapter's patterns would cost more than the simulation.
    static DEMO: std::sync::OnceLock<Arc<crate::agent::Adapter>> = std::sync::OnceLock::new();
    let demo = DEMO.get_or_init(|| {
        Arc::new(crate::agent::builtin("demo", Path::new("batty")).expect("demo is built in"))
    });
    let adapters = BTreeMap::from([("demo".to_owned(), Arc::clone(demo))]);
    Settings::new(&config, "sim", BOARD.into(), adapters, true)
}

impl World {
    fn new(seed: u64, trace: bool) -> World {
        let mut rng = Rng::new(seed);
        let n_tasks = 3 + rng.below(10);
        let mut tasks = BTreeMap::new();
        for id in 1..=n_tasks {
            let deps = if id > 1 && rng.chance(25) {
                vec![1 + rng.below(id - 1)]
            } else {
                Vec::new()
            };
            tasks.insert(id, task_at(id, "todo", deps));
        }
        let mut poison = BTreeSet::new();
        if rng.chance(20) {
            poison.insert(1 + rng.below(n_tasks));
        }
        let n_agents = 1 + rng.below(4);
        let mut agents = BTreeMap::new();
        for i in 0..n_agents {
            let name = format!("agent-{i}");
            agents.insert(
                name.clone(),
                SimAgent {
                    name,
                    pid: 100 + i as u32,
                    pane: format!("%{i}"),
                    doing: Doing::Prompt,
                    death_pending: false,
                    death_silent: false,
                },
            );
        }
        World {
            rng,
            now: Time::ZERO,
            config: board_config(),
            tasks,
            agents,
            next_pid: 1000,
            next_id: n_tasks + 1,
            inflight: Vec::new(),
            record: Vec::new(),
            queue: VecDeque::new(),
            echoes: VecDeque::new(),
            merges: BTreeMap::new(),
            poison,
            calm: false,
            finished: false,
            trace,
            steps: 0,
            worked: BTreeMap::new(),
            done_by: BTreeMap::new(),
        }
    }

    fn board(&self) -> Board {
        Board::from_tasks(self.config.clone(), self.tasks.values().cloned())
    }

    fn specs(&self) -> Vec<AgentSpec> {
        self.agents
            .keys()
            .map(|name| AgentSpec {
                name: name.clone(),
                kind: "demo".into(),
                worktree: format!("/sim/wt/{name}").into(),
                branch: format!("batty/sim/{name}"),
            })
            .collect()
    }

    fn panes(&self) -> Vec<PaneSeen> {
        self.agents
            .values()
            .map(|a| PaneSeen {
                agent: a.name.clone(),
                pane: a.pane.clone(),
                pid: Some(a.pid),
                dead: a.doing == Doing::Dead,
                exit_status: (a.doing == Doing::Dead).then_some(1),
                last_screen: Vec::new(),
            })
            .collect()
    }

    /// A new core, as a restarted supervisor builds it: the board, the record folded into
    /// history, the merge queue, and the panes as tmux lists them.
    fn start_core(&mut self, core_rng: &mut Rng) -> Core {
        let history = super::history::fold(&self.record, &self.merges);
        let mut core = Core::new(
            settings(core_rng),
            self.board(),
            history,
            Timestamp::default(),
        );
        let effects = core.handle(
            self.now,
            Event::Agents {
                agents: self.specs(),
                panes: self.panes(),
            },
        );
        self.apply_all(&core, effects);
        core
    }

    fn send(&mut self, delay_ms: u64, event: Event) {
        let at = self.now + Time::from_millis(delay_ms);
        self.inflight.push(InFlight { at, event });
    }

    fn task_changed(&mut self, id: u64, delay: u64) {
        if let Some(t) = self.tasks.get(&id).cloned() {
            self.send(
                delay,
                Event::TaskFiles(vec![(t.path.clone(), FileRead::Task(t))]),
            );
        }
    }

    fn apply_all(&mut self, core: &Core, effects: Vec<Effect>) {
        for e in effects {
            self.check_effect(core, &e);
            self.apply(e);
        }
    }

    /// Invariants an effect must keep at the moment the core emits it.
    fn check_effect(&self, core: &Core, e: &Effect) {
        if let Some((agent, pane)) = e.pane() {
            let a = core.agents.get(agent).expect("effect for a known agent");
            assert!(
                matches!(&a.life, Life::Alive { pane: p, .. } if p == pane),
                "{e:?} aimed at a pane not known alive ({:?})",
                a.life
            );
        }
        if let Effect::Deliver { agent, task, .. } = e {
            let a = &core.agents[agent];
            assert_eq!(
                a.task(),
                Some(*task),
                "{e:?} to an agent that does not hold it"
            );
            let t = core.board.task(*task).expect("delivered task on the board");
            let restoring = t.claimed_by().is_none() && t.status() == "in-progress";
            assert!(
                t.claimed_by() == Some(agent.as_str()) || restoring,
                "{e:?} but the core's board says it is claimed by {:?}",
                t.claimed_by()
            );
        }
    }

    fn apply(&mut self, e: Effect) {
        if self.trace {
            eprintln!("  effect {e:?}");
        }
        match e {
            Effect::Capture { agent, seq, .. } => {
                let screen = self.screen(&agent);
                let d = 5 + self.rng.below(50);
                self.send(d, Event::Screen { agent, seq, screen });
            }
            Effect::Claim { agent, task } => {
                let ok = self.tasks.get(&task).is_some_and(|t| {
                    (t.status == "todo" || t.status == "backlog")
                        && t.claimed_by.is_none()
                        && !t.blocked
                });
                let result = if ok {
                    let t = self.tasks.get_mut(&task).expect("checked");
                    t.claimed_by = Some(agent.clone());
                    t.status = "in-progress".into();
                    Ok(t.clone())
                } else {
                    Err("not ready".into())
                };
                let d = self.rng.below(30);
                self.send(
                    d,
                    Event::Claimed {
                        agent,
                        task,
                        result,
                    },
                );
                if ok {
                    let d = self.rng.below(60);
                    self.task_changed(task, d);
                }
            }
            Effect::Prepare { agent, task, .. } => {
                let d = 5 + self.rng.below(100);
                let result = if self.rng.chance(3) {
                    Err("git broke".into())
                } else {
                    Ok(Ready::at(format!("tip-{}", self.steps)))
                };
                self.send(
                    d,
                    Event::Prepared {
                        agent,
                        task,
                        result,
                    },
                );
            }
            Effect::Deliver {
                agent, task, text, ..
            } => {
                // The paste is lost now and then; its Enter more often (Codex before it
                // takes input); a reminder pasted into a working agent is read later.
                let lost = self.rng.chance(3);
                let roll = self.rng.below(100);
                if let Some(a) = self.agents.get_mut(&agent)
                    && !lost
                    && a.doing == Doing::Prompt
                {
                    a.doing = Doing::Composer(text);
                    self.enter(&agent, roll);
                }
                let d = self.rng.below(20);
                self.send(
                    d,
                    Event::Delivered {
                        agent: agent.clone(),
                        task,
                        result: Ok(()),
                    },
                );
                let d = self.rng.below(20);
                self.send(d, Event::Output { agent });
            }
            Effect::Keys { agent, keys, .. } => {
                let roll = self.rng.below(100);
                if let Some(a) = self.agents.get_mut(&agent) {
                    if keys.iter().any(|k| k == "Enter") {
                        self.enter(&agent, roll);
                    } else if matches!(a.doing, Doing::Hung { .. } | Doing::Working { .. })
                        && roll < 60
                    {
                        a.doing = Doing::Prompt;
                        let d = 10;
                        self.send(d, Event::Output { agent });
                    }
                }
            }
            Effect::Answer { agent, .. } => {
                if let Some(a) = self.agents.get_mut(&agent)
                    && let Doing::Asking { task, steps, .. } = a.doing.clone()
                {
                    a.doing = Doing::Working { task, steps };
                    self.send(5, Event::Output { agent });
                }
            }
            Effect::Write(w) => self.write(w),
            Effect::QueueMerge {
                task,
                attempt,
                agent,
                base,
                ..
            } => {
                let unlanded = !self.rng.chance(10);
                let d = self.rng.below(50);
                self.send(
                    d,
                    Event::Queued {
                        task,
                        result: Ok(QueuedWork {
                            head: format!("head-{task}-{attempt}"),
                            unlanded,
                        }),
                    },
                );
                if unlanded {
                    self.queue.retain(|(t, _, _)| *t != task);
                    self.queue.push_back((task, attempt, String::new()));
                    self.merges.insert(
                        task,
                        MergeState::Queued {
                            attempt,
                            agent,
                            base,
                            head: format!("head-{task}-{attempt}"),
                        },
                    );
                } else {
                    self.merges.insert(task, MergeState::Landed(None));
                }
            }
            Effect::Respawn { agent } => {
                self.next_pid += 1;
                let pid = self.next_pid;
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.pid = pid;
                    a.doing = Doing::Prompt;
                    a.death_pending = false;
                    let seen = PaneSeen {
                        agent: agent.clone(),
                        pane: a.pane.clone(),
                        pid: Some(pid),
                        dead: false,
                        exit_status: None,
                        last_screen: Vec::new(),
                    };
                    let d = 10 + self.rng.below(200);
                    self.send(
                        d,
                        Event::Respawned {
                            agent,
                            result: Ok(seen),
                        },
                    );
                }
            }
            Effect::Escalate { agent, question } => {
                // Nobody answers an escalation in the simulation unless it is calm.
                if self.calm {
                    let d = 100;
                    self.send(
                        d,
                        Event::EscalationReply {
                            agent,
                            question,
                            reply: Ok("y".into()),
                        },
                    );
                }
            }
            Effect::ListPanes => {
                let panes = self.panes();
                self.send(5, Event::Panes(panes));
            }
            Effect::Record(r) => self.record.push(r),
            Effect::Finish => self.finished = true,
            Effect::ReadBoard => {
                let d = self.rng.below(20);
                let board = self.board();
                self.send(d, Event::Board(board));
            }
            Effect::Flag { .. } | Effect::Unflag { .. } | Effect::KeepRef { .. } => {}
            Effect::Log { .. } => {}
        }
    }

    fn enter(&mut self, agent: &str, roll: u64) {
        let poison = self.poison.clone();
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let Doing::Composer(text) = a.doing.clone() else {
            return;
        };
        if roll < 10 {
            return; // this Enter was lost too
        }
        let id = parse_task(&text);
        match id {
            Some(task) if poison.contains(&task) => {
                a.doing = Doing::Dead;
                a.death_pending = true;
            }
            Some(task) => {
                a.doing = Doing::Working {
                    task,
                    steps: 1 + (roll % 4) as u32,
                };
                self.worked.entry(task).or_default().push(agent.to_owned());
            }
            None => a.doing = Doing::Prompt,
        }
        self.send(
            5,
            Event::Output {
                agent: agent.to_owned(),
            },
        );
    }

    fn write(&mut self, w: BoardWrite) {
        if !self.calm && self.rng.chance(5) {
            let d = self.rng.below(20);
            self.send(
                d,
                Event::WriteFailed {
                    write: w,
                    reason: "EACCES".into(),
                },
            );
            return;
        }
        let id = w.task();
        let Some(t) = self.tasks.get_mut(&id) else {
            return;
        };
        let working = t.status == "in-progress";
        let changed = match &w {
            BoardWrite::Release { agent, .. }
                if t.claimed_by.as_ref() == Some(agent) || (working && t.claimed_by.is_none()) =>
            {
                t.claimed_by = None;
                if t.status != "done" && t.status != "archived" {
                    t.status = "todo".into();
                }
                true
            }
            BoardWrite::Requeue { .. } if t.status == "done" || working => {
                t.claimed_by = None;
                t.status = "todo".into();
                true
            }
            BoardWrite::Review { reason, .. } if working || t.status == "done" => {
                t.status = "review".into();
                t.blocked = true;
                t.block_reason = Some(reason.clone());
                t.claimed_by = None;
                true
            }
            BoardWrite::RestoreClaim { agent, .. } if working && t.claimed_by.is_none() => {
                t.claimed_by = Some(agent.clone());
                true
            }
            BoardWrite::Reopen { agent, .. }
                if (t.status == "done" || working)
                    && t.claimed_by.as_ref().is_none_or(|c| c == agent) =>
            {
                t.status = "in-progress".into();
                t.claimed_by = Some(agent.clone());
                true
            }
            BoardWrite::Landed { .. } => {
                t.status = "done".into();
                t.blocked = false;
                t.block_reason = None;
                true
            }
            BoardWrite::ClearClaim { agent, .. } if t.claimed_by.as_ref() == Some(agent) => {
                t.claimed_by = None;
                true
            }
            _ => false,
        };
        // The driver hands back the task as the write left it (unchanged when its condition
        // did not hold), before it looks at anything new.
        let t = t.clone();
        self.echoes
            .push_back(Event::TaskFiles(vec![(t.path.clone(), FileRead::Task(t))]));
        if changed {
            // The write is also a change to the file, which the watcher reports later.
            let d = self.rng.below(40);
            self.task_changed(id, d);
        }
    }

    /// The screen a capture of this agent shows now.
    fn screen(&mut self, agent: &str) -> Screen {
        let Some(a) = self.agents.get(agent) else {
            return Screen::Unknown;
        };
        match &a.doing {
            Doing::Prompt => Screen::Ready {
                composer: Composer::Empty,
            },
            Doing::Composer(t) => Screen::Ready {
                composer: Composer::Text(t.lines().next().unwrap_or("").to_owned()),
            },
            Doing::Working { .. } | Doing::Hung { .. } => {
                if self.rng.chance(50) {
                    Screen::Busy
                } else {
                    Screen::Unknown
                }
            }
            Doing::Asking { question, .. } => Screen::Question(question.clone()),
            Doing::Dead => Screen::Unknown,
        }
    }

    /// One thing an agent does on its own.
    fn agent_step(&mut self, name: &str) {
        let roll = self.rng.below(100);
        let calm = self.calm;
        let Some(a) = self.agents.get_mut(name) else {
            return;
        };
        match a.doing.clone() {
            Doing::Working { task, steps } => {
                if !calm && roll < 3 {
                    a.doing = Doing::Dead;
                    a.death_pending = true;
                    a.death_silent = roll == 0;
                } else if !calm && roll < 5 {
                    a.doing = Doing::Hung { task };
                } else if roll < 12 {
                    let question = if roll < 9 {
                        "Continue? [y/n]"
                    } else {
                        "Delete it all? [y/n]"
                    };
                    a.doing = Doing::Asking {
                        task,
                        steps,
                        question: question.into(),
                    };
                    self.send(
                        2,
                        Event::Output {
                            agent: name.to_owned(),
                        },
                    );
                } else if steps > 1 {
                    a.doing = Doing::Working {
                        task,
                        steps: steps - 1,
                    };
                    self.send(
                        2,
                        Event::Output {
                            agent: name.to_owned(),
                        },
                    );
                } else {
                    a.doing = Doing::Prompt;
                    // Forgets `batty task done` now and then.
                    let forgets = roll > 92;
                    if !forgets && let Some(t) = self.tasks.get_mut(&task) {
                        t.status = "done".into();
                        self.done_by.insert(task, name.to_owned());
                        let d = self.rng.below(80);
                        self.task_changed(task, d);
                    }
                    self.send(
                        2,
                        Event::Output {
                            agent: name.to_owned(),
                        },
                    );
                }
            }
            Doing::Prompt | Doing::Composer(_) if !calm && roll < 1 => {
                // Exits while idle (`/exit`).
                a.doing = Doing::Dead;
                a.death_pending = true;
            }
            _ => {}
        }
        if let Some(a) = self.agents.get_mut(name)
            && a.death_pending
            && !a.death_silent
        {
            a.death_pending = false;
            let pid = a.pid;
            let d = self.rng.below(300);
            self.send(
                d,
                Event::Exited {
                    agent: name.to_owned(),
                    pid,
                    status: None,
                    last_screen: vec![format!("{name} fell over")],
                },
            );
        }
    }

    /// A person's edit.
    fn person_step(&mut self) {
        let roll = self.rng.below(100);
        let ids: Vec<u64> = self.tasks.keys().copied().collect();
        let Some(id) = self.rng.pick(&ids) else {
            return;
        };
        let t = self.tasks.get_mut(&id).expect("picked from the map");
        if roll < 30 && t.status == "in-progress" {
            // A stale editor buffer: saved without the claim.
            t.claimed_by = None;
        } else if roll < 45 && t.status == "in-progress" {
            // Moved back to the queue.
            t.status = "todo".into();
        } else if roll < 65 && t.status == "review" {
            t.status = "todo".into();
            t.blocked = false;
            t.block_reason = None;
        } else if roll < 80 {
            let new = self.next_id;
            self.next_id += 1;
            let dep = if self.rng.chance(30) {
                vec![id]
            } else {
                Vec::new()
            };
            self.tasks.insert(new, task_at(new, "todo", dep));
            let d = self.rng.below(50);
            self.task_changed(new, d);
            return;
        } else {
            return;
        }
        let d = self.rng.below(50);
        self.task_changed(id, d);
    }

    /// In the calm, a person answers whatever an agent asks.
    fn person_answers(&mut self) {
        let asking: Vec<String> = self
            .agents
            .values()
            .filter(|a| matches!(a.doing, Doing::Asking { .. }))
            .map(|a| a.name.clone())
            .collect();
        for name in asking {
            if let Some(a) = self.agents.get_mut(&name)
                && let Doing::Asking { task, steps, .. } = a.doing.clone()
            {
                a.doing = Doing::Working { task, steps };
                self.send(2, Event::Output { agent: name });
            }
        }
    }

    /// The merge worker finishes its first entry.
    fn merge_step(&mut self) {
        let Some((task, _attempt, _)) = self.queue.pop_front() else {
            return;
        };
        let roll = self.rng.below(100);
        let verdict = if !self.calm && roll < 15 {
            MergeVerdict::Rejected {
                kind: if roll < 8 {
                    Outcome::Conflict
                } else {
                    Outcome::GateRed
                },
                reason: "gate failed".into(),
                tail: "test x failed".into(),
            }
        } else if !self.calm && roll < 20 {
            self.queue.push_back((task, 0, String::new()));
            MergeVerdict::Trouble {
                reason: "disk full".into(),
            }
        } else {
            MergeVerdict::Landed {
                landed: Some(format!("landed-{task}")),
            }
        };
        match &verdict {
            MergeVerdict::Landed { landed } => {
                self.merges.insert(task, MergeState::Landed(landed.clone()));
            }
            MergeVerdict::Rejected { .. } => {
                if let Some(MergeState::Queued {
                    attempt,
                    agent,
                    base,
                    head,
                }) = self.merges.get(&task).cloned()
                {
                    self.merges.insert(
                        task,
                        MergeState::Rejected {
                            attempt,
                            agent,
                            base,
                            head,
                        },
                    );
                }
            }
            _ => {}
        }
        let d = self.rng.below(30);
        self.send(d, Event::Merge { task, verdict });
    }
}

fn parse_task(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("Task #")?;
    rest.split(':').next()?.parse().ok()
}

/// Invariants that hold after every step.
fn check_state(core: &Core) {
    let mut holders: BTreeMap<u64, &str> = BTreeMap::new();
    for a in core.agents.values() {
        if let Some(task) = a.task()
            && let Some(other) = holders.insert(task, a.name())
        {
            panic!("task #{task} held by {other} and {}", a.name());
        }
    }
    for (id, log) in &core.tasks {
        assert!(
            log.failures.len() as u32 <= MAX_ATTEMPTS,
            "task #{id} has {} failed attempts, over the budget of {MAX_ATTEMPTS}",
            log.failures.len()
        );
    }
}

/// The end: every task is finished, with a person (review), or waits on one.
fn check_end(world: &World, core: &Core) {
    let waits_on_person = |id: u64| -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![id];
        while let Some(t) = stack.pop() {
            if !seen.insert(t) {
                continue;
            }
            let Some(task) = world.tasks.get(&t) else {
                continue;
            };
            if task.status == "review"
                || task.blocked
                || (task.status == "in-progress" && task.claimed_by.is_none())
            {
                return true;
            }
            stack.extend(task.depends_on.iter().copied());
        }
        false
    };
    let all_parked = core
        .agents
        .values()
        .all(|a| matches!(a.life, Life::Parked { .. }));
    for (id, t) in &world.tasks {
        let ok = all_parked && t.claimed_by.is_none()
            || match t.status.as_str() {
                "done" => !matches!(
                    core.tasks.get(id).and_then(|l| l.merge.as_ref()),
                    Some(MergeState::Queued { .. })
                ),
                "review" => t.block_reason.is_some(),
                // A person's own: in progress with nobody's claim (the supervisor writes a
                // claim back only on a task its agent holds).
                "in-progress" if t.claimed_by.is_none() => true,
                _ => waits_on_person(*id),
            };
        assert!(
            ok,
            "task #{id} ended `{}` (claimed by {:?})\n{}",
            t.status,
            t.claimed_by,
            dump(world, core)
        );
    }
}

/// What the world and the core hold, for a failure message.
fn dump(world: &World, core: &Core) -> String {
    let mut out = String::new();
    for t in world.tasks.values() {
        let seen = core
            .board
            .task(t.id)
            .map(|c| (c.status.clone(), c.claimed_by.clone()));
        out.push_str(&format!(
            "  task #{} {} claimed_by={:?} core={seen:?} blocked={} deps={:?} log={:?}\n",
            t.id,
            t.status,
            t.claimed_by,
            t.blocked,
            t.depends_on,
            core.tasks.get(&t.id)
        ));
    }
    for a in world.agents.values() {
        out.push_str(&format!("  world {} pid {} {:?}\n", a.name, a.pid, a.doing));
    }
    for a in core.agents.values() {
        out.push_str(&format!(
            "  core {} {:?} {:?} job={:?} step={:?} redo={:?} idle_since={:?} q={:?}\n",
            a.name(),
            a.life,
            a.state,
            a.job,
            a.step,
            a.redo,
            a.idle_since,
            a.question
        ));
    }
    out.push_str(&format!(
        "  inflight {} queue {:?} retry_writes {:?}\n",
        world.inflight.len(),
        world.queue,
        core.retry_writes
    ));
    out
}

fn run(seed: u64, trace: bool) {
    let mut world = World::new(seed, trace);
    let mut core_rng = Rng::new(seed ^ 0x5eed);
    let mut core = world.start_core(&mut core_rng);
    let disruptive_steps = 300 + world.rng.below(300) as u32;
    let max_steps = disruptive_steps + 4000;
    while !world.finished {
        world.steps += 1;
        assert!(
            world.steps < max_steps,
            "not finished after {max_steps} steps (time {:?})\n{}",
            world.now,
            dump(&world, &core)
        );
        if world.steps == disruptive_steps {
            world.calm = true;
            for a in world.agents.values_mut() {
                if a.death_pending {
                    a.death_silent = false;
                }
            }
        }
        let roll = world.rng.below(100);
        let event = if let Some(echo) = world.echoes.pop_front() {
            Some(echo)
        } else if roll < 45 && !world.inflight.is_empty() {
            // A result or report arrives (not always the oldest first).
            let i = if world.rng.chance(70) {
                0
            } else {
                world.rng.below(world.inflight.len() as u64) as usize
            };
            let f = world.inflight.remove(i);
            world.now = world.now.max(f.at);
            // A file event makes the driver read the file as it is now.
            match f.event {
                Event::TaskFiles(reads) => Some(Event::TaskFiles(
                    reads
                        .into_iter()
                        .map(|(path, read)| {
                            let now = read
                                .task()
                                .and_then(|t| world.tasks.get(&t.id))
                                .map_or(FileRead::Missing, |t| FileRead::Task(t.clone()));
                            (path, now)
                        })
                        .collect(),
                )),
                // So does a full read: the driver reads the files when it rescans.
                Event::Board(_) => Some(Event::Board(world.board())),
                e => Some(e),
            }
        } else if roll < 70 {
            let names: Vec<String> = world.agents.keys().cloned().collect();
            if let Some(name) = world.rng.pick(&names) {
                world.agent_step(&name);
            }
            None
        } else if roll < 75 && !world.calm {
            world.person_step();
            None
        } else if roll < 75 {
            world.person_answers();
            None
        } else if roll < 82 {
            world.merge_step();
            None
        } else if roll < 84 && !world.calm {
            // A supervisor restart: whatever was on its way to the old one is lost.
            if trace {
                eprintln!("step {}: supervisor restarts", world.steps);
            }
            world
                .inflight
                .retain(|f| matches!(f.event, Event::TaskFiles(_)));
            world.echoes.clear();
            core = world.start_core(&mut core_rng);
            None
        } else if roll < 85 && !world.calm {
            let s = settings(&mut core_rng);
            Some(Event::Config(Box::new(s)))
        } else if roll < 87 {
            // The safety timer lists the panes.
            Some(Event::Panes(world.panes()))
        } else if roll < 88 {
            // The safety timer reads the board again.
            Some(Event::Board(world.board()))
        } else {
            // Time passes: to the core's next deadline, or a little.
            let next = core.next_wake().unwrap_or(world.now + Time::from_secs(1));
            let step = Time::from_millis(50 + world.rng.below(2000));
            world.now = world.now.max(next.min(world.now + step));
            Some(Event::Tick)
        };
        if let Some(event) = event {
            if trace {
                eprintln!("step {} at {:?}: {event:?}", world.steps, world.now);
            }
            let effects = core.handle(world.now, event);
            if trace {
                for a in core.agents.values() {
                    eprintln!(
                        "    {} {:?} {:?} job={:?} idle_since={:?} stale={} asked={:?}",
                        a.name(),
                        a.life,
                        a.state,
                        a.job.as_ref().map(|j| (j.task, j.taken)),
                        a.idle_since,
                        a.screen_stale,
                        a.capture_asked
                    );
                }
            }
            world.apply_all(&core, effects);
            // A deadline already past after the core handled its time would spin the
            // driver's loop.
            if let Some(wake) = core.next_wake() {
                assert!(
                    wake > world.now,
                    "next_wake {wake:?} is not after now {:?}\n{}",
                    world.now,
                    dump(&world, &core)
                );
            }
        }
        check_state(&core);
    }
    check_end(&world, &core);
    if std::env::var_os("BATTY_SIM_STATS").is_some() {
        eprintln!(
            "seed {seed}: {} steps, disruptive {disruptive_steps}",
            world.steps
        );
    }
}

fn replay_hint(seed: u64) -> String {
    format!("replay: BATTY_SIM_SEED={seed} cargo test --lib supervisor::sim -- --nocapture")
}

#[test]
fn seeded_simulation_keeps_every_invariant() {
    if let Ok(seed) = std::env::var("BATTY_SIM_SEED") {
        let seed: u64 = seed.parse().expect("BATTY_SIM_SEED is a number");
        run(seed, true);
        return;
    }
    // What a seed past the usual range once found is kept as a unit test of the core
    // (src/supervisor/core_tests.rs), since any change to this world reshuffles the seeds.
    let seeds: u64 = std::env::var("BATTY_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    // The seeds are independent: spread them over the machine's cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let failed: Option<(u64, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                scope.spawn(move || {
                    (k..seeds).step_by(threads as usize).find_map(|seed| {
                        let result = std::panic::catch_unwind(|| run(seed, false));
                        result.err().map(|panic| {
                            let msg = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                                .unwrap_or_default();
                            (seed, msg)
                        })
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("a seed's panic is caught"))
            .min_by_key(|(seed, _)| *seed)
    });
    if let Some((seed, msg)) = failed {
        panic!("seed {seed} failed: {msg}\n{}", replay_hint(seed));
    }
}
