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

struct sgrpc_health {
  sgrpc_mem mem;
  health_entry *entries;
  health_watch *watches;
  size_t n_watches;
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
