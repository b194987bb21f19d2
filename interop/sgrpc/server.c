/*
 * sgrpc-interop-server: grpc.testing.TestService for the standard gRPC
 * interop cases (doc/interop-test-descriptions.md of grpc/grpc), over the
 * epoll adapter.
 *
 *   sgrpc-interop-server --port=PORT [--use_tls=false]
 *
 * Messages and method paths come from the code protoc-gen-sgrpc and
 * protoc-c generate from Debian's grpc/testing/test.proto. The handlers
 * use the engine's call API directly rather than the rpc layer's router:
 * the interop features need what the router does not expose (the
 * per-message compressed flag for expect_compressed, per-message
 * compression for ResponseParameters.compressed, initial metadata sent
 * before any message), and the router cannot sit on the epoll adapter
 * (both release the call handle at SGRPC_EV_CLOSE).
 *
 * Server features: EmptyCall, UnaryCall, StreamingOutputCall,
 * StreamingInputCall, FullDuplexCall, HalfDuplexCall, CompressedRequest
 * (expect_compressed), CompressedResponse (response_compressed and
 * ResponseParameters.compressed), Echo Status, Echo Metadata, and
 * ResponseParameters.interval_us. Everything else (UnimplementedCall,
 * other services) ends UNIMPLEMENTED.
 *
 * --server_id=ID names this instance: UnaryCall requests with fill_server_id
 * get it back in SimpleResponse.server_id (how the load-balancing tests of
 * interop/lb tell which of several servers answered a call).
 * Also serves grpc.health.v1.Health and server reflection unless
 * --no-health-reflection.
 *
 * Prints "sgrpc-interop-server: listening on port N" on stdout once ready.
 */
#define _GNU_SOURCE
#include "common.h"

#include <sgrpc/health.h>
#include <sgrpc/net_rpc.h>
#include <sgrpc/reflection.h>

enum { M_EMPTY, M_UNARY, M_STREAM_OUT, M_STREAM_IN, M_FULL_DUPLEX, M_HALF_DUPLEX, M_COUNT_ };
static const int method_index[M_COUNT_] = {
    GRPC__TESTING__TEST_SERVICE__SGRPC_EMPTY_CALL,
    GRPC__TESTING__TEST_SERVICE__SGRPC_UNARY_CALL,
    GRPC__TESTING__TEST_SERVICE__SGRPC_STREAMING_OUTPUT_CALL,
    GRPC__TESTING__TEST_SERVICE__SGRPC_STREAMING_INPUT_CALL,
    GRPC__TESTING__TEST_SERVICE__SGRPC_FULL_DUPLEX_CALL,
    GRPC__TESTING__TEST_SERVICE__SGRPC_HALF_DUPLEX_CALL,
};

/* One response still to produce (StreamingOutputCall, FullDuplexCall). */
typedef struct spec {
  struct spec *next;
  int32_t size;
  int32_t interval_us;
  int compressed;
  int waited; /* interval_us already slept */
} spec;

/* Per-call state: the engine call's user_data. */
typedef struct scall {
  int method;
  const sgrpc_method *m;
  sgrpc_call *call;
  sgrpc_net_loop *loop;
  iop_outq out;
  spec *specs, *specs_tail;
  int hold;           /* HalfDuplexCall: answer only after half-close */
  int can_compress;   /* the response encoding is gzip (client accepts it) */
  int status_wanted;  /* 1: send status once everything is out; 2: sent */
  int status_code;
  char *status_msg;
  uint8_t *trailing;  /* echoed x-grpc-test-echo-trailing-bin, or NULL */
  size_t trailing_len;
  int has_trailing;
  int64_t aggregated;
  sgrpc_net_timer *timer;
} scall;

static int verbose;
static const char *server_id; /* --server_id, or NULL */

static void pump(scall *sc);

/* Ends the call with code/message once queued responses are out. Later
 * requests are ignored (Echo Status: "will not process any further
 * messages"). */
static void finish(scall *sc, int code, const char *msg) {
  if (sc->status_wanted) return;
  sc->status_wanted = 1;
  sc->status_code = code;
  free(sc->status_msg);
  sc->status_msg = msg ? strdup(msg) : NULL;
  pump(sc);
}

/* Drops responses not produced yet (after a failure). */
static void specs_clear(scall *sc) {
  while (sc->specs) {
    spec *s = sc->specs;
    sc->specs = s->next;
    free(s);
  }
  sc->specs_tail = NULL;
}

static void fail(scall *sc, int code, const char *msg) {
  specs_clear(sc);
  iop_outq_clear(&sc->out);
  finish(sc, code, msg);
}

/* Queues one response message whose payload is size zero bytes, sent
 * compressed only when asked (the call's encoding is gzip whenever the
 * client accepts it; SGRPC_SEND_NO_COMPRESS keeps the others plain). */
static int queue_payload_response(scall *sc, int32_t size, int compressed, int simple,
                                  int fill_server_id) {
  Grpc__Testing__Payload p = GRPC__TESTING__PAYLOAD__INIT;
  uint8_t *body = NULL;
  int rv;
  if (size < 0) return SGRPC_ERR_INVALID_ARGUMENT;
  if (size > 0) {
    body = calloc(1, (size_t)size);
    if (!body) return SGRPC_ERR_NOMEM;
  }
  p.type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
  p.body.data = body;
  p.body.len = (size_t)size;
  unsigned flags = compressed && sc->can_compress ? 0 : SGRPC_SEND_NO_COMPRESS;
  if (simple) {
    Grpc__Testing__SimpleResponse r = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
    r.payload = &p;
    /* the generated field is a plain char *; the message is only packed */
    if (fill_server_id && server_id) r.server_id = (char *)server_id;
    rv = iop_outq_push(&sc->out, &r.base, flags);
  } else {
    Grpc__Testing__StreamingOutputCallResponse r =
        GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
    r.payload = &p;
    rv = iop_outq_push(&sc->out, &r.base, flags);
  }
  free(body);
  return rv;
}

static void interval_done(sgrpc_net_loop *loop, void *ud, int64_t now) {
  scall *sc = ud;
  (void)loop;
  (void)now;
  sc->timer = NULL;
  pump(sc);
}

/* Produces due responses, sends what the engine takes, then the status.
 * interval_us is a sleep before its response, relative to the previous
 * one (timers chain, so the delays accumulate). */
static void pump(scall *sc) {
  int rv;
  if (sc->timer) return;
  while (sc->specs && !sc->hold) {
    spec *s = sc->specs;
    if (s->interval_us > 0 && !s->waited) {
      s->waited = 1;
      if (sgrpc_net_timer_start(sc->loop, sgrpc_epoll_now() + (int64_t)s->interval_us * 1000,
                                interval_done, sc, &sc->timer) == 0)
        return;
    }
    rv = queue_payload_response(sc, s->size, s->compressed, 0, 0);
    sc->specs = s->next;
    if (!sc->specs) sc->specs_tail = NULL;
    free(s);
    if (rv != 0) {
      fail(sc, rv == SGRPC_ERR_NOMEM ? SGRPC_STATUS_RESOURCE_EXHAUSTED
                                     : SGRPC_STATUS_INVALID_ARGUMENT,
           "bad response parameters");
      return;
    }
  }
  rv = iop_outq_pump(&sc->out, sc->call);
  if (rv == 1) return; /* SGRPC_EV_WRITABLE resumes */
  if (rv < 0) {
    specs_clear(sc);
    return; /* the call ended; its CLOSE cleans up */
  }
  if (sc->status_wanted == 1 && !sc->specs) {
    sgrpc_status st;
    sgrpc_md md[1];
    memset(&st, 0, sizeof(st));
    st.code = sc->status_code;
    st.message = sc->status_msg;
    if (sc->has_trailing) {
      md[0].key = IOP_ECHO_TRAILING;
      md[0].key_len = strlen(IOP_ECHO_TRAILING);
      md[0].value = sc->trailing;
      md[0].value_len = sc->trailing_len;
      st.md = md;
      st.md_count = 1;
    }
    sc->status_wanted = 2;
    specs_clear(sc);
    rv = sgrpc_call_send_status(sc->call, &st);
    if (rv != 0 && verbose)
      fprintf(stderr, "sgrpc-interop-server: send_status: %s\n", sgrpc_strerror(rv));
  }
}

static void add_specs(scall *sc, Grpc__Testing__ResponseParameters **rp, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    spec *s = calloc(1, sizeof(*s));
    if (!s) {
      fail(sc, SGRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    s->size = rp[i]->size;
    s->interval_us = rp[i]->interval_us;
    s->compressed = rp[i]->compressed && rp[i]->compressed->value;
    if (sc->specs_tail) sc->specs_tail->next = s;
    else sc->specs = s;
    sc->specs_tail = s;
  }
}

/* CompressedRequest: expect_compressed, when present, must match how the
 * message came on the wire. Returns 0 when it does. */
static int check_expect_compressed(scall *sc, const Grpc__Testing__BoolValue *expect,
                                   int compressed) {
  if (!expect) return 0;
  if (expect->value && !compressed) {
    fail(sc, SGRPC_STATUS_INVALID_ARGUMENT, "expected a compressed request");
    return -1;
  }
  if (!expect->value && compressed) {
    fail(sc, SGRPC_STATUS_INVALID_ARGUMENT, "expected an uncompressed request");
    return -1;
  }
  return 0;
}

/* The only payload type test.proto still defines is COMPRESSABLE; any
 * other value (an older client's UNCOMPRESSABLE or RANDOM) is refused, as
 * gRPC's own interop servers do. Returns 0 when the type is served. */
static int check_response_type(scall *sc, Grpc__Testing__PayloadType type) {
  char msg[64];
  if (type == GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE) return 0;
  snprintf(msg, sizeof(msg), "unsupported response_type %d", (int)type);
  fail(sc, SGRPC_STATUS_INVALID_ARGUMENT, msg);
  return -1;
}

/* Echo Status: a response_status with a nonzero code ends the call with it. */
static int echo_status(scall *sc, const Grpc__Testing__EchoStatus *es) {
  if (!es || es->code == 0) return 0;
  fail(sc, es->code, es->message);
  return 1;
}

static void on_message(scall *sc, const sgrpc_event *ev) {
  ProtobufCMessage *msg;
  if (sc->status_wanted) return;
  msg = protobuf_c_message_unpack(IOP_REQ_DESC(sc->m), NULL, ev->u.message.len,
                                  ev->u.message.data);
  if (!msg) {
    fail(sc, SGRPC_STATUS_INTERNAL, "cannot parse the request");
    return;
  }
  switch (sc->method) {
  case M_EMPTY: {
    Grpc__Testing__Empty e = GRPC__TESTING__EMPTY__INIT;
    if (iop_outq_push(&sc->out, &e.base, SGRPC_SEND_NO_COMPRESS) != 0)
      fail(sc, SGRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    else finish(sc, SGRPC_STATUS_OK, NULL);
    break;
  }
  case M_UNARY: {
    Grpc__Testing__SimpleRequest *r = (Grpc__Testing__SimpleRequest *)msg;
    int rv;
    if (check_expect_compressed(sc, r->expect_compressed, ev->u.message.compressed) != 0) break;
    if (check_response_type(sc, r->response_type) != 0) break;
    if (echo_status(sc, r->response_status)) break;
    rv = queue_payload_response(sc, r->response_size,
                                r->response_compressed && r->response_compressed->value, 1,
                                r->fill_server_id);
    if (rv != 0) fail(sc, SGRPC_STATUS_INVALID_ARGUMENT, "bad response_size");
    else finish(sc, SGRPC_STATUS_OK, NULL);
    break;
  }
  case M_STREAM_IN: {
    Grpc__Testing__StreamingInputCallRequest *r = (Grpc__Testing__StreamingInputCallRequest *)msg;
    if (check_expect_compressed(sc, r->expect_compressed, ev->u.message.compressed) != 0) break;
    if (r->payload) sc->aggregated += (int64_t)r->payload->body.len;
    break;
  }
  case M_STREAM_OUT:
  case M_FULL_DUPLEX:
  case M_HALF_DUPLEX: {
    Grpc__Testing__StreamingOutputCallRequest *r =
        (Grpc__Testing__StreamingOutputCallRequest *)msg;
    if (check_response_type(sc, r->response_type) != 0) break;
    add_specs(sc, r->response_parameters, r->n_response_parameters);
    if (sc->status_wanted) break;
    if (r->response_status && r->response_status->code != 0) {
      /* responses asked for in the same request still go out first */
      finish(sc, r->response_status->code, r->response_status->message);
      break;
    }
    if (sc->method == M_STREAM_OUT) finish(sc, SGRPC_STATUS_OK, NULL);
    else pump(sc);
    break;
  }
  default:
    break;
  }
  protobuf_c_message_free_unpacked(msg, NULL);
}

static void on_half_close(scall *sc) {
  if (sc->status_wanted) return;
  switch (sc->method) {
  case M_STREAM_IN: {
    Grpc__Testing__StreamingInputCallResponse r =
        GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
    r.aggregated_payload_size = (int32_t)sc->aggregated;
    if (iop_outq_push(&sc->out, &r.base, SGRPC_SEND_NO_COMPRESS) != 0)
      fail(sc, SGRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    else finish(sc, SGRPC_STATUS_OK, NULL);
    break;
  }
  case M_FULL_DUPLEX:
  case M_HALF_DUPLEX:
    sc->hold = 0;
    finish(sc, SGRPC_STATUS_OK, NULL);
    break;
  default: /* unary kinds answer on their request */
    fail(sc, SGRPC_STATUS_INVALID_ARGUMENT, "missing request");
    break;
  }
}

static void scall_free(scall *sc) {
  iop_outq_clear(&sc->out);
  specs_clear(sc);
  sgrpc_net_timer_cancel(sc->timer);
  free(sc->status_msg);
  free(sc->trailing);
  free(sc);
}

/* Returns nonzero when the comma-separated list has name. */
static int list_has(const char *list, const char *name) {
  size_t n = strlen(name);
  const char *p = list;
  while (p && *p) {
    const char *e;
    while (*p == ' ' || *p == ',') p++;
    e = p;
    while (*e && *e != ',' && *e != ' ') e++;
    if ((size_t)(e - p) == n && memcmp(p, name, n) == 0) return 1;
    p = e;
  }
  return 0;
}

static void on_call_new(sgrpc_net_conn *conn, const sgrpc_event *ev) {
  const sgrpc_md *md = ev->u.call_new.md, *e;
  size_t n = ev->u.call_new.md_count;
  int i, found = -1;
  scall *sc;
  for (i = 0; i < M_COUNT_ && found < 0; i++) {
    const char *p = grpc__testing__test_service__sgrpc_methods[method_index[i]].path;
    if (strlen(p) == ev->u.call_new.path_len &&
        memcmp(p, ev->u.call_new.path, ev->u.call_new.path_len) == 0)
      found = i;
  }
  if (found < 0) {
    sgrpc_status st;
    char msg[300];
    snprintf(msg, sizeof(msg), "Method not found: %.*s", (int)ev->u.call_new.path_len,
             ev->u.call_new.path);
    memset(&st, 0, sizeof(st));
    st.code = SGRPC_STATUS_UNIMPLEMENTED;
    st.message = msg;
    sgrpc_call_send_status(ev->call, &st);
    return;
  }
  sc = calloc(1, sizeof(*sc));
  if (!sc) {
    sgrpc_call_cancel(ev->call);
    return;
  }
  sc->method = found;
  sc->m = &grpc__testing__test_service__sgrpc_methods[method_index[found]];
  sc->call = ev->call;
  sc->loop = sgrpc_net_conn_loop(conn);
  sc->hold = found == M_HALF_DUPLEX;
  sgrpc_call_set_user_data(ev->call, sc);
  /* gzip whenever the client takes it; each message then says itself
   * whether it is compressed (SGRPC_SEND_NO_COMPRESS for the others). */
  if (list_has(ev->u.call_new.accept_encoding, "gzip") &&
      sgrpc_call_set_encoding(ev->call, "gzip") == 0)
    sc->can_compress = 1;
  e = iop_md_find(md, n, IOP_ECHO_TRAILING);
  if (e) {
    sc->trailing = malloc(e->value_len ? e->value_len : 1);
    if (!sc->trailing) {
      sgrpc_call_cancel(ev->call);
      return;
    }
    memcpy(sc->trailing, e->value, e->value_len);
    sc->trailing_len = e->value_len;
    sc->has_trailing = 1;
  }
  e = iop_md_find(md, n, IOP_ECHO_INITIAL);
  if (e) {
    /* Initial metadata at once, before any message (Echo Metadata). */
    sgrpc_md out = *e;
    int rv = sgrpc_call_send_headers(ev->call, &out, 1);
    if (rv != 0) fail(sc, SGRPC_STATUS_INTERNAL, "cannot echo initial metadata");
  }
}


/* ---- health and server reflection (off with --no-health-reflection) ----
 * The service itself is routed by hand (above); the two standard services
 * sit on an rpc router of their own, which takes the calls whose path it
 * knows. Reflection describes the router's services and grpc.testing.TestService (its generated description). */
static sgrpc_router *std_router;
static sgrpc_health *std_health;
static sgrpc_reflection *std_refl;

static int std_services_new(void) {
  if (sgrpc_router_new(&std_router, NULL) != 0 || sgrpc_health_new(&std_health, NULL) != 0 ||
      sgrpc_health_set(std_health, "grpc.testing.TestService", SGRPC_HEALTH_SERVING) != 0 ||
      sgrpc_health_register(std_health, std_router) != 0 ||
      sgrpc_reflection_new(&std_refl, NULL) != 0 ||
      sgrpc_reflection_add_service(std_refl, &grpc__testing__test_service__sgrpc_service) != 0 ||
      sgrpc_reflection_register(std_refl, std_router) != 0)
    return -1;
  return 0;
}

/* After the loop is gone: no call reaches them any more. */
static void std_services_del(void) {
  sgrpc_reflection_del(std_refl);
  sgrpc_health_del(std_health);
  sgrpc_router_del(std_router);
}

/* A new call for health or reflection goes to their router, which takes
 * the call over (its later events go to the router's per-call callback). */
static int std_services_take(sgrpc_net_conn *conn, const sgrpc_event *ev, int64_t now) {
  if (!std_router ||
      !sgrpc_router_find(std_router, ev->u.call_new.path, ev->u.call_new.path_len))
    return 0;
  sgrpc_net_router_event(conn, ev, std_router, now);
  return 1;
}

static void on_event(sgrpc_net_conn *conn, const sgrpc_event *ev, void *ud, int64_t now) {
  scall *sc = ev->call_user_data;
  (void)ud;
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW:
    if (std_services_take(conn, ev, now)) break;
    on_call_new(conn, ev);
    break;
  case SGRPC_EV_MESSAGE:
    if (sc) on_message(sc, ev);
    break;
  case SGRPC_EV_HALF_CLOSE:
    if (sc) on_half_close(sc);
    break;
  case SGRPC_EV_WRITABLE:
    if (sc) pump(sc);
    break;
  case SGRPC_EV_CLOSE:
    if (verbose)
      fprintf(stderr, "sgrpc-interop-server: %s ended %s %s\n",
              sc ? sc->m->path : "(unrouted)", sgrpc_status_name(ev->u.close.status.code),
              ev->u.close.status.message);
    if (sc) {
      sgrpc_call_set_user_data(ev->call, NULL);
      scall_free(sc);
    }
    break;
  default:
    break;
  }
}

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s --port=PORT [--use_tls=false] [--tls_cert_file=F --tls_key_file=F]"
          " [--host=ADDR] [--server_id=ID] [--verbose] [--no-health-reflection]\n",
          argv0);
}

int main(int argc, char **argv) {
  const char *port = NULL, *host = "127.0.0.1", *v;
  const char *cert = NULL, *key = NULL;
  int use_tls = 0, i, rv, std_services = 1;
  char listen_addr[300];
  sgrpc_epoll *loop;
  sgrpc_net_server *server;
  sgrpc_net_listen_opts opts;
  sgrpc_tls_openssl_ctx *tls = NULL;
  for (i = 1; i < argc; i++) {
    if (iop_flag(argc, argv, &i, "port", 0, &v)) port = v;
    else if (iop_flag(argc, argv, &i, "host", 0, &v)) host = v;
    else if (iop_flag(argc, argv, &i, "server_id", 0, &v)) server_id = v;
    else if (iop_flag(argc, argv, &i, "use_tls", 1, &v)) {
      use_tls = iop_bool(v);
      if (use_tls < 0) {
        fprintf(stderr, "sgrpc-interop-server: bad --use_tls value\n");
        return 2;
      }
    } else if (iop_flag(argc, argv, &i, "tls_cert_file", 0, &v)) cert = v;
    else if (iop_flag(argc, argv, &i, "tls_key_file", 0, &v)) key = v;
    else if (strcmp(argv[i], "--verbose") == 0) verbose = 1;
    else if (strcmp(argv[i], "--no-health-reflection") == 0) std_services = 0;
    else if (strncmp(argv[i], "--", 2) == 0 && strchr(argv[i], '=')) {
      /* flags of other stacks' tooling we do not use (--max_send_message_size=...) */
      fprintf(stderr, "sgrpc-interop-server: ignoring %s\n", argv[i]);
    } else {
      usage(argv[0]);
      return 2;
    }
  }
  if (!port || !*port) {
    usage(argv[0]);
    return 2;
  }
  if (use_tls) {
    /* TLS through the server's TLS factory: one OpenSSL context, one
     * session per accepted connection (ALPN h2 enforced). */
    sgrpc_tls_openssl_options to;
    char err[256] = "";
    sgrpc_tls_openssl_options_default(&to);
    to.is_server = 1;
    to.cert_file = cert ? cert : IOP_TESTDATA "/server1.pem";
    to.key_file = key ? key : IOP_TESTDATA "/server1.key";
    rv = sgrpc_tls_openssl_ctx_new(&tls, &to, err, sizeof(err));
    if (rv != 0) {
      fprintf(stderr, "sgrpc-interop-server: TLS setup failed (cert %s, key %s): %s\n",
              to.cert_file, to.key_file, err[0] ? err : sgrpc_strerror(rv));
      return 1;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  setvbuf(stderr, NULL, _IOLBF, 0);
  if (strchr(host, ':') && host[0] != '[')
    snprintf(listen_addr, sizeof(listen_addr), "[%s]:%s", host, port);
  else snprintf(listen_addr, sizeof(listen_addr), "%s:%s", host, port);
  if (std_services && std_services_new() != 0) {
    fprintf(stderr, "sgrpc-interop-server: cannot set up health and reflection\n");
    std_services_del();
    sgrpc_tls_openssl_ctx_del(tls);
    return 1;
  }
  if (sgrpc_epoll_new(&loop, NULL) != 0) return 1;
  if (sgrpc_epoll_catch_signals(loop, NULL, NULL) != 0) return 1;
  memset(&opts, 0, sizeof(opts));
  opts.listen = listen_addr;
  opts.server.on_event = on_event;
  opts.server.drain_timeout_ns = 5LL * 1000000000;
  if (tls) {
    opts.server.make_tls = sgrpc_tls_openssl_factory;
    opts.server.tls_user_data = tls;
  }
  rv = sgrpc_epoll_listen(loop, &opts, &server);
  if (rv != 0) {
    fprintf(stderr, "sgrpc-interop-server: cannot listen on %s: %s\n", listen_addr,
            sgrpc_strerror(rv));
    sgrpc_epoll_del(loop);
    sgrpc_tls_openssl_ctx_del(tls);
    std_services_del();
    return 1;
  }
  printf("sgrpc-interop-server: listening on port %d\n", sgrpc_net_server_port(server));
  rv = sgrpc_epoll_run(loop);
  sgrpc_epoll_del(loop);
  sgrpc_tls_openssl_ctx_del(tls);
  std_services_del();
  return rv == 0 ? 0 : 1;
}
