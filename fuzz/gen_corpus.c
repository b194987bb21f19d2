/*
 * Seed corpus generator: `fuzz_gen_corpus OUTDIR` writes seeds into
 * OUTDIR/server, OUTDIR/client and OUTDIR/actor under descriptive names;
 * fuzz/gen_corpus.sh renames them by the SHA-1 of their content into
 * fuzz/corpus/<target>/.
 *
 * Server seeds are real client byte streams: an sgrpc client talking to an
 * sgrpc server in memory (unary, streaming, cancel, many calls, ping and
 * GOAWAY), and a raw nghttp2 client sending requests that break gRPC or
 * HTTP/2 rules (bad method, content-type, te, grpc-timeout, pseudo
 * headers, field names, connection headers, message prefixes, -bin
 * values). Client seeds are server byte streams answering the exact
 * exchange fz_client_setup starts (streams 1, 3, 5): from an sgrpc
 * server, and from a raw nghttp2 server (HTTP errors, bad content-type,
 * missing status, resets, informational headers, ...). Actor seeds are
 * small programs of (op, arg) pairs.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

#include <nghttp2/nghttp2.h>

#include "fuzz_common.h"

typedef struct bytes {
  uint8_t *p;
  size_t len, cap;
} bytes;

static void b_add(bytes *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = (b->len + n) * 2 + 64;
    uint8_t *np = realloc(b->p, cap);
    if (!np) fz_fail("oom");
    b->p = np;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}

static const char *outdir;

static void write_seed(const char *target, const char *name, uint8_t h0, uint8_t h1,
                       const bytes *b) {
  char path[1024];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", outdir, target);
  if (mkdir(path, 0755) != 0 && errno != EEXIST) fz_fail("mkdir");
  snprintf(path, sizeof(path), "%s/%s/%s-%02x%02x", outdir, target, name, h0, h1);
  f = fopen(path, "wb");
  if (!f) fz_fail("open seed");
  if (strcmp(target, "actor") != 0) {
    fputc(h0, f);
    fputc(h1, f);
  }
  if (b->len && fwrite(b->p, 1, b->len, f) != b->len) fz_fail("write seed");
  fclose(f);
}

/* whole, and random pieces of 1..7 bytes */
static void write_variants(const char *target, const char *name, const bytes *b) {
  write_seed(target, name, 0, 0, b);
  write_seed(target, name, 7, 1, b);
}

static void pattern(uint8_t *b, size_t n) {
  size_t j;
  for (j = 0; j < n; j++) b[j] = (uint8_t)(n * 7 + j);
}

static size_t grpc_frame(uint8_t *out, uint8_t flags, const void *msg, size_t len) {
  out[0] = flags;
  out[1] = (uint8_t)(len >> 24);
  out[2] = (uint8_t)(len >> 16);
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
  if (len) memcpy(out + 5, msg, len);
  return len + 5;
}

/* ------------------------------------------------------------------ */
/* An sgrpc client and server in memory, recording both directions     */
/* ------------------------------------------------------------------ */

typedef struct ex ex;
typedef void (*ex_fn)(ex *e, sgrpc_conn *c, const sgrpc_event *ev);

struct ex {
  sgrpc_conn *cli, *srv;
  bytes c2s, s2c;
  int64_t now;
  ex_fn on_cli, on_srv;
  int srv_mode;
};

static void ex_drain(ex *e, sgrpc_conn *c) {
  sgrpc_event ev;
  while (sgrpc_conn_next_event(c, &ev) == 1) {
    if (c == e->cli && e->on_cli) e->on_cli(e, c, &ev);
    if (c == e->srv && e->on_srv) e->on_srv(e, c, &ev);
  }
}

static size_t ex_move(ex *e, sgrpc_conn *from, sgrpc_conn *to, bytes *rec) {
  const uint8_t *d;
  ssize_t n = sgrpc_conn_out_peek(from, &d);
  uint8_t *copy;
  size_t off = 0;
  if (n <= 0) {
    ex_drain(e, from);
    return 0;
  }
  copy = malloc((size_t)n);
  if (!copy) fz_fail("oom");
  memcpy(copy, d, (size_t)n);
  sgrpc_conn_out_consume(from, (size_t)n);
  ex_drain(e, from);
  b_add(rec, copy, (size_t)n);
  while (off < (size_t)n) {
    ssize_t r = sgrpc_conn_recv(to, copy + off, (size_t)n - off, e->now);
    ex_drain(e, to);
    if (r <= 0) break;
    off += (size_t)r;
  }
  free(copy);
  return (size_t)n;
}

static void ex_run(ex *e, int rounds) {
  int i;
  for (i = 0; i < rounds; i++) {
    size_t m = ex_move(e, e->cli, e->srv, &e->c2s);
    m += ex_move(e, e->srv, e->cli, &e->s2c);
    if (!m) break;
  }
}

static void ex_advance(ex *e, int64_t ns) {
  e->now += ns;
  sgrpc_conn_handle_expiry(e->cli, e->now);
  sgrpc_conn_handle_expiry(e->srv, e->now);
  ex_drain(e, e->cli);
  ex_drain(e, e->srv);
}

/* Server behaviours of the sgrpc-server scenarios. */
enum { SRV_ECHO, SRV_ERROR, SRV_CANCEL, SRV_WAIT, SRV_BIG };

static void srv_handler(ex *e, sgrpc_conn *c, const sgrpc_event *ev) {
  static const uint8_t details[] = {0x08, 0x03, 0x12, 0x03, 'b', 'a', 'd'};
  sgrpc_md md[1] = {SGRPC_MD_STR("x-srv", "1")};
  sgrpc_status st;
  (void)c;
  memset(&st, 0, sizeof(st));
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW:
    if (e->srv_mode == SRV_ERROR) {
      st.code = SGRPC_STATUS_INVALID_ARGUMENT;
      st.message = "bad request: \xe2\x98\x83 50%";
      st.details = details;
      st.details_len = sizeof(details);
      st.md = md;
      st.md_count = 1;
      sgrpc_call_send_status(ev->call, &st);
    } else if (e->srv_mode == SRV_CANCEL) {
      sgrpc_call_cancel(ev->call);
    } else if (e->srv_mode == SRV_BIG &&
               strcmp(ev->u.call_new.path, "/fz.S/Stream") == 0) {
      /* one message spanning frames, one over the client's 16 KiB limit */
      static uint8_t big[17000];
      pattern(big, sizeof(big));
      sgrpc_call_send_headers(ev->call, md, 1);
      sgrpc_call_send(ev->call, big, 3000, 0);
      sgrpc_call_send(ev->call, big, sizeof(big), 0);
    } else if (e->srv_mode == SRV_ECHO || e->srv_mode == SRV_BIG) {
      sgrpc_call_send_headers(ev->call, md, 1);
    }
    break;
  case SGRPC_EV_MESSAGE:
    if (e->srv_mode == SRV_ECHO || e->srv_mode == SRV_BIG)
      sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0);
    break;
  case SGRPC_EV_HALF_CLOSE:
    if (e->srv_mode == SRV_ECHO || e->srv_mode == SRV_BIG) {
      st.md = md;
      st.md_count = 1;
      sgrpc_call_send_status(ev->call, &st);
    }
    break;
  case SGRPC_EV_CLOSE:
    sgrpc_call_release(ev->call);
    break;
  default:
    break;
  }
}

/* Mirrors fuzz_client's reaction: echo on the bidi call (user_data 1). */
static void cli_handler(ex *e, sgrpc_conn *c, const sgrpc_event *ev) {
  (void)e;
  (void)c;
  if (ev->type == SGRPC_EV_MESSAGE && ev->call_user_data == (void *)1) {
    static int echoed;
    if (echoed < 4) {
      echoed++;
      sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len,
                      echoed == 4 ? SGRPC_SEND_END : 0);
    }
  }
  if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call);
}

static void ex_init(ex *e, int srv_mode) {
  memset(e, 0, sizeof(*e));
  e->now = FZ_START;
  e->srv_mode = srv_mode;
  e->on_srv = srv_handler;
  e->on_cli = cli_handler;
  if (sgrpc_conn_server_new(&e->srv, NULL, NULL, e->now) != 0) fz_fail("server_new");
}

static void ex_free(ex *e) {
  sgrpc_conn_del(e->cli);
  sgrpc_conn_del(e->srv);
  free(e->c2s.p);
  free(e->s2c.p);
}

/* ---- server seeds from a real sgrpc client ---- */

static sgrpc_call *start(ex *e, const char *path, int64_t timeout, int nmd) {
  static const uint8_t bin[] = {1, 2, 3, 0, 0xff};
  sgrpc_md md[3] = {SGRPC_MD_STR("x-a", "1"), SGRPC_MD_STR("x-b", "two words"),
                    {"x-c-bin", 7, bin, sizeof(bin)}};
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.path = path;
  o.authority = "seed.local";
  o.deadline = timeout ? e->now + timeout : 0;
  o.md = md;
  o.md_count = (size_t)nmd;
  o.content_subtype = "proto";
  if (sgrpc_call_start(e->cli, &o, e->now, &call) != 0) fz_fail("call_start");
  return call;
}

static void server_seeds_sgrpc(void) {
  static uint8_t big[40000];
  ex e;
  sgrpc_call *calls[10];
  int i;
  pattern(big, sizeof(big));

  ex_init(&e, SRV_ECHO);
  if (sgrpc_conn_client_new(&e.cli, NULL, NULL, e.now) != 0) fz_fail("client_new");
  calls[0] = start(&e, "/seed.S/Unary", 5000 * FZ_MS, 3);
  sgrpc_call_send(calls[0], (const uint8_t *)"unary request", 13, SGRPC_SEND_END);
  ex_run(&e, 50);
  write_variants("server", "sgrpc-unary", &e.c2s);
  ex_free(&e);

  ex_init(&e, SRV_ECHO);
  if (sgrpc_conn_client_new(&e.cli, NULL, NULL, e.now) != 0) fz_fail("client_new");
  calls[0] = start(&e, "/seed.S/Bidi", 0, 1);
  for (i = 0; i < 5; i++) {
    sgrpc_call_send(calls[0], big, (size_t)i * 3, 0);
    ex_run(&e, 5);
  }
  sgrpc_call_send(calls[0], big, 20000, SGRPC_SEND_COMPRESSED);
  sgrpc_call_close_send(calls[0]);
  ex_run(&e, 50);
  write_variants("server", "sgrpc-bidi", &e.c2s);
  ex_free(&e);

  ex_init(&e, SRV_WAIT);
  if (sgrpc_conn_client_new(&e.cli, NULL, NULL, e.now) != 0) fz_fail("client_new");
  calls[0] = start(&e, "/seed.S/Cancel", 0, 0);
  sgrpc_call_send(calls[0], big, 10, 0);
  ex_run(&e, 5);
  sgrpc_call_cancel(calls[0]);
  ex_run(&e, 20);
  write_variants("server", "sgrpc-cancel", &e.c2s);
  ex_free(&e);

  ex_init(&e, SRV_WAIT);
  if (sgrpc_conn_client_new(&e.cli, NULL, NULL, e.now) != 0) fz_fail("client_new");
  calls[0] = start(&e, "/seed.S/Slow", 20 * FZ_MS, 0);
  sgrpc_call_send(calls[0], big, 4, SGRPC_SEND_END);
  ex_run(&e, 10);
  ex_advance(&e, 30 * FZ_MS);
  ex_run(&e, 20);
  write_variants("server", "sgrpc-deadline", &e.c2s);
  ex_free(&e);

  ex_init(&e, SRV_ECHO);
  if (sgrpc_conn_client_new(&e.cli, NULL, NULL, e.now) != 0) fz_fail("client_new");
  for (i = 0; i < 10; i++) {
    calls[i] = start(&e, "/seed.S/Many", (i & 1) ? 0 : 1000 * FZ_MS, i % 4);
    sgrpc_call_send(calls[i], big, (size_t)i, SGRPC_SEND_END);
  }
  ex_run(&e, 100);
  write_variants("server", "sgrpc-many", &e.c2s);
  ex_free(&e);

  ex_init(&e, SRV_ECHO);
  if (sgrpc_conn_client_new(&e.cli, NULL, NULL, e.now) != 0) fz_fail("client_new");
  calls[0] = start(&e, "/seed.S/Unary", 0, 0);
  sgrpc_call_send(calls[0], big, 3, SGRPC_SEND_END);
  sgrpc_conn_ping(e.cli, 42);
  ex_run(&e, 10);
  sgrpc_conn_goaway(e.cli, 0, "done", 4);
  ex_run(&e, 10);
  write_variants("server", "sgrpc-ping-goaway", &e.c2s);
  ex_free(&e);

  /* the exact exchange fuzz_client drives, seen from the server */
  {
    sgrpc_call *fc[FZ_CLIENT_CALLS];
    void *ud[FZ_CLIENT_CALLS] = {(void *)0, (void *)1, (void *)2};
    ex_init(&e, SRV_ECHO);
    if (fz_client_setup(&e.cli, fc, ud) != 0) fz_fail("setup");
    ex_run(&e, 50);
    write_variants("server", "sgrpc-fzclient", &e.c2s);
    ex_free(&e);
  }
}

/* ---- client seeds from a real sgrpc server ---- */

static void client_seed_sgrpc(const char *name, int mode, int64_t advance) {
  sgrpc_call *fc[FZ_CLIENT_CALLS];
  void *ud[FZ_CLIENT_CALLS] = {(void *)0, (void *)1, (void *)2};
  const uint8_t *d, *prefix;
  size_t plen;
  ssize_t n;
  ex e;
  ex_init(&e, mode);
  if (fz_client_setup(&e.cli, fc, ud) != 0) fz_fail("setup");
  /* the server's first output is the prefix fuzz_client feeds itself */
  prefix = fz_server_prefix(&plen);
  n = sgrpc_conn_out_peek(e.srv, &d);
  if (n != (ssize_t)plen || memcmp(d, prefix, plen) != 0) fz_fail("prefix differs");
  sgrpc_conn_recv(e.cli, d, (size_t)n, e.now);
  sgrpc_conn_out_consume(e.srv, (size_t)n);
  ex_drain(&e, e.cli);
  if (mode == SRV_WAIT && advance == 0) {
    sgrpc_conn_ping(e.srv, 7);
    sgrpc_conn_goaway(e.srv, 0, "going", 5);
  }
  ex_run(&e, 50);
  if (advance) {
    ex_advance(&e, advance);
    ex_run(&e, 50);
  }
  write_variants("client", name, &e.s2c);
  ex_free(&e);
}

/* ------------------------------------------------------------------ */
/* Raw nghttp2 peers                                                   */
/* ------------------------------------------------------------------ */

typedef struct rsrc {
  uint8_t *p;
  size_t len, off;
} rsrc;

static ssize_t rsrc_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud) {
  rsrc *r = src->ptr;
  size_t n = r->len - r->off;
  (void)s;
  (void)sid;
  (void)ud;
  if (n > len) n = len;
  memcpy(buf, r->p + r->off, n);
  r->off += n;
  if (r->off == r->len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    free(r->p);
    free(r);
  }
  return (ssize_t)n;
}

static nghttp2_session *raw_new(int server) {
  nghttp2_session_callbacks *cbs;
  nghttp2_option *opt;
  nghttp2_session *s;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_http_messaging(opt, 1);
  if (server) nghttp2_session_server_new2(&s, cbs, NULL, opt);
  else nghttp2_session_client_new2(&s, cbs, NULL, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
  return s;
}

/* Where raw_headers and raw_data write their frames at once: sending
 * each submission before the next keeps frames in order, opens streams
 * before their DATA, and never leaves two DATA sources on one stream. */
static bytes *g_out;

static void raw_out(nghttp2_session *s, bytes *b) {
  for (;;) {
    const uint8_t *d;
    ssize_t n = nghttp2_session_mem_send(s, &d);
    if (n <= 0) break;
    b_add(b, d, (size_t)n);
  }
}

/* HEADERS from a NULL-terminated name, value, ... list. sid -1 opens a
 * new stream (raw client). Returns the stream id. */
static int32_t raw_headers(nghttp2_session *s, int32_t sid, int end, ...) {
  nghttp2_nv nv[32];
  size_t n = 0;
  va_list ap;
  const char *k;
  va_start(ap, end);
  while ((k = va_arg(ap, const char *)) != NULL && n < 32) {
    const char *v = va_arg(ap, const char *);
    nv[n].name = (uint8_t *)(uintptr_t)k;
    nv[n].namelen = strlen(k);
    nv[n].value = (uint8_t *)(uintptr_t)v;
    nv[n].valuelen = strlen(v);
    nv[n].flags = NGHTTP2_NV_FLAG_NONE;
    n++;
  }
  va_end(ap);
  sid = nghttp2_submit_headers(s, end ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, sid,
                               NULL, nv, n, NULL);
  if (sid < 0) fz_fail("submit_headers");
  raw_out(s, g_out);
  return sid;
}

static void raw_data(nghttp2_session *s, int32_t sid, const void *p, size_t len, int end) {
  nghttp2_data_provider prd;
  rsrc *r = calloc(1, sizeof(*r));
  if (!r) fz_fail("oom");
  r->p = malloc(len ? len : 1);
  if (!r->p) fz_fail("oom");
  if (len) memcpy(r->p, p, len);
  r->len = len;
  prd.source.ptr = r;
  prd.read_callback = rsrc_read;
  if (nghttp2_submit_data(s, end ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, sid, &prd))
    fz_fail("submit_data");
  raw_out(s, g_out);
}

static void raw_msg(nghttp2_session *s, int32_t sid, uint8_t flags, const char *m, int end) {
  uint8_t buf[256];
  size_t n = grpc_frame(buf, flags, m, strlen(m));
  raw_data(s, sid, buf, n, end);
}

/* ---- server seeds from a raw client ---- */

#define GOOD_REQ(path)                                                                  \
  ":method", "POST", ":scheme", "http", ":path", path, ":authority", "raw.local", "te", \
      "trailers", "content-type", "application/grpc"

static void raw_client_seed(const char *name, int which) {
  nghttp2_session *s = raw_new(0);
  bytes out = {0};
  g_out = &out;
  int32_t sid = 0;
  uint8_t pfx[5];
  switch (which) {
  case 0:
    sid = raw_headers(s, -1, 1, ":method", "GET", ":scheme", "http", ":path", "/r.S/M",
                      "content-type", "application/grpc", NULL);
    break;
  case 1:
    sid = raw_headers(s, -1, 1, ":method", "POST", ":scheme", "http", ":path", "/r.S/M",
                      "content-type", "text/plain", NULL);
    break;
  case 2:
    sid = raw_headers(s, -1, 1, ":method", "POST", ":scheme", "http", ":path", "/r.S/M",
                      "te", "gzip", "content-type", "application/grpc", NULL);
    break;
  case 3:
    sid = raw_headers(s, -1, 1, GOOD_REQ("/r.S/M"), "grpc-timeout", "1x", NULL);
    break;
  case 4:
    sid = raw_headers(s, -1, 1, ":method", "POST", ":scheme", "http", "content-type",
                      "application/grpc", NULL);
    break;
  case 5:
    sid = raw_headers(s, -1, 1, GOOD_REQ("/r.S/M"), "X-Upper", "v", NULL);
    break;
  case 6:
    sid = raw_headers(s, -1, 1, GOOD_REQ("/r.S/M"), "connection", "close", NULL);
    break;
  case 7:
    sid = raw_headers(s, -1, 1, ":method", "POST", ":foo", "bar", ":scheme", "http",
                      ":path", "/r.S/M", "content-type", "application/grpc", NULL);
    break;
  case 8: /* a prefix announcing 1 MiB */
    sid = raw_headers(s, -1, 0, GOOD_REQ("/r.S/Big"), NULL);
    pfx[0] = 0;
    pfx[1] = 0;
    pfx[2] = 0x10;
    pfx[3] = 0;
    pfx[4] = 0;
    raw_data(s, sid, pfx, 5, 0);
    break;
  case 9:
    sid = raw_headers(s, -1, 0, GOOD_REQ("/r.S/M"), NULL);
    raw_msg(s, sid, 2, "flags", 1);
    break;
  case 10: /* END_STREAM inside a message */
    sid = raw_headers(s, -1, 0, GOOD_REQ("/r.S/M"), NULL);
    pfx[0] = 0;
    pfx[1] = pfx[2] = pfx[3] = 0;
    pfx[4] = 9;
    raw_data(s, sid, pfx, 5, 0);
    raw_data(s, sid, "abc", 3, 1);
    break;
  case 11:
    sid = raw_headers(s, -1, 1, GOOD_REQ("/r.S/M"), "x-bad-bin", "!!!", NULL);
    break;
  case 12: /* messages, then request trailers */
    sid = raw_headers(s, -1, 0, GOOD_REQ("/r.S/M"), "grpc-timeout", "100m",
                      "grpc-encoding", "identity", "grpc-accept-encoding", "gzip",
                      "user-agent", "raw/1", NULL);
    raw_msg(s, sid, 0, "one", 0);
    raw_msg(s, sid, 0, "", 0);
    raw_out(s, &out);
    raw_headers(s, sid, 1, "x-trailer", "t", NULL);
    break;
  case 13: /* request, message, then RST_STREAM */
    sid = raw_headers(s, -1, 0, GOOD_REQ("/r.S/M"), NULL);
    raw_msg(s, sid, 0, "partial", 0);
    raw_out(s, &out);
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
    break;
  case 14: /* a good streaming request split over frames, then PING, GOAWAY */
    sid = raw_headers(s, -1, 0, GOOD_REQ("/r.S/Stream"), "grpc-timeout", "3S", NULL);
    raw_msg(s, sid, 0, "first message", 0);
    raw_msg(s, sid, 1, "compressed?", 0);
    raw_out(s, &out);
    raw_data(s, sid, "\0\0\0\0\4ab", 7, 0);
    raw_out(s, &out);
    raw_data(s, sid, "cd", 2, 1);
    raw_out(s, &out);
    nghttp2_submit_ping(s, NGHTTP2_FLAG_NONE, (const uint8_t *)"12345678");
    nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    break;
  case 15: /* duplicate pseudo header and a pseudo header after a field */
    sid = raw_headers(s, -1, 1, ":method", "POST", ":method", "POST", ":scheme", "http",
                      ":path", "/r.S/M", NULL);
    raw_out(s, &out);
    raw_headers(s, -1, 1, ":method", "POST", "content-type", "application/grpc",
                ":scheme", "http", ":path", "/r.S/M", NULL);
    break;
  case 16: /* oversized header list */
    {
      static char big[6000];
      memset(big, 'v', sizeof(big) - 1);
      sid = raw_headers(s, -1, 1, GOOD_REQ("/r.S/M"), "x-big", big, NULL);
    }
    break;
  default:
    break;
  }
  (void)sid;
  raw_out(s, &out);
  write_variants("server", name, &out);
  free(out.p);
  nghttp2_session_del(s);
}

/* ---- client seeds from a raw server ---- */

/* Appends all of c's output to b. */
static void take_all(sgrpc_conn *c, bytes *b) {
  int i;
  for (i = 0; i < 100; i++) {
    const uint8_t *d;
    ssize_t n = sgrpc_conn_out_peek(c, &d);
    if (n <= 0) break;
    b_add(b, d, (size_t)n);
    sgrpc_conn_out_consume(c, (size_t)n);
  }
}

static void raw_server_seed(const char *name, int which) {
  sgrpc_call *fc[FZ_CLIENT_CALLS];
  void *ud[FZ_CLIENT_CALLS] = {(void *)0, (void *)1, (void *)2};
  sgrpc_conn *cli;
  nghttp2_session *s = raw_new(1);
  bytes in = {0}, out = {0};
  const uint8_t *prefix;
  size_t plen;
  sgrpc_event ev;
  g_out = &out;
  if (fz_client_setup(&cli, fc, ud) != 0) fz_fail("setup");
  /* As in fuzz_client, the client reads the server prefix first (it may
   * hold requests until the server's SETTINGS arrive); then its bytes
   * open streams 1, 3, 5 on the raw server. */
  take_all(cli, &in);
  prefix = fz_server_prefix(&plen);
  if (sgrpc_conn_recv(cli, prefix, plen, FZ_START) != (ssize_t)plen) fz_fail("prefix");
  while (sgrpc_conn_next_event(cli, &ev) == 1) {
  }
  take_all(cli, &in);
  if (nghttp2_session_mem_recv(s, in.p, in.len) != (ssize_t)in.len) fz_fail("raw recv");
  if (!nghttp2_session_find_stream(s, 5)) fz_fail("streams 1, 3, 5 not open");
  switch (which) {
  case 0:
    raw_headers(s, 1, 1, ":status", "503", NULL);
    raw_headers(s, 3, 1, ":status", "404", "content-type", "application/grpc", NULL);
    raw_headers(s, 5, 1, ":status", "401", NULL);
    break;
  case 1:
    raw_headers(s, 1, 0, ":status", "200", "content-type", "text/html", NULL);
    raw_data(s, 1, "<html>", 6, 1);
    break;
  case 2: /* no grpc-status in trailers */
    raw_headers(s, 1, 0, ":status", "200", "content-type", "application/grpc", NULL);
    raw_msg(s, 1, 0, "reply", 0);
    raw_out(s, &out);
    raw_headers(s, 1, 1, "grpc-message", "no status", NULL);
    break;
  case 3: /* DATA with END_STREAM and no trailers */
    raw_headers(s, 1, 0, ":status", "200", "content-type", "application/grpc", NULL);
    raw_msg(s, 1, 0, "reply", 1);
    break;
  case 4:
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, 1, NGHTTP2_REFUSED_STREAM);
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, 3, NGHTTP2_ENHANCE_YOUR_CALM);
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, 5, NGHTTP2_INADEQUATE_SECURITY);
    break;
  case 5: /* informational, then a real response, messages and trailers */
    raw_headers(s, 3, 0, ":status", "100", NULL);
    raw_out(s, &out);
    raw_headers(s, 3, 0, ":status", "200", "content-type", "application/grpc+proto",
                "grpc-encoding", "identity", "x-h", "v", "x-h-bin", "AAEC", NULL);
    raw_msg(s, 3, 0, "m1", 0);
    raw_msg(s, 3, 0, "", 0);
    raw_out(s, &out);
    raw_headers(s, 3, 1, "grpc-status", "0", "grpc-message", "fine%20%E2%9C%93",
                "x-t", "1", "grpc-status-details-bin", "CAMSA2JhZA", NULL);
    break;
  case 6: /* a second header block without END_STREAM */
    raw_headers(s, 1, 0, ":status", "200", "content-type", "application/grpc", NULL);
    raw_out(s, &out);
    raw_headers(s, 1, 0, "x-again", "1", NULL);
    break;
  case 7: /* trailers-only with an out-of-range status and bad escapes */
    raw_headers(s, 1, 1, ":status", "200", "content-type", "application/grpc",
                "grpc-status", "99", "grpc-message", "%zz%4", NULL);
    raw_headers(s, 3, 1, ":status", "200", "content-type", "application/grpc",
                "grpc-status", "7", "grpc-message", "denied", NULL);
    break;
  case 8: /* bad -bin metadata */
    raw_headers(s, 1, 0, ":status", "200", "content-type", "application/grpc",
                "x-bad-bin", "!!", NULL);
    raw_headers(s, 3, 1, ":status", "200", "content-type", "application/grpc",
                "grpc-status", "0", "x-bad-bin", "a", NULL);
    break;
  case 9: /* bad message flags; a message cut short by trailers */
    raw_headers(s, 1, 0, ":status", "200", "content-type", "application/grpc", NULL);
    raw_msg(s, 1, 5, "flags", 0);
    raw_headers(s, 5, 0, ":status", "200", "content-type", "application/grpc", NULL);
    raw_data(s, 5, "\0\0\0\0\x10" "abc", 8, 0);
    raw_out(s, &out);
    raw_headers(s, 5, 1, "grpc-status", "0", NULL);
    break;
  case 10: /* a message over the client's 16 KiB limit */
    {
      uint8_t pfx[5] = {0, 0, 0x01, 0, 0};
      raw_headers(s, 3, 0, ":status", "200", "content-type", "application/grpc", NULL);
      raw_data(s, 3, pfx, 5, 0);
    }
    break;
  case 11:
    nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR,
                          (const uint8_t *)"maintenance", 11);
    raw_headers(s, 1, 1, ":status", "200", "content-type", "application/grpc",
                "grpc-status", "0", NULL);
    break;
  case 12: /* missing :status, uppercase name, connection-level errors later */
    raw_headers(s, 1, 1, "content-type", "application/grpc", NULL);
    raw_headers(s, 3, 1, ":status", "200", "Content-Type", "application/grpc", NULL);
    break;
  default:
    break;
  }
  raw_out(s, &out);
  write_variants("client", name, &out);
  free(in.p);
  free(out.p);
  nghttp2_session_del(s);
  sgrpc_conn_del(cli);
}

/* ---- actor programs ---- */

static void actor_seed(const char *name, const uint8_t *ops, size_t n) {
  bytes b = {0};
  b_add(&b, ops, n);
  write_seed("actor", name, 0, 0, &b);
  free(b.p);
}

static void actor_seeds(void) {
  /* op numbers: see fuzz_actor.c; 0x80 selects the server side */
  static const uint8_t unary[] = {0, 0x0c, 1, 5, 7, 0, 0x85, 0, 0x81, 9, 0x86, 0, 8, 0, 12, 0};
  static const uint8_t stream[] = {0, 2, 1, 0xff, 1, 0xfe, 7, 3, 8, 0, 7, 0, 0x81, 0x41,
                                   0x81, 0x43, 8, 0, 2, 0, 12, 0, 0x86, 0, 12, 0, 4, 0};
  static const uint8_t deadline[] = {0, 0x14, 1, 4, 7, 0, 9, 2, 12, 0, 9, 30, 12, 0};
  static const uint8_t cancel[] = {0, 1, 0, 2, 12, 0, 3, 0, 0x83, 1, 12, 0, 4, 1, 0x84, 0, 12, 0};
  static const uint8_t goaway[] = {0, 0, 0, 1, 12, 0, 0x8b, 1, 10, 3, 12, 0, 0, 3, 12, 0,
                                   0x86, 0, 0x86, 1, 12, 0};
  static const uint8_t flood[] = {0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9,
                                  0, 10, 0, 11, 12, 0, 0x81, 0xff, 0x81, 0xfd, 8, 1, 8, 2,
                                  12, 0, 4, 0, 4, 1, 12, 0};
  /* compressing calls both ways, then a graceful shutdown of the server
   * with calls in flight; then one with a drain deadline that cuts them */
  static const uint8_t compress[] = {14, 0x00, 14, 0x81, 1, 0xc9, 7, 0, 0x8f, 1, 0x8f, 2,
                                     0x81, 0xc9, 0x81, 0x40, 8, 0, 0x8d, 0, 12, 0, 2, 0,
                                     2, 1, 12, 0, 0x86, 0, 0x86, 1, 12, 0, 4, 0, 4, 0, 12, 0};
  static const uint8_t shutdown[] = {0, 0x01, 0, 0x02, 12, 0, 0x8d, 50, 0, 0x00, 12, 0, 9, 100,
                                     12, 0, 9, 0xff, 12, 0, 13, 0, 12, 0};
  /* keepalive: an open call, time passes in 1.8 s steps, pings flow */
  static const uint8_t keepalive[] = {0, 0x01, 12, 0, 9, 0xff, 12, 0, 9, 0xff, 12, 0, 9, 0xff,
                                      12, 0, 9, 0xff, 9, 0xff, 12, 0, 0x86, 0, 12, 0};
  actor_seed("compress", compress, sizeof(compress));
  actor_seed("shutdown", shutdown, sizeof(shutdown));
  actor_seed("keepalive", keepalive, sizeof(keepalive));
  actor_seed("unary", unary, sizeof(unary));
  actor_seed("stream", stream, sizeof(stream));
  actor_seed("deadline", deadline, sizeof(deadline));
  actor_seed("cancel", cancel, sizeof(cancel));
  actor_seed("goaway", goaway, sizeof(goaway));
  actor_seed("flood", flood, sizeof(flood));
}

int main(int argc, char **argv) {
  static const char *const raw_client_names[] = {
      "raw-get", "raw-bad-ct", "raw-bad-te", "raw-bad-timeout", "raw-no-path",
      "raw-upper-name", "raw-conn-header", "raw-unknown-pseudo", "raw-huge-prefix",
      "raw-bad-flags", "raw-truncated", "raw-bad-bin", "raw-trailers", "raw-rst",
      "raw-stream-ping-goaway", "raw-dup-pseudo", "raw-big-headers"};
  static const char *const raw_server_names[] = {
      "raw-http-errors", "raw-bad-ct", "raw-no-status", "raw-data-end", "raw-rst-codes",
      "raw-informational", "raw-second-headers", "raw-status-99", "raw-bad-bin",
      "raw-bad-message", "raw-too-big", "raw-goaway", "raw-malformed"};
  size_t i;
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  outdir = argv[1];
  if (mkdir(outdir, 0755) != 0 && errno != EEXIST) fz_fail("mkdir outdir");
  server_seeds_sgrpc();
  for (i = 0; i < sizeof(raw_client_names) / sizeof(raw_client_names[0]); i++)
    raw_client_seed(raw_client_names[i], (int)i);
  client_seed_sgrpc("sgrpc-echo", SRV_ECHO, 0);
  client_seed_sgrpc("sgrpc-error", SRV_ERROR, 0);
  client_seed_sgrpc("sgrpc-cancel", SRV_CANCEL, 0);
  client_seed_sgrpc("sgrpc-ping-goaway", SRV_WAIT, 0);
  client_seed_sgrpc("sgrpc-deadline", SRV_WAIT, 1500 * FZ_MS);
  client_seed_sgrpc("sgrpc-big", SRV_BIG, 0);
  for (i = 0; i < sizeof(raw_server_names) / sizeof(raw_server_names[0]); i++)
    raw_server_seed(raw_server_names[i], (int)i);
  actor_seeds();
  return 0;
}
