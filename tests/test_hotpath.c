/*
 * The hot path does not allocate: once a streaming call is warm, sending
 * and receiving messages that fit in a frame costs no allocation on
 * either engine (nghttp2's included, since it allocates through the same
 * hooks), and a message that arrived in one DATA frame is handed over
 * without a copy.
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

typedef struct hot {
  sgrpc_call *srv_call;
  long cli_msgs, srv_msgs;
  int zero_copy_ok;
  const uint8_t *in_lo, *in_hi; /* the buffer last given to recv */
} hot;

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  hot *h = ud;
  if (conn == p->srv) {
    if (ev->type == SGRPC_EV_CALL_NEW) h->srv_call = ev->call;
    if (ev->type == SGRPC_EV_MESSAGE) {
      h->srv_msgs++;
      assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0), 0);
    }
    if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call);
    return;
  }
  if (ev->type == SGRPC_EV_MESSAGE) {
    h->cli_msgs++;
    /* the pair copies each chunk into p->tmp before feeding it: a
     * zero-copy message points inside that buffer */
    if (ev->u.message.data < p->tmp || ev->u.message.data >= p->tmp + p->tmp_cap)
      h->zero_copy_ok = 0;
  }
  if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call);
}

static void run_messages(pair *p, sgrpc_call *call, int n, const uint8_t *msg, size_t len) {
  int i;
  for (i = 0; i < n; i++) {
    assert_int_equal(sgrpc_call_send(call, msg, len, 0), 0);
    pair_run(p, 10);
  }
}

static void hot_path(size_t len, const char *encoding) {
  failmem fm;
  sgrpc_mem mem;
  pair p;
  hot h;
  sgrpc_call_opts o;
  sgrpc_call *call;
  uint8_t *msg = malloc(len);
  long before;
  size_t i;
  for (i = 0; i < len; i++) msg[i] = (uint8_t)(i * 31 + 7);
  failmem_init(&fm, &mem);
  memset(&h, 0, sizeof(h));
  h.zero_copy_ok = 1;
  assert_int_equal(pair_init(&p, NULL, NULL, &mem), 0);
  p.on_event = on_event;
  p.ud = &h;
  pair_run(&p, 10);
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Bidi";
  o.encoding = encoding;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  /* warm up: buffers reach their working size, window updates happen */
  run_messages(&p, call, 200, msg, len);
  before = fm.count;
  run_messages(&p, call, 2000, msg, len);
  /* 2000 round trips: anything per message would show up as >= 2000.
   * What is allowed is per window: nghttp2 allocates each WINDOW_UPDATE
   * frame it queues, about one per MiB moved in each direction. */
  if (fm.count - before > 20 + (long)(2 * 2000 * len / (1u << 20)))
    fail_msg("%ld allocations for 2000 echoed messages of %zu bytes (%s)",
             fm.count - before, len, encoding ? encoding : "identity");
  assert_int_equal(h.srv_msgs, 2200);
  assert_int_equal(h.cli_msgs, 2200);
  if (!encoding) assert_true(h.zero_copy_ok);
  assert_int_equal(sgrpc_call_close_send(call), 0);
  pair_run(&p, 50);
  sgrpc_call_cancel(call);
  sgrpc_call_release(call);
  pair_run(&p, 50);
  pair_free(&p);
  assert_int_equal(fm.live, 0);
  free(msg);
}

static void test_small_messages(void **state) { (void)state; hot_path(100, NULL); }
static void test_frame_sized_messages(void **state) { (void)state; hot_path(16000, NULL); }
static void test_compressed_messages(void **state) { (void)state; hot_path(1000, "gzip"); }

/* Open streaming calls that each sent (and got back) one message hold
 * no send buffer while idle: a drained small buffer goes to the
 * connection's few spares, and the next send on any call takes one of
 * those instead of allocating. */
#define OPEN_CALLS 24
#define OPEN_MSG 2000
static void test_idle_open_calls_hold_no_send_buffer(void **state) {
  failmem fm;
  sgrpc_mem mem;
  pair p;
  hot h;
  sgrpc_call_opts o;
  sgrpc_call *calls[OPEN_CALLS];
  static uint8_t msg[OPEN_MSG];
  size_t b0, b1;
  long c1;
  int i, round;
  (void)state;
  memset(msg, 0x5a, sizeof(msg));
  failmem_init(&fm, &mem);
  memset(&h, 0, sizeof(h));
  assert_int_equal(pair_init(&p, NULL, NULL, &mem), 0);
  p.on_event = on_event;
  p.ud = &h;
  pair_run(&p, 10);
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Bidi";
  for (i = 0; i < OPEN_CALLS; i++)
    assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &calls[i]), 0);
  pair_run(&p, 20);
  b0 = fm.bytes;
  c1 = 0;
  for (round = 0; round < 2; round++) {
    if (round == 1) c1 = fm.count;
    for (i = 0; i < OPEN_CALLS; i++) {
      assert_int_equal(sgrpc_call_send(calls[i], msg, sizeof(msg), 0), 0);
      pair_run(&p, 10);
    }
  }
  b1 = fm.bytes;
  assert_int_equal(h.srv_msgs, 2 * OPEN_CALLS);
  assert_int_equal(h.cli_msgs, 2 * OPEN_CALLS);
  /* a send buffer per open call on each side would be 2 * 24 * 2 KiB
   * (96 KiB); the spares of both connections are at most 2 * 8 */
  if (b1 - b0 >= (size_t)OPEN_CALLS * OPEN_MSG)
    fail_msg("%zu bytes held after one message on each of %d open calls", b1 - b0, OPEN_CALLS);
  /* the second round's sends reuse the spares */
  if (fm.count - c1 > 4)
    fail_msg("%ld allocations for the second message on %d warm calls", fm.count - c1,
             OPEN_CALLS);
  /* a spare smaller than the next message grows; when that fails, the
   * send fails with no memory, the call goes on, nothing leaks */
  {
    static uint8_t big[3000];
    memset(big, 0x33, sizeof(big));
    fm.fail_at = fm.count + 1;
    assert_int_equal(sgrpc_call_send(calls[0], big, sizeof(big), 0), SGRPC_ERR_NOMEM);
    assert_int_equal(fm.failures, 1);
    fm.fail_at = 0;
    assert_int_equal(sgrpc_call_send(calls[0], big, sizeof(big), 0), 0);
    pair_run(&p, 10);
    assert_int_equal(h.cli_msgs, 2 * OPEN_CALLS + 1);
  }
  for (i = 0; i < OPEN_CALLS; i++) {
    sgrpc_call_cancel(calls[i]);
    sgrpc_call_release(calls[i]);
  }
  pair_run(&p, 50);
  pair_free(&p);
  assert_int_equal(fm.live, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_small_messages),
      cmocka_unit_test(test_frame_sized_messages),
      cmocka_unit_test(test_compressed_messages),
      cmocka_unit_test(test_idle_open_calls_hold_no_send_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
