/*
 * Limits and API misuse: message size limits in both directions, the
 * server's concurrent stream limit, invalid settings, and the documented
 * return codes of every misuse the API promises to catch.
 */
#include "support.h"

#include <stddef.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1000000000LL
#define MIB (1u << 20)

/* ---- a small world: one call per test, events recorded per side ---- */

typedef struct side {
  int new_calls, messages, closed, headers, half_closed;
  size_t last_len;
  int status, reset;
  char message[160];
  sgrpc_call *call; /* server: the handle from CALL_NEW */
} side;

typedef struct world {
  side c, s;
  size_t reply_len;     /* server replies with a message of this size... */
  int reply_on_half;    /* ...when the client half-closes */
  int status_later;     /* and sends no status with it */
  int release_on_close; /* release handles on CLOSE */
  const uint8_t *pattern;
} world;

static void fill(uint8_t *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) b[i] = (uint8_t)(i * 131u + (i >> 12));
}

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  side *sd = conn == p->srv ? &w->s : &w->c;
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW:
    sd->new_calls++;
    sd->call = ev->call;
    break;
  case SGRPC_EV_HEADERS: sd->headers++; break;
  case SGRPC_EV_MESSAGE:
    sd->messages++;
    sd->last_len = ev->u.message.len;
    if (w->pattern) assert_memory_equal(ev->u.message.data, w->pattern, ev->u.message.len);
    break;
  case SGRPC_EV_HALF_CLOSE:
    sd->half_closed++;
    if (w->reply_on_half) {
      sgrpc_status st;
      int rv;
      memset(&st, 0, sizeof(st));
      if (w->reply_len) {
        rv = sgrpc_call_send(ev->call, w->pattern, w->reply_len, 0);
        assert_int_equal(rv, 0);
      }
      if (!w->status_later) assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
    }
    break;
  case SGRPC_EV_CLOSE:
    sd->closed++;
    sd->status = ev->u.close.status.code;
    sd->reset = ev->u.close.reset;
    snprintf(sd->message, sizeof(sd->message), "%s", ev->u.close.status.message);
    if (w->release_on_close) {
      sgrpc_call_release(ev->call);
      if (sd->call == ev->call) sd->call = NULL;
    }
    break;
  default: break;
  }
}

static void world_pair(pair *p, world *w, const sgrpc_settings *cs, const sgrpc_settings *ss) {
  memset(w, 0, sizeof(*w));
  w->c.status = w->s.status = -1;
  w->release_on_close = 1;
  assert_int_equal(pair_init(p, cs, ss, NULL), 0);
  p->on_event = on_event;
  p->ud = w;
}

static sgrpc_call *start(pair *p, const char *path) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.path = path;
  assert_int_equal(sgrpc_call_start(p->cli, &o, p->now, &call), 0);
  return call;
}

/* ---- max_recv_message_size ---- */

/* Client sends one message of len to a server with the given limit. */
static void client_to_server(uint32_t limit, size_t len, const uint8_t *pat, int want_ok) {
  sgrpc_settings ss;
  pair p;
  world w;
  sgrpc_call *call;
  sgrpc_settings_default(&ss);
  if (limit) ss.max_recv_message_size = limit;
  world_pair(&p, &w, NULL, &ss);
  w.pattern = pat;
  w.reply_on_half = 1;
  call = start(&p, "/t.L/Up");
  assert_int_equal(sgrpc_call_send(call, pat, len, SGRPC_SEND_END), 0);
  pair_run(&p, 100000);
  assert_int_equal(w.c.closed, 1);
  assert_int_equal(w.s.closed, 1);
  if (want_ok) {
    assert_int_equal(w.s.messages, 1);
    assert_int_equal(w.s.last_len, len);
    assert_int_equal(w.c.status, SGRPC_STATUS_OK);
    assert_int_equal(w.s.status, SGRPC_STATUS_OK);
  } else {
    /* the receiver refuses it without delivering a byte of it... */
    assert_int_equal(w.s.messages, 0);
    assert_int_equal(w.s.status, SGRPC_STATUS_RESOURCE_EXHAUSTED);
    /* ...and the sender learns why */
    assert_int_equal(w.c.status, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  }
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  assert_true(sgrpc_conn_is_alive(p.cli)); /* a call-level failure only */
  pair_free(&p);
}

/* Server replies with one message of len to a client with the limit. */
static void server_to_client(uint32_t limit, size_t len, const uint8_t *pat, int want_ok) {
  sgrpc_settings cs;
  pair p;
  world w;
  sgrpc_call *call;
  sgrpc_settings_default(&cs);
  if (limit) cs.max_recv_message_size = limit;
  world_pair(&p, &w, &cs, NULL);
  w.pattern = pat;
  w.reply_on_half = 1;
  w.reply_len = len;
  w.status_later = 1; /* the server waits: it must learn of a failure */
  call = start(&p, "/t.L/Down");
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"", 0, SGRPC_SEND_END), 0);
  pair_run(&p, 100000);
  if (want_ok) {
    sgrpc_status st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(w.s.closed, 0);
    assert_non_null(w.s.call);
    assert_int_equal(sgrpc_call_send_status(w.s.call, &st), 0);
    pair_run(&p, 1000);
  }
  assert_int_equal(w.c.closed, 1);
  assert_int_equal(w.s.closed, 1);
  if (want_ok) {
    assert_int_equal(w.c.messages, 1);
    assert_int_equal(w.c.last_len, len);
    assert_int_equal(w.c.status, SGRPC_STATUS_OK);
    assert_int_equal(w.s.status, SGRPC_STATUS_OK);
  } else {
    assert_int_equal(w.c.messages, 0);
    assert_int_equal(w.c.status, SGRPC_STATUS_RESOURCE_EXHAUSTED);
    /* the client resets the stream: the server learns the call is over */
    assert_int_equal(w.s.status, SGRPC_STATUS_CANCELLED);
    assert_true(w.s.reset);
  }
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  assert_true(sgrpc_conn_is_alive(p.cli));
  pair_free(&p);
}

static void test_recv_limit_default(void **state) {
  sgrpc_settings s;
  uint8_t *pat;
  (void)state;
  sgrpc_settings_default(&s);
  assert_int_equal(s.max_recv_message_size, 4 * MIB);
  pat = malloc(4 * MIB + 1);
  fill(pat, 4 * MIB + 1);
  client_to_server(0, 4 * MIB, pat, 1);
  client_to_server(0, 4 * MIB + 1, pat, 0);
  server_to_client(0, 4 * MIB, pat, 1);
  server_to_client(0, 4 * MIB + 1, pat, 0);
  free(pat);
}

static void test_recv_limit_small(void **state) {
  uint8_t pat[1001];
  (void)state;
  fill(pat, sizeof(pat));
  client_to_server(1000, 1000, pat, 1);
  client_to_server(1000, 1001, pat, 0);
  server_to_client(1000, 1000, pat, 1);
  server_to_client(1000, 1001, pat, 0);
  client_to_server(1, 0, pat, 1); /* an empty message always fits */
}

/* ---- max_send_message_size ---- */

static void test_send_limit(void **state) {
  sgrpc_settings cs, ss;
  pair p;
  world w;
  sgrpc_call *call;
  uint8_t m[101];
  (void)state;
  memset(m, 'm', sizeof(m));
  sgrpc_settings_default(&cs);
  assert_int_equal(cs.max_send_message_size, INT32_MAX);
  cs.max_send_message_size = 100;
  ss = cs;
  world_pair(&p, &w, &cs, &ss);
  call = start(&p, "/t.L/Send");
  assert_int_equal(sgrpc_call_send(call, m, 101, 0), SGRPC_ERR_MESSAGE_TOO_LARGE);
  assert_int_equal(sgrpc_call_send(call, m, 100, 0), 0);
  /* refused: nothing queued, the call goes on */
  assert_int_equal(sgrpc_call_send(call, m, 101, SGRPC_SEND_END), SGRPC_ERR_MESSAGE_TOO_LARGE);
  assert_int_equal(sgrpc_call_send(call, m, 1, SGRPC_SEND_END), 0);
  w.release_on_close = 1;
  pair_run(&p, 1000);
  assert_int_equal(w.s.messages, 2);
  assert_int_equal(w.s.half_closed, 1);
  /* the server's own limit applies to its sends */
  assert_non_null(w.s.call);
  assert_int_equal(sgrpc_call_send(w.s.call, m, 101, 0), SGRPC_ERR_MESSAGE_TOO_LARGE);
  assert_int_equal(sgrpc_call_send(w.s.call, m, 100, 0), 0);
  {
    sgrpc_status st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(sgrpc_call_send_status(w.s.call, &st), 0);
  }
  pair_run(&p, 1000);
  assert_int_equal(w.c.messages, 1);
  assert_int_equal(w.c.last_len, 100);
  assert_int_equal(w.c.status, SGRPC_STATUS_OK);
  pair_free(&p);
}

/* ---- max_concurrent_streams ---- */

typedef struct conc {
  int open_now, open_max, done_ok, done_other, srv_closed, refused;
  int status[64];
} conc;

static void conc_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  conc *w = ud;
  intptr_t idx = (intptr_t)ev->call_user_data;
  if (conn == p->srv) {
    switch (ev->type) {
    case SGRPC_EV_CALL_NEW:
      w->open_now++;
      if (w->open_now > w->open_max) w->open_max = w->open_now;
      break;
    case SGRPC_EV_HALF_CLOSE: {
      sgrpc_status st;
      memset(&st, 0, sizeof(st));
      assert_int_equal(sgrpc_call_send(ev->call, (const uint8_t *)"r", 1, 0), 0);
      assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
      break;
    }
    case SGRPC_EV_CLOSE:
      w->open_now--;
      w->srv_closed++;
      sgrpc_call_release(ev->call);
      break;
    default: break;
    }
    return;
  }
  if (ev->type == SGRPC_EV_CLOSE) {
    w->status[idx] = ev->u.close.status.code;
    if (ev->u.close.status.code == SGRPC_STATUS_OK)
      w->done_ok++;
    else
      w->done_other++;
    if (ev->u.close.retry_safe) w->refused++;
    sgrpc_call_release(ev->call);
  }
}

static void concurrent(int handshake_first, conc *w) {
  sgrpc_settings ss;
  pair p;
  intptr_t i;
  sgrpc_settings_default(&ss);
  ss.max_concurrent_streams = 4;
  memset(w, 0, sizeof(*w));
  assert_int_equal(pair_init(&p, NULL, &ss, NULL), 0);
  p.on_event = conc_event;
  p.ud = w;
  if (handshake_first) pair_run(&p, 10); /* the client learns the limit */
  for (i = 0; i < 40; i++) {
    sgrpc_call_opts o;
    sgrpc_call *call;
    memset(&o, 0, sizeof(o));
    o.path = "/t.L/Conc";
    o.user_data = (void *)i;
    assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"q", 1, SGRPC_SEND_END), 0);
  }
  pair_run(&p, 10000);
  assert_int_equal(w->done_ok + w->done_other, 40);
  assert_true(w->open_max <= 4);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  pair_free(&p);
}

static void test_concurrent_streams_after_settings(void **state) {
  conc w;
  (void)state;
  concurrent(1, &w);
  assert_int_equal(w.done_ok, 40);
  assert_int_equal(w.srv_closed, 40);
  assert_int_equal(w.open_max, 4);
}

/* 40 calls started on a fresh connection, before the server's SETTINGS
 * arrived. nghttp2 assumes 100 concurrent streams until then, so all 40
 * requests leave in the first flight and the server refuses the ones over
 * its limit with REFUSED_STREAM. This test requires what the brief asks
 * (all 40 complete OK); it fails while the engine lets the first flight
 * exceed the limit. The refused calls are at least marked retry_safe. */
static void test_concurrent_streams_first_flight(void **state) {
  conc w;
  int i;
  (void)state;
  concurrent(0, &w);
  for (i = 0; i < 40; i++) {
    /* whatever does not succeed must be a safe-to-retry refusal */
    if (w.status[i] != SGRPC_STATUS_OK) assert_int_equal(w.status[i], SGRPC_STATUS_UNAVAILABLE);
  }
  assert_int_equal(w.refused, w.done_other);
  if (w.done_ok != 40)
    fail_msg("only %d of 40 calls completed OK, %d were refused (UNAVAILABLE, retry_safe)",
             w.done_ok, w.refused);
}

/* ---- version ---- */

static void test_version(void **state) {
  int num = -1;
  char want[32];
  (void)state;
  assert_string_equal(sgrpc_version(&num), SGRPC_VERSION);
  assert_int_equal(num, SGRPC_VERSION_NUM);
  snprintf(want, sizeof(want), "%d.%d.%d", SGRPC_VERSION_NUM >> 16,
           (SGRPC_VERSION_NUM >> 8) & 0xff, SGRPC_VERSION_NUM & 0xff);
  assert_string_equal(SGRPC_VERSION, want);
  assert_string_equal(sgrpc_version(NULL), SGRPC_VERSION);
}

/* ---- settings versions ---- */

/* sgrpc_settings_default fills the header's version; _versioned with an
 * unknown version leaves every field alone (the caller's struct may be
 * shorter) and connections refuse it; the header's own version works. */
static void test_settings_versions(void **state) {
  sgrpc_settings s, d;
  sgrpc_conn *c = NULL;
  (void)state;
  sgrpc_settings_default(&d);
  assert_int_equal(d.version, SGRPC_SETTINGS_VERSION);
  assert_int_equal(d.version, SGRPC_SETTINGS_V2);
  assert_int_equal(d.max_recv_message_size, 4u << 20);
  assert_int_equal(d.max_queued_events, 32);
  assert_int_equal(d.conn_memory_budget, 64u << 20);
  assert_null(d.shared_budget);

  memset(&s, 0x5a, sizeof(s));
  sgrpc_settings_default_versioned(SGRPC_SETTINGS_V2, &s);
  assert_memory_equal(&s, &d, sizeof(s));

  memset(&s, 0x5a, sizeof(s));
  sgrpc_settings_default_versioned(SGRPC_SETTINGS_VERSION + 1, &s);
  assert_int_equal(s.version, SGRPC_SETTINGS_VERSION + 1);
  assert_int_equal(s.max_recv_message_size, 0x5a5a5a5au);
  assert_int_equal(sgrpc_conn_client_new(&c, &s, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);
  assert_null(c);
  sgrpc_settings_default_versioned(0, &s);
  assert_int_equal(s.version, 0);
  assert_int_equal(sgrpc_conn_server_new(&c, &s, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_settings_default_versioned(-1, &s);
  assert_int_equal(sgrpc_conn_server_new(&c, &s, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_settings_default_versioned(1, NULL); /* no-op */

  /* a version-2 struct (this header's) is taken */
  assert_int_equal(sgrpc_conn_server_new(&c, &d, NULL, NOW), 0);
  sgrpc_conn_del(c);
}

/* A caller compiled against version 1 has a struct that ends before
 * conn_memory_budget: _versioned(V1) fills only its fields, and the
 * engine reads only those, giving the version-2 fields their defaults.
 * The bytes after a version-1 struct are garbage here (a shared_budget
 * read from them would be a wild pointer): both ends run a 1 MiB call
 * each way and end OK. */
static void test_settings_version1_caller(void **state) {
  static uint8_t pat[1u << 20];
  sgrpc_settings s1;
  size_t v1_size = offsetof(sgrpc_settings, conn_memory_budget);
  pair p;
  world w;
  sgrpc_call *call;
  (void)state;
  memset(&s1, 0x5a, sizeof(s1));
  sgrpc_settings_default_versioned(SGRPC_SETTINGS_V1, &s1);
  assert_int_equal(s1.version, SGRPC_SETTINGS_V1);
  assert_int_equal(s1.max_recv_message_size, 4u << 20);
  /* the version-2 fields were not touched */
  assert_true(s1.conn_memory_budget == (size_t)0x5a5a5a5a5a5a5a5aull);
  assert_true((uintptr_t)s1.shared_budget == (uintptr_t)0x5a5a5a5a5a5a5a5aull);
  assert_true(v1_size < sizeof(s1));

  fill(pat, sizeof(pat));
  world_pair(&p, &w, &s1, &s1);
  w.pattern = pat;
  w.reply_on_half = 1;
  w.reply_len = sizeof(pat);
  call = start(&p, "/t.L/V1");
  assert_int_equal(sgrpc_call_send(call, pat, sizeof(pat), SGRPC_SEND_END), 0);
  pair_run(&p, 100000);
  assert_int_equal(w.s.messages, 1);
  assert_int_equal(w.c.messages, 1);
  assert_int_equal(w.c.last_len, sizeof(pat));
  assert_int_equal(w.c.status, SGRPC_STATUS_OK);
  assert_int_equal(w.s.status, SGRPC_STATUS_OK);
  pair_free(&p);
}

/* Zero means the default in every field: a struct zeroed but for its
 * version makes connections identical to the defaults (same first
 * output: SETTINGS with the windows, header list size and stream limit,
 * the connection WINDOW_UPDATE; same timers; same keepalive), and a call
 * between two such ends carries 1 MiB messages (recv limit 4 MiB,
 * windows, send buffer) each way and ends OK. */
static void out_of(sgrpc_conn *c, uint8_t *buf, size_t cap, size_t *len) {
  sgrpc_ssize n = sgrpc_conn_out_copy(c, buf, cap);
  assert_true(n > 0);
  *len = (size_t)n;
}

static void test_settings_zero_means_default(void **state) {
  static uint8_t pat[1u << 20];
  sgrpc_settings z, d;
  sgrpc_conn *cz, *cd;
  uint8_t bz[256], bd[256];
  size_t lz, ld;
  int role;
  pair p;
  world w;
  sgrpc_call *call;
  (void)state;
  memset(&z, 0, sizeof(z));
  z.version = SGRPC_SETTINGS_VERSION;
  sgrpc_settings_default(&d);
  for (role = 0; role < 2; role++) {
    int (*mk)(sgrpc_conn **, const sgrpc_settings *, const sgrpc_mem *, int64_t) =
        role ? sgrpc_conn_server_new : sgrpc_conn_client_new;
    assert_int_equal(mk(&cz, &z, NULL, NOW), 0);
    assert_int_equal(mk(&cd, &d, NULL, NOW), 0);
    out_of(cz, bz, sizeof(bz), &lz);
    out_of(cd, bd, sizeof(bd), &ld);
    assert_int_equal(lz, ld);
    assert_memory_equal(bz, bd, lz);
    assert_true(sgrpc_conn_next_expiry(cz) == sgrpc_conn_next_expiry(cd));
    assert_true(sgrpc_conn_next_expiry(cz) == NOW + 20 * 1000000000LL);
    assert_true(sgrpc_conn_keepalive_time(cz) == sgrpc_conn_keepalive_time(cd));
    sgrpc_conn_del(cz);
    sgrpc_conn_del(cd);
  }

  fill(pat, sizeof(pat));
  world_pair(&p, &w, &z, &z);
  w.pattern = pat;
  w.reply_on_half = 1;
  w.reply_len = sizeof(pat);
  call = start(&p, "/t.L/Zero");
  assert_int_equal(sgrpc_call_send(call, pat, sizeof(pat), SGRPC_SEND_END), 0);
  pair_run(&p, 100000);
  assert_int_equal(w.s.messages, 1);
  assert_int_equal(w.s.last_len, sizeof(pat));
  assert_int_equal(w.c.messages, 1);
  assert_int_equal(w.c.last_len, sizeof(pat));
  assert_int_equal(w.c.status, SGRPC_STATUS_OK);
  assert_int_equal(w.s.status, SGRPC_STATUS_OK);
  pair_free(&p);
}

/* ---- invalid settings ---- */

static void test_invalid_settings(void **state) {
  sgrpc_settings s;
  sgrpc_conn *c = (sgrpc_conn *)&s; /* must be overwritten with NULL */
  sgrpc_mem mem;
  failmem fm;
  int role;
  (void)state;
  for (role = 0; role < 2; role++) {
    int (*mk)(sgrpc_conn **, const sgrpc_settings *, const sgrpc_mem *, int64_t) =
        role ? sgrpc_conn_server_new : sgrpc_conn_client_new;
    sgrpc_settings_default(&s);
    s.version = SGRPC_SETTINGS_VERSION + 1;
    c = (sgrpc_conn *)&s;
    assert_int_equal(mk(&c, &s, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);
    assert_null(c);
    s.version = 0;
    assert_int_equal(mk(&c, &s, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);

    sgrpc_settings_default(&s);
    s.stream_window = 65534;
    assert_int_equal(mk(&c, &s, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);
    s.stream_window = (uint32_t)INT32_MAX + 1;
    assert_int_equal(mk(&c, &s, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);

    sgrpc_settings_default(&s);
    s.connection_window = 1000;
    assert_int_equal(mk(&c, &s, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);
    s.connection_window = UINT32_MAX;
    assert_int_equal(mk(&c, &s, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);

    /* the smallest legal windows work */
    sgrpc_settings_default(&s);
    s.stream_window = 65535;
    s.connection_window = 65535;
    assert_int_equal(mk(&c, &s, NULL, NOW), 0);
    assert_non_null(c);
    sgrpc_conn_del(c);

    /* NULL out-pointer, incomplete allocator */
    assert_int_equal(mk(NULL, NULL, NULL, NOW), SGRPC_ERR_INVALID_ARGUMENT);
    failmem_init(&fm, &mem);
    mem.realloc = NULL;
    assert_int_equal(mk(&c, NULL, &mem, NOW), SGRPC_ERR_INVALID_ARGUMENT);
    assert_int_equal(fm.live, 0);
    /* a rejected setting allocates nothing that outlives the call */
    failmem_init(&fm, &mem);
    sgrpc_settings_default(&s);
    s.stream_window = 1;
    assert_int_equal(mk(&c, &s, &mem, NOW), SGRPC_ERR_INVALID_ARGUMENT);
    assert_int_equal(fm.live, 0);
  }
}

/* ---- API misuse ---- */

static void test_misuse_codes(void **state) {
  pair p;
  world w;
  sgrpc_call *call, *call2;
  sgrpc_call_opts o;
  sgrpc_event ev;
  sgrpc_status st;
  const uint8_t *d;
  uint8_t buf[8];
  sgrpc_md md = SGRPC_MD_STR("x-a", "b");
  sgrpc_md bad = SGRPC_MD_STR("X-Upper", "b");
  (void)state;
  memset(&st, 0, sizeof(st));
  world_pair(&p, &w, NULL, NULL);
  w.release_on_close = 0;

  /* NULL arguments */
  memset(&o, 0, sizeof(o));
  o.path = "/t.L/M";
  call = (sgrpc_call *)&o;
  assert_int_equal(sgrpc_call_start(NULL, &o, p.now, &call), SGRPC_ERR_INVALID_ARGUMENT);
  assert_null(call);
  assert_int_equal(sgrpc_call_start(p.cli, NULL, p.now, &call), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  o.path = NULL;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), SGRPC_ERR_INVALID_ARGUMENT);
  o.path = "no-slash";
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), SGRPC_ERR_INVALID_ARGUMENT);
  o.path = "/t.L/M";
  o.md = NULL;
  o.md_count = 1;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), SGRPC_ERR_INVALID_ARGUMENT);
  o.md = &bad;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), SGRPC_ERR_BAD_METADATA);
  o.md = NULL;
  o.md_count = 0;
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0); /* nothing was started */
  o.deadline = p.now; /* already passed: a call that ends at once (test_deadline) */
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  sgrpc_call_release(call);
  while (sgrpc_conn_next_event(p.cli, &ev) == 1) { /* the released call's CLOSE is dropped */
  }
  o.deadline = 0;
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);

  assert_int_equal(sgrpc_call_send(NULL, buf, 1, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_close_send(NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send_headers(NULL, NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send_status(NULL, &st), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_cancel(NULL), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_call_release(NULL); /* a no-op */
  assert_int_equal(sgrpc_conn_recv(NULL, buf, 1, p.now), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_recv(p.cli, NULL, 1, p.now), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_next_event(NULL, &ev), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_next_event(p.cli, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_out_peek(NULL, &d), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_out_peek(p.cli, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_out_copy(p.cli, NULL, 5), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_out_consume(NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  /* more than was peeked (SIZE_MAX: a 64-bit shift would not fit 32-bit size_t) */
  assert_int_equal(sgrpc_conn_out_consume(p.cli, SIZE_MAX), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_goaway(p.cli, 0, NULL, 3), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_goaway(NULL, 0, NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_ping(NULL, 1), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_handle_expiry(NULL, 1), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_transport_closed(NULL), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_conn_del(NULL);

  /* a client-only function on a server connection */
  assert_int_equal(sgrpc_call_start(p.srv, &o, p.now, &call), SGRPC_ERR_INVALID_STATE);

  /* the client call: send after SEND_END, server-only functions */
  o.path = "/t.L/M";
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  assert_int_equal(sgrpc_call_send(call, NULL, 3, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send(call, buf, 1, 0x80), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send_status(call, &st), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_call_send_headers(call, &md, 1), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_call_send(call, buf, 1, SGRPC_SEND_END), 0);
  assert_int_equal(sgrpc_call_send(call, buf, 1, 0), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_call_send(call, buf, 1, SGRPC_SEND_END), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_call_close_send(call), SGRPC_ERR_INVALID_STATE);
  pair_run(&p, 100);
  assert_int_equal(w.s.new_calls, 1);
  assert_int_equal(w.s.half_closed, 1);
  assert_non_null(w.s.call);

  /* the server call */
  assert_int_equal(sgrpc_call_close_send(w.s.call), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_call_send(w.s.call, buf, 1, SGRPC_SEND_END), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send_headers(w.s.call, &bad, 1), SGRPC_ERR_BAD_METADATA);
  assert_int_equal(sgrpc_call_send_headers(w.s.call, &md, 1), 0);
  assert_int_equal(sgrpc_call_send_headers(w.s.call, &md, 1), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_call_send_headers(w.s.call, NULL, 0), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_call_send(w.s.call, buf, 2, 0), 0);
  st.code = 17;
  assert_int_equal(sgrpc_call_send_status(w.s.call, &st), SGRPC_ERR_INVALID_ARGUMENT);
  st.code = -1;
  assert_int_equal(sgrpc_call_send_status(w.s.call, &st), SGRPC_ERR_INVALID_ARGUMENT);
  st.code = 0;
  st.details_len = 4; /* details NULL */
  assert_int_equal(sgrpc_call_send_status(w.s.call, &st), SGRPC_ERR_INVALID_ARGUMENT);
  st.details_len = 0;
  assert_int_equal(sgrpc_call_send_status(w.s.call, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send_status(w.s.call, &st), 0);
  assert_int_equal(sgrpc_call_send_status(w.s.call, &st), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_call_send(w.s.call, buf, 1, 0), SGRPC_ERR_INVALID_STATE);
  pair_run(&p, 100);
  assert_int_equal(w.c.closed, 1);
  assert_int_equal(w.c.status, SGRPC_STATUS_OK);
  assert_int_equal(w.c.messages, 1);
  assert_int_equal(w.s.closed, 1);

  /* closed (final event delivered) but not yet released */
  assert_int_equal(sgrpc_call_send(call, buf, 1, 0), SGRPC_ERR_CALL_CLOSED);
  assert_int_equal(sgrpc_call_close_send(call), SGRPC_ERR_CALL_CLOSED);
  assert_int_equal(sgrpc_call_cancel(call), SGRPC_ERR_CALL_CLOSED);
  assert_int_equal(sgrpc_call_send(w.s.call, buf, 1, 0), SGRPC_ERR_CALL_CLOSED);
  assert_int_equal(sgrpc_call_send_status(w.s.call, &st), SGRPC_ERR_CALL_CLOSED);
  assert_int_equal(sgrpc_call_send_headers(w.s.call, NULL, 0), SGRPC_ERR_CALL_CLOSED);
  assert_int_equal(sgrpc_call_cancel(w.s.call), SGRPC_ERR_CALL_CLOSED);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 1);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 1);
  sgrpc_call_release(call);
  sgrpc_call_release(w.s.call);
  w.s.call = NULL;
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);

  /* cancel twice: the second is CALL_CLOSED; the peer sees CANCELLED */
  memset(&w.c, 0, sizeof(w.c));
  memset(&w.s, 0, sizeof(w.s));
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call2), 0);
  assert_int_equal(sgrpc_call_send(call2, buf, 1, 0), 0);
  pair_run(&p, 100);
  assert_int_equal(w.s.new_calls, 1);
  assert_int_equal(sgrpc_call_cancel(call2), 0);
  assert_int_equal(sgrpc_call_cancel(call2), SGRPC_ERR_CALL_CLOSED);
  assert_int_equal(sgrpc_call_send(call2, buf, 1, 0), SGRPC_ERR_CALL_CLOSED);
  pair_run(&p, 100);
  assert_int_equal(w.c.closed, 1);
  assert_int_equal(w.c.status, SGRPC_STATUS_CANCELLED);
  assert_int_equal(w.s.closed, 1);
  assert_int_equal(w.s.status, SGRPC_STATUS_CANCELLED);
  assert_true(w.s.reset);
  /* server-side cancel twice */
  sgrpc_call_release(call2);
  sgrpc_call_release(w.s.call);
  memset(&w.c, 0, sizeof(w.c));
  memset(&w.s, 0, sizeof(w.s));
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call2), 0);
  assert_int_equal(sgrpc_call_send(call2, buf, 1, 0), 0);
  pair_run(&p, 100);
  assert_non_null(w.s.call);
  assert_int_equal(sgrpc_call_cancel(w.s.call), 0);
  assert_int_equal(sgrpc_call_cancel(w.s.call), SGRPC_ERR_CALL_CLOSED);
  pair_run(&p, 100);
  assert_int_equal(w.c.status, SGRPC_STATUS_CANCELLED);
  assert_int_equal(w.s.status, SGRPC_STATUS_CANCELLED);
  sgrpc_call_release(call2);
  sgrpc_call_release(w.s.call);
  pair_run(&p, 100);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);

  /* recv with events pending */
  {
    const uint8_t ping[] = {0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(sgrpc_conn_ping(p.cli, 42), 0);
    pair_pump(&p, p.cli, p.srv);
    /* hand-deliver the server's answer without draining */
    {
      ssize_t n = sgrpc_conn_out_peek(p.srv, &d);
      assert_true(n > 0);
      assert_int_equal(sgrpc_conn_recv(p.cli, d, (size_t)n, p.now), n);
      sgrpc_conn_out_consume(p.srv, (size_t)n);
    }
    assert_int_equal(sgrpc_conn_recv(p.cli, ping, sizeof(ping), p.now), SGRPC_ERR_EVENTS_PENDING);
    assert_int_equal(sgrpc_conn_next_event(p.cli, &ev), 1);
    assert_int_equal(ev.type, SGRPC_EV_PING_ACK);
    assert_true(ev.u.ping_ack.opaque == 42);
  }
  pair_free(&p);
}

/* Releasing an open call cancels it (the peer sees CANCELLED) and frees
 * it; no event of it is delivered afterwards. */
static void test_release_open_call(void **state) {
  pair p;
  world w;
  sgrpc_call *call;
  int side_;
  (void)state;
  for (side_ = 0; side_ < 2; side_++) {
    world_pair(&p, &w, NULL, NULL);
    call = start(&p, "/t.L/Rel");
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, 0), 0);
    pair_run(&p, 100);
    assert_int_equal(w.s.new_calls, 1);
    assert_int_equal(w.s.messages, 1);
    assert_int_equal(sgrpc_conn_call_count(p.cli), 1);
    assert_int_equal(sgrpc_conn_call_count(p.srv), 1);
    if (side_ == 0) {
      /* the client lets go */
      sgrpc_call_release(call);
      pair_run(&p, 100);               /* freed once its RST_STREAM is written */
      assert_int_equal(w.c.closed, 0); /* released: no event for it */
      assert_int_equal(w.s.closed, 1);
      assert_int_equal(w.s.status, SGRPC_STATUS_CANCELLED);
      assert_true(w.s.reset);
    } else {
      /* the server lets go */
      assert_non_null(w.s.call);
      sgrpc_call_release(w.s.call);
      pair_run(&p, 100);
      assert_int_equal(w.s.closed, 0);
      assert_int_equal(w.c.closed, 1);
      assert_int_equal(w.c.status, SGRPC_STATUS_CANCELLED);
    }
    assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
    assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
    assert_true(sgrpc_conn_is_alive(p.cli));
    pair_free(&p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_recv_limit_default),
      cmocka_unit_test(test_recv_limit_small),
      cmocka_unit_test(test_send_limit),
      cmocka_unit_test(test_concurrent_streams_after_settings),
      cmocka_unit_test(test_concurrent_streams_first_flight),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_settings_versions),
      cmocka_unit_test(test_settings_version1_caller),
      cmocka_unit_test(test_settings_zero_means_default),
      cmocka_unit_test(test_invalid_settings),
      cmocka_unit_test(test_misuse_codes),
      cmocka_unit_test(test_release_open_call),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
