//! The `--changed` decision for one service, from what ECS runs and the repository:
//! deploy or skip, and why. No AWS here: the live image is fetched before
//! ([`crate::changes::live`]), so every live-tag case is testable on a temporary repo.

use anyhow::Result;
use git2::{Oid, Repository};

use crate::aws::ecs::{self, LiveImage};
use crate::changes::diff::{self, DiffCache, LiveBase};
use crate::model::plan::Decision;

/// Decides for one service: `live` is what ECS runs, `container` the container its
/// image was looked up in, `inputs` the paths its image depends on. `diffs` holds the
/// repository and HEAD, and diffs each distinct live commit once for all services.
/// Anything that cannot serve as a diff base (SPEC §4 and §5: not a SHA, a dirty build,
/// a commit missing from local history, a service missing in ECS) deploys, saying why.
pub fn decide(
    live: &LiveImage,
    container: &str,
    inputs: &diff::Inputs<'_>,
    diffs: &mut DiffCache<'_>,
) -> Result<Decision> {
    let (repo, head) = (diffs.repo(), diffs.head());
    decide_with(live, container, repo, head, |base| {
        Ok(diff::reason_for(diffs.changed_paths_since(base)?, inputs).map(Decision::deploy))
    })
}

/// [`decide`] with the comparison of a usable live commit with HEAD left to
/// `changed_since` (the runbook's diff, or the workspace graph): `None` when nothing
/// the service depends on changed.
pub fn decide_with(
    live: &LiveImage,
    container: &str,
    repo: &Repository,
    head: Oid,
    changed_since: impl FnOnce(Oid) -> Result<Option<Decision>>,
) -> Result<Decision> {
    let image = match live {
        LiveImage::Missing { reason } => {
            return Ok(Decision::deploy(format!("{reason}: deploying")))
        }
        LiveImage::NoContainer { task_definition } => {
            return Ok(Decision::deploy(format!(
                "live task definition {task_definition} has no container {container}"
            )))
        }
        LiveImage::Running { image, .. } => image,
    };
    let Some(tag) = ecs::image_tag_of(image) else {
        return Ok(Decision::deploy(format!(
            "live image {image} has no tag to diff against"
        )));
    };
    let tag = tag.to_owned();
    decide_base(repo, head, &tag, "live", changed_since)
}

/// The decision for a recorded SHA (`tag`, from an image tag or an SPA bucket; `what`
/// names where it comes from: `live`, `recorded`). Anything that cannot serve as a
/// diff base deploys, saying why.
pub fn decide_base(
    repo: &Repository,
    head: Oid,
    tag: &str,
    what: &str,
    changed_since: impl FnOnce(Oid) -> Result<Option<Decision>>,
) -> Result<Decision> {
    Ok(match diff::resolve_tag(repo, tag) {
        LiveBase::NotASha(tag) => Decision::deploy(format!("{what} tag {tag:?} is not a git SHA")),
        LiveBase::Dirty(tag) => Decision::deploy(format!(
            "{what} tag {tag} is a build of uncommitted code: never a diff base"
        )),
        LiveBase::UnknownCommit(tag) => Decision::deploy(format!(
            "{what} commit {tag} is not in local history (shallow clone?): `git fetch --unshallow origin` or `git fetch origin` would fix it"
        )),
        LiveBase::Commit(base) if base == head => {
            Decision::skip(format!("{what} tag {tag} is HEAD"))
        }
        LiveBase::Commit(base) => match changed_since(base)? {
            Some(decision) => decision,
            None => Decision::skip(format!("unchanged since {what} {tag}")),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use git2::Oid;

    use super::*;
    use crate::git::testing::TestRepo;

    /// The platform's shape: service `api` beside `auth`, one shared package, the
    /// lockfile and the Dockerfile's `.npmrc` as build inputs.
    const LIVE_TREE: &[(&str, &str)] = &[
        ("services/api/src/a.ts", "1"),
        ("services/api/src/b.ts", "1"),
        ("services/auth/src/a.ts", "1"),
        ("packages/common/index.ts", "1"),
        ("pnpm-lock.yaml", "1"),
        ("infra/docker/.npmrc", "1"),
        ("docs/runbook.md", "1"),
    ];

    /// A repository whose first commit is what runs (`live`) and whose HEAD adds
    /// `changes` on top (HEAD is `live` itself when there are none).
    fn repo_with(changes: &[(&str, &str)]) -> (TestRepo, Oid, Oid) {
        let repo = TestRepo::new();
        let live = repo.commit(LIVE_TREE);
        let head = if changes.is_empty() {
            live
        } else {
            repo.commit(changes)
        };
        (repo, live, head)
    }

    fn running(image: &str) -> LiveImage {
        LiveImage::Running {
            image: image.to_owned(),
            task_definition: "api:3".into(),
            rollout_state: Some("COMPLETED".into()),
            running: 1,
            desired: 1,
            deployments: 1,
        }
    }

    /// The decision for service `api` running `live` in `repo` at `head`.
    fn decide_api(repo: &TestRepo, head: Oid, live: &LiveImage) -> Decision {
        let shared = [PathBuf::from("packages/common")];
        let build = [
            PathBuf::from("pnpm-lock.yaml"),
            PathBuf::from("infra/docker/.npmrc"),
        ];
        let inputs = diff::Inputs {
            service_dir: "services/api".as_ref(),
            shared_packages: &shared,
            build_inputs: &build,
        };
        let mut diffs = DiffCache::new(&repo.repo, head, Vec::new());
        decide(live, "api", &inputs, &mut diffs).unwrap()
    }

    /// `api` running the image tagged with the first 7 hex digits of `commit`.
    fn decide_api_at(repo: &TestRepo, head: Oid, commit: Oid) -> Decision {
        let tag = &commit.to_string()[..7];
        decide_api(repo, head, &running(&format!("1234.dkr.ecr.x/api:{tag}")))
    }

    #[test]
    fn a_service_missing_from_ecs_deploys() {
        let (repo, _, head) = repo_with(&[]);
        let live = LiveImage::Missing {
            reason: "ECS service api not in cluster main (MISSING)".into(),
        };
        assert_eq!(
            decide_api(&repo, head, &live),
            Decision::deploy("ECS service api not in cluster main (MISSING): deploying")
        );
    }

    #[test]
    fn a_task_definition_without_the_container_deploys() {
        let (repo, _, head) = repo_with(&[]);
        let live = LiveImage::NoContainer {
            task_definition: "arn:aws:ecs:task-definition/api:3".into(),
        };
        assert_eq!(
            decide_api(&repo, head, &live),
            Decision::deploy(
                "live task definition arn:aws:ecs:task-definition/api:3 has no container api"
            )
        );
    }

    #[test]
    fn an_untagged_image_deploys() {
        let (repo, _, head) = repo_with(&[]);
        assert_eq!(
            decide_api(&repo, head, &running("1234.dkr.ecr.x/api@sha256:00ff")),
            Decision::deploy(
                "live image 1234.dkr.ecr.x/api@sha256:00ff has no tag to diff against"
            )
        );
    }

    #[test]
    fn a_tag_that_is_not_a_sha_deploys() {
        let (repo, _, head) = repo_with(&[]);
        assert_eq!(
            decide_api(&repo, head, &running("1234.dkr.ecr.x/api:latest")),
            Decision::deploy(r#"live tag "latest" is not a git SHA"#)
        );
    }

    #[test]
    fn a_dirty_build_is_never_a_diff_base() {
        // Even when the SHA before -dirty is HEAD itself: the image has other files.
        let (repo, _, head) = repo_with(&[]);
        let tag = format!("{}-dirty", &head.to_string()[..7]);
        assert_eq!(
            decide_api(&repo, head, &running(&format!("api:{tag}"))),
            Decision::deploy(format!(
                "live tag {tag} is a build of uncommitted code: never a diff base"
            ))
        );
    }

    #[test]
    fn a_sha_missing_from_local_history_deploys_and_says_how_to_fetch() {
        let (repo, _, head) = repo_with(&[]);
        // A real commit id of another repository: hex, the right length, not here.
        let elsewhere = TestRepo::new().commit(&[("x", "y")]);
        let tag = &elsewhere.to_string()[..7];
        assert_eq!(
            decide_api_at(&repo, head, elsewhere),
            Decision::deploy(format!(
                "live commit {tag} is not in local history (shallow clone?): `git fetch --unshallow origin` or `git fetch origin` would fix it"
            ))
        );
    }

    #[test]
    fn the_live_tag_at_head_is_skipped() {
        let (repo, live, head) = repo_with(&[]);
        let tag = &live.to_string()[..7];
        assert_eq!(
            decide_api_at(&repo, head, live),
            Decision::skip(format!("live tag {tag} is HEAD"))
        );
    }

    #[test]
    fn changes_outside_the_inputs_leave_it_unchanged() {
        // Another service, the docs, and a sibling directory sharing the name's prefix.
        let (repo, live, head) = repo_with(&[
            ("services/auth/src/a.ts", "2"),
            ("docs/runbook.md", "2"),
            ("services/api-gateway/x.ts", "1"),
        ]);
        let tag = &live.to_string()[..7];
        assert_eq!(
            decide_api_at(&repo, head, live),
            Decision::skip(format!("unchanged since live {tag}"))
        );
    }

    #[test]
    fn a_change_in_the_service_dir_names_the_path() {
        let (repo, live, head) = repo_with(&[("services/api/src/a.ts", "2")]);
        assert_eq!(
            decide_api_at(&repo, head, live),
            Decision::deploy("services/api/src/a.ts changed")
        );
        let (repo, live, head) = repo_with(&[
            ("services/api/src/a.ts", "2"),
            ("services/api/src/b.ts", "2"),
        ]);
        assert_eq!(
            decide_api_at(&repo, head, live),
            Decision::deploy("services/api/src/a.ts and 1 more changed")
        );
    }

    #[test]
    fn a_shared_package_change_deploys_every_service() {
        let (repo, live, head) = repo_with(&[("packages/common/index.ts", "2")]);
        assert_eq!(
            decide_api_at(&repo, head, live),
            Decision::deploy("shared package packages/common changed")
        );
    }

    #[test]
    fn a_build_input_change_deploys_and_the_lockfile_is_named_as_such() {
        let (repo, live, head) = repo_with(&[("infra/docker/.npmrc", "2")]);
        assert_eq!(
            decide_api_at(&repo, head, live),
            Decision::deploy("build input infra/docker/.npmrc changed")
        );
        // The most specific reason first: the lockfile wins over the service's own files.
        let (repo, live, head) =
            repo_with(&[("services/api/src/a.ts", "2"), ("pnpm-lock.yaml", "2")]);
        assert_eq!(
            decide_api_at(&repo, head, live),
            Decision::deploy("lockfile pnpm-lock.yaml changed")
        );
    }
}
