"""grpcio client for tests/test_events_epoll.c: calls an sgrpc server whose
event hooks require an authorization header (RECV_REQUEST) and add
initial (SEND_INITIAL_METADATA) and trailing (SEND_TRAILING_METADATA)
metadata, and asserts what the hooks did. Stubs for helloworld.proto are
generated at run time with grpc_tools into a scratch directory.

usage: events_peer.py PORT OUT_DIR PROTO_DIR     (exit 0 when all held)
"""
import os
import sys

port, out_dir, proto_dir = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out_dir, exist_ok=True)
from grpc_tools import protoc  # noqa: E402

rc = protoc.main(['protoc', '-I' + proto_dir, '--python_out=' + out_dir,
                  '--grpc_python_out=' + out_dir,
                  os.path.join(proto_dir, 'helloworld.proto')])
if rc != 0:
    sys.exit('protoc failed: %d' % rc)
sys.path.insert(0, out_dir)
import grpc  # noqa: E402
import helloworld_pb2  # noqa: E402
import helloworld_pb2_grpc  # noqa: E402

AUTH = [('authorization', 'Bearer sekrit'), ('x-user-md', 'py-user')]


def check(cond, what):
    if not cond:
        sys.exit('FAILED: ' + what)


with grpc.insecure_channel('127.0.0.1:' + port) as ch:
    stub = helloworld_pb2_grpc.GreeterStub(ch)

    # unary through the generated stub: hooks add initial and trailing md
    reply, call = stub.SayHello.with_call(helloworld_pb2.HelloRequest(name='py'),
                                          metadata=AUTH, timeout=20)
    check(reply.message == 'py', 'unary reply %r' % reply.message)
    init = dict(call.initial_metadata())
    trail = dict(call.trailing_metadata())
    check(init.get('x-initial-hook') == 'srv', 'initial metadata %r' % init)
    check(trail.get('x-trailing-hook') == 'srv-0', 'trailing metadata %r' % trail)
    # the RECV_REQUEST hook saw our metadata and echoed the user into trailers
    check(trail.get('x-seen-user') == 'py-user', 'x-seen-user %r' % trail)

    # no token: refused by the RECV_REQUEST hook before the handler
    try:
        stub.SayHello(helloworld_pb2.HelloRequest(name='nobody'), timeout=20)
        check(False, 'call without token succeeded')
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNAUTHENTICATED, 'code %s' % e.code())
        check(e.details() == 'missing token', 'details %r' % e.details())
        t = dict(e.trailing_metadata() or ())
        check(t.get('x-trailing-hook') == 'srv-16', 'refused trailers %r' % t)

    # server streaming and bidi as raw bytes (no serializers)
    ss = ch.unary_stream('/t.Kinds/ServerStream')(b'ab', metadata=AUTH, timeout=20)
    msgs = list(ss)
    check(msgs == [b'ab', b'ab'], 'server stream %r' % msgs)
    check(dict(ss.initial_metadata()).get('x-initial-hook') == 'srv', 'ss initial')
    check(dict(ss.trailing_metadata()).get('x-trailing-hook') == 'srv-0', 'ss trailers')

    bidi = ch.stream_stream('/t.Kinds/Bidi')(iter([b'x', b'yz']), metadata=AUTH, timeout=20)
    msgs = list(bidi)
    check(msgs == [b'x', b'yz'], 'bidi %r' % msgs)
    check(dict(bidi.trailing_metadata()).get('x-trailing-hook') == 'srv-0', 'bidi trailers')

print('events_peer: ok')
