/*
 * What an idle connection gives back: sgrpc_conn_trim, and the engine
 * doing it by itself a second after the last call ended (at once after
 * a connection's first call).
 */
#include "support.h"

#include <string.h>

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  (void)ud;
  if (conn == p->srv && ev->type == SGRPC_EV_MESSAGE) {
    sgrpc_status st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0), 0);
    assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
  }
  if (ev->type == SGRPC_EV_CLOSE) {
    if (conn == p->cli) assert_int_equal(ev->u.close.status.code, SGRPC_STATUS_OK);
    sgrpc_call_release(ev->call);
  }
}

/* n unary echoes, one after the other. */
static void calls(pair *p, int n) {
  uint8_t msg[3000];
  int i;
  memset(msg, 'm', sizeof(msg));
  for (i = 0; i < n; i++) {
    sgrpc_call_opts o;
    sgrpc_call *call;
    memset(&o, 0, sizeof(o));
    o.path = "/t.S/M";
    assert_int_equal(sgrpc_call_start(p->cli, &o, p->now, &call), 0);
    assert_int_equal(sgrpc_call_send(call, msg, sizeof(msg), SGRPC_SEND_END), 0);
    pair_run(p, 50);
  }
  assert_int_equal(sgrpc_conn_call_count(p->cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p->srv), 0);
}

static void test_idle_trim(void **state) {
  failmem fm;
  sgrpc_mem mem;
  pair p;
  size_t busy, fresh;
  int64_t t;
  (void)state;
  failmem_init(&fm, &mem);
  assert_int_equal(pair_init(&p, NULL, NULL, &mem), 0);
  p.on_event = on_event;
  pair_run(&p, 10);
  fresh = fm.bytes;
  calls(&p, 3);
  busy = fm.bytes;
  assert_true(busy > fresh); /* cached calls, event rings, buffers */
  /* due a second after the last call ended, not before */
  t = sgrpc_conn_next_expiry(p.srv);
  assert_true(t > p.now && t <= p.now + 1000000000ll);
  pair_advance(&p, 500000000ll);
  assert_int_equal(fm.bytes, busy);
  pair_advance(&p, 600000000ll);
  assert_true(fm.bytes < busy);
  /* nothing more is due on the server */
  assert_true(sgrpc_conn_next_expiry(p.srv) > p.now + 1000000000ll);
  /* back to what a fresh connection holds, give or take the HPACK
   * tables that now hold the calls' headers */
  assert_true(fm.bytes < fresh + 2048);
  /* and the connection works on */
  calls(&p, 2);
  assert_true(sgrpc_conn_next_expiry(p.srv) <= p.now + 1000000000ll);
  assert_int_equal(sgrpc_conn_trim(p.cli), 0);
  assert_int_equal(sgrpc_conn_trim(p.srv), 0);
  assert_true(fm.bytes < busy);
  /* an explicit trim takes the idle expiry away */
  assert_int_equal(sgrpc_conn_next_expiry(p.srv), SGRPC_NEVER);
  calls(&p, 1);
  assert_int_equal(sgrpc_conn_trim(NULL), SGRPC_ERR_INVALID_ARGUMENT);
  pair_free(&p);
  assert_int_equal(fm.live, 0);
}

/* A connection's first call gives back at once when it ends: nothing
 * says another call is coming (a health check, a one-off call), and the
 * next connection's call can reuse the blocks. From the second call on,
 * the trim waits a second after the last call. */
static void test_first_call_trim(void **state) {
  failmem fm;
  sgrpc_mem mem;
  pair p;
  size_t busy, fresh;
  (void)state;
  failmem_init(&fm, &mem);
  assert_int_equal(pair_init(&p, NULL, NULL, &mem), 0);
  p.on_event = on_event;
  pair_run(&p, 10);
  fresh = fm.bytes;
  calls(&p, 1);
  busy = fm.bytes;
  assert_true(busy > fresh);
  /* due now on both ends, and done on the next expiry pass */
  assert_true(sgrpc_conn_next_expiry(p.srv) <= p.now);
  assert_true(sgrpc_conn_next_expiry(p.cli) <= p.now);
  pair_advance(&p, 1);
  assert_true(fm.bytes < busy);
  assert_true(fm.bytes < fresh + 2048);
  assert_true(sgrpc_conn_next_expiry(p.srv) > p.now + 1000000000ll);
  /* the second call: the usual second */
  calls(&p, 1);
  busy = fm.bytes;
  assert_true(sgrpc_conn_next_expiry(p.srv) > p.now);
  assert_true(sgrpc_conn_next_expiry(p.srv) <= p.now + 1000000000ll);
  pair_advance(&p, 500000000ll);
  assert_int_equal(fm.bytes, busy);
  pair_advance(&p, 600000000ll);
  assert_true(fm.bytes < busy);
  pair_free(&p);
  assert_int_equal(fm.live, 0);
}

/* Trimming while a call is open and output is queued keeps both. */
static void test_trim_busy(void **state) {
  pair p;
  sgrpc_call_opts o;
  sgrpc_call *call;
  uint8_t msg[20000];
  (void)state;
  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  p.on_event = on_event;
  pair_run(&p, 10);
  calls(&p, 1);
  memset(msg, 'b', sizeof(msg));
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  assert_int_equal(sgrpc_call_send(call, msg, sizeof(msg), SGRPC_SEND_END), 0);
  assert_true(sgrpc_conn_want_write(p.cli));
  {
    const uint8_t *d;
    assert_true(sgrpc_conn_out_peek(p.cli, &d) > 0); /* output prepared */
  }
  assert_int_equal(sgrpc_conn_trim(p.cli), 0);
  assert_int_equal(sgrpc_conn_trim(p.srv), 0);
  pair_run(&p, 100);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(p.cli_err, 0);
  assert_int_equal(p.srv_err, 0);
  pair_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idle_trim),
      cmocka_unit_test(test_first_call_trim),
      cmocka_unit_test(test_trim_busy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
