#!/usr/bin/env python3
"""Apply-to-verified wall time of `notif-infra apply` against a bare baseline.

The baseline starts nats-server directly on the very configs apply rendered and polls every
server's /healthz as tightly as it can: the fastest a cluster can be up on this machine.
apply must also render, check every config with `nats-server -t`, then verify routes,
gateways, leafnodes, the JetStream meta group and send its message probes.

Usage: bench/apply-vs-bare.py [--runs N] [TOPOLOGY ...]   (default: dev supercluster)
Prints one line per run and a summary with medians and the ratio.
"""
import argparse, os, shutil, statistics, subprocess, tempfile, time, urllib.request

from benchlib import BIN, NATS, ROOT, formation_time, free_base

ENV = dict(os.environ, APP_PASS="bench", NATS_SERVER_BIN=NATS)
TARGETS = {"dev": 1.3, "supercluster": 1.5}


def healthy(url):
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def timed_apply(topology, work, base):
    start = time.perf_counter()
    subprocess.run([BIN, "apply", topology, "--port-base", str(base), "-o", "json"], cwd=work, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def timed_bare(confs, monitors):
    pending = set(monitors)

    def formed():
        pending.difference_update({m for m in pending if healthy(m)})
        return not pending

    return formation_time(confs, ENV, formed)


def bench(name, runs):
    topology = os.path.join(ROOT, "topologies", name + ".yaml")
    applied, bare = [], []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="notif-bench-") as work:
            state = os.path.join(work, ".notif-infra")
            topo_name = name
            base = free_base(16)
            a = timed_apply(topology, work, base)
            nats_dir = os.path.join(state, topo_name, "nats")
            keep = os.path.join(work, "confs")
            shutil.copytree(nats_dir, keep)
            servers = len(os.listdir(keep))
            subprocess.run([BIN, "destroy", topology], cwd=work, env=ENV, check=True, stdout=subprocess.DEVNULL)
            confs = sorted(os.path.join(keep, c) for c in os.listdir(keep))
            monitors = [f"http://127.0.0.1:{base + 5 * slot + 4}" for slot in range(servers)]
            b = timed_bare(confs, monitors)
        applied.append(a)
        bare.append(b)
        print(f"{name} run {run + 1}: apply-to-verified {a:.3f} s, bare start-to-healthy {b:.3f} s, ratio {a / b:.2f}")
    ma, mb = statistics.median(applied), statistics.median(bare)
    target = TARGETS.get(name)
    verdict = "" if target is None else (f"target {target}x: " + ("met" if ma / mb <= target else "MISSED"))
    print(f"{name}: median apply {ma:.3f} s, median bare {mb:.3f} s, ratio {ma / mb:.2f} ({servers} servers) {verdict}")
    return ma / mb, target


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("topologies", nargs="*", default=["dev", "supercluster"])
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    for t in args.topologies:
        bench(t, args.runs)


if __name__ == "__main__":
    main()
