//! Questions an agent asks: a routine one is answered after a grace period in which a person
//! may answer first (and only if it is still on screen); any other is escalated, once per
//! question however many signals (screen, hook) report it.

use crate::agent::Reply;
use crate::status::AgentState;

use super::agent::Question;
use super::core::Core;
use super::event::{Effect, Time};

/// A question seen again this soon after it seemed to go is the same question (a hook's
/// report and the screen disagree for a moment): not escalated again.
const SAME_QUESTION: Time = Time::from_secs(5);

impl Core {
    /// The agent asks `text` (from its screen, or from a hook's report).
    pub(super) fn on_question(&mut self, now: Time, agent: &str, text: String, from_screen: bool) {
        let grace = self.settings.answer_grace;
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        a.set_state(now, AgentState::Asking);
        let moved_on = a
            .question
            .as_ref()
            .and_then(|q| q.replied)
            .is_some_and(|r| a.last_output.is_some_and(|out| out > r));
        if moved_on {
            a.question = None;
            a.question_ended = None;
        }
        if let Some(q) = &mut a.question {
            // The same episode: the screen's wording is the better one to show and match.
            let verifying = q.verifying;
            let same = q.text == text;
            if from_screen {
                q.text = text;
            }
            if verifying && from_screen {
                q.verifying = false;
                let answer = q.answer.take();
                if let (true, Some((reply, _))) = (same, answer) {
                    self.send_reply(now, agent, &reply, "auto-answer");
                } else {
                    self.log(
                        Some(agent),
                        "question changed before the auto-answer; dropped",
                    );
                }
            }
            return;
        }
        let recent = a
            .question_ended
            .is_some_and(|t| now.saturating_sub(t) < SAME_QUESTION);
        let reply = a.adapter.answer_for(&text).cloned();
        let first = headline(&text);
        match reply {
            Some(reply) => {
                a.question = Some(Question {
                    text,
                    since: now,
                    answer: Some((reply.clone(), now + grace)),
                    verifying: false,
                    escalated: false,
                    replied: None,
                });
                self.log(
                    Some(agent),
                    format!(
                        "question: {first} (answering {} in {})",
                        describe(&reply),
                        humantime::format_duration(grace)
                    ),
                );
            }
            None => {
                a.question = Some(Question {
                    text: text.clone(),
                    since: now,
                    answer: None,
                    verifying: false,
                    escalated: true,
                    replied: None,
                });
                if recent {
                    // Already escalated a moment ago: the flag goes back up quietly.
                    self.out.push(Effect::Flag {
                        agent: agent.to_owned(),
                    });
                    return;
                }
                self.out.push(Effect::Escalate {
                    agent: agent.to_owned(),
                    question: text.clone(),
                });
                self.alert(
                    Some(agent),
                    format!(
                        "needs a person: {}",
                        crate::text::one_line(&text.replace('\n', " / "))
                    ),
                );
            }
        }
    }

    /// The screen or a report says the agent is no longer asking.
    pub(super) fn question_gone(&mut self, now: Time, agent: &str) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let Some(q) = a.question.take() else {
            return;
        };
        a.question_ended = q.replied.is_none().then_some(now);
        if q.verifying {
            self.log(
                Some(agent),
                "question answered in the pane; auto-answer dropped",
            );
        }
        if q.escalated {
            self.out.push(Effect::Unflag {
                agent: agent.to_owned(),
            });
        }
    }

    /// A due auto-answer first looks at the screen once more.
    pub(super) fn question_timers(&mut self, now: Time, agent: &str) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let Some(q) = &mut a.question else {
            return;
        };
        if q.verifying || q.answer.as_ref().is_none_or(|(_, due)| now < *due) {
            return;
        }
        q.verifying = true;
        self.ask_capture(now, agent);
    }

    pub(super) fn on_escalation_reply(
        &mut self,
        now: Time,
        agent: &str,
        question: &str,
        reply: Result<String, String>,
    ) {
        let answer = match reply {
            Ok(text) => text,
            Err(err) => {
                self.log(Some(agent), format!("escalate_command failed: {err}"));
                return;
            }
        };
        let asked = self
            .agents
            .get(agent)
            .and_then(|a| a.question.as_ref())
            .is_some_and(|q| q.escalated && q.text == question);
        if !asked {
            self.log(
                Some(agent),
                "escalation reply arrived after the question was answered",
            );
            return;
        }
        self.send_reply(now, agent, &Reply::Text(answer), "escalate_command");
    }

    fn send_reply(&mut self, now: Time, agent: &str, reply: &Reply, from: &str) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let Some(pane) = a.pane().map(str::to_owned) else {
            return;
        };
        if let Some(q) = &mut a.question {
            q.replied = Some(now);
        }
        self.out.push(Effect::Answer {
            agent: agent.to_owned(),
            pane,
            reply: reply.clone(),
        });
        self.log(
            Some(agent),
            format!("answered {} ({from})", describe(reply)),
        );
    }
}

/// A question as one line of the event log: its first line, which names the dialog, and its
/// last, which usually says how it is answered ("Enter to continue").
fn headline(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let line = match lines.next_back() {
        Some(last) => format!("{first} … {last}"),
        None => first.to_owned(),
    };
    crate::text::one_line(&line).into_owned()
}

/// A reply as the event log shows it.
fn describe(reply: &Reply) -> String {
    match reply {
        Reply::Text(t) => format!("{:?}", crate::text::one_line(t)),
        Reply::Keys(keys) => format!("keys {}", keys.join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::headline;

    #[test]
    fn a_question_is_logged_by_its_first_and_last_lines() {
        let dialog = "\n  We're changing auto mode to no longer charge.\n\n  Auto mode works for now.\n\n  Enter to continue · Esc to cancel\n";
        assert_eq!(
            headline(dialog),
            "We're changing auto mode to no longer charge. … Enter to continue · Esc to cancel"
        );
        assert_eq!(headline("Continue? [y/n]"), "Continue? [y/n]");
        assert_eq!(headline("Run it?\x1b[0m\n"), "Run it?\\e[0m");
    }
}
