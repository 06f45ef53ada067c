//! The run's observers: its history record (`ledger`) and the webhook (`notices`).
//! They are told when the run holds the lock and when it ends, and read the stage a
//! failure happened in from the run's stages; no step of the run calls them.

use std::time::Instant;

use anyhow::Result;

use super::ledger::{Before, Ledger};
use super::run::{Ready, Run};
use crate::notify::{Event, Notifier};
use crate::report::RunReport;

pub(super) struct Observers {
    notifier: Option<Notifier>,
    ledger: Option<Ledger>,
    /// When the run began, for the duration the webhook is told.
    began: Instant,
}

impl Run<'_> {
    /// The observers, before preflight: a webhook this run cannot use is said up front.
    pub(super) fn observers(&self) -> Observers {
        Observers {
            notifier: Notifier::from_config(&self.platform.config.notify, |message| {
                self.progress.warn(message)
            }),
            ledger: None,
            began: Instant::now(),
        }
    }
}

impl Observers {
    /// The run holds the lock: the webhook hears of it, and the run's history record is
    /// written as `running` (with what ran `before`).
    pub async fn started(&mut self, run: &Run<'_>, ready: &Ready, before: &Before) {
        run.notify(self.notifier.as_ref(), ready, Event::Started, None)
            .await;
        self.ledger = run.open_ledger(ready, before).await;
    }

    /// Still under the lock: the history record rewritten with what the run did and
    /// how it ended.
    pub async fn closing(
        &mut self,
        run: &Run<'_>,
        ready: &Ready,
        report: &RunReport,
        outcome: &Result<()>,
    ) {
        run.close_ledger(self.ledger.take(), ready, report, outcome)
            .await;
    }

    /// The lock released: the webhook hears how the run ended, and the stage a failure
    /// happened in.
    pub async fn ended(self, run: &Run<'_>, ready: &Ready, outcome: &Result<()>) {
        let (event, failure) = match outcome {
            Ok(()) => (Event::Succeeded, None),
            Err(err) => (Event::Failed, Some((run.stages.current(), err))),
        };
        let ended = Some((self.began.elapsed(), failure));
        run.notify(self.notifier.as_ref(), ready, event, ended)
            .await;
    }
}
