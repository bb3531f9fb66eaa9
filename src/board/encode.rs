//! Writing a task file as kanban-md does: `---`, the known keys in kanban-md's order with
//! yaml.v3's layout (4-space indent, its quoting), unknown keys after them, `---`, a blank line
//! and the body. A task read from disk keeps the exact text of every key whose value did not
//! change, of unknown keys and comments, and of the body when it did not change.

use super::frontmatter::Field;
use super::task::Task;
use super::time::format_rfc3339_nano;
use super::yaml::push_scalar;

/// Indentation yaml.v3 uses as kanban-md configures it.
const INDENT: usize = 4;

/// The whole file text for `task`.
pub fn render(task: &Task) -> String {
    let mut out = String::with_capacity(256 + task.body.len());
    out.push_str("---\n");
    let source = task.source.as_ref();
    let layout = source.and_then(|s| s.layout.as_ref());
    for field in Field::ALL {
        let new = field_text(task, field);
        let chunk = layout.and_then(|l| l.chunks.iter().find(|c| c.key == field.name()));
        let unchanged = source.is_some_and(|s| field_text(&s.original, field) == new);
        match (new, chunk) {
            (_, Some(c)) if unchanged => {
                out.push_str(&c.leading);
                out.push_str(&c.text);
            }
            (Some(text), Some(c)) => {
                out.push_str(&c.leading);
                out.push_str(&text);
            }
            (Some(text), None) => out.push_str(&text),
            (None, Some(c)) => out.push_str(&c.leading),
            (None, None) => {}
        }
    }
    if let Some(layout) = layout {
        for c in layout
            .chunks
            .iter()
            .filter(|c| Field::from_name(&c.key).is_none())
        {
            out.push_str(&c.leading);
            out.push_str(&c.text);
        }
        out.push_str(&layout.trailer);
    }
    out.push_str("---\n");
    match source {
        Some(s) if s.original.body == task.body => out.push_str(&s.tail),
        _ if task.body.is_empty() => {}
        _ => {
            out.push('\n');
            out.push_str(&task.body);
            if !task.body.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// The text of one key as kanban-md writes it (`None` when it leaves the key out).
pub fn field_text(task: &Task, field: Field) -> Option<String> {
    let name = field.name();
    let scalar = |value: &str| {
        let mut out = format!("{name}: ");
        push_scalar(&mut out, value, INDENT);
        out.push('\n');
        out
    };
    let optional = |value: &Option<String>| value.as_deref().filter(|v| !v.is_empty()).map(scalar);
    let time = |value: &Option<super::time::Timestamp>| {
        value
            .as_ref()
            .map(|t| format!("{name}: {}\n", format_rfc3339_nano(t)))
    };
    let list = |items: Vec<String>, quote: bool| {
        if items.is_empty() {
            return None;
        }
        let mut out = format!("{name}:\n");
        for item in items {
            out.push_str("    - ");
            if quote {
                push_scalar(&mut out, &item, 2 * INDENT);
            } else {
                out.push_str(&item);
            }
            out.push('\n');
        }
        Some(out)
    };
    match field {
        Field::Id => Some(format!("id: {}\n", task.id)),
        Field::Title => Some(scalar(&task.title)),
        Field::Status => Some(scalar(&task.status)),
        Field::Priority => Some(scalar(&task.priority)),
        Field::Created => time(&task.created),
        Field::Updated => time(&task.updated),
        Field::Started => time(&task.started),
        Field::Completed => time(&task.completed),
        Field::Assignee => optional(&task.assignee),
        Field::Tags => list(task.tags.clone(), true),
        Field::Due => task
            .due
            .map(|d| format!("due: \"{}\"\n", d.format("%Y-%m-%d"))),
        Field::Estimate => optional(&task.estimate),
        Field::Parent => task.parent.map(|p| format!("parent: {p}\n")),
        Field::DependsOn => list(task.depends_on.iter().map(u64::to_string).collect(), false),
        Field::Blocked => task.blocked.then(|| "blocked: true\n".to_owned()),
        Field::BlockReason => optional(&task.block_reason),
        Field::ClaimedBy => optional(&task.claimed_by),
        Field::ClaimedAt => time(&task.claimed_at),
        Field::Class => optional(&task.class),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const KANBAN_MD_FILE: &str = "---\nid: 12\ntitle: 'Fix: login'\nstatus: in-progress\n\
        priority: high\ncreated: 2026-02-01T12:00:00.123+02:00\nupdated: 2026-02-01T12:00:00Z\n\
        tags:\n    - auth\n    - \"2026\"\ndue: \"2026-03-01\"\ndepends_on:\n    - 3\n\
        claimed_by: brave-otter\nclaimed_at: 2026-02-01T13:00:00Z\nclass: standard\n---\n\n\
        Some body.\n";

    #[test]
    fn fresh_render_matches_kanban_md_bytes() {
        let mut t = Task::parse(Path::new("x.md"), KANBAN_MD_FILE, false).unwrap();
        assert_eq!(render(&t), KANBAN_MD_FILE);
        t.body = "multi\nline".into();
        t.title = "two\nlines".into();
        let text = render(&t);
        assert!(text.contains("title: |-\n    two\n    lines\n"), "{text}");
        assert!(text.ends_with("---\n\nmulti\nline\n"), "{text}");
    }

    #[test]
    fn rewrite_keeps_untouched_text() {
        let file = "---\n# why this task exists\nid: 3\ntitle: x\nstatus: todo\npriority: low\n\
                    tags: [a, b]\nestimate: 1h # rough\nnotes:\n  owner: sam\n# end\n---\nBody right here\n";
        let mut t = Task::parse(Path::new("x.md"), file, true).unwrap();
        assert_eq!(render(&t), file);
        t.status = "done".into();
        let text = render(&t);
        assert_eq!(text, file.replace("status: todo", "status: done"));
    }
}
