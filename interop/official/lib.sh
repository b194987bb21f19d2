# Shell functions shared by interop/build_peers.sh and the build scripts of
# the official interop programs (source it; it sets no options).

# need_packages WHO PKG...: installs the Debian packages not yet installed
# (as root, unless SGRPC_NO_APT=1); returns 1 with a message naming WHO
# when they stay missing. One implementation for every script: the one of
# scripts/packages.sh.
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/packages.sh"
need_packages() { sgrpc_need_packages "$@"; }

# write_wrapper FILE VAR VALUE SCRIPT: makes FILE an executable that runs
# SCRIPT with its arguments and VAR=VALUE in the environment.
write_wrapper() {
  printf '#!/bin/sh\nexport %s="%s"\nexec "%s" "$@"\n' "$2" "$3" "$4" > "$1" && chmod +x "$1"
}
