# Shell helpers shared by bench/changed_plan.sh and bench/changed_graph.sh (sourced, not run).
# They expect ROOT (the deploy checkout), PY (the test bed's Python, with boto3) and a `die`
# function.

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
