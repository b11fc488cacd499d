#!/usr/bin/env bash
# The README's test command on a brand-new Debian 12, as CI's machines are: a container made from
# Debian's packages only (mmdebstrap; python3 with pip, gcc and git, as on a new machine of CI's kind)
# runs `bash tests/run.sh` in a clean clone of this repository's HEAD, installing everything itself.
#
#   bash tests/fresh-machine.sh [pytest arguments]      # as root, with podman and mmdebstrap
#
# Not run in CI (CI's machine is itself new); it is how to prove that nothing the tests need was
# installed by hand. The container is privileged because the tests use namespaces (Sendmail's
# `unshare`) and run podman themselves; its containers live in a throwaway directory of the host.
set -euo pipefail
cd "$(dirname "$0")/.."
image=localhost/smtp-reply-exporter-fresh:bookworm
work=$(mktemp -d /var/tmp/smtp-reply-exporter-fresh.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! podman image exists "$image"; then
  mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-pip,python3-venv,python3-dev,gcc,git,ca-certificates,passwd,procps \
    bookworm "$work/fresh.tar"
  podman import "$work/fresh.tar" "$image" >/dev/null
  rm "$work/fresh.tar"
fi
git clone --quiet . "$work/repo"   # what CI sees: committed files only
mkdir "$work/containers"

# This sandbox reaches PyPI through a proxy with its own CA: hand the host's bundle to pip.
ca=/etc/ssl/certs/ca-certificates.crt
start=$(date +%s)
podman run --rm --privileged --network=host \
  --volume "$work/repo:/repo" --volume "$work/containers:/var/lib/containers" \
  --volume "$ca:/host-ca.crt:ro" --env PIP_CERT=/host-ca.crt --env PIP_BREAK_SYSTEM_PACKAGES=1 \
  "$image" bash -c 'cd /repo && bash tests/run.sh "$@"' run.sh "$@"
echo "fresh-machine: tests/run.sh passed in $(( $(date +%s) - start )) s"
