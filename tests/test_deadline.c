/*
 * Deadlines: grpc-timeout on the wire, server- and client-side expiry
 * driven by the fake clock, the expiry the engine reports, and disarming.
 */
#include "rawpeer.h"
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 64
#define MS 1000000LL
#define SEC 1000000000LL

/* ---- the timeout as the client writes it ---- */

static const char *sent_timeout(int64_t timeout_ns) {
  static char got[32];
  rawpeer rp;
  sgrpc_call_opts o;
  sgrpc_call *call;
  const char *v;
  rawpeer_new_server(&rp, NULL);
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.deadline = rp.now + timeout_ns;
  assert_int_equal(sgrpc_call_start(rp.conn, &o, rp.now, &call), 0);
  assert_int_equal(sgrpc_conn_next_expiry(rp.conn), o.deadline);
  rawpeer_run(&rp, ROUNDS);
  v = rawpeer_field(rawpeer_headers(&rp, sgrpc_call_stream_id(call), 0), "grpc-timeout");
  assert_non_null(v);
  snprintf(got, sizeof(got), "%s", v);
  rawpeer_free(&rp);
  return got;
}

static void test_timeout_on_wire(void **state) {
  static const struct {
    int64_t ns;
    const char *wire;
  } v[] = {{7 * SEC, "7S"},
           {20000, "20u"},
           {1, "1n"},
           {100, "100n"},
           {MS, "1m"},
           {1500 * MS, "1500m"},
           {2 * 3600 * SEC, "2H"},
           {90 * 60 * SEC, "90M"},
           {99999999, "99999999n"},
           {100000001, "100001u"}, /* not exact in any 8 digits: rounded up */
           {100000000LL * SEC, "1666667M"}}; /* finest unit that fits */
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    const char *got = sent_timeout(v[i].ns);
    if (strcmp(got, v[i].wire) != 0)
      fail_msg("timeout %lld ns sent as %s, want %s", (long long)v[i].ns, got, v[i].wire);
  }
}

static void test_deadline_in_past(void **state) {
  rawpeer rp;
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  (void)state;
  rawpeer_new_server(&rp, NULL);
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  /* a deadline at or before now: DEADLINE_EXCEEDED at once, nothing sent */
  for (int i = 0; i < 2; i++) {
    sgrpc_event ev;
    o.deadline = rp.now - 1 + i;
    o.user_data = &o;
    assert_int_equal(sgrpc_call_start(rp.conn, &o, rp.now, &call), 0);
    assert_non_null(call);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, 0), SGRPC_ERR_CALL_CLOSED);
    assert_int_equal(sgrpc_conn_next_event(rp.conn, &ev), 1);
    assert_int_equal(ev.type, SGRPC_EV_CLOSE);
    assert_ptr_equal(ev.call, call);
    assert_ptr_equal(ev.call_user_data, &o);
    assert_int_equal(ev.u.close.status.code, SGRPC_STATUS_DEADLINE_EXCEEDED);
    assert_string_equal(ev.u.close.status.message, "deadline exceeded before the call started");
    assert_int_equal(ev.u.close.reset, 0);
    assert_int_equal(sgrpc_conn_next_event(rp.conn, &ev), 0);
    assert_int_equal(sgrpc_conn_call_count(rp.conn), 1);
    sgrpc_call_release(call);
    call = NULL;
  }
  o.user_data = NULL;
  assert_int_equal(sgrpc_conn_call_count(rp.conn), 0);
  /* no deadline left (the idle trim aside: done here) */
  assert_int_equal(sgrpc_conn_trim(rp.conn), 0);
  assert_int_equal(sgrpc_conn_next_expiry(rp.conn), SGRPC_NEVER);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_frames(&rp, -1, NGHTTP2_HEADERS), 0);
  /* 0 and SGRPC_NEVER mean none */
  o.deadline = SGRPC_NEVER;
  assert_int_equal(sgrpc_call_start(rp.conn, &o, rp.now, &call), 0);
  /* no deadline left (the idle trim aside: done here) */
  assert_int_equal(sgrpc_conn_trim(rp.conn), 0);
  assert_int_equal(sgrpc_conn_next_expiry(rp.conn), SGRPC_NEVER);
  rawpeer_run(&rp, ROUNDS);
  assert_null(rawpeer_field(rawpeer_headers(&rp, 1, 0), "grpc-timeout"));
  rawpeer_free(&rp);
}

/* ---- server side, raw client ---- */

typedef struct srv_app {
  int answer_at_once;  /* send OK as soon as the call arrives */
  int send_message;    /* send one message (headers go out) on CALL_NEW */
} srv_app;

static void srv_event(rawpeer *rp, const sgrpc_event *ev, void *ud) {
  srv_app *a = ud;
  (void)rp;
  if (ev->type != SGRPC_EV_CALL_NEW) return;
  if (a->send_message)
    assert_int_equal(sgrpc_call_send(ev->call, (const uint8_t *)"m", 1, 0), 0);
  if (a->answer_at_once) {
    sgrpc_status st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
  }
}

static int32_t raw_request(rawpeer *rp, const char *timeout, int end) {
  const char *const nv[] = {":method", "POST", ":scheme", "http", ":path", "/t.S/M", "te",
                            "trailers", "content-type", "application/grpc", "grpc-timeout",
                            timeout, NULL};
  uint8_t m[16];
  size_t n = rawpeer_grpc_frame(m, 0, "q", 1);
  int32_t sid = rawpeer_submit_request(rp, nv, m, n, end);
  rawpeer_run(rp, ROUNDS);
  return sid;
}

static void check_server_expiry(int send_message) {
  srv_app a = {0, send_message};
  rawpeer rp;
  int32_t sid;
  const rp_event *e;
  const rp_frame *f;
  int64_t t0;
  rawpeer_new_client(&rp, NULL);
  rp.on_event = srv_event;
  rp.ud = &a;
  rp.auto_release = 1;
  t0 = rp.now;
  sid = raw_request(&rp, "100m", 0);
  e = rawpeer_event(&rp, SGRPC_EV_CALL_NEW, NULL, 0);
  assert_non_null(e);
  assert_true(e->deadline == t0 + 100 * MS);
  assert_true(sgrpc_conn_next_expiry(rp.conn) == t0 + 100 * MS);

  rawpeer_advance(&rp, 100 * MS - 1);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 0);
  rawpeer_advance(&rp, 1);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 1);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_int_equal(e->code, SGRPC_STATUS_DEADLINE_EXCEEDED);
  /* no deadline left (the idle trim aside: done here) */
  assert_int_equal(sgrpc_conn_trim(rp.conn), 0);
  assert_int_equal(sgrpc_conn_next_expiry(rp.conn), SGRPC_NEVER);
  rawpeer_run(&rp, ROUNDS);

  if (send_message) {
    size_t dl;
    rawpeer_assert_fields(rawpeer_headers(&rp, sid, 0), ":status", "200", "content-type",
                          "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", NULL);
    rawpeer_stream_data(&rp, sid, &dl);
    assert_int_equal(dl, 6);
    f = rawpeer_headers(&rp, sid, 1);
    assert_non_null(f);
    assert_int_equal(f->hkind, RP_HDRS_TRAILERS);
    rawpeer_assert_fields(f, "grpc-status", "4", "grpc-message", "deadline exceeded", NULL);
  } else {
    f = rawpeer_headers(&rp, sid, 0);
    assert_non_null(f);
    rawpeer_assert_fields(f, ":status", "200", "content-type", "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip",
                          "grpc-status", "4", "grpc-message", "deadline exceeded", NULL);
  }
  assert_true(f->end_stream);
  /* the client had not finished sending: the server stops it with
   * RST_STREAM NO_ERROR after its END_STREAM (RFC 7540 8.1) */
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_NO_ERROR);
  assert_int_equal(sgrpc_conn_call_count(rp.conn), 0);
  assert_int_equal(rp.conn_err, 0);
  rawpeer_free(&rp);
}

static void test_server_expiry(void **state) {
  (void)state;
  check_server_expiry(0); /* trailers-only DEADLINE_EXCEEDED */
  check_server_expiry(1); /* after headers and a message: real trailers */
}

static void test_server_answers_in_time(void **state) {
  srv_app a = {1, 1};
  rawpeer rp;
  int32_t sid;
  const rp_event *e;
  (void)state;
  rawpeer_new_client(&rp, NULL);
  rp.on_event = srv_event;
  rp.ud = &a;
  rp.auto_release = 1;
  sid = raw_request(&rp, "1S", 1);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->code, SGRPC_STATUS_OK);
  /* no deadline left (the idle trim aside: done here) */
  assert_int_equal(sgrpc_conn_trim(rp.conn), 0);
  assert_int_equal(sgrpc_conn_next_expiry(rp.conn), SGRPC_NEVER);
  rawpeer_advance(&rp, 2 * SEC);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 1);
  rawpeer_assert_fields(rawpeer_headers(&rp, sid, 1), "grpc-status", "0", NULL);
  assert_int_equal(rawpeer_count_frames(&rp, sid, NGHTTP2_HEADERS), 2);
  assert_int_equal(rawpeer_rst_code(&rp, sid), -1);
  assert_int_equal(sgrpc_conn_call_count(rp.conn), 0);
  rawpeer_free(&rp);
}


/* The app's status is queued before the deadline but the adapter writes
 * it only after the deadline passed: the call was answered in time, so
 * the app's CLOSE and the wire both carry the app's status. */
static void test_server_answer_queued_at_deadline(void **state) {
  srv_app a = {1, 0};
  rawpeer rp;
  int32_t sid;
  const rp_event *e;
  const char *const nv[] = {":method", "POST", ":scheme", "http", ":path", "/t.S/M", "te",
                            "trailers", "content-type", "application/grpc", "grpc-timeout",
                            "10m", NULL};
  (void)state;
  rawpeer_new_client(&rp, NULL);
  rawpeer_run(&rp, ROUNDS);
  rp.on_event = srv_event;
  rp.ud = &a;
  rp.auto_release = 1;
  sid = rawpeer_submit_request(&rp, nv, NULL, 0, 1);
  rawpeer_feed(&rp); /* request in, status queued, not yet written */
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 1);
  assert_int_equal(rawpeer_count_frames(&rp, sid, NGHTTP2_HEADERS), 0);
  rawpeer_advance(&rp, 20 * MS);
  rawpeer_run(&rp, ROUNDS);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 1);
  assert_non_null(rawpeer_field(rawpeer_headers(&rp, sid, 0), "grpc-status"));
  assert_string_equal(rawpeer_field(rawpeer_headers(&rp, sid, 0), "grpc-status"), "0");
  assert_int_equal(e->code, SGRPC_STATUS_OK);
  assert_int_equal(rawpeer_rst_code(&rp, sid), -1);
  assert_int_equal(sgrpc_conn_call_count(rp.conn), 0);
  rawpeer_free(&rp);
}

/* ---- client side, raw server ---- */

static sgrpc_call *start_with_deadline(rawpeer *rp, int64_t deadline) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.deadline = deadline;
  assert_int_equal(sgrpc_call_start(rp->conn, &o, rp->now, &call), 0);
  return call;
}

static void test_client_expiry(void **state) {
  static const char *const hdrs[] = {":status", "200", "content-type", "application/grpc",
                                     NULL};
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  const rp_event *e;
  int with_headers;
  (void)state;
  for (with_headers = 0; with_headers < 2; with_headers++) {
    rawpeer_new_server(&rp, NULL);
    rp.auto_release = 1;
    call = start_with_deadline(&rp, rp.now + 50 * MS);
    rawpeer_run(&rp, ROUNDS);
    sid = sgrpc_call_stream_id(call);
    if (with_headers) {
      rawpeer_submit_response(&rp, sid, hdrs, 0);
      rawpeer_run(&rp, ROUNDS);
      assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HEADERS, call), 1);
    }
    rawpeer_advance(&rp, 49 * MS);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 0);
    rawpeer_advance(&rp, 1 * MS);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, call), 1);
    e = rawpeer_event(&rp, SGRPC_EV_CLOSE, call, 0);
    assert_int_equal(e->code, SGRPC_STATUS_DEADLINE_EXCEEDED);
    assert_int_equal(e->retry_safe, 0);
    rawpeer_run(&rp, ROUNDS);
    assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_CANCEL);
    /* a late answer from the server changes nothing */
    rawpeer_advance(&rp, SEC);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 1);
    assert_int_equal(sgrpc_conn_call_count(rp.conn), 0);
    assert_int_equal(rp.conn_err, 0);
    rawpeer_free(&rp);
  }
}

static void test_next_expiry_order(void **state) {
  static const char *const hdrs[] = {":status", "200", "content-type", "application/grpc",
                                     NULL};
  static const char *const trl[] = {"grpc-status", "0", NULL};
  rawpeer rp;
  sgrpc_call *c5, *c2, *c9, *cn;
  int64_t t0;
  (void)state;
  rawpeer_new_server(&rp, NULL);
  rp.auto_release = 1;
  t0 = rp.now;
  /* no deadline left (the idle trim aside: done here) */
  assert_int_equal(sgrpc_conn_trim(rp.conn), 0);
  assert_int_equal(sgrpc_conn_next_expiry(rp.conn), SGRPC_NEVER);
  c5 = start_with_deadline(&rp, t0 + 5 * SEC);
  assert_true(sgrpc_conn_next_expiry(rp.conn) == t0 + 5 * SEC);
  c2 = start_with_deadline(&rp, t0 + 2 * SEC);
  c9 = start_with_deadline(&rp, t0 + 9 * SEC);
  cn = start_with_deadline(&rp, 0);
  assert_true(sgrpc_conn_next_expiry(rp.conn) == t0 + 2 * SEC);
  rawpeer_run(&rp, ROUNDS);

  /* cancelling the earliest moves the expiry to the next one */
  assert_int_equal(sgrpc_call_cancel(c2), 0);
  assert_true(sgrpc_conn_next_expiry(rp.conn) == t0 + 5 * SEC);
  rawpeer_run(&rp, ROUNDS);

  /* completing a call disarms its deadline */
  rawpeer_submit_response(&rp, sgrpc_call_stream_id(c5), hdrs, 0);
  rawpeer_submit_trailers(&rp, sgrpc_call_stream_id(c5), trl);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_event(&rp, SGRPC_EV_CLOSE, c5, 0)->code, SGRPC_STATUS_OK);
  assert_true(sgrpc_conn_next_expiry(rp.conn) == t0 + 9 * SEC);
  rawpeer_advance(&rp, 6 * SEC); /* past c5's old deadline: nothing */
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 2);

  rawpeer_advance(&rp, 3 * SEC);
  assert_int_equal(rawpeer_event(&rp, SGRPC_EV_CLOSE, c9, 0)->code,
                   SGRPC_STATUS_DEADLINE_EXCEEDED);
  /* no deadline left (the idle trim aside: done here) */
  assert_int_equal(sgrpc_conn_trim(rp.conn), 0);
  assert_int_equal(sgrpc_conn_next_expiry(rp.conn), SGRPC_NEVER);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, cn), 0);
  /* handling expiry early or with nothing armed is harmless */
  assert_int_equal(sgrpc_conn_handle_expiry(rp.conn, rp.now), 0);
  rawpeer_drain(&rp);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 3);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rp.conn_err, 0);
  rawpeer_free(&rp);
}

/* Many calls with shuffled deadlines expire in deadline order. */
static void test_many_deadlines(void **state) {
  enum { N = 40 };
  rawpeer rp;
  sgrpc_call *calls[N];
  int64_t dl[N], t0;
  int i, fired = 0;
  (void)state;
  rawpeer_new_server(&rp, NULL);
  rp.auto_release = 1;
  t0 = rp.now;
  for (i = 0; i < N; i++) {
    dl[i] = t0 + (int64_t)((i * 17) % N + 1) * MS;
    calls[i] = start_with_deadline(&rp, dl[i]);
  }
  rawpeer_run(&rp, ROUNDS);
  for (i = 1; i <= N; i++) {
    int64_t next = sgrpc_conn_next_expiry(rp.conn);
    assert_true(next == t0 + i * MS);
    rawpeer_advance(&rp, next - rp.now);
    fired++;
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), fired);
    /* the one that fired is the call with that deadline */
    {
      const rp_event *e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, fired - 1);
      int j, found = 0;
      for (j = 0; j < N; j++)
        if (calls[j] == e->call && dl[j] == t0 + i * MS) found = 1;
      assert_true(found);
      assert_int_equal(e->code, SGRPC_STATUS_DEADLINE_EXCEEDED);
    }
    rawpeer_run(&rp, ROUNDS);
  }
  /* no deadline left (the idle trim aside: done here) */
  assert_int_equal(sgrpc_conn_trim(rp.conn), 0);
  assert_int_equal(sgrpc_conn_next_expiry(rp.conn), SGRPC_NEVER);
  assert_int_equal(rawpeer_count_frames(&rp, -1, NGHTTP2_RST_STREAM), N);
  rawpeer_free(&rp);
}

/* ---- both engines, in-memory pair ---- */

typedef struct pair_world {
  int srv_code, cli_code;
  int srv_closed, cli_closed;
  int64_t srv_deadline;
} pair_world;

static void pair_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  pair_world *w = ud;
  if (conn == p->srv && ev->type == SGRPC_EV_CALL_NEW) w->srv_deadline = ev->u.call_new.deadline;
  if (ev->type != SGRPC_EV_CLOSE) return;
  if (conn == p->srv) {
    w->srv_closed++;
    w->srv_code = ev->u.close.status.code;
  } else {
    w->cli_closed++;
    w->cli_code = ev->u.close.status.code;
  }
  sgrpc_call_release(ev->call);
}

static void test_pair_deadline(void **state) {
  pair p;
  pair_world w;
  sgrpc_call_opts o;
  sgrpc_call *call;
  int64_t t0;
  (void)state;
  memset(&w, 0, sizeof(w));
  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  p.on_event = pair_event;
  p.ud = &w;
  t0 = p.now;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.deadline = t0 + 3 * SEC;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  pair_run(&p, ROUNDS);
  /* the server sees the same absolute deadline on the shared clock */
  assert_true(w.srv_deadline == t0 + 3 * SEC);
  assert_true(sgrpc_conn_next_expiry(p.srv) == t0 + 3 * SEC);
  pair_advance(&p, 3 * SEC - 1);
  pair_run(&p, ROUNDS);
  assert_int_equal(w.cli_closed + w.srv_closed, 0);
  pair_advance(&p, 1);
  pair_run(&p, ROUNDS);
  assert_int_equal(w.cli_closed, 1);
  assert_int_equal(w.cli_code, SGRPC_STATUS_DEADLINE_EXCEEDED);
  assert_int_equal(w.srv_closed, 1);
  assert_int_equal(w.srv_code, SGRPC_STATUS_DEADLINE_EXCEEDED);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  pair_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timeout_on_wire),
      cmocka_unit_test(test_deadline_in_past),
      cmocka_unit_test(test_server_expiry),
      cmocka_unit_test(test_server_answers_in_time),
      cmocka_unit_test(test_server_answer_queued_at_deadline),
      cmocka_unit_test(test_client_expiry),
      cmocka_unit_test(test_next_expiry_order),
      cmocka_unit_test(test_many_deadlines),
      cmocka_unit_test(test_pair_deadline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
