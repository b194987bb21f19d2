#!/usr/bin/python3
"""The demo.Demo service in Python grpcio (gRPC C-core): the peer the sgrpc
demo client is tested against. Same semantics as examples/demo/server.c.

usage: py_server.py --listen 127.0.0.1:PORT
Prints "listening" once serving; SIGTERM/SIGINT stop it.
"""
import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import demo_stubs

pb, pb_grpc = demo_stubs.load()


def echo_md(context):
    return tuple((k, v) for k, v in context.invocation_metadata()
                 if k.startswith("x-echo-"))


class Demo(pb_grpc.DemoServicer):
    def Say(self, request, context):
        md = echo_md(context)
        want = dict(context.invocation_metadata()).get("x-compress-response")
        if want == "gzip":
            context.set_compression(grpc.Compression.Gzip)
        elif want == "deflate":
            context.set_compression(grpc.Compression.Deflate)
        context.send_initial_metadata(md)
        context.set_trailing_metadata(md)
        return pb.Reply(text="hello " + request.name)

    def Count(self, request, context):
        for i in range(1, request.n + 1):
            yield pb.Reply(text="%s %d" % (request.prefix, i))

    def Sum(self, request_iterator, context):
        total, count = 0, 0
        for n in request_iterator:
            total += n.value
            count += 1
        return pb.Total(sum=total, count=count)

    def Chat(self, request_iterator, context):
        for h in request_iterator:
            yield pb.Reply(text="echo: " + h.name)

    def Sleep(self, request, context):
        end = time.monotonic() + request.sleep_ms / 1000.0
        while time.monotonic() < end:
            if not context.is_active():
                print("py-server: Sleep ended early (client gone)", flush=True)
                return pb.Reply()
            time.sleep(0.01)
        return pb.Reply(text="slept %d" % request.sleep_ms)

    def Fail(self, request, context):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      "demo failure for " + request.name + demo_stubs.FAIL_SUFFIX)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    args = ap.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pb_grpc.add_DemoServicer_to_server(Demo(), server)
    try:
        port = server.add_insecure_port(args.listen)
    except RuntimeError as e:
        print("py-server: cannot listen: %s" % e, flush=True)
        return 1
    if port == 0:
        print("py-server: cannot listen on " + args.listen, flush=True)
        return 1
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    print("py-server: listening on " + args.listen, flush=True)
    done.wait(600)
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
