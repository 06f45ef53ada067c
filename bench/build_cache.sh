#!/usr/bin/env bash
# The registry build cache on an empty machine (README "Build cache", bench/README.md):
#   0. store: bench/gen_store.py writes a package store (BENCH_STORE_PACKAGES gzipped
#      tarballs, BENCH_DEPS_MIB MiB of small text files in all), and an image of it is built
#      once and loaded into every daemon of the bench before its deploy (not measured);
#   1. seed: a full image deploy (9 services) of a bench copy of the fixture whose
#      dependency stage installs that store as pnpm does (extract every tarball, hash every
#      file, link every package), on a Docker daemon of its own, which pushes the images,
#      their inline cache and the cache images; that daemon and its data are then removed;
#   2. each measured run starts another dockerd with an empty data root (an empty machine)
#      and deploys a new commit with `[docker] cache = "registry"` or `"off"`, alternated:
#        changed: one service changed (services/api), `--services api`;
#        full:    a shared package changed (packages/common), every service;
#      and records deploy's wall time, the image build time (`build_secs` of the JSON
#      summary), the bytes the registry served (blob GETs: the cache, the base layers)
#      and the bytes its storage grew by (what was pushed and new).
# Writes bench/results-build-cache.md. Needs root (it starts dockerd and a Linux bridge)
# and the test bed up (testbed/testbed.sh up; it uses its registry and moto, and never
# starts or stops it). The machine's own Docker daemon is not used: nothing of this bench
# lands in its images or build cache. Removed on exit: the daemons, their data roots,
# the bridge and the temp dir (the registry keeps the bench's tags).
#
# Environment:
#   BENCH_DEPS_MIB=N      MiB of files the store unpacks to (default 256)
#   BENCH_STORE_PACKAGES=N  tarballs in the store (default 1500: about 37,000 files)
#   BENCH_REPEATS=N       cache/no-cache pairs per scenario (default 2)
#   BENCH_SCENARIOS=...   which scenarios, in order (default "changed full")
#   BENCH_BUDGET_SECS=N   no new run starts after N s (default 840)
#   DEPLOY_BIN=path       the deploy binary (default target/debug/deploy)
#   BENCH_RESULTS=path    where to write the results (default bench/results-build-cache.md)
#   BENCH_KEEP=dir        where the runs' JSON summaries and logs are copied (default
#                         /tmp/deploy-bench-cache-last; empty: not kept)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
DEPLOY="${DEPLOY_BIN:-$ROOT/target/debug/deploy}"
DEPS_MIB="${BENCH_DEPS_MIB:-256}"
STORE_PACKAGES="${BENCH_STORE_PACKAGES:-1500}"
STORE_IMAGE="deploy-bench/store:$$"
REPEATS="${BENCH_REPEATS:-2}"
SCENARIOS="${BENCH_SCENARIOS:-changed full}"
BUDGET="${BENCH_BUDGET_SECS:-840}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results-build-cache.md}"
KEEP="${BENCH_KEEP:-/tmp/deploy-bench-cache-last}"
DEPLOY_TIMEOUT=600

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

[[ "$(id -u)" == 0 ]] || die "run as root: the bench starts its own dockerd and a Linux bridge"
[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"
[[ -x "$DEPLOY" ]] || die "no deploy binary at $DEPLOY (set DEPLOY_BIN, or cargo build)"
PY="${DEPLOY_TESTBED_PYTHON:-}"
[[ -x "$PY" ]] || die "DEPLOY_TESTBED_PYTHON is not set by the test bed env"
DOCKERD="$(command -v dockerd || true)"
[[ -n "$DOCKERD" ]] || die "dockerd is not installed"
for c in git curl timeout ip docker; do command -v "$c" >/dev/null || die "$c is required"; done
curl -fsS -o /dev/null --max-time 5 "http://$DEPLOY_TESTBED_REGISTRY/v2/" ||
    die "registry $DEPLOY_TESTBED_REGISTRY not answering: run testbed/testbed.sh up"
REGISTRY_LOG="$STATE/registry.log"
REGISTRY_DATA="$STATE/registry-data"
[[ -f "$REGISTRY_LOG" && -d "$REGISTRY_DATA" ]] || die "no registry log or data under $STATE"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

STARTED_S=$(date +%s)
WORK="$(mktemp -d /tmp/deploy-bench-cache-XXXXXX)"
BRIDGE="dbc$$"
BRIDGE="${BRIDGE:0:15}"
DAEMON_PID=""
DAEMON_DIR=""

stop_daemon() {
    [[ -n "$DAEMON_PID" ]] || return 0
    kill "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$DAEMON_PID" 2>/dev/null || true
    for root in exec data; do umount -R --lazy "$DAEMON_DIR/$root" 2>/dev/null || true; done
    rm -rf "$DAEMON_DIR"
    DAEMON_PID=""
}
cleanup() {
    stop_daemon
    # The runs' JSON summaries and logs outlive the temp dir, for a look afterwards.
    if [[ -n "$KEEP" ]]; then
        rm -rf "$KEEP" && mkdir -p "$KEEP" && cp "$WORK"/*.json "$WORK"/*.log "$WORK"/rows "$KEEP"/ 2>/dev/null || true
        cp -r "$WORK/platform/.git/deploy/logs" "$KEEP/build-logs" 2>/dev/null || true
    fi
    ip link delete "$BRIDGE" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A bridge of its own on a /24 no route uses (never --bridge=none: Moby would delete the
# machine's docker0).
routes="$(ip -4 route show)"
octet=""
for i in $(seq 1 250); do
    if [[ "$routes" != *"10.214.$i."* ]]; then
        octet=$i
        break
    fi
done
[[ -n "$octet" ]] || die "no free 10.214.x.0/24 for the bench's bridge"
ip link add "$BRIDGE" type bridge
ip addr add "10.214.$octet.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up

SEQ=0
# start_daemon: an empty dockerd (its own data root, exec root, containerd namespace),
# loaded with the test bed's base image; sets DOCKER_SOCK.
start_daemon() {
    SEQ=$((SEQ + 1))
    DAEMON_DIR="$WORK/daemon-$SEQ"
    mkdir -p "$DAEMON_DIR"
    echo '{}' >"$DAEMON_DIR/daemon.json"
    DOCKER_SOCK="$DAEMON_DIR/docker.sock"
    "$DOCKERD" --config-file "$DAEMON_DIR/daemon.json" --bridge="$BRIDGE" \
        --iptables=false --ip-masq=false \
        --containerd-namespace "deploy-bench-$$-$SEQ" --containerd-plugins-namespace "deploy-bench-$$-$SEQ-plugins" \
        --data-root "$DAEMON_DIR/data" --exec-root "$DAEMON_DIR/exec" --pidfile "$DAEMON_DIR/dockerd.pid" \
        -H "unix://$DOCKER_SOCK" >"$DAEMON_DIR/dockerd.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 200); do
        docker -H "unix://$DOCKER_SOCK" version >/dev/null 2>&1 && break
        sleep 0.1
    done
    docker -H "unix://$DOCKER_SOCK" version >/dev/null 2>&1 ||
        die "the bench's dockerd did not start: $(tail -5 "$DAEMON_DIR/dockerd.log")"
    docker save "$DEPLOY_TESTBED_BASE_IMAGE" | docker -H "unix://$DOCKER_SOCK" load -q >/dev/null
    # The package store: the same image (same id) on every daemon, loaded before the
    # deploy, so neither side builds or pulls it.
    [[ -f "$WORK/store-image.tar" ]] && docker -H "unix://$DOCKER_SOCK" load -q -i "$WORK/store-image.tar" >/dev/null
    return 0
}
# build_store: the package store and its image (on the current daemon), saved for the next.
build_store() {
    mkdir -p "$WORK/store-ctx"
    log "writing the package store ($STORE_PACKAGES tarballs, $DEPS_MIB MiB unpacked)"
    STORE_SUMMARY=$("$PY" "$ROOT/bench/gen_store.py" "$WORK/store-ctx/store" "$STORE_PACKAGES" "$DEPS_MIB")
    log "store: $STORE_SUMMARY"
    printf 'FROM %s\nCOPY store/ /store/\n' "$DEPLOY_TESTBED_BASE_IMAGE" >"$WORK/store-ctx/Dockerfile"
    # The classic builder: a COPY needs no BuildKit, and a docker CLI without buildx has it.
    DOCKER_BUILDKIT=0 docker -H "unix://$DOCKER_SOCK" build -q -t "$STORE_IMAGE" "$WORK/store-ctx" >/dev/null 2>"$WORK/store-build.log" ||
        die "building the store image failed: $(tail -5 "$WORK/store-build.log")"
    docker -H "unix://$DOCKER_SOCK" save -o "$WORK/store-image.tar" "$STORE_IMAGE"
    rm -rf "$WORK/store-ctx"
}

# ---------------------------------------------------------------------------- the fixture
FX="$WORK/platform"
cp -a "$ROOT/tests/fixtures/platform" "$FX"
# The dependency stage installs the package store as `pnpm install` does from its store:
# it extracts every tarball (gzip + tar: tens of thousands of small files), hashes every file
# (sha256, pnpm's integrity check) and links every package into node_modules. The store is
# a bind mount from its image, so it is in no layer; its files are.
"$PY" - "$FX/infra/docker/service.Dockerfile" "$STORE_IMAGE" <<'EOF'
import sys
path, image = sys.argv[1], sys.argv[2]
text = open(path).read()
old_mount = "RUN --mount=type=cache,target=/pnpm-store \\\n"
old = "    cp pnpm-lock.yaml node_modules/.pnpm/lock.yaml\n"
assert old in text and old_mount in text, "the fixture's deps step changed: update bench/build_cache.sh"
new = ("    cp pnpm-lock.yaml node_modules/.pnpm/lock.yaml; \\\n"
       "    for t in /bench-store/*.tgz; do \\\n"
       "        p=\"${t##*/}\"; p=\"${p%.tgz}\"; d=\"node_modules/.pnpm/$p/node_modules/$p\"; \\\n"
       "        mkdir -p \"$d\"; tar -xzf \"$t\" -C \"$d\" --strip-components=1; \\\n"
       "        ln -s \".pnpm/$p/node_modules/$p\" \"node_modules/$p\"; \\\n"
       "    done; \\\n"
       "    find node_modules/.pnpm -type f -name '*.js' -exec sha256sum {} + > node_modules/.pnpm/integrity.sha256; \\\n"
       "    echo \"deps-stage files=$(wc -l < node_modules/.pnpm/integrity.sha256)\" >> /deps-marker\n")
text = text.replace(old_mount, old_mount + f"    --mount=type=bind,from={image},source=/store,target=/bench-store \\\n", 1)
open(path, "w").write(text.replace(old, new))
EOF
(
    cd "$FX"
    git init -q --initial-branch=main
    git add -A
    git -c user.name=bench -c user.email=bench@example.invalid commit -qm "bench platform"
)
# A lockfile no earlier run has seen: nothing in the registry shares its dependency stage.
echo "# bench $$ $(date +%s%N)" >>"$FX/pnpm-lock.yaml"
commit() { (cd "$FX" && git add -A && git -c user.name=bench -c user.email=bench@example.invalid commit -qm "$1" && git rev-parse --short HEAD); }
commit "a new lockfile" >/dev/null
log "bootstrapping the fixture's moto account"
bootstrap "$FX"
BASE_TOML="$(cat "$FX/deploy.toml")"

registry_bytes() { du -sb "$REGISTRY_DATA" | cut -f1; }
log_offset() { stat -c %s "$REGISTRY_LOG"; }
# served_since OFFSET: bytes the registry wrote in answer to blob GETs since OFFSET.
served_since() {
    tail -c +"$(($1 + 1))" "$REGISTRY_LOG" |
        grep 'http.request.method=GET' | grep '/blobs/sha256:' |
        sed -n 's/.*http.response.written=\([0-9]*\).*/\1/p' |
        awk '{s += $1} END {print s + 0}'
}

# deploy_run LABEL CACHE ARGS...: one deploy on the current daemon; prints
# "wall build_secs_total pulled_cache_bytes served_bytes grown_bytes load1".
deploy_run() {
    local label=$1 cache=$2
    shift 2
    printf '%s\n\n[docker]\ncache = "%s"\ncache_stage = "deps"\n' "$BASE_TOML" "$cache" >"$FX/deploy.toml"
    local offset grown_before t0 t1 out="$WORK/$label.json"
    offset=$(log_offset)
    grown_before=$(registry_bytes)
    t0=$(now)
    (
        fx_env "$FX"
        DOCKER_HOST="unix://$DOCKER_SOCK" DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" \
            timeout "$DEPLOY_TIMEOUT" "$DEPLOY" --skip-tf --skip-spas --profile testbed -y --output json "$@" \
            >"$out" 2>"$WORK/$label.log"
    ) || die "$label: deploy failed, see $WORK/$label.log: $(tail -5 "$WORK/$label.log")"
    t1=$(now)
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$PY" - "$out" "$t0" "$t1" "$(served_since "$offset")" "$(($(registry_bytes) - grown_before))" "$load" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
images = [i for i in report["images"] if i["status"] == "pushed"]
build = sum(i.get("build_secs") or 0 for i in images)
pulled = sum((i.get("dependency_stage") or {}).get("pulled_bytes", 0) for i in images)
sources = sorted({(i.get("dependency_stage") or {}).get("source", "-") for i in images})
print(f"{float(sys.argv[3]) - float(sys.argv[2]):.1f} {build:.1f} {pulled} {sys.argv[4]} {sys.argv[5]} {sys.argv[6]} {len(images)} {'/'.join(sources)}")
EOF
}

ROWS="$WORK/rows"
: >"$ROWS"
over_budget() { (($(date +%s) - STARTED_S > BUDGET)); }

# ---------------------------------------------------------------------------- 1. seed
log "seed: a full deploy on a daemon of its own (it exports the cache)"
start_daemon
build_store
seed=$(deploy_run seed registry)
stop_daemon
echo "seed registry $seed" >>"$ROWS"
log "seed: $seed"

# ---------------------------------------------------------------------------- 2. runs
n=0
for scenario in $SCENARIOS; do
    for r in $(seq "$REPEATS"); do
        # Alternate which side goes first.
        if ((r % 2)); then order="registry off"; else order="off registry"; fi
        for cache in $order; do
            if over_budget; then
                log "budget of ${BUDGET}s spent: no more runs"
                break 3
            fi
            n=$((n + 1))
            case $scenario in
            changed)
                echo "// bench run $n $(date +%s%N)" >"$FX/services/api/src/bench.ts"
                args=(--services api)
                ;;
            full)
                echo "// bench run $n $(date +%s%N)" >"$FX/packages/common/bench.ts"
                args=()
                ;;
            *) die "unknown scenario $scenario" ;;
            esac
            git -C "$FX" checkout -q deploy.toml 2>/dev/null || true
            commit "run $n" >/dev/null
            start_daemon
            row=$(deploy_run "$scenario-$cache-$r" "$cache" "${args[@]}")
            stop_daemon
            echo "$scenario $cache $row" >>"$ROWS"
            log "$scenario cache=$cache: $row"
        done
    done
done

# ---------------------------------------------------------------------------- overhead
# What the cache adds to each image pushed, read from the registry: the inline cache in
# the image config (a cache run's api config against an off run's), and the cache
# image's manifest and config (pushed again by every deploy that builds the service).
"$PY" - "$DEPLOY_TESTBED_REGISTRY" "$WORK" >"$WORK/overhead" <<'EOF2' || echo "overhead: not measured" >"$WORK/overhead"
import glob, json, sys, urllib.request
registry, work = sys.argv[1], sys.argv[2]
accept = "application/vnd.docker.distribution.manifest.v2+json"
def get(path, manifest=False):
    req = urllib.request.Request(f"http://{registry}/v2/{path}", headers={"Accept": accept} if manifest else {})
    return urllib.request.urlopen(req, timeout=30).read()
def api_image(pattern):
    for path in sorted(glob.glob(f"{work}/{pattern}.json")):
        for image in json.load(open(path))["images"]:
            if image["service"] == "api" and image["status"] == "pushed":
                return image["image"].split("/", 1)[1]
def config_size(reference):
    repo, tag = reference.rsplit(":", 1)
    return json.loads(get(f"{repo}/manifests/{tag}", True))["config"]["size"]
on, off = api_image("changed-registry-*"), api_image("changed-off-*")
inline = config_size(on) - config_size(off)
manifest = get("api/manifests/cache-deps", True)
cache_image = len(manifest) + json.loads(manifest)["config"]["size"]
print(f"inline cache in an image config: {inline} B; the cache image's manifest and config: {cache_image} B; per image pushed: {inline + cache_image} B")
EOF2

# ---------------------------------------------------------------------------- results
deploy_info() {
    local kind=debug
    [[ "$DEPLOY" == *release* ]] && kind=release
    echo "\`${DEPLOY#"$ROOT"/}\` ($kind, built $(date -u -r "$DEPLOY" +%Y-%m-%dT%H:%MZ))"
}
"$PY" - "$ROWS" "$STORE_SUMMARY" "$(deploy_info)" "$(docker version --format '{{.Server.Version}}')" "$(nproc)" "$(uptime)" "$(cat "$WORK/overhead")" >"$RESULTS" <<'EOF'
import statistics, sys
rows_path, store, binary, docker, nproc, uptime, overhead = sys.argv[1:]
rows = [line.split() for line in open(rows_path) if line.strip()]
mi = lambda b: f"{int(b) / 1048576:.1f} MiB"
print("# Registry build cache: an empty machine, with and without the cache")
print()
print("Generated by `bench/build_cache.sh` (see bench/README.md). Dependency stage: installs a")
print(f"package store ({store}: extract, sha256 every file, link). {nproc} cores, Docker {docker} (a dockerd of the bench's own per run, empty")
print(f"data root, overlay2), binary {binary}. Uptime at the end: `{uptime.strip()}`.")
print()
print("| run | cache | deploy wall (s) | image builds (s, sum) | cache layers pulled | registry served | registry grew | load (1 min) | images | dependency stage |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    name, cache, wall, build, pulled, served, grown, load, images, sources = r
    print(f"| {name} | {cache} | {wall} | {build} | {mi(pulled)} | {mi(served)} | {mi(grown)} | {load} | {images} | {sources} |")
print()
print("Medians per scenario (cache / off; the goal: changed ≤ 40 %, full ≤ 50 %):")
print()
print("| scenario | wall with cache | wall off | ratio | builds with cache | builds off | ratio | cache layers pulled | registry grew (cache / off) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for scenario in ("changed", "full"):
    on = [r for r in rows if r[0] == scenario and r[1] == "registry"]
    off = [r for r in rows if r[0] == scenario and r[1] == "off"]
    if not on or not off:
        continue
    med = lambda rs, i: statistics.median(float(r[i]) for r in rs)
    w_on, w_off, b_on, b_off = med(on, 2), med(off, 2), med(on, 3), med(off, 3)
    print(f"| {scenario} | {w_on:.1f} s | {w_off:.1f} s | {100 * w_on / w_off:.0f} % | {b_on:.1f} s | {b_off:.1f} s | {100 * b_on / b_off:.0f} % | {mi(med(on, 4))} | {mi(med(on, 6))} / {mi(med(off, 6))} |")
print()
print(f"Extra bytes pushed per image by the cache: {overhead}.")
EOF
cat "$RESULTS"
