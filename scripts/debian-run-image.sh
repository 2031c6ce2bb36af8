#!/usr/bin/env bash
# Makes a run image from real Debian packages, the way dpkg would have left
# them: each .deb downloaded with `apt-get download`, unpacked with
# `dpkg-deb -x`, recorded in var/lib/dpkg/status (its control paragraph,
# "install ok installed") and var/lib/dpkg/info/<package>[:<arch>].list
# (its file list), then packed into one layer of an OCI image layout with
# umoci. No maintainer script runs, so no root and no chroot are needed.
#
#   scripts/debian-run-image.sh LAYOUT TAG CREATED VERSION PACKAGE...
#
# CREATED (RFC 3339) and VERSION (org.opencontainers.image.version) date the
# base, so a rebase can tell a patch from a downgrade. An image already made
# from the same arguments is left as it is. Used by the bloat tests and
# benchmark; the packages come from this machine's apt sources.
set -euo pipefail
layout="$1"
tag="$2"
created="$3"
version="$4"
shift 4
packages="$*"
want="$tag $created $version $packages"
stamp="$layout/.made-$tag"

mkdir -p "$layout"
exec 9>"$layout.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
for tool in apt-get dpkg-deb umoci tar; do
  command -v "$tool" >/dev/null || { echo "debian-run-image.sh: $tool is missing" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/cascade-debian-run.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "==> run image $layout:$tag: $packages" >&2
(cd "$work" && apt-get download -q $packages >/dev/null 2>"$work/apt.log") || {
  cat "$work/apt.log" >&2
  exit 1
}
root="$work/rootfs"
mkdir -p "$root/var/lib/dpkg/info"
: >"$work/status"
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$root"
  name="$(dpkg-deb -f "$deb" Package)"
  arch="$(dpkg-deb -f "$deb" Architecture)"
  list="$name.list"
  [ "$(dpkg-deb -f "$deb" Multi-Arch)" = same ] && list="$name:$arch.list"
  # dpkg's list: "/." then every path, no trailing slash, links by name.
  dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' -e 's|^$|/.|' \
    -e 's|^/$|/.|' >"$root/var/lib/dpkg/info/$list"
  dpkg-deb -f "$deb" | awk '/^Package:/ {print; print "Status: install ok installed"; next} {print}' \
    >>"$work/status"
  echo >>"$work/status"
done
# Paragraphs by package name, as dpkg keeps them.
python3 - "$work/status" "$root/var/lib/dpkg/status" <<'EOF'
import sys
paras = [p.strip("\n") for p in open(sys.argv[1]).read().split("\n\n") if p.strip()]
paras.sort(key=lambda p: p.split("\n", 1)[0])
open(sys.argv[2], "w").write("\n\n".join(paras) + "\n")
EOF
tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner \
  -C "$root" -cf "$work/rootfs.tar" .

rm -rf "$layout.new"
if [ -f "$layout/index.json" ]; then
  cp -a "$layout" "$layout.new"
  umoci rm --image "$layout.new:$tag" 2>/dev/null || true
else
  umoci init --layout "$layout.new"
fi
umoci new --image "$layout.new:$tag"
umoci raw add-layer --image "$layout.new:$tag" --history.created "$created" \
  --history.created_by "debian-run-image.sh $packages" "$work/rootfs.tar"
umoci config --image "$layout.new:$tag" --created "$created" \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.label io.buildpacks.base.distro.name=debian \
  --config.label io.buildpacks.base.distro.version=12 \
  --config.label "org.opencontainers.image.version=$version"
umoci gc --layout "$layout.new"
echo "$want" >"$layout.new/.made-$tag"
rm -rf "$layout"
mv "$layout.new" "$layout"
echo "==> run image oci:$layout:$tag" >&2
