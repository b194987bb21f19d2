/*
 * sgrpc-demo-client: calls every method of demo.Demo (demo.proto) once,
 * one after the other, prints what happened and exits 0 only when every
 * check passed.
 *
 *   sgrpc-demo-client --target 127.0.0.1:PORT   (or [::1]:PORT, unix:/path)
 *                     [--loop epoll|libuv|kqueue]
 *
 * Checks: the four RPC kinds, metadata echo, a deadline (Sleep with a
 * 300 ms deadline must end DEADLINE_EXCEEDED), an unknown method
 * (UNIMPLEMENTED), and a failing call whose status message is non-ASCII.
 */
#define _GNU_SOURCE
#include <sgrpc/tls_openssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.pb-c.h"
#include "demo_loop.h"

#define FAIL_TEXT "demo failure for sgrpc: na\xc3\xafve caf\xc3\xa9 \xe2\x9c\x93"

typedef struct check {
  const char *name;
  void (*start)(struct check *ck);
  /* filled while the call runs */
  sgrpc_call *call;
  int status;
  char message[512];
  char got[1024];  /* replies, joined with ", " */
  int replies;
  int echo_headers, echo_trailers;
  int64_t sum;
  int32_t count;
  int done;
  const char *encoding;   /* request compression, NULL for none */
  int compressed_replies; /* replies that came compressed on the wire */
} check;

static demo_loop loop;
static sgrpc_net_channel *channel;
static int failures;
static size_t current;
static int64_t call_timeout_ns = 10LL * 1000000000;

static void next_check(void);

static void append(check *ck, const char *s) {
  size_t n = strlen(ck->got);
  snprintf(ck->got + n, sizeof(ck->got) - n, "%s%s", n ? ", " : "", s);
}

static int md_has(const sgrpc_md *md, size_t n, const char *k, const char *v) {
  size_t i;
  for (i = 0; i < n; i++)
    if (md[i].key_len == strlen(k) && memcmp(md[i].key, k, md[i].key_len) == 0 &&
        md[i].value_len == strlen(v) && memcmp(md[i].value, v, md[i].value_len) == 0)
      return 1;
  return 0;
}

static void report(check *ck, int ok, const char *what) {
  printf("%-14s %s -> %s\n", ck->name, what, ok ? "OK" : "FAILED");
  if (!ok) {
    failures++;
    printf("    status %s \"%s\", replies [%s]\n", sgrpc_status_name(ck->status), ck->message,
           ck->got);
  }
}

/* Judges a finished call. */
static void judge(check *ck) {
  char what[1200];
  int ok = 0;
  if (strcmp(ck->name, "Say") == 0) {
    ok = ck->status == 0 && strcmp(ck->got, "hello world") == 0 && ck->echo_headers &&
         ck->echo_trailers;
    snprintf(what, sizeof(what), "\"world\" + x-echo-demo: [%s] (metadata echoed: %s)", ck->got,
             ck->echo_headers && ck->echo_trailers ? "yes" : "no");
  } else if (strcmp(ck->name, "Count") == 0) {
    ok = ck->status == 0 && strcmp(ck->got, "n 1, n 2, n 3, n 4, n 5") == 0;
    snprintf(what, sizeof(what), "n=5: [%s]", ck->got);
  } else if (strcmp(ck->name, "Sum") == 0) {
    ok = ck->status == 0 && ck->sum == 55 && ck->count == 10 && ck->replies == 1;
    snprintf(what, sizeof(what), "1..10: sum %lld of %d numbers", (long long)ck->sum, ck->count);
  } else if (strcmp(ck->name, "Chat") == 0) {
    ok = ck->status == 0 && strcmp(ck->got, "echo: ann, echo: bob, echo: cy") == 0;
    snprintf(what, sizeof(what), "ann, bob, cy: [%s]", ck->got);
  } else if (strcmp(ck->name, "Deadline") == 0) {
    ok = ck->status == SGRPC_STATUS_DEADLINE_EXCEEDED && ck->replies == 0;
    snprintf(what, sizeof(what), "Sleep 5 s with a 300 ms deadline: %s",
             sgrpc_status_name(ck->status));
  } else if (strcmp(ck->name, "Unimplemented") == 0) {
    ok = ck->status == SGRPC_STATUS_UNIMPLEMENTED;
    snprintf(what, sizeof(what), "/demo.Demo/NoSuchMethod: %s", sgrpc_status_name(ck->status));
  } else if (strcmp(ck->name, "Compression") == 0) {
    ok = ck->status == 0 && ck->replies == 1 && ck->compressed_replies == 1 &&
         strncmp(ck->got, "hello zzzz", 10) == 0;
    snprintf(what, sizeof(what), "gzip request, reply %s",
             ck->compressed_replies ? "compressed (gzip)" : "NOT compressed");
  } else if (strcmp(ck->name, "Error") == 0) {
    ok = ck->status == SGRPC_STATUS_INVALID_ARGUMENT && strcmp(ck->message, FAIL_TEXT) == 0;
    snprintf(what, sizeof(what), "Fail: %s \"%s\"", sgrpc_status_name(ck->status), ck->message);
  }
  report(ck, ok, what);
}

static void on_call_event(const sgrpc_event *ev, void *ud, int64_t now) {
  check *ck = ud;
  (void)now;
  switch (ev->type) {
  case SGRPC_EV_HEADERS:
    if (md_has(ev->u.headers.md, ev->u.headers.md_count, "x-echo-demo", "yes"))
      ck->echo_headers = 1;
    break;
  case SGRPC_EV_MESSAGE:
    ck->replies++;
    if (ev->u.message.compressed) ck->compressed_replies++;
    if (strcmp(ck->name, "Sum") == 0) {
      Demo__Total *t = demo__total__unpack(NULL, ev->u.message.len, ev->u.message.data);
      if (t) {
        ck->sum = t->sum;
        ck->count = t->count;
        demo__total__free_unpacked(t, NULL);
      }
    } else {
      Demo__Reply *r = demo__reply__unpack(NULL, ev->u.message.len, ev->u.message.data);
      append(ck, r ? r->text : "<undecodable>");
      if (r) demo__reply__free_unpacked(r, NULL);
    }
    break;
  case SGRPC_EV_CLOSE:
    ck->status = ev->u.close.status.code;
    snprintf(ck->message, sizeof(ck->message), "%s", ev->u.close.status.message);
    if (md_has(ev->u.close.status.md, ev->u.close.status.md_count, "x-echo-demo", "yes"))
      ck->echo_trailers = 1;
    ck->done = 1;
    judge(ck);
    next_check();
    break;
  default:
    break;
  }
}

/* Starts a call on path; returns 0 or reports the failure. */
static int start(check *ck, const char *path, int64_t timeout_ns, const sgrpc_md *md,
                 size_t md_count) {
  sgrpc_call_opts o;
  int rv;
  memset(&o, 0, sizeof(o));
  o.path = path;
  o.deadline = loop.a->now() + timeout_ns;
  o.md = md;
  o.md_count = md_count;
  o.user_data = ck;
  o.encoding = ck->encoding;
  o.on_event = on_call_event;
  rv = sgrpc_net_channel_call(channel, &o, loop.a->now(), &ck->call);
  if (rv != 0) {
    ck->status = -1;
    snprintf(ck->message, sizeof(ck->message), "call start failed: %s", sgrpc_strerror(rv));
    report(ck, 0, "start");
  }
  return rv;
}

static void send_msg(check *ck, const ProtobufCMessage *m, unsigned flags) {
  uint8_t buf[512];
  size_t len = protobuf_c_message_get_packed_size(m);
  int rv;
  if (len > sizeof(buf)) abort();
  protobuf_c_message_pack(m, buf);
  /* The demo's messages are tiny: the send buffer always has room. */
  rv = sgrpc_call_send(ck->call, buf, len, flags);
  if (rv != 0) fprintf(stderr, "demo-client: send: %s\n", sgrpc_strerror(rv));
}

static void hello(check *ck, const char *name, int32_t sleep_ms, unsigned flags) {
  Demo__Hello h = DEMO__HELLO__INIT;
  h.name = (char *)name;
  h.sleep_ms = sleep_ms;
  send_msg(ck, &h.base, flags);
}

static void start_say(check *ck) {
  static const sgrpc_md md[] = {SGRPC_MD_STR("x-echo-demo", "yes"),
                                SGRPC_MD_STR("x-not-echoed", "no")};
  if (start(ck, "/demo.Demo/Say", call_timeout_ns, md, 2) == 0)
    hello(ck, "world", 0, SGRPC_SEND_END);
}

static void start_count(check *ck) {
  Demo__CountReq r = DEMO__COUNT_REQ__INIT;
  r.n = 5;
  r.prefix = "n";
  if (start(ck, "/demo.Demo/Count", call_timeout_ns, NULL, 0) == 0)
    send_msg(ck, &r.base, SGRPC_SEND_END);
}

static void start_sum(check *ck) {
  int i;
  if (start(ck, "/demo.Demo/Sum", call_timeout_ns, NULL, 0) != 0) return;
  for (i = 1; i <= 10; i++) {
    Demo__Num n = DEMO__NUM__INIT;
    n.value = i;
    send_msg(ck, &n.base, i == 10 ? SGRPC_SEND_END : 0);
  }
}

static void start_chat(check *ck) {
  if (start(ck, "/demo.Demo/Chat", call_timeout_ns, NULL, 0) != 0) return;
  hello(ck, "ann", 0, 0);
  hello(ck, "bob", 0, 0);
  hello(ck, "cy", 0, SGRPC_SEND_END);
}

static void start_deadline(check *ck) {
  if (start(ck, "/demo.Demo/Sleep", 300LL * 1000000, NULL, 0) == 0)
    hello(ck, "sleepy", 5000, SGRPC_SEND_END);
}

static void start_unimplemented(check *ck) {
  if (start(ck, "/demo.Demo/NoSuchMethod", call_timeout_ns, NULL, 0) == 0)
    hello(ck, "nobody", 0, SGRPC_SEND_END);
}

static void start_error(check *ck) {
  if (start(ck, "/demo.Demo/Fail", call_timeout_ns, NULL, 0) == 0)
    hello(ck, "sgrpc", 0, SGRPC_SEND_END);
}

/* Compresses the request with gzip and asks the server to compress the
 * reply: both stacks must inflate what the other deflated. */
static void start_compression(check *ck) {
  static const sgrpc_md md[] = {SGRPC_MD_STR("x-compress-response", "gzip")};
  static char name[301];
  memset(name, 'z', sizeof(name) - 1);
  ck->encoding = "gzip";
  if (start(ck, "/demo.Demo/Say", call_timeout_ns, md, 1) == 0)
    hello(ck, name, 0, SGRPC_SEND_END);
}

static check checks[] = {
    {.name = "Say", .start = start_say},
    {.name = "Count", .start = start_count},
    {.name = "Sum", .start = start_sum},
    {.name = "Chat", .start = start_chat},
    {.name = "Deadline", .start = start_deadline},
    {.name = "Unimplemented", .start = start_unimplemented},
    {.name = "Error", .start = start_error},
    {.name = "Compression", .start = start_compression},
};
static const size_t ncheck = sizeof(checks) / sizeof(checks[0]);

/* Starts the next check, or ends the run after the last one. A check
 * whose start fails counts as failed and the run goes on. */
static void next_check(void) {
  while (current < ncheck) {
    check *ck = &checks[current++];
    ck->start(ck);
    if (ck->status != -1) return;
  }
  loop.a->stop(loop.x);
}

static void on_overall_timeout(sgrpc_net_loop *l, void *ud, int64_t now) {
  (void)l;
  (void)ud;
  (void)now;
  printf("demo-client: gave up waiting (check %zu of %zu running)\n", current, ncheck);
  failures++;
  loop.a->stop(loop.x);
}

int main(int argc, char **argv) {
  const char *target = "127.0.0.1:50051", *loop_kind = "epoll";
  sgrpc_net_channel_opts co;
  const char *tls_ca = NULL, *tls_override = NULL, *tls_cert = NULL, *tls_key = NULL;
  sgrpc_tls_openssl_ctx *tls = NULL;
  size_t i, done = 0;
  int rv;
  for (i = 1; i < (size_t)argc; i++) {
    if (strcmp(argv[i], "--target") == 0 && i + 1 < (size_t)argc) target = argv[++i];
    else if (strcmp(argv[i], "--loop") == 0 && i + 1 < (size_t)argc) loop_kind = argv[++i];
    else if (strncmp(argv[i], "--loop=", 7) == 0) loop_kind = argv[i] + 7;
    else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < (size_t)argc) tls_ca = argv[++i];
    else if (strcmp(argv[i], "--tls-override") == 0 && i + 1 < (size_t)argc)
      tls_override = argv[++i];
    else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < (size_t)argc) tls_cert = argv[++i];
    else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < (size_t)argc) tls_key = argv[++i];
    else {
      fprintf(stderr,
              "usage: %s [--target HOST:PORT|unix:/path] [--loop %s]\n"
              "          [--tls-ca PEM [--tls-override NAME] [--tls-cert PEM --tls-key PEM]]\n",
              argv[0], demo_loop_kinds());
      return 2;
    }
  }
  if (tls_ca || tls_override || tls_cert || tls_key) {
    /* TLS: trust tls_ca (else the system's CAs); the server's name is the
     * target's host unless --tls-override names it; a client certificate
     * for servers requiring mutual TLS. */
    sgrpc_tls_openssl_options to;
    char err[256] = "";
    sgrpc_tls_openssl_options_default(&to);
    to.ca_file = tls_ca;
    to.target_name_override = tls_override;
    to.cert_file = tls_cert;
    to.key_file = tls_key;
    rv = sgrpc_tls_openssl_ctx_new(&tls, &to, err, sizeof(err));
    if (rv != 0) {
      fprintf(stderr, "demo-client: TLS setup failed: %s\n", err[0] ? err : sgrpc_strerror(rv));
      return 1;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (demo_loop_new(&loop, loop_kind) != 0) {
    fprintf(stderr, "demo-client: no loop \"%s\" in this build (have: %s)\n", loop_kind,
            demo_loop_kinds());
    sgrpc_tls_openssl_ctx_del(tls);
    return 2;
  }
  memset(&co, 0, sizeof(co));
  co.target = target;
  if (tls) {
    co.make_tls = sgrpc_tls_openssl_factory;
    co.tls_user_data = tls;
  }
  rv = loop.a->channel(loop.x, &co, &channel);
  if (rv != 0) {
    fprintf(stderr, "demo-client: bad target %s: %s\n", target, sgrpc_strerror(rv));
    loop.a->del(loop.x);
    sgrpc_tls_openssl_ctx_del(tls);
    return 1;
  }
  printf("demo-client: calling demo.Demo at %s%s (%s loop)\n", target, tls ? " over TLS" : "",
         loop.a->name);
  sgrpc_net_timer_start(loop.a->net(loop.x), loop.a->now() + 30LL * 1000000000,
                        on_overall_timeout, NULL, NULL);
  next_check();
  loop.a->run(loop.x);
  for (i = 0; i < ncheck; i++) done += checks[i].done;
  loop.a->del(loop.x);
  sgrpc_tls_openssl_ctx_del(tls);
  if (done != ncheck && failures == 0) failures = 1;
  printf("demo-client: %zu of %zu checks finished, %s\n", done, ncheck,
         failures ? "SOME FAILED" : "all OK");
  return failures ? 1 : 0;
}
