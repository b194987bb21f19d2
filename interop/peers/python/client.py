#!/usr/bin/python3
"""grpc.testing.TestService interop client on Python grpcio (gRPC C-core),
written from grpc/grpc doc/interop-test-descriptions.md.

usage: client.py --server_host=H --server_port=P --test_case=NAME
                 [--use_tls=true [--use_test_ca=true --ca_file=F]
                  [--server_host_override=NAME]]
Exit status: 0 the case passed; 1 it failed (one line on stdout says why);
3 this client cannot perform the case (a limitation of grpcio, listed in
../LIMITATIONS.md); 2 bad usage.
"""
import argparse
import queue
import sys
import threading

import grpc

import stubs

empty_pb2, messages_pb2, test_pb2_grpc = stubs.load()

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_INITIAL_VALUE = "test_initial_metadata_value"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
ECHO_TRAILING_VALUE = b"\xab\xab\xab"
SPECIAL_MESSAGE = ("\t\ntest with whitespace\r\nand Unicode BMP \u263a "
                   "and non-BMP \U0001f608\t\n")
DEADLINE = 20.0  # seconds; bounds every call that is not about deadlines


class Failed(Exception):
    pass


class Unsupported(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def zeros(n):
    return messages_pb2.Payload(body=b"\0" * n)


def check_payload(p, size, what):
    check(len(p.body) == size,
          "%s: payload is %d bytes, want %d" % (what, len(p.body), size))
    check(p.body == b"\0" * size, "%s: payload is not all zeros" % what)


class Pipe:
    """A request iterator the test feeds one message at a time; close()
    half-closes. next() waits at most DEADLINE so no thread hangs forever."""

    def __init__(self):
        self._q = queue.Queue()

    def add(self, msg):
        self._q.put(msg)

    def close(self):
        self._q.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = self._q.get(timeout=DEADLINE)
        except queue.Empty:
            raise StopIteration
        if item is None:
            raise StopIteration
        return item


def expect_code(err_or_call, code, what):
    got = err_or_call.code()
    check(got == code, "%s: status %s, want %s (%s)" %
          (what, got, code, err_or_call.details()))


def empty_unary(stub, _):
    resp = stub.EmptyCall(empty_pb2.Empty(), timeout=DEADLINE)
    check(resp is not None and isinstance(resp, empty_pb2.Empty),
          "EmptyCall returned no Empty")


def large_unary_request(**kw):
    return messages_pb2.SimpleRequest(response_size=314159,
                                      payload=zeros(271828), **kw)


def large_unary(stub, _):
    resp = stub.UnaryCall(large_unary_request(), timeout=DEADLINE)
    check_payload(resp.payload, 314159, "UnaryCall")


def client_streaming(stub, _):
    sizes = (27182, 8, 1828, 45904)
    reqs = [messages_pb2.StreamingInputCallRequest(payload=zeros(n))
            for n in sizes]
    resp = stub.StreamingInputCall(iter(reqs), timeout=DEADLINE)
    check(resp.aggregated_payload_size == 74922,
          "aggregated_payload_size %d, want 74922" %
          resp.aggregated_payload_size)


def server_streaming(stub, _):
    sizes = (31415, 9, 2653, 58979)
    req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=n) for n in sizes])
    got = list(stub.StreamingOutputCall(req, timeout=DEADLINE))
    check(len(got) == 4, "%d responses, want 4" % len(got))
    for i, (resp, n) in enumerate(zip(got, sizes)):
        check_payload(resp.payload, n, "response %d" % i)


def ping_pong(stub, _):
    pairs = ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904))
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe, timeout=DEADLINE)
    try:
        for i, (out, body) in enumerate(pairs):
            pipe.add(messages_pb2.StreamingOutputCallRequest(
                response_parameters=[messages_pb2.ResponseParameters(size=out)],
                payload=zeros(body)))
            resp = next(call, None)
            check(resp is not None, "no response %d" % i)
            check_payload(resp.payload, out, "response %d" % i)
        pipe.close()
        extra = list(call)
        check(not extra, "%d responses after the fourth" % len(extra))
        expect_code(call, grpc.StatusCode.OK, "FullDuplexCall")
    finally:
        pipe.close()


def empty_stream(stub, _):
    got = list(stub.FullDuplexCall(iter(()), timeout=DEADLINE))
    check(not got, "%d responses, want 0" % len(got))


def timeout_on_sleeping_server(stub, _):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe, timeout=0.001)
    try:
        pipe.add(messages_pb2.StreamingOutputCallRequest(payload=zeros(27182)))
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass
        expect_code(call, grpc.StatusCode.DEADLINE_EXCEEDED, "FullDuplexCall")
    finally:
        pipe.close()


def cancel_after_begin(stub, _):
    pipe = Pipe()
    fut = stub.StreamingInputCall.future(pipe, timeout=DEADLINE)
    try:
        fut.cancel()
        check(fut.cancelled(), "call not cancelled")
        expect_code(fut, grpc.StatusCode.CANCELLED, "StreamingInputCall")
    finally:
        pipe.close()


def cancel_after_first_response(stub, _):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe, timeout=DEADLINE)
    try:
        pipe.add(messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=31415)],
            payload=zeros(27182)))
        resp = next(call, None)
        check(resp is not None, "no first response")
        check_payload(resp.payload, 31415, "first response")
        call.cancel()
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass
        expect_code(call, grpc.StatusCode.CANCELLED, "FullDuplexCall")
    finally:
        pipe.close()


def check_echoed(call, what):
    initial = [v for k, v in call.initial_metadata() if k == ECHO_INITIAL]
    check(initial == [ECHO_INITIAL_VALUE],
          "%s: initial metadata %s = %r, want [%r]" %
          (what, ECHO_INITIAL, initial, ECHO_INITIAL_VALUE))
    trailing = [v for k, v in call.trailing_metadata() if k == ECHO_TRAILING]
    check(trailing == [ECHO_TRAILING_VALUE],
          "%s: trailing metadata %s = %r, want [%r]" %
          (what, ECHO_TRAILING, trailing, ECHO_TRAILING_VALUE))


def custom_metadata(stub, _):
    md = ((ECHO_INITIAL, ECHO_INITIAL_VALUE),
          (ECHO_TRAILING, ECHO_TRAILING_VALUE))
    resp, call = stub.UnaryCall.with_call(large_unary_request(), metadata=md,
                                          timeout=DEADLINE)
    check_payload(resp.payload, 314159, "UnaryCall")
    check_echoed(call, "UnaryCall")

    req = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)],
        payload=zeros(271828))
    call = stub.FullDuplexCall(iter((req,)), metadata=md, timeout=DEADLINE)
    got = list(call)
    check(len(got) == 1, "FullDuplexCall: %d responses, want 1" % len(got))
    check_payload(got[0].payload, 314159, "FullDuplexCall")
    expect_code(call, grpc.StatusCode.OK, "FullDuplexCall")
    check_echoed(call, "FullDuplexCall")


def expect_status_unary(stub, code, message):
    req = messages_pb2.SimpleRequest(
        response_status=messages_pb2.EchoStatus(code=code, message=message))
    try:
        stub.UnaryCall(req, timeout=DEADLINE)
    except grpc.RpcError as err:
        check(err.code().value[0] == code,
              "UnaryCall: status %s, want %d" % (err.code(), code))
        check(err.details() == message,
              "UnaryCall: message %r, want %r" % (err.details(), message))
        return
    raise Failed("UnaryCall succeeded, want status %d" % code)


def status_code_and_message(stub, _):
    msg = "test status message"
    expect_status_unary(stub, 2, msg)
    req = messages_pb2.StreamingOutputCallRequest(
        response_status=messages_pb2.EchoStatus(code=2, message=msg))
    call = stub.FullDuplexCall(iter((req,)), timeout=DEADLINE)
    try:
        for _ in call:
            pass
    except grpc.RpcError:
        pass
    check(call.code() == grpc.StatusCode.UNKNOWN,
          "FullDuplexCall: status %s, want UNKNOWN" % call.code())
    check(call.details() == msg,
          "FullDuplexCall: message %r, want %r" % (call.details(), msg))


def special_status_message(stub, _):
    expect_status_unary(stub, 2, SPECIAL_MESSAGE)


def unimplemented_method(stub, _):
    try:
        stub.UnimplementedCall(empty_pb2.Empty(), timeout=DEADLINE)
    except grpc.RpcError as err:
        expect_code(err, grpc.StatusCode.UNIMPLEMENTED, "UnimplementedCall")
        return
    raise Failed("UnimplementedCall succeeded")


def unimplemented_service(_, channel):
    stub = test_pb2_grpc.UnimplementedServiceStub(channel)
    try:
        stub.UnimplementedCall(empty_pb2.Empty(), timeout=DEADLINE)
    except grpc.RpcError as err:
        expect_code(err, grpc.StatusCode.UNIMPLEMENTED,
                    "UnimplementedService/UnimplementedCall")
        return
    raise Failed("UnimplementedService/UnimplementedCall succeeded")


def client_compressed_unary(stub, _):
    # Probe: an uncompressed message that claims to be compressed.
    probe = large_unary_request(
        expect_compressed=messages_pb2.BoolValue(value=True))
    try:
        stub.UnaryCall(probe, timeout=DEADLINE)
        raise Failed("probe: uncompressed request with expect_compressed "
                     "succeeded, want INVALID_ARGUMENT")
    except grpc.RpcError as err:
        expect_code(err, grpc.StatusCode.INVALID_ARGUMENT, "probe")
    for compressed in (True, False):
        req = large_unary_request(
            expect_compressed=messages_pb2.BoolValue(value=compressed))
        resp = stub.UnaryCall(
            req, timeout=DEADLINE,
            compression=(grpc.Compression.Gzip if compressed
                         else grpc.Compression.NoCompression))
        check_payload(resp.payload, 314159,
                      "UnaryCall (compressed=%s)" % compressed)


def unsupported(why):
    def run(stub, channel):
        raise Unsupported(why)
    return run


CASES = {
    "empty_unary": empty_unary,
    "large_unary": large_unary,
    "client_streaming": client_streaming,
    "server_streaming": server_streaming,
    "ping_pong": ping_pong,
    "empty_stream": empty_stream,
    "timeout_on_sleeping_server": timeout_on_sleeping_server,
    "cancel_after_begin": cancel_after_begin,
    "cancel_after_first_response": cancel_after_first_response,
    "custom_metadata": custom_metadata,
    "status_code_and_message": status_code_and_message,
    "special_status_message": special_status_message,
    "unimplemented_method": unimplemented_method,
    "unimplemented_service": unimplemented_service,
    "client_compressed_unary": client_compressed_unary,
    "client_compressed_streaming": unsupported(
        "grpcio cannot compress one message of a call and not the next"),
    "server_compressed_unary": unsupported(
        "grpcio does not expose the compressed flag of a received message"),
    "server_compressed_streaming": unsupported(
        "grpcio does not expose the compressed flag of a received message"),
}


def boolean(s):
    return s.lower() == "true"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server_host", default="127.0.0.1")
    ap.add_argument("--server_port", type=int, required=True)
    ap.add_argument("--test_case", required=True)
    ap.add_argument("--use_tls", type=boolean, default=False)
    ap.add_argument("--use_test_ca", type=boolean, default=False)
    ap.add_argument("--ca_file")
    ap.add_argument("--server_host_override")
    args = ap.parse_args()
    if args.test_case not in CASES:
        print("FAIL: unknown test case %s" % args.test_case)
        return 2

    target = "%s:%d" % (args.server_host, args.server_port)
    options = []
    if args.use_tls:
        roots = None
        if args.use_test_ca:
            if not args.ca_file:
                print("FAIL: --use_test_ca needs --ca_file")
                return 2
            with open(args.ca_file, "rb") as f:
                roots = f.read()
        if args.server_host_override:
            options.append(("grpc.ssl_target_name_override",
                            args.server_host_override))
        channel = grpc.secure_channel(
            target, grpc.ssl_channel_credentials(root_certificates=roots),
            options=options)
    else:
        if args.server_host_override:
            options.append(("grpc.default_authority",
                            args.server_host_override))
        channel = grpc.insecure_channel(target, options=options)

    result = [2, "FAIL: case did not finish"]

    def run():
        try:
            with channel:
                CASES[args.test_case](
                    test_pb2_grpc.TestServiceStub(channel), channel)
            result[:] = [0, "PASS"]
        except Unsupported as e:
            result[:] = [3, "UNSUPPORTED: %s" % e]
        except Failed as e:
            result[:] = [1, "FAIL: %s" % e]
        except grpc.RpcError as e:
            result[:] = [1, "FAIL: RPC failed: %s %r" % (e.code(), e.details())]
        except Exception as e:  # any other error fails the case
            result[:] = [1, "FAIL: %s: %s" % (type(e).__name__, e)]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60.0)
    if t.is_alive():
        result[:] = [1, "FAIL: case still running after 60 s"]
    print(result[1].replace("\n", "\\n"), flush=True)
    return result[0]


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # os._exit: do not wait for grpc's threads (a hung case must not hang us).
    import os
    os._exit(code)
