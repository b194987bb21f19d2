/*
 * Metadata through two engines (in-memory pair): binary values, order,
 * many entries, header-list limits in both directions, grpc-message
 * percent-encoding over every byte, grpc-status-details-bin. One raw-peer
 * test checks the percent-encoded form on the wire.
 */
#include "rawpeer.h"
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 256

/* A deep copy of a metadata list. */
typedef struct mdlist {
  sgrpc_md *md;
  size_t n;
  int seen;
} mdlist;

static void mdlist_set(mdlist *l, const sgrpc_md *md, size_t n) {
  size_t i;
  l->md = calloc(n ? n : 1, sizeof(*l->md));
  assert_non_null(l->md);
  for (i = 0; i < n; i++) {
    char *k = malloc(md[i].key_len + 1);
    uint8_t *v = malloc(md[i].value_len + 1);
    assert_true(k && v);
    memcpy(k, md[i].key, md[i].key_len + 1); /* events NUL-terminate keys */
    memcpy(v, md[i].value, md[i].value_len + 1); /* ... and values */
    assert_int_equal(k[md[i].key_len], 0);
    assert_int_equal(v[md[i].value_len], 0);
    l->md[i].key = k;
    l->md[i].key_len = md[i].key_len;
    l->md[i].value = v;
    l->md[i].value_len = md[i].value_len;
  }
  l->n = n;
  l->seen = 1;
}

static void mdlist_free(mdlist *l) {
  size_t i;
  for (i = 0; i < l->n; i++) {
    free((void *)l->md[i].key);
    free((void *)l->md[i].value);
  }
  free(l->md);
  memset(l, 0, sizeof(*l));
}

static void assert_md_equal(const mdlist *got, const sgrpc_md *want, size_t n) {
  size_t i;
  assert_true(got->seen);
  if (got->n != n) fail_msg("metadata count %zu, want %zu", got->n, n);
  for (i = 0; i < n; i++) {
    if (got->md[i].key_len != want[i].key_len ||
        memcmp(got->md[i].key, want[i].key, want[i].key_len) != 0)
      fail_msg("metadata %zu: key %s, want %.*s", i, got->md[i].key, (int)want[i].key_len,
               want[i].key);
    if (got->md[i].value_len != want[i].value_len ||
        (want[i].value_len && memcmp(got->md[i].value, want[i].value, want[i].value_len) != 0))
      fail_msg("metadata %zu (%s): value differs (len %zu, want %zu)", i, got->md[i].key,
               got->md[i].value_len, want[i].value_len);
  }
}

/* What the server app sends, and what both sides saw. */
typedef struct world {
  /* server app behaviour */
  const sgrpc_md *resp_md;
  size_t resp_md_n;
  sgrpc_status status;
  /* observations */
  mdlist srv_md;        /* CALL_NEW */
  mdlist cli_hdr_md;    /* HEADERS */
  mdlist cli_trl_md;    /* CLOSE */
  int srv_new, srv_close, srv_close_code;
  int cli_close, cli_code, cli_headers;
  char *cli_msg;
  size_t cli_msg_len;
  uint8_t *cli_details;
  size_t cli_details_len;
  int cli_details_null;
} world;

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  if (conn == p->srv) {
    switch (ev->type) {
    case SGRPC_EV_CALL_NEW:
      w->srv_new++;
      mdlist_set(&w->srv_md, ev->u.call_new.md, ev->u.call_new.md_count);
      assert_int_equal(sgrpc_call_send_headers(ev->call, w->resp_md, w->resp_md_n), 0);
      break;
    case SGRPC_EV_HALF_CLOSE:
      assert_int_equal(sgrpc_call_send(ev->call, (const uint8_t *)"r", 1, 0), 0);
      assert_int_equal(sgrpc_call_send_status(ev->call, &w->status), 0);
      break;
    case SGRPC_EV_CLOSE:
      w->srv_close++;
      w->srv_close_code = ev->u.close.status.code;
      sgrpc_call_release(ev->call);
      break;
    default:
      break;
    }
    return;
  }
  switch (ev->type) {
  case SGRPC_EV_HEADERS:
    w->cli_headers++;
    mdlist_set(&w->cli_hdr_md, ev->u.headers.md, ev->u.headers.md_count);
    break;
  case SGRPC_EV_CLOSE: {
    const sgrpc_status_info *st = &ev->u.close.status;
    w->cli_close++;
    w->cli_code = st->code;
    w->cli_msg = malloc(st->message_len + 1);
    assert_non_null(w->cli_msg);
    memcpy(w->cli_msg, st->message, st->message_len + 1);
    w->cli_msg_len = st->message_len;
    w->cli_details_null = st->details == NULL;
    w->cli_details = malloc(st->details_len + 1);
    assert_non_null(w->cli_details);
    if (st->details_len) memcpy(w->cli_details, st->details, st->details_len);
    w->cli_details_len = st->details_len;
    mdlist_set(&w->cli_trl_md, st->md, st->md_count);
    sgrpc_call_release(ev->call);
    break;
  }
  default:
    break;
  }
}

static void world_free(world *w) {
  mdlist_free(&w->srv_md);
  mdlist_free(&w->cli_hdr_md);
  mdlist_free(&w->cli_trl_md);
  free(w->cli_msg);
  free(w->cli_details);
}

/* One unary call: request metadata req_md; the server answers with the
 * world's headers and status. cs/ss: settings or NULL. */
static void run_call(world *w, const sgrpc_md *req_md, size_t req_n, const sgrpc_settings *cs,
                     const sgrpc_settings *ss) {
  pair p;
  sgrpc_call_opts o;
  sgrpc_call *call;
  assert_int_equal(pair_init(&p, cs, ss, NULL), 0);
  p.on_event = on_event;
  p.ud = w;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.md = req_md;
  o.md_count = req_n;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"q", 1, SGRPC_SEND_END), 0);
  pair_run(&p, ROUNDS);
  assert_int_equal(w->cli_close, 1);
  assert_int_equal(p.cli_err, 0);
  assert_int_equal(p.srv_err, 0);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  pair_free(&p);
}

/* ------------------------------------------------------------------ */

/* SGRPC_MD_STR counts literal lengths at compile time; sgrpc_md_str takes
 * run-time strings (a pointer in SGRPC_MD_STR does not compile: ctest
 * engine_md_str_literal_only). */
static void test_md_str_forms(void **state) {
  static const sgrpc_md lit[] = {SGRPC_MD_STR("x-key", "value 1"), SGRPC_MD_STR("k", "")};
  char key[16], val[32];
  sgrpc_md m;
  (void)state;
  assert_int_equal(lit[0].key_len, 5);
  assert_int_equal(lit[0].value_len, 7);
  assert_memory_equal(lit[0].value, "value 1", 7);
  assert_int_equal(lit[1].key_len, 1);
  assert_int_equal(lit[1].value_len, 0);
  strcpy(key, "x-longer-key");
  strcpy(val, "a run-time value");
  m = sgrpc_md_str(key, val);
  assert_ptr_equal(m.key, key);
  assert_int_equal(m.key_len, 12);
  assert_ptr_equal(m.value, (const uint8_t *)val);
  assert_int_equal(m.value_len, 16);
  assert_int_equal(sgrpc_md_check(&m), 0);
}

static void test_binary_values(void **state) {
  enum { NLEN = 65 };
  static uint8_t vals[NLEN + 1][256];
  static char keys[NLEN + 1][16];
  sgrpc_md md[NLEN + 1];
  world w;
  size_t i, j;
  (void)state;
  /* lengths 0..64, each filled with a different walk through the bytes */
  for (i = 0; i < NLEN; i++) {
    for (j = 0; j < i; j++) vals[i][j] = (uint8_t)(i * 31 + j * 97 + (j & 1 ? 0x80 : 0));
    snprintf(keys[i], sizeof(keys[i]), "x-l%zu-bin", i);
    md[i].key = keys[i];
    md[i].key_len = strlen(keys[i]);
    md[i].value = vals[i];
    md[i].value_len = i;
  }
  /* every byte value once, in order */
  for (j = 0; j < 256; j++) vals[NLEN][j] = (uint8_t)j;
  snprintf(keys[NLEN], sizeof(keys[NLEN]), "all-bytes-bin");
  md[NLEN].key = keys[NLEN];
  md[NLEN].key_len = strlen(keys[NLEN]);
  md[NLEN].value = vals[NLEN];
  md[NLEN].value_len = 256;

  memset(&w, 0, sizeof(w));
  w.resp_md = md;
  w.resp_md_n = NLEN + 1;
  w.status.md = md + NLEN - 20; /* lengths 45..64 and all bytes as trailers */
  w.status.md_count = 21;
  run_call(&w, md, NLEN + 1, NULL, NULL);
  assert_int_equal(w.cli_code, SGRPC_STATUS_OK);
  assert_md_equal(&w.srv_md, md, NLEN + 1);
  assert_md_equal(&w.cli_hdr_md, md, NLEN + 1);
  assert_md_equal(&w.cli_trl_md, md + NLEN - 20, 21);
  world_free(&w);
}

static void test_duplicates_in_order(void **state) {
  static const sgrpc_md md[] = {SGRPC_MD_STR("k", "1"), SGRPC_MD_STR("j", "x"),
                                SGRPC_MD_STR("k", "2"), SGRPC_MD_STR("k-bin", "\x01"),
                                SGRPC_MD_STR("k", "3"), SGRPC_MD_STR("k-bin", "\x02"),
                                SGRPC_MD_STR("j", "y"), SGRPC_MD_STR("k", "1")};
  world w;
  (void)state;
  memset(&w, 0, sizeof(w));
  w.resp_md = md;
  w.resp_md_n = 8;
  w.status.md = md;
  w.status.md_count = 8;
  run_call(&w, md, 8, NULL, NULL);
  assert_md_equal(&w.srv_md, md, 8);
  assert_md_equal(&w.cli_hdr_md, md, 8);
  assert_md_equal(&w.cli_trl_md, md, 8);
  world_free(&w);
}

static void test_many_entries(void **state) {
  enum { N = 300 };
  static char keys[N][16], vals[N][16];
  sgrpc_md md[N];
  world w;
  sgrpc_settings s;
  size_t i;
  (void)state;
  for (i = 0; i < N; i++) {
    snprintf(keys[i], sizeof(keys[i]), "x-%zu", i % 37);
    snprintf(vals[i], sizeof(vals[i]), "v%zu", i);
    md[i].key = keys[i];
    md[i].key_len = strlen(keys[i]);
    md[i].value = (const uint8_t *)vals[i];
    md[i].value_len = strlen(vals[i]);
  }
  sgrpc_settings_default(&s);
  s.max_header_list_size = 64 << 10;
  memset(&w, 0, sizeof(w));
  w.resp_md = md;
  w.resp_md_n = N;
  w.status.md = md;
  w.status.md_count = N;
  run_call(&w, md, N, &s, &s);
  assert_int_equal(w.cli_code, SGRPC_STATUS_OK);
  assert_md_equal(&w.srv_md, md, N);
  assert_md_equal(&w.cli_hdr_md, md, N);
  assert_md_equal(&w.cli_trl_md, md, N);
  world_free(&w);
}

/* One value that makes a header list of about `size` bytes. */
static sgrpc_md big_md(char *buf, size_t size) {
  sgrpc_md m;
  memset(buf, 'z', size);
  buf[size] = 0;
  m.key = "x-big";
  m.key_len = 5;
  m.value = (const uint8_t *)buf;
  m.value_len = size;
  return m;
}

static void test_header_list_limit_request(void **state) {
  static char buf[4096];
  sgrpc_settings ss;
  sgrpc_md md;
  world w;
  (void)state;
  sgrpc_settings_default(&ss);
  ss.max_header_list_size = 1024;

  /* comfortably under the server's limit: fine */
  md = big_md(buf, 500);
  memset(&w, 0, sizeof(w));
  run_call(&w, &md, 1, NULL, &ss);
  assert_int_equal(w.cli_code, SGRPC_STATUS_OK);
  assert_int_equal(w.srv_new, 1);
  world_free(&w);

  /* over it: the server refuses before its app sees anything */
  md = big_md(buf, 2000);
  memset(&w, 0, sizeof(w));
  run_call(&w, &md, 1, NULL, &ss);
  assert_int_equal(w.cli_code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_int_equal(w.srv_new, 0);
  assert_int_equal(w.srv_close, 0);
  assert_int_equal(w.cli_headers, 0);
  world_free(&w);
}

/* Once the client's SETTINGS are known, a server never sends a header
 * block over the client's limit: the API refuses it, and the call can
 * still end with a status that fits. (Receiving an oversized response is
 * checked against a raw server in test_client_raw.) */
typedef struct limit_world {
  sgrpc_call *scall;
  int cli_code;
  char cli_msg[16];
} limit_world;

static void limit_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  limit_world *lw = ud;
  if (conn == p->srv && ev->type == SGRPC_EV_CALL_NEW) lw->scall = ev->call;
  if (ev->type != SGRPC_EV_CLOSE) return;
  if (conn == p->cli) {
    lw->cli_code = ev->u.close.status.code;
    snprintf(lw->cli_msg, sizeof(lw->cli_msg), "%s", ev->u.close.status.message);
  }
  sgrpc_call_release(ev->call);
}

/* Once the client's SETTINGS are known, a server never sends a header
 * block over the client's limit: the API refuses it, and the call can
 * still end with a status that fits. (Receiving an oversized response is
 * checked against a raw server in test_client_raw.) */
static void test_header_list_limit_response(void **state) {
  static char buf[4096];
  sgrpc_settings cs;
  sgrpc_md md;
  sgrpc_status st;
  pair p;
  sgrpc_call *call = NULL;
  sgrpc_call_opts o;
  limit_world lw;
  (void)state;
  memset(&lw, 0, sizeof(lw));
  lw.cli_code = -1;
  sgrpc_settings_default(&cs);
  cs.max_header_list_size = 1024;
  md = big_md(buf, 2000);
  assert_int_equal(pair_init(&p, &cs, NULL, NULL), 0);
  p.on_event = limit_event;
  p.ud = &lw;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  assert_int_equal(sgrpc_call_close_send(call), 0);
  pair_run(&p, 20);
  assert_non_null(lw.scall);
  assert_int_equal(sgrpc_call_send_headers(lw.scall, &md, 1), SGRPC_ERR_METADATA_TOO_LARGE);
  memset(&st, 0, sizeof(st));
  st.md = &md;
  st.md_count = 1;
  assert_int_equal(sgrpc_call_send_status(lw.scall, &st), SGRPC_ERR_METADATA_TOO_LARGE);
  st.md_count = 0;
  memset(buf, 'm', sizeof(buf) - 1);
  st.message = buf; /* a 4 KiB grpc-message counts too */
  assert_int_equal(sgrpc_call_send_status(lw.scall, &st), SGRPC_ERR_METADATA_TOO_LARGE);
  st.message = "fits";
  st.code = SGRPC_STATUS_ABORTED;
  assert_int_equal(sgrpc_call_send_status(lw.scall, &st), 0);
  pair_run(&p, 20);
  assert_int_equal(lw.cli_code, SGRPC_STATUS_ABORTED);
  assert_string_equal(lw.cli_msg, "fits");
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  pair_free(&p);
}

static void check_message_roundtrip(const char *msg, const char *want, size_t want_len) {
  world w;
  memset(&w, 0, sizeof(w));
  w.status.code = SGRPC_STATUS_DATA_LOSS;
  w.status.message = msg;
  run_call(&w, NULL, 0, NULL, NULL);
  assert_int_equal(w.cli_code, SGRPC_STATUS_DATA_LOSS);
  if (w.cli_msg_len != want_len || memcmp(w.cli_msg, want, want_len) != 0)
    fail_msg("grpc-message round trip: got %zu bytes, want %zu", w.cli_msg_len, want_len);
  world_free(&w);
}

/* UTF-8 of code point cp into out; returns its length. */
static size_t utf8(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

static void test_grpc_message_bytes(void **state) {
  static char msg[2048], want[2048];
  size_t n = 0, wn = 0, b;
  uint32_t cp;
  (void)state;
  /* valid UTF-8 covering every ASCII byte 0x01..0x7F, every 2-byte lead and
   * continuation byte (U+0080..U+07FF), 3- and 4-byte sequences: exact */
  for (b = 1; b < 0x80; b++) msg[n++] = (char)b;
  for (cp = 0x80; cp < 0x800; cp += 0x1F) n += utf8(cp, msg + n);
  n += utf8(0x7FF, msg + n);
  n += utf8(0x20AC, msg + n);  /* euro sign */
  n += utf8(0xFFFD, msg + n);
  n += utf8(0x1F600, msg + n); /* 4 bytes */
  n += utf8(0x10FFFF, msg + n);
  msg[n] = 0;
  check_message_roundtrip(msg, msg, n);

  /* every byte 0x01..0xFF in one message: ASCII comes back as is, and
   * each byte 0x80..0xFF (no valid sequence among them) as U+FFFD */
  n = 0;
  for (b = 1; b <= 0xFF; b++) msg[n++] = (char)b;
  msg[n] = 0;
  for (b = 1; b < 0x80; b++) want[wn++] = (char)b;
  for (b = 0x80; b <= 0xFF; b++) {
    memcpy(want + wn, "\xef\xbf\xbd", 3);
    wn += 3;
  }
  check_message_roundtrip(msg, want, wn);

  /* each non-ASCII byte alone between ASCII */
  for (b = 0x80; b <= 0xFF; b++) {
    char m[4] = {'a', (char)b, 'z', 0};
    check_message_roundtrip(m, "a\xef\xbf\xbdz", 5);
  }
}

/* The wire form of grpc-message: bytes outside 0x20..0x7E and '%' are
 * %XX with uppercase hex; nothing else is touched. */
static void test_grpc_message_wire(void **state) {
  static char msg[256], want[1024];
  static const char hex[] = "0123456789ABCDEF";
  rawpeer rp;
  const char *const nv[] = {":method", "POST", ":scheme", "http", ":path", "/t.S/M",
                            "te", "trailers", "content-type", "application/grpc", NULL};
  size_t n = 0, wn = 0, b;
  int32_t sid;
  const rp_event *e;
  sgrpc_status st;
  (void)state;
  for (b = 1; b <= 0xFF; b++) {
    msg[n++] = (char)b;
    if (b < 0x20 || b > 0x7E || b == '%') {
      want[wn++] = '%';
      want[wn++] = hex[b >> 4];
      want[wn++] = hex[b & 15];
    } else {
      want[wn++] = (char)b;
    }
  }
  msg[n] = 0;
  want[wn] = 0;
  rawpeer_new_client(&rp, NULL);
  rp.auto_release = 1;
  sid = rawpeer_submit_request(&rp, nv, NULL, 0, 1);
  rawpeer_run(&rp, 64);
  e = rawpeer_event(&rp, SGRPC_EV_CALL_NEW, NULL, 0);
  assert_non_null(e);
  memset(&st, 0, sizeof(st));
  st.code = SGRPC_STATUS_INTERNAL;
  st.message = msg;
  assert_int_equal(sgrpc_call_send_status(e->call, &st), 0);
  rawpeer_run(&rp, 64);
  assert_string_equal(rawpeer_field(rawpeer_headers(&rp, sid, 0), "grpc-message"), want);
  rawpeer_free(&rp);
}

static void test_status_details(void **state) {
  static uint8_t det[256];
  size_t lens[] = {1, 2, 3, 4, 5, 100, 256};
  size_t i;
  world w;
  (void)state;
  for (i = 0; i < 256; i++) det[i] = (uint8_t)(255 - i);
  for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    memset(&w, 0, sizeof(w));
    w.status.code = SGRPC_STATUS_ABORTED;
    w.status.message = "with details";
    w.status.details = det;
    w.status.details_len = lens[i];
    run_call(&w, NULL, 0, NULL, NULL);
    assert_int_equal(w.cli_code, SGRPC_STATUS_ABORTED);
    assert_string_equal(w.cli_msg, "with details");
    assert_false(w.cli_details_null);
    assert_int_equal(w.cli_details_len, lens[i]);
    assert_memory_equal(w.cli_details, det, lens[i]);
    /* details are not trailing metadata */
    assert_int_equal(w.cli_trl_md.n, 0);
    world_free(&w);
  }
  /* none sent: NULL */
  memset(&w, 0, sizeof(w));
  w.status.code = SGRPC_STATUS_ABORTED;
  run_call(&w, NULL, 0, NULL, NULL);
  assert_true(w.cli_details_null);
  assert_int_equal(w.cli_details_len, 0);
  assert_string_equal(w.cli_msg, "");
  world_free(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_md_str_forms),
      cmocka_unit_test(test_binary_values),
      cmocka_unit_test(test_duplicates_in_order),
      cmocka_unit_test(test_many_entries),
      cmocka_unit_test(test_header_list_limit_request),
      cmocka_unit_test(test_header_list_limit_response),
      cmocka_unit_test(test_grpc_message_bytes),
      cmocka_unit_test(test_grpc_message_wire),
      cmocka_unit_test(test_status_details),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
