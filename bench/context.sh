#!/usr/bin/env bash
# Benchmark of the build context served over BuildKit's session file sync (issue 14), against
# the local test bed. For two trees, side by side in one run:
#   big-unused: the fixture plus a committed bigdata/ of 1 GiB in 8 MiB files the Dockerfile
#               never copies;
#   copied:     the fixture plus 100 MiB in 8 MiB files under packages/, which every image copies;
# it builds and pushes the 9 fixture images with sequential `DOCKER_BUILDKIT=1 docker build` +
# `docker push` (the baseline, Debian's 20.10 CLI at /usr/bin/docker) and with one `deploy`,
# each on a fresh commit (new lockfile: the dependency stage is rebuilt), then runs deploy
# again on a commit that changes nothing the images copy. Both clients reach the daemon
# through testbed/fault_proxy.py, which counts the bytes they send it (the context, plus a
# few kB of API calls). It records wall time, bytes sent, build-cache growth (the build cache
# API, as `docker system df -v` shows it) and deploy's peak RSS (GNU time), and writes
# bench/results-context.md. Needs the test bed up; it never starts or stops it.
#
# Environment:
#   BENCH_BIG_MIB=N       size of bigdata/ (default 1024)
#   BENCH_COPIED_MIB=N    size added under packages/ (default 100)
#   DEPLOY_BIN=path       the deploy binary (default target/debug/deploy)
#   BENCH_RESULTS=path    where to write the results (default bench/results-context.md)
#   BENCH_TREES="..."     which trees to measure (default "big-unused copied")
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
DEPLOY="${DEPLOY_BIN:-$ROOT/target/debug/deploy}"
DOCKER=/usr/bin/docker # the 20.10 CLI with BuildKit built in (/usr/local/bin/docker lacks buildx)
FIXTURE="$ROOT/tests/fixtures/platform"
DOCKERFILE=infra/docker/service.Dockerfile
BIG_MIB="${BENCH_BIG_MIB:-1024}"
COPIED_MIB="${BENCH_COPIED_MIB:-100}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results-context.md}"
MIB=$((1024 * 1024))

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"
[[ -x "$DEPLOY" ]] || die "no deploy binary at $DEPLOY (set DEPLOY_BIN)"
[[ -x "$DOCKER" ]] || die "$DOCKER missing (Debian's docker.io 20.10 CLI is needed for BuildKit)"
PY="$DEPLOY_TESTBED_PYTHON"
/usr/bin/time -v true >/dev/null 2>&1 || die "GNU time is needed (apt-get install time)"
DAEMON_SOCKET="${DOCKER_HOST:-unix:///var/run/docker.sock}"
[[ "$DAEMON_SOCKET" == unix://* ]] || die "DOCKER_HOST must be a unix socket for the counting proxy"
DAEMON_SOCKET="${DAEMON_SOCKET#unix://}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-bench-context.XXXXXX")"
TAGS_FILE="$WORK/local-tags"
: >"$TAGS_FILE"
PROXY_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n "$PROXY_PID" ]] && kill "$PROXY_PID" 2>/dev/null || true
    if [[ -s "$TAGS_FILE" ]]; then
        sort -u "$TAGS_FILE" | xargs -r "$DOCKER" rmi >/dev/null 2>&1 || true
    fi
    [[ -n "${BENCH_KEEP_WORK:-}" ]] || rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The counting proxy: every client of this script talks to the daemon through it.
PROXY_SOCKET="$WORK/docker.sock"
COUNT="$WORK/sent"
"$PY" "$ROOT/testbed/fault_proxy.py" --raw --listen-unix "$PROXY_SOCKET" \
    --upstream-unix "$DAEMON_SOCKET" --count-file "$COUNT" >"$WORK/proxy.ready" 2>"$WORK/proxy.log" &
PROXY_PID=$!
for _ in $(seq 50); do [[ -s "$WORK/proxy.ready" ]] && break; sleep 0.1; done
[[ -s "$WORK/proxy.ready" ]] || die "the counting proxy did not start: $(cat "$WORK/proxy.log")"
export DOCKER_HOST="unix://$PROXY_SOCKET"
sent() { cat "$COUNT"; }

cache_records() { # FILE: the daemon's build-cache records, "ID size" per line (straight from the daemon)
    curl -fsS --max-time 30 --unix-socket "$DAEMON_SOCKET" http://localhost/v1.41/system/df |
        "$PY" -c 'import json,sys; [print(r["ID"], r["Size"]) for r in json.load(sys.stdin)["BuildCache"] or []]' |
        sort >"$1"
}
cache_bytes() { # total size of the daemon's build cache
    cache_records "$WORK/records" && awk '{ s += $2 } END { print s + 0 }' "$WORK/records"
}
new_cache_bytes() { # BEFORE-FILE: bytes of the records created since (not the total's change,
    # which a record the daemon drops or replaces meanwhile lowers)
    cache_records "$WORK/records-now" && join -v2 "$1" "$WORK/records-now" | awk '{ s += $2 } END { print s + 0 }'
}
gitc() { git -C "$1" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false "${@:2}"; }
short_sha() { git -C "$1" rev-parse --short=7 HEAD; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
fresh_commit() {
    printf '# bench %s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >>"$1/pnpm-lock.yaml"
    gitc "$1" commit -qam "bench: fresh lockfile"
}

cp "$DEPLOY" "$WORK/deploy" # a rebuild of target/ during the run cannot change what is measured
DEPLOY_DESC="$DEPLOY ($(date -r "$DEPLOY" -u '+built %Y-%m-%d %H:%M UTC'))"
case "$DEPLOY" in */debug/*) DEPLOY_DESC="$DEPLOY_DESC, debug profile" ;; */release/*) DEPLOY_DESC="$DEPLOY_DESC, release profile" ;; esac
UPTIME_START="$(uptime)"
log "work dir $WORK; $(nproc) cores; $UPTIME_START"

ROWS=()
for tree in ${BENCH_TREES:-big-unused copied}; do
    dir="$WORK/$tree"
    mkdir -p "$dir"
    cp -a "$FIXTURE/." "$dir"
    if [[ "$tree" == big-unused ]]; then
        data="$dir/bigdata" size="$BIG_MIB"
    else
        data="$dir/packages/common/bench-data" size="$COPIED_MIB"
    fi
    mkdir -p "$data"
    for ((i = 0; i * 8 < size; i++)); do
        n=$((size - i * 8 < 8 ? size - i * 8 : 8))
        head -c "$((n * MIB))" /dev/urandom >"$data/f$(printf %04d "$i").bin"
    done
    git -C "$dir" init -q -b main
    gitc "$dir" add -A
    gitc "$dir" commit -qm "fixture + $size MiB ($tree)"
    timeout 120 "$PY" "$ROOT/testbed/fixture_bootstrap.py" --repo "$dir" --env sandbox \
        >"$dir.bootstrap.json" 2>"$dir.bootstrap.log" || die "bootstrap failed: $(tail -3 "$dir.bootstrap.log")"
    mapfile -t SERVICES < <(
        cd "$dir" && "$WORK/deploy" --skip-tf --skip-spas --dry-run --output json |
            "$PY" -c 'import json,sys; d = json.load(sys.stdin); [print(s["name"]) for s in d.get("plan", d)["services"] if s["action"] == "DEPLOY"]'
    )
    tree_mib="$(mib "$(git -C "$dir" ls-tree -r -l HEAD | awk '{ s += $4 } END { print s }')")"

    # Baseline: sequential docker build + docker push, through the proxy.
    fresh_commit "$dir"
    tag="$(short_sha "$dir")"
    log "$tree ($tree_mib MiB committed): baseline at $tag"
    cache_records "$WORK/records-b0"
    c0="$(cache_bytes)" s0="$(sent)" t0="$(now)"
    for svc in "${SERVICES[@]}"; do
        ref="$DEPLOY_TESTBED_REGISTRY/$svc:$tag"
        echo "$ref" >>"$TAGS_FILE"
        (cd "$dir" && DOCKER_BUILDKIT=1 timeout 300 "$DOCKER" build --progress=plain -f "$DOCKERFILE" \
            --build-arg "SERVICE=$svc" --build-arg PUPPETEER_SKIP_DOWNLOAD=true \
            --build-arg PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 -t "$ref" . >>"$WORK/baseline-$tree.log" 2>&1) ||
            die "docker build $svc failed: $(tail -5 "$WORK/baseline-$tree.log")"
        timeout 120 "$DOCKER" push "$ref" >>"$WORK/baseline-$tree.log" 2>&1 || die "docker push $ref failed"
    done
    b_wall="$(since "$t0")" b_sent=$(($(sent) - s0)) b_cache=$(($(cache_bytes) - c0))
    b_new="$(new_cache_bytes "$WORK/records-b0")"
    log "$tree: baseline ${b_wall}s, $(mib "$b_sent") MiB sent, build cache +$(mib "$b_cache") MiB (new records $(mib "$b_new") MiB)"

    # deploy, on a commit of its own; then again on a commit no image copies anything of.
    run_deploy() { # OUT
        (
            cd "$dir"
            unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
            export AWS_SHARED_CREDENTIALS_FILE="$dir/.aws-test/credentials" AWS_CONFIG_FILE="$dir/.aws-test/config"
            export DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY"
            timeout 600 /usr/bin/time -v -o "$1.time" "$WORK/deploy" --skip-tf --skip-spas \
                --profile testbed -y --output json >"$1.json" 2>"$1.log"
        ) || die "deploy failed: $(tail -5 "$1.log")"
        for svc in "${SERVICES[@]}"; do echo "$DEPLOY_TESTBED_REGISTRY/$svc:$(short_sha "$dir")" >>"$TAGS_FILE"; done
    }
    rss_of() { awk '/Maximum resident set size/ { printf "%.1f", $NF / 1024 }' "$1.time"; }
    cpu_of() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$1.time"; }
    fresh_commit "$dir"
    log "$tree: deploy at $(short_sha "$dir")"
    cache_records "$WORK/records-d0"
    c0="$(cache_bytes)" s0="$(sent)" t0="$(now)"
    run_deploy "$WORK/deploy-$tree"
    d_wall="$(since "$t0")" d_sent=$(($(sent) - s0)) d_cache=$(($(cache_bytes) - c0))
    d_new="$(new_cache_bytes "$WORK/records-d0")"
    d_rss="$(rss_of "$WORK/deploy-$tree")" d_cpu="$(cpu_of "$WORK/deploy-$tree")"
    echo "bench: nothing copied changes" >>"$dir/docs-bench.txt"
    gitc "$dir" add -A
    gitc "$dir" commit -qm "bench: a change no image copies"
    log "$tree: deploy again at $(short_sha "$dir") (nothing the images copy changed)"
    s0="$(sent)" t0="$(now)"
    run_deploy "$WORK/again-$tree"
    a_wall="$(since "$t0")" a_sent=$(($(sent) - s0)) a_rss="$(rss_of "$WORK/again-$tree")"
    ratio="$(awk -v b="$b_wall" -v d="$d_wall" 'BEGIN { printf "%.2f", b / d }')"
    growth="$(awk -v b="$b_cache" -v d="$d_cache" 'BEGIN { if (b > 0) printf "%.2f", d / b; else print "n/a" }')"
    log "$tree: deploy ${d_wall}s (${ratio}x), $(mib "$d_sent") MiB sent, cache +$(mib "$d_cache") MiB (${growth}x; new records $(mib "$d_new") MiB vs $(mib "$b_new")), RSS $d_rss MiB, CPU $d_cpu s; again ${a_wall}s, $(mib "$a_sent") MiB sent"
    n=${#SERVICES[@]}
    ROWS+=("| $tree | $tree_mib | $b_wall | $d_wall | **${ratio}x** | $(mib $((b_sent / n))) | $(mib $((d_sent / n))) | $(mib "$b_cache") | $(mib "$d_cache") | $growth | $d_rss | $d_cpu | $a_wall | $(mib "$a_sent") | $a_rss |")
    rm -rf "$dir"
done
UPTIME_END="$(uptime)"

{
    echo "# Build context served over the session: latest results"
    echo
    echo "Written by \`bench/context.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "- machine: \`nproc\` = $(nproc), Docker server $("$DOCKER" version -f '{{.Server.Version}}'), $(uname -sr)"
    echo "- \`uptime\` at start: $UPTIME_START"
    echo "- \`uptime\` at end: $UPTIME_END"
    echo "- deploy: $DEPLOY_DESC; source $(git -C "$ROOT" rev-parse --short HEAD)"
    echo
    echo "Baseline: for each of the ${#SERVICES[@]} services in turn \`DOCKER_BUILDKIT=1 /usr/bin/docker build\` +"
    echo "\`docker push\`; deploy: \`deploy --skip-tf --skip-spas -y\`, each on a fresh commit (the dependency"
    echo "stage is rebuilt by both). \"again\": deploy on a further commit that changes nothing the"
    echo "images copy. Sent: bytes the client sent the daemon (counting proxy on the socket), per image."
    echo "Cache growth: the daemon's build-cache total after minus before (other clients of the"
    echo "daemon during the run count too)."
    echo
    echo "| tree | committed MiB | baseline wall (s) | deploy wall (s) | ratio | baseline sent/image (MiB) | deploy sent/image (MiB) | baseline cache growth (MiB) | deploy cache growth (MiB) | growth ratio | deploy peak RSS (MiB) | deploy CPU (s) | again wall (s) | again sent, all (MiB) | again peak RSS (MiB) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Targets: ratio >= 1.5x; growth ratio <= 1.1x; \"again\" under 1 MiB; peak RSS under 64 MiB."
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
cat "$RESULTS"
