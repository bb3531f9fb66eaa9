//! The latest outcomes for the tmux status line: `#12 ✓ #14 ✗(2)`, newest first, cut to a
//! width budget so the whole bar fits the terminal.

use super::entry::At;
use super::history::{History, Outcome};

/// The newest outcome of each task, newest first: `✓` landed or done, `✗` failed or given
/// to a person, with `(n)` when it came at attempt `n` > 1. Restarts, releases and attempts
/// still running are not outcomes and are left out. Whole items only, as many as fit in
/// `budget` columns (an empty string when none does).
pub fn latest_outcomes(history: &History, budget: usize) -> String {
    let mut items: Vec<(At, u64, String)> = history
        .tasks()
        .filter_map(|task| {
            let settled = task
                .attempts
                .iter()
                .filter_map(|a| {
                    let mark = mark(a.outcome)?;
                    Some((a.settled_at()?, a.attempt, mark))
                })
                .max_by_key(|(at, attempt, _)| (*at, *attempt));
            let review = task.review.as_ref().map(|r| {
                let attempt = task.attempts.last().map_or(0, |a| a.attempt);
                (r.at, attempt, "✗")
            });
            let (at, attempt, mark) = match (settled, review) {
                (Some(s), Some(r)) => {
                    if r.0 >= s.0 {
                        r
                    } else {
                        s
                    }
                }
                (s, r) => s.or(r)?,
            };
            let mut item = format!("#{} {mark}", task.task);
            if attempt > 1 {
                item.push_str(&format!("({attempt})"));
            }
            Some((at, task.task, item))
        })
        .collect();
    items.sort_by_key(|(at, task, _)| std::cmp::Reverse((*at, *task)));
    let mut out = String::new();
    for (_, _, item) in items {
        let sep = usize::from(!out.is_empty());
        if width(&out) + sep + width(&item) > budget {
            break;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(&item);
    }
    out
}

fn mark(outcome: Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Merged | Outcome::NothingToMerge | Outcome::Done => Some("✓"),
        o if o.is_failure() || o == Outcome::MovedToReview => Some("✗"),
        _ => None,
    }
}

/// Columns on a terminal: `✓` and `✗` are one column wide, like the ASCII around them.
fn width(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::entry::{EndOutcome, MergeResult, RunAction};
    use crate::record::history::tests::{delivered, ended, merge, review, run};

    fn sample() -> History {
        History::fold(&[
            run(0, RunAction::Start, 1),
            delivered(0, 12, 1, "a"),
            ended(10, 12, 1, "a", EndOutcome::Done, None),
            merge(20, 12, 1, "a", MergeResult::Merged, None),
            delivered(0, 14, 1, "b"),
            ended(5, 14, 1, "b", EndOutcome::AgentDied, None),
            delivered(6, 14, 2, "b"),
            ended(25, 14, 2, "b", EndOutcome::Done, None),
            merge(30, 14, 2, "b", MergeResult::GateRed, Some("red")),
            delivered(31, 15, 1, "c"),
            ended(32, 15, 1, "c", EndOutcome::Restarted, None),
            delivered(33, 16, 1, "c"),
            delivered(0, 17, 1, "d"),
            ended(3, 17, 1, "d", EndOutcome::HangTimeout, None),
            review(4, 17, "hung"),
        ])
    }

    #[test]
    fn newest_first_with_attempt_counts() {
        assert_eq!(latest_outcomes(&sample(), 80), "#14 ✗(2) #12 ✓ #17 ✗");
    }

    #[test]
    fn never_wider_than_the_budget_and_whole_items_only() {
        let full = latest_outcomes(&sample(), 1000);
        for budget in 0..=full.chars().count() + 2 {
            let got = latest_outcomes(&sample(), budget);
            assert!(width(&got) <= budget, "{budget}: {got:?}");
            assert!(full.starts_with(&got), "{budget}: {got:?} is not a prefix");
            assert!(
                got.is_empty()
                    || full[got.len()..].is_empty()
                    || full[got.len()..].starts_with(' ')
            );
        }
        assert_eq!(latest_outcomes(&sample(), 7), "");
        assert_eq!(latest_outcomes(&sample(), 8), "#14 ✗(2)");
        assert_eq!(latest_outcomes(&History::default(), 80), "");
    }
}
