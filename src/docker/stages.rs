//! The stages of a Dockerfile, for the registry build cache: which stage is the
//! dependency stage whose cache image a build pushes (`docker.cache_stage`, or the first
//! named stage another stage builds `FROM` or copies `--from`).

use super::dockerfile_sources::instructions;

/// The stage names of `dockerfile` in order (`FROM … AS name`), lowercased as BuildKit
/// matches them.
pub fn named_stages(dockerfile: &str) -> Vec<String> {
    instructions(dockerfile)
        .iter()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if !words.first()?.eq_ignore_ascii_case("FROM") {
                return None;
            }
            let at = words.iter().position(|w| w.eq_ignore_ascii_case("AS"))?;
            words.get(at + 1).map(|name| name.to_ascii_lowercase())
        })
        .collect()
}

/// The first named stage that a later stage builds `FROM` or copies `--from`: the stage
/// the others share (the dependency install), or `None`.
pub fn dependency_stage(dockerfile: &str) -> Option<String> {
    let stages = named_stages(dockerfile);
    let mut used: Vec<String> = Vec::new();
    for line in instructions(dockerfile) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(keyword) = words.first() else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("FROM") {
            // FROM [--platform=…] <image> [AS name]
            if let Some(image) = words.iter().skip(1).find(|w| !w.starts_with("--")) {
                used.push(image.to_ascii_lowercase());
            }
        } else if keyword.eq_ignore_ascii_case("COPY") {
            for word in &words[1..] {
                if let Some(from) = word.strip_prefix("--from=") {
                    used.push(from.to_ascii_lowercase());
                }
            }
        } else if keyword.eq_ignore_ascii_case("RUN") {
            // RUN --mount=…,from=<stage>
            for word in words[1..].iter().filter(|w| w.starts_with("--mount=")) {
                for option in word.trim_start_matches("--mount=").split(',') {
                    if let Some(from) = option.strip_prefix("from=") {
                        used.push(from.to_ascii_lowercase());
                    }
                }
            }
        }
    }
    stages.into_iter().find(|stage| used.contains(stage))
}

/// Whether `stage` (or a stage it builds `FROM`) declares the build argument `arg`: then
/// it differs per service and is built per service.
pub fn reads_arg(dockerfile: &str, stage: &str, arg: &str) -> bool {
    let mut current: Option<String> = None;
    let mut parents: Vec<(String, String)> = Vec::new();
    let mut declaring: Vec<String> = Vec::new();
    for line in instructions(dockerfile) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(keyword) = words.first() else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("FROM") {
            let image = words.iter().skip(1).find(|w| !w.starts_with("--"));
            let name = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("AS"))
                .and_then(|at| words.get(at + 1))
                .map(|name| name.to_ascii_lowercase());
            if let (Some(name), Some(image)) = (&name, image) {
                parents.push((name.clone(), image.to_ascii_lowercase()));
            }
            current = name;
        } else if keyword.eq_ignore_ascii_case("ARG") {
            let declared = words[1..].iter().any(|w| w.split('=').next() == Some(arg));
            if let (true, Some(stage)) = (declared, &current) {
                declaring.push(stage.clone());
            }
        }
    }
    let mut stage = stage.to_ascii_lowercase();
    for _ in 0..=parents.len() {
        if declaring.contains(&stage) {
            return true;
        }
        match parents.iter().find(|(name, _)| *name == stage) {
            Some((_, parent)) => stage = parent.clone(),
            None => return false,
        }
    }
    false
}

/// The dependency stage of a build: `configured` (`docker.cache_stage`; `""` for none),
/// checked against the Dockerfile, else the one found in it.
pub fn choose(dockerfile: &str, configured: Option<&str>) -> Result<Option<String>, String> {
    match configured {
        Some("") => Ok(None),
        Some(stage) => {
            let wanted = stage.to_ascii_lowercase();
            let stages = named_stages(dockerfile);
            if stages.contains(&wanted) {
                Ok(Some(wanted))
            } else {
                Err(format!(
                    "docker.cache_stage is `{stage}`, but the Dockerfile has no stage of that name (its stages: {}). Name one of them, or \"\" for none",
                    if stages.is_empty() {
                        "none named".to_owned()
                    } else {
                        stages.join(", ")
                    }
                ))
            }
        }
        None => Ok(dependency_stage(dockerfile)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stages of the fixture's `service.Dockerfile`.
    const FIXTURE: &str = "ARG BASE_IMAGE=busybox\n# deps\nFROM ${BASE_IMAGE} AS deps\nRUN --mount=type=cache,target=/pnpm-store \\\n    install\nFROM deps AS service\nCOPY packages/ ./packages/\n";

    #[test]
    fn the_fixtures_dependency_stage_is_found() {
        assert_eq!(named_stages(FIXTURE), ["deps", "service"]);
        assert_eq!(dependency_stage(FIXTURE), Some("deps".to_owned()));
        assert_eq!(choose(FIXTURE, None).unwrap(), Some("deps".to_owned()));
        assert_eq!(choose(FIXTURE, Some("")).unwrap(), None);
        assert_eq!(
            choose(FIXTURE, Some("DEPS")).unwrap(),
            Some("deps".to_owned())
        );
    }

    #[test]
    fn copies_and_mounts_from_a_stage_count_and_an_image_does_not() {
        let copied = "FROM node:20 AS Install\nRUN npm ci\nFROM node:20-slim AS run\nCOPY --from=install /app /app\n";
        assert_eq!(dependency_stage(copied), Some("install".to_owned()));
        let mounted = "FROM base AS deps\nRUN x\nFROM base AS app\nRUN --mount=type=bind,from=deps,target=/d cp -r /d /app\n";
        assert_eq!(dependency_stage(mounted), Some("deps".to_owned()));
        let single = "FROM node:20 AS app\nRUN npm ci\n";
        assert_eq!(dependency_stage(single), None);
    }

    #[test]
    fn a_stage_that_declares_the_service_argument_is_per_service() {
        assert!(!reads_arg(FIXTURE, "deps", "SERVICE"));
        let per_service =
            "FROM base AS tools\nARG SERVICE\nFROM tools AS deps\nRUN x\nFROM deps AS app\n";
        assert!(reads_arg(per_service, "deps", "SERVICE"));
        assert!(reads_arg(per_service, "tools", "SERVICE"));
        assert!(!reads_arg(per_service, "deps", "OTHER"));
    }

    #[test]
    fn a_configured_stage_the_dockerfile_lacks_is_named_with_the_ones_it_has() {
        let err = choose(FIXTURE, Some("install")).unwrap_err();
        assert!(err.contains("`install`"), "{err}");
        assert!(err.contains("deps, service"), "{err}");
    }
}
