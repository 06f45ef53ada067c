#!/usr/bin/env python3
"""Bootstraps one copy of the fixture platform against moto, isolated in its own AWS account.

Does, for a test, what the platform's infra/scripts/bootstrap.sh does for a real environment:

  fixture_bootstrap.py --repo DIR --env sandbox [--account-id 123456789012]
                       [--terraform] [--initial-apply] [--profile testbed]

DIR is a copy of tests/fixtures/platform. Tests share one moto server and run in parallel, so
each bootstrap works in an AWS account of its own: moto files every request under the account
of the access key that signed it, and STS AssumeRole on arn:aws:iam::<account>:role/... hands
out keys that belong to <account> (moto/sts/models.py `_create_access_key`,
moto/iam/models.py `get_account_id_from`). With those keys it creates:

  - ECR repositories for the 9 services and slack-agent,
  - the ECS cluster platform-<env>, and per service a task definition (<registry>/<svc>:bootstrap,
    made by the fixture's own ecs_roll.py) and a service (EC2 launch type, desired count 1),
  - S3 buckets <env>-<account>-admin-ui and <env>-<account>-simulator, one CloudFront
    distribution in front of each,

then writes (all gitignored in the fixture):

  DIR/.aws-test/credentials, DIR/.aws-test/config   profile `testbed` (--profile) with the assumed keys
  DIR/infra/terraform/aws/tfvars/<env>.tfvars        with a fake db_password secret

and prints a JSON summary on stdout. --terraform runs `terraform init` and creates the
workspace <env>; --initial-apply (implies --terraform) then applies with image_tag=bootstrap,
as the real bootstrap's first apply would, so terraform state and outputs exist.

Environment: AWS_ENDPOINT_URL (required: this never talks to real AWS), AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY (default `testing`; any key moto does not know is its default account),
DEPLOY_TESTBED_REGISTRY (image registry host/prefix, default 127.0.0.1:5000), DEPLOY_TESTBED_TERRAFORM
(terraform executable, default `terraform`), DEPLOY_TESTBED_PYTHON (used by the fixture's
terraform; defaults to this interpreter for --initial-apply).
"""

from __future__ import annotations

import argparse
import configparser
import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import boto3
from botocore.config import Config

SERVICES = ["api", "auth", "clinical-api", "billing", "notifications", "scheduler", "files", "reports", "webhooks"]
INDEPENDENT_SERVICES = ["slack-agent"]
SPAS = ["admin-ui", "simulator"]
REGION = "us-east-1"
PROFILE = "testbed"
ROLE_NAME = "deploy-test"
TERRAFORM_DIR = Path("infra/terraform/aws")


def fail(message: str) -> NoReturn:
    print(f"fixture_bootstrap: {message}", file=sys.stderr)
    sys.exit(1)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, type=Path, help="copy of tests/fixtures/platform")
    parser.add_argument("--env", required=True, help="environment / terraform workspace name")
    parser.add_argument("--account-id", help="12-digit AWS account id (random if not given)")
    parser.add_argument("--terraform", action="store_true", help="terraform init + workspace new <env>")
    parser.add_argument("--profile", default=PROFILE,
                        help="name of the credentials profile written (other profiles there are kept)")
    parser.add_argument("--initial-apply", action="store_true", help="also apply with image_tag=bootstrap")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", args.env):
        parser.error(f"--env {args.env!r}: use lowercase letters, digits and dashes")
    if args.account_id is None:
        # Never moto's default account (123456789012), never a leading zero.
        args.account_id = str(secrets.choice(range(10**11, 10**12)))
    elif not re.fullmatch(r"\d{12}", args.account_id):
        parser.error(f"--account-id {args.account_id!r}: must be 12 digits")
    if not (args.repo / TERRAFORM_DIR / "main.tf").is_file():
        parser.error(f"--repo {args.repo}: not a copy of the fixture platform (no {TERRAFORM_DIR}/main.tf)")
    args.repo = args.repo.resolve()
    args.terraform = args.terraform or args.initial_apply
    return args


def load_ecs_roll(repo: Path):
    """The fixture's own ecs_roll.py, so bootstrap revisions look like terraform's."""
    sys.dont_write_bytecode = True  # no __pycache__ in the test's repository
    path = repo / TERRAFORM_DIR / "ecs_roll.py"
    spec = importlib.util.spec_from_file_location("fixture_ecs_roll", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assume_account(endpoint: str, account_id: str) -> dict:
    sts = boto3.client(
        "sts",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{ROLE_NAME}",
        RoleSessionName="fixture-bootstrap",
        DurationSeconds=43200,
    )["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def write_aws_files(repo: Path, profile: str, creds: dict, endpoint: str) -> tuple[Path, Path]:
    """Writes (or replaces) `profile` in DIR/.aws-test, keeping any other profile there."""
    directory = repo / ".aws-test"
    directory.mkdir(mode=0o700, exist_ok=True)
    credentials = directory / "credentials"
    config = directory / "config"

    def update(path: Path, section: str, values: dict) -> None:
        parser = configparser.ConfigParser(interpolation=None)
        if path.exists():
            parser.read(path)
        parser[section] = values
        with path.open("w") as out:
            parser.write(out)

    update(credentials, profile, creds)
    credentials.chmod(0o600)
    update(config, f"profile {profile}", {"region": REGION, "output": "json", "endpoint_url": endpoint})
    return credentials, config


def write_tfvars(repo: Path, env: str, registry: str, cluster: str, buckets: dict, distributions: dict, lock_bucket: str) -> Path:
    def hcl_map(values: dict) -> str:
        width = max(len(k) for k in values) + 2
        rows = "".join(f'  {json.dumps(k):<{width}} = {json.dumps(v)}\n' for k, v in values.items())
        return "{\n" + rows + "}"

    path = repo / TERRAFORM_DIR / "tfvars" / f"{env}.tfvars"
    path.write_text(
        f"# Written by testbed/fixture_bootstrap.py (gitignored, like every per-environment tfvars).\n"
        f"environment = {json.dumps(env)}\n"
        f"registry    = {json.dumps(registry)}\n"
        f"ecs_cluster = {json.dumps(cluster)}\n"
        f"\nspa_buckets = {hcl_map(buckets)}\n"
        f"\nspa_distribution_ids = {hcl_map(distributions)}\n"
        f"\ndeploy_lock_bucket = {json.dumps(lock_bucket)}\n"
        f"\nexpose_api_docs = true\n"
        f"\n# A fake secret: deploy must never print it.\n"
        f'db_password = "s3cr3t-{secrets.token_hex(8)}"\n'
    )
    return path


def create_distribution(cloudfront, bucket: str, comment: str) -> dict:
    origin_id = f"s3-{bucket}"
    config = {
        "CallerReference": f"{bucket}-{time.time_ns()}",
        "Comment": comment,
        "Enabled": True,
        "DefaultRootObject": "index.html",
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": origin_id,
                    "DomainName": f"{bucket}.s3.{REGION}.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": origin_id,
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }
    distribution = cloudfront.create_distribution(DistributionConfig=config)["Distribution"]
    return {"id": distribution["Id"], "domain_name": distribution["DomainName"]}


def run_terraform(args: list[str], cwd: Path, env: dict) -> tuple[str, float]:
    """Runs terraform in the fixture's terraform root; returns its stdout and the seconds it took."""
    command = [os.environ.get("DEPLOY_TESTBED_TERRAFORM", "terraform"), f"-chdir={TERRAFORM_DIR}", *args]
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        fail(f"`{' '.join(command)}` exited with {result.returncode}")
    return result.stdout, round(time.monotonic() - started, 2)


def terraform_env(repo: Path, profile: str, credentials: Path, config: Path) -> dict:
    env = dict(os.environ)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    env.update(
        AWS_PROFILE=profile,
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_CONFIG_FILE=str(config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
    )
    env.setdefault("DEPLOY_TESTBED_PYTHON", sys.executable)
    # Terraform complains (older versions refuse to start) when TF_CLI_CONFIG_FILE names a
    # missing file; give this run an empty one of its own instead of touching $HOME.
    cli_config = env.get("TF_CLI_CONFIG_FILE")
    if cli_config is not None and not Path(cli_config).is_file():
        own = repo / ".aws-test" / "terraformrc"
        own.touch()
        env["TF_CLI_CONFIG_FILE"] = str(own)
    return env


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        fail("AWS_ENDPOINT_URL is not set: this only bootstraps moto, never real AWS")
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(key, None)  # the caller's profile is not the account being made

    timings: dict[str, float] = {}
    started = time.monotonic()
    creds = assume_account(endpoint, args.account_id)
    session = boto3.session.Session(region_name=REGION, **creds)

    def client(name: str, **kwargs):
        return session.client(name, endpoint_url=endpoint, **kwargs)

    caller = client("sts").get_caller_identity()
    if caller["Account"] != args.account_id:
        fail(f"moto put the assumed role in account {caller['Account']}, not {args.account_id}")

    registry = os.environ.get("DEPLOY_TESTBED_REGISTRY", "127.0.0.1:5000").rstrip("/")
    env = args.env
    cluster = f"platform-{env}"

    ecr = client("ecr")
    repositories = {}
    for name in SERVICES + INDEPENDENT_SERVICES:
        repositories[name] = ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"]

    ecs = client("ecs")
    ecs_roll = load_ecs_roll(args.repo)
    ecs.create_cluster(clusterName=cluster)
    task_definitions = {}
    for name in SERVICES:
        arn = ecs_roll.register_task_definition(ecs, name, f"{registry}/{name}:bootstrap")
        ecs_roll.create_service(ecs, cluster, name, arn)
        task_definitions[name] = arn

    s3 = client("s3", config=Config(s3={"addressing_style": "path"}))
    cloudfront = client("cloudfront")
    buckets, distributions, distribution_domains = {}, {}, {}
    # The platform's private ops bucket (terraform state lives in one like it): the
    # deploy lock goes there, never in a bucket CloudFront serves.
    lock_bucket = f"{env}-{args.account_id}-deploy"
    s3.create_bucket(Bucket=lock_bucket)
    for spa in SPAS:
        bucket = f"{env}-{args.account_id}-{spa}"
        s3.create_bucket(Bucket=bucket)
        distribution = create_distribution(cloudfront, bucket, f"{env} {spa}")
        buckets[spa] = bucket
        distributions[spa] = distribution["id"]
        distribution_domains[spa] = distribution["domain_name"]
    timings["aws"] = round(time.monotonic() - started, 2)

    credentials, config = write_aws_files(args.repo, args.profile, creds, endpoint)
    tfvars = write_tfvars(args.repo, env, registry, cluster, buckets, distributions, lock_bucket)

    if args.terraform:
        tf_env = terraform_env(args.repo, args.profile, credentials, config)
        _, timings["terraform_init"] = run_terraform(["init", "-input=false", "-no-color"], args.repo, tf_env)
        workspaces, _ = run_terraform(["workspace", "list", "-no-color"], args.repo, tf_env)
        verb = "select" if re.search(rf"^\*?\s*{re.escape(env)}$", workspaces, re.M) else "new"
        _, timings["terraform_workspace"] = run_terraform(["workspace", verb, "-no-color", env], args.repo, tf_env)
        if args.initial_apply:
            _, timings["terraform_apply"] = run_terraform(
                ["apply", "-auto-approve", "-input=false", "-no-color",
                 f"-var-file=tfvars/{env}.tfvars", "-var", "image_tag=bootstrap"],
                args.repo, tf_env,
            )

    summary = {
        "account_id": args.account_id,
        "region": REGION,
        "endpoint_url": endpoint,
        "profile": args.profile,
        "credentials_file": str(credentials),
        "config_file": str(config),
        "env": env,
        "registry": registry,
        "ecs_cluster": cluster,
        "services": SERVICES,
        "ecr_repositories": repositories,
        "task_definitions": task_definitions,
        "spa_buckets": buckets,
        "deploy_lock_bucket": lock_bucket,
        "spa_distribution_ids": distributions,
        "spa_distribution_domains": distribution_domains,
        "tfvars": str(tfvars),
        "var_file": f"tfvars/{env}.tfvars",
        "terraform_workspace": env if args.terraform else None,
        "timings_s": timings,
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
