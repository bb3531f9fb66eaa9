//! The per-agent state machine: `starting -> idle -> busy -> (asking -> busy)* -> idle`, plus
//! `stuck` and `dead`. Pure: it is told what happened and when, says what changed, and names
//! the next moment it needs attention ([`Tracker::next_deadline`]), so the event loop sleeps
//! while agents are quiet instead of polling.
//!
//! Evidence, strongest last:
//! - output in the pty log: the agent is doing something; after `silence` with no more output
//!   the screen is captured once and classified (ready, question or busy);
//! - a task delivered: busy at once, and a ready-looking screen is not believed until the agent
//!   has shown some output since the delivery (the prompt may still be on screen);
//! - the agent's own report (`batty agent-status`): believed over the screen until the agent
//!   prints again, except that a question on screen always counts (it carries the text);
//! - the pane died: dead, for good.

use std::time::{Duration, Instant};

use crate::agent::{Composer, Screen};
use crate::status::AgentState;

use crate::watch::report::ReportedState;

/// A state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: AgentState,
    pub to: AgentState,
    /// The question, when the new state is `asking`.
    pub question: Option<String>,
}

/// What the loop should do now for this agent, from [`Tracker::tick`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tick {
    /// The log has been quiet for `silence` since the last output: capture the pane once and
    /// pass the result to [`Tracker::on_screen`].
    pub capture: bool,
    /// A change the tick itself made (busy too long: stuck).
    pub transition: Option<Transition>,
}

/// Why the loop should wake up for this agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Silence after output: capture and classify the screen.
    Capture,
    /// Busy with no output for `stuck_after`.
    Stuck,
}

/// Timing settings (from `supervisor.silence` and `supervisor.stuck_after`).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub silence: Duration,
    pub stuck_after: Duration,
}

impl Timing {
    pub fn from_config(c: &crate::config::SupervisorConfig) -> Timing {
        Timing {
            silence: c.silence,
            stuck_after: c.stuck_after,
        }
    }
}

/// One agent's state as the supervisor sees it.
#[derive(Debug, Clone)]
pub struct Tracker {
    timing: Timing,
    state: AgentState,
    since: Instant,
    question: Option<String>,
    last_output: Option<Instant>,
    /// Output arrived since the screen was last classified.
    screen_stale: bool,
    /// When a task was delivered and no output has been seen since.
    awaiting_output_since: Option<Instant>,
    /// When the agent last reported, and output has not been seen since.
    reported_at: Option<Instant>,
}

impl Tracker {
    /// A new agent, `starting`. Its screen is classified `silence` after `now` even if it
    /// prints nothing (it may have drawn its prompt before the supervisor started).
    pub fn new(now: Instant, timing: Timing) -> Tracker {
        Tracker {
            timing,
            state: AgentState::Starting,
            since: now,
            question: None,
            last_output: Some(now),
            screen_stale: true,
            awaiting_output_since: None,
            reported_at: None,
        }
    }

    pub fn state(&self) -> AgentState {
        self.state
    }

    /// When the current state began.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// The question being asked, while `asking`.
    pub fn question(&self) -> Option<&str> {
        self.question.as_deref()
    }

    pub fn last_output(&self) -> Option<Instant> {
        self.last_output
    }

    /// True after a delivery once the agent has printed anything (the echo of the pasted
    /// task counts); false while the delivery is still unconfirmed or there was none.
    pub fn delivery_confirmed(&self) -> bool {
        self.awaiting_output_since.is_none()
    }

    /// Bytes appeared in the agent's pty log.
    pub fn on_output(&mut self, now: Instant) -> Option<Transition> {
        if self.state == AgentState::Dead {
            return None;
        }
        self.last_output = Some(now);
        self.screen_stale = true;
        self.awaiting_output_since = None;
        self.reported_at = None;
        match self.state {
            AgentState::Stuck => self.set(now, AgentState::Busy, None),
            _ => None,
        }
    }

    /// The screen, captured after silence, was classified by the agent's adapter.
    pub fn on_screen(&mut self, now: Instant, screen: &Screen) -> Option<Transition> {
        self.screen_stale = false;
        if self.state == AgentState::Dead {
            return None;
        }
        match screen {
            Screen::Question(q) => self.set(now, AgentState::Asking, Some(q.clone())),
            _ if self.reported_at.is_some() => None,
            // Text waiting in the composer: not idle (it is not sent yet, or not taken).
            Screen::Ready {
                composer: Composer::Text(_),
            } => match self.state {
                AgentState::Stuck => None,
                _ => self.set(now, AgentState::Busy, None),
            },
            Screen::Ready { .. } if self.awaiting_output_since.is_some() => None,
            Screen::Ready { .. } => self.set(now, AgentState::Idle, None),
            Screen::Busy | Screen::Unknown => match self.state {
                // A stuck agent stays stuck until it prints again.
                AgentState::Stuck => None,
                _ => self.set(now, AgentState::Busy, None),
            },
        }
    }

    /// The agent reported its own state.
    pub fn on_report(
        &mut self,
        now: Instant,
        state: ReportedState,
        note: Option<&str>,
    ) -> Option<Transition> {
        if self.state == AgentState::Dead {
            return None;
        }
        self.reported_at = Some(now);
        if state == ReportedState::Busy {
            self.awaiting_output_since = None;
        }
        let question = match state {
            ReportedState::Asking => Some(note.unwrap_or("(asked by the agent)").to_owned()),
            _ => None,
        };
        self.set(now, state.as_agent_state(), question)
    }

    /// A task was pasted into the agent's pane.
    pub fn on_task_delivered(&mut self, now: Instant) -> Option<Transition> {
        if self.state == AgentState::Dead {
            return None;
        }
        self.awaiting_output_since = Some(now);
        self.reported_at = None;
        self.set(now, AgentState::Busy, None)
    }

    /// The delivery was given up (no reaction in time): the agent is idle again.
    pub fn on_delivery_abandoned(&mut self, now: Instant) -> Option<Transition> {
        if self.state == AgentState::Dead {
            return None;
        }
        self.awaiting_output_since = None;
        self.set(now, AgentState::Idle, None)
    }

    /// The pane's process exited.
    pub fn on_pane_died(&mut self, now: Instant) -> Option<Transition> {
        self.screen_stale = false;
        self.set(now, AgentState::Dead, None)
    }

    /// The next moment this agent needs the loop, and why; `None` when nothing is due until
    /// something happens (quiet and idle, asking, stuck, or dead).
    pub fn next_deadline(&self) -> Option<(Instant, Wake)> {
        if self.state == AgentState::Dead {
            return None;
        }
        let capture = self
            .screen_stale
            .then(|| {
                self.last_output
                    .map(|t| (t + self.timing.silence, Wake::Capture))
            })
            .flatten();
        let stuck = (self.state == AgentState::Busy).then(|| {
            let last = self.last_output.map_or(self.since, |t| t.max(self.since));
            (last + self.timing.stuck_after, Wake::Stuck)
        });
        match (capture, stuck) {
            (Some(c), Some(s)) => Some(if s.0 < c.0 { s } else { c }),
            (c, s) => c.or(s),
        }
    }

    /// Acts on whatever is due at `now`: flags a stuck agent, and says whether to capture.
    pub fn tick(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        if self.state == AgentState::Busy {
            let last = self.last_output.map_or(self.since, |t| t.max(self.since));
            if now >= last + self.timing.stuck_after {
                tick.transition = self.set(now, AgentState::Stuck, None);
            }
        }
        tick.capture = self.state != AgentState::Dead
            && self.screen_stale
            && self
                .last_output
                .is_some_and(|t| now >= t + self.timing.silence);
        tick
    }

    fn set(
        &mut self,
        now: Instant,
        to: AgentState,
        question: Option<String>,
    ) -> Option<Transition> {
        if self.state == to && self.question == question {
            return None;
        }
        let from = self.state;
        self.state = to;
        self.question = question.clone();
        if from != to {
            self.since = now;
        }
        Some(Transition { from, to, question })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READY: Screen = Screen::Ready {
        composer: Composer::Empty,
    };

    const SILENCE: Duration = Duration::from_millis(300);
    const STUCK: Duration = Duration::from_secs(60);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn tracker(t0: Instant) -> Tracker {
        Tracker::new(
            t0,
            Timing {
                silence: SILENCE,
                stuck_after: STUCK,
            },
        )
    }

    fn to(t: Option<Transition>) -> Option<AgentState> {
        t.map(|t| t.to)
    }

    #[test]
    fn starting_agent_is_classified_after_silence() {
        let t0 = Instant::now();
        let mut a = tracker(t0);
        assert_eq!(a.state(), AgentState::Starting);
        assert_eq!(a.next_deadline(), Some((t0 + SILENCE, Wake::Capture)));
        assert!(!a.tick(t0 + ms(100)).capture);
        a.on_output(t0 + ms(100));
        assert_eq!(a.next_deadline(), Some((t0 + ms(400), Wake::Capture)));
        assert!(!a.tick(t0 + ms(399)).capture);
        assert!(a.tick(t0 + ms(400)).capture);
        assert_eq!(
            to(a.on_screen(t0 + ms(410), &READY)),
            Some(AgentState::Idle)
        );
        // Quiet and idle: nothing to wake up for.
        assert_eq!(a.next_deadline(), None);
        assert!(!a.tick(t0 + ms(10_000)).capture);
    }

    #[test]
    fn full_cycle_idle_busy_asking_busy_idle() {
        let t0 = Instant::now();
        let mut a = tracker(t0);
        a.on_screen(t0, &READY);
        assert_eq!(to(a.on_task_delivered(t0 + ms(1))), Some(AgentState::Busy));
        assert!(!a.delivery_confirmed());
        a.on_output(t0 + ms(2));
        assert!(a.delivery_confirmed());
        let q = Screen::Question("Continue? [y/n]".into());
        let t = a.on_screen(t0 + ms(400), &q).unwrap();
        assert_eq!((t.from, t.to), (AgentState::Busy, AgentState::Asking));
        assert_eq!(t.question.as_deref(), Some("Continue? [y/n]"));
        assert_eq!(a.question(), Some("Continue? [y/n]"));
        // The same question seen again is no change.
        assert_eq!(a.on_screen(t0 + ms(500), &q), None);
        // Answer echoed, work goes on.
        a.on_output(t0 + ms(600));
        assert_eq!(
            to(a.on_screen(t0 + ms(900), &Screen::Busy)),
            Some(AgentState::Busy)
        );
        assert_eq!(a.question(), None);
        a.on_output(t0 + ms(1000));
        assert_eq!(
            to(a.on_screen(t0 + ms(1300), &READY)),
            Some(AgentState::Idle)
        );
        assert_eq!(a.since(), t0 + ms(1300));
    }

    #[test]
    fn ready_screen_after_delivery_waits_for_output() {
        let t0 = Instant::now();
        let mut a = tracker(t0);
        a.on_screen(t0, &READY);
        a.on_task_delivered(t0 + ms(10));
        // The prompt is still on screen before the agent reacted: not idle.
        assert_eq!(a.on_screen(t0 + ms(20), &READY), None);
        assert_eq!(a.state(), AgentState::Busy);
        a.on_output(t0 + ms(30));
        assert_eq!(
            to(a.on_screen(t0 + ms(400), &READY)),
            Some(AgentState::Idle)
        );
    }

    #[test]
    fn abandoned_delivery_is_idle_again() {
        let t0 = Instant::now();
        let mut a = tracker(t0);
        a.on_screen(t0, &READY);
        a.on_task_delivered(t0);
        assert_eq!(
            to(a.on_delivery_abandoned(t0 + ms(5000))),
            Some(AgentState::Idle)
        );
        assert!(a.delivery_confirmed());
    }

    #[test]
    fn busy_without_output_becomes_stuck_and_output_revives_it() {
        let t0 = Instant::now();
        let mut a = tracker(t0);
        a.on_output(t0);
        // Busy from the capture on: the stuck clock runs from then (or later output).
        let b = t0 + SILENCE;
        a.on_screen(b, &Screen::Busy);
        assert_eq!(a.next_deadline(), Some((b + STUCK, Wake::Stuck)));
        let tick = a.tick(b + STUCK - ms(1));
        assert_eq!(tick, Tick::default());
        let tick = a.tick(b + STUCK);
        assert_eq!(to(tick.transition), Some(AgentState::Stuck));
        assert_eq!(a.next_deadline(), None);
        // A quiet capture does not unstick it; output does.
        assert_eq!(a.on_screen(b + STUCK, &Screen::Busy), None);
        assert_eq!(to(a.on_output(b + STUCK + ms(5))), Some(AgentState::Busy));
    }

    #[test]
    fn capture_deadline_comes_before_stuck_deadline() {
        let t0 = Instant::now();
        let mut a = tracker(t0);
        a.on_screen(t0, &Screen::Busy);
        a.on_output(t0 + ms(10));
        assert_eq!(a.next_deadline(), Some((t0 + ms(310), Wake::Capture)));
        a.on_screen(t0 + ms(310), &Screen::Busy);
        assert_eq!(a.next_deadline(), Some((t0 + ms(10) + STUCK, Wake::Stuck)));
    }

    #[test]
    fn reports_win_over_the_screen_until_new_output() {
        let t0 = Instant::now();
        let mut a = tracker(t0);
        a.on_screen(t0, &READY);
        assert_eq!(
            to(a.on_report(t0 + ms(1), ReportedState::Busy, None)),
            Some(AgentState::Busy)
        );
        // The prompt still shows, but the agent said it is busy.
        assert_eq!(a.on_screen(t0 + ms(2), &READY), None);
        // A question on screen always counts.
        assert_eq!(
            to(a.on_screen(t0 + ms(3), &Screen::Question("Allow?".into()))),
            Some(AgentState::Asking)
        );
        assert_eq!(
            to(a.on_report(t0 + ms(4), ReportedState::Idle, None)),
            Some(AgentState::Idle)
        );
        assert_eq!(a.on_screen(t0 + ms(5), &Screen::Busy), None);
        a.on_output(t0 + ms(6));
        assert_eq!(
            to(a.on_screen(t0 + ms(400), &Screen::Busy)),
            Some(AgentState::Busy)
        );
        let t = a
            .on_report(t0 + ms(500), ReportedState::Asking, Some("needs a key"))
            .unwrap();
        assert_eq!(t.question.as_deref(), Some("needs a key"));
    }

    #[test]
    fn dead_is_final() {
        let t0 = Instant::now();
        let mut a = tracker(t0);
        assert_eq!(to(a.on_pane_died(t0)), Some(AgentState::Dead));
        assert_eq!(a.on_output(t0), None);
        assert_eq!(a.on_screen(t0, &READY), None);
        assert_eq!(a.on_report(t0, ReportedState::Idle, None), None);
        assert_eq!(a.on_task_delivered(t0), None);
        assert_eq!(a.next_deadline(), None);
        assert_eq!(a.tick(t0 + STUCK * 2), Tick::default());
        assert_eq!(a.state(), AgentState::Dead);
    }
}
