#!/usr/bin/env python3
"""Render of 1000 servers (100 regions of 10, as bench/scale.py generates them) on the disk,
quiet and right after another process wrote GB of data it has not synced (dd, no fsync), the
median of --runs each: render's durable writes must pay for its own files only, not for the
other process's dirty pages (issue 26: loaded <= 1.3x quiet).

Each run renders a fresh tree under --work-dir (default /tmp: the disk, not tmpfs). The other
process's file is removed after each loaded run.

Usage: bench/render-beside-writeback.py [--runs 3] [--gb 3] [--bin target/release/notif-infra]
       [--work-dir /tmp]   (needs the release build: cargo build --release)
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

from benchlib import BIN, DOCS, NATS, README, timed, write_section
from scale import topology

ENV = dict(os.environ, NATS_SERVER_BIN=NATS, APP_PASS="bench-secret")


def render_once(bin, path, work):
    out = tempfile.mkdtemp(dir=work, prefix="render-")
    try:
        wall, _ = timed([bin, "render", path, "--out", out], work, ENV)
        return wall
    finally:
        shutil.rmtree(out, ignore_errors=True)


def dirty_kib():
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return sum(int(fields[k].split()[0]) for k in ("Dirty", "Writeback"))


def settle():
    """Syncs, then waits (up to 30 s) until the machine has under 16 MB dirty."""
    subprocess.run(["sync"], check=True)
    deadline = time.time() + 30
    while dirty_kib() > 16 * 1024 and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gb", type=int, default=3)
    ap.add_argument("--bin", default=BIN)
    ap.add_argument("--work-dir", default="/tmp")
    ap.add_argument("--write-docs", action="store_true", help="write the figures into docs/benchmarks.md and README.md")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"no {a.bin}: cargo build --release")
    work = tempfile.mkdtemp(dir=a.work_dir, prefix="writeback-bench-")
    try:
        path = os.path.join(work, "scale.yaml")
        with open(path, "w") as f:
            f.write(topology(100, 10))
        render_once(a.bin, path, work)  # caches warm
        quiet, loaded = [], []
        big = os.path.join(work, "unsynced.bin")
        # Quiet and loaded runs take turns, each from a settled disk: the disk's speed drifts
        # over minutes (deleted files are discarded in the background), so far-apart runs
        # would compare two different disks.
        for _ in range(a.runs):
            settle()
            quiet.append(render_once(a.bin, path, work))
            settle()
            # GB written and not synced: dirty pages the kernel writes back while render runs.
            subprocess.run(["dd", "if=/dev/zero", f"of={big}", "bs=1M", f"count={a.gb * 1024}"], check=True, stderr=subprocess.DEVNULL)
            loaded.append(render_once(a.bin, path, work))
            os.remove(big)
        q, l = statistics.median(quiet), statistics.median(loaded)
        print(f"render of 1000 servers ({a.bin}):")
        print(f"  quiet:                                   {q:.2f} s  (runs {', '.join(f'{x:.2f}' for x in quiet)})")
        print(f"  beside {a.gb} GB of another process's unsynced writes: {l:.2f} s  (runs {', '.join(f'{x:.2f}' for x in loaded)})")
        print(f"  ratio: {l / q:.2f}x")
        if a.write_docs:
            runs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
            write_section(
                DOCS,
                "writeback",
                f"Render of 1000 servers into a fresh tree, medians of {a.runs} pairs: quiet {q:.2f} s ({runs(quiet)}); "
                f"beside {a.gb} GB of another process's unsynced writes {l:.2f} s ({runs(loaded)}); ratio {l / q:.2f}x.",
            )
            write_section(README, "writeback", f"| render of 1000 servers beside {a.gb} GB of another process's unsynced writes | {l:.2f} s | quiet {q:.2f} s ({l / q:.2f}x) | |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
