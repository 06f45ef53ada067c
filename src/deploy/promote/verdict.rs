//! The promote verdict (issue 24): per service, promote, skip (the target runs that
//! digest already) or refuse, from what both environments run and what their registries
//! hold, as read before ([`super::decide`]); then the plan's services set from the
//! verdicts, or the refusal naming each service that cannot be promoted. Pure: no AWS,
//! no registry here, so every branch is a table test.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};

use crate::aws::ecs::{image_tag_of, LiveImage};
use crate::model::plan::{Action, PromotedImage, ServiceStep};
use crate::terraform::Roll;

/// What was read of one service in both environments.
#[derive(Debug, Clone, Default)]
pub(super) struct Read<'a> {
    /// What the source's ECS runs (`None`: the service was not found there).
    pub source: Option<&'a LiveImage>,
    /// The service's repository in the source registry (`host/repository`), for messages.
    pub source_place: String,
    /// The source registry's digest of the source's tag (asked only for a commit's tag;
    /// `None`: not asked, or the registry has no such tag).
    pub source_digest: Option<String>,
    /// The target registry's digest of the tag the target runs (asked only when the
    /// source's digest is known; `None`: the target runs nothing tagged, or no digest).
    pub target_digest: Option<String>,
}

/// What the promotion does to one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Copy `tag` (`digest`) and roll it.
    Promote {
        tag: String,
        digest: String,
        target_digest: Option<String>,
    },
    /// The target runs that digest already.
    Skip { tag: String, digest: String },
    /// Why it cannot be promoted.
    Refuse(String),
}

/// Whether a tag names a commit's image: a SHA, not `latest`, not `<sha>-dirty`.
fn is_commit_tag(tag: &str) -> bool {
    crate::git::looks_like_sha(tag) && !tag.contains("dirty")
}

/// The image the source runs and its commit's tag, which is what the registries are
/// asked about; or why the service cannot be promoted (`from`: the source environment).
pub(super) fn source_tag<'a>(
    from: &str,
    source: Option<&'a LiveImage>,
) -> Result<(&'a str, &'a str), String> {
    match source {
        Some(LiveImage::Running { image, .. }) => match image_tag_of(image) {
            Some(tag) if is_commit_tag(tag) => Ok((image, tag)),
            Some(tag) => Err(format!(
                "{from} runs :{tag}, not a commit's image (only images tagged with a commit are promoted: not `latest`, not `-dirty`)"
            )),
            None => Err(format!("{from} runs {image}, which has no tag")),
        },
        Some(LiveImage::Missing { reason }) => Err(format!("not running in {from} ({reason})")),
        Some(LiveImage::NoContainer { task_definition }) => Err(format!(
            "{from}'s task definition {task_definition} has no container for it"
        )),
        None => Err(format!("not found in {from}")),
    }
}

/// The verdict for one service from what was read of it.
pub(super) fn verdict(from: &str, read: &Read<'_>) -> Verdict {
    let (image, tag) = match source_tag(from, read.source) {
        Ok((image, tag)) => (image, tag.to_owned()),
        Err(why) => return Verdict::Refuse(why),
    };
    let Some(digest) = read.source_digest.clone() else {
        return Verdict::Refuse(format!(
            "{from} runs {image}, but {from}'s registry has no {}:{tag}",
            read.source_place
        ));
    };
    if read.target_digest.as_deref() == Some(digest.as_str()) {
        Verdict::Skip { tag, digest }
    } else {
        Verdict::Promote {
            tag,
            digest,
            target_digest: read.target_digest.clone(),
        }
    }
}

/// `sha256:0123456789ab` (12 hex digits), for tables and messages.
pub(super) fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// Sets each service a verdict was given for (`verdicts`: by service name): promoted
/// ones deploy their source's tag, skipped ones are skipped with why. Returns the
/// images to record in the plan, in the order of `services`; any refusal is the error
/// instead, naming each refused service and the others that could go alone.
pub(super) fn apply(
    services: &mut [ServiceStep],
    verdicts: &BTreeMap<String, Verdict>,
    (from, to): (&str, &str),
    from_var_file: &Path,
) -> Result<Vec<PromotedImage>> {
    let mut images = Vec::new();
    let mut refused = Vec::new();
    let mut promotable = Vec::new();
    for step in services.iter_mut() {
        let Some(verdict) = verdicts.get(&step.name) else {
            continue;
        };
        match verdict {
            Verdict::Promote {
                tag,
                digest,
                target_digest,
            } => {
                step.action = Action::Deploy;
                step.reason = format!("{from} runs it ({})", short_digest(digest));
                step.image = format!("{}:{tag}", step.repository);
                images.push(PromotedImage {
                    service: step.name.clone(),
                    tag: tag.clone(),
                    digest: digest.clone(),
                    target_digest: target_digest.clone(),
                });
            }
            Verdict::Skip { tag, digest } => {
                step.action = Action::Skip;
                step.reason = format!("{to} runs this digest already ({})", short_digest(digest));
                step.image = format!("{}:{tag}", step.repository);
                images.push(PromotedImage {
                    service: step.name.clone(),
                    tag: tag.clone(),
                    digest: digest.clone(),
                    target_digest: Some(digest.clone()),
                });
            }
            Verdict::Refuse(reason) => {
                refused.push(format!("  {}: {reason}", step.name));
                continue;
            }
        }
        promotable.push(step.name.clone());
    }
    if refused.is_empty() {
        return Ok(images);
    }
    let others = if promotable.is_empty() {
        String::new()
    } else {
        format!(
            "promote only the others (--services {}), or ",
            promotable.join(",")
        )
    };
    bail!(
        "cannot promote from {from} to {to}: {} service(s) cannot be promoted:\n{}\n{others}deploy a commit to {from} first (`deploy --var-file {}`). Nothing was copied or rolled",
        refused.len(),
        refused.join("\n"),
        from_var_file.display()
    )
}

/// The roll of a promotion: exactly the promoted services, each at its own tag (none:
/// an empty roll at the run's tag).
pub(super) fn roll(services: &[ServiceStep], image_tag: &str) -> Roll {
    let tags: BTreeMap<String, String> = services
        .iter()
        .filter(|s| s.action == Action::Deploy)
        .map(|s| (s.name.clone(), s.tag().to_owned()))
        .collect();
    match tags.values().next().cloned() {
        Some(first) => Roll::Only {
            services: tags.keys().cloned().collect(),
            tag: first,
            tags,
            renew: Vec::new(),
        },
        None => Roll::Only {
            services: Vec::new(),
            tag: image_tag.to_owned(),
            tags: BTreeMap::new(),
            renew: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "1a2b3c4";
    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn running(image: &str) -> LiveImage {
        LiveImage::Running {
            image: image.to_owned(),
            task_definition: "arn:td/api:3".to_owned(),
            rollout_state: Some("COMPLETED".to_owned()),
            running: 1,
            desired: 1,
            deployments: 1,
        }
    }

    fn read<'a>(
        source: Option<&'a LiveImage>,
        source_digest: Option<&str>,
        target_digest: Option<&str>,
    ) -> Read<'a> {
        Read {
            source,
            source_place: "127.0.0.1:5000/api".to_owned(),
            source_digest: source_digest.map(str::to_owned),
            target_digest: target_digest.map(str::to_owned),
        }
    }

    #[test]
    fn each_branch_of_the_verdict() {
        let commit = running(&format!("127.0.0.1:5000/api:{SHA}"));
        let latest = running("127.0.0.1:5000/api:latest");
        let dirty = running(&format!("127.0.0.1:5000/api:{SHA}-dirty"));
        let untagged = running("127.0.0.1:5000/api");
        let missing = LiveImage::Missing {
            reason: "service api is INACTIVE".to_owned(),
        };
        let no_container = LiveImage::NoContainer {
            task_definition: "arn:td/api:3".to_owned(),
        };
        let refuse = |why: &str| Verdict::Refuse(why.to_owned());
        let promote = |target: Option<&str>| Verdict::Promote {
            tag: SHA.to_owned(),
            digest: DIGEST.to_owned(),
            target_digest: target.map(str::to_owned),
        };
        let cases = [
            // The target runs another digest, or nothing tagged: promoted.
            (read(Some(&commit), Some(DIGEST), Some(OTHER)), promote(Some(OTHER))),
            (read(Some(&commit), Some(DIGEST), None), promote(None)),
            // The same digest: nothing to do.
            (
                read(Some(&commit), Some(DIGEST), Some(DIGEST)),
                Verdict::Skip {
                    tag: SHA.to_owned(),
                    digest: DIGEST.to_owned(),
                },
            ),
            // The source's registry lost the image.
            (
                read(Some(&commit), None, None),
                refuse("sandbox runs 127.0.0.1:5000/api:1a2b3c4, but sandbox's registry has no 127.0.0.1:5000/api:1a2b3c4"),
            ),
            // Not a commit's image, or none at all.
            (
                read(Some(&latest), None, None),
                refuse("sandbox runs :latest, not a commit's image (only images tagged with a commit are promoted: not `latest`, not `-dirty`)"),
            ),
            (
                read(Some(&dirty), None, None),
                refuse("sandbox runs :1a2b3c4-dirty, not a commit's image (only images tagged with a commit are promoted: not `latest`, not `-dirty`)"),
            ),
            (
                read(Some(&untagged), None, None),
                refuse("sandbox runs 127.0.0.1:5000/api, which has no tag"),
            ),
            (
                read(Some(&missing), None, None),
                refuse("not running in sandbox (service api is INACTIVE)"),
            ),
            (
                read(Some(&no_container), None, None),
                refuse("sandbox's task definition arn:td/api:3 has no container for it"),
            ),
            (read(None, None, None), refuse("not found in sandbox")),
        ];
        for (read, expected) in cases {
            assert_eq!(verdict("sandbox", &read), expected, "{:?}", read.source);
        }
    }

    #[test]
    fn only_a_commit_tag_is_asked_of_the_registries() {
        let commit = running(&format!("r/api:{SHA}"));
        assert_eq!(
            source_tag("sandbox", Some(&commit)),
            Ok((format!("r/api:{SHA}").as_str(), SHA))
        );
        for tag in ["latest", "1a2b3c4-dirty", "v1.2"] {
            let image = running(&format!("r/api:{tag}"));
            assert!(source_tag("sandbox", Some(&image)).is_err(), "{tag}");
        }
        assert!(is_commit_tag(SHA));
        assert!(!is_commit_tag("latest"));
        assert_eq!(short_digest(DIGEST), "sha256:0123456789ab");
        assert_eq!(short_digest("sha256:ab"), "sha256:ab");
    }

    fn step(name: &str) -> ServiceStep {
        ServiceStep {
            name: name.to_owned(),
            action: Action::Check,
            reason: "promoted if the source runs a commit's image the target does not".into(),
            cause: None,
            repository: name.to_owned(),
            image: format!("{name}:fffffff"),
            restore: None,
        }
    }

    #[test]
    fn verdicts_set_the_services_and_the_roll() {
        let mut services = vec![step("api"), step("auth"), step("files")];
        let verdicts = BTreeMap::from([
            (
                "api".to_owned(),
                Verdict::Promote {
                    tag: SHA.to_owned(),
                    digest: DIGEST.to_owned(),
                    target_digest: Some(OTHER.to_owned()),
                },
            ),
            (
                "auth".to_owned(),
                Verdict::Skip {
                    tag: "2b3c4d5".to_owned(),
                    digest: OTHER.to_owned(),
                },
            ),
        ]);
        let images = apply(
            &mut services,
            &verdicts,
            ("sandbox", "prod"),
            Path::new("tfvars/sandbox.tfvars"),
        )
        .unwrap();
        let shown: Vec<String> = services
            .iter()
            .map(|s| format!("{} {:?} {} {}", s.name, s.action, s.image, s.reason))
            .collect();
        assert_eq!(
            shown,
            [
                "api Deploy api:1a2b3c4 sandbox runs it (sha256:0123456789ab)",
                "auth Skip auth:2b3c4d5 prod runs this digest already (sha256:fedcba987654)",
                "files Check files:fffffff promoted if the source runs a commit's image the target does not",
            ]
        );
        let recorded: Vec<(&str, &str, Option<&str>)> = images
            .iter()
            .map(|i| {
                (
                    i.service.as_str(),
                    i.tag.as_str(),
                    i.target_digest.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            recorded,
            [("api", SHA, Some(OTHER)), ("auth", "2b3c4d5", Some(OTHER))]
        );
        assert_eq!(
            roll(&services, "fffffff"),
            Roll::Only {
                services: vec!["api".to_owned()],
                tag: SHA.to_owned(),
                tags: BTreeMap::from([("api".to_owned(), SHA.to_owned())]),
                renew: Vec::new(),
            }
        );
    }

    #[test]
    fn nothing_to_promote_is_an_empty_roll_at_the_runs_tag() {
        let mut services = vec![step("api")];
        let verdicts = BTreeMap::from([(
            "api".to_owned(),
            Verdict::Skip {
                tag: SHA.to_owned(),
                digest: DIGEST.to_owned(),
            },
        )]);
        apply(
            &mut services,
            &verdicts,
            ("sandbox", "prod"),
            Path::new("s.tfvars"),
        )
        .unwrap();
        assert_eq!(
            roll(&services, "fffffff"),
            Roll::Only {
                services: Vec::new(),
                tag: "fffffff".to_owned(),
                tags: BTreeMap::new(),
                renew: Vec::new(),
            }
        );
    }

    #[test]
    fn a_refusal_names_each_refused_service_and_the_others() {
        let mut services = vec![step("api"), step("auth"), step("files")];
        let promote = Verdict::Promote {
            tag: SHA.to_owned(),
            digest: DIGEST.to_owned(),
            target_digest: None,
        };
        let verdicts = BTreeMap::from([
            ("api".to_owned(), promote),
            (
                "auth".to_owned(),
                Verdict::Refuse("sandbox runs :latest".to_owned()),
            ),
            (
                "files".to_owned(),
                Verdict::Refuse("not found in sandbox".to_owned()),
            ),
        ]);
        let err = apply(
            &mut services,
            &verdicts,
            ("sandbox", "prod"),
            Path::new("tfvars/sandbox.tfvars"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot promote from sandbox to prod: 2 service(s) cannot be promoted:\n  auth: sandbox runs :latest\n  files: not found in sandbox\npromote only the others (--services api), or deploy a commit to sandbox first (`deploy --var-file tfvars/sandbox.tfvars`). Nothing was copied or rolled"
        );
        // All refused: no `--services` to suggest.
        let mut services = vec![step("auth")];
        let verdicts = BTreeMap::from([("auth".to_owned(), Verdict::Refuse("x".to_owned()))]);
        let err = apply(
            &mut services,
            &verdicts,
            ("sandbox", "prod"),
            Path::new("s.tfvars"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("x\ndeploy a commit to sandbox first"), "{err}");
    }
}
