//! `batty merge`: show a phase's merge queue, or put a failed task back in line.

use crate::merge::{MergeQueue, queue_file};

/// Show the merge queue of a phase (waiting, merging, failed and recently merged tasks), or
/// put a failed task back in line with `--retry`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The phase whose queue to show.
    pub phase: String,
    /// List the queue (what happens when no other option is given).
    #[arg(long, conflicts_with = "retry")]
    pub list: bool,
    /// Put task ID back in line with a fresh retry budget; the supervisor attempts it next.
    #[arg(long, value_name = "ID")]
    pub retry: Option<u64>,
}

pub fn run(args: Args) -> crate::error::Result<()> {
    let project = super::project()?;
    super::known_phase(&project, &args.phase)?;
    let path = queue_file(&project, &args.phase);
    if let Some(task) = args.retry {
        MergeQueue::update(&path, |q| q.retry(task))?;
        println!(
            "task #{task} is back in the merge queue of `{}`",
            args.phase
        );
        return Ok(());
    }
    let queue = MergeQueue::load(&path)?;
    print!("{}", render(&queue, &args.phase));
    Ok(())
}

/// The `--list` table.
fn render(queue: &MergeQueue, phase: &str) -> String {
    if queue.list().is_empty() {
        return format!("merge queue of `{phase}` is empty\n");
    }
    let rows: Vec<[String; 5]> = queue
        .list()
        .iter()
        .map(|e| {
            [
                format!("#{}", e.task),
                e.agent.clone(),
                e.state.as_str().to_owned(),
                e.attempts.to_string(),
                e.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["TASK", "AGENT", "STATE", "FAILS", "REASON"].map(str::to_owned);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (w, cell) in widths.iter().zip(row) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        line.push_str(&crate::config::one_line(&row[4]));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut q = MergeQueue::default();
        q.push(3, "brave-otter", "batty/v1/brave-otter", "a", "b");
        q.push(12, "ox", "batty/v1/ox", "a", "c");
        q.mark_merging(3).unwrap();
        q.mark_failed(3, "conflict in `a.txt`".into()).unwrap();
        assert_eq!(
            render(&q, "v1"),
            "TASK  AGENT        STATE    FAILS  REASON\n\
             #3    brave-otter  failed   1      conflict in `a.txt`\n\
             #12   ox           waiting  0\n"
        );
        assert_eq!(
            render(&MergeQueue::default(), "v1"),
            "merge queue of `v1` is empty\n"
        );
    }
}
