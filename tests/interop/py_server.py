#!/usr/bin/python3
"""The demo.Demo service in Python grpcio (gRPC C-core): the peer the sgrpc
demo client is tested against. Same semantics as examples/demo/server.c.

usage: py_server.py --listen 127.0.0.1:PORT [--ca PEM --cert PEM --key PEM]
With --cert/--key it serves TLS; with --ca too it requires a client
certificate from that CA (mutual TLS) and prints the first caller's
certificate name ("peer certificate CN=...").
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
    peer_cert_logged = False

    def Say(self, request, context):
        if not Demo.peer_cert_logged:
            cn = context.auth_context().get("x509_common_name")
            if cn:
                Demo.peer_cert_logged = True
                print("py-server: peer certificate CN=%s" % cn[0].decode(), flush=True)
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
    ap.add_argument("--ca", default="", help="TLS: require client certificates from this CA")
    ap.add_argument("--cert", default="", help="TLS: server certificate (PEM)")
    ap.add_argument("--key", default="", help="TLS: server key (PEM)")
    args = ap.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pb_grpc.add_DemoServicer_to_server(Demo(), server)
    try:
        if args.cert:
            def read(path):
                with open(path, "rb") as fh:
                    return fh.read()
            creds = grpc.ssl_server_credentials(
                [(read(args.key), read(args.cert))],
                root_certificates=read(args.ca) if args.ca else None,
                require_client_auth=bool(args.ca))
            port = server.add_secure_port(args.listen, creds)
        else:
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
