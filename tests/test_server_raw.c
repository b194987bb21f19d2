/*
 * Raw HTTP/2 client -> sgrpc server. Every request is built by hand so
 * each validation rule of the server, and every header list it answers
 * with, is checked exactly (in the spirit of grpclib's
 * test_server_handler.py).
 */
#include "rawpeer.h"
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 64

/* The common, valid part of a request; tests append what they vary. */
#define REQ_BASE ":method", "POST", ":scheme", "http", ":path", "/t.S/M"

enum { APP_NONE, APP_ECHO, APP_STATUS_FIRST };

/* The server application driven by the engine's events. */
typedef struct app {
  int mode;
  int code;
  const char *message;
  const sgrpc_md *tmd;
  size_t tmd_count;
  const char *known_path; /* others get UNIMPLEMENTED; NULL: all known */
} app;

static void app_status(sgrpc_call *call, const app *a) {
  sgrpc_status st;
  memset(&st, 0, sizeof(st));
  st.code = a->code;
  st.message = a->message;
  st.md = a->tmd;
  st.md_count = a->tmd_count;
  assert_int_equal(sgrpc_call_send_status(call, &st), 0);
}

/* call user_data of calls already answered UNIMPLEMENTED */
static int unimplemented_mark;

static void app_event(rawpeer *rp, const sgrpc_event *ev, void *ud) {
  app *a = ud;
  (void)rp;
  if (ev->call_user_data == &unimplemented_mark) return;
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW:
    if (a->known_path && (strlen(a->known_path) != ev->u.call_new.path_len ||
                          memcmp(a->known_path, ev->u.call_new.path,
                                 ev->u.call_new.path_len) != 0)) {
      sgrpc_status st;
      memset(&st, 0, sizeof(st));
      st.code = SGRPC_STATUS_UNIMPLEMENTED;
      st.message = "Method not found!";
      assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
      sgrpc_call_set_user_data(ev->call, &unimplemented_mark);
      break;
    }
    if (a->mode == APP_STATUS_FIRST) app_status(ev->call, a);
    break;
  case SGRPC_EV_MESSAGE:
    if (a->mode == APP_ECHO)
      assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0), 0);
    break;
  case SGRPC_EV_HALF_CLOSE:
    if (a->mode == APP_ECHO) app_status(ev->call, a);
    break;
  default:
    break;
  }
}

static void setup(rawpeer *rp, app *a, const sgrpc_settings *s) {
  rawpeer_new_client(rp, s);
  rp->on_event = app_event;
  rp->ud = a;
  rp->auto_release = 1;
}

/* Sends nv with END_STREAM and no body, runs, returns the stream id. */
static int32_t send_headers_only(rawpeer *rp, const char *const *nv) {
  int32_t sid = rawpeer_submit_request(rp, nv, NULL, 0, 1);
  rawpeer_run(rp, ROUNDS);
  return sid;
}

/* Sends nv and one message "ping" with END_STREAM, runs. */
static int32_t send_unary(rawpeer *rp, const char *const *nv) {
  uint8_t body[16];
  size_t n = rawpeer_grpc_frame(body, 0, "ping", 4);
  int32_t sid = rawpeer_submit_request(rp, nv, body, n, 1);
  rawpeer_run(rp, ROUNDS);
  return sid;
}

static void assert_clean(rawpeer *rp) {
  assert_int_equal(rp->conn_err, 0);
  assert_int_equal(rp->h2_err, 0);
  assert_int_equal(sgrpc_conn_call_count(rp->conn), 0);
}

/* ------------------------------------------------------------------ */

static void test_valid_unary(void **state) {
  static const char *const nv[] = {REQ_BASE, ":authority", "example.com:50051",
                                   "grpc-timeout", "1S", "te", "trailers", "content-type",
                                   "application/grpc", "user-agent", "raw/1.0",
                                   "x-a", "1", "x-b-bin", "AAEC", "x-a", "2", NULL};
  static const sgrpc_md tmd[] = {SGRPC_MD_STR("x-t", "v"), SGRPC_MD_STR("x-t2-bin", "\x01\xff")};
  app a = {APP_ECHO, SGRPC_STATUS_OK, "h\xc3\xa9llo 100%", tmd, 2, NULL};
  rawpeer rp;
  const rp_event *e;
  const rp_frame *f;
  const uint8_t *d;
  size_t dl;
  uint8_t exp[16];
  int32_t sid;
  (void)state;
  setup(&rp, &a, NULL);
  sid = send_unary(&rp, nv);

  e = rawpeer_event(&rp, SGRPC_EV_CALL_NEW, NULL, 0);
  assert_non_null(e);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 1);
  assert_string_equal(e->path, "/t.S/M");
  assert_string_equal(e->authority, "example.com:50051");
  assert_string_equal(e->user_agent, "raw/1.0");
  assert_string_equal(e->content_type, "application/grpc");
  assert_true(e->deadline == 1000000000 + 1000000000LL);
  assert_int_equal(e->md_count, 3);
  assert_string_equal(e->md[0].key, "x-a");
  assert_int_equal(e->md[0].value_len, 1);
  assert_memory_equal(e->md[0].value, "1", 1);
  assert_string_equal(e->md[1].key, "x-b-bin");
  assert_int_equal(e->md[1].value_len, 3);
  assert_memory_equal(e->md[1].value, "\x00\x01\x02", 3);
  assert_string_equal(e->md[2].key, "x-a");
  assert_memory_equal(e->md[2].value, "2", 1);

  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->len, 4);
  assert_memory_equal(e->data, "ping", 4);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 1);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->code, SGRPC_STATUS_OK);
  assert_int_equal(e->reset, 0);

  /* the wire: headers, one message, trailers; nothing else on the stream */
  assert_int_equal(rawpeer_count_frames(&rp, sid, NGHTTP2_HEADERS), 2);
  f = rawpeer_headers(&rp, sid, 0);
  rawpeer_assert_fields(f, ":status", "200", "content-type", "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", NULL);
  assert_int_equal(f->end_stream, 0);
  d = rawpeer_stream_data(&rp, sid, &dl);
  assert_int_equal(dl, rawpeer_grpc_frame(exp, 0, "ping", 4));
  assert_memory_equal(d, exp, dl);
  f = rawpeer_headers(&rp, sid, 1);
  assert_int_equal(f->hkind, RP_HDRS_TRAILERS);
  assert_int_equal(f->end_stream, 1);
  rawpeer_assert_fields(f, "grpc-status", "0", "grpc-message", "h%C3%A9llo 100%25", "x-t", "v",
                        "x-t2-bin", "Af8", NULL);
  assert_int_equal(rawpeer_rst_code(&rp, sid), -1);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

static void test_trailers_only(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc+proto", NULL};
  static const sgrpc_md tmd[] = {SGRPC_MD_STR("x-why", "because")};
  app a = {APP_STATUS_FIRST, SGRPC_STATUS_NOT_FOUND, "no such thing", tmd, 1, NULL};
  rawpeer rp;
  const rp_frame *f;
  const rp_event *e;
  int32_t sid;
  (void)state;
  setup(&rp, &a, NULL);
  sid = send_unary(&rp, nv);
  assert_int_equal(rawpeer_count_frames(&rp, sid, NGHTTP2_HEADERS), 1);
  assert_int_equal(rawpeer_count_frames(&rp, sid, NGHTTP2_DATA), 0);
  f = rawpeer_headers(&rp, sid, 0);
  assert_int_equal(f->end_stream, 1);
  /* the response content-type follows the request's */
  rawpeer_assert_fields(f, ":status", "200", "content-type", "application/grpc+proto", "grpc-accept-encoding", "identity,deflate,gzip",
                        "grpc-status", "5", "grpc-message", "no such thing", "x-why",
                        "because", NULL);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->code, SGRPC_STATUS_NOT_FOUND);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

/* A request the engine answers itself: no CALL_NEW, one HEADERS frame
 * with END_STREAM holding exactly the expected list. */
static const rp_frame *expect_rejected(rawpeer *rp, int32_t sid) {
  const rp_frame *f;
  assert_int_equal(rawpeer_count_events(rp, SGRPC_EV_CALL_NEW, NULL), 0);
  assert_int_equal(rawpeer_count_events(rp, SGRPC_EV_CLOSE, NULL), 0);
  assert_int_equal(rawpeer_count_frames(rp, sid, NGHTTP2_HEADERS), 1);
  assert_int_equal(rawpeer_count_frames(rp, sid, NGHTTP2_DATA), 0);
  f = rawpeer_headers(rp, sid, 0);
  assert_non_null(f);
  assert_int_equal(f->end_stream, 1);
  assert_clean(rp);
  return f;
}

static void test_get_405(void **state) {
  static const char *const nv[] = {":method", "GET", ":scheme", "http", ":path", "/t.S/M",
                                   "te", "trailers", "content-type", "application/grpc", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  (void)state;
  setup(&rp, &a, NULL);
  sid = send_headers_only(&rp, nv);
  rawpeer_assert_fields(expect_rejected(&rp, sid), ":status", "405", NULL);
  rawpeer_free(&rp);
}

static void check_415(const char *ct) {
  const char *nv[16] = {REQ_BASE, "te", "trailers"};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  if (ct) {
    nv[8] = "content-type";
    nv[9] = ct;
  }
  setup(&rp, &a, NULL);
  sid = send_unary(&rp, nv);
  rawpeer_assert_fields(expect_rejected(&rp, sid), ":status", "415", "content-type",
                        "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", "grpc-status", "2", "grpc-message",
                        "Unacceptable content-type header", NULL);
  rawpeer_free(&rp);
}

static void check_ct_accepted(const char *ct) {
  const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type", ct, NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  const rp_event *e;
  setup(&rp, &a, NULL);
  sid = send_unary(&rp, nv);
  e = rawpeer_event(&rp, SGRPC_EV_CALL_NEW, NULL, 0);
  assert_non_null(e);
  assert_string_equal(e->content_type, ct);
  rawpeer_assert_fields(rawpeer_headers(&rp, sid, 0), ":status", "200", "content-type", ct, "grpc-accept-encoding", "identity,deflate,gzip",
                        NULL);
  rawpeer_assert_fields(rawpeer_headers(&rp, sid, 1), "grpc-status", "0", NULL);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

static void test_content_type(void **state) {
  (void)state;
  check_415(NULL);
  check_415("text/plain");
  check_415("application/grpcfoo");
  check_415("application/json");
  check_415("");
  check_ct_accepted("application/grpc");
  check_ct_accepted("application/grpc+proto");
  check_ct_accepted("application/grpc;x=y");
}

static void test_te(void **state) {
  static const char *const gz[] = {REQ_BASE, "te", "gzip", "content-type",
                                   "application/grpc", NULL};
  static const char *const none[] = {REQ_BASE, "content-type", "application/grpc", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  (void)state;
  setup(&rp, &a, NULL);
  sid = send_unary(&rp, gz);
  rawpeer_assert_fields(expect_rejected(&rp, sid), ":status", "400", "content-type",
                        "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", "grpc-status", "13", "grpc-message",
                        "Required \"te: trailers\" header", NULL);
  rawpeer_free(&rp);

  /* te absent: accepted (some proxies strip it) */
  setup(&rp, &a, NULL);
  sid = send_unary(&rp, none);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 1);
  rawpeer_assert_fields(rawpeer_headers(&rp, sid, 0), ":status", "200", "content-type",
                        "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", NULL);
  rawpeer_assert_fields(rawpeer_headers(&rp, sid, 1), "grpc-status", "0", NULL);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

static void check_bad_timeout(const char *tmo) {
  const char *const nv[] = {REQ_BASE, "grpc-timeout", tmo, "te", "trailers", "content-type",
                            "application/grpc", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  setup(&rp, &a, NULL);
  sid = send_unary(&rp, nv);
  rawpeer_assert_fields(expect_rejected(&rp, sid), ":status", "200", "content-type",
                        "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", "grpc-status", "13", "grpc-message",
                        "Invalid grpc-timeout header", NULL);
  rawpeer_free(&rp);
}

static void test_bad_timeout(void **state) {
  (void)state;
  check_bad_timeout("123456789S"); /* 9 digits */
  check_bad_timeout("1x");
  check_bad_timeout("S");
  check_bad_timeout("-1S");
  check_bad_timeout("1 S");
}

/* Malformed HTTP/2 requests: RST_STREAM PROTOCOL_ERROR, nothing else. */
static void check_protocol_error(const rp_field *f, size_t n) {
  fprintf(stderr, "malformed request case: %s %s\n", f[n - 1].name, f[n - 1].value);
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  uint8_t body[16];
  size_t bl = rawpeer_grpc_frame(body, 0, "ping", 4);
  setup(&rp, &a, NULL);
  sid = rawpeer_submit_request_fields(&rp, f, n, body, bl, 1);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 0);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 0);
  assert_int_equal(rawpeer_count_frames(&rp, sid, NGHTTP2_HEADERS), 0);
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_PROTOCOL_ERROR);
  /* the connection survives: a stream error, not a connection error */
  assert_null(rawpeer_goaway(&rp));
  assert_clean(&rp);
  rawpeer_free(&rp);
}

#define F(n, v) {(char *)(n), sizeof(n) - 1, (char *)(v), sizeof(v) - 1}

static void test_malformed_requests(void **state) {
  static const rp_field no_path[] = {F(":method", "POST"), F(":scheme", "http"),
                                     F("te", "trailers"), F("content-type", "application/grpc")};
  static const rp_field no_method[] = {F(":scheme", "http"), F(":path", "/t.S/M"),
                                       F("te", "trailers"), F("content-type", "application/grpc")};
  static const rp_field no_scheme[] = {F(":method", "POST"), F(":path", "/t.S/M"),
                                       F("te", "trailers"), F("content-type", "application/grpc")};
  static const rp_field empty_path[] = {F(":method", "POST"), F(":scheme", "http"),
                                        F(":path", ""), F("content-type", "application/grpc")};
  static const rp_field upper[] = {F(":method", "POST"), F(":scheme", "http"),
                                   F(":path", "/t.S/M"), F("te", "trailers"),
                                   F("content-type", "application/grpc"), F("X-Upper", "1")};
  static const rp_field unknown_pseudo[] = {F(":method", "POST"), F(":scheme", "http"),
                                            F(":path", "/t.S/M"), F(":foo", "bar"),
                                            F("content-type", "application/grpc")};
  static const rp_field status_pseudo[] = {F(":method", "POST"), F(":scheme", "http"),
                                           F(":path", "/t.S/M"), F(":status", "200"),
                                           F("content-type", "application/grpc")};
  static const rp_field pseudo_late[] = {F(":method", "POST"), F(":scheme", "http"),
                                         F("content-type", "application/grpc"),
                                         F(":path", "/t.S/M")};
  static const rp_field dup_path[] = {F(":method", "POST"), F(":scheme", "http"),
                                      F(":path", "/t.S/M"), F(":path", "/t.S/M"),
                                      F("content-type", "application/grpc")};
  static const rp_field conn_hdr[] = {F(":method", "POST"), F(":scheme", "http"),
                                      F(":path", "/t.S/M"), F("connection", "close"),
                                      F("content-type", "application/grpc")};
  static const rp_field bad_name[] = {F(":method", "POST"), F(":scheme", "http"),
                                      F(":path", "/t.S/M"), F("a b", "1"),
                                      F("content-type", "application/grpc")};
  static const rp_field bad_value[] = {F(":method", "POST"), F(":scheme", "http"),
                                       F(":path", "/t.S/M"), F("x-a", "a\nb"),
                                       F("content-type", "application/grpc")};
  /* fields the engine recognises by name are still checked */
  static const rp_field known_upper[] = {F(":method", "POST"), F(":scheme", "http"),
                                         F(":path", "/t.S/M"),
                                         F("Content-Type", "application/grpc")};
  static const rp_field known_bad_value[] = {F(":method", "POST"), F(":scheme", "http"),
                                             F(":path", "/t.S/M"),
                                             F("user-agent", "long agent n\rame/1.0"),
                                             F("content-type", "application/grpc")};
  static const char *const conn_specific[] = {"transfer-encoding", "upgrade", "keep-alive",
                                              "proxy-connection"};
  size_t i;
  (void)state;
  check_protocol_error(known_upper, 4);
  check_protocol_error(known_bad_value, 5);
  for (i = 0; i < sizeof(conn_specific) / sizeof(conn_specific[0]); i++) {
    rp_field f[5] = {F(":method", "POST"), F(":scheme", "http"), F(":path", "/t.S/M"),
                     {(char *)conn_specific[i], strlen(conn_specific[i]), (char *)"x", 1},
                     F("content-type", "application/grpc")};
    check_protocol_error(f, 5);
  }
  check_protocol_error(no_path, 4);
  check_protocol_error(no_method, 4);
  check_protocol_error(no_scheme, 4);
  check_protocol_error(empty_path, 4);
  check_protocol_error(upper, 6);
  check_protocol_error(unknown_pseudo, 5);
  check_protocol_error(status_pseudo, 5);
  check_protocol_error(pseudo_late, 4);
  check_protocol_error(dup_path, 5);
  check_protocol_error(conn_hdr, 5);
  check_protocol_error(bad_name, 5);
  check_protocol_error(bad_value, 5);
}

static void test_unknown_method(void **state) {
  static const char *const nv[] = {":method", "POST", ":scheme", "http", ":path",
                                   "/t.S/Nope", "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, "/t.S/M"};
  rawpeer rp;
  int32_t sid;
  const rp_event *e;
  (void)state;
  setup(&rp, &a, NULL);
  sid = send_unary(&rp, nv);
  e = rawpeer_event(&rp, SGRPC_EV_CALL_NEW, NULL, 0);
  assert_non_null(e);
  assert_string_equal(e->path, "/t.S/Nope");
  rawpeer_assert_fields(rawpeer_headers(&rp, sid, 0), ":status", "200", "content-type",
                        "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", "grpc-status", "12", "grpc-message",
                        "Method not found!", NULL);
  assert_true(rawpeer_headers(&rp, sid, 0)->end_stream);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->code, SGRPC_STATUS_UNIMPLEMENTED);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

static void test_client_cancel(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  uint8_t body[16];
  size_t bl = rawpeer_grpc_frame(body, 0, "ping", 4);
  const rp_event *e;
  (void)state;
  setup(&rp, &a, NULL);
  /* one whole message and half of the next, stream left open */
  sid = rawpeer_submit_request(&rp, nv, body, bl, 0);
  rawpeer_submit_data(&rp, sid, body, 3, 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 1);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 0);
  rawpeer_submit_rst(&rp, sid, NGHTTP2_CANCEL);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 1);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_int_equal(e->code, SGRPC_STATUS_CANCELLED);
  assert_int_equal(e->reset, 1);
  assert_int_equal(e->http2_error, NGHTTP2_CANCEL);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 0);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

static void test_message_too_large(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  sgrpc_settings s;
  rawpeer rp;
  int32_t sid;
  uint8_t body[64], msg[32];
  size_t bl;
  const rp_event *e;
  const rp_frame *f;
  (void)state;
  memset(msg, 'm', sizeof(msg));
  sgrpc_settings_default(&s);
  s.max_recv_message_size = 16;

  /* exactly at the limit: accepted */
  setup(&rp, &a, &s);
  bl = rawpeer_grpc_frame(body, 0, msg, 16);
  sid = rawpeer_submit_request(&rp, nv, body, bl, 1);
  rawpeer_run(&rp, ROUNDS);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->len, 16);
  assert_string_equal(rawpeer_field(rawpeer_headers(&rp, sid, 1), "grpc-status"), "0");
  assert_clean(&rp);
  rawpeer_free(&rp);

  /* one byte over: only the prefix is needed to refuse it */
  setup(&rp, &a, &s);
  bl = rawpeer_grpc_frame(body, 0, msg, 17);
  sid = rawpeer_submit_request(&rp, nv, body, 5, 0);
  rawpeer_submit_data(&rp, sid, body + 5, bl - 5, 1);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 0);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 1);
  f = rawpeer_headers(&rp, sid, 0);
  assert_non_null(f);
  assert_int_equal(f->end_stream, 1);
  assert_string_equal(rawpeer_field(f, ":status"), "200");
  assert_string_equal(rawpeer_field(f, "grpc-status"), "8");
  assert_non_null(rawpeer_field(f, "grpc-message"));
  assert_clean(&rp);
  rawpeer_free(&rp);
}

static void test_reassembly(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  app a = {APP_NONE, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  uint8_t big[2000], framed[2100], multi[64];
  size_t fl, ml = 0, off = 0, step = 1, i;
  const rp_event *e;
  (void)state;
  for (i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 7 + 3);
  fl = rawpeer_grpc_frame(framed, 0, big, sizeof(big));
  setup(&rp, &a, NULL);
  sid = rawpeer_submit_request(&rp, nv, NULL, 0, 0);
  /* the big message in DATA frames of 1, 2, 3, ... bytes (the prefix
   * itself split over three frames) */
  while (off < fl) {
    size_t n = step < fl - off ? step : fl - off;
    rawpeer_submit_data(&rp, sid, framed + off, n, 0);
    off += n;
    step++;
  }
  assert_true(step > 60); /* many frames indeed */
  /* three messages (empty, 3 bytes, 10 bytes) in one frame */
  ml += rawpeer_grpc_frame(multi + ml, 0, "", 0);
  ml += rawpeer_grpc_frame(multi + ml, 0, "abc", 3);
  ml += rawpeer_grpc_frame(multi + ml, 0, "0123456789", 10);
  rawpeer_submit_data(&rp, sid, multi, ml, 0);
  /* a frame ending exactly on a message boundary, then END_STREAM alone */
  rawpeer_submit_data(&rp, sid, NULL, 0, 1);
  rp.max_split = 7; /* and random splits of the byte stream into the engine */
  rawpeer_run(&rp, ROUNDS * 4);

  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 4);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, NULL, 0);
  assert_int_equal(e->len, sizeof(big));
  assert_memory_equal(e->data, big, sizeof(big));
  assert_int_equal(e->compressed, 0);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, NULL, 1);
  assert_int_equal(e->len, 0);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, NULL, 2);
  assert_int_equal(e->len, 3);
  assert_memory_equal(e->data, "abc", 3);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, NULL, 3);
  assert_int_equal(e->len, 10);
  assert_memory_equal(e->data, "0123456789", 10);
  assert_int_equal(e->compressed, 0);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 1);
  /* HALF_CLOSE comes after the last message */
  assert_true(rawpeer_event(&rp, SGRPC_EV_HALF_CLOSE, NULL, 0) > e);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 0);
  assert_int_equal(rp.conn_err, 0);
  rawpeer_free(&rp);
}

/* The request body breaks gRPC framing: INTERNAL to both sides. */
static void check_internal_body(const uint8_t *body, size_t len, int split_end) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  const rp_event *e;
  const rp_frame *f;
  setup(&rp, &a, NULL);
  if (split_end) {
    sid = rawpeer_submit_request(&rp, nv, body, len, 0);
    rawpeer_run(&rp, ROUNDS);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CLOSE, NULL), 0);
    rawpeer_submit_data(&rp, sid, NULL, 0, 1);
  } else {
    sid = rawpeer_submit_request(&rp, nv, body, len, 1);
  }
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 0);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 0);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->code, SGRPC_STATUS_INTERNAL);
  f = rawpeer_headers(&rp, sid, 0);
  assert_non_null(f);
  assert_true(f->end_stream);
  assert_string_equal(rawpeer_field(f, "grpc-status"), "13");
  assert_clean(&rp);
  rawpeer_free(&rp);
}

static void test_bad_bodies(void **state) {
  uint8_t body[32];
  size_t n = rawpeer_grpc_frame(body, 0, "abcdefgh", 8);
  (void)state;
  /* END_STREAM in the middle of a message body, and inside the prefix */
  check_internal_body(body, n - 3, 0);
  check_internal_body(body, 3, 0);
  check_internal_body(body, n - 3, 1);
  /* compressed-flag byte 2 (and 0xFF) */
  body[0] = 2;
  check_internal_body(body, n, 0);
  body[0] = 0xFF;
  check_internal_body(body, n, 0);
}

static void test_bin_metadata(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", "x-p-bin", "AAECAw==", "x-u-bin",
                                   "AAECAw", "x-e-bin", "", "x-one-bin", "/w", NULL};
  static const char *const bad[] = {REQ_BASE, "te", "trailers", "content-type",
                                    "application/grpc", "x-bad-bin", "!!!!", NULL};
  static const char *const bad2[] = {REQ_BASE, "te", "trailers", "content-type",
                                     "application/grpc", "x-bad-bin", "AAECA", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  const rp_event *e;
  int32_t sid;
  (void)state;
  setup(&rp, &a, NULL);
  send_unary(&rp, nv);
  e = rawpeer_event(&rp, SGRPC_EV_CALL_NEW, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->md_count, 4);
  assert_string_equal(e->md[0].key, "x-p-bin");
  assert_int_equal(e->md[0].value_len, 4);
  assert_memory_equal(e->md[0].value, "\x00\x01\x02\x03", 4);
  assert_string_equal(e->md[1].key, "x-u-bin");
  assert_int_equal(e->md[1].value_len, 4);
  assert_memory_equal(e->md[1].value, "\x00\x01\x02\x03", 4);
  assert_string_equal(e->md[2].key, "x-e-bin");
  assert_int_equal(e->md[2].value_len, 0);
  assert_string_equal(e->md[3].key, "x-one-bin");
  assert_int_equal(e->md[3].value_len, 1);
  assert_int_equal(e->md[3].value[0], 0xFF);
  assert_clean(&rp);
  rawpeer_free(&rp);

  setup(&rp, &a, NULL);
  sid = send_unary(&rp, bad);
  rawpeer_assert_fields(expect_rejected(&rp, sid), ":status", "200", "content-type",
                        "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", "grpc-status", "13", "grpc-message",
                        "Malformed binary metadata", NULL);
  rawpeer_free(&rp);

  setup(&rp, &a, NULL);
  sid = send_unary(&rp, bad2); /* 4k+1 characters */
  assert_string_equal(rawpeer_field(expect_rejected(&rp, sid), "grpc-status"), "13");
  rawpeer_free(&rp);
}

static void test_metadata_order_and_reserved(void **state) {
  static const char *const nv[] = {REQ_BASE, ":authority", "h", "x-d", "1", "te", "trailers",
                                   "x-e", "a", "content-type", "application/grpc",
                                   "grpc-timeout", "5m", "x-d", "2", "user-agent", "ua",
                                   "x-d", "3", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  const rp_event *e;
  size_t i;
  static const char *const keys[] = {"x-d", "x-e", "x-d", "x-d"};
  static const char *const vals[] = {"1", "a", "2", "3"};
  (void)state;
  setup(&rp, &a, NULL);
  send_unary(&rp, nv);
  e = rawpeer_event(&rp, SGRPC_EV_CALL_NEW, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->md_count, 4);
  for (i = 0; i < 4; i++) {
    assert_string_equal(e->md[i].key, keys[i]);
    assert_string_equal((const char *)e->md[i].value, vals[i]);
  }
  assert_string_equal(e->authority, "h");
  assert_string_equal(e->user_agent, "ua");
  assert_true(e->deadline == rp.now + 5000000);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

/* Absent optional headers come as "" and no deadline. */
static void test_minimal_request(void **state) {
  static const char *const nv[] = {REQ_BASE, "content-type", "application/grpc", NULL};
  app a = {APP_ECHO, 0, NULL, NULL, 0, NULL};
  rawpeer rp;
  const rp_event *e;
  (void)state;
  setup(&rp, &a, NULL);
  send_unary(&rp, nv);
  e = rawpeer_event(&rp, SGRPC_EV_CALL_NEW, NULL, 0);
  assert_non_null(e);
  assert_string_equal(e->authority, "");
  assert_string_equal(e->user_agent, "");
  assert_string_equal(e->encoding, "");
  assert_true(e->deadline == SGRPC_NEVER);
  assert_int_equal(e->md_count, 0);
  /* no deadline left (the idle trim aside: done here) */
  assert_int_equal(sgrpc_conn_trim(rp.conn), 0);
  assert_int_equal(sgrpc_conn_next_expiry(rp.conn), SGRPC_NEVER);
  assert_clean(&rp);
  rawpeer_free(&rp);
}


/* A request message far larger than the server's stream and connection
 * windows: credit must go back before the message is complete. */
static void test_large_request_small_window(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  enum { LEN = 300000 };
  app a = {APP_NONE, 0, NULL, NULL, 0, NULL};
  sgrpc_settings s;
  rawpeer rp;
  int32_t sid;
  uint8_t *msg = malloc(LEN + 5);
  size_t i, off = 0;
  const rp_event *e;
  (void)state;
  assert_non_null(msg);
  sgrpc_settings_default(&s);
  s.stream_window = 65535;
  s.connection_window = 65535;
  setup(&rp, &a, &s);
  rp.max_split = 3000;
  for (i = 0; i < LEN; i++) msg[5 + i] = (uint8_t)(i * 11 + 1);
  rawpeer_grpc_frame(msg, 0, NULL, 0);
  msg[2] = (uint8_t)(LEN >> 16);
  msg[3] = (uint8_t)(LEN >> 8);
  msg[4] = (uint8_t)LEN;
  sid = rawpeer_submit_request(&rp, nv, NULL, 0, 0);
  while (off < LEN + 5) {
    size_t n = LEN + 5 - off < 16384 ? LEN + 5 - off : 16384;
    rawpeer_submit_data(&rp, sid, msg + off, n, off + n == LEN + 5);
    off += n;
  }
  rawpeer_run(&rp, 1000);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 1);
  e = rawpeer_event(&rp, SGRPC_EV_MESSAGE, NULL, 0);
  assert_int_equal(e->len, LEN);
  assert_memory_equal(e->data, msg + 5, LEN);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 1);
  assert_int_equal(rp.conn_err, 0);
  free(msg);
  rawpeer_free(&rp);
}

/* A client may end its side with a trailer block instead of DATA
 * END_STREAM: that is a half-close. */
static void test_request_trailers(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  static const char *const trl[] = {"x-req-trailer", "1", NULL};
  app a = {APP_ECHO, SGRPC_STATUS_OK, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  uint8_t body[16];
  size_t bl = rawpeer_grpc_frame(body, 0, "ping", 4);
  (void)state;
  setup(&rp, &a, NULL);
  sid = rawpeer_submit_request(&rp, nv, body, bl, 0);
  rawpeer_submit_trailers(&rp, sid, trl);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 1);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 1);
  rawpeer_assert_fields(rawpeer_headers(&rp, sid, 1), "grpc-status", "0", NULL);
  assert_int_equal(rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0)->code, SGRPC_STATUS_OK);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

/* The server answers while the client is still sending: after its
 * END_STREAM it resets the client's half with NO_ERROR (RFC 7540 8.1). */
static void test_early_answer(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  app a = {APP_STATUS_FIRST, SGRPC_STATUS_PERMISSION_DENIED, "no", NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  (void)state;
  setup(&rp, &a, NULL);
  sid = rawpeer_submit_request(&rp, nv, NULL, 0, 0);
  rawpeer_run(&rp, ROUNDS);
  rawpeer_assert_fields(rawpeer_headers(&rp, sid, 0), ":status", "200", "content-type",
                        "application/grpc", "grpc-accept-encoding", "identity,deflate,gzip", "grpc-status", "7", "grpc-message", "no", NULL);
  assert_true(rawpeer_headers(&rp, sid, 0)->end_stream);
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_NO_ERROR);
  assert_int_equal(rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0)->code,
                   SGRPC_STATUS_PERMISSION_DENIED);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

/* h2spec 8.1: a second HEADERS block that does not end the stream is not
 * trailers: the stream is malformed, reset with PROTOCOL_ERROR. */
static void test_second_headers_without_end(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  static const char *const more[] = {"x-more", "1", NULL};
  app a = {APP_NONE, SGRPC_STATUS_OK, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  const rp_event *e;
  (void)state;
  setup(&rp, &a, NULL);
  sid = rawpeer_submit_request(&rp, nv, NULL, 0, 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 1);
  rawpeer_submit_headers(&rp, sid, more, 0);
  rawpeer_run(&rp, ROUNDS);
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_PROTOCOL_ERROR);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 0);
  e = rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0);
  assert_non_null(e);
  assert_int_equal(e->code, SGRPC_STATUS_INTERNAL);
  assert_int_equal(e->reset, 1);
  assert_int_equal(e->http2_error, NGHTTP2_PROTOCOL_ERROR);
  assert_null(rawpeer_goaway(&rp));
  assert_clean(&rp);
  rawpeer_free(&rp);
}

/* h2spec 8.1.2.1: trailers must not carry pseudo-headers. */
static void test_pseudo_header_in_trailers(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  static const char *const trl[] = {":path", "/t.S/M", NULL};
  static const char *const trl_late[] = {"x-t", "1", ":method", "POST", NULL};
  const char *const *cases[] = {trl, trl_late};
  size_t i;
  (void)state;
  for (i = 0; i < 2; i++) {
    app a = {APP_ECHO, SGRPC_STATUS_OK, NULL, NULL, 0, NULL};
    rawpeer rp;
    int32_t sid;
    uint8_t body[16];
    size_t bl = rawpeer_grpc_frame(body, 0, "ping", 4);
    setup(&rp, &a, NULL);
    sid = rawpeer_submit_request(&rp, nv, body, bl, 0);
    rawpeer_submit_trailers(&rp, sid, cases[i]);
    rawpeer_run(&rp, ROUNDS);
    assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_PROTOCOL_ERROR);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 0);
    assert_int_equal(rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0)->code, SGRPC_STATUS_INTERNAL);
    assert_null(rawpeer_goaway(&rp));
    assert_clean(&rp);
    rawpeer_free(&rp);
  }
}

/* Request trailers get a header block of their own, allocated when they
 * arrive (a server call does not carry one otherwise). Without memory
 * for it nghttp2 resets the stream (INTERNAL_ERROR) and the server's call
 * gets its CLOSE, the connection goes on; each later allocation failing
 * in turn ends in a reset, a served call or a failed connection, and
 * nothing leaks. */
static void test_request_trailers_no_memory(void **state) {
  static const char *const nv[] = {REQ_BASE, "te", "trailers", "content-type",
                                   "application/grpc", NULL};
  static const char *const trl[] = {"x-t", "1", NULL};
  int k, served = 0;
  (void)state;
  for (k = 0; k <= 12; k++) {
    app a = {APP_ECHO, SGRPC_STATUS_OK, NULL, NULL, 0, NULL};
    failmem fm;
    sgrpc_mem mem;
    rawpeer rp;
    int32_t sid;
    uint8_t body[16];
    size_t bl = rawpeer_grpc_frame(body, 0, "ping", 4);
    failmem_init(&fm, &mem);
    rawpeer_new_client_mem(&rp, NULL, &mem);
    rp.on_event = app_event;
    rp.ud = &a;
    rp.auto_release = 1;
    sid = rawpeer_submit_request(&rp, nv, body, bl, 0);
    rawpeer_run(&rp, ROUNDS);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 1);
    if (k) fm.fail_at = fm.count + k;
    rawpeer_submit_trailers(&rp, sid, trl);
    rawpeer_run(&rp, ROUNDS);
    if (k == 1) {
      /* the first allocation after the trailers arrive is their block */
      assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_INTERNAL_ERROR);
      assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 0);
      assert_non_null(rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0));
      assert_int_equal(rp.conn_err, 0);
    }
    if (rawpeer_rst_code(&rp, sid) < 0 && rp.conn_err == 0 && !rawpeer_goaway(&rp)) {
      /* served: the trailers were a half-close, the echo ended OK */
      assert_true(rawpeer_stream_ended(&rp, sid));
      assert_string_equal(rawpeer_field(rawpeer_headers(&rp, sid, 1), "grpc-status"), "0");
      served++;
    }
    /* a failed connection keeps its calls until it is deleted */
    if (rp.conn_err == 0) assert_int_equal(sgrpc_conn_call_count(rp.conn), 0);
    rawpeer_free(&rp);
    assert_int_equal(fm.live, 0);
  }
  assert_true(served >= 1); /* k == 0 at least */
}

/* h2spec 8.1.2.6: DATA that does not add up to content-length makes the
 * request malformed (too little at END_STREAM, too much as it comes);
 * a matching one is served. */
static void test_content_length(void **state) {
  static const char *const cl9[] = {REQ_BASE, "te", "trailers", "content-type",
                                    "application/grpc", "content-length", "9", NULL};
  static const char *const cl100[] = {REQ_BASE, "te", "trailers", "content-type",
                                      "application/grpc", "content-length", "100", NULL};
  static const char *const cl3[] = {REQ_BASE, "te", "trailers", "content-type",
                                    "application/grpc", "content-length", "3", NULL};
  static const char *const clbad[] = {REQ_BASE, "te", "trailers", "content-type",
                                      "application/grpc", "content-length", "9x", NULL};
  const char *const *bad[] = {cl100, cl3, clbad};
  app a = {APP_ECHO, SGRPC_STATUS_OK, NULL, NULL, 0, NULL};
  rawpeer rp;
  int32_t sid;
  size_t i;
  (void)state;
  /* matching: a 4-byte message is 9 bytes of DATA */
  setup(&rp, &a, NULL);
  sid = send_unary(&rp, cl9);
  assert_int_equal(rawpeer_rst_code(&rp, sid), -1);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_MESSAGE, NULL), 1);
  assert_int_equal(rawpeer_event(&rp, SGRPC_EV_CLOSE, NULL, 0)->code, SGRPC_STATUS_OK);
  assert_clean(&rp);
  rawpeer_free(&rp);
  for (i = 0; i < 3; i++) {
    setup(&rp, &a, NULL);
    sid = send_unary(&rp, bad[i]);
    if (rawpeer_rst_code(&rp, sid) != NGHTTP2_PROTOCOL_ERROR) fail_msg("case %zu not reset", i);
    assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_HALF_CLOSE, NULL), 0);
    assert_int_equal(rawpeer_count_frames(&rp, sid, NGHTTP2_HEADERS), 0);
    assert_null(rawpeer_goaway(&rp));
    assert_clean(&rp);
    rawpeer_free(&rp);
  }
  /* a body announced, none sent */
  setup(&rp, &a, NULL);
  sid = send_headers_only(&rp, cl9);
  assert_int_equal(rawpeer_rst_code(&rp, sid), NGHTTP2_PROTOCOL_ERROR);
  assert_int_equal(rawpeer_count_events(&rp, SGRPC_EV_CALL_NEW, NULL), 0);
  assert_clean(&rp);
  rawpeer_free(&rp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_unary),
      cmocka_unit_test(test_trailers_only),
      cmocka_unit_test(test_get_405),
      cmocka_unit_test(test_content_type),
      cmocka_unit_test(test_te),
      cmocka_unit_test(test_bad_timeout),
      cmocka_unit_test(test_malformed_requests),
      cmocka_unit_test(test_unknown_method),
      cmocka_unit_test(test_client_cancel),
      cmocka_unit_test(test_message_too_large),
      cmocka_unit_test(test_reassembly),
      cmocka_unit_test(test_bad_bodies),
      cmocka_unit_test(test_bin_metadata),
      cmocka_unit_test(test_metadata_order_and_reserved),
      cmocka_unit_test(test_minimal_request),
      cmocka_unit_test(test_large_request_small_window),
      cmocka_unit_test(test_request_trailers),
      cmocka_unit_test(test_early_answer),
      cmocka_unit_test(test_second_headers_without_end),
      cmocka_unit_test(test_pseudo_header_in_trailers),
      cmocka_unit_test(test_request_trailers_no_memory),
      cmocka_unit_test(test_content_length),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
