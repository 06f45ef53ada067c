//! `.dockerignore`, with current Docker's semantics (moby/patternmatcher, Docker 23 and
//! later): comments, `*`, `?`, `[...]`, `**`, `\` escapes, `!` exceptions, a leading `/`
//! ignored, paths cleaned, the last matching pattern wins, and a pattern that matches a
//! directory excludes everything beneath it. A pattern that starts with `**` and holds no
//! other wildcard is a suffix match (`**.pem` excludes `certs/server.pem`), and a pattern
//! Docker refuses (an unclosed `[`) is an error here too, never read literally.
//!
//! The daemon never sees this file's rules: the client filters the context, so we must.
//! A walk of the context uses [`DockerIgnore::excludes`] (patternmatcher's
//! `MatchesUsingParentResults`, fed each directory's results) and
//! [`DockerIgnore::may_reinclude_under`] (whether an excluded directory must still be
//! walked, by fsutil's rule, the walker of the docker CLI's BuildKit builds).

use crate::glob::{Dialect, Glob};
use crate::paths::clean;

mod syntax;

pub use syntax::MalformedPattern;

/// The parsed rules of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern, without its `!` (patternmatcher's `Pattern.String()`).
    text: String,
    matcher: Matcher,
    /// A `!` line: re-includes what earlier lines excluded.
    exception: bool,
}

/// Which patterns matched a directory, handed down to its entries (patternmatcher's
/// `MatchInfo`): a pattern that matched a directory matches everything beneath it.
#[derive(Debug, Clone, Default)]
pub struct ParentMatches(Vec<bool>);

impl DockerIgnore {
    /// The rules of a `.dockerignore`, read as moby's `ignorefile.ReadAll` and
    /// `patternmatcher.New` read them; the first pattern Docker would refuse is an error
    /// naming its line (1-based).
    pub fn parse(text: &str) -> Result<Self, MalformedPattern> {
        let mut patterns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            // ReadAll: a UTF-8 byte order mark is dropped from the first line.
            let line = if index == 0 {
                line.strip_prefix('\u{feff}').unwrap_or(line)
            } else {
                line
            };
            // Comments start at column 0; whitespace is trimmed.
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let malformed = |why: &str| MalformedPattern {
                line: index + 1,
                pattern: line.to_owned(),
                why: why.to_owned(),
            };
            let (exception, raw) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            // patternmatcher.New: `illegal exclusion pattern: "!"`.
            if exception && raw.is_empty() {
                return Err(malformed("is a `!` with no pattern after it"));
            }
            let cleaned = clean(raw);
            let cleaned = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_owned(),
                _ => cleaned,
            };
            // New checks each pattern with `filepath.Match(pattern, ".")`; compile's
            // regular expression fails on a few more (see `syntax`).
            if let Some(why) = syntax::error_in(&cleaned) {
                return Err(malformed(&why));
            }
            if cleaned == "." {
                // Matches only the context's root, which is never a path of the walk.
                continue;
            }
            patterns.push(Pattern {
                matcher: Matcher::new(&cleaned),
                text: cleaned,
                exception,
            });
        }
        Ok(Self { patterns })
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
                    matcher: Matcher::new(&text),
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
                matched = pattern.matcher.matches(&path)
                    || (parent.is_none()
                        && parents_of(&path).any(|dir| pattern.matcher.matches(dir)));
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

/// How one pattern matches a path: patternmatcher's `matchType`, chosen by `compile`.
/// Exact, prefix and suffix patterns are compared as text; the rest as globs (the
/// regular expression `compile` writes). The kinds differ from a glob only for a
/// pattern that starts with `**` and has no other wildcard: a suffix (`**.pem` matches
/// `a/b.pem`), where the glob would read `(.*/)?\.pem` (Docker 20.10's reading).
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard, escape or class: the path itself.
    Exact(String),
    /// A trailing `**` after plain text: any path that starts with the text.
    Prefix(String),
    /// A leading `**` before plain text: any path that ends with the text, or, for
    /// `**/name`, `name` itself.
    Suffix(String),
    Glob(Glob),
}

impl Matcher {
    fn new(pattern: &str) -> Self {
        match syntax::match_type(pattern) {
            syntax::MatchType::Exact => Self::Exact(pattern.to_owned()),
            syntax::MatchType::Prefix => Self::Prefix(pattern[..pattern.len() - 2].to_owned()),
            syntax::MatchType::Suffix => Self::Suffix(pattern[2..].to_owned()),
            syntax::MatchType::Regexp => Self::Glob(Glob::new(pattern, Dialect::Docker)),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(pattern) => path == pattern,
            Self::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Self::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|name| path == name)
            }
            Self::Glob(glob) => glob.matches(path),
        }
    }
}

/// `a`, `a/b` for `a/b/c`: the directories above a path, outermost first.
fn parents_of(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(index, _)| &path[..index])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(rules: &str, path: &str) -> bool {
        DockerIgnore::parse(rules).unwrap().is_excluded(path)
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
        let ignore = DockerIgnore::parse("dist\n!dist/keep\ndist/keep/*.tmp\n").unwrap();
        assert!(walked(&ignore, "dist/a.js"));
        assert!(!walked(&ignore, "dist/keep/a.js"));
        assert!(walked(&ignore, "dist/keep/a.tmp"));
        // patternmatcher's quirk: the second `dist` is not evaluated for the directory
        // (it cannot change its outcome), so the directory does not hand it down, and the
        // exception wins beneath it; judged alone, the last match would win.
        let ignore = DockerIgnore::parse("dist\n!dist/keep\ndist\n").unwrap();
        assert!(ignore.is_excluded("dist/keep"));
        assert!(!walked(&ignore, "dist/keep"));
    }

    #[test]
    fn an_excluded_directory_is_walked_only_on_the_way_to_an_exception() {
        let ignore = DockerIgnore::parse("**/dist\ndocs\n!services/api/dist/keep.js\n").unwrap();
        assert!(ignore.may_reinclude_under("services"));
        assert!(ignore.may_reinclude_under("services/api/dist"));
        assert!(!ignore.may_reinclude_under("services/auth/dist"));
        assert!(!ignore.may_reinclude_under("docs"));
        assert!(!DockerIgnore::parse("docs\n")
            .unwrap()
            .may_reinclude_under("docs"));
        // A trailing `/*` or `/**` still names a directory to walk to.
        assert!(DockerIgnore::parse("docs\n!docs/keep/**\n")
            .unwrap()
            .may_reinclude_under("docs"));
        // With a wildcard in an exception, anything may be re-included anywhere (fsutil,
        // the BuildKit builds of the docker CLI; its classic builder would not look).
        let ignore = DockerIgnore::parse("docs\n!**/keep.md\n").unwrap();
        assert!(ignore.may_reinclude_under("docs"));
        assert!(!walked(&ignore, "docs/a/keep.md"));
    }

    #[test]
    fn the_dockerfile_and_dockerignore_are_kept_as_the_docker_cli_keeps_them() {
        let ignore = DockerIgnore::parse("infra\n.dockerignore\n")
            .unwrap()
            .keeping_build_files("infra/docker/service.Dockerfile");
        assert!(!walked(&ignore, ".dockerignore"));
        assert!(!walked(&ignore, "infra/docker/service.Dockerfile"));
        assert!(walked(&ignore, "infra/docker/.npmrc"));
        assert!(ignore.may_reinclude_under("infra/docker"));
        assert!(!ignore.may_reinclude_under("infra/terraform"));
        // Not excluded: no exception is added, so excluded directories are not walked.
        let ignore = DockerIgnore::parse("docs\n")
            .unwrap()
            .keeping_build_files("Dockerfile");
        assert!(!ignore.may_reinclude_under("docs"));
    }

    /// patternmatcher `compile`: a `**` first with no other wildcard is a suffix match
    /// (`suffixMatch`: `strings.HasSuffix`, and `**/name` matches `name`). Docker 20.10
    /// compiled it to `^(.*/)?\.pem$` and shipped `certs/server.pem`; deploy follows
    /// current Docker (checked with docker CLI 28.2's classic builder: excluded).
    #[test]
    fn a_leading_double_star_with_no_other_wildcard_is_a_suffix() {
        assert!(excluded("**.pem", "certs/server.pem"));
        assert!(excluded("**.pem", "server.pem"));
        assert!(excluded("**.pem", ".pem"));
        assert!(!excluded("**.pem", "server.pem.bak"));
        assert!(excluded("**key", "a/monkey"));
        assert!(excluded("**/secret.txt", "secret.txt"));
        assert!(excluded("**/secret.txt", "a/b/secret.txt"));
        assert!(!excluded("**/secret.txt", "a/top-secret.txt"));
        // A later wildcard makes it a regular expression again: `(.*/)?` then the rest.
        assert!(!excluded("**.p?m", "certs/server.pem"));
        assert!(excluded("**.p?m", "certs/.pem"));
        // `**` alone: everything.
        assert!(excluded("**", "a/b"));
        // A trailing `**` after plain text is a prefix (`prefixMatch`).
        assert!(excluded("docs**", "docs-old/a.md"));
    }

    /// patternmatcher `New` refuses what `filepath.Match(pattern, ".")` refuses, and a `!`
    /// alone (`illegal exclusion pattern`); docker build then fails (docker CLI 28.2 and
    /// 20.10 alike). deploy fails too, naming the line, where it used to read `foo[`
    /// literally.
    #[test]
    fn a_pattern_docker_refuses_is_an_error_naming_its_line() {
        let error = DockerIgnore::parse("# keys\nnode_modules\n  certs/[a-\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert_eq!(error.pattern, "certs/[a-");
        assert_eq!(
            error.to_string(),
            "line 3: the pattern `certs/[a-` has a `[` that is never closed (escape a literal one as `\\[`); Docker refuses it too (`syntax error in pattern`)"
        );
        let error = DockerIgnore::parse("a\n!\n").unwrap_err();
        assert_eq!(
            (error.line, error.why.as_str()),
            (2, "is a `!` with no pattern after it")
        );
        assert_eq!(DockerIgnore::parse("!foo[").unwrap_err().pattern, "!foo[");
        // Escaped brackets are fine.
        assert!(excluded("foo\\[", "foo["));
    }

    /// ignorefile `ReadAll`: a UTF-8 byte order mark at the start is dropped.
    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_pattern() {
        assert!(excluded("\u{feff}secret.txt\n", "secret.txt"));
    }
}
