//! Streaming removal of ANSI/terminal control sequences from pty bytes, keeping plain text and
//! line breaks. State survives chunk boundaries, so a sequence split across two reads of a log
//! is still removed whole.
//!
//! Written as a small state machine rather than with `vte` or `strip-ansi-escapes`: we need a
//! streaming stripper with our own line rules (lone CR becomes a line break, backspace erases),
//! and the hot path is a scan for the next special byte with whole runs copied at once.

/// Where the stripper is inside a control sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    /// After ESC.
    Escape,
    /// After ESC and intermediate bytes (0x20..=0x2F), e.g. `ESC ( B`: one final byte follows.
    EscapeIntermediate,
    /// Inside `ESC [` ... final byte.
    Csi,
    /// Inside a string (OSC, DCS, SOS, PM, APC) ended by BEL (OSC only) or `ESC \`.
    Str,
    /// ESC seen inside a string: `\` ends it, anything else is more string.
    StrEscape,
}

/// A streaming ANSI stripper. Feed it chunks in order; it writes plain text to `out`.
#[derive(Debug, Clone, Default)]
pub struct Stripper {
    state: State,
    /// The previous byte written was a line break made from a CR, so a following LF is part of
    /// the same CRLF and is dropped.
    after_cr: bool,
}

impl Stripper {
    pub fn new() -> Stripper {
        Stripper::default()
    }

    /// Strips one chunk, appending plain bytes to `out`. CRLF and lone CR become `\n`;
    /// backspace removes the previous byte when it is still in `out` (not across chunks);
    /// other control bytes except TAB are dropped.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Ground {
                // Fast path: copy the run of plain bytes up to the next special one.
                let run = input[i..]
                    .iter()
                    .position(|&b| b < 0x20 || b == 0x7f)
                    .unwrap_or(input.len() - i);
                if run > 0 {
                    out.extend_from_slice(&input[i..i + run]);
                    self.after_cr = false;
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            self.step(b, out);
        }
    }

    /// Convenience for whole inputs: a fresh stripper over `input`, lossily decoded.
    pub fn strip_str(input: &[u8]) -> String {
        let mut out = Vec::with_capacity(input.len());
        Stripper::new().feed(input, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn step(&mut self, b: u8, out: &mut Vec<u8>) {
        const ESC: u8 = 0x1b;
        match self.state {
            State::Ground => match b {
                ESC => self.state = State::Escape,
                b'\n' => {
                    if !self.after_cr {
                        out.push(b'\n');
                    }
                    self.after_cr = false;
                }
                b'\r' => {
                    out.push(b'\n');
                    self.after_cr = true;
                }
                b'\t' => {
                    out.push(b'\t');
                    self.after_cr = false;
                }
                0x08 => {
                    if let Some(&last) = out.last()
                        && last != b'\n'
                    {
                        out.pop();
                        // Drop the rest of a UTF-8 character, not just its last byte.
                        if last >= 0x80 {
                            while let Some(&prev) = out.last() {
                                out.pop();
                                if prev & 0xC0 != 0x80 {
                                    break;
                                }
                            }
                        }
                    }
                }
                _ => {} // BEL, other C0 controls, DEL: nothing visible.
            },
            State::Escape if b < 0x20 && b != ESC && b != 0x18 && b != 0x1a => {
                // A control inside an escape is carried out, as a terminal does.
                self.state = State::Ground;
                self.step(b, out);
            }
            State::Escape => {
                self.state = match b {
                    b'[' => State::Csi,
                    b']' | b'P' | b'X' | b'^' | b'_' => State::Str,
                    0x20..=0x2f => State::EscapeIntermediate,
                    ESC => State::Escape,
                    // CAN/SUB abort; any other byte (0x30..=0x7e or a control) ends a two-byte
                    // sequence such as `ESC 7` or `ESC M`.
                    _ => State::Ground,
                };
            }
            State::EscapeIntermediate => {
                if !(0x20..=0x2f).contains(&b) {
                    self.state = if b == ESC {
                        State::Escape
                    } else {
                        State::Ground
                    };
                }
            }
            State::Csi => match b {
                0x40..=0x7e => {
                    // Cursor-forward is how TUIs draw runs of spaces; keep words apart.
                    if b == b'C' {
                        out.push(b' ');
                    }
                    self.state = State::Ground;
                }
                ESC => self.state = State::Escape,
                0x18 | 0x1a => self.state = State::Ground,
                _ => {} // parameters, intermediates, stray controls
            },
            State::Str => match b {
                0x07 => self.state = State::Ground,
                ESC => self.state = State::StrEscape,
                0x18 | 0x1a => self.state = State::Ground,
                _ => {}
            },
            State::StrEscape => {
                self.state = match b {
                    b'\\' => State::Ground,
                    ESC => State::StrEscape,
                    _ => State::Str,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(input: &str) -> String {
        Stripper::strip_str(input.as_bytes())
    }

    /// Feeds `input` split at every possible point and checks the result never changes.
    fn strip_split_everywhere(input: &[u8]) -> String {
        let whole = Stripper::strip_str(input);
        for cut in 0..=input.len() {
            let mut s = Stripper::new();
            let mut out = Vec::new();
            s.feed(&input[..cut], &mut out);
            s.feed(&input[cut..], &mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                whole,
                "split at {cut} of {input:?}"
            );
        }
        whole
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(
            strip("hello world\nsecond\tline"),
            "hello world\nsecond\tline"
        );
        assert_eq!(strip("héllo → ✓"), "héllo → ✓");
    }

    #[test]
    fn csi_sequences_are_removed() {
        assert_eq!(strip("\x1b[1;31mred\x1b[0m plain"), "red plain");
        assert_eq!(strip("\x1b[2J\x1b[H\x1b[?25lhidden"), "hidden");
        assert_eq!(strip("\x1b[?2004hprompt> "), "prompt> ");
        assert_eq!(strip("a\x1b[38;2;255;0;0mb"), "ab");
    }

    #[test]
    fn cursor_forward_becomes_a_space() {
        assert_eq!(strip("Ask\x1b[1CCodex"), "Ask Codex");
    }

    #[test]
    fn osc_and_other_strings_are_removed() {
        assert_eq!(strip("\x1b]0;window title\x07text"), "text");
        assert_eq!(strip("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"), "link");
        assert_eq!(strip("\x1bPq#0;2;0;0;0\x1b\\after"), "after");
        assert_eq!(strip("\x1b_apc\x1b\\z"), "z");
    }

    #[test]
    fn charset_and_two_byte_escapes_are_removed() {
        assert_eq!(strip("\x1b(Bx\x1b)0y\x1b7z\x1b8\x1bMw\x1b=v"), "xyzwv");
        assert_eq!(strip("\x1b#8ok"), "ok");
    }

    #[test]
    fn carriage_returns_become_line_breaks() {
        assert_eq!(strip("a\r\nb\r\n"), "a\nb\n");
        assert_eq!(strip("10%\r50%\r100%\n"), "10%\n50%\n100%\n");
        assert_eq!(strip("a\n\nb"), "a\n\nb");
        assert_eq!(strip("a\r\r\nb"), "a\n\nb");
    }

    #[test]
    fn backspace_erases_within_a_line() {
        assert_eq!(strip("abc\x08\x08d"), "ad");
        assert_eq!(strip("a\n\x08b"), "a\nb");
        assert_eq!(strip("é\x08x"), "x");
    }

    #[test]
    fn other_controls_are_dropped() {
        assert_eq!(strip("bell\x07 nul\x00 del\x7f!"), "bell nul del!");
    }

    #[test]
    fn lone_escape_does_not_eat_text() {
        assert_eq!(strip("a\x1bbc"), "ac"); // ESC b is a two-byte sequence
        assert_eq!(strip("a\x1b\x1b[0mb"), "ab");
        assert_eq!(strip("a\x1b\nb"), "a\nb");
    }

    #[test]
    fn sequences_split_across_chunks_are_removed() {
        let samples: &[&[u8]] = &[
            b"x\x1b[1;31mred\x1b[0my",
            b"\x1b]0;title\x07t\x1b]8;;u\x1b\\l",
            b"a\r\nb\rc\x08d",
            "é → \x1b(Bz".as_bytes(),
        ];
        for s in samples {
            strip_split_everywhere(s);
        }
        assert_eq!(strip_split_everywhere(b"a\r\nb"), "a\nb");
    }

    proptest::proptest! {
        /// Any bytes, cut anywhere into three chunks, strip the same as in one piece, and no
        /// ESC or CR survives.
        #[test]
        fn chunking_never_changes_the_result(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::strategy::Just(0x1bu8),
                    proptest::strategy::Just(b'['),
                    proptest::strategy::Just(b'\r'),
                ],
                0..200,
            ),
            a in 0usize..200,
            b in 0usize..200,
        ) {
            let (a, b) = (a.min(bytes.len()), b.min(bytes.len()));
            let (a, b) = (a.min(b), a.max(b));
            let mut whole = Vec::new();
            Stripper::new().feed(&bytes, &mut whole);
            let mut s = Stripper::new();
            let mut parts = Vec::new();
            s.feed(&bytes[..a], &mut parts);
            s.feed(&bytes[a..b], &mut parts);
            s.feed(&bytes[b..], &mut parts);
            if !bytes.contains(&0x08) {
                // Backspace only erases within one chunk, so it may differ across cuts.
                proptest::prop_assert_eq!(&whole, &parts);
            }
            proptest::prop_assert!(!whole.contains(&0x1b) && !whole.contains(&b'\r'));
        }
    }

    #[test]
    fn tmux_bracketed_paste_markers_are_removed() {
        assert_eq!(strip("\x1b[200~Task #1: x\x1b[201~"), "Task #1: x");
    }
}
