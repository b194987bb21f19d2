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

int sgrpc_test_channel_run(sgrpc_test_channel *ch, size_t max_rounds) {
  size_t i;
  if (!ch) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!max_rounds) max_rounds = DEFAULT_ROUNDS;
  drain(ch, ch->cli);
  drain(ch, ch->srv);
  for (i = 0; i < max_rounds && !ch->err; i++) {
    size_t moved = pump(ch, ch->cli, ch->srv);
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
  ch->closing = 1;
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
