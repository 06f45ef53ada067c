//! What BuildKit's progress says of a build's steps: how many of the Dockerfile's steps
//! ran and how many came from a cache, and which layers the daemon pulled for a cache
//! hit (a registry cache's), for the registry build cache's report.

use std::collections::HashMap;

use serde::Serialize;

/// A build's steps as BuildKit reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildSteps {
    /// The Dockerfile's steps (`[stage n/m] RUN …`, `COPY`, `WORKDIR`; not `FROM`, not
    /// BuildKit's own `[internal]` ones) that completed.
    pub steps: u32,
    /// Of those, the ones BuildKit took from a cache (its own, or one it imported).
    pub cached: u32,
    /// The layers (blob digests) the daemon pulled from a registry for a cache hit
    /// (BuildKit's `pulling sha256:…`; it gives no byte counts).
    pub pulled: Vec<String>,
}

impl BuildSteps {
    /// Every step came from a cache (and there was at least one).
    pub fn all_cached(&self) -> bool {
        self.steps > 0 && self.cached == self.steps
    }
}

/// Reads BuildKit's status messages of one build into [`BuildSteps`].
#[derive(Debug, Default)]
pub struct StepTally {
    /// Per vertex digest: is it a Dockerfile step, was it cached, did it complete.
    vertices: HashMap<String, Vertex>,
    /// The layers pulled (status `pulling sha256:…`), in order, once each.
    pulled: Vec<String>,
}

#[derive(Debug, Default, Clone)]
struct Vertex {
    step: bool,
    /// The stage of `[deps 3/5] …`; none for an unnamed stage's `[2/3] …`.
    stage: Option<String>,
    cached: bool,
    completed: bool,
}

impl StepTally {
    /// One vertex of the status: its name (when given), cached and completed flags.
    pub fn vertex(&mut self, digest: &str, name: &str, cached: bool, completed: bool) {
        let entry = self.vertices.entry(digest.to_owned()).or_default();
        if !name.is_empty() {
            entry.step = is_dockerfile_step(name);
            entry.stage = stage_of(name);
        }
        entry.cached |= cached;
        entry.completed |= completed;
    }

    /// One status line of a vertex: a layer pulled when it reads `pulling sha256:…`.
    pub fn status(&mut self, id: &str) {
        if let Some(digest) = id.strip_prefix("pulling ") {
            if digest.starts_with("sha256:") && !self.pulled.iter().any(|d| d == digest) {
                self.pulled.push(digest.to_owned());
            }
        }
    }

    pub fn summary(&self) -> BuildSteps {
        self.summary_where(|_| true)
    }

    /// The steps of each named stage (the layers pulled are the build's).
    pub fn by_stage(&self) -> HashMap<String, BuildSteps> {
        let stages: std::collections::BTreeSet<&String> = self
            .vertices
            .values()
            .filter_map(|v| v.stage.as_ref())
            .collect();
        stages
            .into_iter()
            .map(|stage| {
                let summary = self.summary_where(|v| v.stage.as_ref() == Some(stage));
                (stage.clone(), summary)
            })
            .collect()
    }

    fn summary_where(&self, wanted: impl Fn(&Vertex) -> bool) -> BuildSteps {
        let done = self
            .vertices
            .values()
            .filter(|v| v.step && v.completed && wanted(v));
        let (mut steps, mut cached) = (0, 0);
        for vertex in done {
            steps += 1;
            if vertex.cached {
                cached += 1;
            }
        }
        BuildSteps {
            steps,
            cached,
            pulled: self.pulled.clone(),
        }
    }
}

/// `deps` of `[deps 3/4] RUN …`.
fn stage_of(name: &str) -> Option<String> {
    let label = name.strip_prefix('[')?.split_once(']')?.0;
    let mut words = label.split_whitespace();
    let (first, second) = (words.next()?, words.next());
    second.map(|_| first.to_ascii_lowercase())
}

/// `[deps 3/4] RUN …` or `[2/3] COPY …`, but not `[internal] …` nor a `FROM` (resolved,
/// never built).
fn is_dockerfile_step(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('[') else {
        return false;
    };
    let Some((label, instruction)) = rest.split_once(']') else {
        return false;
    };
    let numbered = label
        .split_whitespace()
        .last()
        .is_some_and(|n| n.contains('/') && n.chars().all(|c| c.is_ascii_digit() || c == '/'));
    let keyword = instruction.split_whitespace().next().unwrap_or_default();
    numbered && !keyword.eq_ignore_ascii_case("FROM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dockerfiles_own_steps_count() {
        assert!(is_dockerfile_step("[deps 4/4] RUN --mount=type=cache x"));
        assert!(is_dockerfile_step("[2/3] COPY a b"));
        assert!(!is_dockerfile_step(
            "[deps 1/4] FROM docker.io/library/busybox"
        ));
        assert!(!is_dockerfile_step("[internal] load build context"));
        assert!(!is_dockerfile_step(
            "importing cache manifest from r/api:cache-deps"
        ));
        assert!(!is_dockerfile_step("exporting to image"));
    }

    #[test]
    fn a_tally_counts_completed_steps_their_cache_and_the_bytes_downloaded() {
        let mut tally = StepTally::default();
        tally.vertex("a", "[deps 2/3] WORKDIR /app", false, false);
        tally.vertex("a", "", true, true);
        tally.vertex("b", "[deps 3/3] RUN install", false, true);
        tally.vertex("c", "[internal] load metadata", false, true);
        tally.status("pulling sha256:1");
        tally.status("pulling sha256:1");
        tally.status("pulling sha256:2");
        tally.status("extracting sha256:3");
        tally.status("exporting layers");
        let summary = tally.summary();
        assert_eq!(
            summary,
            BuildSteps {
                steps: 2,
                cached: 1,
                pulled: vec!["sha256:1".to_owned(), "sha256:2".to_owned()],
            }
        );
        assert!(!summary.all_cached());
        assert_eq!(tally.by_stage()["deps"].steps, 2);
        tally.vertex("d", "[service 1/2] COPY x y", false, true);
        assert_eq!(tally.by_stage()["deps"].cached, 1);
        assert_eq!(tally.by_stage()["service"].steps, 1);
        tally.vertex("b", "", true, true);
        assert!(tally.by_stage()["deps"].all_cached());
        assert!(!tally.summary().all_cached());
    }
}
