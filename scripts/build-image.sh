#!/usr/bin/env bash
# Makes Cascade's build image: an OCI image layout holding a Debian bookworm
# root with what the first-party buildpacks exec (Go, Rust's cargo and rustc,
# a C toolchain, CA certificates), built from Debian's own packages with
# mmdebstrap and packed into one layer with umoci.
#
#   scripts/build-image.sh [LAYOUT]      (default: target/build-image)
#
# The image is tagged `bookworm` and labelled io.buildpacks.base.distro.*
# like a CNB stack image. It is made once: a second run with the same
# package list finds it and does nothing. Use it with
#   cascade build APP --build-image oci:target/build-image:bookworm ...
# To make your own, change the package list (or use any OCI image: a build
# image is just an image whose PATH holds the tools).
set -euo pipefail
cd "$(dirname "$0")/.."
layout="${1:-target/build-image}"
suite=bookworm
packages="ca-certificates,golang-go,gcc,libc6-dev,cargo,rustc"
mirror="${CASCADE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${CASCADE_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
stamp="$layout/.made-from"
want="$suite $packages"

mkdir -p "$(dirname "$layout")"
exec 9>"$layout.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "build-image.sh: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/cascade-build-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "==> build image: Debian $suite with $packages (mmdebstrap)" >&2
mode=root
[ "$(id -u)" = 0 ] || mode=unshare
# SOURCE_DATE_EPOCH pins the mtimes mmdebstrap writes.
SOURCE_DATE_EPOCH=1700000000 mmdebstrap --quiet --mode="$mode" --variant=essential \
  --include="$packages" \
  "$suite" "$work/rootfs.tar" \
  "deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main"

rm -rf "$layout.new"
umoci init --layout "$layout.new"
umoci new --image "$layout.new:$suite"
umoci raw add-layer --image "$layout.new:$suite" --history.created 2023-11-14T22:13:20Z \
  --history.created_by "mmdebstrap --variant=essential --include=$packages $suite" "$work/rootfs.tar"
umoci config --image "$layout.new:$suite" --created 2023-11-14T22:13:20Z \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env LANG=C.UTF-8 \
  --config.label io.buildpacks.base.distro.name=debian \
  --config.label io.buildpacks.base.distro.version=12 \
  --config.label io.buildpacks.base.maintainer=cascade
umoci gc --layout "$layout.new"
echo "$want" >"$layout.new/.made-from"
rm -rf "$layout"
mv "$layout.new" "$layout"
echo "==> build image: oci:$layout:$suite" >&2
