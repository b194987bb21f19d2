/*
 * Zero-copy sending: sgrpc_call_send_reserve / sgrpc_call_send_commit.
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

typedef struct got {
  int msgs, compressed;
  size_t len[8];
  uint8_t first[8];
  uint8_t last[8];
} got;

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  got *g = ud;
  if (conn == p->srv && ev->type == SGRPC_EV_MESSAGE && g->msgs < 8) {
    g->len[g->msgs] = ev->u.message.len;
    g->first[g->msgs] = ev->u.message.len ? ev->u.message.data[0] : 0;
    g->last[g->msgs] = ev->u.message.len ? ev->u.message.data[ev->u.message.len - 1] : 0;
    g->compressed += ev->u.message.compressed;
    g->msgs++;
  }
  if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call);
}

static sgrpc_call *start(pair *p, const char *enc) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.encoding = enc;
  assert_int_equal(sgrpc_call_start(p->cli, &o, p->now, &call), 0);
  return call;
}

static void fill(uint8_t *b, size_t n, uint8_t first, uint8_t last) {
  memset(b, 0x55, n);
  b[0] = first;
  b[n - 1] = last;
}

static void test_roundtrip(void **state) {
  const char *const encs[] = {NULL, "gzip"};
  int k;
  (void)state;
  for (k = 0; k < 2; k++) {
    pair p;
    got g;
    uint8_t *b;
    sgrpc_call *call;
    memset(&g, 0, sizeof(g));
    assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
    p.on_event = on_event;
    p.ud = &g;
    pair_run(&p, 10);
    call = start(&p, encs[k]);
    assert_int_equal(sgrpc_call_send_reserve(call, 3000, &b), 0);
    fill(b, 3000, 'a', 'z');
    /* nothing else goes in while a reservation is open */
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, 0), SGRPC_ERR_INVALID_STATE);
    assert_int_equal(sgrpc_call_send_reserve(call, 1, &b), SGRPC_ERR_INVALID_STATE);
    assert_int_equal(sgrpc_call_send_commit(call, 0), 0);
    assert_int_equal(sgrpc_call_send_commit(call, 0), SGRPC_ERR_INVALID_STATE);
    assert_int_equal(sgrpc_call_send_reserve(call, 0, &b), 0); /* empty message */
    assert_int_equal(sgrpc_call_send_commit(call, SGRPC_SEND_END), 0);
    pair_run(&p, 50);
    assert_int_equal(g.msgs, 2);
    assert_int_equal(g.len[0], 3000);
    assert_int_equal(g.first[0], 'a');
    assert_int_equal(g.last[0], 'z');
    assert_int_equal(g.len[1], 0);
    assert_int_equal(g.compressed, k == 1 ? 2 : 0);
    pair_free(&p);
  }
}

/* The buffer drains (and restarts at offset 0) while a reservation is
 * open: the committed bytes must still be the ones written. */
static void test_drain_between(void **state) {
  pair p;
  got g;
  uint8_t *b;
  uint8_t first[700];
  sgrpc_call *call;
  const uint8_t *d;
  sgrpc_ssize n;
  (void)state;
  memset(&g, 0, sizeof(g));
  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  p.on_event = on_event;
  p.ud = &g;
  pair_run(&p, 10);
  call = start(&p, NULL);
  fill(first, sizeof(first), '1', '9');
  assert_int_equal(sgrpc_call_send(call, first, sizeof(first), 0), 0);
  assert_int_equal(sgrpc_call_send_reserve(call, 500, &b), 0);
  fill(b, 500, 'A', 'Z');
  /* take the output now: the first message is read out of the buffer */
  n = sgrpc_conn_out_peek(p.cli, &d);
  assert_true(n > 700);
  assert_int_equal(sgrpc_conn_recv(p.srv, d, (size_t)n, p.now), n);
  sgrpc_conn_out_consume(p.cli, (size_t)n);
  pair_drain(&p, p.srv);
  assert_int_equal(sgrpc_call_send_commit(call, SGRPC_SEND_END), 0);
  pair_run(&p, 50);
  assert_int_equal(g.msgs, 2);
  assert_int_equal(g.len[0], 700);
  assert_int_equal(g.len[1], 500);
  assert_int_equal(g.first[1], 'A');
  assert_int_equal(g.last[1], 'Z');
  pair_free(&p);
}

static void test_limits_and_end(void **state) {
  pair p;
  got g;
  uint8_t *b = (uint8_t *)1;
  sgrpc_settings s;
  sgrpc_call *call;
  (void)state;
  memset(&g, 0, sizeof(g));
  sgrpc_settings_default(&s);
  s.max_send_buffer = 1000;
  s.max_send_message_size = 5000;
  assert_int_equal(pair_init(&p, &s, NULL, NULL), 0);
  p.on_event = on_event;
  p.ud = &g;
  call = start(&p, NULL);
  assert_int_equal(sgrpc_call_send_reserve(call, 5001, &b), SGRPC_ERR_MESSAGE_TOO_LARGE);
  assert_null(b);
  assert_int_equal(sgrpc_call_send_reserve(call, 2000, &b), 0);
  assert_int_equal(sgrpc_call_send_commit(call, 0x80), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send_commit(call, 0), 0);
  /* the buffer holds more than max_send_buffer: the next one must wait */
  assert_int_equal(sgrpc_call_send_reserve(call, 10, &b), SGRPC_ERR_WOULDBLOCK);
  /* a call that ends while a reservation is open drops it */
  pair_run(&p, 50);
  assert_int_equal(sgrpc_call_send_reserve(call, 10, &b), 0);
  assert_int_equal(sgrpc_call_cancel(call), 0);
  assert_int_equal(sgrpc_call_send_commit(call, 0), SGRPC_ERR_CALL_CLOSED);
  pair_run(&p, 50);
  assert_int_equal(g.msgs, 1);
  pair_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_drain_between),
      cmocka_unit_test(test_limits_and_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
