/*
 * Connection life: compression, keepalive and ping strikes, GOAWAY in
 * both directions, graceful shutdown, concurrency queuing, limits,
 * connection events and counters. In-memory pair with a fake clock, plus
 * a bare nghttp2 client session for requests sgrpc itself would not send.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <nghttp2/nghttp2.h>

#define SEC 1000000000ll

/* ---------------------------------------------------------------- */
/* A small echo world on the pair                                    */
/* ---------------------------------------------------------------- */

typedef struct cstate {
  int done, status, retry_safe, messages, compressed_seen;
  size_t last_len;
  uint8_t last[64];
  char msg[128];
} cstate;

/* Every one of the first n client calls ended OK after exactly one reply. */
static void assert_all_ok_one_message(const cstate *cs, int n) {
  int i;
  for (i = 0; i < n; i++) {
    assert_true(cs[i].done);
    assert_int_equal(cs[i].status, SGRPC_STATUS_OK);
    assert_int_equal(cs[i].messages, 1);
  }
}

typedef struct world {
  int srv_new, srv_closed, srv_open, srv_max_open;
  int srv_cancelled;
  int hold;              /* server: don't answer, keep calls open */
  int srv_compressed_seen;
  const char *srv_encoding; /* server: set_encoding on new calls */
  sgrpc_call *held[64];
  int nheld;
  int cli_ready, srv_ready, cli_goaway, cli_closed_ev, srv_closed_ev;
  int cli_close_reason, srv_close_reason;
  uint32_t goaway_code;
  int32_t goaway_last;
  char goaway_debug[32];
  int32_t goaway_ids[8]; /* client: last_stream_id of each GOAWAY, in order */
  int srv_goaway;        /* server: GOAWAY events from the client */
  int srv_messages;
  /* server: answer each message with this one (flags as for call_send)
   * and a status, instead of echoing */
  const uint8_t *srv_reply;
  size_t srv_reply_len;
  unsigned srv_reply_flags;
} world;

static void on_ev(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  if (conn == p->srv) {
    switch (ev->type) {
    case SGRPC_EV_READY: w->srv_ready++; break;
    case SGRPC_EV_CONN_CLOSED:
      w->srv_closed_ev++;
      w->srv_close_reason = ev->u.conn_closed.reason;
      break;
    case SGRPC_EV_CALL_NEW:
      w->srv_new++;
      w->srv_open++;
      if (w->srv_open > w->srv_max_open) w->srv_max_open = w->srv_open;
      if (w->srv_encoding) assert_int_equal(sgrpc_call_set_encoding(ev->call, w->srv_encoding), 0);
      if (w->hold && w->nheld < 64) w->held[w->nheld++] = ev->call;
      break;
    case SGRPC_EV_GOAWAY: w->srv_goaway++; break;
    case SGRPC_EV_MESSAGE:
      w->srv_messages++;
      if (ev->u.message.compressed) w->srv_compressed_seen++;
      if (w->srv_reply) {
        assert_int_equal(sgrpc_call_send(ev->call, w->srv_reply, w->srv_reply_len,
                                         w->srv_reply_flags), 0);
        break;
      }
      if (!w->hold)
        assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0), 0);
      break;
    case SGRPC_EV_HALF_CLOSE:
      if (!w->hold) {
        sgrpc_status st = {0};
        assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
      }
      break;
    case SGRPC_EV_CLOSE: {
      int i;
      w->srv_closed++;
      w->srv_open--;
      if (ev->u.close.status.code == SGRPC_STATUS_CANCELLED) w->srv_cancelled++;
      for (i = 0; i < w->nheld; i++)
        if (w->held[i] == ev->call) w->held[i] = NULL;
      sgrpc_call_release(ev->call);
      break;
    }
    default: break;
    }
    return;
  }
  switch (ev->type) {
  case SGRPC_EV_READY: w->cli_ready++; break;
  case SGRPC_EV_CONN_CLOSED:
    w->cli_closed_ev++;
    w->cli_close_reason = ev->u.conn_closed.reason;
    break;
  case SGRPC_EV_GOAWAY:
    if (w->cli_goaway < 8) w->goaway_ids[w->cli_goaway] = ev->u.goaway.last_stream_id;
    w->cli_goaway++;
    w->goaway_code = ev->u.goaway.error_code;
    w->goaway_last = ev->u.goaway.last_stream_id;
    snprintf(w->goaway_debug, sizeof(w->goaway_debug), "%.*s", (int)ev->u.goaway.debug_len,
             (const char *)ev->u.goaway.debug);
    break;
  case SGRPC_EV_MESSAGE: {
    cstate *cs = ev->call_user_data;
    cs->messages++;
    if (ev->u.message.compressed) cs->compressed_seen++;
    cs->last_len = ev->u.message.len;
    memcpy(cs->last, ev->u.message.data, ev->u.message.len < 64 ? ev->u.message.len : 64);
    break;
  }
  case SGRPC_EV_CLOSE: {
    cstate *cs = ev->call_user_data;
    cs->done = 1;
    cs->status = ev->u.close.status.code;
    cs->retry_safe = ev->u.close.retry_safe;
    snprintf(cs->msg, sizeof(cs->msg), "%s", ev->u.close.status.message);
    sgrpc_call_release(ev->call);
    break;
  }
  default: break;
  }
}

static sgrpc_call *start(pair *p, cstate *cs, const char *enc) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.user_data = cs;
  o.encoding = enc;
  assert_int_equal(sgrpc_call_start(p->cli, &o, p->now, &call), 0);
  return call;
}

static void setup_pair(pair *p, world *w, const sgrpc_settings *cs, const sgrpc_settings *ss) {
  memset(w, 0, sizeof(*w));
  assert_int_equal(pair_init(p, cs, ss, NULL), 0);
  p->on_event = on_ev;
  p->ud = w;
}

/* ---------------------------------------------------------------- */
/* Compression                                                       */
/* ---------------------------------------------------------------- */

static void roundtrip(const char *cli_enc, const char *srv_enc) {
  pair p;
  world w;
  cstate cs = {0};
  sgrpc_call *call;
  uint8_t msg[2000];
  size_t i;
  setup_pair(&p, &w, NULL, NULL);
  w.srv_encoding = srv_enc;
  for (i = 0; i < sizeof(msg); i++) msg[i] = (uint8_t)("abcabcabd"[i % 9]);
  call = start(&p, &cs, cli_enc);
  assert_int_equal(sgrpc_call_send(call, msg, sizeof(msg), SGRPC_SEND_END), 0);
  pair_run(&p, 100);
  assert_true(cs.done);
  assert_int_equal(cs.status, SGRPC_STATUS_OK);
  assert_int_equal(cs.messages, 1);
  assert_int_equal(cs.last_len, sizeof(msg));
  assert_memory_equal(cs.last, msg, 64);
  assert_int_equal(w.srv_compressed_seen, strcmp(cli_enc, "identity") != 0);
  assert_int_equal(cs.compressed_seen, strcmp(srv_enc, "identity") != 0);
  pair_free(&p);
}

static void test_compress_roundtrips(void **state) {
  (void)state;
  roundtrip("gzip", "gzip");
  roundtrip("deflate", "deflate");
  roundtrip("gzip", "identity");
  roundtrip("identity", "deflate");
  roundtrip("identity", "identity");
}

/* Compression makes the wire smaller: the bytes moved prove it happened. */
static void test_compress_shrinks_wire(void **state) {
  size_t moved[2];
  int k;
  (void)state;
  for (k = 0; k < 2; k++) {
    pair p;
    world w;
    cstate cs = {0};
    static uint8_t zeros[100000];
    sgrpc_call *call;
    setup_pair(&p, &w, NULL, NULL);
    pair_run(&p, 10);
    call = start(&p, &cs, k ? "gzip" : NULL);
    w.hold = 1;
    assert_int_equal(sgrpc_call_send(call, zeros, sizeof(zeros), SGRPC_SEND_END), 0);
    moved[k] = pair_run(&p, 100);
    pair_free(&p);
  }
  assert_true(moved[1] * 10 < moved[0]);
}

static void test_compress_threshold(void **state) {
  pair p;
  world w;
  cstate cs = {0};
  sgrpc_settings s;
  sgrpc_call *call;
  (void)state;
  sgrpc_settings_default(&s);
  s.compress_min_size = 100;
  setup_pair(&p, &w, &s, NULL);
  call = start(&p, &cs, "gzip");
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"short", 5, 0), 0);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"also not", 8, SGRPC_SEND_NO_COMPRESS), 0);
  pair_run(&p, 50);
  assert_int_equal(w.srv_compressed_seen, 0);
  assert_int_equal(sgrpc_call_close_send(call), 0);
  pair_run(&p, 50);
  assert_int_equal(cs.status, SGRPC_STATUS_OK);
  pair_free(&p);
}

/* Peak-tracking allocator for the bomb test. */
typedef struct { size_t cur, peak; } peakmem;
typedef struct { size_t n; size_t pad; } ph;
static void *pm_malloc(size_t n, void *ud) {
  peakmem *m = ud;
  ph *h = malloc(sizeof(*h) + n);
  if (!h) return NULL;
  h->n = n;
  m->cur += n;
  if (m->cur > m->peak) m->peak = m->cur;
  return h + 1;
}
static void pm_free(void *p, void *ud) {
  peakmem *m = ud;
  ph *h;
  if (!p) return;
  h = (ph *)p - 1;
  m->cur -= h->n;
  free(h);
}
static void *pm_calloc(size_t a, size_t b, void *ud) {
  void *p = pm_malloc(a * b, ud);
  if (p) memset(p, 0, a * b);
  return p;
}
static void *pm_realloc(void *p, size_t n, void *ud) {
  peakmem *m = ud;
  ph *h;
  if (!p) return pm_malloc(n, ud);
  h = (ph *)p - 1;
  m->cur -= h->n;
  h = realloc(h, sizeof(*h) + n);
  if (!h) return NULL;
  h->n = n;
  m->cur += n;
  if (m->cur > m->peak) m->peak = m->cur;
  return h + 1;
}

/* gzip of `total` zero bytes. */
static uint8_t *make_bomb(size_t total, size_t *outlen) {
  z_stream z;
  static uint8_t zeros[1 << 16];
  size_t cap = total / 500 + 4096;
  uint8_t *out = malloc(cap);
  memset(&z, 0, sizeof(z));
  assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_out = out;
  z.avail_out = (uInt)cap;
  while (total) {
    size_t n = total < sizeof(zeros) ? total : sizeof(zeros);
    z.next_in = zeros;
    z.avail_in = (uInt)n;
    total -= n;
    assert_int_not_equal(deflate(&z, total ? Z_NO_FLUSH : Z_FINISH), Z_STREAM_ERROR);
    assert_int_equal(z.avail_in, 0);
  }
  *outlen = cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

static void test_compress_bomb(void **state) {
  pair p;
  world w;
  cstate cs = {0};
  peakmem pm = {0, 0};
  sgrpc_mem mem = {&pm, pm_malloc, pm_free, pm_calloc, pm_realloc};
  sgrpc_call *call;
  size_t blen;
  /* 256 MiB of zeros: about 250 KiB of gzip, far past the 4 MiB limit */
  uint8_t *bomb = make_bomb((size_t)256 << 20, &blen);
  (void)state;
  assert_true(blen < (1u << 20));
  memset(&w, 0, sizeof(w));
  assert_int_equal(pair_init(&p, NULL, NULL, &mem), 0);
  p.on_event = on_ev;
  p.ud = &w;
  call = start(&p, &cs, "gzip");
  assert_int_equal(sgrpc_call_send(call, bomb, blen, SGRPC_SEND_COMPRESSED | SGRPC_SEND_END), 0);
  pair_run(&p, 1000);
  assert_true(cs.done);
  assert_int_equal(cs.status, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  /* the server's app saw the call fail, never a message */
  assert_int_equal(w.srv_closed, 1);
  assert_int_equal(w.srv_compressed_seen, 0);
  /* both engines together never held much more than the 4 MiB limit */
  assert_true(pm.peak < (size_t)16 << 20);
  pair_free(&p);
  assert_int_equal(pm.cur, 0);
  free(bomb);
}

/* A compression bomb of `chunks` MiB of zeros, built without compressing
 * all of it: one MiB of zeros is deflated once and ended with a full
 * flush (so the block refers to nothing before it and ends on a byte
 * boundary), that block is repeated, and a final empty block and the
 * codec's trailer close the stream. gzip (RFC 1952) or zlib (RFC 1950,
 * gRPC's "deflate"). 1024 chunks: 1 GiB inflated, about 1 MiB on the wire,
 * as close to a "tiny message, huge output" bomb as DEFLATE's ~1:1032
 * ceiling allows. */
static uint8_t *make_chunked_bomb(int gzip, size_t chunks, size_t *outlen) {
  static uint8_t zeros[1 << 20];
  uint8_t blk[1 << 14], fin[64], *out, *o;
  size_t blen, flen, i;
  uLong check;
  z_stream z;
  memset(&z, 0, sizeof(z));
  assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = zeros;
  z.avail_in = sizeof(zeros);
  z.next_out = blk;
  z.avail_out = sizeof(blk);
  assert_int_equal(deflate(&z, Z_FULL_FLUSH), Z_OK);
  assert_int_equal(z.avail_in, 0);
  assert_true(z.avail_out > 0);
  blen = sizeof(blk) - z.avail_out;
  z.next_out = fin;
  z.avail_out = sizeof(fin);
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  flen = sizeof(fin) - z.avail_out;
  deflateEnd(&z);

  out = malloc(10 + blen * chunks + flen + 8);
  assert_non_null(out);
  o = out;
  if (gzip) {
    static const uint8_t hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    memcpy(o, hdr, 10);
    o += 10;
    check = crc32(0, zeros, sizeof(zeros));
  } else {
    *o++ = 0x78; /* deflate, 32 KiB window */
    *o++ = 0xda; /* level 9; 0x78da is a multiple of 31 */
    check = adler32(1, zeros, sizeof(zeros));
  }
  {
    uLong one = check;
    for (i = 1; i < chunks; i++)
      check = gzip ? crc32_combine(check, one, sizeof(zeros))
                   : adler32_combine(check, one, sizeof(zeros));
  }
  for (i = 0; i < chunks; i++, o += blen) memcpy(o, blk, blen);
  memcpy(o, fin, flen);
  o += flen;
  if (gzip) {
    uint32_t isize = (uint32_t)(chunks * sizeof(zeros)); /* modulo 2^32 */
    for (i = 0; i < 4; i++) *o++ = (uint8_t)(check >> (8 * i));
    for (i = 0; i < 4; i++) *o++ = (uint8_t)(isize >> (8 * i));
  } else {
    for (i = 0; i < 4; i++) *o++ = (uint8_t)(check >> (24 - 8 * i));
  }
  *outlen = (size_t)(o - out);
  return out;
}

/* The bomb builder makes valid streams: a 3-chunk one inflates, with its
 * checksum verified by zlib, to exactly 3 MiB of zeros. */
static void check_bomb_builder(int gzip) {
  size_t blen, total = 0, i;
  uint8_t *bomb = make_chunked_bomb(gzip, 3, &blen);
  static uint8_t buf[1 << 16];
  z_stream z;
  int rv;
  memset(&z, 0, sizeof(z));
  assert_int_equal(inflateInit2(&z, gzip ? 15 + 16 : 15), Z_OK);
  z.next_in = bomb;
  z.avail_in = (uInt)blen;
  do {
    z.next_out = buf;
    z.avail_out = sizeof(buf);
    rv = inflate(&z, Z_NO_FLUSH);
    assert_true(rv == Z_OK || rv == Z_STREAM_END);
    for (i = 0; i < sizeof(buf) - z.avail_out; i++) assert_int_equal(buf[i], 0);
    total += sizeof(buf) - z.avail_out;
  } while (rv != Z_STREAM_END);
  assert_int_equal(z.avail_in, 0);
  assert_int_equal(total, (size_t)3 << 20);
  inflateEnd(&z);
  free(bomb);
}

/* Sends one bomb in one direction and checks it is refused with
 * RESOURCE_EXHAUSTED while neither engine allocates anywhere near its
 * inflated size. to_server: the client compresses the request; else the
 * server compresses the response. */
static void bomb_one(const char *enc, const uint8_t *bomb, size_t blen, int to_server) {
  pair p;
  world w;
  cstate cs = {0};
  peakmem pm = {0, 0};
  sgrpc_mem mem = {&pm, pm_malloc, pm_free, pm_calloc, pm_realloc};
  sgrpc_call *call;
  memset(&w, 0, sizeof(w));
  assert_int_equal(pair_init(&p, NULL, NULL, &mem), 0);
  p.on_event = on_ev;
  p.ud = &w;
  if (to_server) {
    call = start(&p, &cs, enc);
    assert_int_equal(sgrpc_call_send(call, bomb, blen, SGRPC_SEND_COMPRESSED | SGRPC_SEND_END), 0);
  } else {
    w.srv_encoding = enc;
    w.srv_reply = bomb;
    w.srv_reply_len = blen;
    w.srv_reply_flags = SGRPC_SEND_COMPRESSED;
    call = start(&p, &cs, NULL);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"go", 2, SGRPC_SEND_END), 0);
  }
  pair_run(&p, 1000);
  assert_true(cs.done);
  if (cs.status != SGRPC_STATUS_RESOURCE_EXHAUSTED)
    fail_msg("%s bomb of %zu bytes to the %s: status %d (%s)", enc, blen,
             to_server ? "server" : "client", cs.status, cs.msg);
  assert_int_equal(cs.messages, 0); /* the client never got a message */
  assert_int_equal(w.srv_closed, 1);
  if (to_server) {
    assert_int_equal(w.srv_messages, 0); /* the server's app never got one */
  } else {
    assert_int_equal(w.srv_messages, 1);
  }
  /* both engines together never held much more than the 4 MiB limit */
  if (pm.peak >= (size_t)16 << 20) fail_msg("peak allocation %zu bytes", pm.peak);
  pair_free(&p);
  assert_int_equal(pm.cur, 0);
}

static void test_compress_bomb_1gib_both_ways(void **state) {
  int gzip;
  (void)state;
  for (gzip = 0; gzip < 2; gzip++) {
    const char *enc = gzip ? "gzip" : "deflate";
    size_t blen, slen;
    uint8_t *bomb, *small;
    check_bomb_builder(gzip);
    /* 1 GiB inflated, about 1 MiB on the wire: under the 4 MiB receive
     * limit, so only the inflated size can stop it */
    bomb = make_chunked_bomb(gzip, 1024, &blen);
    assert_true(blen < (size_t)(1200u << 10));
    bomb_one(enc, bomb, blen, 1);
    bomb_one(enc, bomb, blen, 0);
    free(bomb);
    /* about 10 KiB on the wire, 10 MiB inflated */
    small = make_chunked_bomb(gzip, 10, &slen);
    assert_true(slen <= (size_t)(12u << 10));
    bomb_one(enc, small, slen, 1);
    bomb_one(enc, small, slen, 0);
    free(small);
  }
}

/* ---------------------------------------------------------------- */
/* A bare nghttp2 client for requests sgrpc would not send            */
/* ---------------------------------------------------------------- */

typedef struct raw {
  nghttp2_session *s;
  char status[8], grpc_status[8], accept[64];
  int rst, closed;
} raw;

static int raw_hdr(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
                   const uint8_t *v, size_t vl, uint8_t fl, void *ud) {
  raw *r = ud;
  (void)s; (void)f; (void)fl;
  if (nl == 7 && !memcmp(n, ":status", 7)) snprintf(r->status, sizeof(r->status), "%.*s", (int)vl, v);
  if (nl == 11 && !memcmp(n, "grpc-status", 11))
    snprintf(r->grpc_status, sizeof(r->grpc_status), "%.*s", (int)vl, v);
  if (nl == 20 && !memcmp(n, "grpc-accept-encoding", 20))
    snprintf(r->accept, sizeof(r->accept), "%.*s", (int)vl, v);
  return 0;
}
static int raw_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
  raw *r = ud;
  (void)s; (void)id;
  r->closed = 1;
  r->rst = (int)code;
  return 0;
}

static void raw_init(raw *r) {
  nghttp2_session_callbacks *cb;
  memset(r, 0, sizeof(*r));
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, raw_hdr);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, raw_close);
  nghttp2_session_client_new(&r->s, cb, r);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(r->s, 0, NULL, 0);
}

static void raw_pump(raw *r, sgrpc_conn *srv, int64_t now) {
  int round;
  for (round = 0; round < 50; round++) {
    const uint8_t *d;
    ssize_t n;
    sgrpc_event ev;
    int moved = 0;
    while ((n = nghttp2_session_mem_send(r->s, &d)) > 0) {
      assert_int_equal(sgrpc_conn_recv(srv, d, (size_t)n, now), n);
      while (sgrpc_conn_next_event(srv, &ev) == 1) {
        /* a test server that fails any call it is shown */
        if (ev.type == SGRPC_EV_CLOSE) sgrpc_call_release(ev.call);
      }
      moved = 1;
    }
    while ((n = sgrpc_conn_out_peek(srv, &d)) > 0) {
      assert_int_equal(nghttp2_session_mem_recv(r->s, d, (size_t)n), n);
      sgrpc_conn_out_consume(srv, (size_t)n);
      moved = 1;
    }
    if (!moved) break;
  }
}

/* A header-only request (END_STREAM on HEADERS). */
static int32_t raw_request(raw *r, const char *encoding) {
  nghttp2_nv nv[6];
  size_t n = 0;
#define NV(a, b)                                                                   \
  do {                                                                             \
    nv[n].name = (uint8_t *)a;                                                     \
    nv[n].namelen = strlen(a);                                                     \
    nv[n].value = (uint8_t *)b;                                                    \
    nv[n].valuelen = strlen(b);                                                    \
    nv[n].flags = 0;                                                               \
    n++;                                                                           \
  } while (0)
  NV(":method", "POST");
  NV(":scheme", "http");
  NV(":path", "/t.S/M");
  NV("te", "trailers");
  NV("content-type", "application/grpc");
  if (encoding) NV("grpc-encoding", encoding);
#undef NV
  return nghttp2_submit_headers(r->s, NGHTTP2_FLAG_END_STREAM, -1, NULL, nv, n, NULL);
}

static ssize_t raw_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *ud) {
  const uint8_t *msg = src->ptr;
  (void)s; (void)id; (void)ud;
  assert_true(len >= 10);
  memcpy(buf, msg, 10);
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  return 10;
}

static void test_unknown_encoding(void **state) {
  raw r;
  sgrpc_conn *srv;
  (void)state;
  raw_init(&r);
  assert_int_equal(sgrpc_conn_server_new(&srv, NULL, NULL, 0), 0);
  raw_request(&r, "snappy");
  raw_pump(&r, srv, 0);
  assert_string_equal(r.status, "200");
  assert_string_equal(r.grpc_status, "12");
  assert_non_null(strstr(r.accept, "gzip"));
  assert_non_null(strstr(r.accept, "deflate"));
  sgrpc_conn_del(srv);
  nghttp2_session_del(r.s);
}

static void test_flag_without_encoding(void **state) {
  raw r;
  sgrpc_conn *srv;
  nghttp2_nv nv[5];
  nghttp2_data_provider prd;
  /* compressed flag 1, length 5, then 5 bytes */
  static const uint8_t msg[10] = {1, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
  (void)state;
  raw_init(&r);
  assert_int_equal(sgrpc_conn_server_new(&srv, NULL, NULL, 0), 0);
  nv[0] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0};
  nv[1] = (nghttp2_nv){(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0};
  nv[2] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)"/t.S/M", 5, 6, 0};
  nv[3] = (nghttp2_nv){(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0};
  nv[4] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0};
  prd.source.ptr = (void *)msg;
  prd.read_callback = raw_read;
  assert_true(nghttp2_submit_request(r.s, NULL, nv, 5, &prd, NULL) > 0);
  raw_pump(&r, srv, 0);
  assert_string_equal(r.grpc_status, "13");
  sgrpc_conn_del(srv);
  nghttp2_session_del(r.s);
}

/* ---------------------------------------------------------------- */
/* Keepalive                                                          */
/* ---------------------------------------------------------------- */

static void test_keepalive_ok(void **state) {
  pair p;
  world w;
  cstate cs = {0};
  sgrpc_settings s;
  (void)state;
  sgrpc_settings_default(&s);
  s.keepalive_time = 10 * SEC;
  s.keepalive_timeout = 1 * SEC;
  setup_pair(&p, &w, &s, NULL);
  w.hold = 1;
  start(&p, &cs, NULL);
  pair_run(&p, 20);
  assert_int_equal(w.cli_ready, 1);
  assert_int_equal(w.srv_ready, 1);
  assert_int_equal(sgrpc_conn_next_expiry(p.cli), p.now + 10 * SEC);
  pair_advance(&p, 10 * SEC); /* ping goes out */
  assert_true(sgrpc_conn_next_expiry(p.cli) <= p.now + 1 * SEC);
  pair_run(&p, 20); /* acked */
  pair_advance(&p, 2 * SEC);
  assert_true(sgrpc_conn_is_alive(p.cli));
  assert_false(cs.done);
  pair_free(&p);
}

static void test_keepalive_timeout(void **state) {
  pair p;
  world w;
  cstate cs = {0};
  sgrpc_settings s;
  const uint8_t *d;
  ssize_t n;
  (void)state;
  sgrpc_settings_default(&s);
  s.keepalive_time = 10 * SEC;
  s.keepalive_timeout = 1 * SEC;
  setup_pair(&p, &w, &s, NULL);
  w.hold = 1;
  start(&p, &cs, NULL);
  pair_run(&p, 20);
  pair_advance(&p, 10 * SEC);
  /* the ping is written, but the peer never answers */
  while ((n = sgrpc_conn_out_peek(p.cli, &d)) > 0) sgrpc_conn_out_consume(p.cli, (size_t)n);
  pair_advance(&p, 1 * SEC);
  assert_true(cs.done);
  assert_int_equal(cs.status, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(w.cli_closed_ev, 1);
  assert_int_equal(w.cli_close_reason, SGRPC_ERR_KEEPALIVE_TIMEOUT);
  assert_false(sgrpc_conn_is_alive(p.cli));
  pair_free(&p);
}

static void test_ping_strikes(void **state) {
  pair p;
  world w;
  cstate cs = {0};
  sgrpc_settings s;
  int i;
  (void)state;
  sgrpc_settings_default(&s);
  s.keepalive_time = 1 * SEC;
  s.keepalive_timeout = 1 * SEC / 2;
  setup_pair(&p, &w, &s, NULL);
  w.hold = 1;
  start(&p, &cs, NULL);
  pair_run(&p, 20);
  for (i = 0; i < 10 && !w.cli_goaway; i++) {
    pair_advance(&p, 1 * SEC);
    pair_run(&p, 20);
  }
  assert_int_equal(w.cli_goaway, 1);
  assert_int_equal(w.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  assert_string_equal(w.goaway_debug, "too_many_pings");
  assert_int_equal(sgrpc_conn_keepalive_time(p.cli), 2 * SEC);
  /* 1 first ping + 2 tolerated strikes, the 4th ping ends it */
  assert_int_equal(i, 4);
  /* the server's side: the connection failed, its call was told */
  assert_int_equal(w.srv_closed_ev, 1);
  assert_int_equal(w.srv_close_reason, SGRPC_ERR_TOO_MANY_PINGS);
  assert_int_equal(w.srv_cancelled, 1);
  assert_int_equal(sgrpc_conn_handle_expiry(p.srv, p.now), SGRPC_ERR_TOO_MANY_PINGS);
  pair_free(&p);
}

static void test_ping_with_data_not_strike(void **state) {
  pair p;
  world w;
  int i;
  (void)state;
  setup_pair(&p, &w, NULL, NULL);
  for (i = 0; i < 10; i++) {
    cstate cs = {0};
    sgrpc_call *call = start(&p, &cs, NULL);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, SGRPC_SEND_END), 0);
    assert_int_equal(sgrpc_conn_ping(p.cli, (uint64_t)i), 0);
    pair_run(&p, 50);
    assert_int_equal(cs.status, SGRPC_STATUS_OK);
  }
  assert_int_equal(w.cli_goaway, 0);
  pair_free(&p);
}

/* ---------------------------------------------------------------- */
/* GOAWAY and graceful shutdown                                       */
/* ---------------------------------------------------------------- */

static void test_goaway_received_above_last_id(void **state) {
  pair p;
  world w;
  cstate a = {0}, b = {0}, c3 = {0};
  sgrpc_call *late, *ca, *cb;
  const uint8_t *d;
  ssize_t n;
  uint8_t *hold;
  size_t hold_len;
  cstate c4 = {0};
  sgrpc_call *tmp = NULL;
  sgrpc_call_opts o;
  (void)state;
  setup_pair(&p, &w, NULL, NULL);
  w.hold = 1;
  ca = start(&p, &a, NULL);
  cb = start(&p, &b, NULL);
  pair_run(&p, 20);
  assert_int_equal(w.srv_new, 2);
  /* a third request is on the wire but not yet read by the server */
  late = start(&p, &c3, NULL);
  n = sgrpc_conn_out_peek(p.cli, &d);
  assert_true(n > 0);
  hold = malloc((size_t)n);
  memcpy(hold, d, (size_t)n);
  hold_len = (size_t)n;
  sgrpc_conn_out_consume(p.cli, (size_t)n);
  assert_int_equal(sgrpc_conn_goaway(p.srv, 0, NULL, 0), 0);
  pair_pump(&p, p.srv, p.cli);
  assert_int_equal(w.cli_goaway, 1);
  assert_int_equal(w.goaway_last, sgrpc_call_stream_id(cb));
  assert_true(c3.done);
  assert_int_equal(c3.status, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(c3.retry_safe, 1);
  (void)late;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.user_data = &c4;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &tmp), SGRPC_ERR_GOING_AWAY);
  /* the late bytes reach the server now: it must ignore stream 5 */
  assert_true(sgrpc_conn_recv(p.srv, hold, hold_len, p.now) >= 0);
  pair_drain(&p, p.srv);
  assert_int_equal(w.srv_new, 2);
  /* calls at or below the last id still complete */
  {
    int i;
    sgrpc_status st = {0};
    for (i = 0; i < w.nheld; i++)
      if (w.held[i]) assert_int_equal(sgrpc_call_send_status(w.held[i], &st), 0);
  }
  pair_run(&p, 50);
  assert_int_equal(a.status, SGRPC_STATUS_OK);
  assert_int_equal(b.status, SGRPC_STATUS_OK);
  assert_true(a.done && b.done);
  (void)ca;
  free(hold);
  pair_free(&p);
}

static void test_graceful_shutdown(void **state) {
  pair p;
  world w;
  cstate cs[10];
  sgrpc_call *calls[10];
  int i;
  (void)state;
  memset(cs, 0, sizeof(cs));
  setup_pair(&p, &w, NULL, NULL);
  w.hold = 1;
  for (i = 0; i < 10; i++) calls[i] = start(&p, &cs[i], NULL);
  pair_run(&p, 20);
  assert_int_equal(w.srv_new, 10);
  assert_int_equal(sgrpc_conn_shutdown(p.srv, SGRPC_NEVER, p.now), 0);
  pair_run(&p, 20);
  assert_true(w.cli_goaway >= 2); /* notice, then the final one */
  assert_int_equal(w.goaway_last, sgrpc_call_stream_id(calls[9]));
  /* every accepted call still runs to completion */
  for (i = 0; i < 10; i++) {
    sgrpc_status st = {0};
    assert_non_null(w.held[i]);
    assert_int_equal(sgrpc_call_send(w.held[i], (const uint8_t *)"bye", 3, 0), 0);
    assert_int_equal(sgrpc_call_send_status(w.held[i], &st), 0);
    assert_int_equal(sgrpc_call_close_send(calls[i]), 0);
  }
  pair_run(&p, 50);
  assert_all_ok_one_message(cs, 10);
  assert_int_equal(w.srv_closed_ev, 1);
  assert_int_equal(w.srv_close_reason, 0);
  assert_false(sgrpc_conn_is_alive(p.srv));
  pair_free(&p);
}

static void test_drain_deadline(void **state) {
  pair p;
  world w;
  cstate cs = {0};
  (void)state;
  setup_pair(&p, &w, NULL, NULL);
  w.hold = 1;
  start(&p, &cs, NULL);
  pair_run(&p, 20);
  assert_int_equal(sgrpc_conn_shutdown(p.srv, p.now + 5 * SEC, p.now), 0);
  pair_run(&p, 20);
  assert_false(cs.done);
  pair_advance(&p, 5 * SEC);
  pair_run(&p, 20);
  assert_true(cs.done);
  /* The client is told why (trailers), as by grpc-core's server. */
  assert_int_equal(cs.status, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(w.srv_cancelled, 0);
  assert_int_equal(w.srv_closed, 1);
  pair_free(&p);
}

/* Graceful shutdown in two steps: a request that crosses the first GOAWAY
 * (last id 2^31-1) on the wire is still served, the final GOAWAY names it
 * as the last stream, and every accepted call completes OK. */
static void test_shutdown_notice_then_final(void **state) {
  pair p;
  world w;
  cstate cs[3], late = {0};
  sgrpc_call *calls[3], *tmp = NULL;
  sgrpc_call_opts o;
  const uint8_t *d;
  uint8_t *crossing;
  size_t crossing_len;
  ssize_t n;
  int i;
  (void)state;
  memset(cs, 0, sizeof(cs));
  setup_pair(&p, &w, NULL, NULL);
  w.hold = 1;
  calls[0] = start(&p, &cs[0], NULL);
  calls[1] = start(&p, &cs[1], NULL);
  pair_run(&p, 20);
  assert_int_equal(w.srv_new, 2);
  /* the client sends a third request, not yet read by the server */
  calls[2] = start(&p, &cs[2], NULL);
  n = sgrpc_conn_out_peek(p.cli, &d);
  assert_true(n > 0);
  crossing = malloc((size_t)n);
  memcpy(crossing, d, (size_t)n);
  crossing_len = (size_t)n;
  assert_int_equal(sgrpc_conn_out_consume(p.cli, (size_t)n), 0);
  /* the server begins to shut down: notice + PING reach the client, which
   * acks the PING */
  assert_int_equal(sgrpc_conn_shutdown(p.srv, SGRPC_NEVER, p.now), 0);
  assert_true(pair_pump(&p, p.srv, p.cli) > 0);
  pair_drain(&p, p.cli);
  assert_int_equal(w.cli_goaway, 1);
  assert_int_equal(w.goaway_ids[0], INT32_MAX);
  assert_false(cs[2].done); /* not refused by the notice */
  /* no new call may start once a GOAWAY arrived */
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.user_data = &late;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &tmp), SGRPC_ERR_GOING_AWAY);
  assert_null(tmp);
  /* the crossing request arrives first, then the PING ack */
  assert_int_equal(sgrpc_conn_recv(p.srv, crossing, crossing_len, p.now), (ssize_t)crossing_len);
  pair_drain(&p, p.srv);
  assert_int_equal(w.srv_new, 3);
  pair_run(&p, 20);
  assert_int_equal(w.cli_goaway, 2);
  assert_int_equal(w.goaway_ids[1], sgrpc_call_stream_id(calls[2]));
  for (i = 0; i < 3; i++) assert_false(cs[i].done);
  /* every accepted call runs to completion */
  for (i = 0; i < 3; i++) {
    sgrpc_status st = {0};
    assert_non_null(w.held[i]);
    assert_int_equal(sgrpc_call_send(w.held[i], (const uint8_t *)"bye", 3, 0), 0);
    assert_int_equal(sgrpc_call_send_status(w.held[i], &st), 0);
    assert_int_equal(sgrpc_call_close_send(calls[i]), 0);
  }
  pair_run(&p, 50);
  assert_all_ok_one_message(cs, 3);
  assert_int_equal(w.srv_closed, 3);
  assert_int_equal(w.srv_cancelled, 0);
  assert_int_equal(w.srv_closed_ev, 1);
  assert_int_equal(w.srv_close_reason, 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  free(crossing);
  pair_free(&p);
}

/* Appends all of conn's pending output to *buf. */
static void take_output(sgrpc_conn *conn, uint8_t **buf, size_t *len) {
  const uint8_t *d;
  ssize_t n;
  while ((n = sgrpc_conn_out_peek(conn, &d)) > 0) {
    *buf = realloc(*buf, *len + (size_t)n);
    assert_non_null(*buf);
    memcpy(*buf + *len, d, (size_t)n);
    *len += (size_t)n;
    assert_int_equal(sgrpc_conn_out_consume(conn, (size_t)n), 0);
  }
}

/* A client that never acks the shutdown PING: the final GOAWAY still goes
 * out after keepalive_timeout. */
static void test_shutdown_final_without_ping_ack(void **state) {
  pair p;
  world w;
  cstate cs = {0};
  sgrpc_settings ss;
  sgrpc_call *call;
  uint8_t *out = NULL;
  size_t out_len = 0;
  (void)state;
  sgrpc_settings_default(&ss);
  ss.keepalive_timeout = 3 * SEC;
  setup_pair(&p, &w, NULL, &ss);
  w.hold = 1;
  call = start(&p, &cs, NULL);
  pair_run(&p, 20);
  assert_int_equal(w.srv_new, 1);
  assert_int_equal(sgrpc_conn_shutdown(p.srv, SGRPC_NEVER, p.now), 0);
  assert_true(sgrpc_conn_next_expiry(p.srv) <= p.now + 3 * SEC);
  /* everything the server writes is held back from the client: the
   * notice and PING now, the final GOAWAY once the ack is overdue */
  take_output(p.srv, &out, &out_len);
  assert_true(out_len > 0);
  p.now += 3 * SEC - 1;
  assert_int_equal(sgrpc_conn_handle_expiry(p.srv, p.now), 0);
  assert_int_equal(sgrpc_conn_want_write(p.srv), 0); /* not yet */
  p.now += 1;
  assert_int_equal(sgrpc_conn_handle_expiry(p.srv, p.now), 0);
  take_output(p.srv, &out, &out_len);
  assert_int_equal(sgrpc_conn_recv(p.cli, out, out_len, p.now), (ssize_t)out_len);
  pair_drain(&p, p.cli);
  assert_int_equal(w.cli_goaway, 2);
  assert_int_equal(w.goaway_ids[0], INT32_MAX);
  assert_int_equal(w.goaway_ids[1], sgrpc_call_stream_id(call));
  assert_false(cs.done);
  free(out);
  pair_free(&p);
}

/* GOAWAY from the client: it stops starting calls, its calls in flight
 * complete, and both ends close cleanly when the last one ends. */
static void test_client_shutdown_in_flight(void **state) {
  pair p;
  world w;
  cstate cs[4], late = {0};
  sgrpc_call *calls[4], *tmp = NULL;
  sgrpc_call_opts o;
  int i;
  (void)state;
  memset(cs, 0, sizeof(cs));
  setup_pair(&p, &w, NULL, NULL);
  w.hold = 1;
  for (i = 0; i < 4; i++) calls[i] = start(&p, &cs[i], NULL);
  pair_run(&p, 20);
  assert_int_equal(w.srv_new, 4);
  assert_int_equal(sgrpc_conn_shutdown(p.cli, SGRPC_NEVER, p.now), 0);
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.user_data = &late;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &tmp), SGRPC_ERR_GOING_AWAY);
  pair_run(&p, 20);
  assert_int_equal(w.srv_goaway, 1);
  for (i = 0; i < 4; i++) assert_false(cs[i].done);
  /* requests and responses still flow both ways on the open calls */
  for (i = 0; i < 4; i++) {
    sgrpc_status st = {0};
    assert_int_equal(sgrpc_call_send(calls[i], (const uint8_t *)"more", 4, SGRPC_SEND_END), 0);
    assert_int_equal(sgrpc_call_send(w.held[i], (const uint8_t *)"ok", 2, 0), 0);
    assert_int_equal(sgrpc_call_send_status(w.held[i], &st), 0);
  }
  pair_run(&p, 50);
  assert_all_ok_one_message(cs, 4);
  assert_int_equal(w.srv_closed, 4);
  assert_int_equal(w.srv_cancelled, 0);
  assert_int_equal(w.cli_closed_ev, 1);
  assert_int_equal(w.cli_close_reason, 0);
  assert_false(sgrpc_conn_is_alive(p.cli));
  pair_free(&p);
}

/* Server keepalive: pings an idle-reading client, which acks; a client
 * that stops answering ends the connection and its calls. */
static void test_server_keepalive(void **state) {
  pair p;
  world w;
  cstate cs = {0};
  sgrpc_settings ss;
  const uint8_t *d;
  ssize_t n;
  (void)state;
  sgrpc_settings_default(&ss);
  ss.keepalive_time = 10 * SEC;
  ss.keepalive_timeout = 2 * SEC;
  setup_pair(&p, &w, NULL, &ss);
  w.hold = 1;
  start(&p, &cs, NULL);
  pair_run(&p, 20);
  assert_int_equal(w.srv_new, 1);
  assert_int_equal(sgrpc_conn_next_expiry(p.srv), p.now + 10 * SEC);
  pair_advance(&p, 10 * SEC); /* ping out, ack back */
  pair_run(&p, 20);
  pair_advance(&p, 5 * SEC);
  assert_true(sgrpc_conn_is_alive(p.srv));
  assert_int_equal(w.srv_closed, 0);
  /* the next ping is due 10 s after the ack was received */
  assert_int_equal(sgrpc_conn_next_expiry(p.srv), p.now + 5 * SEC);
  pair_advance(&p, 5 * SEC);
  /* the ping is written, but the client is gone */
  while ((n = sgrpc_conn_out_peek(p.srv, &d)) > 0) sgrpc_conn_out_consume(p.srv, (size_t)n);
  assert_int_equal(sgrpc_conn_handle_expiry(p.srv, p.now + 2 * SEC), SGRPC_ERR_KEEPALIVE_TIMEOUT);
  pair_drain(&p, p.srv);
  assert_int_equal(w.srv_closed_ev, 1);
  assert_int_equal(w.srv_close_reason, SGRPC_ERR_KEEPALIVE_TIMEOUT);
  assert_int_equal(w.srv_closed, 1);
  assert_int_equal(w.srv_cancelled, 1);
  assert_false(sgrpc_conn_is_alive(p.srv));
  pair_free(&p);
}

/* Runs a client with keepalive 1 s, no call open, for up to 10 pings.
 * Returns the number of keepalive periods that passed before a GOAWAY. */
static int idle_pings(int cli_permit, int srv_permit, int64_t srv_interval, world *w,
                      int64_t *ka_after) {
  pair p;
  sgrpc_settings cs, ss;
  int i;
  sgrpc_settings_default(&cs);
  cs.keepalive_time = 1 * SEC;
  cs.keepalive_timeout = SEC / 2;
  cs.keepalive_permit_without_calls = cli_permit;
  sgrpc_settings_default(&ss);
  ss.keepalive_permit_without_calls = srv_permit;
  ss.min_recv_ping_interval = srv_interval;
  setup_pair(&p, w, &cs, &ss);
  pair_run(&p, 20);
  if (!cli_permit) assert_int_equal(sgrpc_conn_next_expiry(p.cli), SGRPC_NEVER);
  for (i = 0; i < 10 && !w->cli_goaway; i++) {
    pair_advance(&p, 1 * SEC);
    pair_run(&p, 20);
  }
  assert_true(sgrpc_conn_is_alive(p.cli) || w->cli_goaway);
  *ka_after = sgrpc_conn_keepalive_time(p.cli);
  pair_free(&p);
  return i;
}

static void test_keepalive_permit_without_calls(void **state) {
  world w;
  int64_t ka;
  (void)state;
  /* client not permitted: no ping at all without a call */
  assert_int_equal(idle_pings(0, 0, 300 * SEC, &w, &ka), 10);
  assert_int_equal(w.cli_goaway, 0);
  assert_int_equal(ka, 1 * SEC);
  /* client pings without calls, the server does not permit it: its 2 h
   * rule makes the 2nd and 3rd pings strikes and the 4th ends it */
  assert_int_equal(idle_pings(1, 0, 300 * SEC, &w, &ka), 4);
  assert_int_equal(w.cli_goaway, 1);
  assert_int_equal(w.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
  assert_string_equal(w.goaway_debug, "too_many_pings");
  assert_int_equal(ka, 2 * SEC);
  /* the server permits it at its min_recv_ping_interval: no strikes */
  assert_int_equal(idle_pings(1, 1, 1 * SEC, &w, &ka), 10);
  assert_int_equal(w.cli_goaway, 0);
  assert_int_equal(ka, 1 * SEC);
  /* permitted, but pinging faster than the server's interval: strikes */
  assert_int_equal(idle_pings(1, 1, 5 * SEC, &w, &ka), 4);
  assert_int_equal(w.cli_goaway, 1);
}

/* The back-off carries over: a channel that opens the next connection with
 * the doubled keepalive time gets it doubled again by the next
 * too_many_pings, and the new connection really pings at that period. */
static void test_keepalive_backoff_doubles_again(void **state) {
  int64_t ka = 1 * SEC;
  int round;
  (void)state;
  for (round = 0; round < 3; round++) {
    pair p;
    world w;
    cstate cs = {0};
    sgrpc_settings s;
    int i;
    sgrpc_settings_default(&s);
    s.keepalive_time = ka;
    s.keepalive_timeout = SEC / 2;
    setup_pair(&p, &w, &s, NULL);
    w.hold = 1;
    start(&p, &cs, NULL);
    pair_run(&p, 20);
    assert_int_equal(sgrpc_conn_next_expiry(p.cli), p.now + ka);
    for (i = 0; i < 10 && !w.cli_goaway; i++) {
      pair_advance(&p, ka);
      pair_run(&p, 20);
    }
    assert_int_equal(w.cli_goaway, 1);
    assert_int_equal(i, 4);
    assert_int_equal(sgrpc_conn_keepalive_time(p.cli), 2 * ka);
    /* the connection is done: its call ends, not silently */
    pair_run(&p, 20);
    ka = sgrpc_conn_keepalive_time(p.cli);
    pair_free(&p);
  }
  assert_int_equal(ka, 8 * SEC);
}

/* ---------------------------------------------------------------- */
/* Limits                                                             */
/* ---------------------------------------------------------------- */

static void test_max_concurrent_queueing(void **state) {
  pair p;
  world w;
  sgrpc_settings ss;
  cstate cs[50];
  int i;
  (void)state;
  memset(cs, 0, sizeof(cs));
  sgrpc_settings_default(&ss);
  ss.max_concurrent_streams = 5;
  setup_pair(&p, &w, NULL, &ss);
  pair_run(&p, 10); /* the client learns the limit */
  for (i = 0; i < 50; i++) {
    sgrpc_call *call = start(&p, &cs[i], NULL);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"q", 1, SGRPC_SEND_END), 0);
  }
  pair_run(&p, 2000);
  for (i = 0; i < 50; i++) assert_int_equal(cs[i].status, SGRPC_STATUS_OK);
  assert_int_equal(w.srv_new, 50);
  assert_true(w.srv_max_open <= 5);
  pair_free(&p);
}

static void test_send_header_limit(void **state) {
  pair p;
  world w;
  sgrpc_settings cs_, ss;
  static char big[3000];
  sgrpc_md md = {"x-big", 5, (const uint8_t *)big, sizeof(big)};
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  cstate c1 = {0};
  (void)state;
  memset(big, 'a', sizeof(big));
  sgrpc_settings_default(&cs_);
  cs_.max_send_header_list_size = 2000;
  sgrpc_settings_default(&ss);
  setup_pair(&p, &w, &cs_, &ss);
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.md = &md;
  o.md_count = 1;
  o.user_data = &c1;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), SGRPC_ERR_METADATA_TOO_LARGE);
  pair_free(&p);
  /* the peer's advertised limit applies too */
  cs_.max_send_header_list_size = 1 << 20;
  ss.max_header_list_size = 1024;
  setup_pair(&p, &w, &cs_, &ss);
  pair_run(&p, 10);
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), SGRPC_ERR_METADATA_TOO_LARGE);
  md.value_len = 100;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  sgrpc_call_release(call);
  pair_free(&p);
}

static void test_outbound_queue_limit(void **state) {
  pair p;
  world w;
  sgrpc_settings s;
  cstate a = {0}, b = {0};
  sgrpc_call *ca, *cb;
  static uint8_t chunk[10000];
  int sent_a = 0, sent_b = 0, rv;
  sgrpc_event ev;
  int writable = 0, i;
  (void)state;
  sgrpc_settings_default(&s);
  s.max_outbound_queue = 50000;
  s.max_send_buffer = 1 << 20;
  setup_pair(&p, &w, &s, NULL);
  p.on_event = NULL;
  ca = start(&p, &a, NULL);
  cb = start(&p, &b, NULL);
  while ((rv = sgrpc_call_send(ca, chunk, sizeof(chunk), 0)) == 0) sent_a++;
  assert_int_equal(rv, SGRPC_ERR_WOULDBLOCK);
  assert_int_equal(sgrpc_call_send(cb, chunk, sizeof(chunk), 0), SGRPC_ERR_WOULDBLOCK);
  assert_int_equal(sent_a, 5);
  /* write everything out: both calls hear they may go on */
  for (i = 0; i < 20; i++) {
    const uint8_t *d;
    ssize_t n = sgrpc_conn_out_peek(p.cli, &d);
    if (n <= 0) break;
    sgrpc_conn_out_consume(p.cli, (size_t)n);
  }
  while (sgrpc_conn_next_event(p.cli, &ev) == 1)
    if (ev.type == SGRPC_EV_WRITABLE) writable++;
  assert_int_equal(writable, 2);
  while (sgrpc_call_send(cb, chunk, sizeof(chunk), 0) == 0) sent_b++;
  assert_true(sent_b >= 1);
  pair_free(&p);
}

/* A call that gives up its share of the budget wakes the blocked ones. */
static void test_outbound_budget_freed_by_cancel(void **state) {
  pair p;
  world w;
  sgrpc_settings s;
  cstate a = {0}, b = {0};
  sgrpc_call *ca, *cb;
  static uint8_t chunk[10000];
  sgrpc_event ev;
  int writable_b = 0;
  (void)state;
  sgrpc_settings_default(&s);
  s.max_outbound_queue = 50000;
  s.max_send_buffer = 1 << 20;
  setup_pair(&p, &w, &s, NULL);
  p.on_event = NULL;
  ca = start(&p, &a, NULL);
  cb = start(&p, &b, NULL);
  while (sgrpc_call_send(ca, chunk, sizeof(chunk), 0) == 0) {
  }
  assert_int_equal(sgrpc_call_send(cb, chunk, sizeof(chunk), 0), SGRPC_ERR_WOULDBLOCK);
  assert_int_equal(sgrpc_call_cancel(ca), 0);
  while (sgrpc_conn_next_event(p.cli, &ev) == 1)
    if (ev.type == SGRPC_EV_WRITABLE && ev.call == cb) writable_b++;
  assert_int_equal(writable_b, 1);
  assert_int_equal(sgrpc_call_send(cb, chunk, sizeof(chunk), 0), 0);
  pair_free(&p);
}

static void test_settings_timeout(void **state) {
  sgrpc_conn *c;
  sgrpc_event ev;
  const uint8_t *d;
  ssize_t n;
  int closed = 0;
  (void)state;
  assert_int_equal(sgrpc_conn_client_new(&c, NULL, NULL, 0), 0);
  while ((n = sgrpc_conn_out_peek(c, &d)) > 0) sgrpc_conn_out_consume(c, (size_t)n);
  assert_int_equal(sgrpc_conn_next_expiry(c), 20 * SEC);
  assert_int_equal(sgrpc_conn_handle_expiry(c, 20 * SEC), SGRPC_ERR_SETTINGS_TIMEOUT);
  while (sgrpc_conn_next_event(c, &ev) == 1)
    if (ev.type == SGRPC_EV_CONN_CLOSED) {
      closed++;
      assert_int_equal(ev.u.conn_closed.reason, SGRPC_ERR_SETTINGS_TIMEOUT);
    }
  assert_int_equal(closed, 1);
  assert_false(sgrpc_conn_is_alive(c));
  sgrpc_conn_del(c);
}

/* A peer that ignores the stream window: the 65535-byte window advertised
 * by the server is overrun by a client that sends 200 000 bytes without
 * waiting for WINDOW_UPDATE while the application has not pulled the
 * messages. The stream is reset with FLOW_CONTROL_ERROR, the application
 * hears of it, memory stays bounded by the window, and the connection
 * carries on. */
static size_t put_frame(uint8_t *o, size_t len, uint8_t type, uint8_t flags, uint32_t sid) {
  o[0] = (uint8_t)(len >> 16);
  o[1] = (uint8_t)(len >> 8);
  o[2] = (uint8_t)len;
  o[3] = type;
  o[4] = flags;
  o[5] = (uint8_t)(sid >> 24);
  o[6] = (uint8_t)(sid >> 16);
  o[7] = (uint8_t)(sid >> 8);
  o[8] = (uint8_t)sid;
  return 9;
}

/* Pulls the overrun test's events: counts 995-byte messages and CLOSEs. */
static void pull_overrun_events(sgrpc_conn *srv, int *msgs, int *closes, int *reset,
                                uint32_t *h2err) {
  sgrpc_event ev;
  while (sgrpc_conn_next_event(srv, &ev) == 1) {
    if (ev.type == SGRPC_EV_MESSAGE) {
      assert_int_equal(ev.u.message.len, 995);
      (*msgs)++;
    }
    if (ev.type == SGRPC_EV_CLOSE) {
      (*closes)++;
      *reset = ev.u.close.reset;
      *h2err = ev.u.close.http2_error;
      sgrpc_call_release(ev.call);
    }
  }
}

static void test_stream_window_overrun(void **state) {
  static uint8_t in[260000];
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  nghttp2_hd_deflater *hd;
  nghttp2_nv nv[5];
  sgrpc_settings ss;
  sgrpc_conn *srv;
  size_t n = 0, sent = 0, i;
  ssize_t hl;
  const uint8_t *d;
  ssize_t out;
  int rst_code = -1, closes = 0, msgs = 0, reset_seen = 0;
  uint32_t h2err = 0;
  (void)state;
  sgrpc_settings_default(&ss);
  ss.stream_window = 65535;
  ss.connection_window = 1 << 20;
  ss.max_queued_events = 100000; /* never pause: the window is the limit */
  assert_int_equal(sgrpc_conn_server_new(&srv, &ss, NULL, 0), 0);
  memcpy(in, preface, 24);
  n = 24;
  n += put_frame(in + n, 0, 4 /* SETTINGS */, 0, 0);
  nv[0] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0};
  nv[1] = (nghttp2_nv){(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0};
  nv[2] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)"/t.S/M", 5, 6, 0};
  nv[3] = (nghttp2_nv){(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0};
  nv[4] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0};
  assert_int_equal(nghttp2_hd_deflate_new(&hd, 4096), 0);
  hl = nghttp2_hd_deflate_hd(hd, in + n + 9, 1000, nv, 5);
  assert_true(hl > 0);
  n += put_frame(in + n, (size_t)hl, 1 /* HEADERS */, 4 /* END_HEADERS */, 1);
  n += (size_t)hl;
  nghttp2_hd_deflate_del(hd);
  /* 200 000 bytes of complete 995-byte messages, in 16 000-byte frames */
  while (sent < 200000) {
    size_t len = 16000;
    n += put_frame(in + n, len, 0 /* DATA */, 0, 1);
    for (i = 0; i < len; i++, sent++) {
      size_t k = sent % 1000;
      /* each message: flag 0, length 995 big-endian, then 995 bytes */
      in[n + i] = k < 3 ? 0 : k == 3 ? (uint8_t)(995 >> 8) : k == 4 ? (uint8_t)(995 & 0xff)
                                                                  : (uint8_t)k;
    }
    n += len;
  }
  assert_true(n <= sizeof(in));
  assert_int_equal(sgrpc_conn_recv(srv, in, n, 0), (ssize_t)n);
  pull_overrun_events(srv, &msgs, &closes, &reset_seen, &h2err);
  /* on the wire: RST_STREAM(1, FLOW_CONTROL_ERROR), no GOAWAY */
  while ((out = sgrpc_conn_out_peek(srv, &d)) > 0) {
    size_t off = 0;
    while (off + 9 <= (size_t)out) {
      size_t flen = (size_t)d[off] << 16 | (size_t)d[off + 1] << 8 | d[off + 2];
      uint32_t sid = (uint32_t)(d[off + 5] & 0x7f) << 24 | (uint32_t)d[off + 6] << 16 |
                     (uint32_t)d[off + 7] << 8 | d[off + 8];
      assert_true(off + 9 + flen <= (size_t)out);
      assert_int_not_equal(d[off + 3], 7 /* GOAWAY */);
      if (d[off + 3] == 3 && sid == 1)
        rst_code = (int)((uint32_t)d[off + 9] << 24 | (uint32_t)d[off + 10] << 16 |
                         (uint32_t)d[off + 11] << 8 | d[off + 12]);
      off += 9 + flen;
    }
    assert_int_equal(off, (size_t)out);
    sgrpc_conn_out_consume(srv, (size_t)out);
  }
  /* the RST is written: the call ends */
  pull_overrun_events(srv, &msgs, &closes, &reset_seen, &h2err);
  /* what fit in the window arrived; nghttp2 still hands over the frame
   * that overran it (one frame, at most 16 KiB more), then nothing */
  assert_true(msgs >= 64);
  assert_true(msgs <= (65535 + 16384) / 1000);
  assert_int_equal(closes, 1);
  assert_int_equal(reset_seen, 1);
  assert_int_equal(h2err, NGHTTP2_FLOW_CONTROL_ERROR);
  assert_int_equal(rst_code, NGHTTP2_FLOW_CONTROL_ERROR);
  assert_true(sgrpc_conn_is_alive(srv));
  sgrpc_conn_del(srv);
}

/* ---------------------------------------------------------------- */
/* Events and counters                                                */
/* ---------------------------------------------------------------- */

static void test_stats_and_close_event(void **state) {
  pair p;
  world w;
  cstate ok[3], bad = {0};
  sgrpc_conn_stats st;
  sgrpc_call_opts o;
  sgrpc_call *call;
  int i;
  (void)state;
  memset(ok, 0, sizeof(ok));
  setup_pair(&p, &w, NULL, NULL);
  for (i = 0; i < 3; i++) {
    call = start(&p, &ok[i], NULL);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"abc", 3, SGRPC_SEND_END), 0);
  }
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.user_data = &bad;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  assert_int_equal(sgrpc_call_cancel(call), 0);
  pair_run(&p, 50);
  sgrpc_conn_get_stats(p.cli, &st);
  assert_int_equal(st.calls_started, 4);
  assert_int_equal(st.calls_succeeded, 3);
  assert_int_equal(st.calls_failed, 1);
  assert_int_equal(st.messages_sent, 3);
  assert_int_equal(st.messages_received, 3);
  assert_true(st.bytes_sent > 0 && st.bytes_received > 0);
  assert_int_equal(st.last_activity, p.now);
  sgrpc_conn_get_stats(p.srv, &st);
  /* the cancelled request never left the client */
  assert_int_equal(st.calls_started, 3);
  assert_int_equal(st.messages_received, 3);
  assert_int_equal(sgrpc_conn_transport_closed(p.cli), 0);
  pair_drain(&p, p.cli);
  assert_int_equal(w.cli_closed_ev, 1);
  assert_int_equal(w.cli_close_reason, SGRPC_ERR_CONN_CLOSED);
  pair_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compress_roundtrips),
      cmocka_unit_test(test_compress_shrinks_wire),
      cmocka_unit_test(test_compress_threshold),
      cmocka_unit_test(test_compress_bomb),
      cmocka_unit_test(test_compress_bomb_1gib_both_ways),
      cmocka_unit_test(test_unknown_encoding),
      cmocka_unit_test(test_flag_without_encoding),
      cmocka_unit_test(test_keepalive_ok),
      cmocka_unit_test(test_keepalive_timeout),
      cmocka_unit_test(test_ping_strikes),
      cmocka_unit_test(test_ping_with_data_not_strike),
      cmocka_unit_test(test_goaway_received_above_last_id),
      cmocka_unit_test(test_graceful_shutdown),
      cmocka_unit_test(test_drain_deadline),
      cmocka_unit_test(test_shutdown_notice_then_final),
      cmocka_unit_test(test_shutdown_final_without_ping_ack),
      cmocka_unit_test(test_client_shutdown_in_flight),
      cmocka_unit_test(test_server_keepalive),
      cmocka_unit_test(test_keepalive_permit_without_calls),
      cmocka_unit_test(test_keepalive_backoff_doubles_again),
      cmocka_unit_test(test_max_concurrent_queueing),
      cmocka_unit_test(test_send_header_limit),
      cmocka_unit_test(test_outbound_queue_limit),
      cmocka_unit_test(test_outbound_budget_freed_by_cancel),
      cmocka_unit_test(test_settings_timeout),
      cmocka_unit_test(test_stream_window_overrun),
      cmocka_unit_test(test_stats_and_close_event),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
