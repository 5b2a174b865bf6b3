#!/usr/bin/env python3
"""Backup and restore throughput on the dev topology: EVENTS (R3, file storage) filled with N
messages of random (incompressible) payload, then `backup`, `destroy`, `apply`, `restore`, each a
whole release-build process. Prints the stream's size, the snapshot's size, and each direction's
time and MB/s (10^6 bytes of stream data per second, and of snapshot file per second).

Usage: bench/backup.py [--messages N] [--size BYTES] [--state-dir DIR]
       (default 200,000 messages of 1,000 bytes, data in a temporary directory)
"""
import argparse, asyncio, json, os, subprocess, sys, tempfile, time

from benchlib import BIN, NATS, ROOT, free_base

sys.path.insert(0, os.path.join(ROOT, ".tools", "python"))
import nats  # noqa: E402  (nats-py, installed by scripts/install-test-tools.sh)

ENV = dict(os.environ, NATS_SERVER_BIN=NATS)
DEV = os.path.join(ROOT, "topologies", "dev.yaml")


async def fill(port, messages, size):
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    batch = 1000
    for start in range(0, messages, batch):
        await asyncio.gather(*(js.publish(f"events.{i % 16}", os.urandom(size)) for i in range(start, min(start + batch, messages))))
    info = await js.stream_info("EVENTS")
    await nc.close()
    return info.state.messages, info.state.bytes


def notif(verb, work, *extra):
    started = time.monotonic()
    p = subprocess.run([BIN, verb, DEV, *extra], cwd=work, env=ENV, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{verb} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return time.monotonic() - started, p.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--state-dir", help="where the servers keep their data (default: a temporary directory)")
    a = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "notif-infra"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as work:
        if a.state_dir:
            ENV["NOTIF_INFRA_STATE_DIR"] = a.state_dir
        base = free_base(3)
        try:
            notif("apply", work, "--port-base", str(base))
            messages, stream_bytes = asyncio.run(fill(base, a.messages, a.size))
            to = os.path.join(work, "backup")
            backup_s, out = notif("backup", work, "--to", to, "--stream", "EVENTS", "-o", "json")
            snapshot_bytes = json.loads(out)["bytes"]
            notif("destroy", work)
            notif("apply", work, "--port-base", str(base))
            restore_s, out = notif("restore", work, "--from", to, "--stream", "EVENTS", "-o", "json")
            restored = json.loads(out)["streams"][0]["messages"]
        finally:
            subprocess.run([BIN, "destroy", DEV], cwd=work, env=ENV, capture_output=True)
    if restored != messages:
        sys.exit(f"restored {restored} messages of {messages}")
    mb = lambda n: n / 1e6
    print(f"| stream | messages | stream data | snapshot | backup | restore |")
    print(f"|---|---|---|---|---|---|")
    print(
        f"| EVENTS (R3, file) | {messages:,} x {a.size} B | {mb(stream_bytes):.0f} MB | {mb(snapshot_bytes):.0f} MB "
        f"| {backup_s:.2f} s: {mb(stream_bytes) / backup_s:.0f} MB/s of data, {mb(snapshot_bytes) / backup_s:.0f} MB/s of snapshot "
        f"| {restore_s:.2f} s: {mb(stream_bytes) / restore_s:.0f} MB/s of data, {mb(snapshot_bytes) / restore_s:.0f} MB/s of snapshot |"
    )


if __name__ == "__main__":
    main()
