/*
 * One end-to-end suite for every adapter of the net layer
 * (<sgrpc/net.h>). A test file fills a suite_adapter with its loop's few
 * functions and calls adapter_suite_run(). Server and channels share
 * one loop in one process; everything is on loopback, ports below 32768,
 * every wait bounded.
 *
 * Covers: the four RPC kinds over TCP v4, v6 and a Unix socket (with peer
 * addresses); a server restart survived by reconnecting with a short
 * backoff (wait-for-ready) and fail-fast calls while it is down; a new
 * connection after the server's GOAWAY; deadlines
 * while connecting (refused port, silent listener); SIGTERM with calls in
 * flight (none lost) and a second SIGTERM (immediate); 1-byte reads and
 * writes everywhere; 1,000 concurrent calls over 10 connections; the
 * TLS seam with a toy session (any sgrpc_tls plugs in); target parsing and the backoff schedule; listening
 * on "localhost:port" (name resolution), on a TCP or Unix socket the user
 * hands over, and twice on one port with SO_REUSEPORT; SO_REUSEADDR on
 * every listener and TCP_NODELAY on every connection, both ends. With
 * SGRPC_SUITE_TLS (and SGRPC_TLS_CERT_SCRIPT): the four kinds over TLS
 * (v4, v6, target-name override), mutual TLS with the client's
 * certificate seen by the handler, refusal without a client certificate,
 * for a wrong hostname and for an untrusted CA (calls end UNAVAILABLE
 * with the TLS reason in the status message), TLS with 7-byte IO.
 *
 * Header-only on purpose: tests/CMakeLists.txt builds each test_*.c alone.
 */
#ifndef SGRPC_TESTS_ADAPTER_SUITE_H
#define SGRPC_TESTS_ADAPTER_SUITE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sgrpc/net_adapter.h>
#ifdef SGRPC_SUITE_TLS
#include <sgrpc/tls_openssl.h>
#endif

#define SEC 1000000000LL
#define MS 1000000LL

typedef struct suite_adapter {
  const char *name;
  void *(*loop_new)(void);
  /* Frees the loop and everything on it. */
  void (*loop_del)(void *loop);
  sgrpc_net_loop *(*net)(void *loop);
  int64_t (*now)(void);
  /* One turn, blocking at most timeout_ms. */
  void (*run_once)(void *loop, int timeout_ms);
  int (*listen)(void *loop, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps);
  int (*channel_new)(void *loop, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch);
  int (*catch_signals)(void *loop);
  /* The loop sheds connections itself when accept runs out of
   * descriptors (libuv's spare-descriptor trick), so the net layer is not
   * told and the pending ones are closed rather than accepted later. */
  int sheds_at_fd_limit;
} suite_adapter;

static const suite_adapter *A;

/* ------------------------------------------------------------------ */
/* Service                                                             */
/* ------------------------------------------------------------------ */

enum { K_ECHO, K_STREAM, K_COLLECT, K_BIDI, K_HOLD, K_HANG, K_GOAWAY, K_N };
static const char *const kpaths[K_N] = {"/t.T/Echo", "/t.T/Stream", "/t.T/Collect", "/t.T/Bidi",
                                        "/t.T/Hold", "/t.T/Hang",   "/t.T/Goaway"};
#define STREAM_MSG 1000
#define MAX_HELD 64
#define MAX_CH 10

typedef struct world world;

typedef struct scall {
  int kind;
  uint32_t to_send, sent;
  uint32_t count, total; /* Collect */
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
  uint32_t expect_count, expect_total; /* Collect */
  int64_t ended_at;
  char msg[200]; /* the status message */
} ccall;

struct world {
  void *loop;
  sgrpc_net_loop *net;
  sgrpc_net_server *srv;
  sgrpc_net_channel *ch[MAX_CH];
  char addr[128];
  sgrpc_net_listen_opts lo;
  int srv_new, srv_closed, srv_closed_ok;
  int cli_done;
  char first_peer[96];
  sgrpc_call *held[MAX_HELD];
  int nheld, hold_target, released_held, signal_on_hold;
  int conn_events, goaways;
  int restart_failures;
  char last_peer[96];      /* server: peer of the latest call */
  int engines_seen;        /* server: connections seen by calls, in turn */
  /* server: what sgrpc_net_conn_peer_cert said at the first call */
  int peer_cert_rv;
  char peer_subject[256];
  int reuseport; /* world_listen: ask for SO_REUSEPORT */
  char srv_close_msg[200]; /* server: status message of the latest CLOSE */
  int shutdown_at_new;     /* server: shut down gracefully at this CALL_NEW */
  const sgrpc_settings *srv_settings; /* world_listen: the server's settings */
};

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
  (void)loop;
  (void)now;
  int i;
  for (i = 0; i < w->nheld; i++) send_ok(w->held[i], (const uint8_t *)"held", 4);
  w->released_held = 1;
}

static void srv_event(sgrpc_net_conn *conn, const sgrpc_event *ev, void *ud, int64_t now) {
  world *w = ud;
  (void)now;
  scall *sc = ev->call_user_data;
  assert_non_null(sgrpc_net_conn_engine(conn));
  assert_ptr_equal(sgrpc_net_conn_server(conn), w->srv);
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW: {
    int k;
    w->srv_new++;
    if (w->shutdown_at_new && w->srv_new == w->shutdown_at_new)
      sgrpc_net_server_shutdown(w->srv, now);
#ifdef SGRPC_SUITE_TLS
    if (w->srv_new == 1) {
      sgrpc_tls_peer pc;
      w->peer_cert_rv = sgrpc_net_conn_peer_cert(conn, &pc);
      if (w->peer_cert_rv == 0)
        snprintf(w->peer_subject, sizeof(w->peer_subject), "%s", pc.subject);
    }
#endif
    if (!w->first_peer[0])
      snprintf(w->first_peer, sizeof(w->first_peer), "%s", sgrpc_net_conn_peer(conn));
    /* A new connection has a new peer (client port). Engine pointers
     * cannot tell: a freed engine's memory is often reused by the next. */
    if (strcmp(sgrpc_net_conn_peer(conn), w->last_peer) != 0) {
      snprintf(w->last_peer, sizeof(w->last_peer), "%s", sgrpc_net_conn_peer(conn));
      w->engines_seen++;
    }
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
      if (w->nheld == w->hold_target && w->signal_on_hold) {
        /* Every held call is in flight: ask for a graceful exit, answer
         * them 100 ms later, while the server drains. */
        assert_int_equal(kill(getpid(), SIGTERM), 0);
        if (w->signal_on_hold == 1)
          assert_int_equal(
              sgrpc_net_timer_start(w->net, A->now() + 100 * MS, release_held, w, NULL), 0);
      }
    }
    break;
  }
  case SGRPC_EV_MESSAGE:
    if (sc->kind == K_ECHO) {
      send_ok(ev->call, ev->u.message.data, ev->u.message.len);
    } else if (sc->kind == K_GOAWAY) {
      /* Answer, then tell the client to take new calls elsewhere. */
      send_ok(ev->call, ev->u.message.data, ev->u.message.len);
      assert_int_equal(sgrpc_conn_goaway(sgrpc_call_conn(ev->call), 0, NULL, 0), 0);
    } else if (sc->kind == K_BIDI) {
      assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0), 0);
    } else if (sc->kind == K_STREAM) {
      uint32_t n;
      assert_int_equal(ev->u.message.len, 4);
      memcpy(&n, ev->u.message.data, 4);
      sc->to_send = n;
      stream_pump(ev->call, sc);
    } else if (sc->kind == K_COLLECT) {
      sc->count++;
      sc->total += (uint32_t)ev->u.message.len;
    }
    break;
  case SGRPC_EV_WRITABLE:
    if (sc->kind == K_STREAM) stream_pump(ev->call, sc);
    break;
  case SGRPC_EV_HALF_CLOSE:
    if (sc->kind == K_BIDI) {
      sgrpc_status st = {0};
      assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
    } else if (sc->kind == K_COLLECT) {
      uint32_t r[2] = {sc->count, sc->total};
      send_ok(ev->call, (const uint8_t *)r, sizeof(r));
    }
    break;
  case SGRPC_EV_CLOSE:
    w->srv_closed++;
    snprintf(w->srv_close_msg, sizeof(w->srv_close_msg), "%.*s",
             (int)ev->u.close.status.message_len,
             ev->u.close.status.message ? ev->u.close.status.message : "");
    if (ev->u.close.status.code == SGRPC_STATUS_OK) w->srv_closed_ok++;
    free(sc);
    break;
  default:
    break;
  }
}

static void cli_event(const sgrpc_event *ev, void *ud, int64_t now) {
  ccall *cc = ud;
  assert_ptr_equal(ev->call_user_data, cc);
  switch (ev->type) {
  case SGRPC_EV_MESSAGE:
    if (cc->kind == K_ECHO || cc->kind == K_BIDI || cc->kind == K_GOAWAY) {
      if (ev->u.message.len != cc->sent_len ||
          memcmp(ev->u.message.data, cc->sent, cc->sent_len) != 0)
        cc->content_ok = 0;
    } else if (cc->kind == K_STREAM) {
      if (ev->u.message.len != STREAM_MSG || ev->u.message.data[0] != (uint8_t)cc->msgs ||
          ev->u.message.data[STREAM_MSG - 1] != (uint8_t)cc->msgs)
        cc->content_ok = 0;
    } else if (cc->kind == K_COLLECT) {
      uint32_t r[2];
      if (ev->u.message.len != sizeof(r)) {
        cc->content_ok = 0;
      } else {
        memcpy(r, ev->u.message.data, sizeof(r));
        if (r[0] != cc->expect_count || r[1] != cc->expect_total) cc->content_ok = 0;
      }
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
    snprintf(cc->msg, sizeof(cc->msg), "%.*s", (int)ev->u.close.status.message_len,
             ev->u.close.status.message ? ev->u.close.status.message : "");
    cc->ended_at = now;
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
  assert_non_null(sgrpc_net_conn_channel(conn));
  w->conn_events++;
  if (ev->type == SGRPC_EV_GOAWAY) w->goaways++;
}

static sgrpc_call *start_on(world *w, sgrpc_net_channel *ch, ccall *cc, int kind,
                            int64_t timeout_ns) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  memset(cc, 0, sizeof(*cc));
  cc->w = w;
  cc->kind = kind;
  cc->content_ok = 1;
  cc->status = -1;
  o.path = kpaths[kind];
  o.deadline = A->now() + timeout_ns;
  o.user_data = cc;
  o.on_event = cli_event;
  assert_int_equal(sgrpc_net_channel_call(ch, &o, A->now(), &call), 0);
  assert_non_null(call);
  return call;
}

static void start_echo(world *w, sgrpc_net_channel *ch, ccall *cc, int i) {
  sgrpc_call *call = start_on(w, ch, cc, K_ECHO, 20 * SEC);
  cc->sent_len = (size_t)snprintf((char *)cc->sent, sizeof(cc->sent), "echo %d", i);
  assert_int_equal(sgrpc_call_send(call, cc->sent, cc->sent_len, SGRPC_SEND_END), 0);
}

/* Runs the loop until *count reaches want or limit_s pass. */
static void run_until_n(world *w, const int *count, int want, int limit_s) {
  int64_t end = A->now() + limit_s * SEC;
  while (*count < want && A->now() < end) A->run_once(w->loop, 20);
  assert_int_equal(*count, want);
}
#define run_until(w, count, want) run_until_n(w, count, want, 20)

static int pick_port(int attempt) { return 20000 + ((int)getpid() * 7 + attempt * 211) % 9000; }

static sgrpc_tls_factory g_server_tls; /* set by single tests */
static void *g_server_tls_ud;
static int g_reuseport; /* set by single tests: world_init listens with SO_REUSEPORT */

static int world_listen(world *w) {
  int rv;
  memset(&w->lo, 0, sizeof(w->lo));
  w->lo.listen = w->addr;
  w->lo.reuseport = w->reuseport;
  w->lo.server.make_tls = g_server_tls;
  w->lo.server.tls_user_data = g_server_tls_ud;
  w->lo.server.on_event = srv_event;
  w->lo.server.user_data = w;
  w->lo.server.settings = w->srv_settings;
  /* Far beyond the waits below: graceful closes must not need it. */
  w->lo.server.drain_timeout_ns = 60 * SEC;
  rv = A->listen(w->loop, &w->lo, &w->srv);
  return rv;
}

/* Listens on fmt (%d: a port below 32768, or the pid in a Unix path),
 * trying other ports when one is taken, and makes one channel. */
static const sgrpc_settings *g_server_settings; /* set by single tests */

static void world_init_opts(world *w, const char *fmt, int tcp, const sgrpc_net_channel_opts *co0) {
  sgrpc_net_channel_opts co;
  int attempt, rv = -1;
  memset(w, 0, sizeof(*w));
  w->reuseport = g_reuseport;
  w->srv_settings = g_server_settings;
  w->loop = A->loop_new();
  assert_non_null(w->loop);
  w->net = A->net(w->loop);
  for (attempt = 0; attempt < 20; attempt++) {
    if (tcp) snprintf(w->addr, sizeof(w->addr), fmt, pick_port(attempt));
    else snprintf(w->addr, sizeof(w->addr), fmt, (int)getpid());
    rv = world_listen(w);
    if (rv == 0 || !tcp || rv != SGRPC_ERR_SYSTEM(EADDRINUSE)) break;
  }
  if (rv != 0) fprintf(stderr, "listen %s: %d\n", w->addr, rv);
  assert_int_equal(rv, 0);
  if (tcp) {
    int port = sgrpc_net_server_port(w->srv);
    assert_true(port > 0 && port < 32768);
  }
  if (co0) co = *co0;
  else memset(&co, 0, sizeof(co));
  co.target = w->addr;
  co.on_conn_event = cli_conn_event;
  co.user_data = w;
  assert_int_equal(A->channel_new(w->loop, &co, &w->ch[0]), 0);
}

static void world_init(world *w, const char *fmt, int tcp) { world_init_opts(w, fmt, tcp, NULL); }

static void world_free(world *w) { A->loop_del(w->loop); }

/* ------------------------------------------------------------------ */
/* The four kinds                                                      */
/* ------------------------------------------------------------------ */

static void four_kinds(world *w, uint32_t stream_n, int collect_n, int bidi_n) {
  ccall echo, stream, collect, bidi;
  sgrpc_call *call;
  int i, base = w->cli_done;

  start_echo(w, w->ch[0], &echo, 1);
  run_until(w, &w->cli_done, base + 1);
  assert_int_equal(echo.status, SGRPC_STATUS_OK);
  assert_int_equal(echo.msgs, 1);
  assert_true(echo.content_ok);

  call = start_on(w, w->ch[0], &stream, K_STREAM, 30 * SEC);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)&stream_n, 4, SGRPC_SEND_END), 0);
  run_until(w, &w->cli_done, base + 2);
  assert_int_equal(stream.status, SGRPC_STATUS_OK);
  assert_int_equal(stream.msgs, stream_n);
  assert_true(stream.content_ok);

  call = start_on(w, w->ch[0], &collect, K_COLLECT, 30 * SEC);
  for (i = 0; i < collect_n; i++) {
    uint8_t buf[100];
    memset(buf, i, sizeof(buf));
    assert_int_equal(sgrpc_call_send(call, buf, (size_t)(i + 1), 0), 0);
    collect.expect_count++;
    collect.expect_total += (uint32_t)(i + 1);
  }
  assert_int_equal(sgrpc_call_close_send(call), 0);
  run_until(w, &w->cli_done, base + 3);
  assert_int_equal(collect.status, SGRPC_STATUS_OK);
  assert_int_equal(collect.msgs, 1);
  assert_true(collect.content_ok);

  call = start_on(w, w->ch[0], &bidi, K_BIDI, 30 * SEC);
  bidi.sent_len = 5;
  memcpy(bidi.sent, "bidi!", 5);
  for (i = 0; i < bidi_n; i++)
    assert_int_equal(sgrpc_call_send(call, bidi.sent, 5, i == bidi_n - 1 ? SGRPC_SEND_END : 0), 0);
  run_until(w, &w->cli_done, base + 4);
  assert_int_equal(bidi.status, SGRPC_STATUS_OK);
  assert_int_equal(bidi.msgs, (uint32_t)bidi_n);
  assert_true(bidi.content_ok);
  assert_int_equal(w->srv_closed_ok, base + 4);
}

static void test_tcp4(void **state) {
  world w;
  (void)state;
  world_init(&w, "127.0.0.1:%d", 1);
  four_kinds(&w, 300, 50, 10); /* 300 kB: well past the 64 KiB send buffer */
  assert_int_equal(strncmp(w.first_peer, "ipv4:127.0.0.1:", 15), 0);
  assert_int_equal(sgrpc_net_server_conn_count(w.srv), 1);
  assert_true(w.conn_events >= 1); /* READY at least */
  world_free(&w);
}

static void test_tcp6(void **state) {
  world w;
  (void)state;
  world_init(&w, "[::1]:%d", 1);
  four_kinds(&w, 300, 50, 10);
  assert_int_equal(strncmp(w.first_peer, "ipv6:[::1]:", 11), 0);
  world_free(&w);
}

static void test_unix(void **state) {
  world w;
  char path[64];
  (void)state;
  world_init(&w, "unix:/tmp/sgrpc-suite-%d.sock", 0);
  four_kinds(&w, 300, 50, 10);
  assert_int_equal(strncmp(w.first_peer, "unix:", 5), 0);
  world_free(&w);
  /* The socket file goes with the listener. */
  snprintf(path, sizeof(path), "/tmp/sgrpc-suite-%d.sock", (int)getpid());
  assert_int_equal(access(path, F_OK), -1);
}

/* ------------------------------------------------------------------ */
/* Restart and reconnect                                               */
/* ------------------------------------------------------------------ */

static void relisten(sgrpc_net_loop *loop, void *ud, int64_t now) {
  world *w = ud;
  (void)loop;
  (void)now;
  w->restart_failures = sgrpc_net_channel_failures(w->ch[0]);
  assert_int_equal(world_listen(w), 0);
}

static void test_restart(void **state) {
  world w;
  sgrpc_net_channel_opts co;
  ccall a, b, c, d;
  int64_t t0;
  (void)state;
  memset(&co, 0, sizeof(co));
  co.wait_for_ready = 1;
  co.backoff.initial = 50 * MS;
  co.backoff.max = 200 * MS;
  co.backoff.min_connect_timeout = 1 * SEC;
  world_init_opts(&w, "127.0.0.1:%d", 1, &co);
  /* A fail-fast channel to the same server. */
  memset(&co, 0, sizeof(co));
  co.target = w.addr;
  co.backoff.initial = 50 * MS;
  assert_int_equal(A->channel_new(w.loop, &co, &w.ch[1]), 0);

  start_echo(&w, w.ch[0], &a, 1);
  run_until(&w, &w.cli_done, 1);
  assert_int_equal(a.status, SGRPC_STATUS_OK);

  /* The server goes away; the channel sees its connection end. */
  sgrpc_net_server_del(w.srv);
  w.srv = NULL;
  {
    int64_t end = A->now() + 3 * SEC;
    while (sgrpc_net_channel_conn_count(w.ch[0]) > 0 && A->now() < end) A->run_once(w.loop, 20);
  }
  assert_int_equal(sgrpc_net_channel_conn_count(w.ch[0]), 0);

  /* Fail fast: refused while the server is down -> UNAVAILABLE, at once. */
  t0 = A->now();
  start_echo(&w, w.ch[1], &b, 2);
  run_until(&w, &w.cli_done, 2);
  assert_int_equal(b.status, SGRPC_STATUS_UNAVAILABLE);
  assert_true(b.ended_at - t0 < SEC);

  /* Wait for ready: the call waits through refused attempts (backoff 50
   * ms growing to 200 ms) until the server is back 400 ms later. */
  t0 = A->now();
  start_echo(&w, w.ch[0], &c, 3);
  assert_int_equal(sgrpc_net_timer_start(w.net, A->now() + 400 * MS, relisten, &w, NULL), 0);
  run_until(&w, &w.cli_done, 3);
  assert_int_equal(c.status, SGRPC_STATUS_OK);
  assert_true(c.content_ok);
  assert_true(w.restart_failures >= 2); /* it did retry while down */
  assert_true(c.ended_at - t0 >= 400 * MS);
  assert_true(c.ended_at - t0 < 3 * SEC);
  /* Backoff reset by the successful connection. */
  assert_int_equal(sgrpc_net_channel_failures(w.ch[0]), 0);

  /* The fail-fast channel works again once its backoff has passed. */
  {
    int64_t end = A->now() + 300 * MS;
    while (A->now() < end) A->run_once(w.loop, 20);
  }
  start_echo(&w, w.ch[1], &d, 4);
  run_until(&w, &w.cli_done, 4);
  assert_int_equal(d.status, SGRPC_STATUS_OK);
  world_free(&w);
}

/* The server sends GOAWAY after answering: the next call goes to a new
 * connection, and the old one is closed once idle. */
static void test_goaway_new_connection(void **state) {
  world w;
  ccall a, b;
  sgrpc_call *call;
  (void)state;
  world_init(&w, "127.0.0.1:%d", 1);
  call = start_on(&w, w.ch[0], &a, K_GOAWAY, 10 * SEC);
  a.sent_len = 3;
  memcpy(a.sent, "bye", 3);
  assert_int_equal(sgrpc_call_send(call, a.sent, 3, SGRPC_SEND_END), 0);
  run_until(&w, &w.cli_done, 1);
  assert_int_equal(a.status, SGRPC_STATUS_OK);
  assert_true(a.content_ok);
  run_until(&w, &w.goaways, 1);
  start_echo(&w, w.ch[0], &b, 2);
  run_until(&w, &w.cli_done, 2);
  assert_int_equal(b.status, SGRPC_STATUS_OK);
  assert_true(b.content_ok);
  assert_int_equal(w.engines_seen, 2); /* the second call came on a new connection */
  {
    int64_t end = A->now() + 3 * SEC;
    while (sgrpc_net_server_conn_count(w.srv) != 1 && A->now() < end) A->run_once(w.loop, 20);
  }
  assert_int_equal(sgrpc_net_server_conn_count(w.srv), 1); /* the old one closed */
  assert_int_equal(sgrpc_net_channel_conn_count(w.ch[0]), 1);
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* Deadlines while connecting                                          */
/* ------------------------------------------------------------------ */

/* A TCP socket bound on loopback: listening (never accepting) or not
 * (connections to it are refused). Returns the fd, port in *port. */
static int raw_socket(int do_listen, int *port) {
  int attempt;
  for (attempt = 0; attempt < 20; attempt++) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *port = pick_port(attempt + 50);
    a.sin_port = htons((uint16_t)*port);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
      if (do_listen) assert_int_equal(listen(fd, 1), 0);
      return fd;
    }
    close(fd);
  }
  fail_msg("no free port");
  return -1;
}

static void test_deadline_connecting(void **state) {
  world w;
  sgrpc_net_channel_opts co;
  ccall a, b, c;
  char target[64];
  int port, refused_fd, silent_fd;
  int64_t t0;
  (void)state;
  memset(&w, 0, sizeof(w));
  w.loop = A->loop_new();
  w.net = A->net(w.loop);
  refused_fd = raw_socket(0, &port);
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);

  /* Refused, fail fast: UNAVAILABLE well before the 5 s deadline. */
  memset(&co, 0, sizeof(co));
  co.target = target;
  assert_int_equal(A->channel_new(w.loop, &co, &w.ch[0]), 0);
  t0 = A->now();
  start_echo(&w, w.ch[0], &a, 1);
  run_until(&w, &w.cli_done, 1);
  assert_int_equal(a.status, SGRPC_STATUS_UNAVAILABLE);
  assert_true(a.ended_at - t0 < SEC);

  /* Refused, wait for ready: retried until the 300 ms deadline, then
   * UNAVAILABLE (no connection could be made), on time. */
  co.wait_for_ready = 1;
  co.backoff.initial = 30 * MS;
  co.backoff.max = 60 * MS;
  assert_int_equal(A->channel_new(w.loop, &co, &w.ch[1]), 0);
  t0 = A->now();
  {
    sgrpc_call *call = start_on(&w, w.ch[1], &b, K_ECHO, 300 * MS);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, SGRPC_SEND_END), 0);
  }
  run_until(&w, &w.cli_done, 2);
  assert_int_equal(b.status, SGRPC_STATUS_UNAVAILABLE);
  assert_true(b.ended_at - t0 >= 290 * MS);
  assert_true(b.ended_at - t0 < 1500 * MS);
  assert_true(sgrpc_net_channel_failures(w.ch[1]) >= 3);

  /* A listener that never accepts nor answers: the deadline still ends
   * the call on time. */
  silent_fd = raw_socket(1, &port);
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  memset(&co, 0, sizeof(co));
  co.target = target;
  assert_int_equal(A->channel_new(w.loop, &co, &w.ch[2]), 0);
  t0 = A->now();
  {
    sgrpc_call *call = start_on(&w, w.ch[2], &c, K_ECHO, 300 * MS);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, SGRPC_SEND_END), 0);
  }
  run_until(&w, &w.cli_done, 3);
  assert_true(c.status == SGRPC_STATUS_DEADLINE_EXCEEDED || c.status == SGRPC_STATUS_UNAVAILABLE);
  assert_true(c.ended_at - t0 >= 290 * MS);
  assert_true(c.ended_at - t0 < 1500 * MS);
  close(refused_fd);
  close(silent_fd);
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* Signals                                                             */
/* ------------------------------------------------------------------ */

static void test_signal_graceful(void **state) {
  enum { N = 20 };
  world w;
  ccall cc[N];
  int i;
  (void)state;
  world_init(&w, "127.0.0.1:%d", 1);
  assert_int_equal(A->catch_signals(w.loop), 0);
  w.hold_target = N;
  w.signal_on_hold = 1;
  for (i = 0; i < N; i++) {
    sgrpc_call *call = start_on(&w, w.ch[0], &cc[i], K_HOLD, 20 * SEC);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"h", 1, SGRPC_SEND_END), 0);
  }
  /* SIGTERM goes out once all N are in; they are answered 100 ms later. */
  run_until(&w, &w.cli_done, N);
  assert_true(w.released_held);
  for (i = 0; i < N; i++) {
    assert_int_equal(cc[i].status, SGRPC_STATUS_OK);
    assert_int_equal(cc[i].msgs, 1);
    assert_true(cc[i].content_ok);
  }
  assert_int_equal(w.srv_closed_ok, N);
  assert_true(sgrpc_net_server_is_shutting_down(w.srv));
  /* The channel was closed too: no new calls. */
  {
    sgrpc_call_opts o;
    memset(&o, 0, sizeof(o));
    o.path = kpaths[K_ECHO];
    o.on_event = cli_event;
    assert_int_equal(sgrpc_net_channel_call(w.ch[0], &o, A->now(), NULL), SGRPC_ERR_GOING_AWAY);
  }
  /* Everything drains and closes by itself. */
  {
    int64_t end = A->now() + 3 * SEC;
    while (sgrpc_net_loop_has_work(w.net) && A->now() < end) A->run_once(w.loop, 20);
  }
  assert_false(sgrpc_net_loop_has_work(w.net));
  assert_int_equal(sgrpc_net_server_conn_count(w.srv), 0);
  world_free(&w);
}

static void test_signal_twice(void **state) {
  enum { N = 10 };
  world w;
  ccall cc[N];
  int i;
  int64_t t0;
  (void)state;
  world_init(&w, "127.0.0.1:%d", 1);
  assert_int_equal(A->catch_signals(w.loop), 0);
  w.hold_target = N;
  w.signal_on_hold = 2; /* signal, but never answer */
  for (i = 0; i < N; i++) {
    sgrpc_call *call = start_on(&w, w.ch[0], &cc[i], K_HOLD, 20 * SEC);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"h", 1, SGRPC_SEND_END), 0);
  }
  run_until(&w, &w.nheld, N);
  /* The first signal only drains: the calls stay open. */
  {
    int64_t end = A->now() + 200 * MS;
    while (A->now() < end) A->run_once(w.loop, 20);
  }
  assert_int_equal(w.cli_done, 0);
  assert_true(sgrpc_net_server_is_shutting_down(w.srv));
  /* The second ends everything at once. */
  t0 = A->now();
  assert_int_equal(kill(getpid(), SIGTERM), 0);
  run_until_n(&w, &w.cli_done, N, 3);
  run_until_n(&w, &w.srv_closed, N, 3);
  for (i = 0; i < N; i++) {
    assert_true(cc[i].status == SGRPC_STATUS_UNAVAILABLE || cc[i].status == SGRPC_STATUS_CANCELLED);
    assert_true(cc[i].ended_at - t0 < SEC);
  }
  assert_int_equal(w.srv_closed_ok, 0);
  assert_false(sgrpc_net_loop_has_work(w.net));
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* One byte at a time                                                  */
/* ------------------------------------------------------------------ */

static int make_xor(void *ud, const char *server_name, sgrpc_tls **ptls);
static size_t xor_bytes_in, xor_calls_in, xor_max_in;

static void test_trickle(void **state) {
  world w;
  sgrpc_net_channel_opts co;
  (void)state;
  /* A pass-through count of what the adapter read, on both sides. */
  memset(&co, 0, sizeof(co));
  co.make_tls = make_xor;
  g_server_tls = make_xor;
  world_init_opts(&w, "127.0.0.1:%d", 1, &co);
  g_server_tls = NULL;
  /* Every read and write moves one byte; every write after that one is
   * a would-block the adapter must wait out. */
  sgrpc_net_loop_set_io_limit(w.net, 1);
  xor_bytes_in = xor_calls_in = xor_max_in = 0;
  four_kinds(&w, 20, 5, 3);
  assert_true(xor_bytes_in > 20 * STREAM_MSG);
  assert_int_equal(xor_max_in, 1); /* no read ever returned more */
  assert_int_equal(xor_calls_in, xor_bytes_in);
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* Listening: names, adopted sockets, socket options                   */
/* ------------------------------------------------------------------ */

/* "localhost:port" on both sides: the server resolves it to listen, the
 * channel at each connection attempt. */
static void test_resolve_localhost(void **state) {
  world w;
  (void)state;
  world_init(&w, "localhost:%d", 1);
  four_kinds(&w, 20, 5, 3);
  assert_true(strncmp(w.first_peer, "ipv4:127.0.0.1:", 15) == 0 ||
              strncmp(w.first_peer, "ipv6:[::1]:", 11) == 0);
  world_free(&w);
}

/* A TCP or Unix socket bound by the user (not listening yet), handed over
 * with use_fd: the adapter listens on it, serves, and closes it with the
 * server. */
static void adopt_one(int is_unix) {
  world w;
  sgrpc_net_channel_opts co;
  int fd = -1, port = 0;
  memset(&w, 0, sizeof(w));
  w.loop = A->loop_new();
  w.net = A->net(w.loop);
  if (is_unix) {
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof(un.sun_path), "/tmp/sgrpc-suite-adopt-%d.sock", (int)getpid());
    unlink(un.sun_path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
    snprintf(w.addr, sizeof(w.addr), "unix:%s", un.sun_path);
  } else {
    fd = raw_socket(0, &port);
    snprintf(w.addr, sizeof(w.addr), "127.0.0.1:%d", port);
  }
  memset(&w.lo, 0, sizeof(w.lo));
  w.lo.use_fd = 1;
  w.lo.fd = fd;
  w.lo.fd_is_unix = is_unix;
  w.lo.server.on_event = srv_event;
  w.lo.server.user_data = &w;
  assert_int_equal(A->listen(w.loop, &w.lo, &w.srv), 0);
  if (!is_unix) assert_int_equal(sgrpc_net_server_port(w.srv), port);
  memset(&co, 0, sizeof(co));
  co.target = w.addr;
  co.on_conn_event = cli_conn_event;
  co.user_data = &w;
  assert_int_equal(A->channel_new(w.loop, &co, &w.ch[0]), 0);
  four_kinds(&w, 50, 5, 3);
  assert_int_equal(strncmp(w.first_peer, is_unix ? "unix:" : "ipv4:127.0.0.1:", is_unix ? 5 : 15),
                   0);
  world_free(&w);
  /* The adapter owned the descriptor: it is closed now. */
  errno = 0;
  assert_int_equal(fcntl(fd, F_GETFD), -1);
  assert_int_equal(errno, EBADF);
  if (is_unix) {
    char path[64];
    snprintf(path, sizeof(path), "/tmp/sgrpc-suite-adopt-%d.sock", (int)getpid());
    unlink(path);
  }
}

static void test_adopt_socket(void **state) {
  void *loop;
  sgrpc_net_listen_opts lo;
  sgrpc_net_server *srv = NULL;
  int pfd[2];
  (void)state;
  adopt_one(0);
  adopt_one(1);
  /* Not a socket: the listen call fails and the descriptor stays the
   * user's, open. */
  loop = A->loop_new();
  assert_int_equal(pipe(pfd), 0);
  memset(&lo, 0, sizeof(lo));
  lo.use_fd = 1;
  lo.fd = pfd[0];
  lo.server.on_event = srv_event;
  assert_int_not_equal(A->listen(loop, &lo, &srv), 0);
  assert_null(srv);
  A->loop_del(loop);
  assert_true(fcntl(pfd[0], F_GETFD) != -1);
  close(pfd[0]);
  close(pfd[1]);
}

static int sockopt_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, level, name, &v, &len) != 0) return -1;
  return v;
}

/* Looks at every TCP socket of this process: listeners must have
 * SO_REUSEADDR (and SO_REUSEPORT when asked), connections TCP_NODELAY.
 * Counts both. */
static void check_tcp_sockets(int want_reuseport, int *listeners, int *conns) {
  int fd;
  *listeners = *conns = 0;
  for (fd = 3; fd < 1024; fd++) {
    int dom = sockopt_int(fd, SOL_SOCKET, SO_DOMAIN);
    if (dom != AF_INET && dom != AF_INET6) continue; /* not a socket, or not TCP/IP */
    if (sockopt_int(fd, SOL_SOCKET, SO_TYPE) != SOCK_STREAM) continue;
    if (sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1) {
      assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 1);
      if (want_reuseport) assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT), 1);
      (*listeners)++;
    } else {
      struct sockaddr_storage ss;
      socklen_t len = sizeof(ss);
      if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) continue;
      assert_int_equal(sockopt_int(fd, IPPROTO_TCP, TCP_NODELAY), 1);
      (*conns)++;
    }
  }
}

/* SO_REUSEPORT: a second server on the same port (one loop per core does
 * this); without the option the port is taken. Every TCP connection, on
 * either side, has TCP_NODELAY. */
static void test_reuseport_nodelay(void **state) {
  enum { NCH = 4, PER = 5 };
  static ccall cc[NCH * PER];
  world w, w2;
  sgrpc_net_server *third = NULL;
  sgrpc_net_listen_opts lo3;
  sgrpc_net_channel_opts co;
  int i, listeners, conns;
  (void)state;
  g_reuseport = 1;
  world_init(&w, "127.0.0.1:%d", 1);
  g_reuseport = 0;
  /* A second server on the same loop and port. */
  memset(&w2, 0, sizeof(w2));
  w2.loop = w.loop;
  w2.net = w.net;
  snprintf(w2.addr, sizeof(w2.addr), "%s", w.addr);
  w2.reuseport = 1;
  assert_int_equal(world_listen(&w2), 0);
  assert_int_equal(sgrpc_net_server_port(w2.srv), sgrpc_net_server_port(w.srv));
  /* Without SO_REUSEPORT the port is in use. */
  memset(&lo3, 0, sizeof(lo3));
  lo3.listen = w.addr;
  lo3.server.on_event = srv_event;
  lo3.server.user_data = &w;
  assert_int_equal(A->listen(w.loop, &lo3, &third), SGRPC_ERR_SYSTEM(EADDRINUSE));
  assert_null(third);

  for (i = 1; i < NCH; i++) {
    memset(&co, 0, sizeof(co));
    co.target = w.addr;
    assert_int_equal(A->channel_new(w.loop, &co, &w.ch[i]), 0);
  }
  for (i = 0; i < NCH * PER; i++) start_echo(&w, w.ch[i % NCH], &cc[i], i);
  run_until(&w, &w.cli_done, NCH * PER);
  for (i = 0; i < NCH * PER; i++) {
    assert_int_equal(cc[i].status, SGRPC_STATUS_OK);
    assert_true(cc[i].content_ok);
  }
  /* The kernel spread the connections over the two listeners. */
  assert_int_equal(w.srv_closed_ok + w2.srv_closed_ok, NCH * PER);
  assert_int_equal(sgrpc_net_server_conn_count(w.srv) + sgrpc_net_server_conn_count(w2.srv), NCH);
  check_tcp_sockets(1, &listeners, &conns);
  assert_int_equal(listeners, 2);
  assert_int_equal(conns, 2 * NCH); /* client and server end of each */
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* Load                                                                */
/* ------------------------------------------------------------------ */

static void test_load(void **state) {
  enum { NCH = 10, PER = 100, N = NCH * PER };
  static ccall cc[N];
  world w;
  sgrpc_net_channel_opts co;
  int i, j;
  int64_t t0;
  (void)state;
  world_init(&w, "127.0.0.1:%d", 1);
  for (i = 1; i < NCH; i++) {
    memset(&co, 0, sizeof(co));
    co.target = w.addr;
    assert_int_equal(A->channel_new(w.loop, &co, &w.ch[i]), 0);
  }
  t0 = A->now();
  for (i = 0; i < NCH; i++)
    for (j = 0; j < PER; j++) start_echo(&w, w.ch[i], &cc[i * PER + j], i * PER + j);
  run_until(&w, &w.cli_done, N);
  for (i = 0; i < N; i++) {
    assert_int_equal(cc[i].status, SGRPC_STATUS_OK);
    assert_int_equal(cc[i].msgs, 1);
    assert_true(cc[i].content_ok);
  }
  assert_int_equal(w.srv_closed_ok, N);
  assert_int_equal(sgrpc_net_server_conn_count(w.srv), NCH);
  for (i = 0; i < NCH; i++) assert_int_equal(sgrpc_net_channel_conn_count(w.ch[i]), 1);
  fprintf(stderr, "[ %s ] %d concurrent calls over %d connections: %.1f ms\n", A->name, N, NCH,
          (double)(A->now() - t0) / 1e6);
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* The TLS seam with a toy session                                     */
/* ------------------------------------------------------------------ */

/* A toy sgrpc_tls (XOR with a key, no handshake): proves any session
 * implementation plugs into the net layer, and counts what the adapter
 * read. */
typedef struct xor_tls {
  sgrpc_tls base; /* first: the net layer sees only this */
  uint8_t key;
  int is_server;
  int failed;
  uint8_t *in_buf, *out_buf; /* decoded plaintext, encoded output */
  size_t in_off, in_len, out_off, out_len;
} xor_tls;

static int xor_append(uint8_t key, uint8_t **buf, size_t *off, size_t *blen, const uint8_t *d,
                      size_t len) {
  uint8_t *nb;
  size_t i;
  if (*off) { /* what was taken goes: earlier peeks are over by now */
    memmove(*buf, *buf + *off, *blen - *off);
    *blen -= *off;
    *off = 0;
  }
  nb = realloc(*buf, *blen + len + 1);
  if (!nb) return SGRPC_ERR_NOMEM;
  *buf = nb;
  for (i = 0; i < len; i++) nb[*blen + i] = d[i] ^ key;
  *blen += len;
  return 0;
}

static void xt_del(sgrpc_tls *t) {
  xor_tls *x = (xor_tls *)t;
  free(x->in_buf);
  free(x->out_buf);
  free(x);
}

/* Set by a test: server sessions fail at their next input, as a TLS
 * session does on a bad record. */
static int g_xor_break_server;

static ssize_t xt_feed(sgrpc_tls *t, const uint8_t *d, size_t len) {
  xor_tls *x = (xor_tls *)t;
  if (x->failed || (x->is_server && g_xor_break_server && len)) {
    x->failed = 1;
    return SGRPC_ERR_TLS_PROTOCOL; /* sticky, as the contract says */
  }
  xor_bytes_in += len;
  if (len) xor_calls_in++;
  if (len > xor_max_in) xor_max_in = len;
  if (xor_append(x->key, &x->in_buf, &x->in_off, &x->in_len, d, len) != 0) return SGRPC_ERR_NOMEM;
  return (ssize_t)len;
}

static ssize_t xt_plain_peek(sgrpc_tls *t, const uint8_t **d) {
  xor_tls *x = (xor_tls *)t;
  if (x->failed) return SGRPC_ERR_TLS_PROTOCOL;
  *d = x->in_buf + x->in_off;
  return (ssize_t)(x->in_len - x->in_off);
}

static int xt_plain_consume(sgrpc_tls *t, size_t n) {
  xor_tls *x = (xor_tls *)t;
  if (n > x->in_len - x->in_off) return SGRPC_ERR_INVALID_ARGUMENT;
  x->in_off += n;
  return 0;
}

static ssize_t xt_write(sgrpc_tls *t, const uint8_t *d, size_t len) {
  xor_tls *x = (xor_tls *)t;
  /* Takes at most 1000 bytes a time: the net layer offers the rest again. */
  if (len > 1000) len = 1000;
  if (xor_append(x->key, &x->out_buf, &x->out_off, &x->out_len, d, len) != 0)
    return SGRPC_ERR_NOMEM;
  return (ssize_t)len;
}

static ssize_t xt_out_peek(sgrpc_tls *t, const uint8_t **d) {
  xor_tls *x = (xor_tls *)t;
  *d = x->out_buf + x->out_off;
  return (ssize_t)(x->out_len - x->out_off);
}

static int xt_out_consume(sgrpc_tls *t, size_t n) {
  xor_tls *x = (xor_tls *)t;
  if (n > x->out_len - x->out_off) return SGRPC_ERR_INVALID_ARGUMENT;
  x->out_off += n;
  return 0;
}

static int xt_want_read(sgrpc_tls *t) { return ((xor_tls *)t)->in_off == ((xor_tls *)t)->in_len; }
static int xt_want_write(sgrpc_tls *t) {
  return ((xor_tls *)t)->out_off < ((xor_tls *)t)->out_len;
}
static int xt_state(sgrpc_tls *t) {
  (void)t;
  return SGRPC_TLS_HANDSHAKE_DONE;
}
static int xt_zero(sgrpc_tls *t) {
  (void)t;
  return 0;
}
static int xt_peer_cert(sgrpc_tls *t, sgrpc_tls_peer *p) {
  (void)t;
  (void)p;
  return SGRPC_ERR_TLS_NO_PEER_CERT;
}
static int xt_info(sgrpc_tls *t, sgrpc_tls_info *i) {
  (void)t;
  memset(i, 0, sizeof(*i));
  return 0;
}
static const char *xt_error_string(sgrpc_tls *t) {
  return ((xor_tls *)t)->failed ? "xor stream broken" : "";
}

static const sgrpc_tls_vtable xor_vtable = {
    SGRPC_TLS_VTABLE_VERSION, "xor", xt_del, xt_feed, xt_plain_peek, xt_plain_consume, xt_write,
    xt_out_peek, xt_out_consume, xt_want_read, xt_want_write, xt_state, xt_zero, xt_zero,
    xt_peer_cert, xt_info, xt_error_string,
};

static int make_xor(void *ud, const char *server_name, sgrpc_tls **ptls) {
  xor_tls *x = calloc(1, sizeof(*x));
  (void)ud;
  if (!x) return SGRPC_ERR_NOMEM;
  x->base.vt = &xor_vtable;
  x->key = 0x5a;
  x->is_server = server_name == NULL;
  *ptls = &x->base;
  return 1;
}

static void test_tls_seam(void **state) {
  world w;
  sgrpc_net_channel_opts co;
  ccall plain;
  (void)state;
  memset(&w, 0, sizeof(w));
  w.loop = A->loop_new();
  w.net = A->net(w.loop);
  snprintf(w.addr, sizeof(w.addr), "unix:/tmp/sgrpc-suite-seam-%d.sock", (int)getpid());
  memset(&w.lo, 0, sizeof(w.lo));
  w.lo.listen = w.addr;
  w.lo.server.on_event = srv_event;
  w.lo.server.user_data = &w;
  w.lo.server.make_tls = make_xor;
  assert_int_equal(A->listen(w.loop, &w.lo, &w.srv), 0);
  memset(&co, 0, sizeof(co));
  co.target = w.addr;
  co.make_tls = make_xor;
  assert_int_equal(A->channel_new(w.loop, &co, &w.ch[0]), 0);
  xor_bytes_in = 0;
  four_kinds(&w, 100, 10, 5);
  assert_true(xor_bytes_in > 100 * STREAM_MSG); /* all of it went through the session */
  /* A peer without the session speaks garbage to this server. */
  memset(&co, 0, sizeof(co));
  co.target = w.addr;
  assert_int_equal(A->channel_new(w.loop, &co, &w.ch[1]), 0);
  start_echo(&w, w.ch[1], &plain, 9);
  run_until(&w, &w.cli_done, 5);
  assert_int_not_equal(plain.status, SGRPC_STATUS_OK);
  world_free(&w);
}

/* A server's session fails while a call is open: the call ends with the
 * session's reason as its status message, not the transport's generic
 * words; the client sees its connection go (UNAVAILABLE). */
static void test_tls_failure_reason_server(void **state) {
  world w;
  sgrpc_net_channel_opts co;
  ccall held;
  sgrpc_call *call;
  (void)state;
  memset(&co, 0, sizeof(co));
  co.make_tls = make_xor;
  g_server_tls = make_xor;
  world_init_opts(&w, "127.0.0.1:%d", 1, &co);
  g_server_tls = NULL;
  w.hold_target = 1;
  call = start_on(&w, w.ch[0], &held, K_HOLD, 20 * SEC);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"h", 1, 0), 0);
  run_until(&w, &w.nheld, 1);
  g_xor_break_server = 1;
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"more", 4, 0), 0);
  run_until(&w, &w.srv_closed, 1);
  g_xor_break_server = 0;
  if (!strstr(w.srv_close_msg, "TLS: xor stream broken"))
    fail_msg("server status message \"%s\"", w.srv_close_msg);
  run_until(&w, &w.cli_done, 1);
  assert_int_equal(held.status, SGRPC_STATUS_UNAVAILABLE);
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* Core pieces without IO                                              */
/* ------------------------------------------------------------------ */

static void test_targets_and_backoff(void **state) {
  sgrpc_net_target t;
  sgrpc_net_backoff b;
  sgrpc_net_backoff_opts o;
  static const char *const bad[] = {"nope", "1.2.3.4", "[::1", "[::1]", "127.0.0.1:",
                                    "127.0.0.1:99999", "127.0.0.1:12a", "unix:", "::1:80",
                                    ":80"};
  int64_t start = 1000 * SEC, at, cur;
  size_t i;
  int k;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(sgrpc_net_target_parse(bad[i], 0, &t), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_net_target_parse(":80", 1, &t), 0); /* servers: all addresses */
  assert_string_equal(t.host, "");
  assert_int_equal(sgrpc_net_target_parse("[::1]:50051", 0, &t), 0);
  assert_int_equal(t.kind, SGRPC_NET_TARGET_TCP);
  assert_string_equal(t.host, "::1");
  assert_int_equal(t.port_num, 50051);
  assert_int_equal(sgrpc_net_target_parse("localhost:8080", 0, &t), 0);
  assert_string_equal(t.host, "localhost");
  assert_string_equal(t.port, "8080");
  assert_int_equal(sgrpc_net_target_parse("unix:/tmp/x.sock", 0, &t), 0);
  assert_int_equal(t.kind, SGRPC_NET_TARGET_UNIX);
  assert_string_equal(t.path, "/tmp/x.sock");

  /* gRPC defaults: 1 s, x1.6, +-20 %, 120 s cap, 20 s minimum connect. */
  sgrpc_net_backoff_init(&b, NULL, 42);
  assert_int_equal(sgrpc_net_backoff_connect_timeout(&b), 20 * SEC);
  at = sgrpc_net_backoff_fail(&b, start);
  assert_int_equal(at, start + SEC); /* first retry: exactly initial */
  cur = SEC;
  for (k = 0; k < 20; k++) {
    double lo, hi;
    cur = (int64_t)((double)cur * 1.6);
    if (cur > 120 * SEC) cur = 120 * SEC;
    lo = (double)cur * 0.8;
    hi = (double)cur * 1.2;
    at = sgrpc_net_backoff_fail(&b, start) - start;
    assert_true((double)at >= lo - 1 && (double)at <= hi + 1);
  }
  assert_int_equal(b.cur, 120 * SEC); /* capped */
  assert_int_equal(sgrpc_net_backoff_connect_timeout(&b), 120 * SEC);
  sgrpc_net_backoff_reset(&b);
  assert_int_equal(sgrpc_net_backoff_fail(&b, start), start + SEC);

  memset(&o, 0, sizeof(o));
  o.initial = 10 * MS;
  o.multiplier = 2;
  o.max = 40 * MS;
  o.min_connect_timeout = 5 * MS;
  sgrpc_net_backoff_init(&b, &o, 7);
  assert_int_equal(sgrpc_net_backoff_connect_timeout(&b), 10 * MS);
  assert_int_equal(sgrpc_net_backoff_fail(&b, 0), 10 * MS);
  assert_int_equal(b.cur, 20 * MS);
  sgrpc_net_backoff_fail(&b, 0);
  sgrpc_net_backoff_fail(&b, 0);
  assert_int_equal(b.cur, 40 * MS);
}

/* ------------------------------------------------------------------ */
/* TLS over OpenSSL (<sgrpc/tls_openssl.h>)                           */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Reliability: shutdown that loses nothing, fd exhaustion, timeouts    */
/* ------------------------------------------------------------------ */

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define SUITE_UNDER_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef SUITE_UNDER_VALGRIND
#define SUITE_UNDER_VALGRIND() 0
#endif

/* SGRPC_SUITE_TRIES (environment) lowers the repeat counts below, for
 * slow runs; under valgrind (scripts/test runs every test binary there)
 * they are 5 unless it says otherwise. */
static int suite_tries(int dflt) {
  const char *e = getenv("SGRPC_SUITE_TRIES");
  int n = e ? atoi(e) : (SUITE_UNDER_VALGRIND() ? 5 : 0);
  return n > 0 && n < dflt ? n : dflt;
}

#ifdef SGRPC_SUITE_TLS
static sgrpc_tls_openssl_ctx *tls_server(int mutual);
static sgrpc_tls_openssl_ctx *tls_client(const char *server_name, const char *override,
                                        int with_cert);
static void tls_world(world *w, const char *fmt, sgrpc_tls_openssl_ctx *srv,
                      sgrpc_tls_openssl_ctx *cli);
#endif

enum { BIG_CALLS = 8, BIG_MSGS = 1049 }; /* 8 x 1049 x 1000 bytes: 1 MiB each */
enum { BIG_NO_LISTEN = 42, BIG_NO_DRAIN = 43 }; /* the server process's failures */

/* One try of the graceful-shutdown race, server and client in two
 * processes (in one thread the client cannot send between the server's
 * last read and its close): 8 concurrent 1 MiB responses, the server
 * shuts down gracefully as the 8th call arrives, and the client's
 * WINDOW_UPDATEs keep coming while the server drains. A server that
 * closes its socket while such a frame is unread makes the kernel send a
 * reset, which drops the responses' tails still in its buffer. Returns
 * the calls lost. */
static int big_drain_try(sgrpc_tls_factory stls, void *stls_ud, sgrpc_tls_factory ctls,
                         void *ctls_ud) {
  ccall cc[BIG_CALLS];
  uint32_t n = BIG_MSGS;
  int i, lost = 0, pfd[2], port = 0, status = -1;
  pid_t pid;
  world w;
  assert_int_equal(pipe(pfd), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* The server: its own loop; exits once everything drained. */
    int attempt, rv = -1;
    int64_t end;
    close(pfd[0]);
    memset(&w, 0, sizeof(w));
    w.loop = A->loop_new();
    w.net = A->net(w.loop);
    w.shutdown_at_new = BIG_CALLS;
    g_server_tls = stls;
    g_server_tls_ud = stls_ud;
    for (attempt = 0; attempt < 40 && rv != 0; attempt++) {
      snprintf(w.addr, sizeof(w.addr), "127.0.0.1:%d", pick_port(attempt));
      rv = world_listen(&w);
    }
    port = rv == 0 ? sgrpc_net_server_port(w.srv) : 0;
    if (write(pfd[1], &port, sizeof(port)) != (ssize_t)sizeof(port) || !port) _exit(BIG_NO_LISTEN);
    close(pfd[1]);
    end = A->now() + 20 * SEC;
    while ((!sgrpc_net_server_is_shutting_down(w.srv) || sgrpc_net_loop_has_work(w.net)) &&
           A->now() < end)
      A->run_once(w.loop, 20);
    rv = sgrpc_net_loop_has_work(w.net) ? BIG_NO_DRAIN : 0;
    A->loop_del(w.loop);
    _exit(rv);
  }
  close(pfd[1]);
  assert_int_equal(read(pfd[0], &port, sizeof(port)), (ssize_t)sizeof(port));
  close(pfd[0]);
  assert_true(port > 0);
  memset(&w, 0, sizeof(w));
  w.loop = A->loop_new();
  w.net = A->net(w.loop);
  /* A client that reads in small pieces, as one on a slower link or a
   * busier machine: the responses' tails wait in the server's socket
   * buffer when its last call ends, and the client's WINDOW_UPDATEs for
   * what it reads arrive after that. */
  sgrpc_net_loop_set_io_limit(w.net, 4096);
  snprintf(w.addr, sizeof(w.addr), "127.0.0.1:%d", port);
  {
    sgrpc_net_channel_opts co;
    sgrpc_settings cs;
    memset(&co, 0, sizeof(co));
    co.target = w.addr;
    co.on_conn_event = cli_conn_event;
    co.user_data = &w;
    co.make_tls = ctls;
    co.tls_user_data = ctls_ud;
    /* Small stream windows: each call's WINDOW_UPDATEs come every 32 KiB
     * it reads, until its very end. */
    sgrpc_settings_default(&cs);
    cs.stream_window = 65535;
    co.settings = &cs;
    assert_int_equal(A->channel_new(w.loop, &co, &w.ch[0]), 0);
  }
  for (i = 0; i < BIG_CALLS; i++) {
    sgrpc_call *call = start_on(&w, w.ch[0], &cc[i], K_STREAM, 20 * SEC);
    assert_int_equal(sgrpc_call_send(call, (const uint8_t *)&n, 4, SGRPC_SEND_END), 0);
  }
  {
    int64_t end = A->now() + 20 * SEC;
    while (w.cli_done < BIG_CALLS && A->now() < end) A->run_once(w.loop, 20);
  }
  for (i = 0; i < BIG_CALLS; i++)
    if (!cc[i].done || cc[i].status != SGRPC_STATUS_OK || cc[i].msgs != BIG_MSGS ||
        !cc[i].content_ok)
      lost++;
  world_free(&w); /* the client hangs up: the server's linger ends */
  assert_int_equal(waitpid(pid, &status, 0), pid);
  /* The server listened, and drained and closed everything by itself.
   * (Under valgrind --error-exitcode=1 the child may also exit 1: it
   * reports the parent's heap it inherited, and glibc's resolver state
   * of a thread that did not survive the fork, as lost.) */
  assert_true(WIFEXITED(status));
  assert_int_not_equal(WEXITSTATUS(status), BIG_NO_LISTEN);
  assert_int_not_equal(WEXITSTATUS(status), BIG_NO_DRAIN);
  return lost;
}

static void big_drain_series(const char *what, int tls_on) {
  int tries = suite_tries(100), t, lost = 0, bad_tries = 0;
  int64_t t0 = A->now();
  sgrpc_tls_factory stls = NULL, ctls = NULL;
  void *srv = NULL, *cli = NULL;
#ifdef SGRPC_SUITE_TLS
  if (tls_on) {
    srv = tls_server(0);
    cli = tls_client(NULL, NULL, 0);
    stls = ctls = sgrpc_tls_openssl_factory;
  }
#endif
  for (t = 0; t < tries; t++) {
    int l = big_drain_try(stls, srv, ctls, cli);
    lost += l;
    bad_tries += l > 0;
  }
#ifdef SGRPC_SUITE_TLS
  sgrpc_tls_openssl_ctx_del(srv);
  sgrpc_tls_openssl_ctx_del(cli);
#endif
  (void)tls_on;
  fprintf(stderr, "%s %s: %d tries, %d calls lost in %d tries, %.1f s\n", A->name, what, tries,
          lost, bad_tries, (double)(A->now() - t0) / 1e9);
  assert_int_equal(lost, 0);
}

static void test_drain_big_responses(void **state) {
  (void)state;
  big_drain_series("graceful shutdown, 8 x 1 MiB", 0);
}

/* The server's CPU time over a span (the whole process: client and
 * server share the loop). */
static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A blocking TCP connection to the world's server (it waits in the
 * backlog until accepted). */
static int raw_connect(const world *w) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)sgrpc_net_server_port(w->srv));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

/* accept() at the descriptor limit: the listener rests instead of
 * spinning, existing connections are served meanwhile, the rest is
 * counted, and accepting resumes once descriptors are free. */
static void test_accept_emfile(void **state) {
  enum { PENDING = 3 };
  world w;
  ccall cc;
  struct rlimit old, low;
  int fds[PENDING], i, probe, base;
  double cpu;
  int64_t end;
  (void)state;
  world_init(&w, "127.0.0.1:%d", 1);
  start_echo(&w, w.ch[0], &cc, 1);
  run_until(&w, &w.cli_done, 1);
  assert_int_equal(cc.status, SGRPC_STATUS_OK);
  base = (int)sgrpc_net_server_conn_count(w.srv);
  for (i = 0; i < PENDING; i++) fds[i] = raw_connect(&w);
  /* No descriptor left for accept: the limit is the next free number. */
  probe = dup(0);
  assert_true(probe >= 0);
  close(probe);
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  low = old;
  low.rlim_cur = (rlim_t)probe;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  cpu = cpu_seconds();
  end = A->now() + SEC;
  while (A->now() < end) A->run_once(w.loop, 20);
  cpu = cpu_seconds() - cpu;
  /* The existing connection is served at the limit. */
  start_echo(&w, w.ch[0], &cc, 2);
  run_until(&w, &w.cli_done, 2);
  assert_int_equal(cc.status, SGRPC_STATUS_OK);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  fprintf(stderr, "%s accept at the fd limit: %.3f s CPU in 1 s, %llu pauses\n", A->name, cpu,
          (unsigned long long)sgrpc_net_server_accept_pauses(w.srv));
  /* Spinning costs about 1.0 s; resting, 0.01 s (0.4 s under valgrind). */
  assert_true(cpu < 0.5);
  if (!A->sheds_at_fd_limit) assert_true(sgrpc_net_server_accept_pauses(w.srv) >= 1);
  /* Accepting resumes: a new connection is taken within a second. */
  {
    int fd = raw_connect(&w);
    size_t want = (size_t)base + 1;
    end = A->now() + 2 * SEC;
    while (sgrpc_net_server_conn_count(w.srv) < want && A->now() < end) A->run_once(w.loop, 20);
    assert_true(sgrpc_net_server_conn_count(w.srv) >= want);
    close(fd);
  }
  for (i = 0; i < PENDING; i++) close(fds[i]);
  world_free(&w);
}

/* A client that never acknowledges the server's SETTINGS: the server
 * gives up after settings_timeout with a GOAWAY SETTINGS_TIMEOUT before
 * it closes, not a silent close. */
static void test_settings_timeout_goaway(void **state) {
  static const uint8_t hello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                 "\x00\x00\x00\x04\x00\x00\x00\x00\x00"; /* empty SETTINGS */
  sgrpc_settings st;
  world w;
  uint8_t in[65536];
  size_t have = 0, off;
  int fd, eof = 0, goaway_code = -1;
  int64_t end;
  (void)state;
  sgrpc_settings_default(&st);
  st.settings_timeout = 200 * MS;
  g_server_settings = &st;
  world_init(&w, "127.0.0.1:%d", 1);
  g_server_settings = NULL;
  fd = raw_connect(&w);
  assert_int_equal(send(fd, hello, sizeof(hello) - 1, 0), (ssize_t)(sizeof(hello) - 1));
  assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
  end = A->now() + 3 * SEC;
  while (!eof && A->now() < end) {
    ssize_t n;
    A->run_once(w.loop, 20);
    while (have < sizeof(in) && (n = recv(fd, in + have, sizeof(in) - have, 0)) > 0)
      have += (size_t)n;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) eof = 1;
  }
  assert_true(eof);
  /* Walk the server's frames: its SETTINGS, ..., a GOAWAY. */
  for (off = 0; off + 9 <= have;) {
    size_t len = (size_t)in[off] << 16 | (size_t)in[off + 1] << 8 | in[off + 2];
    if (off + 9 + len > have) break;
    if (in[off + 3] == 7 && len >= 8)
      goaway_code = (int)((uint32_t)in[off + 13] << 24 | (uint32_t)in[off + 14] << 16 |
                          (uint32_t)in[off + 15] << 8 | in[off + 16]);
    off += 9 + len;
  }
  assert_int_equal(goaway_code, 4); /* SETTINGS_TIMEOUT */
  close(fd);
  world_free(&w);
}

#ifdef SGRPC_SUITE_TLS
/* Throwaway CA and certificates, made by tests/tls/make_certs.sh into a
 * temporary directory for the run and deleted afterwards. */
static char g_certdir[64];

static const char *cert_path(const char *name) {
  static char buf[4][128];
  static int i;
  char *p = buf[i++ & 3];
  snprintf(p, sizeof(buf[0]), "%s/%s", g_certdir, name);
  return p;
}

static int certs_setup(void **state) {
  char cmd[512];
  (void)state;
  snprintf(g_certdir, sizeof(g_certdir), "/tmp/sgrpc-suite-tls-XXXXXX");
  if (!mkdtemp(g_certdir)) return -1;
  snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null 2>&1", SGRPC_TLS_CERT_SCRIPT, g_certdir);
  return system(cmd) == 0 ? 0 : -1;
}

static int certs_teardown(void **state) {
  char cmd[256];
  (void)state;
  if (!g_certdir[0]) return 0;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_certdir);
  return system(cmd) == 0 ? 0 : -1;
}

enum { TLS_SRV_PLAIN = 0, TLS_SRV_MUTUAL = 1 };

static sgrpc_tls_openssl_ctx *tls_server(int mutual) {
  sgrpc_tls_openssl_options o;
  sgrpc_tls_openssl_ctx *t = NULL;
  char err[256] = "";
  sgrpc_tls_openssl_options_default(&o);
  o.is_server = 1;
  o.cert_file = cert_path("server.pem");
  o.key_file = cert_path("server.key");
  if (mutual) {
    o.ca_file = cert_path("ca.pem");
    o.client_cert = SGRPC_TLS_CLIENT_CERT_REQUIRE;
  }
  if (sgrpc_tls_openssl_ctx_new(&t, &o, err, sizeof(err)) != 0) fprintf(stderr, "%s\n", err);
  assert_non_null(t);
  return t;
}

/* A client trusting the test CA; server_name / override as given (NULL:
 * the target's host is checked), with the client certificate when
 * with_cert. */
static sgrpc_tls_openssl_ctx *tls_client(const char *server_name, const char *override,
                                        int with_cert) {
  sgrpc_tls_openssl_options o;
  sgrpc_tls_openssl_ctx *t = NULL;
  char err[256] = "";
  sgrpc_tls_openssl_options_default(&o);
  o.ca_file = cert_path("ca.pem");
  o.server_name = server_name;
  o.target_name_override = override;
  if (with_cert) {
    o.cert_file = cert_path("client.pem");
    o.key_file = cert_path("client.key");
  }
  if (sgrpc_tls_openssl_ctx_new(&t, &o, err, sizeof(err)) != 0) fprintf(stderr, "%s\n", err);
  assert_non_null(t);
  return t;
}

/* A world whose server and channel speak TLS; fmt as world_init. */
static void tls_world(world *w, const char *fmt, sgrpc_tls_openssl_ctx *srv,
                      sgrpc_tls_openssl_ctx *cli) {
  sgrpc_net_channel_opts co;
  memset(&co, 0, sizeof(co));
  co.make_tls = sgrpc_tls_openssl_factory;
  co.tls_user_data = cli;
  g_server_tls = sgrpc_tls_openssl_factory;
  g_server_tls_ud = srv;
  world_init_opts(w, fmt, 1, &co);
  g_server_tls = NULL;
  g_server_tls_ud = NULL;
}

/* All four kinds over TLS on v4 (name checked against the IP SAN) and
 * v6, and through the target-name override; no client certificate, so
 * the handler sees none. */
static void test_tls_four_kinds(void **state) {
  static const char *const fmts[] = {"127.0.0.1:%d", "[::1]:%d"};
  sgrpc_tls_openssl_ctx *srv = tls_server(TLS_SRV_PLAIN), *cli = tls_client(NULL, NULL, 0);
  sgrpc_tls_openssl_ctx *ovr = tls_client(NULL, "foo.test.google.fr", 0);
  world w;
  int i;
  (void)state;
  for (i = 0; i < 3; i++) {
    tls_world(&w, fmts[i == 1], srv, i == 2 ? ovr : cli);
    four_kinds(&w, 300, 40, 25);
    assert_int_equal(w.srv_new, 4);
    assert_int_equal(w.peer_cert_rv, SGRPC_ERR_TLS_NO_PEER_CERT);
    world_free(&w);
  }
  sgrpc_tls_openssl_ctx_del(srv);
  sgrpc_tls_openssl_ctx_del(cli);
  sgrpc_tls_openssl_ctx_del(ovr);
}

/* Mutual TLS: every kind works and the handler sees the client's
 * certificate subject. */
static void test_tls_mutual(void **state) {
  sgrpc_tls_openssl_ctx *srv = tls_server(TLS_SRV_MUTUAL), *cli = tls_client(NULL, NULL, 1);
  world w;
  (void)state;
  tls_world(&w, "127.0.0.1:%d", srv, cli);
  four_kinds(&w, 50, 10, 10);
  assert_int_equal(w.peer_cert_rv, 0);
  assert_non_null(strstr(w.peer_subject, "CN=sgrpc-test-client"));
  world_free(&w);
  sgrpc_tls_openssl_ctx_del(srv);
  sgrpc_tls_openssl_ctx_del(cli);
}

/* A connection that TLS refuses: the calls end UNAVAILABLE, well before
 * their deadline, with why (when the client knows: why != NULL) in their
 * status message, and no call reached the server's handler. */
static void expect_refused_why(sgrpc_tls_openssl_ctx *srv, sgrpc_tls_openssl_ctx *cli,
                               const char *why) {
  world w;
  ccall a, b;
  int64_t t0;
  tls_world(&w, "127.0.0.1:%d", srv, cli);
  t0 = A->now();
  start_echo(&w, w.ch[0], &a, 1);
  start_on(&w, w.ch[0], &b, K_BIDI, 20 * SEC);
  run_until(&w, &w.cli_done, 2);
  assert_int_equal(a.status, SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(b.status, SGRPC_STATUS_UNAVAILABLE);
  assert_true(a.ended_at - t0 < 10 * SEC);
  assert_int_equal(w.srv_new, 0);
  if (why) {
    if (!strstr(a.msg, why) || !strstr(b.msg, why))
      fail_msg("status message \"%s\" / \"%s\" lacks \"%s\"", a.msg, b.msg, why);
  }
  /* Never the transport's generic words: TLS says what went wrong. */
  assert_null(strstr(a.msg, "closed by transport"));
  world_free(&w);
}

static void expect_refused(sgrpc_tls_openssl_ctx *srv, sgrpc_tls_openssl_ctx *cli) {
  expect_refused_why(srv, cli, NULL);
}

static void test_tls_mutual_no_client_cert(void **state) {
  sgrpc_tls_openssl_ctx *srv = tls_server(TLS_SRV_MUTUAL), *cli = tls_client(NULL, NULL, 0);
  (void)state;
  expect_refused(srv, cli);
  sgrpc_tls_openssl_ctx_del(srv);
  sgrpc_tls_openssl_ctx_del(cli);
}

static void test_tls_wrong_hostname(void **state) {
  sgrpc_tls_openssl_ctx *srv = tls_server(TLS_SRV_PLAIN);
  sgrpc_tls_openssl_ctx *cli = tls_client("wrong.example.com", NULL, 0);
  sgrpc_tls_openssl_ctx *ovr = tls_client(NULL, "not-in-the-cert.test", 0);
  (void)state;
  /* SNI/name from server_name, and from the override */
  expect_refused_why(srv, cli, "certificate verify failed: ");
  expect_refused_why(srv, ovr, "ostname mismatch");
  sgrpc_tls_openssl_ctx_del(srv);
  sgrpc_tls_openssl_ctx_del(cli);
  sgrpc_tls_openssl_ctx_del(ovr);
}

/* A client that trusts another CA: the server's chain does not verify,
 * and the calls say so. */
static void test_tls_untrusted_ca(void **state) {
  sgrpc_tls_openssl_ctx *srv = tls_server(TLS_SRV_PLAIN), *cli = NULL;
  sgrpc_tls_openssl_options o;
  char err[256] = "";
  (void)state;
  sgrpc_tls_openssl_options_default(&o);
  o.ca_file = cert_path("other_ca.pem");
  if (sgrpc_tls_openssl_ctx_new(&cli, &o, err, sizeof(err)) != 0) fprintf(stderr, "%s\n", err);
  assert_non_null(cli);
  expect_refused_why(srv, cli, "certificate verify failed");
  sgrpc_tls_openssl_ctx_del(srv);
  sgrpc_tls_openssl_ctx_del(cli);
}

/* A client offering only another protocol than h2: the server refuses
 * it (no_application_protocol) and the calls say so. */
static void test_tls_no_alpn_h2(void **state) {
  sgrpc_tls_openssl_ctx *srv = tls_server(TLS_SRV_PLAIN), *cli = NULL;
  sgrpc_tls_openssl_options o;
  char err[256] = "";
  (void)state;
  sgrpc_tls_openssl_options_default(&o);
  o.ca_file = cert_path("ca.pem");
  o.alpn = "http/1.1";
  if (sgrpc_tls_openssl_ctx_new(&cli, &o, err, sizeof(err)) != 0) fprintf(stderr, "%s\n", err);
  assert_non_null(cli);
  expect_refused_why(srv, cli, "no application protocol");
  sgrpc_tls_openssl_ctx_del(srv);
  sgrpc_tls_openssl_ctx_del(cli);
}

/* TLS with 1-byte reads and writes everywhere: every record and the
 * handshake cross many would-blocks. */
static void test_tls_trickle(void **state) {
  sgrpc_tls_openssl_ctx *srv = tls_server(TLS_SRV_MUTUAL), *cli = tls_client(NULL, NULL, 1);
  world w;
  (void)state;
  tls_world(&w, "127.0.0.1:%d", srv, cli);
  sgrpc_net_loop_set_io_limit(w.net, 7);
  four_kinds(&w, 5, 5, 5);
  assert_int_equal(w.peer_cert_rv, 0);
  world_free(&w);
  sgrpc_tls_openssl_ctx_del(srv);
  sgrpc_tls_openssl_ctx_del(cli);
}

static void test_tls_drain_big_responses(void **state) {
  (void)state;
  big_drain_series("TLS graceful shutdown, 8 x 1 MiB", 1);
}
#endif /* SGRPC_SUITE_TLS */

static int adapter_suite_run(const suite_adapter *adapter) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_targets_and_backoff),
      cmocka_unit_test(test_tcp4),
      cmocka_unit_test(test_tcp6),
      cmocka_unit_test(test_unix),
      cmocka_unit_test(test_resolve_localhost),
      cmocka_unit_test(test_adopt_socket),
      cmocka_unit_test(test_reuseport_nodelay),
      cmocka_unit_test(test_tls_seam),
      cmocka_unit_test(test_tls_failure_reason_server),
      cmocka_unit_test(test_restart),
      cmocka_unit_test(test_goaway_new_connection),
      cmocka_unit_test(test_deadline_connecting),
      cmocka_unit_test(test_signal_graceful),
      cmocka_unit_test(test_signal_twice),
      cmocka_unit_test(test_trickle),
      cmocka_unit_test(test_load),
      cmocka_unit_test(test_settings_timeout_goaway),
      cmocka_unit_test(test_accept_emfile),
      cmocka_unit_test(test_drain_big_responses),
  };
#ifdef SGRPC_SUITE_TLS
  const struct CMUnitTest tls_tests[] = {
      cmocka_unit_test(test_tls_four_kinds),
      cmocka_unit_test(test_tls_mutual),
      cmocka_unit_test(test_tls_mutual_no_client_cert),
      cmocka_unit_test(test_tls_wrong_hostname),
      cmocka_unit_test(test_tls_untrusted_ca),
      cmocka_unit_test(test_tls_no_alpn_h2),
      cmocka_unit_test(test_tls_trickle),
      cmocka_unit_test(test_tls_drain_big_responses),
  };
  char tls_name[64];
#endif
  int failed;
  A = adapter;
  failed = cmocka_run_group_tests_name(adapter->name, tests, NULL, NULL);
#ifdef SGRPC_SUITE_TLS
  snprintf(tls_name, sizeof(tls_name), "%s-tls", adapter->name);
  failed += _cmocka_run_group_tests(tls_name, tls_tests, sizeof(tls_tests) / sizeof(tls_tests[0]),
                                    certs_setup, certs_teardown);
#endif
  return failed;
}

#endif
