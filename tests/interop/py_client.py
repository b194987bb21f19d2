#!/usr/bin/python3
"""Python grpcio (gRPC C-core) client for the demo.Demo service: checks an
sgrpc server against a real gRPC stack. Every check asserts exact results;
the exit status is 0 only if all passed.

usage: py_client.py --target 127.0.0.1:PORT
"""
import argparse
import os
import queue
import signal
import sys
import threading
import time

import grpc

import demo_stubs

pb, pb_grpc = demo_stubs.load()

TIMEOUT = 10  # seconds, for calls that should succeed
results = []


def check(name):
    def wrap(fn):
        def run(stub, channel):
            t0 = time.monotonic()
            try:
                fn(stub, channel)
            except Exception as e:  # a failed assert or an RPC error
                results.append((name, False))
                print("FAIL %-22s %s: %s" % (name, type(e).__name__, e), flush=True)
                return
            results.append((name, True))
            print("PASS %-22s (%.0f ms)" % (name, (time.monotonic() - t0) * 1000), flush=True)
        run.check_name = name
        return run
    return wrap


def expect_error(fn, code):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, "got %s (%r), want %s" % (e.code(), e.details(), code)
        return e
    raise AssertionError("call succeeded, want %s" % code)


@check("unary Say")
def t_say(stub, channel):
    r = stub.Say(pb.Hello(name="py"), timeout=TIMEOUT)
    assert r.text == "hello py", r.text


@check("metadata echo")
def t_md(stub, channel):
    md = (("x-echo-a", "1"), ("x-echo-bin", b"\x00\x01\xfe\xff"), ("x-other", "z"))
    r, call = stub.Say.with_call(pb.Hello(name="md"), metadata=md, timeout=TIMEOUT)
    assert r.text == "hello md", r.text
    init = list(call.initial_metadata())
    trail = list(call.trailing_metadata())
    for got in (init, trail):
        assert ("x-echo-a", "1") in got, got
        assert ("x-echo-bin", b"\x00\x01\xfe\xff") in got, got
        assert not any(k == "x-other" for k, _ in got), got


@check("large unary (1 MB)")
def t_large(stub, channel):
    name = "x" * 1000000
    r = stub.Say(pb.Hello(name=name), timeout=TIMEOUT)
    assert r.text == "hello " + name, len(r.text)


@check("server stream Count 5")
def t_count(stub, channel):
    got = [r.text for r in stub.Count(pb.CountReq(n=5, prefix="n"), timeout=TIMEOUT)]
    assert got == ["n %d" % i for i in range(1, 6)], got


@check("server stream Count 3000")
def t_count_big(stub, channel):
    prefix = "p" * 300  # ~1 MB in total: crosses flow-control windows
    n = 0
    for r in stub.Count(pb.CountReq(n=3000, prefix=prefix), timeout=TIMEOUT):
        n += 1
        assert r.text == "%s %d" % (prefix, n), r.text[-10:]
    assert n == 3000, n


@check("client stream Sum")
def t_sum(stub, channel):
    t = stub.Sum(iter([pb.Num(value=i) for i in range(1, 1001)]), timeout=TIMEOUT)
    assert (t.sum, t.count) == (500500, 1000), (t.sum, t.count)


@check("client stream Sum empty")
def t_sum_empty(stub, channel):
    t = stub.Sum(iter([]), timeout=TIMEOUT)
    assert (t.sum, t.count) == (0, 0), (t.sum, t.count)


@check("bidi Chat batch")
def t_chat(stub, channel):
    names = ["n%d" % i for i in range(50)]
    got = [r.text for r in stub.Chat(iter([pb.Hello(name=n) for n in names]), timeout=TIMEOUT)]
    assert got == ["echo: " + n for n in names], got


@check("bidi Chat ping-pong")
def t_chat_pingpong(stub, channel):
    # The next request is sent only after the reply to the previous one
    # arrived: a server that answered only after half-close would hang.
    q = queue.Queue()

    def requests():
        while True:
            item = q.get(timeout=TIMEOUT)
            if item is None:
                return
            yield item

    q.put(pb.Hello(name="r0"))
    got = []
    for r in stub.Chat(requests(), timeout=TIMEOUT):
        got.append(r.text)
        if len(got) < 20:
            q.put(pb.Hello(name="r%d" % len(got)))
        else:
            q.put(None)
    assert got == ["echo: r%d" % i for i in range(20)], got


@check("deadline exceeded")
def t_deadline(stub, channel):
    t0 = time.monotonic()
    expect_error(lambda: stub.Sleep(pb.Hello(name="z", sleep_ms=3000), timeout=0.5),
                 grpc.StatusCode.DEADLINE_EXCEEDED)
    el = time.monotonic() - t0
    assert el < 2.5, "took %.2f s" % el


@check("Sleep within deadline")
def t_sleep_ok(stub, channel):
    r = stub.Sleep(pb.Hello(name="z", sleep_ms=100), timeout=TIMEOUT)
    assert r.text == "slept 100", r.text


@check("unknown method")
def t_unimpl(stub, channel):
    m = channel.unary_unary("/demo.Demo/NoSuchMethod")
    expect_error(lambda: m(b"", timeout=TIMEOUT), grpc.StatusCode.UNIMPLEMENTED)
    m2 = channel.unary_unary("/nope.Nope/X")
    expect_error(lambda: m2(b"", timeout=TIMEOUT), grpc.StatusCode.UNIMPLEMENTED)


@check("error status, non-ASCII")
def t_fail(stub, channel):
    e = expect_error(lambda: stub.Fail(pb.Hello(name="py\u00e9"), timeout=TIMEOUT),
                     grpc.StatusCode.INVALID_ARGUMENT)
    want = "demo failure for py\u00e9" + demo_stubs.FAIL_SUFFIX
    assert e.details() == want, repr(e.details())


@check("client cancel")
def t_cancel(stub, channel):
    it = stub.Count(pb.CountReq(n=1000000, prefix="c"), timeout=TIMEOUT)
    for i, r in enumerate(it):
        if i == 9:
            break
    it.cancel()
    try:
        next(it)
        raise AssertionError("stream went on after cancel")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.CANCELLED, e.code()
    r = stub.Say(pb.Hello(name="after"), timeout=TIMEOUT)  # server still fine
    assert r.text == "hello after", r.text


@check("200 concurrent calls")
def t_concurrent(stub, channel):
    futs = [stub.Say.future(pb.Hello(name="c%d" % i), timeout=TIMEOUT) for i in range(200)]
    for i, f in enumerate(futs):
        assert f.result().text == "hello c%d" % i


def graceful_shutdown(stub, server_pid):
    """SIGTERMs the server while a call is in flight: the call must still
    complete (GOAWAY lets it finish), the server must then exit."""
    name = "graceful shutdown"
    f = stub.Sleep.future(pb.Hello(name="g", sleep_ms=1000), timeout=TIMEOUT)
    time.sleep(0.3)
    os.kill(server_pid, signal.SIGTERM)
    try:
        r = f.result()
        assert r.text == "slept 1000", r.text
        # After the GOAWAY the channel must not reuse the connection, and
        # the listener is gone: a new call fails UNAVAILABLE.
        time.sleep(0.2)
        expect_error(lambda: stub.Say(pb.Hello(name="late"), timeout=2),
                     grpc.StatusCode.UNAVAILABLE)
    except Exception as e:
        results.append((name, False))
        print("FAIL %-22s %s: %s" % (name, type(e).__name__, e), flush=True)
        return
    results.append((name, True))
    print("PASS %-22s" % name, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--server-pid", type=int, default=0,
                    help="finish with a graceful-shutdown check on this server")
    args = ap.parse_args()
    with grpc.insecure_channel(args.target) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        stub = pb_grpc.DemoStub(channel)
        for t in (t_say, t_md, t_large, t_count, t_count_big, t_sum, t_sum_empty, t_chat,
                  t_chat_pingpong, t_deadline, t_sleep_ok, t_unimpl, t_fail, t_cancel,
                  t_concurrent):
            t(stub, channel)
        if args.server_pid:
            graceful_shutdown(stub, args.server_pid)
    passed = sum(1 for _, ok in results if ok)
    print("py-client: %d of %d checks passed" % (passed, len(results)), flush=True)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
