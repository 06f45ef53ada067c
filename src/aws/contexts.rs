//! [`Contexts`]: the AWS contexts of one run, one per profile, and the one check of
//! the profiles a command's flags name.

use super::Aws;

/// The AWS contexts of one run, one per profile, each loaded the first time it is asked
/// for: a run that reads two environments (`promote`, `status --compare`) loads two,
/// and every step that asks again gets the same one back. Cloning shares them.
/// [`Contexts::for_profiles`] is the only way to get them: it checks the profiles named.
#[derive(Clone, Debug)]
pub struct Contexts {
    loaded: std::sync::Arc<std::sync::Mutex<ByProfile>>,
}

/// Each profile's context, or the cell it is being loaded into.
type ByProfile =
    std::collections::BTreeMap<Option<String>, std::sync::Arc<tokio::sync::OnceCell<Aws>>>;

impl Contexts {
    /// The contexts of a run, checking first every profile its flags name (each a
    /// `(flag, profile)`; `None`: the flag was not given): an unknown one is the same
    /// usage error (exit 2, [`super::profiles::check`]) in every command, before any AWS call
    /// and before terraform (which reads AWS with the profile too). Every command that
    /// reads AWS gets its contexts here, first thing.
    pub fn for_profiles<'a>(
        named: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> anyhow::Result<Self> {
        for (flag, profile) in named {
            if let Some(profile) = profile {
                super::profiles::check(flag, profile)?;
            }
        }
        Ok(Self::empty())
    }

    fn empty() -> Self {
        Self {
            loaded: Default::default(),
        }
    }

    /// The context of `profile` (`None`: the default chain), loaded on first use.
    pub async fn get(&self, profile: Option<&str>) -> Aws {
        self.get_or_load(profile, || Aws::load(profile)).await
    }

    /// [`get`](Self::get), loading with `load` (a test counts the loads).
    async fn get_or_load<F>(&self, profile: Option<&str>, load: impl FnOnce() -> F) -> Aws
    where
        F: std::future::Future<Output = Aws>,
    {
        let cell = {
            let mut loaded = self
                .loaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            loaded
                .entry(profile.map(str::to_owned))
                .or_default()
                .clone()
        };
        cell.get_or_init(load).await.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::SdkConfig;

    #[tokio::test]
    async fn contexts_load_each_profile_once_and_share_it() {
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let counted = |profile: Option<&str>| {
            let profile = profile.map(str::to_owned);
            let loads = &loads;
            move || async move {
                loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let sdk = SdkConfig::builder().build();
                Aws { sdk, profile }
            }
        };
        let contexts = Contexts::empty();
        let shared = contexts.clone();
        let prod = Some("prod");
        let first = contexts.get_or_load(prod, counted(prod)).await;
        let again = shared.get_or_load(prod, counted(prod)).await;
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(first.profile.as_deref(), Some("prod"));
        assert_eq!(again.profile.as_deref(), Some("prod"));
        // Another profile, and the default chain, are each a load of their own.
        let staging = contexts
            .get_or_load(Some("staging"), counted(Some("staging")))
            .await;
        contexts.get_or_load(None, counted(None)).await;
        contexts.get_or_load(None, counted(None)).await;
        assert_eq!(staging.profile.as_deref(), Some("staging"));
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
