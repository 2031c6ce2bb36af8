#!/usr/bin/env bash
# Makes a static-web-server release archive the way its project ships them
# (static-web-server-v<V>-<arch>-unknown-linux-musl.tar.gz: one top
# directory holding the static musl binary), from its crates.io source:
# what the static-site e2e tests serve from a loopback mirror, since these
# machines do not reach GitHub. Built once (about three minutes); a second
# run finds it and prints its path.
#
#   scripts/static-web-server.sh [DIR]     (default: target/static-web-server)
#
# With the crate's default features, as the project's own releases are
# built, so the tests see what production sends.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(realpath -m "${1:-target/static-web-server}")"
version=2.42.0
triple="$(uname -m)-unknown-linux-musl"
name="static-web-server-v$version-$triple"
archive="$dir/$name.tar.gz"
stamp="$dir/.made-from"
want="$version $triple default-features"

mkdir -p "$dir"
exec 9>"$dir.lock"
flock 9
if [ -f "$archive" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$archive"
  exit 0
fi
command -v musl-gcc >/dev/null || { echo "static-web-server.sh: musl-gcc is missing (apt-get install musl-tools)" >&2; exit 1; }
rustup target add "$triple" >&2
echo "==> static-web-server $version for $triple (cargo install, once)" >&2
# Its own target dir, removed after: the build trees are half a gigabyte.
work="$(mktemp -d "${TMPDIR:-/tmp}/cascade-sws.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cargo install --quiet "static-web-server@$version" --locked \
  --target "$triple" --root "$work/root" --target-dir "$work/target" >&2
mkdir -p "$work/$name"
cp "$work/root/bin/static-web-server" "$work/$name/"
tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner \
  -C "$work" -czf "$archive.tmp" "$name"
mv "$archive.tmp" "$archive"
echo "$want" >"$stamp"
echo "$archive"
