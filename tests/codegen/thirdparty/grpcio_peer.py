#!/usr/bin/python3
"""grpcio peer for test_thirdparty_grpcio: the same third-party protos
(grpc.health.v1, grpc.reflection.v1, grpc.testing from /usr/share/grpc-proto)
with Python stubs made now by grpc_tools.protoc.

  grpcio_peer.py server PORT   serve Health, ServerReflection and TestService
                               on 127.0.0.1:PORT; print "READY" when bound;
                               stop when stdin closes (or after 120 s)
  grpcio_peer.py client PORT   call an sgrpc server on 127.0.0.1:PORT through
                               grpcio's stubs, check every answer; exit 0 when
                               all were right, 1 with the first wrong one

Both sides behave as test_thirdparty_grpcio.c's C side does, so the same
expectations hold in each direction.
"""
import atexit
import os
import shutil
import sys
import tempfile
import threading
from concurrent import futures

PROTO_ROOT = "/usr/share/grpc-proto"
PROTOS = ["grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto",
          "grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]
SERVICES = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.testing.TestService"]
TIMEOUT = 10


def load_stubs():
    import grpc
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="sgrpc-thirdparty-py-")
    atexit.register(shutil.rmtree, out, True)
    rc = protoc.main(["grpc_tools.protoc", "-I" + PROTO_ROOT, "--python_out=" + out,
                      "--grpc_python_out=" + out] + PROTOS)
    if rc != 0:
        sys.exit("grpc_tools.protoc failed: %d" % rc)
    # the generated modules live under grpc/...: graft that directory onto the
    # installed grpc package instead of shadowing it
    grpc.__path__.append(os.path.join(out, "grpc"))
    g = {}
    from grpc.health.v1 import health_pb2, health_pb2_grpc
    from grpc.reflection.v1 import reflection_pb2, reflection_pb2_grpc
    from grpc.testing import messages_pb2, test_pb2_grpc
    g.update(health_pb2=health_pb2, health_pb2_grpc=health_pb2_grpc,
             reflection_pb2=reflection_pb2, reflection_pb2_grpc=reflection_pb2_grpc,
             messages_pb2=messages_pb2, test_pb2_grpc=test_pb2_grpc)
    return grpc, g


def serve(port):
    grpc, s = load_stubs()
    hp, rp, mp = s["health_pb2"], s["reflection_pb2"], s["messages_pb2"]
    SERVING = hp.HealthCheckResponse.SERVING
    NOT_SERVING = hp.HealthCheckResponse.NOT_SERVING

    class Health(s["health_pb2_grpc"].HealthServicer):
        def Check(self, request, context):
            if request.service in ("", "grpc.testing.TestService"):
                return hp.HealthCheckResponse(status=SERVING)
            if request.service == "down":
                return hp.HealthCheckResponse(status=NOT_SERVING)
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service " + request.service)

        def Watch(self, request, context):
            for st in (SERVING, NOT_SERVING, SERVING):
                yield hp.HealthCheckResponse(status=st)

    class Reflection(s["reflection_pb2_grpc"].ServerReflectionServicer):
        def ServerReflectionInfo(self, request_iterator, context):
            for req in request_iterator:
                resp = rp.ServerReflectionResponse(valid_host=req.host, original_request=req)
                which = req.WhichOneof("message_request")
                if which == "list_services":
                    for name in SERVICES:
                        resp.list_services_response.service.add(name=name)
                elif which == "file_containing_symbol" and \
                        req.file_containing_symbol == "grpc.health.v1.Health":
                    resp.file_descriptor_response.file_descriptor_proto.append(
                        hp.DESCRIPTOR.serialized_pb)
                else:
                    resp.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
                    resp.error_response.error_message = "not found"
                yield resp

    class Test(s["test_pb2_grpc"].TestServiceServicer):
        def UnaryCall(self, request, context):
            if request.response_status.code:
                context.abort(grpc.StatusCode(
                    next(c for c in grpc.StatusCode if c.value[0] == request.response_status.code)),
                    request.response_status.message)
            return mp.SimpleResponse(payload=mp.Payload(body=b"\x07" * request.response_size),
                                     username="py:" + request.payload.body.decode())

        def StreamingOutputCall(self, request, context):
            for p in request.response_parameters:
                yield mp.StreamingOutputCallResponse(payload=mp.Payload(body=b"s" * p.size))

        def StreamingInputCall(self, request_iterator, context):
            total = sum(len(r.payload.body) for r in request_iterator)
            return mp.StreamingInputCallResponse(aggregated_payload_size=total)

        def FullDuplexCall(self, request_iterator, context):
            for r in request_iterator:
                for p in r.response_parameters:
                    yield mp.StreamingOutputCallResponse(payload=mp.Payload(body=b"d" * p.size))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    s["health_pb2_grpc"].add_HealthServicer_to_server(Health(), server)
    s["reflection_pb2_grpc"].add_ServerReflectionServicer_to_server(Reflection(), server)
    s["test_pb2_grpc"].add_TestServiceServicer_to_server(Test(), server)
    if server.add_insecure_port("127.0.0.1:%d" % port) != port:
        print("BIND FAILED", flush=True)
        return 2
    server.start()
    print("READY", flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(120)
    server.stop(0)
    return 0


def check(cond, what):
    if not cond:
        print("peer client: WRONG: " + what, flush=True)
        sys.exit(1)
    print("peer client: ok: " + what, flush=True)


def client(port):
    grpc, s = load_stubs()
    hp, rp, mp = s["health_pb2"], s["reflection_pb2"], s["messages_pb2"]
    ch = grpc.insecure_channel("127.0.0.1:%d" % port)
    grpc.channel_ready_future(ch).result(timeout=TIMEOUT)

    health = s["health_pb2_grpc"].HealthStub(ch)
    r = health.Check(hp.HealthCheckRequest(service=""), timeout=TIMEOUT)
    check(r.status == hp.HealthCheckResponse.SERVING, "Health.Check('') SERVING")
    r = health.Check(hp.HealthCheckRequest(service="down"), timeout=TIMEOUT)
    check(r.status == hp.HealthCheckResponse.NOT_SERVING, "Health.Check('down') NOT_SERVING")
    try:
        health.Check(hp.HealthCheckRequest(service="nope"), timeout=TIMEOUT)
        check(False, "Health.Check('nope') fails")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.NOT_FOUND and "nope" in e.details(),
              "Health.Check('nope') NOT_FOUND: %s" % e.details())
    sts = [x.status for x in health.Watch(hp.HealthCheckRequest(service=""), timeout=TIMEOUT)]
    check(sts == [1, 2, 1], "Health.Watch streamed SERVING, NOT_SERVING, SERVING: %s" % sts)

    refl = s["reflection_pb2_grpc"].ServerReflectionStub(ch)
    reqs = [rp.ServerReflectionRequest(host="h1", list_services=""),
            rp.ServerReflectionRequest(host="h2", file_containing_symbol="grpc.health.v1.Health"),
            rp.ServerReflectionRequest(host="h3", file_containing_symbol="no.Such")]
    resps = list(refl.ServerReflectionInfo(iter(reqs), timeout=TIMEOUT))
    check(len(resps) == 3, "ServerReflectionInfo: 3 answers for 3 requests")
    names = sorted(x.name for x in resps[0].list_services_response.service)
    check(names == sorted(SERVICES), "list_services: %s" % names)
    check(resps[0].original_request.host == "h1", "original_request echoed")
    from google.protobuf import descriptor_pb2
    fd = descriptor_pb2.FileDescriptorProto()
    fd.ParseFromString(resps[1].file_descriptor_response.file_descriptor_proto[0])
    check(fd.name == "grpc/health/v1/health.proto" and fd.service[0].name == "Health" and
          [m.name for m in fd.service[0].method] == ["Check", "Watch"],
          "file_containing_symbol: the plugin's embedded descriptor of health.proto")
    check(resps[2].error_response.error_code == 5, "unknown symbol: error_response NOT_FOUND")

    test = s["test_pb2_grpc"].TestServiceStub(ch)
    r = test.UnaryCall(mp.SimpleRequest(response_size=33, payload=mp.Payload(body=b"hi")),
                       timeout=TIMEOUT)
    check(r.payload.body == b"\x07" * 33 and r.username == "c:hi", "TestService.UnaryCall")
    try:
        test.UnaryCall(mp.SimpleRequest(response_status=mp.EchoStatus(code=9, message="nine")),
                       timeout=TIMEOUT)
        check(False, "UnaryCall with response_status fails")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and e.details() == "nine",
              "UnaryCall status FAILED_PRECONDITION 'nine'")
    sizes = [len(x.payload.body) for x in test.StreamingOutputCall(
        mp.StreamingOutputCallRequest(response_parameters=[
            mp.ResponseParameters(size=n) for n in (1, 10, 100, 1000)]), timeout=TIMEOUT)]
    check(sizes == [1, 10, 100, 1000], "StreamingOutputCall sizes %s" % sizes)
    r = test.StreamingInputCall(iter([mp.StreamingInputCallRequest(
        payload=mp.Payload(body=b"x" * n)) for n in (5, 50, 500)]), timeout=TIMEOUT)
    check(r.aggregated_payload_size == 555, "StreamingInputCall aggregated 555")
    sizes = [len(x.payload.body) for x in test.FullDuplexCall(iter([
        mp.StreamingOutputCallRequest(response_parameters=[mp.ResponseParameters(size=n)])
        for n in (3, 30, 300)]), timeout=TIMEOUT)]
    check(sizes == [3, 30, 300], "FullDuplexCall sizes %s" % sizes)
    try:
        test.EmptyCall(s["test_pb2_grpc"].grpc_dot_testing_dot_empty__pb2.Empty(), timeout=TIMEOUT)
        check(False, "EmptyCall is not implemented by the C server")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, "EmptyCall UNIMPLEMENTED")
    ch.close()
    print("peer client: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    sys.exit(serve(port) if mode == "server" else client(port))
