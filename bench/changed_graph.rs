//! Benchmark of `--changed` graph mode against the runbook's rule (issue 16) over a
//! generated workspace (bench/gen_workspace.py, made by bench/changed_graph.sh): the
//! decision `deploy --changed` takes once ECS has answered (`deploy::changes::live::compare`,
//! both modes, the same code the binary runs), timed with every service live 1,000
//! commits back, and then the number of services each mode rolls over the last 200
//! commits, each planned with live = its parent. ECS is left out: the live images are
//! given, so the 400 plans need no moto (bench/changed_plan.sh measures the ECS part).
//!
//! Not a test: a `[[bench]]` target without the libtest harness. Arguments: the
//! generated repository; `DEPLOY_BENCH_RUNS` (default 5), `DEPLOY_BENCH_DEPTH` (default
//! 1000), `DEPLOY_BENCH_WINDOW` (default 200).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use deploy::aws::ecs::LiveImage;
use deploy::changes::live::compare;
use deploy::checkout::load_platform;
use deploy::git::Repo;
use deploy::model::config::ChangesMode;
use deploy::model::plan::Action;

fn main() {
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let runs = number("DEPLOY_BENCH_RUNS", 5);
    let depth = number("DEPLOY_BENCH_DEPTH", 1000);
    let window = number("DEPLOY_BENCH_WINDOW", 200);
    let root = std::env::args()
        .nth(1)
        .expect("usage: changed_graph <generated repository>");
    let root = Path::new(&root);
    let platform = load_platform(root).expect("the generated workspace loads");
    let repo = Repo::discover(root).expect("the generated workspace is a repository");
    let git = repo.git();
    let mut walk = git.revwalk().unwrap();
    walk.push_head().unwrap();
    // Newest first.
    let history: Vec<git2::Oid> = walk.map(Result::unwrap).collect();
    assert!(history.len() > depth.max(window), "history too short");
    let live_at = |base: git2::Oid| -> HashMap<String, LiveImage> {
        let tag = &base.to_string()[..7];
        platform
            .services
            .iter()
            .map(|s| {
                let image = LiveImage::Running {
                    image: format!("127.0.0.1:5000/{}:{tag}", s.name),
                    task_definition: format!("{}:1", s.name),
                    rollout_state: Some("COMPLETED".into()),
                    running: 1,
                    desired: 1,
                    deployments: 1,
                };
                (s.name.clone(), image)
            })
            .collect()
    };
    let rolled = |head: git2::Oid, base: git2::Oid, mode: ChangesMode| -> usize {
        let states = compare(&platform, &repo, &head.to_string(), live_at(base), mode)
            .expect("the plan is computed");
        states.iter().filter(|s| s.action == Action::Deploy).count()
    };
    println!(
        "workspace: {} services, {} commits",
        platform.services.len(),
        history.len()
    );
    for (label, mode) in [
        ("graph", ChangesMode::Graph),
        ("runbook", ChangesMode::Runbook),
    ] {
        let mut times = Vec::new();
        let mut deploying = 0;
        for _ in 0..runs {
            let t0 = Instant::now();
            deploying = rolled(history[0], history[depth], mode);
            times.push(t0.elapsed().as_secs_f64());
        }
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let runs: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
        println!(
            "decision {label} live=HEAD~{depth}: median {:.3} s; runs {}; DEPLOY {deploying}",
            sorted[sorted.len() / 2],
            runs.join(" ")
        );
    }
    for (label, mode) in [
        ("graph", ChangesMode::Graph),
        ("runbook", ChangesMode::Runbook),
    ] {
        let t0 = Instant::now();
        let total: usize = (0..window)
            .map(|i| rolled(history[i], history[i + 1], mode))
            .sum();
        println!(
            "window {label} last {window} commits (live = parent): {total} service rolls ({:.1} s)",
            t0.elapsed().as_secs_f64()
        );
    }
}
