//! The one HTTP(S) client setup that health checks, webhooks and the registry API share:
//! hyper's pooled client over rustls with the system's root certificates, HTTP/1, and
//! plain `http://` allowed (a test bed, an internal health URL). It connects within
//! [`CONNECT_TIMEOUT`] and goes through the operator's proxy as the AWS SDK does
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, and their lower-case forms):
//! behind a corporate proxy, every outside call of a run takes the same way out.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result};
use hyper::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower_service::Service;

pub type Https = hyper_rustls::HttpsConnector<ProxyConnector>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long opening a connection may take (DNS, TCP, and the proxy's CONNECT).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
        .wrap_connector(ProxyConnector::new(Proxies::from_env()));
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// Which destinations go through which proxy: hyper-util's matcher (the one the AWS
/// SDK uses: curl's rules for hosts, domain suffixes, IPs, CIDR ranges and `*`), plus
/// the `host:port` entries of `NO_PROXY` that Go's rules also honour and the matcher
/// would read as a domain.
pub struct Proxies {
    matcher: Matcher,
    /// `NO_PROXY` entries with a port: (host or domain suffix, port).
    no_proxy_ports: Vec<(String, u16)>,
}

impl Proxies {
    /// Reads the environment as curl does: the upper-case name first, then the lower.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name.to_ascii_uppercase())
                .or_else(|_| std::env::var(name))
                .unwrap_or_default()
        };
        Self::new(
            &var("all_proxy"),
            &var("http_proxy"),
            &var("https_proxy"),
            &var("no_proxy"),
        )
    }

    pub fn new(all: &str, http: &str, https: &str, no_proxy: &str) -> Self {
        let (with_port, plain): (Vec<&str>, Vec<&str>) = no_proxy
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .partition(|entry| port_entry(entry).is_some());
        Self {
            matcher: Matcher::builder()
                .all(all)
                .http(http)
                .https(https)
                .no(plain.join(","))
                .build(),
            no_proxy_ports: with_port.into_iter().filter_map(port_entry).collect(),
        }
    }

    /// The proxy for `dst`, `None` to connect directly.
    pub fn proxy_for(&self, dst: &Uri) -> Option<Intercept> {
        let host = dst.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = dst
            .port_u16()
            .unwrap_or(if dst.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let excluded = self
            .no_proxy_ports
            .iter()
            .any(|(entry, entry_port)| *entry_port == port && domain_matches(entry, host));
        if excluded {
            return None;
        }
        self.matcher.intercept(dst)
    }
}

/// `host:port` or `[v6]:port` (not an IPv6 address alone, nor a CIDR range).
fn port_entry(entry: &str) -> Option<(String, u16)> {
    let (host, port) = entry.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// `entry` names `host` itself or a domain above it (`example.com` and `.example.com`
/// both cover `api.example.com`), as curl and Go read `NO_PROXY`.
fn domain_matches(entry: &str, host: &str) -> bool {
    let entry = entry.trim_start_matches('.');
    let host = host.to_ascii_lowercase();
    entry == "*" || host == entry || host.ends_with(&format!(".{entry}"))
}

/// Opens the TCP connection of a request: directly, as a CONNECT tunnel through the
/// proxy (an `https://` destination: TLS runs inside the tunnel), or to the proxy
/// itself (a plain `http://` destination: the request goes in absolute form).
#[derive(Clone)]
pub struct ProxyConnector {
    direct: HttpConnector,
    proxies: Arc<Proxies>,
}

impl ProxyConnector {
    pub fn new(proxies: Proxies) -> Self {
        let mut direct = HttpConnector::new();
        // The TLS layer above decides the scheme; this one only opens TCP.
        direct.enforce_http(false);
        direct.set_connect_timeout(Some(CONNECT_TIMEOUT));
        Self {
            direct,
            proxies: Arc::new(proxies),
        }
    }
}

/// A connection failure that names the proxy it went through.
#[derive(Debug, thiserror::Error)]
#[error("through the proxy {proxy}: {source}")]
pub struct ThroughProxy {
    proxy: String,
    #[source]
    source: BoxError,
}

impl Service<Uri> for ProxyConnector {
    type Response = Proxied;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Proxied, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut direct = self.direct.clone();
        let proxy = self.proxies.proxy_for(&dst);
        Box::pin(async move {
            let Some(proxy) = proxy else {
                let io = direct.call(dst).await?;
                return Ok(Proxied {
                    io,
                    absolute_form: false,
                });
            };
            // Never the proxy's credentials: host and port only.
            let named = |source: BoxError| -> BoxError {
                let address = proxy.uri().authority().map(|a| a.as_str()).unwrap_or("?");
                let address = address.rsplit('@').next().unwrap_or(address).to_owned();
                Box::new(ThroughProxy {
                    proxy: address,
                    source,
                })
            };
            if dst.scheme_str() == Some("https") {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), direct);
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let io = tunnel.call(dst).await.map_err(|err| named(Box::new(err)))?;
                Ok(Proxied {
                    io,
                    absolute_form: false,
                })
            } else {
                let io = direct
                    .call(proxy.uri().clone())
                    .await
                    .map_err(|err| named(Box::new(err)))?;
                Ok(Proxied {
                    io,
                    absolute_form: true,
                })
            }
        })
    }
}

/// A TCP connection, to the destination or through a proxy. `absolute_form` tells
/// hyper to write `GET http://host/path` (a plain-HTTP request to a proxy).
pub struct Proxied {
    io: TokioIo<tokio::net::TcpStream>,
    absolute_form: bool,
}

impl Connection for Proxied {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.absolute_form)
    }
}

impl hyper::rt::Read for Proxied {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Proxied {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(proxies: &Proxies, url: &str) -> Option<String> {
        proxies
            .proxy_for(&url.parse().unwrap())
            .map(|found| found.uri().to_string())
    }

    #[test]
    fn https_and_http_take_their_own_proxy_and_all_proxy_fills_in() {
        let proxies = Proxies::new("", "http://plain:3128", "http://secure:3128", "");
        assert_eq!(
            via(&proxies, "https://registry.example/v2/").as_deref(),
            Some("http://secure:3128/")
        );
        assert_eq!(
            via(&proxies, "http://hooks.example/x").as_deref(),
            Some("http://plain:3128/")
        );
        let all = Proxies::new("http://everything:8080", "", "", "");
        assert_eq!(
            via(&all, "https://a.example/").as_deref(),
            Some("http://everything:8080/")
        );
        // No variable set: everything goes directly.
        assert_eq!(
            via(&Proxies::new("", "", "", ""), "https://a.example/"),
            None
        );
    }

    #[test]
    fn no_proxy_takes_hosts_suffixes_ips_cidr_ports_and_a_star_as_curl_and_go_do() {
        let proxies = Proxies::new(
            "http://proxy:3128",
            "",
            "",
            "internal.example, .corp.example,10.0.0.0/8, 192.168.1.7, registry.example:5000, [::1]:8443",
        );
        let direct = |url: &str| via(&proxies, url).is_none();
        assert!(direct("https://internal.example/"));
        assert!(direct("https://api.internal.example/"));
        assert!(!direct("https://notinternal.example/"));
        assert!(direct("https://corp.example/"));
        assert!(direct("https://x.corp.example/"));
        assert!(direct("http://10.1.2.3:5000/v2/"));
        assert!(!direct("http://11.1.2.3/"));
        assert!(direct("http://192.168.1.7/"));
        // A port entry excludes that port only.
        assert!(direct("https://registry.example:5000/v2/"));
        assert!(!direct("https://registry.example/v2/"));
        assert!(direct("https://[::1]:8443/"));
        assert!(!direct("https://[::1]:9000/"));
        let everything = Proxies::new("http://proxy:3128", "", "", "*");
        assert!(via(&everything, "https://anything.example/").is_none());
    }

    #[test]
    fn port_entries_are_told_from_ipv6_addresses_and_ranges() {
        assert_eq!(port_entry("host:80"), Some(("host".into(), 80)));
        assert_eq!(port_entry("[::1]:80"), Some(("::1".into(), 80)));
        assert_eq!(port_entry("::1"), None);
        assert_eq!(port_entry("10.0.0.0/8"), None);
        assert_eq!(port_entry("host"), None);
    }
}
