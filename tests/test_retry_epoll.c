/*
 * Retries over real sockets on the epoll adapter (127.0.0.1):
 *  - a retry policy against an sgrpc server whose handler answers
 *    UNAVAILABLE twice then OK: the call succeeds after three attempts,
 *    the server sees grpc-previous-rpc-attempts 1 and 2, and the backoff
 *    waits on the loop's timers (sgrpc_net_rpc_client_set_loop);
 *  - transparent retries against tests/retry_peer.py (python3-h2), a raw
 *    server that refuses the first stream of each connection, and one that
 *    sends GOAWAY with last_stream_id 1 while three calls are open: every
 *    call still succeeds and the retried attempts carry
 *    grpc-previous-rpc-attempts (the peer echoes it as trailer x-prev).
 */
#include <errno.h>
#include <poll.h>
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

#include <sgrpc/epoll.h>
#include <sgrpc/net_rpc.h>

#include "low_port.h"

extern char **environ;

#define MS 1000000LL
#define SEC 1000000000LL

static const sgrpc_method m_unary = {"/t.Retry/Unary", NULL, NULL, 0, 0, &sgrpc_codec_raw};

typedef struct result {
  int done;
  int code;
  char reply[64];
  char prev[16]; /* trailer x-prev */
} result;

static void c_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                    void *ud) {
  result *r = ud;
  size_t i;
  r->done++;
  r->code = st->code;
  if (reply) {
    const sgrpc_bytes *b = reply;
    snprintf(r->reply, sizeof(r->reply), "%.*s", (int)b->len, (const char *)b->data);
  }
  for (i = 0; i < st->md_count; i++)
    if (strcmp(st->md[i].key, "x-prev") == 0)
      snprintf(r->prev, sizeof(r->prev), "%.*s", (int)st->md[i].value_len,
               (const char *)st->md[i].value);
}

static const sgrpc_client_callbacks cbs = {NULL, NULL, c_close, {NULL, NULL}, NULL};

static void run_until(sgrpc_epoll *loop, const int *flag, int want, int64_t limit_ns) {
  int64_t end = sgrpc_epoll_now() + limit_ns;
  while (*flag < want && sgrpc_epoll_now() < end)
    assert_true(sgrpc_epoll_run_once(loop, 20) >= 0);
  assert_int_equal(*flag, want);
}

static void start(sgrpc_rpc_client *client, const char *text, result *r, int *done_counter) {
  sgrpc_rpc_opts o;
  sgrpc_bytes b;
  memset(&o, 0, sizeof(o));
  memset(r, 0, sizeof(*r));
  (void)done_counter;
  o.user_data = r;
  o.deadline = sgrpc_epoll_now() + 20 * SEC;
  b.data = (const uint8_t *)text;
  b.len = strlen(text);
  assert_int_equal(sgrpc_rpc_call_start(client, &m_unary, &b, &o, sgrpc_epoll_now(), &cbs, NULL),
                   0);
}

/* ---- a retry policy against an sgrpc server ---- */

static int arrivals;
static int prev_seen[8];

static void h_flaky(sgrpc_server_call *call, const void *msg, void *ud) {
  size_t n, i;
  const sgrpc_md *md = sgrpc_server_call_metadata(call, &n);
  int a = arrivals < 8 ? arrivals : 7;
  prev_seen[a] = -1;
  for (i = 0; i < n; i++)
    if (strcmp(md[i].key, "grpc-previous-rpc-attempts") == 0)
      prev_seen[a] = atoi((const char *)md[i].value);
  arrivals++;
  if (a < 2) {
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_UNAVAILABLE, "not yet");
    return;
  }
  (void)sgrpc_server_call_reply(call, msg);
}

static void test_policy_over_epoll(void **state) {
  static const sgrpc_handler hf = {h_flaky, NULL, NULL, NULL, NULL};
  static const sgrpc_method_name names[] = {{"t.Retry", "Unary"}};
  sgrpc_retry_policy rp;
  sgrpc_method_config mc;
  sgrpc_service_config cfg;
  sgrpc_epoll *loop;
  sgrpc_router *router;
  sgrpc_net_server *srv;
  sgrpc_net_channel *ch;
  sgrpc_net_listen_opts so;
  sgrpc_net_channel_opts co;
  sgrpc_rpc_client client;
  char addr[64];
  result r;
  int64_t t0;
  (void)state;
  memset(&rp, 0, sizeof(rp));
  rp.max_attempts = 4;
  rp.initial_backoff = 20 * MS;
  rp.max_backoff = 100 * MS;
  rp.backoff_multiplier = 2;
  rp.retryable_codes = 1u << SGRPC_STATUS_UNAVAILABLE;
  memset(&mc, 0, sizeof(mc));
  mc.names = names;
  mc.names_count = 1;
  mc.retry_policy = &rp;
  memset(&cfg, 0, sizeof(cfg));
  cfg.methods = &mc;
  cfg.methods_count = 1;

  assert_int_equal(sgrpc_epoll_new(&loop, NULL), 0);
  assert_int_equal(sgrpc_router_new(&router, NULL), 0);
  assert_int_equal(sgrpc_router_add(router, &m_unary, &hf), 0);
  memset(&so, 0, sizeof(so));
  so.server.on_event = sgrpc_net_router_event;
  so.server.user_data = router;
  {
    static char srv_addr[64];
    int rv;
    TEST_LISTEN_LOW(rv, srv_addr, "127.0.0.1:%d", so, sgrpc_epoll_listen(loop, &so, &srv));
    assert_int_equal(rv, 0);
  }
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", sgrpc_net_server_port(srv));
  memset(&co, 0, sizeof(co));
  co.target = addr;
  co.service_config = &cfg; /* the rpc client takes it, and the loop's timers, from the channel */
  assert_int_equal(sgrpc_epoll_channel_new(loop, &co, &ch), 0);
  assert_ptr_equal(sgrpc_net_channel_service_config(ch), &cfg);
  sgrpc_net_rpc_client_init(&client, ch, NULL);

  arrivals = 0;
  t0 = sgrpc_epoll_now();
  start(&client, "flaky", &r, NULL);
  run_until(loop, &r.done, 1, 20 * SEC);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.reply, "flaky");
  assert_int_equal(arrivals, 3);
  assert_int_equal(prev_seen[0], -1);
  assert_int_equal(prev_seen[1], 1);
  assert_int_equal(prev_seen[2], 2);
  /* two backoffs of at most 20 and 40 ms were waited on the loop */
  assert_true(sgrpc_epoll_now() - t0 < 10 * SEC);
  /* a call waiting out a long backoff when the loop goes: ended first
   * (a jitter below 10 s stays inside the call's 20 s deadline) */
  rp.initial_backoff = 10 * SEC;
  rp.max_backoff = 10 * SEC;
  arrivals = 0;
  start(&client, "slow", &r, NULL);
  while (arrivals < 1 && sgrpc_epoll_now() - t0 < 20 * SEC)
    assert_true(sgrpc_epoll_run_once(loop, 20) >= 0);
  while (!client.retry.waiting && !r.done && sgrpc_epoll_now() - t0 < 20 * SEC)
    assert_true(sgrpc_epoll_run_once(loop, 20) >= 0);
  assert_non_null(client.retry.waiting);
  sgrpc_rpc_client_cancel_waiting(&client);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_CANCELLED);
  sgrpc_epoll_del(loop);
  sgrpc_router_del(router);
}

/* ---- transparent retries against the raw python peer ---- */

typedef struct peer {
  pid_t pid;
  int in_fd;  /* its stdin: closing it stops it */
  int port;
} peer;

static void peer_start(peer *p, const char *mode) {
  char *argv[] = {"/usr/bin/python3", SGRPC_RETRY_PEER, (char *)mode, NULL};
  posix_spawn_file_actions_t fa;
  int out[2], in[2];
  char buf[32];
  size_t got = 0;
  struct pollfd pfd;
  assert_int_equal(pipe(out), 0);
  assert_int_equal(pipe(in), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  assert_int_equal(posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(in[0]);
  p->in_fd = in[1];
  /* its port, one line, within 30 s */
  pfd.fd = out[0];
  pfd.events = POLLIN;
  while (got < sizeof(buf) - 1 && (got == 0 || buf[got - 1] != '\n')) {
    ssize_t n;
    assert_true(poll(&pfd, 1, 30000) == 1);
    n = read(out[0], buf + got, sizeof(buf) - 1 - got);
    assert_true(n > 0);
    got += (size_t)n;
  }
  buf[got] = 0;
  close(out[0]);
  p->port = atoi(buf);
  assert_true(p->port > 0);
}

static void peer_stop(peer *p) {
  int status = 0, i;
  close(p->in_fd);
  for (i = 0; i < 300; i++) {
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) return;
    (void)poll(NULL, 0, 10);
  }
  kill(p->pid, SIGKILL);
  waitpid(p->pid, &status, 0);
}

typedef struct tworld {
  sgrpc_epoll *loop;
  sgrpc_net_channel *ch;
  sgrpc_rpc_client client;
  peer p;
} tworld;

static void tworld_new(tworld *w, const char *mode) {
  sgrpc_net_channel_opts co;
  char addr[64];
  peer_start(&w->p, mode);
  assert_int_equal(sgrpc_epoll_new(&w->loop, NULL), 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", w->p.port);
  memset(&co, 0, sizeof(co));
  co.target = addr;
  assert_int_equal(sgrpc_epoll_channel_new(w->loop, &co, &w->ch), 0);
  sgrpc_net_rpc_client_init(&w->client, w->ch, NULL);
  sgrpc_net_rpc_client_set_loop(&w->client, sgrpc_epoll_net(w->loop));
}

static void tworld_del(tworld *w) {
  sgrpc_epoll_del(w->loop);
  peer_stop(&w->p);
}

static void test_transparent_refused_stream(void **state) {
  tworld w;
  result r[3];
  int i;
  (void)state;
  tworld_new(&w, "refuse");
  /* one at a time: the first is refused and retried on the same
   * connection, the others are served at once */
  for (i = 0; i < 3; i++) {
    char text[8];
    snprintf(text, sizeof(text), "call%d", i);
    start(&w.client, text, &r[i], NULL);
    run_until(w.loop, &r[i].done, 1, 20 * SEC);
    assert_int_equal(r[i].code, SGRPC_STATUS_OK);
    assert_string_equal(r[i].reply, text);
  }
  assert_string_equal(r[0].prev, "1");
  assert_string_equal(r[1].prev, "none");
  assert_string_equal(r[2].prev, "none");
  tworld_del(&w);
}

static void test_transparent_goaway(void **state) {
  tworld w;
  result r[3];
  int i, total = 0;
  int64_t end;
  (void)state;
  tworld_new(&w, "goaway");
  for (i = 0; i < 3; i++) {
    char text[8];
    snprintf(text, sizeof(text), "g%d", i);
    start(&w.client, text, &r[i], NULL);
  }
  end = sgrpc_epoll_now() + 20 * SEC;
  while (sgrpc_epoll_now() < end) {
    total = r[0].done + r[1].done + r[2].done;
    if (total == 3) break;
    assert_true(sgrpc_epoll_run_once(w.loop, 20) >= 0);
  }
  assert_int_equal(total, 3);
  /* stream 1 was served on the first connection; the two above the
   * GOAWAY's last id went to a new one as their second attempt */
  assert_int_equal(r[0].code, SGRPC_STATUS_OK);
  assert_string_equal(r[0].reply, "g0");
  assert_string_equal(r[0].prev, "none");
  for (i = 1; i < 3; i++) {
    char text[8];
    snprintf(text, sizeof(text), "g%d", i);
    assert_int_equal(r[i].code, SGRPC_STATUS_OK);
    assert_string_equal(r[i].reply, text);
    assert_string_equal(r[i].prev, "1");
  }
  tworld_del(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_over_epoll),
      cmocka_unit_test(test_transparent_refused_stream),
      cmocka_unit_test(test_transparent_goaway),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
