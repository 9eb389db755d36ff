#!/usr/bin/env python3
"""Checks deploy/kubernetes/ and deploy/compose/ without a cluster or a Docker
engine: every file parses as YAML, and the fields the deployment relies on are
there and agree with each other and with the image (socket path, user,
probes, security context, the Secret file the URI is read from, the replica
set the compose file initiates).

    check_deploy.py kubernetes|compose REPO ENV_DIR

Prints one "ok - ..." or "not ok - ..." line per check; exits 1 if any
failed. Writes the sidecar's environment of each file to ENV_DIR/<name>.env
(KEY=VALUE lines) and the files it reads from Secret volumes to
ENV_DIR/<name>.files/, listed in ENV_DIR/<name>.copy ("HOST_PATH CONTAINER_PATH"
lines), so that scripts/image-test can run `siobridged --check-config` inside
the image with exactly that environment and those files.
"""
import os
import sys

import yaml

SOCKET_DIR = "/run/siobridge"
SOCKET = SOCKET_DIR + "/siobridged.sock"
STATE_DIR = "/var/lib/siobridge"
IMAGE_UID = 10001
HEALTH = ["siobridgectl", "health"]

failures = 0


def check(ok, what):
    global failures
    print(("ok" if ok else "not ok") + " - " + what)
    if not ok:
        failures += 1
    return ok


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def mounts(container):
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}


def restrictive(ctx, uid=None):
    ok = (ctx.get("allowPrivilegeEscalation") is False
          and ctx.get("readOnlyRootFilesystem") is True
          and ctx.get("capabilities", {}).get("drop") == ["ALL"]
          and not ctx.get("capabilities", {}).get("add")
          and not ctx.get("privileged", False))
    if uid is not None:
        ok = ok and ctx.get("runAsUser") == uid
    return ok


def probe_is_health(probe):
    command = (probe or {}).get("exec", {}).get("command", [])
    grpc = (probe or {}).get("grpc")
    return command[:2] == HEALTH or grpc is not None


def check_kubernetes(repo, env_dir):
    base = os.path.join(repo, "deploy", "kubernetes")
    docs = {}
    for name in sorted(os.listdir(base)):
        if name.endswith(".yaml"):
            try:
                docs[name] = load_all(os.path.join(base, name))
                check(True, f"kubernetes/{name} parses ({len(docs[name])} documents)")
            except yaml.YAMLError as error:
                check(False, f"kubernetes/{name} parses: {error}")
    objects = [d for ds in docs.values() for d in ds]
    kustomization = docs.get("kustomization.yaml", [{}])[0]
    objects = [d for d in objects if d is not kustomization]
    for d in objects:
        check(all(k in d for k in ("apiVersion", "kind")) and "name" in d.get("metadata", {}),
              f"kubernetes: {d.get('kind')} {d.get('metadata', {}).get('name')} has apiVersion, kind, metadata.name")
    listed = set(kustomization.get("resources", []))
    check(listed == set(docs) - {"kustomization.yaml"},
          f"kustomization.yaml lists every manifest ({sorted(listed)})")

    deployments = [d for d in objects if d.get("kind") == "Deployment"]
    if not check(len(deployments) == 1, "kubernetes: one Deployment"):
        return
    deployment = deployments[0]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    check(spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items(),
          "the Deployment's selector matches its pod labels")
    sidecars = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    if not check(len(sidecars) == 1, "siobridged is a native sidecar (initContainer, restartPolicy: Always)"):
        return
    sidecar = sidecars[0]
    apps = pod.get("containers", [])
    check(len(apps) >= 1, "the pod has an app container")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    socket_volume = mounts(sidecar).get(SOCKET_DIR)
    check(socket_volume is not None and "emptyDir" in volumes.get(socket_volume, {}),
          f"the sidecar's {SOCKET_DIR} is an emptyDir")
    check(all(mounts(a).get(SOCKET_DIR) == socket_volume for a in apps),
          f"every app container mounts the same emptyDir on {SOCKET_DIR}")
    state_volume = mounts(sidecar).get(STATE_DIR)
    check(state_volume is not None and "emptyDir" in volumes.get(state_volume, {}),
          f"the sidecar's {STATE_DIR} is writable (an emptyDir) under a read-only root")
    app_env = {e["name"]: e.get("value") for a in apps for e in a.get("env", [])}
    check(app_env.get("SIOBRIDGE_ADDRESS") in (SOCKET, "unix:" + SOCKET),
          f"the app's adapter is pointed at {SOCKET}")
    check(probe_is_health(sidecar.get("startupProbe")), "the sidecar's startupProbe asks the gRPC health service")
    check(probe_is_health(sidecar.get("readinessProbe")), "the sidecar's readinessProbe asks the gRPC health service")

    pod_ctx = pod.get("securityContext", {})
    check(pod_ctx.get("runAsNonRoot") is True, "the pod runs as non-root")
    check(pod_ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault", "the pod uses the runtime's seccomp profile")
    check(pod_ctx.get("fsGroup") == IMAGE_UID,
          f"fsGroup {IMAGE_UID}: the app shares the socket's group")
    check(restrictive(sidecar.get("securityContext", {}), IMAGE_UID),
          f"the sidecar: uid {IMAGE_UID}, read-only root, no capabilities, no privilege escalation")
    check(all(restrictive(a.get("securityContext", {})) for a in apps),
          "every app container: read-only root, no capabilities, no privilege escalation")

    env = sidecar.get("env", [])
    names = {e["name"] for e in env}
    uri_file = next((str(e.get("value", "")) for e in env if e["name"] == "SIOBRIDGE_MONGODB_URI_FILE"), "")
    check(bool(uri_file) and "SIOBRIDGE_MONGODB_URI" not in names,
          "the URI is read from a file (SIOBRIDGE_MONGODB_URI_FILE), not an environment variable")
    mount_dir, key = os.path.split(uri_file)
    secret_volume = volumes.get(mounts(sidecar).get(mount_dir), {}).get("secret", {})
    secret_mount = [m for m in sidecar.get("volumeMounts", []) if m["mountPath"] == mount_dir]
    check(bool(secret_volume) and all(m.get("readOnly") for m in secret_mount),
          f"{mount_dir} is a Secret volume, mounted read-only")
    check(secret_volume.get("defaultMode", 0o644) & 0o007 == 0, "the Secret's files are not readable by others")
    check(not any(m.get("name") == mounts(sidecar).get(mount_dir) for a in apps for m in a.get("volumeMounts", [])),
          "the app container does not mount the Secret")
    secrets = {d["metadata"]["name"]: d for d in objects if d.get("kind") == "Secret"}
    secret = secrets.get(secret_volume.get("secretName"), {})
    secret_value = {**secret.get("stringData", {})}.get(key)
    check(secret_value is not None, f"the Secret {secret_volume.get('secretName')} has the key {key}")
    services = [d for d in objects if d.get("kind") == "Service"]
    ports = {p.get("name") for a in apps for p in a.get("ports", [])}
    check(all(p.get("targetPort") in ports for s in services for p in s["spec"]["ports"]),
          "every Service port targets a named port of the app")

    values = {e["name"]: str(e["value"]) for e in env if "value" in e}
    write_env(env_dir, "kubernetes", values)
    if secret_value is not None:
        write_files(env_dir, "kubernetes", {uri_file: secret_value})


def check_compose(repo, env_dir):
    path = os.path.join(repo, "deploy", "compose", "compose.yaml")
    try:
        doc = load_all(path)[0]
        check(True, "compose/compose.yaml parses")
    except yaml.YAMLError as error:
        check(False, f"compose/compose.yaml parses: {error}")
        return
    services = doc.get("services", {})
    daemons = {n: s for n, s in services.items()
               if s.get("build", {}).get("dockerfile") == "Dockerfile"}
    check(len(daemons) == 2, f"two siobridged services built from the top-level Dockerfile ({sorted(daemons)})")
    for name, service in daemons.items():
        context = os.path.normpath(os.path.join(os.path.dirname(path), service["build"]["context"]))
        check(os.path.isfile(os.path.join(context, "Dockerfile")), f"{name}: the build context holds the Dockerfile")
    init = [n for n, s in services.items() if "rs.initiate" in str(s.get("command", ""))]
    check(len(init) == 1, "one service initiates the replica set")
    if init:
        command = str(services[init[0]]["command"])
        check("rs0" in command and "isWritablePrimary" in command,
              f"{init[0]} initiates rs0 and waits for a primary")
    for name, service in daemons.items():
        env = service.get("environment", {})
        check("replicaSet=rs0" in env.get("SIOBRIDGE_MONGODB_URI", ""), f"{name} connects to the replica set rs0")
        check(service.get("depends_on", {}).get(init[0] if init else "", {}).get("condition")
              == "service_completed_successfully", f"{name} starts once the replica set is initiated")
    volume_of = {}
    for name, service in daemons.items():
        socket = [v.split(":")[0] for v in service.get("volumes", []) if v.split(":")[1] == SOCKET_DIR]
        volume_of[name] = socket[0] if socket else None
    check(len(set(volume_of.values()) - {None}) == 2, "each siobridged has its own socket volume")
    apps = {n: s for n, s in services.items() if s.get("environment", {}).get("SIOBRIDGE_ADDRESS")}
    check(len(apps) == 2, f"two chat servers ({sorted(apps)})")
    for name, app in apps.items():
        socket = [v.split(":")[0] for v in app.get("volumes", []) if v.split(":")[1] == SOCKET_DIR]
        daemon = [d for d, v in volume_of.items() if socket and v == socket[0]]
        check(len(daemon) == 1, f"{name} shares the socket volume of exactly one siobridged ({daemon})")
        check(app["environment"]["SIOBRIDGE_ADDRESS"] in (SOCKET, "unix:" + SOCKET), f"{name} points its adapter at {SOCKET}")
        check(bool(daemon) and app.get("depends_on", {}).get(daemon[0], {}).get("condition") == "service_healthy",
              f"{name} waits for its daemon's health check")
        check(str(IMAGE_UID) in [str(g) for g in app.get("group_add", [])], f"{name} joins the socket's group {IMAGE_UID}")
        dockerfile = os.path.join(repo, app["build"]["dockerfile"])
        check(os.path.isfile(dockerfile), f"{name}: {app['build']['dockerfile']} exists")
    first = next(iter(daemons.values()), {})
    write_env(env_dir, "compose", {k: str(v) for k, v in first.get("environment", {}).items()})


def write_env(env_dir, name, values):
    with open(os.path.join(env_dir, name + ".env"), "w", encoding="utf-8") as f:
        for key, value in sorted(values.items()):
            f.write(f"{key}={value}\n")


def write_files(env_dir, name, files):
    directory = os.path.join(env_dir, name + ".files")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(env_dir, name + ".copy"), "w", encoding="utf-8") as listing:
        for index, (container_path, content) in enumerate(sorted(files.items())):
            host_path = os.path.join(directory, str(index))
            with open(host_path, "w", encoding="utf-8") as f:
                f.write(content)
            listing.write(f"{host_path} {container_path}\n")


def main():
    checks = {"kubernetes": check_kubernetes, "compose": check_compose}
    if len(sys.argv) != 4 or sys.argv[1] not in checks:
        print("usage: check_deploy.py kubernetes|compose REPO ENV_DIR", file=sys.stderr)
        return 2
    repo, env_dir = sys.argv[2], sys.argv[3]
    os.makedirs(env_dir, exist_ok=True)
    checks[sys.argv[1]](repo, env_dir)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
