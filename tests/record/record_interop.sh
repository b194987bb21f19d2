#!/bin/bash
# Records real connections between sgrpc and another gRPC stack and
# checks what sgrpc-trace makes of them:
#
#   record_interop.sh MODE BIN_DIR TRACE FUZZ_DIR
#
# MODE is a tests/interop/run.sh mode (py-client, go-client: the sgrpc
# server is recorded; sgrpc-client, sgrpc-client-go: the sgrpc client is).
# The run itself must pass with SGRPC_RECORD_DIR set (the demo programs
# honour it without any code of their own); then every recording must
#   - replay identically (sgrpc-trace replay, exit 0),
#   - print as frames and events (sgrpc-trace print, exit 0, calls seen),
#   - with one received byte flipped, replay to a difference at that
#     record whose replayed result is the protocol error (exit 1),
#   - become a fuzz input (sgrpc-trace to-corpus) named by its SHA-1 that
#     the fuzz target's replay binary in FUZZ_DIR runs cleanly.
# Exits 77 (ctest SKIP_RETURN_CODE) only when the peer is not installed.
set -u
mode=${1:?usage: record_interop.sh MODE BIN_DIR TRACE FUZZ_DIR}
bin=${2:?}
trace=${3:?}
fuzz_dir=${4:?}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
case $mode in
  py-client|sgrpc-client)
    "$py" -c 'import grpc' 2> /dev/null || { echo "SKIP: python3-grpcio not installed"; exit 77; } ;;
  go-client|sgrpc-client-go)
    go_dir=${GO_DEMO_DIR:-$bin/interop-go}
    [ -x "$go_dir/go-demo-client" ] || { echo "SKIP: grpc-go peers not built"; exit 77; } ;;
esac
case $mode in
  py-client|go-client) role=server ;;
  *) role=client ;;
esac
work=$(mktemp -d /tmp/sgrpc-record.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "record_interop: FAIL ($mode): $*"; exit 1; }

mkdir "$work/rec"
SGRPC_RECORD_DIR="$work/rec" "$here/../interop/run.sh" "$mode" "$bin" epoll plaintext \
  > "$work/run.log" 2>&1 || { tail -30 "$work/run.log"; fail "the interop run failed"; }
files=("$work/rec"/sgrpc-$role-*.sgrec)
[ -e "${files[0]}" ] || fail "no $role recording in $work/rec: $(ls "$work/rec")"
echo "record_interop: $mode: ${#files[@]} $role recording(s)"

for f in "${files[@]}"; do
  out=$("$trace" replay "$f") || fail "replay of $(basename "$f") differs: $out"
  echo "  $out"
  "$trace" print "$f" > "$work/print.txt" || fail "print of $f failed"
  if [ $role = server ]; then
    grep -q '^= CALL_NEW stream=1 path="/demo.Demo/' "$work/print.txt" || fail "print shows no CALL_NEW"
    grep -q '^< PREFACE$' "$work/print.txt" || fail "print shows no client preface"
    grep -q '^! status stream=1 code=' "$work/print.txt" || fail "print shows no status"
  else
    grep -q '^! start path="/demo.Demo/' "$work/print.txt" || fail "print shows no call start"
    grep -q '^> PREFACE$' "$work/print.txt" || fail "print shows no preface"
    grep -q '^= CLOSE stream=1 code=' "$work/print.txt" || fail "print shows no CLOSE"
  fi
  grep -q '^  msg flag=0 len=' "$work/print.txt" || fail "print shows no message"
done

# A flipped byte of the first bytes received: the client preface for a
# server, the type of the server's first frame (SETTINGS -> DATA on stream
# 0) for a client. The replay must stop there: for a server at that very
# record, whose replayed result is the protocol error the engine gives
# for a bad preface; for a client (nghttp2 takes the bytes and answers
# with GOAWAY instead of failing the read) at that record or the event
# pulled right after it.
f=${files[0]}
"$trace" records "$f" > "$work/records.txt" || fail "records failed"
idx_off=$(awk '$3 == "RECV" {print $1, $5; exit}' "$work/records.txt")
[ -n "$idx_off" ] || fail "no RECV record"
set -- $idx_off
"$py" - "$f" "$work/flipped.sgrec" "$2" "$role" << 'PYEOF' || fail "flipping failed"
import sys
src, dst, off, role = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d = bytearray(open(src, 'rb').read())
while d[off] & 0x80:  # the recv result (a varint) comes before the bytes
    off += 1
off += 1
if role == 'server':
    d[off] ^= 0x01        # "PRI *" -> "QRI *"
else:
    d[off + 3] ^= 0x04    # SETTINGS (4) -> DATA (0) on stream 0
open(dst, 'wb').write(d)
PYEOF
out=$("$trace" replay "$work/flipped.sgrec"); rc=$?
[ $rc = 1 ] || fail "a flipped byte replayed with exit $rc: $out"
echo "  flipped: $out"
if [ $role = server ]; then
  case $out in
    *"record $1 (RECV"*"got -901 (peer violated the HTTP/2 protocol)"*) ;;
    *) fail "the flipped byte was not reported as a protocol error at record $1: $out" ;;
  esac
else
  case $out in
    *"record $1 (RECV"*|*"record $(($1 + 1)) (EVENT"*) ;;
    *) fail "the flipped byte was not reported at record $1 or the event after it: $out" ;;
  esac
fi

# The recording as a fuzz input.
out=$("$trace" to-corpus -o "$work/corpus" "$f") || fail "to-corpus failed: $out"
entry=$(ls "$work/corpus/$role/")
[ "$(echo "$entry" | wc -l)" = 1 ] || fail "to-corpus wrote: $entry"
[ "$(sha1sum < "$work/corpus/$role/$entry" | cut -c1-40)" = "$entry" ] || fail "corpus file not named by its SHA-1"
[ "$(head -c 2 "$work/corpus/$role/$entry" | od -An -tx1 | tr -d ' ')" = 0000 ] || fail "corpus header bytes"
if [ $role = server ]; then
  [ "$(head -c 26 "$work/corpus/$role/$entry" | tail -c 24)" = "$(printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')" ] || fail "corpus entry does not start with the preface"
fi
"$fuzz_dir/fuzz_${role}_replay" "$work/corpus/$role/$entry" > "$work/fuzz.log" 2>&1 || { cat "$work/fuzz.log"; fail "fuzz_${role}_replay failed on the entry"; }
echo "record_interop: $mode: PASS"
