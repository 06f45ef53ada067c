#!/usr/bin/env bash
# Benchmark of `--changed` graph mode vs the runbook's rule (issue 16; see bench/README.md),
# against the local test bed, both modes in the same run:
#   1. generates (bench/gen_workspace.py, git fast-import, seeded) a workspace of 100
#      services, 400 packages and a 5,000-package v9 lockfile with 1,100 commits, plus the
#      fixture's terraform root; bootstraps it in a moto account of its own
#      (testbed/fixture_bootstrap.py) and creates the 100 ECS services running HEAD~1000;
#   2. times the real binary, `deploy --changed=graph --dry-run` and
#      `deploy --changed=runbook --dry-run`, alternately (process start, git status,
#      terraform output and the ECS round trips included), medians of DEPLOY_BENCH_RUNS;
#   3. runs the `changed_graph` bench target (library level, no AWS): the decision alone,
#      and how many services each mode rolls over the last 200 commits.
# Builds deploy and the bench target (debug, never --release here) and writes
# bench/results-changed-graph.md. Needs the test bed up (testbed/testbed.sh up); never
# starts or stops it. Its temp dir goes on exit; its moto account stays until the test bed
# goes down (as bench/changed_plan.sh's).
# Environment: BENCH_SEED (16), DEPLOY_BENCH_RUNS (5), DEPLOY_BENCH_DEPTH (1000),
# DEPLOY_BENCH_WINDOW (200), BENCH_RESULTS (bench/results-changed-graph.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results-changed-graph.md}"
RUNS="${DEPLOY_BENCH_RUNS:-5}"
DEPTH="${DEPLOY_BENCH_DEPTH:-1000}"
SEED="${BENCH_SEED:-16}"
N_SERVICES=100
PLAN_TIMEOUT=120 # a plan takes ~1 s; far above it

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"
PY="${DEPLOY_TESTBED_PYTHON:-}"
[[ -x "$PY" ]] || die "DEPLOY_TESTBED_PYTHON is not set by the test bed env"
curl -sS -o /dev/null --max-time 5 "$DEPLOY_TESTBED_MOTO_URL" ||
    die "moto $DEPLOY_TESTBED_MOTO_URL not answering: run testbed/testbed.sh up"

START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-bench-graph.XXXXXX")"
[[ -n "${BENCH_KEEP_WORK:-}" ]] || trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
write_ecs_services "$WORK/ecs_services.py"

log "building deploy and the changed_graph bench target (debug)"
cargo build --quiet --bin deploy || die "cargo build failed"
bench_bin="$(cargo test --bench changed_graph --no-run --message-format short 2>&1 | sed -n 's/.*Executable .* (\(.*\))$/\1/p')"
[[ -x "$bench_bin" ]] || die "could not build the changed_graph bench target"
# Private copies: a rebuild of target/ during the run cannot change what is measured.
cp "$ROOT/target/debug/deploy" "$WORK/deploy"
cp "$bench_bin" "$WORK/changed_graph"

R="$WORK/repo"
log "1. generating the workspace (seed $SEED) and bootstrapping it in moto"
git init -q -b main "$R"
python3 bench/gen_workspace.py "$SEED" "$N_SERVICES" 400 5000 1100 "$ROOT/tests/fixtures/platform" |
    git -C "$R" fast-import --quiet
git -C "$R" checkout -q main
bootstrap "$R"
mapfile -t SERVICES < <(git -C "$R" ls-tree --name-only HEAD services/ | sed 's|^services/||')
((${#SERVICES[@]} == N_SERVICES)) || die "expected $N_SERVICES services, found ${#SERVICES[@]}"
LIVE="$(git -C "$R" rev-parse --short=7 "HEAD~$DEPTH")"
(fx_env "$R" && "$PY" "$WORK/ecs_services.py" create "$R.json" "$LIVE" "${SERVICES[@]}") ||
    die "creating the ECS services failed"
log "1. ready in $((SECONDS - START)) s: $N_SERVICES services live at HEAD~$DEPTH ($LIVE)"

# The generated workspace has no SPAs (deploy.toml keeps the default two, with no apps/).
PLAN=(--var-file tfvars/sandbox.tfvars --profile testbed --dry-run --skip-spas)
# plan MODE OUT: one plan as JSON; prints how many services it deploys.
plan() {
    (fx_env "$R" && timeout "$PLAN_TIMEOUT" "$WORK/deploy" "${PLAN[@]}" --changed="$1" --output json >"$2" 2>"$2.log") ||
        die "deploy --changed=$1 --dry-run failed: $(tail -3 "$2.log")"
    "$PY" -c '
import json, sys
services = json.load(open(sys.argv[1]))["services"]
assert len(services) == int(sys.argv[2]), f"the plan lists {len(services)} services"
print(sum(s["action"] == "DEPLOY" for s in services))' "$2" "$N_SERVICES"
}
G_DEPLOY="$(plan graph "$WORK/graph.json")"
R_DEPLOY="$(plan runbook "$WORK/runbook.json")"

log "2. timing deploy --changed=graph|runbook --dry-run alternately, $RUNS each (warm)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
G_TIMES=() R_TIMES=()
for ((i = 0; i < RUNS; i++)); do
    for mode in graph runbook; do
        t0="$(now)"
        (fx_env "$R" && timeout "$PLAN_TIMEOUT" "$WORK/deploy" "${PLAN[@]}" --changed="$mode" >/dev/null 2>>"$WORK/timed.log") ||
            die "deploy --changed=$mode --dry-run failed: $(tail -3 "$WORK/timed.log")"
        t="$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')"
        if [[ "$mode" == graph ]]; then G_TIMES+=("$t"); else R_TIMES+=("$t"); fi
    done
done
G_MED="$(median "${G_TIMES[@]}")"
R_MED="$(median "${R_TIMES[@]}")"
LOAD_MID="$(cut -d' ' -f1-3 /proc/loadavg)"
log "2. graph median ${G_MED} s (DEPLOY $G_DEPLOY), runbook median ${R_MED} s (DEPLOY $R_DEPLOY)"

log "3. library level: the decision alone, and the rolls over the last ${DEPLOY_BENCH_WINDOW:-200} commits"
DEPLOY_BENCH_RUNS="$RUNS" "$WORK/changed_graph" "$R" | tee "$WORK/lib.out"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
TOTAL=$((SECONDS - START))

src="$(git rev-parse --short HEAD)"
[[ -z "$(git status --porcelain -- src Cargo.toml bench)" ]] || src="$src + uncommitted changes"
{
    echo "# \`--changed\` graph vs runbook: latest results"
    echo
    echo "Written by \`bench/changed_graph.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $TOTAL s (seed $SEED)."
    echo
    echo "- machine: \`nproc\` = $(nproc); load average at start of the timed runs: $LOAD_START; after them: $LOAD_MID; at end: $LOAD_END"
    echo "- measured: target/debug/deploy (debug profile, sha256 $(sha256sum "$WORK/deploy" | cut -c1-12)) and the changed_graph bench target (sha256 $(sha256sum "$WORK/changed_graph" | cut -c1-12)); source $src"
    echo "- workspace: $N_SERVICES services, 400 packages, 5,000 external packages in a v9 lockfile, 1,101 commits; every service live in ECS (moto) at HEAD~$DEPTH ($LIVE)"
    echo
    echo "## The real binary: \`deploy --changed=<mode> --dry-run\`, wall time"
    echo
    echo "Process start, git status, \`terraform output\`, the ECS round trips ($N_SERVICES services: DescribeServices by 10; the task definitions come from deploy's cache, filled by the untimed plan before) and the decision; the two modes alternate, $RUNS runs each."
    echo
    echo "| mode | median (s) | runs (s) | services to deploy |"
    echo "| --- | ---: | --- | ---: |"
    echo "| graph | **$G_MED** | ${G_TIMES[*]} | $G_DEPLOY |"
    echo "| runbook | $R_MED | ${R_TIMES[*]} | $R_DEPLOY |"
    echo
    echo "Target: graph mode under 1 s warm: **$(awk -v g="$G_MED" 'BEGIN { print (g < 1) ? "met" : "NOT met" }')**."
    echo
    echo "## Library level (\`deploy::changes::live::compare\`, live images given, no AWS)"
    echo
    echo '```'
    cat "$WORK/lib.out"
    echo '```'
} >"$RESULTS"
log "wrote $RESULTS in $TOTAL s"
