/*
 * The RPC layer: router (server) and callback calls (client). Messages are
 * packed once, straight into the engine's send buffer; when the engine
 * pushes back the caller gets SGRPC_ERR_WOULDBLOCK and its on_writable
 * later, and nothing is kept here.
 */
#include <sgrpc/rpc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events_internal.h"
#include "retry_internal.h"
#include "rpc_mem.h"
#include "router_internal.h"

/* Hook points test one pointer; with no registry that is the whole cost. */
#if defined(__GNUC__)
#define HOOKED(p) __builtin_expect((p) != NULL, 0)
#else
#define HOOKED(p) ((p) != NULL)
#endif

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

/* For the void init functions: an allocator they cannot use (a partial
 * struct) falls back to libc, as documented in rpc.h. */
static void mem_copy_in(sgrpc_mem *dst, const sgrpc_mem *src) {
  if (sgrpc_mem_resolve(dst, src) != 0) (void)sgrpc_mem_resolve(dst, NULL);
}

/* Bytes needed to deep-copy md after a header of `head` bytes. */
static size_t md_copy_size(const sgrpc_md *md, size_t n) {
  size_t i, sz = n * sizeof(sgrpc_md);
  for (i = 0; i < n; i++) sz += md[i].key_len + 1 + md[i].value_len + 1;
  return sz;
}

/* Deep-copies md into the area at p (md_copy_size bytes, aligned for
 * sgrpc_md). Keys and values stay NUL-terminated like the engine's. */
static sgrpc_md *md_copy_into(uint8_t *p, const sgrpc_md *md, size_t n) {
  sgrpc_md *out = (sgrpc_md *)(void *)p;
  uint8_t *s = p + n * sizeof(sgrpc_md);
  size_t i;
  for (i = 0; i < n; i++) {
    memcpy(s, md[i].key, md[i].key_len);
    s[md[i].key_len] = 0;
    out[i].key = (const char *)s;
    out[i].key_len = md[i].key_len;
    s += md[i].key_len + 1;
    if (md[i].value_len) memcpy(s, md[i].value, md[i].value_len);
    s[md[i].value_len] = 0;
    out[i].value = s;
    out[i].value_len = md[i].value_len;
    s += md[i].value_len + 1;
  }
  return out;
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

/* First half of a send: checks msg and reserves its packed size in the
 * call's send buffer. Returns 0 with *frame and *len set, or the engine's
 * code (SGRPC_ERR_WOULDBLOCK included: nothing was reserved). Hooks that
 * announce the message run between this and msg_commit, so they fire
 * once per message that really goes out. */
static int msg_reserve(sgrpc_call *h, const sgrpc_codec *codec, const void *type,
                       const void *msg, uint8_t **frame, size_t *len) {
  if (!msg || !codec->check(type, msg)) return SGRPC_ERR_INVALID_ARGUMENT;
  *len = codec->packed_size(type, msg);
  if (*len > UINT32_MAX) return SGRPC_ERR_MESSAGE_TOO_LARGE;
  return sgrpc_call_send_reserve(h, *len, frame);
}

/* Second half: packs msg into the reserved frame and commits it. */
static int msg_commit(sgrpc_call *h, const sgrpc_codec *codec, const void *type,
                      const void *msg, uint8_t *frame, size_t len, unsigned flags) {
  if (codec->pack(type, msg, frame) != len) {
    /* a codec that packs other than it measured: nothing goes out */
    sgrpc_call_cancel(h);
    sgrpc_call_send_commit(h, 0);
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
  return sgrpc_call_send_commit(h, flags);
}

/* ------------------------------------------------------------------ */
/* Router                                                              */
/* ------------------------------------------------------------------ */

typedef struct route {
  const sgrpc_method *method;
  size_t path_len;
  sgrpc_handler handler;
} route;

struct sgrpc_router {
  sgrpc_mem mem;
  route *routes;
  size_t n, cap;
  uint32_t *index; /* open addressing: route number + 1, 0 = empty */
  size_t index_cap; /* power of two, >= 2 * n */
  sgrpc_events *events;   /* hooks for calls created from now on, or NULL */
  const sgrpc_service_desc **services; /* what reflection lists */
  size_t n_services, cap_services;
};

struct sgrpc_server_call {
  sgrpc_router *router;
  sgrpc_call *h;
  const route *route;
  void *user_data;
  sgrpc_md *md;
  size_t md_count;
  int64_t deadline;
  int64_t start;
  int64_t now;          /* now of the event being handled */
  void *request;        /* unary / server streaming: the one request */
  int finished;         /* the status went to the engine */
  int headers_sent;     /* initial metadata went out explicitly */
  sgrpc_events *ev;     /* the router's hooks when the call began, or NULL */
  sgrpc_conn *conn;
  void *block;          /* one allocation: the metadata copy, then user_agent */
  const char *user_agent; /* "" when the client sent none */
};

static uint32_t path_hash(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
  return h;
}

int sgrpc_router_new(sgrpc_router **prouter, const sgrpc_mem *mem) {
  sgrpc_mem m;
  sgrpc_router *r;
  if (!prouter || sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  r = rpc_calloc(&m, sizeof(*r));
  if (!r) return SGRPC_ERR_NOMEM;
  r->mem = m;
  *prouter = r;
  return 0;
}

void sgrpc_router_del(sgrpc_router *r) {
  if (!r) return;
  rpc_free(&r->mem, r->routes);
  rpc_free(&r->mem, r->index);
  rpc_free(&r->mem, (void *)r->services);
  rpc_free(&r->mem, r);
}

int sgrpc_router_add_service(sgrpc_router *r, const sgrpc_service_desc *svc) {
  size_t i;
  if (!r || !svc || !svc->name || !svc->name[0]) return SGRPC_ERR_INVALID_ARGUMENT;
  for (i = 0; i < r->n_services; i++)
    if (r->services[i] == svc || strcmp(r->services[i]->name, svc->name) == 0) return 0;
  if (r->n_services == r->cap_services) {
    size_t cap = r->cap_services ? r->cap_services * 2 : 4;
    const sgrpc_service_desc **ns = rpc_malloc(&r->mem, cap * sizeof(*ns));
    if (!ns) return SGRPC_ERR_NOMEM;
    if (r->n_services) memcpy((void *)ns, (const void *)r->services, r->n_services * sizeof(*ns));
    rpc_free(&r->mem, (void *)r->services);
    r->services = ns;
    r->cap_services = cap;
  }
  r->services[r->n_services++] = svc;
  return 0;
}

size_t sgrpc_router_service_count(const sgrpc_router *r) { return r ? r->n_services : 0; }

const sgrpc_service_desc *sgrpc_router_service(const sgrpc_router *r, size_t i) {
  return r && i < r->n_services ? r->services[i] : NULL;
}

static const route *router_lookup(const sgrpc_router *r, const char *path, size_t len) {
  size_t mask, i;
  if (!r->index_cap) return NULL;
  mask = r->index_cap - 1;
  for (i = path_hash(path, len) & mask; r->index[i]; i = (i + 1) & mask) {
    const route *rt = &r->routes[r->index[i] - 1];
    if (rt->path_len == len && memcmp(rt->method->path, path, len) == 0) return rt;
  }
  return NULL;
}

const sgrpc_method *sgrpc_router_find(const sgrpc_router *r, const char *path,
                                      size_t len) {
  const route *rt;
  if (!r || !path) return NULL;
  rt = router_lookup(r, path, len);
  return rt ? rt->method : NULL;
}

void sg_router_each_handler(sgrpc_router *r,
                            void (*fn)(const sgrpc_method *method, sgrpc_handler *handler,
                                       void *ctx),
                            void *ctx) {
  size_t i;
  for (i = 0; i < r->n; i++) fn(r->routes[i].method, &r->routes[i].handler, ctx);
}

static void index_put(uint32_t *index, size_t cap, const route *routes, size_t k) {
  size_t mask = cap - 1;
  size_t i = path_hash(routes[k].method->path, routes[k].path_len) & mask;
  while (index[i]) i = (i + 1) & mask;
  index[i] = (uint32_t)(k + 1);
}

int sgrpc_router_add(sgrpc_router *r, const sgrpc_method *m, const sgrpc_handler *h) {
  size_t len, k;
  if (!r || !m || !m->path || !m->codec || !h || !h->on_request)
    return SGRPC_ERR_INVALID_ARGUMENT;
  len = strlen(m->path);
  if (router_lookup(r, m->path, len)) return SGRPC_ERR_INVALID_ARGUMENT;
  if (r->n == UINT32_MAX - 1) return SGRPC_ERR_NOMEM;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 8;
    route *nr = rpc_malloc(&r->mem, cap * sizeof(*nr));
    if (!nr) return SGRPC_ERR_NOMEM;
    if (r->n) memcpy(nr, r->routes, r->n * sizeof(*nr));
    /* Calls in flight point at routes: the old array must stay valid
     * for them, so adding routes while serving is not supported. */
    rpc_free(&r->mem, r->routes);
    r->routes = nr;
    r->cap = cap;
  }
  if ((r->n + 1) * 2 > r->index_cap) {
    size_t cap = r->index_cap ? r->index_cap * 2 : 16;
    uint32_t *ni = rpc_calloc(&r->mem, cap * sizeof(*ni));
    if (!ni) return SGRPC_ERR_NOMEM;
    rpc_free(&r->mem, r->index);
    r->index = ni;
    r->index_cap = cap;
    for (k = 0; k < r->n; k++) index_put(ni, cap, r->routes, k);
  }
  r->routes[r->n].method = m;
  r->routes[r->n].path_len = len;
  r->routes[r->n].handler = *h;
  index_put(r->index, r->index_cap, r->routes, r->n);
  r->n++;
  return 0;
}

/* Does the request's content-type fit the codec's subtype? Plain
 * application/grpc means protobuf by the spec. */
static int content_type_ok(const sgrpc_codec *codec, const char *ct) {
  const char *sub = codec->content_subtype;
  const char *base = "application/grpc";
  size_t bl = strlen(base);
  if (!ct || strncmp(ct, base, bl) != 0) return 0;
  ct += bl;
  if (*ct == 0 || *ct == ';') return !sub || strcmp(sub, "proto") == 0;
  if (*ct != '+') return 0;
  ct++;
  if (!sub) return strncmp(ct, "proto", 5) == 0 && (ct[5] == 0 || ct[5] == ';');
  return strncmp(ct, sub, strlen(sub)) == 0 &&
         (ct[strlen(sub)] == 0 || ct[strlen(sub)] == ';');
}

static int sc_send_status_now(sgrpc_server_call *sc, const sgrpc_status *st) {
  sgrpc_status ok;
  if (!st) {
    memset(&ok, 0, sizeof(ok));
    st = &ok;
  }
  return sgrpc_call_send_status(sc->h, st);
}

/* The engine keeps the status until the messages it buffered are out. */
static int sc_finish(sgrpc_server_call *sc, const sgrpc_status *st) {
  int rv = sc_send_status_now(sc, st);
  if (rv == 0) sc->finished = 1;
  return rv;
}

/* A hook event of type for server call sc (method, path, call, conn set). */
static void sc_hook_event(sgrpc_server_call *sc, sgrpc_hook_event *hev, sgrpc_hook_type type) {
  memset(hev, 0, sizeof(*hev));
  hev->type = type;
  hev->method = sc->route->method;
  hev->path = sc->route->method->path;
  hev->server_call = sc;
  hev->conn = sc->conn;
}

/* SEND_TRAILING_METADATA hooks, then the finish with their metadata. */
static int sc_finish_hooked(sgrpc_server_call *sc, const sgrpc_status *st) {
  sgrpc_hook_event hev;
  hook_md_edit ed;
  sgrpc_status edited;
  int rv;
  memset(&edited, 0, sizeof(edited));
  if (st) edited = *st;
  sc_hook_event(sc, &hev, SGRPC_HOOK_SEND_TRAILING_METADATA);
  hev.md = edited.md;
  hev.md_count = edited.md_count;
  hev.status_code = edited.code;
  hev.status_message = edited.message;
  hev.status_details = edited.details;
  hev.status_details_len = edited.details_len;
  hook_fire(sc->ev, &hev, &ed);
  edited.md = hev.md;
  edited.md_count = hev.md_count;
  rv = sc_finish(sc, &edited);
  hook_md_done(&ed);
  return rv;
}

int sgrpc_server_call_finish(sgrpc_server_call *sc, const sgrpc_status *st) {
  if (!sc) return SGRPC_ERR_INVALID_ARGUMENT;
  if (sc->finished) return SGRPC_ERR_INVALID_STATE;
  if (HOOKED(sc->ev) && hook_wanted(sc->ev, SGRPC_HOOK_SEND_TRAILING_METADATA))
    return sc_finish_hooked(sc, st);
  return sc_finish(sc, st);
}

int sgrpc_server_call_fail(sgrpc_server_call *sc, int code, const char *message) {
  sgrpc_status st;
  memset(&st, 0, sizeof(st));
  st.code = code;
  st.message = message;
  return sgrpc_server_call_finish(sc, &st);
}

/* SEND_INITIAL_METADATA hooks, then the headers with their metadata. */
static int sc_send_headers_hooked(sgrpc_server_call *sc, const sgrpc_md *md, size_t n) {
  sgrpc_hook_event hev;
  hook_md_edit ed;
  int rv;
  sc_hook_event(sc, &hev, SGRPC_HOOK_SEND_INITIAL_METADATA);
  hev.md = md;
  hev.md_count = n;
  hook_fire(sc->ev, &hev, &ed);
  rv = sgrpc_call_send_headers(sc->h, hev.md, hev.md_count);
  hook_md_done(&ed);
  if (rv == 0) sc->headers_sent = 1;
  return rv;
}

static void sc_hook_message(sgrpc_server_call *sc, sgrpc_hook_type type, const void *msg) {
  sgrpc_hook_event hev;
  sc_hook_event(sc, &hev, type);
  hev.message = msg;
  hook_fire(sc->ev, &hev, NULL);
}

int sgrpc_server_call_send(sgrpc_server_call *sc, const void *msg) {
  const sgrpc_method *m;
  uint8_t *frame;
  size_t len;
  int rv;
  if (!sc || !sc->route) return SGRPC_ERR_INVALID_ARGUMENT;
  if (sc->finished) return SGRPC_ERR_INVALID_STATE;
  m = sc->route->method;
  if (HOOKED(sc->ev)) {
    if (!msg || !m->codec->check(m->response_type, msg)) return SGRPC_ERR_INVALID_ARGUMENT;
    /* the initial metadata first if it has not gone yet (its hooks may
     * add to it); once sent it is not repeated when the message blocks */
    if (!sc->headers_sent && hook_wanted(sc->ev, SGRPC_HOOK_SEND_INITIAL_METADATA)) {
      rv = sc_send_headers_hooked(sc, NULL, 0);
      if (rv < 0) return rv;
    }
  }
  rv = msg_reserve(sc->h, m->codec, m->response_type, msg, &frame, &len);
  if (rv < 0) return rv;
  if (HOOKED(sc->ev) && hook_wanted(sc->ev, SGRPC_HOOK_SERVER_SEND_MESSAGE))
    sc_hook_message(sc, SGRPC_HOOK_SERVER_SEND_MESSAGE, msg);
  return msg_commit(sc->h, m->codec, m->response_type, msg, frame, len, 0);
}

int sgrpc_server_call_reply(sgrpc_server_call *sc, const void *msg) {
  int rv = sgrpc_server_call_send(sc, msg);
  if (rv < 0) return rv;
  return sgrpc_server_call_finish(sc, NULL);
}

int sgrpc_server_call_send_headers(sgrpc_server_call *sc, const sgrpc_md *md,
                                   size_t md_count) {
  int rv;
  if (!sc) return SGRPC_ERR_INVALID_ARGUMENT;
  if (HOOKED(sc->ev) && sc->route && !sc->headers_sent &&
      hook_wanted(sc->ev, SGRPC_HOOK_SEND_INITIAL_METADATA))
    return sc_send_headers_hooked(sc, md, md_count);
  rv = sgrpc_call_send_headers(sc->h, md, md_count);
  if (rv == 0) sc->headers_sent = 1;
  return rv;
}

void sgrpc_server_call_set_user_data(sgrpc_server_call *sc, void *ud) {
  if (sc) sc->user_data = ud;
}
void *sgrpc_server_call_get_user_data(const sgrpc_server_call *sc) {
  return sc ? sc->user_data : NULL;
}
const sgrpc_method *sgrpc_server_call_method(const sgrpc_server_call *sc) {
  return sc && sc->route ? sc->route->method : NULL;
}
const sgrpc_handler *sgrpc_server_call_handler(const sgrpc_server_call *sc) {
  return sc && sc->route ? &sc->route->handler : NULL;
}
sgrpc_call *sgrpc_server_call_handle(const sgrpc_server_call *sc) { return sc ? sc->h : NULL; }
const sgrpc_md *sgrpc_server_call_metadata(const sgrpc_server_call *sc, size_t *n) {
  if (n) *n = sc ? sc->md_count : 0;
  return sc ? sc->md : NULL;
}
int64_t sgrpc_server_call_deadline(const sgrpc_server_call *sc) {
  return sc ? sc->deadline : SGRPC_NEVER;
}
int64_t sgrpc_server_call_start_time(const sgrpc_server_call *sc) { return sc ? sc->start : 0; }

/* Fails the call from inside dispatch; the status send can only fail when
 * the call already ended, whose CLOSE then cleans up. */
static void sc_fail(sgrpc_server_call *sc, int code, const char *msg) {
  if (!sc->finished) (void)sgrpc_server_call_fail(sc, code, msg);
}

static void sc_unknown(sgrpc_server_call *sc, const sgrpc_event *ev) {
  static const char prefix[] = "Method not found: ";
  char stackbuf[256];
  char *text = stackbuf;
  size_t need = sizeof(prefix) + ev->u.call_new.path_len;
  if (need > sizeof(stackbuf)) {
    text = rpc_malloc(&sc->router->mem, need);
    if (!text) {
      sc_fail(sc, SGRPC_STATUS_UNIMPLEMENTED, "Method not found");
      return;
    }
  }
  memcpy(text, prefix, sizeof(prefix) - 1);
  memcpy(text + sizeof(prefix) - 1, ev->u.call_new.path, ev->u.call_new.path_len);
  text[need - 1] = 0;
  sc_fail(sc, SGRPC_STATUS_UNIMPLEMENTED, text);
  if (text != stackbuf) rpc_free(&sc->router->mem, text);
}

/* Keeps the request metadata for sgrpc_server_call_metadata and the
 * user-agent for sgrpc_server_call_user_agent, in one allocation (the
 * engine's copies are gone after the event). */
static int sc_copy_md(sgrpc_server_call *sc, const sgrpc_md *md, size_t n, const char *ua) {
  size_t sz, ualen = ua ? strlen(ua) : 0;
  uint8_t *block;
  sc->user_agent = "";
  if (!n && !ualen) return 0;
  sz = n ? md_copy_size(md, n) : 0;
  block = rpc_malloc(&sc->router->mem, sz + (ualen ? ualen + 1 : 0));
  if (!block) {
    sc_fail(sc, SGRPC_STATUS_RESOURCE_EXHAUSTED, "Out of memory");
    return SGRPC_ERR_NOMEM;
  }
  sc->block = block;
  if (n) {
    sc->md = md_copy_into(block, md, n);
    sc->md_count = n;
  }
  if (ualen) {
    memcpy(block + sz, ua, ualen + 1);
    sc->user_agent = (const char *)(block + sz);
  }
  return 0;
}

/* RECV_REQUEST hooks: they may edit the metadata the handler will see,
 * or refuse the call before any handler code runs. */
static void sc_recv_request(sgrpc_server_call *sc, const sgrpc_event *ev) {
  sgrpc_hook_event hev;
  hook_md_edit ed;
  int rv;
  sc->ev = sc->router->events;
  if (!hook_wanted(sc->ev, SGRPC_HOOK_RECV_REQUEST)) {
    (void)sc_copy_md(sc, ev->u.call_new.md, ev->u.call_new.md_count,
                     ev->u.call_new.user_agent);
    return;
  }
  sc_hook_event(sc, &hev, SGRPC_HOOK_RECV_REQUEST);
  hev.md = ev->u.call_new.md;
  hev.md_count = ev->u.call_new.md_count;
  hev.deadline = ev->u.call_new.deadline;
  hev.content_type = ev->u.call_new.content_type ? ev->u.call_new.content_type : "";
  hev.authority = ev->u.call_new.authority ? ev->u.call_new.authority : "";
  hev.user_agent = ev->u.call_new.user_agent ? ev->u.call_new.user_agent : "";
  hook_fire(sc->ev, &hev, &ed);
  rv = sc_copy_md(sc, hev.md, hev.md_count, hev.user_agent);
  hook_md_done(&ed);
  if (rv == 0 && hev.end_code)
    sc_fail(sc, hev.end_code, hev.end_message ? hev.end_message : "");
}

static void sc_event(const sgrpc_event *ev, void *user_data, int64_t now);

static int on_call_new(sgrpc_router *r, sgrpc_conn *conn, const sgrpc_event *ev,
                       int64_t now) {
  sgrpc_server_call *sc = rpc_calloc(&r->mem, sizeof(*sc));
  const route *rt;
  if (!sc) {
    sgrpc_status st;
    memset(&st, 0, sizeof(st));
    st.code = SGRPC_STATUS_RESOURCE_EXHAUSTED;
    st.message = "Out of memory";
    /* no callback: the CLOSE goes to whoever pulls the events */
    (void)sgrpc_call_send_status(ev->call, &st);
    return 1;
  }
  sc->router = r;
  sc->h = ev->call;
  sc->deadline = ev->u.call_new.deadline;
  sc->start = sc->now = now;
  sgrpc_call_set_callback(ev->call, sc_event, sc);
  rt = router_lookup(r, ev->u.call_new.path, ev->u.call_new.path_len);
  if (!rt) {
    sc_unknown(sc, ev);
    return 1;
  }
  sc->route = rt;
  sc->conn = conn;
  if (!content_type_ok(rt->method->codec, ev->u.call_new.content_type)) {
    sc_fail(sc, SGRPC_STATUS_UNIMPLEMENTED, "Unsupported content-type for this method");
    return 1;
  }
  if (HOOKED(r->events)) {
    sc_recv_request(sc, ev);
    return 1;
  }
  (void)sc_copy_md(sc, ev->u.call_new.md, ev->u.call_new.md_count, ev->u.call_new.user_agent);
  return 1;
}

static void on_server_message(sgrpc_server_call *sc, const sgrpc_event *ev) {
  const sgrpc_method *m;
  void *msg;
  if (!sc->route || sc->finished) return;
  m = sc->route->method;
  msg = m->codec->unpack(m->request_type, ev->u.message.data, ev->u.message.len,
                         &sc->router->mem);
  if (!msg) {
    sc_fail(sc, SGRPC_STATUS_INTERNAL, "Failed to decode the request message");
    return;
  }
  if (HOOKED(sc->ev) && hook_wanted(sc->ev, SGRPC_HOOK_SERVER_RECV_MESSAGE))
    sc_hook_message(sc, SGRPC_HOOK_SERVER_RECV_MESSAGE, msg);
  if (!m->client_streaming) {
    if (sc->request) {
      m->codec->free_msg(m->request_type, msg, &sc->router->mem);
      sc_fail(sc, SGRPC_STATUS_INTERNAL, "Too many requests for a single-request method");
      return;
    }
    sc->request = msg;
    return;
  }
  sc->route->handler.on_request(sc, msg, sc->route->handler.user_data);
  m->codec->free_msg(m->request_type, msg, &sc->router->mem);
}

static void on_server_half_close(sgrpc_server_call *sc) {
  const sgrpc_method *m;
  if (!sc->route || sc->finished) return;
  m = sc->route->method;
  if (!m->client_streaming) {
    if (!sc->request) {
      sc_fail(sc, SGRPC_STATUS_INTERNAL, "Missing request message");
      return;
    }
    sc->route->handler.on_request(sc, sc->request, sc->route->handler.user_data);
    return;
  }
  sc->route->handler.on_request(sc, NULL, sc->route->handler.user_data);
}

/* The engine took the buffer below its cap after a send of this call
 * returned SGRPC_ERR_WOULDBLOCK: the handler may send again. */
static void on_server_writable(sgrpc_server_call *sc) {
  const sgrpc_handler *hd;
  if (!sc->route || sc->finished) return;
  hd = &sc->route->handler;
  if (hd->on_writable) hd->on_writable(sc, hd->user_data);
}

static void on_server_close(sgrpc_server_call *sc, const sgrpc_event *ev) {
  const sgrpc_mem *mem = &sc->router->mem;
  if (sc->route && sc->route->handler.on_close)
    sc->route->handler.on_close(sc, &ev->u.close.status, sc->route->handler.user_data);
  if (sc->request) sc->route->method->codec->free_msg(sc->route->method->request_type,
                                                      sc->request, mem);
  rpc_free(mem, sc->block);
  /* The handle is the event puller's to release, after this CLOSE. */
  sgrpc_call_set_callback(sc->h, NULL, NULL);
  rpc_free(mem, sc);
}

void sgrpc_router_set_events(sgrpc_router *r, sgrpc_events *events) {
  if (r) r->events = events;
}

/* The per-call callback (the engine's dispatcher) of a routed call. */
static void sc_event(const sgrpc_event *ev, void *user_data, int64_t now) {
  sgrpc_server_call *sc = user_data;
  sc->now = now;
  switch (ev->type) {
  case SGRPC_EV_MESSAGE:
    on_server_message(sc, ev);
    break;
  case SGRPC_EV_HALF_CLOSE:
    on_server_half_close(sc);
    break;
  case SGRPC_EV_WRITABLE:
    on_server_writable(sc);
    break;
  case SGRPC_EV_CLOSE:
    on_server_close(sc, ev);
    break;
  default:
    break;
  }
}

int sgrpc_router_dispatch(sgrpc_router *r, sgrpc_conn *conn, const sgrpc_event *ev,
                          int64_t now) {
  if (!r || !ev) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!ev->call) return 0;
  if (ev->type == SGRPC_EV_CALL_NEW) return on_call_new(r, conn, ev, now);
  return sgrpc_event_dispatch(ev, now);
}

/* ------------------------------------------------------------------ */
/* Client                                                              */
/* ------------------------------------------------------------------ */

/*
 * A client call is one user-visible call made of attempts (gRFC A6): each
 * attempt is one engine call started through the client's transport, and
 * only one is open at a time. Until the call is committed (response
 * headers or a message arrived, the retry buffer overflowed, or retries
 * are off for it) the packed requests are kept in `buf` and replayed into
 * the next attempt.
 */
struct sgrpc_client_call {
  sgrpc_call *h;            /* the open attempt; NULL between attempts */
  const sgrpc_method *method;
  sgrpc_client_callbacks cb;
  void *user_data;
  sgrpc_mem mem;
  void *reply;              /* single-response methods: the response */
  int send_closed;          /* half-closed (or the one request went with END) */
  int fail_code;            /* nonzero: report this instead of the status */
  const char *fail_message; /* static text */
  int silent;               /* start failed after the engine call began:
                               wait for CLOSE without running callbacks */
  int64_t now;              /* now of the event being handled */
  sgrpc_events *ev;         /* the client's hooks at start, or NULL */
  sgrpc_conn *conn;
  /* limits from the method config (0: none) */
  size_t max_request, max_response;
  /* retries */
  sgrpc_rpc_client *client;
  const sgrpc_retry_policy *policy; /* NULL: no policy retries */
  int committed;            /* no more attempts */
  int cancelled;            /* the user cancelled */
  int attempts;             /* attempts started */
  int transparent;          /* transparent retries made */
  int64_t backoff;          /* current backoff cap (ns) */
  sgrpc_call_opts co;       /* options of every attempt (copied strings) */
  uint8_t *copy;            /* co's metadata and strings */
  rt_buf buf;               /* packed requests for replay */
  size_t replay_off;        /* bytes of buf the open attempt has */
  int want_writable;        /* a send was refused while replaying/waiting */
  void *timer;              /* armed backoff timer */
  int last_code;            /* status of the last attempt (while waiting) */
  char *last_message;
  char prev[12];            /* grpc-previous-rpc-attempts value */
  sgrpc_client_call *wnext, *wprev; /* the client's waiting list */
};

static void cc_wait_link(sgrpc_client_call *cc) {
  sgrpc_rpc_retry_state *rs = &cc->client->retry;
  cc->wprev = NULL;
  cc->wnext = rs->waiting;
  if (rs->waiting) rs->waiting->wprev = cc;
  rs->waiting = cc;
}

static void cc_wait_unlink(sgrpc_client_call *cc) {
  sgrpc_rpc_retry_state *rs = &cc->client->retry;
  if (cc->wprev) cc->wprev->wnext = cc->wnext;
  else if (rs->waiting == cc) rs->waiting = cc->wnext;
  if (cc->wnext) cc->wnext->wprev = cc->wprev;
  cc->wnext = cc->wprev = NULL;
}

void sgrpc_rpc_client_set_events(sgrpc_rpc_client *c, sgrpc_events *events) {
  if (c) c->events = events;
}

static void cc_hook_event_init(sgrpc_client_call *cc, sgrpc_hook_event *hev,
                               sgrpc_hook_type type) {
  memset(hev, 0, sizeof(*hev));
  hev->type = type;
  hev->method = cc->method;
  hev->path = cc->method->path;
  hev->client_call = cc;
  hev->conn = cc->conn;
}

static void cc_hook_message(sgrpc_client_call *cc, sgrpc_hook_type type, const void *msg) {
  sgrpc_hook_event hev;
  if (!hook_wanted(cc->ev, type)) return;
  cc_hook_event_init(cc, &hev, type);
  hev.message = msg;
  hook_fire(cc->ev, &hev, NULL);
}

static void retry_state_init(sgrpc_rpc_retry_state *rs, const void *seed) {
  memset(rs, 0, sizeof(*rs));
  rs->tokens_milli = -1;
  rs->buffer_per_call = SGRPC_RPC_RETRY_BUFFER_PER_CALL;
  rs->buffer_per_client = SGRPC_RPC_RETRY_BUFFER_PER_CLIENT;
  /* a per-client seed without reading a clock: the client's address */
  rs->rng = (uint64_t)(uintptr_t)seed * 0x9e3779b97f4a7c15ull | 1;
}

void sgrpc_rpc_client_init(sgrpc_rpc_client *c, sgrpc_conn *conn, const sgrpc_mem *mem) {
  if (!c) return;
  c->conn = conn;
  mem_copy_in(&c->mem, mem);
  c->start = NULL;
  c->start_ctx = NULL;
  c->events = NULL;
  retry_state_init(&c->retry, c);
}

void sgrpc_rpc_client_init_transport(sgrpc_rpc_client *c, sgrpc_rpc_start_fn start, void *ctx,
                                     const sgrpc_mem *mem) {
  if (!c) return;
  c->conn = NULL;
  mem_copy_in(&c->mem, mem);
  c->start = start;
  c->start_ctx = ctx;
  c->events = NULL;
  retry_state_init(&c->retry, c);
}

void sgrpc_rpc_client_set_service_config(sgrpc_rpc_client *c, const sgrpc_service_config *cfg) {
  if (!c) return;
  c->retry.service_config = cfg;
  c->retry.tokens_milli = -1;
}

void sgrpc_rpc_client_set_timer(sgrpc_rpc_client *c, sgrpc_rpc_timer_start_fn start,
                                sgrpc_rpc_timer_cancel_fn cancel, void *ctx) {
  if (!c) return;
  c->retry.timer_start = start && cancel ? start : NULL;
  c->retry.timer_cancel = start && cancel ? cancel : NULL;
  c->retry.timer_ctx = ctx;
}

void sgrpc_rpc_client_set_random(sgrpc_rpc_client *c, sgrpc_rpc_random_fn random, void *ctx) {
  if (!c) return;
  c->retry.random = random;
  c->retry.random_ctx = ctx;
}

void sgrpc_rpc_client_set_retry_limits(sgrpc_rpc_client *c, size_t per_call, size_t per_client,
                                       int transparent) {
  if (!c) return;
  if (per_call) c->retry.buffer_per_call = per_call;
  if (per_client) c->retry.buffer_per_client = per_client;
  c->retry.transparent_off = !transparent;
}

int64_t sgrpc_rpc_client_retry_tokens(const sgrpc_rpc_client *c) {
  if (!c || !c->retry.service_config || !c->retry.service_config->retry_throttling) return -1;
  return c->retry.tokens_milli;
}

/* Nonzero while the open attempt has not been given every buffered
 * request yet: new requests must queue behind them. */
static int cc_replaying(const sgrpc_client_call *cc) {
  return cc->h && cc->replay_off < cc->buf.len;
}

/* This call will not be retried any more: drops the retry buffer, or
 * leaves that to the end of a replay still in progress. */
static void cc_commit(sgrpc_client_call *cc) {
  cc->committed = 1;
  if (cc_replaying(cc)) return;
  rt_buf_free(cc->client, &cc->mem, &cc->buf);
  cc->replay_off = 0;
}

static void cc_free(sgrpc_client_call *cc) {
  sgrpc_mem mem = cc->mem;
  if (cc->reply) cc->method->codec->free_msg(cc->method->response_type, cc->reply, &mem);
  if (cc->client) rt_buf_free(cc->client, &mem, &cc->buf);
  rpc_free(&mem, cc->copy);
  rpc_free(&mem, cc->last_message);
  rpc_free(&mem, cc);
}

static void cc_on_event(const sgrpc_event *ev, void *user_data, int64_t now);
static void cc_fail(sgrpc_client_call *cc, int code, const char *msg);

/* Copies the strings and metadata of co into one block owned by the
 * call: [spare slot][metadata array][metadata strings][authority]
 * [encoding]. Retries send the spare slot (grpc-previous-rpc-attempts)
 * in front of the user's metadata, so the array stays contiguous. */
static int cc_copy_opts(sgrpc_client_call *cc, const sgrpc_call_opts *co) {
  size_t au = co->authority ? strlen(co->authority) + 1 : 0;
  size_t en = co->encoding ? strlen(co->encoding) + 1 : 0;
  size_t mdsz = sizeof(sgrpc_md) + md_copy_size(co->md, co->md_count);
  uint8_t *p = rpc_malloc(&cc->mem, mdsz + au + en);
  if (!p) return SGRPC_ERR_NOMEM;
  cc->copy = p;
  cc->co = *co;
  cc->co.md = md_copy_into(p + sizeof(sgrpc_md), co->md, co->md_count);
  if (au) {
    char *a = (char *)p + mdsz;
    memcpy(a, co->authority, au);
    cc->co.authority = a;
  }
  if (en) {
    char *e = (char *)p + mdsz + au;
    memcpy(e, co->encoding, en);
    cc->co.encoding = e;
  }
  return 0;
}

/* Sends buffered requests the open attempt does not have yet. Returns 0
 * when it has them all (half-closed too if the user did), 1 when the
 * engine pushed back (EV_WRITABLE continues), or an engine error. */
static int cc_replay(sgrpc_client_call *cc) {
  const uint8_t *data;
  size_t n, off = cc->replay_off;
  int rv;
  while (rt_buf_next(&cc->buf, &off, &data, &n)) {
    unsigned flags = off >= cc->buf.len && cc->send_closed ? SGRPC_SEND_END : 0;
    rv = sgrpc_call_send(cc->h, data, n, flags);
    if (rv == SGRPC_ERR_WOULDBLOCK) return 1;
    if (rv < 0) return rv;
    cc->replay_off = off;
    if (flags) break;
  }
  if (cc->send_closed && cc->buf.len == 0) rv = sgrpc_call_close_send(cc->h);
  else rv = 0;
  if (cc->committed) cc_commit(cc); /* committed during the replay */
  return rv;
}

/* Starts the next attempt (not the first). Returns 0 or the code of the
 * transport / engine; on error no attempt is open. */
static int cc_start_attempt(sgrpc_client_call *cc, int64_t now) {
  sgrpc_rpc_client *cl = cc->client;
  sgrpc_call_opts co = cc->co;
  sgrpc_md *md = (sgrpc_md *)(void *)cc->copy;
  int rv;
  snprintf(cc->prev, sizeof(cc->prev), "%d", cc->attempts);
  md->key = "grpc-previous-rpc-attempts";
  md->key_len = strlen(md->key);
  md->value = (const uint8_t *)cc->prev;
  md->value_len = strlen(cc->prev);
  co.md = md;
  co.md_count++;
  cc->h = NULL;
  if (cl->start) {
    rv = cl->start(cl->start_ctx, &co, now, &cc->h);
    if (rv == 0 && !cc->h) rv = SGRPC_ERR_INVALID_STATE;
  } else {
    rv = sgrpc_call_start(cl->conn, &co, now, &cc->h);
  }
  if (rv < 0) {
    cc->h = NULL;
    return rv;
  }
  cc->attempts++;
  cc->replay_off = 0;
  rv = cc_replay(cc);
  if (rv < 0) {
    /* the attempt exists: its CLOSE (CANCELLED) ends the call */
    cc->fail_code = SGRPC_STATUS_INTERNAL;
    cc->fail_message = "Replaying the requests into a retry attempt failed";
    (void)sgrpc_call_cancel(cc->h);
  }
  return 0;
}

int sgrpc_rpc_call_start(sgrpc_rpc_client *client, const sgrpc_method *method,
                         const void *request, const sgrpc_rpc_opts *opts, int64_t now,
                         const sgrpc_client_callbacks *cb, sgrpc_client_call **pcall) {
  sgrpc_call_opts co;
  sgrpc_client_call *cc;
  const sgrpc_method_config *mc;
  hook_md_edit ed;
  int hooked = 0;
  int rv;
  if (!client || (!client->conn && !client->start) || !method || !method->path || !method->codec || !cb ||
      !cb->on_close)
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (method->server_streaming && !cb->on_message) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!method->client_streaming && !request) return SGRPC_ERR_INVALID_ARGUMENT;
  if (method->client_streaming && request) return SGRPC_ERR_INVALID_ARGUMENT;
  if (request && !method->codec->check(method->request_type, request))
    return SGRPC_ERR_INVALID_ARGUMENT;
  cc = rpc_calloc(&client->mem, sizeof(*cc));
  if (!cc) return SGRPC_ERR_NOMEM;
  cc->method = method;
  cc->now = now;
  cc->cb = *cb;
  cc->mem = client->mem;
  cc->client = client;
  memset(&co, 0, sizeof(co));
  co.path = method->path;
  co.content_subtype = method->codec->content_subtype;
  co.user_data = cc;
  co.on_event = cc_on_event;
  if (opts) {
    co.authority = opts->authority;
    co.deadline = opts->deadline;
    co.md = opts->md;
    co.md_count = opts->md_count;
    cc->user_data = opts->user_data;
    co.encoding = opts->encoding;
    co.wait_for_ready = opts->wait_for_ready;
  }
  mc = client->retry.service_config
           ? sgrpc_service_config_find(client->retry.service_config, method->path)
           : NULL;
  if (mc) {
    /* the method's timeout applies unless the call set an earlier deadline */
    if (mc->timeout > 0 && now <= INT64_MAX - mc->timeout &&
        (co.deadline <= 0 || co.deadline == SGRPC_NEVER || now + mc->timeout < co.deadline))
      co.deadline = now + mc->timeout;
    if (!co.wait_for_ready) co.wait_for_ready = mc->wait_for_ready;
    cc->max_request = mc->max_request_message_bytes;
    cc->max_response = mc->max_response_message_bytes;
    if (mc->retry_policy && client->retry.timer_start && mc->retry_policy->max_attempts >= 2) {
      cc->policy = mc->retry_policy;
      cc->backoff = mc->retry_policy->initial_backoff;
    }
  }
  cc->committed = !cc->policy && client->retry.transparent_off;
  if (!cc->policy) cc->buf.limit = SGRPC_RPC_TRANSPARENT_BUFFER_PER_CALL;
  cc->conn = client->conn;
  if (HOOKED(client->events)) {
    cc->ev = client->events;
    if (hook_wanted(cc->ev, SGRPC_HOOK_SEND_REQUEST)) {
      sgrpc_hook_event hev;
      cc_hook_event_init(cc, &hev, SGRPC_HOOK_SEND_REQUEST);
      hev.md = co.md;
      hev.md_count = co.md_count;
      hev.deadline = co.deadline > 0 ? co.deadline : SGRPC_NEVER;
      hook_fire(cc->ev, &hev, &ed);
      hooked = 1;
      co.md = hev.md;
      co.md_count = hev.md_count;
    }
  }
  /* a call that may be retried keeps its options for later attempts */
  rv = cc->committed ? 0 : cc_copy_opts(cc, &co);
  if (rv == 0 && !cc->committed) co = cc->co;
  if (rv == 0 && client->start) {
    rv = client->start(client->start_ctx, &co, now, &cc->h);
    if (rv == 0 && !cc->h) rv = SGRPC_ERR_INVALID_STATE; /* a broken hook */
  } else if (rv == 0) {
    rv = sgrpc_call_start(client->conn, &co, now, &cc->h);
  }
  if (hooked) hook_md_done(&ed); /* the engine copied the metadata */
  if (rv < 0) {
    cc_free(cc);
    return rv;
  }
  cc->attempts = 1;
  if (request) {
    uint8_t *frame, *keep;
    size_t len;
    /* A fresh call's buffer is empty: only a full connection-wide
     * outbound queue (settings.max_outbound_queue) can push back here. */
    if (cc->max_request &&
        method->codec->packed_size(method->request_type, request) > cc->max_request) {
      /* grpc-go: a request above the limit ends the call RESOURCE_EXHAUSTED */
      cc->fail_code = SGRPC_STATUS_RESOURCE_EXHAUSTED;
      cc->fail_message = "Request message larger than the method's maxRequestMessageBytes";
      cc_commit(cc);
      (void)sgrpc_call_cancel(cc->h);
      cc->send_closed = 1;
      if (pcall) *pcall = cc;
      return 0;
    }
    rv = msg_reserve(cc->h, method->codec, method->request_type, request, &frame, &len);
    if (rv == 0) {
      if (HOOKED(cc->ev)) cc_hook_message(cc, SGRPC_HOOK_CLIENT_SEND_MESSAGE, request);
      if (method->codec->pack(method->request_type, request, frame) != len) {
        rv = msg_commit(cc->h, method->codec, method->request_type, request, frame, len, 0);
      } else {
        if (!cc->committed) {
          int br = rt_buf_reserve(client, &cc->mem, &cc->buf, len, &keep);
          if (br == 0) {
            memcpy(keep, frame, len);
            cc->replay_off = cc->buf.len;
          } else {
            cc_commit(cc); /* too large, or no memory, to keep: no retries */
          }
        }
        rv = sgrpc_call_send_commit(cc->h, SGRPC_SEND_END);
      }
    }
    if (rv < 0) {
      /* The engine call exists and its puller will deliver a CLOSE and
       * release it: cancel, and let that CLOSE free the object without
       * running any callback. */
      cc->silent = 1;
      cc->fail_code = SGRPC_STATUS_CANCELLED;
      cc->fail_message = "";
      (void)sgrpc_call_cancel(cc->h);
      return rv;
    }
    cc->send_closed = 1;
  }
  if (pcall) *pcall = cc;
  return 0;
}

int sgrpc_client_call_send(sgrpc_client_call *cc, const void *msg) {
  const sgrpc_method *m;
  uint8_t *frame, *keep;
  size_t len;
  int rv;
  if (!cc) return SGRPC_ERR_INVALID_ARGUMENT;
  m = cc->method;
  if (!m->client_streaming || cc->send_closed) return SGRPC_ERR_INVALID_STATE;
  if (cc->fail_code) return SGRPC_ERR_CALL_CLOSED;
  if ((!cc->committed && !cc->h) || cc_replaying(cc)) {
    /* between attempts, or the open attempt still replays: the message
     * joins the buffer and the replay sends it */
    if (!msg || !m->codec->check(m->request_type, msg)) return SGRPC_ERR_INVALID_ARGUMENT;
    len = m->codec->packed_size(m->request_type, msg);
    if (cc->max_request && len > cc->max_request) return SGRPC_ERR_MESSAGE_TOO_LARGE;
    rv = rt_buf_reserve(cc->client, &cc->mem, &cc->buf, len, &keep);
    if (rv == 1) {
      cc->want_writable = 1;
      return SGRPC_ERR_WOULDBLOCK;
    }
    if (rv < 0) return rv;
    if (m->codec->pack(m->request_type, msg, keep) != len) {
      rt_buf_unreserve(cc->client, &cc->buf, len);
      return SGRPC_ERR_INVALID_ARGUMENT;
    }
    if (HOOKED(cc->ev)) cc_hook_message(cc, SGRPC_HOOK_CLIENT_SEND_MESSAGE, msg);
    return 0;
  }
  if (cc->max_request && msg && m->codec->check(m->request_type, msg) &&
      m->codec->packed_size(m->request_type, msg) > cc->max_request) {
    cc_fail(cc, SGRPC_STATUS_RESOURCE_EXHAUSTED,
            "Request message larger than the method's maxRequestMessageBytes");
    return SGRPC_ERR_MESSAGE_TOO_LARGE;
  }
  rv = msg_reserve(cc->h, m->codec, m->request_type, msg, &frame, &len);
  if (rv < 0) return rv;
  if (HOOKED(cc->ev)) cc_hook_message(cc, SGRPC_HOOK_CLIENT_SEND_MESSAGE, msg);
  if (cc->committed) return msg_commit(cc->h, m->codec, m->request_type, msg, frame, len, 0);
  if (m->codec->pack(m->request_type, msg, frame) != len)
    return msg_commit(cc->h, m->codec, m->request_type, msg, frame, len, 0);
  rv = rt_buf_reserve(cc->client, &cc->mem, &cc->buf, len, &keep);
  if (rv == 0) memcpy(keep, frame, len);
  else cc_commit(cc); /* past the buffer limit (or no memory): committed */
  rv = sgrpc_call_send_commit(cc->h, 0);
  if (rv < 0 && !cc->committed) rt_buf_unreserve(cc->client, &cc->buf, len);
  if (rv == 0 && !cc->committed) cc->replay_off = cc->buf.len;
  return rv;
}

int sgrpc_client_call_close_send(sgrpc_client_call *cc) {
  int rv;
  if (!cc) return SGRPC_ERR_INVALID_ARGUMENT;
  if (cc->send_closed) return SGRPC_ERR_INVALID_STATE;
  if ((!cc->committed && !cc->h) || cc_replaying(cc)) {
    cc->send_closed = 1; /* the replay half-closes after the last request */
    return 0;
  }
  /* the engine sends END_STREAM after the messages it still buffers */
  rv = sgrpc_call_close_send(cc->h);
  if (rv == 0) cc->send_closed = 1;
  return rv;
}

/* Reports the end of a call that has no open attempt (a retry that could
 * not start, a cancel between attempts) and frees it. */
static void cc_end_detached(sgrpc_client_call *cc, int code, const char *message) {
  sgrpc_status_info st;
  memset(&st, 0, sizeof(st));
  st.code = code;
  st.message = message ? message : "";
  st.message_len = strlen(st.message);
  if (HOOKED(cc->ev) && hook_wanted(cc->ev, SGRPC_HOOK_RECV_TRAILING_METADATA)) {
    sgrpc_hook_event hev;
    cc_hook_event_init(cc, &hev, SGRPC_HOOK_RECV_TRAILING_METADATA);
    hev.status_code = st.code;
    hev.status_message = st.message;
    hook_fire(cc->ev, &hev, NULL);
  }
  cc->cb.on_close(cc, &st, NULL, cc->user_data);
  cc_free(cc);
}

int sgrpc_client_call_cancel(sgrpc_client_call *cc) {
  if (!cc) return SGRPC_ERR_INVALID_ARGUMENT;
  cc->cancelled = 1;
  if (!cc->h) {
    /* waiting out a backoff: no attempt to cancel, end the call here */
    cc->client->retry.timer_cancel(cc->client->retry.timer_ctx, cc->timer);
    cc->timer = NULL;
    cc_wait_unlink(cc);
    cc_end_detached(cc, SGRPC_STATUS_CANCELLED, "Cancelled");
    return 0;
  }
  return sgrpc_call_cancel(cc->h);
}

void sgrpc_client_call_set_on_writable(sgrpc_client_call *cc,
                                       void (*on_writable)(sgrpc_client_call *call,
                                                           void *user_data)) {
  if (cc) cc->cb.on_writable = on_writable;
}

const sgrpc_client_callbacks *sgrpc_client_call_callbacks(const sgrpc_client_call *cc) {
  return cc ? &cc->cb : NULL;
}
const sgrpc_method *sgrpc_client_call_method(const sgrpc_client_call *cc) {
  return cc ? cc->method : NULL;
}
sgrpc_call *sgrpc_client_call_handle(const sgrpc_client_call *cc) { return cc ? cc->h : NULL; }

/* Ends the call locally with code/message reported to on_close. */
static void cc_fail(sgrpc_client_call *cc, int code, const char *msg) {
  if (!cc->fail_code) {
    cc->fail_code = code;
    cc->fail_message = msg;
  }
  (void)sgrpc_call_cancel(cc->h);
}

static void on_client_message(sgrpc_client_call *cc, const sgrpc_event *ev) {
  const sgrpc_method *m = cc->method;
  void *msg;
  if (cc->fail_code) return;
  cc_commit(cc);
  if (cc->max_response && ev->u.message.len > cc->max_response) {
    cc_fail(cc, SGRPC_STATUS_RESOURCE_EXHAUSTED,
            "Response message larger than the method's maxResponseMessageBytes");
    return;
  }
  msg = m->codec->unpack(m->response_type, ev->u.message.data, ev->u.message.len, &cc->mem);
  if (!msg) {
    cc_fail(cc, SGRPC_STATUS_INTERNAL, "Failed to decode the response message");
    return;
  }
  if (HOOKED(cc->ev)) cc_hook_message(cc, SGRPC_HOOK_CLIENT_RECV_MESSAGE, msg);
  if (m->server_streaming) {
    cc->cb.on_message(cc, msg, cc->user_data);
    m->codec->free_msg(m->response_type, msg, &cc->mem);
    return;
  }
  if (cc->reply) {
    m->codec->free_msg(m->response_type, msg, &cc->mem);
    cc_fail(cc, SGRPC_STATUS_INTERNAL, "Too many responses for a single-response method");
    return;
  }
  cc->reply = msg;
}

enum { RETRY_NONE, RETRY_NOW, RETRY_LATER };

/* gRFC A6: may the attempt that ended with ev be retried, and when? */
/* gRFC A6 throttling: every attempt of a call with a retry policy that
 * ends OK adds tokenRatio; one that fails with a retryable code, or whose
 * server pushback forbids retrying, takes a token. */
static void cc_throttle_account(sgrpc_client_call *cc, const sgrpc_event *ev) {
  int code = ev->u.close.status.code;
  int64_t ms;
  /* a transparent retry's attempt never reached the server: not counted */
  if (!cc->policy || cc->fail_code || cc->cancelled || cc->silent ||
      (ev->u.close.retry_safe && !cc->client->retry.transparent_off &&
       cc->transparent < SGRPC_RPC_MAX_TRANSPARENT_RETRIES && !cc->committed))
    return;
  if (code == SGRPC_STATUS_OK) {
    rt_throttle_success(cc->client);
  } else if ((code > 0 && code <= 31 && (cc->policy->retryable_codes & (1u << code))) ||
             rt_pushback(ev->u.close.status.md, ev->u.close.status.md_count, &ms) < 0) {
    rt_throttle_failure(cc->client);
  }
}

static int cc_retry_decision(sgrpc_client_call *cc, const sgrpc_event *ev, int64_t now,
                             int64_t *delay) {
  const sgrpc_retry_policy *p = cc->policy;
  sgrpc_rpc_client *cl = cc->client;
  int code = ev->u.close.status.code;
  int64_t ms = 0;
  int pb;
  if (cc->committed || cc->fail_code || cc->cancelled || cc->silent) return RETRY_NONE;
  /* the server never saw it: at once, outside the policy's count */
  if (ev->u.close.retry_safe && !cl->retry.transparent_off &&
      cc->transparent < SGRPC_RPC_MAX_TRANSPARENT_RETRIES) {
    cc->transparent++;
    return RETRY_NOW;
  }
  if (!p) return RETRY_NONE;
  if (code <= 0 || code > 31 || !(p->retryable_codes & (1u << code))) return RETRY_NONE;
  pb = rt_pushback(ev->u.close.status.md, ev->u.close.status.md_count, &ms);
  if (pb < 0) return RETRY_NONE; /* the server said: do not retry */
  if (cc->attempts - cc->transparent >= p->max_attempts) return RETRY_NONE;
  if (!rt_throttle_allows(cl)) return RETRY_NONE;
  if (pb > 0) {
    *delay = ms * 1000000;
    cc->backoff = p->initial_backoff; /* pushback restarts the sequence */
  } else {
    double next = (double)cc->backoff * p->backoff_multiplier;
    *delay = rt_jitter(cl, cc->backoff);
    cc->backoff = next > (double)p->max_backoff ? p->max_backoff : (int64_t)next;
  }
  /* a retry that could only start after the deadline is not made */
  if (cc->co.deadline > 0 && cc->co.deadline != SGRPC_NEVER && now + *delay >= cc->co.deadline)
    return RETRY_NONE;
  return RETRY_LATER;
}

/* The open attempt ended with ev and another will follow: forget it (the
 * puller releases its handle after this CLOSE). */
static void cc_detach(sgrpc_client_call *cc) {
  sgrpc_call_set_callback(cc->h, NULL, NULL);
  cc->h = NULL;
}

static void on_client_close(sgrpc_client_call *cc, const sgrpc_event *ev, int64_t now) {
  sgrpc_status_info st = ev->u.close.status;
  const void *reply = NULL;
  int64_t delay = 0;
  cc_throttle_account(cc, ev);
  switch (cc_retry_decision(cc, ev, now, &delay)) {
  case RETRY_NOW:
    cc_detach(cc);
    if (cc_start_attempt(cc, now) == 0) return;
    break; /* the retry could not start: report this attempt's status */
  case RETRY_LATER: {
    sgrpc_rpc_retry_state *rs = &cc->client->retry;
    char *m = rpc_malloc(&cc->mem, st.message_len + 1);
    if (!m) break; /* cannot keep the status: report it now instead */
    memcpy(m, st.message, st.message_len);
    m[st.message_len] = 0;
    if (rs->timer_start(rs->timer_ctx, now + delay, cc, &cc->timer) < 0) {
      rpc_free(&cc->mem, m);
      break;
    }
    rpc_free(&cc->mem, cc->last_message);
    cc->last_message = m;
    cc->last_code = st.code;
    cc_detach(cc);
    cc_wait_link(cc);
    return;
  }
  default:
    break;
  }
  if (cc->fail_code) {
    st.code = cc->fail_code;
    st.message = cc->fail_message;
    st.message_len = strlen(cc->fail_message);
  } else if (st.code == SGRPC_STATUS_OK && !cc->method->server_streaming) {
    if (!cc->reply) {
      st.code = SGRPC_STATUS_INTERNAL;
      st.message = "No response message received";
      st.message_len = strlen(st.message);
    } else {
      reply = cc->reply;
    }
  }
  if (HOOKED(cc->ev) && !cc->silent &&
      hook_wanted(cc->ev, SGRPC_HOOK_RECV_TRAILING_METADATA)) {
    sgrpc_hook_event hev;
    cc_hook_event_init(cc, &hev, SGRPC_HOOK_RECV_TRAILING_METADATA);
    hev.md = st.md;
    hev.md_count = st.md_count;
    hev.status_code = st.code;
    hev.status_message = st.message;
    hev.status_details = st.details;
    hev.status_details_len = st.details_len;
    hook_fire(cc->ev, &hev, NULL);
  }
  if (!cc->silent) cc->cb.on_close(cc, &st, reply, cc->user_data);
  /* The handle is the event puller's to release, after this CLOSE. */
  if (cc->h) sgrpc_call_set_callback(cc->h, NULL, NULL);
  cc_free(cc);
}

void sgrpc_rpc_timer_fire(void *arg, int64_t now) {
  sgrpc_client_call *cc = arg;
  int rv;
  if (!cc) return;
  cc->timer = NULL;
  cc_wait_unlink(cc);
  cc->now = now;
  rv = cc_start_attempt(cc, now);
  if (rv < 0) {
    cc_end_detached(cc, cc->last_code, cc->last_message);
    return;
  }
  if (cc->want_writable && cc->replay_off >= cc->buf.len && !cc->fail_code) {
    cc->want_writable = 0;
    if (cc->cb.on_writable && !cc->send_closed) cc->cb.on_writable(cc, cc->user_data);
  }
}

void sgrpc_rpc_client_cancel_waiting(sgrpc_rpc_client *c) {
  int n = 0;
  if (!c) return;
  /* each cancel unlinks its call; the bound only guards a broken list */
  while (c->retry.waiting && n++ < 1000000) (void)sgrpc_client_call_cancel(c->retry.waiting);
}

/* The per-call callback (the engine's dispatcher) of a client call. */
static void cc_on_event(const sgrpc_event *ev, void *user_data, int64_t now) {
  sgrpc_client_call *cc = user_data;
  cc->now = now;
  switch (ev->type) {
  case SGRPC_EV_HEADERS:
    cc_commit(cc); /* gRFC A6: response headers commit the call */
    if (HOOKED(cc->ev) && !cc->fail_code &&
        hook_wanted(cc->ev, SGRPC_HOOK_RECV_INITIAL_METADATA)) {
      sgrpc_hook_event hev;
      cc_hook_event_init(cc, &hev, SGRPC_HOOK_RECV_INITIAL_METADATA);
      hev.md = ev->u.headers.md;
      hev.md_count = ev->u.headers.md_count;
      hook_fire(cc->ev, &hev, NULL);
    }
    if (cc->cb.on_headers && !cc->fail_code)
      cc->cb.on_headers(cc, ev->u.headers.md, ev->u.headers.md_count, cc->user_data);
    break;
  case SGRPC_EV_MESSAGE:
    on_client_message(cc, ev);
    break;
  case SGRPC_EV_WRITABLE:
    if (cc_replaying(cc)) {
      /* a retry attempt's replay was pushed back: go on with it */
      int rv = cc_replay(cc);
      if (rv < 0) cc_fail(cc, SGRPC_STATUS_INTERNAL,
                          "Replaying the requests into a retry attempt failed");
      if (rv != 0) break;
      if (!cc->want_writable) break;
      cc->want_writable = 0;
    }
    /* a send of this call returned SGRPC_ERR_WOULDBLOCK and the engine
     * has room again; after close_send or a local failure nobody waits */
    if (cc->cb.on_writable && !cc->send_closed && !cc->fail_code)
      cc->cb.on_writable(cc, cc->user_data);
    break;
  case SGRPC_EV_CLOSE:
    on_client_close(cc, ev, now);
    break;
  default:
    break;
  }
}

int64_t sgrpc_client_call_now(const sgrpc_client_call *cc) { return cc ? cc->now : 0; }
int64_t sgrpc_server_call_now(const sgrpc_server_call *sc) { return sc ? sc->now : 0; }

const char *sgrpc_server_call_user_agent(const sgrpc_server_call *sc) {
  return sc && sc->user_agent ? sc->user_agent : "";
}

int sgrpc_server_call_peer(const sgrpc_server_call *sc, sgrpc_peer *peer) {
  if (!sc || !peer) return SGRPC_ERR_INVALID_ARGUMENT;
  return sgrpc_conn_peer(sc->conn ? sc->conn : sgrpc_call_conn(sc->h), peer);
}
