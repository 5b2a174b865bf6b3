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
import argparse, os, shutil, statistics, subprocess, sys, tempfile

from benchlib import BIN, NATS, timed
from scale import topology

ENV = dict(os.environ, NATS_SERVER_BIN=NATS, APP_PASS="bench-secret")


def render_once(bin, path, work):
    out = tempfile.mkdtemp(dir=work, prefix="render-")
    try:
        wall, _ = timed([bin, "render", path, "--out", out], work, ENV)
        return wall
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gb", type=int, default=3)
    ap.add_argument("--bin", default=BIN)
    ap.add_argument("--work-dir", default="/tmp")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"no {a.bin}: cargo build --release")
    work = tempfile.mkdtemp(dir=a.work_dir, prefix="writeback-bench-")
    try:
        path = os.path.join(work, "scale.yaml")
        with open(path, "w") as f:
            f.write(topology(100, 10))
        render_once(a.bin, path, work)  # keys generated once, caches warm
        subprocess.run(["sync"], check=True)
        quiet = [render_once(a.bin, path, work) for _ in range(a.runs)]
        loaded = []
        big = os.path.join(work, "unsynced.bin")
        for _ in range(a.runs):
            subprocess.run(["sync"], check=True)
            # GB written and not synced: dirty pages the kernel writes back while render runs.
            subprocess.run(["dd", "if=/dev/zero", f"of={big}", "bs=1M", f"count={a.gb * 1024}"], check=True, stderr=subprocess.DEVNULL)
            loaded.append(render_once(a.bin, path, work))
            os.remove(big)
        q, l = statistics.median(quiet), statistics.median(loaded)
        print(f"render of 1000 servers ({a.bin}):")
        print(f"  quiet:                                   {q:.2f} s  (runs {', '.join(f'{x:.2f}' for x in quiet)})")
        print(f"  beside {a.gb} GB of another process's unsynced writes: {l:.2f} s  (runs {', '.join(f'{x:.2f}' for x in loaded)})")
        print(f"  ratio: {l / q:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
