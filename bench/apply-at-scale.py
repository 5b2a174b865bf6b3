#!/usr/bin/env python3
"""apply and verify of a live system at scale, against the servers' own formation limit.

The system: R regions of N JetStream nodes joined by gateways, one leafnode per region bound to
a tenant account, and 5 R3 streams per region placed there (default 6x10: 66 servers, 30
streams). Each run:

1. `apply --timings -o json` from nothing: apply-to-verified wall time and its phases;
2. `verify` alone on the running system (wall time);
3. `destroy`, then the formation limit: the very configs apply rendered started at once, polled
   until every server's /healthz is OK and every link is up (each node's routes to the other
   nodes of its region, its outbound gateway to every other region, every leafnode connected).

Prints one line per run, the median phases of apply, and the ratios to the limit.

Usage: bench/apply-at-scale.py [--runs 3] [--size 6x10]   (needs the release build)
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

from benchlib import BIN, NATS, ROOT, formation_time, free_base, write_section, DOCS, README

ENV = dict(os.environ, APP_PASS="bench-secret", NATS_SERVER_BIN=NATS)


def topology(regions, nodes):
    out = [f"name: live-{regions}x{nodes}", "defaults:", "  jetstream: { max_file_store: 2GB, max_memory_store: 256MB }", "regions:"]
    for r in range(regions):
        out += [f"  r{r}:", f"    nodes: {nodes}", "    jetstream: true"]
    out.append("leafnodes:")
    for r in range(regions):
        out += [f"  l{r}:", f"    hub: r{r}", "    account: APP"]
    out += ["accounts:", "  SYS:", "    system: true", "  APP:", "    jetstream: true", "    users:", "      - user: app", "        password: ${APP_PASS}"]
    out.append("streams:")
    for r in range(regions):
        for s in range(5):
            out += [f"  S{r}x{s}:", f'    subjects: ["r{r}.s{s}.>"]', "    replicas: 3", f"    placement: {{ region: r{r} }}"]
    return "\n".join(out) + "\n"


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status, json.loads(r.read() or b"{}")
    except Exception:
        return None, None


def formed(server, regions, nodes):
    """Whether `server` (name, monitor URL) is healthy with every link it must have."""
    name, url = server
    status, _ = get(url + "/healthz")
    if status != 200:
        return False
    if name.startswith("l"):
        _, leafz = get(url + "/leafz")
        return bool(leafz and leafz.get("leafnodes", 0) >= 1)
    _, routez = get(url + "/routez")
    peers = {r.get("remote_name") for r in (routez or {}).get("routes", [])}
    if len(peers) < nodes - 1:
        return False
    _, gatewayz = get(url + "/gatewayz")
    return len((gatewayz or {}).get("outbound_gateways", {})) >= regions - 1


def meta_whole(servers, members):
    """Whether the JetStream meta leader sees all `members` current (as verify requires)."""
    monitors = dict(servers)
    _, jsz = get(next(url for name, url in servers if not name.startswith("l")) + "/jsz")
    leader = ((jsz or {}).get("meta_cluster") or {}).get("leader")
    if leader not in monitors:
        return False
    _, jsz = get(monitors[leader] + "/jsz")
    replicas = ((jsz or {}).get("meta_cluster") or {}).get("replicas") or []
    return len(replicas) + 1 == members and all(r.get("current") for r in replicas)


def formation(confs, servers, regions, nodes):
    """(seconds until every /healthz and link is up, seconds until the meta group is whole
    too) from starting the configs at once."""
    pending = list(servers)
    start = time.perf_counter()
    links_up = []

    with ThreadPoolExecutor(16) as pool:

        def all_formed():
            if not links_up:
                done = list(pool.map(lambda s: formed(s, regions, nodes), pending))
                pending[:] = [s for s, ok in zip(pending, done) if not ok]
                if pending:
                    return False
                links_up.append(time.perf_counter() - start)
            time.sleep(0.05)
            return meta_whole(servers, regions * nodes)

        whole = formation_time(confs, ENV, all_formed)
        return links_up[0], whole


def destroy(path, work, check=False):
    subprocess.run([BIN, "destroy", path], cwd=work, env=ENV, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_once(path, regions, nodes):
    with tempfile.TemporaryDirectory(prefix="notif-live-") as work:
        servers = regions * nodes + regions
        base = free_base(servers)
        start = time.perf_counter()
        out = subprocess.run([BIN, "apply", path, "--port-base", str(base), "--timings", "-o", "json"], cwd=work, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        applied = time.perf_counter() - start
        if out.returncode != 0:
            # Whatever it started goes too, before the work directory does.
            destroy(path, work)
            sys.exit(f"apply failed:\n{out.stderr[-3000:]}")
        report = json.loads(out.stdout)
        start = time.perf_counter()
        v = subprocess.run([BIN, "verify", path], cwd=work, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        verified = time.perf_counter() - start
        if v.returncode != 0:
            destroy(path, work)
            sys.exit("verify of the running system failed")
        name = f"live-{regions}x{nodes}"
        keep = os.path.join(work, "confs")
        shutil.copytree(os.path.join(work, ".notif-infra", name, "nats"), keep)
        destroy(path, work, check=True)
        # The data of the first bring-up goes: the limit forms from nothing, as apply did.
        shutil.rmtree(os.path.join(work, ".notif-infra", name, "data"), ignore_errors=True)
        nodes_ = report["verify"]["nodes"]
        monitors = [(n["name"], n["monitor_url"]) for n in nodes_]
        confs = [os.path.join(keep, f"{n['name']}.conf") for n in nodes_]
        limit, meta = formation(confs, monitors, regions, nodes)
        links = len(report["verify"]["links"])
        probes = len(report["verify"]["probes"])
        return applied, verified, limit, meta, report["timings"]["phases"], links, probes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="6x10")
    ap.add_argument("--write-docs", action="store_true", help="write the figures into docs/benchmarks.md")
    args = ap.parse_args()
    regions, nodes = map(int, args.size.split("x"))
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "live.yaml")
        with open(path, "w") as f:
            f.write(topology(regions, nodes))
        rows, phases = [], {}
        for run in range(args.runs):
            applied, verified, limit, meta, ph, links, probes = run_once(path, regions, nodes)
            rows.append((applied, verified, limit, meta))
            for p in ph:
                phases.setdefault(p["name"], []).append(p["ms"] / 1000)
            print(f"run {run + 1}: apply-to-verified {applied:.2f} s, verify {verified:.2f} s, formation limit {limit:.2f} s "
                  f"(meta group whole {meta:.2f} s), ratios {applied / limit:.2f} and {applied / meta:.2f} ({links} links, {probes} probes)", flush=True)
    servers = regions * nodes + regions
    ma, mv, ml, mm = (statistics.median(c) for c in zip(*rows))
    summary = (f"{servers} servers ({args.size} + {regions} leafnodes, {regions * 5} R3 streams; {links} links, {probes} probes), "
               f"medians of {args.runs}: apply-to-verified {ma:.2f} s; formation limit {ml:.2f} s (ratio {ma / ml:.2f}), "
               f"with the JetStream meta group whole {mm:.2f} s (ratio {ma / mm:.2f}); verify alone {mv:.2f} s")
    print("\n" + summary)
    print("apply's phases (median seconds):")
    phase_lines = [f"  {statistics.median(values):7.3f}  {name}" for name, values in phases.items()]
    print("\n".join(phase_lines))
    if args.write_docs:
        runs = "\n".join(
            f"| {i + 1} | {a:.2f} | {v:.2f} | {l:.2f} | {m:.2f} | {a / l:.2f} | {a / m:.2f} |" for i, (a, v, l, m) in enumerate(rows)
        )
        write_section(
            README,
            f"live-{args.size}",
            f"| {servers} servers live ({args.size} + {regions} leafnodes, {regions * 5} R3 streams) | apply-to-verified {ma:.2f} s | "
            f"formation limit {ml:.2f} s ({ma / ml:.2f}x); meta group whole {mm:.2f} s ({ma / mm:.2f}x) | verify alone {mv:.2f} s |",
        )
        write_section(
            DOCS,
            f"live-{args.size}",
            f"{summary}.\n\n"
            "| run | apply-to-verified s | verify alone s | formation limit s | meta group whole s | ratio to the limit | ratio to meta whole |\n"
            "|---|---|---|---|---|---|---|\n"
            f"{runs}\n\napply's phases (median seconds):\n\n```\n" + "\n".join(phase_lines) + "\n```",
        )


if __name__ == "__main__":
    main()
