"""Raw HTTP/2 gRPC server (python3-h2) for tests/test_retry_epoll.c: it makes
an sgrpc channel's calls need transparent retries.

usage: retry_peer.py MODE      (prints its kernel-chosen port, then serves
                                until stdin closes)
  refuse  every connection refuses its first stream (RST_STREAM
          REFUSED_STREAM) and serves the others
  goaway  the first connection waits for three requests, then sends GOAWAY
          with last_stream_id 1 and answers only stream 1; later
          connections serve every stream

Serving echoes the request's body (its gRPC frames) and ends with
grpc-status 0 and a trailer x-prev carrying the request's
grpc-previous-rpc-attempts ("none" when absent), so the client sees which
attempt reached the server.
"""
import select
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

mode = sys.argv[1]
lock = threading.Lock()
conn_index = [0]


def respond(c, sid, req):
    headers, body = req
    prev = headers.get('grpc-previous-rpc-attempts', 'none')
    c.send_headers(sid, [(':status', '200'), ('content-type', 'application/grpc')])
    c.send_data(sid, body)
    c.send_headers(sid, [('grpc-status', '0'), ('x-prev', prev)], end_stream=True)


def serve(sock):
    with lock:
        idx = conn_index[0]
        conn_index[0] += 1
    cfg = h2.config.H2Configuration(client_side=False, header_encoding='utf-8')
    c = h2.connection.H2Connection(config=cfg)
    c.initiate_connection()
    sock.sendall(c.data_to_send())
    reqs = {}
    ended = []
    refused = False
    gone = False
    sock.settimeout(30)
    while True:
        try:
            data = sock.recv(65536)
        except (OSError, socket.timeout):
            break
        if not data:
            break
        try:
            events = c.receive_data(data)
        except h2.exceptions.H2Error:
            break  # frames after our GOAWAY: this connection is done
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                if mode == 'refuse' and not refused:
                    refused = True
                    c.reset_stream(ev.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                    continue
                reqs[ev.stream_id] = (dict(ev.headers), b'')
            elif isinstance(ev, h2.events.DataReceived):
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if ev.stream_id in reqs:
                    h, b = reqs[ev.stream_id]
                    reqs[ev.stream_id] = (h, b + ev.data)
            elif isinstance(ev, h2.events.StreamEnded):
                if ev.stream_id not in reqs:
                    continue
                if mode == 'goaway' and idx == 0:
                    ended.append(ev.stream_id)
                    if len(ended) == 3 and not gone:
                        gone = True
                        respond(c, 1, reqs[1])
                        c.close_connection(last_stream_id=1)
                    continue
                respond(c, ev.stream_id, reqs[ev.stream_id])
        out = c.data_to_send()
        if out:
            sock.sendall(out)
    sock.close()


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(('127.0.0.1', 0))
    srv.listen(16)
    print(srv.getsockname()[1], flush=True)
    while True:
        r, _, _ = select.select([srv, sys.stdin], [], [], 60)
        if not r or sys.stdin in r:
            break  # the test is done (stdin closed) or gone quiet
        s, _ = srv.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()


main()
