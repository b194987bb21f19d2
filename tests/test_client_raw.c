/*
 * sgrpc client -> raw HTTP/2 server. The request the engine writes is
 * checked field by field, and hand-made responses check how the client
 * maps HTTP statuses, trailers, resets and GOAWAY to gRPC statuses (in
 * the spirit of grpclib's test_client_stream.py).
 */
#include "rawpeer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ROUNDS 64

static const char *const OK_HEADERS[] = {":status", "200", "content-type", "application/grpc",
                                         NULL};

static void setup(rawpeer *rp) {
  rawpeer_new_server(rp, NULL);
  rp->auto_release = 1;
  rawpeer_run(rp, ROUNDS); /* exchange prefaces and SETTINGS */
}

/* Starts a call to /t.S/M (optionally sending one message and
 * half-closing), runs, and returns it. */
static sgrpc_call *start(rawpeer *rp, int send_msg) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  assert_int_equal(sgrpc_call_start(rp->conn, &o, rp->now, &call), 0);
  assert_non_null(call);
  if (send_msg) assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"hi", 2, SGRPC_SEND_END), 0);
  rawpeer_run(rp, ROUNDS);
  assert_non_null(rawpeer_headers(rp, sgrpc_call_stream_id(call), 0));
  return call;
}

static const rp_event *close_of(rawpeer *rp, sgrpc_call *call) {
  const rp_event *e;
  assert_int_equal(rawpeer_count_events(rp, SGRPC_EV_CLOSE, call), 1);
  e = rawpeer_event(rp, SGRPC_EV_CLOSE, call, 0);
  assert_non_null(e);
  return e;
}

static void finish(rawpeer *rp) {
  assert_int_equal(rp->conn_err, 0);
  assert_int_equal(rp->h2_err, 0);
  assert_int_equal(sgrpc_conn_call_count(rp->conn), 0);
  rawpeer_free(rp);
}

/* ------------------------------------------------------------------ */

static void test_request_headers(void **state) {
  static const sgrpc_md md[] = {SGRPC_MD_STR("x-a", "1"),
                                SGRPC_MD_STR("x-b-bin", "\x00\x01\x02\xff"),
                                SGRPC_MD_STR("x-a", "2"), SGRPC_MD_STR("x-e-bin", ""),
                                SGRPC_MD_STR("x-c", "")};
  rawpeer rp;
  sgrpc_call_opts o;
  sgrpc_call *call;
  int32_t sid;
  const rp_frame *f;
  const uint8_t *d;
  size_t dl;
  uint8_t exp[16];
  (void)state;
  setup(&rp);
  memset(&o, 0, sizeof(o));
  o.path = "/pkg.Svc/Method";
  o.authority = "example.com:443";
  o.deadline = rp.now + 1000000000;
  o.md = md;
  o.md_count = 5;
  assert_int_equal(sgrpc_call_start(rp.conn, &o, rp.now, &call), 0);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"hello", 5, SGRPC_SEND_END), 0);
  rawpeer_run(&rp, ROUNDS);
  sid = sgrpc_call_stream_id(call);
  assert_int_equal(sid, 1);
  f = rawpeer_headers(&rp, sid, 0);
  assert_non_null(f);
  assert_int_equal(f->end_stream, 0);
  rawpeer_assert_fields(f, ":method", "POST", ":scheme", "http", ":path", "/pkg.Svc/Method",
                        ":authority", "example.com:443", "grpc-timeout", "1S", "te",
                        "trailers", "content-type", "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", "user-agent",
                        "sgrpc-c/" SGRPC_VERSION, "x-a", "1", "x-b-bin", "AAEC/w", "x-a", "2",
                        "x-e-bin", "", "x-c", "", NULL);
  d = rawpeer_stream_data(&rp, sid, &dl);
  assert_int_equal(dl, rawpeer_grpc_frame(exp, 0, "hello", 5));
  assert_memory_equal(d, exp, dl);
  assert_true(rawpeer_stream_ended(&rp, sid));
  assert_int_equal(rawpeer_count_frames(&rp, sid, NGHTTP2_HEADERS), 1);

  /* no deadline, no authority, a content subtype */
  memset(&o, 0, sizeof(o));
  o.path = "/pkg.Svc/Other";
  o.content_subtype = "proto";
  assert_int_equal(sgrpc_call_start(rp.conn, &o, rp.now, &call), 0);
  rawpeer_run(&rp, ROUNDS);
  sid = sgrpc_call_stream_id(call);
  assert_int_equal(sid, 3);
  rawpeer_assert_fields(rawpeer_headers(&rp, sid, 0), ":method", "POST", ":scheme", "http",
                        ":path", "/pkg.Svc/Other", "te", "trailers", "content-type",
                        "application/grpc+proto", "grpc-accept-encoding", "identity,deflate,gzip", "user-agent", "sgrpc-c/" SGRPC_VERSION,
                        NULL);
  assert_false(rawpeer_stream_ended(&rp, sid));
  assert_int_equal(rp.conn_err, 0);
  rawpeer_free(&rp);
}

static void test_settings_scheme_user_agent(void **state) {
  sgrpc_settings s;
  rawpeer rp;
  sgrpc_call_opts o;
  sgrpc_call *call;
  (void)state;
  sgrpc_settings_default(&s);
  s.scheme = "https";
  s.user_agent = "my-app/2.0 sgrpc";
  rawpeer_new_server(&rp, &s);
  rp.auto_release = 1;
  memset(&o, 0, sizeof(o));
  o.path = "/a/b";
  assert_int_equal(sgrpc_call_start(rp.conn, &o, rp.now, &call), 0);
  rawpeer_run(&rp, ROUNDS);
  rawpeer_assert_fields(rawpeer_headers(&rp, 1, 0), ":method", "POST", ":scheme", "https",
                        ":path", "/a/b", "te", "trailers", "content-type", "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip",
                        "user-agent", "my-app/2.0 sgrpc", NULL);
  rawpeer_free(&rp);
}

static void test_full_response(void **state) {
  static const char *const hdrs[] = {":status", "200", "content-type", "application/grpc",
                                     "x-h", "1", "x-h-bin", "AQID", "grpc-encoding", "identity",
                                     NULL};
  static const char *const trl[] = {"grpc-status", "0", "grpc-message", "all%20good",
                                    "x-t", "v", "x-t-bin", "AQI=", NULL};
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  uint8_t m[64];
  size_t n;
  const rp_event *e;
  (void)state;
  setup(&rp);
  call = start(&rp, 1);
  sid = sgrpc_call_stream_id(call);
  rawpeer_submit_response(&rp, sid, hdrs, 0);
  n = rawpeer_grpc_frame(m, 0, "one", 3);
  n += rawpeer_grpc_frame(m + n, 0, "two!", 4);
  rawpeer_submit_data(&rp, sid, m, n - 2, 0);
  rawpeer_submit_data(&rp, sid, m + n - 2, 2, 0);
  rawpeer_submit_trailers(&rp, sid, trl);
  rawpeer_run(&rp, ROUNDS);

  e = rawpeer_event(&rp, SGRPC_EV_HEADERS, call, 0);
  assert_non_null(e);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HEADERS, call), 1);
  assert_int_equal(e->md_count, 2);
  assert_string_equal(e->md[0].key, "x-h");
  assert_string_equal((const char *)e->md[0].value, "1");
  assert_string_equal(e->md[1].key, "x-h-bin");
  assert_int_equal(e->md[1].value_len, 3);
  assert_memory_equal(e->md[1].value, "\x01\x02\x03", 3);
  assert_string_equal(e->encoding, "identity");
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, call), 2);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, call, 0);
  assert_int_equal(e->len, 3);
  assert_memory_equal(e->data, "one", 3);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, call, 1);
  assert_int_equal(e->len, 4);
  assert_memory_equal(e->data, "two!", 4);
  e = close_of(&rp, call);
  assert_int_equal(e->code, SGRPC_STATUS_OK);
  assert_string_equal(e->message, "all good");
  assert_int_equal(e->message_len, 8);
  assert_null(e->details);
  assert_int_equal(e->reset, 0);
  assert_int_equal(e->md_count, 2);
  assert_string_equal(e->md[0].key, "x-t");
  assert_string_equal((const char *)e->md[0].value, "v");
  assert_string_equal(e->md[1].key, "x-t-bin");
  assert_int_equal(e->md[1].value_len, 2);
  assert_memory_equal(e->md[1].value, "\x01\x02", 2);
  /* the events of a call end with CLOSE */
  assert_ptr_equal(&rp.events[rp.nevents - 1], e);
  /* a finished call leaves no RST behind */
  assert_int_equal(rawpeer_rst_code(&rp, sid), -1);
  finish(&rp);
}

/* The server answers with a header block only (END_STREAM). */
static const rp_event *answer_headers_only(rawpeer *rp, sgrpc_call **pcall,
                                           const char *const *nv) {
  sgrpc_call *call = start(rp, 1);
  rawpeer_submit_response(rp, sgrpc_call_stream_id(call), nv, 1);
  rawpeer_run(rp, ROUNDS);
  *pcall = call;
  assert_int_equal(rawpeer_count_events(rp, SGRPC_EV_HEADERS, call), 0);
  assert_int_equal(rawpeer_count_events(rp, SGRPC_EV_MESSAGE, call), 0);
  return close_of(rp, call);
}

static void test_http_status_mapping(void **state) {
  static const struct {
    const char *status;
    int code;
  } map[] = {{"400", SGRPC_STATUS_INTERNAL},        {"401", SGRPC_STATUS_UNAUTHENTICATED},
             {"403", SGRPC_STATUS_PERMISSION_DENIED}, {"404", SGRPC_STATUS_UNIMPLEMENTED},
             {"429", SGRPC_STATUS_UNAVAILABLE},     {"502", SGRPC_STATUS_UNAVAILABLE},
             {"503", SGRPC_STATUS_UNAVAILABLE},     {"504", SGRPC_STATUS_UNAVAILABLE},
             {"500", SGRPC_STATUS_UNKNOWN},         {"405", SGRPC_STATUS_UNKNOWN},
             {"302", SGRPC_STATUS_UNKNOWN}};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
    /* even when it carries a grpc-status, a non-200 wins */
    const char *const nv[] = {":status", map[i].status, "content-type", "application/grpc",
                              "grpc-status", "0", NULL};
    rawpeer rp;
    sgrpc_call *call;
    const rp_event *e;
    setup(&rp);
    e = answer_headers_only(&rp, &call, nv);
    if (e->code != map[i].code)
      fail_msg(":status %s gave %d, want %d", map[i].status, e->code, map[i].code);
    assert_non_null(strstr(e->message, map[i].status));
    finish(&rp);
  }
}

static void test_bad_content_type(void **state) {
  static const char *const html[] = {":status", "200", "content-type", "text/html", NULL};
  static const char *const none[] = {":status", "200", NULL};
  rawpeer rp;
  sgrpc_call *call;
  const rp_event *e;
  (void)state;
  setup(&rp);
  assert_int_equal(answer_headers_only(&rp, &call, html)->code, SGRPC_STATUS_UNKNOWN);
  finish(&rp);
  /* trailers-only without grpc-status: nothing to take at its word */
  setup(&rp);
  e = answer_headers_only(&rp, &call, none);
  assert_int_equal(e->code, SGRPC_STATUS_UNKNOWN);
  assert_string_equal(e->message, "invalid content-type in response");
  finish(&rp);
}

/* A trailers-only response with grpc-status but no (or a wrong)
 * content-type gives its grpc-status (grpclib answers an unknown method
 * so; C-core and grpc-js accept it). */
static void test_trailers_only_sloppy_content_type(void **state) {
  static const char *const none[] = {":status", "200", "grpc-status", "12", "grpc-message",
                                     "Method%20not%20found", NULL};
  static const char *const grpcfoo[] = {":status", "200", "content-type", "application/grpcx",
                                        "grpc-status", "0", NULL};
  static const char *const html[] = {":status", "200", "content-type", "text/html",
                                     "grpc-status", "5", NULL};
  rawpeer rp;
  sgrpc_call *call;
  const rp_event *e;
  (void)state;
  setup(&rp);
  e = answer_headers_only(&rp, &call, none);
  assert_int_equal(e->code, SGRPC_STATUS_UNIMPLEMENTED);
  assert_string_equal(e->message, "Method not found");
  finish(&rp);
  setup(&rp);
  assert_int_equal(answer_headers_only(&rp, &call, grpcfoo)->code, SGRPC_STATUS_OK);
  finish(&rp);
  setup(&rp);
  assert_int_equal(answer_headers_only(&rp, &call, html)->code, SGRPC_STATUS_NOT_FOUND);
  finish(&rp);
}

/* Response headers that go on to messages keep the content-type check,
 * even when they carry a grpc-status. */
static void test_headers_without_content_type(void **state) {
  static const char *const nv[] = {":status", "200", "grpc-status", "0", NULL};
  rawpeer rp;
  sgrpc_call *call;
  const rp_event *e;
  int32_t sid;
  (void)state;
  setup(&rp);
  call = start(&rp, 1);
  sid = sgrpc_call_stream_id(call);
  rawpeer_submit_response(&rp, sid, nv, 0);
  rawpeer_run(&rp, ROUNDS);
  e = close_of(&rp, call);
  assert_int_equal(e->code, SGRPC_STATUS_UNKNOWN);
  assert_string_equal(e->message, "invalid content-type in response");
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_CANCEL);
  finish(&rp);
}

/* Headers, one message, then the given trailer block. */
static const rp_event *answer_with_trailers(rawpeer *rp, sgrpc_call **pcall,
                                            const char *const *trl) {
  sgrpc_call *call = start(rp, 1);
  int32_t sid = sgrpc_call_stream_id(call);
  uint8_t m[16];
  size_t n = rawpeer_grpc_frame(m, 0, "r", 1);
  rawpeer_submit_response(rp, sid, OK_HEADERS, 0);
  rawpeer_submit_data(rp, sid, m, n, 0);
  rawpeer_submit_trailers(rp, sid, trl);
  rawpeer_run(rp, ROUNDS);
  *pcall = call;
  assert_int_equal(rawpeer_count_events(rp, SGRPC_EV_HEADERS, call), 1);
  assert_int_equal(rawpeer_count_events(rp, SGRPC_EV_MESSAGE, call), 1);
  return close_of(rp, call);
}

static void test_grpc_status_parsing(void **state) {
  static const char *const missing[] = {"x-foo", "bar", NULL};
  static const char *const abc[] = {"grpc-status", "abc", NULL};
  static const char *const big[] = {"grpc-status", "17", NULL};
  static const char *const neg[] = {"grpc-status", "-1", NULL};
  static const char *const empty[] = {"grpc-status", "", NULL};
  static const char *const twice[] = {"grpc-status", "3", "grpc-status", "4", NULL};
  static const char *const seven[] = {"grpc-status", "7", "grpc-message", "denied", NULL};
  const char *const *unknown[] = {missing, abc, big, neg, empty, twice};
  size_t i;
  rawpeer rp;
  sgrpc_call *call;
  const rp_event *e;
  (void)state;
  for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    setup(&rp);
    e = answer_with_trailers(&rp, &call, unknown[i]);
    if (e->code != SGRPC_STATUS_UNKNOWN) fail_msg("case %zu gave %d", i, e->code);
    finish(&rp);
  }
  setup(&rp);
  e = answer_with_trailers(&rp, &call, seven);
  assert_int_equal(e->code, SGRPC_STATUS_PERMISSION_DENIED);
  assert_string_equal(e->message, "denied");
  finish(&rp);
}

static void test_trailers_only(void **state) {
  static const char *const nv[] = {":status", "200", "content-type", "application/grpc",
                                   "grpc-status", "5", "grpc-message", "not%20found",
                                   "x-t", "1", NULL};
  rawpeer rp;
  sgrpc_call *call;
  const rp_event *e;
  (void)state;
  setup(&rp);
  e = answer_headers_only(&rp, &call, nv);
  assert_int_equal(e->code, SGRPC_STATUS_NOT_FOUND);
  assert_string_equal(e->message, "not found");
  assert_int_equal(e->message_len, 9);
  assert_int_equal(e->reset, 0);
  assert_int_equal(e->md_count, 1);
  assert_string_equal(e->md[0].key, "x-t");
  finish(&rp);
}

static void check_message(const char *wire, const char *want, size_t want_len) {
  const char *const nv[] = {":status", "200", "content-type", "application/grpc",
                            "grpc-status", "3", "grpc-message", wire, NULL};
  rawpeer rp;
  sgrpc_call *call;
  const rp_event *e;
  setup(&rp);
  e = answer_headers_only(&rp, &call, nv);
  assert_int_equal(e->code, SGRPC_STATUS_INVALID_ARGUMENT);
  assert_int_equal(e->message_len, want_len);
  assert_memory_equal(e->message, want, want_len);
  assert_int_equal(e->message[want_len], 0);
  finish(&rp);
}

static void test_grpc_message_decoding(void **state) {
  static const char cyr[] = "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"; /* Привет */
  (void)state;
  check_message("%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82", cyr, sizeof(cyr) - 1);
  check_message("%d0%9f%d1%80%d0%b8%d0%b2%d0%b5%d1%82", cyr, sizeof(cyr) - 1);
  check_message("%FF", "\xef\xbf\xbd", 3);
  check_message("a%FFb", "a\xef\xbf\xbd" "b", 5);
  check_message("100%25", "100%", 4);
  check_message("50%", "50%", 3);      /* a lone '%' stays */
  check_message("%4", "%4", 2);
  check_message("%zz", "%zz", 3);
  check_message("plain text", "plain text", 10);
}

static void test_status_details(void **state) {
  static const char *const nv[] = {":status", "200", "content-type", "application/grpc",
                                   "grpc-status", "9", "grpc-status-details-bin",
                                   "CAkSBGZhaWw", NULL};
  static const char *const padded[] = {":status", "200", "content-type", "application/grpc",
                                       "grpc-status", "9", "grpc-status-details-bin",
                                       "CAkSBGZhaWw=", NULL};
  static const uint8_t want[] = {0x08, 0x09, 0x12, 0x04, 'f', 'a', 'i', 'l'};
  rawpeer rp;
  sgrpc_call *call;
  const rp_event *e;
  (void)state;
  setup(&rp);
  e = answer_headers_only(&rp, &call, nv);
  assert_int_equal(e->code, SGRPC_STATUS_FAILED_PRECONDITION);
  assert_non_null(e->details);
  assert_int_equal(e->details_len, sizeof(want));
  assert_memory_equal(e->details, want, sizeof(want));
  assert_int_equal(e->md_count, 0); /* not user metadata */
  finish(&rp);
  setup(&rp);
  e = answer_headers_only(&rp, &call, padded);
  assert_int_equal(e->details_len, sizeof(want));
  assert_memory_equal(e->details, want, sizeof(want));
  finish(&rp);
}

static void test_rst_mapping(void **state) {
  static const struct {
    uint32_t h2;
    int code;
    int retry;
  } map[] = {{NGHTTP2_CANCEL, SGRPC_STATUS_CANCELLED, 0},
             {NGHTTP2_REFUSED_STREAM, SGRPC_STATUS_UNAVAILABLE, 1},
             {NGHTTP2_ENHANCE_YOUR_CALM, SGRPC_STATUS_RESOURCE_EXHAUSTED, 0},
             {NGHTTP2_INADEQUATE_SECURITY, SGRPC_STATUS_PERMISSION_DENIED, 0},
             {NGHTTP2_PROTOCOL_ERROR, SGRPC_STATUS_INTERNAL, 0},
             {NGHTTP2_INTERNAL_ERROR, SGRPC_STATUS_INTERNAL, 0},
             {NGHTTP2_NO_ERROR, SGRPC_STATUS_INTERNAL, 0}};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
    rawpeer rp;
    sgrpc_call *call;
    const rp_event *e;
    setup(&rp);
    call = start(&rp, 0);
    rawpeer_submit_rst(&rp, sgrpc_call_stream_id(call), map[i].h2);
    rawpeer_run(&rp, ROUNDS);
    e = close_of(&rp, call);
    if (e->code != map[i].code) fail_msg("RST %u gave %d", map[i].h2, e->code);
    assert_int_equal(e->reset, 1);
    assert_int_equal(e->http2_error, map[i].h2);
    assert_int_equal(e->retry_safe, map[i].retry);
    finish(&rp);
  }
}

static void test_data_end_without_trailers(void **state) {
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  uint8_t m[16];
  size_t n = rawpeer_grpc_frame(m, 0, "r", 1);
  const rp_event *e;
  (void)state;
  setup(&rp);
  call = start(&rp, 1);
  sid = sgrpc_call_stream_id(call);
  rawpeer_submit_response(&rp, sid, OK_HEADERS, 0);
  rawpeer_submit_data(&rp, sid, m, n, 1);
  rawpeer_run(&rp, ROUNDS);
  e = close_of(&rp, call);
  assert_int_equal(e->code, SGRPC_STATUS_INTERNAL);
  finish(&rp);
}

static void test_client_cancel(void **state) {
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  const rp_event *e;
  (void)state;
  setup(&rp);
  call = start(&rp, 0);
  sid = sgrpc_call_stream_id(call);
  rawpeer_submit_response(&rp, sid, OK_HEADERS, 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HEADERS, call), 1);
  assert_int_equal(sgrpc_call_cancel(call), 0);
  assert_int_equal(sgrpc_call_cancel(call), SGRPC_ERR_CALL_CLOSED);
  rawpeer_run(&rp, ROUNDS);
  e = close_of(&rp, call);
  assert_int_equal(e->code, SGRPC_STATUS_CANCELLED);
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_CANCEL);
  assert_int_equal(rawpeer_count_frames(&rp, sid, NGHTTP2_RST_STREAM), 1);
  finish(&rp);
}

static void test_bad_metadata_keys(void **state) {
  static const char *const keys[] = {"grpc-internal", "Upper-Case", "~", "a b", "a\nb", "",
                                     ":path", "te", "content-type", "user-agent",
                                     "connection"};
  rawpeer rp;
  size_t i;
  (void)state;
  setup(&rp);
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]) + 2; i++) {
    sgrpc_md md[2] = {SGRPC_MD_STR("x-ok", "1"), SGRPC_MD_STR("x-ok", "1")};
    sgrpc_call_opts o;
    sgrpc_call *call = (sgrpc_call *)&o;
    int rv;
    if (i < sizeof(keys) / sizeof(keys[0])) {
      md[1].key = keys[i];
      md[1].key_len = strlen(keys[i]);
    } else if (i == sizeof(keys) / sizeof(keys[0])) {
      md[1].value = (const uint8_t *)"a\nb"; /* non-binary value outside 0x20-0x7E */
      md[1].value_len = 3;
    } else {
      md[1].value = (const uint8_t *)"\x80";
      md[1].value_len = 1;
    }
    memset(&o, 0, sizeof(o));
    o.path = "/t.S/M";
    o.md = md;
    o.md_count = 2;
    rv = sgrpc_call_start(rp.conn, &o, rp.now, &call);
    if (rv != SGRPC_ERR_BAD_METADATA) fail_msg("case %zu returned %d", i, rv);
    assert_null(call);
    assert_int_equal(sgrpc_md_check(&md[1]), SGRPC_ERR_BAD_METADATA);
  }
  assert_int_equal(sgrpc_conn_call_count(rp.conn), 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_frames(&rp, -1, NGHTTP2_HEADERS), 0);
  assert_int_equal(rawpeer_count_frames(&rp, -1, NGHTTP2_DATA), 0);
  assert_int_equal(rp.nevents, 0);
  finish(&rp);
}

static void test_goaway(void **state) {
  static const char *const trl[] = {"grpc-status", "0", NULL};
  rawpeer rp;
  sgrpc_call *c1, *c3, *c5;
  const rp_event *e;
  sgrpc_call_opts o;
  uint8_t m[16];
  size_t n = rawpeer_grpc_frame(m, 0, "done", 4);
  (void)state;
  setup(&rp);
  c1 = start(&rp, 1);
  c3 = start(&rp, 1);
  c5 = start(&rp, 0);
  assert_int_equal(sgrpc_call_stream_id(c1), 1);
  assert_int_equal(sgrpc_call_stream_id(c3), 3);
  assert_int_equal(sgrpc_call_stream_id(c5), 5);
  rawpeer_submit_goaway(&rp, 1, NGHTTP2_NO_ERROR);
  rawpeer_run(&rp, ROUNDS);

  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_GOAWAY, NULL), 1);
  e = rawpeer_event(&rp, SGRPC_EV_GOAWAY, NULL, 0);
  assert_int_equal(e->last_stream_id, 1);
  assert_int_equal(e->goaway_error, NGHTTP2_NO_ERROR);
  assert_null(e->call);
  e = close_of(&rp, c3);
  assert_int_equal(e->code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(e->retry_safe, 1);
  e = close_of(&rp, c5);
  assert_int_equal(e->code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(e->retry_safe, 1);
  /* the GOAWAY event comes before the calls it ended */
  assert_true(rawpeer_event(&rp, SGRPC_EV_GOAWAY, NULL, 0) < e);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, c1), 0);

  /* no new calls */
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  {
    sgrpc_call *nc = NULL;
    assert_int_equal(sgrpc_call_start(rp.conn, &o, rp.now, &nc), SGRPC_ERR_GOING_AWAY);
    assert_null(nc);
  }

  /* the call at last_stream_id completes normally */
  rawpeer_submit_response(&rp, 1, OK_HEADERS, 0);
  rawpeer_submit_data(&rp, 1, m, n, 0);
  rawpeer_submit_trailers(&rp, 1, trl);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, c1), 1);
  e = close_of(&rp, c1);
  assert_int_equal(e->code, SGRPC_STATUS_OK);
  assert_int_equal(e->retry_safe, 0);
  finish(&rp);
}


static void test_response_message_too_large(void **state) {
  sgrpc_settings s;
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  uint8_t m[64];
  const rp_event *e;
  (void)state;
  sgrpc_settings_default(&s);
  s.max_recv_message_size = 8;
  rawpeer_new_server(&rp, &s);
  rp.auto_release = 1;
  call = start(&rp, 1);
  sid = sgrpc_call_stream_id(call);
  rawpeer_submit_response(&rp, sid, OK_HEADERS, 0);
  rawpeer_submit_data(&rp, sid, m, rawpeer_grpc_frame(m, 0, "12345678", 8), 0);
  rawpeer_submit_data(&rp, sid, m, rawpeer_grpc_frame(m, 0, "123456789", 9), 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, call), 1);
  e = close_of(&rp, call);
  assert_int_equal(e->code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_CANCEL);
  finish(&rp);
}

/* A server that ignores our SETTINGS_MAX_HEADER_LIST_SIZE: the client
 * refuses the oversized block itself. */
static void test_response_header_list_too_large(void **state) {
  static char big[2001];
  const char *const fat_headers[] = {":status", "200", "content-type", "application/grpc",
                                     "x-big", big, NULL};
  const char *const fat_trailers[] = {"grpc-status", "0", "x-big", big, NULL};
  sgrpc_settings s;
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  const rp_event *e;
  int k;
  (void)state;
  memset(big, 'b', sizeof(big) - 1);
  for (k = 0; k < 2; k++) {
    sgrpc_settings_default(&s);
    s.max_header_list_size = 1024;
    s.settings_timeout = SGRPC_NEVER;
    rawpeer_new_server(&rp, &s);
    rp.auto_release = 1;
    rawpeer_run(&rp, ROUNDS);
    call = start(&rp, 1);
    sid = sgrpc_call_stream_id(call);
    if (k == 0) {
      rawpeer_submit_response(&rp, sid, fat_headers, 0);
    } else {
      rawpeer_submit_response(&rp, sid, OK_HEADERS, 0);
      rawpeer_submit_trailers(&rp, sid, fat_trailers);
    }
    rawpeer_run(&rp, ROUNDS);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HEADERS, call), (size_t)k);
    e = close_of(&rp, call);
    assert_int_equal(e->code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
    finish(&rp);
  }
}

static void test_response_bad_flag(void **state) {
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  uint8_t m[64];
  const rp_event *e;
  (void)state;
  setup(&rp);
  call = start(&rp, 1);
  sid = sgrpc_call_stream_id(call);
  rawpeer_submit_response(&rp, sid, OK_HEADERS, 0);
  rawpeer_submit_data(&rp, sid, m, rawpeer_grpc_frame(m, 2, "x", 1), 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, call), 0);
  e = close_of(&rp, call);
  assert_int_equal(e->code, SGRPC_STATUS_INTERNAL);
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_CANCEL);
  finish(&rp);
}

/* END_STREAM on trailers while a message is half received. */
static void test_trailers_inside_message(void **state) {
  static const char *const trl[] = {"grpc-status", "0", NULL};
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  uint8_t m[64];
  size_t n;
  (void)state;
  setup(&rp);
  call = start(&rp, 1);
  sid = sgrpc_call_stream_id(call);
  n = rawpeer_grpc_frame(m, 0, "abcdef", 6);
  rawpeer_submit_response(&rp, sid, OK_HEADERS, 0);
  rawpeer_submit_data(&rp, sid, m, n - 2, 0);
  rawpeer_submit_trailers(&rp, sid, trl);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, call), 0);
  assert_int_equal(close_of(&rp, call)->code, SGRPC_STATUS_INTERNAL);
  finish(&rp);
}

static void test_informational_then_response(void **state) {
  static const char *const info[] = {":status", "100", NULL};
  static const char *const trl[] = {"grpc-status", "0", NULL};
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  (void)state;
  setup(&rp);
  call = start(&rp, 1);
  sid = sgrpc_call_stream_id(call);
  rawpeer_submit_headers(&rp, sid, info, 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rp.nevents, 0);
  rawpeer_submit_response(&rp, sid, OK_HEADERS, 0);
  rawpeer_submit_trailers(&rp, sid, trl);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HEADERS, call), 1);
  assert_int_equal(close_of(&rp, call)->code, SGRPC_STATUS_OK);
  finish(&rp);
}

static void test_second_headers_without_end(void **state) {
  static const char *const more[] = {"x-more", "1", NULL};
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  (void)state;
  setup(&rp);
  call = start(&rp, 1);
  sid = sgrpc_call_stream_id(call);
  rawpeer_submit_response(&rp, sid, OK_HEADERS, 0);
  rawpeer_run(&rp, ROUNDS);
  rawpeer_submit_headers(&rp, sid, more, 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(close_of(&rp, call)->code, SGRPC_STATUS_INTERNAL);
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_CANCEL);
  finish(&rp);
}

static void test_malformed_response_field(void **state) {
  static const char *const upper[] = {":status", "200", "content-type", "application/grpc",
                                      "X-Upper", "1", NULL};
  static const char *const nostatus[] = {"content-type", "application/grpc", NULL};
  static const char *const badtrl[] = {"grpc-status", "0", "Bad", "1", NULL};
  rawpeer rp;
  sgrpc_call *call;
  (void)state;
  setup(&rp);
  assert_int_equal(answer_headers_only(&rp, &call, upper)->code, SGRPC_STATUS_INTERNAL);
  finish(&rp);
  setup(&rp);
  assert_int_equal(answer_headers_only(&rp, &call, nostatus)->code, SGRPC_STATUS_INTERNAL);
  finish(&rp);
  setup(&rp);
  assert_int_equal(answer_with_trailers(&rp, &call, badtrl)->code, SGRPC_STATUS_INTERNAL);
  finish(&rp);
}

/* Trailers must not carry pseudo-headers (RFC 7540 8.1.2.1): the call
 * ends INTERNAL whatever grpc-status they claim. */
static void test_pseudo_header_in_trailers(void **state) {
  static const char *const trl[] = {"grpc-status", "0", ":status", "200", NULL};
  rawpeer rp;
  sgrpc_call *call;
  const rp_event *e;
  (void)state;
  setup(&rp);
  e = answer_with_trailers(&rp, &call, trl);
  assert_int_equal(e->code, SGRPC_STATUS_INTERNAL);
  assert_string_equal(e->message, "malformed trailer field");
  finish(&rp);
}

/* A response message far larger than the client's stream window: window
 * credit must flow back before the message is complete. */
static void test_large_response_small_window(void **state) {
  static const char *const trl[] = {"grpc-status", "0", NULL};
  enum { LEN = 300000 };
  sgrpc_settings s;
  rawpeer rp;
  sgrpc_call *call;
  int32_t sid;
  uint8_t *msg = malloc(LEN + 5);
  size_t i, off = 0;
  const rp_event *e;
  (void)state;
  assert_non_null(msg);
  sgrpc_settings_default(&s);
  s.stream_window = 65535;
  s.connection_window = 65535;
  rawpeer_new_server(&rp, &s);
  rp.auto_release = 1;
  rp.max_split = 5000;
  call = start(&rp, 1);
  sid = sgrpc_call_stream_id(call);
  for (i = 0; i < LEN; i++) msg[5 + i] = (uint8_t)(i * 13);
  msg[0] = 0;
  msg[1] = 0;
  msg[2] = (uint8_t)(LEN >> 16);
  msg[3] = (uint8_t)(LEN >> 8);
  msg[4] = (uint8_t)LEN;
  rawpeer_submit_response(&rp, sid, OK_HEADERS, 0);
  while (off < LEN + 5) {
    size_t n = LEN + 5 - off < 16384 ? LEN + 5 - off : 16384;
    rawpeer_submit_data(&rp, sid, msg + off, n, 0);
    off += n;
  }
  rawpeer_submit_trailers(&rp, sid, trl);
  rawpeer_run(&rp, 1000);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, call), 1);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, call, 0);
  assert_int_equal(e->len, LEN);
  assert_memory_equal(e->data, msg + 5, LEN);
  assert_int_equal(close_of(&rp, call)->code, SGRPC_STATUS_OK);
  free(msg);
  finish(&rp);
}

/* A response compressed by zlib itself (not by sgrpc): gzip and deflate
 * bodies are inflated and flagged; a compressed message under an encoding
 * the client does not know, or without any grpc-encoding, ends the call
 * INTERNAL. */
static size_t zlib_pack(int gzip, const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof(z));
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, gzip ? 15 + 16 : 15, 8, Z_DEFAULT_STRATEGY),
                   Z_OK);
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  deflateEnd(&z);
  return cap - z.avail_out;
}

static const rp_event *answer_encoded(rawpeer *rp, sgrpc_call **pcall, const char *enc,
                                      uint8_t flag, const uint8_t *body, size_t len) {
  sgrpc_call *call = start(rp, 1);
  int32_t sid = sgrpc_call_stream_id(call);
  static uint8_t m[8192];
  const char *hdrs[] = {":status", "200", "content-type", "application/grpc", "grpc-encoding",
                        enc, NULL};
  static const char *const trl[] = {"grpc-status", "0", NULL};
  size_t n;
  if (!enc) hdrs[4] = NULL;
  assert_true(len + 5 <= sizeof(m));
  n = rawpeer_grpc_frame(m, flag, body, len);
  rawpeer_submit_response(rp, sid, hdrs, 0);
  rawpeer_submit_data(rp, sid, m, n, 0);
  rawpeer_submit_trailers(rp, sid, trl);
  rawpeer_run(rp, ROUNDS);
  *pcall = call;
  return close_of(rp, call);
}

static void test_response_encodings(void **state) {
  static uint8_t msg[3000], packed[4096];
  size_t i, plen;
  int gzip;
  (void)state;
  for (i = 0; i < sizeof(msg); i++) msg[i] = (uint8_t)"compress me "[i % 12];
  for (gzip = 0; gzip < 2; gzip++) {
    rawpeer rp;
    sgrpc_call *call;
    const rp_event *e, *m;
    setup(&rp);
    plen = zlib_pack(gzip, msg, sizeof(msg), packed, sizeof(packed));
    assert_true(plen < sizeof(msg) / 4);
    e = answer_encoded(&rp, &call, gzip ? "gzip" : "deflate", 1, packed, plen);
    assert_int_equal(e->code, SGRPC_STATUS_OK);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, call), 1);
    m = rawpeer_event(&rp, SGRPC_EV_MESSAGE, call, 0);
    assert_int_equal(m->compressed, 1);
    assert_int_equal(m->len, sizeof(msg));
    assert_memory_equal(m->data, msg, sizeof(msg));
    finish(&rp);
  }
  {
    rawpeer rp;
    sgrpc_call *call;
    const rp_event *e;
    /* an encoding the client never offered */
    setup(&rp);
    plen = zlib_pack(1, msg, sizeof(msg), packed, sizeof(packed));
    e = answer_encoded(&rp, &call, "snappy", 1, packed, plen);
    assert_int_equal(e->code, SGRPC_STATUS_INTERNAL);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, call), 0);
    finish(&rp);
    /* the compressed flag without grpc-encoding */
    setup(&rp);
    e = answer_encoded(&rp, &call, NULL, 1, packed, plen);
    assert_int_equal(e->code, SGRPC_STATUS_INTERNAL);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, call), 0);
    finish(&rp);
    /* gzip declared, but the body is not gzip */
    setup(&rp);
    e = answer_encoded(&rp, &call, "gzip", 1, msg, 100);
    assert_int_equal(e->code, SGRPC_STATUS_INTERNAL);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, call), 0);
    finish(&rp);
    /* an unknown response encoding fails the call even before a
     * compressed message (docs/engine.md) */
    setup(&rp);
    e = answer_encoded(&rp, &call, "snappy", 0, msg, 10);
    assert_int_equal(e->code, SGRPC_STATUS_INTERNAL);
    finish(&rp);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_headers),
      cmocka_unit_test(test_settings_scheme_user_agent),
      cmocka_unit_test(test_full_response),
      cmocka_unit_test(test_http_status_mapping),
      cmocka_unit_test(test_bad_content_type),
      cmocka_unit_test(test_trailers_only_sloppy_content_type),
      cmocka_unit_test(test_headers_without_content_type),
      cmocka_unit_test(test_grpc_status_parsing),
      cmocka_unit_test(test_trailers_only),
      cmocka_unit_test(test_grpc_message_decoding),
      cmocka_unit_test(test_status_details),
      cmocka_unit_test(test_rst_mapping),
      cmocka_unit_test(test_data_end_without_trailers),
      cmocka_unit_test(test_client_cancel),
      cmocka_unit_test(test_bad_metadata_keys),
      cmocka_unit_test(test_goaway),
      cmocka_unit_test(test_response_message_too_large),
      cmocka_unit_test(test_response_header_list_too_large),
      cmocka_unit_test(test_response_bad_flag),
      cmocka_unit_test(test_trailers_inside_message),
      cmocka_unit_test(test_informational_then_response),
      cmocka_unit_test(test_second_headers_without_end),
      cmocka_unit_test(test_malformed_response_field),
      cmocka_unit_test(test_pseudo_header_in_trailers),
      cmocka_unit_test(test_large_response_small_window),
      cmocka_unit_test(test_response_encodings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
