"""Generates the Python stubs of examples/demo/demo.proto into a temporary
directory at run time (nothing generated is kept in the tree) and imports
them. Needs Debian's python3-grpcio and python3-grpc-tools."""
import atexit
import os
import shutil
import sys
import tempfile

from grpc_tools import protoc

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "..", "..", "examples", "demo")


def load():
    out = tempfile.mkdtemp(prefix="sgrpc-interop-")
    atexit.register(shutil.rmtree, out, True)
    rc = protoc.main(["grpc_tools.protoc", "-I" + PROTO_DIR,
                      "--python_out=" + out, "--grpc_python_out=" + out,
                      os.path.join(PROTO_DIR, "demo.proto")])
    if rc != 0:
        raise SystemExit("grpc_tools.protoc failed: %d" % rc)
    sys.path.insert(0, out)
    import demo_pb2  # noqa: E402
    import demo_pb2_grpc  # noqa: E402
    return demo_pb2, demo_pb2_grpc


FAIL_SUFFIX = ": na\u00efve caf\u00e9 \u2713"
