/*
 * End-to-end tests of the epoll adapter: a server and a channel on one
 * loop in one process, over 127.0.0.1, [::1] and a Unix socket. Covers
 * unary, server streaming (past the send buffer, so WRITABLE resumes it),
 * bidi, 200 concurrent calls, a deadline (client DEADLINE_EXCEEDED, the
 * server's call ends too), a connect failure, and a graceful shutdown with
 * calls in flight that all complete, and the loop nested in a poll() loop
 * the test owns (sgrpc_epoll_get_fd / _ready). Every wait is bounded.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sgrpc/epoll.h>

#include "support.h"

#define SEC 1000000000LL

enum { K_ECHO, K_STREAM, K_BIDI, K_HANG, K_HOLD, K_N };
static const char *const kpaths[K_N] = {"/t.T/Echo", "/t.T/Stream", "/t.T/Bidi", "/t.T/Hang",
                                        "/t.T/Hold"};
#define STREAM_MSG 1000
#define MAX_HELD 64

typedef struct world world;

typedef struct scall {
  int kind;
  uint32_t to_send, sent; /* Stream: messages still owed */
  world *w;
} scall;

typedef struct ccall {
  world *w;
  int kind;
  int done;
  int status;
  uint32_t msgs;
  int content_ok;
  uint8_t sent[64];
  size_t sent_len;
} ccall;

struct world {
  sgrpc_epoll *loop;
  sgrpc_net_server *srv;
  sgrpc_net_channel *ch;
  int srv_new, srv_closed, srv_closed_ok, srv_closed_deadline;
  int cli_done;
  sgrpc_call *held[MAX_HELD];
  int nheld, hold_target, released_held;
  int goaways; /* GOAWAY events seen by the client */
};

/* ---------------------------------------------------------------- server */

static void stream_pump(sgrpc_call *call, scall *sc) {
  while (sc->sent < sc->to_send) {
    uint8_t buf[STREAM_MSG];
    int rv;
    memset(buf, (int)(sc->sent & 0xff), sizeof(buf));
    rv = sgrpc_call_send(call, buf, sizeof(buf), 0);
    if (rv == SGRPC_ERR_WOULDBLOCK) return;
    assert_int_equal(rv, 0);
    sc->sent++;
  }
  if (sc->to_send) {
    sgrpc_status st = {0};
    sc->to_send = 0;
    assert_int_equal(sgrpc_call_send_status(call, &st), 0);
  }
}

static void send_ok(sgrpc_call *call, const uint8_t *d, size_t n) {
  sgrpc_status st = {0};
  assert_int_equal(sgrpc_call_send(call, d, n, 0), 0);
  assert_int_equal(sgrpc_call_send_status(call, &st), 0);
}

static void release_held(sgrpc_net_loop *loop, void *ud, int64_t now) {
  world *w = ud;
  int i;
  (void)loop;
  (void)now;
  for (i = 0; i < w->nheld; i++) send_ok(w->held[i], (const uint8_t *)"held", 4);
  w->released_held = 1;
}

static void srv_event(sgrpc_net_conn *conn, const sgrpc_event *ev, void *ud, int64_t now) {
  world *w = ud;
  scall *sc = ev->call_user_data;
  assert_non_null(sgrpc_net_conn_engine(conn));
  assert_ptr_equal(sgrpc_net_conn_server(conn), w->srv);
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW: {
    int k;
    w->srv_new++;
    for (k = 0; k < K_N; k++)
      if (strlen(kpaths[k]) == ev->u.call_new.path_len &&
          memcmp(kpaths[k], ev->u.call_new.path, ev->u.call_new.path_len) == 0)
        break;
    assert_true(k < K_N);
    sc = calloc(1, sizeof(*sc));
    assert_non_null(sc);
    sc->kind = k;
    sc->w = w;
    sgrpc_call_set_user_data(ev->call, sc);
    if (k == K_HOLD) {
      assert_true(w->nheld < MAX_HELD);
      w->held[w->nheld++] = ev->call;
      if (w->nheld == w->hold_target) {
        /* Every held call is in flight: shut down, answer them later. */
        sgrpc_net_server_shutdown(w->srv, now);
        assert_int_equal(
            sgrpc_net_timer_start(sgrpc_epoll_net(w->loop), now + SEC / 10, release_held, w, NULL),
            0);
      }
    }
    break;
  }
  case SGRPC_EV_MESSAGE:
    if (sc->kind == K_ECHO || sc->kind == K_BIDI) {
      if (sc->kind == K_ECHO) send_ok(ev->call, ev->u.message.data, ev->u.message.len);
      else assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0), 0);
    } else if (sc->kind == K_STREAM) {
      uint32_t n;
      assert_int_equal(ev->u.message.len, 4);
      memcpy(&n, ev->u.message.data, 4);
      sc->to_send = n;
      stream_pump(ev->call, sc);
    }
    break;
  case SGRPC_EV_WRITABLE:
    if (sc->kind == K_STREAM) stream_pump(ev->call, sc);
    break;
  case SGRPC_EV_HALF_CLOSE:
    if (sc->kind == K_BIDI) {
      sgrpc_status st = {0};
      assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
    }
    break;
  case SGRPC_EV_CLOSE:
    w->srv_closed++;
    if (ev->u.close.status.code == SGRPC_STATUS_OK) w->srv_closed_ok++;
    if (sc->kind == K_HANG) {
      /* The client resets at its deadline; the server's own timer may win. */
      int c = ev->u.close.status.code;
      assert_true(c == SGRPC_STATUS_DEADLINE_EXCEEDED || c == SGRPC_STATUS_CANCELLED);
      w->srv_closed_deadline++;
    }
    free(sc);
    break;
  default:
    break;
  }
}

/* ---------------------------------------------------------------- client */

static void cli_event(const sgrpc_event *ev, void *ud, int64_t now) {
  ccall *cc = ud;
  (void)now;
  assert_ptr_equal(ev->call_user_data, cc);
  switch (ev->type) {
  case SGRPC_EV_MESSAGE:
    if (cc->kind == K_ECHO || cc->kind == K_BIDI) {
      if (ev->u.message.len != cc->sent_len ||
          memcmp(ev->u.message.data, cc->sent, cc->sent_len) != 0)
        cc->content_ok = 0;
    } else if (cc->kind == K_STREAM) {
      if (ev->u.message.len != STREAM_MSG || ev->u.message.data[0] != (uint8_t)cc->msgs ||
          ev->u.message.data[STREAM_MSG - 1] != (uint8_t)cc->msgs)
        cc->content_ok = 0;
    } else if (cc->kind == K_HOLD) {
      if (ev->u.message.len != 4 || memcmp(ev->u.message.data, "held", 4) != 0)
        cc->content_ok = 0;
    }
    cc->msgs++;
    break;
  case SGRPC_EV_CLOSE:
    assert_false(cc->done);
    cc->done = 1;
    cc->status = ev->u.close.status.code;
    cc->w->cli_done++;
    break;
  default:
    break;
  }
}

static void cli_conn_event(sgrpc_net_conn *conn, const sgrpc_event *ev, void *ud, int64_t now) {
  world *w = ud;
  (void)now;
  assert_null(ev->call);
  assert_null(sgrpc_net_conn_server(conn));
  if (ev->type == SGRPC_EV_GOAWAY) {
    assert_int_equal(ev->u.goaway.error_code, 0);
    w->goaways++;
  }
}

static sgrpc_call *start(world *w, ccall *cc, int kind, int64_t timeout_ns) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  memset(cc, 0, sizeof(*cc));
  cc->w = w;
  cc->kind = kind;
  cc->content_ok = 1;
  cc->status = -1;
  o.path = kpaths[kind];
  o.deadline = sgrpc_epoll_now() + timeout_ns;
  o.user_data = cc;
  o.on_event = cli_event;
  assert_int_equal(sgrpc_net_channel_call(w->ch, &o, sgrpc_epoll_now(), &call), 0);
  assert_non_null(call);
  return call;
}

static void start_echo(world *w, ccall *cc, int i) {
  sgrpc_call *call = start(w, cc, K_ECHO, 10 * SEC);
  cc->sent_len = (size_t)snprintf((char *)cc->sent, sizeof(cc->sent), "echo %d", i);
  assert_int_equal(sgrpc_call_send(call, cc->sent, cc->sent_len, SGRPC_SEND_END), 0);
}

/* Runs the loop until *count reaches want or 10 s pass. */
static void run_until(world *w, const int *count, int want) {
  int64_t end = sgrpc_epoll_now() + 10 * SEC;
  while (*count < want && sgrpc_epoll_now() < end)
    assert_true(sgrpc_epoll_run_once(w->loop, 50) >= 0);
  assert_int_equal(*count, want);
}

/* Listens on fmt (with %d for a port below 32768, or a unix path), trying
 * further ports when one is taken. */
/* The shared budget world_init gives the server (NULL: none). */
static sgrpc_budget *world_budget;

static void world_init(world *w, const char *fmt, int tcp) {
  sgrpc_net_listen_opts so;
  sgrpc_net_channel_opts co;
  static char addr[128];
  int attempt, rv = -1;
  memset(w, 0, sizeof(*w));
  assert_int_equal(sgrpc_epoll_new(&w->loop, NULL), 0);
  memset(&so, 0, sizeof(so));
  so.server.on_event = srv_event;
  so.server.user_data = w;
  /* Far beyond the waits below: graceful closes must not need it. */
  so.server.drain_timeout_ns = 60 * SEC;
  so.server.budget = world_budget;
  for (attempt = 0; attempt < 20; attempt++) {
    if (tcp) snprintf(addr, sizeof(addr), fmt, 20000 + ((int)getpid() + attempt * 211) % 5000);
    else snprintf(addr, sizeof(addr), fmt, (int)getpid());
    so.listen = addr;
    rv = sgrpc_epoll_listen(w->loop, &so, &w->srv);
    if (rv == 0 || !tcp || rv != SGRPC_ERR_SYSTEM(EADDRINUSE)) break;
  }
  if (rv != 0) fprintf(stderr, "listen %s: %d\n", addr, rv);
  assert_int_equal(rv, 0);
  if (tcp) assert_true(sgrpc_net_server_port(w->srv) > 0 && sgrpc_net_server_port(w->srv) < 32768);
  memset(&co, 0, sizeof(co));
  co.target = addr;
  co.on_conn_event = cli_conn_event;
  co.user_data = w;
  assert_int_equal(sgrpc_epoll_channel_new(w->loop, &co, &w->ch), 0);
}

static void world_free(world *w) {
  sgrpc_epoll_del(w->loop);
}

/* ----------------------------------------------------------------- tests */

static void basic_calls(world *w) {
  ccall echo, stream, bidi;
  sgrpc_call *call;
  uint32_t n = 300; /* 300 kB: well past the 64 KiB send buffer */
  int i;

  start_echo(w, &echo, 1);
  run_until(w, &w->cli_done, 1);
  assert_int_equal(echo.status, SGRPC_STATUS_OK);
  assert_int_equal(echo.msgs, 1);
  assert_true(echo.content_ok);

  call = start(w, &stream, K_STREAM, 10 * SEC);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)&n, 4, SGRPC_SEND_END), 0);
  run_until(w, &w->cli_done, 2);
  assert_int_equal(stream.status, SGRPC_STATUS_OK);
  assert_int_equal(stream.msgs, n);
  assert_true(stream.content_ok);

  call = start(w, &bidi, K_BIDI, 10 * SEC);
  bidi.sent_len = 5;
  memcpy(bidi.sent, "bidi!", 5);
  for (i = 0; i < 10; i++)
    assert_int_equal(sgrpc_call_send(call, bidi.sent, 5, i == 9 ? SGRPC_SEND_END : 0), 0);
  run_until(w, &w->cli_done, 3);
  assert_int_equal(bidi.status, SGRPC_STATUS_OK);
  assert_int_equal(bidi.msgs, 10);
  assert_true(bidi.content_ok);
}

static void concurrent_calls(world *w, int base) {
  enum { N = 200 };
  static ccall cc[N];
  int i;
  for (i = 0; i < N; i++) start_echo(w, &cc[i], i);
  run_until(w, &w->cli_done, base + N);
  for (i = 0; i < N; i++) {
    assert_int_equal(cc[i].status, SGRPC_STATUS_OK);
    assert_int_equal(cc[i].msgs, 1);
    assert_true(cc[i].content_ok);
  }
}

static void test_tcp4(void **state) {
  world w;
  ccall hang;
  sgrpc_call *call;
  int64_t t0;
  (void)state;
  world_init(&w, "127.0.0.1:%d", 1);
  basic_calls(&w);
  concurrent_calls(&w, 3);
  assert_int_equal(sgrpc_net_server_conn_count(w.srv), 1); /* one connection for all */

  /* Deadline: the server never answers. */
  t0 = sgrpc_epoll_now();
  call = start(&w, &hang, K_HANG, SEC / 5);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, SGRPC_SEND_END), 0);
  run_until(&w, &w.cli_done, 204);
  assert_int_equal(hang.status, SGRPC_STATUS_DEADLINE_EXCEEDED);
  assert_true(sgrpc_epoll_now() - t0 >= SEC / 5);
  assert_true(sgrpc_epoll_now() - t0 < 3 * SEC);
  run_until(&w, &w.srv_closed_deadline, 1);
  assert_int_equal(w.srv_closed, 204);
  world_free(&w);
}

/* The server's budget reaches every connection through
 * sgrpc_net_server_opts.budget: with room, calls are served and the
 * budget is empty again once the connections are gone; with a budget too
 * small for a request's header block, the call ends RESOURCE_EXHAUSTED. */
static void test_server_budget(void **state) {
  sgrpc_budget *b = NULL;
  world w;
  ccall echo;
  (void)state;
  assert_int_equal(sgrpc_budget_new(&b, 0, NULL), 0);
  world_budget = b;
  world_init(&w, "127.0.0.1:%d", 1);
  world_budget = NULL; /* the next tests run without */
  start_echo(&w, &echo, 1);
  run_until(&w, &w.cli_done, 1);
  assert_int_equal(echo.status, SGRPC_STATUS_OK);
  world_free(&w);
  assert_int_equal(sgrpc_budget_used(b), 0);
  sgrpc_budget_del(b);

  assert_int_equal(sgrpc_budget_new(&b, 64, NULL), 0);
  world_budget = b;
  world_init(&w, "127.0.0.1:%d", 1);
  world_budget = NULL;
  start_echo(&w, &echo, 2);
  run_until(&w, &w.cli_done, 1);
  assert_int_equal(echo.status, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  world_free(&w);
  assert_int_equal(sgrpc_budget_used(b), 0);
  sgrpc_budget_del(b);
}

static void test_tcp6(void **state) {
  world w;
  (void)state;
  world_init(&w, "[::1]:%d", 1);
  basic_calls(&w);
  concurrent_calls(&w, 3);
  world_free(&w);
}

static void test_unix(void **state) {
  world w;
  (void)state;
  world_init(&w, "unix:/tmp/sgrpc-test-epoll-%d.sock", 0);
  basic_calls(&w);
  concurrent_calls(&w, 3);
  world_free(&w);
  /* The socket file goes with the listener. */
  {
    char path[64];
    snprintf(path, sizeof(path), "/tmp/sgrpc-test-epoll-%d.sock", (int)getpid());
    assert_int_equal(access(path, F_OK), -1);
  }
}

static void test_graceful_shutdown(void **state) {
  world w;
  enum { N = 20 };
  ccall cc[N], late;
  int i;
  (void)state;
  world_init(&w, "127.0.0.1:%d", 1);
  w.hold_target = N;
  for (i = 0; i < N; i++) {
    sgrpc_call *call = start(&w, &cc[i], K_HOLD, 10 * SEC);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"h", 1, SGRPC_SEND_END), 0);
  }
  /* The server shuts down once all N are in, and answers them 100 ms later. */
  run_until(&w, &w.cli_done, N);
  assert_true(w.released_held);
  for (i = 0; i < N; i++) {
    assert_int_equal(cc[i].status, SGRPC_STATUS_OK);
    assert_int_equal(cc[i].msgs, 1);
    assert_true(cc[i].content_ok);
  }
  assert_int_equal(w.srv_closed_ok, N);
  /* Two-step shutdown: the notice (maximum id), then the final GOAWAY. */
  assert_int_equal(w.goaways, 2);
  /* The server closes the idle connection after its GOAWAY, promptly. */
  {
    int64_t end = sgrpc_epoll_now() + 2 * SEC;
    while (sgrpc_net_server_conn_count(w.srv) > 0 && sgrpc_epoll_now() < end)
      sgrpc_epoll_run_once(w.loop, 50);
  }
  assert_int_equal(sgrpc_net_server_conn_count(w.srv), 0);
  /* No listener any more: a new call fails UNAVAILABLE (connect refused). */
  {
    sgrpc_call *call = start(&w, &late, K_ECHO, 5 * SEC);
    (void)call;
    run_until(&w, &w.cli_done, N + 1);
    assert_int_equal(late.status, SGRPC_STATUS_UNAVAILABLE);
  }
  /* Nothing left: run() returns by itself. */
  assert_int_equal(sgrpc_epoll_run(w.loop), 0);
  world_free(&w);
}

/* The application owns the loop: it polls the adapter's descriptor and
 * calls sgrpc_epoll_run_once(loop, 0) when it is readable (never run_once with a
 * wait). Returns the number of wake-ups. */
static int run_until_outer(world *w, const int *count, int want) {
  struct pollfd p;
  int64_t end = sgrpc_epoll_now() + 10 * SEC;
  int wakes = 0;
  p.fd = sgrpc_epoll_get_fd(w->loop);
  p.events = POLLIN;
  assert_true(p.fd >= 0);
  /* Calls were started outside the adapter's callbacks: one ready() turn
   * writes them out and arms the loop's timer. */
  assert_true(sgrpc_epoll_run_once(w->loop, 0) >= 0);
  while (*count < want && sgrpc_epoll_now() < end) {
    int n = poll(&p, 1, 50);
    assert_true(n >= 0 || errno == EINTR);
    if (n == 1) {
      wakes++;
      assert_true(sgrpc_epoll_run_once(w->loop, 0) >= 0);
    }
  }
  assert_int_equal(*count, want);
  return wakes;
}

static void test_embedded(void **state) {
  world w;
  ccall echo, stream, hold, hang;
  sgrpc_call *call;
  uint32_t n = 200;
  int64_t t0;
  (void)state;
  world_init(&w, "127.0.0.1:%d", 1);
  start_echo(&w, &echo, 7);
  call = start(&w, &stream, K_STREAM, 10 * SEC);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)&n, 4, SGRPC_SEND_END), 0);
  assert_true(run_until_outer(&w, &w.cli_done, 2) > 0);
  assert_int_equal(echo.status, SGRPC_STATUS_OK);
  assert_true(echo.content_ok);
  assert_int_equal(stream.status, SGRPC_STATUS_OK);
  assert_int_equal(stream.msgs, n);
  assert_true(stream.content_ok);

  /* The application answers a held call from its own code, outside any
   * adapter callback, then calls ready() so the answer goes out. */
  call = start(&w, &hold, K_HOLD, 10 * SEC);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"h", 1, SGRPC_SEND_END), 0);
  run_until_outer(&w, &w.nheld, 1);
  send_ok(w.held[0], (const uint8_t *)"held", 4);
  run_until_outer(&w, &w.cli_done, 3);
  assert_int_equal(hold.status, SGRPC_STATUS_OK);
  assert_true(hold.content_ok);

  /* A deadline: only the loop's timer (inside its epoll set) can end it. */
  t0 = sgrpc_epoll_now();
  call = start(&w, &hang, K_HANG, SEC / 5);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, SGRPC_SEND_END), 0);
  run_until_outer(&w, &w.cli_done, 4);
  assert_int_equal(hang.status, SGRPC_STATUS_DEADLINE_EXCEEDED);
  assert_true(sgrpc_epoll_now() - t0 >= SEC / 5);
  assert_true(sgrpc_epoll_now() - t0 < 3 * SEC);
  world_free(&w);
}

/* The channel's own backoff and wait-for-ready settings reach the net layer:
 * against a port nobody listens on, a fail-fast call ends at once, a
 * wait-for-ready one retries every ~20 ms until its 300 ms deadline. */
static void test_channel_backoff_settings(void **state) {
  world w;
  sgrpc_net_channel_opts co;
  sgrpc_net_channel *ff, *wfr;
  ccall a, b;
  sgrpc_call *call;
  char target[64];
  int64_t t0;
  int refused_fd, attempt;
  (void)state;
  memset(&w, 0, sizeof(w));
  assert_int_equal(sgrpc_epoll_new(&w.loop, NULL), 0);
  /* A port that refuses: bound, never listening. */
  refused_fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(refused_fd >= 0);
  for (attempt = 0; attempt < 20; attempt++) {
    struct sockaddr_in sa;
    int port = 20000 + ((int)getpid() * 3 + attempt * 307) % 9000;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (bind(refused_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
      snprintf(target, sizeof(target), "127.0.0.1:%d", port);
      break;
    }
  }
  assert_true(attempt < 20);
  memset(&co, 0, sizeof(co));
  co.target = target;
  co.backoff.initial = 20 * 1000000LL;
  co.backoff.max = 40 * 1000000LL;
  assert_int_equal(sgrpc_epoll_channel_new(w.loop, &co, &ff), 0);
  co.wait_for_ready = 1;
  assert_int_equal(sgrpc_epoll_channel_new(w.loop, &co, &wfr), 0);

  w.ch = ff;
  t0 = sgrpc_epoll_now();
  start_echo(&w, &a, 1);
  run_until(&w, &w.cli_done, 1);
  assert_int_equal(a.status, SGRPC_STATUS_UNAVAILABLE);
  assert_true(sgrpc_epoll_now() - t0 < SEC / 5);

  w.ch = wfr;
  t0 = sgrpc_epoll_now();
  call = start(&w, &b, K_ECHO, 300 * 1000000LL);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, SGRPC_SEND_END), 0);
  run_until(&w, &w.cli_done, 2);
  assert_int_equal(b.status, SGRPC_STATUS_UNAVAILABLE);
  assert_true(sgrpc_epoll_now() - t0 >= 290 * 1000000LL);
  assert_true(sgrpc_epoll_now() - t0 < 2 * SEC);
  /* 20 ms growing to 40 ms: several attempts in 300 ms (1 s default: one). */
  assert_true(sgrpc_net_channel_failures(wfr) >= 4);
  close(refused_fd);
  world_free(&w);
}

static void test_bad_addresses(void **state) {
  sgrpc_epoll *loop;
  sgrpc_net_server *srv;
  sgrpc_net_channel *ch;
  sgrpc_net_listen_opts so;
  sgrpc_net_channel_opts co;
  static const char *const bad[] = {"nope", "1.2.3.4", "[::1", "[::1]", "127.0.0.1:",
                                    "127.0.0.1:99999", "127.0.0.1:12a", "unix:"};
  size_t i;
  (void)state;
  assert_int_equal(sgrpc_epoll_new(&loop, NULL), 0);
  memset(&so, 0, sizeof(so));
  so.server.on_event = srv_event;
  memset(&co, 0, sizeof(co));
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    so.listen = bad[i];
    assert_int_equal(sgrpc_epoll_listen(loop, &so, &srv), SGRPC_ERR_INVALID_ARGUMENT);
    co.target = bad[i];
    /* A channel target without a port takes 443 (gRPC's naming): "nope",
     * "1.2.3.4" and "[::1]" are good targets, bad listen addresses. */
    if (i == 0 || i == 1 || i == 3) {
      assert_int_equal(sgrpc_epoll_channel_new(loop, &co, &ch), 0);
      sgrpc_net_channel_del(ch);
      continue;
    }
    assert_int_equal(sgrpc_epoll_channel_new(loop, &co, &ch), SGRPC_ERR_INVALID_ARGUMENT);
  }
  /* Nothing registered: run() returns at once. */
  assert_int_equal(sgrpc_epoll_run(loop), 0);
  sgrpc_epoll_del(loop);
}

/* ------------------------------------------------ failing allocator */

/* A server that answers every request with its message; allocation
 * failures (sends that return NOMEM) just end the call. */
static void fm_srv_event(sgrpc_net_conn *conn, const sgrpc_event *ev, void *ud, int64_t now) {
  sgrpc_status st = {0};
  (void)conn;
  (void)ud;
  (void)now;
  if (ev->type != SGRPC_EV_MESSAGE) return;
  if (sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0) != 0 ||
      sgrpc_call_send_status(ev->call, &st) != 0)
    sgrpc_call_cancel(ev->call);
}

static void fm_cli_event(const sgrpc_event *ev, void *ud, int64_t now) {
  int *done = ud;
  (void)now;
  if (ev->type == SGRPC_EV_CLOSE) *done = ev->u.close.status.code == SGRPC_STATUS_OK ? 1 : 2;
}

/* One unary call over a Unix socket with allocation number fail_at
 * failing (0: none). Every step either works or says SGRPC_ERR_NOMEM;
 * whatever happens, the call ends (if it started) and nothing leaks.
 * Returns the number of allocations made. */
static long fm_run(long fail_at, int *completed) {
  failmem fm;
  sgrpc_mem mem;
  sgrpc_epoll *e = NULL;
  sgrpc_net_server *srv = NULL;
  sgrpc_net_channel *ch = NULL;
  sgrpc_net_listen_opts lo;
  sgrpc_net_channel_opts co;
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  char addr[64];
  int rv, done = 0;
  failmem_init(&fm, &mem);
  fm.fail_at = fail_at;
  *completed = 0;
  rv = sgrpc_epoll_new(&e, &mem);
  if (rv != 0) {
    assert_int_equal(rv, SGRPC_ERR_NOMEM);
    assert_int_equal(fm.live, 0);
    return fm.count;
  }
  snprintf(addr, sizeof(addr), "unix:/tmp/sgrpc-epoll-fm-%d.sock", (int)getpid());
  memset(&lo, 0, sizeof(lo));
  lo.listen = addr;
  lo.server.on_event = fm_srv_event;
  rv = sgrpc_epoll_listen(e, &lo, &srv);
  if (rv == 0) {
    memset(&co, 0, sizeof(co));
    co.target = addr;
    rv = sgrpc_epoll_channel_new(e, &co, &ch);
  }
  if (rv == 0) {
    memset(&o, 0, sizeof(o));
    o.path = "/t.T/Echo";
    o.deadline = sgrpc_epoll_now() + 2 * SEC;
    o.on_event = fm_cli_event;
    o.user_data = &done;
    rv = sgrpc_net_channel_call(ch, &o, sgrpc_epoll_now(), &call);
    if (rv == 0 && sgrpc_call_send(call, (const uint8_t *)"fm", 2, SGRPC_SEND_END) != 0)
      sgrpc_call_cancel(call); /* out of memory: the call ends CANCELLED */
    if (rv == 0) {
      int64_t end = sgrpc_epoll_now() + 3 * SEC;
      while (!done && sgrpc_epoll_now() < end) assert_true(sgrpc_epoll_run_once(e, 20) >= 0);
      assert_true(done != 0); /* ended, one way or the other */
      *completed = done == 1;
    }
  }
  if (rv != 0) assert_int_equal(rv, SGRPC_ERR_NOMEM);
  sgrpc_epoll_del(e);
  assert_int_equal(fm.live, 0);
  return fm.count;
}

/* The loop's allocator reaches the adapter, the net layer and every
 * engine it creates: failing each allocation of a whole call in turn
 * (creation, listen, channel, call start, accept on the server, the
 * engines' own) gives an error code or a failed call, never a crash or a
 * leak. */
static void test_failing_allocator(void **state) {
  int completed;
  long total, n, step, ok = 0;
  (void)state;
  total = fm_run(0, &completed);
  assert_true(completed);
  assert_true(total > 10);
  /* Every allocation near the start (adapter, net objects, call start),
   * then a sample of the rest (the engines at work). */
  for (n = 1; n <= total; n += step) {
    fm_run(n, &completed);
    ok += completed;
    step = n < 80 ? 1 : 7;
  }
  /* Some late failures hit buffers that are only an optimisation. */
  assert_true(ok < total);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tcp4),
      cmocka_unit_test(test_server_budget),
      cmocka_unit_test(test_tcp6),
      cmocka_unit_test(test_unix),
      cmocka_unit_test(test_graceful_shutdown),
      cmocka_unit_test(test_embedded),
      cmocka_unit_test(test_channel_backoff_settings),
      cmocka_unit_test(test_bad_addresses),
      cmocka_unit_test(test_failing_allocator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
