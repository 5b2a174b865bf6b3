#!/usr/bin/env python3
"""validate, render and plan at scale, on generated topologies: R regions of N JetStream nodes,
gateways between all regions, 2 leafnodes per region, one tenant account per 2.5 regions with a
user and a leafnode binding, and 20 R3 streams with a durable consumer each per region, placed
in that region. `plan` runs against the local target with nothing running (state in a temporary
directory). Each command is timed as a whole process by /usr/bin/time: wall seconds and peak
resident memory, the median of --runs.

Budgets (issue 16): 1000 servers (100 regions, 200 leafnodes, 40 accounts, 2000 streams, 2000
consumers): each command under 1 s and 150 MB; 5000 servers (250 regions): under 5 s and
500 MB; doubling the servers at most 2.2x the time and the memory.

Writes bench/results/scale.md (the table) and bench/results/scale.svg (time and peak memory
against servers, log-log, with a linear reference line).

Files are written under --work-dir (default /dev/shm): this VM's root ext4 has no journal, and
there ext4 skips inodes freed in the last seconds when it allocates one, which after a large tree
was deleted (the previous size's) costs about 1 ms per new file; that would be measured instead
of notif-infra. `--work-dir /tmp` measures the disk as it is.

Usage: bench/scale.py [--runs 3] [--sizes 25x10,50x10,100x10,200x10,250x20] [--work-dir DIR]
       (REGIONSxNODES; needs the release build: cargo build --release)
"""
import argparse, math, os, statistics, sys, tempfile

from benchlib import BIN, DOCS, NATS, README, ROOT, timed, write_section

ENV = dict(os.environ, NATS_SERVER_BIN=NATS, APP_PASS="bench-secret")
COMMANDS = ["validate", "render", "plan"]


def topology(regions, nodes):
    accounts = max(1, round(regions / 2.5))
    out = [f"name: scale-{regions}x{nodes}", "defaults:", "  jetstream: { max_file_store: 10GB, max_memory_store: 1GB }", "regions:"]
    for r in range(regions):
        out += [f"  r{r}:", f"    nodes: {nodes}", "    jetstream: true"]
    out.append("leafnodes:")
    for r in range(regions):
        for k in range(2):
            out += [f"  l{r}-{k}:", f"    hub: r{r}", f"    account: A{r % accounts}"]
    out.append("accounts:")
    out += ["  SYS:", "    system: true"]
    for a in range(accounts):
        out += [f"  A{a}:", "    jetstream: true", "    users:", f"      - user: u{a}", "        password: ${APP_PASS}"]
    out.append("streams:")
    for r in range(regions):
        for s in range(20):
            out += [
                f"  S{r}x{s}:",
                f"    account: A{r % accounts}",
                f'    subjects: ["r{r}.s{s}.>"]',
                "    replicas: 3",
                f"    placement: {{ region: r{r} }}",
            ]
    out.append("consumers:")
    for r in range(regions):
        for s in range(20):
            out += [f"  - durable: C{r}x{s}", f"    stream: S{r}x{s}"]
    return "\n".join(out) + "\n"


def measure(command, path, work, run):
    """(wall seconds, peak RSS in MB) of one run. Each render writes a fresh tree (keys
    generated, every file written; a render into an unchanged tree writes nothing), in a new
    directory: right after a large tree is deleted, ext4 on this VM takes about 1 ms to find a
    free inode for each new file, which would be measured instead of notif-infra."""
    out = os.path.join(work, f"out-{run}")
    args = {
        "validate": [BIN, "validate", path],
        "render": [BIN, "render", path, "--out", out],
        "plan": [BIN, "plan", path, "--state-dir", os.path.join(work, "state")],
    }[command]
    return timed(args, work, ENV, accept=(0, 2))


def ratio(now, before):
    """How many times `before` `now` is, as the doubling lines show it ("x-" below the clock's resolution)."""
    return f"x{now / before:.2f}" if before > 0 else "x-"


def svg(rows, path):
    """Two log-log panels (time, memory) against servers, with a linear reference line."""
    w, h, pad = 460, 320, 55
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h}" font-family="sans-serif" font-size="11">']
    colours = {"validate": "#1f77b4", "render": "#d62728", "plan": "#2ca02c"}
    for panel, (key, unit) in enumerate([("time", "s"), ("mem", "MB")]):
        x0 = panel * w
        xs = [r["servers"] for r in rows]
        # /usr/bin/time reports 0.00 s for the quickest runs: a log scale starts at 1 ms.
        floor = lambda v: max(v, 0.001)
        ys = [floor(r[f"{c}_{key}"]) for r in rows for c in COMMANDS]
        lx, hx = math.log10(min(xs) / 1.2), math.log10(max(xs) * 1.2)
        ly, hy = math.log10(min(ys) / 2), math.log10(max(ys) * 2)
        px = lambda v: x0 + pad + (math.log10(v) - lx) / (hx - lx) * (w - 2 * pad)
        py = lambda v: h - pad + (ly - math.log10(floor(v))) / (hy - ly) * (h - 2 * pad)
        parts.append(f'<rect x="{x0 + pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" stroke="#888"/>')
        parts.append(f'<text x="{x0 + w / 2}" y="{pad - 20}" text-anchor="middle" font-size="13">{"wall time" if key == "time" else "peak memory"} ({unit}) against servers, log-log</text>')
        parts.append(f'<text x="{x0 + w / 2}" y="{h - 12}" text-anchor="middle">servers</text>')
        for v in xs:
            parts.append(f'<text x="{px(v):.1f}" y="{h - pad + 14}" text-anchor="middle">{v}</text>')
        for e in range(math.floor(ly), math.ceil(hy) + 1):
            for m in (1, 2, 5):
                v = m * 10 ** e
                if ly <= math.log10(v) <= hy:
                    parts.append(f'<text x="{x0 + pad - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
                    parts.append(f'<line x1="{x0 + pad}" x2="{x0 + w - pad}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#eee"/>')
        # Linear reference: slope 1 through the largest command's first point.
        base = max(rows[0][f"{c}_{key}"] for c in COMMANDS)
        ref = [(x, base * x / xs[0]) for x in (xs[0], xs[-1])]
        parts.append(f'<line x1="{px(ref[0][0]):.1f}" y1="{py(ref[0][1]):.1f}" x2="{px(ref[1][0]):.1f}" y2="{py(ref[1][1]):.1f}" stroke="#999" stroke-dasharray="5,4"/>')
        for i, c in enumerate(COMMANDS + ["linear"]):
            colour = colours.get(c, "#999")
            parts.append(f'<text x="{x0 + pad + 8}" y="{pad + 14 + 13 * i}" fill="{colour}">{c}</text>')
        for c in COMMANDS:
            points = " ".join(f"{px(r['servers']):.1f},{py(r[f'{c}_{key}']):.1f}" for r in rows)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colours[c]}" stroke-width="2"/>')
            for r in rows:
                parts.append(f'<circle cx="{px(r["servers"]):.1f}" cy="{py(r[f"{c}_{key}"]):.1f}" r="3" fill="{colours[c]}"/>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="25x10,50x10,100x10,200x10,250x20")
    ap.add_argument("--work-dir", default="/dev/shm")
    ap.add_argument("--write-docs", action="store_true", help="write the figures into docs/benchmarks.md and README.md")
    a = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit(f"no release build at {BIN}: run cargo build --release")
    rows = []
    for size in a.sizes.split(","):
        regions, nodes = map(int, size.split("x"))
        with tempfile.TemporaryDirectory(dir=a.work_dir) as work:
            path = os.path.join(work, "scale.yaml")
            with open(path, "w") as f:
                f.write(topology(regions, nodes))
            row = {"servers": regions * nodes, "regions": regions, "leafs": 2 * regions, "streams": 20 * regions}
            for c in COMMANDS:
                runs = [measure(c, path, work, run) for run in range(a.runs)]
                row[f"{c}_time"] = statistics.median(t for t, _ in runs)
                row[f"{c}_mem"] = statistics.median(m for _, m in runs)
            out = os.path.join(work, "out-0")
            row["output_mb"] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs) / 1e6
        rows.append(row)
        print(
            f"{row['servers']:>5} servers ({regions} regions x {nodes}, {row['leafs']} leafs, {row['streams']} streams): "
            + ", ".join(f"{c} {row[c + '_time']:.2f} s {row[c + '_mem']:.0f} MB" for c in COMMANDS)
            + f", rendered {row['output_mb']:.1f} MB",
            flush=True,
        )
    header = "| servers | regions | leafnodes | streams + consumers | " + " | ".join(f"{c} s | {c} MB" for c in COMMANDS) + " | rendered |"
    lines = [header, "|" + "---|" * (5 + 2 * len(COMMANDS))]
    for r in rows:
        cells = " | ".join(f"{r[c + '_time']:.2f} | {r[c + '_mem']:.0f}" for c in COMMANDS)
        lines.append(f"| {r['servers']} | {r['regions']} | {r['leafs']} | {r['streams']} + {r['streams']} | {cells} | {r['output_mb']:.1f} MB |")
    doubling = []
    for prev, cur in zip(rows, rows[1:]):
        if cur["servers"] == 2 * prev["servers"]:
            doubling.append(
                f"{prev['servers']} -> {cur['servers']}: "
                + ", ".join(f"{c} {ratio(cur[c + '_time'], prev[c + '_time'])} time {ratio(cur[c + '_mem'], prev[c + '_mem'])} memory" for c in COMMANDS)
            )
    results = os.path.join(ROOT, "bench", "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "scale.md"), "w") as f:
        f.write("\n".join(lines) + "\n\nDoubling the servers:\n" + "".join(f"- {d}\n" for d in doubling))
    svg(rows, os.path.join(results, "scale.svg"))
    print("\n".join(lines))
    print("\n".join(doubling))
    if a.write_docs:
        table = "\n".join(lines) + "\n\nDoubling the servers:\n\n" + "".join(f"- {d}\n" for d in doubling)
        write_section(DOCS, "scale", f"Medians of {a.runs}, files under `{a.work_dir}`:\n\n{table}\n![validate, render and plan against servers](../bench/results/scale.svg)")
        biggest = rows[-1]
        write_section(
            README,
            "scale",
            f"| {biggest['servers']} servers, offline | validate {biggest['validate_time']:.2f} s | render {biggest['render_time']:.2f} s, "
            f"{biggest['render_mem']:.0f} MB | plan {biggest['plan_time']:.2f} s |",
        )


if __name__ == "__main__":
    main()
