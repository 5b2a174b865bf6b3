"""What the benchmarks share: where the binaries are, and a free local port range."""
import os, socket, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "notif-infra")
NATS = os.environ.get("NATS_SERVER_BIN", os.path.join(ROOT, ".tools", "bin", "nats-server"))


def free_base(servers):
    """A port base whose `servers` local slots (10 ports each) are free right now."""
    # Below the kernel's ephemeral range, where probe and poll connections leave TIME_WAITs.
    for base in range(20000, 32000, 500):
        if all(_free(p) for p in range(base, base + servers * 10)):
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
