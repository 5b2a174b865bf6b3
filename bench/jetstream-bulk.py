#!/usr/bin/env python3
"""JetStream objects at scale: `notif-infra apply` of N R1 streams with a durable consumer each,
against a sequential client that creates the same objects one awaited request at a time
(examples/sequential_create.rs, the official async-nats client), on the same running 3-node
dev cluster. Then a no-op re-apply of the same N.

Targets: apply at least 5x faster than the sequential client; the no-op re-apply at most 0.1x
the first apply.

Both sides do the same 2000 requests, so the servers' work bounds both: on a 2-core machine the
file store's disk writes and the meta group's proposals, not the client, set the pace. `--state-dir`
puts the servers' data elsewhere (e.g. /dev/shm) to separate disk from CPU.

Usage: bench/jetstream-bulk.py [--count N] [--runs R] [--state-dir DIR]
       (default 1000 objects of each kind, 3 runs, data in a temporary directory)
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

from benchlib import BIN, NATS, ROOT, free_base

BASELINE = os.path.join(ROOT, "target", "release", "examples", "sequential_create")
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
    start = time.perf_counter()
    done = subprocess.run(args, cwd=work, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")
    return elapsed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--state-dir", help="where the servers keep their data (default: beside the topology)")
    a = p.parse_args()
    if a.state_dir:
        ENV["NOTIF_INFRA_STATE_DIR"] = a.state_dir
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "notif-infra", "--example", "sequential_create"], cwd=ROOT, check=True)
    seq, apply, noop = [], [], []
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "bulk.yaml")
        base = free_base(3)
        cmd = lambda *extra: [BIN, "apply", path, "--port-base", str(base), "-o", "json", *extra]
        destroy = lambda: subprocess.run([BIN, "destroy", path], cwd=work, env=ENV, stdout=subprocess.DEVNULL, check=True)
        try:
            for r in range(a.runs):
                # Each measurement on a fresh cluster: JetStream's meta log grows with every
                # create and delete, and would slow whichever side came second.
                with open(path, "w") as f:
                    f.write(topology(0))
                run(cmd(), work)
                seq.append(float(subprocess.run([BASELINE, f"nats://127.0.0.1:{base}", str(a.count)], env=ENV, check=True, capture_output=True, text=True).stdout))
                destroy()
                run(cmd(), work)
                with open(path, "w") as f:
                    f.write(topology(a.count))
                apply.append(run(cmd(), work))
                noop.append(run(cmd(), work))
                destroy()
                print(f"run {r + 1}: sequential client {seq[-1]:.2f} s, apply {apply[-1]:.2f} s, no-op re-apply {noop[-1]:.2f} s", flush=True)
        finally:
            destroy()
    s, ap, n = statistics.median(seq), statistics.median(apply), statistics.median(noop)
    where = a.state_dir or "a temporary directory"
    print(f"\n{a.count} R1 streams + {a.count} consumers on a 3-node cluster, data in {where} (medians of {a.runs}):")
    print(f"  sequential client: {s:.2f} s   notif-infra apply: {ap:.2f} s   speed-up {s / ap:.1f}x (target >= 5x) {'OK' if s / ap >= 5 else 'MISSED'}")
    print(f"  no-op re-apply: {n:.2f} s = {n / ap:.3f}x of the first apply (target <= 0.1x) {'OK' if n / ap <= 0.1 else 'MISSED'}")


if __name__ == "__main__":
    main()
