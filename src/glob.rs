//! Glob patterns over slash-separated paths, for `.dockerignore` and for the SPA
//! upload rules: one engine, two dialects.
//!
//! Both: `*` is any run of characters but `/`, `?` one character but `/`, `**/` zero or
//! more whole directories, a trailing `**` anything at all. The docker dialect
//! (moby/patternmatcher) adds `[...]` classes and `\` escapes, and reads `**` inside a
//! pattern as `**/`; the simple dialect (`spa_upload.entry_points`, `immutable`) reads
//! `[` and `\` literally (file names such as `[id].html`) and `**` inside a pattern as
//! any run, `/` included.

/// Which rules a pattern is read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Docker,
    Simple,
}

/// A parsed pattern; [`Glob::matches`] is a whole-path match.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob(Vec<Token>);

impl Glob {
    pub fn new(pattern: &str, dialect: Dialect) -> Self {
        Self(tokenize(pattern, dialect))
    }

    /// Whether `path` as a whole matches (backtracking; paths are short).
    pub fn matches(&self, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        match_from(&self.0, &chars)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters except `/`.
    Star,
    /// `?`: one character except `/`.
    Question,
    /// `[...]`: a character class.
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
    /// `**/` (and, in the docker dialect, `**` inside a pattern): zero or more whole
    /// directories.
    AnyDirs,
    /// `**` inside a pattern, in the simple dialect: any run of characters, `/` included.
    AnyRun,
    /// `**` at the end: anything at all.
    AnyRest,
}

fn tokenize(pattern: &str, dialect: Dialect) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                let slash = chars.get(i) == Some(&'/');
                if slash {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::AnyRest
                } else if slash || dialect == Dialect::Docker {
                    Token::AnyDirs
                } else {
                    Token::AnyRun
                });
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Question),
            '\\' if dialect == Dialect::Docker && i + 1 < chars.len() => {
                i += 1;
                tokens.push(Token::Literal(chars[i]));
            }
            '[' if dialect == Dialect::Docker => {
                if let Some((class, next)) = parse_class(&chars, i) {
                    tokens.push(class);
                    i = next;
                    continue;
                }
                tokens.push(Token::Literal('['));
            }
            other => tokens.push(Token::Literal(other)),
        }
        i += 1;
    }
    tokens
}

/// Parses `[...]` starting at `start`; returns the token and the index after `]`.
fn parse_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    while i < chars.len() {
        let mut c = chars[i];
        if c == ']' && !first {
            return Some((Token::Class { negated, items }, i + 1));
        }
        first = false;
        if c == '\\' && i + 1 < chars.len() {
            i += 1;
            c = chars[i];
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|end| *end != ']') {
            items.push((c, chars[i + 2]));
            i += 3;
        } else {
            items.push((c, c));
            i += 1;
        }
    }
    None
}

fn match_from(tokens: &[Token], text: &[char]) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    match token {
        Token::Literal(c) => text.first() == Some(c) && match_from(rest, &text[1..]),
        Token::Question => text.first().is_some_and(|c| *c != '/') && match_from(rest, &text[1..]),
        Token::Class { negated, items } => {
            text.first().is_some_and(|c| {
                let inside = items.iter().any(|(low, high)| low <= c && c <= high);
                inside != *negated
            }) && match_from(rest, &text[1..])
        }
        Token::Star => {
            let run = text.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|n| match_from(rest, &text[n..]))
        }
        Token::AnyRest => true,
        Token::AnyRun => (0..=text.len()).any(|n| match_from(rest, &text[n..])),
        Token::AnyDirs => {
            // `(.*/)?`: nothing, or any prefix that ends with a slash.
            match_from(rest, text)
                || text
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '/')
                    .any(|(index, _)| match_from(rest, &text[index + 1..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(pattern: &str, path: &str) -> bool {
        Glob::new(pattern, Dialect::Docker).matches(path)
    }

    fn simple(pattern: &str, path: &str) -> bool {
        Glob::new(pattern, Dialect::Simple).matches(path)
    }

    #[test]
    fn both_dialects_share_stars_and_questions() {
        for matches in [docker, simple] {
            assert!(matches("*.js", "app.js"));
            assert!(!matches("*.js", "a/app.js"));
            assert!(matches("a/**/z.js", "a/z.js"));
            assert!(matches("a/**/z.js", "a/b/c/z.js"));
            assert!(matches("assets/**", "assets/a/b.css"));
            assert!(matches("?.txt", "a.txt"));
            assert!(!matches("a/?", "a//"));
        }
    }

    #[test]
    fn the_dialects_differ_on_classes_escapes_and_inner_double_stars() {
        assert!(docker("[a-c].js", "b.js"));
        assert!(!simple("[a-c].js", "b.js"));
        assert!(simple("[id].html", "[id].html"));
        assert!(docker("\\*.js", "*.js"));
        assert!(!docker("\\*.js", "a.js"));
        // patternmatcher compiles `a**b` to `a(.*/)?b`.
        assert!(docker("a**b", "a/x/b"));
        assert!(!docker("a**b", "axb"));
        assert!(simple("a**b", "axb"));
        assert!(simple("a**b", "a/x/b"));
    }
}
