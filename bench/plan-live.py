#!/usr/bin/env python3
"""`plan` against running deployments on the local target: the seed topologies with three or
more regions, and a generated 100-server super-cluster (10 regions of 10 nodes, no JetStream, so
each server stays small). Each is applied once, then `plan` (which reads every server's
monitoring endpoint, at most 16 nats-server config checks at a time, and the live JetStream
objects) is timed as a whole process: wall seconds and peak memory, median of --runs. Prints
the table and destroys what it applied.

Usage: bench/plan-live.py [--runs 3] [TOPOLOGY ...]   (default: rsfga, covenant, the 100-server one)
"""
import argparse, os, statistics, subprocess, sys, tempfile

from benchlib import BIN, NATS, ROOT, free_base, timed

ENV = dict(
    os.environ,
    NATS_SERVER_BIN=NATS,
    APP_PASS="x", ADMIN_PASS="x", WRITER_PASS="x", READER_PASS="x", EDGE_SYNC_TOKYO_PASS="x", EDGE_SYNC_LONDON_PASS="x", EDGE_SYNC_NYC_PASS="x", CONTROL_PASS="x", API_PASSWORD="x",
    MOBILE_PASSWORD="x", ANALYTICS_PASSWORD="x", CACHE_INVALIDATOR_PASSWORD="x", NOTIFICATIONS_PASSWORD="x", AUDIT_LOGGER_PASSWORD="x", ASSETS_PASSWORD="x", ACME_PASS="x", PARTNER_PASS="x",
)


def hundred():
    regions = "".join(f"  r{r}:\n    nodes: 10\n" for r in range(10))
    return "name: hundred\ndefaults:\n  gateway_seeds: 3\nregions:\n" + regions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("topologies", nargs="*")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        paths = a.topologies or [os.path.join(ROOT, "topologies", f"{n}.yaml") for n in ("rsfga", "covenant")] + ["hundred"]
        for path in paths:
            if path == "hundred":
                path = os.path.join(work, "hundred.yaml")
                with open(path, "w") as f:
                    f.write(hundred())
            base = free_base(110)
            applied = subprocess.run([BIN, "apply", path, "--port-base", str(base), "--timeout", "120"], cwd=work, env=ENV, capture_output=True, text=True)
            try:
                if applied.returncode != 0:
                    sys.exit(f"apply {path} failed:\n{applied.stderr[-3000:]}")
                runs = [timed([BIN, "plan", path], work, ENV, accept=(0, 2)) for _ in range(a.runs)]
                rows.append((os.path.basename(path), statistics.median(t for t, _ in runs), statistics.median(m for _, m in runs)))
                print(f"{rows[-1][0]}: plan {rows[-1][1]:.2f} s, {rows[-1][2]:.0f} MB", flush=True)
            finally:
                subprocess.run([BIN, "destroy", path], cwd=work, env=ENV, capture_output=True)
    print("\n| topology | plan against it, running | peak memory |\n|---|---|---|")
    for name, t, m in rows:
        print(f"| {name} | {t:.2f} s | {m:.0f} MB |")


if __name__ == "__main__":
    main()
