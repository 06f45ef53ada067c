#!/usr/bin/env bash
# A full deploy of the fixture the runbook's way against `deploy`, warm, side by side in one
# run (bench/README.md, "A full deploy against the runbook's way"). A copy of the fixture,
# its own moto account, one unmeasured warm-up deploy, then BENCH_REPEATS pairs, alternating
# (baseline, deploy, baseline, deploy, ...), each run on a fresh commit that changes a shared
# package (packages/common: all 9 images rebuild their service stage; the dependency stage
# comes from the local build cache) and both SPAs' sources.
#
# baseline, what an operator runs by the runbook (infra/scripts/deploy.sh's three steps):
#   1. per service in turn: DOCKER_BUILDKIT=1 /usr/bin/docker build (bench/images.sh's
#      Dockerfile and build args) -t <registry>/<svc>:<git short SHA>, then docker push;
#   2. per SPA: its build command from deploy.toml (the one deploy runs, in the SPA's
#      directory), `aws s3 sync dist/ s3://<bucket> --delete`, then
#      `aws cloudfront create-invalidation --paths '/*'`;
#   3. terraform -chdir=infra/terraform/aws apply -auto-approve -var-file=tfvars/sandbox.tfvars
#      -var image_tag=<git short SHA>.
#   The runbook's script does not wait for ECS ("ECS then rolls the affected services"); its
#   "Verify after a deploy" is a manual check afterwards. That check is timed too, as
#   `aws ecs wait services-stable` on the 9 services, reported beside the script's wall time
#   and not counted in it.
# deploy: deploy --var-file tfvars/sandbox.tfvars --profile testbed -y --output json
#   (build, push, SPAs, terraform plan + review + apply, verify), stages[] read from the JSON.
#
# Each run has its own commit, so its own tag: neither side reuses the other's pushed tags.
# Needs the test bed up (it never starts or stops it), the machine's Docker daemon, the AWS
# CLI on PATH. Removed on exit: the temp dir and the local image tags both sides created (with
# deploy's cache-image tags, unless they were there before the run; the pushed images stay in
# the test-bed registry, which the test bed owns). Writes
# bench/results-runbook.md.
#
# Environment:
#   BENCH_REPEATS=N        baseline/deploy pairs (default 3)
#   BENCH_BUDGET_SECS=N    give up when a new run would start after N s (default 1500)
#   DEPLOY_BIN=path        the deploy binary (default target/debug/deploy)
#   BENCH_RESULTS=path     where to write the results (default bench/results-runbook.md)
#   BENCH_ECS_STAND_IN=1   deploy's ECS calls go through testbed/ecs_deployments.py (no
#                          scenario: ListServiceDeployments lists none, as ECS answers for
#                          a service without service deployments) instead of straight to
#                          moto, which answers that call with HTTP 500 (not implemented),
#                          retried by the SDK before deploy falls back to DescribeServices
#                          (default 0: straight to moto)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
DEPLOY="${DEPLOY_BIN:-$ROOT/target/debug/deploy}"
DOCKER=/usr/bin/docker # the 20.10 CLI with BuildKit built in (as bench/images.sh)
REPEATS="${BENCH_REPEATS:-3}"
BUDGET="${BENCH_BUDGET_SECS:-1500}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results-runbook.md}"
STAND_IN="${BENCH_ECS_STAND_IN:-0}"
DEPLOY_TIMEOUT=600
BUILD_TIMEOUT=180
PUSH_TIMEOUT=120
AWS_TIMEOUT=120
TF_TIMEOUT=600
SERVICES=(api auth clinical-api billing notifications scheduler files reports webhooks)
SPAS=(admin-ui simulator)

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"
[[ -x "$DEPLOY" ]] || die "no deploy binary at $DEPLOY (set DEPLOY_BIN, or cargo build)"
[[ -x "$DOCKER" ]] || die "$DOCKER missing (Debian's docker.io 20.10 CLI is needed for BuildKit)"
PY="${DEPLOY_TESTBED_PYTHON:-}"
[[ -x "$PY" ]] || die "DEPLOY_TESTBED_PYTHON is not set by the test bed env"
TERRAFORM="${DEPLOY_TESTBED_TERRAFORM:-terraform}"
for c in git curl timeout node aws "$TERRAFORM"; do command -v "$c" >/dev/null || die "$c is required"; done
curl -fsS -o /dev/null --max-time 5 "http://$DEPLOY_TESTBED_REGISTRY/v2/" ||
    die "registry $DEPLOY_TESTBED_REGISTRY not answering: run testbed/testbed.sh up"
curl -sS -o /dev/null --max-time 5 "$DEPLOY_TESTBED_MOTO_URL" ||
    die "moto $DEPLOY_TESTBED_MOTO_URL not answering: run testbed/testbed.sh up"
"$DOCKER" info >/dev/null 2>&1 || die "docker daemon not reachable"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

START=$SECONDS
WORK="$(mktemp -d /tmp/deploy-bench-runbook-XXXXXX)"
cp "$DEPLOY" "$WORK/deploy" # a rebuild of target/ during the run cannot change what is measured
DEPLOY_SRC="$DEPLOY"
DEPLOY="$WORK/deploy"
TAGS="$WORK/tags"
: >"$TAGS"
# Tags that were here before the run (deploy's cache images, <registry>/<svc>:cache-<stage>,
# keep their name from run to run): never removed.
"$DOCKER" images --format '{{.Repository}}:{{.Tag}}' >"$WORK/tags-before"
STAND_IN_PID=""
cleanup() {
    [[ -z "$STAND_IN_PID" ]] || kill "$STAND_IN_PID" 2>/dev/null || true
    # The local tags both sides created (the images stay in the registry, which the test bed owns).
    sort -u "$TAGS" | grep -vxF -f "$WORK/tags-before" | while read -r tag; do
        "$DOCKER" rmi -f "$tag" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

budget_check() {
    local used=$((SECONDS - START))
    ((used < BUDGET)) || die "time budget of ${BUDGET}s used up before: $1 (BENCH_BUDGET_SECS)"
}
load1() { cut -d' ' -f1 /proc/loadavg; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

FX="$WORK/platform"
cp -a "$ROOT/tests/fixtures/platform" "$FX"
commit() { (cd "$FX" && git add -A && git -c user.name=bench -c user.email=bench@example.invalid commit -qm "$1"); }
(cd "$FX" && git init -q --initial-branch=main)
commit "bench platform"
log "bootstrapping the fixture's moto account"
bootstrap "$FX"
SUMMARY="$FX.json"
ECS_ENV=()
ECS_NOTE="deploy's ECS calls go straight to moto, which answers ListServiceDeployments with HTTP 500 (not implemented): the SDK retries it, then deploy follows each service on DescribeServices"
if [[ "$STAND_IN" == 1 ]]; then
    echo '{"services": {}}' >"$WORK/scenario.json"
    "$PY" "$ROOT/testbed/ecs_deployments.py" --upstream "${DEPLOY_TESTBED_MOTO_URL#http://}" \
        --scenario "$WORK/scenario.json" --log "$WORK/ecs-calls.jsonl" >"$WORK/stand-in.port" 2>"$WORK/stand-in.log" &
    STAND_IN_PID=$!
    for _ in $(seq 300); do
        [[ -s "$WORK/stand-in.port" ]] && break
        kill -0 "$STAND_IN_PID" 2>/dev/null || die "the ECS stand-in exited: $(tail -3 "$WORK/stand-in.log")"
        sleep 0.1
    done
    port="$(head -1 "$WORK/stand-in.port")"
    [[ "$port" =~ ^[0-9]+$ ]] || die "the ECS stand-in did not start: $(tail -3 "$WORK/stand-in.log")"
    ECS_ENV=("AWS_ENDPOINT_URL_ECS=http://127.0.0.1:$port")
    ECS_NOTE="deploy's ECS calls go through testbed/ecs_deployments.py in front of moto (BENCH_ECS_STAND_IN=1): ListServiceDeployments lists no service deployment, as ECS does for a service without one, and deploy follows each service on DescribeServices"
fi
CLUSTER="$(summary_field "$SUMMARY" ecs_cluster)"
REGISTRY="$(summary_field "$SUMMARY" registry)"
spa_field() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]])' "$SUMMARY" "$1" "$2"; }
# The SPA build command deploy runs (deploy.toml [spas.<name>] build, in the SPA's directory).
spa_build_cmd() { "$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["spas"][sys.argv[2]]["build"])' "$FX/deploy.toml" "$1"; }

# change N: a shared package and both SPAs' sources, committed.
change() {
    echo "// bench run $1 $(date +%s%N)" >"$FX/packages/common/bench.ts"
    for spa in "${SPAS[@]}"; do echo "/* bench run $1 $(date +%s%N) */" >>"$FX/apps/$spa/src/style.css"; done
    commit "bench run $1"
}

# baseline LABEL: the runbook's way; appends "LABEL wall load_before load_after step=secs..." to rows.
baseline() {
    local label=$1 out="$WORK/$1.log"
    (
        fx_env "$FX"
        export AWS_ENDPOINT_URL="$DEPLOY_TESTBED_MOTO_URL" DOCKER_BUILDKIT=1
        ep=(--endpoint-url "$DEPLOY_TESTBED_MOTO_URL")
        tag="$(git rev-parse --short HEAD)"
        l0=$(load1)
        t0=$(now)
        build=0 push=0
        for svc in "${SERVICES[@]}"; do
            ref="$REGISTRY/$svc:$tag"
            echo "$ref" >>"$TAGS"
            a=$(now)
            timeout "$BUILD_TIMEOUT" "$DOCKER" build --progress=plain -f infra/docker/service.Dockerfile \
                --build-arg "SERVICE=$svc" --build-arg PUPPETEER_SKIP_DOWNLOAD=true \
                --build-arg PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 -t "$ref" . >>"$out" 2>&1 ||
                die "$label: docker build $svc failed, see $out"
            b=$(now)
            timeout "$PUSH_TIMEOUT" "$DOCKER" push "$ref" >>"$out" 2>&1 || die "$label: docker push $ref failed, see $out"
            c=$(now)
            build=$(awk -v s="$build" -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", s + b - a }')
            push=$(awk -v s="$push" -v b="$b" -v c="$c" 'BEGIN { printf "%.3f", s + c - b }')
        done
        t1=$(now)
        spa_build=0 sync=0 inval=0
        for spa in "${SPAS[@]}"; do
            a=$(now)
            (cd "apps/$spa" && timeout "$BUILD_TIMEOUT" sh -c "$(spa_build_cmd "$spa")") >>"$out" 2>&1 ||
                die "$label: SPA build $spa failed, see $out"
            b=$(now)
            timeout "$AWS_TIMEOUT" aws "${ep[@]}" s3 sync "apps/$spa/dist/" "s3://$(spa_field spa_buckets "$spa")" --delete >>"$out" 2>&1 ||
                die "$label: aws s3 sync $spa failed, see $out"
            c=$(now)
            timeout "$AWS_TIMEOUT" aws "${ep[@]}" cloudfront create-invalidation \
                --distribution-id "$(spa_field spa_distribution_ids "$spa")" --paths '/*' >>"$out" 2>&1 ||
                die "$label: aws cloudfront create-invalidation $spa failed, see $out"
            d=$(now)
            spa_build=$(awk -v s="$spa_build" -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", s + b - a }')
            sync=$(awk -v s="$sync" -v b="$b" -v c="$c" 'BEGIN { printf "%.3f", s + c - b }')
            inval=$(awk -v s="$inval" -v c="$c" -v d="$d" 'BEGIN { printf "%.3f", s + d - c }')
        done
        t2=$(now)
        timeout "$TF_TIMEOUT" "$TERRAFORM" -chdir=infra/terraform/aws apply -auto-approve -input=false \
            -var-file=tfvars/sandbox.tfvars -var "image_tag=$tag" >>"$out" 2>&1 ||
            die "$label: terraform apply failed, see $out: $(tail -5 "$out")"
        t3=$(now)
        l1=$(load1)
        # The runbook's "Verify after a deploy" (manual, after the script): not in the wall.
        timeout "$AWS_TIMEOUT" aws "${ep[@]}" ecs wait services-stable --cluster "$CLUSTER" \
            --services "${SERVICES[@]}" >>"$out" 2>&1 || die "$label: aws ecs wait services-stable failed, see $out"
        t4=$(now)
        echo "$label $(secs "$t0" "$t3") $l0 $l1 docker_build=$build docker_push=$push spa_build=$spa_build" \
            "s3_sync=$sync invalidation=$inval terraform_apply=$(secs "$t2" "$t3") ecs_wait=$(secs "$t3" "$t4")" >>"$WORK/rows"
    ) || exit 1
    log "$(tail -1 "$WORK/rows")"
}

# deploy_run LABEL: one full deploy; appends "LABEL wall load_before load_after stage=secs..." to rows.
deploy_run() {
    local label=$1 t0 t1 l0 l1 out="$WORK/$1.json"
    l0=$(load1)
    t0=$(now)
    (
        fx_env "$FX"
        env "${ECS_ENV[@]}" DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" timeout "$DEPLOY_TIMEOUT" \
            "$DEPLOY" --var-file tfvars/sandbox.tfvars --profile testbed -y --output json >"$out" 2>"$WORK/$label.log"
    ) || die "$label: deploy failed, see $WORK/$label.log: $(tail -5 "$WORK/$label.log")"
    t1=$(now)
    l1=$(load1)
    "$PY" - "$out" "$label" "$(secs "$t0" "$t1")" "$l0" "$l1" "$TAGS" >>"$WORK/rows" <<'EOF'
import json, sys
path, label, wall, l0, l1, tags = sys.argv[1:]
report = json.load(open(path))
with open(tags, "a") as fh:
    for image in report.get("images", []):
        if image.get("image"):
            fh.write(image["image"] + "\n")
        if (image.get("dependency_stage") or {}).get("cache_image"):
            fh.write(image["dependency_stage"]["cache_image"] + "\n")
stages = report.get("stages")
if not stages:
    sys.exit(f"{label}: no stages[] in the JSON summary {path}")
pushed = len([i for i in report.get("images", []) if i.get("status") == "pushed"])
if pushed != 9:
    sys.exit(f"{label}: {pushed} images pushed, not 9")
cells = " ".join(f"{s['name'].replace(' ', '_')}={s['secs']}" for s in stages)
print(f"{label} {wall} {l0} {l1} {cells}")
EOF
    log "$(tail -1 "$WORK/rows") | $(uptime)"
}

UPTIME_START="$(uptime)"
log "warm-up: one full deploy (not measured)"
change 0
deploy_run warmup
: >"$WORK/rows"
n=0
for r in $(seq "$REPEATS"); do
    budget_check "baseline-$r"
    change "b$r"
    baseline "baseline-$r"
    budget_check "deploy-$r"
    change "d$r"
    deploy_run "deploy-$r"
    n=$r
done
((n == REPEATS)) || die "only $n of $REPEATS pairs ran"
UPTIME_END="$(uptime)"

deploy_info() {
    local kind=debug
    [[ "$DEPLOY_SRC" == *release* ]] && kind=release
    echo "\`${DEPLOY_SRC#"$ROOT"/}\` ($kind, built $(date -u -r "$DEPLOY_SRC" +%Y-%m-%dT%H:%MZ), sha256 $(sha256sum "$DEPLOY" | cut -c1-12))"
}
"$PY" - "$WORK/rows" "$(deploy_info)" "$("$DOCKER" version --format '{{.Server.Version}}')" "$(nproc)" \
    "$UPTIME_START" "$UPTIME_END" "$(aws --version 2>&1)" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$(git -C "$ROOT" rev-parse --short HEAD)" "$ECS_NOTE" >"$RESULTS.tmp" <<'EOF'
import statistics, sys
rows_path, binary, docker, nproc, up0, up1, awscli, when, rev, ecs_note = sys.argv[1:]
runs = {"baseline": [], "deploy": []}
for line in open(rows_path):
    label, wall, l0, l1, *cells = line.split()
    runs[label.split("-")[0]].append((label, float(wall), l0, l1, {k: float(v) for k, v in (c.split("=", 1) for c in cells)}))
med = lambda xs: statistics.median(xs)

def table(side, extra_label=None):
    rows = runs[side]
    names = [k for k in rows[0][4]]
    head = ["run", "wall (s)", "load 1 min, before / after"] + [f"{n.replace('_', ' ')} (s)" for n in names]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for label, wall, l0, l1, kv in rows:
        print("| " + " | ".join([label, f"{wall:.1f}", f"{l0} / {l1}"] + [f"{kv.get(n, 0):.1f}" for n in names]) + " |")
    print("| **median** | **" + f"{med(r[1] for r in rows):.1f}" + "** | | " + " | ".join(f"{med(r[4].get(n, 0) for r in rows):.1f}" for n in names) + " |")
    return names

b = med(r[1] for r in runs["baseline"])
d = med(r[1] for r in runs["deploy"])
bw = med(r[1] + r[4]["ecs_wait"] for r in runs["baseline"])
ratio, ratio_w = b / d, bw / d
print("# A full deploy against the runbook's way (a warm machine)")
print()
print(f"Written by `bench/runbook.sh` (see bench/README.md) on {when}, source {rev}. {nproc} cores,")
print(f"Docker {docker}, {awscli.strip()}, binary {binary}.")
print(f"`uptime` before the warm-up: `{up0.strip()}`; at the end: `{up1.strip()}`.")
print()
print(f"{len(runs['baseline'])} pairs, alternating (baseline, deploy, ...), after one unmeasured warm-up deploy; each")
print("run on a fresh commit that changes `packages/common` (all 9 images rebuild their service stage,")
print("the dependency stage comes from the local build cache) and both SPAs' sources; each run")
print("pushes its own git short SHA tag, so neither side reuses the other's tags.")
print()
print(f"**Ratio baseline / deploy (medians): {ratio:.2f}×** ({b:.1f} s / {d:.1f} s). Goal ≥ 3×: "
      f"**{'met' if ratio >= 3 else 'NOT met'}**.")
print(f"With the runbook's manual check after the script (`aws ecs wait services-stable`) counted in the")
print(f"baseline: {ratio_w:.2f}× ({bw:.1f} s / {d:.1f} s); deploy's wall always includes its own verify.")
print()
print("## Baseline: the runbook's way")
print()
print("Per service in turn `DOCKER_BUILDKIT=1 /usr/bin/docker build` + `docker push`; per SPA its build")
print("command, `aws s3 sync dist/ s3://<bucket> --delete`, `aws cloudfront create-invalidation --paths '/*'`;")
print("then `terraform apply -auto-approve -var-file=tfvars/sandbox.tfvars -var image_tag=<sha>`. The wall")
print("is those three steps; `ecs wait` (the manual check afterwards) is timed apart, not in the wall.")
print()
table("baseline")
print()
print("## deploy")
print()
print("`deploy --var-file tfvars/sandbox.tfvars --profile testbed -y --output json`; its `stages[]`. The")
print("rest of the wall (start, git, terraform output, plan and review, lock, summary) is not a stage.")
print(f"Verify: {ecs_note}.")
print()
names = table("deploy")
def rest_of(kv, wall):
    # `spas` is timed from the first SPA build, which runs beside the images: it overlaps
    # `build and push` and ends with the uploads.
    images = max(kv.get("build_and_push", 0), kv.get("spas", 0))
    return wall - images - kv.get("terraform_apply", 0) - kv.get("verify", 0)
rest = med(rest_of(r[4], r[1]) for r in runs["deploy"])
print()
print("`spas` is timed from the first SPA build, which runs beside the images, to the last upload and")
print("invalidation: it overlaps `build and push`. The rest of deploy's wall (start, git, terraform")
print("version/workspace/output, the plan and its review, the lock, the summary), median of wall minus")
print(f"max(build and push, spas) minus terraform apply minus verify: {rest:.1f} s.")
EOF
mv "$RESULTS.tmp" "$RESULTS"
cat "$RESULTS"
log "total $((SECONDS - START)) s"
