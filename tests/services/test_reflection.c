/*
 * <sgrpc/reflection.h> on the in-memory pair, asked through sgrpc's own
 * client stubs for both grpc.reflection.v1alpha and v1. The server knows
 * grpc.testing.TestService (its embedded descriptor) plus the files it
 * imports, taken from a FileDescriptorSet that protoc wrote at build time
 * (--include_imports), and the health service. The answers' descriptors
 * are decoded with protobuf-c's own descriptor.proto messages, not with
 * the library's wire walker.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/health.h>
#include <sgrpc/reflection.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.sgrpc.h"
#include "grpc/reflection/v1alpha/reflection.sgrpc.h"
#include "grpc/testing/test.sgrpc.h"

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest AReq;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse AResp;
typedef Grpc__Reflection__V1__ServerReflectionRequest Req1;
typedef Grpc__Reflection__V1__ServerReflectionResponse Resp1;

typedef struct world {
  pair p;
  sgrpc_router *router;
  sgrpc_reflection *refl;
  sgrpc_rpc_client client;
  int dispatch_err;
} world;

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  int rv = conn == p->srv ? sgrpc_router_dispatch(w->router, conn, ev, p->now)
                          : sgrpc_event_dispatch(ev, p->now);
  if (rv < 0) w->dispatch_err = rv;
  if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call); /* the puller releases */
}

/* Fills refl as an application would. */
static void refl_fill(sgrpc_reflection *refl) {
  size_t len;
  uint8_t *set = test_read_file(SGRPC_TESTING_DESC, &len);
  assert_int_equal(sgrpc_reflection_add_service(refl, &grpc__testing__test_service__sgrpc_service),
                   0);
  assert_int_equal(sgrpc_reflection_add_service(refl, sgrpc_health_service()), 0);
  assert_int_equal(sgrpc_reflection_add_file_set(refl, set, len), 0);
  free(set); /* copied */
}

static void world_init_with(world *w, const sgrpc_settings *cs, const sgrpc_settings *ss) {
  memset(w, 0, sizeof(*w));
  assert_int_equal(pair_init(&w->p, cs, ss, NULL), 0);
  w->p.on_event = on_event;
  w->p.ud = w;
  w->p.max_split = 9;
  assert_int_equal(sgrpc_router_new(&w->router, NULL), 0);
  assert_int_equal(sgrpc_reflection_new(&w->refl, NULL), 0);
  refl_fill(w->refl);
  assert_int_equal(sgrpc_reflection_register(w->refl, w->router), 0);
  sgrpc_rpc_client_init(&w->client, w->p.cli, NULL);
}

static void world_init(world *w) { world_init_with(w, NULL, NULL); }

static void world_free(world *w) {
  assert_int_equal(w->dispatch_err, 0);
  assert_int_equal(sgrpc_conn_call_count(w->p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(w->p.srv), 0);
  pair_free(&w->p);
  sgrpc_reflection_del(w->refl);
  sgrpc_router_del(w->router);
}

/* ---- answers, recorded as text ---- */

#define MAXA 32
typedef struct answers {
  int done, code, n;
  char text[MAXA][512]; /* "L:a,b" / "F:file|file" / "E:code" */
  char echo[MAXA][128]; /* original_request's argument */
  char host[MAXA][32];
  char methods[512];    /* methods of grpc.testing.TestService when a file has it */
} answers;

static void cat(char *dst, size_t cap, const char *s) {
  size_t n = strlen(dst);
  snprintf(dst + n, cap - n, "%s", s);
}

/* Set while damaged descriptors are served: they need not decode. */
static int damaged;

static void record_files(answers *a, char *out, size_t n, const ProtobufCBinaryData *fds) {
  size_t i, j, k;
  strcpy(out, "F:");
  for (i = 0; i < n; i++) {
    Google__Protobuf__FileDescriptorProto *fd =
        google__protobuf__file_descriptor_proto__unpack(NULL, fds[i].len, fds[i].data);
    if (!fd && damaged) continue;
    assert_non_null(fd); /* a real FileDescriptorProto */
    if (i) cat(out, 512, "|");
    cat(out, 512, fd->name);
    for (j = 0; j < fd->n_service; j++) {
      if (strcmp(fd->service[j]->name, "TestService") || strcmp(fd->package, "grpc.testing"))
        continue;
      a->methods[0] = 0;
      for (k = 0; k < fd->service[j]->n_method; k++) {
        if (k) cat(a->methods, sizeof(a->methods), ",");
        cat(a->methods, sizeof(a->methods), fd->service[j]->method[k]->name);
      }
    }
    google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
  }
}

#define RECORD(PFX, CPFX, a, r)                                                                  \
  do {                                                                                           \
    int i_ = (a)->n++;                                                                           \
    size_t j_;                                                                                   \
    char *t_ = (a)->text[i_];                                                                    \
    assert_true(i_ < MAXA);                                                                      \
    t_[0] = 0;                                                                                   \
    snprintf((a)->host[i_], 32, "%s", (r)->valid_host);                                          \
    if ((r)->original_request) {                                                                 \
      const char *arg_ = "";                                                                     \
      if ((r)->original_request->message_request_case ==                                        \
          CPFX##SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL)                \
        arg_ = (r)->original_request->file_containing_symbol;                                    \
      else if ((r)->original_request->message_request_case ==                                   \
               CPFX##SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME)                 \
        arg_ = (r)->original_request->file_by_filename;                                          \
      snprintf((a)->echo[i_], 128, "%s", arg_);                                                  \
    }                                                                                            \
    switch ((r)->message_response_case) {                                                        \
    case CPFX##SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE:              \
      strcpy(t_, "L:");                                                                          \
      for (j_ = 0; j_ < (r)->list_services_response->n_service; j_++) {                          \
        if (j_) cat(t_, 512, ",");                                                               \
        cat(t_, 512, (r)->list_services_response->service[j_]->name);                            \
      }                                                                                          \
      break;                                                                                     \
    case CPFX##SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE:            \
      record_files((a), t_, (r)->file_descriptor_response->n_file_descriptor_proto,             \
                   (r)->file_descriptor_response->file_descriptor_proto);                        \
      break;                                                                                     \
    case CPFX##SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE:      \
      snprintf(t_, 512, "N:%s:", (r)->all_extension_numbers_response->base_type_name);          \
      for (j_ = 0; j_ < (r)->all_extension_numbers_response->n_extension_number; j_++) {        \
        char num_[16];                                                                           \
        snprintf(num_, sizeof(num_), j_ ? ",%d" : "%d",                                          \
                 (int)(r)->all_extension_numbers_response->extension_number[j_]);                \
        cat(t_, 512, num_);                                                                      \
      }                                                                                          \
      break;                                                                                     \
    case CPFX##SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE:                      \
      snprintf(t_, 512, "E:%d", (int)(r)->error_response->error_code);                           \
      break;                                                                                     \
    default:                                                                                     \
      strcpy(t_, "?");                                                                           \
    }                                                                                            \
  } while (0)

static void a_reply(sgrpc_client_call *call, const AResp *r, void *ud) {
  (void)call;
  RECORD(grpc__reflection__v1alpha__, GRPC__REFLECTION__V1ALPHA__, (answers *)ud, r);
}
static void v1_reply(sgrpc_client_call *call, const Resp1 *r, void *ud) {
  (void)call;
  RECORD(grpc__reflection__v1__, GRPC__REFLECTION__V1__, (answers *)ud, r);
}
static void a_done(sgrpc_client_call *call, const sgrpc_status_info *st, const AResp *r,
                   void *ud) {
  answers *a = ud;
  (void)call, (void)r;
  a->done++;
  a->code = st->code;
}
static void v1_done(sgrpc_client_call *call, const sgrpc_status_info *st, const Resp1 *r,
                    void *ud) {
  answers *a = ud;
  (void)call, (void)r;
  a->done++;
  a->code = st->code;
}

enum { LIST, FILE_, SYMBOL, EXT, EXTNUM, EMPTY };
typedef struct q {
  int kind;
  const char *arg;
  int number; /* EXT */
} q;

static void ask_v1alpha(world *w, const q *qs, size_t n, answers *a) {
  sgrpc_client_call *call = NULL;
  sgrpc_rpc_opts o;
  size_t i;
  memset(a, 0, sizeof(*a));
  memset(&o, 0, sizeof(o));
  o.user_data = a;
  assert_int_equal(grpc__reflection__v1alpha__server_reflection__server_reflection_info__call(
                       &w->client, &o, w->p.now, a_reply, a_done, &call),
                   0);
  for (i = 0; i < n; i++) {
    AReq r = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    Grpc__Reflection__V1alpha__ExtensionRequest er =
        GRPC__REFLECTION__V1ALPHA__EXTENSION_REQUEST__INIT;
    char host[32];
    snprintf(host, sizeof(host), "h%zu", i);
    r.host = host;
    switch (qs[i].kind) {
    case LIST:
      r.message_request_case = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
      r.list_services = (char *)"";
      break;
    case FILE_:
      r.message_request_case = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
      r.file_by_filename = (char *)qs[i].arg;
      break;
    case SYMBOL:
      r.message_request_case = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
      r.file_containing_symbol = (char *)qs[i].arg;
      break;
    case EXT:
      er.containing_type = (char *)qs[i].arg;
      er.extension_number = qs[i].number;
      r.message_request_case = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
      r.file_containing_extension = &er;
      break;
    case EXTNUM:
      r.message_request_case = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
      r.all_extension_numbers_of_type = (char *)qs[i].arg;
      break;
    default:
      break;
    }
    assert_int_equal(sgrpc_client_call_send(call, &r), 0);
  }
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  pair_run(&w->p, 100000);
  assert_int_equal(a->done, 1);
  assert_int_equal(a->code, SGRPC_STATUS_OK);
  assert_int_equal(a->n, (int)n);
}

#define TESTP "grpc/testing/test.proto"
#define MSGP "grpc/testing/messages.proto"
#define EMPTYP "grpc/testing/empty.proto"
#define TEST_FILES "F:" TESTP "|" EMPTYP "|" MSGP
#define TEST_METHODS                                                                             \
  "EmptyCall,UnaryCall,CacheableUnaryCall,StreamingOutputCall,StreamingInputCall,"              \
  "FullDuplexCall,HalfDuplexCall,UnimplementedCall"

static void test_v1alpha(void **state) {
  static const q qs[] = {
      {LIST, NULL, 0},
      {FILE_, TESTP, 0},
      {SYMBOL, "grpc.testing.TestService", 0},
      {SYMBOL, "grpc.testing.TestService.UnaryCall", 0},
      {SYMBOL, "grpc.testing.SimpleRequest", 0},
      {SYMBOL, "grpc.testing.LoadBalancerStatsResponse.RpcsByPeer", 0},
      {SYMBOL, "grpc.testing.ClientConfigureRequest.RpcType", 0},
      {SYMBOL, "grpc.testing.PayloadType", 0},
      {SYMBOL, "grpc.testing.SimpleRequest.response_size", 0},
      {SYMBOL, "grpc.testing.Empty", 0},
      {SYMBOL, "grpc.health.v1.HealthCheckResponse.ServingStatus", 0},
      {SYMBOL, "grpc.reflection.v1alpha.ServerReflection", 0},
      {SYMBOL, "grpc.testing.Nope", 0},
      {SYMBOL, "grpc.testing", 0},
      {SYMBOL, "grpc.testing.TestService.UnaryCal", 0},
      {SYMBOL, "", 0},
      {FILE_, "nope.proto", 0},
      {FILE_, MSGP, 0},
      {EXT, "grpc.testing.SimpleRequest", 100},
      {EXTNUM, "grpc.testing.SimpleRequest", 0},
      {EMPTY, NULL, 0},
      {LIST, NULL, 0},
  };
  world w;
  answers a;
  char host[32];
  size_t i;
  (void)state;
  world_init(&w);
  ask_v1alpha(&w, qs, sizeof(qs) / sizeof(qs[0]), &a);
  assert_string_equal(a.text[0], "L:grpc.testing.TestService,grpc.health.v1.Health,"
                                 "grpc.reflection.v1.ServerReflection,"
                                 "grpc.reflection.v1alpha.ServerReflection");
  assert_string_equal(a.text[1], TEST_FILES);
  assert_string_equal(a.methods, TEST_METHODS);
  assert_string_equal(a.text[2], TEST_FILES);
  assert_string_equal(a.text[3], TEST_FILES);
  assert_string_equal(a.text[4], "F:" MSGP);
  assert_string_equal(a.text[5], "F:" MSGP);
  assert_string_equal(a.text[6], "F:" MSGP);
  assert_string_equal(a.text[7], "F:" MSGP);
  assert_string_equal(a.text[8], "F:" MSGP);
  assert_string_equal(a.text[9], "F:" EMPTYP);
  assert_string_equal(a.text[10], "F:grpc/health/v1/health.proto");
  assert_string_equal(a.text[11], "F:grpc/reflection/v1alpha/reflection.proto");
  for (i = 12; i <= 16; i++) assert_string_equal(a.text[i], "E:5"); /* NOT_FOUND */
  assert_string_equal(a.text[17], "F:" MSGP);
  assert_string_equal(a.text[18], "E:5");
  assert_string_equal(a.text[19], "N:grpc.testing.SimpleRequest:"); /* none */
  assert_string_equal(a.text[20], "E:3"); /* INVALID_ARGUMENT */
  assert_string_equal(a.text[21], a.text[0]);
  /* each answer carries its own request, in order */
  for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
    snprintf(host, sizeof(host), "h%zu", i);
    assert_string_equal(a.host[i], host);
    if (qs[i].kind == SYMBOL || qs[i].kind == FILE_) assert_string_equal(a.echo[i], qs[i].arg);
  }
  world_free(&w);
}

static void test_v1(void **state) {
  world w;
  answers a;
  sgrpc_client_call *call = NULL;
  sgrpc_rpc_opts o;
  Req1 r = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  (void)state;
  world_init(&w);
  memset(&a, 0, sizeof(a));
  memset(&o, 0, sizeof(o));
  o.user_data = &a;
  assert_int_equal(grpc__reflection__v1__server_reflection__server_reflection_info__call(
                       &w.client, &o, w.p.now, v1_reply, v1_done, &call),
                   0);
  r.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  r.list_services = (char *)"*";
  assert_int_equal(sgrpc_client_call_send(call, &r), 0);
  r.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  r.file_containing_symbol = (char *)"grpc.testing.TestService.FullDuplexCall";
  assert_int_equal(sgrpc_client_call_send(call, &r), 0);
  /* answers come while the stream is open, before the half-close */
  pair_run(&w.p, 1000);
  assert_int_equal(a.n, 2);
  assert_int_equal(a.done, 0);
  r.file_containing_symbol = (char *)"grpc.testing.Missing";
  assert_int_equal(sgrpc_client_call_send(call, &r), 0);
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  pair_run(&w.p, 1000);
  assert_int_equal(a.done, 1);
  assert_int_equal(a.code, SGRPC_STATUS_OK);
  assert_int_equal(a.n, 3);
  assert_non_null(strstr(a.text[0], "grpc.reflection.v1.ServerReflection"));
  assert_string_equal(a.text[1], TEST_FILES);
  assert_string_equal(a.methods, TEST_METHODS);
  assert_string_equal(a.text[2], "E:5");
  world_free(&w);
}

/* Moves the client's bytes to the server only: the server answers, but
 * nothing it sends is taken, as with a client that does not read. */
static void pump_to_server(world *w) {
  int i;
  for (i = 0; i < 1000 && pair_pump(&w->p, w->p.cli, w->p.srv) > 0; i++) {
  }
}

/* Starts a v1 stream and sends n requests for TESTP, hosts h0, h1, ...
 * (host_len bytes each, padded), then half-closes. */
static sgrpc_client_call *ask_many(world *w, answers *a, size_t n, size_t host_len) {
  sgrpc_client_call *call = NULL;
  sgrpc_rpc_opts o;
  char host[4096];
  size_t i;
  assert_true(host_len < sizeof(host));
  memset(a, 0, sizeof(*a));
  memset(&o, 0, sizeof(o));
  o.user_data = a;
  assert_int_equal(grpc__reflection__v1__server_reflection__server_reflection_info__call(
                       &w->client, &o, w->p.now, v1_reply, v1_done, &call),
                   0);
  for (i = 0; i < n; i++) {
    Req1 r = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    size_t k = (size_t)snprintf(host, sizeof(host), "h%zu", i);
    while (k < host_len) host[k++] = '.';
    host[k] = 0;
    r.host = host;
    r.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
    r.file_by_filename = (char *)TESTP;
    assert_int_equal(sgrpc_client_call_send(call, &r), 0);
  }
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  return call;
}

/* A client that asks faster than it reads: the answers that do not fit
 * the call's small send buffer wait as requests and go out in order once
 * it reads; the half-close waits for them. */
static void test_pushback(void **state) {
  world w;
  answers a;
  sgrpc_settings ss;
  char host[32];
  size_t i;
  (void)state;
  sgrpc_settings_default(&ss);
  ss.max_send_buffer = 1024; /* one answer (several KiB) fills it */
  world_init_with(&w, NULL, &ss);
  ask_many(&w, &a, MAXA, 0);
  pump_to_server(&w);
  assert_int_equal(a.n, 0);
  pair_run(&w.p, 100000);
  assert_int_equal(a.done, 1);
  assert_int_equal(a.code, SGRPC_STATUS_OK);
  assert_int_equal(a.n, MAXA);
  for (i = 0; i < MAXA; i++) {
    snprintf(host, sizeof(host), "h%zu", i);
    assert_string_equal(a.host[i], host);
    assert_string_equal(a.text[i], TEST_FILES);
  }
  world_free(&w);
}

/* The requests waiting behind a client that never reads are bounded:
 * past 64 KiB of them the call ends RESOURCE_EXHAUSTED. */
static void test_backlog_bound(void **state) {
  world w;
  answers a;
  sgrpc_settings cs, ss;
  (void)state;
  sgrpc_settings_default(&cs);
  sgrpc_settings_default(&ss);
  cs.max_send_buffer = 1u << 20; /* the client's own sends never block here */
  ss.max_send_buffer = 1024;
  world_init_with(&w, &cs, &ss);
  ask_many(&w, &a, 30, 3000); /* about 90 KiB of requests */
  pump_to_server(&w);
  pair_run(&w.p, 100000);
  assert_int_equal(a.done, 1);
  assert_int_equal(a.code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  assert_true(a.n >= 1 && a.n < 30); /* what fit before the end */
  world_free(&w);
}

static size_t put_varint(uint8_t *p, size_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* DescriptorProto {name "M", nested_type {...}} depth levels deep. */
static size_t nested_msg(uint8_t *out, int depth) {
  uint8_t inner[2048];
  size_t n = 0, in_len;
  out[n++] = 0x0a, out[n++] = 1, out[n++] = 'M';
  if (depth > 0) {
    in_len = nested_msg(inner, depth - 1);
    out[n++] = 0x1a;
    n += put_varint(out + n, in_len);
    memcpy(out + n, inner, in_len);
    n += in_len;
  }
  return n;
}

static int add_nested(sgrpc_reflection *r, const char *name, int depth) {
  uint8_t file[2048], msg[2048];
  size_t n = 0, m = nested_msg(msg, depth);
  file[n++] = 0x0a, file[n++] = (uint8_t)strlen(name);
  memcpy(file + n, name, strlen(name));
  n += strlen(name);
  file[n++] = 0x22;
  n += put_varint(file + n, m);
  memcpy(file + n, msg, m);
  n += m;
  return sgrpc_reflection_add_file(r, file, n);
}

/* Extensions: found by extendee and number, listed per message type. */
static void test_extensions(void **state) {
  static const q qs[] = {
      {EXT, "sgrpc.test.ext.Base", 100},
      {EXT, "sgrpc.test.ext.Base", 150},
      {EXT, "sgrpc.test.ext.Base", 101},
      {EXT, "sgrpc.test.ext.Holder", 150},
      {EXTNUM, "sgrpc.test.ext.Base", 0},
      {EXTNUM, "sgrpc.test.ext.Plain", 0},
      {EXTNUM, "sgrpc.test.ext.Nope", 0},
      {EXTNUM, "sgrpc.test.ext.note", 0}, /* an extension, not a message */
      {SYMBOL, "sgrpc.test.ext.note", 0},
      {SYMBOL, "sgrpc.test.ext.Holder.level", 0},
  };
  world w;
  answers a;
  size_t len;
  uint8_t *set = test_read_file(SGRPC_EXT_DESC, &len);
  (void)state;
  world_init(&w);
  assert_int_equal(sgrpc_reflection_add_file_set(w.refl, set, len), 0);
  free(set);
  ask_v1alpha(&w, qs, sizeof(qs) / sizeof(qs[0]), &a);
  assert_string_equal(a.text[0], "F:ext_test.proto");
  assert_string_equal(a.text[1], "F:ext_test.proto");
  assert_string_equal(a.text[2], "E:5");
  assert_string_equal(a.text[3], "E:5");
  assert_string_equal(a.text[4], "N:sgrpc.test.ext.Base:100,150");
  assert_string_equal(a.text[5], "N:sgrpc.test.ext.Plain:");
  assert_string_equal(a.text[6], "E:5");
  assert_string_equal(a.text[7], "E:5");
  assert_string_equal(a.text[8], "F:ext_test.proto");
  assert_string_equal(a.text[9], "F:ext_test.proto");
  world_free(&w);
}

/* Descriptor input checks: malformed bytes, names taken, sets. */
static void test_add_errors(void **state) {
  sgrpc_reflection *r;
  sgrpc_service_desc d;
  static const uint8_t garbage[] = {0x0a, 0x20, 'x'};           /* length past the end */
  static const uint8_t noname[] = {0x12, 0x03, 'p', 'k', 'g'};  /* package only */
  static const uint8_t a1[] = {0x0a, 0x03, 'a', '.', 'p', 0x12, 0x01, 'p',
                               0x22, 0x03, 0x0a, 0x01, 'M'};     /* message p.M */
  static const uint8_t a2[] = {0x0a, 0x03, 'a', '.', 'p', 0x12, 0x01, 'q'};
  static const uint8_t group[] = {0x0a, 0x01, 'g', 0x0b};       /* a group start */
  static const uint8_t unnamed_msg[] = {0x0a, 0x01, 'u', 0x22, 0x00};
  (void)state;
  assert_int_equal(sgrpc_reflection_new(NULL, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_reflection_new(&r, NULL), 0);
  assert_int_equal(sgrpc_reflection_add_file(r, garbage, sizeof(garbage)),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_reflection_add_file(r, noname, sizeof(noname)),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_reflection_add_file(r, group, sizeof(group)), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_reflection_add_file(r, unnamed_msg, sizeof(unnamed_msg)),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_reflection_add_file(r, a1, sizeof(a1)), 0);
  assert_int_equal(sgrpc_reflection_add_file(r, a1, sizeof(a1)), 0); /* same again */
  assert_int_equal(sgrpc_reflection_add_file(r, a2, sizeof(a2)), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_reflection_add_file_set(r, garbage, sizeof(garbage)),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_reflection_add_file(r, NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  memset(&d, 0, sizeof(d));
  assert_int_equal(sgrpc_reflection_add_service(r, &d), SGRPC_ERR_INVALID_ARGUMENT);
  d.name = "x.Y"; /* a service without descriptor bytes is only listed */
  assert_int_equal(sgrpc_reflection_add_service(r, &d), 0);
  d.file_descriptor = a2; /* "a.p" is taken by other bytes */
  d.file_descriptor_len = sizeof(a2);
  assert_int_equal(sgrpc_reflection_add_service(r, &d), SGRPC_ERR_INVALID_ARGUMENT);
  /* nesting: 30 levels of nested messages are fine, 70 are refused */
  assert_int_equal(add_nested(r, "n30", 30), 0);
  assert_int_equal(add_nested(r, "n70", 70), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_reflection_del(r);
  sgrpc_reflection_del(NULL);
}

/* Every allocation of the reflection object fails in turn while it is
 * filled and registered: a clear error each time, no leak. */
static void test_alloc_failures(void **state) {
  long n;
  size_t len;
  uint8_t *set = test_read_file(SGRPC_TESTING_DESC, &len);
  (void)state;
  for (n = 1; n < 10000; n++) {
    failmem fm;
    sgrpc_mem mem;
    sgrpc_reflection *r = NULL;
    sgrpc_router *router;
    int rv;
    failmem_init(&fm, &mem);
    fm.fail_at = n;
    assert_int_equal(sgrpc_router_new(&router, NULL), 0);
    rv = sgrpc_reflection_new(&r, &mem);
    if (rv == 0) rv = sgrpc_reflection_add_service(r, &grpc__testing__test_service__sgrpc_service);
    if (rv == 0) rv = sgrpc_reflection_add_file_set(r, set, len);
    if (rv == 0) rv = sgrpc_reflection_register(r, router);
    assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
    assert_true(rv == 0 || fm.failures == 1);
    sgrpc_reflection_del(r);
    sgrpc_router_del(router);
    assert_int_equal(fm.live, 0);
    if (!fm.failures) break;
  }
  assert_true(n > 10 && n < 10000);
  free(set);
}

/* The reflection object's allocations fail in turn while it answers a
 * client that asks faster than it reads (answers built, requests kept
 * and unpacked again): the call ends RESOURCE_EXHAUSTED or answers
 * everything, never crashes, never leaks. */
static void test_backlog_alloc_failures(void **state) {
  long k;
  int ended_early = 0;
  (void)state;
  for (k = 1; k < 10000; k++) {
    world w;
    answers a;
    failmem fm;
    sgrpc_mem mem;
    sgrpc_settings ss;
    sgrpc_settings_default(&ss);
    ss.max_send_buffer = 1024;
    memset(&w, 0, sizeof(w));
    assert_int_equal(pair_init(&w.p, NULL, &ss, NULL), 0);
    w.p.on_event = on_event;
    w.p.ud = &w;
    assert_int_equal(sgrpc_router_new(&w.router, NULL), 0);
    failmem_init(&fm, &mem);
    assert_int_equal(sgrpc_reflection_new(&w.refl, &mem), 0);
    refl_fill(w.refl);
    assert_int_equal(sgrpc_reflection_register(w.refl, w.router), 0);
    sgrpc_rpc_client_init(&w.client, w.p.cli, NULL);
    ask_many(&w, &a, 6, 0);
    fm.fail_at = fm.count + k; /* from the first request on */
    pump_to_server(&w);
    pair_run(&w.p, 100000);
    assert_int_equal(a.done, 1);
    if (a.code == SGRPC_STATUS_OK) {
      assert_int_equal(a.n, 6);
    } else {
      assert_int_equal(a.code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
      assert_true(a.n < 6);
      ended_early++;
    }
    world_free(&w);
    assert_int_equal(fm.live, 0);
    if (!fm.failures) break; /* every allocation was reached */
  }
  assert_true(ended_early > 0);
  assert_true(k < 10000);
}

/* Damaged descriptor sets (bytes flipped, cut short) never crash or leak:
 * each is taken or refused with INVALID_ARGUMENT, and what was taken
 * still answers queries. Deterministic (fixed xorshift seed). */
static void test_damaged_descriptors(void **state) {
  size_t len, i;
  uint8_t *set = test_read_file(SGRPC_TESTING_DESC, &len);
  uint8_t *buf = malloc(len);
  uint64_t x = 88172645463325252ull;
  int round, taken = 0, refused = 0;
  (void)state;
  assert_non_null(buf);
  damaged = 1;
  for (round = 0; round < 3000; round++) {
    sgrpc_reflection *r;
    size_t n = len;
    int flips, rv;
    memcpy(buf, set, len);
    for (flips = 0; flips < 1 + round % 4; flips++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      buf[x % len] = (uint8_t)(x >> 32);
    }
    if (round % 5 == 0) n = (size_t)(x >> 20) % len; /* cut short */
    assert_int_equal(sgrpc_reflection_new(&r, NULL), 0);
    rv = sgrpc_reflection_add_file_set(r, buf, n);
    assert_true(rv == 0 || rv == SGRPC_ERR_INVALID_ARGUMENT);
    if (rv == 0) taken++;
    else refused++;
    /* whatever went in can be registered and asked */
    {
      world w;
      answers a;
      static const q qs[] = {{LIST, NULL, 0},
                             {SYMBOL, "grpc.testing.SimpleRequest", 0},
                             {FILE_, TESTP, 0},
                             {SYMBOL, "grpc.testing.TestService.UnaryCall", 0}};
      memset(&w, 0, sizeof(w));
      assert_int_equal(pair_init(&w.p, NULL, NULL, NULL), 0);
      w.p.on_event = on_event;
      w.p.ud = &w;
      assert_int_equal(sgrpc_router_new(&w.router, NULL), 0);
      w.refl = r;
      assert_int_equal(sgrpc_reflection_register(r, w.router), 0);
      sgrpc_rpc_client_init(&w.client, w.p.cli, NULL);
      if (round % 10 == 0) {
        ask_v1alpha(&w, qs, sizeof(qs) / sizeof(qs[0]), &a);
        for (i = 0; i < 4; i++) assert_true(a.text[i][0] == 'L' || a.text[i][0] == 'F' ||
                                            !strcmp(a.text[i], "E:5"));
      }
      world_free(&w);
    }
  }
  damaged = 0;
  assert_true(taken > 0 && refused > 0);
  free(buf);
  free(set);
}


/* ---- reflection follows its router: no add_service, imports included ---- */

static void empty_call(sgrpc_server_call *call, const Grpc__Testing__Empty *req, void *ud) {
  (void)req, (void)ud;
  sgrpc_server_call_fail(call, SGRPC_STATUS_UNIMPLEMENTED, "not here");
}

typedef struct warnings {
  int n;
  char text[8][512];
} warnings;

static void on_warn(const char *msg, void *ud) {
  warnings *ws = ud;
  if (ws->n < 8) snprintf(ws->text[ws->n], sizeof(ws->text[0]), "%s", msg);
  ws->n++;
}

/* A world whose reflection was given nothing but the router: the
 * generated register function records grpc.testing.TestService, and its
 * description carries the two files test.proto imports. */
static void world_init_router_only(world *w, warnings *ws) {
  Grpc__Testing__TestService_SgrpcServer impl;
  memset(w, 0, sizeof(*w));
  assert_int_equal(pair_init(&w->p, NULL, NULL, NULL), 0);
  w->p.on_event = on_event;
  w->p.ud = w;
  assert_int_equal(sgrpc_router_new(&w->router, NULL), 0);
  memset(&impl, 0, sizeof(impl));
  impl.empty_call = empty_call;
  assert_int_equal(grpc__testing__test_service__sgrpc_register(w->router, &impl, NULL), 0);
  assert_int_equal(sgrpc_reflection_new(&w->refl, NULL), 0);
  sgrpc_reflection_set_warn(w->refl, on_warn, ws);
  assert_int_equal(sgrpc_reflection_register(w->refl, w->router), 0);
  sgrpc_rpc_client_init(&w->client, w->p.cli, NULL);
}

static void test_follows_router(void **state) {
  world w;
  answers a;
  warnings ws;
  const q qs[] = {{LIST, NULL, 0},
                  {SYMBOL, "grpc.testing.TestService", 0},
                  {SYMBOL, "grpc.testing.SimpleRequest", 0},
                  {FILE_, EMPTYP, 0},
                  {LIST, NULL, 0}};
  (void)state;
  memset(&ws, 0, sizeof(ws));
  world_init_router_only(&w, &ws);
  assert_int_equal(sgrpc_router_service_count(w.router), 3); /* TestService + v1 + v1alpha */
  assert_string_equal(sgrpc_router_service(w.router, 0)->name, "grpc.testing.TestService");
  assert_null(sgrpc_router_service(w.router, 3));
  ask_v1alpha(&w, qs, 4, &a);
  assert_non_null(strstr(a.text[0], "grpc.testing.TestService"));
  assert_non_null(strstr(a.text[0], "grpc.reflection.v1.ServerReflection"));
  assert_string_equal(a.text[1], TEST_FILES);
  assert_string_equal(a.methods, TEST_METHODS);
  assert_string_equal(a.text[2], "F:" MSGP);
  assert_string_equal(a.text[3], "F:" EMPTYP);
  assert_int_equal(ws.n, 0); /* everything describable */

  /* a service recorded after registration is listed at the next request */
  assert_int_equal(sgrpc_router_add_service(w.router, sgrpc_health_service()), 0);
  assert_int_equal(sgrpc_router_add_service(w.router, sgrpc_health_service()), 0); /* no-op */
  assert_int_equal(sgrpc_router_service_count(w.router), 4);
  ask_v1alpha(&w, qs, 1, &a);
  assert_non_null(strstr(a.text[0], "grpc.health.v1.Health"));
  assert_int_equal(ws.n, 0);
  world_free(&w);
}

/* What reflection cannot describe is reported, once, naming the service
 * and what is missing. */
static void test_warnings(void **state) {
  world w;
  answers a;
  warnings ws;
  const q qs[] = {{LIST, NULL, 0}, {SYMBOL, "grpc.testing.TestService", 0}};
  static const sgrpc_service_desc bare = {"demo.NoDescriptor", NULL, 0, "demo.proto", NULL, 0,
                                          NULL, 0};
  sgrpc_service_desc no_imports = grpc__testing__test_service__sgrpc_service;
  static const uint8_t junk[] = {0xff, 0xff, 0xff};
  sgrpc_service_desc damaged_desc = {"demo.Damaged", NULL, 0, "d.proto", junk, sizeof(junk),
                                     NULL, 0};
  (void)state;
  memset(&ws, 0, sizeof(ws));
  no_imports.name = "grpc.testing.TestServiceNoImports";
  no_imports.deps = NULL;
  no_imports.n_deps = 0;
  memset(&w, 0, sizeof(w));
  assert_int_equal(pair_init(&w.p, NULL, NULL, NULL), 0);
  w.p.on_event = on_event;
  w.p.ud = &w;
  assert_int_equal(sgrpc_router_new(&w.router, NULL), 0);
  assert_int_equal(sgrpc_router_add_service(w.router, &bare), 0);
  assert_int_equal(sgrpc_router_add_service(w.router, &no_imports), 0);
  assert_int_equal(sgrpc_router_add_service(w.router, &damaged_desc), 0);
  assert_int_equal(sgrpc_router_add_service(NULL, &bare), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_reflection_new(&w.refl, NULL), 0);
  sgrpc_reflection_set_warn(w.refl, on_warn, &ws);
  assert_int_equal(sgrpc_reflection_register(w.refl, w.router), 0);
  assert_int_equal(ws.n, 4); /* bare, two imports of no_imports, damaged */
  assert_non_null(strstr(ws.text[0], "demo.NoDescriptor has no file descriptor"));
  assert_non_null(strstr(ws.text[1], "grpc.testing.TestServiceNoImports"));
  assert_non_null(strstr(ws.text[1], "imports grpc/testing/"));
  assert_non_null(strstr(ws.text[2], "imports grpc/testing/"));
  assert_non_null(strstr(ws.text[3], "demo.Damaged"));
  sgrpc_rpc_client_init(&w.client, w.p.cli, NULL);
  ask_v1alpha(&w, qs, 2, &a);
  assert_int_equal(ws.n, 4); /* reported once */
  /* listed anyway; the file is served without the imports it lacks */
  assert_non_null(strstr(a.text[0], "demo.NoDescriptor"));
  assert_string_equal(a.text[1], "F:" TESTP);
  world_free(&w);
}

/* Silenced: set_warn with NULL. */
static void test_warnings_silenced(void **state) {
  sgrpc_router *router;
  sgrpc_reflection *refl;
  static const sgrpc_service_desc bare = {"demo.NoDescriptor", NULL, 0, "demo.proto", NULL, 0,
                                          NULL, 0};
  (void)state;
  assert_int_equal(sgrpc_router_new(&router, NULL), 0);
  assert_int_equal(sgrpc_router_add_service(router, &bare), 0);
  assert_int_equal(sgrpc_reflection_new(&refl, NULL), 0);
  sgrpc_reflection_set_warn(refl, NULL, NULL);
  assert_int_equal(sgrpc_reflection_register(refl, router), 0);
  sgrpc_reflection_del(refl);
  sgrpc_router_del(router);
}


/* The router's service list and reflection's taking it in, under every
 * allocation failure: NOMEM or success, nothing leaks, and after a NOMEM
 * in the take-in the next attempt completes it. */
static void test_follow_alloc_failures(void **state) {
  long n;
  Grpc__Testing__TestService_SgrpcServer impl;
  (void)state;
  memset(&impl, 0, sizeof(impl));
  impl.empty_call = empty_call;
  for (n = 1; n < 10000; n++) {
    failmem fm;
    sgrpc_mem mem;
    sgrpc_reflection *r = NULL;
    sgrpc_router *router = NULL;
    int rv;
    failmem_init(&fm, &mem);
    fm.fail_at = n;
    rv = sgrpc_router_new(&router, &mem);
    if (rv == 0) rv = grpc__testing__test_service__sgrpc_register(router, &impl, NULL);
    if (rv == 0) rv = sgrpc_router_add_service(router, sgrpc_health_service());
    if (rv == 0) rv = sgrpc_reflection_new(&r, &mem);
    if (rv == 0) {
      sgrpc_reflection_set_warn(r, NULL, NULL);
      rv = sgrpc_reflection_register(r, router);
    }
    assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
    assert_true(rv == 0 || fm.failures == 1);
    if (rv == 0) assert_int_equal(sgrpc_router_service_count(router), 4);
    sgrpc_reflection_del(r);
    sgrpc_router_del(router);
    assert_int_equal(fm.live, 0);
    if (!fm.failures) break;
  }
  assert_true(n > 10 && n < 10000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_v1alpha),
      cmocka_unit_test(test_v1),
      cmocka_unit_test(test_pushback),
      cmocka_unit_test(test_backlog_bound),
      cmocka_unit_test(test_backlog_alloc_failures),
      cmocka_unit_test(test_extensions),
      cmocka_unit_test(test_add_errors),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_damaged_descriptors),
      cmocka_unit_test(test_follows_router),
      cmocka_unit_test(test_warnings),
      cmocka_unit_test(test_warnings_silenced),
      cmocka_unit_test(test_follow_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
