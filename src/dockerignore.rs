//! `.dockerignore`, with the docker CLI's semantics (moby/patternmatcher): comments,
//! `*`, `?`, `[...]`, `**`, `\` escapes, `!` exceptions, a leading `/` ignored, paths
//! cleaned, the last matching pattern wins, and a pattern that matches a directory
//! excludes everything beneath it.
//!
//! The daemon never sees this file's rules: the client filters the context, so we must.

/// The parsed rules of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    tokens: Vec<Token>,
    /// A `!` line: re-includes what earlier lines excluded.
    exception: bool,
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
    /// `**/` or `**` inside a pattern: zero or more whole directories.
    AnyDirs,
    /// `**` at the end: anything at all.
    AnyRest,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .filter_map(|line| {
                // moby's ReadAll: comments start at column 0; whitespace is trimmed.
                if line.starts_with('#') {
                    return None;
                }
                let line = line.trim();
                if line.is_empty() {
                    return None;
                }
                let (exception, raw) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let cleaned = clean(raw);
                let cleaned = match cleaned.strip_prefix('/') {
                    Some(rest) if !rest.is_empty() => rest.to_owned(),
                    _ => cleaned,
                };
                if cleaned.is_empty() || cleaned == "." {
                    return None;
                }
                Some(Pattern {
                    tokens: tokenize(&cleaned),
                    exception,
                })
            })
            .collect();
        Self { patterns }
    }

    /// Whether any `!` exception exists: then an excluded directory must still be walked,
    /// since something inside it may be re-included.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|pattern| pattern.exception)
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the context.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = path
            .match_indices('/')
            .map(|(index, _)| &path[..index])
            .collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            let matched = matches(&pattern.tokens, &path)
                || parents
                    .iter()
                    .any(|parent| matches(&pattern.tokens, parent));
            if matched {
                excluded = !pattern.exception;
            }
        }
        excluded
    }
}

/// Go's `filepath.Clean` for `/`-separated relative paths.
fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::AnyRest
                } else {
                    Token::AnyDirs
                });
                continue;
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Question),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                tokens.push(Token::Literal(chars[i]));
            }
            '[' => {
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

/// Whole-string match of `text` against the tokens (backtracking; paths are short).
fn matches(tokens: &[Token], text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    match_from(tokens, &chars)
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

    fn excluded(rules: &str, path: &str) -> bool {
        DockerIgnore::parse(rules).is_excluded(path)
    }

    #[test]
    fn plain_names_match_at_the_root_and_exclude_what_is_beneath() {
        assert!(excluded("node_modules", "node_modules"));
        assert!(excluded("node_modules", "node_modules/a/b.js"));
        assert!(!excluded("node_modules", "services/api/node_modules/x.js"));
        assert!(!excluded("node_modules", "node_modules_extra"));
    }

    #[test]
    fn double_star_matches_any_depth_including_none() {
        let rules = "**/node_modules";
        assert!(excluded(rules, "node_modules/x"));
        assert!(excluded(rules, "services/api/node_modules/x.js"));
        assert!(excluded("**/*.log", "a.log"));
        assert!(excluded("**/*.log", "a/b/c.log"));
        assert!(excluded("docs/**", "docs/a/b.md"));
        assert!(excluded("a/**/z", "a/z"));
        assert!(excluded("a/**/z", "a/b/c/z"));
        assert!(!excluded("a/**/z", "b/a/z"));
    }

    #[test]
    fn single_star_and_question_stop_at_slashes() {
        assert!(excluded("*.md", "README.md"));
        assert!(!excluded("*.md", "docs/README.md"));
        assert!(excluded("docs/*.md", "docs/README.md"));
        assert!(excluded("file?.txt", "file1.txt"));
        assert!(!excluded("a?b", "a/b"));
        assert!(excluded("services/*/dist", "services/api/dist/index.js"));
    }

    #[test]
    fn exceptions_reinclude_and_the_last_match_wins() {
        let rules = "*.md\n!README.md\n";
        assert!(excluded(rules, "CHANGELOG.md"));
        assert!(!excluded(rules, "README.md"));
        let rules = "!README.md\n*.md\n";
        assert!(excluded(rules, "README.md"));
        let rules = "docs\n!docs/keep.md\n";
        assert!(excluded(rules, "docs/other.md"));
        assert!(!excluded(rules, "docs/keep.md"));
        assert!(DockerIgnore::parse(rules).has_exceptions());
    }

    #[test]
    fn comments_blank_lines_leading_slash_and_cleaning() {
        let rules = "# a comment\n\n  /build/  \n./tmp//x\n";
        assert!(excluded(rules, "build/out.js"));
        assert!(excluded(rules, "tmp/x"));
        assert!(!excluded(rules, "# a comment"));
        assert!(!DockerIgnore::parse(rules).has_exceptions());
    }

    #[test]
    fn classes_and_escapes() {
        assert!(excluded("file[0-9].txt", "file7.txt"));
        assert!(!excluded("file[0-9].txt", "filex.txt"));
        assert!(excluded("file[^0-9].txt", "filex.txt"));
        assert!(excluded(r"\*.txt", "*.txt"));
        assert!(!excluded(r"\*.txt", "a.txt"));
    }

    #[test]
    fn clean_behaves_like_go() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("/a/b"), "/a/b");
        assert_eq!(clean(""), ".");
    }
}
