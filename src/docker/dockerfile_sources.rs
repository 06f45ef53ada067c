//! What a Dockerfile can read from its context: the sources of its `COPY` and `ADD`
//! lines, with `ARG` defaults, the build args and `ENV` expanded. The classic builder gets
//! a tar of only these paths (BuildKit asks for them itself); anything that cannot be
//! resolved statically (`COPY . .`, an unknown variable) means the whole context.

/// The context paths a Dockerfile reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sources {
    /// Cleaned, `/`-separated, relative to the context; may hold wildcards.
    Paths(Vec<String>),
    /// The whole (filtered) context, and why.
    Whole(String),
}

/// Reads `dockerfile` with the build args given to the build.
pub fn copy_sources(dockerfile: &str, build_args: &[(String, String)]) -> Sources {
    let mut global_args: Vec<(String, Option<String>)> = Vec::new();
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut in_stage = false;
    let mut paths: Vec<String> = Vec::new();
    for line in instructions(dockerfile) {
        let (keyword, rest) = match line.split_once(char::is_whitespace) {
            Some((keyword, rest)) => (keyword.to_ascii_uppercase(), rest.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        match keyword.as_str() {
            "FROM" => {
                in_stage = true;
                vars.clear();
            }
            "ARG" => {
                for declared in rest.split_whitespace() {
                    let (name, default) = match declared.split_once('=') {
                        Some((name, value)) => {
                            (name.to_owned(), Some(expand(unquote(value), &vars)))
                        }
                        None => (declared.to_owned(), None),
                    };
                    let default = default.map(|d| d.unwrap_or_default());
                    if !in_stage {
                        global_args.push((name, default));
                        continue;
                    }
                    // A stage's ARG takes the build arg, else its default, else the
                    // global default of the same name.
                    let value = build_args
                        .iter()
                        .find(|(key, _)| *key == name)
                        .map(|(_, value)| value.clone())
                        .or(default)
                        .or_else(|| {
                            global_args
                                .iter()
                                .find(|(key, _)| *key == name)
                                .and_then(|(_, value)| value.clone())
                        });
                    if let Some(value) = value {
                        vars.retain(|(key, _)| *key != name);
                        vars.push((name, value));
                    }
                }
            }
            "ENV" => {
                let mut parts = rest.split_whitespace();
                let first = parts.next().unwrap_or_default();
                let pairs: Vec<(String, String)> = if first.contains('=') {
                    rest.split_whitespace()
                        .filter_map(|pair| pair.split_once('='))
                        .map(|(k, v)| (k.to_owned(), unquote(v).to_owned()))
                        .collect()
                } else {
                    vec![(first.to_owned(), parts.collect::<Vec<_>>().join(" "))]
                };
                for (name, value) in pairs {
                    let Some(value) = expand(&value, &vars) else {
                        continue;
                    };
                    vars.retain(|(key, _)| *key != name);
                    vars.push((name, value));
                }
            }
            "COPY" | "ADD" => {
                let words = arguments(rest);
                if words.iter().any(|w| w.starts_with("--from")) {
                    continue; // from another stage or image, not the context
                }
                let words: Vec<&String> = words.iter().filter(|w| !w.starts_with("--")).collect();
                let Some((_, sources)) = words.split_last() else {
                    continue;
                };
                for source in sources {
                    if keyword == "ADD" && source.contains("://") {
                        continue;
                    }
                    let Some(expanded) = expand(source, &vars) else {
                        return Sources::Whole(format!(
                            "{keyword} {source}: a variable without a value"
                        ));
                    };
                    let cleaned = crate::paths::clean_in_root(&expanded);
                    if cleaned == "." {
                        return Sources::Whole(format!("{keyword} {source} reads everything"));
                    }
                    if !paths.contains(&cleaned) {
                        paths.push(cleaned);
                    }
                }
            }
            _ => {}
        }
    }
    Sources::Paths(paths)
}

/// The Dockerfile's instructions, one a line: comments and blank lines dropped,
/// continuation lines (`\` at the end) joined.
pub(crate) fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                if !current.trim().is_empty() {
                    out.push(current.trim().to_owned());
                }
                current.clear();
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// `COPY`/`ADD` arguments: the JSON form, else words.
fn arguments(rest: &str) -> Vec<String> {
    let flags_end = rest
        .split_whitespace()
        .take_while(|w| w.starts_with("--"))
        .count();
    let words: Vec<&str> = rest.split_whitespace().collect();
    let flags: Vec<String> = words[..flags_end].iter().map(|w| (*w).to_owned()).collect();
    let tail = words[flags_end..].join(" ");
    if tail.starts_with('[') {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(&tail) {
            return flags.into_iter().chain(list).collect();
        }
    }
    flags
        .into_iter()
        .chain(words[flags_end..].iter().map(|w| unquote(w).to_owned()))
        .collect()
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Expands `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alt}`; `None` when a
/// variable has no value and no default.
fn expand(text: &str, vars: &[(String, String)]) -> Option<String> {
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() && chars[i + 1] == '$' => {
                out.push('$');
                i += 2;
            }
            '$' if chars.get(i + 1) == Some(&'{') => {
                let end = chars[i + 2..].iter().position(|c| *c == '}')? + i + 2;
                let inner: String = chars[i + 2..end].iter().collect();
                let value = if let Some((name, default)) = inner.split_once(":-") {
                    lookup(name)
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| default.to_owned())
                } else if let Some((name, alt)) = inner.split_once(":+") {
                    lookup(name)
                        .filter(|v| !v.is_empty())
                        .map(|_| alt.to_owned())
                        .unwrap_or_default()
                } else {
                    lookup(&inner)?
                };
                out.push_str(&value);
                i = end + 1;
            }
            '$' if chars
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_') =>
            {
                let len = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                let name: String = chars[i + 1..i + 1 + len].iter().collect();
                out.push_str(&lookup(&name)?);
                i += 1 + len;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_fixture_dockerfile_reads_its_copy_sources_with_the_service_arg() {
        let dockerfile =
            include_str!("../../tests/fixtures/platform/infra/docker/service.Dockerfile");
        assert_eq!(
            copy_sources(dockerfile, &args(&[("SERVICE", "api")])),
            Sources::Paths(vec![
                "pnpm-lock.yaml".into(),
                "pnpm-workspace.yaml".into(),
                "package.json".into(),
                "infra/docker/.npmrc".into(),
                "packages".into(),
                "service[s]/api".into(),
            ])
        );
    }

    #[test]
    fn arg_defaults_env_json_form_and_other_stages() {
        let dockerfile = "ARG DIR=lib\nFROM base AS b\nARG DIR\nENV SUB=x\nCOPY --chown=1:1 [\"${DIR}/$SUB\", \"/a\"]\nCOPY --from=b /x /y\nADD https://example.com/f /f\nADD ${DIR:-z}/y.tar /\n";
        assert_eq!(
            copy_sources(dockerfile, &[]),
            Sources::Paths(vec!["lib/x".into(), "lib/y.tar".into()])
        );
        assert_eq!(
            copy_sources(dockerfile, &args(&[("DIR", "src")])),
            Sources::Paths(vec!["src/x".into(), "src/y.tar".into()])
        );
    }

    #[test]
    fn what_cannot_be_resolved_means_the_whole_context() {
        assert!(matches!(
            copy_sources("FROM a\nCOPY . /app\n", &[]),
            Sources::Whole(why) if why.contains("COPY .")
        ));
        assert!(matches!(
            copy_sources("FROM a\nCOPY ./ /app\n", &[]),
            Sources::Whole(_)
        ));
        assert!(matches!(
            copy_sources("FROM a\nARG X\nCOPY $X /app\n", &[]),
            Sources::Whole(why) if why.contains("without a value")
        ));
    }
}
