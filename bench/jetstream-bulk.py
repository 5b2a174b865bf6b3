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


TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """CPU seconds (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def servers_cpu(state_root):
    """CPU seconds the cluster's nats-server processes have used so far."""
    run_dir = os.path.join(state_root, "bulk", "run")
    return sum(cpu_of(int(open(os.path.join(run_dir, p)).read())) for p in os.listdir(run_dir))


def apply_with_cpu(args, work, state_root):
    """(wall s, peak MB, notif-infra's CPU s, the servers' CPU s) of one apply."""
    before = servers_cpu(state_root)
    p = subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S"] + args, cwd=work, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{p.stderr[-3000:]}")
    wall, rss_kb, user, system = p.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 1024, float(user) + float(system), servers_cpu(state_root) - before


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
    apply, apply_mem, noop, tool_cpu, server_cpu, raw_server_cpu = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as work:
        state_root = a.state_dir or os.path.join(work, ".notif-infra")
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
                    before = servers_cpu(state_root)
                    out = subprocess.run([BASELINE, f"nats://127.0.0.1:{base}", str(a.count), str(n)], env=ENV, capture_output=True, text=True)
                    used = servers_cpu(state_root) - before
                    destroy()
                    if out.returncode != 0:
                        # The servers refused or timed out this many requests at once: that
                        # point of the sweep has no figure for this run.
                        print(f"run {r + 1}: raw client with {n} in flight failed: {out.stderr.strip()[-300:]}", flush=True)
                        continue
                    raw[n].append(float(out.stdout))
                    raw_server_cpu.append((n, used))
                with open(path, "w") as f:
                    f.write(topology(0))
                run(cmd(), work)
                with open(path, "w") as f:
                    f.write(topology(a.count))
                t, m, tool, servers = apply_with_cpu(cmd(), work, state_root)
                apply.append(t)
                apply_mem.append(m)
                tool_cpu.append(tool)
                server_cpu.append(servers)
                noop.append(run(cmd(), work)[0])
                destroy()
                said = ", ".join(f"{n} in flight {raw[n][-1]:.2f} s" for n in sweep)
                print(
                    f"run {r + 1}: raw client {said}; apply {apply[-1]:.2f} s ({apply_mem[-1]:.0f} MB, notif-infra CPU {tool_cpu[-1]:.2f} s, "
                    f"servers' CPU {server_cpu[-1]:.2f} s); no-op re-apply {noop[-1]:.2f} s",
                    flush=True,
                )
        finally:
            destroy()
    medians = {n: statistics.median(v) for n, v in raw.items() if v}
    best_n = min(medians, key=medians.get)
    best, ap, n = medians[best_n], statistics.median(apply), statistics.median(noop)
    where = a.state_dir or "a temporary directory"
    print(f"\n{a.count} R1 streams + {a.count} consumers on a 3-node cluster, data in {where} (medians of {a.runs}):")
    print("  raw client: " + ", ".join(f"{k} in flight {v:.2f} s" for k, v in medians.items()) + f"; best {best_n} in flight")
    print(f"  notif-infra apply: {ap:.2f} s, peak {statistics.median(apply_mem):.0f} MB = {ap / best:.2f}x the best raw client (target <= 1.2x) {'OK' if ap / best <= 1.2 else 'MISSED'}")
    if 1 in medians:
        print(f"  sequential (1 in flight) / apply: {medians[1] / ap:.1f}x")
    # Where apply's time goes: its own CPU, the servers' CPU (2 cores at most), and the rest
    # waiting (on the disk's syncs, when the data is on disk).
    st, sv = statistics.median(tool_cpu), statistics.median(server_cpu)
    raw_best = statistics.median(c for k, c in raw_server_cpu if k == best_n)
    print(
        f"  where apply's time goes: notif-infra's own CPU {st:.2f} s, the servers' CPU {sv:.2f} s "
        f"(the best raw client's run: {raw_best:.2f} s), {os.cpu_count()} cores: {sv / (ap * os.cpu_count()):.0%} of them busy with the servers"
    )
    print(f"  no-op re-apply: {n:.2f} s = {n / ap:.3f}x of the first apply (target <= 0.1x) {'OK' if n / ap <= 0.1 else 'MISSED'}")


if __name__ == "__main__":
    main()
