/*
 * Messages sent without a copy: sgrpc_call_send_borrowed (release called
 * exactly once: written, cancelled, reset, connection deleted, allocation
 * failure), the gather output sgrpc_conn_out_peekv with short writes, and
 * sgrpc_conn_take_message.
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

/* A borrowed buffer and what happened to it. */
typedef struct loan {
  uint8_t *data;
  size_t len;
  int released;     /* release calls */
  int bad_args;     /* release called with other bytes than lent */
} loan;

static void loan_release(void *ud, const uint8_t *data, size_t len) {
  loan *l = ud;
  l->released++;
  if (data != l->data || len != l->len) l->bad_args++;
}

static void loan_init(loan *l, size_t len, uint32_t seed) {
  size_t i;
  memset(l, 0, sizeof(*l));
  l->data = malloc(len ? len : 1);
  assert_non_null(l->data);
  l->len = len;
  for (i = 0; i < len; i++) {
    seed = seed * 1103515245u + 12345u;
    l->data[i] = (uint8_t)(seed >> 16);
  }
}

/* What the receiving side saw. */
typedef struct seen {
  int msgs;
  size_t len[8];
  uint32_t sum[8];  /* a position-weighted checksum of each message */
  int closes, status[4];
  int echo;         /* server: echo every message back borrowed (taken) */
  int echo_status;  /* server: send OK after the echo */
  int take_rv;      /* last sgrpc_conn_take_message result */
  sgrpc_call *srv_call;
} seen;

static uint32_t checksum(const uint8_t *d, size_t n) {
  uint32_t s = 0;
  size_t i;
  for (i = 0; i < n; i++) s = s * 31u + d[i] + (uint32_t)i;
  return s;
}

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  seen *g = ud;
  if (ev->type == SGRPC_EV_CALL_NEW) g->srv_call = ev->call;
  if (ev->type == SGRPC_EV_MESSAGE && conn == p->cli && g->msgs < 8) {
    g->len[g->msgs] = ev->u.message.len;
    g->sum[g->msgs] = checksum(ev->u.message.data, ev->u.message.len);
    g->msgs++;
  }
  if (ev->type == SGRPC_EV_MESSAGE && conn == p->srv) {
    if (g->echo) {
      const uint8_t *d;
      size_t n;
      sgrpc_release_cb rel;
      void *rud;
      g->take_rv = sgrpc_conn_take_message(conn, &d, &n, &rel, &rud);
      if (g->take_rv == 0) {
        assert_int_equal(n, ev->u.message.len);
        assert_ptr_equal(d, ev->u.message.data);
        /* (allocation failures are tolerated here: the messages the
         * client gets back show what went wrong) */
        if (sgrpc_call_send_borrowed(ev->call, d, n, 0, rel, rud) != 0) {
          rel(rud, d, n);
          sgrpc_call_cancel(ev->call);
        }
        /* taken once only */
        assert_int_equal(sgrpc_conn_take_message(conn, &d, &n, &rel, &rud),
                         SGRPC_ERR_INVALID_STATE);
      } else {
        if (sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0) != 0)
          sgrpc_call_cancel(ev->call);
      }
    } else if (g->msgs < 8) {
      g->len[g->msgs] = ev->u.message.len;
      g->sum[g->msgs] = checksum(ev->u.message.data, ev->u.message.len);
      g->msgs++;
    }
  }
  if (ev->type == SGRPC_EV_HALF_CLOSE && conn == p->srv && g->echo_status) {
    sgrpc_status st;
    memset(&st, 0, sizeof(st));
    if (sgrpc_call_send_status(ev->call, &st) != 0) sgrpc_call_cancel(ev->call);
  }
  if (ev->type == SGRPC_EV_CLOSE) {
    if (conn == p->cli && g->closes < 4) g->status[g->closes++] = ev->u.close.status.code;
    sgrpc_call_release(ev->call);
  }
}

static sgrpc_call *start(pair *p, const char *enc) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/M";
  o.encoding = enc;
  assert_int_equal(sgrpc_call_start(p->cli, &o, p->now, &call), 0);
  return call;
}

/* Moves output with sgrpc_conn_out_peekv and short writes: a random
 * prefix of what is offered, across pieces. Returns bytes moved. */
static size_t vpump(pair *p, sgrpc_conn *from, sgrpc_conn *to) {
  sgrpc_iov iov[6];
  size_t cnt = 0, want, i, off = 0;
  sgrpc_ssize n = sgrpc_conn_out_peekv(from, iov, 6, &cnt);
  if (n <= 0) {
    pair_drain(p, from);
    return 0;
  }
  assert_true(cnt >= 1 && cnt <= 6);
  want = 1 + pair_rand(p) % (size_t)n;
  if (want > p->tmp_cap) {
    p->tmp = realloc(p->tmp, want);
    assert_non_null(p->tmp);
    p->tmp_cap = want;
  }
  for (i = 0; i < cnt && off < want; i++) {
    size_t take = iov[i].len < want - off ? iov[i].len : want - off;
    assert_true(iov[i].len > 0);
    memcpy(p->tmp + off, iov[i].base, take);
    off += take;
  }
  assert_int_equal(sgrpc_conn_out_consume(from, want), 0);
  pair_drain(p, from);
  off = 0;
  while (off < want) {
    sgrpc_ssize got = sgrpc_conn_recv(to, p->tmp + off, want - off, p->now);
    if (got < 0) {
      pair_drain(p, to);
      return off;
    }
    off += (size_t)got;
    pair_drain(p, to);
  }
  return off;
}

static void vrun(pair *p, int rounds) {
  int i;
  pair_drain(p, p->cli);
  pair_drain(p, p->srv);
  for (i = 0; i < rounds; i++) {
    size_t moved = vpump(p, p->cli, p->srv) + vpump(p, p->srv, p->cli);
    if (!moved && !sgrpc_conn_want_write(p->cli) && !sgrpc_conn_want_write(p->srv)) break;
  }
}

static void setup(pair *p, seen *g, const sgrpc_settings *cs, const sgrpc_settings *ss,
                  const sgrpc_mem *mem) {
  memset(g, 0, sizeof(*g));
  assert_int_equal(pair_init(p, cs, ss, mem), 0);
  p->on_event = on_event;
  p->ud = g;
  pair_run(p, 10);
}

/* Borrowed, copied and borrowed again on one call, END on the last; the
 * server echoes each message from the buffer it took; output goes
 * through peekv with short writes. Every byte arrives in order, each
 * release comes once, after the bytes were written. */
static void test_roundtrip_short_writes(void **state) {
  pair p;
  seen g;
  loan a, c;
  uint8_t small[300];
  sgrpc_settings cs;
  sgrpc_call *call;
  (void)state;
  sgrpc_settings_default(&cs);
  cs.max_send_buffer = 1u << 20; /* all three queued at once (both ends) */
  setup(&p, &g, &cs, &cs, NULL);
  g.echo = 1;
  g.echo_status = 1;
  loan_init(&a, 200000, 1);
  loan_init(&c, 70001, 2);
  memset(small, 0x42, sizeof(small));
  call = start(&p, NULL);
  assert_int_equal(sgrpc_call_send_borrowed(call, a.data, a.len, 0, loan_release, &a), 0);
  assert_int_equal(sgrpc_call_send(call, small, sizeof(small), 0), 0);
  assert_int_equal(
      sgrpc_call_send_borrowed(call, c.data, c.len, SGRPC_SEND_END, loan_release, &c), 0);
  assert_int_equal(a.released + c.released, 0);
  vrun(&p, 20000);
  assert_int_equal(g.msgs, 3);
  assert_int_equal(g.len[0], a.len);
  assert_int_equal(g.sum[0], checksum(a.data, a.len));
  assert_int_equal(g.len[1], sizeof(small));
  assert_int_equal(g.sum[1], checksum(small, sizeof(small)));
  assert_int_equal(g.len[2], c.len);
  assert_int_equal(g.sum[2], checksum(c.data, c.len));
  assert_int_equal(g.take_rv, 0);
  assert_int_equal(g.closes, 1);
  assert_int_equal(g.status[0], SGRPC_STATUS_OK);
  assert_int_equal(a.released, 1);
  assert_int_equal(c.released, 1);
  assert_int_equal(a.bad_args + c.bad_args, 0);
  pair_free(&p);
  assert_int_equal(a.released + c.released, 2);
  free(a.data);
  free(c.data);
}

/* The same through sgrpc_conn_out_peek (one piece at a time), with the
 * input split at random: a borrowed message larger than the stream
 * window waits for credit in between. */
static void test_peek_window(void **state) {
  pair p;
  seen g;
  loan a;
  sgrpc_settings ss;
  sgrpc_call *call;
  (void)state;
  sgrpc_settings_default(&ss);
  ss.stream_window = 65535;
  ss.connection_window = 65535;
  setup(&p, &g, NULL, &ss, NULL);
  p.max_split = 777;
  loan_init(&a, 300000, 3);
  call = start(&p, NULL);
  assert_int_equal(
      sgrpc_call_send_borrowed(call, a.data, a.len, SGRPC_SEND_END, loan_release, &a), 0);
  pair_run(&p, 5000);
  assert_int_equal(g.msgs, 1);
  assert_int_equal(g.len[0], a.len);
  assert_int_equal(g.sum[0], checksum(a.data, a.len));
  assert_int_equal(a.released, 1);
  pair_free(&p);
  assert_int_equal(a.released, 1);
  free(a.data);
}

/* Released once when the call is cancelled: before any byte went out (at
 * the cancel), and half-way (once the output that points at it is
 * written or the connection deleted). */
static void test_release_on_cancel(void **state) {
  int k;
  (void)state;
  for (k = 0; k < 2; k++) {
    pair p;
    seen g;
    loan a;
    sgrpc_settings ss;
    sgrpc_call *call;
    sgrpc_iov iov[4];
    size_t cnt;
    sgrpc_settings_default(&ss);
    ss.stream_window = 65535;
    setup(&p, &g, NULL, &ss, NULL);
    loan_init(&a, 500000, 4);
    call = start(&p, NULL);
    assert_int_equal(sgrpc_call_send_borrowed(call, a.data, a.len, 0, loan_release, &a), 0);
    if (k == 1) {
      /* frames pointing into it are queued, not written */
      assert_true(sgrpc_conn_out_peekv(p.cli, iov, 4, &cnt) > 0);
      assert_true(cnt >= 2);
    }
    assert_int_equal(sgrpc_call_cancel(call), 0);
    if (k == 0) assert_int_equal(a.released, 1);
    else assert_int_equal(a.released, 0); /* output still points at it */
    pair_run(&p, 200);
    assert_int_equal(a.released, 1);
    assert_int_equal(g.closes, 1);
    assert_int_equal(g.status[0], SGRPC_STATUS_CANCELLED);
    pair_free(&p);
    assert_int_equal(a.released, 1);
    assert_int_equal(a.bad_args, 0);
    free(a.data);
  }
}

/* The server ends the call while the client's borrowed message waits for
 * window: what is not sent is dropped and released once. */
static void test_release_on_server_status(void **state) {
  pair p;
  seen g;
  loan a;
  sgrpc_settings ss;
  sgrpc_status st;
  sgrpc_call *call;
  (void)state;
  sgrpc_settings_default(&ss);
  ss.stream_window = 65535;
  setup(&p, &g, NULL, &ss, NULL);
  loan_init(&a, 400000, 5);
  call = start(&p, NULL);
  assert_int_equal(sgrpc_call_send_borrowed(call, a.data, a.len, 0, loan_release, &a), 0);
  pair_run(&p, 3); /* headers and the first window's worth */
  assert_non_null(g.srv_call);
  memset(&st, 0, sizeof(st));
  st.code = SGRPC_STATUS_PERMISSION_DENIED;
  assert_int_equal(sgrpc_call_send_status(g.srv_call, &st), 0);
  pair_run(&p, 200);
  assert_int_equal(g.closes, 1);
  assert_int_equal(g.status[0], SGRPC_STATUS_PERMISSION_DENIED);
  assert_int_equal(a.released, 1);
  pair_free(&p);
  assert_int_equal(a.released, 1);
  free(a.data);
}

/* Deleting the connection (nothing ever written, or the transport gone
 * half-way) releases every borrowed message once. */
static void test_release_on_conn_del(void **state) {
  int k;
  (void)state;
  for (k = 0; k < 2; k++) {
    pair p;
    seen g;
    loan a, b;
    sgrpc_call *c1, *c2;
    setup(&p, &g, NULL, NULL, NULL);
    loan_init(&a, 100000, 6);
    loan_init(&b, 30000, 7);
    c1 = start(&p, NULL);
    c2 = start(&p, NULL);
    assert_int_equal(sgrpc_call_send_borrowed(c1, a.data, a.len, 0, loan_release, &a), 0);
    assert_int_equal(sgrpc_call_send_borrowed(c2, b.data, b.len, 0, loan_release, &b), 0);
    if (k == 1) {
      const uint8_t *d;
      assert_true(sgrpc_conn_out_peek(p.cli, &d) > 0);
      assert_int_equal(sgrpc_conn_transport_closed(p.cli), 0);
      pair_drain(&p, p.cli);
    }
    assert_int_equal(a.released + b.released, 0);
    pair_free(&p);
    assert_int_equal(a.released, 1);
    assert_int_equal(b.released, 1);
    free(a.data);
    free(b.data);
  }
}

/* Back-pressure and bad arguments: nothing queued, release not called. */
static void test_refused(void **state) {
  pair p;
  seen g;
  loan a;
  sgrpc_settings cs;
  sgrpc_call *call;
  sgrpc_iov iov[2];
  size_t cnt;
  (void)state;
  sgrpc_settings_default(&cs);
  cs.max_send_buffer = 1000;
  cs.max_send_message_size = 100000;
  setup(&p, &g, &cs, NULL, NULL);
  loan_init(&a, 50000, 8);
  call = start(&p, NULL);
  assert_int_equal(sgrpc_call_send_borrowed(NULL, a.data, 1, 0, NULL, NULL),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send_borrowed(call, NULL, 1, 0, NULL, NULL),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send_borrowed(call, a.data, 1, 0x80, NULL, NULL),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_call_send_borrowed(call, a.data, 100001, 0, loan_release, &a),
                   SGRPC_ERR_MESSAGE_TOO_LARGE);
  assert_int_equal(sgrpc_call_send_borrowed(call, a.data, a.len, 0, loan_release, &a), 0);
  /* over max_send_buffer now: the next one waits for WRITABLE */
  assert_int_equal(sgrpc_call_send_borrowed(call, a.data, a.len, 0, loan_release, &a),
                   SGRPC_ERR_WOULDBLOCK);
  assert_int_equal(sgrpc_call_send(call, a.data, 10, 0), SGRPC_ERR_WOULDBLOCK);
  assert_int_equal(a.released, 0);
  assert_int_equal(sgrpc_conn_out_peekv(NULL, iov, 2, &cnt), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_out_peekv(p.cli, NULL, 2, &cnt), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_out_peekv(p.cli, iov, 0, &cnt), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_out_peekv(p.cli, iov, 2, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  /* max 1: one piece, and consuming past what is offered is refused */
  {
    sgrpc_ssize n = sgrpc_conn_out_peekv(p.cli, iov, 1, &cnt);
    assert_true(n > 0);
    assert_int_equal(cnt, 1);
    assert_int_equal((size_t)n, iov[0].len);
    assert_int_equal(sgrpc_conn_out_consume(p.cli, 1u << 30), SGRPC_ERR_INVALID_ARGUMENT);
  }
  assert_int_equal(sgrpc_call_close_send(call), 0);
  pair_run(&p, 500);
  assert_int_equal(g.msgs, 1);
  assert_int_equal(g.len[0], a.len);
  assert_int_equal(a.released, 1);
  pair_free(&p);
  free(a.data);
}

/* A compressing call compresses a copy: release comes before the return,
 * and the message arrives whole. */
static void test_compressing_call(void **state) {
  pair p;
  seen g;
  loan a;
  sgrpc_call *call;
  (void)state;
  setup(&p, &g, NULL, NULL, NULL);
  loan_init(&a, 40000, 9);
  memset(a.data, 'q', 20000); /* something to compress */
  call = start(&p, "gzip");
  assert_int_equal(
      sgrpc_call_send_borrowed(call, a.data, a.len, SGRPC_SEND_END, loan_release, &a), 0);
  assert_int_equal(a.released, 1);
  pair_run(&p, 500);
  assert_int_equal(g.msgs, 1);
  assert_int_equal(g.len[0], a.len);
  assert_int_equal(g.sum[0], checksum(a.data, a.len));
  pair_free(&p);
  assert_int_equal(a.released, 1);
  free(a.data);
}

/* take_message: refused for a message that arrived in one frame (it
 * points into the input), after a non-message event, and on NULL. A
 * message assembled from several frames is taken and outlives the
 * connection. */
static void test_take_message(void **state) {
  pair p;
  seen g;
  loan a;
  sgrpc_call *call;
  const uint8_t *d;
  size_t n;
  sgrpc_release_cb rel;
  void *rud;
  (void)state;
  setup(&p, &g, NULL, NULL, NULL);
  g.echo = 1;
  g.echo_status = 1;
  loan_init(&a, 1000, 10);
  call = start(&p, NULL);
  assert_int_equal(sgrpc_conn_take_message(NULL, &d, &n, &rel, &rud),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_take_message(p.srv, &d, NULL, &rel, &rud),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_take_message(p.srv, &d, &n, &rel, &rud),
                   SGRPC_ERR_INVALID_STATE);
  /* one small frame: echoed by copy */
  assert_int_equal(sgrpc_call_send(call, a.data, a.len, SGRPC_SEND_END), 0);
  pair_run(&p, 100);
  assert_int_equal(g.take_rv, SGRPC_ERR_INVALID_STATE);
  assert_int_equal(g.msgs, 1);
  assert_int_equal(g.sum[0], checksum(a.data, a.len));
  pair_free(&p);
  free(a.data);

  /* a taken message outlives the connection */
  {
    sgrpc_event ev;
    int got = 0;
    memset(&g, 0, sizeof(g));
    assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
    pair_run(&p, 10);
    loan_init(&a, 100000, 11);
    call = start(&p, NULL);
    assert_int_equal(sgrpc_call_send(call, a.data, a.len, SGRPC_SEND_END), 0);
    /* move bytes by hand and pull the server's events one at a time */
    while (!got) {
      const uint8_t *o;
      sgrpc_ssize k = sgrpc_conn_out_peek(p.cli, &o);
      assert_true(k > 0);
      assert_int_equal(sgrpc_conn_recv(p.srv, o, (size_t)k, p.now), k);
      sgrpc_conn_out_consume(p.cli, (size_t)k);
      while (sgrpc_conn_next_event(p.srv, &ev) == 1) {
        if (ev.type == SGRPC_EV_MESSAGE) {
          assert_int_equal(sgrpc_conn_take_message(p.srv, &d, &n, &rel, &rud), 0);
          got = 1;
          break;
        }
      }
      pair_drain(&p, p.cli);
    }
    pair_free(&p);
    assert_int_equal(n, a.len);
    assert_int_equal(checksum(d, n), checksum(a.data, a.len));
    rel(rud, d, n);
    free(a.data);
  }
}

/* One echo of n bytes (the server takes the request and sends it back
 * borrowed) on a new call; returns the call's status at the client. */
static int echo_once(pair *p, seen *g, size_t n, uint32_t seed) {
  loan a;
  sgrpc_call *call = start(p, NULL);
  int before = 0, st;
  g->closes = g->msgs = 0; /* seen keeps 4 and 8 of them */
  loan_init(&a, n, seed);
  assert_int_equal(sgrpc_call_send(call, a.data, a.len, SGRPC_SEND_END), 0);
  pair_run(p, 2000);
  assert_int_equal(g->closes, before + 1);
  st = g->status[before];
  if (st == SGRPC_STATUS_OK) {
    assert_int_equal(g->len[g->msgs - 1], n);
    assert_int_equal(g->sum[g->msgs - 1], checksum(a.data, a.len));
  }
  free(a.data);
  return st;
}

/* A large message buffer the server lets go of (the taken request, once
 * its echo is written) is kept for the next large message, counted
 * against the budget; one that would take more than half of the room
 * left is not kept; a message that needs the room gets it (the kept
 * buffer is given back first); sgrpc_conn_trim gives it back. */
static void test_kept_buffer(void **state) {
  sgrpc_budget *shared = NULL;
  sgrpc_settings ss;
  pair p;
  seen g;
  size_t kept;
  (void)state;
  assert_int_equal(sgrpc_budget_new(&shared, 1u << 20, NULL), 0);
  sgrpc_settings_default(&ss);
  ss.shared_budget = shared;
  setup(&p, &g, NULL, &ss, NULL);
  g.echo = 1;
  g.echo_status = 1;
  assert_int_equal(echo_once(&p, &g, 300000, 21), SGRPC_STATUS_OK);
  kept = sgrpc_budget_used(shared);
  assert_true(kept >= 300000 && kept < 400000); /* no call open: the kept buffer */
  /* the next message of that size comes into it: nothing more counted */
  assert_int_equal(echo_once(&p, &g, 290000, 22), SGRPC_STATUS_OK);
  assert_int_equal(sgrpc_budget_used(shared), kept);
  /* 900 KB do not fit next to it: it goes, the call is served, and its
   * own buffer is not kept (more than half of the room) */
  assert_int_equal(echo_once(&p, &g, 900000, 23), SGRPC_STATUS_OK);
  assert_int_equal(sgrpc_budget_used(shared), 0);
  assert_int_equal(echo_once(&p, &g, 300000, 24), SGRPC_STATUS_OK);
  assert_true(sgrpc_budget_used(shared) >= 300000);
  assert_int_equal(sgrpc_conn_trim(p.srv), 0);
  assert_int_equal(sgrpc_budget_used(shared), 0);
  /* kept again, then freed with the connection */
  assert_int_equal(echo_once(&p, &g, 300000, 25), SGRPC_STATUS_OK);
  assert_true(sgrpc_budget_used(shared) >= 300000);
  pair_free(&p);
  assert_int_equal(sgrpc_budget_used(shared), 0);
  sgrpc_budget_del(shared);
}

/* Every allocation of a borrowed exchange fails in turn: each send that
 * returned 0 is released exactly once, the others never; nothing leaks. */
static void test_alloc_failures(void **state) {
  long at;
  int clean = 0;
  (void)state;
  for (at = 1; at < 400 && !clean; at++) {
    failmem fm;
    sgrpc_mem mem;
    pair p;
    seen g;
    loan a, b;
    sgrpc_call *call = NULL;
    sgrpc_call_opts o;
    int ra = -1, rb = -1;
    sgrpc_settings s;
    sgrpc_settings_default(&s);
    s.max_send_buffer = 1u << 20;
    failmem_init(&fm, &mem);
    memset(&g, 0, sizeof(g));
    if (pair_init(&p, &s, &s, &mem) != 0) continue;
    p.on_event = on_event;
    p.ud = &g;
    g.echo = 1;
    g.echo_status = 1;
    fm.count = 0;
    fm.fail_at = at;
    loan_init(&a, 90000, 12);
    loan_init(&b, 20000, 13);
    pair_run(&p, 10);
    memset(&o, 0, sizeof(o));
    o.path = "/t.S/M";
    if (sgrpc_call_start(p.cli, &o, p.now, &call) == 0) {
      ra = sgrpc_call_send_borrowed(call, a.data, a.len, 0, loan_release, &a);
      rb = sgrpc_call_send_borrowed(call, b.data, b.len, SGRPC_SEND_END, loan_release, &b);
    }
    vrun(&p, 3000);
    if (fm.failures == 0) {
      clean = 1;
      assert_int_equal(g.msgs, 2);
      assert_int_equal(g.sum[0], checksum(a.data, a.len));
      assert_int_equal(g.sum[1], checksum(b.data, b.len));
    }
    pair_free(&p);
    assert_int_equal(a.released, ra == 0 ? 1 : 0);
    assert_int_equal(b.released, rb == 0 ? 1 : 0);
    assert_int_equal(a.bad_args + b.bad_args, 0);
    assert_int_equal(fm.live, 0);
    free(a.data);
    free(b.data);
  }
  assert_true(clean);
}

/* Large copied messages (sgrpc_call_send, reserve/commit: the rpc
 * layer's path) are handed over from the send buffer instead of being
 * copied again: they arrive whole and in order with a small one between,
 * through short gather writes; the output shows them as pieces of their
 * own. Every allocation failing in turn leaves nothing behind. */
static void test_large_copied(void **state) {
  long at;
  int clean = 0;
  (void)state;
  for (at = 0; at < 300 && !clean; at++) {
    failmem fm;
    sgrpc_mem mem;
    pair p;
    seen g;
    loan a, b;
    sgrpc_settings cs;
    sgrpc_call *call = NULL;
    sgrpc_call_opts o;
    uint8_t *buf;
    int ok = 1;
    failmem_init(&fm, &mem);
    sgrpc_settings_default(&cs);
    cs.max_send_buffer = 4u << 20;
    memset(&g, 0, sizeof(g));
    if (pair_init(&p, &cs, NULL, &mem) != 0) continue;
    p.on_event = on_event;
    p.ud = &g;
    loan_init(&a, 300000, 14);
    loan_init(&b, 270000, 15);
    pair_run(&p, 10);
    fm.count = 0;
    fm.fail_at = at; /* 0: no failure */
    memset(&o, 0, sizeof(o));
    o.path = "/t.S/M";
    if (sgrpc_call_start(p.cli, &o, p.now, &call) != 0) ok = 0;
    if (ok && sgrpc_call_send(call, a.data, a.len, 0) != 0) ok = 0;
    if (ok && at == 0) {
      /* handed over: the first piece is a frame header, the body follows
       * as a piece of its own, borrowed from the old send buffer */
      sgrpc_iov iov[4];
      size_t cnt;
      assert_true(sgrpc_conn_out_peekv(p.cli, iov, 4, &cnt) > 0);
      assert_true(cnt >= 2);
    }
    if (ok && sgrpc_call_send(call, (const uint8_t *)"tiny", 4, 0) != 0) ok = 0;
    if (ok && sgrpc_call_send_reserve(call, b.len, &buf) != 0) ok = 0;
    if (ok) {
      memcpy(buf, b.data, b.len);
      if (sgrpc_call_send_commit(call, SGRPC_SEND_END) != 0) ok = 0;
    }
    vrun(&p, 20000);
    if (at == 0) {
      assert_true(ok);
      assert_int_equal(g.msgs, 3);
      assert_int_equal(g.len[0], a.len);
      assert_int_equal(g.sum[0], checksum(a.data, a.len));
      assert_int_equal(g.len[1], 4);
      assert_int_equal(g.len[2], b.len);
      assert_int_equal(g.sum[2], checksum(b.data, b.len));
    } else if (fm.failures == 0) {
      clean = 1;
      assert_int_equal(g.msgs, 3);
    }
    pair_free(&p);
    assert_int_equal(fm.live, 0);
    free(a.data);
    free(b.data);
  }
  assert_true(clean);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_short_writes),
      cmocka_unit_test(test_peek_window),
      cmocka_unit_test(test_release_on_cancel),
      cmocka_unit_test(test_release_on_server_status),
      cmocka_unit_test(test_release_on_conn_del),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_compressing_call),
      cmocka_unit_test(test_take_message),
      cmocka_unit_test(test_kept_buffer),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_large_copied),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
