/*
 * The adapter core (see <sgrpc/adapter.h>): connections, servers and
 * channels over an adapter's ops. No system calls, no clock reads: time
 * comes in as `now` or through ops->now.
 */
#include <sgrpc/adapter.h>

#include <stdlib.h>
#include <string.h>

#define AC_WRITE_ROUNDS 64
#define AC_FILTER_BUF (16 * 1024 + 512)

enum { AC_IDLE = 0, AC_CONNECTING, AC_OPEN, AC_WAITING };

/* Per-call routing record of a client call (the engine call's user_data). */
typedef struct ac_call {
  sgrpc_ac_call_cb cb;
  void *user_data;
} ac_call;

struct sgrpc_ac_conn {
  sgrpc_ac_hub *hub;
  sgrpc_conn *engine;
  void *tx;
  sgrpc_ac_server *server;
  sgrpc_ac_channel *channel;
  int state;
  uint8_t closing;         /* close at the next service pass */
  uint8_t dead;            /* closed; freed when the hub unwinds */
  uint8_t blocked;         /* the transport took less than offered */
  uint8_t goaway_seen;     /* client: the peer sent GOAWAY */
  uint8_t close_when_idle; /* close once the engine holds no call */
  uint8_t ever_connected;
  int64_t attempt_start, connect_deadline, retry_at;
  /* filter state: wire bytes waiting for the transport, plaintext buffer */
  sgrpc_ac_filter filter;
  int has_filter;
  uint8_t *wbuf, *pbuf;
  size_t wlen, woff;
  /* write_owned fill state */
  const uint8_t *fill_src;
  size_t fill_len;
  int fill_called;
  sgrpc_ssize fill_got;
  char peer[128];
  sgrpc_ac_conn *prev, *next;
};

struct sgrpc_ac_server {
  sgrpc_ac_hub *hub;
  sgrpc_settings settings;
  int has_settings;
  sgrpc_ac_event_cb on_event;
  void *user_data;
  int64_t drain_timeout_ns;
  int64_t drain_at; /* SGRPC_NEVER until shutdown with a timeout */
  int user_releases;
  int single_goaway;
  sgrpc_ac_filter_factory make_filter;
  void *filter_ud;
  void *listener;
  int port;
  size_t nconns;
  int shutting_down;
  sgrpc_ac_server *prev, *next;
};

struct sgrpc_ac_channel {
  sgrpc_ac_hub *hub;
  sgrpc_ac_target target;
  char *authority;
  sgrpc_settings settings;
  int has_settings;
  sgrpc_ac_event_cb on_conn_event;
  void *user_data;
  int wait_for_ready;
  sgrpc_ac_filter_factory make_filter;
  void *filter_ud;
  sgrpc_ac_backoff backoff;
  int64_t retry_at; /* no attempt before this (backing off); 0: none */
  sgrpc_ac_conn *cur;
  size_t nconns;
  int closing;
  sgrpc_ac_channel *prev, *next;
};

struct sgrpc_ac_hub {
  sgrpc_ac_ops ops;
  void *ud;
  int depth; /* entry points on the stack; the outermost one services */
  int64_t armed;
  size_t io_limit;
  int signals;
  sgrpc_ac_conn *conns, *graveyard;
  sgrpc_ac_server *servers;
  sgrpc_ac_channel *channels;
};

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ------------------------------------------------------------------ */
/* Targets                                                             */
/* ------------------------------------------------------------------ */

int sgrpc_ac_target_parse(const char *s, int passive, sgrpc_ac_target *t) {
  const char *colon, *port;
  size_t hlen, plen;
  if (!s || !t) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(t, 0, sizeof(*t));
  if (strncmp(s, "unix:", 5) == 0) {
    plen = strlen(s + 5);
    if (plen == 0 || plen >= sizeof(t->path)) return SGRPC_ERR_INVALID_ARGUMENT;
    t->kind = SGRPC_AC_TARGET_UNIX;
    memcpy(t->path, s + 5, plen + 1);
    return 0;
  }
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':') return SGRPC_ERR_INVALID_ARGUMENT;
    hlen = (size_t)(end - s - 1);
    if (hlen == 0 || hlen >= sizeof(t->host) || memchr(s + 1, '[', hlen))
      return SGRPC_ERR_INVALID_ARGUMENT;
    memcpy(t->host, s + 1, hlen);
    colon = end + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return SGRPC_ERR_INVALID_ARGUMENT;
    hlen = (size_t)(colon - s);
    /* A bare IPv6 literal needs brackets. */
    if (hlen >= sizeof(t->host) || memchr(s, ':', hlen)) return SGRPC_ERR_INVALID_ARGUMENT;
    memcpy(t->host, s, hlen);
  }
  t->host[hlen] = '\0';
  port = colon + 1;
  plen = strlen(port);
  if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen)
    return SGRPC_ERR_INVALID_ARGUMENT;
  t->port_num = atoi(port);
  if (t->port_num > 65535) return SGRPC_ERR_INVALID_ARGUMENT;
  if (hlen == 0 && !passive) return SGRPC_ERR_INVALID_ARGUMENT;
  memcpy(t->port, port, plen + 1);
  t->kind = SGRPC_AC_TARGET_TCP;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Backoff                                                             */
/* ------------------------------------------------------------------ */

void sgrpc_ac_backoff_init(sgrpc_ac_backoff *b, const sgrpc_ac_backoff_opts *o, uint64_t seed) {
  memset(b, 0, sizeof(*b));
  if (o) b->opts = *o;
  if (b->opts.initial <= 0) b->opts.initial = 1000000000LL;
  if (b->opts.multiplier < 1.0) b->opts.multiplier = 1.6;
  if (b->opts.jitter <= 0 || b->opts.jitter >= 1) b->opts.jitter = o && o->jitter < 0 ? 0 : 0.2;
  if (b->opts.max <= 0) b->opts.max = 120000000000LL;
  if (b->opts.max < b->opts.initial) b->opts.max = b->opts.initial;
  if (b->opts.min_connect_timeout <= 0) b->opts.min_connect_timeout = 20000000000LL;
  b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
  b->cur = b->opts.initial;
}

void sgrpc_ac_backoff_reset(sgrpc_ac_backoff *b) {
  b->cur = b->opts.initial;
  b->attempts = 0;
}

int64_t sgrpc_ac_backoff_connect_timeout(const sgrpc_ac_backoff *b) {
  return b->cur > b->opts.min_connect_timeout ? b->cur : b->opts.min_connect_timeout;
}

/* xorshift64*: a uniform double in [0, 1). */
static double backoff_rand(sgrpc_ac_backoff *b) {
  uint64_t x = b->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  b->rng = x;
  return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

int64_t sgrpc_ac_backoff_fail(sgrpc_ac_backoff *b, int64_t attempt_start) {
  int64_t delay = b->cur;
  double next;
  /* gRPC: the first retry waits exactly `initial`; later ones are
   * jittered uniformly in [-jitter, +jitter] of the current backoff. */
  if (b->attempts > 0 && b->opts.jitter > 0)
    delay += (int64_t)((backoff_rand(b) * 2.0 - 1.0) * b->opts.jitter * (double)b->cur);
  if (delay < 0) delay = 0;
  b->attempts++;
  next = (double)b->cur * b->opts.multiplier;
  b->cur = next >= (double)b->opts.max ? b->opts.max : (int64_t)next;
  return attempt_start + delay;
}

/* ------------------------------------------------------------------ */
/* Hub bookkeeping                                                     */
/* ------------------------------------------------------------------ */

static void hub_service_all(sgrpc_ac_hub *h, int64_t now);

static void hub_enter(sgrpc_ac_hub *h) { h->depth++; }

static void hub_leave(sgrpc_ac_hub *h, int64_t now) {
  if (--h->depth == 0) hub_service_all(h, now);
}

/* User-facing calls (no `now`, maybe outside any callback) never run
 * callbacks themselves: they ask for an immediate timer, whose handler
 * services the hub from the loop. */
static void hub_kick(sgrpc_ac_hub *h) {
  if (h->depth > 0) return; /* the outermost entry point services */
  h->armed = h->ops.now(h->ud);
  h->ops.timer_arm(h->ud, h->armed);
}

static void free_graveyard(sgrpc_ac_hub *h) {
  while (h->graveyard) {
    sgrpc_ac_conn *c = h->graveyard;
    h->graveyard = c->next;
    sgrpc_conn_del(c->engine);
    if (c->has_filter && c->filter.del) c->filter.del(c->filter.ctx);
    free(c->wbuf);
    free(c->pbuf);
    free(c);
  }
}

static sgrpc_ac_conn *conn_new(sgrpc_ac_hub *h, sgrpc_conn *engine) {
  sgrpc_ac_conn *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  c->hub = h;
  c->engine = engine;
  c->next = h->conns;
  if (h->conns) h->conns->prev = c;
  h->conns = c;
  return c;
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

static void channel_conn_ready(sgrpc_ac_channel *ch);

static void dispatch(sgrpc_ac_conn *c, const sgrpc_event *ev) {
  if (c->server) {
    sgrpc_ac_server *s = c->server;
    s->on_event(c, ev, s->user_data);
    if (ev->type == SGRPC_EV_CLOSE && ev->call && !s->user_releases) sgrpc_call_release(ev->call);
    return;
  }
  if (ev->call) {
    ac_call *rec = ev->call_user_data;
    sgrpc_event e = *ev;
    if (!rec) return;
    e.call_user_data = rec->user_data;
    /* A call that never saw a connected transport did not fail by being
     * slow: the connection could not be made in time. */
    if (e.type == SGRPC_EV_CLOSE && !c->ever_connected &&
        e.u.close.status.code == SGRPC_STATUS_DEADLINE_EXCEEDED) {
      static const char msg[] = "no connection could be made before the deadline";
      e.u.close.status.code = SGRPC_STATUS_UNAVAILABLE;
      e.u.close.status.message = msg;
      e.u.close.status.message_len = sizeof(msg) - 1;
    }
    if (rec->cb) rec->cb(&e, rec->user_data);
    if (ev->type == SGRPC_EV_CLOSE) {
      sgrpc_call_set_user_data(ev->call, NULL);
      free(rec);
      sgrpc_call_release(ev->call);
    }
    return;
  }
  if (c->channel) {
    sgrpc_ac_channel *ch = c->channel;
    if (ev->type == SGRPC_EV_GOAWAY) {
      /* New calls go to a fresh connection from now on. */
      c->goaway_seen = 1;
      if (ch->cur == c) ch->cur = NULL;
    } else if (ev->type == SGRPC_EV_READY) {
      channel_conn_ready(ch);
    }
    if (ch->on_conn_event) ch->on_conn_event(c, ev, ch->user_data);
  }
}

/* Pulls and dispatches every queued event. Returns how many. */
static int conn_drain(sgrpc_ac_conn *c) {
  sgrpc_event ev;
  int n = 0;
  while (sgrpc_conn_next_event(c->engine, &ev) == 1) {
    dispatch(c, &ev);
    n++;
  }
  return n;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static sgrpc_ssize fill_from_engine(void *ctx, uint8_t *buf, size_t cap) {
  sgrpc_ac_conn *c = ctx;
  sgrpc_ssize n = sgrpc_conn_out_copy(c->engine, buf, cap);
  c->fill_called = 1;
  if (n < 0) {
    c->closing = 1;
    n = 0;
  }
  c->fill_got = n;
  return n;
}

static sgrpc_ssize fill_from_bytes(void *ctx, uint8_t *buf, size_t cap) {
  sgrpc_ac_conn *c = ctx;
  size_t n = c->fill_len < cap ? c->fill_len : cap;
  memcpy(buf, c->fill_src, n);
  c->fill_called = 1;
  c->fill_got = (sgrpc_ssize)n;
  return (sgrpc_ssize)n;
}

/* Hands bytes to the transport in either write style. Returns the count
 * taken (less than len: blocked) or -1. */
static sgrpc_ssize tx_write(sgrpc_ac_conn *c, const uint8_t *p, size_t len) {
  sgrpc_ac_hub *h = c->hub;
  sgrpc_ssize w;
  if (h->ops.write) return h->ops.write(c->tx, p, len);
  c->fill_src = p;
  c->fill_len = len;
  c->fill_called = 0;
  c->fill_got = 0;
  w = h->ops.write_owned(c->tx, fill_from_bytes, c);
  return w < 0 ? -1 : w;
}

/* Moves filter output (or engine output through the filter) into wbuf.
 * Returns the bytes now waiting, or -1. */
static sgrpc_ssize filter_fill(sgrpc_ac_conn *c) {
  sgrpc_ssize r;
  if (c->woff < c->wlen) return (sgrpc_ssize)(c->wlen - c->woff);
  c->woff = c->wlen = 0;
  {
    size_t used = 0;
    r = c->filter.out(c->filter.ctx, NULL, 0, &used, c->wbuf, AC_FILTER_BUF);
  }
  if (r == 0) {
    const uint8_t *p;
    sgrpc_ssize n = sgrpc_conn_out_peek(c->engine, &p);
    if (n < 0) return -1;
    if (n > 0) {
      size_t used = 0;
      r = c->filter.out(c->filter.ctx, p, (size_t)n, &used, c->wbuf, AC_FILTER_BUF);
      if (used > (size_t)n) used = (size_t)n;
      if (used) sgrpc_conn_out_consume(c->engine, used);
    }
  }
  if (r < 0) return -1;
  c->wlen = (size_t)r;
  return r;
}

/* Writes output until the engine has nothing more or the transport is
 * full. Events produced by output (a stream closing as its last frame
 * leaves) are dispatched and what their callbacks queue goes out too. */
static void conn_flush(sgrpc_ac_conn *c) {
  sgrpc_ac_hub *h = c->hub;
  int round;
  for (round = 0; round < AC_WRITE_ROUNDS && !c->closing && !c->blocked && c->tx; round++) {
    if (c->has_filter) {
      sgrpc_ssize n = filter_fill(c), w;
      if (n < 0) {
        c->closing = 1;
        break;
      }
      if (n == 0) {
        if (conn_drain(c) == 0) break;
        continue;
      }
      w = tx_write(c, c->wbuf + c->woff, (size_t)n);
      if (w < 0) {
        c->closing = 1;
        break;
      }
      c->woff += (size_t)w;
      conn_drain(c);
      if (w < n) c->blocked = 1;
    } else if (h->ops.write) {
      const uint8_t *p;
      sgrpc_ssize n = sgrpc_conn_out_peek(c->engine, &p), w;
      if (n < 0) { /* fatal with nothing left to send */
        c->closing = 1;
        break;
      }
      if (n == 0) {
        if (conn_drain(c) == 0) break;
        continue;
      }
      w = h->ops.write(c->tx, p, (size_t)n);
      if (w < 0) {
        c->closing = 1;
        break;
      }
      sgrpc_conn_out_consume(c->engine, (size_t)w);
      conn_drain(c);
      if (w < n) c->blocked = 1;
    } else {
      sgrpc_ssize w;
      c->fill_called = 0;
      c->fill_got = 0;
      w = h->ops.write_owned(c->tx, fill_from_engine, c);
      if (w < 0) {
        c->closing = 1;
        break;
      }
      if (w == 0) {
        if (!c->fill_called) {
          c->blocked = 1; /* in-flight limit: wait for a completion */
          break;
        }
        if (conn_drain(c) == 0) break;
        continue;
      }
      conn_drain(c);
    }
  }
}

/* ------------------------------------------------------------------ */
/* Input                                                               */
/* ------------------------------------------------------------------ */

/* Feeds bytes to the engine, draining events whenever it stops early
 * (its event queue filled up). Returns 0 or -1 (connection failing). */
static int conn_feed(sgrpc_ac_conn *c, const uint8_t *buf, size_t len, int64_t now) {
  size_t off = 0;
  int stalls = 0;
  conn_drain(c);
  while (off < len && !c->dead) {
    sgrpc_ssize r = sgrpc_conn_recv(c->engine, buf + off, len - off, now);
    int got;
    if (r < 0) {
      /* Fatal: deliver the CLOSE events; the service pass sends the
       * queued GOAWAY and closes once the engine is not alive. */
      conn_drain(c);
      return -1;
    }
    off += (size_t)r;
    got = conn_drain(c);
    if (r == 0 && got == 0 && ++stalls > 2) {
      c->closing = 1; /* the engine refuses input for good */
      return -1;
    }
  }
  return 0;
}

void sgrpc_ac_conn_read(sgrpc_ac_conn *c, const uint8_t *data, size_t len, int64_t now) {
  sgrpc_ac_hub *h;
  if (!c) return;
  h = c->hub;
  hub_enter(h);
  if (!c->dead && !c->closing && c->state == AC_OPEN) {
    if (c->has_filter) {
      sgrpc_ssize r = c->filter.in(c->filter.ctx, data, len, c->pbuf, AC_FILTER_BUF);
      int guard;
      for (guard = 0; r > 0 && guard < 100000; guard++) {
        if (conn_feed(c, c->pbuf, (size_t)r, now) < 0) break;
        r = c->filter.in(c->filter.ctx, NULL, 0, c->pbuf, AC_FILTER_BUF);
      }
      if (r < 0) {
        /* Broken stream: send what the filter still has (a TLS alert
         * telling the peer why), best effort, then close. */
        int k;
        for (k = 0; k < 8 && c->tx; k++) {
          size_t used = 0;
          sgrpc_ssize n = c->filter.out(c->filter.ctx, NULL, 0, &used, c->wbuf, AC_FILTER_BUF);
          if (n <= 0 || tx_write(c, c->wbuf, (size_t)n) < n) break;
        }
        c->closing = 1;
      }
    } else {
      conn_feed(c, data, len, now);
    }
  }
  hub_leave(h, now);
}

void sgrpc_ac_conn_writable(sgrpc_ac_conn *c, int64_t now) {
  if (!c) return;
  hub_enter(c->hub);
  c->blocked = 0;
  hub_leave(c->hub, now);
}

/* ------------------------------------------------------------------ */
/* Connection life                                                     */
/* ------------------------------------------------------------------ */

static void channel_conn_gone(sgrpc_ac_channel *ch, sgrpc_ac_conn *c) {
  if (ch->nconns) ch->nconns--;
  if (ch->cur == c) ch->cur = NULL;
}

/* Closes for good: open calls end (UNAVAILABLE / CANCELLED) through their
 * callbacks, the transport is closed, and the memory waits until the hub
 * unwinds (the adapter's stack may still point at it). */
static void conn_close(sgrpc_ac_conn *c) {
  sgrpc_ac_hub *h = c->hub;
  if (c->dead) return;
  c->closing = 1;
  if (c->channel && c->channel->cur == c) c->channel->cur = NULL;
  sgrpc_conn_transport_closed(c->engine);
  conn_drain(c);
  c->dead = 1;
  if (c->tx) {
    void *tx = c->tx;
    c->tx = NULL;
    h->ops.close(tx);
  }
  if (c->prev) c->prev->next = c->next;
  else h->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = NULL;
  c->next = h->graveyard;
  h->graveyard = c;
  if (c->server && c->server->nconns) c->server->nconns--;
  if (c->channel) channel_conn_gone(c->channel, c);
  c->server = NULL;
  c->channel = NULL;
}

static void conn_start_attempt(sgrpc_ac_conn *c, int64_t now);

/* A connection attempt failed (refused, unreachable, timed out). */
static void conn_connect_failed(sgrpc_ac_conn *c, int64_t now) {
  sgrpc_ac_channel *ch = c->channel;
  if (c->tx) {
    void *tx = c->tx;
    c->tx = NULL;
    c->hub->ops.close(tx);
  }
  c->state = AC_WAITING;
  if (!ch) {
    c->closing = 1;
    return;
  }
  ch->retry_at = sgrpc_ac_backoff_fail(&ch->backoff, c->attempt_start);
  if (ch->retry_at <= now) ch->retry_at = now + 1;
  c->retry_at = ch->retry_at;
  /* Fail fast, or nothing waits for this connection: the calls on it end
   * UNAVAILABLE when the service pass closes it. */
  if (!ch->wait_for_ready || ch->closing || sgrpc_conn_call_count(c->engine) == 0 ||
      !sgrpc_conn_is_alive(c->engine))
    c->closing = 1;
}

static void conn_start_attempt(sgrpc_ac_conn *c, int64_t now) {
  sgrpc_ac_channel *ch = c->channel;
  sgrpc_ac_hub *h = c->hub;
  int rv;
  c->state = AC_CONNECTING;
  c->attempt_start = now;
  c->connect_deadline = now + sgrpc_ac_backoff_connect_timeout(&ch->backoff);
  c->retry_at = SGRPC_NEVER;
  hub_enter(h); /* a synchronous report must not run callbacks here */
  rv = h->ops.connect ? h->ops.connect(h->ud, c, &ch->target) : SGRPC_ERR_INVALID_STATE;
  if (rv < 0 && c->state == AC_CONNECTING && !c->dead) conn_connect_failed(c, now);
  h->depth--;
}

/* A channel's new connection: connect now, or wait out the backoff. */
static void conn_begin(sgrpc_ac_conn *c, int64_t now) {
  sgrpc_ac_channel *ch = c->channel;
  if (now < ch->retry_at) {
    c->state = AC_WAITING;
    c->retry_at = ch->retry_at;
    if (!ch->wait_for_ready) c->closing = 1; /* fail fast while backing off */
    return;
  }
  conn_start_attempt(c, now);
}

void sgrpc_ac_conn_connected(sgrpc_ac_conn *c, int64_t now) {
  if (!c || c->dead || c->state != AC_CONNECTING) return;
  hub_enter(c->hub);
  c->state = AC_OPEN;
  c->ever_connected = 1;
  c->connect_deadline = SGRPC_NEVER;
  hub_leave(c->hub, now);
}

void sgrpc_ac_conn_closed(sgrpc_ac_conn *c, int64_t now) {
  sgrpc_ac_hub *h;
  if (!c || c->dead) return;
  h = c->hub;
  hub_enter(h);
  if (c->state == AC_CONNECTING) conn_connect_failed(c, now);
  else conn_close(c);
  hub_leave(h, now);
}

void sgrpc_ac_conn_set_transport(sgrpc_ac_conn *c, void *tx) {
  if (c) c->tx = tx;
}

int sgrpc_ac_conn_set_filter(sgrpc_ac_conn *c, const sgrpc_ac_filter *f) {
  if (!c || !f || !f->in || !f->out) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!c->wbuf) c->wbuf = malloc(AC_FILTER_BUF);
  if (!c->pbuf) c->pbuf = malloc(AC_FILTER_BUF);
  if (!c->wbuf || !c->pbuf) return SGRPC_ERR_NOMEM;
  c->filter = *f;
  c->has_filter = 1;
  return 0;
}

const sgrpc_ac_filter *sgrpc_ac_conn_filter(const sgrpc_ac_conn *c) {
  return c && c->has_filter ? &c->filter : NULL;
}

sgrpc_conn *sgrpc_ac_conn_engine(const sgrpc_ac_conn *c) { return c ? c->engine : NULL; }
void *sgrpc_ac_conn_transport(const sgrpc_ac_conn *c) { return c ? c->tx : NULL; }
sgrpc_ac_server *sgrpc_ac_conn_server(const sgrpc_ac_conn *c) { return c ? c->server : NULL; }
sgrpc_ac_channel *sgrpc_ac_conn_channel(const sgrpc_ac_conn *c) { return c ? c->channel : NULL; }
sgrpc_ac_hub *sgrpc_ac_conn_hub(const sgrpc_ac_conn *c) { return c ? c->hub : NULL; }
const char *sgrpc_ac_conn_peer(const sgrpc_ac_conn *c) { return c ? c->peer : ""; }

static int conn_make_filter(sgrpc_ac_conn *c, sgrpc_ac_filter_factory make, void *ud) {
  sgrpc_ac_filter f;
  int rv;
  memset(&f, 0, sizeof(f));
  rv = make(ud, c, &f);
  if (rv < 0) return rv;
  if (rv == 0) return 0;
  rv = sgrpc_ac_conn_set_filter(c, &f);
  if (rv < 0 && f.del) f.del(f.ctx);
  return rv;
}

/* Brings a connection up to date. Returns events dispatched, plus one if
 * it closed. */
static int conn_service(sgrpc_ac_conn *c) {
  int n;
  if (c->dead) return 0;
  n = conn_drain(c);
  if (c->state == AC_OPEN && !c->closing) conn_flush(c);
  if (c->closing) {
    conn_close(c);
    return n + 1;
  }
  if (c->state == AC_OPEN) {
    int pending = sgrpc_conn_want_write(c->engine) || (c->has_filter && c->woff < c->wlen);
    if (!pending && (!sgrpc_conn_is_alive(c->engine) ||
                     (c->close_when_idle && sgrpc_conn_call_count(c->engine) == 0))) {
      conn_close(c);
      return n + 1;
    }
  } else if (c->state == AC_WAITING && sgrpc_conn_call_count(c->engine) == 0) {
    conn_close(c); /* nobody waits for this connection any more */
    return n + 1;
  } else if (c->state != AC_OPEN && !sgrpc_conn_is_alive(c->engine)) {
    conn_close(c); /* e.g. SETTINGS timeout while connecting */
    return n + 1;
  }
  return n;
}

/* ------------------------------------------------------------------ */
/* Hub                                                                 */
/* ------------------------------------------------------------------ */

int64_t sgrpc_ac_hub_next_expiry(const sgrpc_ac_hub *h) {
  int64_t when = SGRPC_NEVER;
  const sgrpc_ac_conn *c;
  const sgrpc_ac_server *s;
  if (!h) return SGRPC_NEVER;
  for (c = h->conns; c; c = c->next) {
    when = min64(when, sgrpc_conn_next_expiry(c->engine));
    if (c->state == AC_CONNECTING) when = min64(when, c->connect_deadline);
    if (c->state == AC_WAITING && !c->closing) when = min64(when, c->retry_at);
  }
  for (s = h->servers; s; s = s->next)
    if (s->nconns) when = min64(when, s->drain_at);
  return when;
}

static void hub_service_all(sgrpc_ac_hub *h, int64_t now) {
  int pass;
  int64_t when;
  h->depth++; /* callbacks below must not recurse into a service pass */
  for (pass = 0; pass < 4; pass++) {
    sgrpc_ac_conn *c, *next;
    int work = 0;
    for (c = h->conns; c; c = next) {
      next = c->next;
      work += conn_service(c);
    }
    if (!work) break;
  }
  h->depth--;
  free_graveyard(h);
  when = sgrpc_ac_hub_next_expiry(h);
  if (when != h->armed) {
    h->armed = when;
    h->ops.timer_arm(h->ud, when);
  }
  (void)now;
}

void sgrpc_ac_hub_service(sgrpc_ac_hub *h, int64_t now) {
  if (!h || h->depth > 0) return;
  hub_service_all(h, now);
}

void sgrpc_ac_hub_timer(sgrpc_ac_hub *h, int64_t now) {
  sgrpc_ac_conn *c, *next;
  sgrpc_ac_server *s;
  if (!h) return;
  hub_enter(h);
  h->armed = SGRPC_NEVER; /* fired: whatever is due now is re-armed below */
  for (c = h->conns; c; c = next) {
    next = c->next;
    if (c->dead) continue;
    if (sgrpc_conn_next_expiry(c->engine) <= now &&
        sgrpc_conn_handle_expiry(c->engine, now) < 0)
      c->closing = 1;
    if (c->state == AC_CONNECTING && c->connect_deadline <= now) conn_connect_failed(c, now);
    else if (c->state == AC_WAITING && !c->closing && c->retry_at <= now && c->channel)
      conn_start_attempt(c, now);
  }
  /* Backstop for the engine's own drain deadline: a connection still
   * busy a second after it is closed outright. */
  for (s = h->servers; s; s = s->next)
    if (s->drain_at <= now)
      for (c = h->conns; c; c = c->next)
        if (c->server == s) c->closing = 1;
  hub_leave(h, now);
}

int sgrpc_ac_hub_new(sgrpc_ac_hub **ph, const sgrpc_ac_ops *ops, void *ud) {
  sgrpc_ac_hub *h;
  if (!ph || !ops || !ops->now || !ops->close || !ops->timer_arm ||
      (!ops->write == !ops->write_owned))
    return SGRPC_ERR_INVALID_ARGUMENT;
  h = calloc(1, sizeof(*h));
  if (!h) return SGRPC_ERR_NOMEM;
  h->ops = *ops;
  h->ud = ud;
  h->armed = SGRPC_NEVER;
  *ph = h;
  return 0;
}

void *sgrpc_ac_hub_user(const sgrpc_ac_hub *h) { return h ? h->ud : NULL; }

int sgrpc_ac_hub_has_work(const sgrpc_ac_hub *h) {
  const sgrpc_ac_server *s;
  if (!h) return 0;
  if (h->conns) return 1;
  for (s = h->servers; s; s = s->next)
    if (s->listener && !s->shutting_down) return 1;
  return 0;
}

static void server_close_listener(sgrpc_ac_server *s) {
  void *l = s->listener;
  if (!l) return;
  s->listener = NULL;
  if (s->hub->ops.listener_close) s->hub->ops.listener_close(s->hub->ud, s, l);
}

void sgrpc_ac_hub_graceful(sgrpc_ac_hub *h, int64_t now) {
  sgrpc_ac_server *s;
  sgrpc_ac_channel *ch;
  if (!h) return;
  hub_enter(h);
  for (s = h->servers; s; s = s->next) sgrpc_ac_server_shutdown(s);
  for (ch = h->channels; ch; ch = ch->next) sgrpc_ac_channel_close(ch);
  hub_leave(h, now);
}

void sgrpc_ac_hub_abort(sgrpc_ac_hub *h) {
  sgrpc_ac_server *s;
  sgrpc_ac_channel *ch;
  if (!h) return;
  h->depth++;
  for (s = h->servers; s; s = s->next) {
    s->shutting_down = 1;
    server_close_listener(s);
  }
  for (ch = h->channels; ch; ch = ch->next) ch->closing = 1;
  while (h->conns) conn_close(h->conns);
  h->depth--;
  if (h->depth == 0) free_graveyard(h);
}

int sgrpc_ac_hub_signal(sgrpc_ac_hub *h, int signo, int64_t now) {
  (void)signo;
  if (!h) return 0;
  if (++h->signals == 1) sgrpc_ac_hub_graceful(h, now);
  else sgrpc_ac_hub_abort(h);
  return h->signals;
}

void sgrpc_ac_hub_set_io_limit(sgrpc_ac_hub *h, size_t n) {
  if (h) h->io_limit = n;
}
size_t sgrpc_ac_hub_io_limit(const sgrpc_ac_hub *h) { return h ? h->io_limit : 0; }

void sgrpc_ac_hub_del(sgrpc_ac_hub *h) {
  if (!h) return;
  sgrpc_ac_hub_abort(h);
  while (h->servers) sgrpc_ac_server_del(h->servers);
  while (h->channels) sgrpc_ac_channel_del(h->channels);
  free_graveyard(h);
  if (h->armed != SGRPC_NEVER) h->ops.timer_arm(h->ud, SGRPC_NEVER);
  free(h);
}

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

int sgrpc_ac_server_new(sgrpc_ac_server **ps, sgrpc_ac_hub *h, const sgrpc_ac_server_opts *o) {
  sgrpc_ac_server *s;
  if (!ps || !h || !o || !o->on_event) return SGRPC_ERR_INVALID_ARGUMENT;
  s = calloc(1, sizeof(*s));
  if (!s) return SGRPC_ERR_NOMEM;
  s->hub = h;
  if (o->settings) {
    s->settings = *o->settings;
    s->has_settings = 1;
  }
  s->on_event = o->on_event;
  s->user_data = o->user_data;
  s->drain_timeout_ns = o->drain_timeout_ns;
  s->drain_at = SGRPC_NEVER;
  s->user_releases = o->user_releases_calls;
  s->single_goaway = o->single_goaway;
  s->make_filter = o->make_filter;
  s->filter_ud = o->filter_user_data;
  s->next = h->servers;
  if (h->servers) h->servers->prev = s;
  h->servers = s;
  *ps = s;
  return 0;
}

void sgrpc_ac_server_set_listener(sgrpc_ac_server *s, void *listener, int port) {
  if (!s) return;
  s->listener = listener;
  s->port = port;
}
void *sgrpc_ac_server_listener(const sgrpc_ac_server *s) { return s ? s->listener : NULL; }
int sgrpc_ac_server_port(const sgrpc_ac_server *s) { return s ? s->port : 0; }
void *sgrpc_ac_server_user_data(const sgrpc_ac_server *s) { return s ? s->user_data : NULL; }
int sgrpc_ac_server_is_shutting_down(const sgrpc_ac_server *s) { return s ? s->shutting_down : 0; }
size_t sgrpc_ac_server_conn_count(const sgrpc_ac_server *s) { return s ? s->nconns : 0; }

int sgrpc_ac_server_accept(sgrpc_ac_server *s, void *tx, const char *peer, int64_t now,
                           sgrpc_ac_conn **pc) {
  sgrpc_conn *engine = NULL;
  sgrpc_ac_conn *c;
  int rv;
  if (!s || !pc) return SGRPC_ERR_INVALID_ARGUMENT;
  *pc = NULL;
  if (s->shutting_down) return SGRPC_ERR_INVALID_STATE;
  rv = sgrpc_conn_server_new(&engine, s->has_settings ? &s->settings : NULL, NULL, now);
  if (rv != 0) return rv;
  c = conn_new(s->hub, engine);
  if (!c) {
    sgrpc_conn_del(engine);
    return SGRPC_ERR_NOMEM;
  }
  c->server = s;
  c->state = AC_OPEN;
  c->ever_connected = 1;
  if (peer) strncpy(c->peer, peer, sizeof(c->peer) - 1);
  s->nconns++;
  if (s->make_filter && conn_make_filter(c, s->make_filter, s->filter_ud) < 0) {
    /* Refused: the adapter still owns tx and closes it. */
    c->server = NULL;
    c->closing = 1;
    conn_close(c);
    free_graveyard(s->hub);
    return SGRPC_ERR_INVALID_STATE;
  }
  c->tx = tx;
  *pc = c;
  hub_kick(s->hub); /* the server's preface goes out on the next service */
  return 0;
}

void sgrpc_ac_server_shutdown(sgrpc_ac_server *s) {
  sgrpc_ac_conn *c;
  int64_t now, deadline;
  if (!s || s->shutting_down) return;
  now = s->hub->ops.now(s->hub->ud);
  s->shutting_down = 1;
  server_close_listener(s);
  deadline = s->drain_timeout_ns > 0 ? now + s->drain_timeout_ns : SGRPC_NEVER;
  /* The engine cancels what is left at the deadline; the core closes
   * connections still open a second later (at once for single_goaway,
   * where the engine has no deadline). */
  if (deadline != SGRPC_NEVER) s->drain_at = s->single_goaway ? deadline : deadline + 1000000000LL;
  for (c = s->hub->conns; c; c = c->next)
    if (c->server == s && !c->dead) {
      int rv = s->single_goaway ? sgrpc_conn_goaway(c->engine, 0, NULL, 0)
                                : sgrpc_conn_shutdown(c->engine, deadline, now);
      c->close_when_idle = 1;
      if (rv < 0) c->closing = 1;
    }
  hub_kick(s->hub);
}

void sgrpc_ac_server_del(sgrpc_ac_server *s) {
  sgrpc_ac_hub *h;
  sgrpc_ac_conn *c, *next;
  if (!s) return;
  h = s->hub;
  h->depth++;
  server_close_listener(s);
  for (c = h->conns; c; c = next) {
    next = c->next;
    if (c->server == s) conn_close(c);
  }
  h->depth--;
  if (s->prev) s->prev->next = s->next;
  else h->servers = s->next;
  if (s->next) s->next->prev = s->prev;
  if (h->depth == 0) free_graveyard(h);
  free(s);
}

/* ------------------------------------------------------------------ */
/* Channel                                                             */
/* ------------------------------------------------------------------ */

static void channel_conn_ready(sgrpc_ac_channel *ch) {
  sgrpc_ac_backoff_reset(&ch->backoff);
  ch->retry_at = 0;
}

int sgrpc_ac_channel_new(sgrpc_ac_channel **pch, sgrpc_ac_hub *h, const sgrpc_ac_channel_opts *o) {
  sgrpc_ac_channel *ch;
  const char *auth;
  int rv;
  if (!pch || !h || !o || !o->target) return SGRPC_ERR_INVALID_ARGUMENT;
  *pch = NULL;
  ch = calloc(1, sizeof(*ch));
  if (!ch) return SGRPC_ERR_NOMEM;
  ch->hub = h;
  rv = sgrpc_ac_target_parse(o->target, 0, &ch->target);
  if (rv != 0) {
    free(ch);
    return rv;
  }
  if (o->authority) auth = o->authority;
  else if (ch->target.kind == SGRPC_AC_TARGET_UNIX) auth = "localhost";
  else auth = o->target;
  ch->authority = malloc(strlen(auth) + 1);
  if (!ch->authority) {
    free(ch);
    return SGRPC_ERR_NOMEM;
  }
  strcpy(ch->authority, auth);
  if (o->settings) {
    ch->settings = *o->settings;
    ch->has_settings = 1;
  }
  ch->on_conn_event = o->on_conn_event;
  ch->user_data = o->user_data;
  ch->wait_for_ready = o->wait_for_ready;
  ch->make_filter = o->make_filter;
  ch->filter_ud = o->filter_user_data;
  sgrpc_ac_backoff_init(&ch->backoff, &o->backoff,
                        (uint64_t)(uintptr_t)ch ^ (uint64_t)h->ops.now(h->ud));
  ch->next = h->channels;
  if (h->channels) h->channels->prev = ch;
  h->channels = ch;
  *pch = ch;
  return 0;
}

static sgrpc_ac_conn *channel_new_conn(sgrpc_ac_channel *ch, int64_t now) {
  sgrpc_conn *engine = NULL;
  sgrpc_ac_conn *c;
  if (sgrpc_conn_client_new(&engine, ch->has_settings ? &ch->settings : NULL, NULL, now) != 0)
    return NULL;
  c = conn_new(ch->hub, engine);
  if (!c) {
    sgrpc_conn_del(engine);
    return NULL;
  }
  c->channel = ch;
  c->state = AC_IDLE;
  c->retry_at = SGRPC_NEVER;
  c->connect_deadline = SGRPC_NEVER;
  ch->nconns++;
  if (ch->make_filter && conn_make_filter(c, ch->make_filter, ch->filter_ud) < 0)
    c->closing = 1; /* its calls end UNAVAILABLE on the next service */
  return c;
}

int sgrpc_ac_channel_call(sgrpc_ac_channel *ch, const sgrpc_call_opts *opts, sgrpc_ac_call_cb cb,
                          sgrpc_call **pcall) {
  sgrpc_ac_hub *h;
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  ac_call *rec;
  int64_t now;
  int rv = SGRPC_ERR_NOMEM, attempt;
  if (pcall) *pcall = NULL;
  if (!ch || !opts || !cb) return SGRPC_ERR_INVALID_ARGUMENT;
  if (ch->closing) return SGRPC_ERR_GOING_AWAY;
  h = ch->hub;
  now = h->ops.now(h->ud);
  rec = calloc(1, sizeof(*rec));
  if (!rec) return SGRPC_ERR_NOMEM;
  rec->cb = cb;
  rec->user_data = opts->user_data;
  o = *opts;
  o.user_data = rec;
  if (!o.authority || !*o.authority) o.authority = ch->authority;
  h->depth++; /* nothing below runs a callback */
  for (attempt = 0; attempt < 2; attempt++) {
    sgrpc_ac_conn *c = ch->cur;
    if (!c || c->closing || c->dead || c->goaway_seen) {
      c = ch->cur = channel_new_conn(ch, now);
      if (!c) {
        rv = SGRPC_ERR_NOMEM;
        break;
      }
    }
    rv = sgrpc_call_start(c->engine, &o, now, &call);
    if (rv == 0) {
      if (c->state == AC_IDLE) conn_begin(c, now);
      if (pcall) *pcall = call;
      break;
    }
    /* The connection stopped taking calls: one retry on a new one. */
    if (rv != SGRPC_ERR_GOING_AWAY && !sgrpc_is_fatal(rv)) break;
    c->close_when_idle = 1;
    if (c->state == AC_IDLE) c->closing = 1;
    ch->cur = NULL;
  }
  h->depth--;
  if (rv != 0) free(rec);
  hub_kick(h);
  return rv;
}

void sgrpc_ac_channel_close(sgrpc_ac_channel *ch) {
  sgrpc_ac_conn *c;
  if (!ch || ch->closing) return;
  ch->closing = 1;
  ch->cur = NULL;
  /* No GOAWAY from the client: it could stop request HEADERS the engine
   * has queued but not written yet. Each connection closes once idle. */
  for (c = ch->hub->conns; c; c = c->next)
    if (c->channel == ch) c->close_when_idle = 1;
  hub_kick(ch->hub);
}

void *sgrpc_ac_channel_user_data(const sgrpc_ac_channel *ch) { return ch ? ch->user_data : NULL; }

const sgrpc_ac_target *sgrpc_ac_channel_target(const sgrpc_ac_channel *ch) {
  return ch ? &ch->target : NULL;
}

size_t sgrpc_ac_channel_conn_count(const sgrpc_ac_channel *ch) { return ch ? ch->nconns : 0; }
int sgrpc_ac_channel_failures(const sgrpc_ac_channel *ch) { return ch ? ch->backoff.attempts : 0; }

void sgrpc_ac_channel_del(sgrpc_ac_channel *ch) {
  sgrpc_ac_hub *h;
  sgrpc_ac_conn *c, *next;
  if (!ch) return;
  h = ch->hub;
  h->depth++;
  ch->closing = 1;
  for (c = h->conns; c; c = next) {
    next = c->next;
    if (c->channel == ch) conn_close(c);
  }
  h->depth--;
  if (ch->prev) ch->prev->next = ch->next;
  else h->channels = ch->next;
  if (ch->next) ch->next->prev = ch->prev;
  if (h->depth == 0) free_graveyard(h);
  free(ch->authority);
  free(ch);
}
