//! The demo agent: its adapter (prompt `demo> `, `[y/n]` questions, progress lines while it
//! works), and its input rules (the loop itself is `batty demo-agent`): how pasted lines
//! become one task, and how file names and contents are filled in.
//!
//! A delivered message arrives as lines: `Task #<id>: <title>`, the rest of the message, and
//! its last line naming `batty task done <id>` (see [`super::TaskMessage`]). A person can also
//! type `Task #<id>: <title>` and press Enter twice. Bracketed-paste markers, CRs and other
//! control characters are dropped; anything else outside a message is ignored.

use std::path::Path;

use regex::Regex;

use super::adapter::{Adapter, Answer, Composer, Parts, Reply, Screen};
use super::screen::Capture;

/// The demo agent, started as `<batty> demo-agent`.
pub fn adapter(batty_exe: &Path) -> Adapter {
    Adapter {
        kind: "demo".into(),
        command: String::new(),
        program: String::new(),
        interrupt: vec!["C-c".into()],
        answers: vec![Answer {
            pattern: Regex::new(r"^Continue\? \[y/n\]").expect("a tested pattern"),
            reply: Reply::Text("y".into()),
        }],
        unattended: false,
        enter_retries: true,
        parts: Parts {
            base: format!(
                "{} demo-agent",
                crate::proc::shell_word(&batty_exe.to_string_lossy())
            ),
            ..Parts::default()
        },
        builtin_answers: 1,
        read: Some(read),
        patterns: Default::default(),
    }
}

const PROMPT: &str = "demo>";

fn read(c: &Capture) -> Screen {
    let Some(last) = c.lines.last() else {
        return Screen::Unknown;
    };
    if last.ends_with("[y/n]") {
        return Screen::Question(last.clone());
    }
    if let Some(typed) = last.strip_prefix(PROMPT) {
        let typed = typed.trim_start();
        return Screen::Ready {
            composer: if typed.is_empty() {
                Composer::Empty
            } else {
                Composer::Text(typed.to_owned())
            },
        };
    }
    let working = ["working on #", "step ", "committed #", "rebasing onto "];
    if working.iter().any(|w| last.starts_with(w)) {
        return Screen::Busy;
    }
    Screen::Unknown
}

/// A task read from input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoTask {
    pub id: u64,
    pub title: String,
    /// The lines after the first one.
    pub body: Vec<String>,
}

/// What one input line meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A whole task was read.
    Task(DemoTask),
    /// `exit` at the prompt.
    Exit,
    /// Part of a message; more lines are expected.
    Reading,
    /// Not for the agent (an empty line, chatter): it shows its prompt again.
    Ignored,
}

/// Collects the lines of one task message.
#[derive(Debug, Default)]
pub struct Inbox {
    pending: Option<DemoTask>,
}

impl Inbox {
    pub fn new() -> Inbox {
        Inbox::default()
    }

    /// True while in the middle of a message.
    pub fn reading(&self) -> bool {
        self.pending.is_some()
    }

    /// The id of the task whose message is being read.
    pub fn reading_task(&self) -> Option<u64> {
        self.pending.as_ref().map(|t| t.id)
    }

    pub fn push_line(&mut self, raw: &str) -> Input {
        let line = clean_line(raw);
        if let Some(task) = &mut self.pending {
            let marker = format!("task done {}", task.id);
            // The message's last line ends asking for `batty task done <id>`; a note in the
            // middle may name the command too ("... then run `batty task done 3` again").
            let last = line
                .trim_end_matches(|c: char| c == '`' || c == '.' || c.is_whitespace())
                .ends_with(&marker);
            if last || (line.trim().is_empty() && task.body.is_empty()) {
                if !line.trim().is_empty() {
                    task.body.push(line);
                }
                let task = self
                    .pending
                    .take()
                    .expect("pending was just matched as Some");
                return Input::Task(task);
            }
            task.body.push(line);
            return Input::Reading;
        }
        let text = line.trim();
        if text == "exit" {
            return Input::Exit;
        }
        match parse_task_line(text) {
            Some((id, title)) => {
                self.pending = Some(DemoTask {
                    id,
                    title,
                    body: Vec::new(),
                });
                Input::Reading
            }
            None => Input::Ignored,
        }
    }
}

/// `Task #<id>: <title>` anywhere in the line (a prompt may precede it in an echo).
pub fn parse_task_line(line: &str) -> Option<(u64, String)> {
    let start = line.find("Task #")?;
    let rest = &line[start + "Task #".len()..];
    let (id, title) = rest.split_once(':')?;
    let id: u64 = id.trim().parse().ok()?;
    Some((id, title.trim().to_owned()))
}

/// Drops bracketed-paste markers and control characters (other than tab).
pub fn clean_line(raw: &str) -> String {
    raw.replace("\u{1b}[200~", "")
        .replace("\u{1b}[201~", "")
        .chars()
        .filter(|&c| c == '\t' || !c.is_control())
        .collect()
}

/// Fills `{id}` and `{title}` in a file name or content template.
pub fn fill(template: &str, task: &DemoTask) -> String {
    template
        .replace("{id}", &task.id.to_string())
        .replace("{title}", &task.title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screens() {
        let demo = adapter(Path::new("batty"));
        let empty = Screen::Ready {
            composer: Composer::Empty,
        };
        assert_eq!(demo.classify("demo> \n\n"), empty);
        assert_eq!(
            demo.classify("demo> Task #1: x"),
            Screen::Ready {
                composer: Composer::Text("Task #1: x".into())
            }
        );
        assert_eq!(
            demo.classify("demo> Task #1: x\nworking on #1\n"),
            Screen::Busy
        );
        assert_eq!(demo.classify("Task #1: x\nBoard: /b"), Screen::Unknown);
        let q = demo.classify("working on #1\nContinue? [y/n]\n");
        assert_eq!(q, Screen::Question("Continue? [y/n]".into()));
        assert_eq!(
            demo.answer_for("Continue? [y/n]"),
            Some(&Reply::Text("y".into()))
        );
        assert_eq!(demo.answer_for("Delete the repo? [y/n]"), None);
    }

    fn task(inbox: &mut Inbox, lines: &[&str]) -> Vec<Input> {
        lines.iter().map(|l| inbox.push_line(l)).collect()
    }

    #[test]
    fn pasted_message_is_one_task() {
        let mut inbox = Inbox::new();
        let got = task(
            &mut inbox,
            &[
                "\u{1b}[200~Task #12: Add a login page\r",
                "The button does nothing.",
                "",
                "Board: /r/.batty/kanban/v1",
                "When you are done, commit ..., then run `batty task done 12`.\u{1b}[201~",
            ],
        );
        assert_eq!(
            got[..4],
            [
                Input::Reading,
                Input::Reading,
                Input::Reading,
                Input::Reading
            ]
        );
        let Input::Task(t) = &got[4] else {
            panic!("{got:?}")
        };
        assert_eq!(t.id, 12);
        assert_eq!(t.title, "Add a login page");
        assert_eq!(t.body.len(), 4);
        assert!(!inbox.reading());
        // The Enter after the paste is an empty line at the prompt.
        assert_eq!(inbox.push_line(""), Input::Ignored);
    }

    #[test]
    fn a_note_naming_the_done_command_does_not_end_the_message() {
        let mut inbox = Inbox::new();
        let got = task(
            &mut inbox,
            &[
                "Task #2: beta",
                "Task #2 could not be merged: ... then run `batty task done 2` again.",
                "",
                "Board: /r/.batty/kanban/v1",
                "When you are done, commit ..., then run `batty task done 2`.",
            ],
        );
        assert!(got[..4].iter().all(|i| *i == Input::Reading), "{got:?}");
        let Input::Task(t) = &got[4] else {
            panic!("{got:?}")
        };
        assert_eq!(t.body.len(), 4);
        assert!(!inbox.reading());
    }

    #[test]
    fn typed_task_ends_at_an_empty_line() {
        let mut inbox = Inbox::new();
        assert_eq!(inbox.push_line("Task #3: by hand"), Input::Reading);
        assert!(inbox.reading());
        assert_eq!(
            inbox.push_line(""),
            Input::Task(DemoTask {
                id: 3,
                title: "by hand".into(),
                body: vec![]
            })
        );
    }

    #[test]
    fn odd_input_is_ignored() {
        let mut inbox = Inbox::new();
        for line in [
            "",
            "hello",
            "Task #: x",
            "Task #99999999999999999999999: x",
            "Task #1 no colon",
            "\u{0}\u{7f}",
        ] {
            assert_eq!(inbox.push_line(line), Input::Ignored, "{line:?}");
        }
        assert_eq!(inbox.push_line("  exit "), Input::Exit);
        assert_eq!(parse_task_line("demo> Task #4: t"), Some((4, "t".into())));
    }

    #[test]
    fn templates() {
        let t = DemoTask {
            id: 5,
            title: "T".into(),
            body: vec![],
        };
        assert_eq!(fill("demo/task-{id}.txt", &t), "demo/task-5.txt");
        assert_eq!(fill("{title} ({id})\n", &t), "T (5)\n");
    }
}
