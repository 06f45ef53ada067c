//! What a run did, in one place of its JSON document (`done`), as its summary table and
//! its history record say it: per service how far it got (image, roll, ECS, health
//! checks), the SPAs whose release went live, and the automatic rollback. A failed run's
//! document is read from here, not guessed from which lists are empty.

use std::fmt;

use serde::Serialize;

use super::RunReport;
use crate::docker::images::ImageStatus;
use crate::model::plan::Action;

/// `done`: what the run did, complete for every service and SPA it planned to deploy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Done {
    /// Whether terraform applied the roll (every service below at once).
    pub rolled: bool,
    pub services: Vec<ServiceDone>,
    pub spas: Vec<SpaDone>,
    /// The automatic rollback after a failed verify: whether every service it put back
    /// settled (`null`: there was none).
    pub restored: Option<bool>,
}

/// One service the run deploys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceDone {
    pub service: String,
    pub image: String,
    /// `pushed`, `copied`, `already_in_registry`, `failed`, or `not_started`.
    pub image_status: ImageStatus,
    /// Whether the apply that rolls it ran to completion.
    pub rolled: bool,
    /// Whether ECS settled it on the new tag (`null`: not waited for).
    pub steady: Option<bool>,
    /// Whether its health checks answered (`null`: none ran).
    pub healthy: Option<bool>,
}

/// One SPA the run deploys (or restores).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpaDone {
    pub name: String,
    /// Whether its files went up and its release is live.
    pub deployed: bool,
    /// The release now live, when it did.
    pub release: Option<u64>,
}

impl RunReport {
    /// What the run did, from its report.
    pub fn done(&self) -> Done {
        let services = self
            .plan
            .deploying_services()
            .map(|step| {
                let image = self.images.iter().find(|i| i.service == step.name);
                let checks: Vec<_> = self
                    .health
                    .iter()
                    .filter(|c| c.service == step.name)
                    .collect();
                ServiceDone {
                    service: step.name.clone(),
                    image: image.map_or(&step.image, |i| &i.image).clone(),
                    image_status: image.map_or(ImageStatus::NotStarted, |i| i.status),
                    rolled: self.rolled(&step.name),
                    steady: self
                        .rollouts
                        .iter()
                        .find(|r| r.service == step.name)
                        .map(|r| r.steady),
                    healthy: (!checks.is_empty()).then(|| checks.iter().all(|c| c.healthy)),
                }
            })
            .collect();
        let spas = self
            .plan
            .spas_to(Action::Deploy)
            .map(|step| {
                let done = self.spas.iter().find(|s| s.name == step.name);
                SpaDone {
                    name: step.name.clone(),
                    deployed: done.is_some(),
                    release: done.and_then(|s| s.release),
                }
            })
            .collect();
        Done {
            rolled: self.applied,
            services,
            spas,
            restored: self.restore.as_ref().map(super::RestoreReport::settled),
        }
    }

    /// The document `--output json` prints at the end of a run: the report and `done`.
    pub fn document(&self) -> RunDocument<'_> {
        RunDocument {
            done: self.done(),
            report: self,
        }
    }
}

/// The report with what it did ([`RunReport::document`]); as text, the summary.
#[derive(Serialize)]
pub struct RunDocument<'a> {
    pub done: Done,
    #[serde(flatten)]
    pub report: &'a RunReport,
}

impl fmt::Display for RunDocument<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.report.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::images::ImageResult;
    use crate::planning::tests::plan;

    #[test]
    fn a_run_that_failed_at_its_first_build_names_every_service_not_started() {
        let plan = plan(Default::default(), false, false).unwrap();
        let mut report = RunReport::new(&plan);
        let first = plan.deploying_services().next().unwrap().name.clone();
        report.images = vec![ImageResult {
            service: first.clone(),
            image: format!("registry/{first}:0123456"),
            status: ImageStatus::Failed,
            build_secs: Some(1.0),
            push_secs: None,
            error: Some("npm ci failed".into()),
            dependency_stage: None,
        }];
        let done = report.done();
        assert!(!done.rolled);
        assert_eq!(done.services.len(), plan.deploying_services().count());
        assert_eq!(done.services[0].image_status, ImageStatus::Failed);
        assert!(done.services[1..]
            .iter()
            .all(|s| s.image_status == ImageStatus::NotStarted && !s.rolled));
        assert!(done.services.iter().all(|s| s.steady.is_none()));
        assert_eq!(done.spas.len(), plan.spas_to(Action::Deploy).count());
        assert!(done.spas.iter().all(|s| !s.deployed));
        assert_eq!(done.restored, None);
        let json = serde_json::to_value(report.document()).unwrap();
        assert_eq!(json["done"]["services"][0]["image_status"], "failed");
        assert_eq!(json["applied"], false);
    }
}
