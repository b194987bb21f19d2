/*
 * The in-memory test channel (<sgrpc/testing.h>): a client and a server
 * engine whose output is copied into each other's input, events going to
 * the rpc client and to the router, on a clock the caller moves.
 */
#include <sgrpc/testing.h>

#include <stdlib.h>
#include <string.h>
#include "rpc_mem.h"

#define DEFAULT_ROUNDS 10000
#define DEFAULT_START 1000000000LL

/* A pending retry timer of the client (sgrpc_rpc_client_set_timer). */
typedef struct tc_timer {
  struct tc_timer *next;
  int64_t when;
  void *arg;
} tc_timer;

struct sgrpc_test_channel {
  sgrpc_mem mem;
  sgrpc_conn *cli, *srv;
  sgrpc_router *router;
  sgrpc_rpc_client client;
  int64_t now;
  int err;      /* first fatal error, sticky */
  int closing;  /* del: only drain, never send */
  uint8_t *buf; /* copy of one side's output: dispatch may call into it */
  size_t buf_cap;
  tc_timer *timers; /* the client's retry timers, unordered */
};

static void note_err(sgrpc_test_channel *ch, int rv) {
  if (rv < 0 && sgrpc_is_fatal(rv) && !ch->err) ch->err = rv;
}

/* Dispatches every queued event of conn. Returns the count. */
static size_t drain(sgrpc_test_channel *ch, sgrpc_conn *conn) {
  sgrpc_event ev;
  size_t n = 0;
  int rv;
  while ((rv = sgrpc_conn_next_event(conn, &ev)) == 1) {
    n++;
    if (conn == ch->srv)
      (void)sgrpc_router_dispatch(ch->router, conn, &ev, ch->now);
    else
      (void)sgrpc_event_dispatch(&ev, ch->now);
    /* the puller releases, after the CLOSE was delivered */
    if (ev.type == SGRPC_EV_CLOSE) sgrpc_call_release(ev.call);
    if (ev.type == SGRPC_EV_CONN_CLOSED && ev.u.conn_closed.reason < 0 && !ch->closing)
      note_err(ch, ev.u.conn_closed.reason);
  }
  if (rv < 0) note_err(ch, rv);
  return n;
}

/* Moves one peek of from's output into to. Returns bytes moved. */
static size_t pump(sgrpc_test_channel *ch, sgrpc_conn *from, sgrpc_conn *to) {
  const uint8_t *data;
  sgrpc_ssize n = sgrpc_conn_out_peek(from, &data);
  size_t off = 0;
  if (n <= 0) {
    drain(ch, from);
    return 0;
  }
  if ((size_t)n > ch->buf_cap) {
    uint8_t *nb = rpc_malloc(&ch->mem, (size_t)n);
    if (!nb) {
      /* leave the bytes in the engine; the next run tries again */
      note_err(ch, SGRPC_ERR_NOMEM);
      return 0;
    }
    rpc_free(&ch->mem, ch->buf);
    ch->buf = nb;
    ch->buf_cap = (size_t)n;
  }
  memcpy(ch->buf, data, (size_t)n);
  sgrpc_conn_out_consume(from, (size_t)n);
  drain(ch, from);
  while (off < (size_t)n) {
    sgrpc_ssize got = sgrpc_conn_recv(to, ch->buf + off, (size_t)n - off, ch->now);
    if (got < 0) {
      note_err(ch, (int)got);
      drain(ch, to);
      break;
    }
    off += (size_t)got;
    if (drain(ch, to) == 0 && got == 0) {
      /* an engine that neither reads nor queues events: give up loudly */
      note_err(ch, SGRPC_ERR_FATAL);
      break;
    }
  }
  return (size_t)n;
}

static int tc_timer_start(void *ctx, int64_t when, void *arg, void **ptimer) {
  sgrpc_test_channel *ch = ctx;
  tc_timer *t;
  if (ch->closing) return SGRPC_ERR_INVALID_STATE;
  t = rpc_malloc(&ch->mem, sizeof(*t));
  if (!t) return SGRPC_ERR_NOMEM;
  t->when = when;
  t->arg = arg;
  t->next = ch->timers;
  ch->timers = t;
  *ptimer = t;
  return 0;
}

static void tc_timer_cancel(void *ctx, void *timer) {
  sgrpc_test_channel *ch = ctx;
  tc_timer **pp;
  for (pp = &ch->timers; *pp; pp = &(*pp)->next) {
    if (*pp == timer) {
      *pp = ((tc_timer *)timer)->next;
      rpc_free(&ch->mem, timer);
      return;
    }
  }
}

/* Fires the timers due at now (all of them when every is set), earliest
 * first. Returns how many fired. */
static size_t fire_timers(sgrpc_test_channel *ch, int every) {
  size_t n = 0;
  while (n < DEFAULT_ROUNDS) {
    tc_timer **pp, **best = NULL, *t;
    void *arg;
    for (pp = &ch->timers; *pp; pp = &(*pp)->next)
      if ((every || (*pp)->when <= ch->now) && (!best || (*pp)->when < (*best)->when)) best = pp;
    if (!best) break;
    t = *best;
    *best = t->next;
    arg = t->arg;
    rpc_free(&ch->mem, t);
    sgrpc_rpc_timer_fire(arg, ch->now);
    n++;
  }
  return n;
}

int64_t sgrpc_test_channel_next_timer(const sgrpc_test_channel *ch) {
  const tc_timer *t;
  int64_t when = SGRPC_NEVER;
  if (!ch) return SGRPC_NEVER;
  for (t = ch->timers; t; t = t->next)
    if (t->when < when) when = t->when;
  return when;
}

int sgrpc_test_channel_run(sgrpc_test_channel *ch, size_t max_rounds) {
  size_t i;
  if (!ch) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!max_rounds) max_rounds = DEFAULT_ROUNDS;
  drain(ch, ch->cli);
  drain(ch, ch->srv);
  for (i = 0; i < max_rounds && !ch->err; i++) {
    size_t moved = fire_timers(ch, 0);
    moved += pump(ch, ch->cli, ch->srv);
    moved += pump(ch, ch->srv, ch->cli);
    if (!moved && !sgrpc_conn_want_write(ch->cli) && !sgrpc_conn_want_write(ch->srv))
      return ch->err;
  }
  return ch->err ? ch->err : SGRPC_ERR_WOULDBLOCK;
}

int sgrpc_test_channel_new(sgrpc_test_channel **pch, sgrpc_router *router,
                           const sgrpc_test_channel_opts *opts) {
  sgrpc_test_channel_opts o;
  sgrpc_test_channel *ch;
  sgrpc_mem m;
  int rv;
  if (!pch || !router) return SGRPC_ERR_INVALID_ARGUMENT;
  if (opts) o = *opts;
  else memset(&o, 0, sizeof(o));
  if (sgrpc_mem_resolve(&m, o.mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  ch = rpc_malloc(&m, sizeof(*ch));
  if (!ch) return SGRPC_ERR_NOMEM;
  memset(ch, 0, sizeof(*ch));
  ch->mem = m;
  ch->router = router;
  ch->now = o.now ? o.now : DEFAULT_START;
  {
    const sgrpc_mem *em = &ch->mem;
    rv = sgrpc_conn_client_new(&ch->cli, o.client_settings, em, ch->now);
    if (rv == 0) rv = sgrpc_conn_server_new(&ch->srv, o.server_settings, em, ch->now);
  }
  if (rv == 0) {
    sgrpc_rpc_client_init(&ch->client, ch->cli, &ch->mem);
    sgrpc_rpc_client_set_timer(&ch->client, tc_timer_start, tc_timer_cancel, ch);
    rv = sgrpc_test_channel_run(ch, 0);
  }
  if (rv < 0) {
    sgrpc_conn_del(ch->cli);
    sgrpc_conn_del(ch->srv);
    rpc_free(&ch->mem, ch->buf);
    rpc_free(&m, ch);
    return rv == SGRPC_ERR_CONN_NOMEM ? SGRPC_ERR_NOMEM : rv;
  }
  *pch = ch;
  return 0;
}

void sgrpc_test_channel_del(sgrpc_test_channel *ch) {
  sgrpc_mem m;
  if (!ch) return;
  /* Calls waiting out a retry backoff start their attempt now, so that
   * they end below like every open call (no new timer is armed while
   * closing: such a retry ends with its last status). */
  ch->closing = 1;
  (void)fire_timers(ch, 1);
  /* Every open call ends with its CLOSE event, so the router and the
   * client free their per-call state before the engines go. */
  drain(ch, ch->cli);
  drain(ch, ch->srv);
  (void)sgrpc_conn_transport_closed(ch->cli);
  (void)sgrpc_conn_transport_closed(ch->srv);
  drain(ch, ch->cli);
  drain(ch, ch->srv);
  sgrpc_conn_del(ch->cli);
  sgrpc_conn_del(ch->srv);
  m = ch->mem;
  rpc_free(&m, ch->buf);
  rpc_free(&m, ch);
}

sgrpc_rpc_client *sgrpc_test_channel_client(sgrpc_test_channel *ch) {
  return ch ? &ch->client : NULL;
}

int64_t sgrpc_test_channel_now(const sgrpc_test_channel *ch) { return ch ? ch->now : 0; }

int sgrpc_test_channel_advance(sgrpc_test_channel *ch, int64_t ns) {
  if (!ch || ns < 0) return SGRPC_ERR_INVALID_ARGUMENT;
  ch->now += ns;
  if (sgrpc_conn_next_expiry(ch->cli) <= ch->now)
    note_err(ch, sgrpc_conn_handle_expiry(ch->cli, ch->now));
  if (sgrpc_conn_next_expiry(ch->srv) <= ch->now)
    note_err(ch, sgrpc_conn_handle_expiry(ch->srv, ch->now));
  return sgrpc_test_channel_run(ch, 0);
}

sgrpc_conn *sgrpc_test_channel_client_conn(const sgrpc_test_channel *ch) {
  return ch ? ch->cli : NULL;
}
sgrpc_conn *sgrpc_test_channel_server_conn(const sgrpc_test_channel *ch) {
  return ch ? ch->srv : NULL;
}
