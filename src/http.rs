//! The one HTTP(S) client setup that health checks, webhooks and the registry API share:
//! hyper's pooled client over rustls with the system's root certificates, HTTP/1, and
//! plain `http://` allowed (a test bed, an internal health URL).

use anyhow::{Context as _, Result};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A client sending bodies of type `B`; fails only when the system's roots cannot load.
pub fn client<B>() -> Result<Client<Https, B>>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .context("cannot load the system's TLS root certificates")?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}
