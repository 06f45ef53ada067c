//! A Docker daemon behind TLS (`DOCKER_TLS_VERIFY`): the client configuration made from
//! `DOCKER_CERT_PATH`'s `ca.pem`, `cert.pem` and `key.pem` as the docker CLI reads them,
//! shared by bollard's connections and the BuildKit session's stream, and the handshake
//! failures told apart (whose certificate, which file, which host).
//!
//! Only `ca.pem` is trusted for the daemon (the docker CLI's exclusive root pool), not the
//! system's roots as in bollard's `connect_with_ssl`; and the crypto provider is the one
//! the tree already has (aws-lc-rs), so no process-wide default must be installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What to tell the daemon and trust of it, and where it is.
#[derive(Clone)]
pub struct TlsDialer {
    /// `host:port`.
    pub address: String,
    /// The name the daemon's certificate must be valid for (`DOCKER_HOST`'s host).
    pub server_name: ServerName<'static>,
    pub config: Arc<rustls::ClientConfig>,
    files: CertFiles,
}

/// The three files, for the messages.
#[derive(Clone)]
struct CertFiles {
    dir: PathBuf,
    /// What named the host and the files, for messages: `DOCKER_HOST` / `DOCKER_CERT_PATH`,
    /// or the Docker context.
    host_from: String,
    files_from: String,
    ca: PathBuf,
    cert: PathBuf,
}

impl TlsDialer {
    /// Reads the certificates in `cert_dir` (`DOCKER_CERT_PATH`, or the store of the Docker
    /// context `context` names); each missing or unusable file is one error naming it.
    pub fn new(
        address: &str,
        server_name: &str,
        cert_dir: &Path,
        context: Option<&str>,
    ) -> Result<Self> {
        let file = |name: &str| cert_dir.join(name);
        let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
        let remedy = match context {
            None => format!(
                "DOCKER_TLS_VERIFY is set, so deploy reads ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH ({}), as the docker CLI does (unset DOCKER_TLS_VERIFY for a daemon without TLS)",
                cert_dir.display()
            ),
            Some(context) => format!(
                "{context} has TLS material, so deploy reads ca.pem, cert.pem and key.pem from its store ({}), as the docker CLI does (`docker context update <name> --docker \"host=…,ca=…,cert=…,key=…\"` puts them there)",
                cert_dir.display()
            ),
        };
        let read = |path: &Path, what: &str| {
            std::fs::read(path).map_err(|err| {
                anyhow!("cannot read the {what} {}: {err}. {remedy}", path.display())
            })
        };
        let certificates = |path: &Path, what: &str| -> Result<Vec<CertificateDer<'static>>> {
            let bytes = read(path, what)?;
            let certs = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| {
                    anyhow!(
                        "{} is not a PEM certificate ({err}). {remedy}",
                        path.display()
                    )
                })?;
            if certs.is_empty() {
                return Err(anyhow!(
                    "{} holds no PEM certificate. {remedy}",
                    path.display()
                ));
            }
            Ok(certs)
        };
        let authorities = certificates(&ca, "CA certificate")?;
        let chain = certificates(&cert, "client certificate")?;
        let key_bytes = read(&key, "client key")?;
        // The key's own bytes never reach a message.
        let private_key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| {
            anyhow!(
                "{} holds no PEM private key (PKCS#1, PKCS#8 or SEC1). {remedy}",
                key.display()
            )
        })?;

        let mut roots = rustls::RootCertStore::empty();
        for authority in authorities {
            roots.add(authority).map_err(|err| {
                anyhow!(
                    "{} is not a usable CA certificate ({err}). {remedy}",
                    ca.display()
                )
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("cannot set up TLS")?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, private_key)
            .map_err(|err| {
                anyhow!(
                    "the client certificate {} and key {} do not go together ({err}). {remedy}",
                    cert.display(),
                    key.display()
                )
            })?;
        let server_name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            anyhow!(
                "`{server_name}` in {} is not a host name or IP address TLS can check",
                context.unwrap_or("DOCKER_HOST")
            )
        })?;
        Ok(Self {
            address: address.to_owned(),
            server_name,
            config: Arc::new(config),
            files: CertFiles {
                dir: cert_dir.to_path_buf(),
                host_from: context.unwrap_or("DOCKER_HOST").to_owned(),
                files_from: context
                    .map(|context| format!("the store of {context}"))
                    .unwrap_or_else(|| "DOCKER_CERT_PATH".to_owned()),
                ca,
                cert,
            },
        })
    }

    /// A TLS connection to the daemon, handshake done.
    pub async fn connect(&self) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(&self.address)
            .await
            .with_context(|| format!("cannot connect to {}", self.address))?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|err| self.explain(&err))
    }

    /// Connects and asks `/_ping`, so that a refused client certificate (which TLS 1.3
    /// reports only after the handshake) is told apart before any real request.
    pub async fn check(&self) -> Result<()> {
        let mut stream = self.connect().await?;
        let exchange = async {
            stream
                .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
                .await?;
            stream.flush().await?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await?;
            Ok::<_, std::io::Error>(head)
        };
        let head = exchange.await.map_err(|err| self.explain(&err))?;
        if !head.starts_with(b"HTTP/1.") {
            return Err(anyhow!(
                "{} answered TLS with something other than HTTP: is the host of {} the Docker daemon's TLS port?",
                self.address,
                self.files.host_from
            ));
        }
        Ok(())
    }

    /// One message per way TLS fails, naming the file or host; else the I/O error.
    fn explain(&self, err: &std::io::Error) -> anyhow::Error {
        use rustls::{AlertDescription as Alert, CertificateError as Cert, Error as Tls};
        let Some(tls) = err.get_ref().and_then(|inner| inner.downcast_ref::<Tls>()) else {
            return anyhow!("the TLS connection to {} failed: {err}", self.address);
        };
        let name = server_name_text(&self.server_name);
        let dir = self.files.dir.display();
        match tls {
            Tls::InvalidCertificate(Cert::UnknownIssuer) => anyhow!(
                "the Docker daemon at {} presented a certificate that the CA in {} did not sign: {} ({dir}) must hold the CA of that daemon's certificate",
                self.address,
                self.files.ca.display(),
                self.files.files_from
            ),
            Tls::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => anyhow!(
                "the Docker daemon's certificate at {} is not valid for the host name `{name}` in {}: use a name or address the certificate was issued for (its subject alternative names)",
                self.address,
                self.files.host_from
            ),
            Tls::InvalidCertificate(other) => anyhow!(
                "the Docker daemon at {} presented a certificate deploy does not accept ({other:?}), checked against {}",
                self.address,
                self.files.ca.display()
            ),
            Tls::AlertReceived(
                alert @ (Alert::BadCertificate
                | Alert::CertificateRequired
                | Alert::UnknownCA
                | Alert::CertificateUnknown
                | Alert::UnsupportedCertificate
                | Alert::CertificateExpired
                | Alert::CertificateRevoked
                | Alert::AccessDenied),
            ) => anyhow!(
                "the Docker daemon at {} refused deploy's client certificate {} ({alert:?}): it must be signed by the CA the daemon trusts (its --tlscacert) and valid for client authentication",
                self.address,
                self.files.cert.display()
            ),
            other => anyhow!("the TLS connection to {} failed: {other}", self.address),
        }
    }
}

fn server_name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => format!("{name:?}"),
    }
}

/// bollard's client over `dialer`'s TLS configuration: hyper's pooled client with
/// hyper-rustls, as bollard's own `connect_with_ssl` builds it, on our configuration.
pub fn bollard_client(dialer: &TlsDialer, timeout_secs: u64) -> Result<bollard::Docker> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnector::from((http, dialer.config.clone()));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(https);
    let client = Arc::new(client);
    // https://<the name the certificate is checked for>:<port>
    let port = dialer
        .address
        .rsplit_once(':')
        .map(|(_, port)| port)
        .unwrap_or("2376");
    let host = match &dialer.server_name {
        ServerName::IpAddress(ip) if std::net::IpAddr::from(*ip).is_ipv6() => {
            format!("[{}]", server_name_text(&dialer.server_name))
        }
        name => server_name_text(name),
    };
    bollard::Docker::connect_with_custom_transport(
        move |request: bollard::BollardRequest| {
            let client = client.clone();
            async move {
                client
                    .request(request)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        },
        Some(format!("https://{host}:{port}")),
        timeout_secs,
        bollard::API_DEFAULT_VERSION,
    )
    .context("cannot set up the Docker client over TLS")
}
