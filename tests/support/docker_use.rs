//! Who uses the Docker daemon, shared or alone (see [`DockerUse`]).

/// Who uses the Docker daemon. Docker 20.10's BuildKit panics and takes the daemon
/// down (a nil pointer in its cache manager, seen in dockerd.log during a full test
/// run) when its build cache is pruned while another build runs. So every deploy run
/// uses the daemon shared, and the one run that prunes the build cache uses it alone.
/// Shared users never wait for a user queued to go alone, only for one that is in:
/// a test may start a second run while its first one runs.
pub struct DockerUse {
    alone: bool,
}

static DOCKER_USERS: std::sync::Mutex<(usize, bool)> = std::sync::Mutex::new((0, false));
static DOCKER_CHANGED: std::sync::Condvar = std::sync::Condvar::new();

impl DockerUse {
    /// Waits until no one uses the daemon alone.
    pub fn shared() -> Self {
        Self::enter(false)
    }

    /// Waits until no one else uses the daemon.
    pub fn alone() -> Self {
        Self::enter(true)
    }

    fn enter(alone: bool) -> Self {
        let users = DOCKER_USERS.lock().unwrap_or_else(|e| e.into_inner());
        let mut users = DOCKER_CHANGED
            .wait_while(users, |(shared, someone_alone)| {
                *someone_alone || (alone && *shared > 0)
            })
            .unwrap_or_else(|e| e.into_inner());
        if alone {
            users.1 = true;
        } else {
            users.0 += 1;
        }
        Self { alone }
    }
}

impl Drop for DockerUse {
    fn drop(&mut self) {
        let mut users = DOCKER_USERS.lock().unwrap_or_else(|e| e.into_inner());
        if self.alone {
            users.1 = false;
        } else {
            users.0 -= 1;
        }
        DOCKER_CHANGED.notify_all();
    }
}
