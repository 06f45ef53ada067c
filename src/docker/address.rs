//! Where the Docker daemon is: `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`
//! read as the docker CLI reads them.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

/// The daemon's address, from `DOCKER_HOST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonAddress {
    /// `unix:///var/run/docker.sock`.
    Unix(PathBuf),
    /// `tcp://host:port` in the clear.
    Tcp(String),
    /// `tcp://host:port` with `DOCKER_TLS_VERIFY`: the daemon's certificate is checked
    /// against `ca.pem` and for `server_name`; deploy shows `cert.pem` / `key.pem`.
    Tls {
        address: String,
        server_name: String,
        cert_dir: PathBuf,
    },
    /// `ssh://[user@]host[:port]`: `docker system dial-stdio` on the host, over ssh.
    Ssh(SshTarget),
}

/// `ssh://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    /// The ssh arguments that run `docker system dial-stdio` on the host, as the docker
    /// CLI's connection helper builds them (`-l`, `-p`, a connect timeout, no tty). Also
    /// `BatchMode`: deploy opens several connections at once, in the background, where a
    /// password or host-key prompt could never be answered; ssh fails instead, and says why.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-o", "ConnectTimeout=30", "-o", "BatchMode=yes", "-T"]
            .map(str::to_owned)
            .to_vec();
        if let Some(user) = &self.user {
            args.extend(["-l".to_owned(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_owned(), port.to_string()]);
        }
        args.extend(["--", &self.host, "docker", "system", "dial-stdio"].map(str::to_owned));
        args
    }
}

impl DaemonAddress {
    /// Reads `DOCKER_HOST` (`host`), `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` (else
    /// `DOCKER_CONFIG`, else `~/.docker`) as the docker CLI does: any non-empty
    /// `DOCKER_TLS_VERIFY` turns TLS on.
    pub fn from_env(host: &str) -> Result<Self> {
        let tls = std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
        let cert_dir = tls.then(|| {
            std::env::var_os("DOCKER_CERT_PATH")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(super::docker_config::config_dir)
        });
        Self::parse(host, cert_dir.as_deref())
    }

    /// `host` as `DOCKER_HOST` gives it; `tls_cert_dir`: where the certificates are when
    /// `DOCKER_TLS_VERIFY` is set.
    pub fn parse(host: &str, tls_cert_dir: Option<&Path>) -> Result<Self> {
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(address) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let (name, port) = host_and_port(address.trim_end_matches('/'), host)?;
            let default_port = if tls_cert_dir.is_some() { 2376 } else { 2375 };
            let port = port.unwrap_or(default_port);
            let address = if name.contains(':') {
                format!("[{name}]:{port}")
            } else {
                format!("{name}:{port}")
            };
            return Ok(match tls_cert_dir {
                Some(dir) => Self::Tls {
                    address,
                    server_name: name,
                    cert_dir: dir.to_path_buf(),
                },
                None => Self::Tcp(address),
            });
        }
        if let Some(rest) = host.strip_prefix("ssh://") {
            return Ok(Self::Ssh(parse_ssh(rest, host)?));
        }
        Err(anyhow!(
            "DOCKER_HOST {host} is not a scheme deploy can reach a Docker daemon on: use unix://<socket>, tcp://<host>:<port> (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for TLS) or ssh://[user@]host[:port]"
        ))
    }
}

/// `host[:port]`, `[v6]` or `[v6]:port`; the host without brackets.
fn host_and_port(authority: &str, whole: &str) -> Result<(String, Option<u16>)> {
    let port_of = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| anyhow!("DOCKER_HOST {whole} has an invalid port `{port}`"))
    };
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (name, after) = rest
            .split_once(']')
            .ok_or_else(|| anyhow!("DOCKER_HOST {whole} has an unclosed `[`"))?;
        match after.strip_prefix(':') {
            Some(port) => (name, Some(port_of(port)?)),
            None if after.is_empty() => (name, None),
            None => bail!("DOCKER_HOST {whole}: unexpected `{after}` after the address"),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port_of(port)?)),
            None => (authority, None),
        }
    };
    if name.is_empty() {
        bail!("DOCKER_HOST {whole} names no host");
    }
    Ok((name.to_owned(), port))
}

/// `[user@]host[:port]`, refusing what the docker CLI refuses: a password, a path.
fn parse_ssh(rest: &str, whole: &str) -> Result<SshTarget> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        bail!("DOCKER_HOST {whole} has a path; an ssh:// Docker host is ssh://[user@]host[:port]");
    }
    let (user, authority) = match rest.rsplit_once('@') {
        Some((user, authority)) => (Some(user), authority),
        None => (None, rest),
    };
    if let Some(user) = user {
        if user.contains(':') {
            bail!(
                "DOCKER_HOST {} has a password; ssh:// takes none: use a key (ssh-agent or ~/.ssh/config)",
                whole.replacen(user, "<user>:<password>", 1)
            );
        }
        if user.is_empty() {
            bail!("DOCKER_HOST {whole} has an empty user before `@`");
        }
    }
    let (host, port) = host_and_port(authority, whole)?;
    if host.starts_with('-') {
        bail!("DOCKER_HOST {whole}: a host cannot start with `-`");
    }
    Ok(SshTarget {
        user: user.map(str::to_owned),
        host,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_and_plain_tcp_hosts() {
        assert_eq!(
            DaemonAddress::parse("unix:///var/run/docker.sock", None).unwrap(),
            DaemonAddress::Unix("/var/run/docker.sock".into())
        );
        for (host, address) in [
            ("tcp://10.0.0.5:2375", "10.0.0.5:2375"),
            ("tcp://builder", "builder:2375"),
            ("tcp://builder:2375/", "builder:2375"),
            ("http://builder:80", "builder:80"),
            ("tcp://[::1]:2375", "[::1]:2375"),
            ("tcp://[fd00::5]", "[fd00::5]:2375"),
        ] {
            assert_eq!(
                DaemonAddress::parse(host, None).unwrap(),
                DaemonAddress::Tcp(address.into()),
                "{host}"
            );
        }
    }

    #[test]
    fn tls_hosts_keep_the_name_the_certificate_is_checked_for() {
        let certs = Path::new("/home/me/.docker");
        for (host, address, name) in [
            ("tcp://10.0.0.5:2376", "10.0.0.5:2376", "10.0.0.5"),
            (
                "tcp://builder.internal",
                "builder.internal:2376",
                "builder.internal",
            ),
            ("tcp://[::1]:2376", "[::1]:2376", "::1"),
        ] {
            assert_eq!(
                DaemonAddress::parse(host, Some(certs)).unwrap(),
                DaemonAddress::Tls {
                    address: address.into(),
                    server_name: name.into(),
                    cert_dir: certs.into(),
                },
                "{host}"
            );
        }
    }

    #[test]
    fn ssh_hosts() {
        for (host, user, name, port) in [
            ("ssh://builder", None, "builder", None),
            ("ssh://me@builder", Some("me"), "builder", None),
            ("ssh://me@builder:2222", Some("me"), "builder", Some(2222)),
            (
                "ssh://root@127.0.0.1:22/",
                Some("root"),
                "127.0.0.1",
                Some(22),
            ),
            ("ssh://me@[fd00::5]:2222", Some("me"), "fd00::5", Some(2222)),
        ] {
            assert_eq!(
                DaemonAddress::parse(host, None).unwrap(),
                DaemonAddress::Ssh(SshTarget {
                    user: user.map(str::to_owned),
                    host: name.into(),
                    port,
                }),
                "{host}"
            );
        }
        // DOCKER_TLS_VERIFY does not apply to ssh.
        assert!(matches!(
            DaemonAddress::parse("ssh://builder", Some(Path::new("/certs"))).unwrap(),
            DaemonAddress::Ssh(_)
        ));
    }

    #[test]
    fn the_ssh_command_is_the_docker_clis() {
        let target = SshTarget {
            user: Some("me".into()),
            host: "builder".into(),
            port: Some(2222),
        };
        assert_eq!(
            target.ssh_args().join(" "),
            "-o ConnectTimeout=30 -o BatchMode=yes -T -l me -p 2222 -- builder docker system dial-stdio"
        );
        let bare = SshTarget {
            user: None,
            host: "builder".into(),
            port: None,
        };
        assert_eq!(
            bare.ssh_args().join(" "),
            "-o ConnectTimeout=30 -o BatchMode=yes -T -- builder docker system dial-stdio"
        );
    }

    #[test]
    fn hosts_deploy_cannot_use_say_what_can() {
        for (host, said) in [
            ("npipe:////./pipe/docker_engine", "ssh://[user@]host[:port]"),
            ("builder:2375", "not a scheme"),
            ("tcp://builder:http", "invalid port `http`"),
            ("tcp://", "names no host"),
            ("ssh://", "names no host"),
            ("ssh://me@", "names no host"),
            ("ssh://@builder", "empty user"),
            ("ssh://me@builder/var/run/docker.sock", "has a path"),
            ("ssh://me@builder:22x", "invalid port `22x`"),
            ("ssh://-oProxyCommand=x", "cannot start with `-`"),
        ] {
            let err = DaemonAddress::parse(host, None).unwrap_err().to_string();
            assert!(err.contains(said), "{host}: {err}");
        }
    }

    #[test]
    fn an_ssh_password_is_refused_and_never_repeated() {
        let err = DaemonAddress::parse("ssh://me:hunter2@builder", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has a password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
