/*
 * Event hooks over real sockets: an sgrpc router served by the epoll
 * adapter on 127.0.0.1 (port below 32768) with server hooks that require
 * an authorization header and add initial and trailing metadata, called
 *  - by an sgrpc client on an epoll channel whose SEND_REQUEST hook adds
 *    the token, with client hooks checking what came back, and
 *  - by grpcio (/usr/bin/python3, tests/events_peer.py, stubs generated
 *    with grpc_tools at test time) asserting the hooks' metadata, the
 *    refusal without token (UNAUTHENTICATED), for unary, server streaming
 *    and bidi calls.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <sgrpc/events.h>
#include <sgrpc/epoll.h>
#include <sgrpc/net_rpc.h>

#define MS 1000000LL
#define SEC 1000000000LL

extern char **environ;

static const sgrpc_method m_hello = {"/helloworld.Greeter/SayHello", NULL, NULL, 0, 0,
                                     &sgrpc_codec_raw};
static const sgrpc_method m_sstream = {"/t.Kinds/ServerStream", NULL, NULL, 0, 1,
                                       &sgrpc_codec_raw};
static const sgrpc_method m_bidi = {"/t.Kinds/Bidi", NULL, NULL, 1, 1, &sgrpc_codec_raw};

/* ---- server: raw echo handlers (HelloRequest.name and HelloReply.message
 * are both field 1 strings, so the request bytes are a valid reply) ---- */

static int handler_runs;

static void h_echo(sgrpc_server_call *call, const void *msg, void *ud) {
  handler_runs++;
  (void)sgrpc_server_call_reply(call, msg);
}

static void h_sstream(sgrpc_server_call *call, const void *msg, void *ud) {
  handler_runs++;
  (void)sgrpc_server_call_send(call, msg);
  (void)sgrpc_server_call_send(call, msg);
  (void)sgrpc_server_call_finish(call, NULL);
}

static void h_bidi(sgrpc_server_call *call, const void *msg, void *ud) {
  handler_runs++;
  if (msg) (void)sgrpc_server_call_send(call, msg);
  else (void)sgrpc_server_call_finish(call, NULL);
}

/* ---- server hooks ---- */

static int refused, python_seen, srv_trailers;

static void sh_auth(sgrpc_hook_event *ev, void *ud) {
  size_t n;
  const uint8_t *v = sgrpc_md_find(ev->md, ev->md_count, "authorization", &n);
  if (strstr(ev->user_agent, "grpc-python")) python_seen++;
  if (!v || n != strlen("Bearer sekrit") || memcmp(v, "Bearer sekrit", n) != 0) {
    refused++;
    ev->end_code = SGRPC_STATUS_UNAUTHENTICATED;
    ev->end_message = "missing token";
  }
}

static void sh_initial(sgrpc_hook_event *ev, void *ud) {
  assert_int_equal(sgrpc_hook_md_add_str(ev, "x-initial-hook", "srv"), 0);
}

static void sh_trailing(sgrpc_hook_event *ev, void *ud) {
  char val[32];
  size_t n, vn;
  const sgrpc_md *md = sgrpc_server_call_metadata(ev->server_call, &n);
  const uint8_t *user = sgrpc_md_find(md, n, "x-user-md", &vn);
  srv_trailers++;
  snprintf(val, sizeof(val), "srv-%d", ev->status_code);
  assert_int_equal(sgrpc_hook_md_add_str(ev, "x-trailing-hook", val), 0);
  if (user) assert_int_equal(sgrpc_hook_md_add(ev, "x-seen-user", user, vn), 0);
}

/* ---- client hooks and callbacks ---- */

static char cli_log[512];

static void ch_token(sgrpc_hook_event *ev, void *ud) {
  assert_null(ev->conn); /* a transport client */
  assert_int_equal(sgrpc_hook_md_add_str(ev, "authorization", "Bearer sekrit"), 0);
  strcat(cli_log, "SendRequest ");
}

static void ch_initial(sgrpc_hook_event *ev, void *ud) {
  size_t n;
  const uint8_t *v = sgrpc_md_find(ev->md, ev->md_count, "x-initial-hook", &n);
  strcat(cli_log, v && n == 3 && memcmp(v, "srv", 3) == 0 ? "RecvInitialMetadata(srv) "
                                                          : "RecvInitialMetadata(?) ");
}

static void ch_trailing(sgrpc_hook_event *ev, void *ud) {
  size_t n;
  const uint8_t *v = sgrpc_md_find(ev->md, ev->md_count, "x-trailing-hook", &n);
  char buf[64];
  snprintf(buf, sizeof(buf), "RecvTrailingMetadata(%d,%.*s) ", ev->status_code,
           v ? (int)n : 1, v ? (const char *)v : "?");
  strcat(cli_log, buf);
}

typedef struct result {
  int done;
  int code;
  char reply[32];
} result;

static void c_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                    void *ud) {
  result *r = ud;
  r->done++;
  r->code = st->code;
  if (reply) {
    const sgrpc_bytes *b = reply;
    snprintf(r->reply, sizeof(r->reply), "%.*s", (int)b->len, (const char *)b->data);
  }
}

/* ---- world ---- */

typedef struct world {
  sgrpc_epoll *loop;
  sgrpc_net_server *srv;
  sgrpc_net_channel *ch;
  sgrpc_router *router;
  sgrpc_events *sev, *cev;
  sgrpc_rpc_client client;
  char addr[64];
  int port;
} world;

static int setup(void **state) {
  static world w;
  static const sgrpc_handler he = {h_echo, NULL, NULL, NULL, NULL};
  static const sgrpc_handler hs = {h_sstream, NULL, NULL, NULL, NULL};
  static const sgrpc_handler hb = {h_bidi, NULL, NULL, NULL, NULL};
  sgrpc_net_listen_opts so;
  sgrpc_net_channel_opts co;
  int attempt, rv = -1;
  memset(&w, 0, sizeof(w));
  assert_int_equal(sgrpc_epoll_new(&w.loop, NULL), 0);
  assert_int_equal(sgrpc_router_new(&w.router, NULL), 0);
  assert_int_equal(sgrpc_router_add(w.router, &m_hello, &he), 0);
  assert_int_equal(sgrpc_router_add(w.router, &m_sstream, &hs), 0);
  assert_int_equal(sgrpc_router_add(w.router, &m_bidi, &hb), 0);
  assert_int_equal(sgrpc_events_new(&w.sev, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w.sev, SGRPC_HOOK_RECV_REQUEST, sh_auth, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w.sev, SGRPC_HOOK_SEND_INITIAL_METADATA, sh_initial, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w.sev, SGRPC_HOOK_SEND_TRAILING_METADATA, sh_trailing, NULL), 0);
  sgrpc_router_set_events(w.router, w.sev);

  memset(&so, 0, sizeof(so));
  so.server.on_event = sgrpc_net_router_event;
  so.server.user_data = w.router;
  so.server.drain_timeout_ns = 5 * SEC;
  for (attempt = 0; attempt < 20; attempt++) {
    w.port = 20000 + ((int)getpid() * 13 + attempt * 577) % 12000;
    snprintf(w.addr, sizeof(w.addr), "127.0.0.1:%d", w.port);
    so.listen = w.addr;
    rv = sgrpc_epoll_listen(w.loop, &so, &w.srv);
    if (rv == 0 || rv != SGRPC_ERR_SYSTEM(EADDRINUSE)) break;
  }
  assert_int_equal(rv, 0);
  assert_true(sgrpc_net_server_port(w.srv) < 32768);

  memset(&co, 0, sizeof(co));
  co.target = w.addr;
  assert_int_equal(sgrpc_epoll_channel_new(w.loop, &co, &w.ch), 0);
  sgrpc_net_rpc_client_init(&w.client, w.ch, NULL);
  assert_int_equal(sgrpc_events_new(&w.cev, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w.cev, SGRPC_HOOK_SEND_REQUEST, ch_token, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w.cev, SGRPC_HOOK_RECV_INITIAL_METADATA, ch_initial, NULL), 0);
  assert_int_equal(sgrpc_events_listen(w.cev, SGRPC_HOOK_RECV_TRAILING_METADATA, ch_trailing, NULL), 0);
  *state = &w;
  return 0;
}

static int teardown(void **state) {
  world *w = *state;
  sgrpc_epoll_del(w->loop);
  sgrpc_router_del(w->router);
  sgrpc_events_del(w->sev);
  sgrpc_events_del(w->cev);
  return 0;
}

static void run_until(world *w, const int *flag, int want, int64_t limit_ns) {
  int64_t end = sgrpc_epoll_now() + limit_ns;
  while (*flag < want && sgrpc_epoll_now() < end)
    assert_true(sgrpc_epoll_run_once(w->loop, 20) >= 0);
  assert_int_equal(*flag, want);
}

static void sgrpc_call_hello(world *w, result *r) {
  static const sgrpc_client_callbacks cbs = {NULL, NULL, c_close, {NULL, NULL}, NULL};
  sgrpc_bytes req = {(const uint8_t *)"\x0a\x02me", 4};
  sgrpc_rpc_opts o;
  memset(&o, 0, sizeof(o));
  memset(r, 0, sizeof(*r));
  o.user_data = r;
  o.deadline = sgrpc_epoll_now() + 10 * SEC;
  assert_int_equal(sgrpc_rpc_call_start(&w->client, &m_hello, &req, &o, sgrpc_epoll_now(),
                                        &cbs, NULL),
                   0);
  run_until(w, &r->done, 1, 10 * SEC);
}

/* sgrpc client over a socket: its SEND_REQUEST hook supplies the token. */
static void test_sgrpc_client_hooks(void **state) {
  world *w = *state;
  result r;
  int runs = handler_runs;
  refused = 0;
  /* without client hooks the server refuses */
  sgrpc_call_hello(w, &r);
  assert_int_equal(r.code, SGRPC_STATUS_UNAUTHENTICATED);
  assert_int_equal(refused, 1);
  assert_int_equal(handler_runs, runs);
  /* with them it answers, and the server hooks' metadata comes back */
  sgrpc_rpc_client_set_events(&w->client, w->cev);
  cli_log[0] = 0;
  sgrpc_call_hello(w, &r);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.reply, "\x0a\x02me");
  assert_int_equal(refused, 1);
  assert_int_equal(handler_runs, runs + 1);
  assert_string_equal(cli_log,
                      "SendRequest RecvInitialMetadata(srv) RecvTrailingMetadata(0,srv-0) ");
  sgrpc_rpc_client_set_events(&w->client, NULL);
}

/* grpcio calls the hooked server. */
static void test_python_peer(void **state) {
  world *w = *state;
  char port[16];
  char *argv[] = {"/usr/bin/python3", SGRPC_EVENTS_PEER, port, SGRPC_EVENTS_TMP,
                  SGRPC_HELLO_PROTO_DIR, NULL};
  pid_t pid;
  int status = -1, exited = 0;
  int64_t end = sgrpc_epoll_now() + 120 * SEC;
  refused = python_seen = srv_trailers = 0;
  snprintf(port, sizeof(port), "%d", w->port);
  assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
  while (sgrpc_epoll_now() < end) {
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) {
      exited = 1;
      break;
    }
    assert_true(sgrpc_epoll_run_once(w->loop, 20) >= 0);
  }
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  assert_true(exited);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* the server side of what python asserted */
  assert_int_equal(refused, 1);
  assert_int_equal(python_seen, 4); /* user-agent given to RECV_REQUEST */
  assert_int_equal(srv_trailers, 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sgrpc_client_hooks),
      cmocka_unit_test(test_python_peer),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, setup, teardown);
}
