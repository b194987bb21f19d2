"""Loads the grpc.testing stubs for the Python peer.

The stubs are never kept in the tree. build_peers.sh generates them into a
build directory and passes it in PEER_PY_STUBS; without it they are generated
into a temporary directory on each start. The .proto files are copied flat
(imports rewritten) because a generated "grpc/testing" module path would
shadow the installed grpc package; the proto package and service names, which
are all the wire sees, are unchanged.
"""
import atexit
import os
import re
import shutil
import sys
import tempfile

PROTO_ROOT = "/usr/share/grpc-proto/grpc/testing"
FILES = ("empty.proto", "messages.proto", "test.proto")


def generate(out):
    """Writes empty_pb2, messages_pb2, test_pb2 and test_pb2_grpc to out."""
    from grpc_tools import protoc
    src = os.path.join(out, "proto")
    os.makedirs(src, exist_ok=True)
    for name in FILES:
        with open(os.path.join(PROTO_ROOT, name), encoding="utf-8") as f:
            text = f.read()
        text = re.sub(r'import "grpc/testing/([a-z_]+\.proto)";',
                      r'import "\1";', text)
        with open(os.path.join(src, name), "w", encoding="utf-8") as f:
            f.write(text)
    rc = protoc.main(["grpc_tools.protoc", "-I" + src, "--python_out=" + out,
                      "--grpc_python_out=" + out] +
                     [os.path.join(src, n) for n in FILES])
    if rc != 0:
        raise SystemExit("grpc_tools.protoc failed: %d" % rc)


def load():
    out = os.environ.get("PEER_PY_STUBS")
    if not out or not os.path.exists(os.path.join(out, "test_pb2_grpc.py")):
        out = tempfile.mkdtemp(prefix="sgrpc-pypeer-")
        atexit.register(shutil.rmtree, out, True)
        generate(out)
    sys.path.insert(0, out)
    import empty_pb2  # noqa: E402
    import messages_pb2  # noqa: E402
    import test_pb2_grpc  # noqa: E402
    return empty_pb2, messages_pb2, test_pb2_grpc


if __name__ == "__main__":
    # python3 stubs.py OUTDIR: generate once (used by build_peers.sh).
    os.makedirs(sys.argv[1], exist_ok=True)
    generate(sys.argv[1])
