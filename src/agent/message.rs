//! How a task is put to an agent: one message, pasted at once, whose first line is
//! `Task #<id>: <title>` and whose last line asks for `batty task done <id>`.

use std::path::PathBuf;

use super::adapter::Adapter;

/// What a delivered task says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMessage {
    pub id: u64,
    pub title: String,
    /// The task file's markdown body (may be empty).
    pub body: String,
    /// Absolute path of the board folder (`<root>/.batty/kanban/<phase>`).
    pub board_path: PathBuf,
}

impl Adapter {
    /// The message that hands `task` to this agent.
    pub fn phrase_task(&self, task: &TaskMessage) -> String {
        phrase(task, None)
    }

    /// The message sent when the agent went idle with `task` still in progress.
    pub fn phrase_reminder(&self, task: &TaskMessage) -> String {
        phrase(
            task,
            Some(
                "Reminder: this task is still in progress on the board. Finish it, or say what blocks you.",
            ),
        )
    }
}

/// Layout (no blank line right after the first one, so line-reading agents can tell a bare
/// `Task #` line typed by a person from the start of a pasted message):
/// ```text
/// Task #<id>: <title>
/// [<reminder>]
/// [<body>
/// ]
/// Board: <board path>
/// When you are done, commit your work on the current branch, then run `batty task done <id>`.
/// ```
fn phrase(task: &TaskMessage, reminder: Option<&str>) -> String {
    let title = one_line(&clean(&task.title));
    let mut text = format!("Task #{}: {}\n", task.id, title.trim());
    if let Some(r) = reminder {
        text.push_str(r);
        text.push('\n');
    }
    let body = clean(&task.body);
    let lines: Vec<&str> = body.lines().map(str::trim_end).collect();
    let first = lines.iter().position(|l| !l.is_empty());
    let last = lines.iter().rposition(|l| !l.is_empty());
    if let (Some(first), Some(last)) = (first, last) {
        text.push_str(&lines[first..=last].join("\n"));
        text.push_str("\n\n");
    }
    text.push_str(&format!("Board: {}\n", task.board_path.display()));
    text.push_str(&format!(
        "When you are done, commit your work on the current branch, then run `batty task done {}`.",
        task.id
    ));
    text
}

/// Control characters other than newline and tab could act on the agent's terminal input.
fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn task(body: &str) -> TaskMessage {
        TaskMessage {
            id: 7,
            title: "Fix\nlogin  page".into(),
            body: body.into(),
            board_path: PathBuf::from("/repo/.batty/kanban/v1"),
        }
    }

    fn demo() -> Adapter {
        crate::agent::builtin("demo", Path::new("batty")).unwrap()
    }

    #[test]
    fn first_line_body_board_and_instruction() {
        let text = demo().phrase_task(&task("\n\nThe button does nothing.\n\nSee #3.\n\n"));
        assert_eq!(
            text,
            "Task #7: Fix login page\n\
             The button does nothing.\n\
             \n\
             See #3.\n\
             \n\
             Board: /repo/.batty/kanban/v1\n\
             When you are done, commit your work on the current branch, then run `batty task done 7`."
        );
    }

    #[test]
    fn empty_body_and_control_characters() {
        let text = demo().phrase_task(&TaskMessage {
            title: "a\u{1b}[31mb\u{7}".into(),
            ..task(" \n")
        });
        assert_eq!(text.lines().next(), Some("Task #7: a[31mb"));
        assert_eq!(text.lines().nth(1), Some("Board: /repo/.batty/kanban/v1"));
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn reminder_keeps_the_first_line() {
        let text = demo().phrase_reminder(&task("body"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Task #7: Fix login page");
        assert!(lines[1].starts_with("Reminder:"));
        assert!(text.ends_with("run `batty task done 7`."));
    }
}
