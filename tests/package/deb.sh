#!/bin/bash
# The Debian packages (debian/; scripts/test runs this as root):
#  1. copies the source tree (without .git and build directories) to
#     WORK/src, so the build leaves the tree as it was,
#  2. dpkg-buildpackage -us -uc -b there (DEB_BUILD_OPTIONS nocheck:
#     scripts/test runs the suite itself): libsgrpc0, libsgrpc-dev,
#     sgrpc-tools,
#  3. lintian over the result: any E: line fails (W:/I: are printed),
#  4. installs the three packages with dpkg -i, checks that the tools run,
#     and builds and runs the consumers of tests/package against the
#     installed files (run.sh --installed: find_package and pkg-config,
#     shared and static),
#  5. removes the packages again (also when a step failed).
#   deb.sh WORK
# Prints "deb: ..." lines and ends with "debian packages: N passed, M
# failed"; exits 1 when one failed.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$1
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "deb: $1: ok"; }
bad() { failed=$((failed + 1)); echo "deb: $1: FAILED"; [ -f "${2:-}" ] && tail -n 40 "$2"; }
finish() {
  echo "debian packages: $passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit
}
pkgs=(libsgrpc0 libsgrpc-dev sgrpc-tools)

if [ "$(id -u)" != 0 ]; then
  bad "needs root (dpkg -i)"
  finish
fi
rm -rf "$work"
mkdir -p "$work/src"
work=$(cd "$work" && pwd)
t0=$(date +%s)
tar -C "$root" --exclude=./.git --exclude='./build*' --exclude=./debian/.debhelper --exclude='./obj-*' \
  -cf - . | tar -C "$work/src" -xf -

log=$work/build.log
if (cd "$work/src" && DEB_BUILD_OPTIONS="nocheck parallel=${SGRPC_JOBS:-2}" \
      timeout 1800 dpkg-buildpackage -us -uc -b) > "$log" 2>&1; then
  ok "dpkg-buildpackage ($(( $(date +%s) - t0 )) s)"
else
  bad "dpkg-buildpackage" "$log"
  finish
fi
for p in "${pkgs[@]}"; do
  ls "$work/${p}"_*.deb > /dev/null 2>&1 || bad "package $p not built"
done
changes=$(find "$work" -maxdepth 1 -name "sgrpc_*.changes" | head -n 1)

log=$work/lintian.log
lintian --tag-display-limit 0 "$changes" > "$log" 2>&1
cat "$log"
if grep -q '^E: ' "$log"; then
  bad "lintian: errors"
else
  ok "lintian: no error ($(grep -c '^W: ' "$log") warnings)"
fi

log=$work/dpkg.log
debs=()
for p in "${pkgs[@]}"; do debs+=("$work/${p}"_*.deb); done
if dpkg -i "${debs[@]}" > "$log" 2>&1; then
  ok "dpkg -i"
else
  bad "dpkg -i" "$log"
  dpkg -r "${pkgs[@]}" > /dev/null 2>&1
  finish
fi
# the tools work from the installed files: the plugin generates stubs
# through protoc, the load generator starts
mkdir -p "$work/gen"
if protoc --plugin=protoc-gen-sgrpc=/usr/bin/protoc-gen-sgrpc --sgrpc_out="$work/gen" \
     -I"$root/examples/helloworld" helloworld.proto > "$work/tools.log" 2>&1 &&
   ls "$work"/gen/helloworld*.h > /dev/null 2>&1 &&
   { /usr/bin/sgrpc-loadgen --help 2>&1 | grep -q '^usage:'; }; then
  ok "tools run (protoc-gen-sgrpc made $(cd "$work/gen" && echo *))"
else
  bad "tools run" "$work/tools.log"
fi
log=$work/consumers.log
if "$root/tests/package/run.sh" --installed "$work/consumers" > "$log" 2>&1; then
  ok "consumers against the installed packages ($(grep '^package consumers:' "$log"))"
else
  grep -E 'FAILED|^package consumers:' "$log"
  bad "consumers against the installed packages" "$log"
fi
if dpkg -r "${pkgs[@]}" > "$work/remove.log" 2>&1 && [ ! -e /usr/include/sgrpc/sgrpc.h ]; then
  ok "dpkg -r"
else
  bad "dpkg -r" "$work/remove.log"
fi
echo "deb: $(( $(date +%s) - t0 )) s in all"
finish
