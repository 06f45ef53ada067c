//! One deploy at a time per environment (SPEC §5): an S3 object created with a
//! conditional put (`If-None-Match: *`), held across build, push, apply and verify,
//! naming who holds it and since when. `deploy unlock` breaks a stale one.
//! `--lock-wait` waits for the holder instead, polling with backoff.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _, Result};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::aws::S3;
use crate::error::{Interrupted, Stage};

/// Who holds the lock (the object's body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub user: String,
    pub host: String,
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub since: u64,
    pub git_sha: String,
    pub command: String,
    /// Random per run: only the run that wrote it releases it.
    pub token: String,
    /// The kernel boot and pid namespace the run's pid belongs to (Linux): only a run
    /// in the same one can tell whether the holder still runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_space: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let age = crate::timestamp::now_unix().saturating_sub(self.since);
        write!(
            f,
            "{}@{} (pid {}) since {} ({} ago), deploying {}: `{}`",
            self.user,
            self.host,
            self.pid,
            crate::timestamp::utc(self.since),
            crate::timestamp::age(age),
            self.git_sha,
            self.command
        )
    }
}

/// Where an environment's lock lives.
#[derive(Debug, Clone)]
pub struct LockLocation {
    pub bucket: String,
    pub key: String,
    pub environment: String,
}

impl LockLocation {
    pub fn new(bucket: &str, environment: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            key: format!("deploy-lock/{environment}.json"),
            environment: environment.to_owned(),
        }
    }
}

/// A held lock; release it with [`Lock::release`].
pub struct Lock {
    s3: S3,
    location: LockLocation,
    token: String,
}

/// The lock is held by another run: exit 1 with who, and how to break it.
#[derive(Debug)]
pub struct Held {
    pub location: LockLocation,
    pub holder: Option<Holder>,
    /// The holder ran on this machine and its process is gone: the lock is stale.
    pub holder_gone: bool,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.holder {
            Some(holder) if self.holder_gone => {
                return write!(
                    f,
                    "the deploy lock of {env} is stale: it was taken by {holder}, and that process is no longer running on this machine (killed, or crashed). Nothing was touched. Break the lock with `deploy unlock --var-file tfvars/{env}.tfvars`, then run again",
                    env = self.location.environment
                )
            }
            Some(holder) => write!(
                f,
                "another deploy to {} is running: {holder}",
                self.location.environment
            )?,
            None => write!(
                f,
                "another deploy to {} holds the lock",
                self.location.environment
            )?,
        }
        write!(
            f,
            " (lock s3://{}/{}). Nothing was touched. If that run is gone (crashed, machine lost), break the lock with `deploy unlock --var-file tfvars/{}.tfvars`",
            self.location.bucket, self.location.key, self.location.environment
        )
    }
}

impl std::error::Error for Held {}

/// A lock taken by [`take`].
pub struct Taken {
    pub lock: Lock,
    /// Whether another run held it first: this run waited for it (`--lock-wait`).
    pub waited: bool,
}

/// Takes the lock. Held by another run, it fails at once with [`Held`] naming the
/// holder; with `wait` (`--lock-wait`) it polls with backoff (see [`backoff`]) until
/// the holder releases, calling `on_holder` each time the holder changes (with the
/// time left), and fails naming the holder once `wait` has passed. A stale holder
/// (its process gone from this machine) will never release: that fails at once too.
///
/// SIGINT, SIGTERM or SIGHUP at any point ends it with [`Stage::AtLock`], holding
/// nothing: a put that may have landed when the signal came is undone.
pub async fn take(
    s3: S3,
    location: LockLocation,
    git_sha: &str,
    wait: Option<Duration>,
    mut on_holder: impl FnMut(&Held, Duration),
) -> Result<Taken> {
    let token = format!("{:016x}{:08x}", now_nanos(), std::process::id());
    let started = Instant::now();
    let interrupt = crate::signals::interrupted();
    tokio::pin!(interrupt);
    let mut attempt: u32 = 0;
    let mut shown: Option<Option<String>> = None;
    loop {
        let put = tokio::select! {
            biased;
            signal = &mut interrupt => {
                release_if_ours(&s3, &location, &token).await;
                return Err(Interrupted::new(Stage::AtLock, signal).into());
            }
            put = try_put(&s3, &location, git_sha, &token) => put?,
        };
        let Some(held) = put else {
            return Ok(Taken {
                lock: Lock {
                    s3,
                    location,
                    token,
                },
                waited: attempt > 0,
            });
        };
        let Some(limit) = wait else {
            return Err(held.into());
        };
        if held.holder_gone {
            return Err(held.into());
        }
        let waited = started.elapsed();
        if waited >= limit {
            let context = format!(
                "gave up waiting for the deploy lock of {} after {} (--lock-wait)",
                location.environment,
                crate::timestamp::age(waited.as_secs())
            );
            return Err(anyhow::Error::new(held).context(context));
        }
        let left = limit - waited;
        let holder_token = held.holder.as_ref().map(|h| h.token.clone());
        if shown.as_ref() != Some(&holder_token) {
            on_holder(&held, left);
            shown = Some(holder_token);
        }
        let pause = backoff(attempt, left);
        attempt += 1;
        tokio::select! {
            signal = &mut interrupt => return Err(Interrupted::new(Stage::AtLock, signal).into()),
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// The pause before try `attempt + 1` while waiting for the lock: 1 s, doubling up to
/// 15 s, never past the time `left` (so the last try comes at the deadline). Short
/// at first, because a run that just released is the common case (a queue of CI
/// jobs); bounded, so that a long wait costs S3 a request every 15 s.
pub fn backoff(attempt: u32, left: Duration) -> Duration {
    let pause = Duration::from_secs(1u64 << attempt.min(4)).min(Duration::from_secs(15));
    pause.min(left)
}

/// One conditional put of this run's holder record: `None` when it took the lock,
/// the holder when another run has it.
async fn try_put(
    s3: &S3,
    location: &LockLocation,
    git_sha: &str,
    token: &str,
) -> Result<Option<Held>> {
    let holder = Holder {
        user: crate::operator::user_name(),
        host: crate::operator::hostname(),
        pid: std::process::id(),
        since: crate::timestamp::now_unix(),
        git_sha: git_sha.to_owned(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        token: token.to_owned(),
        pid_space: crate::operator::pid_space(),
    };
    let body = serde_json::to_vec_pretty(&holder)?;
    let put = s3
        .api
        .put_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .if_none_match("*")
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await;
    match put {
        Ok(_) => Ok(None),
        Err(err)
            if err.raw_response().map(|r| r.status().as_u16()) == Some(412)
                || err
                    .as_service_error()
                    .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e))
                    == Some("PreconditionFailed") =>
        {
            // Read back who holds it; gone meanwhile, it is still "held" for this try.
            Ok(Some(
                held(s3, location.clone())
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(Held {
                        location: location.clone(),
                        holder: None,
                        holder_gone: false,
                    }),
            ))
        }
        Err(err) => Err(anyhow!(s3.explain("s3:PutObject", &err))).with_context(|| {
            format!(
                "cannot take the deploy lock s3://{}/{}; nothing was touched",
                location.bucket, location.key
            )
        }),
    }
}

/// After an interrupted put: deletes the lock if the put landed (the record is this
/// run's), so that an interrupted run holds nothing. Best effort, bounded: the run
/// is ending anyway, and a lock left behind is named by the next run.
async fn release_if_ours(s3: &S3, location: &LockLocation, token: &str) {
    let undo = async {
        if let Ok(Some(holder)) = read_holder(s3, location).await {
            if holder.token == token {
                let _ = s3
                    .api
                    .delete_object()
                    .bucket(&location.bucket)
                    .key(&location.key)
                    .send()
                    .await;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), undo).await;
}

impl Lock {
    /// Releases the lock if it is still ours.
    pub async fn release(self) -> Result<()> {
        let holder = read_holder(&self.s3, &self.location).await.with_context(|| {
            format!(
                "the deploy lock s3://{}/{} may still be held: once AWS answers, check with `deploy status` and break it with `deploy unlock --var-file tfvars/{}.tfvars`",
                self.location.bucket, self.location.key, self.location.environment
            )
        })?;
        match holder {
            Some(holder) if holder.token == self.token => {}
            _ => {
                crate::ui::output::warn(&format!(
                    "the deploy lock s3://{}/{} was broken or taken over during this run; leaving it",
                    self.location.bucket, self.location.key
                ));
                return Ok(());
            }
        }
        self.s3
            .api
            .delete_object()
            .bucket(&self.location.bucket)
            .key(&self.location.key)
            .send()
            .await
            .map_err(|err| anyhow!(self.s3.explain("s3:DeleteObject", &err)))
            .with_context(|| {
                format!(
                    "the deploy lock s3://{}/{} is still held: once AWS answers, break it with `deploy unlock --var-file tfvars/{}.tfvars`",
                    self.location.bucket, self.location.key, self.location.environment
                )
            })?;
        Ok(())
    }
}

/// The current holder, if the lock is taken.
pub async fn read_holder(s3: &S3, location: &LockLocation) -> Result<Option<Holder>> {
    let object = match s3
        .api
        .get_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .send()
        .await
    {
        Ok(object) => object,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
        Err(err) => {
            return Err(anyhow!(s3.explain("s3:GetObject", &err))).with_context(|| {
                format!(
                    "cannot read the deploy lock s3://{}/{}",
                    location.bucket, location.key
                )
            })
        }
    };
    let bytes = object
        .body
        .collect()
        .await
        .context("cannot read the deploy lock's body")?
        .into_bytes();
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Who holds the lock, as [`take`] would fail with it: `None` when it is free.
pub async fn held(s3: &S3, location: LockLocation) -> Result<Option<Held>> {
    let Some(holder) = read_holder(s3, &location).await? else {
        return Ok(None);
    };
    let holder_gone = holder.pid_space.is_some()
        && holder.pid_space == crate::operator::pid_space()
        && process_gone(holder.pid);
    Ok(Some(Held {
        location,
        holder: Some(holder),
        holder_gone,
    }))
}

/// Deletes the lock whoever holds it (`deploy unlock`); returns who held it.
pub async fn break_lock(s3: &S3, location: &LockLocation) -> Result<Option<Holder>> {
    let holder = read_holder(s3, location).await?;
    if holder.is_none() {
        return Ok(None);
    }
    s3.api
        .delete_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .send()
        .await
        .map_err(|err| anyhow!(s3.explain("s3:DeleteObject", &err)))
        .with_context(|| format!("cannot delete s3://{}/{}", location.bucket, location.key))?;
    Ok(holder)
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Whether no process `pid` runs in this pid space. A reused pid reads as alive: a
/// lock is never called stale while its holder may run.
fn process_gone(pid: u32) -> bool {
    !crate::process::is_running(pid)
}

pub fn ensure_bucket_named(bucket: Option<String>, output: &str) -> Result<String> {
    match bucket {
        Some(bucket) if !bucket.is_empty() => Ok(bucket),
        // A setting missing, not a failure: exit 2 (error.rs).
        _ => Err(crate::error::UsageError::new(format!(
            "no bucket for the deploy lock: {}, add a terraform output {output:?}, or use an S3 terraform backend",
            crate::model::config::set_in_config("lock.bucket")
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_finished_process_is_gone_and_this_one_is_not() {
        assert!(!process_gone(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(process_gone(pid));
    }

    #[test]
    fn waiting_polls_soon_then_every_15s_and_never_past_the_deadline() {
        let left = Duration::from_secs(600);
        let pauses: Vec<u64> = (0..7).map(|a| backoff(a, left).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 15, 15, 15]);
        assert_eq!(backoff(40, left), Duration::from_secs(15));
        assert_eq!(
            backoff(3, Duration::from_millis(300)),
            Duration::from_millis(300)
        );
    }
}
