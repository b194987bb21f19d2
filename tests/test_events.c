/*
 * Event hooks (<sgrpc/events.h>) over the in-memory test channel
 * (<sgrpc/testing.h>): every hook type fires with the right data and in
 * the right order for all four RPC kinds, metadata changed by hooks
 * reaches the peer, a RECV_REQUEST hook can refuse a call before the
 * handler runs, several hooks of one type run in registration order, and
 * hooks that allocate survive allocation failure without leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sgrpc/events.h>
#include <sgrpc/testing.h>

#include "support.h"

#define MS 1000000LL

static const sgrpc_method m_unary = {"/t.Kinds/Unary", NULL, NULL, 0, 0, &sgrpc_codec_raw};
static const sgrpc_method m_sstream = {"/t.Kinds/ServerStream", NULL, NULL, 0, 1,
                                       &sgrpc_codec_raw};
static const sgrpc_method m_cstream = {"/t.Kinds/ClientStream", NULL, NULL, 1, 0,
                                       &sgrpc_codec_raw};
static const sgrpc_method m_bidi = {"/t.Kinds/Bidi", NULL, NULL, 1, 1, &sgrpc_codec_raw};

/* ---- logs: one per side, tokens separated by spaces ---- */

static char srv_log[4096], cli_log[4096];

static void logf_(char *log, const char *fmt, ...) {
  va_list ap;
  size_t n = strlen(log);
  va_start(ap, fmt);
  vsnprintf(log + n, 4096 - n, fmt, ap);
  va_end(ap);
}

static int md_has(const sgrpc_md *md, size_t n, const char *key, const char *value) {
  size_t len;
  const uint8_t *v = sgrpc_md_find(md, n, key, &len);
  if (!v) return 0;
  return len == strlen(value) && memcmp(v, value, len) == 0;
}

static const char *bytes_str(const void *msg, char *buf, size_t cap) {
  const sgrpc_bytes *b = msg;
  size_t n = b->len < cap - 1 ? b->len : cap - 1;
  memcpy(buf, b->data, n);
  buf[n] = 0;
  return buf;
}

/* ---- server handlers: raw bytes ---- */

typedef struct server_state {
  int requests;      /* on_request calls with a message */
  int closes;
  int close_code;
  int saw_auth_user; /* the RECV_REQUEST hook's metadata reached the handler */
  int saw_dropped;
  int saw_client_token;
  char acc[256];
} server_state;

static server_state ss;

static void check_request_md(sgrpc_server_call *call) {
  size_t n;
  const sgrpc_md *md = sgrpc_server_call_metadata(call, &n);
  ss.saw_auth_user = md_has(md, n, "x-auth-user", "alice");
  ss.saw_dropped = md_has(md, n, "x-drop-me", "1");
  ss.saw_client_token = md_has(md, n, "authorization", "Bearer t0k");
}

static void h_unary(sgrpc_server_call *call, const void *msg, void *ud) {
  ss.requests++;
  check_request_md(call);
  assert_int_equal(sgrpc_server_call_reply(call, msg), 0);
}

static void h_sstream(sgrpc_server_call *call, const void *msg, void *ud) {
  ss.requests++;
  check_request_md(call);
  assert_int_equal(sgrpc_server_call_send(call, msg), 0);
  assert_int_equal(sgrpc_server_call_send(call, msg), 0);
  assert_int_equal(sgrpc_server_call_finish(call, NULL), 0);
}

static void h_cstream(sgrpc_server_call *call, const void *msg, void *ud) {
  char tmp[64];
  if (msg) {
    ss.requests++;
    check_request_md(call);
    logf_(ss.acc, "%s", bytes_str(msg, tmp, sizeof(tmp)));
    return;
  }
  {
    sgrpc_bytes reply = {(const uint8_t *)ss.acc, strlen(ss.acc)};
    assert_int_equal(sgrpc_server_call_reply(call, &reply), 0);
  }
}

static void h_bidi(sgrpc_server_call *call, const void *msg, void *ud) {
  if (msg) {
    ss.requests++;
    check_request_md(call);
    assert_int_equal(sgrpc_server_call_send(call, msg), 0);
    return;
  }
  assert_int_equal(sgrpc_server_call_finish(call, NULL), 0);
}

static void h_close(sgrpc_server_call *call, const sgrpc_status_info *st, void *ud) {
  ss.closes++;
  ss.close_code = st->code;
}

/* ---- server hooks ---- */

static int refuse_without_token;

static void sh_recv_request(sgrpc_hook_event *ev, void *ud) {
  size_t n;
  assert_int_equal(ev->type, SGRPC_HOOK_RECV_REQUEST);
  assert_non_null(ev->server_call);
  assert_ptr_equal(ev->method, sgrpc_server_call_method(ev->server_call));
  assert_string_equal(ev->path, ev->method->path);
  assert_true(ev->md_editable);
  assert_string_equal(ev->content_type, "application/grpc+proto");
  assert_non_null(ev->conn);
  logf_(srv_log, "RecvRequest(%s,dl=%d,%s) ", ev->path,
        ev->deadline != SGRPC_NEVER,
        md_has(ev->md, ev->md_count, "authorization", "Bearer t0k") ? "token" : "none");
  if (refuse_without_token && !sgrpc_md_find(ev->md, ev->md_count, "authorization", &n)) {
    ev->end_code = SGRPC_STATUS_UNAUTHENTICATED;
    ev->end_message = "missing token";
    return;
  }
  assert_int_equal(sgrpc_hook_md_add_str(ev, "x-auth-user", "alice"), 0);
  assert_int_equal(sgrpc_hook_md_remove(ev, "x-drop-me"), 1);
}

/* Second RECV_REQUEST hook: must see the first one's edit. */
static void sh_recv_request2(sgrpc_hook_event *ev, void *ud) {
  logf_(srv_log, "RecvRequest2(%d) ", md_has(ev->md, ev->md_count, "x-auth-user", "alice"));
}

static void sh_recv_message(sgrpc_hook_event *ev, void *ud) {
  char tmp[64];
  assert_false(ev->md_editable);
  assert_int_equal(sgrpc_hook_md_add_str(ev, "x", "y"), SGRPC_ERR_INVALID_STATE);
  logf_(srv_log, "RecvMessage(%s) ", bytes_str(ev->message, tmp, sizeof(tmp)));
}

static void sh_send_initial(sgrpc_hook_event *ev, void *ud) {
  assert_true(ev->md_editable);
  logf_(srv_log, "SendInitialMetadata ");
  assert_int_equal(sgrpc_hook_md_add_str(ev, "x-srv-initial", "hooked"), 0);
}

static void sh_send_message(sgrpc_hook_event *ev, void *ud) {
  char tmp[64];
  logf_(srv_log, "SendMessage(%s) ", bytes_str(ev->message, tmp, sizeof(tmp)));
}

static void sh_send_trailing(sgrpc_hook_event *ev, void *ud) {
  char val[32];
  assert_true(ev->md_editable);
  logf_(srv_log, "SendTrailingMetadata(%d,%s) ", ev->status_code, ev->status_message);
  snprintf(val, sizeof(val), "code-%d", ev->status_code);
  assert_int_equal(sgrpc_hook_md_add_str(ev, "x-srv-trailer", val), 0);
}

/* ---- client hooks ---- */

static void ch_send_request(sgrpc_hook_event *ev, void *ud) {
  assert_int_equal(ev->type, SGRPC_HOOK_SEND_REQUEST);
  assert_non_null(ev->client_call);
  assert_true(ev->md_editable);
  logf_(cli_log, "SendRequest(%s,dl=%d,user=%d) ", ev->path,
        ev->deadline != SGRPC_NEVER, md_has(ev->md, ev->md_count, "x-drop-me", "1"));
  assert_int_equal(sgrpc_hook_md_add_str(ev, "authorization", "Bearer t0k"), 0);
}

static void ch_send_message(sgrpc_hook_event *ev, void *ud) {
  char tmp[64];
  logf_(cli_log, "SendMessage(%s) ", bytes_str(ev->message, tmp, sizeof(tmp)));
}

static void ch_recv_initial(sgrpc_hook_event *ev, void *ud) {
  logf_(cli_log, "RecvInitialMetadata(%d) ",
        md_has(ev->md, ev->md_count, "x-srv-initial", "hooked"));
}

static void ch_recv_message(sgrpc_hook_event *ev, void *ud) {
  char tmp[64];
  logf_(cli_log, "RecvMessage(%s) ", bytes_str(ev->message, tmp, sizeof(tmp)));
}

static void ch_recv_trailing(sgrpc_hook_event *ev, void *ud) {
  char val[32];
  snprintf(val, sizeof(val), "code-%d", ev->status_code);
  logf_(cli_log, "RecvTrailingMetadata(%d,%s,%d) ", ev->status_code, ev->status_message,
        md_has(ev->md, ev->md_count, "x-srv-trailer", val));
}

/* ---- client callbacks ---- */

typedef struct result {
  int done;
  int code;
  char message[64];
  char replies[128];
  int headers_hooked;
  int trailer_hooked;
} result;

static void c_headers(sgrpc_client_call *call, const sgrpc_md *md, size_t n, void *ud) {
  result *r = ud;
  r->headers_hooked = md_has(md, n, "x-srv-initial", "hooked");
}

static void c_message(sgrpc_client_call *call, const void *msg, void *ud) {
  result *r = ud;
  char tmp[64];
  logf_(r->replies, "%s;", bytes_str(msg, tmp, sizeof(tmp)));
}

static void c_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                    void *ud) {
  result *r = ud;
  char tmp[64], val[32];
  r->done++;
  r->code = st->code;
  snprintf(r->message, sizeof(r->message), "%s", st->message);
  if (reply) logf_(r->replies, "%s;", bytes_str(reply, tmp, sizeof(tmp)));
  snprintf(val, sizeof(val), "code-%d", st->code);
  r->trailer_hooked = md_has(st->md, st->md_count, "x-srv-trailer", val);
}

static const sgrpc_client_callbacks cbs = {c_headers, c_message, c_close, {NULL, NULL}, NULL};

/* ---- world ---- */

typedef struct world {
  sgrpc_router *router;
  sgrpc_events *sev, *cev;
  sgrpc_test_channel *ch;
} world;

static void world_init(world *w, int with_hooks) {
  static const sgrpc_handler hu = {h_unary, h_close, NULL, NULL, NULL};
  static const sgrpc_handler hs = {h_sstream, h_close, NULL, NULL, NULL};
  static const sgrpc_handler hc = {h_cstream, h_close, NULL, NULL, NULL};
  static const sgrpc_handler hb = {h_bidi, h_close, NULL, NULL, NULL};
  memset(w, 0, sizeof(*w));
  memset(&ss, 0, sizeof(ss));
  srv_log[0] = cli_log[0] = 0;
  refuse_without_token = 0;
  assert_int_equal(sgrpc_router_new(&w->router, NULL), 0);
  assert_int_equal(sgrpc_router_add(w->router, &m_unary, &hu), 0);
  assert_int_equal(sgrpc_router_add(w->router, &m_sstream, &hs), 0);
  assert_int_equal(sgrpc_router_add(w->router, &m_cstream, &hc), 0);
  assert_int_equal(sgrpc_router_add(w->router, &m_bidi, &hb), 0);
  assert_int_equal(sgrpc_test_channel_new(&w->ch, w->router, NULL), 0);
  if (!with_hooks) return;
  assert_int_equal(sgrpc_events_new(&w->sev, NULL), 0);
  assert_int_equal(sgrpc_events_new(&w->cev, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->sev, SGRPC_HOOK_RECV_REQUEST, sh_recv_request, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->sev, SGRPC_HOOK_RECV_REQUEST, sh_recv_request2, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->sev, SGRPC_HOOK_SERVER_RECV_MESSAGE, sh_recv_message, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->sev, SGRPC_HOOK_SEND_INITIAL_METADATA, sh_send_initial, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->sev, SGRPC_HOOK_SERVER_SEND_MESSAGE, sh_send_message, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->sev, SGRPC_HOOK_SEND_TRAILING_METADATA, sh_send_trailing, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->cev, SGRPC_HOOK_SEND_REQUEST, ch_send_request, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->cev, SGRPC_HOOK_CLIENT_SEND_MESSAGE, ch_send_message, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->cev, SGRPC_HOOK_RECV_INITIAL_METADATA, ch_recv_initial, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->cev, SGRPC_HOOK_CLIENT_RECV_MESSAGE, ch_recv_message, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w->cev, SGRPC_HOOK_RECV_TRAILING_METADATA, ch_recv_trailing, NULL), 0);
  assert_int_equal(sgrpc_events_count(w->sev, SGRPC_HOOK_RECV_REQUEST), 2);
  sgrpc_router_set_events(w->router, w->sev);
  sgrpc_rpc_client_set_events(sgrpc_test_channel_client(w->ch), w->cev);
}

static void world_free(world *w) {
  assert_int_equal(sgrpc_conn_call_count(sgrpc_test_channel_client_conn(w->ch)), 0);
  assert_int_equal(sgrpc_conn_call_count(sgrpc_test_channel_server_conn(w->ch)), 0);
  sgrpc_test_channel_del(w->ch);
  sgrpc_router_del(w->router);
  sgrpc_events_del(w->sev);
  sgrpc_events_del(w->cev);
}

static const sgrpc_md user_md[] = {SGRPC_MD_STR("x-drop-me", "1")};

/* Runs one call of method; streaming requests are reqs[], else reqs[0]. */
static void run_call(world *w, const sgrpc_method *m, const char *const *reqs, size_t n,
                     result *r) {
  sgrpc_test_channel *ch = w->ch;
  sgrpc_rpc_opts o;
  sgrpc_client_call *call = NULL;
  sgrpc_bytes b[4];
  size_t i;
  memset(&o, 0, sizeof(o));
  memset(r, 0, sizeof(*r));
  o.md = user_md;
  o.md_count = 1;
  o.deadline = sgrpc_test_channel_now(ch) + 5000 * MS;
  o.user_data = r;
  for (i = 0; i < n; i++) {
    b[i].data = (const uint8_t *)reqs[i];
    b[i].len = strlen(reqs[i]);
  }
  assert_int_equal(sgrpc_rpc_call_start(sgrpc_test_channel_client(ch), m,
                                        m->client_streaming ? NULL : &b[0], &o,
                                        sgrpc_test_channel_now(ch), &cbs, &call),
                   0);
  if (m->client_streaming) {
    for (i = 0; i < n; i++) {
      assert_int_equal(sgrpc_client_call_send(call, &b[i]), 0);
      assert_int_equal(sgrpc_test_channel_run(ch, 100), 0);
    }
    assert_int_equal(sgrpc_client_call_close_send(call), 0);
  }
  assert_int_equal(sgrpc_test_channel_run(ch, 100), 0);
  assert_int_equal(r->done, 1);
}

static void expect_common(const result *r, int requests) {
  assert_int_equal(r->code, SGRPC_STATUS_OK);
  assert_int_equal(ss.requests, requests);
  assert_int_equal(ss.closes, 1);
  assert_true(ss.saw_auth_user);     /* server RECV_REQUEST edit reached the handler */
  assert_false(ss.saw_dropped);      /* ... and its removal */
  assert_true(ss.saw_client_token);  /* client SEND_REQUEST header crossed the wire */
  assert_true(r->headers_hooked);    /* SEND_INITIAL_METADATA edit reached the client */
  assert_true(r->trailer_hooked);    /* SEND_TRAILING_METADATA edit too */
}

static void test_unary_hooks(void **state) {
  world w;
  result r;
  const char *reqs[] = {"hi"};
  world_init(&w, 1);
  run_call(&w, &m_unary, reqs, 1, &r);
  expect_common(&r, 1);
  assert_string_equal(r.replies, "hi;");
  assert_string_equal(srv_log, "RecvRequest(/t.Kinds/Unary,dl=1,token) RecvRequest2(1) "
                               "RecvMessage(hi) SendInitialMetadata SendMessage(hi) "
                               "SendTrailingMetadata(0,) ");
  assert_string_equal(cli_log, "SendRequest(/t.Kinds/Unary,dl=1,user=1) SendMessage(hi) "
                               "RecvInitialMetadata(1) RecvMessage(hi) "
                               "RecvTrailingMetadata(0,,1) ");
  world_free(&w);
}

static void test_server_streaming_hooks(void **state) {
  world w;
  result r;
  const char *reqs[] = {"s"};
  world_init(&w, 1);
  run_call(&w, &m_sstream, reqs, 1, &r);
  expect_common(&r, 1);
  assert_string_equal(r.replies, "s;s;");
  assert_string_equal(srv_log, "RecvRequest(/t.Kinds/ServerStream,dl=1,token) RecvRequest2(1) "
                               "RecvMessage(s) SendInitialMetadata SendMessage(s) "
                               "SendMessage(s) SendTrailingMetadata(0,) ");
  assert_string_equal(cli_log, "SendRequest(/t.Kinds/ServerStream,dl=1,user=1) SendMessage(s) "
                               "RecvInitialMetadata(1) RecvMessage(s) RecvMessage(s) "
                               "RecvTrailingMetadata(0,,1) ");
  world_free(&w);
}

static void test_client_streaming_hooks(void **state) {
  world w;
  result r;
  const char *reqs[] = {"a", "b", "c"};
  world_init(&w, 1);
  run_call(&w, &m_cstream, reqs, 3, &r);
  expect_common(&r, 3);
  assert_string_equal(r.replies, "abc;");
  assert_string_equal(srv_log, "RecvRequest(/t.Kinds/ClientStream,dl=1,token) RecvRequest2(1) "
                               "RecvMessage(a) RecvMessage(b) RecvMessage(c) "
                               "SendInitialMetadata SendMessage(abc) SendTrailingMetadata(0,) ");
  assert_string_equal(cli_log, "SendRequest(/t.Kinds/ClientStream,dl=1,user=1) SendMessage(a) "
                               "SendMessage(b) SendMessage(c) RecvInitialMetadata(1) "
                               "RecvMessage(abc) RecvTrailingMetadata(0,,1) ");
  world_free(&w);
}

static void test_bidi_hooks(void **state) {
  world w;
  result r;
  const char *reqs[] = {"x", "y"};
  world_init(&w, 1);
  run_call(&w, &m_bidi, reqs, 2, &r);
  expect_common(&r, 2);
  assert_string_equal(r.replies, "x;y;");
  /* each request is echoed before the next one is sent */
  assert_string_equal(srv_log, "RecvRequest(/t.Kinds/Bidi,dl=1,token) RecvRequest2(1) "
                               "RecvMessage(x) SendInitialMetadata SendMessage(x) "
                               "RecvMessage(y) SendMessage(y) SendTrailingMetadata(0,) ");
  assert_string_equal(cli_log, "SendRequest(/t.Kinds/Bidi,dl=1,user=1) SendMessage(x) "
                               "RecvInitialMetadata(1) RecvMessage(x) SendMessage(y) "
                               "RecvMessage(y) RecvTrailingMetadata(0,,1) ");
  world_free(&w);
}

/* A RECV_REQUEST hook refuses calls without a token: the handler never
 * runs, later RECV_REQUEST hooks are skipped, the client gets
 * UNAUTHENTICATED with the hook's message and the trailing hook's md. */
static void test_recv_request_rejects(void **state) {
  world w;
  result r;
  const char *reqs[] = {"hi"};
  world_init(&w, 1);
  refuse_without_token = 1;
  /* a client without the token hook */
  sgrpc_rpc_client_set_events(sgrpc_test_channel_client(w.ch), NULL);
  memset(&r, 0, sizeof(r));
  {
    sgrpc_bytes b = {(const uint8_t *)reqs[0], 2};
    sgrpc_rpc_opts o;
    memset(&o, 0, sizeof(o));
    o.user_data = &r;
    assert_int_equal(sgrpc_rpc_call_start(sgrpc_test_channel_client(w.ch), &m_unary, &b, &o,
                                          sgrpc_test_channel_now(w.ch), &cbs, NULL),
                     0);
  }
  assert_int_equal(sgrpc_test_channel_run(w.ch, 100), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAUTHENTICATED);
  assert_string_equal(r.message, "missing token");
  assert_true(r.trailer_hooked);
  assert_int_equal(ss.requests, 0);
  assert_int_equal(ss.closes, 1);
  assert_string_equal(srv_log, "RecvRequest(/t.Kinds/Unary,dl=0,none) "
                               "SendTrailingMetadata(16,missing token) ");
  assert_string_equal(cli_log, "");

  /* the same client with the token hook gets through */
  srv_log[0] = 0;
  sgrpc_rpc_client_set_events(sgrpc_test_channel_client(w.ch), w.cev);
  run_call(&w, &m_unary, reqs, 1, &r);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(ss.requests, 1);
  world_free(&w);
}

/* Hooks only on one side; the other side behaves as without hooks, and
 * without hooks nothing is logged and the wire stays as before. */
static void test_no_hooks(void **state) {
  world w;
  result r;
  const char *reqs[] = {"a", "b"};
  world_init(&w, 0);
  run_call(&w, &m_bidi, reqs, 2, &r);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.replies, "a;b;");
  assert_string_equal(srv_log, "");
  assert_string_equal(cli_log, "");
  assert_false(r.headers_hooked);
  world_free(&w);
}

static void bad_key_hook(sgrpc_hook_event *ev, void *ud) {
  assert_int_equal(sgrpc_hook_md_add_str(ev, "Bad Key", "v"), 0);
}

static void listen_inside_hook(sgrpc_hook_event *ev, void *ud) {
  assert_int_equal(sgrpc_events_listen(ud, SGRPC_HOOK_SEND_REQUEST, listen_inside_hook, ud),
                   SGRPC_ERR_INVALID_STATE);
}

/* API misuse gives error codes: bad arguments, listen from a hook, a hook
 * adding metadata the engine refuses (the start fails, no callback). */
static void test_api_errors(void **state) {
  world w;
  result r;
  sgrpc_events *e;
  sgrpc_bytes b = {(const uint8_t *)"q", 1};
  world_init(&w, 0);
  assert_int_equal(sgrpc_events_new(NULL, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_events_new(&e, NULL), 0);
  assert_int_equal(sgrpc_events_listen(e, SGRPC_HOOK_TYPE_COUNT, bad_key_hook, NULL),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_events_listen(e, SGRPC_HOOK_SEND_REQUEST, NULL, NULL),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_events_listen(e, SGRPC_HOOK_SEND_REQUEST, listen_inside_hook, e), 0);
  assert_int_equal(sgrpc_events_listen(e, SGRPC_HOOK_SEND_REQUEST, bad_key_hook, NULL), 0);
  sgrpc_rpc_client_set_events(sgrpc_test_channel_client(w.ch), e);
  memset(&r, 0, sizeof(r));
  assert_int_equal(sgrpc_rpc_call_start(sgrpc_test_channel_client(w.ch), &m_unary, &b, NULL,
                                        sgrpc_test_channel_now(w.ch), &cbs, NULL),
                   SGRPC_ERR_BAD_METADATA);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 100), 0);
  assert_int_equal(r.done, 0);
  assert_int_equal(sgrpc_hook_md_add_str(NULL, "a", "b"), SGRPC_ERR_INVALID_ARGUMENT);
  world_free(&w);
  sgrpc_events_del(e);
}

/* ---- hooks, handler and callbacks that tolerate allocation failure ---- */

static void sh_send_initial_lenient(sgrpc_hook_event *ev, void *ud) {
  int rv = sgrpc_hook_md_add_str(ev, "x-srv-initial", "hooked");
  assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
}

static void sh_trailing_lenient(sgrpc_hook_event *ev, void *ud) {
  char val[32];
  int rv;
  snprintf(val, sizeof(val), "code-%d", ev->status_code);
  rv = sgrpc_hook_md_add_str(ev, "x-srv-trailer", val);
  assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
}

static void sh_request_lenient(sgrpc_hook_event *ev, void *ud) {
  int rv = sgrpc_hook_md_add_str(ev, "x-auth-user", "alice");
  assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
  rv = sgrpc_hook_md_remove(ev, "authorization");
  assert_true(rv >= 0 || rv == SGRPC_ERR_NOMEM);
}

static void ch_request_lenient(sgrpc_hook_event *ev, void *ud) {
  int rv = sgrpc_hook_md_add_str(ev, "authorization", "Bearer t0k");
  assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
}

static void h_lenient(sgrpc_server_call *call, const void *msg, void *ud) {
  ss.requests++;
  (void)sgrpc_server_call_reply(call, msg);
}

static void c_close_lenient(sgrpc_client_call *call, const sgrpc_status_info *st,
                            const void *reply, void *ud) {
  result *r = ud;
  char val[32];
  r->done++;
  r->code = st->code;
  snprintf(val, sizeof(val), "code-%d", st->code);
  r->trailer_hooked = md_has(st->md, st->md_count, "x-srv-trailer", val);
}

static const sgrpc_client_callbacks lenient_cbs = {c_headers, NULL, c_close_lenient,
                                                   {NULL, NULL}, NULL};

/* Every allocation in turn fails, with hooks that allocate on both sides:
 * each step ends in an error code or a status, never a crash, and leaves
 * nothing allocated. */
static void test_hooks_alloc_failure(void **state) {
  static const sgrpc_handler hu = {h_lenient, h_close, NULL, NULL, NULL};
  long k;
  int clean = 0;
  for (k = 1; k < 3000 && !clean; k++) {
    failmem fm;
    sgrpc_mem mem;
    sgrpc_router *router = NULL;
    sgrpc_events *sev = NULL, *cev = NULL;
    sgrpc_test_channel *ch = NULL;
    sgrpc_test_channel_opts o;
    sgrpc_bytes b = {(const uint8_t *)"m", 1};
    result r;
    int rv;
    failmem_init(&fm, &mem);
    fm.fail_at = k;
    memset(&ss, 0, sizeof(ss));
    memset(&r, 0, sizeof(r));
    memset(&o, 0, sizeof(o));
    o.mem = &mem;
    if (sgrpc_router_new(&router, &mem) != 0) goto done;
    if (sgrpc_router_add(router, &m_unary, &hu) != 0) goto done;
    if (sgrpc_events_new(&sev, &mem) != 0 || sgrpc_events_new(&cev, &mem) != 0) goto done;
    if (sgrpc_events_listen(sev, SGRPC_HOOK_SEND_INITIAL_METADATA, sh_send_initial_lenient,
                            NULL) != 0 ||
        sgrpc_events_listen(sev, SGRPC_HOOK_SEND_TRAILING_METADATA, sh_trailing_lenient,
                            NULL) != 0 ||
        sgrpc_events_listen(sev, SGRPC_HOOK_RECV_REQUEST, sh_request_lenient, NULL) != 0 ||
        sgrpc_events_listen(cev, SGRPC_HOOK_SEND_REQUEST, ch_request_lenient, NULL) != 0)
      goto done;
    sgrpc_router_set_events(router, sev);
    rv = sgrpc_test_channel_new(&ch, router, &o);
    if (rv != 0) {
      assert_true(rv == SGRPC_ERR_NOMEM || sgrpc_is_fatal(rv));
      ch = NULL;
      goto done;
    }
    sgrpc_rpc_client_set_events(sgrpc_test_channel_client(ch), cev);
    r.done = 0;
    {
      sgrpc_rpc_opts co;
      memset(&co, 0, sizeof(co));
      co.user_data = &r;
      rv = sgrpc_rpc_call_start(sgrpc_test_channel_client(ch), &m_unary, &b, &co,
                                sgrpc_test_channel_now(ch), &lenient_cbs, NULL);
    }
    if (rv != 0) {
      assert_true(rv == SGRPC_ERR_NOMEM || rv == SGRPC_ERR_CONN_NOMEM || sgrpc_is_fatal(rv));
      goto done;
    }
    (void)sgrpc_test_channel_run(ch, 1000);
    if (fm.failures == 0) {
      assert_int_equal(r.done, 1);
      assert_int_equal(r.code, SGRPC_STATUS_OK);
      assert_true(r.headers_hooked && r.trailer_hooked);
      clean = 1;
    }
  done:
    sgrpc_test_channel_del(ch);
    /* the call ended one way or another: on_close ran at most once */
    assert_true(r.done <= 1);
    sgrpc_router_del(router);
    sgrpc_events_del(sev);
    sgrpc_events_del(cev);
    assert_int_equal(fm.live, 0);
  }
  assert_true(clean);
  assert_true(k > 20); /* there really were allocations to fail */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary_hooks),
      cmocka_unit_test(test_server_streaming_hooks),
      cmocka_unit_test(test_client_streaming_hooks),
      cmocka_unit_test(test_bidi_hooks),
      cmocka_unit_test(test_recv_request_rejects),
      cmocka_unit_test(test_no_hooks),
      cmocka_unit_test(test_api_errors),
      cmocka_unit_test(test_hooks_alloc_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
