#!/bin/bash
# Checks that the engine library stays sans-IO, as ARCHITECTURE.md
# requires: every symbol it needs from outside is memory, string, zlib or
# nghttp2 (plus what sanitizers and fortify add). A call to a clock, a
# socket or file function, a thread primitive, getenv, printf-style
# formatting or regex shows up here as a new undefined symbol and fails.
#
#   check_engine_symbols.sh path/to/libsgrpc.a
# NM names the nm to use (a cross build's library needs the target's nm).
set -u
lib=$1
nm=${NM:-nm}
command -v "$nm" > /dev/null || { echo "$nm missing (binutils)"; exit 1; }
[ -f "$lib" ] || { echo "no such library: $lib"; exit 1; }
# clang turns memcmp(...) == 0 into bcmp. Compiler runtime arithmetic (64-bit
# division and shifts on 32-bit targets: libgcc's __divdi3 family, ARM
# EABI's __aeabi_*) is pure and allowed too.
allowed='^(__(u?(div|mod|divmod)[dst]i[34]|(ashl|ashr|lshr|mul|neg|u?cmp|clz|ctz|popcount|bswap)[dst]i[234])|__aeabi_[a-z0-9]+|malloc|calloc|realloc|free|mem(cmp|cpy|move|set|chr)|bcmp|str(len|cmp|ncmp|chr|nlen)|abort|__assert_fail|__stack_chk_fail|_GLOBAL_OFFSET_TABLE_|__[a-z0-9_]+_chk|nghttp2_[a-z0-9_]+|(deflate|inflate)[A-Za-z0-9_]*|crc32|adler32|zlibVersion|sg_[a-z0-9_]+|sgrpc_[a-z0-9_]+|__(asan|ubsan|sanitizer|lsan)_[A-Za-z0-9_]+)$'
syms=$("$nm" -u "$lib" | awk 'NF == 2 && $1 == "U" {print $2}' | sed 's/@.*//' | sort -u)
[ -n "$syms" ] || { echo "nm listed no undefined symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -Ev "$allowed")
echo "engine library needs $(printf '%s\n' "$syms" | wc -l) outside or cross-file symbols"
if [ -n "$bad" ]; then
  echo "FAIL: the engine uses functions outside its sans-IO allowlist:"
  printf '  %s\n' $bad
  exit 1
fi
echo "OK: no clock, IO, thread, environment, formatting or regex calls"
