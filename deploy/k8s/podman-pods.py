#!/usr/bin/env python3
"""podman-pods.py - run deploy/k8s's manifests with `podman play kube` on one
machine without a cluster.

podman play kube (4.3) runs Pods, Deployments and PersistentVolumeClaims, but
not StatefulSets or DaemonSets, and has no cluster network or Services. This
turns each workload into the Pod its template describes, unchanged except
for what a single host without a cluster needs:

  - a StatefulSet becomes its pod NAME-0, its volumeClaimTemplates the claims
    TEMPLATE-NAME-0 (as Kubernetes names them); a DaemonSet or Deployment its
    pod NAME (one replica: one node);
  - pods share the host's network (their ports are the host's; no CNI, no
    firewall rules) and reach a Service NAME:PORT at 127.0.0.1:PORT (in
    arguments and environment values; podman ignores hostAliases on the
    host's network); --port OLD=NEW moves a port off ports the host uses;
  - --host-path OLD=NEW moves a hostPath (the LAS socket) to a directory of
    the caller; ConfigMap values are resolved into the environment
    (--set NAME/KEY=VALUE overrides one), Services are dropped;
  - --pods-only leaves the claims out, for pods that come back to claims
    that outlived them (podman refuses to create a volume twice).

  podman-pods.py [--port 8081=18081] [--host-path /run/scone=/tmp/x] [--set scone-cas-pin/fingerprint=HEX] \\
      FILE.yaml... > pods.yaml
"""
import argparse
import copy
import sys

import yaml


def pairs(values, sep="="):
    out = {}
    for v in values or []:
        k, _, val = v.partition(sep)
        out[k] = val
    return out


SERVICES = set()


def move_ports(text, ports):
    for old, new in ports.items():
        text = text.replace(":" + old, ":" + new)
    for name in SERVICES:
        if text.startswith(name + ":"):
            text = "127.0.0.1" + text[len(name):]
    return text


def fix_container(c, ports, configmaps):
    c["args"] = [move_ports(str(a), ports) for a in c.get("args", [])]
    env = []
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            e = {"name": e["name"], "value": configmaps[ref["name"]][ref["key"]]}
        elif "value" in e:
            e = dict(e, value=move_ports(str(e["value"]), ports))
        env.append(e)
    if env:
        c["env"] = env
    c.pop("readinessProbe", None)  # a tcpSocket probe has no meaning for podman 4.3
    c.pop("ports", None)  # on the host's network a container's ports are the host's


def pod(name, template, services, ports, host_paths, configmaps, claims=None):
    spec = copy.deepcopy(template["spec"])
    spec["hostNetwork"] = True
    for c in spec.get("containers", []):
        fix_container(c, ports, configmaps)
    for v in spec.get("volumes", []):
        hp = v.get("hostPath")
        if hp and hp["path"] in host_paths:
            hp["path"] = host_paths[hp["path"]]
    for claim, volume in (claims or {}).items():
        spec.setdefault("volumes", []).append({"name": volume, "persistentVolumeClaim": {"claimName": claim}})
    meta = {"name": name, "labels": template.get("metadata", {}).get("labels", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", action="append")
    ap.add_argument("--host-path", action="append")
    ap.add_argument("--set", action="append")
    ap.add_argument("--pods-only", action="store_true")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    ports, host_paths = pairs(a.port), pairs(a.host_path)
    docs = [d for f in a.files for d in yaml.safe_load_all(open(f)) if d]
    configmaps = {d["metadata"]["name"]: dict(d.get("data", {})) for d in docs if d["kind"] == "ConfigMap"}
    for k, v in pairs(a.set).items():
        cm, _, key = k.partition("/")
        configmaps.setdefault(cm, {})[key] = v
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    SERVICES.update(services | {"scone-cas"})  # cas.yaml's, when converted alone
    out = []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind == "PersistentVolumeClaim":
            out.append(d)
        elif kind == "StatefulSet":
            claims = {}
            for t in d["spec"].get("volumeClaimTemplates", []):
                claim = "%s-%s-0" % (t["metadata"]["name"], name)
                claims[claim] = t["metadata"]["name"]
                out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": claim}, "spec": t["spec"]})
            out.append(pod(name + "-0", d["spec"]["template"], services, ports, host_paths, configmaps, claims))
        elif kind in ("DaemonSet", "Deployment"):
            out.append(pod(name, d["spec"]["template"], services, ports, host_paths, configmaps))
        elif kind not in ("Service", "ConfigMap"):
            sys.exit("podman-pods.py: %s %s: no single-host form" % (kind, name))
    if a.pods_only:
        out = [d for d in out if d["kind"] == "Pod"]
    yaml.safe_dump_all(out, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
