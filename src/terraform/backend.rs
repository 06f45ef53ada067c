//! Where the terraform root keeps its state: the backend `terraform init` recorded.

/// The bucket of an S3 terraform backend, from `<tf dir>/.terraform/terraform.tfstate`
/// (written by `terraform init`): the platform's state bucket is private and already
/// there, so it is the natural home of the deploy lock. The last resort of
/// `model::environment::Environment::lock_bucket`.
pub fn state_bucket(terraform_dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(terraform_dir.join(".terraform/terraform.tfstate")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    (json["backend"]["type"] == "s3")
        .then(|| {
            json["backend"]["config"]["bucket"]
                .as_str()
                .map(str::to_owned)
        })
        .flatten()
        .filter(|bucket| !bucket.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s3_backend_bucket_is_found() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(state_bucket(dir.path()), None);
        std::fs::create_dir_all(dir.path().join(".terraform")).unwrap();
        std::fs::write(
            dir.path().join(".terraform/terraform.tfstate"),
            r#"{"version":3,"backend":{"type":"s3","config":{"bucket":"platform-tfstate","key":"aws.tfstate"}}}"#,
        )
        .unwrap();
        assert_eq!(
            state_bucket(dir.path()).as_deref(),
            Some("platform-tfstate")
        );
    }
}
