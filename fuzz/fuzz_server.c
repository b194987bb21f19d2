/*
 * fuzz_server: arbitrary client bytes into a server connection.
 *
 * The harness behaves like a small application: it answers each new call
 * in one of four ways (chosen by the input's generator), echoes messages,
 * cancels some calls, releases every call on its CLOSE, takes all output
 * after each step, advances the fake clock and runs expiries. At the end
 * the transport closes and every call the application still holds must
 * get its CLOSE. See fuzz_common.h for the input layout.
 */
#include "fuzz_common.h"

enum { MODE_NOW, MODE_ECHO, MODE_ERROR, MODE_WAIT, MODE_COUNT };

typedef struct sv_call {
  sgrpc_call *call;
  int mode;
  int closed;
  int half_closed;
  int echoed;
  struct sv_call *next;
} sv_call;

typedef struct sv_ctx {
  sv_call *calls;
  uint64_t *rng;
  unsigned sink;
  int live;
} sv_ctx;

static void sv_answer_new(sv_ctx *x, sgrpc_call *call) {
  static const uint8_t details[] = {0x08, 0x05, 0x12, 0x02, 'n', 'o'};
  static const uint8_t bin[] = {0xde, 0xad, 0x00};
  sgrpc_md hmd[2] = {SGRPC_MD_STR("x-srv", "hello"), {"x-srv-bin", 9, bin, sizeof(bin)}};
  sgrpc_md tmd[1] = {SGRPC_MD_STR("x-trailer", "t")};
  sgrpc_status st;
  sv_call *sc = calloc(1, sizeof(*sc));
  if (!sc) fz_fail("oom");
  sc->call = call;
  sc->mode = (int)(fz_rand(x->rng) % MODE_COUNT);
  sc->next = x->calls;
  x->calls = sc;
  x->live++;
  sgrpc_call_set_user_data(call, sc);
  memset(&st, 0, sizeof(st));
  switch (sc->mode) {
  case MODE_NOW:
    sgrpc_call_send(call, (const uint8_t *)"reply", 5, 0);
    st.code = SGRPC_STATUS_OK;
    sgrpc_call_send_status(call, &st);
    break;
  case MODE_ECHO:
    sgrpc_call_send_headers(call, hmd, 2);
    break;
  case MODE_ERROR:
    st.code = SGRPC_STATUS_NOT_FOUND;
    st.message = "no such thing \xe2\x9c\x93 100%";
    st.details = details;
    st.details_len = sizeof(details);
    st.md = tmd;
    st.md_count = 1;
    sgrpc_call_send_status(call, &st);
    break;
  default:
    break; /* MODE_WAIT: the deadline, the client or the end decides */
  }
}

static int sv_drain(sgrpc_conn *c, void *ctx) {
  sv_ctx *x = ctx;
  sgrpc_event ev;
  int n = 0, rv;
  while ((rv = sgrpc_conn_next_event(c, &ev)) == 1) {
    sv_call *sc = ev.call_user_data;
    n++;
    fz_trace("server", &ev);
    if (n > 100000) fz_fail("endless event stream");
    if (ev.call && ev.type != SGRPC_EV_CALL_NEW) {
      if (!sc) fz_fail("event for a call the application never saw");
      if (sc->closed) fz_fail("event after the call's CLOSE");
    }
    switch (ev.type) {
    case SGRPC_EV_CALL_NEW:
      if (!ev.call || sc) fz_fail("bad CALL_NEW");
      x->sink += fz_touch(ev.u.call_new.path, ev.u.call_new.path_len + 1);
      x->sink += fz_touch(ev.u.call_new.authority, strlen(ev.u.call_new.authority));
      x->sink += fz_touch(ev.u.call_new.user_agent, strlen(ev.u.call_new.user_agent));
      x->sink += fz_touch(ev.u.call_new.content_type, strlen(ev.u.call_new.content_type));
      x->sink += fz_touch(ev.u.call_new.encoding, strlen(ev.u.call_new.encoding));
      x->sink += fz_touch(ev.u.call_new.accept_encoding,
                          strlen(ev.u.call_new.accept_encoding));
      x->sink += fz_touch_md(ev.u.call_new.md, ev.u.call_new.md_count);
      sv_answer_new(x, ev.call);
      break;
    case SGRPC_EV_MESSAGE:
      x->sink += fz_touch(ev.u.message.data, ev.u.message.len);
      if (sc->mode == MODE_ECHO && sc->echoed < 4) {
        sc->echoed++;
        sgrpc_call_send(ev.call, ev.u.message.data, ev.u.message.len, 0);
      }
      break;
    case SGRPC_EV_HALF_CLOSE:
      if (sc->half_closed) fz_fail("second HALF_CLOSE");
      sc->half_closed = 1;
      if (sc->mode == MODE_ECHO) {
        sgrpc_status st;
        memset(&st, 0, sizeof(st));
        sgrpc_call_send_status(ev.call, &st);
      } else if (sc->mode == MODE_WAIT && (fz_rand(x->rng) & 1)) {
        sgrpc_call_cancel(ev.call);
      }
      break;
    case SGRPC_EV_CLOSE:
      if (ev.u.close.status.code < 0 || ev.u.close.status.code > 16) fz_fail("bad code");
      if (!ev.u.close.status.message) fz_fail("NULL status message");
      x->sink += fz_touch(ev.u.close.status.message, ev.u.close.status.message_len + 1);
      sc->closed = 1;
      x->live--;
      sgrpc_call_release(ev.call);
      break;
    case SGRPC_EV_GOAWAY:
      x->sink += fz_touch(ev.u.goaway.debug, ev.u.goaway.debug_len);
      break;
    case SGRPC_EV_HEADERS:
      fz_fail("HEADERS event on a server");
      break;
    default:
      break;
    }
  }
  if (rv < 0) fz_fail("next_event failed");
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sgrpc_settings s;
  sgrpc_conn *c;
  sv_ctx x;
  fz_in in;
  const uint8_t *p;
  size_t n;
  int64_t now = FZ_START;
  int step = 0;

  memset(&x, 0, sizeof(x));
  fz_in_init(&in, data, size);
  x.rng = &in.rng;
  fz_server_settings(&s);
  if (sgrpc_conn_server_new(&c, &s, NULL, now) != 0) fz_fail("server_new");
  fz_flush(c);
  while (fz_in_next(&in, &p, &n)) {
    uint32_t r;
    if (fz_feed(c, p, n, now, sv_drain, &x) != 0) break;
    r = fz_rand(&in.rng);
    /* now and then the application gives up on a waiting call */
    if ((r & 15) == 0) {
      sv_call *sc;
      for (sc = x.calls; sc; sc = sc->next) {
        if (!sc->closed && sc->mode == MODE_WAIT) {
          sgrpc_call_cancel(sc->call);
          break;
        }
      }
    }
    if ((r & 0x3f) == 1) sgrpc_conn_ping(c, (uint64_t)step);
    if (step == 200) sgrpc_conn_goaway(c, 0, "bye", 3);
    now += (int64_t)(r >> 16) % 50 * FZ_MS;
    if (sgrpc_conn_next_expiry(c) <= now) sgrpc_conn_handle_expiry(c, now);
    sv_drain(c, &x);
    fz_flush(c);
    sv_drain(c, &x);
    step++;
  }
  /* every deadline passes */
  now += 3600 * 1000 * FZ_MS;
  sgrpc_conn_handle_expiry(c, now);
  sv_drain(c, &x);
  fz_flush(c);
  sv_drain(c, &x);
  if (fz_rand(&in.rng) & 1) {
    sgrpc_conn_transport_closed(c);
    sv_drain(c, &x);
    if (x.live != 0) fz_fail("a held call got no CLOSE after the transport closed");
  }
  sgrpc_conn_del(c);
  while (x.calls) {
    sv_call *next = x.calls->next;
    free(x.calls);
    x.calls = next;
  }
  return 0;
}
