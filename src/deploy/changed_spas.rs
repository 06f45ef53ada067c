//! The SPA half of `--changed` in graph mode: the git SHA each SPA's bucket records is
//! read first (`recorded_shas`), then each SPA is decided from it (`spa_base`, pure;
//! a usable SHA is compared with HEAD on the workspace graph). No recorded SHA, a
//! `-dirty` one, or one missing from history deploys.

use anyhow::{Context as _, Result};

use crate::aws::Aws;
use crate::changes::decide::decide_base;
use crate::changes::graph::Subject;
use crate::changes::live;
use crate::checkout::Checkout;
use crate::model::environment::Environment;
use crate::model::plan::{Action, Decision, Plan};

/// The workspace files every SPA build reads besides the lockfile (compared by
/// importer): a change in one rebuilds every SPA in graph mode.
const SPA_FAN_OUT: [&str; 2] = ["package.json", "pnpm-workspace.yaml"];

/// What was read of one SPA the plan decides.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recorded {
    name: String,
    /// Its bucket in this environment (`None`: none known).
    bucket: Option<String>,
    /// The git SHA the bucket records (`None`: none; not read without a bucket).
    sha: Option<String>,
}

/// Where one SPA's decision comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Base {
    /// Decided without git.
    Decided(Decision),
    /// Compared with HEAD: the recorded SHA.
    Compare(String),
}

/// The decision for one SPA from what its bucket records, unless it needs git.
fn spa_base(recorded: &Recorded) -> Base {
    let Some(bucket) = &recorded.bucket else {
        // Preflight stops the run with the fix (no bucket to upload to).
        return Base::Decided(Decision::deploy("no bucket known: deploying"));
    };
    match &recorded.sha {
        None => Base::Decided(Decision::deploy(format!(
            "bucket {bucket} records no deployed SHA: deploying"
        ))),
        Some(sha) => Base::Compare(sha.clone()),
    }
}

/// The SHA each SPA's bucket records, for the SPAs the plan does not skip.
async fn recorded_shas(
    plan: &Plan,
    checkout: &Checkout,
    environment: &Environment,
    aws: &Aws,
) -> Result<Vec<Recorded>> {
    let s3 = aws.s3();
    let mut recorded = Vec::new();
    for spa in &checkout.platform.spas {
        if plan
            .spas
            .iter()
            .any(|step| step.name == spa.name && step.action == Action::Skip)
        {
            continue;
        }
        let bucket = environment.spa(&spa.name).bucket;
        let sha = match &bucket {
            Some(bucket) => {
                let manifest = environment
                    .lock_bucket
                    .as_deref()
                    .map(|private| crate::spa::ManifestLocation::new(private, &spa.name, bucket));
                crate::spa::deployed_sha(&s3, manifest.as_ref(), bucket).await?
            }
            None => None,
        };
        recorded.push(Recorded {
            name: spa.name.clone(),
            bucket,
            sha,
        });
    }
    Ok(recorded)
}

/// Graph mode: each SPA against the git SHA its bucket records (what `deploy status`
/// reads).
pub(super) async fn decide_spas(
    plan: &Plan,
    checkout: &Checkout,
    environment: &Environment,
    aws: &Aws,
) -> Result<Vec<(String, Decision)>> {
    let platform = &checkout.platform;
    let head = git2::Oid::from_str(&plan.head.sha).context("HEAD is not a commit id")?;
    let mut graph = live::graph_cache(platform, &checkout.repo, head);
    let fan_out = SPA_FAN_OUT.map(str::to_owned);
    let mut decisions = Vec::new();
    for recorded in recorded_shas(plan, checkout, environment, aws).await? {
        let sha = match spa_base(&recorded) {
            Base::Decided(decision) => {
                decisions.push((recorded.name, decision));
                continue;
            }
            Base::Compare(sha) => sha,
        };
        let spa = platform
            .spas
            .iter()
            .find(|spa| spa.name == recorded.name)
            .context("an SPA read but not configured")?;
        let dir = spa.dir.to_string_lossy().trim_end_matches('/').to_owned();
        let inputs = platform.config.changes.inputs_of(&spa.name);
        let subject = Subject {
            name: &spa.name,
            dir: &dir,
            fan_out: &fan_out,
            inputs: &inputs,
        };
        let decision = decide_base(checkout.repo.git(), head, &sha, "recorded", |base| {
            Ok(graph.cause(base, &subject)?.map(Decision::because))
        })?;
        decisions.push((recorded.name, decision));
    }
    Ok(decisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_spa_is_decided_from_what_its_bucket_records() {
        let recorded = |bucket: Option<&str>, sha: Option<&str>| Recorded {
            name: "admin-ui".to_owned(),
            bucket: bucket.map(str::to_owned),
            sha: sha.map(str::to_owned),
        };
        let cases = [
            (
                recorded(None, None),
                Base::Decided(Decision::deploy("no bucket known: deploying")),
            ),
            (
                recorded(Some("admin-ui-sandbox"), None),
                Base::Decided(Decision::deploy(
                    "bucket admin-ui-sandbox records no deployed SHA: deploying",
                )),
            ),
            (
                recorded(Some("admin-ui-sandbox"), Some("abc-dirty")),
                Base::Compare("abc-dirty".to_owned()),
            ),
            (
                recorded(Some("admin-ui-sandbox"), Some("abc")),
                Base::Compare("abc".to_owned()),
            ),
        ];
        for (recorded, expected) in cases {
            assert_eq!(spa_base(&recorded), expected, "{recorded:?}");
        }
    }
}
