#!/usr/bin/env bash
# Benchmarks of deploy's image step against the local test bed (see bench/README.md):
#   1. peak RSS of `deploy --services api` while it streams a big committed build context
#      (fixture + ~10 MiB, ~100 MiB and, with BENCH_BIG=1 (the default), ~1 GiB of random data);
#   2. wall time of building and pushing the 9 fixture images: sequential `docker build` +
#      `docker push` (BuildKit, /usr/bin/docker) vs one `deploy` run, alternated, each on a
#      fresh commit (new lockfile, so the shared dependency stage is rebuilt every time).
# Prints a table and writes bench/results.md. Needs the test bed up (testbed/testbed.sh up);
# it never starts or stops it. Temp dirs, local image tags and the big build-cache records
# it created are removed on exit.
#
# Environment:
#   BENCH_BIG=0|1          include the ~1 GiB context step (default 1; ~1 min, ~3 GiB transient disk)
#   BENCH_ONE_FILE_MIB=N   also measure a context whose bigdata/ is one N MiB file (default 64; 0: skip)
#   BENCH_REPEATS=N        baseline/deploy pairs for the wall-time benchmark (default 3)
#   BENCH_BUDGET_SECS=N    give up (exit 1) when a new step would start after N s (default 900)
#   DEPLOY_BIN=path        the deploy binary (default target/debug/deploy)
#   BENCH_RESULTS=path     where to write the results (default bench/results.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
DEPLOY="${DEPLOY_BIN:-$ROOT/target/debug/deploy}"
DOCKER=/usr/bin/docker # the 20.10 CLI with BuildKit built in (/usr/local/bin/docker lacks buildx)
FIXTURE="$ROOT/tests/fixtures/platform"
DOCKERFILE=infra/docker/service.Dockerfile
BENCH_BIG="${BENCH_BIG:-1}"
ONE_FILE_MIB="${BENCH_ONE_FILE_MIB:-64}"
REPEATS="${BENCH_REPEATS:-3}"
BUDGET="${BENCH_BUDGET_SECS:-900}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results.md}"
# Per-command limits, far above the observed times (1 GiB deploy: ~25 s; one docker build: ~2 s).
DEPLOY_TIMEOUT=300
BUILD_TIMEOUT=120
PUSH_TIMEOUT=60

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
[[ -x "$DOCKER" ]] || die "$DOCKER missing (Debian's docker.io 20.10 CLI is needed for BuildKit)"
[[ -x "${DEPLOY_TESTBED_PYTHON:-}" ]] || die "DEPLOY_TESTBED_PYTHON is not set by the test bed env"
PY="$DEPLOY_TESTBED_PYTHON"
for c in git curl timeout; do command -v "$c" >/dev/null || die "$c is required"; done
curl -fsS -o /dev/null --max-time 5 "http://$DEPLOY_TESTBED_REGISTRY/v2/" ||
    die "registry $DEPLOY_TESTBED_REGISTRY not answering: run testbed/testbed.sh up"
curl -sS -o /dev/null --max-time 5 "$DEPLOY_TESTBED_MOTO_URL" ||
    die "moto $DEPLOY_TESTBED_MOTO_URL not answering: run testbed/testbed.sh up"
"$DOCKER" info >/dev/null 2>&1 || die "docker daemon not reachable"
if ! /usr/bin/time -v true >/dev/null 2>&1; then
    log "installing Debian's time package (GNU time, for -v)"
    sudo_=()
    [[ "$(id -u)" == 0 ]] || sudo_=(sudo)
    "${sudo_[@]}" apt-get install -y -qq time >/dev/null || die "apt-get install time failed"
fi

# Build-cache records are read through the Docker API: it gives exact sizes and full ids.
docker_api() {
    local host="${DOCKER_HOST:-unix:///var/run/docker.sock}"
    case "$host" in
    unix://*) curl -fsS --max-time 30 --unix-socket "${host#unix://}" "http://localhost/v1.41$1" ;;
    tcp://*) curl -fsS --max-time 30 "http://${host#tcp://}/v1.41$1" ;;
    *) die "DOCKER_HOST=$host is not supported by this script" ;;
    esac
}
build_cache_ids() { # all ids, one a line
    docker_api /system/df | "$PY" -c 'import json,sys; [print(r["ID"]) for r in json.load(sys.stdin)["BuildCache"] or []]'
}

# ---------------------------------------------------------------------------- state, cleanup
START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-bench.XXXXXX")"
TAGS_FILE="$WORK/local-tags"       # image tags this script (or deploy, for it) created
PRUNE_FILE="$WORK/cache-to-prune" # build-cache records (big contexts) this script caused
: >"$TAGS_FILE"
: >"$PRUNE_FILE"

prune_cache_records() {
    local id
    while read -r id; do
        [[ -n "$id" ]] || continue
        # One id per call: the daemon accepts a single value per filter.
        "$DOCKER" builder prune -f --filter "id=$id" >/dev/null 2>&1 || log "could not prune build-cache record $id"
    done <"$PRUNE_FILE"
    : >"$PRUNE_FILE"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    prune_cache_records || true
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

# ---------------------------------------------------------------------------- helpers
gitc() { git -C "$1" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false "${@:2}"; }

# new_fixture DIR: a committed copy of the fixture, bootstrapped in its own moto account.
new_fixture() {
    local dir="$1"
    mkdir -p "$dir"
    cp -a "$FIXTURE/." "$dir"
    git -C "$dir" init -q -b main
    gitc "$dir" add -A
    gitc "$dir" commit -qm "fixture"
    timeout 120 "$PY" "$ROOT/testbed/fixture_bootstrap.py" --repo "$dir" --env sandbox \
        >"$dir.bootstrap.json" 2>"$dir.bootstrap.log" ||
        die "fixture_bootstrap.py failed, see $dir.bootstrap.log: $(tail -3 "$dir.bootstrap.log")"
}

# fresh_commit DIR: a new commit whose lockfile differs, so the deps stage is rebuilt.
fresh_commit() {
    printf '# bench %s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >>"$1/pnpm-lock.yaml"
    gitc "$1" commit -qam "bench: fresh lockfile"
}

short_sha() { git -C "$1" rev-parse --short=7 HEAD; }

# run_deploy DIR OUT_PREFIX [deploy args...]: deploy --skip-tf --skip-spas -y under GNU time.
# Writes OUT_PREFIX.json (stdout), .log (stderr), .time (time -v). Returns deploy's status.
run_deploy() {
    local dir="$1" out="$2"
    shift 2
    (
        cd "$dir"
        unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
        export AWS_SHARED_CREDENTIALS_FILE="$dir/.aws-test/credentials" AWS_CONFIG_FILE="$dir/.aws-test/config"
        export DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY"
        timeout "$DEPLOY_TIMEOUT" /usr/bin/time -v -o "$out.time" \
            "$DEPLOY" --skip-tf --skip-spas --profile testbed -y --output json "$@" >"$out.json" 2>"$out.log"
    )
}

# time_v FILE FIELD: a field of GNU time -v output.
time_v() { sed -n "s/^[[:space:]]*$2: //p" "$1"; }
# elapsed "h:mm:ss" or "m:ss.ss" -> seconds
to_secs() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.1f", s }' <<<"$1"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# images JSON (deploy --output json) -> "sum_build sum_push first_build n_pushed"
image_stats() {
    "$PY" -c '
import json, sys
imgs = json.load(open(sys.argv[1]))["images"]
pushed = [i for i in imgs if i["status"] == "pushed"]
b = sum(i["build_secs"] or 0 for i in pushed); p = sum(i["push_secs"] or 0 for i in pushed)
first = pushed[0]["build_secs"] if pushed else 0
print(f"{b:.1f} {p:.1f} {first:.1f} {len(pushed)}")' "$1"
}

record_deploy_tags() { # DIR: deploy tags the images it builds locally as <registry>/<svc>:<sha>
    local sha svc
    sha="$(short_sha "$1")"
    for svc in "${SERVICES[@]}"; do echo "$DEPLOY_TESTBED_REGISTRY/$svc:$sha" >>"$TAGS_FILE"; done
}

# A private copy, so that a rebuild of target/ during the run cannot change the binary measured.
cp "$DEPLOY" "$WORK/deploy"
DEPLOY_SRC="$DEPLOY"
DEPLOY="$WORK/deploy"

# ---------------------------------------------------------------------------- machine
NPROC="$(nproc)"
DOCKER_SERVER="$("$DOCKER" version -f '{{.Server.Version}}')"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
DEPLOY_DESC="$DEPLOY_SRC ($(date -r "$DEPLOY_SRC" -u '+built %Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$DEPLOY" | cut -c1-12))"
case "$DEPLOY_SRC" in */debug/*) DEPLOY_DESC="$DEPLOY_DESC, debug profile" ;; */release/*) DEPLOY_DESC="$DEPLOY_DESC, release profile" ;; esac
SRC_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
if [[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml 2>/dev/null)" ]]; then SRC_REV="$SRC_REV + uncommitted src changes"; fi
log "work dir $WORK; nproc $NPROC; docker $DOCKER_SERVER; load $LOAD_START; deploy $DEPLOY_DESC"
if awk -v l="${LOAD_START%% *}" -v n="$NPROC" 'BEGIN { exit !(l > n / 2) }'; then
    log "warning: load average ${LOAD_START%% *} on $NPROC cores before starting: figures will be noisy"
fi

# ---------------------------------------------------------------------------- 1. memory
MEM="$WORK/mem"
log "memory: bootstrapping a fixture copy"
new_fixture "$MEM"
mapfile -t SERVICES < <(
    cd "$MEM" && "$DEPLOY" --skip-tf --skip-spas --dry-run --output json |
        "$PY" -c 'import json,sys; d = json.load(sys.stdin); [print(s["name"]) for s in d.get("plan", d)["services"] if s["action"] == "DEPLOY"]'
)
((${#SERVICES[@]} > 0)) || die "deploy --dry-run listed no services"

# Steps: the fixture alone, then bigdata/ grown to N MiB of 8 MiB files, then (a separate
# commit without those) bigdata/ holding one single file of ONE_FILE_MIB ("1file" steps).
SIZES=(0 10 100)
[[ "$BENCH_BIG" == 1 ]] && SIZES+=(1024)
((ONE_FILE_MIB > 0)) && SIZES+=("1file$ONE_FILE_MIB")
MIB=$((1024 * 1024))
CHUNK=$((8 * MIB))
mkdir -p "$MEM/bigdata"
have=0 # bytes of bigdata/ so far
nfile=0
MEM_ROWS=()
MEM_RSS=()
ONE_ROW=""
for size in "${SIZES[@]}"; do
    budget_check "memory step ${size} MiB"
    t0="$(now)"
    if [[ "$size" == 1file* ]]; then
        gitc "$MEM" rm -rq bigdata
        mkdir -p "$MEM/bigdata"
        head -c "$((ONE_FILE_MIB * MIB))" /dev/urandom >"$MEM/bigdata/one.bin"
        gitc "$MEM" add bigdata
        gitc "$MEM" commit -qm "bench: bigdata = one ${ONE_FILE_MIB} MiB file"
    elif ((size > 0)); then
        want=$((size * MIB))
        while ((have < want)); do
            n=$((want - have < CHUNK ? want - have : CHUNK))
            nfile=$((nfile + 1))
            head -c "$n" /dev/urandom >"$MEM/bigdata/f$(printf %04d "$nfile").bin"
            have=$((have + n))
        done
        gitc "$MEM" add bigdata
        gitc "$MEM" commit -qm "bench: bigdata ${size} MiB"
    fi # size 0: the fixture's own commit, never built before
    prep="$(since "$t0")"
    tree_bytes="$(git -C "$MEM" ls-tree -r -l HEAD | awk '{ s += $4 } END { print s }')"
    tree_mib="$(awk -v b="$tree_bytes" 'BEGIN { printf "%.2f", b / 1048576 }')"
    log "memory: context ${tree_mib} MiB committed (${prep}s to write and commit); deploy --services api"

    build_cache_ids | sort >"$WORK/cache.before"
    out="$WORK/mem-$size"
    rc=0
    run_deploy "$MEM" "$out" --services api || rc=$?
    echo "$DEPLOY_TESTBED_REGISTRY/api:$(short_sha "$MEM")" >>"$TAGS_FILE"
    # The tar context is stored twice by the daemon (the HTTP download and its extraction):
    # prune the big records that appeared during this run.
    docker_api /system/df | "$PY" -c '
import json, sys
before = set(open(sys.argv[1]).read().split())
for r in json.load(sys.stdin)["BuildCache"] or []:
    if r["ID"] not in before and r["Size"] >= 1048576:
        print(r["ID"])' "$WORK/cache.before" >>"$PRUNE_FILE"
    npruned="$(sort -u "$PRUNE_FILE" | wc -l)"
    prune_cache_records
    ((rc == 0)) || die "deploy failed (exit $rc) for the ${size} MiB context: $(tail -5 "$out.log")"

    rss_kib="$(time_v "$out.time" 'Maximum resident set size (kbytes)')"
    rss="$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')"
    wall="$(to_secs "$(time_v "$out.time" 'Elapsed (wall clock) time (h:mm:ss or m:ss)')")"
    cpu="$(awk -v u="$(time_v "$out.time" 'User time (seconds)')" -v s="$(time_v "$out.time" 'System time (seconds)')" 'BEGIN { printf "%.1f", u + s }')"
    read -r bsum _ _ _ < <(image_stats "$out.json")
    case "$size" in
    0) MEM_ROWS+=("| fixture only | $tree_mib | $rss | $wall | $bsum | $cpu |") ;;
    1file*) ONE_ROW="| bigdata/ = one ${ONE_FILE_MIB} MiB file | $tree_mib | **$rss** | $wall | $bsum | $cpu |" ;;
    *)
        MEM_ROWS+=("| fixture + ${size} MiB in 8 MiB files | $tree_mib | **$rss** | $wall | $bsum | $cpu |")
        MEM_RSS+=("$rss") # the rows the target is about
        ;;
    esac
    log "memory: ${tree_mib} MiB context -> max RSS ${rss} MiB, wall ${wall}s (api build ${bsum}s, deploy CPU ${cpu}s; pruned ${npruned} big build-cache records)"
done
# The 1 GiB of history is not needed any more.
rm -rf "$MEM" "$MEM.bootstrap.json" "$MEM.bootstrap.log"

# ---------------------------------------------------------------------------- 2. wall time
TB="$WORK/time"
log "wall time: bootstrapping a fixture copy"
new_fixture "$TB"
BASE_WALL=()
DEP_WALL=()
TIME_ROWS=()
for ((i = 1; i <= REPEATS; i++)); do
    # Baseline: sequential docker build + docker push per service, BuildKit, on its own commit.
    budget_check "baseline run $i"
    fresh_commit "$TB"
    tag="$(short_sha "$TB")"
    log "wall time: run $i/$REPEATS baseline (docker build + push x${#SERVICES[@]}, sequential) at $tag"
    bsum=0
    psum=0
    t0="$(now)"
    for svc in "${SERVICES[@]}"; do
        ref="$DEPLOY_TESTBED_REGISTRY/$svc:$tag"
        echo "$ref" >>"$TAGS_FILE"
        tb="$(now)"
        (cd "$TB" && DOCKER_BUILDKIT=1 timeout "$BUILD_TIMEOUT" "$DOCKER" build --progress=plain \
            -f "$DOCKERFILE" --build-arg "SERVICE=$svc" --build-arg PUPPETEER_SKIP_DOWNLOAD=true \
            --build-arg PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 -t "$ref" . >>"$WORK/baseline-$i.log" 2>&1) ||
            die "docker build $svc failed: $(tail -5 "$WORK/baseline-$i.log")"
        bsum="$(awk -v a="$bsum" -v d="$(since "$tb")" 'BEGIN { printf "%.1f", a + d }')"
        tp="$(now)"
        timeout "$PUSH_TIMEOUT" "$DOCKER" push "$ref" >>"$WORK/baseline-$i.log" 2>&1 ||
            die "docker push $ref failed: $(tail -5 "$WORK/baseline-$i.log")"
        psum="$(awk -v a="$psum" -v d="$(since "$tp")" 'BEGIN { printf "%.1f", a + d }')"
    done
    bwall="$(since "$t0")"
    BASE_WALL+=("$bwall")
    log "wall time: run $i baseline ${bwall}s (builds ${bsum}s, pushes ${psum}s)"

    # deploy: the same images, on a commit of its own.
    budget_check "deploy run $i"
    fresh_commit "$TB"
    log "wall time: run $i/$REPEATS deploy (all services) at $(short_sha "$TB")"
    out="$WORK/time-deploy-$i"
    t0="$(now)"
    rc=0
    run_deploy "$TB" "$out" || rc=$?
    dwall="$(since "$t0")"
    record_deploy_tags "$TB"
    ((rc == 0)) || die "deploy failed (exit $rc): $(tail -5 "$out.log")"
    read -r dbsum dpsum dfirst npushed < <(image_stats "$out.json")
    ((npushed == ${#SERVICES[@]})) || die "deploy pushed $npushed of ${#SERVICES[@]} images, see $out.json"
    DEP_WALL+=("$dwall")
    drss="$(awk -v k="$(time_v "$out.time" 'Maximum resident set size (kbytes)')" 'BEGIN { printf "%.1f", k / 1024 }')"
    log "wall time: run $i deploy ${dwall}s (first image ${dfirst}s; sum of builds ${dbsum}s, of pushes ${dpsum}s; max RSS ${drss} MiB)"
    TIME_ROWS+=("| $i | $bwall | $bsum / $psum | $dwall | $dfirst | $dbsum / $dpsum |")
done

# ---------------------------------------------------------------------------- results
BASE_MED="$(median <<<"${BASE_WALL[*]}")"
DEP_MED="$(median <<<"${DEP_WALL[*]}")"
RATIO="$(awk -v b="$BASE_MED" -v d="$DEP_MED" 'BEGIN { printf "%.2f", b / d }')"
RSS_MAX="$(printf '%s\n' "${MEM_RSS[@]}" | sort -g | tail -1)"
RSS_MIN="$(printf '%s\n' "${MEM_RSS[@]}" | sort -g | head -1)"
MEM_OK="$(awk -v a="$RSS_MAX" -v b="$RSS_MIN" 'BEGIN { print (a < 64 && a - b < 8) ? "met" : "NOT met" }')"
TIME_OK="$(awk -v r="$RATIO" 'BEGIN { print (r >= 1.5) ? "met" : "NOT met" }')"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
TOTAL=$((SECONDS - START))

{
    echo "# Image benchmarks: latest results"
    echo
    echo "Written by \`bench/images.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${TOTAL} s."
    echo
    echo "- machine: \`nproc\` = $NPROC, $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Docker server $DOCKER_SERVER, $(uname -sr)"
    echo "- load average at start: $LOAD_START; at end: $LOAD_END"
    echo "- deploy: $DEPLOY_DESC; source $SRC_REV"
    echo "- registry: $DEPLOY_TESTBED_REGISTRY (test bed), base image $DEPLOY_TESTBED_BASE_IMAGE"
    echo
    echo "## 1. Peak memory while sending a big build context"
    echo
    echo "\`deploy --skip-tf --skip-spas --services api -y\` under \`/usr/bin/time -v\`; the fixture's"
    echo "Dockerfile, plus random 8 MiB files committed under \`bigdata/\` (not ignored, never copied)."
    echo
    echo "| context | committed tree (MiB) | max RSS (MiB) | wall (s) | api build (s) | deploy CPU (s) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${MEM_ROWS[@]}"
    echo
    echo "Target for the 8 MiB-file rows: flat (spread under 8 MiB) and under 64 MiB: **$MEM_OK**"
    echo "(max $RSS_MAX MiB, spread $(awk -v a="$RSS_MAX" -v b="$RSS_MIN" 'BEGIN { printf "%.1f", a - b }') MiB)."
    [[ "$BENCH_BIG" == 1 ]] || echo "(The ~1 GiB step was skipped: BENCH_BIG=0.)"
    if [[ -n "$ONE_ROW" ]]; then
        echo
        echo "Same measurement when the extra data is one single file: memory follows the largest file."
        echo
        echo "| context | committed tree (MiB) | max RSS (MiB) | wall (s) | api build (s) | deploy CPU (s) |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: |"
        echo "$ONE_ROW"
    fi
    echo
    echo "## 2. Build and push of the ${#SERVICES[@]} fixture images"
    echo
    echo "Baseline: for each service in turn, \`DOCKER_BUILDKIT=1 /usr/bin/docker build -f $DOCKERFILE"
    echo "--build-arg SERVICE=<svc> --build-arg PUPPETEER_SKIP_DOWNLOAD=true --build-arg"
    echo "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 -t $DEPLOY_TESTBED_REGISTRY/<svc>:<sha> .\` then \`docker push\`."
    echo "deploy: \`deploy --skip-tf --skip-spas -y\` (all services). Each run is on a fresh commit with a"
    echo "new \`pnpm-lock.yaml\`, so the dependency stage is rebuilt every time; runs alternate."
    echo
    echo "| run | baseline wall (s) | baseline builds / pushes (s) | deploy wall (s) | deploy first image (s) | deploy sum of builds / pushes (s) |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${TIME_ROWS[@]}"
    echo "| **median** | **$BASE_MED** | | **$DEP_MED** | | |"
    echo
    echo "Ratio baseline / deploy (medians): **${RATIO}x**. Target >= 1.5x on 2 cores: **$TIME_OK**."
    echo "deploy's wall time includes its own start-up (git, Docker ping, STS, ECR and registry checks)."
    echo "Its per-image build times overlap (2 at a time), so their sum exceeds the wall time."
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"

echo
sed -n '/^## 1/,$p' "$RESULTS"
echo
log "results written to $RESULTS; total ${TOTAL}s"
