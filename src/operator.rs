//! Who runs deploy, and where: the operator's user and host name as the deploy lock,
//! the run history and the webhook name them, and the pid space this process's pid
//! belongs to (so that a lock's holder can be told gone only by a run that can see it).

/// `user@host`: who runs this deploy, as the lock and notifications name them.
pub fn operator() -> String {
    format!("{}@{}", user_name(), hostname())
}

/// Who runs deploy: the passwd name of this process's effective uid, then
/// `$USER`/`$LOGNAME`. Root in a container or a CI job often has no `$USER`, and a lock
/// held by `unknown` tells the next operator nothing.
pub fn user_name() -> String {
    let uid = rustix::process::geteuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| passwd_name(&passwd, uid))
        .or_else(|| std::env::var("USER").ok().filter(|user| !user.is_empty()))
        .or_else(|| {
            std::env::var("LOGNAME")
                .ok()
                .filter(|user| !user.is_empty())
        })
        // Not in /etc/passwd (a uid given to `docker run --user`): the uid still says who.
        .unwrap_or_else(|| format!("uid{uid}"))
}

/// The name of `uid` in an `/etc/passwd` text (`name:password:uid:gid:...`).
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid = fields.nth(1)?.parse::<u32>().ok()?;
        (entry_uid == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// This machine's name, as `uname -n` prints it: the kernel's, so it is there on macOS
/// (no `/etc/hostname`) and in a container (`docker run --hostname`) alike.
pub fn hostname() -> String {
    nodename(rustix::system::uname().nodename().to_bytes())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown-host".into())
}

/// The node name uname(2) gave, if it names anything.
fn nodename(raw: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(raw).trim().to_owned();
    (!name.is_empty() && name != "(none)").then_some(name)
}

/// Which pids this process can see: the kernel's boot id and its pid namespace (Linux).
/// The hostname is not enough: containers share one, each with its own pids.
pub fn pid_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), namespace.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_is_the_passwd_name_of_the_effective_uid() {
        let passwd = "# comment\nroot:x:0:0:root:/root:/bin/bash\nbroken\nci:x:1000:1000::/home/ci:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("ci"));
        assert_eq!(passwd_name(passwd, 4242), None);
    }

    #[test]
    fn the_host_is_the_kernels_node_name() {
        let uname = std::process::Command::new("uname")
            .arg("-n")
            .output()
            .unwrap();
        let expected = String::from_utf8(uname.stdout).unwrap().trim().to_owned();
        assert!(!expected.is_empty());
        assert_eq!(hostname(), expected);
        assert_eq!(nodename(b""), None);
        // What Linux reports before anything set a name.
        assert_eq!(nodename(b"(none)"), None);
        assert_eq!(nodename(b"runner-7").as_deref(), Some("runner-7"));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_pid_space_names_the_pid_namespace() {
        assert!(pid_space().is_some_and(|space| space.contains("pid:[")));
    }
}
