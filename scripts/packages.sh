# The one list of Debian packages sgrpc's scripts install (sourced by
# scripts/demo, scripts/test and interop/build_peers.sh; nothing else keeps
# a list). scripts/test's package check proves the build part complete:
# every file the -Werror build used from outside the tree belongs to one of
# these packages, to a package they depend on, or to build-essential's
# dependency closure.
#
#   SGRPC_PKGS_BUILD    configure and build every layer, the demo, the tests
#   SGRPC_PKGS_TEST     what scripts/test adds: clang/libFuzzer, valgrind, the
#                       raw-peer and interop clients of the ctest suite, go,
#                       doxygen (the API reference check), the Debian
#                       packaging tools (debian/: dpkg-buildpackage, lintian)
#                       and the proxies of interop/lb (haproxy; nghttpx from
#                       nghttp2-proxy)
#   SGRPC_PKGS_INTEROP  interop/build_peers.sh's peers (grpcio, grpc-go,
#                       grpc++, Ruby)

SGRPC_PKGS_BUILD="build-essential cmake ninja-build pkg-config libnghttp2-dev
  libcmocka-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotoc-dev
  libprotobuf-dev grpc-proto libssl-dev openssl libuv1-dev zlib1g-dev
  libjansson-dev libc-ares-dev"

SGRPC_PKGS_TEST="gcc clang valgrind libfuzzer-14-dev libclang-rt-14-dev
  python3-grpcio python3-grpc-tools nghttp2-client python3-h2 dnsmasq-base
  golang-gitaly-proto-dev golang-go golang-google-grpc-dev golang-goprotobuf-dev
  doxygen debhelper dpkg-dev lintian haproxy nghttp2-proxy"

SGRPC_PKGS_INTEROP="python3-grpcio python3-grpc-tools golang-go golang-google-grpc-dev
  golang-goprotobuf-dev libgrpc++-dev protobuf-compiler protobuf-compiler-grpc
  grpc-proto pkg-config make g++ openssl ruby ruby-grpc iproute2 dpkg-dev"

# sgrpc_need_packages WHO PKG...: installs the packages not yet installed
# (as root, one apt-get update first; SGRPC_NO_APT=1 only checks). Returns
# 0 when all are installed, 1 with a message naming WHO and the missing
# packages otherwise.
sgrpc_need_packages() {
  local who=$1 p missing=
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing="$missing $p"
  done
  [ -n "$missing" ] || return 0
  if [ "${SGRPC_NO_APT:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
    echo "$who: missing Debian packages:$missing (need root to install, and SGRPC_NO_APT unset)" >&2
    return 1
  fi
  echo "$who: installing$missing"
  # a fresh machine has no package lists yet
  timeout 900 apt-get update -qq ||
    { echo "$who: apt-get update failed" >&2; return 1; }
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y -qq --no-install-recommends \
    $missing > /dev/null || { echo "$who: apt-get install$missing failed" >&2; return 1; }
}
