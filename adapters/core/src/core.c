/*
 * The net layer (see <sgrpc/net.h> and <sgrpc/net_adapter.h>):
 * connections, TLS sessions, servers, channels and user timers over an
 * adapter's ops. No system calls, no clock reads: time comes in as `now`
 * on every entry point. Memory comes from the loop's allocator.
 */
#include <sgrpc/net_adapter.h>
#include <sgrpc/net_record.h>
#include "net_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NET_WRITE_ROUNDS 64
/* Pieces of output offered to ops->writev at once. */
#define NET_WRITE_IOV 64
/* How long a finished connection reads and discards after its half-close
 * before it is closed anyway (sgrpc_net_*_opts.linger_ns = 0). */
#define NET_LINGER_DEFAULT 1000000000LL
/* How long a listener rests after accept ran out of descriptors. */
#define NET_ACCEPT_PAUSE 200000000LL

struct sgrpc_net_server {
  sgrpc_net_loop *loop;
  sgrpc_settings settings;
  int has_settings;
  sgrpc_net_event_cb on_event;
  void *user_data;
  int64_t drain_timeout_ns;
  int64_t drain_at; /* SGRPC_NEVER until shutdown with a timeout */
  int64_t linger_ns;
  int64_t accept_resume_at; /* SGRPC_NEVER unless the listener rests */
  uint64_t accept_pauses;
  sgrpc_tls_factory make_tls;
  void *tls_ud;
  void *listener;
  int port;
  size_t nconns;
  int shutting_down;
  char *record_dir; /* recording directory, or NULL */
  uint64_t record_max;
  uint64_t id;
  sgrpc_conn_stats closed; /* totals of the connections already closed */
  sgrpc_net_server *prev, *next;
};

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t sg_min64(int64_t a, int64_t b) { return min64(a, b); }

/* ------------------------------------------------------------------ */
/* Memory: everything through the loop's allocator                     */
/* ------------------------------------------------------------------ */

static void *net_calloc(const sgrpc_net_loop *l, size_t n) {
  return l->mem.calloc(1, n, l->mem.user_data);
}
static void net_free(const sgrpc_net_loop *l, void *p) {
  if (p) l->mem.free(p, l->mem.user_data);
}
void *sg_net_calloc(const sgrpc_net_loop *l, size_t n) { return net_calloc(l, n); }
void sg_net_free(const sgrpc_net_loop *l, void *p) { net_free(l, p); }

/* ------------------------------------------------------------------ */
/* Backoff                                                             */
/* ------------------------------------------------------------------ */

void sgrpc_net_backoff_init(sgrpc_net_backoff *b, const sgrpc_net_backoff_opts *o, uint64_t seed) {
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

void sgrpc_net_backoff_reset(sgrpc_net_backoff *b) {
  b->cur = b->opts.initial;
  b->attempts = 0;
}

int64_t sgrpc_net_backoff_connect_timeout(const sgrpc_net_backoff *b) {
  return b->cur > b->opts.min_connect_timeout ? b->cur : b->opts.min_connect_timeout;
}

/* xorshift64*: a uniform double in [0, 1). */
static double backoff_rand(sgrpc_net_backoff *b) {
  uint64_t x = b->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  b->rng = x;
  return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

int64_t sgrpc_net_backoff_fail(sgrpc_net_backoff *b, int64_t attempt_start) {
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
/* Loop bookkeeping                                                    */
/* ------------------------------------------------------------------ */

static void loop_service_all(sgrpc_net_loop *l, int64_t now);

/* Every entry point brackets its work: the outermost one services. The
 * loop keeps the latest `now` it was given for the work that follows
 * (event delivery deep inside a flush); it never reads a clock. */
void sg_loop_enter(sgrpc_net_loop *l, int64_t now) {
  l->depth++;
  l->now = now;
}

void sg_loop_leave(sgrpc_net_loop *l, int64_t now) {
  if (--l->depth == 0) loop_service_all(l, now);
}

/* Work started outside any callback (a call, a shutdown) runs no
 * callback itself: an immediate timer services the loop from the loop. */
void sg_loop_kick(sgrpc_net_loop *l, int64_t now) {
  l->now = now;
  if (l->depth > 0) return; /* the outermost entry point services */
  l->armed = now;
  l->ops.timer_arm(l->ud, now);
}

/* ------------------------------------------------------------------ */
/* Work list and expiry heap                                           */
/* ------------------------------------------------------------------ */

static void work_push(sgrpc_net_conn *c) {
  sgrpc_net_loop *l = c->loop;
  c->in_work = 1;
  c->wnext = NULL;
  if (l->work_tail) l->work_tail->wnext = c;
  else l->work_head = c;
  l->work_tail = c;
}

void sg_conn_touch(sgrpc_net_conn *c) {
  if (c->in_work || c->dead) return;
  work_push(c);
  c->loop->woken++;
}

/* The engine's wake hook: an API call queued work on the connection.
 * Inside an entry point (a callback, or the service pass itself, also
 * for the very connection being serviced) noting it is enough: the pass
 * goes on while connections are added. Outside, the loop is kicked so
 * that the work is written without waiting for the adapter's next
 * sgrpc_net_loop_service. */
static void conn_wake(void *ud) {
  sgrpc_net_conn *c = ud;
  sgrpc_net_loop *l = c->loop;
  if (c->in_work || c->dead) return;
  work_push(c);
  l->woken++;
  if (l->depth == 0 && l->armed > l->now) sg_loop_kick(l, l->now);
}

/* Dead connections leave the work list before their memory goes. */
static void work_purge(sgrpc_net_loop *l) {
  sgrpc_net_conn *c = l->work_head, *prev = NULL;
  while (c) {
    sgrpc_net_conn *next = c->wnext;
    if (c->dead) {
      if (prev) prev->wnext = next;
      else l->work_head = next;
      if (l->work_tail == c) l->work_tail = prev;
      c->in_work = 0;
      c->wnext = NULL;
    } else {
      prev = c;
    }
    c = next;
  }
}

/* What sgrpc_net_loop_next_expiry needs of one connection. */
static int64_t conn_key(const sgrpc_net_conn *c) {
  int64_t when;
  if (c->dead) return SGRPC_NEVER;
  when = sgrpc_conn_next_expiry(c->engine);
  if (c->state == NET_CONNECTING) when = min64(when, c->connect_deadline);
  if (c->state == NET_WAITING && !c->closing) when = min64(when, c->retry_at);
  if (c->close_at) when = min64(when, c->close_at);
  if (c->drain_rx_mark && c->drain_ack_by && c->state == NET_OPEN && !c->lingering)
    when = min64(when, c->drain_ack_by);
  return when;
}

/* The heap is 4-ary with each entry's key beside its pointer: a sift
 * reads a cache line of keys per level and touches only the connections
 * it moves (at 19 000 connections the binary heap reading each child's
 * connection cost 4 % of a busy server's CPU in cache misses). */
static void heap_set(sgrpc_net_loop *l, size_t i, sg_heap_ent e) {
  l->heap[i] = e;
  e.c->heap_idx = i + 1;
}

static void heap_up(sgrpc_net_loop *l, size_t i) {
  sg_heap_ent e = l->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 4;
    if (l->heap[p].key <= e.key) break;
    heap_set(l, i, l->heap[p]);
    i = p;
  }
  heap_set(l, i, e);
}

static void heap_down(sgrpc_net_loop *l, size_t i) {
  sg_heap_ent e = l->heap[i];
  for (;;) {
    size_t k = 4 * i + 1, m, end;
    if (k >= l->heap_len) break;
    end = k + 4 < l->heap_len ? k + 4 : l->heap_len;
    for (m = k++; k < end; k++)
      if (l->heap[k].key < l->heap[m].key) m = k;
    if (l->heap[m].key >= e.key) break;
    heap_set(l, i, l->heap[m]);
    i = m;
  }
  heap_set(l, i, e);
}

/* Room for one more connection, taken when the connection is made so
 * that putting it in the heap later cannot fail. */
static int heap_reserve(sgrpc_net_loop *l) {
  sg_heap_ent *h;
  size_t cap;
  if (l->nlive < l->heap_cap) return 0;
  cap = l->heap_cap ? l->heap_cap * 2 : 64;
  h = l->mem.realloc(l->heap, cap * sizeof(*h), l->mem.user_data);
  if (!h) return SGRPC_ERR_NOMEM;
  l->heap = h;
  l->heap_cap = cap;
  return 0;
}

static void heap_remove(sgrpc_net_conn *c) {
  sgrpc_net_loop *l = c->loop;
  size_t i;
  sg_heap_ent last;
  if (!c->heap_idx) return;
  i = c->heap_idx - 1;
  c->heap_idx = 0;
  last = l->heap[--l->heap_len];
  if (last.c == c) return;
  heap_set(l, i, last);
  heap_up(l, i);
  heap_down(l, last.c->heap_idx - 1);
}

/* Recomputes c's expiry and puts it where it belongs in the heap. */
static void heap_fix(sgrpc_net_conn *c) {
  sgrpc_net_loop *l = c->loop;
  int64_t key = conn_key(c);
  if (c->dead) return;
  if (!c->heap_idx) {
    sg_heap_ent e;
    e.key = key;
    e.c = c;
    c->heap_key = key;
    heap_set(l, l->heap_len++, e); /* room reserved in sg_conn_new */
    heap_up(l, l->heap_len - 1);
    return;
  }
  if (key == c->heap_key) return;
  c->heap_key = key;
  l->heap[c->heap_idx - 1].key = key;
  heap_up(l, c->heap_idx - 1);
  heap_down(l, c->heap_idx - 1);
}

void sg_free_graveyard(sgrpc_net_loop *l) {
  if (l->graveyard) work_purge(l);
  while (l->graveyard) {
    sgrpc_net_conn *c = l->graveyard;
    l->graveyard = c->next;
    sgrpc_conn_set_wake(c->engine, NULL, NULL);
    sgrpc_conn_del(c->engine);
    sgrpc_record_file_close(c->rec);
    sgrpc_tls_del(c->tls);
    net_free(l, c->pend);
    net_free(l, c->sans);
    net_free(l, c->pcalls);
    net_free(l, c);
  }
}

/* The recording directory of a server or channel: the option, else the
 * environment's; "" means none. Returns 0 or SGRPC_ERR_NOMEM. */
int sg_record_setup(sgrpc_net_loop *l, const char *dir, uint64_t max, char **pdir,
                    uint64_t *pmax) {
  uint64_t env_max = 0;
  const char *env = sgrpc_record_env(&env_max);
  size_t n;
  *pdir = NULL;
  *pmax = max ? max : env_max;
  if (!dir) dir = env;
  if (!dir || !*dir) return 0;
  n = strlen(dir);
  *pdir = l->mem.malloc(n + 1, l->mem.user_data);
  if (!*pdir) return SGRPC_ERR_NOMEM;
  memcpy(*pdir, dir, n + 1);
  return 0;
}

/* Starts recording a new connection when its owner records. A file that
 * cannot be made leaves the connection unrecorded. */
void sg_conn_record(sgrpc_net_conn *c, const char *dir, uint64_t max, const char *tag) {
  if (!dir) return;
  if (sgrpc_record_file_open(&c->rec, dir, tag, max, 0, &c->loop->mem) != 0) return;
  if (sgrpc_conn_set_recorder(c->engine, sgrpc_record_file_recorder(c->rec)) != 0) {
    sgrpc_record_file_close(c->rec);
    c->rec = NULL;
  }
}
static int conn_peer_fill(void *ctx, sgrpc_peer *p);

sgrpc_net_conn *sg_conn_new(sgrpc_net_loop *l, sgrpc_conn *engine) {
  sgrpc_net_conn *c;
  if (heap_reserve(l) != 0) return NULL;
  c = net_calloc(l, sizeof(*c));
  if (!c) return NULL;
  c->loop = l;
  c->engine = engine;
  c->id = sg_loop_next_id(l);
  /* layers above (the rpc router) learn who the peer is through the
   * engine, without knowing this layer */
  sgrpc_conn_set_peer_source(engine, conn_peer_fill, c);
  sgrpc_conn_set_wake(engine, conn_wake, c);
  c->next = l->conns;
  if (l->conns) l->conns->prev = c;
  l->conns = c;
  l->nlive++;
  c->heap_key = SGRPC_NEVER;
  heap_fix(c);
  sg_conn_touch(c); /* the first service sends the preface */
  return c;
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */


/* Rewrites the status of a call the transport ended, when the transport
 * knows better than the engine why. Returns 1 when e was changed. */
static int close_status_fix(const sgrpc_net_conn *c, sgrpc_event *e) {
  sgrpc_status_info *st = &e->u.close.status;
  if (st->code == SGRPC_STATUS_OK) return 0;
  if (c->reason[0] && c->tls_failed) {
    /* The TLS session failed: say why instead of "connection closed by
     * transport" (a bad certificate should not look like a network
     * error). */
    st->message = c->reason;
    st->message_len = strlen(c->reason);
    return 1;
  }
  if (c->channel && !c->ever_connected && st->code == SGRPC_STATUS_DEADLINE_EXCEEDED) {
    /* A call that never saw a connected transport did not fail by being
     * slow: the connection could not be made in time. */
    static const char msg[] = "no connection could be made before the deadline";
    st->code = SGRPC_STATUS_UNAVAILABLE;
    st->message = msg;
    st->message_len = sizeof(msg) - 1;
    return 1;
  }
  return 0;
}

/* Delivers one pulled event: to the call's callback (the engine's
 * dispatcher), else to the server's or channel's callback; then releases
 * the call after its CLOSE (the net layer pulled it, so it owns it). */
static void deliver(sgrpc_net_conn *c, const sgrpc_event *ev) {
  sgrpc_net_loop *l = c->loop;
  if (ev->call) {
    const sgrpc_event *e = ev;
    sgrpc_event copy;
    /* The copy only when the status may need rewriting: this runs for
     * every event of every call. */
    if (ev->type == SGRPC_EV_CLOSE && (c->reason[0] || (c->channel && !c->ever_connected))) {
      int changed = 0;
      copy = *ev;
      /* The channel knows which calls it ended without a byte sent
       * (connect failed, fail fast, resolution failed) and why. */
      if (c->channel) sg_channel_close_event(c, &copy, &changed);
      if (close_status_fix(c, &copy)) changed = 1;
      if (changed) e = &copy;
    }
    if (!sgrpc_event_dispatch(e, l->now) && c->server)
      c->server->on_event(c, e, c->server->user_data, l->now);
    if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call);
    return;
  }
  if (c->server) {
    c->server->on_event(c, ev, c->server->user_data, l->now);
  } else if (c->channel) {
    sg_channel_conn_event(c, ev);
  }
}

/* Pulls and dispatches every queued event. Returns how many. */
static int conn_drain(sgrpc_net_conn *c) {
  sgrpc_event ev;
  int n = 0;
  while (sgrpc_conn_next_event(c->engine, &ev) == 1) {
    deliver(c, &ev);
    n++;
  }
  return n;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static sgrpc_ssize fill_from_engine(void *ctx, uint8_t *buf, size_t cap) {
  sgrpc_net_conn *c = ctx;
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
  sgrpc_net_conn *c = ctx;
  size_t n = c->fill_len < cap ? c->fill_len : cap;
  memcpy(buf, c->fill_src, n);
  c->fill_called = 1;
  c->fill_got = (sgrpc_ssize)n;
  return (sgrpc_ssize)n;
}

/* Hands bytes to the transport in either write style. Returns the count
 * taken (less than len: blocked) or -1. */
static sgrpc_ssize tx_write(sgrpc_net_conn *c, const uint8_t *p, size_t len) {
  sgrpc_net_loop *l = c->loop;
  sgrpc_ssize w;
  if (l->ops.write) return l->ops.write(c->tx, p, len);
  c->fill_src = p;
  c->fill_len = len;
  c->fill_called = 0;
  c->fill_got = 0;
  w = l->ops.write_owned(c->tx, fill_from_bytes, c);
  return w < 0 ? -1 : w;
}

/* The TLS session failed with code: keep its reason for the calls it
 * ends, send what it still has for the peer (an alert saying why, best
 * effort) and close. */
static void tls_failed(sgrpc_net_conn *c, int code) {
  const char *why = sgrpc_tls_error_string(c->tls);
  int k;
  if (!c->reason[0] || !c->tls_failed)
    snprintf(c->reason, sizeof(c->reason), "TLS: %s",
             why && *why ? why : sgrpc_tls_strerror(code));
  c->tls_failed = 1;
  for (k = 0; k < 8 && c->tx; k++) {
    const uint8_t *p;
    sgrpc_ssize n = sgrpc_tls_out_peek(c->tls, &p), w;
    if (n <= 0) break;
    w = tx_write(c, p, (size_t)n);
    if (w <= 0) break;
    sgrpc_tls_out_consume(c->tls, (size_t)w);
    if (w < n) break;
  }
  c->closing = 1;
}

/* One round of TLS output: ciphertext the session holds goes to the
 * transport first; when there is none, engine output is encrypted.
 * Returns 1 when something moved, 0 when nothing is left to do now. */
static int tls_flush_round(sgrpc_net_conn *c) {
  const uint8_t *p;
  sgrpc_ssize n = sgrpc_tls_out_peek(c->tls, &p), w;
  if (n > 0) {
    w = tx_write(c, p, (size_t)n);
    if (w < 0) {
      c->closing = 1;
      return 0;
    }
    sgrpc_tls_out_consume(c->tls, (size_t)w);
    if (w < n) c->blocked = 1;
    return 1;
  }
  n = sgrpc_conn_out_peek(c->engine, &p);
  if (n < 0) { /* fatal with nothing left to send */
    c->closing = 1;
    return 0;
  }
  if (n == 0) return 0;
  w = sgrpc_tls_write(c->tls, p, (size_t)n);
  if (w < 0) {
    tls_failed(c, (int)w);
    return 0;
  }
  if (w == 0) return 0; /* handshake in progress: the engine waits */
  sgrpc_conn_out_consume(c->engine, (size_t)w);
  return 1;
}

/* Writes output until the engine has nothing more or the transport is
 * full. Events produced by output (a stream closing as its last frame
 * leaves) are dispatched and what their callbacks queue goes out too. */
static void conn_flush(sgrpc_net_conn *c) {
  sgrpc_net_loop *l = c->loop;
  int round;
  for (round = 0; round < NET_WRITE_ROUNDS && !c->closing && !c->blocked && c->tx; round++) {
    if (c->tls) {
      int moved = tls_flush_round(c);
      if (c->closing) break;
      if (conn_drain(c) == 0 && !moved) break;
    } else if (l->ops.write) {
      sgrpc_iov iov[NET_WRITE_IOV];
      size_t cnt = 1;
      sgrpc_ssize n, w;
      if (l->ops.writev) {
        n = sgrpc_conn_out_peekv(c->engine, iov, NET_WRITE_IOV, &cnt);
      } else {
        n = sgrpc_conn_out_peek(c->engine, &iov[0].base);
        iov[0].len = n > 0 ? (size_t)n : 0;
      }
      if (n < 0) { /* fatal with nothing left to send */
        c->closing = 1;
        break;
      }
      if (n == 0) {
        if (conn_drain(c) == 0) break;
        continue;
      }
      /* one piece (the common case: no borrowed message queued) takes
       * the plain write */
      w = cnt == 1 ? l->ops.write(c->tx, iov[0].base, iov[0].len)
                   : l->ops.writev(c->tx, iov, cnt);
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
      w = l->ops.write_owned(c->tx, fill_from_engine, c);
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
static int conn_feed(sgrpc_net_conn *c, const uint8_t *buf, size_t len, int64_t now) {
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

/* Keeps ciphertext the session did not take, in order, for later. */
static int pend_append(sgrpc_net_conn *c, const uint8_t *d, size_t n) {
  sgrpc_net_loop *l = c->loop;
  if (c->poff > 0) { /* compact: what is left goes to the front */
    memmove(c->pend, c->pend + c->poff, c->plen - c->poff);
    c->plen -= c->poff;
    c->poff = 0;
  }
  if (c->plen + n > c->pcap) {
    size_t cap = c->pcap ? c->pcap : 16384;
    uint8_t *p;
    while (cap < c->plen + n) cap *= 2;
    p = l->mem.realloc(c->pend, cap, l->mem.user_data);
    if (!p) return SGRPC_ERR_NOMEM;
    c->pend = p;
    c->pcap = cap;
  }
  memcpy(c->pend + c->plen, d, n);
  c->plen += n;
  return 0;
}

/* Transport bytes through the TLS session into the engine: plaintext is
 * taken (borrowed, no copy) before more ciphertext is fed, so the
 * session's bounded input never refuses for long. */
static void conn_read_tls(sgrpc_net_conn *c, const uint8_t *data, size_t len, int64_t now) {
  size_t off = 0;
  int guard;
  for (guard = 0; guard < 1000000 && !c->dead && !c->closing; guard++) {
    const uint8_t *p;
    sgrpc_ssize n = sgrpc_tls_plain_peek(c->tls, &p), r;
    if (n < 0) {
      if (n == SGRPC_ERR_TLS_CLOSED) c->closing = 1; /* close_notify: a clean end */
      else tls_failed(c, (int)n);
      return;
    }
    if (n > 0) {
      int rv = conn_feed(c, p, (size_t)n, now);
      sgrpc_tls_plain_consume(c->tls, (size_t)n);
      if (rv < 0) return;
      continue;
    }
    if (c->poff < c->plen) {
      r = sgrpc_tls_feed(c->tls, c->pend + c->poff, c->plen - c->poff);
      if (r <= 0) break;
      c->poff += (size_t)r;
      if (c->poff == c->plen) c->poff = c->plen = 0;
      continue;
    }
    if (off == len) break;
    r = sgrpc_tls_feed(c->tls, data + off, len - off);
    if (r <= 0) break;
    off += (size_t)r;
  }
  if (c->dead || c->closing) return;
  {
    /* An error from feed shows again, sticky, on the next peek. */
    const uint8_t *p;
    sgrpc_ssize n = sgrpc_tls_plain_peek(c->tls, &p);
    if (n < 0 && n != SGRPC_ERR_TLS_CLOSED) {
      tls_failed(c, (int)n);
      return;
    }
  }
  if (off < len && pend_append(c, data + off, len - off) < 0) c->closing = 1;
}

void sgrpc_net_conn_read(sgrpc_net_conn *c, const uint8_t *data, size_t len, int64_t now) {
  sgrpc_net_loop *l;
  if (!c) return;
  l = c->loop;
  sg_loop_enter(l, now);
  sg_conn_touch(c);
  /* Lingering: the bytes are read only so that the kernel does not answer
   * them with a reset; nobody wants them any more. */
  if (!c->dead && !c->closing && !c->lingering && c->state == NET_OPEN) {
    if (c->tls) conn_read_tls(c, data, len, now);
    else conn_feed(c, data, len, now);
  }
  sg_loop_leave(l, now);
}

void sgrpc_net_conn_writable(sgrpc_net_conn *c, int64_t now) {
  if (!c) return;
  sg_loop_enter(c->loop, now);
  c->blocked = 0;
  sg_conn_touch(c);
  sg_loop_leave(c->loop, now);
}

/* ------------------------------------------------------------------ */
/* Connection life                                                     */
/* ------------------------------------------------------------------ */

/* Closes for good: open calls end (UNAVAILABLE / CANCELLED) through their
 * callbacks, the transport is closed, and the memory waits until the loop
 * unwinds (the adapter's stack may still point at it). */
/* Adds the engine's counters to a closed-connections total. */
void sg_stats_add(sgrpc_conn_stats *t, const sgrpc_conn *engine) {
  sgrpc_conn_stats st;
  sgrpc_conn_get_stats(engine, &st);
  t->calls_started += st.calls_started;
  t->calls_succeeded += st.calls_succeeded;
  t->calls_failed += st.calls_failed;
  t->messages_sent += st.messages_sent;
  t->messages_received += st.messages_received;
  t->bytes_sent += st.bytes_sent;
  t->bytes_received += st.bytes_received;
  if (st.last_activity > t->last_activity) t->last_activity = st.last_activity;
  if (st.last_call_started > t->last_call_started) t->last_call_started = st.last_call_started;
}

void sg_conn_close(sgrpc_net_conn *c) {
  sgrpc_net_loop *l = c->loop;
  if (c->dead) return;
  c->closing = 1;
  sgrpc_conn_transport_closed(c->engine);
  conn_drain(c);
  c->dead = 1;
  heap_remove(c);
  l->nlive--;
  if (c->tx) {
    void *tx = c->tx;
    c->tx = NULL;
    l->ops.close(tx);
  }
  if (c->prev) c->prev->next = c->next;
  else l->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = NULL;
  c->next = l->graveyard;
  l->graveyard = c;
  if (c->server && c->server->nconns) c->server->nconns--;
  if (c->server) sg_stats_add(&c->server->closed, c->engine);
  if (c->channel) sg_channel_closed_stats(c->channel, c->engine);
  if (c->channel) sg_channel_conn_gone(c->channel, c);
  c->server = NULL;
  c->channel = NULL;
}

void sgrpc_net_conn_connected(sgrpc_net_conn *c, int64_t now) {
  if (!c || c->dead || c->state != NET_CONNECTING) return;
  sg_loop_enter(c->loop, now);
  c->state = NET_OPEN;
  c->ever_connected = 1;
  c->connect_deadline = SGRPC_NEVER;
  sg_conn_touch(c);
  if (c->channel) sg_channel_conn_connected(c);
  sg_loop_leave(c->loop, now);
}

void sgrpc_net_conn_closed(sgrpc_net_conn *c, int64_t now) {
  sgrpc_net_loop *l;
  if (!c || c->dead) return;
  l = c->loop;
  sg_loop_enter(l, now);
  if (c->state == NET_CONNECTING) sg_channel_connect_failed(c, now);
  else sg_conn_close(c);
  sg_loop_leave(l, now);
}

void sgrpc_net_conn_set_transport(sgrpc_net_conn *c, void *tx) {
  if (c) c->tx = tx;
}

void *sgrpc_net_conn_transport(const sgrpc_net_conn *c) { return c ? c->tx : NULL; }
sgrpc_conn *sgrpc_net_conn_engine(const sgrpc_net_conn *c) { return c ? c->engine : NULL; }
sgrpc_net_server *sgrpc_net_conn_server(const sgrpc_net_conn *c) { return c ? c->server : NULL; }
sgrpc_net_channel *sgrpc_net_conn_channel(const sgrpc_net_conn *c) { return c ? c->channel : NULL; }
sgrpc_net_loop *sgrpc_net_conn_loop(const sgrpc_net_conn *c) { return c ? c->loop : NULL; }
const char *sgrpc_net_conn_peer(const sgrpc_net_conn *c) { return c ? c->peer : ""; }
sgrpc_tls *sgrpc_net_conn_tls(const sgrpc_net_conn *c) { return c ? c->tls : NULL; }

int sgrpc_net_conn_peer_cert(const sgrpc_net_conn *c, sgrpc_tls_peer *peer) {
  if (!c || !peer) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!c->tls) return SGRPC_ERR_INVALID_STATE;
  return sgrpc_tls_peer_cert(c->tls, peer);
}

uint64_t sgrpc_net_conn_id(const sgrpc_net_conn *c) { return c ? c->id : 0; }

/* The engine's peer source (sgrpc_conn_peer): the address, and under TLS
 * the session facts and the peer's certificate. */
static int conn_peer_fill(void *ctx, sgrpc_peer *p) {
  sgrpc_net_conn *c = ctx;
  sgrpc_tls_peer tp;
  sgrpc_tls_info ti;
  int rv;
  p->address = c->peer;
  if (!c->tls || !(sgrpc_tls_state(c->tls) & SGRPC_TLS_HANDSHAKE_DONE)) return 0;
  p->secure = 1;
  if (sgrpc_tls_info_get(c->tls, &ti) == 0) {
    p->tls_version = ti.version;
    p->tls_cipher = ti.cipher;
  }
  memset(&tp, 0, sizeof(tp));
  rv = sgrpc_tls_peer_cert(c->tls, &tp);
  if (rv == SGRPC_ERR_TLS_NO_PEER_CERT) return 0;
  if (rv < 0) return rv;
  if (tp.san_count && !c->sans) {
    size_t i;
    if (tp.san_count > SIZE_MAX / sizeof(*c->sans)) return SGRPC_ERR_NOMEM;
    c->sans = net_calloc(c->loop, tp.san_count * sizeof(*c->sans));
    if (!c->sans) return SGRPC_ERR_NOMEM;
    for (i = 0; i < tp.san_count; i++) {
      c->sans[i].type = (int)tp.sans[i].type;
      c->sans[i].value = tp.sans[i].value;
    }
    c->nsans = tp.san_count;
  }
  p->has_cert = 1;
  p->cert_verified = tp.verified;
  p->cert_der = tp.der;
  p->cert_der_len = tp.der_len;
  p->cert_subject = tp.subject;
  p->cert_issuer = tp.issuer;
  p->sans = c->sans;
  p->san_count = c->nsans;
  return 0;
}

/* Asks the factory for the connection's TLS session. Returns 0 (plain or
 * TLS) or the factory's refusal. */
int sg_conn_make_tls(sgrpc_net_conn *c, sgrpc_tls_factory make, void *ud, const char *name) {
  sgrpc_tls *tls = NULL;
  int rv = make(ud, name, &tls);
  if (rv < 0) return rv;
  if (rv == 0) {
    sgrpc_tls_del(tls);
    return 0;
  }
  if (!tls) return SGRPC_ERR_INVALID_STATE;
  c->tls = tls;
  return 0;
}

static int64_t conn_linger(const sgrpc_net_conn *c) {
  return c->linger_ns == 0 ? NET_LINGER_DEFAULT : c->linger_ns < 0 ? 0 : c->linger_ns;
}

/* Graceful close, one step: the TLS session's last records (its
 * close_notify) go out, then the write side is shut and input is read
 * and discarded until the peer's EOF or close_at. Closing at once instead
 * would make the kernel answer anything the peer sent since our last
 * read (a WINDOW_UPDATE) with a reset, which drops the output still
 * queued in it: the last DATA, the trailers, the GOAWAY. Returns 1 when
 * the connection closed or moved on, else 0. */
static int conn_linger_step(sgrpc_net_conn *c) {
  sgrpc_net_loop *l = c->loop;
  if (c->lingering == 2) return 0;
  if (c->tls) {
    int k;
    for (k = 0; k < NET_WRITE_ROUNDS && !c->blocked; k++) {
      const uint8_t *p;
      sgrpc_ssize n = sgrpc_tls_out_peek(c->tls, &p), w;
      if (n <= 0) break;
      w = tx_write(c, p, (size_t)n);
      if (w < 0) {
        sg_conn_close(c);
        return 1;
      }
      sgrpc_tls_out_consume(c->tls, (size_t)w);
      if (w < n) c->blocked = 1;
    }
    if (sgrpc_tls_want_write(c->tls)) return 0; /* sgrpc_net_conn_writable resumes */
  }
  if (l->ops.shutdown_write(c->tx) < 0) {
    sg_conn_close(c);
    return 1;
  }
  c->lingering = 2;
  return 1;
}

/* The connection is done (no call left on a draining or closing one, or
 * the engine failed and its last frames are out): close it gracefully
 * when the adapter can half-close, else at once. */
static void conn_finish(sgrpc_net_conn *c) {
  sgrpc_net_loop *l = c->loop;
  int64_t linger = conn_linger(c);
  if (!l->ops.shutdown_write || !c->tx || linger <= 0) {
    sg_conn_close(c);
    return;
  }
  /* Calls still known to a failed engine end now; the engine is done. */
  sgrpc_conn_transport_closed(c->engine);
  conn_drain(c);
  if (c->tls) sgrpc_tls_close(c->tls);
  c->lingering = 1;
  c->close_at = l->now + linger;
  conn_linger_step(c);
}

/* Brings a connection up to date. Returns events dispatched, plus one if
 * it closed. */
static int conn_service(sgrpc_net_conn *c) {
  int n;
  if (c->dead) return 0;
  if (c->failfast_due) {
    c->failfast_due = 0;
    if (c->channel && c->state != NET_OPEN) sg_channel_fail_fast(c);
  }
  if (c->lingering && !c->closing) return conn_linger_step(c);
  /* A quiet connection (most of them, when a loop holds thousands) is
   * skipped at the cost of a few loads: nothing below would change. */
  if (c->state == NET_OPEN && !c->closing && !c->close_at && !c->close_when_idle && !c->tls &&
      !sgrpc_conn_has_work(c->engine))
    return 0;
  n = conn_drain(c);
  if (c->state == NET_OPEN && !c->closing) conn_flush(c);
  if (c->closing) {
    sg_conn_close(c);
    return n + 1;
  }
  if (c->state == NET_OPEN) {
    int pending = sgrpc_conn_want_write(c->engine) || (c->tls && sgrpc_tls_want_write(c->tls));
    int alive = sgrpc_conn_is_alive(c->engine);
    if (!pending && (!alive || (c->close_when_idle && sgrpc_conn_call_count(c->engine) == 0))) {
      /* A server's graceful shutdown: the client may have sent requests
       * before it read our first GOAWAY. Its answer to the PING sent
       * with that GOAWAY (any bytes after it) says it has read it; only
       * then is closing safe (what C-core waits for too), or after a
       * linger's time for a peer that never answers. */
      if (c->drain_rx_mark) {
        sgrpc_conn_stats st;
        sgrpc_conn_get_stats(c->engine, &st);
        /* the wait counts from the moment the connection had nothing
         * left to do, not from the start of the shutdown: a slow reader
         * may take longer than a linger to get that far */
        if (!c->drain_ack_by) c->drain_ack_by = c->loop->now + conn_linger(c);
        if (st.bytes_received + 2 <= c->drain_rx_mark && c->loop->now < c->drain_ack_by)
          return n;
      }
      conn_finish(c);
      return n + 1;
    }
    /* A failed engine still has frames (its GOAWAY) for a peer that may
     * not read: they get a linger's time, then the connection goes. */
    if (!alive && !c->close_at) c->close_at = c->loop->now + conn_linger(c);
  } else if (c->state == NET_WAITING && sgrpc_conn_call_count(c->engine) == 0) {
    sg_conn_close(c); /* nobody waits for this connection any more */
    return n + 1;
  } else if (c->state != NET_OPEN && !sgrpc_conn_is_alive(c->engine)) {
    sg_conn_close(c); /* e.g. SETTINGS timeout while connecting */
    return n + 1;
  }
  return n;
}

/* ------------------------------------------------------------------ */
/* Loop                                                                */
/* ------------------------------------------------------------------ */

/* Whether a pass would find nothing to do on c (see conn_service):
 * connections for which this holds need not be on the work list. */
static int conn_quiet(const sgrpc_net_conn *c) {
  return c->state == NET_OPEN && !c->closing && !c->close_at && !c->close_when_idle &&
         !c->lingering && !c->failfast_due && (!c->tls || !sgrpc_tls_want_write(c->tls)) &&
         !sgrpc_conn_has_work(c->engine);
}

int64_t sgrpc_net_loop_next_expiry(const sgrpc_net_loop *l) {
  int64_t when = SGRPC_NEVER;
  const sgrpc_net_server *s;
  const sgrpc_net_timer *t;
  if (!l) return SGRPC_NEVER;
  if (l->heap_len) when = l->heap[0].key;
  for (s = l->servers; s; s = s->next) {
    if (s->nconns) when = min64(when, s->drain_at);
    when = min64(when, s->accept_resume_at);
  }
  for (t = l->timers; t; t = t->next) when = min64(when, t->when);
  return min64(when, sg_channels_next_expiry(l));
}

#ifndef NDEBUG
/* Debug builds check the bookkeeping after every pass: a connection off
 * the work list with work, or a stale expiry, would hang it. */
static void loop_verify(const sgrpc_net_loop *l) {
  const sgrpc_net_conn *c;
  size_t i, live = 0;
  for (c = l->conns; c; c = c->next) {
    if (c->dead) continue;
    live++;
    if (!c->heap_idx || c->heap_idx > l->heap_len || l->heap[c->heap_idx - 1].c != c ||
        l->heap[c->heap_idx - 1].key != c->heap_key) {
      fprintf(stderr, "sgrpc net: connection %llu is not in the expiry heap\n",
              (unsigned long long)c->id);
      abort();
    }
    if (c->heap_key != conn_key(c)) {
      fprintf(stderr, "sgrpc net: connection %llu: expiry %lld in the heap, %lld due\n",
              (unsigned long long)c->id, (long long)c->heap_key, (long long)conn_key(c));
      abort();
    }
    if (!c->in_work && !conn_quiet(c)) {
      fprintf(stderr, "sgrpc net: connection %llu has work but is not on the work list\n",
              (unsigned long long)c->id);
      abort();
    }
  }
  if (live != l->heap_len || live != l->nlive) {
    fprintf(stderr, "sgrpc net: %zu live connections, %zu in the heap, %zu counted\n", live,
            l->heap_len, l->nlive);
    abort();
  }
  for (i = 1; i < l->heap_len; i++)
    if (l->heap[(i - 1) / 4].key > l->heap[i].key) {
      fprintf(stderr, "sgrpc net: expiry heap out of order at %zu\n", i);
      abort();
    }
}
#endif

/* Services the connections on the work list until a pass finds nothing
 * more to do (bounded): servicing one may add others (a callback that
 * sends on another connection). A connection stays on the list while it
 * is not quiet; its expiry is recomputed after each service. */
static void loop_service_all(sgrpc_net_loop *l, int64_t now) {
  int pass;
  int64_t when;
  sgrpc_net_conn *c;
  l->depth++; /* callbacks below must not recurse into a service pass */
  l->now = now;
  sg_channels_maintain(l, now);
  for (pass = 0; pass < 6; pass++) {
    sgrpc_net_conn *next;
    uint64_t woken = l->woken;
    int work = 0;
    c = l->work_head;
    l->work_head = l->work_tail = NULL;
    for (; c; c = next) {
      next = c->wnext;
      c->wnext = NULL;
      c->in_work = 0;
      if (c->dead) continue;
      work += conn_service(c);
      l->serviced++;
      if (c->channel) sg_channel_touch(c->channel);
      if (c->dead) continue;
      heap_fix(c);
      if (!c->in_work && !conn_quiet(c)) work_push(c);
    }
    /* State callbacks may start calls: one more pass writes them. */
    if (!work && l->woken == woken && !sg_channels_check_state(l, now)) break;
  }
  /* what the bound left on the list keeps an up-to-date expiry */
  for (c = l->work_head; c; c = c->wnext)
    if (!c->dead) heap_fix(c);
  sg_channels_settle(l, now);
#ifndef NDEBUG
  loop_verify(l);
  sg_channels_verify(l, now);
#endif
  l->depth--;
  sg_free_graveyard(l);
  when = sgrpc_net_loop_next_expiry(l);
  if (when != l->armed) {
    l->armed = when;
    l->ops.timer_arm(l->ud, when);
  }
}

void sgrpc_net_loop_service(sgrpc_net_loop *l, int64_t now) {
  if (!l || l->depth > 0) return;
  loop_service_all(l, now);
}

static void timer_unlink(sgrpc_net_timer *t) {
  sgrpc_net_loop *l = t->loop;
  if (t->prev) t->prev->next = t->next;
  else l->timers = t->next;
  if (t->next) t->next->prev = t->prev;
}

/* Fires due user timers created before this pass; a callback may start or
 * cancel timers, so the list is searched again after each one. */
static void timers_fire(sgrpc_net_loop *l, int64_t now) {
  uint64_t limit = l->timer_seq;
  int guard;
  for (guard = 0; guard < 100000; guard++) {
    sgrpc_net_timer *t;
    sgrpc_net_timer_cb cb;
    void *ud;
    for (t = l->timers; t; t = t->next)
      if (t->when <= now && t->seq <= limit) break;
    if (!t) return;
    timer_unlink(t);
    cb = t->cb;
    ud = t->user_data;
    net_free(l, t);
    cb(l, ud, now);
  }
}

void sgrpc_net_loop_timer(sgrpc_net_loop *l, int64_t now) {
  sgrpc_net_conn *c, *next, *due;
  sgrpc_net_server *s;
  if (!l) return;
  sg_loop_enter(l, now);
  l->armed = SGRPC_NEVER; /* fired: whatever is due later is re-armed below */
  /* Only the connections whose expiry is due: they leave the heap first
   * (handling one may change or close others) and go back in with their
   * new expiry, and onto the work list. */
  due = NULL;
  while (l->heap_len && l->heap[0].key <= now) {
    c = l->heap[0].c;
    heap_remove(c);
    c->tnext = due;
    due = c;
  }
  for (c = due; c; c = next) {
    next = c->tnext;
    c->tnext = NULL;
    if (c->dead) continue;
    /* An engine that fails here (SETTINGS or keepalive timeout) has queued
     * its GOAWAY: the service pass sends it, then closes (conn_service). */
    if (sgrpc_conn_next_expiry(c->engine) <= now)
      sgrpc_conn_handle_expiry(c->engine, now);
    if (c->close_at && c->close_at <= now) c->closing = 1;
    if (c->state == NET_CONNECTING && c->connect_deadline <= now && c->channel)
      sg_channel_connect_failed(c, now);
    else if (c->state == NET_WAITING && !c->closing && c->retry_at <= now && c->channel)
      sg_channel_start_attempt(c, now);
    if (c->dead) continue;
    heap_fix(c);
    sg_conn_touch(c);
  }
  /* Backstop for the engine's own drain deadline: a connection still
   * busy a second after it is closed outright. */
  for (s = l->servers; s; s = s->next) {
    if (s->drain_at <= now)
      for (c = l->conns; c; c = c->next)
        if (c->server == s) {
          c->closing = 1;
          sg_conn_touch(c);
        }
    if (s->accept_resume_at <= now) {
      s->accept_resume_at = SGRPC_NEVER;
      if (s->listener && l->ops.listener_pause) l->ops.listener_pause(l->ud, s, s->listener, 0);
    }
  }
  sg_channels_timer(l, now);
  timers_fire(l, now);
  sg_loop_leave(l, now);
}

int sgrpc_net_timer_start(sgrpc_net_loop *l, int64_t when, sgrpc_net_timer_cb cb, void *ud,
                          sgrpc_net_timer **pt) {
  sgrpc_net_timer *t;
  if (pt) *pt = NULL;
  if (!l || !cb) return SGRPC_ERR_INVALID_ARGUMENT;
  t = net_calloc(l, sizeof(*t));
  if (!t) return SGRPC_ERR_NOMEM;
  t->loop = l;
  t->when = when;
  t->seq = ++l->timer_seq;
  t->cb = cb;
  t->user_data = ud;
  t->next = l->timers;
  if (l->timers) l->timers->prev = t;
  l->timers = t;
  /* Inside an entry point the service pass re-arms; outside, arm now. */
  if (l->depth == 0 && when < l->armed) {
    l->armed = when;
    l->ops.timer_arm(l->ud, when);
  }
  if (pt) *pt = t;
  return 0;
}

void sgrpc_net_timer_cancel(sgrpc_net_timer *t) {
  if (!t) return;
  timer_unlink(t);
  net_free(t->loop, t);
}

int sgrpc_net_loop_new(sgrpc_net_loop **pl, const sgrpc_net_ops *ops, void *ud,
                       const sgrpc_mem *mem) {
  sgrpc_net_loop *l;
  sgrpc_mem m;
  if (pl) *pl = NULL;
  if (!pl || !ops || !ops->close || !ops->timer_arm || (!ops->write == !ops->write_owned))
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  l = m.calloc(1, sizeof(*l), m.user_data);
  if (!l) return SGRPC_ERR_NOMEM;
  l->mem = m;
  l->ops = *ops;
  l->ud = ud;
  l->armed = SGRPC_NEVER;
  *pl = l;
  return 0;
}

void *sgrpc_net_loop_user(const sgrpc_net_loop *l) { return l ? l->ud : NULL; }
const sgrpc_mem *sgrpc_net_loop_mem(const sgrpc_net_loop *l) { return l ? &l->mem : NULL; }

int sgrpc_net_loop_has_work(const sgrpc_net_loop *l) {
  const sgrpc_net_server *s;
  if (!l) return 0;
  if (l->conns || l->timers || sg_channels_have_work(l)) return 1;
  for (s = l->servers; s; s = s->next)
    if (s->listener && !s->shutting_down) return 1;
  return 0;
}

static void server_close_listener(sgrpc_net_server *s) {
  void *lis = s->listener;
  if (!lis) return;
  s->listener = NULL;
  if (s->loop->ops.listener_close) s->loop->ops.listener_close(s->loop->ud, s, lis);
}

void sgrpc_net_loop_graceful(sgrpc_net_loop *l, int64_t now) {
  sgrpc_net_server *s;
  if (!l) return;
  sg_loop_enter(l, now);
  for (s = l->servers; s; s = s->next) sgrpc_net_server_shutdown(s, now);
  sg_channels_close_all(l, now);
  sg_loop_leave(l, now);
}

void sgrpc_net_loop_abort(sgrpc_net_loop *l) {
  sgrpc_net_server *s;
  if (!l) return;
  l->depth++;
  for (s = l->servers; s; s = s->next) {
    s->shutting_down = 1;
    server_close_listener(s);
  }
  sg_channels_abort_all(l);
  while (l->conns) sg_conn_close(l->conns);
  l->depth--;
  if (l->depth == 0) sg_free_graveyard(l);
}

int sgrpc_net_loop_signal(sgrpc_net_loop *l, int signo, int64_t now) {
  (void)signo;
  if (!l) return 0;
  l->now = now;
  if (++l->signals == 1) sgrpc_net_loop_graceful(l, now);
  else sgrpc_net_loop_abort(l);
  return l->signals;
}

void sgrpc_net_loop_set_io_limit(sgrpc_net_loop *l, size_t n) {
  if (l) l->io_limit = n;
}
size_t sgrpc_net_loop_io_limit(const sgrpc_net_loop *l) { return l ? l->io_limit : 0; }

uint64_t sgrpc_net_loop_serviced(const sgrpc_net_loop *l) { return l ? l->serviced : 0; }

void sgrpc_net_loop_del(sgrpc_net_loop *l) {
  if (!l) return;
  sgrpc_net_loop_abort(l);
  while (l->servers) sgrpc_net_server_del(l->servers);
  sg_channel_free_all(l);
  while (l->timers) sgrpc_net_timer_cancel(l->timers);
  sg_free_graveyard(l);
  if (l->armed != SGRPC_NEVER) l->ops.timer_arm(l->ud, SGRPC_NEVER);
  net_free(l, l->heap);
  net_free(l, l->ch_heap);
  net_free(l, l);
}

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

int sgrpc_net_server_new(sgrpc_net_server **ps, sgrpc_net_loop *l, const sgrpc_net_server_opts *o) {
  sgrpc_net_server *s;
  if (ps) *ps = NULL;
  if (!ps || !l || !o || !o->on_event) return SGRPC_ERR_INVALID_ARGUMENT;
  s = net_calloc(l, sizeof(*s));
  if (!s) return SGRPC_ERR_NOMEM;
  s->loop = l;
  s->id = sg_loop_next_id(l);
  /* settings of the caller's version; the server's budget goes to every
   * connection through them */
  if (o->settings && sgrpc_settings_copy(&s->settings, o->settings) != 0) {
    net_free(l, s);
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
  if (!o->settings && o->budget) sgrpc_settings_default(&s->settings);
  if (o->budget) s->settings.shared_budget = o->budget;
  s->has_settings = o->settings || o->budget;
  s->on_event = o->on_event;
  s->user_data = o->user_data;
  s->drain_timeout_ns = o->drain_timeout_ns;
  s->drain_at = SGRPC_NEVER;
  s->linger_ns = o->linger_ns;
  s->accept_resume_at = SGRPC_NEVER;
  s->make_tls = o->make_tls;
  s->tls_ud = o->tls_user_data;
  if (sg_record_setup(l, o->record_dir, o->record_max_bytes, &s->record_dir, &s->record_max) != 0) {
    net_free(l, s);
    return SGRPC_ERR_NOMEM;
  }
  s->next = l->servers;
  if (l->servers) l->servers->prev = s;
  l->servers = s;
  *ps = s;
  return 0;
}

void sgrpc_net_server_set_listener(sgrpc_net_server *s, void *listener, int port) {
  if (!s) return;
  s->listener = listener;
  s->port = port;
}
void *sgrpc_net_server_listener(const sgrpc_net_server *s) { return s ? s->listener : NULL; }
int sgrpc_net_server_port(const sgrpc_net_server *s) { return s ? s->port : 0; }
void *sgrpc_net_server_user_data(const sgrpc_net_server *s) { return s ? s->user_data : NULL; }
int sgrpc_net_server_is_shutting_down(const sgrpc_net_server *s) {
  return s ? s->shutting_down : 0;
}
size_t sgrpc_net_server_conn_count(const sgrpc_net_server *s) { return s ? s->nconns : 0; }

int sgrpc_net_server_accept(sgrpc_net_server *s, void *tx, const char *peer, int64_t now,
                            sgrpc_net_conn **pc) {
  sgrpc_conn *engine = NULL;
  sgrpc_net_conn *c;
  int rv;
  if (pc) *pc = NULL;
  if (!s || !pc) return SGRPC_ERR_INVALID_ARGUMENT;
  if (s->shutting_down) return SGRPC_ERR_INVALID_STATE;
  rv = sgrpc_conn_server_new(&engine, s->has_settings ? &s->settings : NULL, &s->loop->mem, now);
  if (rv != 0) return rv;
  c = sg_conn_new(s->loop, engine);
  if (!c) {
    sgrpc_conn_del(engine);
    return SGRPC_ERR_NOMEM;
  }
  c->server = s;
  sg_conn_record(c, s->record_dir, s->record_max, "server");
  c->linger_ns = s->linger_ns;
  c->state = NET_OPEN;
  c->ever_connected = 1;
  if (peer) snprintf(c->peer, sizeof(c->peer), "%s", peer);
  s->nconns++;
  if (s->make_tls && (rv = sg_conn_make_tls(c, s->make_tls, s->tls_ud, NULL)) < 0) {
    /* Refused: the adapter still owns tx and closes it. */
    c->server = NULL;
    s->nconns--;
    c->closing = 1;
    s->loop->depth++;
    sg_conn_close(c);
    s->loop->depth--;
    if (s->loop->depth == 0) sg_free_graveyard(s->loop);
    return rv == SGRPC_ERR_NOMEM ? rv : SGRPC_ERR_INVALID_STATE;
  }
  c->tx = tx;
  *pc = c;
  sg_loop_kick(s->loop, now); /* the server's preface goes out on the next service */
  return 0;
}

int sgrpc_net_server_accept_failed(sgrpc_net_server *s, int err, int64_t now) {
  sgrpc_net_loop *l;
  int e;
  if (!s) return 0;
  e = sgrpc_err_errno(err);
  /* Out of descriptors or kernel memory: the pending connection stays in
   * the backlog and the listener stays readable, so trying again at once
   * only spins. Rest the listener; existing connections go on. */
  if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) return 0;
  l = s->loop;
  if (!s->listener || s->shutting_down) return 0;
  if (s->accept_resume_at == SGRPC_NEVER) {
    s->accept_pauses++;
    if (l->ops.listener_pause) l->ops.listener_pause(l->ud, s, s->listener, 1);
  }
  s->accept_resume_at = now + NET_ACCEPT_PAUSE;
  sg_loop_kick(l, now);
  return 1;
}

uint64_t sgrpc_net_server_accept_pauses(const sgrpc_net_server *s) {
  return s ? s->accept_pauses : 0;
}

void sgrpc_net_server_shutdown(sgrpc_net_server *s, int64_t now) {
  sgrpc_net_conn *c;
  int64_t deadline;
  if (!s || s->shutting_down) return;
  s->shutting_down = 1;
  server_close_listener(s);
  deadline = s->drain_timeout_ns > 0 ? now + s->drain_timeout_ns : SGRPC_NEVER;
  s->accept_resume_at = SGRPC_NEVER;
  /* The engine's two-step GOAWAY: the first (maximum stream id) and a
   * PING, the final one (the last stream taken) when the PING comes back,
   * so that requests in flight are neither lost nor run behind a GOAWAY
   * that excluded them. At the deadline the engine resets the calls left
   * (RST_STREAM CANCEL); the net layer closes connections still open a
   * second later. */
  if (deadline != SGRPC_NEVER) s->drain_at = deadline + 1000000000LL;
  for (c = s->loop->conns; c; c = c->next)
    if (c->server == s && !c->dead && !c->lingering) {
      int rv = sgrpc_conn_shutdown(c->engine, deadline, now);
      sgrpc_conn_stats st;
      sgrpc_conn_get_stats(c->engine, &st);
      /* +1: 0 means unset; closing waits for more input than this */
      c->drain_rx_mark = st.bytes_received + 2;
      c->drain_ack_by = 0; /* set when the connection goes idle */
      c->close_when_idle = 1;
      if (rv < 0) c->closing = 1;
      sg_conn_touch(c);
    }
  sg_loop_kick(s->loop, now);
}

void sgrpc_net_server_del(sgrpc_net_server *s) {
  sgrpc_net_loop *l;
  sgrpc_net_conn *c, *next;
  if (!s) return;
  l = s->loop;
  l->depth++;
  server_close_listener(s);
  for (c = l->conns; c; c = next) {
    next = c->next;
    if (c->server == s) sg_conn_close(c);
  }
  l->depth--;
  if (s->prev) s->prev->next = s->next;
  else l->servers = s->next;
  if (s->next) s->next->prev = s->prev;
  if (l->depth == 0) sg_free_graveyard(l);
  net_free(l, s->record_dir);
  net_free(l, s);
}

/* ------------------------------------------------------------------ */
/* Counters and enumeration (metrics, channelz)                        */
/* ------------------------------------------------------------------ */

uint64_t sgrpc_net_server_id(const sgrpc_net_server *s) { return s ? s->id : 0; }

/* Totals: what closed connections left plus every open one of the owner. */
void sg_owner_stats(const sgrpc_net_loop *l, const sgrpc_conn_stats *closed,
                    const sgrpc_net_server *s, const sgrpc_net_channel *ch, sgrpc_conn_stats *st) {
  sgrpc_conn_stats t = *closed;
  const sgrpc_net_conn *c;
  for (c = l->conns; c; c = c->next)
    if ((s && c->server == s) || (ch && c->channel == ch)) sg_stats_add(&t, c->engine);
  *st = t;
}

void sgrpc_net_server_get_stats(const sgrpc_net_server *s, sgrpc_conn_stats *st) {
  if (!st) return;
  memset(st, 0, sizeof(*st));
  if (s) sg_owner_stats(s->loop, &s->closed, s, NULL, st);
}


sgrpc_net_conn *sgrpc_net_server_conn_next(const sgrpc_net_server *s, const sgrpc_net_conn *prev) {
  sgrpc_net_conn *c;
  if (!s || (prev && (prev->dead || prev->server != s))) return NULL;
  for (c = prev ? prev->next : s->loop->conns; c; c = c->next)
    if (c->server == s) return c;
  return NULL;
}


sgrpc_net_server *sgrpc_net_loop_server_next(const sgrpc_net_loop *l,
                                             const sgrpc_net_server *prev) {
  if (!l) return NULL;
  return prev ? prev->next : l->servers;
}


sgrpc_net_conn *sgrpc_net_loop_conn_find(const sgrpc_net_loop *l, uint64_t id) {
  sgrpc_net_conn *c;
  if (!l || id == 0) return NULL;
  for (c = l->conns; c; c = c->next)
    if (c->id == id) return c;
  return NULL;
}

sgrpc_net_loop *sgrpc_net_server_loop(const sgrpc_net_server *s) { return s ? s->loop : NULL; }
