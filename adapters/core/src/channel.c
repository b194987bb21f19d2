/*
 * Channels: a target, a resolver, a load-balancing policy over
 * subchannels, and a connectivity state (see <sgrpc/net.h>).
 *
 * A subchannel is a list of addresses (pick_first: all of them, in
 * order; round_robin: one) with its own connection backoff and at most
 * one current connection. A call is bound to an engine connection when
 * it starts (the engine queues it until the transport is up), so a
 * connection that never connected can still move to its next address
 * or wait out a backoff with its calls: nothing of them was sent.
 * Calls that start before the first resolution wait on the channel's
 * pending connection, which joins a subchannel once addresses arrive.
 */
#define _DEFAULT_SOURCE
#include "net_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CH_MIN_RESOLVE_DEFAULT (30 * 1000000000LL)
#define CH_IDLE_DEFAULT (30 * 60 * 1000000000LL)

struct sg_subch {
  sgrpc_net_address *addrs;
  size_t naddrs;
  sgrpc_net_backoff backoff;
  int64_t retry_at; /* no attempt before this; 0: none */
  sgrpc_net_conn *cur;
};

struct sgrpc_net_channel {
  sgrpc_net_loop *loop;
  sgrpc_net_target target; /* the parsed view (sgrpc_net_channel_target) */
  sg_target t;
  char *target_text;
  char *authority;
  sgrpc_settings settings;
  int has_settings;
  sgrpc_net_event_cb on_conn_event;
  sgrpc_net_channel_state_cb on_state;
  void *user_data;
  int wait_for_ready;
  int rr;
  int64_t linger_ns;
  sgrpc_tls_factory make_tls;
  void *tls_ud;
  sgrpc_net_backoff_opts backoff_opts;
  const sgrpc_service_config *sc;
  /* resolution */
  sgrpc_net_resolver resolver;
  int has_resolver; /* 0: the target's addresses are fixed */
  sg_dns *dns;
  sgrpc_net_resolve *req;
  sgrpc_net_backoff resolve_backoff;
  int64_t min_resolve;
  int64_t last_resolve;  /* start of the latest resolution; 0: none */
  int64_t resolve_at;    /* a resolution is due then; SGRPC_NEVER: none */
  int resolve_failed;    /* the latest resolution failed */
  char resolve_error[200];
  uint64_t resolutions;
  /* addresses and subchannels */
  sgrpc_net_address *addrs;
  size_t naddrs;
  sg_subch *subs;
  size_t nsubs, rr_next;
  sgrpc_net_conn *pending; /* calls waiting for the first addresses */
  sgrpc_net_conn *conns;   /* its live connections (ch_next), newest first */
  /* state */
  int state;
  int idle; /* idle: nothing connects until a call or try_to_connect */
  int want_connect; /* try_to_connect asked before addresses were known */
  int64_t idle_timeout, idle_since;
  size_t nconns;
  int failures;
  int closing;
  char *record_dir; /* recording directory, or NULL */
  uint64_t record_max;
  uint64_t id;              /* loop-unique (channelz) */
  sgrpc_conn_stats closed;  /* totals of the connections already closed */
  sgrpc_net_channel *prev, *next;
  /* Bookkeeping of the loop's passes: on the loop's dirty list (dnext),
   * the position in its expiry heap (1-based, 0: none), the expiry there
   * and the time it was computed at; tnext links the due ones in
   * sg_channels_timer. */
  int in_dirty; /* 1: on the dirty list; 2: in the batch being checked */
  sgrpc_net_channel *dnext, *tnext;
  size_t hidx;
  int64_t hkey, hkey_now;
};

static void channel_resolve_now(sgrpc_net_channel *ch, int64_t now);
static void channel_connect_all(sgrpc_net_channel *ch, int64_t now);
static int channel_compute_state(const sgrpc_net_channel *ch, int64_t now);

/* ------------------------------------------------------------------ */
/* Dirty list and expiry heap of the channels                          */
/* ------------------------------------------------------------------ */

void sg_channel_touch(sgrpc_net_channel *ch) {
  sgrpc_net_loop *l = ch->loop;
  if (ch->in_dirty) return;
  ch->in_dirty = 1;
  ch->dnext = l->ch_dirty;
  l->ch_dirty = ch;
}

/* Off the dirty list, or off the batch sg_channels_check_state is working
 * through (a callback there may delete another channel). */
static void ch_undirty(sgrpc_net_channel *ch) {
  sgrpc_net_loop *l = ch->loop;
  sgrpc_net_channel **pp;
  if (!ch->in_dirty) return;
  for (pp = ch->in_dirty == 2 ? &l->ch_batch : &l->ch_dirty; *pp; pp = &(*pp)->dnext)
    if (*pp == ch) {
      *pp = ch->dnext;
      break;
    }
  ch->in_dirty = 0;
  ch->dnext = NULL;
}

/* The channel's next expiry as seen at now: resolver timeouts and due
 * resolutions, the idle timeout, and the end of each subchannel's backoff
 * (the state leaves TRANSIENT_FAILURE then; round_robin reconnects). */
static int64_t ch_key(const sgrpc_net_channel *ch, int64_t now) {
  int64_t when = SGRPC_NEVER;
  size_t i;
  if (ch->closing) return SGRPC_NEVER;
  when = sg_min64(when, sg_dns_next_expiry(ch->dns));
  if (ch->has_resolver && (!ch->idle || ch->req)) when = sg_min64(when, ch->resolve_at);
  if (!ch->idle && ch->idle_timeout > 0 && ch->idle_since)
    when = sg_min64(when, ch->idle_since + ch->idle_timeout);
  for (i = 0; i < ch->nsubs; i++) {
    int64_t r = ch->subs[i].retry_at;
    if (r <= 0) continue;
    if ((ch->rr && !ch->idle && !ch->subs[i].cur) || r > now) when = sg_min64(when, r);
  }
  return when;
}

static void ch_heap_set(sgrpc_net_loop *l, size_t i, sgrpc_net_channel *ch) {
  l->ch_heap[i] = ch;
  ch->hidx = i + 1;
}

static void ch_heap_up(sgrpc_net_loop *l, size_t i) {
  sgrpc_net_channel *ch = l->ch_heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (l->ch_heap[p]->hkey <= ch->hkey) break;
    ch_heap_set(l, i, l->ch_heap[p]);
    i = p;
  }
  ch_heap_set(l, i, ch);
}

static void ch_heap_down(sgrpc_net_loop *l, size_t i) {
  sgrpc_net_channel *ch = l->ch_heap[i];
  for (;;) {
    size_t k = 2 * i + 1;
    if (k >= l->ch_heap_len) break;
    if (k + 1 < l->ch_heap_len && l->ch_heap[k + 1]->hkey < l->ch_heap[k]->hkey) k++;
    if (l->ch_heap[k]->hkey >= ch->hkey) break;
    ch_heap_set(l, i, l->ch_heap[k]);
    i = k;
  }
  ch_heap_set(l, i, ch);
}

static void ch_heap_remove(sgrpc_net_channel *ch) {
  sgrpc_net_loop *l = ch->loop;
  sgrpc_net_channel *last;
  size_t i;
  if (!ch->hidx) return;
  i = ch->hidx - 1;
  ch->hidx = 0;
  last = l->ch_heap[--l->ch_heap_len];
  if (last == ch) return;
  ch_heap_set(l, i, last);
  ch_heap_up(l, i);
  ch_heap_down(l, last->hidx - 1);
}

/* Recomputes ch's expiry and its place in the heap (room for every
 * channel is reserved by sgrpc_net_channel_new). */
static void ch_heap_fix(sgrpc_net_channel *ch, int64_t now) {
  sgrpc_net_loop *l = ch->loop;
  int64_t key = ch_key(ch, now);
  ch->hkey_now = now;
  if (!ch->hidx) {
    ch->hkey = key;
    ch_heap_set(l, l->ch_heap_len++, ch);
    ch_heap_up(l, l->ch_heap_len - 1);
    return;
  }
  if (key == ch->hkey) return;
  ch->hkey = key;
  ch_heap_up(l, ch->hidx - 1);
  ch_heap_down(l, ch->hidx - 1);
}

static int ch_heap_reserve(sgrpc_net_loop *l) {
  sgrpc_net_channel **h;
  size_t cap;
  if (l->nchannels < l->ch_heap_cap) return 0;
  cap = l->ch_heap_cap ? l->ch_heap_cap * 2 : 16;
  h = l->mem.realloc(l->ch_heap, cap * sizeof(*h), l->mem.user_data);
  if (!h) return SGRPC_ERR_NOMEM;
  l->ch_heap = h;
  l->ch_heap_cap = cap;
  return 0;
}

void sg_channels_settle(sgrpc_net_loop *l, int64_t now) {
  sgrpc_net_channel *ch;
  for (ch = l->ch_dirty; ch; ch = ch->dnext) ch_heap_fix(ch, now);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static int addr_eq(const sgrpc_net_address *a, const sgrpc_net_address *b) {
  return a->len == b->len && memcmp(&a->addr, &b->addr, a->len) == 0;
}

static uint64_t ch_seed(sgrpc_net_channel *ch) {
  return (uint64_t)(uintptr_t)ch ^ (++ch->loop->seeds * 0x9e3779b97f4a7c15ULL);
}

static int conn_usable(const sgrpc_net_conn *c) {
  return c && !c->closing && !c->dead && !c->goaway_seen && !c->close_when_idle &&
         !c->lingering;
}

static int conn_is_ready(const sgrpc_net_conn *c) {
  return conn_usable(c) && c->state == NET_OPEN && sgrpc_conn_is_alive(c->engine);
}

/* Whether a call fails fast (its own setting, else the channel's). */
static int call_fail_fast(const sgrpc_net_channel *ch, const sgrpc_call_opts *o) {
  if (o->wait_for_ready > 0) return 0;
  if (o->wait_for_ready < 0) return 1;
  return !ch->wait_for_ready;
}

/* Rate-limited re-resolution (C-core: at least 30 s apart by default). */
static void channel_request_resolve(sgrpc_net_channel *ch, int64_t now) {
  int64_t at;
  if (!ch->has_resolver || ch->closing || ch->req) return;
  at = ch->last_resolve ? ch->last_resolve + ch->min_resolve : now;
  if (at < now) at = now;
  if (at < ch->resolve_at) ch->resolve_at = at;
}

/* ------------------------------------------------------------------ */
/* Calls that never sent a byte                                        */
/* ------------------------------------------------------------------ */

static void pcall_remove(sgrpc_net_conn *c, size_t i) {
  c->pcalls[i] = c->pcalls[--c->npcalls];
}

/* Ends the fail-fast calls of a connection that cannot connect now; the
 * connection closes when no call is left waiting. */
static void conn_fail_fast(sgrpc_net_conn *c) {
  size_t i, waiting = 0;
  int rv;
  for (i = 0; i < c->npcalls; i++) {
    if (c->pcalls[i].failed) continue;
    if (!c->pcalls[i].fail_fast) {
      waiting++;
      continue;
    }
    c->pcalls[i].failed = 1;
    /* An engine out of memory here is failed for good: the connection
     * goes, with every call left on it. */
    rv = sgrpc_call_cancel(c->pcalls[i].call);
    if (rv < 0 && rv != SGRPC_ERR_CALL_CLOSED) c->closing = 1;
  }
  if (!waiting || (c->channel && c->channel->closing)) c->closing = 1;
  sg_conn_touch(c);
}

void sg_channel_fail_fast(sgrpc_net_conn *c) { conn_fail_fast(c); }

void sg_channel_close_event(sgrpc_net_conn *c, sgrpc_event *e, int *changed) {
  static const char dflt[] = "connection failed";
  size_t i;
  int failed = 0;
  for (i = 0; i < c->npcalls; i++)
    if (c->pcalls[i].call == e->call) {
      failed = c->pcalls[i].failed;
      pcall_remove(c, i);
      break;
    }
  /* The user's own cancel stays CANCELLED; the channel's own ends and
   * the transport's end of a connection that never connected are ours. */
  if (!failed && (c->ever_connected || e->u.close.status.code != SGRPC_STATUS_UNAVAILABLE))
    return;
  /* Nothing of the call reached a server: tell the rpc layer it may be
   * retried transparently, and why it ended. */
  e->u.close.retry_safe = 1;
  if (e->u.close.status.code == SGRPC_STATUS_CANCELLED ||
      e->u.close.status.code == SGRPC_STATUS_UNAVAILABLE) {
    e->u.close.status.code = SGRPC_STATUS_UNAVAILABLE;
    if (c->reason[0]) {
      e->u.close.status.message = c->reason;
      e->u.close.status.message_len = strlen(c->reason);
    } else if (e->u.close.status.code == SGRPC_STATUS_UNAVAILABLE && !e->u.close.status.message_len) {
      e->u.close.status.message = dflt;
      e->u.close.status.message_len = sizeof(dflt) - 1;
    }
  }
  *changed = 1;
}

/* ------------------------------------------------------------------ */
/* Connections of a channel                                            */
/* ------------------------------------------------------------------ */

static sgrpc_net_conn *channel_new_conn(sgrpc_net_channel *ch, sg_subch *sub, int64_t now) {
  sgrpc_conn *engine = NULL;
  sgrpc_net_conn *c;
  if (sgrpc_conn_client_new(&engine, ch->has_settings ? &ch->settings : NULL, &ch->loop->mem,
                            now) != 0)
    return NULL;
  c = sg_conn_new(ch->loop, engine);
  if (!c) {
    sgrpc_conn_del(engine);
    return NULL;
  }
  c->channel = ch;
  c->sub = sub;
  c->ch_next = ch->conns;
  if (ch->conns) ch->conns->ch_prev = c;
  ch->conns = c;
  sg_conn_record(c, ch->record_dir, ch->record_max, "client");
  c->linger_ns = ch->linger_ns;
  c->state = NET_IDLE;
  c->retry_at = SGRPC_NEVER;
  c->connect_deadline = SGRPC_NEVER;
  ch->nconns++;
  if (ch->make_tls) {
    int rv = sg_conn_make_tls(c, ch->make_tls, ch->tls_ud, ch->t.host);
    if (rv < 0) {
      snprintf(c->reason, sizeof(c->reason), "TLS: %s", sgrpc_tls_strerror(rv));
      c->tls_failed = 1;
      c->closing = 1; /* its calls end UNAVAILABLE on the next service */
    }
  }
  return c;
}

void sg_channel_start_attempt(sgrpc_net_conn *c, int64_t now) {
  sgrpc_net_channel *ch = c->channel;
  sgrpc_net_loop *l = c->loop;
  sg_subch *sub = c->sub;
  int rv;
  sg_conn_touch(c);
  if (!sub || sub->naddrs == 0) { /* detached (re-resolution dropped it) */
    c->closing = 1;
    return;
  }
  if (c->addr_idx >= sub->naddrs) c->addr_idx = 0;
  c->state = NET_CONNECTING;
  c->attempt_start = now;
  c->connect_deadline = now + sgrpc_net_backoff_connect_timeout(&sub->backoff);
  c->retry_at = SGRPC_NEVER;
  sgrpc_net_address_format(&sub->addrs[c->addr_idx], c->peer, sizeof(c->peer));
  l->depth++; /* a synchronous report must not run callbacks here */
  l->now = now;
  rv = l->ops.connect ? l->ops.connect(l->ud, c, &sub->addrs[c->addr_idx]) : SGRPC_ERR_INVALID_STATE;
  if (rv < 0 && c->state == NET_CONNECTING && !c->dead) sg_channel_connect_failed(c, now);
  l->depth--;
  (void)ch;
}

void sg_channel_connect_failed(sgrpc_net_conn *c, int64_t now) {
  sgrpc_net_channel *ch = c->channel;
  sg_subch *sub = c->sub;
  sg_conn_touch(c);
  if (c->tx) {
    void *tx = c->tx;
    c->tx = NULL;
    c->loop->ops.close(tx);
  }
  c->state = NET_WAITING;
  if (!ch || ch->closing || !sub) {
    c->closing = 1;
    return;
  }
  snprintf(c->reason, sizeof(c->reason), "failed to connect to %s", c->peer);
  /* pick_first: the next address at once, the same calls */
  if (c->addr_idx + 1 < sub->naddrs && sgrpc_conn_is_alive(c->engine)) {
    c->addr_idx++;
    sg_channel_start_attempt(c, now);
    return;
  }
  /* Every address failed: back off, ask the resolver again. */
  c->addr_idx = 0;
  ch->failures++;
  if (sub->naddrs > 1)
    snprintf(c->reason, sizeof(c->reason), "failed to connect to all %zu addresses (last: %s)",
             sub->naddrs, c->peer);
  sub->retry_at = sgrpc_net_backoff_fail(&sub->backoff, c->attempt_start);
  if (sub->retry_at <= now) sub->retry_at = now + 1;
  c->retry_at = sub->retry_at;
  channel_request_resolve(ch, now);
  if (sgrpc_conn_call_count(c->engine) == 0 || !sgrpc_conn_is_alive(c->engine)) {
    c->closing = 1;
    return;
  }
  conn_fail_fast(c);
}

/* A subchannel's connection: connect now, or wait out the backoff. */
static void conn_begin(sgrpc_net_conn *c, int64_t now) {
  sg_subch *sub = c->sub;
  if (sub && now < sub->retry_at) {
    sg_conn_touch(c);
    c->state = NET_WAITING;
    c->retry_at = sub->retry_at;
    if (!c->reason[0]) snprintf(c->reason, sizeof(c->reason), "backing off after failed connects");
    c->failfast_due = 1;
    return;
  }
  sg_channel_start_attempt(c, now);
}

void sg_channel_conn_connected(sgrpc_net_conn *c) {
  /* Calls from now on may have sent bytes: no longer ours to rewrite. */
  c->npcalls = 0;
  c->reason[0] = '\0';
}

void sg_channel_conn_event(sgrpc_net_conn *c, const sgrpc_event *ev) {
  sgrpc_net_channel *ch = c->channel;
  if (ev->type == SGRPC_EV_GOAWAY) {
    /* New calls go to a fresh connection from now on. */
    c->goaway_seen = 1;
    if (c->sub && c->sub->cur == c) c->sub->cur = NULL;
  } else if (ev->type == SGRPC_EV_READY) {
    c->ready = 1;
    ch->failures = 0;
    if (c->sub) {
      sgrpc_net_backoff_reset(&c->sub->backoff);
      c->sub->retry_at = 0;
    }
  }
  if (ch->on_conn_event) ch->on_conn_event(c, ev, ch->user_data, ch->loop->now);
}

void sg_channel_conn_gone(sgrpc_net_channel *ch, sgrpc_net_conn *c) {
  int64_t ka = sgrpc_conn_keepalive_time(c->engine);
  if (ch->nconns) ch->nconns--;
  sg_channel_touch(ch);
  if (c->ch_prev) c->ch_prev->ch_next = c->ch_next;
  else if (ch->conns == c) ch->conns = c->ch_next;
  if (c->ch_next) c->ch_next->ch_prev = c->ch_prev;
  c->ch_prev = c->ch_next = NULL;
  if (c->sub && c->sub->cur == c) c->sub->cur = NULL;
  if (ch->pending == c) ch->pending = NULL;
  /* A peer that said too_many_pings doubled the engine's keepalive time;
   * the next connection starts from there (C-core does the same). */
  if (ka != SGRPC_NEVER && ka > 0 && ch->has_settings && ch->settings.keepalive_time > 0 &&
      ka > ch->settings.keepalive_time)
    ch->settings.keepalive_time = ka;
  /* A working connection lost: the backends may have moved. */
  if (c->ready && !c->by_channel && !ch->closing) channel_request_resolve(ch, ch->loop->now);
}

/* ------------------------------------------------------------------ */
/* Addresses and subchannels                                           */
/* ------------------------------------------------------------------ */

static void subs_free(sgrpc_net_loop *l, sg_subch *subs, size_t n) {
  size_t i;
  if (!subs) return;
  for (i = 0; i < n; i++) sg_net_free(l, subs[i].addrs);
  sg_net_free(l, subs);
}

static void conn_detach(sgrpc_net_conn *c) {
  sg_conn_touch(c);
  c->sub = NULL;
  if (c->state == NET_OPEN) {
    c->close_when_idle = 1;
    c->by_channel = 1;
  }
}

/* Installs a new address list: subchannels for the same addresses keep
 * their connection and backoff, the others' connections finish their
 * calls and close. Returns 0 or SGRPC_ERR_NOMEM (nothing changed). */
static int channel_set_addresses(sgrpc_net_channel *ch, const sgrpc_net_address *a, size_t n) {
  sgrpc_net_loop *l = ch->loop;
  size_t nsubs = ch->rr ? n : 1, i, j;
  sgrpc_net_address *copy = sg_net_calloc(l, n * sizeof(*copy));
  sg_subch *subs = sg_net_calloc(l, nsubs * sizeof(*subs));
  if (!copy || !subs) goto nomem;
  memcpy(copy, a, n * sizeof(*copy));
  for (i = 0; i < nsubs; i++) {
    size_t k = ch->rr ? 1 : n;
    subs[i].addrs = sg_net_calloc(l, k * sizeof(*subs[i].addrs));
    if (!subs[i].addrs) goto nomem;
    memcpy(subs[i].addrs, ch->rr ? &a[i] : a, k * sizeof(*a));
    subs[i].naddrs = k;
    sgrpc_net_backoff_init(&subs[i].backoff, &ch->backoff_opts, ch_seed(ch));
  }
  /* carry state over */
  for (j = 0; j < ch->nsubs; j++) {
    sg_subch *old = &ch->subs[j];
    sg_subch *to = NULL;
    if (ch->rr) {
      for (i = 0; i < nsubs && !to; i++)
        if (!subs[i].cur && addr_eq(&subs[i].addrs[0], &old->addrs[0])) to = &subs[i];
    } else {
      to = &subs[0];
      /* an open connection to an address no longer listed goes */
      if (old->cur && old->cur->state == NET_OPEN) {
        int listed = 0;
        for (i = 0; i < n; i++)
          if (old->cur->addr_idx < old->naddrs && addr_eq(&a[i], &old->addrs[old->cur->addr_idx])) {
            listed = 1;
            old->cur->addr_idx = i;
          }
        if (!listed) to = NULL;
      } else if (old->cur) {
        old->cur->addr_idx = 0;
      }
    }
    if (to) {
      to->backoff = old->backoff;
      to->retry_at = old->retry_at;
      to->cur = old->cur;
    } else if (old->cur) {
      conn_detach(old->cur);
    }
  }
  {
    sgrpc_net_conn *c;
    /* every connection of the channel points into the new array */
    for (c = ch->conns; c; c = c->ch_next) {
      if (!c->sub) continue;
      c->sub = NULL;
      for (i = 0; i < nsubs; i++)
        if (subs[i].cur == c) c->sub = &subs[i];
      if (!c->sub) conn_detach(c);
    }
  }
  subs_free(l, ch->subs, ch->nsubs);
  sg_net_free(l, ch->addrs);
  ch->subs = subs;
  ch->nsubs = nsubs;
  ch->addrs = copy;
  ch->naddrs = n;
  if (ch->rr_next >= nsubs) ch->rr_next = 0;
  return 0;
nomem:
  sg_net_free(l, copy);
  if (subs) subs_free(l, subs, nsubs);
  return SGRPC_ERR_NOMEM;
}

/* The subchannel a new call goes to. */
static sg_subch *channel_pick(sgrpc_net_channel *ch, int64_t now) {
  size_t i, k;
  sg_subch *best = NULL;
  if (!ch->rr) return &ch->subs[0];
  /* round_robin: the next READY one */
  for (k = 0; k < ch->nsubs; k++) {
    i = (ch->rr_next + k) % ch->nsubs;
    if (conn_is_ready(ch->subs[i].cur)) {
      ch->rr_next = (i + 1) % ch->nsubs;
      return &ch->subs[i];
    }
  }
  /* none: one that is connecting or may connect now, else the one whose
   * backoff ends first */
  for (k = 0; k < ch->nsubs; k++) {
    sg_subch *s = &ch->subs[(ch->rr_next + k) % ch->nsubs];
    if ((s->cur && conn_usable(s->cur) && s->cur->state != NET_WAITING) || s->retry_at <= now) {
      ch->rr_next = (size_t)(s - ch->subs + 1) % ch->nsubs;
      return s;
    }
    if (!best || s->retry_at < best->retry_at) best = s;
  }
  return best;
}

/* Resolution done: pending calls go to a subchannel. */
static void channel_place_pending(sgrpc_net_channel *ch, int64_t now) {
  sgrpc_net_conn *c = ch->pending;
  sg_subch *sub;
  if (!c || ch->nsubs == 0) return;
  ch->pending = NULL;
  sg_conn_touch(c);
  sub = channel_pick(ch, now);
  if (sub->cur && conn_usable(sub->cur)) {
    /* the subchannel has its own connection: the pending one connects for
     * its calls and serves nothing else */
    c->sub = sub;
    c->close_when_idle = 1;
    c->by_channel = 1;
  } else {
    c->sub = sub;
    sub->cur = c;
  }
  if (c->state == NET_IDLE && !c->closing) conn_begin(c, now);
}

/* ------------------------------------------------------------------ */
/* Resolution                                                          */
/* ------------------------------------------------------------------ */

static void resolve_apply(sgrpc_net_resolve *r, int64_t now) {
  sgrpc_net_channel *ch = r->ch;
  ch->resolutions++;
  if (!r->failed && channel_set_addresses(ch, r->addrs, r->naddrs) != 0) {
    r->failed = 1;
    snprintf(r->error, sizeof(r->error), "name resolution: out of memory");
  }
  if (!r->failed) {
    ch->resolve_failed = 0;
    sgrpc_net_backoff_reset(&ch->resolve_backoff);
    channel_place_pending(ch, now);
    if (ch->want_connect && !ch->idle) channel_connect_all(ch, now);
    ch->want_connect = 0;
    return;
  }
  ch->resolve_failed = 1;
  snprintf(ch->resolve_error, sizeof(ch->resolve_error), "%s", r->error);
  /* try again after a backoff (sooner than the re-resolution limit: there
   * is nothing to use meanwhile when no address was ever known) */
  if (ch->naddrs == 0) {
    int64_t at = sgrpc_net_backoff_fail(&ch->resolve_backoff, now);
    ch->resolve_at = at > now ? at : now + 1;
  } else {
    channel_request_resolve(ch, now);
  }
  if (ch->pending) {
    sgrpc_net_conn *c = ch->pending;
    snprintf(c->reason, sizeof(c->reason), "%s", r->error);
    conn_fail_fast(c);
    if (c->closing) ch->pending = NULL;
  }
}

static void resolve_free(sgrpc_net_loop *l, sgrpc_net_resolve *r) {
  sg_net_free(l, r->addrs);
  sg_net_free(l, r);
}

void sgrpc_net_resolve_done(sgrpc_net_resolve *r, const sgrpc_net_address *addrs, size_t n,
                            const char *error, int64_t now) {
  sgrpc_net_loop *l;
  if (!r || r->done) return;
  l = r->ch->loop;
  r->done = 1;
  sg_channel_touch(r->ch);
  if (!error && (!addrs || n == 0)) error = "name resolution returned no addresses";
  if (error) {
    r->failed = 1;
    snprintf(r->error, sizeof(r->error), "%s", error);
  } else {
    r->addrs = sg_net_calloc(l, n * sizeof(*addrs));
    if (!r->addrs) {
      r->failed = 1;
      snprintf(r->error, sizeof(r->error), "name resolution: out of memory");
    } else {
      memcpy(r->addrs, addrs, n * sizeof(*addrs));
      r->naddrs = n;
    }
  }
  if (r->in_start) return; /* channel_resolve_now applies it */
  sg_loop_enter(l, now);
  r->ch->req = NULL;
  resolve_apply(r, now);
  resolve_free(l, r);
  sg_loop_leave(l, now);
}

static void channel_resolve_now(sgrpc_net_channel *ch, int64_t now) {
  sgrpc_net_loop *l = ch->loop;
  sgrpc_net_resolve *r;
  int rv;
  ch->resolve_at = SGRPC_NEVER;
  if (!ch->has_resolver || ch->req || ch->closing) return;
  r = sg_net_calloc(l, sizeof(*r));
  ch->last_resolve = now;
  if (!r) {
    sgrpc_net_resolve tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.ch = ch;
    tmp.failed = 1;
    snprintf(tmp.error, sizeof(tmp.error), "name resolution: out of memory");
    resolve_apply(&tmp, now);
    return;
  }
  r->ch = ch;
  r->in_start = 1;
  ch->req = r;
  l->depth++;
  rv = ch->resolver.start(ch->resolver.user_data, l, ch->target_text, r, &r->ctx);
  l->depth--;
  r->in_start = 0;
  if (rv < 0 && !r->done) {
    r->done = r->failed = 1;
    snprintf(r->error, sizeof(r->error), "name resolution could not start: %s",
             sgrpc_strerror(rv));
  }
  if (r->done) {
    ch->req = NULL;
    resolve_apply(r, now);
    resolve_free(l, r);
  }
}

static void channel_cancel_resolve(sgrpc_net_channel *ch) {
  sgrpc_net_resolve *r = ch->req;
  if (!r) return;
  ch->req = NULL;
  ch->resolver.cancel(ch->resolver.user_data, r->ctx);
  resolve_free(ch->loop, r);
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */
/* ------------------------------------------------------------------ */

static char *dup_text(sgrpc_net_loop *l, const char *s) {
  size_t n = strlen(s);
  char *p = l->mem.malloc(n + 1, l->mem.user_data);
  if (p) memcpy(p, s, n + 1);
  return p;
}

static void channel_free(sgrpc_net_channel *ch) {
  sgrpc_net_loop *l = ch->loop;
  channel_cancel_resolve(ch);
  sg_dns_del(ch->dns);
  subs_free(l, ch->subs, ch->nsubs);
  sg_net_free(l, ch->addrs);
  sg_net_free(l, ch->t.addrs);
  sg_net_free(l, ch->target_text);
  sg_net_free(l, ch->authority);
  sg_net_free(l, ch->record_dir);
  sg_net_free(l, ch);
}

/* The parsed view of sgrpc_net_channel_target. */
static void fill_view(sgrpc_net_channel *ch) {
  sgrpc_net_target *v = &ch->target;
  if (ch->t.scheme == SG_T_UNIX || ch->t.scheme == SG_T_UNIX_ABSTRACT) {
    char text[130];
    v->kind = SGRPC_NET_TARGET_UNIX;
    sgrpc_net_address_format(&ch->t.addrs[0], text, sizeof(text));
    snprintf(v->path, sizeof(v->path), "%s", strchr(text, ':') + 1);
    return;
  }
  v->kind = SGRPC_NET_TARGET_TCP;
  snprintf(v->host, sizeof(v->host), "%s", ch->t.host);
  snprintf(v->port, sizeof(v->port), "%s", ch->t.port);
  v->port_num = 0;
  {
    const char *p;
    for (p = v->port; *p >= '0' && *p <= '9'; p++) v->port_num = v->port_num * 10 + (*p - '0');
  }
}

int sgrpc_net_channel_new(sgrpc_net_channel **pch, sgrpc_net_loop *l,
                          const sgrpc_net_channel_opts *o) {
  sgrpc_net_channel *ch;
  const char *lb;
  int rv;
  if (pch) *pch = NULL;
  if (!pch || !l || !o || !o->target) return SGRPC_ERR_INVALID_ARGUMENT;
  lb = o->service_config && o->service_config->lb_policy ? o->service_config->lb_policy
                                                         : o->lb_policy;
  if (lb && strcmp(lb, "pick_first") != 0 && strcmp(lb, "round_robin") != 0)
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (o->resolver && (!o->resolver->start || !o->resolver->cancel))
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (o->dns_server) {
    sgrpc_net_address a;
    if (sgrpc_net_address_parse(o->dns_server, 53, &a) != 0 || a.addr.ss_family == AF_UNIX)
      return SGRPC_ERR_INVALID_ARGUMENT;
  }
  if (ch_heap_reserve(l) != 0) return SGRPC_ERR_NOMEM;
  ch = sg_net_calloc(l, sizeof(*ch));
  if (!ch) return SGRPC_ERR_NOMEM;
  ch->loop = l;
  ch->id = sg_loop_next_id(l);
  ch->resolve_at = SGRPC_NEVER;
  rv = sg_target_parse(l, o->target, o->resolver != NULL, &ch->t);
  if (rv != 0) {
    sg_net_free(l, ch);
    return rv;
  }
  ch->target_text = dup_text(l, o->target);
  ch->authority = dup_text(l, o->authority ? o->authority : ch->t.authority);
  if (!ch->target_text || !ch->authority) {
    channel_free(ch);
    return SGRPC_ERR_NOMEM;
  }
  if (o->settings) { /* of the caller's version */
    if (sgrpc_settings_copy(&ch->settings, o->settings) != 0) {
      channel_free(ch);
      return SGRPC_ERR_INVALID_ARGUMENT;
    }
    ch->has_settings = 1;
  }
  ch->rr = lb && strcmp(lb, "round_robin") == 0;
  ch->sc = o->service_config;
  ch->on_conn_event = o->on_conn_event;
  ch->on_state = o->on_state_change;
  ch->user_data = o->user_data;
  ch->wait_for_ready = o->wait_for_ready;
  ch->linger_ns = o->linger_ns;
  ch->make_tls = o->make_tls;
  ch->tls_ud = o->tls_user_data;
  ch->backoff_opts = o->backoff;
  if (sg_record_setup(l, o->record_dir, o->record_max_bytes, &ch->record_dir, &ch->record_max) !=
      0) {
    channel_free(ch);
    return SGRPC_ERR_NOMEM;
  }
  ch->min_resolve = o->min_resolve_interval_ns > 0 ? o->min_resolve_interval_ns
                                                   : CH_MIN_RESOLVE_DEFAULT;
  ch->idle_timeout = o->idle_timeout_ns == 0 ? CH_IDLE_DEFAULT : o->idle_timeout_ns;
  ch->idle = 1;
  ch->state = SGRPC_NET_CHANNEL_IDLE;
  sgrpc_net_backoff_init(&ch->resolve_backoff, &o->backoff, ch_seed(ch));
  if (o->resolver) {
    ch->resolver = *o->resolver;
    ch->has_resolver = 1;
  } else if (!ch->t.addrs) {
    const char *server = o->dns_server ? o->dns_server : ch->t.dns_server[0] ? ch->t.dns_server : NULL;
    rv = sg_dns_resolver(l, server, &ch->resolver, &ch->dns);
    if (rv != 0) {
      channel_free(ch);
      return rv;
    }
    ch->has_resolver = 1;
  } else if ((rv = channel_set_addresses(ch, ch->t.addrs, ch->t.naddrs)) != 0) {
    channel_free(ch);
    return rv;
  }
  fill_view(ch);
  ch->next = l->channels;
  if (l->channels) l->channels->prev = ch;
  l->channels = ch;
  l->nchannels++;
  if (ch->rr) l->nrr++;
  ch_heap_fix(ch, l->now);
  sg_channel_touch(ch);
  *pch = ch;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */
/* ------------------------------------------------------------------ */

/* Leaves IDLE: a resolver target resolves now when it has no addresses
 * (or they may be stale after an idle period). */
static void channel_wake(sgrpc_net_channel *ch, int64_t now) {
  if (!ch->idle) return;
  ch->idle = 0;
  ch->idle_since = 0;
  if (ch->has_resolver && !ch->req && (ch->naddrs == 0 || ch->resolutions > 0) &&
      !(ch->resolve_failed && ch->resolve_at != SGRPC_NEVER && ch->resolve_at > now))
    channel_resolve_now(ch, now);
}

/* The connection a new call goes to; NULL when out of memory. */
static sgrpc_net_conn *channel_conn_for_call(sgrpc_net_channel *ch, int64_t now) {
  sg_subch *sub;
  if (ch->nsubs == 0) {
    /* No address yet: calls wait on the pending connection. */
    if (!conn_usable(ch->pending)) {
      ch->pending = channel_new_conn(ch, NULL, now);
      if (ch->pending && ch->resolve_failed && !ch->req)
        snprintf(ch->pending->reason, sizeof(ch->pending->reason), "%s", ch->resolve_error);
    }
    return ch->pending;
  }
  sub = channel_pick(ch, now);
  if (!conn_usable(sub->cur)) sub->cur = channel_new_conn(ch, sub, now);
  return sub->cur;
}

int sgrpc_net_channel_call(sgrpc_net_channel *ch, const sgrpc_call_opts *opts, int64_t now,
                           sgrpc_call **pcall) {
  sgrpc_net_loop *l;
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  int rv = SGRPC_ERR_NOMEM, attempt, fail_fast;
  if (pcall) *pcall = NULL;
  if (!ch || !opts || !opts->on_event) return SGRPC_ERR_INVALID_ARGUMENT;
  if (ch->closing) return SGRPC_ERR_GOING_AWAY;
  l = ch->loop;
  o = *opts;
  if (!o.authority || !*o.authority) o.authority = ch->authority;
  fail_fast = call_fail_fast(ch, opts);
  l->depth++; /* nothing below runs a callback */
  l->now = now;
  sg_channel_touch(ch);
  channel_wake(ch, now);
  ch->idle_since = 0;
  for (attempt = 0; attempt < 2; attempt++) {
    sgrpc_net_conn *c = channel_conn_for_call(ch, now);
    if (!c) {
      rv = SGRPC_ERR_NOMEM;
      break;
    }
    sg_conn_touch(c); /* whatever happens to it below */
    if (!c->ever_connected && c->npcalls == c->cappcalls) {
      size_t cap = c->cappcalls ? c->cappcalls * 2 : 8;
      sg_pcall *p = l->mem.realloc(c->pcalls, cap * sizeof(*p), l->mem.user_data);
      if (!p) {
        rv = SGRPC_ERR_NOMEM;
        if (c->state == NET_IDLE && sgrpc_conn_call_count(c->engine) == 0) c->closing = 1;
        break;
      }
      c->pcalls = p;
      c->cappcalls = cap;
    }
    rv = sgrpc_call_start(c->engine, &o, now, &call);
    if (rv == 0) {
      if (!c->ever_connected) {
        c->pcalls[c->npcalls].call = call;
        c->pcalls[c->npcalls].fail_fast = (uint8_t)fail_fast;
        c->pcalls[c->npcalls].failed = 0;
        c->npcalls++;
      }
      /* A fail-fast call that cannot be served ends on the next service
       * pass, not inside this function: the caller still gets a live
       * handle to send on, as with any other failure. */
      if (c->state == NET_IDLE && !c->closing) {
        if (c == ch->pending) {
          if (ch->resolve_failed && !ch->req && fail_fast) c->failfast_due = 1;
        } else {
          conn_begin(c, now);
        }
      } else if (c->state == NET_WAITING && fail_fast) {
        c->failfast_due = 1;
      }
      if (pcall) *pcall = call;
      break;
    }
    /* The connection stopped taking calls: one retry on a new one. */
    if (rv != SGRPC_ERR_GOING_AWAY && !sgrpc_is_fatal(rv)) {
      if (c->state == NET_IDLE && sgrpc_conn_call_count(c->engine) == 0) c->closing = 1;
      break;
    }
    c->close_when_idle = 1;
    if (c->state == NET_IDLE) c->closing = 1;
  }
  l->depth--;
  sg_loop_kick(l, now);
  return rv;
}

/* ------------------------------------------------------------------ */
/* State                                                               */
/* ------------------------------------------------------------------ */

static int channel_compute_state(const sgrpc_net_channel *ch, int64_t now) {
  const sgrpc_net_conn *c;
  int connecting = 0, failing = 0;
  size_t i;
  if (ch->closing) return SGRPC_NET_CHANNEL_SHUTDOWN;
  for (i = 0; i < ch->nsubs; i++) {
    const sg_subch *s = &ch->subs[i];
    if (conn_is_ready(s->cur) && s->cur->ready) return SGRPC_NET_CHANNEL_READY;
    if (s->cur && conn_usable(s->cur) &&
        (s->cur->state == NET_CONNECTING || (s->cur->state == NET_OPEN && !s->cur->ready)))
      connecting = 1;
    if (s->retry_at > now) failing = 1;
  }
  for (c = ch->conns; c; c = c->ch_next)
    if (conn_usable(c) && (c->state == NET_CONNECTING || c->state == NET_OPEN)) connecting = 1;
  if (ch->req) connecting = 1;
  if (connecting) return SGRPC_NET_CHANNEL_CONNECTING;
  if (ch->idle) return SGRPC_NET_CHANNEL_IDLE;
  if (failing || ch->resolve_failed) return SGRPC_NET_CHANNEL_TRANSIENT_FAILURE;
  if (ch->pending && conn_usable(ch->pending)) return SGRPC_NET_CHANNEL_CONNECTING;
  return SGRPC_NET_CHANNEL_IDLE;
}

/* Starts a connection on every subchannel that has none (round_robin
 * keeps all of them up; pick_first only its one when asked). */
static void channel_connect_all(sgrpc_net_channel *ch, int64_t now) {
  size_t i, n = ch->rr ? ch->nsubs : (ch->nsubs ? 1 : 0);
  for (i = 0; i < n; i++) {
    sg_subch *s = &ch->subs[i];
    if (conn_usable(s->cur) || s->retry_at > now) continue;
    s->cur = channel_new_conn(ch, s, now);
    if (s->cur) sg_channel_start_attempt(s->cur, now);
  }
}

sgrpc_net_channel_state sgrpc_net_channel_get_state(sgrpc_net_channel *ch, int try_to_connect,
                                                    int64_t now) {
  int st;
  if (!ch) return SGRPC_NET_CHANNEL_SHUTDOWN;
  st = channel_compute_state(ch, now);
  sg_channel_touch(ch);
  if (try_to_connect && st == SGRPC_NET_CHANNEL_IDLE && !ch->closing) {
    ch->loop->depth++;
    ch->loop->now = now;
    channel_wake(ch, now);
    ch->idle = 0;
    ch->want_connect = 1;
    channel_connect_all(ch, now);
    ch->loop->depth--;
    sg_loop_kick(ch->loop, now);
  }
  return (sgrpc_net_channel_state)st;
}

const char *sgrpc_net_channel_state_name(sgrpc_net_channel_state s) {
  switch (s) {
  case SGRPC_NET_CHANNEL_IDLE: return "IDLE";
  case SGRPC_NET_CHANNEL_CONNECTING: return "CONNECTING";
  case SGRPC_NET_CHANNEL_READY: return "READY";
  case SGRPC_NET_CHANNEL_TRANSIENT_FAILURE: return "TRANSIENT_FAILURE";
  case SGRPC_NET_CHANNEL_SHUTDOWN: return "SHUTDOWN";
  }
  return "UNKNOWN";
}

/* Drops to IDLE: connections close once their calls are done (none are
 * left: that is why the channel is idle). */
static void channel_go_idle(sgrpc_net_channel *ch) {
  sgrpc_net_conn *c;
  size_t i;
  for (c = ch->conns; c; c = c->ch_next) {
    c->close_when_idle = 1;
    c->by_channel = 1;
    if (c->state != NET_OPEN) c->closing = 1;
    sg_conn_touch(c);
  }
  for (i = 0; i < ch->nsubs; i++) {
    ch->subs[i].cur = NULL;
    ch->subs[i].retry_at = 0;
    sgrpc_net_backoff_reset(&ch->subs[i].backoff);
  }
  ch->pending = NULL;
  channel_cancel_resolve(ch);
  ch->resolve_at = SGRPC_NEVER;
  ch->idle = 1;
  ch->idle_since = 0;
}

static size_t channel_calls(const sgrpc_net_channel *ch) {
  const sgrpc_net_conn *c;
  size_t n = 0;
  for (c = ch->conns; c; c = c->ch_next) n += sgrpc_conn_call_count(c->engine);
  return n;
}

void sg_channels_maintain(sgrpc_net_loop *l, int64_t now) {
  sgrpc_net_channel *ch;
  /* (a connection's due fail-fast calls end in its own service) */
  if (!l->nrr) return;
  for (ch = l->channels; ch; ch = ch->next) {
    if (ch->closing) continue;
    /* round_robin keeps a connection to every backend it knows */
    if (ch->rr && !ch->idle) channel_connect_all(ch, now);
  }
}

/* The marked channels only: idle bookkeeping, state (told to on_state),
 * expiry. A callback may mark channels again: the next pass sees them. */
int sg_channels_check_state(sgrpc_net_loop *l, int64_t now) {
  sgrpc_net_channel *ch;
  int told = 0;
  l->ch_batch = l->ch_dirty;
  l->ch_dirty = NULL;
  for (ch = l->ch_batch; ch; ch = ch->dnext) ch->in_dirty = 2;
  while ((ch = l->ch_batch) != NULL) {
    int st;
    l->ch_batch = ch->dnext;
    ch->dnext = NULL;
    ch->in_dirty = 0;
    /* idle bookkeeping after the calls of this pass have ended */
    if (!ch->closing && !ch->idle && ch->idle_timeout > 0) {
      if (channel_calls(ch) > 0 || ch->req) ch->idle_since = 0;
      else if (!ch->idle_since) ch->idle_since = now;
    }
    ch_heap_fix(ch, now);
    st = channel_compute_state(ch, now);
    if (st == ch->state) continue;
    ch->state = st;
    if (ch->on_state) {
      ch->on_state(ch, (sgrpc_net_channel_state)st, ch->user_data, now);
      told = 1;
    }
  }
  return told;
}

/* The channels whose expiry is due: out of the heap first (handling one
 * may change others), then back in, marked. */
void sg_channels_timer(sgrpc_net_loop *l, int64_t now) {
  sgrpc_net_channel *ch, *next, *due = NULL;
  while (l->ch_heap_len && l->ch_heap[0]->hkey <= now) {
    ch = l->ch_heap[0];
    ch_heap_remove(ch);
    ch->tnext = due;
    due = ch;
  }
  for (ch = due; ch; ch = next) {
    next = ch->tnext;
    ch->tnext = NULL;
    if (!ch->closing) {
      sg_dns_timer(ch->dns, now);
      if (ch->resolve_at <= now) channel_resolve_now(ch, now);
      if (!ch->idle && ch->idle_timeout > 0 && ch->idle_since &&
          ch->idle_since + ch->idle_timeout <= now && channel_calls(ch) == 0)
        channel_go_idle(ch);
    }
    ch_heap_fix(ch, now);
    sg_channel_touch(ch);
  }
}

int64_t sg_channels_next_expiry(const sgrpc_net_loop *l) {
  return l->ch_heap_len ? l->ch_heap[0]->hkey : SGRPC_NEVER;
}

#ifndef NDEBUG
void sg_channels_verify(const sgrpc_net_loop *l, int64_t now) {
  const sgrpc_net_channel *ch;
  size_t n = 0, i;
  for (ch = l->channels; ch; ch = ch->next) {
    n++;
    if (!ch->hidx || ch->hidx > l->ch_heap_len || l->ch_heap[ch->hidx - 1] != ch) {
      fprintf(stderr, "sgrpc net: channel %llu is not in the expiry heap\n",
              (unsigned long long)ch->id);
      abort();
    }
    if (ch->in_dirty) continue;
    if (ch->hkey != ch_key(ch, ch->hkey_now)) {
      fprintf(stderr, "sgrpc net: channel %llu: expiry %lld in the heap, %lld due\n",
              (unsigned long long)ch->id, (long long)ch->hkey,
              (long long)ch_key(ch, ch->hkey_now));
      abort();
    }
    /* (a state that time changes is told when the expiry fires) */
    if (ch->hkey > now && ch->state != channel_compute_state(ch, now)) {
      fprintf(stderr, "sgrpc net: channel %llu: state %d told, %d now, not marked\n",
              (unsigned long long)ch->id, ch->state, channel_compute_state(ch, now));
      abort();
    }
  }
  if (n != l->ch_heap_len || n != l->nchannels) {
    fprintf(stderr, "sgrpc net: %zu channels, %zu in the heap, %zu counted\n", n,
            l->ch_heap_len, l->nchannels);
    abort();
  }
  for (i = 1; i < l->ch_heap_len; i++)
    if (l->ch_heap[(i - 1) / 2]->hkey > l->ch_heap[i]->hkey) {
      fprintf(stderr, "sgrpc net: channel expiry heap out of order at %zu\n", i);
      abort();
    }
}
#else
void sg_channels_verify(const sgrpc_net_loop *l, int64_t now) {
  (void)l;
  (void)now;
}
#endif

int sg_channels_have_work(const sgrpc_net_loop *l) {
  const sgrpc_net_channel *ch;
  for (ch = l->channels; ch; ch = ch->next)
    if (!ch->closing && ch->req) return 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Closing                                                             */
/* ------------------------------------------------------------------ */

void sgrpc_net_channel_close(sgrpc_net_channel *ch, int64_t now) {
  sgrpc_net_conn *c;
  size_t i;
  if (!ch || ch->closing) return;
  ch->closing = 1;
  sg_channel_touch(ch);
  for (i = 0; i < ch->nsubs; i++) ch->subs[i].cur = NULL;
  ch->pending = NULL;
  channel_cancel_resolve(ch);
  /* No GOAWAY from the client: it could stop request HEADERS the engine
   * has queued but not written yet. Each connection closes once idle;
   * one still waiting for addresses ends its calls now. */
  for (c = ch->conns; c; c = c->ch_next) {
    c->close_when_idle = 1;
    c->by_channel = 1;
    if (c->state == NET_IDLE || (c->state == NET_WAITING && !c->sub)) c->closing = 1;
    sg_conn_touch(c);
  }
  sg_loop_kick(ch->loop, now);
}

static void channel_abort(sgrpc_net_channel *ch) {
  size_t i;
  ch->closing = 1;
  for (i = 0; i < ch->nsubs; i++) ch->subs[i].cur = NULL;
  ch->pending = NULL;
  channel_cancel_resolve(ch);
}

void *sgrpc_net_channel_user_data(const sgrpc_net_channel *ch) {
  return ch ? ch->user_data : NULL;
}

const sgrpc_net_target *sgrpc_net_channel_target(const sgrpc_net_channel *ch) {
  return ch ? &ch->target : NULL;
}

const sgrpc_service_config *sgrpc_net_channel_service_config(const sgrpc_net_channel *ch) {
  return ch ? ch->sc : NULL;
}

size_t sgrpc_net_channel_address_count(const sgrpc_net_channel *ch) {
  return ch ? ch->naddrs : 0;
}
uint64_t sgrpc_net_channel_resolutions(const sgrpc_net_channel *ch) {
  return ch ? ch->resolutions : 0;
}

size_t sgrpc_net_channel_conn_count(const sgrpc_net_channel *ch) { return ch ? ch->nconns : 0; }
int sgrpc_net_channel_failures(const sgrpc_net_channel *ch) { return ch ? ch->failures : 0; }

void sgrpc_net_channel_del(sgrpc_net_channel *ch) {
  sgrpc_net_loop *l;
  if (!ch) return;
  l = ch->loop;
  l->depth++;
  channel_abort(ch);
  /* each close takes the connection off the channel's list */
  while (ch->conns) sg_conn_close(ch->conns);
  l->depth--;
  ch_heap_remove(ch);
  ch_undirty(ch);
  l->nchannels--;
  if (ch->rr) l->nrr--;
  if (ch->prev) ch->prev->next = ch->next;
  else l->channels = ch->next;
  if (ch->next) ch->next->prev = ch->prev;
  if (l->depth == 0) sg_free_graveyard(l);
  channel_free(ch);
}

void sg_channels_abort_all(sgrpc_net_loop *l) {
  sgrpc_net_channel *ch;
  for (ch = l->channels; ch; ch = ch->next) channel_abort(ch);
}

void sg_channels_close_all(sgrpc_net_loop *l, int64_t now) {
  sgrpc_net_channel *ch;
  for (ch = l->channels; ch; ch = ch->next) sgrpc_net_channel_close(ch, now);
}

void sg_channel_free_all(sgrpc_net_loop *l) {
  while (l->channels) sgrpc_net_channel_del(l->channels);
}

/* ------------------------------------------------------------------ */
/* Counters and enumeration (metrics, channelz)                        */
/* ------------------------------------------------------------------ */

uint64_t sgrpc_net_channel_id(const sgrpc_net_channel *ch) { return ch ? ch->id : 0; }

sgrpc_net_loop *sgrpc_net_channel_loop(const sgrpc_net_channel *ch) {
  return ch ? ch->loop : NULL;
}

void sg_channel_closed_stats(sgrpc_net_channel *ch, const sgrpc_conn *engine) {
  sg_stats_add(&ch->closed, engine);
}

void sgrpc_net_channel_get_stats(const sgrpc_net_channel *ch, sgrpc_conn_stats *st) {
  if (!st) return;
  memset(st, 0, sizeof(*st));
  if (ch) sg_owner_stats(ch->loop, &ch->closed, NULL, ch, st);
}

sgrpc_net_conn *sgrpc_net_channel_conn_next(const sgrpc_net_channel *ch,
                                           const sgrpc_net_conn *prev) {
  sgrpc_net_conn *c;
  if (!ch || (prev && (prev->dead || prev->channel != ch))) return NULL;
  c = prev ? prev->ch_next : ch->conns;
  return c;
}

sgrpc_net_channel *sgrpc_net_loop_channel_next(const sgrpc_net_loop *l,
                                               const sgrpc_net_channel *prev) {
  if (!l) return NULL;
  return prev ? prev->next : l->channels;
}
