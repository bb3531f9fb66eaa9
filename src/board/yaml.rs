//! How Go's yaml.v3 (as kanban-md uses it) writes a string scalar: plain when YAML would read
//! it back as the same string, double quotes when it would read as another type, single quotes
//! when plain text is not allowed, literal blocks for multi-line text.

/// Appends `s` as a block-context scalar at mapping-value or sequence-item position, where
/// `indent` is the indentation of continuation lines (used by literal blocks).
pub fn push_scalar(out: &mut String, s: &str, indent: usize) {
    let looks_typed = !resolves_to_string(s) || is_base60_float(s) || is_old_bool(s);
    let info = analyze(s);
    if s.contains('\n') {
        if info.block_allowed {
            push_literal(out, s, indent);
        } else {
            push_double_quoted(out, s);
        }
    } else if looks_typed {
        push_double_quoted(out, s);
    } else if info.block_plain_allowed {
        out.push_str(s);
    } else if info.single_quoted_allowed {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        push_double_quoted(out, s);
    }
}

/// The scalar as [`push_scalar`] writes it.
#[cfg(test)]
pub fn scalar(s: &str, indent: usize) -> String {
    let mut out = String::new();
    push_scalar(&mut out, s, indent);
    out
}

/// What the emitter may do with a scalar (libyaml's `analyze_scalar`, block context).
struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    matches!(c,
        '\n' | '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
        && c != '\u{FEFF}'
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut tabs, mut special, mut line_breaks) =
        (false, false, false, false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_by_whitespace = matches!(next, None | Some(' ') | Some('\t'));
        let first = i == 0;
        let last = i + 1 == chars.len();
        if first {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') {
            // NEL, LS and PS are line breaks to YAML 1.1 emitters but text to YAML 1.2
            // readers; only an escape reads back the same everywhere.
            special = true;
        }
        if c == ' ' {
            leading_space |= first;
            trailing_space |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= first;
            trailing_break |= last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = matches!(c, ' ' | '\t') || is_break(c);
    }
    let mut a = Analysis {
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space || space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

fn push_literal(out: &mut String, s: &str, indent: usize) {
    out.push('|');
    if s.starts_with(' ') || s.starts_with(is_break) {
        out.push('4');
    }
    let mut rev = s.chars().rev();
    match (rev.next(), rev.next()) {
        (Some(last), _) if !is_break(last) => out.push('-'),
        (Some(_), None) => out.push('+'),
        (Some(_), Some(prev)) if is_break(prev) => out.push('+'),
        _ => {}
    }
    out.push('\n');
    let pad = " ".repeat(indent);
    let mut at_line_start = true;
    for c in s.chars() {
        if is_break(c) {
            out.push(if c == '\r' || c == '\n' { '\n' } else { c });
            at_line_start = true;
        } else {
            if at_line_start {
                out.push_str(&pad);
                at_line_start = false;
            }
            out.push(c);
        }
    }
    // The emitter ends the block with the line break the value already had, or adds one.
    if !s.ends_with(is_break) {
        out.push('\n');
    }
    // Callers add their own newline after every value; a literal block has written it.
    if out.ends_with('\n') {
        out.pop();
    }
}

fn push_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{B}' => out.push_str("\\v"),
            '\u{C}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1B}' => out.push_str("\\e"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{85}' => out.push_str("\\N"),
            '\u{A0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) || c == '\u{FEFF}' => {
                let n = c as u32;
                if n <= 0xFF {
                    out.push_str(&format!("\\x{n:02X}"));
                } else if n <= 0xFFFF {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// yaml.v3's `isOldBool`: YAML 1.1 booleans it quotes for older readers.
fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// yaml.v3's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        while i < start + 2 && b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        match i - start {
            1 => {}
            2 if (b'0'..=b'5').contains(&b[start]) => {}
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// Whether yaml.v3's `resolve` reads plain `s` as a string (not null, bool, number, timestamp).
fn resolves_to_string(s: &str) -> bool {
    match s {
        "" | "~" | "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False"
        | "FALSE" | ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf"
        | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | "<<" => return false,
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return true;
    }
    if is_go_int(&s.replace('_', "")) || is_yaml_float(s) {
        return false;
    }
    if first.is_ascii_digit() && is_timestamp(s) {
        return false;
    }
    true
}

/// Go's `strconv.ParseInt(s, 0, 64)` / `ParseUint` syntax (range ignored: out-of-range numbers
/// fall through to the float check, which they also match).
fn is_go_int(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (digits, radix) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (r, 16)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (r, 2)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (r, 8)
        } else if body.len() > 1 && body.starts_with('0') {
            (&body[1..], 8)
        } else {
            (body, 10)
        };
    !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix))
}

/// yaml.v3's float pattern `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// yaml.v3's timestamp check: four-digit year, `-`, then one of Go's layouts
/// `2006-1-2T15:4:5.999999999Z07:00`, `2006-1-2t15:4:5...`, `2006-1-2 15:4:5...`, `2006-1-2`.
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    let num = |i: &mut usize, max_len: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max_len && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        s[start..*i].parse().ok()
    };
    let Some(month) = num(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = num(&mut i, 2) else {
        return false;
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let sep = b[i];
    if !matches!(sep, b'T' | b't' | b' ') {
        return false;
    }
    i += 1;
    let mut clock = [0u32; 3];
    for (k, slot) in clock.iter_mut().enumerate() {
        let Some(v) = num(&mut i, 2) else {
            return false;
        };
        *slot = v;
        if k < 2 {
            if b.get(i) != Some(&b':') {
                return false;
            }
            i += 1;
        }
    }
    if clock[0] > 23 || clock[1] > 59 || clock[2] > 59 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if i == b.len() {
        return true;
    }
    if sep == b' ' {
        return false;
    }
    match &s[i..] {
        "Z" => true,
        zone => {
            let z = zone.as_bytes();
            z.len() == 6
                && matches!(z[0], b'+' | b'-')
                && z[1..3].iter().all(u8::is_ascii_digit)
                && z[3] == b':'
                && z[4..6].iter().all(u8::is_ascii_digit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, want: &str) {
        assert_eq!(scalar(input, 4), want, "input {input:?}");
    }

    #[test]
    fn plain_when_yaml_reads_back_a_string() {
        check("Fix login", "Fix login");
        check("a-b_c/d.e", "a-b_c/d.e");
        check("tag:x", "tag:x");
        check("naïve café", "naïve café");
        check("a#b", "a#b");
        check("-x", "-x");
        check("1.2.3", "1.2.3");
        check("20260201", "\"20260201\"");
    }

    #[test]
    fn double_quotes_for_other_types() {
        for s in [
            "123",
            "-5",
            "+7",
            "1.5",
            ".5",
            "1e3",
            "0x1F",
            "0o17",
            "012",
            "08",
            "1_000",
            "true",
            "False",
            "null",
            "~",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "N",
            ".inf",
            "-.Inf",
            ".nan",
            "1:20",
            "190:20:30.15",
            "2026-02-01",
            "2026-2-1",
            "2026-02-01T10:00:00Z",
            "2026-02-01 10:00:00",
            "<<",
            "",
        ] {
            check(s, &format!("\"{s}\""));
        }
        check("1:70", "1:70");
        check("2026-13-01", "2026-13-01");
    }

    #[test]
    fn single_quotes_where_plain_is_not_allowed() {
        check(" lead", "' lead'");
        check("trail ", "'trail '");
        check("#hash", "'#hash'");
        check("it's [x]", "it's [x]");
        check("[x]", "'[x]'");
        check("'q'", "'''q'''");
        check("\"q\"", "'\"q\"'");
        check("- item", "'- item'");
        check("key: value", "'key: value'");
        check("a #b", "'a #b'");
        check("ends:", "'ends:'");
        check("a:b", "a:b");
        check(": x", "': x'");
        check("*star", "'*star'");
        check("`tick`", "'`tick`'");
        check("@at", "'@at'");
        check("%p", "'%p'");
        check("---", "'---'");
    }

    #[test]
    fn double_quotes_for_specials() {
        check("tab\there", "\"tab\\there\"");
        check("bell\u{7}", "\"bell\\a\"");
        check("back\\slash", "back\\slash");
    }

    #[test]
    fn literal_blocks_for_multi_line() {
        check("line 1\nline 2", "|-\n    line 1\n    line 2");
        check("line 1\n\nline 3\n", "|\n    line 1\n\n    line 3");
        check(" indented\nx", "|4-\n     indented\n    x");
        check("a\n\n", "|+\n    a\n");
        check("trailing \nx", "\"trailing \\nx\"");
    }
}
