/*
 * In-memory client<->server pair: all four RPC kinds through two engines,
 * many calls, random byte splits, a fake clock.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_UNARY, K_SSTREAM, K_CSTREAM, K_BIDI };
static const char *const paths[] = {"/t.S/Unary", "/t.S/ServerStream", "/t.S/ClientStream",
                                    "/t.S/Bidi"};

typedef struct srv_call {
  int kind;
  uint32_t received;
  uint64_t sum;
  uint8_t *pending; /* copy of the message still to be echoed */
  size_t pending_len;
  uint32_t pending_n;
  int half_closed;
} srv_call;

/* Sends what the server still owes; returns 1 when all went out. */
static int srv_flush(sgrpc_call *call, srv_call *sc) {
  while (sc->pending_n) {
    int rv = sgrpc_call_send(call, sc->pending, sc->pending_len, 0);
    if (rv == SGRPC_ERR_WOULDBLOCK) return 0;
    assert_int_equal(rv, 0);
    sc->pending_n--;
  }
  return 1;
}

static void srv_finish(sgrpc_call *call, srv_call *sc);

static void srv_queue(sgrpc_call *call, srv_call *sc, const uint8_t *d, size_t len,
                      uint32_t n) {
  if (sc->pending_n == 0) {
    free(sc->pending);
    sc->pending = malloc(len ? len : 1);
    memcpy(sc->pending, d, len);
    sc->pending_len = len;
  } else {
    /* every message of a call is the same in these tests */
    assert_int_equal(len, sc->pending_len);
  }
  sc->pending_n += n;
  srv_flush(call, sc);
}

typedef struct cli_call {
  int kind;
  int done;
  int status;
  char message[128];
  uint32_t received;
  uint64_t sum;
  int headers;
  char trailer[64];
  uint32_t to_send;
  const uint8_t *msg;
  size_t msg_len;
} cli_call;

static void cli_flush(sgrpc_call *call, cli_call *cc) {
  while (cc->to_send) {
    int rv = sgrpc_call_send(call, cc->msg, cc->msg_len, cc->to_send == 1 ? SGRPC_SEND_END : 0);
    if (rv == SGRPC_ERR_WOULDBLOCK) return;
    assert_int_equal(rv, 0);
    cc->to_send--;
  }
}

typedef struct world {
  int srv_closed;
  int cli_closed;
  int new_calls;
} world;

static int path_kind(const char *path, size_t len) {
  int k;
  for (k = 0; k < 4; k++)
    if (strlen(paths[k]) == len && memcmp(paths[k], path, len) == 0) return k;
  return -1;
}

static void srv_event(pair *p, const sgrpc_event *ev, world *w) {
  srv_call *sc = ev->call_user_data;
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW: {
    int kind = path_kind(ev->u.call_new.path, ev->u.call_new.path_len);
    w->new_calls++;
    if (kind < 0) {
      sgrpc_status st = {SGRPC_STATUS_UNIMPLEMENTED, "no such method", NULL, 0, NULL, 0};
      assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
      break;
    }
    sc = calloc(1, sizeof(*sc));
    sc->kind = kind;
    sgrpc_call_set_user_data(ev->call, sc);
    break;
  }
  case SGRPC_EV_MESSAGE: {
    uint32_t i;
    assert_non_null(sc);
    sc->received++;
    for (i = 0; i < ev->u.message.len; i++) sc->sum += ev->u.message.data[i];
    if (sc->kind == K_UNARY || sc->kind == K_BIDI) {
      srv_queue(ev->call, sc, ev->u.message.data, ev->u.message.len, 1);
    } else if (sc->kind == K_SSTREAM) {
      uint32_t n = ev->u.message.len ? ev->u.message.data[0] : 0;
      srv_queue(ev->call, sc, ev->u.message.data, ev->u.message.len, n);
    }
    break;
  }
  case SGRPC_EV_WRITABLE:
    if (srv_flush(ev->call, sc) && sc->half_closed) srv_finish(ev->call, sc);
    break;
  case SGRPC_EV_HALF_CLOSE:
    if (!sc) break;
    sc->half_closed = 1;
    if (sc->pending_n == 0) srv_finish(ev->call, sc);
    break;
  case SGRPC_EV_CLOSE:
    w->srv_closed++;
    if (sc) free(sc->pending);
    free(sc);
    sgrpc_call_release(ev->call);
    break;
  default:
    break;
  }
  (void)p;
}

/* Ends a server call: client streaming replies once, then status OK
 * with the number of messages received as trailing metadata. */
static void srv_finish(sgrpc_call *call, srv_call *sc) {
  char cnt[32];
  sgrpc_md md[1];
  sgrpc_status st = {0};
  if (sc->kind == K_CSTREAM) {
    uint8_t body[12];
    memcpy(body, &sc->received, 4);
    memcpy(body + 4, &sc->sum, 8);
    assert_int_equal(sgrpc_call_send(call, body, sizeof(body), 0), 0);
  }
  snprintf(cnt, sizeof(cnt), "%u", sc->received);
  md[0].key = "x-count";
  md[0].key_len = 7;
  md[0].value = (const uint8_t *)cnt;
  md[0].value_len = strlen(cnt);
  st.code = SGRPC_STATUS_OK;
  st.md = md;
  st.md_count = 1;
  assert_int_equal(sgrpc_call_send_status(call, &st), 0);
}

static void cli_event(pair *p, const sgrpc_event *ev, world *w) {
  cli_call *cc = ev->call_user_data;
  size_t i;
  switch (ev->type) {
  case SGRPC_EV_HEADERS:
    cc->headers++;
    break;
  case SGRPC_EV_WRITABLE:
    cli_flush(ev->call, cc);
    break;
  case SGRPC_EV_MESSAGE:
    cc->received++;
    for (i = 0; i < ev->u.message.len; i++) cc->sum += ev->u.message.data[i];
    if (cc->kind == K_CSTREAM) {
      assert_int_equal(ev->u.message.len, 12);
      memcpy(&cc->received, ev->u.message.data, 4);
      memcpy(&cc->sum, ev->u.message.data + 4, 8);
    }
    break;
  case SGRPC_EV_CLOSE:
    cc->done = 1;
    cc->status = ev->u.close.status.code;
    snprintf(cc->message, sizeof(cc->message), "%s", ev->u.close.status.message);
    for (i = 0; i < ev->u.close.status.md_count; i++) {
      const sgrpc_md *m = &ev->u.close.status.md[i];
      if (m->key_len == 7 && memcmp(m->key, "x-count", 7) == 0)
        snprintf(cc->trailer, sizeof(cc->trailer), "%.*s", (int)m->value_len,
                 (const char *)m->value);
    }
    w->cli_closed++;
    sgrpc_call_release(ev->call);
    break;
  default:
    break;
  }
  (void)p;
}

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  if (conn == p->srv) srv_event(p, ev, ud);
  else cli_event(p, ev, ud);
}

static sgrpc_call *start(pair *p, int kind, cli_call *cc) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.path = paths[kind];
  o.authority = "localhost";
  o.user_data = cc;
  cc->kind = kind;
  assert_int_equal(sgrpc_call_start(p->cli, &o, p->now, &call), 0);
  assert_non_null(call);
  return call;
}

static void test_unary_once(void **state) {
  pair p;
  world w = {0};
  cli_call cc = {0};
  sgrpc_call *call;
  const uint8_t msg[] = "hello";
  (void)state;
  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  p.on_event = on_event;
  p.ud = &w;
  call = start(&p, K_UNARY, &cc);
  assert_int_equal(sgrpc_call_send(call, msg, 5, SGRPC_SEND_END), 0);
  pair_run(&p, 100);
  assert_true(cc.done);
  assert_int_equal(cc.status, SGRPC_STATUS_OK);
  assert_int_equal(cc.received, 1);
  assert_int_equal(cc.headers, 1);
  assert_string_equal(cc.trailer, "1");
  assert_int_equal(w.srv_closed, 1);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  pair_free(&p);
}

/* Runs n calls of every kind concurrently with random splits. */
static void run_mix(int ncalls, size_t max_split, uint32_t msgs, size_t msg_len) {
  pair p;
  world w = {0};
  cli_call *cc = calloc((size_t)ncalls, sizeof(*cc));
  sgrpc_call **calls = calloc((size_t)ncalls, sizeof(*calls));
  uint8_t *buf = malloc(msg_len + 1);
  int i;
  uint32_t j;
  uint64_t expect_sum = 0;
  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  p.on_event = on_event;
  p.ud = &w;
  p.max_split = max_split;
  p.rng = 12345;
  for (j = 0; j < msg_len; j++) buf[j] = (uint8_t)(j * 7 + 3);
  buf[0] = 3; /* server streaming: 3 replies per request */
  for (j = 0; j < msg_len; j++) expect_sum += buf[j];
  for (i = 0; i < ncalls; i++) {
    int kind = i % 4;
    uint32_t n = (kind == K_UNARY || kind == K_SSTREAM) ? 1 : msgs;
    calls[i] = start(&p, kind, &cc[i]);
    cc[i].to_send = n;
    cc[i].msg = buf;
    cc[i].msg_len = msg_len;
    cli_flush(calls[i], &cc[i]);
    if ((i & 15) == 15) pair_run(&p, 20);
  }
  pair_run(&p, 100000);
  for (i = 0; i < ncalls; i++) {
    int kind = i % 4;
    uint32_t n = (kind == K_UNARY || kind == K_SSTREAM) ? 1 : msgs;
    assert_true(cc[i].done);
    assert_int_equal(cc[i].status, SGRPC_STATUS_OK);
    switch (kind) {
    case K_UNARY: assert_int_equal(cc[i].received, 1); break;
    case K_SSTREAM: assert_int_equal(cc[i].received, 3); break;
    case K_CSTREAM:
      assert_int_equal(cc[i].received, n);
      assert_true(cc[i].sum == expect_sum * n);
      break;
    case K_BIDI:
      assert_int_equal(cc[i].received, n);
      assert_true(cc[i].sum == expect_sum * n);
      break;
    }
  }
  assert_int_equal(w.cli_closed, ncalls);
  assert_int_equal(w.srv_closed, ncalls);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  pair_free(&p);
  free(cc);
  free(calls);
  free(buf);
}

static void test_mix_whole(void **state) { (void)state; run_mix(200, 0, 5, 100); }
static void test_mix_bytewise(void **state) { (void)state; run_mix(8, 1, 3, 40); }
static void test_mix_random_splits(void **state) { (void)state; run_mix(400, 97, 4, 333); }
static void test_mix_large(void **state) { (void)state; run_mix(12, 5000, 3, 200000); }
static void test_thousands(void **state) { (void)state; run_mix(4000, 0, 2, 16); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary_once),      cmocka_unit_test(test_mix_whole),
      cmocka_unit_test(test_mix_bytewise),    cmocka_unit_test(test_mix_random_splits),
      cmocka_unit_test(test_mix_large),       cmocka_unit_test(test_thousands),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
