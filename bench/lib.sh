# Shell helpers shared by bench/changed_plan.sh, bench/changed_graph.sh and
# bench/release_profile.sh (sourced, not run). They expect ROOT (the deploy checkout), PY (the
# test bed's Python, with boto3), `log` and `die` functions, and the test bed's env sourced.

now() { date +%s.%N; }
median() { "$PY" -c 'import statistics, sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "$@"; }

# fx_env DIR: (in a subshell) cd into a fixture copy and use its moto account.
fx_env() {
    cd "$1"
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    export AWS_SHARED_CREDENTIALS_FILE="$1/.aws-test/credentials" AWS_CONFIG_FILE="$1/.aws-test/config" AWS_PROFILE=testbed
}

# bootstrap DIR: its own moto account (ECR, ECS cluster + 9 services, buckets), terraform
# init, workspace and first apply, as in the integration tests. Summary in DIR.json.
bootstrap() {
    timeout 180 "$PY" "$ROOT/testbed/fixture_bootstrap.py" --repo "$1" --env sandbox --initial-apply \
        >"$1.json" 2>"$1.bootstrap.log" ||
        die "fixture_bootstrap.py failed, see $1.bootstrap.log: $(tail -3 "$1.bootstrap.log")"
}
summary_field() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# write_ecs_services FILE: writes ecs_services.py (usage in its docstring).
write_ecs_services() {
    cat >"$1" <<'EOF'
"""ecs_services.py create|retag SUMMARY_JSON TAG SVC...

create: per service, a task definition running <registry>/<svc>:TAG and an ECS service on it;
retag:  per service, a new task definition running :TAG, made the service's (UpdateService).
Task definitions and services are made by the fixture's own ecs_roll.py, like terraform's.
Credentials: the fixture's profile (AWS_PROFILE and the shared files in the environment)."""
import importlib.util
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3

sys.dont_write_bytecode = True
mode, summary, tag, services = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4:]
spec = importlib.util.spec_from_file_location("ecs_roll", "infra/terraform/aws/ecs_roll.py")
ecs_roll = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ecs_roll)
ecs = boto3.session.Session().client("ecs", endpoint_url=summary["endpoint_url"], region_name=summary["region"])
cluster = summary["ecs_cluster"]


def one(svc):
    arn = ecs_roll.register_task_definition(ecs, svc, f"{summary['registry']}/{svc}:{tag}")
    if mode == "create":
        ecs_roll.create_service(ecs, cluster, svc, arn)
    else:
        ecs.update_service(cluster=cluster, service=svc, taskDefinition=arn)


with ThreadPoolExecutor(4) as pool:
    list(pool.map(one, services))
EOF
}

# gitc DIR ARGS...: git in DIR, committing as the benchmark.
gitc() { git -C "$1" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false "${@:2}"; }
short_sha() { git -C "$1" rev-parse --short=7 HEAD; }

# fixture_repo DIR: a copy of tests/fixtures/platform at DIR, a git repository of one commit.
fixture_repo() {
    mkdir -p "$1"
    cp -a "$ROOT/tests/fixtures/platform/." "$1"
    git -C "$1" init -q -b main
    gitc "$1" add -A
    gitc "$1" commit -qm "fixture"
}

# changed_fixture DIR DEPLOY TAGS_FILE: the setup of the `--changed` plan benchmarks. A fixture
# copy at DIR, bootstrapped in its own moto account (DIR.json), a full deploy by DEPLOY (build,
# push, terraform roll; no SPAs) so that every service runs :<sha>, then a commit changing
# services/api. Sets SERVICES (the 9 fixture services), CLUSTER and LIVE9 (the live tag); the
# local image tags the full deploy made are appended to TAGS_FILE.
changed_fixture() {
    local dir="$1" deploy="$2" tags="$3" t0 svc
    log "fixture copy + bootstrap (own moto account, terraform init + first apply)"
    fixture_repo "$dir"
    t0="$(now)"
    bootstrap "$dir"
    log "bootstrapped in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s"
    CLUSTER="$(summary_field "$dir.json" ecs_cluster)"
    mapfile -t SERVICES < <(
        cd "$dir" && "$deploy" --skip-tf --skip-spas --dry-run --output json |
            "$PY" -c 'import json, sys; [print(s["name"]) for s in json.load(sys.stdin)["services"]]'
    )
    ((${#SERVICES[@]} == 9)) || die "expected the 9 fixture services, deploy found: ${SERVICES[*]}"
    log "full deploy (build, push, terraform roll) so that every service runs :$(short_sha "$dir")"
    t0="$(now)"
    # deploy's cache images keep their tag from run to run (<registry>/<svc>:cache-<stage>):
    # only those this deploy created are removed with the rest.
    "${DOCKER:-docker}" images --format '{{.Repository}}:{{.Tag}}' | grep ':cache-' | sort >"$dir.cache-before" || true
    (
        fx_env "$dir"
        DEPLOY_REGISTRY="$DEPLOY_TESTBED_REGISTRY" timeout 300 \
            "$deploy" --var-file tfvars/sandbox.tfvars --skip-spas --profile testbed -y >"$dir.full.out" 2>"$dir.full.log"
    ) || die "the full deploy failed: $(tail -5 "$dir.full.log")"
    LIVE9="$(short_sha "$dir")"
    for svc in "${SERVICES[@]}"; do echo "$DEPLOY_TESTBED_REGISTRY/$svc:$LIVE9" >>"$tags"; done
    "${DOCKER:-docker}" images --format '{{.Repository}}:{{.Tag}}' | grep ':cache-' | sort |
        comm -13 "$dir.cache-before" - >>"$tags" || true
    log "full deploy done in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s"
    echo "// bench: a change" >>"$dir/services/api/src/index.ts"
    gitc "$dir" commit -qam "bench: change services/api"
}

# add_services DIR FIRST LAST ECS_PY: services/svc-FIRST..svc-LAST (numbered %03d) committed in
# fixture DIR, each with an ECS service running :<sha of that commit> (ECS_PY: the file
# write_ecs_services wrote), then a commit changing the first of them, so that every live tag
# differs from HEAD. Sets NEW_SVCS.
add_services() {
    local dir="$1" first="$2" last="$3" ecs_py="$4" n svc
    NEW_SVCS=()
    for ((n = first; n <= last; n++)); do
        svc="$(printf 'svc-%03d' "$n")"
        NEW_SVCS+=("$svc")
        mkdir -p "$dir/services/$svc/src"
        printf '{\n  "name": "@platform/%s",\n  "version": "0.0.0",\n  "private": true,\n  "main": "src/index.ts"\n}\n' "$svc" >"$dir/services/$svc/package.json"
        printf 'export const routePrefix = "/%s";\n' "$svc" >"$dir/services/$svc/src/index.ts"
    done
    gitc "$dir" add -A services
    gitc "$dir" commit -qm "bench: $((last + 9)) services"
    (fx_env "$dir" && "$PY" "$ecs_py" create "$dir.json" "$(short_sha "$dir")" "${NEW_SVCS[@]}") ||
        die "creating the ECS services failed"
    echo "// bench: a change" >>"$dir/services/${NEW_SVCS[0]}/src/index.ts"
    gitc "$dir" commit -qam "bench: change services/${NEW_SVCS[0]}"
}
