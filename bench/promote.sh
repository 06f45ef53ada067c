#!/usr/bin/env bash
# Benchmark of `deploy promote` against the local test bed (see bench/README.md), in one run:
#   1. wall time of promoting the 9 fixture images from sandbox to prod (copy by digest into
#      prod's registry, the test bed's second one, then the terraform roll), side by side with
#      the baseline: a full prod deploy that rebuilds the same commit and pushes it into a
#      registry of its own (a third docker-registry this script starts on a free port, so the
#      baseline pushes every layer, as a prod account's empty ECR would make it);
#   2. bytes sent by a promotion when only one service changed since the last one.
# Both prod environments start from a bootstrapped state; the Docker build cache is warm from
# the sandbox build (same daemon), as a CI runner that just built sandbox would be. Writes
# bench/results-promote.md (or BENCH_RESULTS). Needs the test bed up; never starts or stops it.
#
# Environment:
#   DEPLOY_BIN=path     the deploy binary (default target/debug/deploy)
#   BENCH_RESULTS=path  where to write the results (default bench/results-promote.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
DEPLOY="${DEPLOY_BIN:-$ROOT/target/debug/deploy}"
FIXTURE="$ROOT/tests/fixtures/platform"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results-promote.md}"
RUN_TIMEOUT=900

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"
[[ -x "$DEPLOY" ]] || die "no deploy binary at $DEPLOY (set DEPLOY_BIN)"
[[ -n "${DEPLOY_TESTBED_REGISTRY2:-}" ]] || die "the test bed has no second registry: run testbed/testbed.sh up again"
PY="$DEPLOY_TESTBED_PYTHON"
for r in "$DEPLOY_TESTBED_REGISTRY" "$DEPLOY_TESTBED_REGISTRY2"; do
    curl -fsS -o /dev/null --max-time 5 "http://$r/v2/" || die "registry $r not answering: run testbed/testbed.sh up"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-bench-promote.XXXXXX")"
REG3_PID=""
TAG="" TAG2=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -z "$REG3_PID" ]] || kill "$REG3_PID" 2>/dev/null || true
    # The images the runs tagged locally (sandbox's and the baseline's builds).
    if [[ -n "$TAG" ]]; then
        docker images --format '{{.Repository}}:{{.Tag}}' |
            grep -E ":(${TAG}${TAG2:+|$TAG2})\$" | xargs -r docker rmi >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

gitc() { git -C "$1" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false "${@:2}"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# bootstrap DIR ENV PROFILE REGISTRY: ENV in an account of its own, terraform applied.
bootstrap() {
    DEPLOY_TESTBED_REGISTRY="$4" timeout 300 "$PY" "$ROOT/testbed/fixture_bootstrap.py" \
        --repo "$1" --env "$2" --profile "$3" --initial-apply >"$1.$2.json" 2>"$1.$2.log" ||
        die "fixture_bootstrap.py failed, see $1.$2.log: $(tail -3 "$1.$2.log")"
}
select_ws() { (cd "$1" && env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
    AWS_SHARED_CREDENTIALS_FILE="$1/.aws-test/credentials" AWS_CONFIG_FILE="$1/.aws-test/config" \
    terraform -chdir=infra/terraform/aws workspace select "$2" >/dev/null); }

# run DIR OUT [deploy args...]: deploy in DIR with its AWS files; OUT.json (stdout), OUT.log.
run() {
    local dir="$1" out="$2"
    shift 2
    (
        cd "$dir"
        unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
        export AWS_SHARED_CREDENTIALS_FILE="$dir/.aws-test/credentials" AWS_CONFIG_FILE="$dir/.aws-test/config"
        timeout "$RUN_TIMEOUT" "$DEPLOY" "$@" >"$out.json" 2>"$out.log"
    ) || die "deploy $* failed, see below:
$(tail -20 "$out.log")"
}

# A third registry, empty, for the baseline's prod.
REG3_PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
REG3="127.0.0.1:$REG3_PORT"
mkdir -p "$WORK/registry3"
cat >"$WORK/registry3.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry3
http:
  addr: $REG3
YML
setsid /usr/bin/docker-registry serve "$WORK/registry3.yml" >"$WORK/registry3.log" 2>&1 </dev/null &
REG3_PID=$!
for _ in $(seq 50); do curl -fsS -o /dev/null --max-time 1 "http://$REG3/v2/" 2>/dev/null && break; sleep 0.2; done
curl -fsS -o /dev/null --max-time 2 "http://$REG3/v2/" || die "the baseline's registry did not start ($WORK/registry3.log)"

# The promotion's checkout: sandbox (first registry) and prod (second registry).
A="$WORK/promote"
mkdir -p "$A"
cp -a "$FIXTURE/." "$A"
git -C "$A" init -q -b main
printf '# bench %s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >>"$A/pnpm-lock.yaml"
gitc "$A" add -A
gitc "$A" commit -qm "fixture (fresh lockfile: fresh dependency layers)"
# The baseline's checkout: the same commit, its own prod (third registry).
B="$WORK/rebuild"
git clone -q "$A" "$B"
log "bootstrapping sandbox, prod and the baseline's prod (3 moto accounts)"
bootstrap "$A" sandbox sandbox "$DEPLOY_TESTBED_REGISTRY"
bootstrap "$A" prod prod "$DEPLOY_TESTBED_REGISTRY2"
bootstrap "$B" prod prod "$REG3"
TAG="$(git -C "$A" rev-parse --short HEAD)"

log "deploying $TAG to sandbox (setup, not timed)"
select_ws "$A" sandbox
DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" run "$A" "$WORK/sandbox" \
    --var-file tfvars/sandbox.tfvars --skip-spas --profile sandbox -y --output json
select_ws "$A" prod

LOAD_BEFORE="$(uptime)"
log "baseline: full prod deploy rebuilding $TAG into an empty registry"
t0="$(now)"
DEPLOY_REGISTRY_PROD="$REG3" run "$B" "$WORK/rebuild" \
    --var-file tfvars/prod.tfvars --skip-spas --profile prod -y --output json
REBUILD_SECS="$(since "$t0")"
log "promote: sandbox -> prod, 9 images by digest"
t0="$(now)"
DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" DEPLOY_REGISTRY_PROD="$DEPLOY_TESTBED_REGISTRY2" run "$A" "$WORK/promote-all" \
    promote --from tfvars/sandbox.tfvars --to tfvars/prod.tfvars --profile prod --profile-from sandbox -y --output json
PROMOTE_SECS="$(since "$t0")"
LOAD_AFTER="$(uptime)"

log "one service changes: sandbox gets a new api, then the promotion"
printf 'export const bench = "%s";\n' "$(date +%s%N)" >"$A/services/api/src/bench.ts"
gitc "$A" add -A
gitc "$A" commit -qm "bench: api changes"
TAG2="$(git -C "$A" rev-parse --short HEAD)"
select_ws "$A" sandbox
DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" run "$A" "$WORK/sandbox2" \
    --var-file tfvars/sandbox.tfvars --skip-spas --services api --profile sandbox -y --output json
select_ws "$A" prod
t0="$(now)"
DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" DEPLOY_REGISTRY_PROD="$DEPLOY_TESTBED_REGISTRY2" run "$A" "$WORK/promote-one" \
    promote --from tfvars/sandbox.tfvars --to tfvars/prod.tfvars --profile prod --profile-from sandbox -y --output json
PROMOTE_ONE_SECS="$(since "$t0")"

"$PY" - "$WORK" "$TAG" "$TAG2" "$REBUILD_SECS" "$PROMOTE_SECS" "$PROMOTE_ONE_SECS" "$LOAD_BEFORE" "$LOAD_AFTER" "$RESULTS" "$DEPLOY_TESTBED_REGISTRY" <<'PYEOF'
import json, sys, urllib.request
work, tag, tag2, rebuild, promote, promote_one, load_before, load_after, results, reg1 = sys.argv[1:]
rebuild, promote, promote_one = float(rebuild), float(promote), float(promote_one)
rebuilt = json.load(open(f"{work}/rebuild.json"))
all_ = json.load(open(f"{work}/promote-all.json"))
one = json.load(open(f"{work}/promote-one.json"))
assert all_["applied"] and len(all_["copies"]) == 9, all_.get("copies")
assert one["applied"] and [c["service"] for c in one["copies"]] == ["api"], one.get("copies")
pushed = [i for i in rebuilt["images"] if i["status"] == "pushed"]
def image_bytes(repo, ref):
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    req = urllib.request.Request(f"http://{reg1}/v2/{repo}/manifests/{ref}", headers={"Accept": accept})
    m = json.load(urllib.request.urlopen(req))
    return m["config"]["size"] + sum(l["size"] for l in m["layers"])
sent_all = sum(c["bytes_sent"] for c in all_["copies"])
c = one["copies"][0]
api_total = image_bytes("api", tag2)
lines = [
    "# `deploy promote` vs a rebuilding prod deploy (bench/promote.sh)",
    "",
    f"One run on the test bed, debug build. Commit `{tag}` (fresh lockfile, so fresh dependency layers) deployed to sandbox first (not timed); then, side by side:",
    "",
    "| run | wall time | what it did |",
    "| --- | --- | --- |",
    f"| baseline: `deploy --var-file tfvars/prod.tfvars --skip-spas` rebuilding `{tag}` into an empty registry | {rebuild:.1f} s | {len(pushed)} images built (BuildKit cache warm from the sandbox build) and pushed, terraform roll, ECS wait |",
    f"| `deploy promote --from sandbox --to prod` | {promote:.1f} s | 9 images copied by digest ({sum(c['blobs_sent'] for c in all_['copies'])} blobs, {sent_all:,} bytes sent; {sum(c['blobs_present'] for c in all_['copies'])} blobs already there), terraform roll, ECS wait |",
    "",
    f"Ratio promotion / rebuild: **{promote / rebuild:.2f}** (below 1: the promotion is faster).",
    "",
    f"Then only `api` changed (`{tag2}`), deployed to sandbox, and promoted again ({promote_one:.1f} s): "
    f"{c['blobs_sent']} blob(s), **{c['bytes_sent']:,} bytes** sent of api's {api_total:,}-byte image; "
    f"{c['blobs_present']} blob(s) already in prod's registry; 8 services skipped (prod runs their digest).",
    "",
    "Machine load (`uptime`):",
    "",
    f"- before: `{load_before.strip()}`",
    f"- after:  `{load_after.strip()}`",
    "",
    "Rerun: `testbed/testbed.sh up && bench/promote.sh` (about 5 minutes; needs the test bed's second registry).",
    "",
]
open(results, "w").write("\n".join(lines))
print("\n".join(lines))
PYEOF
