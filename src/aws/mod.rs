//! The AWS SDK configuration, built in one place: profile, region, endpoint
//! (`AWS_ENDPOINT_URL` is honoured by the loader; S3 then needs path-style addressing),
//! and the timeouts every AWS call gets (`DEPLOY_AWS_TIMEOUT`): an endpoint that
//! accepts the connection and never answers ends the call with an error naming it.
//! [`Contexts`] holds a run's contexts, one per profile, each loaded once.

pub mod deploy_lock;
pub mod ecr;
pub mod ecs;
pub mod history;
pub mod profiles;
pub mod waiting;

mod contexts;
pub use contexts::Contexts;

use std::time::Duration;

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// How long one attempt of an AWS call may take by default (`DEPLOY_AWS_TIMEOUT`):
/// the SDK has no such limit, and a stalled endpoint would hold a run forever.
const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The per-attempt limit: `DEPLOY_AWS_TIMEOUT` (whole seconds, at least 1) or 30 s.
pub fn attempt_timeout() -> Duration {
    attempt_timeout_from(std::env::var("DEPLOY_AWS_TIMEOUT").ok().as_deref())
}

fn attempt_timeout_from(value: Option<&str>) -> Duration {
    value
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_ATTEMPT_TIMEOUT)
}

/// Connect within 5 s (or the attempt's limit if shorter), each attempt within
/// `attempt`, the whole call (the SDK's three attempts and their back-off) within
/// three attempts and a little more. Uploads are many small calls (parts of 8 MiB
/// at most), so one limit fits every call deploy makes.
pub fn timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(5)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * 3 + Duration::from_secs(5))
        .build()
}

/// Loads the shared config for `profile` (or the default chain); a run asks its
/// [`Contexts`], which loads each profile once.
async fn load(profile: Option<&str>) -> SdkConfig {
    let http = waiting::https_client();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts(attempt_timeout()))
        .http_client(http.clone());
    if let Some(profile) = profile {
        // The named profile's credentials, not static keys that happen to be in the
        // environment: the operator chose an account. With the profile's region: a profile
        // that assumes a role (`role_arn` + `source_profile`) signs its STS call with it.
        // The SDK's default region chain, built here: its IMDS step needs our HTTP client.
        let provider = ProviderConfig::without_region().with_http_client(http);
        let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
            .or_else(
                ProfileFileRegionProvider::builder()
                    .profile_name(profile)
                    .build(),
            )
            .or_else(ImdsRegionProvider::builder().configure(&provider).build())
            .region()
            .await;
        let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .configure(&provider.with_region(region))
            .profile_name(profile)
            .build();
        loader = loader
            .profile_name(profile)
            .credentials_provider(credentials);
    }
    let config = waiting::announcing(loader.load().await);
    if config.region().is_none() {
        say_no_region(profile);
    }
    config
}

/// The one line that replaces the SDK's warnings when its region chain finds nothing
/// (they are kept out, see `ui::logging`): every AWS call of the run will fail for it.
fn say_no_region(profile: Option<&str>) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SAID.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    crate::ui::output::warn(&no_region_message(profile, &aws_config_file()));
}

/// The AWS config file a profile's `region` goes in, as the operator would write it.
fn aws_config_file() -> String {
    std::env::var("AWS_CONFIG_FILE")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "~/.aws/config".to_owned())
}

fn no_region_message(profile: Option<&str>, file: &str) -> String {
    match profile {
        Some("default") => format!(
            "no AWS region is set: set AWS_REGION, or `region` in the `[default]` section of {file}"
        ),
        Some(profile) => format!(
            "no AWS region is set: set AWS_REGION, or `region` in the `[profile {profile}]` section of {file}"
        ),
        None => format!("no AWS region is set: set AWS_REGION, or `region` in {file}"),
    }
}

/// One run's AWS context: the SDK configuration and the profile it was loaded for. The
/// clients it makes carry the profile, so that an error met anywhere (an SSO session
/// that expires mid-upload) says the right fix: `aws sso login --profile <that one>`.
#[derive(Clone, Debug)]
pub struct Aws {
    pub sdk: SdkConfig,
    pub profile: Option<String>,
}

impl Aws {
    /// Loads the context of `profile`: only [`Contexts`] does, once per profile.
    pub(super) async fn load(profile: Option<&str>) -> Self {
        Self {
            sdk: load(profile).await,
            profile: profile.map(str::to_owned),
        }
    }

    /// S3, path-style when an endpoint is configured.
    pub fn s3(&self) -> S3 {
        Service {
            api: s3(&self.sdk),
            profile: self.profile.clone(),
        }
    }

    pub fn cloudfront(&self) -> CloudFront {
        Service {
            api: aws_sdk_cloudfront::Client::new(&self.sdk),
            profile: self.profile.clone(),
        }
    }
}

/// An SDK client and the profile it acts for.
#[derive(Clone, Debug)]
pub struct Service<C> {
    pub api: C,
    profile: Option<String>,
}

/// The SDK's own calls stay one dot away: `s3.put_object()`.
impl<C> std::ops::Deref for Service<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.api
    }
}

pub type S3 = Service<aws_sdk_s3::Client>;
pub type CloudFront = Service<aws_sdk_cloudfront::Client>;

impl<C> Service<C> {
    /// A client for `profile` (tests, and callers holding a bare SDK client).
    pub fn new(api: C, profile: Option<&str>) -> Self {
        Self {
            api,
            profile: profile.map(str::to_owned),
        }
    }

    /// [`explain`] with this client's profile.
    pub fn explain<E>(
        &self,
        call: &str,
        err: &aws_sdk_sts::error::SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
    ) -> AwsError
    where
        E: std::error::Error + aws_sdk_sts::error::ProvideErrorMetadata + Send + Sync + 'static,
    {
        explain(call, err, self.profile.as_deref())
    }
}

/// An S3 client; path-style when an endpoint is configured (a local emulator has no
/// `<bucket>.<host>` DNS).
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

pub use crate::error::AwsError;

/// Explains an SDK error of `call` (`service:Operation`, as IAM names it), with the
/// likely fix when credentials are the problem; a call that got no answer is named.
pub fn explain<E>(
    call: &str,
    err: &aws_sdk_sts::error::SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
    profile: Option<&str>,
) -> AwsError
where
    E: std::error::Error + aws_sdk_sts::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    let request_id = match err {
        aws_sdk_sts::error::SdkError::ServiceError(service) => service
            .err()
            .meta()
            .extra("aws_request_id")
            .or_else(|| service.raw().headers().get("x-amzn-requestid"))
            .or_else(|| service.raw().headers().get("x-amz-request-id"))
            .map(str::to_owned),
        _ => None,
    };
    // The SDK error itself is borrowed; its whole chain, as text, is what -vv shows.
    let chain = aws_sdk_sts::error::DisplayErrorContext(err).to_string();
    AwsError::new(
        explanation(call, err, &chain, profile),
        request_id,
        chain.into(),
    )
}

fn explanation<E>(
    call: &str,
    err: &aws_sdk_sts::error::SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
    chain: &str,
    profile: Option<&str>,
) -> String
where
    E: std::error::Error + aws_sdk_sts::error::ProvideErrorMetadata,
{
    use aws_sdk_sts::error::SdkError;
    let login = match profile {
        Some(profile) => {
            format!("run `aws sso login --profile {profile}` or refresh the profile's keys")
        }
        None => "pass --profile NAME, or set AWS_PROFILE / AWS credentials".to_owned(),
    };
    // Without a region the SDK cannot resolve an endpoint or sign: a dispatch or
    // construction failure that says so (S3: "A region must be set …"; the other
    // services' endpoint rules: "Invalid Configuration: Missing Region"). Keys without a
    // region are not a credentials problem: say what is missing and where it goes.
    let before_sending = matches!(
        err,
        SdkError::ConstructionFailure(_) | SdkError::DispatchFailure(_)
    );
    let chain_lower = chain.to_ascii_lowercase();
    if before_sending
        && (chain_lower.contains("region must be set") || chain_lower.contains("missing region"))
    {
        return no_region_message(profile, &aws_config_file());
    }
    match err {
        SdkError::ConstructionFailure(_) => {
            format!("no usable AWS credentials or region ({login})")
        }
        SdkError::DispatchFailure(failure) => {
            if failure.is_io() || failure.is_timeout() {
                match std::env::var("AWS_ENDPOINT_URL") {
                    Ok(url) if !url.is_empty() => {
                        format!("cannot reach AWS at {url} (AWS_ENDPOINT_URL) for {call}: is the endpoint up?")
                    }
                    _ => format!(
                        "cannot reach AWS for {call} (network error): check connectivity, HTTPS_PROXY/NO_PROXY, and retry"
                    ),
                }
            } else {
                format!("cannot send the request: no usable AWS credentials? ({login})")
            }
        }
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let status = service.raw().status().as_u16();
            // An error body the SDK cannot read (moto's STS sends one) still has a status.
            let code = inner
                .code()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}"));
            let message = inner
                .message()
                .unwrap_or("no readable error message in the response");
            let expired = [
                "ExpiredToken",
                "ExpiredTokenException",
                "InvalidClientTokenId",
                "UnrecognizedClientException",
                "InvalidSignatureException",
                "SignatureDoesNotMatch",
                "AccessDenied",
                "AccessDeniedException",
            ];
            if expired.contains(&code.as_str())
                || (inner.code().is_none() && [401, 403].contains(&status))
            {
                format!("{code}: {message} (credentials rejected: {login})")
            } else {
                format!("{code}: {message}")
            }
        }
        SdkError::TimeoutError(_) => format!(
            "AWS did not answer {call} within {}s a try (DEPLOY_AWS_TIMEOUT): is the endpoint reachable from here (VPN, HTTPS_PROXY/NO_PROXY)?",
            attempt_timeout().as_secs()
        ),
        SdkError::ResponseError(_) => "AWS sent a response that could not be read".to_owned(),
        _ => "unknown AWS SDK error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::{ErrorMetadata, SdkError};
    use aws_sdk_s3::operation::get_object::GetObjectError;

    fn expired() -> SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse> {
        let metadata = ErrorMetadata::builder()
            .code("ExpiredToken")
            .message("The security token included in the request is expired")
            .custom("aws_request_id", "4442587FB7D0A2F9")
            .build();
        let raw = aws_sdk_s3::config::http::HttpResponse::new(
            403.try_into().expect("a status"),
            "".into(),
        );
        SdkError::service_error(GetObjectError::generic(metadata), raw)
    }

    #[test]
    fn a_client_names_the_profile_it_acts_for_when_credentials_are_rejected() {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let aws = Aws {
            sdk,
            profile: Some("sandbox".to_owned()),
        };
        let err = aws.s3().explain("s3:GetObject", &expired());
        assert!(
            err.to_string()
                .contains("credentials rejected: run `aws sso login --profile sandbox`"),
            "{err}"
        );
        assert_eq!(err.request_id.as_deref(), Some("4442587FB7D0A2F9"));
        assert!(err.details().contains("ExpiredToken"), "{}", err.details());
        // Without a profile, the advice is to give one.
        let anonymous = Service::new((), None).explain("s3:GetObject", &expired());
        assert!(
            anonymous.to_string().contains("pass --profile NAME"),
            "{anonymous}"
        );
    }

    #[test]
    fn a_missing_region_is_named_as_such_not_as_missing_credentials() {
        for chain in [
            "Invalid Configuration: Missing Region",
            "A region must be set when sending requests to S3.",
        ] {
            let err: SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse> =
                SdkError::construction_failure(chain);
            let text = explanation("sts:GetCallerIdentity", &err, chain, Some("ci"));
            assert!(text.starts_with("no AWS region is set"), "{text}");
            assert!(text.contains("AWS_REGION"), "{text}");
            assert!(
                text.contains("`region` in the `[profile ci]` section"),
                "{text}"
            );
            assert!(!text.contains("credentials"), "{text}");
        }
        // Without a region word in the chain it stays a credentials question.
        let err: SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse> =
            SdkError::construction_failure("no credentials provider");
        let text = explanation(
            "sts:GetCallerIdentity",
            &err,
            "no credentials provider",
            None,
        );
        assert!(text.contains("credentials"), "{text}");
    }

    #[test]
    fn every_call_gets_a_timeout_and_the_knob_takes_whole_seconds() {
        assert_eq!(attempt_timeout_from(None), Duration::from_secs(30));
        assert_eq!(attempt_timeout_from(Some("2")), Duration::from_secs(2));
        // Nonsense and zero keep the default rather than never timing out.
        assert_eq!(attempt_timeout_from(Some("0")), Duration::from_secs(30));
        assert_eq!(attempt_timeout_from(Some("soon")), Duration::from_secs(30));
        let config = timeouts(Duration::from_secs(2));
        assert_eq!(config.connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(
            config.operation_attempt_timeout(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(config.operation_timeout(), Some(Duration::from_secs(11)));
        assert_eq!(
            timeouts(Duration::from_secs(30)).connect_timeout(),
            Some(Duration::from_secs(5))
        );
    }
}
