#!/bin/bash
# Runs gRPC Python's official interop client (tests/interop/client.py of
# gRPC 1.51's grpcio_tests, laid out by build.sh) unchanged on Debian's
# python3-grpcio, under the flags run_matrix.sh passes to every client.
# SGRPC_PY_OFFICIAL_DIR is build.sh's OUT_DIR (bin/python-official-client
# sets it).
#
# The official client has no --ca_file: with --use_test_ca=true it trusts
# only its bundled tests/interop/credentials/ca.pem. A --ca_file naming that
# same CA (cmp) is dropped; any other CA is refused (exit 3, "UNSUPPORTED:
# ..."), never silently ignored. Every other flag goes through as it is.
# The client prints nothing and exits 0 on a pass; on a failure it raises.
# The last stdout line is then "FAIL: exit status N: " and the exception
# (or argparse's error) on one line.
set -u
dir=${SGRPC_PY_OFFICIAL_DIR:?SGRPC_PY_OFFICIAL_DIR: build.sh OUT_DIR}
ca=$dir/tests/interop/credentials/ca.pem
args=()
for a in "$@"; do
  case $a in
    --ca_file=*)
      if ! cmp -s "${a#--ca_file=}" "$ca"; then
        echo "UNSUPPORTED: the official Python client trusts only its bundled test CA ($ca), not ${a#--ca_file=}"
        exit 3
      fi ;;
    *) args+=("$a") ;;
  esac
done
err=$(mktemp) || exit 1
# -P: the working directory is not put on sys.path (a tests/ there must not
# shadow the official package).
PYTHONPATH=$dir /usr/bin/python3 -P -m tests.interop.client "${args[@]}" 2> "$err"
rc=$?
if [ "$rc" != 0 ]; then
  # The exception: the lines after the last traceback frame line (frames
  # are indented by two spaces), without C-core log lines; else the last
  # non-empty line (argparse's "error: ...").
  reason=$(grep -v -E '^[EIWD][0-9]{4} ' "$err" | awk '
    /^  / { n = 0; next }
    /^Traceback|^During handling|^The above exception/ { n = 0; next }
    NF { a[++n] = $0 }
    END { s = ""; for (i = 1; i <= n; i++) s = s " " a[i]; print s }' |
    tr -s ' \t' '  ' | sed 's/^ //' | cut -c1-400)
  echo "FAIL: exit status $rc: ${reason:-no error text}"
fi
cat "$err" >&2
rm -f "$err"
exit "$rc"
