#!/usr/bin/python3
"""Asks a running example server, as grpcurl would, through grpcio's
reflection and health stubs (generated into OUTDIR from /usr/share/grpc-proto).

  example_services_peer.py PORT OUTDIR SERVICE [SYMBOL...]
  example_services_peer.py PORT OUTDIR --absent

With SERVICE: list_services must show SERVICE, health and both reflection
versions; SERVICE's file must come with every file it imports (a descriptor
pool is built from the answer alone, and each method's request and response
types must resolve in it, as must each SYMBOL); Check("") and
Check(SERVICE) must be SERVING. With --absent (a server started with
--no-health-reflection): both services must be UNIMPLEMENTED.
Prints one line per check and "ALL OK"; exits 1 at the first failure.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpcio_services_peer import TIMEOUT, check, fail, pool_from, stubs  # noqa: E402


def reflect(grpc, ch, version, service, symbols):
    if version == "v1alpha":
        from grpc.reflection.v1alpha import reflection_pb2 as rp, reflection_pb2_grpc as rg
    else:
        from grpc.reflection.v1 import reflection_pb2 as rp, reflection_pb2_grpc as rg
    stub = rg.ServerReflectionStub(ch)
    reqs = [rp.ServerReflectionRequest(list_services=""),
            rp.ServerReflectionRequest(file_containing_symbol=service)]
    answers = list(stub.ServerReflectionInfo(iter(reqs), timeout=TIMEOUT))
    check(len(answers) == 2, "%s: two answers" % version)
    names = sorted(s.name for s in answers[0].list_services_response.service)
    want = sorted([service, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                   "grpc.reflection.v1alpha.ServerReflection"])
    check(names == want, "%s: list_services %s" % (version, names))
    check(answers[1].WhichOneof("message_response") == "file_descriptor_response",
          "%s: %s is described" % (version, service))
    pool, files = pool_from(answers[1].file_descriptor_response.file_descriptor_proto)
    svc = pool.FindServiceByName(service)
    for m in svc.methods:
        check(m.input_type.full_name and m.output_type.full_name,
              "%s: %s.%s: %s -> %s" % (version, service, m.name, m.input_type.full_name,
                                       m.output_type.full_name))
    for s in symbols:
        try:
            pool.FindMessageTypeByName(s)
        except KeyError:
            fail("%s: %s not in the files served with %s (%s)" % (version, s, service, files))
        check(True, "%s: %s resolves from the imports served (%s)" % (version, s, files))


def health(grpc, ch, service):
    from grpc.health.v1 import health_pb2 as hp, health_pb2_grpc as hg
    stub = hg.HealthStub(ch)
    for name in ("", service):
        r = stub.Check(hp.HealthCheckRequest(service=name), timeout=TIMEOUT)
        check(r.status == hp.HealthCheckResponse.SERVING, "Check(%r) is SERVING" % name)


def absent(grpc, ch):
    from grpc.health.v1 import health_pb2 as hp, health_pb2_grpc as hg
    from grpc.reflection.v1 import reflection_pb2 as rp, reflection_pb2_grpc as rg
    try:
        hg.HealthStub(ch).Check(hp.HealthCheckRequest(service=""), timeout=TIMEOUT)
        fail("health answered")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, "health is UNIMPLEMENTED")
    try:
        list(rg.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([rp.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT))
        fail("reflection answered")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, "reflection is UNIMPLEMENTED")


def main():
    port, outdir, service = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    grpc = stubs(outdir)
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
        if service == "--absent":
            absent(grpc, ch)
        else:
            health(grpc, ch, service)
            reflect(grpc, ch, "v1alpha", service, sys.argv[4:])
            reflect(grpc, ch, "v1", service, sys.argv[4:])
    print("ALL OK", flush=True)


if __name__ == "__main__":
    main()
