//! A [`Report`] as text for a terminal, or as markdown to paste into an issue or a pull
//! request. Everything that came from a board or an agent is escaped (`text::one_line`).

use std::fmt::Write as _;

use super::report::{Report, RowStatus, TaskRow, short};

/// The terminal table: one row per task (its last failure or reason on the line below), then
/// the totals, wall time and busy time per agent.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "phase `{}` onto `{}`", r.phase, r.target);
    if r.tasks.is_empty() {
        out.push_str("no tasks\n");
    } else {
        out.push('\n');
        table(&mut out, r);
    }
    out.push('\n');
    let _ = writeln!(out, "totals: {}", totals_line(r));
    for (what, list) in [
        ("in review", &r.totals.in_review),
        ("blocked", &r.totals.blocked),
    ] {
        for item in list {
            let _ = writeln!(out, "{what}: #{} {}", item.task, clip(&item.reason, 200));
        }
    }
    let _ = writeln!(
        out,
        "attempts: {}, {} failed",
        r.totals.attempts, r.totals.failed_attempts
    );
    let _ = writeln!(out, "wall time: {}", wall(r));
    let _ = writeln!(out, "busy: {}", busy(r, ", "));
    out
}

fn table(out: &mut String, r: &Report) {
    let header = ["ID", "STATUS", "TRIES", "TIME", "MERGED", "AGENTS", "TITLE"].map(String::from);
    let rows: Vec<[String; 7]> = r
        .tasks
        .iter()
        .map(|t| {
            [
                format!("#{}", t.id),
                format!("{} {}", t.mark, t.status.label()),
                t.attempts.len().to_string(),
                time_cell(t),
                t.merged.as_deref().map(short).unwrap_or("-").to_owned(),
                agents_cell(t, 24),
                clip(&title(t), 60),
            ]
        })
        .collect();
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let indent = widths[0] + 2;
    for (i, row) in std::iter::once(&header).chain(&rows).enumerate() {
        let mut line = String::new();
        for (col, (w, cell)) in widths.iter().zip(row).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            // Counts read best right-aligned.
            if col == 2 {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            continue;
        }
        let task = &r.tasks[i - 1];
        if let Some(detail) = &task.detail {
            let _ = writeln!(out, "{}{}", " ".repeat(indent), clip(detail, 100));
        }
        if let Some(failure) = failure_cell(task) {
            let _ = writeln!(
                out,
                "{}last failure: {}",
                " ".repeat(indent),
                clip(&failure, 100)
            );
        }
    }
}

/// The report as markdown: a heading, a table of tasks, the totals as a list.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### batty report: `{}` onto `{}`\n",
        md(&r.phase, 64),
        md(&r.target, 64)
    );
    if r.tasks.is_empty() {
        out.push_str("No tasks.\n\n");
    } else {
        out.push_str("| Task | Status | Attempts | Agents | Time | Merged | Last failure |\n");
        out.push_str("|---|---|--:|---|--:|---|---|\n");
        for t in &r.tasks {
            let status = match &t.detail {
                Some(detail) if !matches!(t.status, RowStatus::InProgress) => {
                    format!("{} {}: {}", t.mark, t.status.label(), md(detail, 80))
                }
                _ => format!("{} {}", t.mark, t.status.label()),
            };
            let _ = writeln!(
                out,
                "| #{} {} | {status} | {} | {} | {} | {} | {} |",
                t.id,
                md(&title(t), 80),
                t.attempts.len(),
                md(&agents_cell(t, 60), 60),
                time_cell(t),
                t.merged
                    .as_deref()
                    .map(|s| format!("`{}`", md(short(s), 10)))
                    .unwrap_or_default(),
                failure_cell(t).map(|f| md(&f, 100)).unwrap_or_default(),
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "**Totals:** {}\n", md(&totals_line(r), 1000));
    for (what, list) in [
        ("In review", &r.totals.in_review),
        ("Blocked", &r.totals.blocked),
    ] {
        if list.is_empty() {
            continue;
        }
        let items: Vec<String> = list
            .iter()
            .map(|i| format!("#{} ({})", i.task, md(&i.reason, 120)))
            .collect();
        let _ = writeln!(out, "- {what}: {}", items.join("; "));
    }
    let _ = writeln!(
        out,
        "- Attempts: {}, {} failed",
        r.totals.attempts, r.totals.failed_attempts
    );
    let _ = writeln!(out, "- Wall time: {}", wall(r));
    let _ = writeln!(out, "- Busy time: {}", md(&busy(r, ", "), 1000));
    if !r.problems.is_empty() {
        let _ = writeln!(
            out,
            "- Skipped {} unreadable line(s) of the record",
            r.problems.len()
        );
    }
    out
}

/// `6 tasks: 3 done (2 merged on `main`, 1 with no commits), 1 in review, ...`; only the
/// counts that are not zero, except the ones people look for.
fn totals_line(r: &Report) -> String {
    let t = &r.totals;
    let mut done_parts = vec![format!("{} merged on `{}`", t.merged, r.target)];
    let mut extra = |n: usize, what: &str| {
        if n > 0 {
            done_parts.push(format!("{n} {what}"));
        }
    };
    extra(t.nothing_to_merge, "with no commits");
    extra(t.merging, "merging");
    extra(t.not_on_target.len(), "landed but not on the target");
    extra(t.merge_failed.len(), "failed to merge");
    let unmerged = t.done
        - t.merged
        - t.nothing_to_merge
        - t.merging
        - t.not_on_target.len()
        - t.merge_failed.len();
    extra(unmerged, "without a merge");
    let mut parts = vec![
        format!("{} done ({})", t.done, done_parts.join(", ")),
        format!("{} in review", t.in_review.len()),
        format!("{} blocked", t.blocked.len()),
    ];
    let mut more = |n: usize, what: &str| {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    };
    more(t.in_progress, "in progress");
    more(t.waiting_on_dependency.len(), "waiting on a dependency");
    more(t.queued, "queued again");
    parts.push(format!("{} never started", t.never_started));
    let mut line = format!("{} tasks: {}", t.tasks, parts.join(", "));
    if t.not_on_board > 0 {
        let _ = write!(line, "; {} in the record only", t.not_on_board);
    }
    line
}

fn wall(r: &Report) -> String {
    let mut out = duration(r.wall_secs);
    if r.runs > 1 {
        let _ = write!(out, " over {} runs", r.runs);
    }
    if r.crashes > 0 {
        let _ = write!(out, " ({} ended without a stop)", r.crashes);
    }
    out
}

fn busy(r: &Report, sep: &str) -> String {
    if r.agents.is_empty() {
        return "-".into();
    }
    let items: Vec<String> = r
        .agents
        .iter()
        .map(|a| {
            let mut item = format!(
                "{} {} ({} attempt{}",
                crate::text::one_line(&a.agent),
                duration(a.busy_secs),
                a.attempts,
                if a.attempts == 1 { "" } else { "s" }
            );
            if a.merged > 0 {
                let _ = write!(item, ", {} merged", a.merged);
            }
            item.push(')');
            item
        })
        .collect();
    items.join(sep)
}

fn title(t: &TaskRow) -> String {
    if t.status == RowStatus::NotOnBoard {
        "(not on the board)".into()
    } else {
        t.title.clone()
    }
}

fn time_cell(t: &TaskRow) -> String {
    if t.attempts.is_empty() {
        "-".into()
    } else {
        duration(t.secs)
    }
}

fn agents_cell(t: &TaskRow, max: usize) -> String {
    if t.agents.is_empty() {
        return "-".into();
    }
    clip(&t.agents.join(", "), max)
}

/// `attempt 2, gate red: <the error's first line>`.
fn failure_cell(t: &TaskRow) -> Option<String> {
    let f = t.last_failure.as_ref()?;
    let mut out = format!("attempt {}, {}", f.attempt, f.outcome.label());
    if let Some(error) = f.error.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        // The last non-empty line says most: a gate's tail ends with its verdict.
        let line = error
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(error);
        let _ = write!(out, ": {}", line.trim());
    }
    Some(out)
}

/// One line, control characters escaped, at most `max` characters.
fn clip(text: &str, max: usize) -> String {
    let text = crate::text::one_line(text);
    if text.chars().count() <= max {
        return text.into_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A markdown table cell: clipped, with `|` and HTML made literal.
fn md(text: &str, max: usize) -> String {
    clip(text, max)
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `45s`, `4m12s`, `1h02m`, `2d03h`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m00s"),
            (252, "4m12s"),
            (3720, "1h02m"),
            (86400 + 3 * 3600, "1d03h"),
            (-5, "0s"),
        ];
        for (secs, want) in cases {
            assert_eq!(duration(secs), want);
        }
    }

    #[test]
    fn cells_are_one_line_and_literal() {
        assert_eq!(md("a|b\n<c>\x1b[2J", 80), "a\\|b\\n&lt;c&gt;\\e[2J");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
