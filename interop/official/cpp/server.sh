#!/bin/bash
# Runs gRPC C++'s official interop server (test/cpp/interop/
# interop_server_bootstrap.cc + interop_server.cc of the grpc 1.51.1 source,
# built unchanged by build.sh) under the flags run_matrix.sh passes to every
# server: --port, --use_tls, --tls_cert_file, --tls_key_file are its own.
# SGRPC_CPP_OFFICIAL_DIR is build.sh's OUT_DIR.
#
# The server listens on 0.0.0.0:PORT with SO_REUSEPORT; loopback_shim.so
# (LD_PRELOAD, interop/official/loopback_shim.c) keeps it on 127.0.0.1 and
# refuses SO_REUSEPORT, so nothing else changes in it.
# When its port cannot be bound it logs the error and keeps running without
# listening (RunServer ignores BuildAndStart's nullptr); a port something
# already listens on is therefore refused here (exit 2) before it starts.
# It silently falls back to its compiled-in server1 cert/key when either TLS
# file flag is missing or a file is unreadable; that is refused here.
set -u
dir=${SGRPC_CPP_OFFICIAL_DIR:?SGRPC_CPP_OFFICIAL_DIR: build.sh OUT_DIR}
cert= key= port=
for a in "$@"; do
  case $a in
    --port=*) port=${a#*=} ;;
    --tls_cert_file=*) cert=${a#*=} ;;
    --tls_key_file=*) key=${a#*=} ;;
  esac
done
if [ -n "$cert$key" ]; then
  if [ -z "$cert" ] || [ -z "$key" ] || [ ! -r "$cert" ] || [ ! -r "$key" ]; then
    echo "cpp-official-server: --tls_cert_file and --tls_key_file must both name readable files (got '$cert', '$key')" >&2
    exit 2
  fi
fi
if [ -n "$port" ] && [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
  echo "cpp-official-server: port $port is already in use" >&2
  exit 2
fi
export LD_PRELOAD="$dir/lib/loopback_shim.so${LD_PRELOAD:+:$LD_PRELOAD}"
exec "$dir/libexec/interop_server" "$@"
