/*
 * Retries (gRFC A6) and per-method service config in the rpc client,
 * through the in-memory test channel (its clock is the injected one and
 * its timers fire the backoff) and through a raw HTTP/2 server facing an
 * sgrpc client connection (refused streams, GOAWAY): policy retries with
 * grpc-previous-rpc-attempts, non-retryable codes, maxAttempts,
 * throttling, pushback, replay of streamed requests (also under engine
 * pushback), the buffer limit, commit on headers, deadlines, timeouts,
 * wait-for-ready and size limits from the config, cancel while waiting,
 * transparent retries, the method lookup and allocation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sgrpc/testing.h>

#include "rawpeer.h"
#include "support.h"

#define MS 1000000LL

static const sgrpc_method m_unary = {"/t.Retry/Unary", NULL, NULL, 0, 0, &sgrpc_codec_raw};
static const sgrpc_method m_up = {"/t.Retry/Up", NULL, NULL, 1, 0, &sgrpc_codec_raw};
static const sgrpc_method m_down = {"/t.Retry/Down", NULL, NULL, 0, 1, &sgrpc_codec_raw};
static const sgrpc_method m_hold = {"/t.Retry/Hold", NULL, NULL, 0, 0, &sgrpc_codec_raw};
static const sgrpc_method m_other = {"/t.Other/Unary", NULL, NULL, 0, 0, &sgrpc_codec_raw};

/* ---- the server: a script of outcomes, one per arriving attempt ---- */

#define MAX_ARRIVALS 16

typedef struct script {
  int code[MAX_ARRIVALS];            /* outcome of each arrival (0: echo OK) */
  const char *pushback[MAX_ARRIVALS]; /* grpc-retry-pushback-ms to send, or NULL */
  int headers_first;                 /* send initial metadata before failing */
  int early;                         /* streams: fail at the first request */
  int headers_on_first;              /* streams: headers at the first request */
  int arrivals;
  int prev[MAX_ARRIVALS];            /* grpc-previous-rpc-attempts seen (-1: none) */
  size_t up_msgs[MAX_ARRIVALS];      /* requests received per arrival (streams) */
  size_t up_bytes[MAX_ARRIVALS];
} script;

static script S;

static int arrival(sgrpc_server_call *call) {
  size_t n, i;
  const sgrpc_md *md = sgrpc_server_call_metadata(call, &n);
  int a = S.arrivals < MAX_ARRIVALS ? S.arrivals : MAX_ARRIVALS - 1;
  S.prev[a] = -1;
  for (i = 0; i < n; i++)
    if (strcmp(md[i].key, "grpc-previous-rpc-attempts") == 0) S.prev[a] = atoi((const char *)md[i].value);
  S.arrivals++;
  return a;
}

static void answer(sgrpc_server_call *call, int a, const void *reply) {
  sgrpc_status st;
  sgrpc_md md;
  if (!S.code[a]) {
    (void)sgrpc_server_call_reply(call, reply);
    return;
  }
  memset(&st, 0, sizeof(st));
  st.code = S.code[a];
  st.message = "scripted failure";
  if (S.pushback[a]) {
    md.key = "grpc-retry-pushback-ms";
    md.key_len = strlen(md.key);
    md.value = (const uint8_t *)S.pushback[a];
    md.value_len = strlen(S.pushback[a]);
    st.md = &md;
    st.md_count = 1;
  }
  if (S.headers_first) (void)sgrpc_server_call_send_headers(call, NULL, 0);
  (void)sgrpc_server_call_finish(call, &st);
}

static void h_unary(sgrpc_server_call *call, const void *msg, void *ud) {
  answer(call, arrival(call), msg);
}

/* Client streaming: counts the requests of the attempt, then answers. */
static void h_up(sgrpc_server_call *call, const void *msg, void *ud) {
  intptr_t a = (intptr_t)sgrpc_server_call_get_user_data(call);
  char text[32];
  sgrpc_bytes reply;
  if (a == 0) {
    a = arrival(call) + 1;
    sgrpc_server_call_set_user_data(call, (void *)a);
  }
  if (msg) {
    S.up_msgs[a - 1]++;
    S.up_bytes[a - 1] += ((const sgrpc_bytes *)msg)->len;
    if (S.early && S.code[a - 1] && S.up_msgs[a - 1] == 1) answer(call, (int)a - 1, NULL);
    if (S.headers_on_first && !S.code[a - 1] && S.up_msgs[a - 1] == 1)
      (void)sgrpc_server_call_send_headers(call, NULL, 0);
    return;
  }
  snprintf(text, sizeof(text), "%zu/%zu", S.up_msgs[a - 1], S.up_bytes[a - 1]);
  reply.data = (const uint8_t *)text;
  reply.len = strlen(text);
  answer(call, (int)a - 1, &reply);
}

/* Server streaming: one message, then the scripted status. */
static void h_down(sgrpc_server_call *call, const void *msg, void *ud) {
  int a = arrival(call);
  (void)sgrpc_server_call_send(call, msg);
  if (!S.code[a]) {
    (void)sgrpc_server_call_finish(call, NULL);
    return;
  }
  (void)sgrpc_server_call_fail(call, S.code[a], "after a message");
}

static void h_hold(sgrpc_server_call *call, const void *msg, void *ud) { (void)arrival(call); }

static sgrpc_router *make_router(void) {
  static const sgrpc_handler hu = {h_unary, NULL, NULL, NULL, NULL};
  static const sgrpc_handler hup = {h_up, NULL, NULL, NULL, NULL};
  static const sgrpc_handler hd = {h_down, NULL, NULL, NULL, NULL};
  static const sgrpc_handler hh = {h_hold, NULL, NULL, NULL, NULL};
  sgrpc_router *r;
  assert_int_equal(sgrpc_router_new(&r, NULL), 0);
  assert_int_equal(sgrpc_router_add(r, &m_unary, &hu), 0);
  assert_int_equal(sgrpc_router_add(r, &m_other, &hu), 0);
  assert_int_equal(sgrpc_router_add(r, &m_up, &hup), 0);
  assert_int_equal(sgrpc_router_add(r, &m_down, &hd), 0);
  assert_int_equal(sgrpc_router_add(r, &m_hold, &hh), 0);
  return r;
}

/* ---- the client side ---- */

typedef struct result {
  int done;
  int code;
  char message[96];
  char reply[64];
  int messages;
  int writable;
} result;

static void c_message(sgrpc_client_call *call, const void *msg, void *ud) {
  result *r = ud;
  r->messages++;
}

static void c_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                    void *ud) {
  result *r = ud;
  r->done++;
  r->code = st->code;
  snprintf(r->message, sizeof(r->message), "%s", st->message);
  if (reply) {
    const sgrpc_bytes *b = reply;
    snprintf(r->reply, sizeof(r->reply), "%.*s", (int)b->len, (const char *)b->data);
  }
}

static const sgrpc_client_callbacks cbs = {NULL, c_message, c_close, {NULL, NULL}, NULL};

/* Jitter made exact: every draw is one half of the cap. */
static uint64_t half(void *ctx) {
  (void)ctx;
  return UINT64_C(1) << 63;
}

/* A policy for all of t.Retry: 5 attempts, 100 ms doubling to 1 s. */
static sgrpc_retry_policy policy;
static sgrpc_method_name retry_names[] = {{"t.Retry", NULL}};
static sgrpc_method_config method_cfg;
static sgrpc_retry_throttling throttle;
static sgrpc_service_config cfg;

static void cfg_reset(void) {
  memset(&policy, 0, sizeof(policy));
  policy.max_attempts = 5;
  policy.initial_backoff = 100 * MS;
  policy.max_backoff = 1000 * MS;
  policy.backoff_multiplier = 2;
  policy.retryable_codes = 1u << SGRPC_STATUS_UNAVAILABLE;
  memset(&method_cfg, 0, sizeof(method_cfg));
  method_cfg.names = retry_names;
  method_cfg.names_count = 1;
  method_cfg.retry_policy = &policy;
  memset(&cfg, 0, sizeof(cfg));
  cfg.methods = &method_cfg;
  cfg.methods_count = 1;
  memset(&S, 0, sizeof(S));
}

typedef struct world {
  sgrpc_router *router;
  sgrpc_test_channel *ch;
  sgrpc_rpc_client *client;
} world;

static void world_new(world *w, const sgrpc_test_channel_opts *o) {
  w->router = make_router();
  assert_int_equal(sgrpc_test_channel_new(&w->ch, w->router, o), 0);
  w->client = sgrpc_test_channel_client(w->ch);
  sgrpc_rpc_client_set_service_config(w->client, &cfg);
  sgrpc_rpc_client_set_random(w->client, half, NULL);
}

static void world_del(world *w) {
  sgrpc_test_channel_del(w->ch);
  sgrpc_router_del(w->router);
}

static int unary(world *w, const sgrpc_method *m, const char *text, int64_t deadline,
                 result *r, sgrpc_client_call **pcall) {
  sgrpc_rpc_opts o;
  sgrpc_bytes b;
  memset(&o, 0, sizeof(o));
  memset(r, 0, sizeof(*r));
  o.user_data = r;
  o.deadline = deadline;
  b.data = (const uint8_t *)text;
  b.len = strlen(text);
  return sgrpc_rpc_call_start(w->client, m, &b, &o, sgrpc_test_channel_now(w->ch), &cbs, pcall);
}

static int64_t now_of(world *w) { return sgrpc_test_channel_now(w->ch); }

/* ---- tests ---- */

static void test_unavailable_twice_then_ok(void **state) {
  world w;
  result r;
  int64_t t0;
  (void)state;
  cfg_reset();
  S.code[0] = S.code[1] = SGRPC_STATUS_UNAVAILABLE;
  world_new(&w, NULL);
  t0 = now_of(&w);
  assert_int_equal(unary(&w, &m_unary, "hello", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(r.done, 0);
  /* first retry: jitter is half of initialBackoff */
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), t0 + 50 * MS);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 50 * MS - 1), 0);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 1), 0);
  assert_int_equal(S.arrivals, 2);
  /* second: half of 200 ms */
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), t0 + 150 * MS);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 100 * MS), 0);
  assert_int_equal(S.arrivals, 3);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.reply, "hello");
  assert_int_equal(S.prev[0], -1);
  assert_int_equal(S.prev[1], 1);
  assert_int_equal(S.prev[2], 2);
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), SGRPC_NEVER);
  assert_int_equal(w.client->retry.buffer_used, 0);
  world_del(&w);
}

static void test_not_retryable_and_max_attempts(void **state) {
  world w;
  result r;
  int i;
  (void)state;
  cfg_reset();
  S.code[0] = SGRPC_STATUS_INVALID_ARGUMENT;
  world_new(&w, NULL);
  assert_int_equal(unary(&w, &m_unary, "x", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_INVALID_ARGUMENT);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), SGRPC_NEVER);
  /* always UNAVAILABLE: exactly maxAttempts (3) attempts */
  memset(&S, 0, sizeof(S));
  for (i = 0; i < MAX_ARRIVALS; i++) S.code[i] = SGRPC_STATUS_UNAVAILABLE;
  policy.max_attempts = 3;
  assert_int_equal(unary(&w, &m_unary, "x", 0, &r, NULL), 0);
  for (i = 0; i < 10 && !r.done; i++) assert_int_equal(sgrpc_test_channel_advance(w.ch, 1000 * MS), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_string_equal(r.message, "scripted failure");
  assert_int_equal(S.arrivals, 3);
  /* another service has no config: never retried */
  memset(&S, 0, sizeof(S));
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  assert_int_equal(unary(&w, &m_other, "x", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(S.arrivals, 1);
  world_del(&w);
}

static void test_throttling(void **state) {
  world w;
  result r;
  int i;
  (void)state;
  cfg_reset();
  throttle.max_tokens = 4;
  throttle.token_ratio = 0.1;
  cfg.retry_throttling = &throttle;
  for (i = 0; i < MAX_ARRIVALS; i++) S.code[i] = SGRPC_STATUS_UNAVAILABLE;
  world_new(&w, NULL);
  assert_int_equal(sgrpc_rpc_client_retry_tokens(w.client), -1); /* not used yet */
  /* 4 tokens: fail -> 3 (> 2: retry), fail -> 2 (not > 2: stop) */
  assert_int_equal(unary(&w, &m_unary, "x", 0, &r, NULL), 0);
  for (i = 0; i < 10 && !r.done; i++) assert_int_equal(sgrpc_test_channel_advance(w.ch, 1000 * MS), 0);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(S.arrivals, 2);
  assert_int_equal(sgrpc_rpc_client_retry_tokens(w.client), 2000);
  /* the bucket is drained: the next call is not retried at all */
  S.arrivals = 0;
  assert_int_equal(unary(&w, &m_unary, "x", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(sgrpc_rpc_client_retry_tokens(w.client), 1000);
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), SGRPC_NEVER);
  /* successes refill by tokenRatio */
  memset(&S, 0, sizeof(S));
  assert_int_equal(unary(&w, &m_unary, "x", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(sgrpc_rpc_client_retry_tokens(w.client), 1100);
  world_del(&w);
}

static void test_pushback(void **state) {
  world w;
  result r;
  int64_t t0;
  (void)state;
  cfg_reset();
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  S.pushback[0] = "250";
  world_new(&w, NULL);
  t0 = now_of(&w);
  assert_int_equal(unary(&w, &m_unary, "p", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  /* the server's delay, not the jittered backoff (50 ms) */
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), t0 + 250 * MS);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 249 * MS), 0);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 1 * MS), 0);
  assert_int_equal(S.arrivals, 2);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(S.prev[1], 1);
  /* a negative (or malformed) pushback stops retrying */
  memset(&S, 0, sizeof(S));
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  S.pushback[0] = "-1";
  assert_int_equal(unary(&w, &m_unary, "p", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), SGRPC_NEVER);
  memset(&S, 0, sizeof(S));
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  S.pushback[0] = "soon";
  assert_int_equal(unary(&w, &m_unary, "p", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(S.arrivals, 1);
  world_del(&w);
}

/* Client streaming: the requests sent before the failure are replayed. */
static void test_stream_replay(void **state) {
  world w;
  result r;
  sgrpc_rpc_opts o;
  sgrpc_client_call *call;
  sgrpc_bytes b;
  int i;
  (void)state;
  cfg_reset();
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  world_new(&w, NULL);
  memset(&o, 0, sizeof(o));
  memset(&r, 0, sizeof(r));
  o.user_data = &r;
  assert_int_equal(sgrpc_rpc_call_start(w.client, &m_up, NULL, &o, now_of(&w), &cbs, &call), 0);
  b.data = (const uint8_t *)"abcd";
  b.len = 4;
  for (i = 0; i < 3; i++) assert_int_equal(sgrpc_client_call_send(call, &b), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 50 * MS), 0);
  assert_int_equal(S.arrivals, 2);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.reply, "3/12");
  assert_int_equal(S.prev[1], 1);
  /* requests sent while waiting out the backoff join the replay */
  memset(&S, 0, sizeof(S));
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  memset(&r, 0, sizeof(r));
  S.headers_first = 0;
  assert_int_equal(sgrpc_rpc_call_start(w.client, &m_up, NULL, &o, now_of(&w), &cbs, &call), 0);
  assert_int_equal(sgrpc_client_call_send(call, &b), 0);
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(S.arrivals, 1);
  assert_null(sgrpc_client_call_handle(call)); /* no attempt open */
  assert_int_equal(r.done, 0);
  world_del(&w); /* the waiting call's attempt starts and ends with the channel */
  assert_int_equal(r.done, 1);
}

/* Sends while waiting out the backoff join the buffer; one that does not
 * fit gets SGRPC_ERR_WOULDBLOCK and on_writable once the next attempt
 * has replayed the rest. */
static int ww_writable;
static void ww_on_writable(sgrpc_client_call *call, void *ud) { ww_writable++; }

static void test_send_while_waiting(void **state) {
  world w;
  result r;
  sgrpc_rpc_opts o;
  sgrpc_client_callbacks cb = cbs;
  sgrpc_client_call *call;
  sgrpc_bytes b, big;
  uint8_t bigdata[100];
  (void)state;
  cfg_reset();
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  S.early = 1;
  world_new(&w, NULL);
  sgrpc_rpc_client_set_retry_limits(w.client, 64, 0, 1);
  memset(&o, 0, sizeof(o));
  memset(&r, 0, sizeof(r));
  memset(bigdata, 'z', sizeof(bigdata));
  o.user_data = &r;
  cb.on_writable = ww_on_writable;
  ww_writable = 0;
  assert_int_equal(sgrpc_rpc_call_start(w.client, &m_up, NULL, &o, now_of(&w), &cb, &call), 0);
  b.data = (const uint8_t *)"abcd";
  b.len = 4;
  big.data = bigdata;
  big.len = sizeof(bigdata);
  assert_int_equal(sgrpc_client_call_send(call, &b), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  /* the server failed the first attempt at its first request */
  assert_int_equal(S.arrivals, 1);
  assert_null(sgrpc_client_call_handle(call));
  assert_int_equal(r.done, 0);
  assert_int_equal(sgrpc_client_call_send(call, &b), 0); /* buffered: 16 of 64 bytes */
  assert_int_equal(w.client->retry.buffer_used, 16);
  assert_int_equal(sgrpc_client_call_send(call, &big), SGRPC_ERR_WOULDBLOCK);
  assert_int_equal(ww_writable, 0);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 50 * MS), 0);
  assert_non_null(sgrpc_client_call_handle(call));
  assert_int_equal(ww_writable, 1);
  /* live and caught up: the big one goes (and commits the call) */
  assert_int_equal(sgrpc_client_call_send(call, &big), 0);
  assert_int_equal(w.client->retry.buffer_used, 0);
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.reply, "3/108");
  assert_int_equal(S.prev[1], 1);
  world_del(&w);
}

/* The buffer limit commits: no retry once the requests outgrew it. */
static void test_buffer_limit_commits(void **state) {
  world w;
  result r;
  sgrpc_rpc_opts o;
  sgrpc_client_call *call;
  sgrpc_bytes b;
  uint8_t data[40];
  (void)state;
  cfg_reset();
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  world_new(&w, NULL);
  sgrpc_rpc_client_set_retry_limits(w.client, 64, 0, 1);
  memset(data, 'q', sizeof(data));
  memset(&o, 0, sizeof(o));
  memset(&r, 0, sizeof(r));
  o.user_data = &r;
  assert_int_equal(sgrpc_rpc_call_start(w.client, &m_up, NULL, &o, now_of(&w), &cbs, &call), 0);
  b.data = data;
  b.len = sizeof(data);
  assert_int_equal(sgrpc_client_call_send(call, &b), 0);
  assert_int_equal(w.client->retry.buffer_used, 44);
  assert_int_equal(sgrpc_client_call_send(call, &b), 0); /* 88 > 64: committed */
  assert_int_equal(w.client->retry.buffer_used, 0);
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), SGRPC_NEVER);
  /* the per-client limit does the same */
  memset(&S, 0, sizeof(S));
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  sgrpc_rpc_client_set_retry_limits(w.client, 1024, 50, 1);
  assert_int_equal(unary(&w, &m_unary, "0123456789012345678901234567890123456789012345678", 0,
                         &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(S.arrivals, 1);
  world_del(&w);
}

/* Response headers, or a response message, commit the call. */
static void test_commit_on_headers(void **state) {
  world w;
  result r;
  (void)state;
  cfg_reset();
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  S.headers_first = 1;
  world_new(&w, NULL);
  assert_int_equal(unary(&w, &m_unary, "h", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(S.arrivals, 1);
  memset(&S, 0, sizeof(S));
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  assert_int_equal(unary(&w, &m_down, "m", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.messages, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), SGRPC_NEVER);
  world_del(&w);
}

/* A retry that could only start after the deadline is not made; the
 * method's timeout applies when the call sets no earlier deadline. */
static void test_deadline_and_timeout(void **state) {
  world w;
  result r;
  (void)state;
  cfg_reset();
  policy.initial_backoff = 1000 * MS; /* first retry at 500 ms */
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  world_new(&w, NULL);
  assert_int_equal(unary(&w, &m_unary, "d", now_of(&w) + 400 * MS, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(S.arrivals, 1);
  /* timeout 100 ms from the config, no deadline on the call */
  method_cfg.timeout = 100 * MS;
  assert_int_equal(unary(&w, &m_hold, "t", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 99 * MS), 0);
  assert_int_equal(r.done, 0);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 1 * MS), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_DEADLINE_EXCEEDED);
  /* an earlier deadline of the call wins over the timeout */
  assert_int_equal(unary(&w, &m_hold, "t", now_of(&w) + 30 * MS, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 30 * MS), 0);
  assert_int_equal(r.code, SGRPC_STATUS_DEADLINE_EXCEEDED);
  world_del(&w);
}

/* A transport hook sees what the config asks of each attempt. */
typedef struct spy {
  sgrpc_conn *conn;
  int starts;
  int wait_for_ready;
  int64_t deadline;
  int fail_from; /* starts from this number on fail (0: never) */
} spy;

static int spy_start(void *ctx, const sgrpc_call_opts *opts, int64_t now, sgrpc_call **pcall) {
  spy *s = ctx;
  s->starts++;
  s->wait_for_ready = opts->wait_for_ready;
  s->deadline = opts->deadline;
  if (s->fail_from && s->starts >= s->fail_from) return SGRPC_ERR_GOING_AWAY;
  return sgrpc_call_start(s->conn, opts, now, pcall);
}

static void test_transport_opts(void **state) {
  world w;
  result r;
  spy s;
  sgrpc_rpc_client tc;
  sgrpc_rpc_opts o;
  sgrpc_bytes b;
  int64_t t0;
  (void)state;
  cfg_reset();
  method_cfg.wait_for_ready = 1;
  method_cfg.timeout = 2000 * MS;
  world_new(&w, NULL);
  memset(&s, 0, sizeof(s));
  s.conn = sgrpc_test_channel_client_conn(w.ch);
  sgrpc_rpc_client_init_transport(&tc, spy_start, &s, NULL);
  sgrpc_rpc_client_set_service_config(&tc, &cfg);
  t0 = now_of(&w);
  memset(&o, 0, sizeof(o));
  memset(&r, 0, sizeof(r));
  o.user_data = &r;
  b.data = (const uint8_t *)"w";
  b.len = 1;
  assert_int_equal(sgrpc_rpc_call_start(&tc, &m_unary, &b, &o, t0, &cbs, NULL), 0);
  assert_int_equal(s.wait_for_ready, 1);
  assert_int_equal(s.deadline, t0 + 2000 * MS);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  /* the call's own choice wins */
  o.wait_for_ready = -1;
  assert_int_equal(sgrpc_rpc_call_start(&tc, &m_unary, &b, &o, t0, &cbs, NULL), 0);
  assert_int_equal(s.wait_for_ready, -1);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  /* no timer hook on this client: the policy cannot wait, no retry */
  memset(&S, 0, sizeof(S));
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  s.starts = 0;
  assert_int_equal(sgrpc_rpc_call_start(&tc, &m_unary, &b, &o, t0, &cbs, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(s.starts, 1);
  world_del(&w);
}

/* A retry whose attempt cannot start ends with the last status. */
static void test_retry_start_fails(void **state) {
  world w;
  result r;
  spy s;
  sgrpc_rpc_client tc;
  sgrpc_rpc_opts o;
  sgrpc_bytes b;
  (void)state;
  cfg_reset();
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  world_new(&w, NULL);
  memset(&s, 0, sizeof(s));
  s.conn = sgrpc_test_channel_client_conn(w.ch);
  s.fail_from = 2;
  tc = *w.client; /* the channel's timer hook, a transport that fails */
  tc.conn = NULL;
  tc.start = spy_start;
  tc.start_ctx = &s;
  memset(&o, 0, sizeof(o));
  memset(&r, 0, sizeof(r));
  o.user_data = &r;
  b.data = (const uint8_t *)"f";
  b.len = 1;
  assert_int_equal(sgrpc_rpc_call_start(&tc, &m_unary, &b, &o, now_of(&w), &cbs, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 0);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 50 * MS), 0);
  assert_int_equal(s.starts, 2);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  assert_string_equal(r.message, "scripted failure");
  assert_int_equal(tc.retry.buffer_used, 0);
  world_del(&w);
}

static void test_size_limits(void **state) {
  world w;
  result r;
  sgrpc_rpc_opts o;
  sgrpc_client_call *call;
  sgrpc_bytes b;
  (void)state;
  cfg_reset();
  method_cfg.max_request_message_bytes = 8;
  method_cfg.max_response_message_bytes = 4;
  world_new(&w, NULL);
  /* request too large: RESOURCE_EXHAUSTED, the server never sees it */
  assert_int_equal(unary(&w, &m_unary, "0123456789", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_int_equal(S.arrivals, 0);
  /* response too large */
  assert_int_equal(unary(&w, &m_unary, "012345", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(unary(&w, &m_unary, "0123", 0, &r, NULL), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  /* streamed request too large */
  memset(&o, 0, sizeof(o));
  o.user_data = &r;
  memset(&r, 0, sizeof(r));
  assert_int_equal(sgrpc_rpc_call_start(w.client, &m_up, NULL, &o, now_of(&w), &cbs, &call), 0);
  b.data = (const uint8_t *)"0123456789";
  b.len = 10;
  assert_int_equal(sgrpc_client_call_send(call, &b), SGRPC_ERR_MESSAGE_TOO_LARGE);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  world_del(&w);
}

static void test_cancel_while_waiting(void **state) {
  world w;
  result r;
  sgrpc_client_call *call = NULL;
  (void)state;
  cfg_reset();
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  world_new(&w, NULL);
  assert_int_equal(unary(&w, &m_unary, "c", 0, &r, &call), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_true(sgrpc_test_channel_next_timer(w.ch) != SGRPC_NEVER);
  assert_int_equal(r.done, 0);
  assert_int_equal(sgrpc_client_call_cancel(call), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_CANCELLED);
  assert_int_equal(sgrpc_test_channel_next_timer(w.ch), SGRPC_NEVER);
  assert_int_equal(sgrpc_test_channel_advance(w.ch, 1000 * MS), 0);
  assert_int_equal(S.arrivals, 1);
  /* two waiting calls ended by the client at once */
  {
    result r2;
    memset(&S, 0, sizeof(S));
    S.code[0] = S.code[1] = SGRPC_STATUS_UNAVAILABLE;
    assert_int_equal(unary(&w, &m_unary, "c", 0, &r, NULL), 0);
    assert_int_equal(unary(&w, &m_unary, "d", 0, &r2, NULL), 0);
    assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
    assert_int_equal(S.arrivals, 2);
    assert_non_null(w.client->retry.waiting);
    sgrpc_rpc_client_cancel_waiting(w.client);
    assert_null(w.client->retry.waiting);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.code, SGRPC_STATUS_CANCELLED);
    assert_int_equal(r2.done, 1);
    assert_int_equal(r2.code, SGRPC_STATUS_CANCELLED);
    assert_int_equal(sgrpc_test_channel_next_timer(w.ch), SGRPC_NEVER);
    sgrpc_rpc_client_cancel_waiting(w.client); /* none left: no-op */
  }
  world_del(&w);
}

/* Replay of ~100 KB into an engine whose send buffer takes 16 KiB: the
 * replay goes on from SGRPC_EV_WRITABLE, the user's on_writable waits. */
typedef struct up_state {
  sgrpc_client_call *call;
  int sent, total;
  result r;
} up_state;

static uint8_t chunk[1000];

static void up_pump(sgrpc_client_call *call, void *ud) {
  up_state *u = ud;
  sgrpc_bytes b;
  b.data = chunk;
  b.len = sizeof(chunk);
  while (u->sent < u->total) {
    int rv = sgrpc_client_call_send(call, &b);
    if (rv == SGRPC_ERR_WOULDBLOCK) {
      u->r.writable++;
      return;
    }
    assert_int_equal(rv, 0);
    u->sent++;
  }
  (void)sgrpc_client_call_close_send(call);
}

static void up_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                     void *ud) {
  up_state *u = ud;
  c_close(call, st, reply, &u->r);
}

static void replay_under_pushback(int headers_on_first) {
  world w;
  up_state u;
  sgrpc_settings cs;
  sgrpc_test_channel_opts to;
  sgrpc_rpc_opts o;
  sgrpc_client_callbacks cb;
  int i;
  cfg_reset();
  S.code[0] = SGRPC_STATUS_UNAVAILABLE;
  S.headers_on_first = headers_on_first;
  sgrpc_settings_default(&cs);
  cs.max_send_buffer = 16 * 1024;
  memset(&to, 0, sizeof(to));
  to.client_settings = &cs;
  world_new(&w, &to);
  memset(&u, 0, sizeof(u));
  u.total = 100;
  memset(&o, 0, sizeof(o));
  o.user_data = &u;
  memset(&cb, 0, sizeof(cb));
  cb.on_close = up_close;
  cb.on_writable = up_pump;
  assert_int_equal(sgrpc_rpc_call_start(w.client, &m_up, NULL, &o, now_of(&w), &cb, &u.call), 0);
  up_pump(u.call, &u);
  assert_true(u.r.writable >= 1);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(u.sent, 100);
  assert_int_equal(S.arrivals, 1);
  assert_int_equal(S.up_msgs[0], 100);
  u.r.writable = 0;
  for (i = 0; i < 10 && !u.r.done; i++) assert_int_equal(sgrpc_test_channel_advance(w.ch, 100 * MS), 0);
  assert_int_equal(u.r.done, 1);
  assert_int_equal(u.r.code, SGRPC_STATUS_OK);
  /* every request once, in order of the count, though the headers (with
   * headers_on_first) committed the call halfway through the replay */
  assert_string_equal(u.r.reply, "100/100000");
  assert_int_equal(S.arrivals, 2);
  assert_int_equal(S.prev[1], 1);
  assert_int_equal(u.r.writable, 0); /* the replay's pushback is not the user's */
  assert_int_equal(w.client->retry.buffer_used, 0);
  world_del(&w);
}

static void test_replay_under_pushback(void **state) {
  (void)state;
  replay_under_pushback(0);
  replay_under_pushback(1);
}

static void test_find(void **state) {
  static const sgrpc_method_name n_exact[] = {{"a.S", "M"}};
  static const sgrpc_method_name n_service[] = {{"a.S", ""}, {"b.T", NULL}};
  static const sgrpc_method_name n_default[] = {{"", NULL}};
  sgrpc_method_config mcs[3];
  sgrpc_service_config c;
  (void)state;
  memset(mcs, 0, sizeof(mcs));
  mcs[0].names = n_default;
  mcs[0].names_count = 1;
  mcs[1].names = n_service;
  mcs[1].names_count = 2;
  mcs[2].names = n_exact;
  mcs[2].names_count = 1;
  memset(&c, 0, sizeof(c));
  c.methods = mcs;
  c.methods_count = 3;
  assert_ptr_equal(sgrpc_service_config_find(&c, "/a.S/M"), &mcs[2]);
  assert_ptr_equal(sgrpc_service_config_find(&c, "/a.S/Other"), &mcs[1]);
  assert_ptr_equal(sgrpc_service_config_find(&c, "/b.T/M"), &mcs[1]);
  assert_ptr_equal(sgrpc_service_config_find(&c, "/a.SS/M"), &mcs[0]);
  assert_ptr_equal(sgrpc_service_config_find(&c, "/a/M"), &mcs[0]);
  assert_null(sgrpc_service_config_find(&c, "/noslash"));
  assert_null(sgrpc_service_config_find(NULL, "/a.S/M"));
  assert_null(sgrpc_service_config_find(&c, NULL));
  c.methods_count = 2; /* without the exact entry */
  assert_ptr_equal(sgrpc_service_config_find(&c, "/a.S/M"), &mcs[1]);
  c.methods = &mcs[2];
  c.methods_count = 1; /* no default */
  assert_null(sgrpc_service_config_find(&c, "/x.Y/M"));
}

/* ---- transparent retries against a raw HTTP/2 server ---- */

typedef struct raw_world {
  rawpeer rp;
  sgrpc_rpc_client client;
} raw_world;

static void raw_event(rawpeer *rp, const sgrpc_event *ev, void *ud) {
  (void)ud;
  (void)sgrpc_event_dispatch(ev, rp->now);
}

static void raw_new(raw_world *w) {
  rawpeer_new_server(&w->rp, NULL);
  w->rp.auto_release = 1;
  w->rp.on_event = raw_event;
  sgrpc_rpc_client_init(&w->client, w->rp.conn, NULL);
  rawpeer_run(&w->rp, 100);
}

static void raw_answer(raw_world *w, int32_t sid, const char *text) {
  static const char *const hdrs[] = {":status", "200", "content-type", "application/grpc", NULL};
  static const char *const trl[] = {"grpc-status", "0", NULL};
  uint8_t frame[64];
  size_t n = strlen(text);
  frame[0] = 0;
  frame[1] = frame[2] = frame[3] = 0;
  frame[4] = (uint8_t)n;
  memcpy(frame + 5, text, n);
  rawpeer_submit_response(&w->rp, sid, hdrs, 0);
  rawpeer_submit_data(&w->rp, sid, frame, 5 + n, 0);
  rawpeer_submit_trailers(&w->rp, sid, trl);
}

static const char *raw_prev(raw_world *w, int32_t sid) {
  const rp_frame *f = rawpeer_headers(&w->rp, sid, 0);
  size_t i;
  if (!f) return "no headers";
  for (i = 0; i < f->nfields; i++)
    if (strcmp(f->fields[i].name, "grpc-previous-rpc-attempts") == 0) return f->fields[i].value;
  return NULL;
}

static int raw_unary(raw_world *w, const char *text, result *r) {
  sgrpc_rpc_opts o;
  sgrpc_bytes b;
  memset(&o, 0, sizeof(o));
  memset(r, 0, sizeof(*r));
  o.user_data = r;
  b.data = (const uint8_t *)text;
  b.len = strlen(text);
  return sgrpc_rpc_call_start(&w->client, &m_unary, &b, &o, w->rp.now, &cbs, NULL);
}

static void test_transparent_refused(void **state) {
  raw_world w;
  result r;
  const uint8_t *data;
  size_t len;
  (void)state;
  raw_new(&w);
  assert_int_equal(raw_unary(&w, "refuse me", &r), 0);
  rawpeer_run(&w.rp, 100);
  assert_non_null(rawpeer_headers(&w.rp, 1, 0));
  assert_null(raw_prev(&w, 1));
  rawpeer_submit_rst(&w.rp, 1, NGHTTP2_REFUSED_STREAM);
  rawpeer_run(&w.rp, 100);
  /* retried at once on stream 3, with the same request */
  assert_int_equal(r.done, 0);
  assert_non_null(rawpeer_headers(&w.rp, 3, 0));
  assert_string_equal(raw_prev(&w, 3), "1");
  data = rawpeer_stream_data(&w.rp, 3, &len);
  assert_int_equal(len, 5 + 9);
  assert_memory_equal(data + 5, "refuse me", 9);
  raw_answer(&w, 3, "ok");
  rawpeer_run(&w.rp, 100);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.reply, "ok");
  /* bounded: a server that refuses every stream ends the call */
  assert_int_equal(raw_unary(&w, "again", &r), 0);
  {
    int32_t sid = 5;
    int i;
    for (i = 0; i < SGRPC_RPC_MAX_TRANSPARENT_RETRIES + 3 && !r.done; i++, sid += 2) {
      rawpeer_run(&w.rp, 100);
      if (!rawpeer_headers(&w.rp, sid, 0)) break;
      rawpeer_submit_rst(&w.rp, sid, NGHTTP2_REFUSED_STREAM);
      rawpeer_run(&w.rp, 100);
    }
    assert_int_equal(i, SGRPC_RPC_MAX_TRANSPARENT_RETRIES + 1);
  }
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  /* transparent retries turned off */
  sgrpc_rpc_client_set_retry_limits(&w.client, 0, 0, 0);
  assert_int_equal(raw_unary(&w, "off", &r), 0);
  rawpeer_run(&w.rp, 100);
  {
    int32_t sid = 5 + 2 * (SGRPC_RPC_MAX_TRANSPARENT_RETRIES + 1);
    assert_non_null(rawpeer_headers(&w.rp, sid, 0));
    rawpeer_submit_rst(&w.rp, sid, NGHTTP2_REFUSED_STREAM);
    rawpeer_run(&w.rp, 100);
    assert_null(rawpeer_headers(&w.rp, sid + 2, 0));
  }
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNAVAILABLE);
  rawpeer_free(&w.rp);
}

/* GOAWAY with a low last id on one connection: the calls above it are
 * retried, and a connection that takes no new calls ends them with their
 * status (over a channel they go to a new connection: test_retry_epoll). */
static void test_transparent_goaway_same_conn(void **state) {
  raw_world w;
  result r1, r2;
  (void)state;
  raw_new(&w);
  assert_int_equal(raw_unary(&w, "one", &r1), 0);
  assert_int_equal(raw_unary(&w, "two", &r2), 0);
  rawpeer_run(&w.rp, 100);
  assert_non_null(rawpeer_headers(&w.rp, 3, 0));
  rawpeer_submit_goaway(&w.rp, 1, NGHTTP2_NO_ERROR);
  raw_answer(&w, 1, "r1");
  rawpeer_run(&w.rp, 100);
  assert_int_equal(r1.done, 1);
  assert_int_equal(r1.code, SGRPC_STATUS_OK);
  assert_int_equal(r2.done, 1);
  assert_int_equal(r2.code, SGRPC_STATUS_UNAVAILABLE);
  assert_null(rawpeer_headers(&w.rp, 5, 0));
  rawpeer_free(&w.rp);
}

/* Every allocation of a retried unary call and a retried stream failing
 * in turn: an error from the start, or a status, and nothing leaked. */
static void test_alloc_failures(void **state) {
  long k;
  int ok = 0;
  (void)state;
  for (k = 1; k < 400; k++) {
    failmem fm;
    sgrpc_mem mem;
    sgrpc_test_channel_opts to;
    world w;
    result r, r2;
    sgrpc_rpc_opts o;
    sgrpc_client_call *call = NULL;
    sgrpc_bytes b;
    int rv, rv2, i;
    cfg_reset();
    S.code[0] = S.code[2] = SGRPC_STATUS_UNAVAILABLE;
    failmem_init(&fm, &mem);
    memset(&to, 0, sizeof(to));
    to.mem = &mem;
    w.router = make_router();
    assert_int_equal(sgrpc_test_channel_new(&w.ch, w.router, &to), 0);
    w.client = sgrpc_test_channel_client(w.ch);
    sgrpc_rpc_client_set_service_config(w.client, &cfg);
    sgrpc_rpc_client_set_random(w.client, half, NULL);
    fm.count = 0;
    fm.fail_at = k;
    rv = unary(&w, &m_unary, "alloc", 0, &r, NULL);
    memset(&o, 0, sizeof(o));
    memset(&r2, 0, sizeof(r2));
    o.user_data = &r2;
    rv2 = sgrpc_rpc_call_start(w.client, &m_up, NULL, &o, now_of(&w), &cbs, &call);
    if (rv2 == 0) {
      b.data = (const uint8_t *)"abc";
      b.len = 3;
      (void)sgrpc_client_call_send(call, &b);
      (void)sgrpc_client_call_close_send(call);
    }
    for (i = 0; i < 20; i++) (void)sgrpc_test_channel_advance(w.ch, 100 * MS);
    if (rv != 0) assert_int_equal(rv, SGRPC_ERR_NOMEM);
    if (rv2 != 0) assert_int_equal(rv2, SGRPC_ERR_NOMEM);
    if (rv == 0 && rv2 == 0 && r.code == SGRPC_STATUS_OK && r2.code == SGRPC_STATUS_OK &&
        fm.failures == 0) {
      ok = 1;
    }
    fm.fail_at = 0;
    sgrpc_test_channel_del(w.ch);
    sgrpc_router_del(w.router);
    /* every call ended exactly once (a connection that failed fatally
     * ends its calls when the channel goes) */
    if (rv == 0) assert_int_equal(r.done, 1);
    if (rv2 == 0) assert_int_equal(r2.done, 1);
    assert_int_equal(fm.live, 0);
    assert_int_equal(fm.bytes, 0);
    if (getenv("RETRY_DEBUG"))
      fprintf(stderr, "k=%ld rv=%d rv2=%d codes %d %d failures %ld\n", k, rv, rv2, r.code, r2.code,
              fm.failures);
    if (ok) break;
  }
  assert_true(ok); /* the loop reached a run without any failure */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unavailable_twice_then_ok),
      cmocka_unit_test(test_not_retryable_and_max_attempts),
      cmocka_unit_test(test_throttling),
      cmocka_unit_test(test_pushback),
      cmocka_unit_test(test_stream_replay),
      cmocka_unit_test(test_send_while_waiting),
      cmocka_unit_test(test_buffer_limit_commits),
      cmocka_unit_test(test_commit_on_headers),
      cmocka_unit_test(test_deadline_and_timeout),
      cmocka_unit_test(test_transport_opts),
      cmocka_unit_test(test_retry_start_fails),
      cmocka_unit_test(test_size_limits),
      cmocka_unit_test(test_cancel_while_waiting),
      cmocka_unit_test(test_replay_under_pushback),
      cmocka_unit_test(test_find),
      cmocka_unit_test(test_transparent_refused),
      cmocka_unit_test(test_transparent_goaway_same_conn),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
