/*
 * What an idle connection gives back: sgrpc_conn_trim, and the engine
 * doing it by itself once the last call has ended and its events are
 * pulled.
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
    /* every call ends OK but the one test_trim_busy cancels */
    if (conn == p->cli)
      assert_true(ev->u.close.status.code == SGRPC_STATUS_OK ||
                  ev->u.close.status.code == SGRPC_STATUS_CANCELLED);
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
}

static void test_idle_trim(void **state) {
  failmem fm;
  sgrpc_mem mem;
  pair p;
  size_t fresh;
  (void)state;
  failmem_init(&fm, &mem);
  assert_int_equal(pair_init(&p, NULL, NULL, &mem), 0);
  p.on_event = on_event;
  pair_run(&p, 10);
  fresh = fm.bytes;
  fm.peak = fm.bytes;
  calls(&p, 3);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  /* the calls needed more (cached calls, event rings, buffers)... */
  assert_true(fm.peak > fresh + 4096);
  /* ...and once the last one ended and its events were pulled, both ends
   * gave it back: what a fresh connection holds, give or take the HPACK
   * tables that now hold the calls' headers */
  assert_true(fm.bytes < fresh + 2048);
  /* no timer involved */
  assert_int_equal(sgrpc_conn_next_expiry(p.srv), SGRPC_NEVER);
  /* and the connection works on */
  calls(&p, 2);
  assert_true(fm.bytes < fresh + 2048);
  assert_int_equal(sgrpc_conn_trim(p.cli), 0);
  assert_int_equal(sgrpc_conn_trim(p.srv), 0);
  calls(&p, 1);
  assert_int_equal(sgrpc_conn_trim(NULL), SGRPC_ERR_INVALID_ARGUMENT);
  pair_free(&p);
  assert_int_equal(fm.live, 0);
}

/* A connection with a call open keeps its cache until that call ends;
 * an explicit trim meanwhile keeps what the open call and queued output
 * use. */
static void test_trim_busy(void **state) {
  failmem fm;
  sgrpc_mem mem;
  pair p;
  sgrpc_call_opts o;
  sgrpc_call *call, *held;
  uint8_t msg[20000];
  size_t open_bytes;
  (void)state;
  failmem_init(&fm, &mem);
  assert_int_equal(pair_init(&p, NULL, NULL, &mem), 0);
  p.on_event = on_event;
  pair_run(&p, 10);
  /* a call that stays open (no half-close, no reply) */
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Held";
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &held), 0);
  pair_run(&p, 10);
  calls(&p, 2);
  open_bytes = fm.bytes;
  assert_int_equal(sgrpc_conn_call_count(p.cli), 1);
  /* still one call: nothing was trimmed by itself */
  assert_int_equal(sgrpc_conn_trim(p.srv), 0);
  assert_true(fm.bytes < open_bytes);
  memset(msg, 'b', sizeof(msg));
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  assert_int_equal(sgrpc_call_send(call, msg, sizeof(msg), SGRPC_SEND_END), 0);
  {
    const uint8_t *d;
    assert_true(sgrpc_conn_out_peek(p.cli, &d) > 0); /* output prepared */
  }
  assert_int_equal(sgrpc_conn_trim(p.cli), 0);
  assert_int_equal(sgrpc_conn_trim(p.srv), 0);
  pair_run(&p, 100);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 1);
  assert_int_equal(p.cli_err, 0);
  assert_int_equal(p.srv_err, 0);
  assert_int_equal(sgrpc_call_cancel(held), 0);
  pair_run(&p, 20);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  pair_free(&p);
  assert_int_equal(fm.live, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idle_trim),
      cmocka_unit_test(test_trim_busy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
