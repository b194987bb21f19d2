/*
 * sgrpc-interop-client: runs one standard gRPC interop case
 * (doc/interop-test-descriptions.md of grpc/grpc) against a
 * grpc.testing.TestService server, over the epoll adapter.
 *
 *   sgrpc-interop-client --server_host=127.0.0.1 --server_port=PORT
 *                        --test_case=NAME [--use_tls=false]
 *                        [--server_host_override=NAME]
 *
 * Exit status 0 when the case passed ("PASS: NAME"), 1 when it failed
 * (one line "FAIL: NAME: reason"), 2 for bad usage.
 *
 * Cases are written sequentially: each step starts a call, queues
 * messages and turns the loop (sgrpc_epoll_run_once) until the call
 * reaches the state the step waits for, bounded by a per-case time limit.
 * Calls use the engine API with the generated messages and method table
 * (see server.c for why not the rpc layer).
 */
#define _GNU_SOURCE
#include "common.h"

#include <stdarg.h>

#define CASE_TIME_LIMIT_NS (30LL * 1000000000)
#define MAX_RESP 16

typedef struct md_copy {
  char *key;
  uint8_t *value;
  size_t value_len;
} md_copy;

typedef struct resp {
  ProtobufCMessage *msg;
  size_t wire_len; /* serialized size (empty_unary checks it is 0) */
  int compressed;  /* the message's compressed flag on the wire */
} resp;

/* One client call and everything seen on it. */
typedef struct ccall {
  struct ccall *next_all;
  const sgrpc_method *m;
  sgrpc_call *h; /* NULL once closed (the adapter released it) */
  iop_outq out;
  int close_wanted; /* 1: half-close once the queue is out; 2: done */
  int send_error;
  int closed;
  int code;
  char *message;
  md_copy *initial, *trailing;
  size_t n_initial, n_trailing;
  int got_headers;
  resp resps[MAX_RESP];
  size_t nresp;
  int bad_resp; /* undecodable, or more than MAX_RESP */
} ccall;

static sgrpc_epoll *loop;
static sgrpc_net_channel *channel;
static sgrpc_tls_openssl_ctx *tls; /* --use_tls: the channel's TLS context */
static ccall *all_calls;
static int64_t case_deadline;
static char reason[600];
static int verbose;

static int failf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof(reason), fmt, ap);
  va_end(ap);
  return -1;
}

#define CHECK(cond, ...)                                                                      \
  do {                                                                                        \
    if (!(cond)) return failf(__VA_ARGS__);                                                   \
  } while (0)

static int md_copy_all(md_copy **out, size_t *nout, const sgrpc_md *md, size_t n) {
  size_t i;
  *out = calloc(n ? n : 1, sizeof(**out));
  if (!*out) return -1;
  for (i = 0; i < n; i++) {
    (*out)[i].key = strndup(md[i].key, md[i].key_len);
    (*out)[i].value = malloc(md[i].value_len ? md[i].value_len : 1);
    if (!(*out)[i].key || !(*out)[i].value) {
      free((*out)[i].key);
      free((*out)[i].value);
      break;
    }
    memcpy((*out)[i].value, md[i].value, md[i].value_len);
    (*out)[i].value_len = md[i].value_len;
    *nout = i + 1;
  }
  return 0;
}

static void md_free(md_copy *md, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    free(md[i].key);
    free(md[i].value);
  }
  free(md);
}

/* Returns nonzero when md holds key with exactly value. */
static int md_has(const md_copy *md, size_t n, const char *key, const void *value, size_t len) {
  size_t i;
  for (i = 0; i < n; i++)
    if (strcmp(md[i].key, key) == 0 && md[i].value_len == len &&
        memcmp(md[i].value, value, len) == 0)
      return 1;
  return 0;
}

static void pump(ccall *c) {
  int rv;
  if (!c->h) return;
  rv = iop_outq_pump(&c->out, c->h);
  if (rv < 0) c->send_error = rv;
  if (rv == 0 && c->close_wanted == 1) {
    c->close_wanted = 2;
    rv = sgrpc_call_close_send(c->h);
    if (rv != 0) c->send_error = rv;
  }
}

static void on_call_event(const sgrpc_event *ev, void *ud, int64_t now) {
  ccall *c = ud;
  (void)now;
  switch (ev->type) {
  case SGRPC_EV_HEADERS:
    c->got_headers = 1;
    md_copy_all(&c->initial, &c->n_initial, ev->u.headers.md, ev->u.headers.md_count);
    break;
  case SGRPC_EV_MESSAGE: {
    ProtobufCMessage *m = protobuf_c_message_unpack(IOP_RESP_DESC(c->m), NULL,
                                                    ev->u.message.len, ev->u.message.data);
    if (!m || c->nresp == MAX_RESP) {
      if (m) protobuf_c_message_free_unpacked(m, NULL);
      c->bad_resp = 1;
      break;
    }
    c->resps[c->nresp].msg = m;
    c->resps[c->nresp].wire_len = ev->u.message.len;
    c->resps[c->nresp].compressed = ev->u.message.compressed;
    c->nresp++;
    break;
  }
  case SGRPC_EV_WRITABLE:
    pump(c);
    break;
  case SGRPC_EV_CLOSE: {
    const sgrpc_status_info *st = &ev->u.close.status;
    c->closed = 1;
    c->h = NULL;
    c->code = st->code;
    c->message = strndup(st->message, st->message_len);
    md_copy_all(&c->trailing, &c->n_trailing, st->md, st->md_count);
    iop_outq_clear(&c->out);
    if (verbose)
      fprintf(stderr, "sgrpc-interop-client: %s ended %s \"%s\"\n", c->m->path,
              sgrpc_status_name(st->code), st->message);
    break;
  }
  default:
    break;
  }
}

/* Starts a call of method m. deadline_ns is relative (0: the case's
 * limit); encoding NULL sends uncompressed. Returns the call or NULL
 * (reason set). */
static ccall *start(const sgrpc_method *m, int64_t deadline_ns, const sgrpc_md *md,
                    size_t md_count, const char *encoding) {
  sgrpc_call_opts o;
  ccall *c = calloc(1, sizeof(*c));
  int rv;
  if (!c) {
    failf("out of memory");
    return NULL;
  }
  c->m = m;
  c->next_all = all_calls;
  all_calls = c;
  memset(&o, 0, sizeof(o));
  o.path = m->path;
  o.deadline = deadline_ns ? sgrpc_epoll_now() + deadline_ns : case_deadline;
  o.md = md;
  o.md_count = md_count;
  o.user_data = c;
  o.encoding = encoding;
  o.content_subtype = "proto";
  o.on_event = on_call_event;
  rv = sgrpc_net_channel_call(channel, &o, sgrpc_epoll_now(), &c->h);
  if (rv != 0) {
    failf("%s: call start failed: %s", m->path, sgrpc_strerror(rv));
    c->closed = 1;
    c->h = NULL;
    return NULL;
  }
  return c;
}

/* Queues one request. flags: SGRPC_SEND_NO_COMPRESS for a plain message
 * on a compressing call. */
static int send_msg(ccall *c, const ProtobufCMessage *msg, unsigned flags) {
  if (iop_outq_push(&c->out, msg, flags) != 0) return failf("out of memory");
  pump(c);
  return 0;
}

static void close_send(ccall *c) {
  if (!c->close_wanted) c->close_wanted = 1;
  pump(c);
}

/* Turns the loop until the call closed or has nresp responses; fails the
 * case at its time limit. */
static int wait_for(ccall *c, size_t nresp) {
  sgrpc_epoll_run_once(loop, 0);
  while (!c->closed && c->nresp < nresp) {
    if (sgrpc_epoll_now() > case_deadline)
      return failf("%s: timed out waiting (%zu responses, closed %d)", c->m->path, c->nresp,
                   c->closed);
    if (sgrpc_epoll_run_once(loop, 50) < 0) return failf("epoll loop failed");
  }
  return 0;
}

static int wait_closed(ccall *c) {
  return wait_for(c, (size_t)-1);
}

/* Fails unless the call ended OK. */
static int expect_ok(ccall *c, const char *step) {
  CHECK(c->code == SGRPC_STATUS_OK, "%s: status %s \"%s\", want OK", step,
        sgrpc_status_name(c->code), c->message ? c->message : "");
  CHECK(!c->bad_resp, "%s: undecodable or too many responses", step);
  return 0;
}

static int expect_code(ccall *c, int code, const char *step) {
  CHECK(c->code == code, "%s: status %s \"%s\", want %s", step, sgrpc_status_name(c->code),
        c->message ? c->message : "", sgrpc_status_name(code));
  return 0;
}

/* Checks response i's payload: size bytes, all zero. */
static int check_payload(ccall *c, size_t i, const Grpc__Testing__Payload *p, int32_t size,
                         const char *step) {
  size_t len = p ? p->body.len : 0;
  CHECK((p || size == 0) && len == (size_t)size, "%s: response %zu payload is %zu bytes, want %d",
        step, i, len, (int)size);
  CHECK(len == 0 || iop_all_zero(p->body.data, len), "%s: response %zu payload is not zeros",
        step, i);
  return 0;
}

static void zeros_payload(Grpc__Testing__Payload *p, uint8_t *buf, size_t len) {
  grpc__testing__payload__init(p);
  p->type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
  p->body.data = buf;
  p->body.len = len;
}

/* The large zero buffer every request payload points into. */
static uint8_t zeros[314159];

/* ---------------------------------------------------------------- */
/* Cases                                                             */
/* ---------------------------------------------------------------- */

static int case_empty_unary(void) {
  Grpc__Testing__Empty e = GRPC__TESTING__EMPTY__INIT;
  ccall *c = start(IOP_TEST_METHOD(EMPTY_CALL), 0, NULL, 0, NULL);
  if (!c) return -1;
  if (send_msg(c, &e.base, 0) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0 || expect_ok(c, "EmptyCall") != 0) return -1;
  CHECK(c->nresp == 1, "EmptyCall: %zu responses, want 1", c->nresp);
  CHECK(c->resps[0].wire_len == 0, "EmptyCall: response is %zu bytes, want 0",
        c->resps[0].wire_len);
  return 0;
}

/* A UnaryCall with the large_unary request; compressed_req: -1 no
 * expect_compressed field, 0/1 its value; send_compressed: compress the
 * request with gzip; resp_compressed: -1 no field, 0/1 its value. */
static ccall *large_unary_call(const sgrpc_md *md, size_t md_count, int expect_compressed,
                               int send_compressed, int resp_compressed) {
  Grpc__Testing__SimpleRequest r = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  Grpc__Testing__Payload p;
  Grpc__Testing__BoolValue ec = GRPC__TESTING__BOOL_VALUE__INIT;
  Grpc__Testing__BoolValue rc = GRPC__TESTING__BOOL_VALUE__INIT;
  ccall *c;
  zeros_payload(&p, zeros, 271828);
  r.response_type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
  r.response_size = 314159;
  r.payload = &p;
  if (expect_compressed >= 0) {
    ec.value = expect_compressed;
    r.expect_compressed = &ec;
  }
  if (resp_compressed >= 0) {
    rc.value = resp_compressed;
    r.response_compressed = &rc;
  }
  /* The call compresses with gzip when asked; a probe that must arrive
   * uncompressed says so per message. */
  c = start(IOP_TEST_METHOD(UNARY_CALL), 0, md, md_count,
            expect_compressed >= 0 ? "gzip" : NULL);
  if (!c) return NULL;
  if (send_msg(c, &r.base, send_compressed ? 0 : SGRPC_SEND_NO_COMPRESS) != 0) return NULL;
  close_send(c);
  if (wait_closed(c) != 0) return NULL;
  return c;
}

static int check_large_unary(ccall *c, const char *step) {
  const Grpc__Testing__SimpleResponse *r;
  if (expect_ok(c, step) != 0) return -1;
  CHECK(c->nresp == 1, "%s: %zu responses, want 1", step, c->nresp);
  r = (const Grpc__Testing__SimpleResponse *)c->resps[0].msg;
  return check_payload(c, 0, r->payload, 314159, step);
}

static int case_large_unary(void) {
  ccall *c = large_unary_call(NULL, 0, -1, 0, -1);
  if (!c) return -1;
  return check_large_unary(c, "UnaryCall");
}

static int case_client_compressed_unary(void) {
  ccall *c = large_unary_call(NULL, 0, 1, 0, -1);
  if (!c) return -1;
  if (expect_code(c, SGRPC_STATUS_INVALID_ARGUMENT,
                  "probe (expect_compressed=true, sent uncompressed)") != 0)
    return -1;
  c = large_unary_call(NULL, 0, 1, 1, -1);
  if (!c || check_large_unary(c, "compressed request (expect_compressed=true)") != 0) return -1;
  c = large_unary_call(NULL, 0, 0, 0, -1);
  if (!c || check_large_unary(c, "uncompressed request (expect_compressed=false)") != 0)
    return -1;
  return 0;
}

static int case_server_compressed_unary(void) {
  int want;
  for (want = 1; want >= 0; want--) {
    const char *step = want ? "response_compressed=true" : "response_compressed=false";
    ccall *c = large_unary_call(NULL, 0, -1, 0, want);
    if (!c || check_large_unary(c, step) != 0) return -1;
    CHECK(c->resps[0].compressed == want, "%s: response compressed flag is %d", step,
          c->resps[0].compressed);
  }
  return 0;
}

static int send_input(ccall *c, size_t size, int expect_compressed, int compress) {
  Grpc__Testing__StreamingInputCallRequest r = GRPC__TESTING__STREAMING_INPUT_CALL_REQUEST__INIT;
  Grpc__Testing__BoolValue ec = GRPC__TESTING__BOOL_VALUE__INIT;
  Grpc__Testing__Payload p;
  zeros_payload(&p, zeros, size);
  r.payload = &p;
  if (expect_compressed >= 0) {
    ec.value = expect_compressed;
    r.expect_compressed = &ec;
  }
  return send_msg(c, &r.base, compress ? 0 : SGRPC_SEND_NO_COMPRESS);
}

static int check_aggregated(ccall *c, int32_t want, const char *step) {
  const Grpc__Testing__StreamingInputCallResponse *r;
  if (expect_ok(c, step) != 0) return -1;
  CHECK(c->nresp == 1, "%s: %zu responses, want 1", step, c->nresp);
  r = (const Grpc__Testing__StreamingInputCallResponse *)c->resps[0].msg;
  CHECK(r->aggregated_payload_size == want, "%s: aggregated_payload_size %d, want %d", step,
        (int)r->aggregated_payload_size, (int)want);
  return 0;
}

static int case_client_streaming(void) {
  static const size_t sizes[] = {27182, 8, 1828, 45904};
  size_t i;
  ccall *c = start(IOP_TEST_METHOD(STREAMING_INPUT_CALL), 0, NULL, 0, NULL);
  if (!c) return -1;
  for (i = 0; i < 4; i++)
    if (send_input(c, sizes[i], -1, 0) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0) return -1;
  return check_aggregated(c, 74922, "StreamingInputCall");
}

static int case_client_compressed_streaming(void) {
  ccall *c = start(IOP_TEST_METHOD(STREAMING_INPUT_CALL), 0, NULL, 0, "gzip");
  if (!c) return -1;
  /* The probe. Half-closing after it changes nothing for a server that
   * fails the call on the message, and lets one without the feature answer
   * at once instead of leaving the case to time out. */
  if (send_input(c, 27182, 1, 0) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0) return -1;
  if (expect_code(c, SGRPC_STATUS_INVALID_ARGUMENT,
                  "probe (expect_compressed=true, sent uncompressed)") != 0)
    return -1;
  c = start(IOP_TEST_METHOD(STREAMING_INPUT_CALL), 0, NULL, 0, "gzip");
  if (!c) return -1;
  if (send_input(c, 27182, 1, 1) != 0 || send_input(c, 45904, 0, 0) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0) return -1;
  return check_aggregated(c, 73086, "compressed then uncompressed request");
}

/* Fills a StreamingOutputCallRequest; compressed[i] < 0 leaves the field out. */
static void output_request(Grpc__Testing__StreamingOutputCallRequest *r,
                           Grpc__Testing__ResponseParameters *rp,
                           Grpc__Testing__ResponseParameters **rpp,
                           Grpc__Testing__BoolValue *bv, const int32_t *sizes,
                           const int *compressed, size_t n) {
  size_t i;
  grpc__testing__streaming_output_call_request__init(r);
  r->response_type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
  for (i = 0; i < n; i++) {
    grpc__testing__response_parameters__init(&rp[i]);
    rp[i].size = sizes[i];
    if (compressed && compressed[i] >= 0) {
      grpc__testing__bool_value__init(&bv[i]);
      bv[i].value = compressed[i];
      rp[i].compressed = &bv[i];
    }
    rpp[i] = &rp[i];
  }
  r->n_response_parameters = n;
  r->response_parameters = rpp;
}

static int check_output_responses(ccall *c, const int32_t *sizes, size_t n, const char *step) {
  size_t i;
  if (expect_ok(c, step) != 0) return -1;
  CHECK(c->nresp == n, "%s: %zu responses, want %zu", step, c->nresp, n);
  for (i = 0; i < n; i++) {
    const Grpc__Testing__StreamingOutputCallResponse *r =
        (const Grpc__Testing__StreamingOutputCallResponse *)c->resps[i].msg;
    if (check_payload(c, i, r->payload, sizes[i], step) != 0) return -1;
  }
  return 0;
}

static int case_server_streaming_common(const int32_t *sizes, const int *compressed, size_t n,
                                        const char *step) {
  Grpc__Testing__StreamingOutputCallRequest r;
  Grpc__Testing__ResponseParameters rp[4], *rpp[4];
  Grpc__Testing__BoolValue bv[4];
  size_t i;
  ccall *c = start(IOP_TEST_METHOD(STREAMING_OUTPUT_CALL), 0, NULL, 0, NULL);
  if (!c) return -1;
  output_request(&r, rp, rpp, bv, sizes, compressed, n);
  if (send_msg(c, &r.base, 0) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0 || check_output_responses(c, sizes, n, step) != 0) return -1;
  for (i = 0; compressed && i < n; i++)
    CHECK(c->resps[i].compressed == compressed[i],
          "%s: response %zu compressed flag is %d, want %d", step, i, c->resps[i].compressed,
          compressed[i]);
  return 0;
}

static int case_server_streaming(void) {
  static const int32_t sizes[] = {31415, 9, 2653, 58979};
  return case_server_streaming_common(sizes, NULL, 4, "StreamingOutputCall");
}

static int case_server_compressed_streaming(void) {
  static const int32_t sizes[] = {31415, 92653};
  static const int compressed[] = {1, 0};
  return case_server_streaming_common(sizes, compressed, 2, "StreamingOutputCall");
}

/* One FullDuplexCall request: a response of resp_size, payload_size zeros. */
static int send_duplex(ccall *c, int32_t resp_size, size_t payload_size,
                       const Grpc__Testing__EchoStatus *status) {
  Grpc__Testing__StreamingOutputCallRequest r;
  Grpc__Testing__ResponseParameters rp[1], *rpp[1];
  Grpc__Testing__BoolValue bv[1];
  Grpc__Testing__Payload p;
  output_request(&r, rp, rpp, bv, &resp_size, NULL, resp_size >= 0 ? 1 : 0);
  if (payload_size) {
    zeros_payload(&p, zeros, payload_size);
    r.payload = &p;
  }
  r.response_status = (Grpc__Testing__EchoStatus *)status;
  return send_msg(c, &r.base, 0);
}

static int case_ping_pong(void) {
  static const int32_t resp_sizes[] = {31415, 9, 2653, 58979};
  static const size_t req_sizes[] = {27182, 8, 1828, 45904};
  size_t i;
  ccall *c = start(IOP_TEST_METHOD(FULL_DUPLEX_CALL), 0, NULL, 0, NULL);
  if (!c) return -1;
  for (i = 0; i < 4; i++) {
    if (send_duplex(c, resp_sizes[i], req_sizes[i], NULL) != 0) return -1;
    if (wait_for(c, i + 1) != 0) return -1;
    CHECK(!c->closed, "FullDuplexCall: ended %s \"%s\" after %zu responses",
          sgrpc_status_name(c->code), c->message ? c->message : "", c->nresp);
  }
  close_send(c);
  if (wait_closed(c) != 0) return -1;
  return check_output_responses(c, resp_sizes, 4, "FullDuplexCall");
}

static int case_empty_stream(void) {
  ccall *c = start(IOP_TEST_METHOD(FULL_DUPLEX_CALL), 0, NULL, 0, NULL);
  if (!c) return -1;
  close_send(c);
  if (wait_closed(c) != 0 || expect_ok(c, "FullDuplexCall") != 0) return -1;
  CHECK(c->nresp == 0, "FullDuplexCall: %zu responses, want 0", c->nresp);
  return 0;
}

static int case_timeout_on_sleeping_server(void) {
  Grpc__Testing__StreamingOutputCallRequest r;
  Grpc__Testing__Payload p;
  ccall *c = start(IOP_TEST_METHOD(FULL_DUPLEX_CALL), 1000000 /* 1 ms */, NULL, 0, NULL);
  if (!c) return -1;
  grpc__testing__streaming_output_call_request__init(&r);
  zeros_payload(&p, zeros, 27182);
  r.payload = &p;
  /* The send may already find the call expired; only the status counts. */
  iop_outq_push(&c->out, &r.base, 0);
  pump(c);
  if (wait_closed(c) != 0) return -1;
  return expect_code(c, SGRPC_STATUS_DEADLINE_EXCEEDED, "FullDuplexCall with 1 ms deadline");
}

static int case_cancel_after_begin(void) {
  ccall *c = start(IOP_TEST_METHOD(STREAMING_INPUT_CALL), 0, NULL, 0, NULL);
  int rv;
  if (!c) return -1;
  rv = sgrpc_call_cancel(c->h);
  CHECK(rv == 0, "cancel: %s", sgrpc_strerror(rv));
  if (wait_closed(c) != 0) return -1;
  return expect_code(c, SGRPC_STATUS_CANCELLED, "StreamingInputCall cancelled");
}

static int case_cancel_after_first_response(void) {
  ccall *c = start(IOP_TEST_METHOD(FULL_DUPLEX_CALL), 0, NULL, 0, NULL);
  int rv;
  if (!c) return -1;
  if (send_duplex(c, 31415, 27182, NULL) != 0 || wait_for(c, 1) != 0) return -1;
  CHECK(!c->closed && c->nresp == 1, "FullDuplexCall: ended %s before the first response",
        sgrpc_status_name(c->code));
  rv = sgrpc_call_cancel(c->h);
  CHECK(rv == 0, "cancel: %s", sgrpc_strerror(rv));
  if (wait_closed(c) != 0) return -1;
  return expect_code(c, SGRPC_STATUS_CANCELLED, "FullDuplexCall cancelled");
}

static const char initial_value[] = "test_initial_metadata_value";
static const uint8_t trailing_value[] = {0xab, 0xab, 0xab};

static int check_echo(ccall *c, const char *step) {
  CHECK(md_has(c->initial, c->n_initial, IOP_ECHO_INITIAL, initial_value,
               sizeof(initial_value) - 1),
        "%s: initial metadata lacks %s: %s", step, IOP_ECHO_INITIAL, initial_value);
  CHECK(md_has(c->trailing, c->n_trailing, IOP_ECHO_TRAILING, trailing_value, 3),
        "%s: trailing metadata lacks %s: 0xababab", step, IOP_ECHO_TRAILING);
  return 0;
}

static int case_custom_metadata(void) {
  sgrpc_md md[2];
  static const int32_t sizes[] = {314159};
  ccall *c;
  md[0].key = IOP_ECHO_INITIAL;
  md[0].key_len = strlen(IOP_ECHO_INITIAL);
  md[0].value = (const uint8_t *)initial_value;
  md[0].value_len = sizeof(initial_value) - 1;
  md[1].key = IOP_ECHO_TRAILING;
  md[1].key_len = strlen(IOP_ECHO_TRAILING);
  md[1].value = trailing_value;
  md[1].value_len = sizeof(trailing_value);
  c = large_unary_call(md, 2, -1, 0, -1);
  if (!c || check_large_unary(c, "UnaryCall") != 0 || check_echo(c, "UnaryCall") != 0) return -1;
  c = start(IOP_TEST_METHOD(FULL_DUPLEX_CALL), 0, md, 2, NULL);
  if (!c) return -1;
  if (send_duplex(c, 314159, 271828, NULL) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0 || check_output_responses(c, sizes, 1, "FullDuplexCall") != 0)
    return -1;
  return check_echo(c, "FullDuplexCall");
}

/* UnaryCall and FullDuplexCall asking for status 2 with message text. */
static int echo_status_case(const char *text) {
  Grpc__Testing__SimpleRequest r = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  Grpc__Testing__EchoStatus es = GRPC__TESTING__ECHO_STATUS__INIT;
  ccall *c;
  es.code = 2;
  es.message = (char *)text;
  r.response_status = &es;
  c = start(IOP_TEST_METHOD(UNARY_CALL), 0, NULL, 0, NULL);
  if (!c || send_msg(c, &r.base, 0) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0 || expect_code(c, SGRPC_STATUS_UNKNOWN, "UnaryCall") != 0) return -1;
  CHECK(strcmp(c->message, text) == 0, "UnaryCall: status message \"%s\", want \"%s\"",
        c->message, text);
  if (strcmp(text, "test status message") != 0) return 0; /* special_status_message: unary only */
  c = start(IOP_TEST_METHOD(FULL_DUPLEX_CALL), 0, NULL, 0, NULL);
  if (!c || send_duplex(c, -1, 0, &es) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0 || expect_code(c, SGRPC_STATUS_UNKNOWN, "FullDuplexCall") != 0)
    return -1;
  CHECK(strcmp(c->message, text) == 0, "FullDuplexCall: status message \"%s\", want \"%s\"",
        c->message, text);
  return 0;
}

static int case_status_code_and_message(void) {
  return echo_status_case("test status message");
}

static int case_special_status_message(void) {
  return echo_status_case("\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP "
                          "\xf0\x9f\x98\x88\t\n");
}

static int unimplemented(const sgrpc_method *m) {
  Grpc__Testing__Empty e = GRPC__TESTING__EMPTY__INIT;
  ccall *c = start(m, 0, NULL, 0, NULL);
  if (!c || send_msg(c, &e.base, 0) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0) return -1;
  return expect_code(c, SGRPC_STATUS_UNIMPLEMENTED, m->path);
}

static int case_unimplemented_method(void) {
  return unimplemented(IOP_TEST_METHOD(UNIMPLEMENTED_CALL));
}

static int case_unimplemented_service(void) {
  return unimplemented(&grpc__testing__unimplemented_service__sgrpc_methods
                           [GRPC__TESTING__UNIMPLEMENTED_SERVICE__SGRPC_UNIMPLEMENTED_CALL]);
}

/* Not a standard case (sgrpc's own server check, run by ctest, not by
 * "all"): test.proto defines only COMPRESSABLE; a server refuses any
 * other response_type with INVALID_ARGUMENT and sends no response. */
static int case_unsupported_response_type(void) {
  Grpc__Testing__SimpleRequest u = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  Grpc__Testing__StreamingOutputCallRequest s = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
  Grpc__Testing__ResponseParameters rp = GRPC__TESTING__RESPONSE_PARAMETERS__INIT;
  Grpc__Testing__ResponseParameters *rps[1] = {&rp};
  ccall *c;
  u.response_type = (Grpc__Testing__PayloadType)1; /* the retired UNCOMPRESSABLE */
  u.response_size = 10;
  c = start(IOP_TEST_METHOD(UNARY_CALL), 0, NULL, 0, NULL);
  if (!c || send_msg(c, &u.base, 0) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0 || expect_code(c, SGRPC_STATUS_INVALID_ARGUMENT, "UnaryCall") != 0)
    return -1;
  CHECK(c->nresp == 0, "UnaryCall: %zu responses, want 0", c->nresp);
  s.response_type = (Grpc__Testing__PayloadType)2; /* the retired RANDOM */
  rp.size = 10;
  s.response_parameters = rps;
  s.n_response_parameters = 1;
  c = start(IOP_TEST_METHOD(STREAMING_OUTPUT_CALL), 0, NULL, 0, NULL);
  if (!c || send_msg(c, &s.base, 0) != 0) return -1;
  close_send(c);
  if (wait_closed(c) != 0 ||
      expect_code(c, SGRPC_STATUS_INVALID_ARGUMENT, "StreamingOutputCall") != 0)
    return -1;
  CHECK(c->nresp == 0, "StreamingOutputCall: %zu responses, want 0", c->nresp);
  return 0;
}

/* The standard cases first: "all" runs the first N_STANDARD_CASES. */
static const struct {
  const char *name;
  int (*run)(void);
} cases[] = {
    {"empty_unary", case_empty_unary},
    {"large_unary", case_large_unary},
    {"client_streaming", case_client_streaming},
    {"server_streaming", case_server_streaming},
    {"ping_pong", case_ping_pong},
    {"empty_stream", case_empty_stream},
    {"timeout_on_sleeping_server", case_timeout_on_sleeping_server},
    {"cancel_after_begin", case_cancel_after_begin},
    {"cancel_after_first_response", case_cancel_after_first_response},
    {"custom_metadata", case_custom_metadata},
    {"status_code_and_message", case_status_code_and_message},
    {"special_status_message", case_special_status_message},
    {"unimplemented_method", case_unimplemented_method},
    {"unimplemented_service", case_unimplemented_service},
    {"client_compressed_unary", case_client_compressed_unary},
    {"server_compressed_unary", case_server_compressed_unary},
    {"client_compressed_streaming", case_client_compressed_streaming},
    {"server_compressed_streaming", case_server_compressed_streaming},
    {"unsupported_response_type", case_unsupported_response_type},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))
#define N_STANDARD_CASES ((size_t)18)

static void free_calls(void) {
  while (all_calls) {
    ccall *c = all_calls;
    size_t i;
    all_calls = c->next_all;
    for (i = 0; i < c->nresp; i++) protobuf_c_message_free_unpacked(c->resps[i].msg, NULL);
    iop_outq_clear(&c->out);
    md_free(c->initial, c->n_initial);
    md_free(c->trailing, c->n_trailing);
    free(c->message);
    free(c);
  }
}

static void usage(const char *argv0) {
  size_t i;
  fprintf(stderr,
          "usage: %s --server_port=PORT --test_case=NAME [--server_host=HOST]"
          " [--server_host_override=NAME] [--use_tls=false] [--use_test_ca=false]"
          " [--ca_file=F] [--verbose]\ncases:",
          argv0);
  for (i = 0; i < N_CASES; i++) fprintf(stderr, " %s", cases[i].name);
  fprintf(stderr, " all\n");
}

/* Runs one case on a fresh channel. Returns 0 when it passed. */
static int run_case(size_t k, const char *target, const char *authority) {
  sgrpc_net_channel_opts co;
  int rv;
  if (sgrpc_epoll_new(&loop, NULL) != 0) {
    printf("FAIL: %s: cannot create the epoll loop\n", cases[k].name);
    return -1;
  }
  memset(&co, 0, sizeof(co));
  co.target = target;
  co.authority = authority;
  if (tls) {
    co.make_tls = sgrpc_tls_openssl_factory;
    co.tls_user_data = tls;
  }
  rv = sgrpc_epoll_channel_new(loop, &co, &channel);
  if (rv != 0) {
    printf("FAIL: %s: bad target %s: %s\n", cases[k].name, target, sgrpc_strerror(rv));
    sgrpc_epoll_del(loop);
    return -1;
  }
  reason[0] = 0;
  case_deadline = sgrpc_epoll_now() + CASE_TIME_LIMIT_NS;
  rv = cases[k].run();
  /* Closes the channel gracefully, bounded, so the server sees a clean end. */
  sgrpc_net_channel_close(channel, sgrpc_epoll_now());
  {
    int64_t until = sgrpc_epoll_now() + 1000000000LL;
    while (sgrpc_epoll_now() < until && sgrpc_epoll_run_once(loop, 20) > 0) {
    }
  }
  sgrpc_epoll_del(loop);
  free_calls();
  if (rv == 0) printf("PASS: %s\n", cases[k].name);
  else printf("FAIL: %s: %s\n", cases[k].name, reason[0] ? reason : "unknown failure");
  return rv;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *port = NULL, *test_case = NULL, *override = NULL, *v;
  const char *ca_file = NULL;
  int use_tls = 0, use_test_ca = 0, i, failed = 0;
  size_t k;
  char target[300];
  for (i = 1; i < argc; i++) {
    if (iop_flag(argc, argv, &i, "server_host", 0, &v)) host = v;
    else if (iop_flag(argc, argv, &i, "server_port", 0, &v)) port = v;
    else if (iop_flag(argc, argv, &i, "test_case", 0, &v)) test_case = v;
    else if (iop_flag(argc, argv, &i, "server_host_override", 0, &v)) override = v;
    else if (iop_flag(argc, argv, &i, "ca_file", 0, &v)) ca_file = v;
    else if (iop_flag(argc, argv, &i, "use_tls", 1, &v)) use_tls = iop_bool(v);
    else if (iop_flag(argc, argv, &i, "use_test_ca", 1, &v)) use_test_ca = iop_bool(v);
    else if (strcmp(argv[i], "--verbose") == 0) verbose = 1;
    else if (strncmp(argv[i], "--", 2) == 0 && strchr(argv[i], '=')) {
      /* flags of other stacks' tooling we do not use (--default_service_account=...) */
      fprintf(stderr, "sgrpc-interop-client: ignoring %s\n", argv[i]);
    } else {
      usage(argv[0]);
      return 2;
    }
  }
  if (!host || !port || !test_case || use_tls < 0 || use_test_ca < 0) {
    usage(argv[0]);
    return 2;
  }
  if (use_tls) {
    /* TLS through the channel's TLS factory. Trust: --ca_file, else the
     * gRPC test CA with --use_test_ca, else the system's CAs. SNI and the
     * checked name: --server_host_override, else the host. */
    sgrpc_tls_openssl_options to;
    char err[256] = "";
    int rv;
    sgrpc_tls_openssl_options_default(&to);
    if (ca_file) to.ca_file = ca_file;
    else if (use_test_ca) to.ca_file = IOP_TESTDATA "/ca.pem";
    to.target_name_override = override;
    rv = sgrpc_tls_openssl_ctx_new(&tls, &to, err, sizeof(err));
    if (rv != 0) {
      printf("FAIL: %s: TLS setup failed: %s\n", test_case, err[0] ? err : sgrpc_strerror(rv));
      return 1;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strchr(host, ':') && host[0] != '[')
    snprintf(target, sizeof(target), "[%s]:%s", host, port);
  else snprintf(target, sizeof(target), "%s:%s", host, port);
  if (strcmp(test_case, "all") == 0) {
    for (k = 0; k < N_STANDARD_CASES; k++) failed += run_case(k, target, override) != 0;
    printf("%s: %zu passed, %d failed\n", failed ? "FAIL" : "PASS",
           N_STANDARD_CASES - (size_t)failed,
           failed);
    sgrpc_tls_openssl_ctx_del(tls);
    return failed ? 1 : 0;
  }
  for (k = 0; k < N_CASES; k++)
    if (strcmp(cases[k].name, test_case) == 0) {
      int rc = run_case(k, target, override) == 0 ? 0 : 1;
      sgrpc_tls_openssl_ctx_del(tls);
      return rc;
    }
  sgrpc_tls_openssl_ctx_del(tls);
  printf("FAIL: %s: unknown test case\n", test_case);
  return 1;
}
