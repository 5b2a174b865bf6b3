#!/usr/bin/env bash
# Builds a nats-server image FROM scratch holding the static binary scripts/install-nats-server.sh
# installed, for Docker engines that cannot pull the official `nats` image. Prints its tag.
# usage: scripts/build-local-image.sh [TAG]   (default notif-infra/nats:<version>-local)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${NATS_SERVER_BIN:-$root/.tools/bin/nats-server}"
[ -x "$bin" ] || { echo "no nats-server at $bin: run scripts/install-nats-server.sh first" >&2; exit 1; }
version="$("$bin" --version | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p')"
tag="${1:-notif-infra/nats:$version-local}"

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$bin" "$context/nats-server"
cat > "$context/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY nats-server /nats-server
EXPOSE 4222 6222 7222 7422 8222
ENTRYPOINT ["/nats-server"]
DOCKERFILE
docker build --quiet --tag "$tag" "$context" >/dev/null
echo "$tag"
