/*
 * The in-memory test channel (<sgrpc/testing.h>) as a user would use it
 * to unit-test handlers: all four RPC kinds run to completion, deadlines
 * on the fake clock end calls DEADLINE_EXCEEDED on both sides, client
 * cancellation reaches the handler, deleting the channel ends open calls,
 * and every allocation failing in turn gives an error or a status with
 * nothing leaked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sgrpc/testing.h>

#include "support.h"

#define MS 1000000LL

static const sgrpc_method m_unary = {"/t.Kinds/Unary", NULL, NULL, 0, 0, &sgrpc_codec_raw};
static const sgrpc_method m_sstream = {"/t.Kinds/ServerStream", NULL, NULL, 0, 1,
                                       &sgrpc_codec_raw};
static const sgrpc_method m_cstream = {"/t.Kinds/ClientStream", NULL, NULL, 1, 0,
                                       &sgrpc_codec_raw};
static const sgrpc_method m_bidi = {"/t.Kinds/Bidi", NULL, NULL, 1, 1, &sgrpc_codec_raw};
static const sgrpc_method m_hold = {"/t.Kinds/Hold", NULL, NULL, 0, 0, &sgrpc_codec_raw};

/* ---- handlers ---- */

static int srv_closes, srv_close_code, srv_requests;
static size_t cstream_total;

static void h_unary(sgrpc_server_call *call, const void *msg, void *ud) {
  srv_requests++;
  (void)sgrpc_server_call_reply(call, msg);
}

/* Sends the request back as many times as its length. */
static void h_sstream(sgrpc_server_call *call, const void *msg, void *ud) {
  const sgrpc_bytes *b = msg;
  size_t i;
  srv_requests++;
  for (i = 0; i < b->len; i++)
    if (sgrpc_server_call_send(call, msg) < 0) return;
  (void)sgrpc_server_call_finish(call, NULL);
}

/* Replies with the total length of the requests, as text. */
static void h_cstream(sgrpc_server_call *call, const void *msg, void *ud) {
  char text[32];
  sgrpc_bytes reply;
  if (msg) {
    srv_requests++;
    cstream_total += ((const sgrpc_bytes *)msg)->len;
    return;
  }
  snprintf(text, sizeof(text), "%zu", cstream_total);
  reply.data = (const uint8_t *)text;
  reply.len = strlen(text);
  (void)sgrpc_server_call_reply(call, &reply);
}

static void h_bidi(sgrpc_server_call *call, const void *msg, void *ud) {
  if (msg) {
    srv_requests++;
    (void)sgrpc_server_call_send(call, msg);
    return;
  }
  (void)sgrpc_server_call_fail(call, SGRPC_STATUS_ABORTED, "bidi done");
}

/* Never answers: the call ends by deadline, cancel or channel close. */
static void h_hold(sgrpc_server_call *call, const void *msg, void *ud) { srv_requests++; }

static void h_close(sgrpc_server_call *call, const sgrpc_status_info *st, void *ud) {
  srv_closes++;
  srv_close_code = st->code;
}

/* ---- client side ---- */

typedef struct result {
  int done;
  int code;
  char message[64];
  char replies[256];
} result;

static void c_message(sgrpc_client_call *call, const void *msg, void *ud) {
  result *r = ud;
  const sgrpc_bytes *b = msg;
  size_t n = strlen(r->replies);
  snprintf(r->replies + n, sizeof(r->replies) - n, "%.*s;", (int)b->len,
           (const char *)b->data);
}

static void c_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                    void *ud) {
  result *r = ud;
  r->done++;
  r->code = st->code;
  snprintf(r->message, sizeof(r->message), "%s", st->message);
  if (reply) c_message(call, reply, ud);
}

static const sgrpc_client_callbacks cbs = {NULL, c_message, c_close, {NULL, NULL}, NULL};

static sgrpc_router *make_router(const sgrpc_mem *mem) {
  static const sgrpc_handler hu = {h_unary, h_close, NULL, NULL, NULL};
  static const sgrpc_handler hs = {h_sstream, h_close, NULL, NULL, NULL};
  static const sgrpc_handler hc = {h_cstream, h_close, NULL, NULL, NULL};
  static const sgrpc_handler hb = {h_bidi, h_close, NULL, NULL, NULL};
  static const sgrpc_handler hh = {h_hold, h_close, NULL, NULL, NULL};
  sgrpc_router *r;
  if (sgrpc_router_new(&r, mem) != 0) return NULL;
  if (sgrpc_router_add(r, &m_unary, &hu) || sgrpc_router_add(r, &m_sstream, &hs) ||
      sgrpc_router_add(r, &m_cstream, &hc) || sgrpc_router_add(r, &m_bidi, &hb) ||
      sgrpc_router_add(r, &m_hold, &hh)) {
    sgrpc_router_del(r);
    return NULL;
  }
  return r;
}

static void reset_counts(void) {
  srv_closes = srv_close_code = srv_requests = 0;
  cstream_total = 0;
}

static int start(sgrpc_test_channel *ch, const sgrpc_method *m, const char *req,
                 int64_t timeout, result *r, sgrpc_client_call **pcall) {
  sgrpc_rpc_opts o;
  sgrpc_bytes b;
  memset(&o, 0, sizeof(o));
  memset(r, 0, sizeof(*r));
  o.user_data = r;
  if (timeout) o.deadline = sgrpc_test_channel_now(ch) + timeout;
  b.data = (const uint8_t *)(req ? req : "");
  b.len = req ? strlen(req) : 0;
  return sgrpc_rpc_call_start(sgrpc_test_channel_client(ch), m, req ? &b : NULL, &o,
                              sgrpc_test_channel_now(ch), &cbs, pcall);
}

static void send_str(sgrpc_client_call *call, const char *s) {
  sgrpc_bytes b = {(const uint8_t *)s, strlen(s)};
  assert_int_equal(sgrpc_client_call_send(call, &b), 0);
}

static void test_four_kinds(void **state) {
  sgrpc_router *router = make_router(NULL);
  sgrpc_test_channel *ch;
  sgrpc_client_call *call;
  result r1, r2, r3, r4;
  reset_counts();
  assert_non_null(router);
  assert_int_equal(sgrpc_test_channel_new(NULL, router, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_test_channel_new(&ch, NULL, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_test_channel_new(&ch, router, NULL), 0);
  assert_true(sgrpc_test_channel_now(ch) > 0);

  /* all four at once on the one connection */
  assert_int_equal(start(ch, &m_unary, "one", 0, &r1, NULL), 0);
  assert_int_equal(start(ch, &m_sstream, "abc", 0, &r2, NULL), 0);
  assert_int_equal(start(ch, &m_cstream, NULL, 0, &r3, &call), 0);
  send_str(call, "12345");
  send_str(call, "678");
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  assert_int_equal(start(ch, &m_bidi, NULL, 0, &r4, &call), 0);
  send_str(call, "p");
  assert_int_equal(sgrpc_test_channel_run(ch, 0), 0);
  assert_int_equal(r4.done, 0);
  assert_string_equal(r4.replies, "p;"); /* echoed while the call is open */
  send_str(call, "q");
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  assert_int_equal(sgrpc_test_channel_run(ch, 0), 0);

  assert_int_equal(r1.done, 1);
  assert_int_equal(r1.code, SGRPC_STATUS_OK);
  assert_string_equal(r1.replies, "one;");
  assert_int_equal(r2.done, 1);
  assert_int_equal(r2.code, SGRPC_STATUS_OK);
  assert_string_equal(r2.replies, "abc;abc;abc;");
  assert_int_equal(r3.done, 1);
  assert_int_equal(r3.code, SGRPC_STATUS_OK);
  assert_string_equal(r3.replies, "8;");
  assert_int_equal(r4.done, 1);
  assert_int_equal(r4.code, SGRPC_STATUS_ABORTED);
  assert_string_equal(r4.message, "bidi done");
  assert_string_equal(r4.replies, "p;q;");
  assert_int_equal(srv_closes, 4);
  assert_int_equal(sgrpc_conn_call_count(sgrpc_test_channel_client_conn(ch)), 0);
  assert_int_equal(sgrpc_conn_call_count(sgrpc_test_channel_server_conn(ch)), 0);

  /* an unknown method is answered by the router */
  {
    static const sgrpc_method nope = {"/t.Kinds/Nope", NULL, NULL, 0, 0, &sgrpc_codec_raw};
    assert_int_equal(start(ch, &nope, "x", 0, &r1, NULL), 0);
    assert_int_equal(sgrpc_test_channel_run(ch, 0), 0);
    assert_int_equal(r1.code, SGRPC_STATUS_UNIMPLEMENTED);
  }
  assert_int_equal(sgrpc_test_channel_advance(ch, -1), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_test_channel_del(ch);
  sgrpc_router_del(router);
}

/* Deadlines follow the channel's clock only. */
static void test_deadline(void **state) {
  sgrpc_router *router = make_router(NULL);
  sgrpc_test_channel_opts o;
  sgrpc_test_channel *ch;
  result r;
  reset_counts();
  memset(&o, 0, sizeof(o));
  o.now = 77 * 1000 * MS;
  assert_int_equal(sgrpc_test_channel_new(&ch, router, &o), 0);
  assert_true(sgrpc_test_channel_now(ch) == 77 * 1000 * MS);
  assert_int_equal(start(ch, &m_hold, "wait", 100 * MS, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(ch, 0), 0);
  assert_int_equal(srv_requests, 1);
  assert_int_equal(sgrpc_test_channel_advance(ch, 60 * MS), 0);
  assert_int_equal(r.done, 0); /* not yet */
  assert_int_equal(srv_closes, 0);
  assert_int_equal(sgrpc_test_channel_advance(ch, 50 * MS), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_DEADLINE_EXCEEDED);
  assert_int_equal(srv_closes, 1);
  assert_int_equal(srv_close_code, SGRPC_STATUS_DEADLINE_EXCEEDED);
  assert_true(sgrpc_test_channel_now(ch) == 77 * 1000 * MS + 110 * MS);
  sgrpc_test_channel_del(ch);
  sgrpc_router_del(router);
}

/* A client cancel reaches the server handler's on_close as CANCELLED. */
static void test_cancel(void **state) {
  sgrpc_router *router = make_router(NULL);
  sgrpc_test_channel *ch;
  sgrpc_client_call *call;
  result r;
  reset_counts();
  assert_int_equal(sgrpc_test_channel_new(&ch, router, NULL), 0);
  assert_int_equal(start(ch, &m_bidi, NULL, 0, &r, &call), 0);
  send_str(call, "before");
  assert_int_equal(sgrpc_test_channel_run(ch, 0), 0);
  assert_string_equal(r.replies, "before;");
  assert_int_equal(sgrpc_client_call_cancel(call), 0);
  assert_int_equal(sgrpc_test_channel_run(ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_CANCELLED);
  assert_int_equal(srv_closes, 1);
  assert_int_equal(srv_close_code, SGRPC_STATUS_CANCELLED);
  sgrpc_test_channel_del(ch);
  sgrpc_router_del(router);
}

/* Deleting the channel with calls open ends them on both sides. */
static void test_del_with_open_calls(void **state) {
  sgrpc_router *router = make_router(NULL);
  sgrpc_test_channel *ch;
  result r1, r2;
  reset_counts();
  assert_int_equal(sgrpc_test_channel_new(&ch, router, NULL), 0);
  assert_int_equal(start(ch, &m_hold, "a", 0, &r1, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(ch, 0), 0);
  assert_int_equal(start(ch, &m_hold, "b", 0, &r2, NULL), 0); /* never sent */
  sgrpc_test_channel_del(ch);
  assert_int_equal(r1.done, 1);
  assert_int_equal(r1.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(r2.done, 1);
  assert_int_equal(srv_closes, 1);
  sgrpc_router_del(router);
}

/* Every allocation of router, channel, engines and rpc layer fails in
 * turn during a unary and a server-streaming call. */
static void test_alloc_failure(void **state) {
  long k;
  int clean = 0;
  for (k = 1; k < 3000 && !clean; k++) {
    failmem fm;
    sgrpc_mem mem;
    sgrpc_router *router;
    sgrpc_test_channel *ch = NULL;
    sgrpc_test_channel_opts o;
    result r1, r2;
    int rv, started1 = 0, started2 = 0;
    failmem_init(&fm, &mem);
    fm.fail_at = k;
    reset_counts();
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    router = make_router(&mem);
    if (!router) goto done;
    memset(&o, 0, sizeof(o));
    o.mem = &mem;
    rv = sgrpc_test_channel_new(&ch, router, &o);
    if (rv != 0) {
      assert_true(rv == SGRPC_ERR_NOMEM || sgrpc_is_fatal(rv));
      ch = NULL;
      goto done;
    }
    rv = start(ch, &m_unary, "u", 0, &r1, NULL);
    assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM || sgrpc_is_fatal(rv));
    started1 = rv == 0;
    rv = start(ch, &m_sstream, "ss", 0, &r2, NULL);
    assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM || sgrpc_is_fatal(rv));
    started2 = rv == 0;
    rv = sgrpc_test_channel_run(ch, 1000);
    assert_true(rv == 0 || sgrpc_is_fatal(rv) || rv == SGRPC_ERR_NOMEM);
    if (fm.failures == 0) {
      assert_int_equal(rv, 0);
      assert_int_equal(r1.code, SGRPC_STATUS_OK);
      assert_string_equal(r1.replies, "u;");
      assert_int_equal(r2.code, SGRPC_STATUS_OK);
      assert_string_equal(r2.replies, "ss;ss;");
      clean = 1;
    }
  done:
    sgrpc_test_channel_del(ch);
    /* a started call ends exactly once, also when memory ran out */
    if (ch) {
      assert_int_equal(r1.done, started1);
      assert_int_equal(r2.done, started2);
    }
    sgrpc_router_del(router);
    assert_int_equal(fm.live, 0);
  }
  assert_true(clean);
  assert_true(k > 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_four_kinds),
      cmocka_unit_test(test_deadline),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_del_with_open_calls),
      cmocka_unit_test(test_alloc_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
