#!/bin/bash
# The installed-package test (scripts/test runs it on its -Werror build):
# installs BUILD_DIR into a temporary prefix and builds, from that prefix
# alone, one consumer (this folder) per installed adapter, each without and
# with TLS (OpenSSL), plus the engine alone, the rpc layer and the service
# config parser, four ways:
# find_package shared and static, pkg-config shared and static. Every
# program is run; static ones must not load any libsgrpc*.so. A component
# that was not installed must fail find_package with its reason.
#   run.sh BUILD_DIR WORK_DIR [extra C flags, e.g. -fsanitize=...]
#   run.sh --installed WORK_DIR [flags]: the same consumers against what is
#     installed under /usr (the Debian packages, tests/package/deb.sh)
# Prints "ok"/"FAILED" per check and ends with
# "package consumers: N passed, M failed"; exits 1 when one failed.
set -u
if [ "$1" = --installed ]; then
  build=
else
  build=$(cd "$1" && pwd)
fi
work=$2
shift 2
flags="$*"
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
inst=$work/prefix
passed=0
failed=0

if [ -z "$build" ]; then
  inst=/usr
  cmdir=$(dirname "$(find /usr/lib -path '*/cmake/sgrpc/sgrpcConfig.cmake' | head -n 1)")
  pcdir=$(dirname "$(find /usr/lib -path '*/pkgconfig/libsgrpc.pc' | head -n 1)")
elif ! cmake --install "$build" --prefix "$inst" > "$work/install.log" 2>&1; then
  tail -n 20 "$work/install.log"
  echo "package consumers: 0 passed, 1 failed"
  exit 1
else
  cmdir=$(dirname "$(find "$inst" -name sgrpcConfig.cmake | head -n 1)")
  pcdir=$(dirname "$(find "$inst" -name libsgrpc.pc | head -n 1)")
fi
libdir=$(dirname "$pcdir")
has() { [ -f "$cmdir/sgrpc-$1-targets.cmake" ]; }
# the .pc files name the configured prefix; point them at the temporary one
pkgc() { PKG_CONFIG_PATH="$pcdir" pkg-config --define-variable=prefix="$inst" "$@"; }

result() { # name, status, log
  if [ "$2" = 0 ]; then
    passed=$((passed + 1))
    echo "package: $1: ok"
  else
    failed=$((failed + 1))
    echo "package: $1: FAILED"
    tail -n 30 "$3"
  fi
}

# run_checked NAME PROGRAM shared|static LOG: runs it (without
# LD_LIBRARY_PATH: the program's RUNPATH and the libraries' $ORIGIN must be
# enough) and checks which libsgrpc it loads
run_checked() {
  local name=$1 prog=$2 kind=$3 log=$4
  "$prog" >> "$log" 2>&1 || return 1
  if [ "$kind" = static ]; then
    ! ldd "$prog" | grep -q libsgrpc || { echo "$name loads a shared libsgrpc" >> "$log"; return 1; }
  else
    # (compared as real paths: with merged /usr the loader may name
    # /lib/<triplet> for /usr/lib/<triplet>)
    local got
    got=$(ldd "$prog" | sed -n 's/^[[:space:]]*libsgrpc\.so\.0 => \([^ ]*\) .*/\1/p')
    [ -n "$got" ] && [ "$(readlink -f "$(dirname "$got")")" = "$(readlink -f "$libdir")" ] ||
      { echo "$name does not load $libdir/libsgrpc.so.0 (${got:-none})" >> "$log"; return 1; }
  fi
}

# consumer NAME LOOP TLS RPC [CONFIG]
consumer() {
  local name=$1 loop=$2 tls=$3 rpc=$4 config=${5:-OFF} dir=$work/$1 mods=libsgrpc srcs=$here/main.c defs=
  mkdir -p "$dir"
  if [ -n "$loop" ]; then
    mods="$mods libsgrpc-$loop" srcs="$srcs $here/loop_$loop.c" defs="$defs -DCONSUMER_LOOP"
  fi
  if [ "$tls" = ON ]; then
    mods="$mods libsgrpc-tls-openssl" srcs="$srcs $here/tls.c" defs="$defs -DCONSUMER_TLS"
  fi
  if [ "$rpc" = ON ]; then
    mods="$mods libsgrpc-rpc" srcs="$srcs $here/rpc.c" defs="$defs -DCONSUMER_RPC"
  fi
  if [ "$config" = ON ]; then
    mods="$mods libsgrpc-config" srcs="$srcs $here/config.c" defs="$defs -DCONSUMER_CONFIG"
  fi

  # find_package
  local log=$dir/cmake.log st=0
  cmake -S "$here" -B "$dir/b" -G Ninja -DCMAKE_PREFIX_PATH="$inst" -DCONSUMER_LOOP="$loop" \
    -DCONSUMER_TLS="$tls" -DCONSUMER_RPC="$rpc" -DCONSUMER_CONFIG="$config" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" > "$log" 2>&1 && ninja -C "$dir/b" >> "$log" 2>&1 || st=1
  [ $st = 0 ] && { run_checked "$name" "$dir/b/consumer_shared" shared "$log" || st=1; }
  result "$name find_package shared" $st "$log"
  [ $st = 0 ] && { run_checked "$name" "$dir/b/consumer_static" static "$log" || st=1; }
  result "$name find_package static" $st "$log"

  # pkg-config: shared, then static with the sgrpc archives (pkg-config
  # --static gives the dependencies of the archives)
  log=$dir/pc-shared.log st=0
  # shellcheck disable=SC2086
  { cc -Wall -Wextra -Werror $flags $defs -I"$here" $srcs $(pkgc --cflags --libs $mods) \
      -Wl,-rpath,"$libdir" -o "$dir/pc_shared" && run_checked "$name" "$dir/pc_shared" shared "$log"; } \
    > "$log" 2>&1 || st=1
  result "$name pkg-config shared" $st "$log"
  log=$dir/pc-static.log st=0
  # shellcheck disable=SC2086
  { libs=$(pkgc --static --libs $mods | sed 's/\(-lsgrpc[-a-z]*\)/-Wl,-Bstatic \1 -Wl,-Bdynamic/g') &&
    echo "pkg-config --static --libs $mods: $libs" &&
    cc -Wall -Wextra -Werror $flags $defs -I"$here" $srcs $(pkgc --cflags $mods) $libs \
      -o "$dir/pc_static" && run_checked "$name" "$dir/pc_static" static "$log"; } \
    > "$log" 2>&1 || st=1
  result "$name pkg-config static" $st "$log"
}

consumer engine "" OFF OFF
has rpc && consumer rpc "" OFF ON
has config && consumer config "" OFF OFF ON
for loop in epoll uv kqueue; do
  has $loop || continue
  consumer "$loop" "$loop" OFF OFF
  has tls_openssl && consumer "$loop-tls" "$loop" ON OFF
done

# a component this installation does not have fails find_package, saying so
for c in kqueue uv epoll rpc; do
  has $c && continue
  log=$work/missing-$c.log
  st=0
  cmake -S "$here" -B "$work/missing-$c" -G Ninja -DCMAKE_PREFIX_PATH="$inst" \
    -DCONSUMER_LOOP=$c > "$log" 2>&1 && st=1
  grep -q "component $c is not in this installation" "$log" || st=1
  result "missing component $c fails find_package" $st "$log"
  break
done

echo "package consumers: $passed passed, $failed failed"
[ "$failed" = 0 ]
