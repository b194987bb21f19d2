/*
 * The net layer's service pass costs O(connections with work), not
 * O(connections held): a loop over a fake adapter (ops that count, no
 * sockets) holds many idle server connections and one busy one, and the
 * work done for the busy one (connections serviced, as counted by
 * sgrpc_net_loop_serviced, and writes to the idle ones) must be the same
 * with 16 idle connections as with 2 000. Counts, not time: the test is
 * deterministic.
 *
 * The client side too: 16 or 2 000 channels (one connection each, as
 * sgrpc-loadgen has), one of which makes a call.
 *
 * What makes a connection busy is each of the ways work reaches the net
 * layer: bytes read (a unary call answered from the server's callback,
 * which wakes the connection being serviced), an engine API call made
 * outside any callback (the wake hook kicks the loop's timer), and an
 * expiry (only the connection that is due is looked at). An allocation
 * failure while the loop makes room for one more connection in its
 * expiry heap (or a channel in the channels' heap) refuses that
 * connection (channel) and leaks nothing.
 */
#include "support.h"

#include <sgrpc/net_adapter.h>

#include <stdlib.h>
#include <string.h>

#define MS 1000000LL
#define T0 (1000 * MS)

typedef struct ftx {
  size_t writes;  /* writes taken */
  int closed;
  int capture;    /* keep the bytes (the busy connection's) */
  uint8_t *buf;
  size_t len, cap;
} ftx;

typedef struct world {
  sgrpc_net_loop *loop;
  sgrpc_net_server *srv;
  ftx *tx;
  sgrpc_net_conn **conns;
  size_t n;
  int64_t armed;
  size_t arms;
  size_t calls_answered;
  /* client side: the connections the channels asked to connect */
  sgrpc_net_conn **cconns;
  size_t ncconns;
  int client_closed; /* the busy channel's call ended OK */
} world;

static sgrpc_ssize op_write(void *t, const uint8_t *p, size_t len) {
  ftx *x = t;
  x->writes++;
  if (x->capture) {
    if (x->len + len > x->cap) {
      size_t cap = x->cap ? x->cap : 4096;
      while (cap < x->len + len) cap *= 2;
      x->buf = realloc(x->buf, cap);
      assert_non_null(x->buf);
      x->cap = cap;
    }
    memcpy(x->buf + x->len, p, len);
    x->len += len;
  }
  return (sgrpc_ssize)len;
}

static void op_close(void *t) { ((ftx *)t)->closed = 1; }

static int op_connect(void *ud, sgrpc_net_conn *c, const sgrpc_net_address *addr) {
  world *w = ud;
  (void)addr;
  assert_true(w->ncconns < w->n);
  w->cconns[w->ncconns++] = c;
  return 0;
}

static void op_timer_arm(void *ud, int64_t when) {
  world *w = ud;
  w->armed = when;
  w->arms++;
}

/* The server answers each unary call from its own callback: the message
 * back, then OK. The sends wake the connection being serviced. */
static void on_server_event(sgrpc_net_conn *c, const sgrpc_event *ev, void *ud, int64_t now) {
  world *w = ud;
  static const sgrpc_status ok = {SGRPC_STATUS_OK, NULL, NULL, 0, NULL, 0};
  (void)c;
  (void)now;
  if (ev->type == SGRPC_EV_MESSAGE)
    assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0), 0);
  else if (ev->type == SGRPC_EV_HALF_CLOSE) {
    assert_int_equal(sgrpc_call_send_status(ev->call, &ok), 0);
    w->calls_answered++;
  }
}

static void world_init(world *w, size_t n, const sgrpc_mem *mem) {
  sgrpc_net_ops ops;
  sgrpc_net_server_opts so;
  memset(w, 0, sizeof(*w));
  memset(&ops, 0, sizeof(ops));
  ops.write = op_write;
  ops.close = op_close;
  ops.timer_arm = op_timer_arm;
  ops.connect = op_connect;
  w->armed = SGRPC_NEVER;
  assert_int_equal(sgrpc_net_loop_new(&w->loop, &ops, w, mem), 0);
  memset(&so, 0, sizeof(so));
  so.on_event = on_server_event;
  so.user_data = w;
  assert_int_equal(sgrpc_net_server_new(&w->srv, w->loop, &so), 0);
  w->n = n;
  w->tx = calloc(n, sizeof(*w->tx));
  w->conns = calloc(n, sizeof(*w->conns));
  w->cconns = calloc(n, sizeof(*w->cconns));
  assert_non_null(w->tx);
  assert_non_null(w->conns);
  assert_non_null(w->cconns);
}

static void world_free(world *w) {
  size_t i;
  sgrpc_net_loop_del(w->loop);
  for (i = 0; i < w->n; i++) free(w->tx[i].buf);
  free(w->tx);
  free(w->conns);
  free(w->cconns);
}

/* Accepts the n connections, one microsecond apart (their expiries
 * differ), and services the loop once: every one sends its preface. */
static void world_accept_all(world *w, size_t busy) {
  size_t i;
  w->tx[busy].capture = 1; /* its preface goes to the client */
  for (i = 0; i < w->n; i++)
    assert_int_equal(sgrpc_net_server_accept(w->srv, &w->tx[i], "fake", T0 + (int64_t)i * 1000,
                                             &w->conns[i]),
                     0);
  sgrpc_net_loop_service(w->loop, T0 + 10 * MS);
  for (i = 0; i < w->n; i++) assert_true(w->tx[i].writes > 0);
}

static size_t writes_except(const world *w, size_t busy) {
  size_t i, n = 0;
  for (i = 0; i < w->n; i++)
    if (i != busy) n += w->tx[i].writes;
  return n;
}

/* Moves the test-driven peer engine's output into the busy net
 * connection nc and nc's output (the fake transport of slot busy) into
 * the peer, until nothing moves. With answer set the peer is a server
 * that echoes each message and ends each call OK; else a client that
 * releases its ended calls. */
static void shuttle_peer(world *w, sgrpc_conn *peer, sgrpc_net_conn *nc, size_t busy,
                         int answer, int64_t now) {
  static const sgrpc_status ok = {SGRPC_STATUS_OK, NULL, NULL, 0, NULL, 0};
  int round;
  for (round = 0; round < 50; round++) {
    const uint8_t *p;
    sgrpc_ssize n = sgrpc_conn_out_peek(peer, &p);
    ftx *x = &w->tx[busy];
    int moved = 0;
    sgrpc_event ev;
    assert_true(n >= 0);
    if (n > 0) {
      sgrpc_net_conn_read(nc, p, (size_t)n, now);
      assert_int_equal(sgrpc_conn_out_consume(peer, (size_t)n), 0);
      moved = 1;
    }
    if (x->len > 0) {
      size_t len = x->len;
      x->len = 0;
      assert_true(sgrpc_conn_recv(peer, x->buf, len, now) >= 0);
      moved = 1;
    }
    while (sgrpc_conn_next_event(peer, &ev) == 1) {
      if (answer && ev.type == SGRPC_EV_MESSAGE)
        assert_int_equal(sgrpc_call_send(ev.call, ev.u.message.data, ev.u.message.len, 0), 0);
      else if (answer && ev.type == SGRPC_EV_HALF_CLOSE)
        assert_int_equal(sgrpc_call_send_status(ev.call, &ok), 0);
      else if (ev.type == SGRPC_EV_CLOSE)
        sgrpc_call_release(ev.call);
      if (answer) moved = 1;
    }
    if (!moved) return;
  }
  fail_msg("the busy connection did not settle");
}

/* The client engine against the busy server connection. */
static void shuttle(world *w, sgrpc_conn *cli, size_t busy, int64_t now) {
  shuttle_peer(w, cli, w->conns[busy], busy, 0, now);
}

typedef struct counts {
  uint64_t call;    /* serviced for one unary call over the busy connection */
  uint64_t wake;    /* serviced for a ping sent outside any callback */
  uint64_t expiry;  /* serviced when the earliest expiry fires */
  uint64_t idle_timer; /* serviced by a timer with nothing due */
} counts;

static void scenario(size_t n, counts *out) {
  world w;
  sgrpc_conn *cli = NULL;
  sgrpc_call *call = NULL;
  sgrpc_call_opts co;
  size_t busy = n / 2, other;
  uint64_t s0;
  int64_t now = T0 + 20 * MS, when;
  static const uint8_t msg[] = {1, 2, 3, 4};

  world_init(&w, n, NULL);
  world_accept_all(&w, busy);
  assert_int_equal(sgrpc_conn_client_new(&cli, NULL, NULL, now), 0);

  /* the client's preface and SETTINGS, and the server's back */
  shuttle(&w, cli, busy, now);
  other = writes_except(&w, busy);

  /* one unary call, answered from the server's callback */
  memset(&co, 0, sizeof(co));
  co.path = "/t.S/Echo";
  assert_int_equal(sgrpc_call_start(cli, &co, now, &call), 0);
  assert_int_equal(sgrpc_call_send(call, msg, sizeof(msg), 0), 0);
  assert_int_equal(sgrpc_call_close_send(call), 0);
  s0 = sgrpc_net_loop_serviced(w.loop);
  shuttle(&w, cli, busy, now);
  out->call = sgrpc_net_loop_serviced(w.loop) - s0;
  assert_int_equal(w.calls_answered, 1);
  assert_int_equal(writes_except(&w, busy), other);

  /* the engine trims a connection's caches as soon as its first call
   * has ended: that expiry is due now, so the loop's timer is armed for
   * now already; let it fire, so the wake below has to arm it */
  sgrpc_net_loop_timer(w.loop, now);
  assert_true(sgrpc_net_loop_next_expiry(w.loop) > now);

  /* an API call outside any callback: the wake hook kicks the loop */
  w.arms = 0;
  w.armed = SGRPC_NEVER;
  s0 = sgrpc_net_loop_serviced(w.loop);
  assert_int_equal(sgrpc_conn_ping(sgrpc_net_conn_engine(w.conns[busy]), 7), 0);
  assert_true(w.arms >= 1);
  assert_true(w.armed <= now);
  assert_int_equal(w.tx[busy].len, 0);
  sgrpc_net_loop_timer(w.loop, now);
  out->wake = sgrpc_net_loop_serviced(w.loop) - s0;
  assert_true(w.tx[busy].len > 0); /* the PING went out */
  shuttle(&w, cli, busy, now);
  assert_int_equal(writes_except(&w, busy), other);

  /* a timer with nothing due services nothing */
  when = sgrpc_net_loop_next_expiry(w.loop);
  assert_true(when > now);
  s0 = sgrpc_net_loop_serviced(w.loop);
  sgrpc_net_loop_timer(w.loop, now);
  out->idle_timer = sgrpc_net_loop_serviced(w.loop) - s0;

  /* the earliest expiry (an idle connection's, the first accepted: its
   * SETTINGS were never acknowledged) services that connection only */
  if (when != SGRPC_NEVER) {
    s0 = sgrpc_net_loop_serviced(w.loop);
    sgrpc_net_loop_timer(w.loop, when);
    out->expiry = sgrpc_net_loop_serviced(w.loop) - s0;
    assert_true(sgrpc_net_loop_next_expiry(w.loop) > when);
  }

  sgrpc_conn_del(cli);
  world_free(&w);
}

static void test_service_is_o_active(void **state) {
  counts small, big;
  (void)state;
  memset(&small, 0, sizeof(small));
  memset(&big, 0, sizeof(big));
  scenario(16, &small);
  scenario(2000, &big);
  print_message("connections serviced (16 / 2000 held): call %u/%u, wake %u/%u, expiry %u/%u\n",
                (unsigned)small.call, (unsigned)big.call, (unsigned)small.wake, (unsigned)big.wake,
                (unsigned)small.expiry, (unsigned)big.expiry);
  /* the same work whatever the number of idle connections */
  assert_int_equal(big.call, small.call);
  assert_int_equal(big.wake, small.wake);
  assert_int_equal(big.idle_timer, 0);
  assert_int_equal(small.idle_timer, 0);
  assert_int_equal(big.expiry, small.expiry);
  /* and little of it: a handful of services of the one busy connection */
  assert_true(big.call >= 1 && big.call <= 8);
  assert_true(big.wake >= 1 && big.wake <= 2);
  assert_true(big.expiry >= 1 && big.expiry <= 2);
}


/* ---- client side: a channel per connection, as sgrpc-loadgen has ---- */

static void on_client_call(const sgrpc_event *ev, void *ud, int64_t now) {
  world *w = ud;
  (void)now;
  if (ev->type == SGRPC_EV_CLOSE && ev->u.close.status.code == SGRPC_STATUS_OK)
    w->client_closed = 1;
}

/* The server end of the busy channel's connection: an engine the test
 * drives, answering each call with its message and OK. */
static void shuttle_client(world *w, sgrpc_conn *srv, size_t busy, int64_t now) {
  shuttle_peer(w, srv, w->cconns[busy], busy, 1, now);
}

/* n channels, each connected (one connection each), all idle but one,
 * which makes a unary call. Returns the connections serviced for it. */
static uint64_t client_scenario(size_t n) {
  world w;
  sgrpc_net_channel_opts co;
  sgrpc_net_channel **ch;
  sgrpc_conn *srv = NULL;
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  size_t busy = n / 2, i, other;
  int64_t now = T0;
  uint64_t s0, serviced;
  static const uint8_t msg[] = {5, 6, 7};
  world_init(&w, n, NULL);
  ch = calloc(n, sizeof(*ch));
  assert_non_null(ch);
  memset(&co, 0, sizeof(co));
  co.target = "ipv4:127.0.0.1:1";
  for (i = 0; i < n; i++) {
    assert_int_equal(sgrpc_net_channel_new(&ch[i], w.loop, &co), 0);
    sgrpc_net_channel_get_state(ch[i], 1, now);
    assert_int_equal(w.ncconns, i + 1);
  }
  w.tx[busy].capture = 1;
  for (i = 0; i < n; i++) {
    sgrpc_net_conn_set_transport(w.cconns[i], &w.tx[i]);
    sgrpc_net_conn_connected(w.cconns[i], now + (int64_t)i * 1000);
  }
  sgrpc_net_loop_service(w.loop, now + 10 * MS);
  for (i = 0; i < n; i++) assert_true(w.tx[i].writes > 0); /* the prefaces */
  now += 20 * MS;
  assert_int_equal(sgrpc_conn_server_new(&srv, NULL, NULL, now), 0);
  shuttle_client(&w, srv, busy, now);
  sgrpc_net_loop_service(w.loop, now);
  assert_int_equal(sgrpc_net_channel_get_state(ch[busy], 0, now), SGRPC_NET_CHANNEL_READY);
  other = writes_except(&w, busy);

  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Echo";
  o.on_event = on_client_call;
  o.user_data = &w;
  s0 = sgrpc_net_loop_serviced(w.loop);
  assert_int_equal(sgrpc_net_channel_call(ch[busy], &o, now, &call), 0);
  assert_int_equal(sgrpc_call_send(call, msg, sizeof(msg), 0), 0);
  assert_int_equal(sgrpc_call_close_send(call), 0);
  sgrpc_net_loop_service(w.loop, now);
  shuttle_client(&w, srv, busy, now);
  sgrpc_net_loop_service(w.loop, now);
  serviced = sgrpc_net_loop_serviced(w.loop) - s0;
  assert_int_equal(w.client_closed, 1);
  assert_int_equal(writes_except(&w, busy), other);

  sgrpc_conn_del(srv);
  world_free(&w); /* frees the channels too */
  free(ch);
  return serviced;
}

static void test_client_is_o_active(void **state) {
  uint64_t small, big;
  (void)state;
  small = client_scenario(16);
  big = client_scenario(2000);
  print_message("client connections serviced for one call (16 / 2000 channels): %u/%u\n",
                (unsigned)small, (unsigned)big);
  assert_int_equal(big, small);
  assert_true(big >= 1 && big <= 8);
}

/* The allocations of the accept that grows the expiry heap (past 64
 * connections) fail one by one: the accept is refused with NOMEM, the
 * loop goes on, and nothing leaks. */
static void test_heap_growth_nomem(void **state) {
  sgrpc_mem mem;
  failmem fm;
  long before, after, k;
  world w;
  size_t i;
  (void)state;
  /* a clean run: which allocations the 65th accept makes */
  failmem_init(&fm, &mem);
  world_init(&w, 65, &mem);
  for (i = 0; i < 64; i++)
    assert_int_equal(sgrpc_net_server_accept(w.srv, &w.tx[i], "f", T0, &w.conns[i]), 0);
  before = fm.count;
  assert_int_equal(sgrpc_net_server_accept(w.srv, &w.tx[64], "f", T0, &w.conns[64]), 0);
  after = fm.count;
  world_free(&w);
  assert_int_equal(fm.live, 0);
  assert_true(after > before);
  for (k = before + 1; k <= after; k++) {
    sgrpc_net_conn *c = NULL;
    int rv;
    failmem_init(&fm, &mem);
    world_init(&w, 65, &mem);
    for (i = 0; i < 64; i++)
      assert_int_equal(sgrpc_net_server_accept(w.srv, &w.tx[i], "f", T0, &w.conns[i]), 0);
    fm.fail_at = k;
    rv = sgrpc_net_server_accept(w.srv, &w.tx[64], "f", T0, &c);
    fm.fail_at = 0;
    assert_int_equal(rv, SGRPC_ERR_NOMEM);
    assert_null(c);
    assert_int_equal(sgrpc_net_server_conn_count(w.srv), 64);
    /* the loop still works: the 64 send their prefaces */
    sgrpc_net_loop_service(w.loop, T0 + MS);
    for (i = 0; i < 64; i++) assert_true(w.tx[i].writes > 0);
    assert_int_equal(sgrpc_net_server_accept(w.srv, &w.tx[64], "f", T0, &c), 0);
    sgrpc_net_loop_service(w.loop, T0 + 2 * MS);
    assert_true(w.tx[64].writes > 0);
    world_free(&w);
    assert_int_equal(fm.live, 0);
  }
}

/* The same for the channels' expiry heap (room for 16, grown by the
 * 17th channel). */
static void test_channel_heap_growth_nomem(void **state) {
  sgrpc_mem mem;
  failmem fm;
  sgrpc_net_channel *ch[17];
  sgrpc_net_channel_opts co;
  long before, after, k;
  world w;
  size_t i;
  (void)state;
  memset(&co, 0, sizeof(co));
  co.target = "ipv4:127.0.0.1:1";
  failmem_init(&fm, &mem);
  world_init(&w, 1, &mem);
  for (i = 0; i < 16; i++) assert_int_equal(sgrpc_net_channel_new(&ch[i], w.loop, &co), 0);
  before = fm.count;
  assert_int_equal(sgrpc_net_channel_new(&ch[16], w.loop, &co), 0);
  after = fm.count;
  world_free(&w);
  assert_int_equal(fm.live, 0);
  for (k = before + 1; k <= after; k++) {
    sgrpc_net_channel *c = NULL;
    int rv;
    failmem_init(&fm, &mem);
    world_init(&w, 1, &mem);
    for (i = 0; i < 16; i++) assert_int_equal(sgrpc_net_channel_new(&ch[i], w.loop, &co), 0);
    fm.fail_at = k;
    rv = sgrpc_net_channel_new(&c, w.loop, &co);
    fm.fail_at = 0;
    assert_int_equal(rv, SGRPC_ERR_NOMEM);
    assert_null(c);
    assert_int_equal(sgrpc_net_channel_new(&c, w.loop, &co), 0);
    sgrpc_net_loop_service(w.loop, T0);
    assert_int_equal(sgrpc_net_channel_get_state(c, 0, T0), SGRPC_NET_CHANNEL_IDLE);
    sgrpc_net_channel_del(c);
    world_free(&w);
    assert_int_equal(fm.live, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_service_is_o_active),
      cmocka_unit_test(test_client_is_o_active),
      cmocka_unit_test(test_heap_growth_nomem),
      cmocka_unit_test(test_channel_heap_growth_nomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
