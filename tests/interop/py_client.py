#!/usr/bin/python3
"""Python grpcio (gRPC C-core) client for the demo.Demo service: checks an
sgrpc server against a real gRPC stack. Every check asserts exact results;
the exit status is 0 only if all passed.

usage: py_client.py --target 127.0.0.1:PORT [--ca PEM [--cert PEM --key PEM]]
                    [--server-pid PID --server-log FILE]
With --ca the channel is TLS (the server's name is checked against the
target's host), with --cert/--key it shows a client certificate. With
--server-pid it ends by shutting the server down (SIGTERM) with calls in
flight, and checks what happened against the server's log.
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


class Tally(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
            grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Keeps every call made through the channel, so that once the server
    has exited the client's count of calls that ended OK can be set against
    the server's log. Counting is done from the calls' final status, never
    from timing: a call the client saw end is counted whether or not the
    server had logged it yet."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def _keep(self, call):
        with self.lock:
            self.calls.append(call)
        return call

    def intercept_unary_unary(self, continuation, details, request):
        return self._keep(continuation(details, request))

    def intercept_unary_stream(self, continuation, details, request):
        return self._keep(continuation(details, request))

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return self._keep(continuation(details, request_iterator))

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return self._keep(continuation(details, request_iterator))

    def ok_count(self):
        with self.lock:
            calls = list(self.calls)
        return sum(1 for c in calls if c.code() == grpc.StatusCode.OK)


IN_FLIGHT = 20  # Chat calls open across the start of the shutdown
BOUND = 30      # seconds: an upper bound on waiting for a fact, never a wait by itself


def wait_for_log(server_log, text):
    """Polls the server's log until TEXT is in it (bounded by BOUND).
    Returns the log."""
    end = time.monotonic() + BOUND
    while True:
        with open(server_log) as fh:
            log = fh.read()
        if text in log:
            return log
        if time.monotonic() > end:
            raise AssertionError("no %r in the server log after %d s" % (text, BOUND))
        time.sleep(0.01)


def chat_requests(q):
    while True:
        item = q.get(timeout=BOUND)
        if item is None:
            return
        yield item


def graceful_shutdown(stub, tally, new_channel, server_pid, server_log):
    """SIGTERMs the server with calls in flight and synchronises on facts
    only (replies seen, lines in the server's log), never on timing:
    - IN_FLIGHT Chat calls are opened and each has had a reply before the
      signal, so the server holds them; none can end before the client
      half-closes them, which it does only after the server's log says the
      graceful shutdown began. Each must then still echo a message sent
      after that point and end OK (gRPC: in-flight calls finish).
    - Say calls are started around the signal: each ends OK or, if the
      server never took it, UNAVAILABLE.
    - Once the shutdown began, a call on a new connection is refused
      (UNAVAILABLE), and on the old channel new calls are refused too once
      the GOAWAY got through, while the Chat calls are still open.
    - After the server exited by itself, its log has every Chat ending OK
      after the shutdown line, and its count of calls that ended OK equals
      the client's over the whole run."""
    name = "graceful shutdown"
    chats = []
    try:
        for i in range(IN_FLIGHT):
            q = queue.Queue()
            q.put(pb.Hello(name="in%d-a" % i))
            chats.append((q, stub.Chat(chat_requests(q), timeout=4 * BOUND)))
        for i, (q, it) in enumerate(chats):
            r = next(it)  # the server has this call, and it stays open
            assert r.text == "echo: in%d-a" % i, r.text
        says = [stub.Say.future(pb.Hello(name="l"), timeout=TIMEOUT) for _ in range(50)]
        os.kill(server_pid, signal.SIGTERM)
        t_signal = time.monotonic()
        says += [stub.Say.future(pb.Hello(name="l"), timeout=TIMEOUT) for _ in range(50)]
        wait_for_log(server_log, "graceful shutdown")
        # The listener is closed: a new connection is refused. The channel
        # gets its own subchannel pool: by default grpcio shares subchannels
        # (and so the old connection, which may not have seen the GOAWAY yet)
        # between channels to the same target.
        with new_channel((("grpc.use_local_subchannel_pool", 1),)) as fresh:
            expect_error(lambda: pb_grpc.DemoStub(fresh).Say(pb.Hello(name="new"),
                                                             timeout=TIMEOUT),
                         grpc.StatusCode.UNAVAILABLE)
        # The old channel: calls the server still took (before its final
        # GOAWAY) end OK; once the GOAWAY is seen, new calls are refused.
        end = time.monotonic() + BOUND
        refused = 0
        while not refused:
            assert time.monotonic() < end, "new calls were still taken %d s into the shutdown" % BOUND
            try:
                assert stub.Say(pb.Hello(name="late"), timeout=TIMEOUT).text == "hello late"
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
                refused = 1
        # The in-flight calls still work, and finish OK.
        for i, (q, it) in enumerate(chats):
            q.put(pb.Hello(name="in%d-b" % i))
            r = next(it)
            assert r.text == "echo: in%d-b" % i, r.text
            q.put(None)
            rest = list(it)
            assert rest == [], rest
            assert it.code() == grpc.StatusCode.OK, (it.code(), it.details())
        drained = time.monotonic() - t_signal  # must stay well below the server's 10 s drain
        ok_says = 0
        for f in says:
            try:
                assert f.result().text == "hello l"
                ok_says += 1
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
        # The server exits by itself once drained; "stopped" is its last line.
        log = wait_for_log(server_log, "demo-server: stopped")
        after = log[log.index("graceful shutdown"):]
        assert after.count("Chat ended OK") == IN_FLIGHT, (
            "%d of %d in-flight calls ended OK after the shutdown began" % (
                after.count("Chat ended OK"), IN_FLIGHT))
        server_ok = sum(log.count("%s ended OK" % m)
                        for m in ("Say", "Count", "Sum", "Chat", "Sleep", "Fail"))
        client_ok = tally.ok_count()
        assert server_ok == client_ok, "server ended %d calls OK, client saw %d" % (
            server_ok, client_ok)
    except Exception as e:
        for q, _ in chats:
            q.put(None)  # lets grpcio's request threads end
        results.append((name, False))
        print("FAIL %-22s %s: %s" % (name, type(e).__name__, e), flush=True)
        return
    results.append((name, True))
    print("PASS %-22s (%d in-flight Chat OK %.0f ms after the signal, %d of %d Say OK)" % (
        name, IN_FLIGHT, drained * 1000, ok_says, len(says)), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--server-pid", type=int, default=0,
                    help="finish with a graceful-shutdown check on this server")
    ap.add_argument("--server-log", default="",
                    help="the server's log (needed with --server-pid): the shutdown check "
                    "waits for its lines and compares its count of finished calls")
    ap.add_argument("--ca", default="", help="TLS: trust this CA (PEM)")
    ap.add_argument("--cert", default="", help="TLS: client certificate (PEM)")
    ap.add_argument("--key", default="", help="TLS: client key (PEM)")
    args = ap.parse_args()
    if args.server_pid and not args.server_log:
        ap.error("--server-pid needs --server-log")
    if args.ca:
        def read(path):
            with open(path, "rb") as fh:
                return fh.read()
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca),
            private_key=read(args.key) if args.key else None,
            certificate_chain=read(args.cert) if args.cert else None)

        def new_channel(options=()):
            return grpc.secure_channel(args.target, creds, options=options)
    else:
        def new_channel(options=()):
            return grpc.insecure_channel(args.target, options=options)
    tally = Tally()
    with new_channel() as raw:
        grpc.channel_ready_future(raw).result(timeout=TIMEOUT)
        channel = grpc.intercept_channel(raw, tally)
        stub = pb_grpc.DemoStub(channel)
        for t in (t_say, t_md, t_compress, t_large, t_count, t_count_big, t_sum, t_sum_empty, t_chat,
                  t_chat_pingpong, t_deadline, t_sleep_ok, t_unimpl, t_fail, t_cancel,
                  t_concurrent):
            t(stub, channel)
        if args.server_pid:
            graceful_shutdown(stub, tally, new_channel, args.server_pid, args.server_log)
    passed = sum(1 for _, ok in results if ok)
    print("py-client: %d of %d checks passed" % (passed, len(results)), flush=True)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
