#!/bin/sh
# Compiles every C example of a Markdown file that starts with an
# #include of an sgrpc header (```c blocks), so the code a reader copies
# from README.md cannot drift from the API.
#   check_doc_snippets.sh CC FILE.md [compiler flags: -I...]
set -u
cc=$1
doc=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
awk -v dir="$work" '
  /^```c$/ { inblock = 1; n++; file = dir "/snippet" n ".c"; first = 1; next }
  /^```/ && inblock { inblock = 0; close(file); next }
  inblock { print > file }
' "$doc"
count=0
for f in "$work"/snippet*.c; do
  [ -f "$f" ] || continue
  head -n 1 "$f" | grep -q '^#include <sgrpc/' || continue
  count=$((count + 1))
  if ! "$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Wno-unused-parameter \
       -c "$f" -o "$f.o" "$@"; then
    echo "check_doc_snippets: $doc: example $(basename "$f") does not compile:"
    cat -n "$f"
    exit 1
  fi
done
echo "check_doc_snippets: $doc: $count examples compile"
[ "$count" -gt 0 ]
