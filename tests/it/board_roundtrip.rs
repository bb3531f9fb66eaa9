//! Round trips of task files: kanban-md-written fixtures come back byte for byte, and for any
//! task, parse(write(task)) is the task and write(parse(write(task))) is the same bytes.

use std::path::{Path, PathBuf};

use batty::board::{Task, parse_task, render_task};
use chrono::{FixedOffset, NaiveDate, TimeZone};
use proptest::prelude::*;

fn fixture(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/board/tasks")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

#[test]
fn kanban_md_fixtures_render_byte_identical_from_scratch() {
    for name in [
        "001-set-up-database.md",
        "002-design-api.md",
        "003-auth-flow.md",
        "004-blocked-task.md",
    ] {
        let (path, text) = fixture(name);
        let mut task = parse_task(&path, &text).unwrap();
        task.clear_source();
        assert_eq!(render_task(&task), text, "{name}");
    }
}

#[test]
fn every_readable_fixture_renders_byte_identical_with_its_layout() {
    for name in [
        "001-set-up-database.md",
        "002-design-api.md",
        "003-auth-flow.md",
        "004-blocked-task.md",
        "005-multi-line-title.md",
        "006-hand-written.md",
    ] {
        let (path, text) = fixture(name);
        let task = parse_task(&path, &text).unwrap();
        assert_eq!(render_task(&task), text, "{name}");
    }
}

#[test]
fn a_changed_field_changes_only_its_line() {
    let (path, text) = fixture("006-hand-written.md");
    let mut task = parse_task(&path, &text).unwrap();
    assert_eq!(task.title, "123");
    assert_eq!(task.tags, ["ui", "needs design"]);
    task.priority = "high".into();
    assert_eq!(
        render_task(&task),
        text.replace("priority: medium", "priority: high")
    );
}

#[test]
fn unreadable_fixtures_say_where_and_why() {
    let (path, text) = fixture("007-broken-yaml.md");
    let problem = parse_task(&path, &text).unwrap_err();
    let shown = problem.to_string();
    assert!(shown.contains("007-broken-yaml.md:"), "{shown}");
    assert!(problem.line.is_some_and(|l| l >= 5), "{shown}");
    let (path, text) = fixture("008-no-front-matter.md");
    let problem = parse_task(&path, &text).unwrap_err();
    assert_eq!(problem.line, Some(1));
}

// ---- property tests ----

fn text_strategy() -> impl Strategy<Value = String> {
    // Characters YAML treats specially, plus ordinary text and some unicode.
    let pieces = prop::sample::select(vec![
        "a",
        "Z",
        "0",
        "7",
        " ",
        "  ",
        "\n",
        "\t",
        ":",
        ": ",
        "#",
        " #",
        "-",
        "- ",
        "'",
        "\"",
        "\\",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&",
        "*",
        "!",
        "|",
        ">",
        "%",
        "@",
        "`",
        "?",
        "~",
        "yes",
        "null",
        "true",
        "1.5",
        "0x1F",
        "1:20",
        "2026-02-01",
        "é",
        "日本",
        "\u{85}",
        "\u{2028}",
        "\r",
        "\u{7}",
        "\u{feff}",
        "---",
        "...",
        "word",
    ]);
    prop::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
}

fn non_blank() -> impl Strategy<Value = String> {
    text_strategy().prop_filter("required fields are not blank", |s| !s.trim().is_empty())
}

fn timestamp() -> impl Strategy<Value = chrono::DateTime<FixedOffset>> {
    (
        0i64..4_000_000_000,
        prop::sample::select(vec![0u32, 500_000_000, 123_456_789, 1]),
        prop::sample::select(vec![0i32, 3600, -7 * 3600, 5 * 3600 + 1800]),
    )
        .prop_map(|(secs, nanos, offset)| {
            FixedOffset::east_opt(offset)
                .unwrap()
                .timestamp_opt(secs, nanos)
                .unwrap()
        })
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text_strategy().prop_filter("empty is absent", |s| !s.is_empty()))
}

fn body() -> impl Strategy<Value = String> {
    // kanban-md reads the body without leading newlines and writes it ending in a newline.
    text_strategy().prop_map(|b| {
        let b = b.trim_start_matches('\n').to_owned();
        if b.is_empty() || b.ends_with('\n') {
            b
        } else {
            b + "\n"
        }
    })
}

prop_compose! {
    fn task()(
        id in 1u64..100_000,
        title in non_blank(),
        status in non_blank(),
        priority in text_strategy(),
        times in prop::collection::vec(prop::option::of(timestamp()), 5),
        assignee in optional_text(),
        tags in prop::collection::vec(text_strategy(), 0..4),
        due in prop::option::of((2000i32..2100, 1u32..13, 1u32..29)),
        estimate in optional_text(),
        parent in prop::option::of(1u64..1000),
        depends_on in prop::collection::vec(1u64..1000, 0..4),
        blocked in any::<bool>(),
        block_reason in optional_text(),
        claimed_by in optional_text(),
        class in optional_text(),
        body in body(),
    ) -> Task {
        let mut t = parse_task(Path::new("t.md"), "---\nid: 1\ntitle: x\nstatus: s\n---\n").unwrap();
        t.clear_source();
        t.id = id;
        t.title = title;
        t.status = status;
        t.priority = priority;
        t.created = times[0];
        t.updated = times[1];
        t.started = times[2];
        t.completed = times[3];
        t.claimed_at = times[4];
        t.assignee = assignee;
        t.tags = tags;
        t.due = due.map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap());
        t.estimate = estimate;
        t.parent = parent;
        t.depends_on = depends_on;
        t.blocked = blocked;
        t.block_reason = block_reason;
        t.claimed_by = claimed_by;
        t.class = class;
        t.body = body;
        t
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_after_write_is_identity(task in task()) {
        let text = render_task(&task);
        let mut back = parse_task(Path::new("t.md"), &text)
            .map_err(|p| TestCaseError::fail(format!("{p}\n{text}")))?;
        back.clear_source();
        prop_assert_eq!(&back, &task, "text:\n{}", text);
    }

    #[test]
    fn write_after_parse_is_byte_identical(task in task()) {
        let text = render_task(&task);
        let mut back = parse_task(Path::new("t.md"), &text).unwrap();
        prop_assert_eq!(render_task(&back), text.clone(), "with layout");
        back.clear_source();
        prop_assert_eq!(render_task(&back), text, "from scratch");
    }
}
