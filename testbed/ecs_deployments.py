#!/usr/bin/env python3
"""ECS service deployments for the integration tests, in front of moto.

    ecs_deployments.py --upstream 127.0.0.1:4566 --scenario s.json --log calls.jsonl

moto (5.2) implements none of ECS's service-deployment calls. This server answers the
five of them (ListServiceDeployments, DescribeServiceDeployments,
DescribeServiceRevisions, StopServiceDeployment, ContinueServiceDeployment) from a
scenario the test writes, and forwards every other request to moto unchanged. It
prints the port it listens on (one line) once it accepts connections, appends one JSON
line per request to --log (`{"operation": ..., "request": {...}}`), and stops on
SIGTERM.

The scenario (JSON), per ECS service name:

    {"services": {"auth": {
        "strategy": "CANARY",                         # ROLLING, BLUE_GREEN, LINEAR, CANARY
        "deploymentConfiguration": {"bakeTimeInMinutes": 1, ...},   # merged in
        "alarms": ["auth-5xx"],                       # the deployment's alarm names
        "sourceTaskDefinition": "arn:...",            # what ran before (the rollback's)
        "stages": [                                   # `at`: seconds after the clock starts
            {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP"},
            {"at": 2, "status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"},
            {"at": 4, "status": "ROLLBACK_SUCCESSFUL", "lifecycleStage": "BAKE_TIME",
             "rollback": "alarm auth-5xx in ALARM", "triggeredAlarms": ["auth-5xx"],
             "circuitBreakerFailures": 0, "pause": {"hookId": "h-1", "expiresInSecs": 600}}
        ]}},
     "unsupported": false}                            # true: every call is refused
                                                      # (an account without them)

A service's clock starts at the first ListServiceDeployments naming it (deploy lists
only after its apply): its deployment is created then, targeting the task definition
moto runs at that moment. When a stage whose status is ROLLBACK_SUCCESSFUL is first
shown and the service has a sourceTaskDefinition, the service is put back on it in moto
(UpdateService), as ECS's rollback does. StopServiceDeployment (ROLLBACK or
BEST_EFFORT) and ContinueServiceDeployment end or resume the scenario at once: a
pause answered CONTINUE goes on to the next stage, one answered ROLLBACK ends
ROLLBACK_SUCCESSFUL (put back on sourceTaskDefinition); answering a hook that is not
awaiting action is refused (InvalidParameterException), as ECS does.
Services not in the scenario have no service deployments.

Every request to the five (required members, enums, types) and every response is
checked against botocore's ECS service model (the one installed
with moto) before it is sent, and every stage of the scenario is checked at start: a
shape the real API would not return stops the server (exit 2, the reason on stderr),
so that the tests cannot drift from the API.
"""
from __future__ import annotations

import argparse
import http.client
import http.server
import json
import sys
import threading
import time
import uuid
from pathlib import Path

import botocore.loaders

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
OWN = {
    "ListServiceDeployments",
    "DescribeServiceDeployments",
    "DescribeServiceRevisions",
    "StopServiceDeployment",
    "ContinueServiceDeployment",
}


def load_model() -> dict:
    # botocore's own loader: the newest API version, service-2.json(.gz).
    return botocore.loaders.create_loader().load_service_model("ecs", "service-2")


class Invalid(Exception):
    pass


class Refused(Exception):
    """An error ECS itself answers with (its __type and message)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def validate(model: dict, shape_name: str, value, where: str) -> None:
    """Raises Invalid when `value` is not what the model's shape allows."""
    shape = model["shapes"][shape_name]
    kind = shape["type"]
    if kind == "structure":
        if not isinstance(value, dict):
            raise Invalid(f"{where}: {shape_name} must be an object")
        for name in shape.get("required", []):
            if name not in value:
                raise Invalid(f"{where}: {shape_name} lacks required {name}")
        for name, member in value.items():
            if name not in shape["members"]:
                raise Invalid(f"{where}: {shape_name} has no member {name}")
            validate(model, shape["members"][name]["shape"], member, f"{where}.{name}")
    elif kind == "list":
        if not isinstance(value, list):
            raise Invalid(f"{where}: {shape_name} must be a list")
        for i, item in enumerate(value):
            validate(model, shape["member"]["shape"], item, f"{where}[{i}]")
    elif kind == "string":
        if not isinstance(value, str):
            raise Invalid(f"{where}: {shape_name} must be a string")
        if "enum" in shape and value not in shape["enum"]:
            raise Invalid(f"{where}: {value!r} is not one of {shape_name} {shape['enum']}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"{where}: {shape_name} must be an integer")
    elif kind in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise Invalid(f"{where}: {shape_name} must be a number")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise Invalid(f"{where}: {shape_name} must be a boolean")
    elif kind == "timestamp":
        if not isinstance(value, (int, float)):
            raise Invalid(f"{where}: {shape_name} must be epoch seconds")
    else:
        raise Invalid(f"{where}: unexpected shape type {kind}")


def output_shape(model: dict, operation: str) -> str:
    return model["operations"][operation]["output"]["shape"]


class Deployments:
    """The scenario's service deployments, as time passes."""

    def __init__(self, scenario: dict, region: str = "us-east-1"):
        self.scenario = scenario
        self.region = region
        self.lock = threading.Lock()
        # service name → {"started", "arn", "cluster", "account", "target_td",
        #                  "ended": stage or None, "continued": {hook ids}, "rolled_back"}
        self.live: dict[str, dict] = {}

    def services(self) -> dict:
        return self.scenario.get("services", {})

    def start(self, account: str, cluster: str, service: str, target_td: str | None) -> dict:
        with self.lock:
            if service not in self.live:
                self.live[service] = {
                    "started": time.time(),
                    # Kept when an answer moves "started" on to the next stage.
                    "created": time.time(),
                    "id": uuid.uuid4().hex[:20],
                    "cluster": cluster,
                    "account": account,
                    "target_td": target_td,
                    "ended": None,
                    "continued": set(),
                    "rolled_back": False,
                }
            return self.live[service]

    def stage(self, service: str) -> dict:
        live = self.live[service]
        if live["ended"] is not None:
            return live["ended"]
        elapsed = time.time() - live["started"]
        stages = self.services()[service]["stages"]
        current = stages[0]
        for stage in stages:
            if stage["at"] <= elapsed:
                current = stage
        pause = current.get("pause")
        if pause and pause["hookId"] in live["continued"]:
            # Answered: the deployment goes on to the stage after the pause, at once.
            later = [s for s in stages if s["at"] > current["at"]]
            if later:
                live["started"] -= later[0]["at"] - elapsed
                return later[0]
            return {**current, "pause": None, "status": "SUCCESSFUL"}
        return current

    def arn(self, service: str, kind: str = "service-deployment") -> str:
        live = self.live[service]
        suffix = live["id"] if kind == "service-deployment" else {"target": "2", "source": "1"}[kind]
        kind = "service-deployment" if kind == "service-deployment" else "service-revision"
        return f"arn:aws:ecs:{self.region}:{live['account']}:{kind}/{live['cluster']}/{service}/{suffix}"

    def service_of(self, arn: str) -> str | None:
        for service in self.live:
            if arn == self.arn(service):
                return service
        return None

    def brief(self, service: str) -> dict:
        stage = self.stage(service)
        live = self.live[service]
        brief = {
            "serviceDeploymentArn": self.arn(service),
            "serviceArn": service_arn(self.region, live["account"], live["cluster"], service),
            "clusterArn": f"arn:aws:ecs:{self.region}:{live['account']}:cluster/{live['cluster']}",
            "createdAt": live["created"],
            "startedAt": live["created"],
            "targetServiceRevisionArn": self.arn(service, "target"),
            "status": stage["status"],
        }
        if stage.get("statusReason"):
            brief["statusReason"] = stage["statusReason"]
        return brief

    def full(self, service: str) -> dict:
        stage = self.stage(service)
        live = self.live[service]
        config = self.services()[service]
        described = self.brief(service)
        del described["targetServiceRevisionArn"]
        deployment_configuration = {
            "strategy": config.get("strategy", "ROLLING"),
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            **config.get("deploymentConfiguration", {}),
        }
        if config.get("alarms"):
            deployment_configuration["alarms"] = {
                "alarmNames": config["alarms"],
                "rollback": True,
                "enable": True,
            }
        described.update(
            {
                "updatedAt": time.time(),
                "sourceServiceRevisions": [
                    {
                        "arn": self.arn(service, "source"),
                        "requestedTaskCount": 1,
                        "runningTaskCount": 1,
                        "pendingTaskCount": 0,
                    }
                ],
                "targetServiceRevision": {
                    "arn": self.arn(service, "target"),
                    "requestedTaskCount": 1,
                    "runningTaskCount": 1,
                    "pendingTaskCount": 0,
                },
                "lifecycleStage": stage["lifecycleStage"],
                "deploymentConfiguration": deployment_configuration,
                "deploymentCircuitBreaker": {
                    "status": "MONITORING",
                    "failureCount": stage.get("circuitBreakerFailures", 0),
                    "threshold": 3,
                },
            }
        )
        if config.get("alarms"):
            triggered = stage.get("triggeredAlarms", [])
            described["alarms"] = {
                "status": "TRIGGERED" if triggered else "MONITORING",
                "alarmNames": config["alarms"],
                "triggeredAlarmNames": triggered,
            }
        if stage.get("rollback"):
            described["rollback"] = {
                "reason": stage["rollback"],
                "startedAt": time.time(),
                "serviceRevisionArn": self.arn(service, "source"),
            }
        if stage["status"] in ("SUCCESSFUL", "ROLLBACK_SUCCESSFUL", "STOPPED", "ROLLBACK_FAILED"):
            described["finishedAt"] = time.time()
        pause = stage.get("pause")
        if pause:
            described["lifecycleHookDetails"] = [
                {
                    "hookId": pause["hookId"],
                    "targetType": "PAUSE",
                    "status": "AWAITING_ACTION",
                    "expiresAt": live["started"] + stage["at"] + pause.get("expiresInSecs", 600),
                    "timeoutAction": "ROLLBACK",
                }
            ]
        return described


def service_arn(region: str, account: str, cluster: str, service: str) -> str:
    return f"arn:aws:ecs:{region}:{account}:service/{cluster}/{service}"


def name_of(arn_or_name: str) -> str:
    return arn_or_name.rsplit("/", 1)[-1]


def log(message: str) -> None:
    print(f"ecs_deployments: {message}", file=sys.stderr, flush=True)


def self_check(model: dict, deployments: Deployments) -> None:
    """Every stage of every service, described as it would be, checked against the model."""
    for service, config in deployments.services().items():
        deployments.start("000000000000", "cluster", service, "arn:aws:ecs:us-east-1:0:task-definition/x:1")
        live = deployments.live[service]
        for stage in config["stages"]:
            live["ended"] = stage
            validate(model, output_shape(model, "DescribeServiceDeployments"),
                     {"serviceDeployments": [deployments.full(service)], "failures": []}, service)
            validate(model, output_shape(model, "ListServiceDeployments"),
                     {"serviceDeployments": [deployments.brief(service)]}, service)
    deployments.live.clear()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    model = load_model()
    missing = OWN - set(model["operations"])
    if missing:
        log(f"botocore's ECS model lacks {sorted(missing)}: upgrade botocore")
        return 2
    scenario = json.loads(Path(args.scenario).read_text())
    deployments = Deployments(scenario)
    try:
        self_check(model, deployments)
    except Invalid as err:
        log(f"the scenario would answer what ECS never does: {err}")
        return 2
    upstream_host, upstream_port = args.upstream.rsplit(":", 1)
    log_lock = threading.Lock()

    def record(operation: str, request) -> None:
        with log_lock, open(args.log, "a") as f:
            f.write(json.dumps({"operation": operation, "request": request}) + "\n")

    def upstream(method: str, path: str, headers: dict, body: bytes):
        connection = http.client.HTTPConnection(upstream_host, int(upstream_port), timeout=120)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = self.headers.get("X-Amz-Target", "")
            operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
            if operation in OWN:
                request = json.loads(body or b"{}")
                record(operation, request)
                return self.own(operation, request)
            record(operation or f"{self.command} {self.path.split('?')[0]}", None)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
            headers["Connection"] = "close"
            status, answer_headers, answer = upstream(self.command, self.path, headers, body)
            self.send_response(status)
            for key, value in answer_headers:
                if key.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = forward

        def answer(self, status: int, payload: dict):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, kind: str, message: str, status: int = 400):
            self.answer(status, {"__type": kind, "message": message})

        def ecs(self, operation: str, payload: dict) -> dict:
            """Calls moto as the caller (its Authorization names the account)."""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
            headers["X-Amz-Target"] = TARGET_PREFIX + operation
            headers["Connection"] = "close"
            status, _, answer = upstream("POST", "/", headers, json.dumps(payload).encode())
            if status != 200:
                raise RuntimeError(f"moto {operation}: {status} {answer[:200]!r}")
            return json.loads(answer)

        def own(self, operation: str, request: dict):
            if scenario.get("unsupported"):
                return self.error("UnsupportedFeatureException", f"{operation} is not supported in this account")
            try:
                # What the caller sent must be what the real API accepts, too.
                validate(model, model["operations"][operation]["input"]["shape"], request, operation)
            except Invalid as err:
                log(f"{operation}: a request the real API would refuse: {err}")
                return self.error("InvalidParameterException", f"ecs_deployments stand-in: {err}")
            try:
                payload = getattr(self, "op_" + operation)(request)
                validate(model, output_shape(model, operation), payload, operation)
            except Refused as err:
                return self.error(err.kind, err.message)
            except Invalid as err:
                log(f"refusing to answer what ECS never does: {err}")
                return self.error("ServerException", f"ecs_deployments stand-in: {err}", 500)
            except Exception as err:  # noqa: BLE001 - the test must see it
                log(f"{operation} failed: {err!r}")
                return self.error("ServerException", f"ecs_deployments stand-in: {err!r}", 500)
            self.answer(200, payload)

        def op_ListServiceDeployments(self, request: dict) -> dict:
            service = name_of(request["service"])
            if service not in deployments.services():
                return {"serviceDeployments": []}
            cluster = name_of(request.get("cluster", "default"))
            described = self.ecs("DescribeServices", {"cluster": cluster, "services": [service]})
            found = [s for s in described.get("services", []) if s.get("status") == "ACTIVE"]
            if not found:
                return {"serviceDeployments": []}
            account = found[0]["serviceArn"].split(":")[4]
            deployments.start(account, cluster, service, found[0].get("taskDefinition"))
            brief = deployments.brief(service)
            self.maybe_roll_back(service)
            created = request.get("createdAt") or {}
            if "after" in created and brief["createdAt"] < created["after"]:
                return {"serviceDeployments": []}
            if "before" in created and brief["createdAt"] > created["before"]:
                return {"serviceDeployments": []}
            if request.get("status") and brief["status"] not in request["status"]:
                return {"serviceDeployments": []}
            return {"serviceDeployments": [brief]}

        def maybe_roll_back(self, service: str):
            live = deployments.live[service]
            source = deployments.services()[service].get("sourceTaskDefinition")
            if deployments.stage(service)["status"] == "ROLLBACK_SUCCESSFUL" and source and not live["rolled_back"]:
                live["rolled_back"] = True
                self.ecs("UpdateService", {"cluster": live["cluster"], "service": service, "taskDefinition": source})
                log(f"{service}: rolled back to {source}")

        def op_DescribeServiceDeployments(self, request: dict) -> dict:
            found, failures = [], []
            for arn in request["serviceDeploymentArns"]:
                service = deployments.service_of(arn)
                if service is None:
                    failures.append({"arn": arn, "reason": "MISSING"})
                else:
                    self.maybe_roll_back(service)
                    found.append(deployments.full(service))
            return {"serviceDeployments": found, "failures": failures}

        def op_DescribeServiceRevisions(self, request: dict) -> dict:
            found, failures = [], []
            for arn in request["serviceRevisionArns"]:
                match = [s for s in deployments.live if arn in (deployments.arn(s, "target"), deployments.arn(s, "source"))]
                if not match:
                    failures.append({"arn": arn, "reason": "MISSING"})
                    continue
                service = match[0]
                live = deployments.live[service]
                td = live["target_td"] if arn == deployments.arn(service, "target") else deployments.services()[service].get("sourceTaskDefinition")
                revision = {
                    "serviceRevisionArn": arn,
                    "serviceArn": service_arn(deployments.region, live["account"], live["cluster"], service),
                    "clusterArn": f"arn:aws:ecs:{deployments.region}:{live['account']}:cluster/{live['cluster']}",
                    "launchType": "EC2",
                    "createdAt": live["created"],
                }
                if td:
                    revision["taskDefinition"] = td
                found.append(revision)
            return {"serviceRevisions": found, "failures": failures}

        def op_StopServiceDeployment(self, request: dict) -> dict:
            arn = request["serviceDeploymentArn"]
            service = deployments.service_of(arn)
            if service is None:
                raise RuntimeError(f"no service deployment {arn}")
            stop_type = request.get("stopType", "ROLLBACK")
            current = deployments.stage(service)
            ended = {
                **current,
                "pause": None,
                "status": "ROLLBACK_SUCCESSFUL" if stop_type == "ROLLBACK" else "STOPPED",
                "statusReason": f"stopped by StopServiceDeployment ({stop_type})",
            }
            if stop_type == "ROLLBACK":
                ended["rollback"] = "Rollback requested by StopServiceDeployment"
            deployments.live[service]["ended"] = ended
            self.maybe_roll_back(service)
            return {"serviceDeploymentArn": arn}

        def op_ContinueServiceDeployment(self, request: dict) -> dict:
            arn = request["serviceDeploymentArn"]
            service = deployments.service_of(arn)
            if service is None:
                raise Refused("ServiceDeploymentNotFoundException", f"no service deployment {arn}")
            pause = deployments.stage(service).get("pause")
            if not pause or pause["hookId"] != request.get("hookId"):
                raise Refused("InvalidParameterException",
                              f"hook {request.get('hookId')} of {arn} is not awaiting action")
            if request.get("action", "CONTINUE") == "ROLLBACK":
                # The pause answered with a rollback: ECS rolls back to the source revision.
                deployments.live[service]["ended"] = {
                    **deployments.stage(service),
                    "pause": None,
                    "status": "ROLLBACK_SUCCESSFUL",
                    "rollback": f"Rollback requested at lifecycle hook {pause['hookId']}",
                }
                self.maybe_roll_back(service)
            else:
                deployments.live[service]["continued"].add(request.get("hookId"))
            return {"serviceDeploymentArn": arn}

    host, port = args.listen.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(main())
