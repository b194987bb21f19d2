/*
 * fuzz_client: arbitrary server bytes into a client connection that has
 * an exchange under way (fz_client_setup: three calls on streams 1, 3, 5,
 * with messages sent). The server's real SETTINGS prefix goes first, then
 * the input (see fuzz_common.h for its layout).
 *
 * The harness echoes messages on the bidi call a few times, starts and
 * cancels extra calls now and then, releases every call on its CLOSE,
 * takes all output after each step, advances the fake clock (the unary
 * call's deadline is 1 s away) and runs expiries. At the end the
 * transport closes and every call still held must get its CLOSE.
 */
#include "fuzz_common.h"

enum { MAX_CALLS = 16 };

typedef struct cl_call {
  sgrpc_call *call;
  int closed;
  int echoed;
  int headers;
} cl_call;

typedef struct cl_ctx {
  cl_call calls[MAX_CALLS];
  int ncalls;
  int live;
  unsigned sink;
} cl_ctx;

static int cl_drain(sgrpc_conn *c, void *ctx) {
  cl_ctx *x = ctx;
  sgrpc_event ev;
  int n = 0, rv;
  (void)c;
  while ((rv = sgrpc_conn_next_event(c, &ev)) == 1) {
    cl_call *cc = ev.call_user_data;
    n++;
    fz_trace("client", &ev);
    if (n > 100000) fz_fail("endless event stream");
    if (ev.call) {
      if (!cc || cc->call != ev.call) fz_fail("event for an unknown call");
      if (cc->closed) fz_fail("event after the call's CLOSE");
    }
    switch (ev.type) {
    case SGRPC_EV_HEADERS:
      if (cc->headers++) fz_fail("second HEADERS event");
      x->sink += fz_touch_md(ev.u.headers.md, ev.u.headers.md_count);
      x->sink += fz_touch(ev.u.headers.encoding, strlen(ev.u.headers.encoding));
      break;
    case SGRPC_EV_MESSAGE:
      x->sink += fz_touch(ev.u.message.data, ev.u.message.len);
      if (cc == &x->calls[1] && cc->echoed < 4) {
        cc->echoed++;
        sgrpc_call_send(ev.call, ev.u.message.data, ev.u.message.len,
                        cc->echoed == 4 ? SGRPC_SEND_END : 0);
      }
      break;
    case SGRPC_EV_CLOSE: {
      const sgrpc_status_info *st = &ev.u.close.status;
      if (st->code < 0 || st->code > 16) fz_fail("status code out of range");
      if (!st->message || st->message[st->message_len] != 0) fz_fail("bad status message");
      x->sink += fz_touch(st->message, st->message_len);
      x->sink += fz_touch(st->details, st->details_len);
      x->sink += fz_touch_md(st->md, st->md_count);
      cc->closed = 1;
      x->live--;
      sgrpc_call_release(ev.call);
      break;
    }
    case SGRPC_EV_GOAWAY:
      x->sink += fz_touch(ev.u.goaway.debug, ev.u.goaway.debug_len);
      break;
    case SGRPC_EV_CALL_NEW:
    case SGRPC_EV_HALF_CLOSE:
      fz_fail("server-only event on a client");
      break;
    default:
      break;
    }
  }
  if (rv < 0) fz_fail("next_event failed");
  return n;
}

static void cl_start(sgrpc_conn *c, cl_ctx *x, int64_t now, uint32_t r) {
  sgrpc_call_opts o;
  cl_call *cc;
  sgrpc_call *call;
  if (x->ncalls == MAX_CALLS) return;
  cc = &x->calls[x->ncalls];
  memset(&o, 0, sizeof(o));
  o.path = "/fz.S/Later";
  o.deadline = r & 1 ? now + (int64_t)(r >> 8 & 0xff) * FZ_MS + 1 : 0;
  o.user_data = cc;
  if (sgrpc_call_start(c, &o, now, &call) != 0) return;
  cc->call = call;
  x->ncalls++;
  x->live++;
  sgrpc_call_send(call, (const uint8_t *)"later", 5, r & 2 ? SGRPC_SEND_END : 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sgrpc_conn *c;
  sgrpc_call *calls[FZ_CLIENT_CALLS];
  void *ud[FZ_CLIENT_CALLS];
  cl_ctx x;
  fz_in in;
  const uint8_t *p, *prefix;
  size_t n, prefix_len;
  int64_t now = FZ_START;
  int i, dead = 0;

  memset(&x, 0, sizeof(x));
  for (i = 0; i < FZ_CLIENT_CALLS; i++) ud[i] = &x.calls[i];
  if (fz_client_setup(&c, calls, ud) != 0) fz_fail("client setup");
  for (i = 0; i < FZ_CLIENT_CALLS; i++) x.calls[i].call = calls[i];
  x.ncalls = x.live = FZ_CLIENT_CALLS;
  fz_flush(c);
  cl_drain(c, &x);
  prefix = fz_server_prefix(&prefix_len);
  if (fz_feed(c, prefix, prefix_len, now, cl_drain, &x) != 0) fz_fail("prefix refused");

  fz_in_init(&in, data, size);
  while (!dead && fz_in_next(&in, &p, &n)) {
    uint32_t r;
    if (fz_feed(c, p, n, now, cl_drain, &x) != 0) dead = 1;
    r = fz_rand(&in.rng);
    if ((r & 31) == 0) cl_start(c, &x, now, r);
    if ((r & 31) == 1) {
      int k = (int)(r >> 8) % x.ncalls;
      if (!x.calls[k].closed) sgrpc_call_cancel(x.calls[k].call);
    }
    if ((r & 63) == 2) sgrpc_conn_ping(c, r);
    now += (int64_t)(r >> 16) % 100 * FZ_MS;
    if (sgrpc_conn_next_expiry(c) <= now) sgrpc_conn_handle_expiry(c, now);
    cl_drain(c, &x);
    fz_flush(c);
    cl_drain(c, &x);
  }
  now += 3600 * 1000 * FZ_MS;
  sgrpc_conn_handle_expiry(c, now);
  cl_drain(c, &x);
  fz_flush(c);
  cl_drain(c, &x);
  for (i = 0; i < x.ncalls; i++) {
    /* a call with a deadline has certainly ended by now */
    if (i != 1 && i < FZ_CLIENT_CALLS && !x.calls[i].closed && !dead &&
        sgrpc_conn_is_alive(c))
      fz_fail("a call outlived its deadline");
  }
  if (fz_rand(&in.rng) & 1) {
    sgrpc_conn_transport_closed(c);
    cl_drain(c, &x);
    if (x.live != 0) fz_fail("a held call got no CLOSE after the transport closed");
  }
  sgrpc_conn_del(c);
  return 0;
}
