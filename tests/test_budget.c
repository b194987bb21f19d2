/*
 * The per-connection memory budget and the shared (server) budget, seen
 * from a raw HTTP/2 client (issue 14 item 4):
 *
 * - a peer announcing 256 messages of 4 MiB - 1 and sending a few bytes
 *   of each costs the engine bytes received, not bytes announced, while
 *   a well-behaved client on another connection of the same shared
 *   budget is served;
 * - the message that would pass a connection's budget ends its call
 *   RESOURCE_EXHAUSTED (RST_STREAM) and the other calls go on; the same
 *   for the shared budget across connections;
 * - an allocation failure inside the engine is SGRPC_ERR_CONN_NOMEM and
 *   the peer gets a GOAWAY.
 */
#include "rawpeer.h"
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 200
#define REQ ":method", "POST", ":scheme", "http", ":path", "/t.B/M", "te", "trailers", \
            "content-type", "application/grpc"

static const char *const REQ_NV[] = {REQ, NULL};

/* A send's result: 0, or what an allocation failure may give (the call
 * is then given up), or a connection already lost. */
static void sent(sgrpc_call *call, int rv) {
  if (rv == 0 || sgrpc_is_fatal(rv) || rv == SGRPC_ERR_CALL_CLOSED) return;
  if (rv != SGRPC_ERR_NOMEM) fail_msg("send: %d (%s)", rv, sgrpc_strerror(rv));
  rv = sgrpc_call_cancel(call);
  if (rv != 0 && rv != SGRPC_ERR_NOMEM && !sgrpc_is_fatal(rv) && rv != SGRPC_ERR_CALL_CLOSED)
    fail_msg("cancel: %d", rv);
}

/* The application: echoes each message, answers OK at the half-close. */
static void echo_app(rawpeer *rp, const sgrpc_event *ev, void *ud) {
  sgrpc_status st;
  (void)rp;
  (void)ud;
  switch (ev->type) {
  case SGRPC_EV_MESSAGE:
    sent(ev->call, sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0));
    break;
  case SGRPC_EV_HALF_CLOSE:
    memset(&st, 0, sizeof(st));
    st.code = SGRPC_STATUS_OK;
    sent(ev->call, sgrpc_call_send_status(ev->call, &st));
    break;
  default:
    break;
  }
}

/* The application: answers OK at the half-close, echoes nothing. */
static void ok_app(rawpeer *rp, const sgrpc_event *ev, void *ud) {
  sgrpc_status st;
  (void)rp;
  (void)ud;
  if (ev->type != SGRPC_EV_HALF_CLOSE) return;
  memset(&st, 0, sizeof(st));
  st.code = SGRPC_STATUS_OK;
  assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
}

static void settings_for(sgrpc_settings *s, size_t conn_budget, sgrpc_budget *shared) {
  sgrpc_settings_default(s);
  s->settings_timeout = SGRPC_NEVER;
  s->keepalive_time = SGRPC_NEVER;
  s->conn_memory_budget = conn_budget;
  s->shared_budget = shared;
}

static void open_peer(rawpeer *rp, const sgrpc_settings *s, const sgrpc_mem *mem,
                      rawpeer_event_fn app) {
  rawpeer_new_client_mem(rp, s, mem);
  rp->on_event = app;
  rp->auto_release = 1;
  rawpeer_run(rp, ROUNDS); /* prefaces and SETTINGS: 256 streams allowed */
}

/* A unary "ping" call on rp answered OK with the echo. */
static void well_behaved_call(rawpeer *rp) {
  uint8_t body[16], exp[16];
  size_t n = rawpeer_grpc_frame(body, 0, "ping", 4);
  const uint8_t *d;
  size_t dl;
  int32_t sid = rawpeer_submit_request(rp, REQ_NV, body, n, 1);
  rawpeer_run(rp, ROUNDS);
  assert_string_equal(rawpeer_field(rawpeer_headers(rp, sid, 1), "grpc-status"), "0");
  d = rawpeer_stream_data(rp, sid, &dl);
  assert_int_equal(dl, rawpeer_grpc_frame(exp, 0, "ping", 4));
  assert_memory_equal(d, exp, dl);
  assert_int_equal(rawpeer_rst_code(rp, sid), -1);
}

/* Opens a stream announcing a message of msg_len bytes and sends its
 * first `send` bytes (prefix included), in frames of up to 16 KiB. */
static int32_t partial_message(rawpeer *rp, uint32_t msg_len, size_t send) {
  static uint8_t chunk[16384];
  int32_t sid;
  size_t left;
  memset(chunk, 'b', sizeof(chunk));
  chunk[0] = 0;
  chunk[1] = (uint8_t)(msg_len >> 24);
  chunk[2] = (uint8_t)(msg_len >> 16);
  chunk[3] = (uint8_t)(msg_len >> 8);
  chunk[4] = (uint8_t)msg_len;
  left = send < sizeof(chunk) ? send : sizeof(chunk);
  sid = rawpeer_submit_request(rp, REQ_NV, chunk, left, 0);
  memset(chunk, 'b', 5);
  for (left = send - left; left; ) {
    size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
    rawpeer_submit_data(rp, sid, chunk, n, 0);
    left -= n;
  }
  return sid;
}

/* Sends `send` more body bytes on sid, ending the stream when end. */
static void more_body(rawpeer *rp, int32_t sid, size_t send, int end) {
  static uint8_t chunk[16384];
  memset(chunk, 'b', sizeof(chunk));
  while (send) {
    size_t n = send < sizeof(chunk) ? send : sizeof(chunk);
    send -= n;
    rawpeer_submit_data(rp, sid, chunk, n, end && send == 0);
  }
}

static int grpc_status_of(rawpeer *rp, int32_t sid) {
  const rp_frame *f = rawpeer_headers(rp, sid, 0);
  const char *v;
  if (!f) return -1;
  v = rawpeer_field(f, "grpc-status");
  if (!v) {
    f = rawpeer_headers(rp, sid, 1);
    v = f ? rawpeer_field(f, "grpc-status") : NULL;
  }
  return v ? atoi(v) : -1;
}

/* ------------------------------------------------------------------ */

/* 256 streams each announce 4 MiB - 1 and send 3 body bytes: the engine
 * (counting allocator) stays far under 80 MiB, where reserving the
 * announced lengths took 1 GiB; every call is still open (nothing was
 * refused), and a client on another connection of the same shared
 * budget is served meanwhile. */
static void test_announced_length_not_reserved(void **state) {
  sgrpc_budget *shared = NULL;
  sgrpc_settings s;
  sgrpc_mem mem;
  failmem fm;
  rawpeer atk, good;
  uint8_t body[8];
  int i;
  (void)state;
  assert_int_equal(sgrpc_budget_new(&shared, 0, NULL), 0);
  failmem_init(&fm, &mem);
  settings_for(&s, 0, shared);
  open_peer(&atk, &s, &mem, ok_app);
  open_peer(&good, &s, NULL, echo_app);
  body[0] = 0;
  body[1] = 0x00;
  body[2] = 0x3f;
  body[3] = 0xff;
  body[4] = 0xff; /* 4 MiB - 1 */
  memcpy(body + 5, "abc", 3);
  for (i = 0; i < 256; i++) rawpeer_submit_request(&atk, REQ_NV, body, sizeof(body), 0);
  rawpeer_run(&atk, ROUNDS);
  assert_int_equal(rawpeer_count_events(&atk, SGRPC_EV_CALL_NEW, NULL), 256);
  assert_int_equal(rawpeer_count_events(&atk, SGRPC_EV_CLOSE, NULL), 0);
  assert_int_equal(rawpeer_count_frames(&atk, -1, NGHTTP2_RST_STREAM), 0);
  assert_int_equal(atk.conn_err, 0);
  if (fm.peak >= (size_t)80 << 20)
    fail_msg("the engine holds %zu bytes for 256 x 3 bytes received", fm.peak);
  /* well under: what arrived, headers, call state */
  assert_true(fm.peak < (size_t)8 << 20);
  assert_true(sgrpc_budget_used(shared) >= 256 * 3);

  well_behaved_call(&good);
  assert_int_equal(good.conn_err, 0);

  rawpeer_free(&atk);
  assert_int_equal(fm.live, 0);
  rawpeer_free(&good);
  assert_int_equal(sgrpc_budget_used(shared), 0);
  sgrpc_budget_del(shared);
}

/* 32 streams announce 4 MiB - 1 and really send 2.5 MiB each (80 MiB,
 * past the default 64 MiB budget): the engine's allocations stay under
 * 80 MiB; the calls whose bytes would pass the budget end
 * RESOURCE_EXHAUSTED with RST_STREAM, the others stay open, and the
 * connection, never closed, still serves a small call; another
 * connection of the same shared budget is served too. */
static void test_full_messages_bounded(void **state) {
  sgrpc_budget *shared = NULL;
  sgrpc_settings s;
  sgrpc_mem mem;
  failmem fm;
  rawpeer atk, good;
  int32_t sid[32];
  int i, exhausted = 0, open = 0;
  (void)state;
  assert_int_equal(sgrpc_budget_new(&shared, 0, NULL), 0);
  failmem_init(&fm, &mem);
  settings_for(&s, 0, shared);
  open_peer(&atk, &s, &mem, echo_app);
  open_peer(&good, &s, NULL, echo_app);
  for (i = 0; i < 32; i++) sid[i] = partial_message(&atk, (4u << 20) - 1, (5u << 19));
  rawpeer_run(&atk, 100000);
  for (i = 0; i < 32; i++) {
    int st = grpc_status_of(&atk, sid[i]);
    if (st == SGRPC_STATUS_RESOURCE_EXHAUSTED && rawpeer_rst_code(&atk, sid[i]) >= 0)
      exhausted++;
    else if (st == -1 && rawpeer_rst_code(&atk, sid[i]) == -1)
      open++;
    else
      fail_msg("stream %d: status %d", sid[i], st);
  }
  if (fm.peak >= (size_t)80 << 20) fail_msg("the engine held %zu bytes", fm.peak);
  assert_true(exhausted >= 8);
  assert_true(open >= 8);
  assert_true(sgrpc_budget_used(shared) <= (size_t)64 << 20);
  assert_null(rawpeer_goaway(&atk));
  assert_int_equal(atk.conn_err, 0);
  well_behaved_call(&atk);
  well_behaved_call(&good);
  rawpeer_free(&atk);
  assert_int_equal(fm.live, 0);
  rawpeer_free(&good);
  assert_int_equal(sgrpc_budget_used(shared), 0);
  sgrpc_budget_del(shared);
}

/* Connection budget 1 MiB: two streams hold 400 KiB each of 450 KiB
 * messages; a third stream's bytes would pass the budget, so that call
 * ends RESOURCE_EXHAUSTED with RST_STREAM while the two others complete
 * and end OK. */
static void test_conn_budget_ends_the_call_that_passes(void **state) {
  sgrpc_budget *shared = NULL;
  sgrpc_settings s;
  rawpeer rp;
  int32_t a, b, c;
  const rp_event *e;
  (void)state;
  assert_int_equal(sgrpc_budget_new(&shared, 0, NULL), 0); /* to watch the count */
  settings_for(&s, 1u << 20, shared);
  open_peer(&rp, &s, NULL, ok_app);
  a = partial_message(&rp, 450u << 10, 400u << 10);
  b = partial_message(&rp, 450u << 10, 400u << 10);
  rawpeer_run(&rp, ROUNDS);
  assert_true(sgrpc_budget_used(shared) >= (size_t)800 << 10);
  c = partial_message(&rp, 450u << 10, 300u << 10);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(grpc_status_of(&rp, c), SGRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_true(rawpeer_rst_code(&rp, c) >= 0);
  assert_null(rawpeer_headers(&rp, a, 0));
  assert_null(rawpeer_headers(&rp, b, 0));
  /* C's buffer went back; A's and B's (450 KiB each, their capacity)
   * stay */
  assert_true(sgrpc_budget_used(shared) >= (size_t)900 << 10);
  assert_true(sgrpc_budget_used(shared) < (size_t)940 << 10);

  more_body(&rp, a, (50u << 10) + 5, 1);
  more_body(&rp, b, (50u << 10) + 5, 1);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(grpc_status_of(&rp, a), SGRPC_STATUS_OK);
  assert_int_equal(grpc_status_of(&rp, b), SGRPC_STATUS_OK);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 2);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, NULL, 1);
  assert_int_equal(e->len, 450u << 10);
  assert_null(rawpeer_goaway(&rp));
  assert_int_equal(rp.conn_err, 0);
  rawpeer_free(&rp);
  assert_int_equal(sgrpc_budget_used(shared), 0);
  sgrpc_budget_del(shared);
}

/* A header block that would pass the connection's budget ends its call
 * RESOURCE_EXHAUSTED too. */
static void test_conn_budget_header_block(void **state) {
  static char big[3000];
  const char *nv[] = {REQ, "x-big", big, NULL};
  sgrpc_settings s;
  rawpeer rp;
  int32_t sid;
  (void)state;
  memset(big, 'v', sizeof(big) - 1);
  settings_for(&s, 2048, NULL);
  open_peer(&rp, &s, NULL, ok_app);
  sid = rawpeer_submit_request(&rp, nv, NULL, 0, 1);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(grpc_status_of(&rp, sid), SGRPC_STATUS_RESOURCE_EXHAUSTED);
  /* a small request on the same connection is served */
  sid = rawpeer_submit_request(&rp, REQ_NV, NULL, 0, 1);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(grpc_status_of(&rp, sid), SGRPC_STATUS_OK);
  assert_int_equal(rp.conn_err, 0);
  rawpeer_free(&rp);
}

/* A shared budget of 1 MiB over two connections (each with its own
 * default budget): the connection whose bytes would pass it loses that
 * call; the other connection's call completes. */
static void test_shared_budget(void **state) {
  sgrpc_budget *shared = NULL;
  sgrpc_settings s;
  rawpeer one, two;
  int32_t a, b;
  (void)state;
  assert_int_equal(sgrpc_budget_new(&shared, 1u << 20, NULL), 0);
  settings_for(&s, 0, shared);
  open_peer(&one, &s, NULL, ok_app);
  open_peer(&two, &s, NULL, ok_app);
  a = partial_message(&one, 900u << 10, 700u << 10);
  rawpeer_run(&one, ROUNDS);
  b = partial_message(&two, 500u << 10, 400u << 10);
  rawpeer_run(&two, ROUNDS);
  assert_int_equal(grpc_status_of(&two, b), SGRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_true(rawpeer_rst_code(&two, b) >= 0);
  assert_null(rawpeer_headers(&one, a, 0));
  more_body(&one, a, (200u << 10) + 5, 1);
  rawpeer_run(&one, ROUNDS);
  assert_int_equal(grpc_status_of(&one, a), SGRPC_STATUS_OK);
  /* with room again, the second connection is served */
  b = partial_message(&two, 500u << 10, (500u << 10) + 5);
  rawpeer_run(&two, ROUNDS);
  assert_int_equal(grpc_status_of(&two, b), -1); /* no END_STREAM yet */
  rawpeer_submit_trailers(&two, b, (const char *const[]){"x-end", "1", NULL});
  rawpeer_run(&two, ROUNDS);
  assert_int_equal(grpc_status_of(&two, b), SGRPC_STATUS_OK);
  assert_int_equal(one.conn_err, 0);
  assert_int_equal(two.conn_err, 0);
  rawpeer_free(&one);
  rawpeer_free(&two);
  assert_int_equal(sgrpc_budget_used(shared), 0);
  sgrpc_budget_del(shared);
}

/* The first call is answered with a 600 KiB message at once (queued
 * output); later calls get nothing. */
static void big_reply_app(rawpeer *rp, const sgrpc_event *ev, void *ud) {
  static uint8_t reply[600u << 10];
  int *replied = ud;
  (void)rp;
  if (ev->type != SGRPC_EV_CALL_NEW || *replied) return;
  *replied = 1;
  memset(reply, 'r', sizeof(reply));
  assert_int_equal(sgrpc_call_send(ev->call, reply, sizeof(reply), 0), 0);
}

/* Budget 1 MiB: 600 KiB of queued output is more than half of it, so
 * the 2.5 MiB the peer then sends on another stream (25 messages, each
 * delivered) bring no connection-level WINDOW_UPDATE (nghttp2 would send
 * one past 2 MiB of its 4 MiB window); once the output has drained, the
 * held-back credit goes out. The connection is never closed. */
static void test_credit_held_while_output_queued(void **state) {
  sgrpc_settings s;
  rawpeer rp;
  int replied = 0, i;
  int32_t b;
  size_t wu0;
  (void)state;
  settings_for(&s, 1u << 20, NULL);
  open_peer(&rp, &s, NULL, big_reply_app);
  rp.ud = &replied;
  wu0 = rawpeer_count_frames(&rp, 0, NGHTTP2_WINDOW_UPDATE);
  rawpeer_submit_request(&rp, REQ_NV, NULL, 0, 0);
  rawpeer_feed(&rp); /* the request in; its answer stays queued */
  assert_int_equal(replied, 1);
  b = partial_message(&rp, 100u << 10, (100u << 10) + 5);
  for (i = 1; i < 25; i++) {
    uint8_t pfx[5] = {0, 0, 0x01, 0x90, 0x00}; /* 100 KiB */
    rawpeer_submit_data(&rp, b, pfx, 5, 0);
    more_body(&rp, b, 100u << 10, 0);
  }
  rp.max_split = 16384; /* events pulled (and released) as they come */
  rawpeer_feed(&rp);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 25);
  rawpeer_flush(&rp); /* control frames go out before DATA */
  assert_int_equal(rawpeer_count_frames(&rp, 0, NGHTTP2_WINDOW_UPDATE), wu0);
  rawpeer_run(&rp, ROUNDS); /* the reply drains; the credit follows */
  assert_true(rawpeer_count_frames(&rp, 0, NGHTTP2_WINDOW_UPDATE) > wu0);
  assert_null(rawpeer_goaway(&rp));
  assert_int_equal(rp.conn_err, 0);
  rawpeer_free(&rp);
}

/* Every allocation of a unary call's processing fails once in turn: the
 * connection goes on (a failure absorbed), or it ends with
 * SGRPC_ERR_CONN_NOMEM, and then a GOAWAY INTERNAL_ERROR reached the
 * peer. Never another code, never silence. */
static void test_nomem_sends_goaway(void **state) {
  int k, lost = 0;
  (void)state;
  for (k = 1; k <= 80; k++) {
    sgrpc_settings s;
    sgrpc_mem mem;
    failmem fm;
    rawpeer rp;
    uint8_t body[16];
    size_t n = rawpeer_grpc_frame(body, 0, "ping", 4);
    failmem_init(&fm, &mem);
    settings_for(&s, 0, NULL);
    open_peer(&rp, &s, &mem, echo_app);
    fm.fail_at = fm.count + k;
    rawpeer_submit_request(&rp, REQ_NV, body, n, 1);
    rawpeer_run(&rp, ROUNDS);
    if (rp.conn_err != 0) {
      const rp_frame *g = rawpeer_goaway(&rp);
      if (rp.conn_err != SGRPC_ERR_CONN_NOMEM)
        fail_msg("allocation %d: %d (%s)", k, rp.conn_err, sgrpc_strerror(rp.conn_err));
      if (!g) fail_msg("allocation %d: connection lost without a GOAWAY", k);
      assert_int_equal(g->error_code, NGHTTP2_INTERNAL_ERROR);
      lost++;
    }
    rawpeer_free(&rp);
    assert_int_equal(fm.live, 0);
  }
  assert_true(lost > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_announced_length_not_reserved),
      cmocka_unit_test(test_full_messages_bounded),
      cmocka_unit_test(test_conn_budget_ends_the_call_that_passes),
      cmocka_unit_test(test_conn_budget_header_block),
      cmocka_unit_test(test_shared_budget),
      cmocka_unit_test(test_credit_held_while_output_queued),
      cmocka_unit_test(test_nomem_sends_goaway),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
