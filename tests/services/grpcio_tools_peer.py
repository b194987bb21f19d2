#!/usr/bin/python3
"""grpcio client for test_tools_peers: watches a self-checked health
status flip and reads an sgrpc server's channelz, through grpcio stubs
generated now from /usr/share/grpc-proto by grpc_tools.protoc into OUTDIR.

  grpcio_tools_peer.py PORT OUTDIR

The server (tests/services/test_tools_peers.c) serves, on 127.0.0.1:PORT:
  - grpc.health.v1.Health, where the check of "flip.Service" answers
    SERVING until a Watch is open, then NOT_SERVING once, then SERVING;
  - grpc.channelz.v1.Channelz over its own epoll loop;
  - /t.Echo/Unary (raw bytes): echoes the request, or fails
    INVALID_ARGUMENT for an empty one;
  - and has made, from an sgrpc channel of the same loop, 2 good and 1
    failing Unary calls before this peer starts.

Prints one line per check and "ALL OK" at the end; exits 0 only when every
answer was right (1 with the first wrong one). Every wait has a timeout.
"""
import os
import sys
import time

PROTO_ROOT = "/usr/share/grpc-proto"
PROTOS = ["grpc/health/v1/health.proto", "grpc/channelz/v1/channelz.proto"]
TIMEOUT = 15


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg, flush=True)


def stubs(outdir):
    import grpc
    import grpc_tools
    from grpc_tools import protoc
    os.makedirs(outdir, exist_ok=True)
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main(["grpc_tools.protoc", "-I" + PROTO_ROOT, "-I" + wkt,
                      "--python_out=" + outdir, "--grpc_python_out=" + outdir] + PROTOS)
    if rc != 0:
        fail("grpc_tools.protoc: %d" % rc)
    # generated modules are grpc.health.v1...: extend the installed grpc package
    grpc.__path__.append(os.path.join(outdir, "grpc"))
    return grpc


def health_flip(grpc, target):
    from grpc.health.v1 import health_pb2, health_pb2_grpc
    S = health_pb2.HealthCheckResponse
    with grpc.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        r = stub.Check(health_pb2.HealthCheckRequest(service="flip.Service"), timeout=TIMEOUT)
        check(r.status == S.SERVING, "Check(flip.Service) = SERVING before any Watch")
        stream = stub.Watch(health_pb2.HealthCheckRequest(service="flip.Service"),
                            timeout=TIMEOUT)
        got = []
        for resp in stream:
            got.append(resp.status)
            if len(got) == 3:
                break
        stream.cancel()
        check(got == [S.SERVING, S.NOT_SERVING, S.SERVING],
              "Watch(flip.Service) saw SERVING -> NOT_SERVING -> SERVING (%s)" % got)


def channelz(grpc, target, port):
    from grpc.channelz.v1 import channelz_pb2 as cz, channelz_pb2_grpc as czg
    with grpc.insecure_channel(target) as ch:
        stub = czg.ChannelzStub(ch)
        echo = ch.unary_unary("/t.Echo/Unary")
        servers = stub.GetServers(cz.GetServersRequest(), timeout=TIMEOUT)
        check(servers.end and len(servers.server) == 1, "GetServers: one server, end")
        sid = servers.server[0].ref.server_id
        base = servers.server[0].data
        # the sgrpc channel's 2 good and 1 failed calls, and this GetServers
        check((base.calls_started, base.calls_succeeded, base.calls_failed) == (4, 2, 1),
              "server calls before: %d/%d/%d = 4/2/1" % (base.calls_started,
                                                         base.calls_succeeded, base.calls_failed))
        for i in range(5):
            check(echo(b"\x0a\x02hi", timeout=TIMEOUT) == b"\x0a\x02hi", "Unary #%d echoed" % i)
        for i in range(3):
            try:
                echo(b"", timeout=TIMEOUT)
                fail("empty Unary answered")
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "empty Unary #%d failed" % i)
        now = stub.GetServer(cz.GetServerRequest(server_id=sid), timeout=TIMEOUT).server.data
        # this GetServer is itself started and not finished yet
        check(now.calls_started == base.calls_started + 9,
              "server calls_started %d = %d + 9" % (now.calls_started, base.calls_started))
        check(now.calls_succeeded == base.calls_succeeded + 6,
              "server calls_succeeded %d = %d + 6" % (now.calls_succeeded, base.calls_succeeded))
        check(now.calls_failed == base.calls_failed + 3,
              "server calls_failed %d = %d + 3" % (now.calls_failed, base.calls_failed))
        ts = now.last_call_started_timestamp.seconds
        check(abs(ts - time.time()) < 60, "last_call_started_timestamp is now (%d)" % ts)

        socks = stub.GetServerSockets(cz.GetServerSocketsRequest(server_id=sid),
                                      timeout=TIMEOUT)
        check(socks.end and len(socks.socket_ref) >= 1, "GetServerSockets lists sockets")
        mine = max(r.socket_id for r in socks.socket_ref)  # the newest: this channel's
        page = stub.GetServerSockets(cz.GetServerSocketsRequest(server_id=sid,
                                                                start_socket_id=mine,
                                                                max_results=1), timeout=TIMEOUT)
        check(len(page.socket_ref) == 1 and page.socket_ref[0].socket_id == mine and page.end,
              "GetServerSockets pages from start_socket_id")
        s = stub.GetSocket(cz.GetSocketRequest(socket_id=mine), timeout=TIMEOUT).socket
        d = s.data
        # GetServers, GetServer, 8 Unary, 2 GetServerSockets, this GetSocket
        check(d.streams_started == 13, "socket streams_started %d = 13" % d.streams_started)
        check(d.streams_succeeded == 9, "socket streams_succeeded %d = 9" % d.streams_succeeded)
        check(d.streams_failed == 3, "socket streams_failed %d = 3" % d.streams_failed)
        check(d.messages_received == 13, "socket messages_received %d = 13"
              % d.messages_received)
        check(d.messages_sent == 9, "socket messages_sent %d = 9" % d.messages_sent)
        check(d.HasField("local_flow_control_window") and
              d.local_flow_control_window.value > 0 and
              d.remote_flow_control_window.value > 0,
              "flow-control windows %d / %d" % (d.local_flow_control_window.value,
                                                d.remote_flow_control_window.value))
        check(d.last_remote_stream_created_timestamp.seconds > 0,
              "last_remote_stream_created_timestamp set")
        check(s.remote.tcpip_address.ip_address == bytes([127, 0, 0, 1]) and
              s.remote.tcpip_address.port > 0, "remote address 127.0.0.1:%d"
              % s.remote.tcpip_address.port)

        chans = stub.GetTopChannels(cz.GetTopChannelsRequest(), timeout=TIMEOUT)
        check(chans.end and len(chans.channel) == 1, "GetTopChannels: the sgrpc channel")
        c = chans.channel[0]
        check(c.data.target == "127.0.0.1:%d" % port, "channel target %s" % c.data.target)
        check((c.data.calls_started, c.data.calls_succeeded, c.data.calls_failed) == (3, 2, 1),
              "channel calls 3/2/1: %d/%d/%d" % (c.data.calls_started, c.data.calls_succeeded,
                                                 c.data.calls_failed))
        check(c.data.state.state == cz.ChannelConnectivityState.READY, "channel READY")
        check(len(c.socket_ref) == 1, "channel has its socket")
        one = stub.GetChannel(cz.GetChannelRequest(channel_id=c.ref.channel_id),
                              timeout=TIMEOUT).channel
        check(one.data.calls_started == 3 and one.ref.channel_id == c.ref.channel_id,
              "GetChannel answers the same channel")
        cs = stub.GetSocket(cz.GetSocketRequest(socket_id=c.socket_ref[0].socket_id),
                            timeout=TIMEOUT).socket.data
        check((cs.streams_started, cs.messages_sent, cs.messages_received) == (3, 3, 2),
              "channel socket 3 streams, 3 sent, 2 received")
        check(cs.last_local_stream_created_timestamp.seconds > 0,
              "client socket: last_local_stream_created_timestamp set")
        for name, call in (("GetServer", lambda: stub.GetServer(
                               cz.GetServerRequest(server_id=999999), timeout=TIMEOUT)),
                           ("GetChannel", lambda: stub.GetChannel(
                               cz.GetChannelRequest(channel_id=999999), timeout=TIMEOUT)),
                           ("GetSocket", lambda: stub.GetSocket(
                               cz.GetSocketRequest(socket_id=999999), timeout=TIMEOUT)),
                           ("GetSubchannel", lambda: stub.GetSubchannel(
                               cz.GetSubchannelRequest(subchannel_id=1), timeout=TIMEOUT))):
            try:
                call()
                fail(name + " of an unknown id answered")
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.NOT_FOUND, name + " unknown id: NOT_FOUND")


def main():
    if len(sys.argv) != 3:
        fail("usage: grpcio_tools_peer.py PORT OUTDIR")
    port = int(sys.argv[1])
    grpc = stubs(sys.argv[2])
    target = "127.0.0.1:%d" % port
    # channelz first: its exact counts must not race the Watch's cancel
    channelz(grpc, target, port)
    health_flip(grpc, target)
    print("ALL OK", flush=True)


if __name__ == "__main__":
    main()
