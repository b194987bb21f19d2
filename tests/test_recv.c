/*
 * Input handling: any split of the input gives the same events, message
 * data is zero-copy when it can be and an owned copy when it cannot, and
 * garbage ends the connection with an error instead of a hang. Also the
 * code-to-string helpers.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1000000000LL

/* ---- a trace of events, as text ---- */

typedef struct trace {
  char *s;
  size_t len, cap;
} trace;

static void trace_add(trace *t, const char *fmt, ...) {
  va_list ap;
  int n;
  for (;;) {
    size_t room = t->cap - t->len;
    va_start(ap, fmt);
    n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? room : 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    if (t->s && (size_t)n < room) {
      t->len += (size_t)n;
      return;
    }
    t->cap = t->cap * 2 + (size_t)n + 256;
    t->s = realloc(t->s, t->cap);
    assert_non_null(t->s);
  }
}

static uint64_t fnv(const uint8_t *d, size_t n) {
  uint64_t h = 1469598103934665603ull;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ d[i]) * 1099511628211ull;
  return h;
}

static void trace_md(trace *t, const sgrpc_md *md, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    trace_add(t, " %s=%016llx/%zu", md[i].key,
              (unsigned long long)fnv(md[i].value, md[i].value_len), md[i].value_len);
}

/* ---- the conversation ----
 * Call kinds by index: 0 unary with metadata; 1 server streaming of
 * varied sizes (including empty and frame-spanning); 2 client streaming;
 * 3 bidi ping-pong; 4 error status with details, trailers-only; 5 the
 * client cancels after the first message of an open stream. */

#define NCALLS 6
static const size_t stream_sizes[] = {0, 1, 100, 5, 20000, 70000};
#define NSTREAM (sizeof(stream_sizes) / sizeof(stream_sizes[0]))

typedef struct conv {
  trace tc, ts;
  sgrpc_call *cc[NCALLS];
  int cli_closed, srv_closed;
  uint32_t bidi_echoes;
  int cancelled[NCALLS];
  uint8_t *big;
} conv;

static void fill(uint8_t *b, size_t n, uint32_t seed) {
  size_t i;
  for (i = 0; i < n; i++) b[i] = (uint8_t)(seed * 13u + i * 29u + (i >> 8));
}

static int call_index(const sgrpc_event *ev) { return (int)(intptr_t)ev->call_user_data - 1; }

static void srv_on(conv *w, const sgrpc_event *ev) {
  int idx = ev->call ? call_index(ev) : -1;
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW: {
    int k;
    assert_int_equal(sscanf(ev->u.call_new.path, "/t.R/C%d", &k), 1);
    sgrpc_call_set_user_data(ev->call, (void *)(intptr_t)(k + 1));
    trace_add(&w->ts, "NEW %d %s", k, ev->u.call_new.path);
    trace_md(&w->ts, ev->u.call_new.md, ev->u.call_new.md_count);
    trace_add(&w->ts, "\n");
    if (k == 5) {
      /* headers now, one message, then wait for the client */
      sgrpc_md md = SGRPC_MD_STR("x-early", "yes");
      assert_int_equal(sgrpc_call_send_headers(ev->call, &md, 1), 0);
      assert_int_equal(sgrpc_call_send(ev->call, (const uint8_t *)"first", 5, 0), 0);
    }
    break;
  }
  case SGRPC_EV_MESSAGE:
    trace_add(&w->ts, "MSG %d %zu %016llx\n", idx, ev->u.message.len,
              (unsigned long long)fnv(ev->u.message.data, ev->u.message.len));
    if (idx == 0) {
      assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0), 0);
    } else if (idx == 3) {
      uint8_t r[64];
      size_t n = ev->u.message.len < sizeof(r) ? ev->u.message.len : sizeof(r);
      memcpy(r, ev->u.message.data, n);
      if (n) r[0] ^= 0xff;
      assert_int_equal(sgrpc_call_send(ev->call, r, n, 0), 0);
    }
    break;
  case SGRPC_EV_HALF_CLOSE:
    trace_add(&w->ts, "HALF %d\n", idx);
    if (idx == 1) {
      size_t i;
      for (i = 0; i < NSTREAM; i++) {
        fill(w->big, stream_sizes[i], (uint32_t)i);
        assert_int_equal(sgrpc_call_send(ev->call, w->big, stream_sizes[i], 0), 0);
      }
    }
    if (idx == 2) {
      assert_int_equal(sgrpc_call_send(ev->call, (const uint8_t *)"sum", 3, 0), 0);
    }
    if (idx == 4) {
      static const uint8_t det[] = {0x08, 0x03, 0x12, 0x00, 0xff};
      sgrpc_md md[2] = {SGRPC_MD_STR("x-why", "because"),
                        SGRPC_MD_STR("x-raw-bin", "\x01\x00\x02")};
      sgrpc_status st = {
          SGRPC_STATUS_INVALID_ARGUMENT, "bad \xc3\xbc arg 100%\n", det, sizeof(det), md, 2};
      assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
    } else if (idx != 5) {
      sgrpc_md md = SGRPC_MD_STR("x-done", "1");
      sgrpc_status st = {SGRPC_STATUS_OK, NULL, NULL, 0, &md, 1};
      assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
    }
    break;
  case SGRPC_EV_CLOSE:
    trace_add(&w->ts, "CLOSE %d %d %s reset=%d\n", idx, ev->u.close.status.code,
              ev->u.close.status.message, ev->u.close.reset);
    w->srv_closed++;
    sgrpc_call_release(ev->call);
    break;
  case SGRPC_EV_WRITABLE: trace_add(&w->ts, "WRITABLE %d\n", idx); break;
  default: trace_add(&w->ts, "EV %d\n", ev->type); break;
  }
}

static void cli_on(conv *w, const sgrpc_event *ev) {
  int idx = ev->call ? call_index(ev) : -1;
  switch (ev->type) {
  case SGRPC_EV_HEADERS:
    trace_add(&w->tc, "HEADERS %d", idx);
    trace_md(&w->tc, ev->u.headers.md, ev->u.headers.md_count);
    trace_add(&w->tc, "\n");
    break;
  case SGRPC_EV_MESSAGE:
    trace_add(&w->tc, "MSG %d %zu %016llx\n", idx, ev->u.message.len,
              (unsigned long long)fnv(ev->u.message.data, ev->u.message.len));
    if (idx == 3) {
      static const uint8_t ping[] = "ping-ping-ping";
      w->bidi_echoes++;
      if (w->bidi_echoes < 3)
        assert_int_equal(sgrpc_call_send(ev->call, ping, sizeof(ping) - w->bidi_echoes, 0), 0);
      else
        assert_int_equal(sgrpc_call_close_send(ev->call), 0);
    }
    if (idx == 5) {
      assert_int_equal(sgrpc_call_cancel(ev->call), 0);
      w->cancelled[idx] = 1;
    }
    break;
  case SGRPC_EV_CLOSE: {
    const sgrpc_status_info *st = &ev->u.close.status;
    /* "~": queued by our own cancel, behind whatever input had queued */
    trace_add(&w->tc, "%sCLOSE %d %d [%s] det=%016llx/%zu reset=%d", w->cancelled[idx] ? "~" : "",
              idx, st->code, st->message,
              (unsigned long long)(st->details ? fnv(st->details, st->details_len) : 0),
              st->details_len, ev->u.close.reset);
    trace_md(&w->tc, st->md, st->md_count);
    trace_add(&w->tc, "\n");
    w->cli_closed++;
    w->cc[idx] = NULL;
    sgrpc_call_release(ev->call);
    break;
  }
  default: trace_add(&w->tc, "EV %d %d\n", ev->type, idx); break;
  }
}

static void conv_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  if (conn == p->srv)
    srv_on(ud, ev);
  else
    cli_on(ud, ev);
}

/* Runs the conversation with the given split; returns both traces. */
static void run_conversation(size_t max_split, uint64_t seed, trace *tc, trace *ts) {
  pair p;
  conv w;
  int i;
  char path[32];
  uint8_t buf[3000];
  sgrpc_md md[3] = {SGRPC_MD_STR("x-user", "alice"), SGRPC_MD_STR("x-id-bin", "\x00\xff\x10"),
                    SGRPC_MD_STR("x-user", "bob")};
  memset(&w, 0, sizeof(w));
  w.big = malloc(70000);
  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  p.on_event = conv_event;
  p.ud = &w;
  p.max_split = max_split;
  p.rng = seed;
  for (i = 0; i < NCALLS; i++) {
    sgrpc_call_opts o;
    memset(&o, 0, sizeof(o));
    snprintf(path, sizeof(path), "/t.R/C%d", i);
    o.path = path;
    o.authority = "example.test";
    o.user_data = (void *)(intptr_t)(i + 1);
    if (i == 0) {
      o.md = md;
      o.md_count = 3;
    }
    assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &w.cc[i]), 0);
  }
  assert_int_equal(sgrpc_call_send(w.cc[0], (const uint8_t *)"hello", 5, SGRPC_SEND_END), 0);
  assert_int_equal(sgrpc_call_send(w.cc[1], (const uint8_t *)"go", 2, SGRPC_SEND_END), 0);
  for (i = 0; i < 4; i++) {
    fill(buf, sizeof(buf), (uint32_t)(100 + i));
    assert_int_equal(sgrpc_call_send(w.cc[2], buf, sizeof(buf), i == 3 ? SGRPC_SEND_END : 0), 0);
  }
  assert_int_equal(sgrpc_call_send(w.cc[3], (const uint8_t *)"ping-ping-ping", 14, 0), 0);
  assert_int_equal(sgrpc_call_close_send(w.cc[4]), 0);
  /* call 5 sends nothing: the server streams first */
  pair_run(&p, 100000);
  assert_int_equal(w.cli_closed, NCALLS);
  assert_int_equal(w.srv_closed, NCALLS);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  assert_int_equal(p.cli_err, 0);
  assert_int_equal(p.srv_err, 0);
  pair_free(&p);
  free(w.big);
  *tc = w.tc;
  *ts = w.ts;
}

/* The lines of t that belong to call idx (idx < 0: every line that is
 * not marked "~"). Lines are "TYPE idx ...", a status message may span
 * lines, so records are split on a line that starts with a capital. */
static void project(const trace *t, int idx, trace *out) {
  size_t i = 0;
  memset(out, 0, sizeof(*out));
  trace_add(out, "%s", "");
  while (i < t->len) {
    size_t j = i + 1;
    int k = -1, local = t->s[i] == '~';
    const char *sp;
    while (j < t->len &&
           !(t->s[j - 1] == '\n' && ((t->s[j] >= 'A' && t->s[j] <= 'Z') || t->s[j] == '~')))
      j++;
    sp = memchr(t->s + i, ' ', j - i);
    if (sp) k = atoi(sp + 1);
    if (idx < 0 ? !local : k == idx) trace_add(out, "%.*s", (int)(j - i), t->s + i);
    i = j;
  }
}

/* Same events for every call, in the same order; the same global order
 * for everything input produced. */
static void expect_same(const trace *a, const trace *b, const char *what) {
  int idx;
  for (idx = -1; idx < NCALLS; idx++) {
    trace pa, pb;
    project(a, idx, &pa);
    project(b, idx, &pb);
    if (idx >= 0) assert_non_null(strstr(pa.s, "CLOSE ")); /* every call ended */
    if (pa.len != pb.len || memcmp(pa.s, pb.s, pa.len) != 0) {
      fprintf(stderr, "--- whole-chunk trace:\n%.*s--- %s trace:\n%.*s", (int)a->len, a->s, what,
              (int)b->len, b->s);
      fail_msg("%s trace differs from the whole-chunk one (%s %d)", what,
               idx < 0 ? "global order" : "call", idx);
    }
    free(pa.s);
    free(pb.s);
  }
}

static void test_splits_same_events(void **state) {
  trace wc, ws, bc, bs, rc, rs;
  uint64_t seed;
  (void)state;
  run_conversation(0, 1, &wc, &ws);
  /* the whole-chunk trace is the reference; check that it is complete */
  assert_non_null(strstr(ws.s, "NEW 0 /t.R/C0 x-user="));
  assert_non_null(strstr(wc.s, "CLOSE 4 3 [bad \xc3\xbc arg 100%\n]"));
  assert_non_null(strstr(wc.s, "MSG 1 70000 "));
  assert_non_null(strstr(wc.s, "MSG 1 0 "));
  assert_non_null(strstr(ws.s, "CLOSE 5 1 "));
  assert_non_null(strstr(wc.s, "CLOSE 5 1 "));

  run_conversation(1, 7, &bc, &bs);
  expect_same(&wc, &bc, "client (bytewise)");
  expect_same(&ws, &bs, "server (bytewise)");
  free(bc.s);
  free(bs.s);
  for (seed = 1; seed <= 5; seed++) {
    run_conversation(1 + (size_t)seed * 37, seed * 7919, &rc, &rs);
    expect_same(&wc, &rc, "client (random)");
    expect_same(&ws, &rs, "server (random)");
    free(rc.s);
    free(rs.s);
  }
  free(wc.s);
  free(ws.s);
}

/* ---- zero-copy ---- */

/* Moves all of from's output into a fresh buffer. */
static uint8_t *take_all(sgrpc_conn *from, size_t *len) {
  uint8_t *b = NULL;
  size_t n = 0;
  int i;
  for (i = 0; i < 256; i++) {
    const uint8_t *d;
    ssize_t k = sgrpc_conn_out_peek(from, &d);
    assert_true(k >= 0);
    if (k == 0) break;
    b = realloc(b, n + (size_t)k);
    memcpy(b + n, d, (size_t)k);
    n += (size_t)k;
    sgrpc_conn_out_consume(from, (size_t)k);
  }
  *len = n;
  return b;
}

static int inside(const uint8_t *p, const uint8_t *buf, size_t len) {
  return (uintptr_t)p >= (uintptr_t)buf && (uintptr_t)p < (uintptr_t)buf + len;
}

static void test_zero_copy(void **state) {
  sgrpc_conn *cli, *srv;
  sgrpc_call_opts o;
  sgrpc_call *call;
  uint8_t small[100], *large, *in;
  size_t len, large_len = 40000, got = 0, half;
  sgrpc_event ev;
  ssize_t n;
  (void)state;
  assert_int_equal(sgrpc_conn_client_new(&cli, NULL, NULL, NOW), 0);
  assert_int_equal(sgrpc_conn_server_new(&srv, NULL, NULL, NOW), 0);
  memset(&o, 0, sizeof(o));
  o.path = "/t.R/Z";
  assert_int_equal(sgrpc_call_start(cli, &o, NOW, &call), 0);
  fill(small, sizeof(small), 1);
  large = malloc(large_len);
  fill(large, large_len, 2);

  /* A small message inside one DATA frame: the event points into the
   * caller's buffer. */
  assert_int_equal(sgrpc_call_send(call, small, sizeof(small), 0), 0);
  in = take_all(cli, &len);
  n = sgrpc_conn_recv(srv, in, len, NOW);
  assert_int_equal(n, (ssize_t)len);
  while (sgrpc_conn_next_event(srv, &ev) == 1) {
    if (ev.type != SGRPC_EV_MESSAGE) continue;
    assert_int_equal(ev.u.message.len, sizeof(small));
    assert_true(inside(ev.u.message.data, in, len));
    assert_true(inside(ev.u.message.data + sizeof(small) - 1, in, len));
    assert_memory_equal(ev.u.message.data, small, sizeof(small));
    got++;
  }
  assert_int_equal(got, 1);
  free(in);

  /* A message spanning DATA frames (max frame size 16 KiB): an owned
   * copy with the same bytes. */
  assert_int_equal(sgrpc_call_send(call, large, large_len, 0), 0);
  in = take_all(cli, &len);
  assert_true(len > large_len);
  n = sgrpc_conn_recv(srv, in, len, NOW);
  assert_int_equal(n, (ssize_t)len);
  got = 0;
  while (sgrpc_conn_next_event(srv, &ev) == 1) {
    if (ev.type != SGRPC_EV_MESSAGE) continue;
    assert_int_equal(ev.u.message.len, large_len);
    assert_false(inside(ev.u.message.data, in, len));
    assert_memory_equal(ev.u.message.data, large, large_len);
    got++;
  }
  assert_int_equal(got, 1);
  free(in);

  /* The same small message cut in two recv calls: a copy as well, and
   * later bytes in the same buffer still go zero-copy. */
  assert_int_equal(sgrpc_call_send(call, small, sizeof(small), 0), 0);
  assert_int_equal(sgrpc_call_send(call, small, sizeof(small), 0), 0);
  in = take_all(cli, &len);
  half = 9 + 5 + 50; /* frame header, prefix, half the body */
  assert_true(len > half);
  n = sgrpc_conn_recv(srv, in, half, NOW);
  assert_int_equal(n, (ssize_t)half);
  assert_int_equal(sgrpc_conn_next_event(srv, &ev), 0);
  n = sgrpc_conn_recv(srv, in + half, len - half, NOW);
  assert_int_equal(n, (ssize_t)(len - half));
  got = 0;
  while (sgrpc_conn_next_event(srv, &ev) == 1) {
    if (ev.type != SGRPC_EV_MESSAGE) continue;
    assert_int_equal(ev.u.message.len, sizeof(small));
    assert_memory_equal(ev.u.message.data, small, sizeof(small));
    if (got == 0)
      assert_false(inside(ev.u.message.data, in, len));
    else
      assert_true(inside(ev.u.message.data, in + half, len - half));
    got++;
  }
  assert_int_equal(got, 2);
  free(in);

  sgrpc_call_release(call);
  free(large);
  sgrpc_conn_del(cli);
  sgrpc_conn_del(srv);
}

/* ---- garbage ---- */

static void test_bad_preface_fatal_sticky(void **state) {
  static const char *const inputs[] = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\rX",              /* last byte of the magic wrong */
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
  };
  size_t i, bytewise;
  (void)state;
  for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
    for (bytewise = 0; bytewise < 2; bytewise++) {
      sgrpc_conn *srv;
      const uint8_t *in = (const uint8_t *)inputs[i], *d;
      size_t len = strlen(inputs[i]), off = 0;
      ssize_t rv = 0;
      sgrpc_event ev;
      int k;
      assert_int_equal(sgrpc_conn_server_new(&srv, NULL, NULL, NOW), 0);
      while (off < len) {
        size_t piece = bytewise ? 1 : len - off;
        rv = sgrpc_conn_recv(srv, in + off, piece, NOW);
        if (rv < 0) break;
        assert_int_equal(rv, (ssize_t)piece);
        off += piece;
      }
      assert_true(rv < 0);
      assert_true(sgrpc_is_fatal((int)rv));
      /* sticky: later input gets the same code, nothing is read */
      assert_int_equal(sgrpc_conn_recv(srv, (const uint8_t *)"PRI", 3, NOW), rv);
      assert_int_equal(sgrpc_conn_recv(srv, (const uint8_t *)"x", 1, NOW), rv);
      /* the one event left says why the connection ended */
      assert_int_equal(sgrpc_conn_next_event(srv, &ev), 1);
      assert_int_equal(ev.type, SGRPC_EV_CONN_CLOSED);
      assert_int_equal(ev.u.conn_closed.reason, (int)rv);
      assert_int_equal(sgrpc_conn_next_event(srv, &ev), 0);
      assert_false(sgrpc_conn_is_alive(srv));
      /* whatever was queued can still be taken, then nothing */
      for (k = 0; k < 10; k++) {
        ssize_t n = sgrpc_conn_out_peek(srv, &d);
        if (n <= 0) break;
        sgrpc_conn_out_consume(srv, (size_t)n);
      }
      assert_true(k < 10);
      assert_int_equal(sgrpc_conn_recv(srv, (const uint8_t *)"x", 1, NOW), rv);
      sgrpc_conn_del(srv);
    }
  }
}

typedef struct gw {
  int closed[3];
  int status[3];
  sgrpc_call *calls[3];
  int srv_new;
} gw;

static void garbage_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  gw *w = ud;
  intptr_t i = (intptr_t)ev->call_user_data;
  if (conn == p->srv) {
    if (ev->type == SGRPC_EV_CALL_NEW) w->srv_new++;
    if (ev->type == SGRPC_EV_HALF_CLOSE && w->srv_new == 1) {
      sgrpc_status st = {0};
      assert_int_equal(sgrpc_call_send(ev->call, (const uint8_t *)"ok", 2, 0), 0);
      assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
    }
    if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call);
    return;
  }
  if (ev->type == SGRPC_EV_CLOSE) {
    assert_true(i >= 1 && i <= 3);
    assert_false(w->closed[i - 1]);
    w->closed[i - 1] = 1;
    w->status[i - 1] = ev->u.close.status.code;
    sgrpc_call_release(ev->call);
  }
}

static void test_client_garbage_ends_calls(void **state) {
  uint64_t seed;
  int fatal_seen = 0, total_chunks = 0;
  (void)state;
  for (seed = 1; seed <= 64; seed++) {
    pair p;
    gw w;
    sgrpc_call_opts o;
    uint8_t junk[1024];
    size_t j;
    int i, r, chunk;
    memset(&w, 0, sizeof(w));
    assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
    p.on_event = garbage_event;
    p.ud = &w;
    memset(&o, 0, sizeof(o));
    o.path = "/t.R/G";
    /* one complete exchange */
    o.user_data = (void *)1;
    assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &w.calls[0]), 0);
    assert_int_equal(sgrpc_call_send(w.calls[0], (const uint8_t *)"a", 1, SGRPC_SEND_END), 0);
    pair_run(&p, 100);
    assert_true(w.closed[0]);
    assert_int_equal(w.status[0], SGRPC_STATUS_OK);
    /* two calls left open on purpose */
    for (i = 1; i < 3; i++) {
      o.user_data = (void *)(intptr_t)(i + 1);
      assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &w.calls[i]), 0);
      assert_int_equal(sgrpc_call_send(w.calls[i], (const uint8_t *)"b", 1, 0), 0);
    }
    pair_run(&p, 100);
    assert_int_equal(w.srv_new, 3);
    assert_false(w.closed[1] || w.closed[2]);

    p.rng = seed * 0x9E3779B97F4A7C15ull;
    /* Random bytes, 1 KiB at a time: a random frame header may announce a
     * payload the engine must wait for, so keep feeding (at most 64 KiB)
     * until the connection gives up. */
    for (chunk = 0; chunk < 64 && sgrpc_conn_is_alive(p.cli); chunk++) {
      size_t off = 0;
      for (j = 0; j < sizeof(junk); j++) junk[j] = (uint8_t)pair_rand(&p);
      for (r = 0; r < 100 && off < sizeof(junk); r++) {
        ssize_t n = sgrpc_conn_recv(p.cli, junk + off, sizeof(junk) - off, p.now);
        pair_drain(&p, p.cli);
        if (n < 0) {
          assert_true(sgrpc_is_fatal((int)n) || n == SGRPC_ERR_CONN_CLOSED);
          if (sgrpc_is_fatal((int)n)) fatal_seen++;
          break;
        }
        off += (size_t)n;
      }
      assert_true(r < 100);
      /* let the client write what it has (a GOAWAY), bounded */
      for (r = 0; r < 20; r++) {
        const uint8_t *d;
        ssize_t n = sgrpc_conn_out_peek(p.cli, &d);
        pair_drain(&p, p.cli);
        if (n <= 0) break;
        sgrpc_conn_out_consume(p.cli, (size_t)n);
      }
    }
    total_chunks += chunk;
    pair_drain(&p, p.cli);
    for (i = 1; i < 3; i++) {
      if (!w.closed[i])
        fail_msg("seed %llu: call %d never ended (alive %d, want_write %d)",
                 (unsigned long long)seed, i, sgrpc_conn_is_alive(p.cli),
                 sgrpc_conn_want_write(p.cli));
      if (w.status[i] != SGRPC_STATUS_UNAVAILABLE && w.status[i] != SGRPC_STATUS_INTERNAL)
        fail_msg("seed %llu: call %d ended %s", (unsigned long long)seed, i,
                 sgrpc_status_name(w.status[i]));
    }
    assert_false(sgrpc_conn_is_alive(p.cli));
    assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
    pair_free(&p);
  }
  printf("# garbage: 64 seeds, %d KiB of junk in all, %d returned a fatal code from recv\n",
         total_chunks, fatal_seen);
}

/* ---- codes and names ---- */

static void test_strerror_and_status_names(void **state) {
  static const int codes[] = {0,
                              SGRPC_ERR_INVALID_ARGUMENT,
                              SGRPC_ERR_INVALID_STATE,
                              SGRPC_ERR_WOULDBLOCK,
                              SGRPC_ERR_CALL_CLOSED,
                              SGRPC_ERR_MESSAGE_TOO_LARGE,
                              SGRPC_ERR_BAD_METADATA,
                              SGRPC_ERR_NOMEM,
                              SGRPC_ERR_GOING_AWAY,
                              SGRPC_ERR_EVENTS_PENDING,
                              SGRPC_ERR_PROTOCOL,
                              SGRPC_ERR_CONN_NOMEM,
                              SGRPC_ERR_CONN_CLOSED,
                              SGRPC_ERR_HTTP2,
                              SGRPC_ERR_METADATA_TOO_LARGE,
                              SGRPC_ERR_BAD_ENCODING,
                              SGRPC_ERR_KEEPALIVE_TIMEOUT,
                              SGRPC_ERR_SETTINGS_TIMEOUT,
                              SGRPC_ERR_TOO_MANY_PINGS};
  static const int unknown[] = {1, -10, -13, -199, -200, -600, -699, -700, -899, -900, -908,
                                -100000, 100000};
  static const char *const names[] = {"OK",
                                      "CANCELLED",
                                      "UNKNOWN",
                                      "INVALID_ARGUMENT",
                                      "DEADLINE_EXCEEDED",
                                      "NOT_FOUND",
                                      "ALREADY_EXISTS",
                                      "PERMISSION_DENIED",
                                      "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION",
                                      "ABORTED",
                                      "OUT_OF_RANGE",
                                      "UNIMPLEMENTED",
                                      "INTERNAL",
                                      "UNAVAILABLE",
                                      "DATA_LOSS",
                                      "UNAUTHENTICATED"};
  const char *unk;
  size_t i, j;
  (void)state;
  unk = sgrpc_strerror(-12345);
  assert_non_null(unk);
  for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    const char *s = sgrpc_strerror(codes[i]);
    assert_non_null(s);
    assert_true(strlen(s) > 0);
    /* every known code has its own text */
    if (codes[i] != 0 && strcmp(s, unk) == 0) fail_msg("code %d has no text", codes[i]);
    for (j = 0; j < i; j++) assert_string_not_equal(s, sgrpc_strerror(codes[j]));
    /* of the engine's own codes, the fatal ones are those at or below
     * SGRPC_ERR_FATAL */
    assert_int_equal(sgrpc_is_fatal(codes[i]) != 0, codes[i] <= SGRPC_ERR_FATAL);
  }
  for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    const char *s = sgrpc_strerror(unknown[i]);
    assert_non_null(s);
    assert_true(strlen(s) > 0);
  }
  assert_true(sgrpc_is_fatal(SGRPC_ERR_FATAL));
  assert_false(sgrpc_is_fatal(0));
  /* the system range: SGRPC_ERR_SYSTEM(errno) for errno 1..399 */
  assert_int_equal(SGRPC_ERR_SYSTEM(1), -201);
  assert_int_equal(SGRPC_ERR_SYSTEM(399), -599);
  assert_int_equal(SGRPC_ERR_SYSTEM_LAST, -599);
  for (i = 1; i <= 399; i++) {
    int code = SGRPC_ERR_SYSTEM((int)i);
    assert_int_equal(sgrpc_err_errno(code), (int)i);
    assert_string_equal(sgrpc_strerror(code), "system error");
    assert_true(sgrpc_is_fatal(code));
  }
  assert_int_equal(sgrpc_err_errno(SGRPC_ERR_SYSTEM_BASE), 0);
  assert_int_equal(sgrpc_err_errno(-600), 0);
  assert_int_equal(sgrpc_err_errno(SGRPC_ERR_NOMEM), 0);
  assert_int_equal(sgrpc_err_errno(0), 0);
  assert_int_equal(sgrpc_err_errno(5), 0);
  assert_false(sgrpc_is_fatal(-200));
  assert_false(sgrpc_is_fatal(-150));
  assert_false(sgrpc_is_fatal(-700));
  assert_true(sgrpc_is_fatal(-600));
  assert_true(sgrpc_is_fatal(-699));
  for (i = 0; i <= 16; i++) assert_string_equal(sgrpc_status_name((int)i), names[i]);
  assert_string_equal(sgrpc_status_name(-1), "UNKNOWN");
  assert_string_equal(sgrpc_status_name(17), "UNKNOWN");
  assert_string_equal(sgrpc_status_name(1 << 30), "UNKNOWN");
  assert_string_equal(sgrpc_status_name(INT32_MIN), "UNKNOWN");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_splits_same_events),
      cmocka_unit_test(test_zero_copy),
      cmocka_unit_test(test_bad_preface_fatal_sticky),
      cmocka_unit_test(test_client_garbage_ends_calls),
      cmocka_unit_test(test_strerror_and_status_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
