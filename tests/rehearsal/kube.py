#!/usr/bin/env python3
"""tally - kube.py: the chart's rendered manifests made playable by
podman 4.3's "kube play", with the fewest changes (docs/operations.md,
"The rehearsal: the chart's pods without a cluster").

    kube.py SECRETS RENDERED job OUT        the migration Job's pod
    kube.py SECRETS RENDERED pod NAME OUT   one pod of the Deployment, as
                                            a Deployment of one replica
                                            named NAME, with the ConfigMap
                                            it reads

SECRETS is a directory of NAME.json files, the data of each Secret (a
map of base64 values, as "kubectl create secret -o json" gives it).

The changes, each because podman 4.3 does not do what Kubernetes does:
  1. named probe ports (port: http) become the container port's number;
  2. every emptyDir gets a name of its own per pod (NAME-VOLUME): podman
     turns an emptyDir into a named volume shared by every pod that uses
     the same name;
  3. each pod is played from a Deployment of its own (replicas: 1), so
     that the test can start, stop and replace one pod at a time as the
     Deployment controller would;
  4. the Job becomes a bare Pod (restartPolicy Never): kube play does not
     run Jobs;
  5. a Secret volume becomes a read-only hostPath directory holding the
     Secret's items (SECRETS/NAME/PATH, made from SECRETS/NAME.json):
     podman 4.3 crashes on secret volumes (nil pointer in
     VolumeFromSecret); secretKeyRef environment stays as it is;
  6. containerPorts are left out (after change 1 has used them): podman
     4.3 publishes every containerPort on the host's port of the same
     number, so the second pod cannot start; every pod is reached at its
     own address instead, as in a cluster;
  7. kinds kube play cannot run are left out (Service, ServiceAccount,
     PodDisruptionBudget, NetworkPolicy, the helm test Pod); the Secrets
     come from podman secrets made the way docs/operations.md tells operators.
Nothing else changes: images, commands, environment, security contexts,
probes' paths and timings, lifecycle hooks and resources are the chart's.
"""

import base64
import json
import os
import sys

import yaml


def named_ports(container):
    """The container's port names and numbers."""
    return {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}


def number_probe_ports(spec):
    """Changes 1 and 6: probes name no port; no containerPorts."""
    for c in spec["containers"]:
        ports = named_ports(c)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = c.get(probe, {}).get("httpGet")
            if get and isinstance(get.get("port"), str):
                get["port"] = ports[get["port"]]
        c.pop("ports", None)


def own_empty_dirs(spec, prefix):
    """Change 2: every emptyDir named for its pod."""
    renamed = {}
    for v in spec.get("volumes", []):
        if "emptyDir" in v:
            renamed[v["name"]] = f"{prefix}-{v['name']}"
            v["name"] = renamed[v["name"]]
    for c in spec["containers"]:
        for m in c.get("volumeMounts", []):
            m["name"] = renamed.get(m["name"], m["name"])


def secret_dirs(spec, secrets):
    """Change 5: a Secret volume as a directory of its items."""
    for v in spec.get("volumes", []):
        src = v.pop("secret", None)
        if src is None:
            continue
        with open(os.path.join(secrets, src["secretName"] + ".json"), encoding="ascii") as f:
            data = json.load(f)
        where = os.path.join(secrets, src["secretName"])
        os.makedirs(where, mode=0o755, exist_ok=True)
        items = src.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            path = os.path.join(where, item["path"])
            with open(path, "wb") as f:
                f.write(base64.b64decode(data[item["key"]]))
            os.chmod(path, 0o444)
        v["hostPath"] = {"path": where, "type": "Directory"}


def of_kind(docs, kind):
    return [d for d in docs if d and d.get("kind") == kind]


def the_pod(docs, name, secrets):
    """Changes 1, 2, 3 and 5: one Deployment of one replica, named NAME."""
    (dep,) = of_kind(docs, "Deployment")
    dep["metadata"]["name"] = name
    dep["spec"]["replicas"] = 1
    spec = dep["spec"]["template"]["spec"]
    number_probe_ports(spec)
    own_empty_dirs(spec, name)
    secret_dirs(spec, secrets)
    return of_kind(docs, "ConfigMap") + [dep]


def the_job_pod(docs, secrets):
    """Changes 2, 4 and 5: the Job's pod template as a Pod."""
    (job,) = of_kind(docs, "Job")
    template = job["spec"]["template"]
    name = job["metadata"]["name"]
    spec = template["spec"]
    own_empty_dirs(spec, name)
    secret_dirs(spec, secrets)
    meta = {"name": name, "labels": template["metadata"].get("labels", {})}
    return [{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}]


def main(argv):
    if len(argv) < 5 or argv[3] not in ("job", "pod") or len(argv) != (5 if argv[3] == "job" else 6):
        sys.exit(__doc__.split("\n\n")[1])
    with open(argv[2], encoding="utf-8") as f:
        docs = list(yaml.safe_load_all(f))
    if argv[3] == "job":
        out = the_job_pod(docs, argv[1])
    else:
        out = the_pod(docs, argv[4], argv[1])
    with open(argv[-1], "w", encoding="utf-8") as f:
        yaml.safe_dump_all(out, f, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
