#!/usr/bin/env bash
# Benchmark of deploy's SPA upload against `aws s3 sync` (issue 4; see bench/README.md).
#
# A generated dist/ of 2,000 files (mostly small, some tens of KiB, 4 of 9 MiB, over the
# 8 MiB multipart threshold) is uploaded to the local moto, first to empty buckets and then
# again with nothing changed, by deploy::spa::upload (in-process, release build) and by the
# AWS CLI v1 from PyPI (`aws s3 sync`), in the same run, on fresh buckets each round, the
# order of the two tools alternating. Prints a table of medians and writes it to
# bench/spa-results.md. Needs the test bed up (testbed/testbed.sh up); never starts or
# stops it.
#
# The Rust side is bench/spa_upload.rs, the `[[bench]]` target `spa_upload` (not part of
# `cargo test`), run by `cargo bench` in the release profile (hashing 55 MiB in a debug
# build alone takes 2 s). The first run compiles the release profile into target/release
# (about 15 minutes on 2 cores; later runs reuse it).
#
# Environment:
#   BENCH_FILES=N          files in the generated dist/ (default 2000)
#   BENCH_ROUNDS=N         rounds; the table shows medians (default 3)
#   BENCH_CONCURRENCY=N    deploy's uploads at once (default: spa_upload.concurrency's default)
#   BENCH_AWS=path         the AWS CLI to compare with (default: `aws` on PATH if it is v1,
#                          else PyPI awscli installed into $DEPLOY_TESTBED_DIR/awscli-venv;
#                          never into the test bed's own venv: awscli pins the botocore
#                          that moto runs on)
#   BENCH_PROFILE=release|dev   cargo profile of the Rust side (default release)
#   BENCH_RESULTS=path     where to write the results (default bench/spa-results.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STATE="${DEPLOY_TESTBED_DIR:-$ROOT/.testbed}"
FILES="${BENCH_FILES:-2000}"
ROUNDS="${BENCH_ROUNDS:-3}"
PROFILE="${BENCH_PROFILE:-release}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/spa-results.md}"

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}

[[ -f "$STATE/env" ]] || die "no test bed env at $STATE/env: run testbed/testbed.sh up first"
# shellcheck source=/dev/null
. "$STATE/env"

# ----------------------------------------------------------------------------- the AWS CLI
aws_is_v1() { "$1" --version 2>&1 | grep -q '^aws-cli/1\.'; }
AWS="${BENCH_AWS:-}"
if [[ -z "$AWS" ]]; then
    if command -v aws >/dev/null && aws_is_v1 aws; then
        AWS="$(command -v aws)"
    else
        VENV="$STATE/awscli-venv"
        if [[ ! -x "$VENV/bin/aws" ]]; then
            log "installing awscli (PyPI) into $VENV"
            python3 -m venv "$VENV"
            "$VENV/bin/pip" install --quiet --disable-pip-version-check awscli
        fi
        AWS="$VENV/bin/aws"
    fi
fi
aws_is_v1 "$AWS" || die "$AWS is not the AWS CLI v1 (set BENCH_AWS)"
log "comparing with $("$AWS" --version 2>&1)"

# ---------------------------------------------------------------------------- the benchmark
log "building the benchmark ($PROFILE profile)"
cargo bench --profile "$PROFILE" --bench spa_upload --no-run --quiet

started=$(date +%s)
output="$(mktemp)"
trap 'rm -f "$output"' EXIT
DEPLOY_BENCH_AWS="$AWS" DEPLOY_BENCH_FILES="$FILES" DEPLOY_BENCH_ROUNDS="$ROUNDS" \
    DEPLOY_BENCH_CONCURRENCY="${BENCH_CONCURRENCY:-}" \
    cargo bench --profile "$PROFILE" --quiet --bench spa_upload 2>&1 | tee "$output"
grep -q '^| first upload' "$output" || die "the benchmark printed no table"
elapsed=$(($(date +%s) - started))

{
    echo "# SPA upload benchmark: latest results"
    echo
    echo "Written by \`bench/spa_upload.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${elapsed} s."
    echo
    echo "- machine: \`nproc\` = $(nproc), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
    echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- deploy: \`deploy::spa::upload\` in-process, $PROFILE profile; source $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted src changes')"
    echo "- compared with: $("$AWS" --version 2>&1) (\`aws s3 sync\`, its defaults: 10 requests at once, 8 MiB multipart)"
    echo "- moto: $("${DEPLOY_TESTBED_PYTHON}" -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?') at ${AWS_ENDPOINT_URL}"
    echo "- data: $(grep -m1 '^bench: .* files' "$output" | sed 's/^bench: //')"
    echo
    grep '^|' "$output"
    echo
    echo "Per round:"
    echo
    grep '^bench: round' "$output" | sed 's/^bench: /- /'
} >"$RESULTS"
log "results written to ${RESULTS#"$ROOT"/}"
