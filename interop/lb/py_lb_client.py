#!/usr/bin/python3
"""grpcio client for the round_robin tests of interop/lb.

One channel on the target as gRPC names it (ipv4:127.0.0.1:P1,127.0.0.1:P2,...)
with the round_robin policy, wait-for-ready and a retry policy for UNAVAILABLE
given as service config (grpcio applies retry policies by default), then
--calls UnaryCall RPCs with fill_server_id, at most --concurrency in flight.

  py_lb_client.py --target=ipv4:A:P[,A:P...] --calls=N [--concurrency=C]
                  [--kill_pid=PID --kill_after=K] [--warmup_backends=W]

First, uncounted, one call at a time until W distinct backends answered
(default: the number of addresses; bounded by 10 s): round_robin spreads
calls over the READY backends only, and the counted run starts once all of
them are.

With --kill_pid, once K calls have completed the client sends SIGKILL to PID
(a backend), waits until it is dead, and goes on. Prints the lines interop/lb/run_rr.sh checks (the
format of lbclient/main.go): "rr: served PHASE ID COUNT", "rr: failed ...",
"rr: total ok=N failed=M". Exit 0 when every call succeeded, 1 otherwise,
2 for bad usage. The grpc.testing stubs come from interop/peers/python/stubs.py.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "peers", "python"))
import grpc  # noqa: E402
import stubs  # noqa: E402

SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": [{"service": "grpc.testing.TestService"}],
        "waitForReady": True,
        "retryPolicy": {
            "maxAttempts": 5,
            "initialBackoff": "0.05s",
            "maxBackoff": "1s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }],
}
CALL_TIMEOUT = 20.0
RUN_TIMEOUT = 120.0


def process_dead(pid):
    """True once pid has died: no /proc entry, or a zombie (sockets closed)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return True
    i = stat.rfind(b")")  # "pid (comm) S ...": comm may hold anything
    return i < 0 or stat[i + 2:i + 3] in (b"Z", b"X", b"")


def kill_backend(pid):
    """SIGKILLs pid and waits (bounded, 5 s) until it is dead, so that calls
    counted as "after" start only once its connections are gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError as e:
        print("rr: kill %d: %s" % (pid, e), flush=True)
        return
    for _ in range(5000):
        if process_dead(pid):
            return
        time.sleep(0.001)
    print("rr: %d still alive 5 s after SIGKILL" % pid, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--kill_pid", type=int, default=0)
    ap.add_argument("--kill_after", type=int, default=0)
    ap.add_argument("--warmup_backends", type=int, default=-1)
    a = ap.parse_args()
    if not a.target.startswith("ipv4:") or a.calls <= 0 or a.concurrency <= 0:
        ap.print_usage(sys.stderr)
        return 2
    _, messages_pb2, test_pb2_grpc = stubs.load()
    channel = grpc.insecure_channel(a.target, options=[
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
        ("grpc.enable_retries", 1),
    ])
    stub = test_pb2_grpc.TestServiceStub(channel)
    req = messages_pb2.SimpleRequest(fill_server_id=True)
    warmup = a.warmup_backends
    if warmup < 0:
        warmup = len(a.target[len("ipv4:"):].split(","))
    seen, nwarm, until = set(), 0, time.monotonic() + 10.0
    while len(seen) < warmup and time.monotonic() < until:
        nwarm += 1
        try:
            seen.add(stub.UnaryCall(req, timeout=max(0.1, until - time.monotonic()),
                                    wait_for_ready=True).server_id)
        except grpc.RpcError:
            pass
    print("rr: warmup %d calls, %d backends answered" % (nwarm, len(seen)), flush=True)

    lock = threading.Lock()
    all_done = threading.Event()
    st = {"done": 0, "ok": 0, "failed": 0, "killed": False}
    served = {"before": {}, "inflight": {}, "after": {}}
    failures = []

    slots = threading.Semaphore(a.concurrency)

    def finished(fut, idx, started_after):
        with lock:
            phase = "after" if started_after else ("inflight" if st["killed"] else "before")
            err = fut.exception()
            if err is None:
                sid = fut.result().server_id
                served[phase][sid] = served[phase].get(sid, 0) + 1
                st["ok"] += 1
            else:
                failures.append("%d %s %s - %r" % (idx, phase, err.code().name, err.details()))
                st["failed"] += 1
            st["done"] += 1
            if a.kill_pid > 0 and not st["killed"] and st["done"] >= a.kill_after:
                # under the lock: no call starts while the kill is under way
                kill_backend(a.kill_pid)
                st["killed"] = True
            if st["done"] == a.calls:
                all_done.set()
        slots.release()

    # One call per free slot; a callback (on grpcio's thread, or at once
    # when the call already ended) frees it. Bounded: a run of a few
    # thousand calls takes seconds, each call has its own deadline.
    for idx in range(a.calls):
        if not slots.acquire(timeout=RUN_TIMEOUT):
            print("rr: timed out", flush=True)
            return 1
        with lock:
            started_after = st["killed"]
            fut = stub.UnaryCall.future(req, timeout=CALL_TIMEOUT, wait_for_ready=True)
        fut.add_done_callback(lambda f, i=idx, s=started_after: finished(f, i, s))
    if not all_done.wait(RUN_TIMEOUT):
        print("rr: timed out", flush=True)
        return 1
    channel.close()
    for phase in ("before", "inflight", "after"):
        for sid in sorted(served[phase]):
            print("rr: served %s %s %d" % (phase, sid, served[phase][sid]))
    for f in failures:
        print("rr: failed %s" % f)
    print("rr: total ok=%d failed=%d" % (st["ok"], st["failed"]), flush=True)
    return 0 if st["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
