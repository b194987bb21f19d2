#!/bin/bash
# Fetches and unpacks the Debian source package that an installed binary
# package was built from, at exactly that version, so that gRPC's own
# interop programs (which Debian builds from these trees but does not ship
# in any binary package) can be built against the installed libraries.
#
#   fetch_source.sh BINARY_PACKAGE DIR
#
# Prints the unpacked tree's path (DIR/<source>-<upstream version>) on its
# last stdout line. apt checks the archive's signature and every file's
# checksum; a private apt state under DIR/apt keeps the system's own
# sources.list untouched (only a deb-src line for the same mirror and
# suite is used). Needs dpkg-dev (dpkg-source) to apply Debian's patches.
# Nothing fetched here is committed: DIR is a build directory.
set -euo pipefail
bin=${1:?usage: fetch_source.sh BINARY_PACKAGE DIR}
dir=${2:?usage: fetch_source.sh BINARY_PACKAGE DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

read -r src ver < <(dpkg-query -W -f='${source:Package} ${source:Version}\n' "$bin") || {
  echo "fetch_source: $bin is not installed" >&2
  exit 1
}
upstream=${ver#*:}
upstream=${upstream%-*}
tree="$dir/$src-$upstream"
if [ -f "$tree/.sgrpc-fetched-$ver" ]; then
  echo "$tree"
  exit 0
fi

# The deb-src line: same mirror and suite as the system's main archive.
. /etc/os-release
uri=http://deb.debian.org/debian
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  u=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  [ -n "$u" ] && uri=$u
fi
apt="$dir/apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/dl"
echo "deb-src $uri ${VERSION_CODENAME:-bookworm} main" > "$apt/sources.list"
aptopts=(-q -o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
         -o APT::Sandbox::User=root)
timeout 600 apt-get "${aptopts[@]}" update > "$apt/update.log" 2>&1 || {
  tail -5 "$apt/update.log" >&2
  echo "fetch_source: apt-get update of $uri (deb-src) failed" >&2
  exit 1
}
(cd "$apt/dl" && timeout 900 apt-get "${aptopts[@]}" source --download-only "$src=$ver") \
  > "$apt/source.log" 2>&1 || {
  tail -5 "$apt/source.log" >&2
  echo "fetch_source: apt-get source $src=$ver failed" >&2
  exit 1
}
rm -rf "$tree"
dpkg-source --no-check -x "$apt/dl/${src}_${ver#*:}.dsc" "$tree" > "$apt/unpack.log" 2>&1 || {
  tail -5 "$apt/unpack.log" >&2
  echo "fetch_source: dpkg-source -x failed" >&2
  exit 1
}
touch "$tree/.sgrpc-fetched-$ver"
echo "$tree"
