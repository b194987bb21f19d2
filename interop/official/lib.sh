# Shell functions shared by interop/build_peers.sh and the build scripts of
# the official interop programs (source it; it sets no options).

# need_packages WHO PKG...: installs the Debian packages not yet installed
# (as root, unless SGRPC_NO_APT=1; one apt-get update and retry on
# failure). Returns 1 with a message naming WHO when they stay missing.
need_packages() {
  local who=$1 p missing=
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing="$missing $p"
  done
  [ -n "$missing" ] || return 0
  if [ "${SGRPC_NO_APT:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
    echo "$who: missing Debian packages:$missing (not root or SGRPC_NO_APT=1: not installing)" >&2
    return 1
  fi
  echo "$who: installing$missing"
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends $missing ||
    { timeout 300 apt-get update &&
      DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends $missing; } ||
    { echo "$who: apt-get install$missing failed" >&2; return 1; }
}

# write_wrapper FILE VAR VALUE SCRIPT: makes FILE an executable that runs
# SCRIPT with its arguments and VAR=VALUE in the environment.
write_wrapper() {
  printf '#!/bin/sh\nexport %s="%s"\nexec "%s" "$@"\n' "$2" "$3" "$4" > "$1" && chmod +x "$1"
}
