#!/usr/bin/env bash
# Benchmark of `--changed` graph mode vs the runbook's rule (issue 16; see bench/README.md):
# generates (bench/gen_workspace.py, git fast-import, seeded) a workspace of 100 services,
# 400 packages and a 5,000-package v9 lockfile with 1,100 commits, then runs the
# `changed_graph` bench target (debug build, `cargo test --bench`, never --release here)
# and writes bench/results-changed-graph.md. No test bed needed: ECS answers are given.
# Environment: BENCH_SEED (16), DEPLOY_BENCH_RUNS (5), DEPLOY_BENCH_DEPTH (1000),
# DEPLOY_BENCH_WINDOW (200), BENCH_RESULTS (bench/results-changed-graph.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESULTS="${BENCH_RESULTS:-bench/results-changed-graph.md}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-bench-graph.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
git init -q -b main "$WORK/repo"
python3 bench/gen_workspace.py "${BENCH_SEED:-16}" 100 400 5000 1100 | git -C "$WORK/repo" fast-import --quiet
git -C "$WORK/repo" checkout -q main
bin="$(cargo test --bench changed_graph --no-run --message-format short 2>&1 | sed -n 's/.*Executable .* (\(.*\))$/\1/p')"
[[ -x "$bin" ]] || { echo "bench: error: could not build the changed_graph bench target" >&2; exit 1; }
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" "$WORK/repo" | tee "$WORK/out"
{
    echo "# \`--changed\` graph vs runbook: latest results"
    echo
    echo "Written by \`bench/changed_graph.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "- machine: \`nproc\` = $(nproc); load average at start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- measured: $bin (debug, \`test\` profile), sha256 $(sha256sum "$bin" | cut -c1-12); source $(git rev-parse --short HEAD)"
    echo
    echo '```'
    cat "$WORK/out"
    echo '```'
} >"$RESULTS"
