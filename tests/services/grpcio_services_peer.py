#!/usr/bin/python3
"""grpcio client for test_services_peers: asks an sgrpc server for health
and server reflection through grpcio's stubs, generated now from
/usr/share/grpc-proto by grpc_tools.protoc into OUTDIR.

  grpcio_services_peer.py PORT OUTDIR

Prints one line per check and "ALL OK" at the end; exits 0 only when every
answer was right (1 with the first wrong one). Every wait has a timeout.
"""
import os
import sys

PROTO_ROOT = "/usr/share/grpc-proto"
PROTOS = ["grpc/health/v1/health.proto", "grpc/reflection/v1alpha/reflection.proto",
          "grpc/reflection/v1/reflection.proto"]
TIMEOUT = 15
TEST_METHODS = ["EmptyCall", "UnaryCall", "CacheableUnaryCall", "StreamingOutputCall",
                "StreamingInputCall", "FullDuplexCall", "HalfDuplexCall",
                "UnimplementedCall"]


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg, flush=True)


def stubs(outdir):
    import grpc
    from grpc_tools import protoc
    os.makedirs(outdir, exist_ok=True)
    rc = protoc.main(["grpc_tools.protoc", "-I" + PROTO_ROOT, "--python_out=" + outdir,
                      "--grpc_python_out=" + outdir] + PROTOS)
    if rc != 0:
        fail("grpc_tools.protoc: %d" % rc)
    # generated modules are grpc.health.v1...: extend the installed grpc package
    grpc.__path__.append(os.path.join(outdir, "grpc"))
    return grpc


def pool_from(fdps):
    """Builds a descriptor pool from serialized FileDescriptorProtos, in any order."""
    from google.protobuf import descriptor_pool, descriptor_pb2
    protos = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in fdps]
    pool = descriptor_pool.DescriptorPool()
    added = set()
    for _ in range(len(protos) + 1):
        for p in protos:
            if p.name not in added and all(d in added for d in p.dependency):
                pool.Add(p)
                added.add(p.name)
    if len(added) != len(protos):
        fail("descriptor imports missing: got %s" % [p.name for p in protos])
    return pool, [p.name for p in protos]


def health(grpc, ch):
    from grpc.health.v1 import health_pb2 as hp, health_pb2_grpc as hg
    stub = hg.HealthStub(ch)
    r = stub.Check(hp.HealthCheckRequest(service=""), timeout=TIMEOUT)
    check(r.status == hp.HealthCheckResponse.SERVING, "Check('') is SERVING")
    r = stub.Check(hp.HealthCheckRequest(service="grpc.testing.TestService"), timeout=TIMEOUT)
    check(r.status == hp.HealthCheckResponse.NOT_SERVING, "Check(TestService) is NOT_SERVING")
    try:
        stub.Check(hp.HealthCheckRequest(service="no.Such"), timeout=TIMEOUT)
        fail("Check(no.Such) answered")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.NOT_FOUND, "Check(no.Such) is NOT_FOUND")
    # the C side flips svc.Flip when it sees this Watch: SERVING, SERVING
    # again (must not show), NOT_SERVING
    it = stub.Watch(hp.HealthCheckRequest(service="svc.Flip"), timeout=TIMEOUT)
    seen = []
    for r in it:
        seen.append(r.status)
        if len(seen) == 3:
            break
    it.cancel()
    U, S, N = (hp.HealthCheckResponse.SERVICE_UNKNOWN, hp.HealthCheckResponse.SERVING,
               hp.HealthCheckResponse.NOT_SERVING)
    check(seen == [U, S, N], "Watch(svc.Flip) saw SERVICE_UNKNOWN, SERVING, NOT_SERVING: %s"
          % seen)


def reflection(grpc, ch, version):
    if version == "v1alpha":
        from grpc.reflection.v1alpha import reflection_pb2 as rp, reflection_pb2_grpc as rg
    else:
        from grpc.reflection.v1 import reflection_pb2 as rp, reflection_pb2_grpc as rg
    stub = rg.ServerReflectionStub(ch)
    reqs = [rp.ServerReflectionRequest(host="h0", list_services=""),
            rp.ServerReflectionRequest(host="h1", file_containing_symbol="grpc.testing.TestService"),
            rp.ServerReflectionRequest(host="h2", file_containing_symbol="grpc.testing.Nope"),
            rp.ServerReflectionRequest(host="h3",
                                       file_containing_symbol="grpc.health.v1.Health.Watch"),
            rp.ServerReflectionRequest(host="h4", file_by_filename="grpc/testing/messages.proto"),
            rp.ServerReflectionRequest(host="h5",
                                       all_extension_numbers_of_type="grpc.testing.SimpleRequest"),
            rp.ServerReflectionRequest(host="h6", file_containing_extension=rp.ExtensionRequest(
                containing_type="grpc.testing.SimpleRequest", extension_number=100))]
    answers = list(stub.ServerReflectionInfo(iter(reqs), timeout=TIMEOUT))
    check(len(answers) == len(reqs), "%s: one answer per request" % version)
    for i, a in enumerate(answers):
        check(a.original_request == reqs[i] and a.valid_host == "h%d" % i,
              "%s: answer %d echoes its request" % (version, i))
    names = sorted(s.name for s in answers[0].list_services_response.service)
    check(names == sorted(["grpc.testing.TestService", "grpc.health.v1.Health",
                           "grpc.reflection.v1.ServerReflection",
                           "grpc.reflection.v1alpha.ServerReflection"]),
          "%s: list_services %s" % (version, names))
    pool, files = pool_from(answers[1].file_descriptor_response.file_descriptor_proto)
    check(files[0] == "grpc/testing/test.proto" and sorted(files[1:]) ==
          ["grpc/testing/empty.proto", "grpc/testing/messages.proto"],
          "%s: TestService's file and its imports %s" % (version, files))
    svc = pool.FindServiceByName("grpc.testing.TestService")
    check([m.name for m in svc.methods] == TEST_METHODS, "%s: TestService methods" % version)
    m = svc.methods_by_name["UnaryCall"]
    check(m.input_type.full_name == "grpc.testing.SimpleRequest" and
          m.output_type.full_name == "grpc.testing.SimpleResponse" and
          "response_size" in m.input_type.fields_by_name,
          "%s: UnaryCall's message types resolve" % version)
    check(answers[2].WhichOneof("message_response") == "error_response" and
          answers[2].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0],
          "%s: unknown symbol is error_response NOT_FOUND" % version)
    pool, files = pool_from(answers[3].file_descriptor_response.file_descriptor_proto)
    h = pool.FindServiceByName("grpc.health.v1.Health")
    check([m.name for m in h.methods] == ["Check", "Watch"] and
          h.methods_by_name["Watch"].output_type.full_name ==
          "grpc.health.v1.HealthCheckResponse", "%s: Health found by method name" % version)
    pool, files = pool_from(answers[4].file_descriptor_response.file_descriptor_proto)
    check(files == ["grpc/testing/messages.proto"] and
          pool.FindMessageTypeByName("grpc.testing.LoadBalancerStatsResponse.RpcsByPeer"),
          "%s: file_by_filename messages.proto" % version)
    n = answers[5].all_extension_numbers_response
    check(answers[5].WhichOneof("message_response") == "all_extension_numbers_response" and
          n.base_type_name == "grpc.testing.SimpleRequest" and list(n.extension_number) == [],
          "%s: SimpleRequest has no extension numbers" % version)
    check(answers[6].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0],
          "%s: no extension 100 of SimpleRequest: NOT_FOUND" % version)


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    grpc = stubs(outdir)
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
        health(grpc, ch)
        reflection(grpc, ch, "v1alpha")
        reflection(grpc, ch, "v1")
    print("ALL OK", flush=True)


if __name__ == "__main__":
    main()
