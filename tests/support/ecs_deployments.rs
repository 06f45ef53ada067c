//! `testbed/ecs_deployments.py` in front of moto: ECS's service-deployment calls answered
//! from a scenario the test writes, everything else forwarded to moto. Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Testbed;

pub struct EcsDeployments {
    child: std::process::Child,
    /// `http://127.0.0.1:port`: give it to a run as `AWS_ENDPOINT_URL_ECS`.
    pub endpoint: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl EcsDeployments {
    /// Starts the stand-in on `scenario`; panics with its stderr when it refuses the
    /// scenario (a response the real API would never give).
    pub fn start(bed: &Testbed, scenario: &serde_json::Value) -> Self {
        Self::try_start(bed, scenario).unwrap_or_else(|stderr| panic!("{stderr}"))
    }

    /// Starts it, or returns what it said on stderr when it exited instead.
    pub fn try_start(bed: &Testbed, scenario: &serde_json::Value) -> Result<Self, String> {
        use std::io::{BufRead, Read};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scenario.json");
        std::fs::write(&file, serde_json::to_vec_pretty(scenario).unwrap()).unwrap();
        let log = dir.path().join("calls.jsonl");
        let upstream = bed
            .endpoint
            .split_once("://")
            .map_or(&*bed.endpoint, |(_, rest)| rest)
            .trim_end_matches('/')
            .to_owned();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/ecs_deployments.py");
        let mut child = Command::new(&bed.python)
            .arg(script)
            .args(["--upstream", &upstream, "--scenario"])
            .arg(&file)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the ECS service-deployments stand-in starts");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        if ready.trim().is_empty() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            let _ = child.wait();
            return Err(stderr);
        }
        // Its later stderr (a refused response) goes to the test's.
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut std::io::stderr());
        });
        Ok(Self {
            child,
            endpoint: format!("http://127.0.0.1:{}", ready.trim()),
            log,
            _dir: dir,
        })
    }

    /// The requests it received for `operation`, in order (their JSON bodies; `null`
    /// for forwarded ones).
    pub fn calls(&self, operation: &str) -> Vec<serde_json::Value> {
        self.all_calls()
            .into_iter()
            .filter(|call| call["operation"] == operation)
            .map(|call| call["request"].clone())
            .collect()
    }

    /// Every request it received, in order: `{"operation": ..., "request": {...}}`.
    pub fn all_calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .collect()
    }
}

impl Drop for EcsDeployments {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
