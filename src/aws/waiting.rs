//! A wait on AWS that lasts says what it waits for: the SDK's HTTP client, wrapped,
//! prints one line naming the call (`ecs:DescribeServices at 10.0.0.1:443`) once a
//! request has had no answer for [`note_after`] the attempt's limit. The timeouts (`DEPLOY_AWS_TIMEOUT`)
//! end the wait; this line tells the operator meanwhile which call, so a stall after
//! "planning the roll: terraform … plan" is not read as terraform's. With `-vv` (or
//! `RUST_LOG=deploy=debug`) every request is logged when sent and when answered, with its
//! status and time: the same name, never a header, a body or a key (the SDK's own
//! request log is capped below that: ui/logging.rs).

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sts::config::http::HttpRequest;
use aws_sdk_sts::config::{ConfigBag, RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};

/// How long a request waits before its call is named on stderr: 5 s, or half the
/// attempt's limit when that is shorter (the line comes before the error).
pub fn note_after(attempt: Duration) -> Duration {
    (attempt / 2).min(Duration::from_secs(5))
}

/// `sdk` with its HTTP client wrapped (the loader's, [`https_client`]).
pub fn announcing(sdk: SdkConfig) -> SdkConfig {
    let inner = sdk.http_client().unwrap_or_else(https_client);
    sdk.to_builder().http_client(Announcing(inner)).build()
}

/// The SDK's HTTPS client, built as aws-smithy-runtime builds its default one (its
/// `default_https_client`, private: the proxy of `HTTPS_PROXY`/`NO_PROXY`) but with
/// rustls on ring instead of aws-lc (a smaller binary: README "Release builds"). The SDK
/// crates have no default client of their own (their `default-https-client` feature is
/// off): the loader, a profile's credentials and the tests' configs are given this one.
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

#[derive(Debug)]
struct Announcing(SharedHttpClient);

impl HttpClient for Announcing {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(AnnouncingConnector(
            self.0.http_connector(settings, components),
        ))
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[derive(Debug)]
struct AnnouncingConnector(SharedHttpConnector);

impl HttpConnector for AnnouncingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let what = call_of(
            request.headers().get("authorization"),
            request.headers().get("x-amz-target"),
            request.body().bytes(),
            request.method(),
            request.uri(),
        );
        let answer = self.0.call(request);
        let patience = note_after(super::attempt_timeout());
        let sent = Instant::now();
        tracing::debug!(call = %what, "AWS request sent");
        HttpConnectorFuture::new(async move {
            tokio::pin!(answer);
            let done = tokio::select! {
                done = &mut answer => done,
                _ = tokio::time::sleep(patience) => {
                    eprintln!(
                        "waiting for AWS: {what} has had no answer for {:.1}s (limit per try: DEPLOY_AWS_TIMEOUT)",
                        patience.as_secs_f64()
                    );
                    answer.await
                }
            };
            let millis = sent.elapsed().as_millis();
            match &done {
                Ok(response) => tracing::debug!(
                    call = %what,
                    status = response.status().as_u16(),
                    millis,
                    "AWS request answered"
                ),
                Err(err) => {
                    tracing::debug!(call = %what, millis, error = %err, "AWS request failed")
                }
            }
            done
        })
    }
}

/// `service:Operation at host`, from what a signed request carries: the service in
/// the signature's scope (`Credential=<key id>/<date>/<region>/<service>/aws4_request`;
/// only the service is kept), the operation in `X-Amz-Target` (JSON APIs: ECS, ECR) or
/// `Action=` (query APIs: STS), else the method and path (S3).
fn call_of(
    authorization: Option<&str>,
    target: Option<&str>,
    body: Option<&[u8]>,
    method: &str,
    uri: &str,
) -> String {
    let service = authorization
        .and_then(|value| value.split("Credential=").nth(1))
        .and_then(|scope| scope.split(['/', ',']).nth(3))
        .unwrap_or("aws")
        .to_owned();
    let (host, path) = match uri.split_once("://") {
        Some((_, rest)) => match rest.split_once('/') {
            Some((host, path)) => (host, format!("/{path}")),
            None => (rest, "/".to_owned()),
        },
        None => ("?", uri.to_owned()),
    };
    let action = body
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| {
            text.split('&')
                .find_map(|pair| pair.strip_prefix("Action="))
        });
    // S3 names some operations in the query (`?x-id=GetObject`).
    let x_id = path
        .split_once('?')
        .and_then(|(_, query)| query.split('&').find_map(|pair| pair.strip_prefix("x-id=")));
    let operation = match (target.and_then(|t| t.rsplit('.').next()), action.or(x_id)) {
        (Some(operation), _) | (None, Some(operation)) => operation.to_owned(),
        // S3: the path without its query (which may carry a presigned signature).
        (None, None) => format!("{method} {}", path.split('?').next().unwrap_or("/")),
    };
    format!("{service}:{operation} at {host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/eu-west-1/ecs/aws4_request, SignedHeaders=host, Signature=abc";

    #[test]
    fn the_call_is_named_from_the_signature_scope_and_the_operation_never_the_key() {
        let ecs = call_of(
            Some(SIGNED),
            Some("AmazonEC2ContainerServiceV20141113.DescribeServices"),
            None,
            "POST",
            "https://ecs.eu-west-1.amazonaws.com/",
        );
        assert_eq!(ecs, "ecs:DescribeServices at ecs.eu-west-1.amazonaws.com");
        assert!(!ecs.contains("AKIDEXAMPLE"));
        let sts = call_of(
            Some(&SIGNED.replace("/ecs/", "/sts/")),
            None,
            Some(b"Action=GetCallerIdentity&Version=2011-06-15"),
            "POST",
            "http://127.0.0.1:4566/",
        );
        assert_eq!(sts, "sts:GetCallerIdentity at 127.0.0.1:4566");
        let s3 = call_of(
            Some(&SIGNED.replace("/ecs/", "/s3/")),
            None,
            None,
            "GET",
            "http://127.0.0.1:4566/bucket/deploy-lock/prod.json?x-id=GetObject",
        );
        assert_eq!(s3, "s3:GetObject at 127.0.0.1:4566");
        let list = call_of(
            Some(&SIGNED.replace("/ecs/", "/s3/")),
            None,
            None,
            "GET",
            "http://127.0.0.1:4566/bucket?list-type=2&prefix=x",
        );
        assert_eq!(list, "s3:GET /bucket at 127.0.0.1:4566");
    }

    #[test]
    fn the_note_comes_before_the_attempt_ends() {
        assert_eq!(note_after(Duration::from_secs(30)), Duration::from_secs(5));
        assert_eq!(
            note_after(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
    }
}
