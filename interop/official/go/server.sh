#!/bin/bash
# Runs gRPC-Go's own interop server (interop/server/server.go of grpc-go
# 1.33.3, built by build.sh) under the flags run_matrix.sh passes to every
# server: --port, --use_tls, --tls_cert_file, --tls_key_file are the Go
# server's own flags, so all arguments go through unchanged.
# SGRPC_GO_OFFICIAL_BIN is the built program (bin/go-official-server sets
# it). Its only difference from the shipped code is the listen address,
# 127.0.0.1:PORT instead of :PORT (see build.sh). It prints nothing when
# ready; run_matrix.sh waits for the port to listen. SIGTERM ends it (Go's
# default action).
set -u
bin=${SGRPC_GO_OFFICIAL_BIN:?SGRPC_GO_OFFICIAL_BIN: the built official Go interop server}
exec "$bin" "$@"
