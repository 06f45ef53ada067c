//! Who changed a service, where ECS says: its newest service deployment and the revision
//! that deployment put there (task definition; image digests as ECS resolved them).

use serde::Serialize;

use super::Ecs;
use crate::aws;

/// The newest service deployment of a service, as `status` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentSeen {
    pub arn: String,
    pub status: String,
    /// Unix seconds.
    pub created_at: Option<i64>,
    /// The task definition of its target revision.
    pub task_definition: Option<String>,
    /// (container, digest) of the target revision, as ECS resolved them.
    pub digests: Vec<(String, String)>,
}

impl DeploymentSeen {
    /// `ECS service deployment arn:… (SUCCESSFUL, created 2026-12-07T03:10:00Z)`.
    pub fn describe(&self) -> String {
        let created = self
            .created_at
            .and_then(|t| u64::try_from(t).ok())
            .map(|t| format!(", created {}", crate::timestamp::rfc3339(t)))
            .unwrap_or_default();
        format!(
            "ECS service deployment {} ({}{created})",
            self.arn, self.status
        )
    }

    /// The digest ECS resolved for `container`.
    pub fn digest_of(&self, container: &str) -> Option<&str> {
        self.digests
            .iter()
            .find(|(name, _)| name == container)
            .map(|(_, digest)| digest.as_str())
    }
}

impl Ecs {
    /// The newest service deployment of `ecs_service` and its target revision; `Ok(None)`
    /// when ECS lists none, `Err` with why when the account cannot be asked (no service
    /// deployments there, no permission).
    pub async fn newest_deployment(
        &self,
        ecs_service: &str,
    ) -> Result<Option<DeploymentSeen>, String> {
        let listed = self.list_deployments(ecs_service, None).await?;
        let Some(newest) = listed.first() else {
            return Ok(None);
        };
        let mut seen = DeploymentSeen {
            arn: newest
                .service_deployment_arn()
                .unwrap_or_default()
                .to_owned(),
            status: newest.status().map_or("?", |s| s.as_str()).to_owned(),
            created_at: newest.created_at().map(|t| t.secs()),
            task_definition: None,
            digests: Vec::new(),
        };
        if let Some(revision) = newest.target_service_revision_arn() {
            let described = self
                .client
                .describe_service_revisions()
                .service_revision_arns(revision)
                .send()
                .await
                .map_err(|err| {
                    aws::explain(
                        "ecs:DescribeServiceRevisions",
                        &err,
                        self.profile.as_deref(),
                    )
                    .to_string()
                })?;
            if let Some(revision) = described.service_revisions().first() {
                seen.task_definition = revision.task_definition().map(str::to_owned);
                seen.digests = revision
                    .container_images()
                    .iter()
                    .filter_map(|c| {
                        Some((c.container_name()?.to_owned(), c.image_digest()?.to_owned()))
                    })
                    .collect();
            }
        }
        Ok(Some(seen))
    }
}
