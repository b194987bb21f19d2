/*
 * Self-running health checks, counters and channelz over the epoll adapter
 * on 127.0.0.1 (kernel-chosen port), read by grpcio
 * (tests/services/grpcio_tools_peer.py, stubs generated at test time from
 * /usr/share/grpc-proto):
 *  - an sgrpc channel on the same loop makes 2 good and 1 failing calls;
 *    the C getters (sgrpc_net_channel_get_stats, _server_get_stats,
 *    sgrpc_conn_get_flow) report exactly them;
 *  - grpcio reads GetServers / GetServer / GetServerSockets / GetSocket /
 *    GetTopChannels / GetChannel / GetSubchannel and checks every count
 *    against the calls it made itself;
 *  - grpcio Watches a service whose check, run on the loop's timers every
 *    100 ms, answers NOT_SERVING once a Watch is open and SERVING after:
 *    the Watch sees SERVING -> NOT_SERVING -> SERVING;
 *  - after every connection closed, the server's totals are unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <sgrpc/channelz.h>
#include <sgrpc/epoll.h>
#include <sgrpc/health.h>
#include <sgrpc/net_rpc.h>

#include "low_port.h"

#define MS 1000000LL
#define SEC 1000000000LL

static const sgrpc_method m_unary = {"/t.Echo/Unary", NULL, NULL, 0, 0, &sgrpc_codec_raw};

static void h_unary(sgrpc_server_call *call, const void *msg, void *ud) {
  const sgrpc_bytes *b = msg;
  (void)ud;
  if (!b->len) (void)sgrpc_server_call_fail(call, SGRPC_STATUS_INVALID_ARGUMENT, "empty");
  else (void)sgrpc_server_call_reply(call, msg);
}

typedef struct world {
  sgrpc_epoll *loop;
  sgrpc_router *router;
  sgrpc_health *health;
  sgrpc_channelz *cz;
  sgrpc_net_server *srv;
  sgrpc_net_channel *ch;
  sgrpc_rpc_client client;
  int port;
  int step; /* the flip check: 0 before a Watch, 1 after NOT_SERVING, 2 done */
  int runs;
} world;

/* SERVING until a Watch is open, then NOT_SERVING once, then SERVING. */
static void flip_check(sgrpc_health_probe probe, const char *service, void *ud, int64_t now) {
  world *w = ud;
  sgrpc_health_status st = SGRPC_HEALTH_SERVING;
  (void)service;
  (void)now;
  w->runs++;
  if (w->step == 0 && sgrpc_health_watch_count(w->health) > 0) {
    st = SGRPC_HEALTH_NOT_SERVING;
    w->step = 1;
  } else if (w->step == 1) {
    w->step = 2;
  }
  assert_int_equal(sgrpc_health_probe_done(probe, st), 0);
}

typedef struct result {
  int done, code;
} result;

static void c_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                    void *ud) {
  result *r = ud;
  (void)call;
  (void)reply;
  r->done++;
  r->code = st->code;
}

static int unary(world *w, const char *text) {
  static const sgrpc_client_callbacks cbs = {NULL, NULL, c_close, {NULL, NULL}, NULL};
  sgrpc_bytes req = {(const uint8_t *)text, strlen(text)};
  sgrpc_rpc_opts o;
  result r = {0, -1};
  int64_t end = sgrpc_epoll_now() + 10 * SEC;
  memset(&o, 0, sizeof(o));
  o.user_data = &r;
  o.deadline = sgrpc_epoll_now() + 10 * SEC;
  assert_int_equal(sgrpc_rpc_call_start(&w->client, &m_unary, &req, &o, sgrpc_epoll_now(), &cbs,
                                        NULL),
                   0);
  while (!r.done && sgrpc_epoll_now() < end) assert_true(sgrpc_epoll_run_once(w->loop, 20) >= 0);
  assert_int_equal(r.done, 1);
  return r.code;
}

static void run_for(world *w, int64_t ns) {
  int64_t end = sgrpc_epoll_now() + ns;
  while (sgrpc_epoll_now() < end) assert_true(sgrpc_epoll_run_once(w->loop, 10) >= 0);
}

/* Runs argv as a child with stdout to our stderr, serving the loop until it
 * exits (at most limit_ns; then it is killed). Returns its exit code. */
static int run_peer(world *w, char *const argv[], int64_t limit_ns) {
  int64_t end = sgrpc_epoll_now() + limit_ns;
  pid_t pid = fork();
  int st, rc = -1;
  assert_true(pid >= 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(2, 1);
    execv(argv[0], argv);
    _exit(127);
  }
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      break;
    }
    if (sgrpc_epoll_now() >= end) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    assert_true(sgrpc_epoll_run_once(w->loop, 20) >= 0);
  }
  return rc;
}

static void test_grpcio_reads_channelz_and_watches_checks(void **state) {
  static const sgrpc_handler hu = {h_unary, NULL, NULL, NULL, NULL};
  world w;
  sgrpc_net_listen_opts so;
  sgrpc_net_channel_opts co;
  sgrpc_health_check_opts hc;
  sgrpc_conn_stats cs, ss, after;
  sgrpc_conn_flow flow;
  sgrpc_net_conn *c;
  char target[64], port[16];
  char *argv[] = {(char *)"/usr/bin/python3", (char *)SGRPC_TOOLS_PEER, port,
                  (char *)SGRPC_PEER_OUT_DIR, NULL};
  int i;
  (void)state;
  memset(&w, 0, sizeof(w));
  assert_int_equal(sgrpc_epoll_new(&w.loop, NULL), 0);
  assert_int_equal(sgrpc_router_new(&w.router, NULL), 0);
  assert_int_equal(sgrpc_router_add(w.router, &m_unary, &hu), 0);
  assert_int_equal(sgrpc_health_new(&w.health, NULL), 0);
  assert_int_equal(sgrpc_health_register(w.health, w.router), 0);
  assert_int_equal(sgrpc_net_health_use_loop(w.health, sgrpc_epoll_net(w.loop)), 0);
  assert_int_equal(sgrpc_channelz_new(&w.cz, NULL), 0);
  assert_int_equal(sgrpc_net_channelz_use_loop(w.cz, sgrpc_epoll_net(w.loop)), 0);
  assert_int_equal(sgrpc_channelz_register(w.cz, w.router), 0);

  memset(&so, 0, sizeof(so));
  so.server.on_event = sgrpc_net_router_event;
  so.server.user_data = w.router;
  {
    static char srv_addr[64];
    int rv;
    TEST_LISTEN_LOW(rv, srv_addr, "127.0.0.1:%d", so, sgrpc_epoll_listen(w.loop, &so, &w.srv));
    assert_int_equal(rv, 0);
  }
  w.port = sgrpc_net_server_port(w.srv);
  assert_true(w.port > 0 && w.port < 65536);

  /* the check's first answer comes from the loop, soon after now */
  memset(&hc, 0, sizeof(hc));
  hc.check = flip_check;
  hc.user_data = &w;
  hc.interval = 100 * MS;
  hc.timeout = 50 * MS;
  assert_int_equal(sgrpc_health_check_add(w.health, "flip.Service", &hc, sgrpc_epoll_now()), 0);
  for (i = 0; i < 500 && w.runs == 0; i++) assert_true(sgrpc_epoll_run_once(w.loop, 10) >= 0);
  assert_int_equal(sgrpc_health_get(w.health, "flip.Service"), SGRPC_HEALTH_SERVING);

  /* the sgrpc channel's calls, and the C getters */
  snprintf(target, sizeof(target), "127.0.0.1:%d", w.port);
  memset(&co, 0, sizeof(co));
  co.target = target;
  assert_int_equal(sgrpc_epoll_channel_new(w.loop, &co, &w.ch), 0);
  sgrpc_net_rpc_client_init(&w.client, w.ch, NULL);
  assert_int_equal(unary(&w, "\x0a\x01x"), SGRPC_STATUS_OK);
  assert_int_equal(unary(&w, ""), SGRPC_STATUS_INVALID_ARGUMENT);
  assert_int_equal(unary(&w, "\x0a\x01y"), SGRPC_STATUS_OK);
  run_for(&w, 20 * MS); /* the server's CLOSE events of those calls */
  sgrpc_net_channel_get_stats(w.ch, &cs);
  assert_int_equal(cs.calls_started, 3);
  assert_int_equal(cs.calls_succeeded, 2);
  assert_int_equal(cs.calls_failed, 1);
  assert_int_equal(cs.messages_sent, 3);
  assert_int_equal(cs.messages_received, 2);
  assert_true(cs.bytes_sent > 0 && cs.bytes_received > 0);
  assert_true(cs.last_call_started > 0 && cs.last_call_started <= sgrpc_epoll_now());
  sgrpc_net_server_get_stats(w.srv, &ss);
  assert_int_equal(ss.calls_started, 3);
  assert_int_equal(ss.calls_succeeded, 2);
  assert_int_equal(ss.calls_failed, 1);
  assert_int_equal(ss.messages_received, 3);
  assert_int_equal(ss.messages_sent, 2);
  c = sgrpc_net_server_conn_next(w.srv, NULL);
  assert_non_null(c);
  assert_null(sgrpc_net_server_conn_next(w.srv, c));
  assert_true(sgrpc_net_conn_id(c) > sgrpc_net_server_id(w.srv));
  assert_ptr_equal(sgrpc_net_loop_conn_find(sgrpc_epoll_net(w.loop), sgrpc_net_conn_id(c)), c);
  assert_int_equal(sgrpc_conn_get_flow(sgrpc_net_conn_engine(c), &flow), 0);
  assert_true(flow.local_window > 0 && flow.remote_window > 0);
  assert_int_equal(sgrpc_conn_get_flow(NULL, &flow), SGRPC_ERR_INVALID_ARGUMENT);
  assert_ptr_equal(sgrpc_net_loop_server_next(sgrpc_epoll_net(w.loop), NULL), w.srv);
  assert_ptr_equal(sgrpc_net_loop_channel_next(sgrpc_epoll_net(w.loop), NULL), w.ch);
  assert_true(sgrpc_net_to_unix_ns(sgrpc_epoll_now()) > 1600000000LL * SEC);

  /* grpcio reads it all */
  snprintf(port, sizeof(port), "%d", w.port);
  assert_int_equal(run_peer(&w, argv, 120 * SEC), 0);
  assert_int_equal(w.step, 2);
  for (i = 0; i < 500 && sgrpc_health_watch_count(w.health); i++)
    assert_true(sgrpc_epoll_run_once(w.loop, 10) >= 0);
  assert_int_equal(sgrpc_health_watch_count(w.health), 0);

  /* totals survive the connections: close them all and compare */
  sgrpc_health_checks_stop(w.health);
  sgrpc_net_server_get_stats(w.srv, &ss);
  sgrpc_net_channel_del(w.ch);
  for (i = 0; i < 500 && sgrpc_net_server_conn_count(w.srv); i++)
    assert_true(sgrpc_epoll_run_once(w.loop, 10) >= 0);
  assert_int_equal(sgrpc_net_server_conn_count(w.srv), 0);
  assert_null(sgrpc_net_server_conn_next(w.srv, NULL));
  sgrpc_net_server_get_stats(w.srv, &after);
  assert_int_equal(after.calls_started, ss.calls_started);
  assert_int_equal(after.calls_succeeded + after.calls_failed, after.calls_started);
  assert_int_equal(after.messages_sent, ss.messages_sent);
  assert_true(after.calls_started >= 3 + 13 + 2);

  sgrpc_epoll_del(w.loop);
  sgrpc_health_del(w.health);
  sgrpc_channelz_del(w.cz);
  sgrpc_router_del(w.router);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grpcio_reads_channelz_and_watches_checks),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
