//! A captured screen as lines of text, read from `capture-pane -p` or `capture-pane -p -e`
//! (with attributes): escape sequences are dropped, and which characters were drawn dim is
//! kept, since agents draw the placeholder of an empty composer dimmed.

use std::ops::Range;

/// The screen's lines, trailing spaces and trailing empty lines dropped.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub lines: Vec<String>,
    /// Byte ranges of each line drawn dim; empty for a plain capture.
    dim: Vec<Vec<Range<usize>>>,
    /// Whether the capture carried attributes at all.
    pub styled: bool,
    /// The row the terminal's cursor is on (0 is the top line), when the capture said.
    pub cursor_row: Option<usize>,
    /// The last raw line with anything on it, escapes included, when that line holds only
    /// a colour reset (`\e[39m`, `\e[0m`): the cell a full-screen prompt left behind when it
    /// finished drawing and moved the cursor below its input. Its index may be past
    /// [`Capture::lines`] (trailing empty lines are dropped).
    pub trailing_reset: Option<usize>,
}

impl Capture {
    pub fn parse(raw: &str) -> Capture {
        let mut lines = Vec::new();
        let mut dim = Vec::new();
        let mut styled = false;
        // SGR state carries over line ends, as the terminal's does.
        let mut dimmed = false;
        let mut trailing_reset = None;
        for (index, raw_line) in raw.split('\n').enumerate() {
            if !raw_line.is_empty() {
                trailing_reset = is_bare_reset(raw_line).then_some(index);
            }
            let mut text = String::new();
            let mut ranges: Vec<Range<usize>> = Vec::new();
            let mut chars = raw_line.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    styled = true;
                    match chars.peek() {
                        Some('[') => {
                            chars.next();
                            let mut params = String::new();
                            let mut end = None;
                            for c in chars.by_ref() {
                                if ('\u{40}'..='\u{7e}').contains(&c) {
                                    end = Some(c);
                                    break;
                                }
                                params.push(c);
                            }
                            if end == Some('m') {
                                dimmed = apply_sgr(&params, dimmed);
                            }
                        }
                        Some(']') => {
                            // OSC: up to BEL or ESC \.
                            for c in chars.by_ref() {
                                if c == '\u{7}' || c == '\\' {
                                    break;
                                }
                            }
                        }
                        _ => {
                            chars.next();
                        }
                    }
                    continue;
                }
                if c == '\r' || (c.is_control() && c != '\t') {
                    continue;
                }
                let start = text.len();
                text.push(c);
                if dimmed && !c.is_whitespace() {
                    match ranges.last_mut() {
                        Some(r) if r.end == start => r.end = text.len(),
                        _ => ranges.push(start..text.len()),
                    }
                }
            }
            let trimmed = text.trim_end().len();
            text.truncate(trimmed);
            ranges.retain(|r| r.start < trimmed);
            lines.push(text);
            dim.push(ranges);
        }
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
            dim.pop();
        }
        Capture {
            lines,
            dim,
            styled,
            cursor_row: None,
            trailing_reset,
        }
    }

    /// Whether every visible character of `line[range]` was drawn dim.
    pub fn all_dim(&self, line: usize, range: Range<usize>) -> bool {
        let Some(text) = self.lines.get(line) else {
            return false;
        };
        let ranges = &self.dim[line];
        text[range.clone()].char_indices().all(|(i, c)| {
            let at = range.start + i;
            c.is_whitespace() || ranges.iter().any(|r| r.contains(&at))
        })
    }

    /// The index of the last line matching `f`, looking no further up than `within` lines.
    pub fn last_index(&self, within: usize, f: impl Fn(&str) -> bool) -> Option<usize> {
        let from = self.lines.len().saturating_sub(within);
        (from..self.lines.len()).rev().find(|&i| f(&self.lines[i]))
    }

    /// Lines `range` joined with `\n`.
    pub fn text(&self, range: Range<usize>) -> String {
        self.lines[range].join("\n")
    }
}

/// A raw line that is nothing but SGR sequences resetting colours or attributes, from the
/// first column on (no character drawn, not even a space).
fn is_bare_reset(raw: &str) -> bool {
    let mut rest = raw;
    let mut any = false;
    while let Some(seq) = rest.strip_prefix("\u{1b}[") {
        let Some(end) = seq.find('m') else {
            return false;
        };
        let params = &seq[..end];
        if !params
            .split(';')
            .all(|p| matches!(p, "" | "0" | "39" | "49"))
        {
            return false;
        }
        any = true;
        rest = &seq[end + 1..];
    }
    any && rest.is_empty()
}

/// Whether dim is on after an SGR sequence with these parameters.
fn apply_sgr(params: &str, mut dimmed: bool) -> bool {
    if params.is_empty() {
        return false;
    }
    let mut it = params.split([';', ':']);
    while let Some(p) = it.next() {
        match p {
            "0" | "" => dimmed = false,
            "2" => dimmed = true,
            "22" => dimmed = false,
            // Colours carry their own numbers: skip them so `38;5;2` is not read as dim.
            "38" | "48" | "58" => match it.next() {
                Some("5") => {
                    it.next();
                }
                Some("2") => {
                    it.next();
                    it.next();
                    it.next();
                }
                _ => {}
            },
            _ => {}
        }
    }
    dimmed
}

/// A horizontal rule as agents draw them around their composer: only `─`, at least 20.
pub fn is_rule(line: &str) -> bool {
    let t = line.trim();
    t.chars().count() >= 20 && t.chars().all(|c| c == '─')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_styled_lines() {
        let c = Capture::parse("a  \n\u{1b}[1m› \u{1b}[0m\u{1b}[2mAsk Codex\n\u{1b}[0mx\n\n\n");
        assert_eq!(c.lines, ["a", "› Ask Codex", "x"]);
        assert!(c.styled);
        assert!(c.all_dim(1, 4..c.lines[1].len()));
        assert!(!c.all_dim(1, 0..c.lines[1].len()));
        assert!(!c.all_dim(2, 0..1));
        let plain = Capture::parse("› Ask Codex\n");
        assert!(!plain.styled);
        assert!(!plain.all_dim(0, 4..plain.lines[0].len()));
    }

    #[test]
    fn colour_numbers_are_not_dim() {
        let c = Capture::parse("\u{1b}[38;5;2mgreen\u{1b}[39m \u{1b}[2;38;5;246mdim\u{1b}[22m no");
        assert_eq!(c.lines, ["green dim no"]);
        assert!(!c.all_dim(0, 0..5));
        assert!(c.all_dim(0, 6..9));
        assert!(!c.all_dim(0, 10..12));
    }

    #[test]
    fn a_bare_reset_left_last() {
        let c = Capture::parse("> hi\n\n\u{1b}[39m\n\n");
        assert_eq!(c.lines, ["> hi"]);
        assert_eq!(c.trailing_reset, Some(2));
        // A space drawn first, another colour, or anything after it: not a bare reset.
        for raw in [
            "> hi\n \u{1b}[39m\n",
            "> hi\n\u{1b}[38;5;40m\n",
            "> hi\n\u{1b}[39m\n\u{1b}[38;5;40m\n",
            "> hi\n\u{1b}[39mx\n",
            "> hi\n",
        ] {
            assert_eq!(Capture::parse(raw).trailing_reset, None, "{raw:?}");
        }
    }

    #[test]
    fn rules() {
        assert!(is_rule(&"─".repeat(40)));
        assert!(!is_rule("──── x ────────────────────────"));
        assert!(!is_rule(&"╌".repeat(40)));
    }
}
