/*
 * sgrpc-bench-echo-epoll: the benchmark service (bench/proto/echo.proto)
 * on the epoll adapter.
 *
 *   sgrpc-bench-echo-epoll --port=N     (listens on 127.0.0.1:N)
 *
 * Unary echoes its request; Stream echoes every message as it arrives and
 * ends OK when the client half-closes. Every message is checked as an
 * EchoMsg (bench/echo/echo_msg.h) and sent back unchanged: its bytes are
 * already the encoding of the reply, so no protobuf runtime is involved
 * (the bare nghttp2 server does no decoding at all; grpc++ and grpc-go
 * parse and serialize).
 *
 * The fast path allocates nothing per call: the call's user_data holds
 * the method number, and only a call whose send buffer fills up gets a
 * queue (a heap pointer, told apart from the small method numbers).
 * SIGINT/SIGTERM: graceful shutdown, then exit.
 */
#define _GNU_SOURCE
#include <sgrpc/epoll.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo_msg.h"

enum { M_UNARY = 1, M_STREAM = 2, M_UNARY_DONE = 3 };

/* Replies that did not fit the call's send buffer wait here. */
typedef struct pending {
  struct pending *next;
  size_t len;
  uint8_t data[];
} pending;

/* State of a call that had to queue; its address is never 1..3. */
typedef struct slow_call {
  int method;
  int status_wanted; /* half-close seen: send OK once the queue is empty */
  size_t queued;
  pending *head, *tail;
} slow_call;

/* A client that never reads cannot make the server hold more than this
 * per call. */
#define MAX_QUEUED_PER_CALL (64u << 20)

static int method_of(void *ud, slow_call **slow) {
  uintptr_t v = (uintptr_t)ud;
  *slow = NULL;
  if (v <= M_UNARY_DONE) return (int)v;
  *slow = ud;
  return (*slow)->method;
}

static void fail(sgrpc_call *call, int code, const char *msg) {
  sgrpc_status st;
  memset(&st, 0, sizeof(st));
  st.code = code;
  st.message = msg;
  if (sgrpc_call_send_status(call, &st) != 0) sgrpc_call_cancel(call);
}

/* Sends what the queue holds, then the status when it is due. */
static void pump(sgrpc_call *call, slow_call *s) {
  while (s->head) {
    pending *p = s->head;
    int rv = sgrpc_call_send(call, p->data, p->len, 0);
    if (rv == SGRPC_ERR_WOULDBLOCK) return; /* SGRPC_EV_WRITABLE resumes */
    s->head = p->next;
    if (!s->head) s->tail = NULL;
    s->queued -= p->len;
    free(p);
    if (rv != 0) {
      sgrpc_call_cancel(call);
      return;
    }
  }
  if (s->status_wanted == 1) {
    sgrpc_status st;
    memset(&st, 0, sizeof(st));
    s->status_wanted = 2;
    sgrpc_call_send_status(call, &st);
  }
}

/* Replies at least this large go back without a copy: the engine hands
 * over the buffer it assembled the request in (sgrpc_conn_take_message)
 * and sends it from there (sgrpc_call_send_borrowed), so the bytes reach
 * the socket through writev as they arrived. Smaller ones are copied: a
 * message that fits one DATA frame usually arrives whole (zero-copy event,
 * nothing to take), and below a few KiB the copy costs less than the
 * buffer per message a taken one needs. bench/run --big, 64 KiB messages
 * on streams: 0.36 ms of server CPU per MiB taken against 0.52 copied
 * (the copy into the send buffer, nghttp2's copy into its frame and the
 * copy into the output buffer: three passes over bytes no longer in
 * cache). */
static size_t borrow_min = 16u << 10; /* --borrow-min=BYTES */

static void reply(sgrpc_call *call, int method, slow_call *s, const uint8_t *data, size_t len);

/* The zero-copy reply; returns 0 when it was dealt with, -1 when the
 * message cannot be taken (the caller copies it). */
static int reply_borrowed(sgrpc_net_conn *conn, sgrpc_call *call, int method) {
  const uint8_t *d;
  size_t n;
  sgrpc_release_cb rel;
  void *rud;
  int rv;
  if (sgrpc_conn_take_message(sgrpc_net_conn_engine(conn), &d, &n, &rel, &rud) != 0) return -1;
  rv = sgrpc_call_send_borrowed(call, d, n, 0, rel, rud);
  if (rv == 0) return 0;
  if (rv == SGRPC_ERR_WOULDBLOCK) reply(call, method, NULL, d, n); /* queues a copy */
  else sgrpc_call_cancel(call);
  rel(rud, d, n); /* not taken by the engine: ours to free */
  return 0;
}

/* Sends one reply, queueing it when the send buffer is full. */
static void reply(sgrpc_call *call, int method, slow_call *s, const uint8_t *data, size_t len) {
  pending *p;
  if (!s) {
    int rv = sgrpc_call_send(call, data, len, 0);
    if (rv == 0) return;
    if (rv != SGRPC_ERR_WOULDBLOCK) {
      sgrpc_call_cancel(call);
      return;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
      sgrpc_call_cancel(call);
      return;
    }
    s->method = method;
    sgrpc_call_set_user_data(call, s);
  }
  if (s->queued + len > MAX_QUEUED_PER_CALL) {
    fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "client does not read its replies");
    return;
  }
  p = malloc(sizeof(*p) + (len ? len : 1));
  if (!p) {
    sgrpc_call_cancel(call);
    return;
  }
  p->next = NULL;
  p->len = len;
  memcpy(p->data, data, len);
  if (s->tail) s->tail->next = p;
  else s->head = p;
  s->tail = p;
  s->queued += len;
  pump(call, s);
}

static void on_event(sgrpc_net_conn *conn, const sgrpc_event *ev, void *ud, int64_t now) {
  sgrpc_call *call = ev->call;
  slow_call *s;
  int m;
  (void)ud;
  (void)now;
  if (!call) return; /* connection events: nothing to do */
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW: {
    const char *p = ev->u.call_new.path;
    size_t n = ev->u.call_new.path_len;
    if (n == 17 && memcmp(p, "/bench.Echo/Unary", 17) == 0)
      sgrpc_call_set_user_data(call, (void *)(uintptr_t)M_UNARY);
    else if (n == 18 && memcmp(p, "/bench.Echo/Stream", 18) == 0)
      sgrpc_call_set_user_data(call, (void *)(uintptr_t)M_STREAM);
    else
      fail(call, SGRPC_STATUS_UNIMPLEMENTED, "unknown method");
    break;
  }
  case SGRPC_EV_MESSAGE: {
    size_t plen;
    m = method_of(ev->call_user_data, &s);
    if (m == 0) break; /* rejected call */
    if (echo_msg_check(ev->u.message.data, ev->u.message.len, &plen) != 0) {
      fail(call, SGRPC_STATUS_INTERNAL, "malformed bench.EchoMsg");
      break;
    }
    if (m == M_UNARY_DONE) {
      fail(call, SGRPC_STATUS_UNIMPLEMENTED, "more than one request on a unary call");
      break;
    }
    if (s || ev->u.message.len < borrow_min || reply_borrowed(conn, call, m) != 0)
      reply(call, m, s, ev->u.message.data, ev->u.message.len);
    if (m == M_UNARY) { /* reply() may have swapped in a slow_call */
      void *cur = sgrpc_call_get_user_data(call);
      if ((uintptr_t)cur > M_UNARY_DONE) ((slow_call *)cur)->method = M_UNARY_DONE;
      else sgrpc_call_set_user_data(call, (void *)(uintptr_t)M_UNARY_DONE);
    }
    break;
  }
  case SGRPC_EV_HALF_CLOSE:
    m = method_of(ev->call_user_data, &s);
    if (m == M_UNARY) {
      fail(call, SGRPC_STATUS_UNIMPLEMENTED, "unary call without a request");
    } else if (m != 0) {
      if (s) {
        s->status_wanted = 1;
        pump(call, s);
      } else {
        sgrpc_status st;
        memset(&st, 0, sizeof(st));
        sgrpc_call_send_status(call, &st);
      }
    }
    break;
  case SGRPC_EV_WRITABLE:
    m = method_of(ev->call_user_data, &s);
    if (s) pump(call, s);
    break;
  case SGRPC_EV_CLOSE:
    /* The net layer releases the call after this callback. */
    m = method_of(ev->call_user_data, &s);
    if (s) {
      while (s->head) {
        pending *p = s->head;
        s->head = p->next;
        free(p);
      }
      free(s);
    }
    break;
  default:
    break;
  }
}

int main(int argc, char **argv) {
  sgrpc_epoll *loop;
  sgrpc_net_server *server;
  sgrpc_net_listen_opts o;
  sgrpc_settings st;
  char listen[64];
  int port = 50051, i;
  for (i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--port=", 7) == 0) {
      port = atoi(argv[i] + 7);
    } else if (strncmp(argv[i], "--borrow-min=", 13) == 0) {
      borrow_min = (size_t)strtoull(argv[i] + 13, NULL, 10);
    } else {
      fprintf(stderr, "usage: %s --port=N [--borrow-min=BYTES]\n", argv[0]);
      return 2;
    }
  }
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "%s: bad port\n", argv[0]);
    return 2;
  }
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
  if (sgrpc_epoll_new(&loop, NULL) != 0) return 1;
  memset(&o, 0, sizeof(o));
  o.listen = listen;
  o.server.on_event = on_event;
  o.backlog = 1024;
  o.server.drain_timeout_ns = 2000000000;
  /* as the grpc++ and grpc-go peers: 64 MiB messages; the budget lets
   * a few 16 MiB echoes be in flight on one connection */
  sgrpc_settings_default(&st);
  st.max_recv_message_size = 64u << 20;
  st.conn_memory_budget = 512u << 20;
  o.server.settings = &st;
  if (sgrpc_epoll_listen(loop, &o, &server) != 0) {
    fprintf(stderr, "sgrpc-bench-echo-epoll: cannot listen on %s\n", listen);
    return 1;
  }
  sgrpc_epoll_catch_signals(loop, NULL, NULL);
  printf("sgrpc-bench-echo-epoll: listening on %s\n", listen);
  fflush(stdout);
  sgrpc_epoll_run(loop);
  sgrpc_epoll_del(loop);
  return 0;
}
