#!/usr/bin/env bash
# Installs what Cascade's build and tests need beyond the Rust toolchain:
# the wasm32-wasip2 target, the real image tools the tests check with, the
# Go toolchain the go buildpack's tests build with, and musl-tools, with
# which scripts/static-web-server.sh builds the static-site tests' server.
# Idempotent; safe to run again.
set -euo pipefail

rustup target add wasm32-wasip2

packages=(skopeo umoci oci-image-tool bubblewrap busybox-static jq docker-registry golang-go mmdebstrap strace patchelf musl-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# CycloneDX's own schema validator (the official Python library), which the
# SBOM tests check Cascade's SBOMs with, and lib4vex, an OpenVEX reader the
# bloat tests read Cascade's VEX documents with.
if ! python3 -c "import cyclonedx.validation.json, jsonschema, lib4vex.parser" 2>/dev/null; then
  user=""
  [ "$(id -u)" = 0 ] || user="--user"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore $user \
    'cyclonedx-python-lib[json-validation]==11.12.0' 'lib4vex==0.2.3'
fi
