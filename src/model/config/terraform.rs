//! `[terraform]` of `deploy.toml`: the terraform root, the variables a roll sets, the
//! resources `-target`ed per service, and the names of the outputs deploy reads.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[terraform]`: how the closing apply is run and what it is asked for.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TerraformConfig {
    /// The terraform root, relative to the repository root; `--var-file` is relative to it.
    pub dir: PathBuf,
    /// Variable holding the global tag of a full deploy.
    pub image_tag_var: String,
    /// Variable holding the per-service tag map of a partial roll.
    pub image_tags_var: String,
    /// Resource addresses `-target`ed per service in a partial roll.
    pub targets: Vec<String>,
    /// Names of the `terraform output`s that name things living in AWS.
    pub outputs: TerraformOutputs,
}

impl Default for TerraformConfig {
    fn default() -> Self {
        Self {
            dir: "infra/terraform/aws".into(),
            image_tag_var: "image_tag".into(),
            image_tags_var: "image_tags".into(),
            targets: vec![
                r#"aws_ecs_task_definition.service["{service}"]"#.into(),
                r#"aws_ecs_service.service["{service}"]"#.into(),
            ],
            outputs: TerraformOutputs::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TerraformOutputs {
    pub ecs_cluster: String,
    pub spa_buckets: String,
    pub spa_distribution_ids: String,
    /// The API's base URL for health checks (`health.base_url` wins).
    pub api_base_url: String,
    /// The private bucket holding the deploy lock (`lock.bucket` wins).
    pub deploy_lock_bucket: String,
    /// The tag per service terraform last applied (a map), compared with what runs to
    /// tell drift (`deploy status`, `--changed`); absent: only the history is compared.
    pub image_tags: String,
}

impl Default for TerraformOutputs {
    fn default() -> Self {
        Self {
            ecs_cluster: "ecs_cluster_name".into(),
            spa_buckets: "spa_buckets".into(),
            spa_distribution_ids: "spa_distribution_ids".into(),
            api_base_url: "api_base_url".into(),
            deploy_lock_bucket: "deploy_lock_bucket".into(),
            image_tags: "image_tags".into(),
        }
    }
}
