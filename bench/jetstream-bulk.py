#!/usr/bin/env python3
"""JetStream objects at scale: `notif-infra apply` of N R1 streams with a durable consumer each,
against the physical-limit baseline: the official async-nats client creating the same objects
with as many requests in flight as helps (examples/raw_create.rs, swept over --in-flight, the
best kept; 1 in flight is how scripts do it today), each on a fresh 3-node dev cluster. Then a
no-op re-apply of the same N. apply is timed as a whole process with its peak memory.

Targets (issue 16): apply within 1.2x of the best raw client, on tmpfs and on disk; the no-op
re-apply at most 0.1x the first apply; 10,000 + 10,000 in one apply completing.

`--state-dir` puts the servers' data elsewhere (e.g. /dev/shm) to separate disk from CPU.

Usage: bench/jetstream-bulk.py [--count N] [--runs R] [--state-dir DIR] [--in-flight 1,16,64,256]
       (default 1000 objects of each kind, 3 runs, data in a temporary directory)
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

from benchlib import BIN, NATS, ROOT, free_base, timed

BASELINE = os.path.join(ROOT, "target", "release", "examples", "raw_create")
ENV = dict(os.environ, NATS_SERVER_BIN=NATS)

BASE = """name: bulk
defaults:
  jetstream: { max_file_store: 20GB, max_memory_store: 1GB }
regions:
  main:
    nodes: 3
    jetstream: true
"""


def topology(count):
    streams = "".join(f"  S{i:04}:\n    subjects: [\"bulk.{i}.>\"]\n" for i in range(count))
    consumers = "".join(f"  - durable: C{i:04}\n    stream: S{i:04}\n" for i in range(count))
    return BASE + (f"streams:\n{streams}consumers:\n{consumers}" if count else "")


def run(args, work):
    return timed(args, work, ENV)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--state-dir", help="where the servers keep their data (default: beside the topology)")
    p.add_argument("--in-flight", default="1,16,64,256", help="the raw client's requests in flight, swept")
    a = p.parse_args()
    if a.state_dir:
        ENV["NOTIF_INFRA_STATE_DIR"] = a.state_dir
    sweep = [int(x) for x in a.in_flight.split(",")]
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "notif-infra", "--example", "raw_create"], cwd=ROOT, check=True)
    raw = {n: [] for n in sweep}
    apply, apply_mem, noop = [], [], []
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "bulk.yaml")
        base = free_base(3)
        cmd = lambda *extra: [BIN, "apply", path, "--port-base", str(base), "-o", "json", *extra]
        destroy = lambda: subprocess.run([BIN, "destroy", path], cwd=work, env=ENV, stdout=subprocess.DEVNULL, check=True)
        try:
            for r in range(a.runs):
                # Each measurement on a fresh cluster: JetStream's meta log grows with every
                # create and delete, and would slow whichever side came second.
                for n in sweep:
                    with open(path, "w") as f:
                        f.write(topology(0))
                    run(cmd(), work)
                    out = subprocess.run([BASELINE, f"nats://127.0.0.1:{base}", str(a.count), str(n)], env=ENV, check=True, capture_output=True, text=True)
                    raw[n].append(float(out.stdout))
                    destroy()
                with open(path, "w") as f:
                    f.write(topology(0))
                run(cmd(), work)
                with open(path, "w") as f:
                    f.write(topology(a.count))
                t, m = run(cmd(), work)
                apply.append(t)
                apply_mem.append(m)
                noop.append(run(cmd(), work)[0])
                destroy()
                said = ", ".join(f"{n} in flight {raw[n][-1]:.2f} s" for n in sweep)
                print(f"run {r + 1}: raw client {said}; apply {apply[-1]:.2f} s ({apply_mem[-1]:.0f} MB); no-op re-apply {noop[-1]:.2f} s", flush=True)
        finally:
            destroy()
    medians = {n: statistics.median(v) for n, v in raw.items()}
    best_n = min(medians, key=medians.get)
    best, ap, n = medians[best_n], statistics.median(apply), statistics.median(noop)
    where = a.state_dir or "a temporary directory"
    print(f"\n{a.count} R1 streams + {a.count} consumers on a 3-node cluster, data in {where} (medians of {a.runs}):")
    print("  raw client: " + ", ".join(f"{k} in flight {v:.2f} s" for k, v in medians.items()) + f"; best {best_n} in flight")
    print(f"  notif-infra apply: {ap:.2f} s, peak {statistics.median(apply_mem):.0f} MB = {ap / best:.2f}x the best raw client (target <= 1.2x) {'OK' if ap / best <= 1.2 else 'MISSED'}")
    print(f"  sequential (1 in flight) / apply: {medians.get(1, float('nan')) / ap:.1f}x")
    print(f"  no-op re-apply: {n:.2f} s = {n / ap:.3f}x of the first apply (target <= 0.1x) {'OK' if n / ap <= 0.1 else 'MISSED'}")


if __name__ == "__main__":
    main()
