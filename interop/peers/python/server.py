#!/usr/bin/python3
"""grpc.testing.TestService interop server on Python grpcio (gRPC C-core),
written from grpc/grpc doc/interop-test-descriptions.md.

usage: server.py --port=PORT [--use_tls=true --tls_cert_file=F --tls_key_file=F]
Listens on 127.0.0.1 only, prints "listening" once serving; SIGTERM stops it.

Known limitation: grpcio gives a servicer no way to see whether a received
message had the compressed flag set, so the CompressedRequest feature
(expect_compressed) is not implemented (see ../LIMITATIONS.md).
"""
import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import stubs

empty_pb2, messages_pb2, test_pb2_grpc = stubs.load()

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
CODES = {c.value[0]: c for c in grpc.StatusCode}


def echo_metadata(context):
    """Echo Metadata feature: the initial key goes back as initial metadata
    (sent now), the trailing one as trailing metadata."""
    initial = []
    trailing = []
    for key, value in context.invocation_metadata():
        if key == ECHO_INITIAL:
            initial.append((key, value))
        elif key == ECHO_TRAILING:
            trailing.append((key, value))
    context.send_initial_metadata(tuple(initial))
    if trailing:
        context.set_trailing_metadata(tuple(trailing))


def abort_with(context, echo_status):
    code = CODES.get(echo_status.code, grpc.StatusCode.UNKNOWN)
    context.abort(code, echo_status.message)


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        if request.HasField("response_compressed"):
            context.set_compression(grpc.Compression.Gzip
                                    if request.response_compressed.value
                                    else grpc.Compression.NoCompression)
        echo_metadata(context)
        if request.response_status.code != 0:
            abort_with(context, request.response_status)
        return messages_pb2.SimpleResponse(payload=payload(request.response_size))

    def _respond(self, request, context, compression_set):
        """Yields the responses one StreamingOutputCallRequest asks for,
        observing interval_us and per-message compression."""
        for param in request.response_parameters:
            if param.interval_us > 0:
                time.sleep(param.interval_us / 1e6)
            if param.compressed.value:
                if not compression_set[0]:
                    # Must precede the first message; later messages that
                    # must stay uncompressed disable it one by one.
                    context.set_compression(grpc.Compression.Gzip)
                    compression_set[0] = True
            elif compression_set[0]:
                context.disable_next_message_compression()
            yield messages_pb2.StreamingOutputCallResponse(
                payload=payload(param.size))

    def _will_compress(self, request):
        return any(p.compressed.value for p in request.response_parameters)

    def StreamingOutputCall(self, request, context):
        if self._will_compress(request):
            context.set_compression(grpc.Compression.Gzip)
            compression_set = [True]
        else:
            compression_set = [False]
        echo_metadata(context)
        if request.response_status.code != 0:
            abort_with(context, request.response_status)
        yield from self._respond(request, context, compression_set)

    def StreamingInputCall(self, request_iterator, context):
        echo_metadata(context)
        total = 0
        for request in request_iterator:
            total += len(request.payload.body)
        return messages_pb2.StreamingInputCallResponse(
            aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        compression_set = [False]
        for request in request_iterator:
            if request.response_status.code != 0:
                # Echo Status: close with it, process nothing further.
                abort_with(context, request.response_status)
            if not compression_set[0] and self._will_compress(request):
                context.set_compression(grpc.Compression.Gzip)
                compression_set[0] = True
            yield from self._respond(request, context, compression_set)

    # HalfDuplexCall and UnimplementedCall are left to the generated base
    # class, which fails them with UNIMPLEMENTED.


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--use_tls", default="false")
    ap.add_argument("--tls_cert_file")
    ap.add_argument("--tls_key_file")
    args = ap.parse_args()
    use_tls = args.use_tls.lower() == "true"

    # grpc.so_reuseport=0: C-core would otherwise share a port another
    # process holds instead of failing to bind (run_matrix.sh then retries).
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.so_reuseport", 0)])
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    addr = "127.0.0.1:%d" % args.port
    if use_tls:
        if not args.tls_cert_file or not args.tls_key_file:
            sys.exit("--use_tls=true needs --tls_cert_file and --tls_key_file")
        with open(args.tls_key_file, "rb") as f:
            key = f.read()
        with open(args.tls_cert_file, "rb") as f:
            cert = f.read()
        bound = server.add_secure_port(
            addr, grpc.ssl_server_credentials([(key, cert)]))
    else:
        bound = server.add_insecure_port(addr)
    if bound == 0:
        sys.exit("cannot listen on %s" % addr)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("listening on %s" % addr, flush=True)
    while not stop.wait(1.0):
        pass
    server.stop(1.0).wait(5.0)


if __name__ == "__main__":
    main()
