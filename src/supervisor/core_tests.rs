//! The core's transitions, one by one, with the clock passed in: each test builds a board and
//! an agent, feeds the core the events a driver would, and checks the effects it asks for.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::agent::{Composer, Reply, Screen};
use crate::board::{Board, BoardConfig, FileRead, Task, Timestamp};
use crate::status::AgentState;
use crate::watch::ReportedState;

use super::core::{Core, History, MergeState, OpenAttempt, TaskLog};
use super::event::{
    AgentSpec, BoardWrite, Effect, Event, MergeVerdict, Outcome, PaneSeen, QueuedWork, Ready,
    Record, Time,
};
use super::settings::Settings;

const BOARD: &str = "/t/board";
const AGENT: &str = "otter";

fn ms(n: u64) -> Time {
    Time::from_millis(n)
}

fn secs(n: u64) -> Time {
    Time::from_secs(n)
}

fn task(id: u64, status: &str) -> Task {
    let mut t = Task::blank(id, format!("task {id}"), status.into(), "medium".into());
    t.path = Path::new(BOARD).join("tasks").join(format!("{id:03}-t.md"));
    t
}

fn settings(exit_when_done: bool) -> Settings {
    let mut config = crate::config::Config::default();
    let s = &mut config.supervisor;
    s.silence = ms(300);
    s.delivery_timeout = secs(5);
    s.answer_grace = ms(500);
    s.reminder_settle = secs(10);
    s.max_retries = 2;
    s.max_attempts = 3;
    s.max_restarts = 2;
    s.restart_backoff = secs(1);
    s.stuck_after = secs(60);
    s.task_timeout = secs(600);
    s.interrupt_grace = secs(10);
    let demo = crate::agent::builtin("demo", Path::new("batty")).expect("demo is built in");
    let adapters = BTreeMap::from([("demo".to_owned(), Arc::new(demo))]);
    Settings::new(&config, "t", BOARD.into(), adapters, exit_when_done)
}

/// A core with `tasks` on its board and no agent yet.
struct Harness {
    core: Core,
    now: Time,
    pid: u32,
}

impl Harness {
    fn new(tasks: Vec<Task>) -> Harness {
        Harness::with(tasks, History::default(), false)
    }

    fn with(tasks: Vec<Task>, history: History, exit_when_done: bool) -> Harness {
        let config = BoardConfig::parse(Path::new(BOARD), &crate::board::default_config_yml("t"))
            .expect("the default board config parses");
        let board = Board::from_tasks(config, tasks);
        Harness {
            core: Core::new(
                settings(exit_when_done),
                board,
                history,
                Timestamp::default(),
            ),
            now: Time::ZERO,
            pid: 100,
        }
    }

    fn at(&mut self, t: Time, event: Event) -> Vec<Effect> {
        self.now = t;
        self.core.handle(t, event)
    }

    /// The agent `otter` with a live pane `%1`.
    fn start_agent(&mut self, t: Time) -> Vec<Effect> {
        let spec = AgentSpec {
            name: AGENT.into(),
            kind: "demo".into(),
            worktree: "/t/wt".into(),
            branch: "batty/t/otter".into(),
        };
        let pane = self.pane();
        self.at(
            t,
            Event::Agents {
                agents: vec![spec],
                panes: vec![pane],
            },
        )
    }

    fn pane(&self) -> PaneSeen {
        PaneSeen {
            agent: AGENT.into(),
            pane: "%1".into(),
            pid: Some(self.pid),
            dead: false,
            exit_status: None,
            last_screen: Vec::new(),
        }
    }

    /// The capture the core asked for, answered with `screen`.
    fn screen(&mut self, t: Time, effects: &[Effect], screen: Screen) -> Vec<Effect> {
        let seq = effects
            .iter()
            .find_map(|e| match e {
                Effect::Capture { seq, .. } => Some(*seq),
                _ => None,
            })
            .expect("a capture was asked for");
        self.at(
            t,
            Event::Screen {
                agent: AGENT.into(),
                seq,
                screen,
            },
        )
    }

    /// Time passes to `t`.
    fn tick(&mut self, t: Time) -> Vec<Effect> {
        self.at(t, Event::Tick)
    }

    /// A board file read again.
    fn file(&mut self, t: Time, task: Task) -> Vec<Effect> {
        let path = task.path().to_owned();
        self.at(t, Event::TaskFiles(vec![(path, FileRead::Task(task))]))
    }

    fn board_task(&self, id: u64) -> Task {
        self.core.board().task(id).expect("on the board").clone()
    }

    fn state(&self) -> AgentState {
        self.core.agents()[0].state
    }

    /// Start, show the prompt, and be handed task `id` up to the paste; returns the effects
    /// of the delivery.
    fn deliver(&mut self, id: u64) -> Vec<Effect> {
        let fx = self.start_agent(ms(0));
        assert!(fx.is_empty(), "{fx:?}");
        let fx = self.tick(ms(300));
        let fx = self.screen(ms(310), &fx, ready());
        assert!(
            fx.contains(&Effect::Claim {
                agent: AGENT.into(),
                task: id
            }),
            "{fx:?}"
        );
        let mut claimed = self.board_task(id);
        claimed.claimed_by = Some(AGENT.into());
        claimed.status = "in-progress".into();
        let fx = self.at(
            ms(320),
            Event::Claimed {
                agent: AGENT.into(),
                task: id,
                result: Ok(claimed),
            },
        );
        assert!(
            matches!(&fx[..], [Effect::Prepare { task, .. }] if *task == id),
            "{fx:?}"
        );
        self.at(
            ms(330),
            Event::Prepared {
                agent: AGENT.into(),
                task: id,
                result: Ok(Ready::at("base")),
            },
        )
    }

    /// [`Harness::deliver`], the paste done and taken (a busy screen).
    fn working_on(&mut self, id: u64) {
        self.deliver(id);
        self.at(
            ms(340),
            Event::Delivered {
                agent: AGENT.into(),
                task: id,
                result: Ok(()),
            },
        );
        let fx = self.tick(ms(640));
        self.screen(ms(650), &fx, Screen::Busy);
    }

    fn output(&mut self, t: Time) -> Vec<Effect> {
        self.at(
            t,
            Event::Output {
                agent: AGENT.into(),
            },
        )
    }
}

fn ready() -> Screen {
    Screen::Ready {
        composer: Composer::Empty,
    }
}

fn writes(fx: &[Effect]) -> Vec<&BoardWrite> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Write(w) => Some(w),
            _ => None,
        })
        .collect()
}

fn ended(fx: &[Effect]) -> Vec<Outcome> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Record(Record::Ended { outcome, .. }) => Some(*outcome),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_agent_is_read_after_silence_and_idle_at_its_prompt_takes_the_best_task() {
    let mut h = Harness::new(vec![task(1, "todo"), task(2, "todo")]);
    assert!(h.start_agent(ms(0)).is_empty());
    assert_eq!(h.state(), AgentState::Starting);
    assert_eq!(h.core.next_wake(), Some(ms(300)));
    assert!(h.tick(ms(299)).is_empty());
    let fx = h.tick(ms(300));
    assert!(matches!(&fx[..], [Effect::Capture { pane, .. }] if pane == "%1"));
    let fx = h.screen(ms(310), &fx, ready());
    assert_eq!(h.state(), AgentState::Idle);
    assert_eq!(
        fx,
        [Effect::Claim {
            agent: AGENT.into(),
            task: 1
        }]
    );
}

#[test]
fn a_claimed_task_is_on_record_before_its_paste() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    let fx = h.deliver(1);
    match &fx[..] {
        [
            Effect::Record(Record::Delivered {
                task: 1,
                attempt: 1,
                base,
                pid: Some(100),
                ..
            }),
            Effect::Deliver { pane, text, .. },
        ] => {
            assert_eq!(base, "base");
            assert_eq!(pane, "%1");
            assert!(text.starts_with("Task #1: task 1\n"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_echo_of_the_paste_does_not_confirm_it_its_text_waiting_gets_enter_again() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.deliver(1);
    h.at(
        ms(340),
        Event::Delivered {
            agent: AGENT.into(),
            task: 1,
            result: Ok(()),
        },
    );
    // The paste is echoed: output, then the screen shows the text still in the composer.
    h.output(ms(350));
    let fx = h.tick(ms(650));
    let waiting = Screen::Ready {
        composer: Composer::Text("Task #1: task 1".into()),
    };
    let fx = h.screen(ms(1100), &fx, waiting.clone());
    assert_eq!(
        fx,
        [
            Effect::Keys {
                agent: AGENT.into(),
                pane: "%1".into(),
                keys: vec!["Enter".into()]
            },
            fx[1].clone()
        ]
    );
    assert!(matches!(&fx[1], Effect::Log { text, .. } if text.contains("still in the composer")));
    // Now taken: the composer cleared after it showed our text.
    let fx = h.tick(ms(1400));
    h.screen(ms(1410), &fx, ready());
    assert!(
        h.core.next_wake().is_some_and(|t| t > ms(6000)),
        "no delivery deadline left"
    );
}

#[test]
fn no_enter_on_a_screen_the_agents_output_has_overtaken() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.deliver(1);
    h.at(
        ms(340),
        Event::Delivered {
            agent: AGENT.into(),
            task: 1,
            result: Ok(()),
        },
    );
    h.output(ms(350));
    let asked = h.tick(ms(650));
    // Output after the capture was asked for: the agent may be showing a question by now,
    // which an Enter would answer.
    h.output(ms(700));
    let waiting = Screen::Ready {
        composer: Composer::Text("Task #1: task 1".into()),
    };
    let fx = h.screen(ms(1100), &asked, waiting.clone());
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Keys { .. })),
        "{fx:?}"
    );
    // It looks again at once (the output has settled), and the text still waits: now Enter.
    let fx = h.screen(ms(1200), &fx, waiting);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Keys { keys, .. } if keys == &["Enter"])),
        "{fx:?}"
    );
}

#[test]
fn an_agent_that_never_loses_an_enter_gets_no_second_one() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.deliver(1);
    let agent = h.core.agents.get_mut(AGENT).expect("the agent");
    let mut adapter = (*agent.adapter).clone();
    adapter.enter_retries = false;
    agent.adapter = Arc::new(adapter);
    h.at(
        ms(340),
        Event::Delivered {
            agent: AGENT.into(),
            task: 1,
            result: Ok(()),
        },
    );
    h.output(ms(350));
    let fx = h.tick(ms(650));
    let waiting = Screen::Ready {
        composer: Composer::Text("Task #1: task 1".into()),
    };
    let fx = h.screen(ms(1100), &fx, waiting.clone());
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Keys { .. })),
        "{fx:?}"
    );
    // Its Enter is only late: once the screen shows it working, the paste is taken.
    let fx = h.tick(ms(1900));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Keys { .. })),
        "{fx:?}"
    );
    h.output(ms(2000));
    let fx = h.tick(ms(2300));
    h.screen(ms(2310), &fx, Screen::Busy);
    assert!(
        h.core.next_wake().is_some_and(|t| t > ms(6000)),
        "no delivery deadline left"
    );
}

#[test]
fn a_paste_never_taken_fails_the_attempt_and_gives_the_task_back() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.deliver(1);
    h.at(
        ms(340),
        Event::Delivered {
            agent: AGENT.into(),
            task: 1,
            result: Ok(()),
        },
    );
    // No output, an empty prompt: the paste vanished.
    let fx = h.tick(ms(640));
    h.screen(ms(650), &fx, ready());
    let fx = h.tick(ms(5340));
    assert_eq!(ended(&fx), [Outcome::NotTaken]);
    assert_eq!(
        writes(&fx),
        [&BoardWrite::Release {
            task: 1,
            agent: AGENT.into(),
            reason: "the agent did not take the pasted task within 5s".into()
        }]
    );
    let log = h.core.task_log(1).expect("a log");
    assert_eq!(log.failures.len(), 1);
    assert!(log.note.as_deref().is_some_and(|n| n.contains("attempt 1")));
}

#[test]
fn a_finished_task_ends_its_attempt_and_queues_exactly_its_range() {
    let mut h = Harness::new(vec![task(1, "todo"), {
        let mut t = task(2, "todo");
        t.depends_on = vec![1];
        t
    }]);
    h.working_on(1);
    let mut done = h.board_task(1);
    done.status = "done".into();
    let fx = h.file(secs(2), done);
    assert_eq!(ended(&fx), [Outcome::Done]);
    assert!(fx.contains(&Effect::QueueMerge {
        agent: AGENT.into(),
        task: 1,
        attempt: 1,
        base: "base".into(),
        head: None
    }));
    // The dependant waits until the work has landed.
    assert!(h.core.candidates(secs(2)).is_empty());
    h.at(
        secs(3),
        Event::Queued {
            task: 1,
            result: Ok(QueuedWork {
                head: "head".into(),
                unlanded: true,
            }),
        },
    );
    assert!(h.core.candidates(secs(3)).is_empty());
    h.at(
        secs(4),
        Event::Merge {
            task: 1,
            verdict: MergeVerdict::Landed {
                landed: Some("abc".into()),
            },
        },
    );
    assert_eq!(h.core.candidates(secs(4)), [2]);
    assert_eq!(h.core.merged(), 1);
}

#[test]
fn a_rejected_merge_goes_back_to_its_agent_then_past_the_budget_to_a_person() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    let mut done = h.board_task(1);
    done.status = "done".into();
    h.file(secs(2), done);
    let rejected = || Event::Merge {
        task: 1,
        verdict: MergeVerdict::Rejected {
            kind: Outcome::GateRed,
            reason: "gate failed".into(),
            tail: "tests: 1 failed".into(),
        },
    };
    let fx = h.at(secs(3), rejected());
    assert_eq!(
        writes(&fx),
        [&BoardWrite::Reopen {
            task: 1,
            agent: AGENT.into()
        }]
    );
    // Two more rejections use up the budget of three.
    for n in 0..2 {
        let log = h.core.tasks.get_mut(&1).expect("a log");
        log.merge = Some(MergeState::Queued {
            attempt: 2 + n,
            agent: AGENT.into(),
            base: "base".into(),
            head: "h".into(),
        });
        h.core.agents.get_mut(AGENT).expect("agent").redo.clear();
        let fx = h.at(secs(4 + n as u64), rejected());
        if n == 1 {
            let review = writes(&fx);
            assert!(
                matches!(review[..], [BoardWrite::Review { reason, .. }] if reason.starts_with("3 attempts failed") && reason.contains("refs/batty/t/rejected/1-3")),
                "{review:?}"
            );
            assert!(fx.iter().any(
                |e| matches!(e, Effect::KeepRef { name, .. } if name == "refs/batty/t/rejected/1-3")
            ));
        }
    }
    assert!(h.core.task_log(1).is_some_and(|l| l.in_review));
}

/// Found by the simulation (seed 4893): the rejected task is reopened for its agent, then
/// marked done again (a stray `batty task done`) before the redo began. It must not wait for
/// good: the rejection is settled again and the redo follows.
#[test]
fn a_task_marked_done_again_before_its_redo_began_is_reopened_not_waited_on() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    let mut done = h.board_task(1);
    done.status = "done".into();
    h.file(secs(2), done.clone());
    let rejected = Event::Merge {
        task: 1,
        verdict: MergeVerdict::Rejected {
            kind: Outcome::GateRed,
            reason: "gate failed".into(),
            tail: String::new(),
        },
    };
    let reopen = BoardWrite::Reopen {
        task: 1,
        agent: AGENT.into(),
    };
    assert_eq!(writes(&h.at(secs(3), rejected)), [&reopen]);
    // The write's result: reopened for the agent, which is still busy.
    let mut reopened = done.clone();
    reopened.status = "in-progress".into();
    h.file(secs(3) + ms(5), reopened.clone());
    // Done again before the agent came back to its prompt.
    let fx = h.file(secs(4), done);
    assert!(
        fx.iter().any(|e| matches!(
            e,
            Effect::Record(Record::Merged { verdict: MergeVerdict::Rejected { reason, .. }, .. })
                if reason.contains("marked done again")
        )),
        "{fx:?}"
    );
    assert_eq!(writes(&fx), [&reopen], "{fx:?}");
    // Reopened once more; at its prompt the agent is given the redo.
    h.file(secs(4) + ms(5), reopened);
    h.output(secs(5));
    let fx = h.tick(secs(5) + ms(300));
    let fx = h.screen(secs(5) + ms(310), &fx, ready());
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Prepare { task: 1, .. })),
        "{fx:?}"
    );
}

#[test]
fn a_dead_agent_is_restarted_after_its_backoff_and_continues_its_task() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    let fx = h.at(
        secs(2),
        Event::Exited {
            agent: AGENT.into(),
            pid: 100,
            status: None,
            last_screen: Vec::new(),
        },
    );
    assert_eq!(h.state(), AgentState::Dead);
    assert_eq!(ended(&fx), [Outcome::AgentDied]);
    assert!(
        writes(&fx).is_empty(),
        "its claim stays: it continues the task"
    );
    // Nothing is typed into a dead pane.
    let fx = h.output(secs(2) + ms(10));
    assert!(fx.is_empty());
    assert_eq!(h.core.next_wake(), Some(secs(3)));
    let fx = h.tick(secs(3));
    assert_eq!(
        fx.iter()
            .filter(|e| matches!(e, Effect::Respawn { .. }))
            .count(),
        1
    );
    h.pid = 200;
    let pane = h.pane();
    h.at(
        secs(3) + ms(100),
        Event::Respawned {
            agent: AGENT.into(),
            result: Ok(pane),
        },
    );
    assert_eq!(h.state(), AgentState::Starting);
    let fx = h.tick(secs(4));
    let fx = h.screen(secs(4), &fx, ready());
    // The redo goes straight to preparing: the agent still holds the claim.
    assert!(
        matches!(&fx[..], [Effect::Prepare { task: 1, resume_from: Some(b), .. }] if b == "base"),
        "{fx:?}"
    );
}

#[test]
fn an_agent_restarted_too_often_is_parked_and_a_person_asked() {
    let mut h = Harness::new(vec![]);
    h.start_agent(ms(0));
    let mut t = ms(0);
    for round in 0..3 {
        t += secs(1);
        let pid = h.pid;
        let fx = h.at(
            t,
            Event::Exited {
                agent: AGENT.into(),
                pid,
                status: None,
                last_screen: Vec::new(),
            },
        );
        if round == 2 {
            assert!(
                fx.iter()
                    .any(|e| matches!(e, Effect::Escalate { question, .. } if question.contains("parked"))),
                "{fx:?}"
            );
            assert!(h.core.agents()[0].parked.is_some());
            assert!(h.core.next_wake().is_none(), "never restarted again");
            return;
        }
        let due = h.core.next_wake().expect("a restart is due");
        t = due;
        h.tick(t);
        h.pid += 1;
        let pane = h.pane();
        h.at(
            t,
            Event::Respawned {
                agent: AGENT.into(),
                result: Ok(pane),
            },
        );
    }
}

#[test]
fn a_hung_agent_is_interrupted_then_restarted_and_its_attempt_counts() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    // Busy with no output for `stuck_after`.
    let fx = h.tick(ms(340) + secs(60));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Keys { keys, .. } if keys == &["C-c".to_owned()])),
        "{fx:?}"
    );
    assert_eq!(h.state(), AgentState::Stuck);
    // Not back at its prompt within the grace: restarted.
    let fx = h.tick(ms(340) + secs(70));
    assert_eq!(ended(&fx), [Outcome::HangTimeout]);
    assert!(fx.iter().any(|e| matches!(e, Effect::Respawn { .. })));
}

#[test]
fn an_idle_agent_with_its_task_unfinished_is_reminded_only_after_settling() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    // Back at its prompt, the task not done: nothing for the settle time.
    h.output(secs(2));
    let fx = h.tick(secs(2) + ms(300));
    h.screen(secs(2) + ms(310), &fx, ready());
    assert!(
        h.tick(secs(12))
            .iter()
            .all(|e| !matches!(e, Effect::Deliver { .. }))
    );
    let fx = h.tick(secs(2) + ms(310) + secs(10));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Deliver { text, .. } if text.contains("Reminder"))),
        "{fx:?}"
    );
    // A busy report holds reminders off.
    h.at(
        secs(13),
        Event::Report {
            agent: AGENT.into(),
            state: ReportedState::Busy,
            note: None,
        },
    );
    assert!(
        h.tick(secs(60))
            .iter()
            .all(|e| !matches!(e, Effect::Deliver { .. }))
    );
}

#[test]
fn a_routine_question_is_answered_after_the_grace_if_still_on_screen() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    h.output(secs(2));
    let fx = h.tick(secs(2) + ms(300));
    let fx = h.screen(
        secs(2) + ms(310),
        &fx,
        Screen::Question("Continue? [y/n]".into()),
    );
    assert!(fx.iter().all(|e| !matches!(e, Effect::Answer { .. })));
    assert_eq!(h.state(), AgentState::Asking);
    // Due: the screen is read again first.
    let fx = h.tick(secs(2) + ms(810));
    let fx = h.screen(
        secs(2) + ms(820),
        &fx,
        Screen::Question("Continue? [y/n]".into()),
    );
    assert!(fx.contains(&Effect::Answer {
        agent: AGENT.into(),
        pane: "%1".into(),
        reply: Reply::Text("y".into())
    }));
}

#[test]
fn an_unknown_question_is_escalated_once_whatever_reports_it() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    let q = "Delete everything? [y/n]";
    h.output(secs(2));
    let fx = h.tick(secs(2) + ms(300));
    let fx = h.screen(secs(2) + ms(310), &fx, Screen::Question(q.into()));
    let escalations = |fx: &[Effect]| {
        fx.iter()
            .filter(|e| matches!(e, Effect::Escalate { .. }))
            .count()
    };
    assert_eq!(escalations(&fx), 1);
    // The hook says the same; a busy report comes and goes; the screen shows it again.
    let mut more = h.at(
        secs(3),
        Event::Report {
            agent: AGENT.into(),
            state: ReportedState::Asking,
            note: Some("Claude needs your permission".into()),
        },
    );
    more.extend(h.at(
        secs(4),
        Event::Report {
            agent: AGENT.into(),
            state: ReportedState::Busy,
            note: None,
        },
    ));
    more.extend(h.at(
        secs(5),
        Event::Report {
            agent: AGENT.into(),
            state: ReportedState::Asking,
            note: None,
        },
    ));
    assert_eq!(escalations(&more), 0, "{more:?}");
}

#[test]
fn a_save_that_drops_the_claim_gets_it_written_back() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    let mut stale = h.board_task(1);
    stale.claimed_by = None;
    stale.title = "task 1, edited".into();
    let fx = h.file(secs(2), stale);
    assert_eq!(
        writes(&fx),
        [&BoardWrite::RestoreClaim {
            task: 1,
            agent: AGENT.into()
        }]
    );
    assert!(ended(&fx).is_empty(), "the agent keeps its task");
}

#[test]
fn a_save_from_a_copy_older_than_the_claim_gets_the_claim_back() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    // The claim's file as the watcher reads it, stamped as batty's writes are.
    let mut claimed = h.board_task(1);
    claimed.updated = crate::board::parse_timestamp("2026-01-01T00:05:00Z");
    assert!(writes(&h.file(secs(1), claimed)).is_empty());
    // What the buffer held: the task as it was before the claim, with the person's edit.
    let mut stale = task(1, "todo");
    stale.title = "task 1, edited".into();
    let fx = h.file(secs(2), stale.clone());
    assert_eq!(
        writes(&fx),
        [&BoardWrite::RestoreClaim {
            task: 1,
            agent: AGENT.into()
        }]
    );
    assert!(ended(&fx).is_empty(), "the agent keeps its task");
    assert_eq!(h.core.agents()[0].task, Some(1));
    // Board events before the write is seen ask for nothing more.
    assert!(writes(&h.file(ms(2100), stale.clone())).is_empty());
    // Moved back with a newer stamp (`batty task release`, kanban-md): the agent is freed.
    let mut released = stale;
    released.updated = Some(crate::board::now());
    let fx = h.file(secs(3), released);
    assert_eq!(ended(&fx), [Outcome::Released]);
    assert_eq!(h.core.agents()[0].task, None);
}

#[test]
fn a_task_file_saved_broken_keeps_its_agent_until_it_reads_again() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    let path = h.board_task(1).path().to_owned();
    let problem = crate::board::Problem::new(
        crate::board::ProblemKind::Unreadable,
        &path,
        Some(2),
        "bad YAML".to_owned(),
    );
    let fx = h.at(
        secs(2),
        Event::TaskFiles(vec![(path.clone(), FileRead::Broken(problem))]),
    );
    assert!(ended(&fx).is_empty() && writes(&fx).is_empty(), "{fx:?}");
    assert_eq!(h.core.agents()[0].task, Some(1));
    // Removed: the task left the board.
    let fx = h.at(secs(3), Event::TaskFiles(vec![(path, FileRead::Missing)]));
    assert_eq!(ended(&fx), [Outcome::Released]);
}

#[test]
fn a_task_a_person_moves_back_to_the_queue_frees_the_agent_and_keeps_their_status() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    let mut back = h.board_task(1);
    back.status = "backlog".into();
    let fx = h.file(secs(2), back);
    assert_eq!(ended(&fx), [Outcome::Released]);
    assert_eq!(
        writes(&fx),
        [&BoardWrite::ClearClaim {
            task: 1,
            agent: AGENT.into()
        }]
    );
    assert_eq!(h.core.agents()[0].task, None);
}

#[test]
fn at_start_the_same_process_keeps_its_task_and_a_new_one_resumes_it_as_a_failed_attempt() {
    let mut held = task(1, "in-progress");
    held.claimed_by = Some(AGENT.into());
    let history = |pid| History {
        tasks: BTreeMap::from([(
            1,
            TaskLog {
                attempts: 1,
                last: Some((1, AGENT.into(), "base".into())),
                ..TaskLog::default()
            },
        )]),
        open: vec![OpenAttempt {
            task: 1,
            attempt: 1,
            agent: AGENT.into(),
            base: "base".into(),
            pid: Some(pid),
        }],
        last_by_agent: BTreeMap::from([(AGENT.into(), (1, 1))]),
    };
    let mut same = Harness::with(vec![held.clone()], history(100), false);
    let fx = same.start_agent(ms(0));
    assert!(ended(&fx).is_empty(), "{fx:?}");
    assert_eq!(same.core.agents()[0].task, Some(1));

    let mut new = Harness::with(vec![held], history(99), false);
    let fx = new.start_agent(ms(0));
    assert_eq!(ended(&fx), [Outcome::Restarted]);
    assert!(writes(&fx).is_empty(), "it keeps the claim and continues");
    let redo: Vec<u64> = new.core.agents[AGENT].redo.iter().map(|r| r.task).collect();
    assert_eq!(redo, [1], "it redoes the task from its own commits");
}

#[test]
fn a_board_write_that_fails_is_tried_again_with_backoff() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    let write = BoardWrite::Release {
        task: 1,
        agent: AGENT.into(),
        reason: "x".into(),
    };
    h.start_agent(ms(0));
    h.at(
        secs(1),
        Event::WriteFailed {
            write: write.clone(),
            reason: "EACCES".into(),
        },
    );
    assert!(
        h.tick(secs(1) + ms(400))
            .iter()
            .all(|e| !matches!(e, Effect::Write(_)))
    );
    let fx = h.tick(secs(1) + ms(500));
    assert_eq!(writes(&fx), [&write]);
    h.at(
        secs(2),
        Event::WriteFailed {
            write: write.clone(),
            reason: "EACCES".into(),
        },
    );
    // The second failure waits twice as long.
    assert!(
        h.tick(secs(2) + ms(900))
            .iter()
            .all(|e| !matches!(e, Effect::Write(_)))
    );
    assert_eq!(writes(&h.tick(secs(3))), [&write]);
}

#[test]
fn exit_when_done_finishes_once_nothing_is_left() {
    let mut done = task(1, "done");
    done.claimed_by = Some(AGENT.into());
    let mut h = Harness::with(vec![done], History::default(), true);
    h.start_agent(ms(0));
    let fx = h.tick(ms(300));
    let fx = h.screen(ms(310), &fx, ready());
    // A task done with no history is queued first (done while no supervisor ran).
    assert!(!fx.contains(&Effect::Finish));
    let fx = h.at(
        secs(1),
        Event::Queued {
            task: 1,
            result: Ok(QueuedWork {
                head: "h".into(),
                unlanded: false,
            }),
        },
    );
    // Nothing is left: the whole board is read once more before the run ends, so a task
    // whose file event is late is not missed.
    assert!(fx.contains(&Effect::ReadBoard), "{fx:?}");
    assert!(!h.core.is_finished());
    let config = h.core.board().config().clone();
    let mut tasks = h.core.board().tasks().to_vec();
    tasks.push(task(2, "todo"));
    let fx = h.at(
        secs(1) + ms(5),
        Event::Board(Board::from_tasks(config, tasks)),
    );
    assert!(!h.core.is_finished(), "a late task keeps it going: {fx:?}");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Claim { task: 2, .. })),
        "{fx:?}"
    );
}

#[test]
fn exit_when_done_finishes_after_the_last_full_read_finds_nothing_new() {
    let mut done = task(1, "done");
    done.claimed_by = Some(AGENT.into());
    let mut h = Harness::with(vec![done], History::default(), true);
    h.start_agent(ms(0));
    let fx = h.tick(ms(300));
    h.screen(ms(310), &fx, ready());
    h.at(
        secs(1),
        Event::Queued {
            task: 1,
            result: Ok(QueuedWork {
                head: "h".into(),
                unlanded: false,
            }),
        },
    );
    let board = h.core.board().clone();
    let fx = h.at(secs(1) + ms(5), Event::Board(board));
    assert!(fx.contains(&Effect::Finish), "{fx:?}");
    assert!(h.core.is_finished());
}

/// Found by the simulation (seed 8032): a queued task still carries an idle agent's claim
/// (the write that clears it is not seen yet). The run does not end on it.
#[test]
fn exit_when_done_waits_for_a_queued_task_that_carries_our_claim() {
    let mut held = task(1, "todo");
    held.claimed_by = Some(AGENT.into());
    let mut h = Harness::with(vec![held.clone()], History::default(), true);
    h.start_agent(ms(0));
    let fx = h.tick(ms(300));
    h.screen(ms(310), &fx, ready());
    for t in 1..=5 {
        let fx = h.tick(secs(t));
        assert!(
            !fx.contains(&Effect::ReadBoard) && !fx.contains(&Effect::Finish),
            "{fx:?}"
        );
    }
    assert!(!h.core.is_finished());
    // The claim is cleared: the task is taken like any other.
    held.claimed_by = None;
    let fx = h.file(secs(6), held);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Claim { task: 1, .. })),
        "{fx:?}"
    );
}

#[test]
fn a_config_edit_takes_effect() {
    let mut h = Harness::new(vec![]);
    h.start_agent(ms(0));
    let mut s = settings(false);
    s.silence = secs(2);
    h.at(ms(10), Event::Config(Box::new(s)));
    h.output(ms(20));
    assert_eq!(h.core.next_wake(), Some(ms(20) + secs(2)));
}

/// The record line of the latest delivery among `fx`.
fn delivered_note(fx: &[Effect]) -> Option<String> {
    fx.iter().find_map(|e| match e {
        Effect::Record(Record::Delivered { note, .. }) => Some(note.clone().unwrap_or_default()),
        _ => None,
    })
}

/// The agent died holding task 1 and was restarted at its prompt: the redo's Prepare.
fn died_and_back(h: &mut Harness, screen: Vec<String>) -> Vec<Effect> {
    h.working_on(1);
    h.at(
        secs(2),
        Event::Exited {
            agent: AGENT.into(),
            pid: 100,
            status: Some(3),
            last_screen: screen,
        },
    );
    h.tick(secs(3));
    h.pid = 200;
    let pane = h.pane();
    h.at(
        secs(3) + ms(100),
        Event::Respawned {
            agent: AGENT.into(),
            result: Ok(pane),
        },
    );
    let fx = h.tick(secs(4));
    h.screen(secs(4), &fx, ready())
}

#[test]
fn a_resumed_attempt_is_told_its_commits_and_how_its_screen_ended() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    let screen = vec![
        "demo> Task #1: task 1".to_owned(),
        "When you are done, commit your work on the current branch, then run `batty task done 1`.working on #1"
            .to_owned(),
        "   ".to_owned(),
        "segfault \u{1b}[31mred\u{1b}[0m".to_owned(),
        "Pane is dead (status 3, Wed Dec  2 02:24:55 2026)".to_owned(),
    ];
    let fx = died_and_back(&mut h, screen);
    assert!(
        matches!(&fx[..], [Effect::Prepare { resume_from: Some(b), .. }] if b == "base"),
        "{fx:?}"
    );
    let fx = h.at(
        secs(4) + ms(10),
        Event::Prepared {
            agent: AGENT.into(),
            task: 1,
            result: Ok(Ready {
                base: "base".into(),
                commits: vec!["abc1234 Task #1: half of it".into()],
            }),
        },
    );
    let note = delivered_note(&fx).expect("delivered on record");
    assert!(
        note.starts_with(
            "Note: attempt 1 of this task failed: the agent's process exited (exit status 3)."
        ),
        "{note}"
    );
    // Blank lines and tmux's own line go; control characters are escaped.
    assert!(
        note.contains("Its screen ended with:\n    working on #1\n    segfault \\e[31mred\\e[0m\n"),
        "{note}"
    );
    assert!(!note.contains("Pane is dead"), "{note}");
    // The echo of its own message is not repeated: the message is right below.
    assert_eq!(note.matches("batty task done 1").count(), 0, "{note}");
    assert!(
        note.ends_with("continue from there:\n    abc1234 Task #1: half of it"),
        "{note}"
    );
    // The agent reads the same note at the top of its task.
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Deliver { text, .. } if text.contains(&note))),
        "{fx:?}"
    );
}

#[test]
fn a_resumed_attempt_that_made_no_commits_is_told_so() {
    let mut h = Harness::new(vec![task(1, "todo")]);
    died_and_back(&mut h, Vec::new());
    let fx = h.at(
        secs(4) + ms(10),
        Event::Prepared {
            agent: AGENT.into(),
            task: 1,
            result: Ok(Ready::at("base")),
        },
    );
    let note = delivered_note(&fx).expect("delivered on record");
    assert!(!note.contains("screen ended"), "{note}");
    assert!(note.contains("It made no commits for it"), "{note}");
}

#[test]
fn a_task_done_just_before_its_agent_exits_counts_as_done() {
    // The driver reads the held task's file before it reports a death.
    let mut h = Harness::new(vec![task(1, "todo")]);
    h.working_on(1);
    let mut done = h.board_task(1);
    done.status = "done".into();
    let fx = h.file(secs(2), done);
    assert_eq!(ended(&fx), [Outcome::Done]);
    let fx = h.at(
        secs(2),
        Event::Exited {
            agent: AGENT.into(),
            pid: 100,
            status: Some(0),
            last_screen: Vec::new(),
        },
    );
    assert!(ended(&fx).is_empty(), "nothing left to fail: {fx:?}");
    assert!(h.core.task_log(1).is_some_and(|l| l.failures.is_empty()));
    assert_eq!(h.state(), AgentState::Dead);
    assert!(h.core.next_wake().is_some(), "it is restarted");
}

#[test]
fn the_exit_of_an_earlier_process_does_not_kill_the_new_one() {
    let mut h = Harness::new(vec![]);
    h.start_agent(ms(0));
    h.pid = 200;
    let pane = h.pane();
    h.at(ms(10), Event::Panes(vec![pane]));
    let fx = h.at(
        ms(20),
        Event::Exited {
            agent: AGENT.into(),
            pid: 100,
            status: None,
            last_screen: vec!["demo>".into()],
        },
    );
    assert!(
        fx.iter()
            .all(|e| !matches!(e, Effect::Log { text, .. } if text.contains("exited")))
    );
    assert_eq!(h.core.agents()[0].pid, Some(200));
}

/// Task 1 with front matter `timeout: <text>`.
fn timed(text: &str) -> Task {
    let mut t = task(1, "todo");
    t.timeout = Some(text.into());
    t
}

#[test]
fn a_task_held_past_its_own_timeout_is_interrupted_before_the_global_one() {
    let mut h = Harness::new(vec![timed("45s")]);
    h.working_on(1);
    // Output keeps coming, so only a timeout can catch it.
    for s in (5..45).step_by(5) {
        h.output(secs(s));
    }
    let fx = h.tick(ms(340) + secs(45));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Keys { keys, .. } if keys == &["C-c".to_owned()])),
        "{fx:?}"
    );
    assert!(
        fx.iter().any(
            |e| matches!(e, Effect::Log { text, .. } if text == "task #1: held for 45s; interrupted")
        ),
        "{fx:?}"
    );
}

#[test]
fn a_task_timeout_that_is_not_a_duration_is_said_once_and_the_global_one_applies() {
    let mut h = Harness::new(vec![timed("soon")]);
    let fx = h.deliver(1);
    assert!(fx.iter().any(|e| matches!(e, Effect::Deliver { .. })));
    let fx = h.at(
        ms(340),
        Event::Delivered {
            agent: AGENT.into(),
            task: 1,
            result: Ok(()),
        },
    );
    let said: Vec<&Effect> = fx
        .iter()
        .filter(|e| matches!(e, Effect::Log { text, .. } if text.contains("`timeout: soon` is not a duration")))
        .collect();
    assert_eq!(said.len(), 1, "{fx:?}");
    let fx = h.tick(ms(650));
    h.screen(ms(650), &fx, Screen::Busy);
    for s in (5..600).step_by(5) {
        h.output(secs(s));
    }
    assert!(
        h.tick(secs(599))
            .iter()
            .all(|e| !matches!(e, Effect::Keys { .. })),
        "not before supervisor.task_timeout"
    );
    assert!(
        h.tick(ms(340) + secs(600))
            .iter()
            .any(|e| matches!(e, Effect::Keys { .. }))
    );
}

#[test]
fn a_prompt_shown_by_a_free_agent_is_read_at_once_not_after_the_silence() {
    let mut h = Harness::new(vec![task(1, "todo"), task(2, "todo")]);
    // Starting: its first prompt is looked at right away.
    assert!(h.start_agent(ms(0)).is_empty());
    h.output(ms(20));
    let fx = h.at(
        ms(20),
        Event::Prompt {
            agent: AGENT.into(),
        },
    );
    assert!(matches!(&fx[..], [Effect::Capture { .. }]), "{fx:?}");
    let fx = h.screen(ms(25), &fx, ready());
    assert!(fx.contains(&Effect::Claim {
        agent: AGENT.into(),
        task: 1
    }));
    let mut claimed = h.board_task(1);
    claimed.claimed_by = Some(AGENT.into());
    claimed.status = "in-progress".into();
    h.at(
        ms(30),
        Event::Claimed {
            agent: AGENT.into(),
            task: 1,
            result: Ok(claimed.clone()),
        },
    );
    h.at(
        ms(40),
        Event::Prepared {
            agent: AGENT.into(),
            task: 1,
            result: Ok(Ready::at("base")),
        },
    );
    h.at(
        ms(50),
        Event::Delivered {
            agent: AGENT.into(),
            task: 1,
            result: Ok(()),
        },
    );
    // Holding its task, a prompt waits for the silence like any output.
    h.output(ms(60));
    let fx = h.at(
        ms(60),
        Event::Prompt {
            agent: AGENT.into(),
        },
    );
    assert!(
        fx.iter().all(|e| !matches!(e, Effect::Capture { .. })),
        "{fx:?}"
    );
    // It goes on working (output with no prompt at its end). The task done on the board
    // frees it: its prompt after that is read at once, and the next task follows without
    // waiting out the silence.
    h.output(ms(80));
    let mut done = claimed;
    done.status = "done".into();
    h.file(ms(100), done);
    h.output(ms(110));
    let fx = h.at(
        ms(110),
        Event::Prompt {
            agent: AGENT.into(),
        },
    );
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Capture { .. })),
        "{fx:?}"
    );
    let fx = h.screen(ms(115), &fx, ready());
    assert!(
        fx.contains(&Effect::Claim {
            agent: AGENT.into(),
            task: 2
        }),
        "{fx:?}"
    );
}

#[test]
fn a_prompt_seen_before_the_board_says_done_is_read_when_the_task_ends() {
    let mut h = Harness::new(vec![task(1, "todo"), task(2, "todo")]);
    h.working_on(1);
    // The agent marks its task done and shows its prompt; the prompt is read first.
    h.output(ms(700));
    let fx = h.at(
        ms(700),
        Event::Prompt {
            agent: AGENT.into(),
        },
    );
    assert!(
        fx.iter().all(|e| !matches!(e, Effect::Capture { .. })),
        "{fx:?}"
    );
    let mut done = h.board_task(1);
    done.status = "done".into();
    let fx = h.file(ms(705), done);
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Capture { .. })),
        "read at once, not after the silence: {fx:?}"
    );
    let fx = h.screen(ms(710), &fx, ready());
    assert!(
        fx.contains(&Effect::Claim {
            agent: AGENT.into(),
            task: 2
        }),
        "{fx:?}"
    );
}

#[test]
fn output_after_the_prompt_cancels_the_early_read() {
    let mut h = Harness::new(vec![task(1, "todo"), task(2, "todo")]);
    h.working_on(1);
    h.output(ms(700));
    h.at(
        ms(700),
        Event::Prompt {
            agent: AGENT.into(),
        },
    );
    // More output without a prompt at its end: the agent is not at its prompt any more.
    h.output(ms(702));
    let mut done = h.board_task(1);
    done.status = "done".into();
    let fx = h.file(ms(705), done);
    assert!(
        fx.iter().all(|e| !matches!(e, Effect::Capture { .. })),
        "{fx:?}"
    );
    // The silence still brings the look.
    let fx = h.tick(ms(1002));
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Capture { .. })),
        "{fx:?}"
    );
}

#[test]
fn an_agent_that_reports_its_state_is_not_hurried_to_a_screen_read() {
    let mut h = Harness::new(vec![task(1, "todo"), task(2, "todo")]);
    h.working_on(1);
    h.at(
        ms(660),
        Event::Report {
            agent: AGENT.into(),
            state: ReportedState::Busy,
            note: None,
        },
    );
    let mut done = h.board_task(1);
    done.status = "done".into();
    h.file(ms(700), done);
    // Its prompt shows before its idle report is read: no capture, the report decides.
    h.output(ms(705));
    let fx = h.at(
        ms(705),
        Event::Prompt {
            agent: AGENT.into(),
        },
    );
    assert!(
        fx.iter().all(|e| !matches!(e, Effect::Capture { .. })),
        "{fx:?}"
    );
    let fx = h.at(
        ms(706),
        Event::Report {
            agent: AGENT.into(),
            state: ReportedState::Idle,
            note: None,
        },
    );
    assert!(
        fx.contains(&Effect::Claim {
            agent: AGENT.into(),
            task: 2
        }),
        "{fx:?}"
    );
}
