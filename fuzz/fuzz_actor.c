/*
 * fuzz_actor: the input is a program of API calls on an in-memory
 * client<->server pair: start calls, send, half-close, cancel, release,
 * server headers/messages/status, partial byte transfers in either
 * direction, clock steps with expiry, ping, GOAWAY, graceful shutdown,
 * compressing calls on both sides, keepalive pings (the client pings
 * every second, the server counts strikes), transport close.
 *
 * Both engines only ever see each other's bytes, so on top of memory
 * errors the harness checks what must hold between two correct peers:
 * every message arrives intact (each carries a self-checking pattern), no
 * event follows a call's CLOSE, no event comes for a released call, and
 * after the transports close every call still held has had its CLOSE.
 *
 * Input: a sequence of (op, arg) byte pairs; see the switch in
 * LLVMFuzzerTestOneInput.
 */
#include "fuzz_common.h"

enum { MAX_SLOTS = 16 };

typedef struct slot {
  sgrpc_call *call;
  int closed;
  int released;
  int half_closed;
  struct slot *next_all;
} slot;

typedef struct side {
  sgrpc_conn *conn;
  slot *slots[MAX_SLOTS]; /* calls the application holds, by index */
  int nslots;
  uint8_t *pipe;          /* this side's output not yet fed to the peer */
  size_t pipe_len, pipe_cap;
  int dead;               /* recv returned a fatal code */
} side;

typedef struct actor {
  side cli, srv;
  slot *all;
  int64_t now;
  unsigned sink;
} actor;

static slot *slot_new(actor *a, sgrpc_call *call) {
  slot *s = calloc(1, sizeof(*s));
  if (!s) fz_fail("oom");
  s->call = call;
  s->next_all = a->all;
  a->all = s;
  return s;
}

static void side_add(side *sd, slot *s) {
  if (sd->nslots < MAX_SLOTS) sd->slots[sd->nslots++] = s;
}

static void side_remove(side *sd, int k) {
  sd->slots[k] = sd->slots[--sd->nslots];
}

/* Message bodies: byte j of a message of length n is (uint8_t)(n * 7 + j). */
static void pattern(uint8_t *b, size_t n) {
  size_t j;
  for (j = 0; j < n; j++) b[j] = (uint8_t)(n * 7 + j);
}

static void check_pattern(const uint8_t *b, size_t n) {
  size_t j;
  for (j = 0; j < n; j++) {
    if (b[j] != (uint8_t)(n * 7 + j)) {
      fprintf(stderr, "message of %zu bytes differs at %zu: %02x, want %02x\n", n, j, b[j],
              (uint8_t)(n * 7 + j));
      fz_fail("message corrupted in transit");
    }
  }
}

static int drain(actor *a, side *sd) {
  sgrpc_event ev;
  int n = 0, rv;
  int is_srv = sd == &a->srv;
  while ((rv = sgrpc_conn_next_event(sd->conn, &ev)) == 1) {
    slot *s = ev.call_user_data;
    fz_trace(is_srv ? "actor-srv" : "actor-cli", &ev);
    if (++n > 100000) fz_fail("endless event stream");
    if (ev.call && ev.type != SGRPC_EV_CALL_NEW) {
      if (!s || s->call != ev.call) fz_fail("event for an unknown call");
      if (s->released) fz_fail("event for a released call");
      if (s->closed) fz_fail("event after the call's CLOSE");
    }
    switch (ev.type) {
    case SGRPC_EV_CALL_NEW:
      if (!is_srv || s) fz_fail("bad CALL_NEW");
      a->sink += fz_touch(ev.u.call_new.path, ev.u.call_new.path_len);
      a->sink += fz_touch_md(ev.u.call_new.md, ev.u.call_new.md_count);
      s = slot_new(a, ev.call);
      sgrpc_call_set_user_data(ev.call, s);
      if (sd->nslots < MAX_SLOTS) {
        side_add(sd, s);
      } else {
        s->released = 1;
        sgrpc_call_release(ev.call);
      }
      break;
    case SGRPC_EV_MESSAGE:
      check_pattern(ev.u.message.data, ev.u.message.len);
      break;
    case SGRPC_EV_HALF_CLOSE:
      if (!is_srv || s->half_closed) fz_fail("bad HALF_CLOSE");
      s->half_closed = 1;
      break;
    case SGRPC_EV_HEADERS:
      if (is_srv) fz_fail("HEADERS on a server");
      a->sink += fz_touch_md(ev.u.headers.md, ev.u.headers.md_count);
      break;
    case SGRPC_EV_CLOSE:
      if (ev.u.close.status.code < 0 || ev.u.close.status.code > 16) fz_fail("bad code");
      a->sink += fz_touch(ev.u.close.status.message, ev.u.close.status.message_len + 1);
      a->sink += fz_touch(ev.u.close.status.details, ev.u.close.status.details_len);
      a->sink += fz_touch_md(ev.u.close.status.md, ev.u.close.status.md_count);
      s->closed = 1;
      break;
    default:
      break;
    }
  }
  if (rv < 0) fz_fail("next_event failed");
  return n;
}

/* Takes all output of sd into its pipe. */
static void take_output(actor *a, side *sd) {
  int i;
  for (i = 0; i < 1000; i++) {
    const uint8_t *d;
    ssize_t n = sgrpc_conn_out_peek(sd->conn, &d);
    if (n <= 0) break;
    if (sd->pipe_len + (size_t)n > sd->pipe_cap) {
      size_t cap = (sd->pipe_len + (size_t)n) * 2;
      uint8_t *np = realloc(sd->pipe, cap);
      if (!np) fz_fail("oom");
      sd->pipe = np;
      sd->pipe_cap = cap;
    }
    memcpy(sd->pipe + sd->pipe_len, d, (size_t)n);
    sd->pipe_len += (size_t)n;
    sgrpc_conn_out_consume(sd->conn, (size_t)n);
  }
  drain(a, sd);
}

/* Feeds up to max bytes of from's pipe into to. Returns bytes moved. */
static size_t transfer(actor *a, side *from, side *to, size_t max) {
  size_t moved = 0;
  int guard = 0;
  take_output(a, from);
  while (moved < max && from->pipe_len > 0 && !to->dead && guard++ < 100000) {
    size_t n = from->pipe_len < max - moved ? from->pipe_len : max - moved;
    ssize_t r = sgrpc_conn_recv(to->conn, from->pipe, n, a->now);
    int got;
    if (r == SGRPC_ERR_EVENTS_PENDING) fz_fail("recv: events pending after a full drain");
    if (r < 0) {
      to->dead = 1;
      drain(a, to);
      break;
    }
    /* events may point into the pipe: pull them before moving it */
    got = drain(a, to);
    memmove(from->pipe, from->pipe + r, from->pipe_len - (size_t)r);
    from->pipe_len -= (size_t)r;
    moved += (size_t)r;
    if (r == 0 && got == 0) fz_fail("recv took nothing and queued nothing");
  }
  take_output(a, to);
  return moved;
}

static void advance(actor *a, int64_t ns) {
  a->now += ns;
  if (sgrpc_conn_next_expiry(a->cli.conn) <= a->now)
    sgrpc_conn_handle_expiry(a->cli.conn, a->now);
  if (sgrpc_conn_next_expiry(a->srv.conn) <= a->now)
    sgrpc_conn_handle_expiry(a->srv.conn, a->now);
  drain(a, &a->cli);
  drain(a, &a->srv);
}

static void send_msg(sgrpc_call *call, size_t len, unsigned flags) {
  static uint8_t buf[70000];
  if (len > sizeof(buf)) len = sizeof(buf);
  pattern(buf, len);
  sgrpc_call_send(call, buf, len, flags);
}

/* Client: starts a call. arg: bits 0-1 the path, bit 2 a deadline of
 * (arg >> 3) * 10 ms, bit 3 one metadata entry. enc: NULL for the
 * connection's default, else the call's compression. */
static void start_call(actor *a, uint8_t arg, const char *enc) {
  static const char *const paths[] = {"/a.S/Unary", "/a.S/Stream", "/a.S/Bidi", "/a.S/X"};
  sgrpc_call_opts o;
  sgrpc_call *call;
  sgrpc_md md[1] = {SGRPC_MD_STR("x-actor", "v")};
  slot *ns;
  if (a->cli.nslots == MAX_SLOTS) return;
  ns = slot_new(a, NULL);
  memset(&o, 0, sizeof(o));
  o.path = paths[arg & 3];
  o.deadline = arg & 4 ? a->now + (int64_t)(arg >> 3) * 10 * FZ_MS + 1 : 0;
  o.md = md;
  o.md_count = arg & 8 ? 1 : 0;
  o.user_data = ns;
  o.encoding = enc;
  if (sgrpc_call_start(a->cli.conn, &o, a->now, &call) == 0) {
    ns->call = call;
    side_add(&a->cli, ns);
  } else {
    ns->released = 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const encs[] = {"identity", "gzip", "deflate"};
  sgrpc_settings cs, ss;
  actor a;
  size_t i;
  int k;

  memset(&a, 0, sizeof(a));
  a.now = FZ_START;
  sgrpc_settings_default(&cs);
  cs.stream_window = 65535; /* small windows: flow control matters */
  cs.connection_window = 65535;
  cs.max_send_buffer = 4096;
  cs.max_queued_events = 4;
  cs.keepalive_time = 1000 * FZ_MS;
  cs.keepalive_timeout = 500 * FZ_MS;
  ss = cs;
  ss.keepalive_time = 0; /* the server's default */
  ss.min_recv_ping_interval = 2000 * FZ_MS;
  ss.max_concurrent_streams = 8;
  ss.max_recv_message_size = 60000;
  if (sgrpc_conn_client_new(&a.cli.conn, &cs, NULL, a.now) != 0) fz_fail("client_new");
  if (sgrpc_conn_server_new(&a.srv.conn, &ss, NULL, a.now) != 0) fz_fail("server_new");

  for (i = 0; i + 1 < size && i < 4096; i += 2) {
    uint8_t op = data[i], arg = data[i + 1];
    side *sd = (op & 0x80) ? &a.srv : &a.cli;
    slot *s = sd->nslots ? sd->slots[arg % sd->nslots] : NULL;
    switch (op & 0x7f) {
    case 0: /* client: start a call */
      start_call(&a, arg, NULL);
      break;
    case 1: /* either side: send a message */
      if (s) send_msg(s->call, (size_t)arg * (arg & 1 ? 257 : 3),
                      (arg & 2 ? SGRPC_SEND_COMPRESSED : 0) |
                          (arg & 4 && sd == &a.cli ? SGRPC_SEND_END : 0));
      break;
    case 2: /* client: half-close */
      if (s) sgrpc_call_close_send(s->call);
      break;
    case 3: /* either side: cancel */
      if (s) sgrpc_call_cancel(s->call);
      break;
    case 4: /* either side: release */
      if (s) {
        s->released = 1;
        sgrpc_call_release(s->call);
        side_remove(sd, (int)(arg % sd->nslots));
      }
      break;
    case 5: /* server: initial metadata */
      if (s) {
        sgrpc_md md[1] = {SGRPC_MD_STR("x-h", "1")};
        sgrpc_call_send_headers(s->call, md, arg & 1);
      }
      break;
    case 6: /* server: status */
      if (s) {
        sgrpc_status st;
        memset(&st, 0, sizeof(st));
        st.code = arg % 17;
        st.message = arg & 0x20 ? "status \xc3\xa9 %" : NULL;
        sgrpc_call_send_status(s->call, &st);
      }
      break;
    case 7: /* move bytes client -> server */
      transfer(&a, &a.cli, &a.srv, arg ? (size_t)arg * 17 : SIZE_MAX);
      break;
    case 8: /* move bytes server -> client */
      transfer(&a, &a.srv, &a.cli, arg ? (size_t)arg * 17 : SIZE_MAX);
      break;
    case 9: /* time passes */
      advance(&a, (int64_t)arg * 7 * FZ_MS);
      break;
    case 10:
      sgrpc_conn_ping(sd->conn, arg);
      break;
    case 11:
      sgrpc_conn_goaway(sd->conn, arg & 1 ? 0 : 2, "actor", 5);
      break;
    case 13: /* graceful shutdown; arg 0: no drain deadline */
      sgrpc_conn_shutdown(sd->conn, arg ? a.now + (int64_t)arg * 10 * FZ_MS : SGRPC_NEVER,
                          a.now);
      break;
    case 14: /* client: start a compressing call */
      start_call(&a, arg, encs[1 + (arg >> 7)]);
      break;
    case 15: /* server: choose the response's compression */
      if (s) sgrpc_call_set_encoding(s->call, encs[arg % 3]);
      break;
    default: /* 12 and up: both directions until quiet */
      for (k = 0; k < 8; k++)
        if (transfer(&a, &a.cli, &a.srv, SIZE_MAX) + transfer(&a, &a.srv, &a.cli, SIZE_MAX) == 0)
          break;
      break;
    }
    drain(&a, &a.cli);
    drain(&a, &a.srv);
  }
  /* settle, let every deadline pass, then the transports close */
  for (k = 0; k < 16; k++)
    if (transfer(&a, &a.cli, &a.srv, SIZE_MAX) + transfer(&a, &a.srv, &a.cli, SIZE_MAX) == 0)
      break;
  advance(&a, 3600 * 1000 * FZ_MS);
  sgrpc_conn_transport_closed(a.cli.conn);
  sgrpc_conn_transport_closed(a.srv.conn);
  drain(&a, &a.cli);
  drain(&a, &a.srv);
  for (k = 0; k < a.cli.nslots; k++)
    if (!a.cli.slots[k]->closed) fz_fail("client call held without CLOSE at the end");
  for (k = 0; k < a.srv.nslots; k++)
    if (!a.srv.slots[k]->closed) fz_fail("server call held without CLOSE at the end");
  sgrpc_conn_del(a.cli.conn);
  sgrpc_conn_del(a.srv.conn);
  free(a.cli.pipe);
  free(a.srv.pipe);
  while (a.all) {
    slot *next = a.all->next_all;
    free(a.all);
    a.all = next;
  }
  (void)a.sink;
  return 0;
}
