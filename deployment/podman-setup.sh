#!/usr/bin/env bash
# Makes a fresh Debian/Ubuntu machine (a CI runner, this sandbox) able to build and run the compose
# stack with podman, as root. Idempotent: each step is skipped when already done. `make compose-setup`
# (part of `make test`) runs it; on failure the compose test skips and says why.
#   1. podman, runc, debootstrap and Debian's archive keyring from apt;
#   2. /etc/containers/containers.conf: runc (crun refuses hybrid cgroups: "cgroups in hybrid mode not
#      supported") and no default ulimits (without CAP_SYS_RESOURCE podman's defaults fail with
#      "setrlimit RLIMIT_NOFILE: Operation not permitted");
#   3. podman-compose from PyPI into its own tool venv ($TOOLS, default .tools/podman-compose);
#   4. the machine's extra CA certificates into deployment/ca-certificates/ (a TLS-intercepting proxy's:
#      without them pip in the build fails with CERTIFICATE_VERIFY_FAILED);
#   5. the local base image localhost/debian-base:bookworm (debootstrap minbase from the machine's own
#      apt mirror), for machines that reach no image registry; built once, reused by every build.
set -euo pipefail
cd "$(dirname "$0")/.."

PODMAN_COMPOSE_VERSION=1.6.0
BASE_IMAGE=${BASE_IMAGE:-localhost/debian-base:bookworm}
TOOLS=${TOOLS:-.tools/podman-compose}
PYTHON=${PYTHON:-python3}
say() { echo "podman-setup: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then say "needs root (apt-get, /etc/containers)"; exit 1; fi

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
# debootstrap checks bookworm's signatures with Debian's keyring (not on an Ubuntu runner by default).
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} from apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

conf=/etc/containers/containers.conf
if ! grep -qs '^default_ulimits = \[\]' "$conf" || ! grep -qs '^runtime = "runc"' "$conf"; then
  if [ -s "$conf" ]; then cp "$conf" "$conf.before-cinerec"; say "kept the previous $conf as $conf.before-cinerec"; fi
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' > "$conf"
  say "wrote $conf (runc, no default ulimits)"
fi

if [ ! -x "$TOOLS/bin/podman-compose" ]; then
  say "installing podman-compose $PODMAN_COMPOSE_VERSION into $TOOLS"
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet "podman-compose==$PODMAN_COMPOSE_VERSION"
fi

for cert in /usr/local/share/ca-certificates/*.crt; do
  [ -f "$cert" ] && cp -u "$cert" deployment/ca-certificates/
done

if ! podman image exists "$BASE_IMAGE"; then
  # The machine's own Debian mirror (a CI runner's or a proxy's): the first Debian URI of its apt sources.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
           | grep -oE '^(URIs:|deb) +https?://[^ ]+' | awk '{print $2}' | grep -m1 '/debian$' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d /var/tmp/debian-base.XXXXXX)
  say "building $BASE_IMAGE: debootstrap --variant=minbase bookworm from $mirror (about 2 minutes)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
fi
say "ready: podman $(podman version --format '{{.Client.Version}}'), base $BASE_IMAGE, $TOOLS/bin/podman-compose"
