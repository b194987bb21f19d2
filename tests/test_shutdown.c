/*
 * Server shutdown at the engine, seen by a raw HTTP/2 client:
 *  - the two-step GOAWAY's final last stream id is the truth: a request
 *    stream above it never becomes a call, even when it arrives while the
 *    final GOAWAY is still queued behind blocked output;
 *  - at the drain deadline the calls left are ended with a status the
 *    client can read (UNAVAILABLE in trailers) and a reset, not dropped.
 */
#include "rawpeer.h"

#include <stdlib.h>
#include <string.h>

#define ROUNDS 64

static const char *const req[] = {":method", "POST", ":scheme", "http", ":path", "/t.S/M",
                                  ":authority", "x", "te", "trailers", "content-type",
                                  "application/grpc", NULL};

/* Request HEADERS the raw client has encoded but the engine has not read:
 * what a client had already sent when our GOAWAY reached it. */
static size_t take_raw_output(rawpeer *rp, uint8_t *out, size_t cap) {
  size_t len = 0;
  for (;;) {
    const uint8_t *p;
    ssize_t n = nghttp2_session_mem_send(rp->h2, &p);
    assert_true(n >= 0);
    if (n == 0) break;
    assert_true(len + (size_t)n <= cap);
    memcpy(out + len, p, (size_t)n);
    len += (size_t)n;
  }
  return len;
}

static void feed_bytes(rawpeer *rp, const uint8_t *d, size_t len) {
  size_t off = 0;
  int guard;
  for (guard = 0; guard < 100 && off < len; guard++) {
    sgrpc_ssize n = sgrpc_conn_recv(rp->conn, d + off, len - off, rp->now);
    assert_true(n >= 0);
    off += (size_t)n;
    rawpeer_drain(rp);
  }
  assert_int_equal(off, len);
}

static int32_t max_call_stream(const rawpeer *rp) {
  int32_t m = 0;
  size_t i;
  for (i = 0; i < rp->nevents; i++)
    if (rp->events[i].type == SGRPC_EV_CALL_NEW && rp->events[i].stream_id > m)
      m = rp->events[i].stream_id;
  return m;
}

static void test_no_call_above_final_last_id(void **state) {
  rawpeer rp;
  uint8_t held[4096];
  size_t held_len;
  const rp_frame *g;
  int32_t s1, s3, s5, s7, s9;
  (void)state;
  rawpeer_new_client(&rp, NULL);
  rawpeer_run(&rp, ROUNDS);
  s1 = rawpeer_submit_request(&rp, req, NULL, 0, 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 1);

  /* SIGTERM: notice GOAWAY and PING queued; the output stays blocked. */
  assert_int_equal(sgrpc_conn_shutdown(rp.conn, SGRPC_NEVER, rp.now), 0);
  s3 = rawpeer_submit_request(&rp, req, NULL, 0, 0);
  s5 = rawpeer_submit_request(&rp, req, NULL, 0, 0);
  rawpeer_feed(&rp);
  /* Before the final GOAWAY these are the server's to run. */
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 3);

  /* The client sent two more before it read anything of ours. */
  s7 = rawpeer_submit_request(&rp, req, NULL, 0, 0);
  s9 = rawpeer_submit_request(&rp, req, NULL, 0, 0);
  held_len = take_raw_output(&rp, held, sizeof(held));
  assert_true(held_len > 0);

  /* Some output gets through: the client reads the notice and the PING
   * and answers; the PING's ACK makes the engine queue the final GOAWAY,
   * which stays queued (the output is blocked again). */
  rawpeer_flush(&rp);
  rawpeer_feed(&rp);
  /* Now the two held requests arrive, after the final GOAWAY was queued
   * but before it went out. */
  feed_bytes(&rp, held, held_len);
  rawpeer_run(&rp, ROUNDS);

  g = rawpeer_goaway(&rp);
  assert_non_null(g);
  assert_int_equal(g->error_code, NGHTTP2_NO_ERROR);
  assert_int_equal(g->last_stream_id, s5);
  /* No stream above the final last id reached the application. */
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 3);
  assert_true(max_call_stream(&rp) <= g->last_stream_id);
  (void)s1;
  (void)s3;
  (void)s7;
  (void)s9;
  rawpeer_free(&rp);
}

static void test_drain_deadline_status(void **state) {
  rawpeer rp;
  const rp_frame *f;
  const rp_event *e;
  int32_t sid;
  (void)state;
  rawpeer_new_client(&rp, NULL);
  rawpeer_run(&rp, ROUNDS);
  sid = rawpeer_submit_request(&rp, req, NULL, 0, 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 1);
  /* The handler never answers; the drain deadline is 100 ms away. */
  assert_int_equal(sgrpc_conn_shutdown(rp.conn, rp.now + 100000000LL, rp.now), 0);
  rawpeer_run(&rp, ROUNDS);
  rawpeer_advance(&rp, 200000000LL);
  rawpeer_run(&rp, ROUNDS);
  /* The client reads why its call ended: UNAVAILABLE in trailers ... */
  f = rawpeer_headers(&rp, sid, 0);
  assert_non_null(f);
  assert_int_equal(f->end_stream, 1);
  assert_non_null(rawpeer_field(f, "grpc-status"));
  assert_string_equal(rawpeer_field(f, "grpc-status"), "14");
  /* ... and its open request side is reset (it had not half-closed). */
  assert_true(rawpeer_rst_code(&rp, sid) >= 0);
  /* The application sees the call end too. */
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->code, SGRPC_STATUS_UNAVAILABLE);
  rawpeer_free(&rp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_call_above_final_last_id),
      cmocka_unit_test(test_drain_deadline_status),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
