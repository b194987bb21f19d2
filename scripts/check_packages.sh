#!/bin/bash
# Proves a package list complete for a finished build:
#   scripts/check_packages.sh BUILD_DIR PKG...
# Every file the build used from outside the source and build trees (the
# compiler's dependency records, `ninja -t deps`; the programs, libraries
# and files build.ninja names, with protoc's -I-relative .proto inputs;
# CMakeCache.txt's FILEPATH and *_EXECUTABLE/*_PROGRAM entries; the .pc
# files of the pkg-config modules CMake looked up) must belong (dpkg -S) to
# one of PKG..., to a package they depend on, or to build-essential's
# dependency closure. Prints each file that does not, with its package
# ("not packaged" when dpkg knows no owner), and exits 1; exits 0 with a
# one-line summary otherwise. Needs dpkg and apt-cache (Debian).
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR PKG..." >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 2
shift
src=$(cd "$(dirname "$0")/.." && pwd)
cache=$build/CMakeCache.txt
[ -f "$cache" ] || { echo "check_packages: no $cache" >&2; exit 2; }
tmp=$(mktemp -d /tmp/sgrpc-pkgcheck.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# 1. the files: headers from the dependency log, what CMake found, the .pc
# files. Only absolute paths outside both trees, existing, deduplicated.
{
  ninja -C "$build" -t deps 2>/dev/null | sed -n 's/^    \(\/.*\)$/\1/p'
  sed -n 's/^[A-Za-z0-9_.+-]*:FILEPATH=\(\/.*\)$/\1/p' "$cache"
  grep -E '^[A-Za-z0-9_]*_(EXECUTABLE|PROGRAM)[A-Za-z0-9_]*:' "$cache" | sed -n 's/^[^=]*=\(\/.*\)$/\1/p'
  # inputs and commands in build.ninja: absolute paths, and the relative
  # .proto names of protoc commands resolved against their -I directories
  # (plugin.proto is named that way)
  awk '{
    n = split($0, w, /[ \t;"=]+/); ndir = 0
    for (i = 1; i <= n; i++) {
      t = w[i]; sub(/:$/, "", t)
      if (t ~ /^-I\//) dirs[++ndir] = substr(t, 3)
      else if (t ~ /^\//) print t
    }
    for (i = 1; i <= n; i++)
      if (w[i] ~ /^[A-Za-z0-9_].*\.proto$/)
        for (d = 1; d <= ndir; d++) print dirs[d] "/" w[i]
  }' "$build/build.ninja" | while IFS= read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done
  for m in $(sed -n 's/^[A-Za-z0-9_]*_MODULE_NAME:INTERNAL=\(.*\)$/\1/p' "$cache"); do
    pkg-config --path "$m" 2>/dev/null
  done
} | grep -v -e "^$src/" -e "^$build/" | sort -u > "$tmp/used"
# Owners are recorded under a file's own name or, through symlinks
# (/usr/bin/cc -> /etc/alternatives -> gcc-12, libfoo.so -> libfoo.so.1.2),
# under its target: ask for both names.
while IFS= read -r f; do
  [ -e "$f" ] && printf '%s\n' "$f"
done < "$tmp/used" > "$tmp/exist"
# readlink -f takes many names at once
readlink -f $(cat "$tmp/exist") | paste "$tmp/exist" - > "$tmp/map"
cut -f1 "$tmp/map" > "$tmp/query"
cut -f2 "$tmp/map" >> "$tmp/query"
sort -u -o "$tmp/query" "$tmp/query"
nused=$(wc -l < "$tmp/map")

# 2. one dpkg -S for every path; "pkg1, pkg2: /path" lines. On merged-/usr
# systems a file may be recorded under /lib... for /usr/lib...: ask for
# those names too.
sed -n 's,^/usr\(/\(lib\|bin\|sbin\)/.*\)$,\1,p' "$tmp/query" > "$tmp/alt"
cat "$tmp/query" "$tmp/alt" | xargs -r -d '\n' dpkg -S 2>/dev/null |
  sed -n 's/^\([^:]*\(:[a-z0-9]*\)\{0,1\}\(, [^:]*\(:[a-z0-9]*\)\{0,1\}\)*\): \(\/.*\)$/\5\t\1/p' \
  > "$tmp/owners"

# 3. the allowed packages: the list, build-essential, and everything they
# depend on (installed package names, architecture suffix dropped).
apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances build-essential "$@" 2>/dev/null |
  sed -n 's/^\([a-z0-9][a-z0-9.+-]*\)\(:[a-z0-9]*\)\{0,1\}$/\1/p' | sort -u > "$tmp/allowed"
printf '%s\n' build-essential "$@" >> "$tmp/allowed"

# 4. every used file: fine when it, or its target, has an allowed owner.
# One awk: owners by path (a /lib... record also answers for /usr/lib...),
# then each used file and its target looked up.
bad=$(awk -F'\t' '
  FILENAME == ARGV[1] { ok[$1] = 1; next }
  FILENAME == ARGV[2] {
    n = split($2, ps, /, */)
    for (i = 1; i <= n; i++) {
      sub(/:.*$/, "", ps[i])
      own[$1] = own[$1] (own[$1] == "" ? "" : ",") ps[i]
      if ($1 ~ /^\/(lib|bin|sbin)\//) own["/usr" $1] = own["/usr" $1] "," ps[i]
    }
    next
  }
  {
    o = own[$1]; if ($2 != $1 && own[$2] != "") o = o "," own[$2]
    sub(/^,/, "", o)
    if (o == "") {
      cmd = "test -d \"" $1 "\""
      if (system(cmd) == 0) next # a directory CMake found, shared by many packages
      print "check_packages: " $1 ": not packaged (no package installs it)"; nbad++; next
    }
    n = split(o, ps, ","); good = 0
    for (i = 1; i <= n; i++) if (ps[i] in ok) good = 1
    if (!good) { print "check_packages: " $1 ": from " o ", which is not in the package list"; nbad++ }
  }
  END { print "BAD " nbad + 0 }' "$tmp/allowed" "$tmp/owners" "$tmp/map")
printf '%s\n' "$bad" | grep -v '^BAD '
bad=$(printf '%s\n' "$bad" | sed -n 's/^BAD //p')
if [ "$bad" -gt 0 ]; then
  echo "check_packages: $bad file(s) outside the package list (add their packages to scripts/packages.sh)"
  exit 1
fi
echo "check_packages: $nused files from outside the tree, all from listed packages"
