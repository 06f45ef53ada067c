//! `.dockerignore`, with the docker CLI's semantics (moby/patternmatcher): comments,
//! `*`, `?`, `[...]`, `**`, `\` escapes, `!` exceptions, a leading `/` ignored, paths
//! cleaned, the last matching pattern wins, and a pattern that matches a directory
//! excludes everything beneath it.
//!
//! The daemon never sees this file's rules: the client filters the context, so we must.
//! A walk of the context uses [`DockerIgnore::excludes`] (patternmatcher's
//! `MatchesUsingParentResults`, fed each directory's results) and
//! [`DockerIgnore::may_reinclude_under`] (whether an excluded directory must still be
//! walked, by fsutil's rule, the walker of the docker CLI's BuildKit builds).

/// The parsed rules of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern, without its `!` (patternmatcher's `Pattern.String()`).
    text: String,
    tokens: Vec<Token>,
    /// A `!` line: re-includes what earlier lines excluded.
    exception: bool,
}

/// Which patterns matched a directory, handed down to its entries (patternmatcher's
/// `MatchInfo`): a pattern that matched a directory matches everything beneath it.
#[derive(Debug, Clone, Default)]
pub struct ParentMatches(Vec<bool>);

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
                    text: cleaned,
                    exception,
                })
            })
            .collect();
        Self { patterns }
    }

    /// The rules the docker CLI applies to a build context: these, plus exceptions for
    /// `.dockerignore` and the Dockerfile when they are excluded, since the daemon needs
    /// them (docker/cli `TrimBuildFilesFromExcludes`). `dockerfile` is relative to the
    /// context, `/`-separated.
    pub fn keeping_build_files(mut self, dockerfile: &str) -> Self {
        for kept in [".dockerignore", dockerfile] {
            if self.is_excluded(kept) {
                let text = clean(kept);
                self.patterns.push(Pattern {
                    tokens: tokenize(&text),
                    text,
                    exception: true,
                });
            }
        }
        self
    }

    /// Whether `path` is left out, given what matched its parent directory (`None` for an
    /// entry at the top of the context); also returns what matched `path`, for its own
    /// entries. A port of patternmatcher's `MatchesUsingParentResults`, quirks included:
    /// a pattern that cannot change the outcome is not evaluated, so it is not recorded
    /// as matching the directory either.
    pub fn excludes(&self, path: &str, parent: Option<&ParentMatches>) -> (bool, ParentMatches) {
        let path = clean(path);
        let mut matched_here = vec![false; self.patterns.len()];
        let mut excluded = false;
        for (index, pattern) in self.patterns.iter().enumerate() {
            let mut matched = parent.is_some_and(|parent| parent.0[index]);
            if !matched {
                if pattern.exception != excluded {
                    continue;
                }
                matched = matches(&pattern.tokens, &path)
                    || (parent.is_none()
                        && parents_of(&path).any(|dir| matches(&pattern.tokens, dir)));
            }
            matched_here[index] = matched;
            if matched {
                excluded = !pattern.exception;
            }
        }
        (excluded, ParentMatches(matched_here))
    }

    /// Whether the excluded directory `dir` must still be walked, since a `!` exception
    /// may re-include something inside it (fsutil's filter): when every exception is a
    /// plain path (trailing `/*` or `/**` aside), only a directory on the way to one of
    /// them; when an exception has wildcards, every directory.
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let exceptions: Vec<&str> = self
            .patterns
            .iter()
            .filter(|pattern| pattern.exception)
            .map(|pattern| {
                let text = pattern.text.as_str();
                let text = text.strip_suffix("/**").unwrap_or(text);
                text.strip_suffix("/*").unwrap_or(text)
            })
            .collect();
        if exceptions
            .iter()
            .any(|text| text.contains(['*', '[', ']', '?', '^', '\\']))
        {
            return true;
        }
        let dir = format!("{}/", clean(dir));
        exceptions
            .iter()
            .any(|text| format!("{text}/").starts_with(&dir))
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the context,
    /// judged alone (patternmatcher's `MatchesOrParentMatches`).
    pub fn is_excluded(&self, path: &str) -> bool {
        self.excludes(path, None).0
    }
}

/// `a`, `a/b` for `a/b/c`: the directories above a path, outermost first.
fn parents_of(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(index, _)| &path[..index])
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
    }

    #[test]
    fn comments_blank_lines_leading_slash_and_cleaning() {
        let rules = "# a comment\n\n  /build/  \n./tmp//x\n";
        assert!(excluded(rules, "build/out.js"));
        assert!(excluded(rules, "tmp/x"));
        assert!(!excluded(rules, "# a comment"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(excluded("file[0-9].txt", "file7.txt"));
        assert!(!excluded("file[0-9].txt", "filex.txt"));
        assert!(excluded("file[^0-9].txt", "filex.txt"));
        assert!(excluded(r"\*.txt", "*.txt"));
        assert!(!excluded(r"\*.txt", "a.txt"));
    }

    /// What a walk sees at `path`, each directory above it judged first (as the walkers do).
    fn walked(ignore: &DockerIgnore, path: &str) -> bool {
        let mut parent: Option<ParentMatches> = None;
        for dir in parents_of(path) {
            parent = Some(ignore.excludes(dir, parent.as_ref()).1);
        }
        ignore.excludes(path, parent.as_ref()).0
    }

    #[test]
    fn a_walk_hands_each_directory_its_matches_as_patternmatcher_does() {
        let ignore = DockerIgnore::parse("dist\n!dist/keep\ndist/keep/*.tmp\n");
        assert!(walked(&ignore, "dist/a.js"));
        assert!(!walked(&ignore, "dist/keep/a.js"));
        assert!(walked(&ignore, "dist/keep/a.tmp"));
        // patternmatcher's quirk: the second `dist` is not evaluated for the directory
        // (it cannot change its outcome), so the directory does not hand it down, and the
        // exception wins beneath it; judged alone, the last match would win.
        let ignore = DockerIgnore::parse("dist\n!dist/keep\ndist\n");
        assert!(ignore.is_excluded("dist/keep"));
        assert!(!walked(&ignore, "dist/keep"));
    }

    #[test]
    fn an_excluded_directory_is_walked_only_on_the_way_to_an_exception() {
        let ignore = DockerIgnore::parse("**/dist\ndocs\n!services/api/dist/keep.js\n");
        assert!(ignore.may_reinclude_under("services"));
        assert!(ignore.may_reinclude_under("services/api/dist"));
        assert!(!ignore.may_reinclude_under("services/auth/dist"));
        assert!(!ignore.may_reinclude_under("docs"));
        assert!(!DockerIgnore::parse("docs\n").may_reinclude_under("docs"));
        // A trailing `/*` or `/**` still names a directory to walk to.
        assert!(DockerIgnore::parse("docs\n!docs/keep/**\n").may_reinclude_under("docs"));
        // With a wildcard in an exception, anything may be re-included anywhere (fsutil,
        // the BuildKit builds of the docker CLI; its classic builder would not look).
        let ignore = DockerIgnore::parse("docs\n!**/keep.md\n");
        assert!(ignore.may_reinclude_under("docs"));
        assert!(!walked(&ignore, "docs/a/keep.md"));
    }

    #[test]
    fn the_dockerfile_and_dockerignore_are_kept_as_the_docker_cli_keeps_them() {
        let ignore = DockerIgnore::parse("infra\n.dockerignore\n")
            .keeping_build_files("infra/docker/service.Dockerfile");
        assert!(!walked(&ignore, ".dockerignore"));
        assert!(!walked(&ignore, "infra/docker/service.Dockerfile"));
        assert!(walked(&ignore, "infra/docker/.npmrc"));
        assert!(ignore.may_reinclude_under("infra/docker"));
        assert!(!ignore.may_reinclude_under("infra/terraform"));
        // Not excluded: no exception is added, so excluded directories are not walked.
        let ignore = DockerIgnore::parse("docs\n").keeping_build_files("Dockerfile");
        assert!(!ignore.may_reinclude_under("docs"));
    }

    #[test]
    fn clean_behaves_like_go() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("/a/b"), "/a/b");
        assert_eq!(clean(""), ".");
    }
}
