#!/usr/bin/env python3
"""Checks the wiring of deploy/k8s/ (issue 11, "Schedulers") without a cluster: the endpoint
the workers use reaches the Service and the port the coordinator binds, the key files the
commands name are the Secret's keys at their mount paths, the worker count agrees with the
Indexed Job, every container requests resources, exit 75 is not a failure, and every flag in
the command lines exists in `convoy CMD --experimental-dump-help`. Then it breaks the
manifests on purpose, one way at a time, and expects each break to be caught.
  scripts/k8s-manifest-test.py DEPLOY_K8S_DIR CONVOY_BINARY"""
import copy
import glob
import json
import os
import subprocess
import sys

import yaml

DEFAULT_PORT = 5555  # SchedulerPlacement.defaultPort
KEY_FLAGS = {"coordinator": ["--curve-key", "--authorized-keys"], "worker": ["--server-key", "--key"]}


def load(directory):
    docs = []
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return docs


def flag_names(convoy, command):
    """Long flag names of `convoy COMMAND` and whether each takes a value."""
    out = subprocess.run([convoy, command, "--experimental-dump-help"], check=True, capture_output=True, text=True)
    names = {}
    for argument in json.loads(out.stdout)["command"].get("arguments", []):
        for name in argument.get("names", []):
            if name["kind"] == "long":
                names["--" + name["name"]] = argument["kind"] == "option"
    return names


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def check(docs, convoy_flags):
    """Every problem found, as one line each."""
    problems = []
    kinds = lambda kind: [d for d in docs if d.get("kind") == kind]
    secrets, services, jobs = kinds("Secret"), kinds("Service"), kinds("Job")
    indexed = [j for j in jobs if j["spec"].get("completionMode") == "Indexed"]
    plain = [j for j in jobs if j["spec"].get("completionMode") != "Indexed"]
    if len(secrets) != 1 or len(services) != 1 or len(indexed) != 1 or len(plain) != 1:
        return [f"want one Secret, one Service, one Job and one Indexed Job; got {len(secrets)}, "
                f"{len(services)}, {len(plain)}, {len(indexed)}"]
    secret, service, coordinator_job, worker_job = secrets[0], services[0], plain[0], indexed[0]
    secret_keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
    roles = {"coordinator": coordinator_job, "worker": worker_job}
    containers = {}
    for role, job in roles.items():
        pod = job["spec"]["template"]
        [container] = pod["spec"]["containers"]
        containers[role] = container
        args = container.get("args", [])
        if not args or args[0] != role:
            problems.append(f"{role} Job: args start with {args[:1]}, not {role}")
            continue
        # Flags exist for this subcommand; options have a value.
        flags, i = convoy_flags[role], 1
        while i < len(args):
            flag = args[i]
            if flag not in flags:
                problems.append(f"{role} Job: convoy {role} has no flag {flag}")
                i += 1
            else:
                i += 2 if flags[flag] else 1
        if "--from-env" not in args:
            problems.append(f"{role} Job: no --from-env")
        requests = container.get("resources", {}).get("requests", {})
        for resource in ("cpu", "memory"):
            if resource not in requests:
                problems.append(f"{role} Job: no {resource} request")
        rules = job["spec"].get("podFailurePolicy", {}).get("rules", [])
        if not any(r.get("action") == "Ignore" and 75 in r.get("onExitCodes", {}).get("values", []) for r in rules):
            problems.append(f"{role} Job: exit status 75 (stopped early, to be continued) counts as a failure")
        if pod["spec"].get("restartPolicy") != "Never":
            problems.append(f"{role} Job: podFailurePolicy needs restartPolicy Never")
        # Key files: each named file is an item of a Secret volume of convoy-keys at its mount path.
        files = {}
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})
            if "secret" not in volume:
                continue
            if volume["secret"].get("secretName") != secret["metadata"]["name"]:
                problems.append(f"{role} Job: volume {mount['name']} names Secret {volume['secret'].get('secretName')}")
            mode = volume["secret"].get("defaultMode", 0o644)
            for item in volume["secret"].get("items", []):
                files[os.path.join(mount["mountPath"], item["path"])] = item["key"]
                if item.get("mode", mode) & 0o077:
                    problems.append(f"{role} Job: key {item['key']} mounted with mode {oct(item.get('mode', mode))}; "
                                    "convoy refuses secret keys others can read (use 0400)")
                if item["key"] not in secret_keys:
                    problems.append(f"{role} Job: mounts Secret key {item['key']}, which the Secret lacks")
        for flag in KEY_FLAGS[role]:
            if flag not in args or args.index(flag) + 1 >= len(args):
                problems.append(f"{role} Job: no {flag}")
            elif args[args.index(flag) + 1] not in files:
                problems.append(f"{role} Job: {flag} {args[args.index(flag) + 1]} is no mounted Secret key file")
    if problems:
        return problems
    # The endpoint: workers -> Service name and port -> coordinator pod's port -> what it binds.
    coordinator_env, worker_env = env_of(containers["coordinator"]), env_of(containers["worker"])
    bind_port = int(coordinator_env.get("CONVOY_PORT") or DEFAULT_PORT)
    target = worker_env.get("CONVOY_COORDINATOR", "")
    host, _, port = target.partition(":")
    connect_port = int(port or worker_env.get("CONVOY_PORT") or DEFAULT_PORT)
    name = service["metadata"]["name"]
    if host.split(".")[0] != name:
        problems.append(f"workers: CONVOY_COORDINATOR={target!r} is not the Service {name}")
    if service["spec"].get("clusterIP") != "None":
        problems.append(f"Service {name} is not headless (clusterIP: None)")
    labels = coordinator_job["spec"]["template"]["metadata"].get("labels", {})
    selector = service["spec"].get("selector", {})
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        problems.append(f"Service {name} selects {selector}, not the coordinator pod's labels {labels}")
    matching = [p for p in service["spec"].get("ports", []) if p["port"] == connect_port]
    if not matching:
        problems.append(f"workers connect to port {connect_port}; Service {name} does not serve it")
    else:
        target_port = matching[0].get("targetPort", connect_port)
        container_ports = containers["coordinator"].get("ports", [])
        resolved = [p["containerPort"] for p in container_ports if target_port in (p.get("name"), p["containerPort"])]
        if resolved != [bind_port]:
            problems.append(f"Service port {connect_port} goes to container port {resolved or target_port}; "
                            f"the coordinator binds {bind_port}")
    workers = coordinator_env.get("CONVOY_WORKERS")
    spec = worker_job["spec"]
    if not workers or int(workers) != spec.get("completions") or spec.get("parallelism") != spec.get("completions"):
        problems.append(f"coordinator waits for CONVOY_WORKERS={workers}; the Indexed Job runs "
                        f"{spec.get('parallelism')} of {spec.get('completions')}")
    return problems


def breakages(docs):
    """Mutated copies of the manifests, each with one wiring mistake the check must catch."""
    def find(d, kind, indexed=None):
        for doc in d:
            if doc["kind"] == kind and (indexed is None or (doc["spec"].get("completionMode") == "Indexed") == indexed):
                return doc

    def container(d, indexed):
        return find(d, "Job", indexed)["spec"]["template"]["spec"]["containers"][0]

    def set_env(c, name, value):
        c["env"] = [e for e in c.get("env", []) if e["name"] != name] + [{"name": name, "value": value}]

    edits = {
        "workers connect to another port": lambda d: set_env(container(d, True), "CONVOY_COORDINATOR", "convoy-coordinator:5556"),
        "workers connect to another name": lambda d: set_env(container(d, True), "CONVOY_COORDINATOR", "convoy-coord:5555"),
        "the coordinator binds another port": lambda d: set_env(container(d, False), "CONVOY_PORT", "6000"),
        "a Secret key renamed": lambda d: find(d, "Secret")["stringData"].update({"worker-key": find(d, "Secret")["stringData"].pop("worker.key")}),
        "a key flag pointing elsewhere": lambda d: container(d, True)["args"].__setitem__(5, "/etc/convoy/worker.key"),
        "no memory request": lambda d: container(d, False)["resources"]["requests"].pop("memory"),
        "a misspelt flag": lambda d: container(d, True)["args"].append("--slot"),
        "worker count differs": lambda d: find(d, "Job", True)["spec"].update(completions=5, parallelism=5),
        "the Service selects nothing of the coordinator": lambda d: find(d, "Service")["spec"]["selector"].update(
            {"app.kubernetes.io/component": "worker"}),
    }
    for what, edit in edits.items():
        broken = copy.deepcopy(docs)
        edit(broken)
        yield what, broken


def main():
    directory, convoy = sys.argv[1], sys.argv[2]
    docs = load(directory)
    flags = {role: flag_names(convoy, role) for role in KEY_FLAGS}
    problems = check(docs, flags)
    for problem in problems:
        print(f"FAIL: {problem}")
    if problems:
        return 1
    print(f"k8s: {len(docs)} manifests wired: workers -> Service -> the coordinator's port, keys, counts, requests, flags")
    missed = 0
    for what, broken in breakages(docs):
        found = check(broken, flags)
        if found:
            print(f"  caught {what}: {found[0]}")
        else:
            print(f"FAIL: the check missed: {what}")
            missed += 1
    if missed:
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
