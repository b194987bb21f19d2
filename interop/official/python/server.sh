#!/bin/bash
# Runs gRPC Python's official interop server (tests/interop/server.py of
# gRPC 1.51's grpcio_tests, laid out by build.sh) unchanged on Debian's
# python3-grpcio, under the flags run_matrix.sh passes to every server.
# SGRPC_PY_OFFICIAL_DIR is build.sh's OUT_DIR.
#
# server.py listens on "[::]:PORT"; loopback_shim.so (LD_PRELOAD) makes
# that bind ::ffff:127.0.0.1 and refuses SO_REUSEPORT, nothing else. It
# prints no "listening" line (run_matrix waits for the port). It has no
# --tls_cert_file/--tls_key_file: with --use_tls=true it always presents
# its bundled tests/interop/credentials/server1.pem and server1.key. Those
# flags are dropped when they name exactly these files (cmp) and refused
# otherwise (exit 3, "UNSUPPORTED: ..."). The Python process is exec'd, so
# run_matrix's SIGTERM reaches it and ends it at once: Python leaves
# SIGTERM at its default action (about 15 ms here, no KILL needed).
set -u
dir=${SGRPC_PY_OFFICIAL_DIR:?SGRPC_PY_OFFICIAL_DIR: build.sh OUT_DIR}
cred=$dir/tests/interop/credentials
args=()
for a in "$@"; do
  case $a in
    --tls_cert_file=*|--tls_key_file=*)
      f=${a#*=}
      want=$cred/server1.pem
      [ "${a%%=*}" = --tls_key_file ] && want=$cred/server1.key
      if ! cmp -s "$f" "$want"; then
        echo "UNSUPPORTED: the official Python server only presents its bundled $want, not $f"
        echo "python-official-server: UNSUPPORTED: only its bundled $want, not $f" >&2
        exit 3
      fi ;;
    *) args+=("$a") ;;
  esac
done
export PYTHONPATH=$dir
export LD_PRELOAD=$dir/loopback_shim.so${LD_PRELOAD:+:$LD_PRELOAD}
exec /usr/bin/python3 -P -m tests.interop.server "${args[@]}"
