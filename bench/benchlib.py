"""What the benchmarks share: where the binaries are, a free local port range, and a whole-process
measurement."""
import os, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "notif-infra")
NATS = os.environ.get("NATS_SERVER_BIN", os.path.join(ROOT, ".tools", "bin", "nats-server"))


def free_base(servers):
    """A port base whose `servers` local slots (5 ports each) are free right now."""
    # Below the kernel's ephemeral range, where probe and poll connections leave TIME_WAITs.
    for base in range(20000, 32000, 500):
        if all(_free(p) for p in range(base, base + servers * 5)):
            return base
    sys.exit("no free port range")


def _free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nats-server's listeners do
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def timed(args, cwd, env, accept=(0,)):
    """(wall seconds, peak RSS in MB) of one whole process, measured by /usr/bin/time; exits
    showing its error output when it ends with a code not in `accept`."""
    p = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode not in accept:
        sys.exit(f"{' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    wall, rss_kb = p.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 1024


def formation_time(confs, env, formed):
    """Seconds from starting nats-server on every config at once until `formed()` says the
    system is up (it is called again and again); the servers are stopped afterwards."""
    start = time.perf_counter()
    procs = [subprocess.Popen([NATS, "-c", c], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in confs]
    try:
        while not formed():
            pass
        return time.perf_counter() - start
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


DOCS = os.path.join(ROOT, "docs", "benchmarks.md")
README = os.path.join(ROOT, "README.md")


def write_section(path, name, text):
    """Replaces what the file at `path` holds between `<!-- bench:NAME -->` and
    `<!-- /bench:NAME -->` with `text` (a benchmark's latest figures)."""
    with open(path) as f:
        doc = f.read()
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if begin not in doc or end not in doc:
        sys.exit(f"{path} has no {begin} ... {end} section")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(f"{head}{begin}\n{text}\n{end}{tail}")
