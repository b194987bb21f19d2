/*
 * grpc.health.v1.Health on the router: per-service statuses and the Watch
 * streams that follow them (see include/sgrpc/health.h).
 */
#include <sgrpc/health.h>

#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.sgrpc.h"
#include "rpc_mem.h"

typedef struct health_entry {
  struct health_entry *next;
  sgrpc_health_status status;
  char name[]; /* NUL-terminated */
} health_entry;

/* One open Watch call. Its address is the call's user data. */
typedef struct health_watch {
  struct health_watch *prev, *next;
  sgrpc_server_call *call;
  int last;                 /* status last handed to the call, -1: none */
  int ended;                /* a status was sent: nothing more goes out */
  char name[];
} health_watch;

struct health_check;

/* What a timer fires: a check's run or its timeout. */
typedef struct health_tick {
  struct health_check *check;
  int is_timeout;
} health_tick;

/* One self-running check (sgrpc_health_check_add). */
typedef struct health_check {
  struct health_check *next;
  sgrpc_health *h;
  sgrpc_health_check_fn fn;
  void *ud;
  int64_t interval, timeout;
  health_tick run, expire;
  void *run_timer, *expire_timer; /* armed timers, NULL when none */
  uint64_t pending;               /* the run waited for, 0: none */
  int firing;                     /* inside fn: free after it returns */
  int removed;
  char name[];
} health_check;

struct sgrpc_health {
  sgrpc_mem mem;
  health_entry *entries;
  health_watch *watches;
  size_t n_watches;
  sgrpc_health_timers timers;
  int has_timers;
  health_check *checks;
  size_t n_checks;
  uint64_t probe_seq;
};

static health_entry *entry_find(const sgrpc_health *h, const char *name, health_entry ***link) {
  health_entry **pp;
  for (pp = (health_entry **)&h->entries; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->name, name) == 0) {
      if (link) *link = pp;
      return *pp;
    }
  }
  return NULL;
}

static void watch_unlink(sgrpc_health *h, health_watch *w) {
  if (w->prev) w->prev->next = w->next;
  else h->watches = w->next;
  if (w->next) w->next->prev = w->prev;
  w->prev = w->next = NULL;
  h->n_watches--;
}

/* Sends status on a Watch call unless it is what the peer last got. When
 * the call's buffer is full nothing is kept: on_writable sends whatever
 * the status is by then, so a slow watcher skips the changes it could
 * not take and memory stays at the engine's per-call buffer. */
static void watch_push(health_watch *w, sgrpc_health_status st) {
  Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  int rv;
  if (w->ended || w->last == (int)st) return;
  r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
  rv = sgrpc_server_call_send(w->call, &r);
  if (rv == 0) {
    w->last = (int)st;
    return;
  }
  if (rv == SGRPC_ERR_WOULDBLOCK) return;
  w->ended = 1;
  if (rv == SGRPC_ERR_CALL_CLOSED) return; /* its CLOSE is on the way */
  (void)sgrpc_server_call_fail(w->call, rv == SGRPC_ERR_NOMEM ? SGRPC_STATUS_RESOURCE_EXHAUSTED
                                                              : SGRPC_STATUS_INTERNAL,
                               "health update could not be sent");
}

int sgrpc_health_new(sgrpc_health **ph, const sgrpc_mem *mem) {
  sgrpc_mem m;
  sgrpc_health *h;
  int rv;
  if (!ph) return SGRPC_ERR_INVALID_ARGUMENT;
  *ph = NULL;
  if (sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  h = rpc_malloc(&m, sizeof(*h));
  if (!h) return SGRPC_ERR_NOMEM;
  memset(h, 0, sizeof(*h));
  h->mem = m;
  rv = sgrpc_health_set(h, "", SGRPC_HEALTH_SERVING);
  if (rv != 0) {
    rpc_free(&m, h);
    return rv;
  }
  *ph = h;
  return 0;
}

void sgrpc_health_del(sgrpc_health *h) {
  if (!h) return;
  sgrpc_health_checks_stop(h);
  while (h->watches) {
    health_watch *w = h->watches;
    watch_unlink(h, w);
    sgrpc_server_call_set_user_data(w->call, NULL); /* its on_close finds nothing */
    if (!w->ended)
      (void)sgrpc_server_call_fail(w->call, SGRPC_STATUS_UNAVAILABLE, "health service stopped");
    rpc_free(&h->mem, w);
  }
  while (h->entries) {
    health_entry *e = h->entries;
    h->entries = e->next;
    rpc_free(&h->mem, e);
  }
  rpc_free(&h->mem, h);
}

static void notify(sgrpc_health *h, const char *name, sgrpc_health_status st) {
  health_watch *w, *next;
  /* watch_push may end a call, but a call's CLOSE only comes from a later
   * dispatch, so the list does not change under us */
  for (w = h->watches; w; w = next) {
    next = w->next;
    if (strcmp(w->name, name) == 0) watch_push(w, st);
  }
}

int sgrpc_health_set(sgrpc_health *h, const char *service, sgrpc_health_status st) {
  health_entry *e, **link = NULL;
  if (!h || !service || (int)st < SGRPC_HEALTH_UNKNOWN || (int)st > SGRPC_HEALTH_SERVICE_UNKNOWN)
    return SGRPC_ERR_INVALID_ARGUMENT;
  e = entry_find(h, service, &link);
  if (st == SGRPC_HEALTH_SERVICE_UNKNOWN) {
    if (!e) return 0;
    *link = e->next;
    rpc_free(&h->mem, e);
  } else if (e) {
    if (e->status == st) return 0;
    e->status = st;
  } else {
    size_t len = strlen(service);
    e = rpc_malloc(&h->mem, sizeof(*e) + len + 1);
    if (!e) return SGRPC_ERR_NOMEM;
    memcpy(e->name, service, len + 1);
    e->status = st;
    e->next = h->entries;
    h->entries = e;
  }
  notify(h, service, st);
  return 0;
}

sgrpc_health_status sgrpc_health_get(const sgrpc_health *h, const char *service) {
  const health_entry *e;
  if (!h || !service) return SGRPC_HEALTH_SERVICE_UNKNOWN;
  e = entry_find(h, service, NULL);
  return e ? e->status : SGRPC_HEALTH_SERVICE_UNKNOWN;
}

int sgrpc_health_set_all(sgrpc_health *h, sgrpc_health_status st) {
  health_entry *e;
  if (!h || (st != SGRPC_HEALTH_SERVING && st != SGRPC_HEALTH_NOT_SERVING))
    return SGRPC_ERR_INVALID_ARGUMENT;
  for (e = h->entries; e; e = e->next) {
    if (e->status == st) continue;
    e->status = st;
    notify(h, e->name, st);
  }
  return 0;
}

size_t sgrpc_health_watch_count(const sgrpc_health *h) { return h ? h->n_watches : 0; }

const sgrpc_service_desc *sgrpc_health_service(void) {
  return &grpc__health__v1__health__sgrpc_service;
}

/* ---- handlers ---- */

static void on_check(sgrpc_server_call *call, const Grpc__Health__V1__HealthCheckRequest *q,
                     void *ud) {
  Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  sgrpc_health_status st = sgrpc_health_get((const sgrpc_health *)ud, q->service);
  if (st == SGRPC_HEALTH_SERVICE_UNKNOWN) {
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_NOT_FOUND, "unknown service");
    return;
  }
  r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
  /* A fresh call's buffer is empty: the reply fails only when the whole
   * connection's output is full (or memory ran out), and then nothing
   * went; the prober gets a clear answer instead of a call that hangs. */
  if (sgrpc_server_call_reply(call, &r) < 0)
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED,
                                 "health answer could not be sent");
}

static void on_watch(sgrpc_server_call *call, const Grpc__Health__V1__HealthCheckRequest *q,
                     void *ud) {
  sgrpc_health *h = ud;
  size_t len = strlen(q->service);
  health_watch *w = rpc_malloc(&h->mem, sizeof(*w) + len + 1);
  if (!w) {
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "Out of memory");
    return;
  }
  memset(w, 0, sizeof(*w));
  memcpy(w->name, q->service, len + 1);
  w->call = call;
  w->last = -1;
  w->next = h->watches;
  if (w->next) w->next->prev = w;
  h->watches = w;
  h->n_watches++;
  sgrpc_server_call_set_user_data(call, w);
  watch_push(w, sgrpc_health_get(h, w->name));
}

/* A Watch call has room again: the watcher gets the current status. */
static void on_writable(sgrpc_server_call *call, void *ud) {
  health_watch *w = sgrpc_server_call_get_user_data(call);
  if (w) watch_push(w, sgrpc_health_get((const sgrpc_health *)ud, w->name));
}

static void on_close(sgrpc_server_call *call, const sgrpc_status_info *status, void *ud) {
  sgrpc_health *h = ud;
  health_watch *w = sgrpc_server_call_get_user_data(call);
  (void)status;
  if (!w) return; /* a Check call, or a Watch that sgrpc_health_del forgot */
  sgrpc_server_call_set_user_data(call, NULL);
  watch_unlink(h, w);
  rpc_free(&h->mem, w);
}

int sgrpc_health_register(sgrpc_health *h, sgrpc_router *router) {
  Grpc__Health__V1__Health_SgrpcServer impl;
  if (!h || !router) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(&impl, 0, sizeof(impl));
  impl.check = on_check;
  impl.watch = on_watch;
  impl.on_close = on_close;
  impl.on_writable = on_writable;
  return grpc__health__v1__health__sgrpc_register(router, &impl, h);
}

/* ---- self-running checks ---- */

int sgrpc_health_set_timers(sgrpc_health *h, const sgrpc_health_timers *t) {
  if (!h || !t || !t->start || !t->cancel) return SGRPC_ERR_INVALID_ARGUMENT;
  if (h->checks) return SGRPC_ERR_INVALID_STATE;
  h->timers = *t;
  h->has_timers = 1;
  return 0;
}

size_t sgrpc_health_check_count(const sgrpc_health *h) { return h ? h->n_checks : 0; }

static health_check *check_find(const sgrpc_health *h, const char *name) {
  health_check *c;
  for (c = h->checks; c; c = c->next)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}

static void check_disarm(health_check *c) {
  sgrpc_health *h = c->h;
  if (c->run_timer) h->timers.cancel(h->timers.ctx, c->run_timer);
  if (c->expire_timer) h->timers.cancel(h->timers.ctx, c->expire_timer);
  c->run_timer = c->expire_timer = NULL;
  c->pending = 0;
}

/* Unlinks and frees (or, while its function runs, marks for freeing). */
static void check_remove(health_check *c) {
  sgrpc_health *h = c->h;
  health_check **pp;
  check_disarm(c);
  for (pp = &h->checks; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      h->n_checks--;
      break;
    }
  }
  c->removed = 1;
  if (!c->firing) rpc_free(&h->mem, c);
}

/* A check that cannot be scheduled cannot vouch for its service. */
static void check_broken(health_check *c) {
  (void)sgrpc_health_set(c->h, c->name, SGRPC_HEALTH_NOT_SERVING);
  check_remove(c);
}

int sgrpc_health_check_add(sgrpc_health *h, const char *service,
                           const sgrpc_health_check_opts *o, int64_t now) {
  health_check *c;
  size_t len;
  int rv;
  if (!h || !service || !o || !o->check || o->interval <= 0 || o->timeout < 0 ||
      o->timeout > o->interval)
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (!h->has_timers || check_find(h, service)) return SGRPC_ERR_INVALID_STATE;
  len = strlen(service);
  c = rpc_malloc(&h->mem, sizeof(*c) + len + 1);
  if (!c) return SGRPC_ERR_NOMEM;
  memset(c, 0, sizeof(*c));
  memcpy(c->name, service, len + 1);
  c->h = h;
  c->fn = o->check;
  c->ud = o->user_data;
  c->interval = o->interval;
  c->timeout = o->timeout ? o->timeout : o->interval;
  c->run.check = c->expire.check = c;
  c->expire.is_timeout = 1;
  if (!entry_find(h, service, NULL) &&
      (rv = sgrpc_health_set(h, service, SGRPC_HEALTH_UNKNOWN)) != 0) {
    rpc_free(&h->mem, c);
    return rv;
  }
  rv = h->timers.start(h->timers.ctx, now, &c->run, &c->run_timer);
  if (rv < 0) {
    rpc_free(&h->mem, c);
    return rv;
  }
  c->next = h->checks;
  h->checks = c;
  h->n_checks++;
  return 0;
}

int sgrpc_health_check_remove(sgrpc_health *h, const char *service) {
  health_check *c;
  if (!h || !service) return SGRPC_ERR_INVALID_ARGUMENT;
  c = check_find(h, service);
  if (!c) return SGRPC_ERR_INVALID_STATE;
  check_remove(c);
  return 0;
}

void sgrpc_health_checks_stop(sgrpc_health *h) {
  if (!h) return;
  while (h->checks) check_remove(h->checks);
}

int sgrpc_health_probe_done(sgrpc_health_probe probe, sgrpc_health_status st) {
  sgrpc_health *h = probe.health;
  health_check *c;
  if (!h || (st != SGRPC_HEALTH_SERVING && st != SGRPC_HEALTH_NOT_SERVING))
    return SGRPC_ERR_INVALID_ARGUMENT;
  for (c = h->checks; c; c = c->next)
    if (c->pending && c->pending == probe.id) break;
  if (!c) return SGRPC_ERR_INVALID_STATE;
  c->pending = 0;
  if (c->expire_timer) h->timers.cancel(h->timers.ctx, c->expire_timer);
  c->expire_timer = NULL;
  return sgrpc_health_set(h, c->name, st);
}

void sgrpc_health_timer_fire(void *arg, int64_t now) {
  health_tick *t = arg;
  health_check *c;
  sgrpc_health *h;
  sgrpc_health_probe probe;
  if (!t) return;
  c = t->check;
  h = c->h;
  if (t->is_timeout) {
    c->expire_timer = NULL;
    if (!c->pending) return;
    c->pending = 0;
    (void)sgrpc_health_set(h, c->name, SGRPC_HEALTH_NOT_SERVING);
    return;
  }
  c->run_timer = NULL;
  if (c->pending) {
    /* timeout == interval and the run came first: the last run is late */
    c->pending = 0;
    if (c->expire_timer) h->timers.cancel(h->timers.ctx, c->expire_timer);
    c->expire_timer = NULL;
    (void)sgrpc_health_set(h, c->name, SGRPC_HEALTH_NOT_SERVING);
  }
  if (h->timers.start(h->timers.ctx, now + c->interval, &c->run, &c->run_timer) < 0 ||
      h->timers.start(h->timers.ctx, now + c->timeout, &c->expire, &c->expire_timer) < 0) {
    check_broken(c);
    return;
  }
  probe.health = h;
  probe.id = c->pending = ++h->probe_seq;
  c->firing = 1;
  c->fn(probe, c->name, c->ud, now);
  c->firing = 0;
  if (c->removed) rpc_free(&h->mem, c);
}
