//! What current Docker makes of one cleaned `.dockerignore` pattern before matching
//! anything: whether it refuses it (the build fails), and which of patternmatcher's match
//! kinds it compiles to. Both read moby/patternmatcher's `New` and `Pattern.compile`
//! (Docker 23 and later) and Go's `filepath.Match`, which `New` calls on every pattern
//! for its syntax check.

/// A `.dockerignore` line current Docker refuses: `docker build` fails on it with
/// `syntax error in pattern`, so a build by deploy fails too, saying where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedPattern {
    /// 1-based.
    pub line: usize,
    /// The line as written (trimmed).
    pub pattern: String,
    pub why: String,
}

impl std::fmt::Display for MalformedPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: the pattern `{}` {}; Docker refuses it too (`syntax error in pattern`)",
            self.line, self.pattern, self.why
        )
    }
}

impl std::error::Error for MalformedPattern {}

/// patternmatcher's `matchType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

/// The kind `compile` gives `pattern`: exact until a wildcard, an escape or a bracket
/// makes it a regular expression; a trailing `**` after exact text makes it a prefix; a
/// `**` at the very start makes it a suffix, unless something after it is a wildcard.
pub fn match_type(pattern: &str) -> MatchType {
    let chars: Vec<char> = pattern.chars().collect();
    let mut kind = MatchType::Exact;
    let mut at = 0;
    // `first`: compile's `i == 0`, the first step of its scan.
    let mut first = true;
    while at < chars.len() {
        match chars[at] {
            '*' if chars.get(at + 1) == Some(&'*') => {
                at += 2;
                if chars.get(at) == Some(&'/') {
                    at += 1;
                }
                kind = if at < chars.len() {
                    MatchType::Regexp
                } else if kind == MatchType::Exact {
                    MatchType::Prefix
                } else {
                    MatchType::Regexp
                };
                if first {
                    kind = MatchType::Suffix;
                }
            }
            '*' | '?' | '[' | ']' => {
                kind = MatchType::Regexp;
                at += 1;
            }
            '\\' => {
                // A trailing `\` stays a literal (and `New` has refused it already).
                if at + 1 < chars.len() {
                    kind = MatchType::Regexp;
                    at += 1;
                }
                at += 1;
            }
            _ => at += 1,
        }
        first = false;
    }
    kind
}

/// Why current Docker refuses `pattern`, if it does. `filepath.Match` refuses an
/// unclosed `[`, a class that is empty or holds a bare `-` or `]`, and a trailing `\`.
/// `compile`'s regular expression (Go's regexp, compiled at the first match) refuses a
/// backwards range (`[z-a]`) and an escaped letter, digit or non-ASCII character, except
/// a few it reads as regular-expression classes (`\d` any digit, `\w`, `\s`, `\t`):
/// deploy refuses all of those, rather than read a path pattern as a regular expression.
pub fn error_in(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut at = 0;
    let mut check = || -> Result<(), String> {
        while at < chars.len() {
            match chars[at] {
                '\\' => {
                    escaped(&chars, at + 1)?;
                    at += 2;
                }
                '[' => at = class_end(&chars, at + 1)?,
                _ => at += 1,
            }
        }
        Ok(())
    };
    check().err()
}

/// Checks the character escaped at `at` (after a `\`).
fn escaped(chars: &[char], at: usize) -> Result<char, String> {
    match chars.get(at) {
        None => Err("ends in a `\\` that escapes nothing".to_owned()),
        Some(c) if c.is_ascii_alphanumeric() || !c.is_ascii() => Err(format!(
            "escapes `{c}`: Docker reads `\\{c}` as a regular-expression escape (`\\d` is any digit) or rejects it; write the character without the `\\`"
        )),
        Some(c) => Ok(*c),
    }
}

/// The index after the `]` of a class whose `[` is just before `at` (and its optional
/// `^`): `filepath.Match`'s class rules (at least one item; an item is a character or
/// a `lo-hi` range; `-` and `]` must be escaped), plus regexp's ordered ranges.
fn class_end(chars: &[char], mut at: usize) -> Result<usize, String> {
    if chars.get(at) == Some(&'^') {
        at += 1;
    }
    let mut items = 0;
    loop {
        if chars.get(at) == Some(&']') && items > 0 {
            return Ok(at + 1);
        }
        let (low, next) = class_char(chars, at)?;
        at = next;
        let mut high = low;
        if chars.get(at) == Some(&'-') {
            (high, at) = class_char(chars, at + 1)?;
        }
        if low > high {
            return Err(format!(
                "has the range `{low}-{high}`, which runs backwards"
            ));
        }
        items += 1;
    }
}

/// Go's `getEsc`: one (possibly escaped) character of a class, and the index after it;
/// the class must go on after it.
fn class_char(chars: &[char], mut at: usize) -> Result<(char, usize), String> {
    let unclosed = || "has a `[` that is never closed (escape a literal one as `\\[`)".to_owned();
    let c = match chars.get(at) {
        None => return Err(unclosed()),
        Some('-' | ']') => {
            return Err(
                "has a `[...]` class that is empty or holds a bare `-` or `]` (escape them as `\\-`, `\\]`)"
                    .to_owned(),
            )
        }
        Some('\\') => {
            at += 1;
            escaped(chars, at)?
        }
        Some(c) => *c,
    };
    at += 1;
    if at >= chars.len() {
        return Err(unclosed());
    }
    Ok((c, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// patternmatcher's `compile`: the first step being `**` makes a suffix match
    /// unless a later wildcard makes it a regular expression; a trailing `**` after
    /// plain text is a prefix; plain text (with regexp metacharacters escaped) is exact.
    #[test]
    fn match_types_follow_compile() {
        for (pattern, kind) in [
            ("node_modules", MatchType::Exact),
            ("a.b+c(d)$", MatchType::Exact),
            ("docs/**", MatchType::Prefix),
            ("docs**", MatchType::Prefix),
            ("**", MatchType::Suffix),
            ("**.pem", MatchType::Suffix),
            ("**/secret.txt", MatchType::Suffix),
            ("**/*.log", MatchType::Regexp),
            ("**/dist/**", MatchType::Regexp),
            ("**.p?m", MatchType::Regexp),
            (r"**\.pem", MatchType::Regexp),
            ("a/**/b", MatchType::Regexp),
            ("*.md", MatchType::Regexp),
            ("file[0-9]", MatchType::Regexp),
            (r"\*.txt", MatchType::Regexp),
        ] {
            assert_eq!(match_type(pattern), kind, "{pattern}");
        }
    }

    /// `filepath.Match(pattern, ".")` fails: `New` returns the error and `docker
    /// build` stops with `syntax error in pattern` (checked with docker CLI 28.2 and
    /// 20.10, classic builder).
    #[test]
    fn what_filepath_match_refuses_is_an_error() {
        for (pattern, why) in [
            ("foo[", "never closed"),
            ("foo[a", "never closed"),
            ("foo[a-", "never closed"),
            ("[]a]", "bare `-` or `]`"),
            ("[^]", "bare `-` or `]`"),
            ("[-a]", "bare `-`"),
            ("[a-]", "bare `-` or `]`"),
            ("[a*", "never closed"),
            (r"foo\", "escapes nothing"),
            (r"[\", "escapes nothing"),
        ] {
            let error = error_in(pattern).unwrap_or_else(|| panic!("{pattern} accepted"));
            assert!(error.contains(why), "{pattern}: {error}");
        }
    }

    /// Accepted by `filepath.Match`, refused by Go's regexp when `compile` hands it the
    /// translation: the build fails at the first path matched (`syntax error in pattern`
    /// with docker CLI 28.2: `[z-a]`, `a\y`). `\d` is accepted by Docker as a regexp
    /// class; deploy refuses it with the rest rather than read paths as regexps.
    #[test]
    fn what_the_regexp_refuses_is_an_error_and_regexp_escapes_too() {
        for (pattern, why) in [
            ("[z-a]", "runs backwards"),
            (r"a\y", "escapes `y`"),
            (r"a\d.txt", "escapes `d`"),
            (r"[\d]", "escapes `d`"),
            (r"caf\é", "escapes `é`"),
        ] {
            let error = error_in(pattern).unwrap_or_else(|| panic!("{pattern} accepted"));
            assert!(error.contains(why), "{pattern}: {error}");
        }
    }

    #[test]
    fn well_formed_patterns_pass() {
        for pattern in [
            "node_modules",
            "**/*.log",
            "file[0-9].txt",
            "file[^0-9].txt",
            r"[\]\-]",
            r"\*.txt",
            r"a\ b",
            "[*]",
            "a]b",
            "[a-a]",
            "**.pem",
        ] {
            assert_eq!(error_in(pattern), None, "{pattern}");
        }
    }
}
