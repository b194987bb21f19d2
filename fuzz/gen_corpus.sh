#!/bin/bash
# Regenerates the seed corpora: builds fuzz_gen_corpus (in $1, default
# build-ci-gen), runs it, and copies each seed to
# fuzz/corpus/<target>/<sha1 of content>. Existing seeds are kept (a
# minimised crash input added by hand stays); remove a directory first for
# a clean regeneration.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-ci-gen}
cmake -S "$root" -B "$build" -G Ninja -DSGRPC_TESTS=OFF > /dev/null
ninja -C "$build" fuzz_gen_corpus > /dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/fuzz/fuzz_gen_corpus" "$tmp"
for t in server client actor; do
  mkdir -p "$root/fuzz/corpus/$t"
  for f in "$tmp/$t"/*; do
    h=$(sha1sum "$f" | cut -d' ' -f1)
    cp "$f" "$root/fuzz/corpus/$t/$h"
  done
  echo "$t: $(ls "$root/fuzz/corpus/$t" | wc -l) seeds"
done
