#!/usr/bin/python3
"""Python grpcio (gRPC C-core) client for the demo.Demo service: checks an
sgrpc server against a real gRPC stack. Every check asserts exact results;
the exit status is 0 only if all passed.

usage: py_client.py --target 127.0.0.1:PORT [--ca PEM [--cert PEM --key PEM]]
With --ca the channel is TLS (the server's name is checked against the
target's host), with --cert/--key it shows a client certificate.
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


@check("compression both ways")
def t_compress(stub, channel):
    """C-core compresses the request, sgrpc must see the compressed flag and
    inflate it; sgrpc compresses the reply, C-core must inflate it."""
    name = "z" * 3000
    for comp, enc in ((grpc.Compression.Gzip, "gzip"), (grpc.Compression.Deflate, "deflate")):
        r, call = stub.Say.with_call(pb.Hello(name=name), compression=comp,
                                     metadata=(("x-compress-response", enc),),
                                     timeout=TIMEOUT)
        assert r.text == "hello " + name, r.text[:40]
        tr = dict(call.trailing_metadata())
        assert tr.get("x-request-compressed") == "1", tr
        assert tr.get("x-response-encoding") == enc, tr
    r, call = stub.Say.with_call(pb.Hello(name="plain"), timeout=TIMEOUT)
    tr = dict(call.trailing_metadata())
    assert tr.get("x-request-compressed") == "0", tr
    assert tr.get("x-response-encoding") == "identity", tr


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


def graceful_shutdown(stub, server_pid, server_log):
    """SIGTERMs the server under load: 100 Sleep calls in flight plus a
    stream of new Say calls. Every call must end OK or, if the server never
    took it, UNAVAILABLE; every Sleep that was in flight must end OK; and
    the server's count of calls that ended OK must equal the client's."""
    name = "graceful shutdown under load"
    try:
        sleeps = [stub.Sleep.future(pb.Hello(name="g%d" % i, sleep_ms=800), timeout=TIMEOUT)
                  for i in range(100)]
        time.sleep(0.3)  # all 100 are accepted and sleeping
        says = []
        stop = time.monotonic() + 1.5
        killed = False
        while time.monotonic() < stop:
            says.append(stub.Say.future(pb.Hello(name="l"), timeout=TIMEOUT))
            if not killed and len(says) >= 50:
                os.kill(server_pid, signal.SIGTERM)
                killed = True
            time.sleep(0.005)
        assert killed
        for f in sleeps:
            r = f.result()  # raises if any accepted call was lost
            assert r.text == "slept 800", r.text
        ok_says = 0
        for f in says:
            try:
                assert f.result().text == "hello l"
                ok_says += 1
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
        assert ok_says >= 50, ok_says  # the ones before the signal
        client_ok = ok_says + len(sleeps)
        # the server exits by itself after draining; then compare counts
        for _ in range(100):
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        if server_log:
            with open(server_log) as fh:
                log = fh.read()
            shutdown_at = log.find("graceful shutdown")
            assert shutdown_at >= 0, "no graceful shutdown in the server log"
            server_ok = log.count("Sleep ended OK") + log.count("Say ended OK") - before_ok[0]
            assert server_ok == client_ok, "server ended %d calls OK, client saw %d" % (
                server_ok, client_ok)
    except Exception as e:
        results.append((name, False))
        print("FAIL %-22s %s: %s" % (name, type(e).__name__, e), flush=True)
        return
    results.append((name, True))
    print("PASS %-22s (%d Sleep + %d Say OK)" % (name, len(sleeps), ok_says), flush=True)


before_ok = [0]


def count_ok(server_log):
    if not server_log:
        return 0
    with open(server_log) as fh:
        log = fh.read()
    return log.count("Sleep ended OK") + log.count("Say ended OK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--server-pid", type=int, default=0,
                    help="finish with a graceful-shutdown check on this server")
    ap.add_argument("--server-log", default="",
                    help="the server's log, to compare its count of finished calls")
    ap.add_argument("--ca", default="", help="TLS: trust this CA (PEM)")
    ap.add_argument("--cert", default="", help="TLS: client certificate (PEM)")
    ap.add_argument("--key", default="", help="TLS: client key (PEM)")
    args = ap.parse_args()
    if args.ca:
        def read(path):
            with open(path, "rb") as fh:
                return fh.read()
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca),
            private_key=read(args.key) if args.key else None,
            certificate_chain=read(args.cert) if args.cert else None)
        channel = grpc.secure_channel(args.target, creds)
    else:
        channel = grpc.insecure_channel(args.target)
    with channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        stub = pb_grpc.DemoStub(channel)
        for t in (t_say, t_md, t_compress, t_large, t_count, t_count_big, t_sum, t_sum_empty, t_chat,
                  t_chat_pingpong, t_deadline, t_sleep_ok, t_unimpl, t_fail, t_cancel,
                  t_concurrent):
            t(stub, channel)
        if args.server_pid:
            time.sleep(0.2)  # let the server log the calls above
            before_ok[0] = count_ok(args.server_log)
            graceful_shutdown(stub, args.server_pid, args.server_log)
    passed = sum(1 for _, ok in results if ok)
    print("py-client: %d of %d checks passed" % (passed, len(results)), flush=True)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
