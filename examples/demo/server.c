/*
 * sgrpc-demo-server: the demo.Demo service (demo.proto) on the net
 * layer, over the epoll, libuv or kqueue loop (demo_loop.h). The
 * per-method glue is written by hand (routing on :path); messages are
 * packed and unpacked with protobuf-c.
 *
 *   sgrpc-demo-server --listen 127.0.0.1:PORT   (or [::1]:PORT, unix:/path)
 *                     [--loop epoll|libuv|kqueue] [--no-health-reflection]
 *
 * Also serves grpc.health.v1.Health and server reflection (grpcurl,
 * grpc_health_probe) unless --no-health-reflection.
 *
 * SIGINT/SIGTERM: the first shuts down gracefully (GOAWAY, in-flight calls
 * finish), the second exits at once. Logs one line per finished call on
 * stderr (the interop tests read it).
 */
#define _GNU_SOURCE
#include <sgrpc/tls_openssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/health.h>
#include <sgrpc/net_rpc.h>
#include <sgrpc/reflection.h>

#include "demo.pb-c.h"
#include "demo.sgrpc.h"
#include "demo_loop.h"

enum { M_SAY, M_COUNT, M_SUM, M_CHAT, M_SLEEP, M_FAIL, M_COUNT_ };
static const char *const method_paths[M_COUNT_] = {
    "/demo.Demo/Say",   "/demo.Demo/Count", "/demo.Demo/Sum",
    "/demo.Demo/Chat",  "/demo.Demo/Sleep", "/demo.Demo/Fail",
};
static const char *const method_names[M_COUNT_] = {"Say",  "Count", "Sum",
                                                   "Chat", "Sleep", "Fail"};

/* A packed message waiting for room in the call's send buffer. */
typedef struct out_msg {
  struct out_msg *next;
  size_t len;
  uint8_t data[];
} out_msg;

/* Per-call state, the engine call's user_data. */
typedef struct scall {
  int method;
  sgrpc_call *call;
  out_msg *head, *tail; /* messages not yet accepted by sgrpc_call_send */
  int status_wanted;    /* send the status once the queue is empty */
  int status_code;
  char status_msg[700];
  sgrpc_md *echo; /* x-echo-* request metadata, copied */
  size_t echo_count;
  int64_t sum;
  int32_t count;
  int got_request; /* unary: the request message arrived */
  int32_t sleep_ms;
  sgrpc_net_timer *timer;
  uint32_t count_next, count_n; /* Count: next index to produce, total */
  char *count_prefix;
  /* Say: what compression did (reported in trailing metadata) */
  int request_compressed;
  char response_encoding[16];
} scall;

static int verbose = 1;
static demo_loop loop;

static void scall_pump(scall *sc);

/* Packs m and queues it; nothing is lost when the send buffer is full. */
static void reply(scall *sc, const ProtobufCMessage *m) {
  size_t len = protobuf_c_message_get_packed_size(m);
  out_msg *o = malloc(sizeof(*o) + (len ? len : 1));
  if (!o) {
    sgrpc_call_cancel(sc->call);
    return;
  }
  o->next = NULL;
  o->len = protobuf_c_message_pack(m, o->data);
  if (sc->tail) sc->tail->next = o;
  else sc->head = o;
  sc->tail = o;
  scall_pump(sc);
}

static void finish(scall *sc, int code, const char *msg) {
  sc->status_wanted = 1;
  sc->status_code = code;
  snprintf(sc->status_msg, sizeof(sc->status_msg), "%s", msg ? msg : "");
  scall_pump(sc);
}

/* Joins a and b into a new string (NULL when out of memory). */
static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 1);
  if (!s) return NULL;
  memcpy(s, a, la);
  memcpy(s + la, b, lb + 1);
  return s;
}

static void reply_text(scall *sc, const char *text) {
  Demo__Reply r = DEMO__REPLY__INIT;
  r.text = (char *)text;
  reply(sc, &r.base);
}

/* Produces Count replies while the send buffer takes them. */
static void count_produce(scall *sc) {
  while (sc->count_next < sc->count_n && !sc->head) {
    char num[16];
    char *text;
    snprintf(num, sizeof(num), " %u", sc->count_next + 1);
    text = join(sc->count_prefix, num);
    sc->count_next++;
    if (!text) {
      sgrpc_call_cancel(sc->call);
      return;
    }
    reply_text(sc, text);
    free(text);
  }
  if (sc->count_next == sc->count_n && sc->count_n && !sc->status_wanted)
    finish(sc, SGRPC_STATUS_OK, NULL);
}

/* Sends queued messages, then the status, as far as the buffer allows. */
static void scall_pump(scall *sc) {
  while (sc->head) {
    out_msg *o = sc->head;
    int rv = sgrpc_call_send(sc->call, o->data, o->len, 0);
    if (rv == SGRPC_ERR_WOULDBLOCK) return; /* resumed by SGRPC_EV_WRITABLE */
    sc->head = o->next;
    if (!sc->head) sc->tail = NULL;
    free(o);
    if (rv != 0) return; /* the call ended; its CLOSE will come */
  }
  if (sc->status_wanted == 1) {
    sgrpc_status st;
    memset(&st, 0, sizeof(st));
    st.code = sc->status_code;
    st.message = sc->status_msg[0] ? sc->status_msg : NULL;
    sgrpc_md md[66];
    size_t n = 0;
    if (sc->method == M_SAY) {
      /* echoed metadata, then what compression did on this call */
      for (; n < sc->echo_count && n < 64; n++) md[n] = sc->echo[n];
      md[n].key = "x-request-compressed";
      md[n].key_len = 20;
      md[n].value = (const uint8_t *)(sc->request_compressed ? "1" : "0");
      md[n++].value_len = 1;
      md[n].key = "x-response-encoding";
      md[n].key_len = 19;
      md[n].value = (const uint8_t *)sc->response_encoding;
      md[n++].value_len = strlen(sc->response_encoding);
      st.md = md;
      st.md_count = n;
    }
    sc->status_wanted = 2;
    sgrpc_call_send_status(sc->call, &st);
  }
}

static void scall_free(scall *sc) {
  size_t i;
  while (sc->head) {
    out_msg *o = sc->head;
    sc->head = o->next;
    free(o);
  }
  for (i = 0; i < sc->echo_count; i++) {
    free((void *)sc->echo[i].key);
    free((void *)sc->echo[i].value);
  }
  free(sc->echo);
  free(sc->count_prefix);
  sgrpc_net_timer_cancel(sc->timer);
  free(sc);
}

static void sleep_done(sgrpc_net_loop *l, void *ud, int64_t now) {
  scall *sc = ud;
  (void)l;
  (void)now;
  char text[64];
  sc->timer = NULL;
  snprintf(text, sizeof(text), "slept %d", sc->sleep_ms);
  reply_text(sc, text);
  finish(sc, SGRPC_STATUS_OK, NULL);
}

static void copy_echo_md(scall *sc, const sgrpc_md *md, size_t n) {
  size_t i;
  sc->echo = calloc(n ? n : 1, sizeof(*sc->echo));
  if (!sc->echo) return;
  for (i = 0; i < n; i++) {
    char *k, *v;
    if (md[i].key_len < 7 || memcmp(md[i].key, "x-echo-", 7) != 0) continue;
    k = strndup(md[i].key, md[i].key_len);
    v = malloc(md[i].value_len ? md[i].value_len : 1);
    if (!k || !v) {
      free(k);
      free(v);
      continue;
    }
    memcpy(v, md[i].value, md[i].value_len);
    sc->echo[sc->echo_count].key = k;
    sc->echo[sc->echo_count].key_len = md[i].key_len;
    sc->echo[sc->echo_count].value = (const uint8_t *)v;
    sc->echo[sc->echo_count].value_len = md[i].value_len;
    sc->echo_count++;
  }
}

static void on_call_new(const sgrpc_event *ev) {
  int m;
  scall *sc;
  for (m = 0; m < M_COUNT_; m++)
    if (strlen(method_paths[m]) == ev->u.call_new.path_len &&
        memcmp(method_paths[m], ev->u.call_new.path, ev->u.call_new.path_len) == 0)
      break;
  if (m == M_COUNT_) {
    sgrpc_status st;
    char msg[300];
    snprintf(msg, sizeof(msg), "unknown method %.*s", (int)ev->u.call_new.path_len,
             ev->u.call_new.path);
    memset(&st, 0, sizeof(st));
    st.code = SGRPC_STATUS_UNIMPLEMENTED;
    st.message = msg;
    sgrpc_call_send_status(ev->call, &st);
    if (verbose) fprintf(stderr, "demo-server: %s -> UNIMPLEMENTED\n", msg);
    return;
  }
  sc = calloc(1, sizeof(*sc));
  if (!sc) {
    sgrpc_call_cancel(ev->call);
    return;
  }
  sc->method = m;
  sc->call = ev->call;
  sgrpc_call_set_user_data(ev->call, sc);
  if (m == M_SAY) {
    size_t i;
    snprintf(sc->response_encoding, sizeof(sc->response_encoding), "identity");
    /* x-compress-response: NAME asks for a compressed reply; it only works
     * when the client listed NAME in grpc-accept-encoding. */
    for (i = 0; i < ev->u.call_new.md_count; i++) {
      const sgrpc_md *e = &ev->u.call_new.md[i];
      char name[16];
      if (e->key_len != 19 || memcmp(e->key, "x-compress-response", 19) != 0) continue;
      if (e->value_len >= sizeof(name)) continue;
      memcpy(name, e->value, e->value_len);
      name[e->value_len] = 0;
      if (sgrpc_call_set_encoding(ev->call, name) == 0)
        snprintf(sc->response_encoding, sizeof(sc->response_encoding), "%s", name);
    }
    copy_echo_md(sc, ev->u.call_new.md, ev->u.call_new.md_count);
    /* Initial metadata at once, so the echo is seen before any message. */
    sgrpc_call_send_headers(ev->call, sc->echo, sc->echo_count);
  }
}

static void on_message(scall *sc, const uint8_t *data, size_t len) {
  switch (sc->method) {
  case M_SAY:
  case M_SLEEP:
  case M_FAIL: {
    Demo__Hello *h = demo__hello__unpack(NULL, len, data);
    char *text;
    if (!h || sc->got_request) {
      if (h) demo__hello__free_unpacked(h, NULL);
      finish(sc, SGRPC_STATUS_INVALID_ARGUMENT, "expected exactly one Hello");
      return;
    }
    sc->got_request = 1;
    if (sc->method == M_SAY) {
      text = join("hello ", h->name);
      if (text) reply_text(sc, text);
      else sgrpc_call_cancel(sc->call);
      free(text);
    } else if (sc->method == M_FAIL) {
      char msg[600];
      snprintf(msg, sizeof(msg), "demo failure for %.400s: na\xc3\xafve caf\xc3\xa9 \xe2\x9c\x93",
               h->name);
      finish(sc, SGRPC_STATUS_INVALID_ARGUMENT, msg);
    } else {
      sc->sleep_ms = h->sleep_ms;
      sgrpc_net_timer_start(loop.a->net(loop.x), loop.a->now() + (int64_t)h->sleep_ms * 1000000,
                            sleep_done, sc, &sc->timer);
    }
    demo__hello__free_unpacked(h, NULL);
    break;
  }
  case M_COUNT: {
    Demo__CountReq *r = demo__count_req__unpack(NULL, len, data);
    if (!r || sc->got_request || r->n < 0) {
      if (r) demo__count_req__free_unpacked(r, NULL);
      finish(sc, SGRPC_STATUS_INVALID_ARGUMENT, "expected one CountReq with n >= 0");
      return;
    }
    sc->got_request = 1;
    sc->count_n = (uint32_t)r->n;
    sc->count_prefix = strdup(r->prefix);
    demo__count_req__free_unpacked(r, NULL);
    if (!sc->count_prefix) {
      sgrpc_call_cancel(sc->call);
      return;
    }
    if (sc->count_n == 0) finish(sc, SGRPC_STATUS_OK, NULL);
    else count_produce(sc);
    break;
  }
  case M_SUM: {
    Demo__Num *n = demo__num__unpack(NULL, len, data);
    if (!n) {
      finish(sc, SGRPC_STATUS_INVALID_ARGUMENT, "bad Num");
      return;
    }
    sc->sum += n->value;
    sc->count++;
    demo__num__free_unpacked(n, NULL);
    break;
  }
  case M_CHAT: {
    Demo__Hello *h = demo__hello__unpack(NULL, len, data);
    char *text;
    if (!h) {
      finish(sc, SGRPC_STATUS_INVALID_ARGUMENT, "bad Hello");
      return;
    }
    text = join("echo: ", h->name);
    demo__hello__free_unpacked(h, NULL);
    if (text) reply_text(sc, text);
    else sgrpc_call_cancel(sc->call);
    free(text);
    break;
  }
  default:
    break;
  }
}

static void on_half_close(scall *sc) {
  if (sc->status_wanted) return;
  switch (sc->method) {
  case M_SAY:
    if (!sc->got_request) finish(sc, SGRPC_STATUS_INVALID_ARGUMENT, "missing request");
    else finish(sc, SGRPC_STATUS_OK, NULL);
    break;
  case M_SUM: {
    Demo__Total t = DEMO__TOTAL__INIT;
    t.sum = sc->sum;
    t.count = sc->count;
    reply(sc, &t.base);
    finish(sc, SGRPC_STATUS_OK, NULL);
    break;
  }
  case M_CHAT:
    finish(sc, SGRPC_STATUS_OK, NULL);
    break;
  default: /* Count, Sleep, Fail answer on their own schedule */
    if (!sc->got_request) finish(sc, SGRPC_STATUS_INVALID_ARGUMENT, "missing request");
    break;
  }
}


/* ---- health and server reflection (off with --no-health-reflection) ----
 * The service itself is routed by hand (above); the two standard services
 * sit on an rpc router of their own, which takes the calls whose path it
 * knows. Reflection describes the router's services and the Demo service (its generated description). */
static sgrpc_router *std_router;
static sgrpc_health *std_health;
static sgrpc_reflection *std_refl;

static int std_services_new(void) {
  if (sgrpc_router_new(&std_router, NULL) != 0 || sgrpc_health_new(&std_health, NULL) != 0 ||
      sgrpc_health_set(std_health, "demo.Demo", SGRPC_HEALTH_SERVING) != 0 ||
      sgrpc_health_register(std_health, std_router) != 0 ||
      sgrpc_reflection_new(&std_refl, NULL) != 0 ||
      sgrpc_reflection_add_service(std_refl, &demo__demo__sgrpc_service) != 0 ||
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
    if (verbose) {
      /* Under mutual TLS the handler knows who is calling. */
      sgrpc_tls_peer peer;
      if (sgrpc_net_conn_peer_cert(conn, &peer) == 0)
        fprintf(stderr, "demo-server: call from client certificate \"%s\"\n", peer.subject);
    }
    on_call_new(ev);
    break;
  case SGRPC_EV_MESSAGE:
    if (sc && ev->u.message.compressed) sc->request_compressed = 1;
    if (sc && !sc->status_wanted) on_message(sc, ev->u.message.data, ev->u.message.len);
    break;
  case SGRPC_EV_HALF_CLOSE:
    if (sc) on_half_close(sc);
    break;
  case SGRPC_EV_WRITABLE:
    if (sc) {
      scall_pump(sc);
      if (sc->method == M_COUNT) count_produce(sc);
    }
    break;
  case SGRPC_EV_CLOSE:
    if (sc) {
      if (verbose)
        fprintf(stderr, "demo-server: %s ended %s%s%s\n", method_names[sc->method],
                sgrpc_status_name(ev->u.close.status.code),
                ev->u.close.status.message_len ? ": " : "", ev->u.close.status.message);
      scall_free(sc);
    }
    break;
  default:
    break;
  }
}

static void on_signal(sgrpc_net_loop *l, int signo, int count, void *ud) {
  (void)l;
  (void)ud;
  fprintf(stderr, "demo-server: signal %d (%s)\n", signo,
          count == 1 ? "graceful shutdown" : "exiting now");
}

int main(int argc, char **argv) {
  const char *listen_addr = "127.0.0.1:50051", *loop_kind = "epoll";
  sgrpc_net_server *server;
  sgrpc_net_listen_opts lo;
  const char *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
  sgrpc_tls_openssl_ctx *tls = NULL;
  int i, rv, std_services = 1;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) listen_addr = argv[++i];
    else if (strcmp(argv[i], "--loop") == 0 && i + 1 < argc) loop_kind = argv[++i];
    else if (strncmp(argv[i], "--loop=", 7) == 0) loop_kind = argv[i] + 7;
    else if (strcmp(argv[i], "--quiet") == 0) verbose = 0;
    else if (strcmp(argv[i], "--no-health-reflection") == 0) std_services = 0;
    else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc) tls_cert = argv[++i];
    else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc) tls_key = argv[++i];
    else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc) tls_ca = argv[++i];
    else {
      fprintf(stderr,
              "usage: %s [--listen HOST:PORT|unix:/path] [--loop %s] [--quiet]\n"
              "          [--no-health-reflection]\n"
              "          [--tls-cert PEM --tls-key PEM [--tls-ca PEM (require client certs)]]\n",
              argv[0], demo_loop_kinds());
      return 2;
    }
  }
  if (tls_cert || tls_key || tls_ca) {
    sgrpc_tls_openssl_options to;
    char err[256] = "";
    sgrpc_tls_openssl_options_default(&to);
    to.is_server = 1;
    to.cert_file = tls_cert;
    to.key_file = tls_key;
    if (tls_ca) { /* mutual TLS: clients must show a certificate from this CA */
      to.ca_file = tls_ca;
      to.client_cert = SGRPC_TLS_CLIENT_CERT_REQUIRE;
    }
    rv = sgrpc_tls_openssl_ctx_new(&tls, &to, err, sizeof(err));
    if (rv != 0) {
      fprintf(stderr, "demo-server: TLS setup failed: %s\n", err[0] ? err : sgrpc_strerror(rv));
      return 1;
    }
  }
  if (std_services && std_services_new() != 0) {
    fprintf(stderr, "demo-server: cannot set up health and reflection\n");
    std_services_del();
    sgrpc_tls_openssl_ctx_del(tls);
    return 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  setvbuf(stderr, NULL, _IOLBF, 0);
  if (demo_loop_new(&loop, loop_kind) != 0) {
    fprintf(stderr, "demo-server: no loop \"%s\" in this build (have: %s)\n", loop_kind,
            demo_loop_kinds());
    sgrpc_tls_openssl_ctx_del(tls);
    std_services_del();
    return 2;
  }
  if (loop.a->catch_signals(loop.x, on_signal, NULL) != 0) return 1;
  memset(&lo, 0, sizeof(lo));
  lo.listen = listen_addr;
  lo.server.on_event = on_event;
  lo.server.drain_timeout_ns = 10LL * 1000000000;
  if (tls) {
    lo.server.make_tls = sgrpc_tls_openssl_factory;
    lo.server.tls_user_data = tls;
  }
  rv = loop.a->listen(loop.x, &lo, &server);
  if (rv != 0) {
    fprintf(stderr, "demo-server: cannot listen on %s: %s (%d)\n", listen_addr,
            sgrpc_strerror(rv), rv);
    loop.a->del(loop.x);
    sgrpc_tls_openssl_ctx_del(tls);
    std_services_del();
    return 1;
  }
  printf("demo-server: listening on %s%s (%s loop)\n", listen_addr,
         tls ? (tls_ca ? " (mutual TLS)" : " (TLS)") : "", loop.a->name);
  rv = loop.a->run(loop.x);
  loop.a->del(loop.x);
  sgrpc_tls_openssl_ctx_del(tls);
  std_services_del();
  fprintf(stderr, "demo-server: stopped\n");
  return rv == 0 ? 0 : 1;
}
