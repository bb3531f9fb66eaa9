//! Task file names as kanban-md makes them: `NNN-<slug>.md`.

/// Longest slug, in bytes; a longer one is cut back to the last `-` within the limit.
const MAX_SLUG: usize = 50;

/// Lowercase, every run of characters outside `[a-z0-9]` becomes one `-`, trimmed, and cut at
/// a word boundary when longer than 50 bytes.
pub fn slug(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.len() <= MAX_SLUG {
        return trimmed.to_owned();
    }
    // The slug is ASCII, so byte positions are character positions.
    let head = &trimmed[..MAX_SLUG];
    if trimmed.as_bytes()[MAX_SLUG] == b'-' {
        return head.to_owned();
    }
    match head.rfind('-') {
        Some(cut) => head[..cut].to_owned(),
        None => head.to_owned(),
    }
}

/// `001-fix-login.md`: the id padded to three digits, then the slug.
pub fn file_name(id: u64, title: &str) -> String {
    let slug = slug(title);
    if slug.is_empty() {
        format!("{id:03}.md")
    } else {
        format!("{id:03}-{slug}.md")
    }
}

/// The id in a task file name (`042-x.md` -> 42), as kanban-md finds files by id.
pub fn id_from_file_name(name: &str) -> Option<u64> {
    let digits = name.split(['-', '.']).next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_like_kanban_md() {
        let cases = [
            ("Set up database", "set-up-database"),
            ("Fix Login Redirect Bug", "fix-login-redirect-bug"),
            ("Hello, World!", "hello-world"),
            ("  leading spaces  ", "leading-spaces"),
            ("special!!chars##here", "special-chars-here"),
            ("a-already-slugged", "a-already-slugged"),
            (
                "This is a very long title that should be truncated at a word boundary to fit within the limit",
                "this-is-a-very-long-title-that-should-be-truncated",
            ),
            (
                "A title that gets cut mid word abcdefghijklmnopqrst and more",
                "a-title-that-gets-cut-mid-word",
            ),
            ("Café naïve", "caf-na-ve"),
            ("", ""),
        ];
        for (title, want) in cases {
            assert_eq!(slug(title), want, "title {title:?}");
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name(1, "Set up database"), "001-set-up-database.md");
        assert_eq!(file_name(1000, "x"), "1000-x.md");
        assert_eq!(id_from_file_name("042-fix.md"), Some(42));
        assert_eq!(id_from_file_name("1000-x.md"), Some(1000));
        assert_eq!(id_from_file_name("notes.md"), None);
    }
}
