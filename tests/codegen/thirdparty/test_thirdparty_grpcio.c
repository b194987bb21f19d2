/*
 * Stubs generated from protos nobody here wrote, working against grpcio.
 *
 * grpc/health/v1/health.proto (unary Check, server-streaming Watch),
 * grpc/reflection/v1/reflection.proto (bidi ServerReflectionInfo) and
 * grpc/testing/test.proto (TestService: all four kinds) from the grpc-proto
 * package go through protoc-c and protoc-gen-sgrpc (sgrpc_generate). Then,
 * over the epoll adapter on 127.0.0.1:
 *
 *  - sgrpc_client_to_grpcio: the generated typed client functions call a
 *    grpcio server (grpcio_peer.py, stubs made from the same protos by
 *    grpc_tools.protoc at test time) and check every reply and status;
 *  - grpcio_client_to_sgrpc: grpcio's client calls an sgrpc server that
 *    implements the three services through the generated handler tables
 *    (the reflection answer carries the plugin's embedded descriptor); the
 *    peer checks the answers and exits 0 only when all were right.
 *
 * Every wait is bounded; the peer is a child process killed by its pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <sgrpc/epoll.h>
#include <sgrpc/net_rpc.h>

#include "grpc/health/v1/health.sgrpc.h"
#include "grpc/reflection/v1/reflection.sgrpc.h"
#include "grpc/testing/test.sgrpc.h"

#define SEC 1000000000LL

typedef Grpc__Health__V1__HealthCheckRequest HealthReq;
typedef Grpc__Health__V1__HealthCheckResponse HealthResp;
typedef Grpc__Reflection__V1__ServerReflectionRequest ReflReq;
typedef Grpc__Reflection__V1__ServerReflectionResponse ReflResp;
typedef Grpc__Testing__StreamingOutputCallRequest OutReq;
typedef Grpc__Testing__StreamingOutputCallResponse OutResp;

#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING

static const char *const service_names[] = {"grpc.health.v1.Health",
                                            "grpc.reflection.v1.ServerReflection",
                                            "grpc.testing.TestService"};

/* ---- the peer process ---- */

typedef struct peer {
  pid_t pid;
  int to_child;   /* its stdin */
  int from_child; /* its stdout */
} peer;

static void peer_start(peer *p, const char *mode, int port) {
  int in[2], out[2];
  char port_s[16];
  snprintf(port_s, sizeof(port_s), "%d", port);
  assert_int_equal(pipe(in), 0);
  assert_int_equal(pipe(out), 0);
  p->pid = fork();
  assert_true(p->pid >= 0);
  if (p->pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    execl("/usr/bin/python3", "python3", SGRPC_PEER_SCRIPT, mode, port_s, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  p->to_child = in[1];
  p->from_child = out[0];
  fcntl(p->from_child, F_SETFL, O_NONBLOCK);
}

/* Reads the peer's stdout until a line starts with want or limit passes.
 * Returns 1 when seen, 0 when another final word came (BIND FAILED) or
 * the peer ended or time ran out. The peer's output is echoed to stderr. */
static int peer_wait_line(peer *p, const char *want, int64_t limit_ns) {
  char buf[4096];
  size_t len = 0;
  int64_t end = sgrpc_epoll_now() + limit_ns;
  while (sgrpc_epoll_now() < end) {
    struct pollfd pfd = {p->from_child, POLLIN, 0};
    ssize_t n;
    if (poll(&pfd, 1, 100) <= 0) continue;
    n = read(p->from_child, buf + len, sizeof(buf) - 1 - len);
    if (n <= 0) return 0;
    len += (size_t)n;
    buf[len] = 0;
    if (strstr(buf, want)) return 1;
    if (strstr(buf, "FAILED")) return 0;
    if (len > sizeof(buf) / 2) len = 0;
  }
  return 0;
}

/* Lets the peer's output through to stderr (the ctest log). */
static void peer_drain(peer *p) {
  char buf[4096];
  ssize_t n;
  while ((n = read(p->from_child, buf, sizeof(buf))) > 0)
    if (write(2, buf, (size_t)n) < 0) break;
}

/* Waits (bounded) for the peer to exit; kills it after limit_ns.
 * Returns its exit status, or -1 when it had to be killed. */
static int peer_reap(peer *p, int64_t limit_ns, sgrpc_epoll *loop) {
  int64_t end = sgrpc_epoll_now() + limit_ns;
  int st, rc = -1;
  if (p->to_child >= 0) close(p->to_child);
  p->to_child = -1;
  for (;;) {
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
      rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      break;
    }
    if (sgrpc_epoll_now() >= end) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &st, 0);
      break;
    }
    peer_drain(p);
    if (loop) assert_true(sgrpc_epoll_run_once(loop, 20) >= 0);
    else poll(NULL, 0, 20);
  }
  peer_drain(p);
  close(p->from_child);
  return rc;
}

static int pick_port(int attempt) {
  return 21000 + ((int)getpid() * 13 + attempt * 577) % 11000;
}

/* ================================================================== */
/* sgrpc client -> grpcio server                                      */
/* ================================================================== */

typedef struct res {
  int closed, code, n;
  char message[128];
  int vals[8];        /* statuses / sizes of streamed replies */
  int reply_val;      /* single reply: status, size or aggregate */
  char text[128];     /* single reply: username */
  int refl_ok[3];     /* reflection: answers checked */
} res;

static void take(res *r, const sgrpc_status_info *st) {
  size_t n = st->message_len < sizeof(r->message) - 1 ? st->message_len : sizeof(r->message) - 1;
  r->closed++;
  r->code = st->code;
  memcpy(r->message, st->message ? st->message : "", n);
  r->message[n] = 0;
}

static void check_done(sgrpc_client_call *c, const sgrpc_status_info *st, const HealthResp *h,
                       void *ud) {
  res *r = ud;
  (void)c;
  take(r, st);
  if (h) r->reply_val = h->status;
}

static void watch_reply(sgrpc_client_call *c, const HealthResp *h, void *ud) {
  res *r = ud;
  (void)c;
  if (r->n < 8) r->vals[r->n] = h->status;
  r->n++;
}

static void watch_done(sgrpc_client_call *c, const sgrpc_status_info *st, const HealthResp *h,
                       void *ud) {
  (void)c, (void)h;
  take(ud, st);
}

static void refl_reply(sgrpc_client_call *c, const ReflResp *m, void *ud) {
  res *r = ud;
  size_t i;
  (void)c;
  switch (m->message_response_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE: {
    int seen = 0;
    for (i = 0; i < m->list_services_response->n_service; i++) {
      size_t k;
      for (k = 0; k < 3; k++)
        seen += strcmp(m->list_services_response->service[i]->name, service_names[k]) == 0;
    }
    r->refl_ok[0] = seen == 3 && m->list_services_response->n_service == 3 &&
                    m->original_request && strcmp(m->original_request->host, "h1") == 0;
    break;
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE: {
    /* field 1 of FileDescriptorProto: the file's name */
    static const char name[] = "grpc/health/v1/health.proto";
    const ProtobufCBinaryData *fd = m->file_descriptor_response->file_descriptor_proto;
    r->refl_ok[1] = m->file_descriptor_response->n_file_descriptor_proto == 1 &&
                    fd[0].len > sizeof(name) + 2 && fd[0].data[0] == 0x0a &&
                    fd[0].data[1] == sizeof(name) - 1 &&
                    memcmp(fd[0].data + 2, name, sizeof(name) - 1) == 0;
    break;
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE:
    r->refl_ok[2] = m->error_response->error_code == SGRPC_STATUS_NOT_FOUND;
    break;
  default:
    break;
  }
  r->n++;
}

static void refl_done(sgrpc_client_call *c, const sgrpc_status_info *st, const ReflResp *m,
                      void *ud) {
  (void)c, (void)m;
  take(ud, st);
}

static void unary_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                       const Grpc__Testing__SimpleResponse *m, void *ud) {
  res *r = ud;
  (void)c;
  take(r, st);
  if (m) {
    size_t i;
    r->reply_val = m->payload ? (int)m->payload->body.len : -1;
    for (i = 0; m->payload && i < m->payload->body.len; i++)
      if (m->payload->body.data[i] != 0x07) r->reply_val = -2;
    snprintf(r->text, sizeof(r->text), "%s", m->username);
  }
}

static void out_reply(sgrpc_client_call *c, const OutResp *m, void *ud) {
  res *r = ud;
  (void)c;
  if (r->n < 8) r->vals[r->n] = m->payload ? (int)m->payload->body.len : -1;
  r->n++;
}

static void out_done(sgrpc_client_call *c, const sgrpc_status_info *st, const OutResp *m,
                     void *ud) {
  (void)c, (void)m;
  take(ud, st);
}

static void in_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                    const Grpc__Testing__StreamingInputCallResponse *m, void *ud) {
  res *r = ud;
  (void)c;
  take(r, st);
  if (m) r->reply_val = m->aggregated_payload_size;
}

static sgrpc_rpc_opts opts_for(res *r) {
  sgrpc_rpc_opts o;
  memset(&o, 0, sizeof(o));
  o.deadline = sgrpc_epoll_now() + 20 * SEC;
  o.user_data = r;
  return o;
}

/* A StreamingOutputCallRequest asking for the given reply sizes. */
static void out_req(OutReq *q, Grpc__Testing__ResponseParameters *ps,
                    Grpc__Testing__ResponseParameters **pp, const int *sizes, size_t n) {
  size_t i;
  grpc__testing__streaming_output_call_request__init(q);
  for (i = 0; i < n; i++) {
    grpc__testing__response_parameters__init(&ps[i]);
    ps[i].size = sizes[i];
    pp[i] = &ps[i];
  }
  q->n_response_parameters = n;
  q->response_parameters = pp;
}

static void sgrpc_client_to_grpcio(void **state) {
  sgrpc_epoll *loop;
  sgrpc_net_channel *ch;
  sgrpc_net_channel_opts co;
  sgrpc_rpc_client client;
  peer p;
  char addr[64];
  int attempt, ready = 0, port = 0, closed, i;
  res r_check[3], r_watch, r_refl, r_unary, r_fail, r_out, r_in, r_bidi;
  sgrpc_rpc_opts o;
  sgrpc_client_call *call;
  (void)state;
  memset(r_check, 0, sizeof(r_check));
  memset(&r_watch, 0, sizeof(res)), memset(&r_refl, 0, sizeof(res));
  memset(&r_unary, 0, sizeof(res)), memset(&r_fail, 0, sizeof(res));
  memset(&r_out, 0, sizeof(res)), memset(&r_in, 0, sizeof(res)), memset(&r_bidi, 0, sizeof(res));

  for (attempt = 0; attempt < 5 && !ready; attempt++) {
    port = pick_port(attempt);
    peer_start(&p, "server", port);
    ready = peer_wait_line(&p, "READY", 60 * SEC);
    if (!ready) (void)peer_reap(&p, 10 * SEC, NULL);
  }
  assert_true(ready);
  assert_true(port > 0 && port < 32768);

  assert_int_equal(sgrpc_epoll_new(&loop, NULL), 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  memset(&co, 0, sizeof(co));
  co.target = addr;
  assert_int_equal(sgrpc_epoll_channel_new(loop, &co, &ch), 0);
  sgrpc_net_rpc_client_init(&client, ch, NULL);

  /* Health.Check x3 (unary) */
  {
    static const char *const svc[3] = {"", "down", "nope"};
    for (i = 0; i < 3; i++) {
      HealthReq q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
      q.service = (char *)svc[i];
      o = opts_for(&r_check[i]);
      assert_int_equal(grpc__health__v1__health__check__call(&client, &q, &o, sgrpc_epoll_now(),
                                                             check_done, NULL),
                       0);
    }
  }
  /* Health.Watch (server streaming) */
  {
    HealthReq q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    o = opts_for(&r_watch);
    assert_int_equal(grpc__health__v1__health__watch__call(&client, &q, &o, sgrpc_epoll_now(),
                                                           watch_reply, watch_done, NULL),
                     0);
  }
  /* ServerReflectionInfo (bidi): three requests, then half-close */
  {
    ReflReq q[3];
    static const char *const hosts[3] = {"h1", "h2", "h3"};
    o = opts_for(&r_refl);
    assert_int_equal(grpc__reflection__v1__server_reflection__server_reflection_info__call(
                         &client, &o, sgrpc_epoll_now(), refl_reply, refl_done, &call),
                     0);
    for (i = 0; i < 3; i++) {
      grpc__reflection__v1__server_reflection_request__init(&q[i]);
      q[i].host = (char *)hosts[i];
    }
    q[0].message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    q[0].list_services = "";
    q[1].message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    q[1].file_containing_symbol = "grpc.health.v1.Health";
    q[2].message_request_case = q[1].message_request_case;
    q[2].file_containing_symbol = "no.Such";
    for (i = 0; i < 3; i++) assert_int_equal(sgrpc_client_call_send(call, &q[i]), 0);
    assert_int_equal(sgrpc_client_call_close_send(call), 0);
  }
  /* TestService: UnaryCall (ok and failing), StreamingOutputCall,
   * StreamingInputCall, FullDuplexCall */
  {
    Grpc__Testing__SimpleRequest q = GRPC__TESTING__SIMPLE_REQUEST__INIT;
    Grpc__Testing__Payload pl = GRPC__TESTING__PAYLOAD__INIT;
    Grpc__Testing__EchoStatus es = GRPC__TESTING__ECHO_STATUS__INIT;
    pl.body.data = (uint8_t *)"hi";
    pl.body.len = 2;
    q.payload = &pl;
    q.response_size = 33;
    o = opts_for(&r_unary);
    assert_int_equal(grpc__testing__test_service__unary_call__call(&client, &q, &o,
                                                                   sgrpc_epoll_now(), unary_done,
                                                                   NULL),
                     0);
    es.code = SGRPC_STATUS_FAILED_PRECONDITION;
    es.message = "nine";
    q.response_status = &es;
    o = opts_for(&r_fail);
    assert_int_equal(grpc__testing__test_service__unary_call__call(&client, &q, &o,
                                                                   sgrpc_epoll_now(), unary_done,
                                                                   NULL),
                     0);
  }
  {
    static const int sizes[4] = {1, 10, 100, 1000};
    OutReq q;
    Grpc__Testing__ResponseParameters ps[4], *pp[4];
    out_req(&q, ps, pp, sizes, 4);
    o = opts_for(&r_out);
    assert_int_equal(grpc__testing__test_service__streaming_output_call__call(
                         &client, &q, &o, sgrpc_epoll_now(), out_reply, out_done, NULL),
                     0);
  }
  {
    static const int sizes[3] = {5, 50, 500};
    static uint8_t body[500];
    o = opts_for(&r_in);
    assert_int_equal(grpc__testing__test_service__streaming_input_call__call(
                         &client, &o, sgrpc_epoll_now(), in_done, &call),
                     0);
    for (i = 0; i < 3; i++) {
      Grpc__Testing__StreamingInputCallRequest q = GRPC__TESTING__STREAMING_INPUT_CALL_REQUEST__INIT;
      Grpc__Testing__Payload pl = GRPC__TESTING__PAYLOAD__INIT;
      pl.body.data = body;
      pl.body.len = (size_t)sizes[i];
      q.payload = &pl;
      assert_int_equal(sgrpc_client_call_send(call, &q), 0);
    }
    assert_int_equal(sgrpc_client_call_close_send(call), 0);
  }
  {
    static const int sizes[3] = {3, 30, 300};
    o = opts_for(&r_bidi);
    assert_int_equal(grpc__testing__test_service__full_duplex_call__call(
                         &client, &o, sgrpc_epoll_now(), out_reply, out_done, &call),
                     0);
    for (i = 0; i < 3; i++) {
      OutReq q;
      Grpc__Testing__ResponseParameters ps[1], *pp[1];
      out_req(&q, ps, pp, &sizes[i], 1);
      assert_int_equal(sgrpc_client_call_send(call, &q), 0);
    }
    assert_int_equal(sgrpc_client_call_close_send(call), 0);
  }

  /* run until all ten calls closed (bounded) */
  {
    int64_t end = sgrpc_epoll_now() + 30 * SEC;
    do {
      assert_true(sgrpc_epoll_run_once(loop, 20) >= 0);
      closed = r_check[0].closed + r_check[1].closed + r_check[2].closed + r_watch.closed +
               r_refl.closed + r_unary.closed + r_fail.closed + r_out.closed + r_in.closed +
               r_bidi.closed;
    } while (closed < 10 && sgrpc_epoll_now() < end);
  }
  assert_int_equal(closed, 10);

  assert_int_equal(r_check[0].code, SGRPC_STATUS_OK);
  assert_int_equal(r_check[0].reply_val, SERVING);
  assert_int_equal(r_check[1].code, SGRPC_STATUS_OK);
  assert_int_equal(r_check[1].reply_val, NOT_SERVING);
  assert_int_equal(r_check[2].code, SGRPC_STATUS_NOT_FOUND);
  assert_non_null(strstr(r_check[2].message, "nope"));

  assert_int_equal(r_watch.code, SGRPC_STATUS_OK);
  assert_int_equal(r_watch.n, 3);
  assert_int_equal(r_watch.vals[0], SERVING);
  assert_int_equal(r_watch.vals[1], NOT_SERVING);
  assert_int_equal(r_watch.vals[2], SERVING);

  assert_int_equal(r_refl.code, SGRPC_STATUS_OK);
  assert_int_equal(r_refl.n, 3);
  assert_true(r_refl.refl_ok[0] && r_refl.refl_ok[1] && r_refl.refl_ok[2]);

  assert_int_equal(r_unary.code, SGRPC_STATUS_OK);
  assert_int_equal(r_unary.reply_val, 33);
  assert_string_equal(r_unary.text, "py:hi");
  assert_int_equal(r_fail.code, SGRPC_STATUS_FAILED_PRECONDITION);
  assert_string_equal(r_fail.message, "nine");

  assert_int_equal(r_out.code, SGRPC_STATUS_OK);
  assert_int_equal(r_out.n, 4);
  assert_int_equal(r_out.vals[3], 1000);
  assert_int_equal(r_out.vals[0], 1);
  assert_int_equal(r_in.code, SGRPC_STATUS_OK);
  assert_int_equal(r_in.reply_val, 555);
  assert_int_equal(r_bidi.code, SGRPC_STATUS_OK);
  assert_int_equal(r_bidi.n, 3);
  assert_int_equal(r_bidi.vals[0], 3);
  assert_int_equal(r_bidi.vals[2], 300);

  sgrpc_epoll_del(loop);
  assert_int_equal(peer_reap(&p, 15 * SEC, NULL), 0);
}

/* ================================================================== */
/* grpcio client -> sgrpc server                                      */
/* ================================================================== */

static int served[8]; /* calls per handler */

static void s_check(sgrpc_server_call *call, const HealthReq *q, void *ud) {
  HealthResp r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  char msg[160];
  (void)ud;
  served[0]++;
  if (!strcmp(q->service, "") || !strcmp(q->service, "grpc.testing.TestService")) {
    r.status = SERVING;
  } else if (!strcmp(q->service, "down")) {
    r.status = NOT_SERVING;
  } else {
    snprintf(msg, sizeof(msg), "unknown service %.100s", q->service);
    sgrpc_server_call_fail(call, SGRPC_STATUS_NOT_FOUND, msg);
    return;
  }
  sgrpc_server_call_reply(call, &r);
}

static void s_watch(sgrpc_server_call *call, const HealthReq *q, void *ud) {
  static const int seq[3] = {SERVING, NOT_SERVING, SERVING};
  int i;
  (void)q, (void)ud;
  served[1]++;
  for (i = 0; i < 3; i++) {
    HealthResp r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = seq[i];
    sgrpc_server_call_send(call, &r);
  }
  sgrpc_server_call_finish(call, NULL);
}

static void s_reflection(sgrpc_server_call *call, const ReflReq *q, void *ud) {
  ReflResp r = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
  Grpc__Reflection__V1__ListServiceResponse ls = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
  Grpc__Reflection__V1__ServiceResponse sr[3], *srp[3];
  Grpc__Reflection__V1__FileDescriptorResponse fr =
      GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
  Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
  ProtobufCBinaryData fd;
  size_t i;
  (void)ud;
  if (!q) {
    sgrpc_server_call_finish(call, NULL);
    return;
  }
  served[2]++;
  r.valid_host = q->host;
  r.original_request = (ReflReq *)q;
  if (q->message_request_case ==
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES) {
    for (i = 0; i < 3; i++) {
      grpc__reflection__v1__service_response__init(&sr[i]);
      sr[i].name = (char *)service_names[i];
      srp[i] = &sr[i];
    }
    ls.n_service = 3;
    ls.service = srp;
    r.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    r.list_services_response = &ls;
  } else if (q->message_request_case ==
                 GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL &&
             !strcmp(q->file_containing_symbol, grpc__health__v1__health__sgrpc_service.name)) {
    /* the descriptor protoc-gen-sgrpc embedded */
    fd.data = (uint8_t *)grpc__health__v1__health__sgrpc_service.file_descriptor;
    fd.len = grpc__health__v1__health__sgrpc_service.file_descriptor_len;
    fr.n_file_descriptor_proto = 1;
    fr.file_descriptor_proto = &fd;
    r.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    r.file_descriptor_response = &fr;
  } else {
    er.error_code = SGRPC_STATUS_NOT_FOUND;
    er.error_message = "not found";
    r.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    r.error_response = &er;
  }
  sgrpc_server_call_send(call, &r);
}

static void s_unary(sgrpc_server_call *call, const Grpc__Testing__SimpleRequest *q, void *ud) {
  Grpc__Testing__SimpleResponse r = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
  Grpc__Testing__Payload pl = GRPC__TESTING__PAYLOAD__INIT;
  static uint8_t sevens[4096];
  char user[80];
  (void)ud;
  served[3]++;
  if (q->response_status && q->response_status->code) {
    sgrpc_server_call_fail(call, q->response_status->code, q->response_status->message);
    return;
  }
  if (q->response_size < 0 || (size_t)q->response_size > sizeof(sevens)) {
    sgrpc_server_call_fail(call, SGRPC_STATUS_INVALID_ARGUMENT, "response_size");
    return;
  }
  memset(sevens, 7, sizeof(sevens));
  pl.body.data = sevens;
  pl.body.len = (size_t)q->response_size;
  r.payload = &pl;
  snprintf(user, sizeof(user), "c:%.*s", q->payload ? (int)q->payload->body.len : 0,
           q->payload ? (const char *)q->payload->body.data : "");
  r.username = user;
  sgrpc_server_call_reply(call, &r);
}

static void send_sizes(sgrpc_server_call *call, const OutReq *q, uint8_t fill) {
  static uint8_t buf[4096];
  size_t i;
  memset(buf, fill, sizeof(buf));
  for (i = 0; i < q->n_response_parameters; i++) {
    OutResp r = GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
    Grpc__Testing__Payload pl = GRPC__TESTING__PAYLOAD__INIT;
    int32_t n = q->response_parameters[i]->size;
    pl.body.data = buf;
    pl.body.len = n < 0 ? 0 : (size_t)n > sizeof(buf) ? sizeof(buf) : (size_t)n;
    r.payload = &pl;
    sgrpc_server_call_send(call, &r);
  }
}

static void s_stream_out(sgrpc_server_call *call, const OutReq *q, void *ud) {
  (void)ud;
  served[4]++;
  send_sizes(call, q, 's');
  sgrpc_server_call_finish(call, NULL);
}

/* the running total lives in the call's user data slot */
static void s_stream_in(sgrpc_server_call *call, const Grpc__Testing__StreamingInputCallRequest *q,
                        void *ud) {
  uintptr_t total = (uintptr_t)sgrpc_server_call_get_user_data(call);
  (void)ud;
  if (q) {
    total += q->payload ? q->payload->body.len : 0;
    sgrpc_server_call_set_user_data(call, (void *)total);
  } else {
    Grpc__Testing__StreamingInputCallResponse r =
        GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
    served[5]++;
    r.aggregated_payload_size = (int32_t)total;
    sgrpc_server_call_reply(call, &r);
  }
}

static void s_duplex(sgrpc_server_call *call, const OutReq *q, void *ud) {
  (void)ud;
  if (!q) {
    served[6]++;
    sgrpc_server_call_finish(call, NULL);
    return;
  }
  send_sizes(call, q, 'd');
}

static void grpcio_client_to_sgrpc(void **state) {
  sgrpc_epoll *loop;
  sgrpc_net_server *srv = NULL;
  sgrpc_net_listen_opts so;
  sgrpc_router *router;
  Grpc__Health__V1__Health_SgrpcServer health;
  Grpc__Reflection__V1__ServerReflection_SgrpcServer refl;
  Grpc__Testing__TestService_SgrpcServer test;
  char addr[64];
  int attempt, rv = -1;
  peer p;
  (void)state;
  memset(served, 0, sizeof(served));
  assert_int_equal(sgrpc_epoll_new(&loop, NULL), 0);
  assert_int_equal(sgrpc_router_new(&router, NULL), 0);
  memset(&health, 0, sizeof(health));
  health.check = s_check;
  health.watch = s_watch;
  memset(&refl, 0, sizeof(refl));
  refl.server_reflection_info = s_reflection;
  memset(&test, 0, sizeof(test)); /* EmptyCall and the rest stay UNIMPLEMENTED */
  test.unary_call = s_unary;
  test.streaming_output_call = s_stream_out;
  test.streaming_input_call = s_stream_in;
  test.full_duplex_call = s_duplex;
  assert_int_equal(grpc__health__v1__health__sgrpc_register(router, &health, NULL), 0);
  assert_int_equal(grpc__reflection__v1__server_reflection__sgrpc_register(router, &refl, NULL), 0);
  assert_int_equal(grpc__testing__test_service__sgrpc_register(router, &test, NULL), 0);

  memset(&so, 0, sizeof(so));
  so.server.on_event = sgrpc_net_router_event;
  so.server.user_data = router;
  so.server.drain_timeout_ns = 5 * SEC;
  for (attempt = 0; attempt < 20; attempt++) {
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", pick_port(attempt + 7));
    so.listen = addr;
    rv = sgrpc_epoll_listen(loop, &so, &srv);
    if (rv == 0 || rv != SGRPC_ERR_SYSTEM(EADDRINUSE)) break;
  }
  assert_int_equal(rv, 0);
  assert_true(sgrpc_net_server_port(srv) < 32768);

  peer_start(&p, "client", sgrpc_net_server_port(srv));
  /* the loop serves while the peer runs its calls; bounded */
  assert_int_equal(peer_reap(&p, 90 * SEC, loop), 0);

  assert_int_equal(served[0], 3); /* Check: "", "down", "nope" */
  assert_int_equal(served[1], 1); /* Watch */
  assert_int_equal(served[2], 3); /* reflection requests */
  assert_int_equal(served[3], 2); /* UnaryCall ok + failing */
  assert_int_equal(served[4], 1);
  assert_int_equal(served[5], 1);
  assert_int_equal(served[6], 1);

  sgrpc_epoll_del(loop);
  sgrpc_router_del(router);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sgrpc_client_to_grpcio),
      cmocka_unit_test(grpcio_client_to_sgrpc),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
