#!/usr/bin/env bash
# Where a full deploy's time goes on a warm machine (bench/README.md, "Where a full
# deploy's time goes"): a copy of the fixture, its own moto account, one full deploy to warm
# the machine's Docker build cache (not measured), then BENCH_REPEATS full deploys, each of
# a commit that changes a shared package (packages/common: all 9 images rebuild their
# service stage; the dependency stage comes from the local cache) and both SPAs' sources
# (both rebuild and upload a changed file). Each is
#   deploy --var-file tfvars/sandbox.tfvars --profile testbed -y --output json
# and the run report's `stages[]` (seconds per stage: build and push, spas, terraform
# apply, verify) is read from the JSON, with deploy's wall time and the load average.
# Writes bench/results-deploy-stages.md. Needs the test bed up (it never starts or stops
# it) and uses the machine's Docker daemon (a warm machine). Removed on exit: the temp dir
# and the local image tags deploy created.
#
# Environment:
#   BENCH_REPEATS=N      measured deploys (default 3)
#   DEPLOY_BIN=path      the deploy binary (default target/debug/deploy)
#   BENCH_RESULTS=path   where to write the results (default bench/results-deploy-stages.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
DEPLOY="${DEPLOY_BIN:-$ROOT/target/debug/deploy}"
REPEATS="${BENCH_REPEATS:-3}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results-deploy-stages.md}"
DEPLOY_TIMEOUT=600

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"
[[ -x "$DEPLOY" ]] || die "no deploy binary at $DEPLOY (set DEPLOY_BIN, or cargo build)"
PY="${DEPLOY_TESTBED_PYTHON:-}"
[[ -x "$PY" ]] || die "DEPLOY_TESTBED_PYTHON is not set by the test bed env"
for c in git curl timeout docker node; do command -v "$c" >/dev/null || die "$c is required"; done
curl -fsS -o /dev/null --max-time 5 "http://$DEPLOY_TESTBED_REGISTRY/v2/" ||
    die "registry $DEPLOY_TESTBED_REGISTRY not answering: run testbed/testbed.sh up"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

WORK="$(mktemp -d /tmp/deploy-bench-stages-XXXXXX)"
cp "$DEPLOY" "$WORK/deploy" # a rebuild of target/ during the run cannot change what is measured
DEPLOY_SRC="$DEPLOY"
DEPLOY="$WORK/deploy"
TAGS="$WORK/tags"
: >"$TAGS"
cleanup() {
    # The local tags deploy created (the images stay in the registry, which the test bed owns).
    sort -u "$TAGS" | while read -r tag; do docker rmi -f "$tag" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FX="$WORK/platform"
cp -a "$ROOT/tests/fixtures/platform" "$FX"
commit() { (cd "$FX" && git add -A && git -c user.name=bench -c user.email=bench@example.invalid commit -qm "$1"); }
(cd "$FX" && git init -q --initial-branch=main)
commit "bench platform"
log "bootstrapping the fixture's moto account"
bootstrap "$FX"

# change N: a shared package and both SPAs' sources, committed.
change() {
    echo "// bench run $1 $(date +%s%N)" >"$FX/packages/common/bench.ts"
    for app in "$FX"/apps/*/; do echo "/* bench run $1 $(date +%s%N) */" >>"$app/src/style.css"; done
    commit "bench run $1"
}

# full LABEL: one full deploy; appends "LABEL wall load1 stage=secs..." to rows.
full() {
    local label=$1 t0 t1 out="$WORK/$1.json"
    t0=$(now)
    (
        fx_env "$FX"
        DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" timeout "$DEPLOY_TIMEOUT" \
            "$DEPLOY" --var-file tfvars/sandbox.tfvars --profile testbed -y --output json >"$out" 2>"$WORK/$label.log"
    ) || die "$label: deploy failed, see $WORK/$label.log: $(tail -5 "$WORK/$label.log")"
    t1=$(now)
    "$PY" - "$out" "$label" "$t0" "$t1" "$(uptime)" "$TAGS" >>"$WORK/rows" <<'EOF'
import json, sys
path, label, t0, t1, uptime, tags = sys.argv[1:]
report = json.load(open(path))
with open(tags, "a") as fh:
    for image in report.get("images", []):
        if image.get("image"):
            fh.write(image["image"] + "\n")
stages = report.get("stages")
if not stages:
    sys.exit(f"{label}: no stages[] in the JSON summary {path}")
load = uptime.split("load average:")[1].split(",")[0].strip()
images = len([i for i in report.get("images", []) if i.get("status") == "pushed"])
spas = len(report.get("spas", []))
cells = " ".join(f"{s['name'].replace(' ', '_')}={s['secs']}" for s in stages)
print(f"{label} {float(t1) - float(t0):.1f} {load} n_images={images} n_spas={spas} {cells}")
EOF
    log "$(tail -1 "$WORK/rows") | $(uptime)"
}

log "warm-up: one full deploy (not measured)"
change 0
full warmup
: >"$WORK/rows"
for r in $(seq "$REPEATS"); do
    change "$r"
    full "run-$r"
done

deploy_info() {
    local kind=debug
    [[ "$DEPLOY_SRC" == *release* ]] && kind=release
    echo "\`${DEPLOY_SRC#"$ROOT"/}\` ($kind, built $(date -u -r "$DEPLOY_SRC" +%Y-%m-%dT%H:%MZ))"
}
"$PY" - "$WORK/rows" "$(deploy_info)" "$(docker version --format '{{.Server.Version}}')" "$(nproc)" "$(uptime)" >"$RESULTS" <<'EOF'
import statistics, sys
rows_path, binary, docker, nproc, uptime = sys.argv[1:]
rows = []
for line in open(rows_path):
    label, wall, load, *cells = line.split()
    kv = dict(c.split("=", 1) for c in cells)
    rows.append((label, float(wall), load, kv))
names = []
for _, _, _, kv in rows:
    for k in kv:
        if k not in names and k not in ("n_images", "n_spas"):
            names.append(k)
print("# Where a full deploy's time goes (a warm machine)")
print()
print("Generated by `bench/deploy_stages.sh` (see bench/README.md): full deploys of the fixture")
print("(9 images, 2 SPAs, terraform apply, verify), each of a commit that changes a shared package")
print(f"and both SPAs, after one unmeasured warm-up deploy. {nproc} cores, Docker {docker}, binary")
print(f"{binary}. Uptime at the end: `{uptime.strip()}`.")
print()
# The spas stage runs beside build and push (from the first SPA build to the last upload
# and invalidation): of those two only the longer one is on the run's path.
BESIDE = ("build_and_push", "spas")


def on_path(kv):
    secs = {n: float(kv.get(n, 0)) for n in names}
    beside = [secs[n] for n in BESIDE if n in secs]
    return sum(v for n, v in secs.items() if n not in BESIDE) + (max(beside) if beside else 0.0)


head = ["run", "deploy wall (s)", "load (1 min)", "images", "spas"] + [f"{n.replace('_', ' ')} (s)" for n in names] + ["stages on the path (s)"]
print("| " + " | ".join(head) + " |")
print("|" + " --- |" * len(head))
for label, wall, load, kv in rows:
    secs = [float(kv[n]) if n in kv else 0.0 for n in names]
    print("| " + " | ".join([label, f"{wall:.1f}", load, kv.get("n_images", "-"), kv.get("n_spas", "-")] + [f"{s:.1f}" for s in secs] + [f"{on_path(kv):.1f}"]) + " |")
print()
print("`spas` runs beside `build and push` (from the first SPA build, which starts with the images,")
print("to the last upload and invalidation, after the last push): the stages on the path are the")
print("longer of the two, then terraform apply and verify.")
print()
print("Medians, and each stage's share of deploy's wall time (the two side by side overlap):")
print()
print("| stage | median (s) | share of the wall |")
print("| --- | --- | --- |")
wall = statistics.median(r[1] for r in rows)
for n in names:
    m = statistics.median(float(r[3].get(n, 0)) for r in rows)
    print(f"| {n.replace('_', ' ')} | {m:.1f} | {100 * m / wall:.0f} % |")
rest = statistics.median(r[1] - on_path(r[3]) for r in rows)
print(f"| the rest (start, plan, lock, review, summary; median of wall minus the stages on the path) | {rest:.1f} | {100 * rest / wall:.0f} % |")
print(f"| **deploy wall** | **{wall:.1f}** | 100 % |")
EOF
cat "$RESULTS"
