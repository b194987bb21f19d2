#!/bin/sh
# ctest codegen_installed_consumer: installs the build tree into a temporary
# prefix, then configures, builds and runs tests/codegen/consumer with
# find_package(sgrpc) and sgrpc_generate() from that prefix alone.
#   run.sh BUILD_DIR WORK_DIR [extra C flags, e.g. -fsanitize=...]
set -eu
build=$1 work=$2
shift 2
flags="$*"
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
# the plugin must come from the prefix, not from PATH or the build tree
test -x "$work/prefix/bin/protoc-gen-sgrpc"
cmake -S "$here" -B "$work/b" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
  > "$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
grep -q "SGRPC_PROTOC_GEN_SGRPC:FILEPATH=$work/prefix/bin/protoc-gen-sgrpc" "$work/b/CMakeCache.txt"
ninja -C "$work/b" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
LD_LIBRARY_PATH="$(dirname "$(find "$work/prefix" -name 'libsgrpc-rpc.so' | head -n 1)")" \
  "$work/b/greet_shared"
"$work/b/greet_static"
if ldd "$work/b/greet_static" | grep -q libsgrpc; then
  echo "greet_static links a shared libsgrpc"; exit 1
fi
echo "consumer: shared and static builds from the installed package work"
