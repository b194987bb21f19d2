/*
 * grpc.channelz.v1.Channelz on the router, answered from a source that
 * the transport provides (see include/sgrpc/channelz.h).
 */
#include <sgrpc/channelz.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/channelz/v1/channelz.sgrpc.h"
#include "rpc_mem.h"

/* Pages hold at most this many entries (grpc-go's page size). */
#define CZ_PAGE_MAX 100

typedef Grpc__Channelz__V1__ChannelRef ChannelRef;
typedef Grpc__Channelz__V1__ServerRef ServerRef;
typedef Grpc__Channelz__V1__SocketRef SocketRef;
typedef Grpc__Channelz__V1__Channel Channel;
typedef Grpc__Channelz__V1__ChannelData ChannelData;
typedef Grpc__Channelz__V1__Server Server;
typedef Grpc__Channelz__V1__ServerData ServerData;
typedef Grpc__Channelz__V1__Socket Socket;
typedef Grpc__Channelz__V1__SocketData SocketData;
typedef Grpc__Channelz__V1__Address Address;
typedef Grpc__Channelz__V1__Security Security;
typedef Google__Protobuf__Timestamp Timestamp;
typedef Google__Protobuf__Int64Value Int64Value;

struct sgrpc_channelz {
  sgrpc_mem mem;
  sgrpc_channelz_source src;
  int has_src;
};

/* ---- a reply's memory: every piece freed together after the reply ---- */

typedef struct arena_chunk {
  struct arena_chunk *next;
  max_align_t data[];
} arena_chunk;

typedef struct arena {
  const sgrpc_mem *mem;
  arena_chunk *chunks;
  int failed;
} arena;

static void *arena_get(arena *a, size_t n) {
  arena_chunk *c;
  if (a->failed) return NULL;
  c = rpc_calloc(a->mem, sizeof(*c) + n);
  if (!c) {
    a->failed = 1;
    return NULL;
  }
  c->next = a->chunks;
  a->chunks = c;
  return c->data;
}

static void arena_free(arena *a) {
  while (a->chunks) {
    arena_chunk *c = a->chunks;
    a->chunks = c->next;
    rpc_free(a->mem, c);
  }
}

/* Entity names may live in the entity itself (name_buf), which the next
 * lookup overwrites: replies keep copies. */
static char *arena_str(arena *a, const char *str) {
  size_t n = strlen(str) + 1;
  char *p = arena_get(a, n);
  if (p) memcpy(p, str, n);
  return p;
}

/* ---- the object ---- */

int sgrpc_channelz_new(sgrpc_channelz **pcz, const sgrpc_mem *mem) {
  sgrpc_mem m;
  sgrpc_channelz *cz;
  if (!pcz) return SGRPC_ERR_INVALID_ARGUMENT;
  *pcz = NULL;
  if (sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  cz = rpc_calloc(&m, sizeof(*cz));
  if (!cz) return SGRPC_ERR_NOMEM;
  cz->mem = m;
  *pcz = cz;
  return 0;
}

void sgrpc_channelz_del(sgrpc_channelz *cz) {
  if (cz) rpc_free(&cz->mem, cz);
}

int sgrpc_channelz_set_source(sgrpc_channelz *cz, const sgrpc_channelz_source *src) {
  if (!cz || (src && !src->find)) return SGRPC_ERR_INVALID_ARGUMENT;
  if (src) cz->src = *src;
  cz->has_src = src != NULL;
  return 0;
}

const sgrpc_service_desc *sgrpc_channelz_service(void) {
  return &grpc__channelz__v1__channelz__sgrpc_service;
}

static int cz_find(const sgrpc_channelz *cz, sgrpc_channelz_kind kind, uint64_t parent,
                   uint64_t from, sgrpc_channelz_entity *e) {
  memset(e, 0, sizeof(*e));
  if (!cz->has_src) return 0;
  if (cz->src.find(cz->src.ctx, kind, parent, from, e) != 1) return 0;
  if (!e->name) e->name = "";
  if (!e->peer.address) e->peer.address = "";
  return 1;
}

/* An id from a request: channelz ids are int64, ours are positive. */
static uint64_t req_id(int64_t id) { return id > 0 ? (uint64_t)id : 0; }

static size_t page_size(int64_t max) {
  return max <= 0 || max > CZ_PAGE_MAX ? CZ_PAGE_MAX : (size_t)max;
}

static int64_t i64(uint64_t v) { return v > INT64_MAX ? INT64_MAX : (int64_t)v; }

/* ---- building blocks ---- */

static Timestamp *timestamp(arena *a, int64_t unix_ns) {
  Timestamp *t;
  if (unix_ns <= 0) return NULL;
  t = arena_get(a, sizeof(*t));
  if (!t) return NULL;
  google__protobuf__timestamp__init(t);
  t->seconds = unix_ns / 1000000000;
  t->nanos = (int32_t)(unix_ns % 1000000000);
  return t;
}

static SocketRef *socket_ref(arena *a, const sgrpc_channelz_entity *e) {
  SocketRef *r = arena_get(a, sizeof(*r));
  if (!r) return NULL;
  grpc__channelz__v1__socket_ref__init(r);
  r->socket_id = i64(e->id);
  r->name = arena_str(a, e->name);
  if (!r->name) return NULL;
  return r;
}

static Server *server_msg(arena *a, const sgrpc_channelz_entity *e) {
  Server *s = arena_get(a, sizeof(*s));
  ServerRef *r = arena_get(a, sizeof(*r));
  ServerData *d = arena_get(a, sizeof(*d));
  if (!s || !r || !d) return NULL;
  grpc__channelz__v1__server__init(s);
  grpc__channelz__v1__server_ref__init(r);
  grpc__channelz__v1__server_data__init(d);
  r->server_id = i64(e->id);
  r->name = arena_str(a, e->name);
  d->calls_started = i64(e->stats.calls_started);
  d->calls_succeeded = i64(e->stats.calls_succeeded);
  d->calls_failed = i64(e->stats.calls_failed);
  d->last_call_started_timestamp = timestamp(a, e->last_call_started_unix_ns);
  s->ref = r;
  s->data = d;
  return a->failed ? NULL : s;
}

/* A channel with the refs of all its sockets. */
static Channel *channel_msg(const sgrpc_channelz *cz, arena *a, const sgrpc_channelz_entity *e) {
  Channel *c = arena_get(a, sizeof(*c));
  ChannelRef *r = arena_get(a, sizeof(*r));
  ChannelData *d = arena_get(a, sizeof(*d));
  Grpc__Channelz__V1__ChannelConnectivityState *st = arena_get(a, sizeof(*st));
  sgrpc_channelz_entity s;
  uint64_t from = 1;
  size_t n = 0, i;
  if (!c || !r || !d || !st) return NULL;
  grpc__channelz__v1__channel__init(c);
  grpc__channelz__v1__channel_ref__init(r);
  grpc__channelz__v1__channel_data__init(d);
  grpc__channelz__v1__channel_connectivity_state__init(st);
  r->channel_id = i64(e->id);
  r->name = arena_str(a, e->name);
  if (!r->name) return NULL;
  st->state = (Grpc__Channelz__V1__ChannelConnectivityState__State)(
      e->state >= 0 && e->state <= SGRPC_CHANNELZ_STATE_SHUTDOWN ? e->state : 0);
  d->state = st;
  d->target = r->name;
  d->calls_started = i64(e->stats.calls_started);
  d->calls_succeeded = i64(e->stats.calls_succeeded);
  d->calls_failed = i64(e->stats.calls_failed);
  d->last_call_started_timestamp = timestamp(a, e->last_call_started_unix_ns);
  c->ref = r;
  c->data = d;
  while (cz_find(cz, SGRPC_CHANNELZ_SOCKET, e->id, from, &s)) {
    n++;
    from = s.id + 1;
  }
  if (n) {
    c->socket_ref = arena_get(a, n * sizeof(*c->socket_ref));
    if (!c->socket_ref) return NULL;
    for (i = 0, from = 1; i < n && cz_find(cz, SGRPC_CHANNELZ_SOCKET, e->id, from, &s); i++) {
      c->socket_ref[i] = socket_ref(a, &s);
      from = s.id + 1;
    }
    c->n_socket_ref = i;
  }
  return a->failed ? NULL : c;
}

/* "ipv4:1.2.3.4:5", "ipv6:[::1]:5" or "unix:/path" as a channelz Address. */
static Address *address_msg(arena *a, const char *text) {
  Address *ad;
  size_t len = strlen(text);
  if (!len) return NULL;
  ad = arena_get(a, sizeof(*ad));
  if (!ad) return NULL;
  grpc__channelz__v1__address__init(ad);
  if (strncmp(text, "unix:", 5) == 0) {
    Grpc__Channelz__V1__Address__UdsAddress *u = arena_get(a, sizeof(*u));
    if (!u) return NULL;
    grpc__channelz__v1__address__uds_address__init(u);
    u->filename = (char *)text + 5;
    ad->address_case = GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_UDS_ADDRESS;
    ad->uds_address = u;
    return ad;
  }
  {
    Grpc__Channelz__V1__Address__TcpIpAddress *t;
    const char *host = NULL, *port = strrchr(text, ':');
    size_t hlen = 0;
    char hbuf[64];
    uint8_t *ip = arena_get(a, 16);
    int v6 = 0;
    if (!ip) return NULL;
    if (strncmp(text, "ipv4:", 5) == 0) {
      host = text + 5;
      hlen = port && port > host ? (size_t)(port - host) : 0;
    } else if (strncmp(text, "ipv6:[", 6) == 0) {
      host = text + 6;
      hlen = port && port > host + 1 && port[-1] == ']' ? (size_t)(port - 1 - host) : 0;
      v6 = 1;
    }
    if (!host || !hlen || hlen >= sizeof(hbuf)) goto other;
    memcpy(hbuf, host, hlen);
    hbuf[hlen] = 0;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, hbuf, ip) != 1) goto other;
    t = arena_get(a, sizeof(*t));
    if (!t) return NULL;
    grpc__channelz__v1__address__tcp_ip_address__init(t);
    t->ip_address.data = ip;
    t->ip_address.len = v6 ? 16 : 4;
    t->port = (int32_t)atoi(port + 1);
    ad->address_case = GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_TCPIP_ADDRESS;
    ad->tcpip_address = t;
    return ad;
  }
other : {
  Grpc__Channelz__V1__Address__OtherAddress *o = arena_get(a, sizeof(*o));
  if (!o) return NULL;
  grpc__channelz__v1__address__other_address__init(o);
  o->name = (char *)text;
  ad->address_case = GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_OTHER_ADDRESS;
  ad->other_address = o;
  return ad;
}
}

static Int64Value *int64_value(arena *a, int64_t v) {
  Int64Value *w = arena_get(a, sizeof(*w));
  if (!w) return NULL;
  google__protobuf__int64_value__init(w);
  w->value = v;
  return w;
}

static Socket *socket_msg(arena *a, const sgrpc_channelz_entity *e) {
  Socket *s = arena_get(a, sizeof(*s));
  SocketData *d = arena_get(a, sizeof(*d));
  if (!s || !d) return NULL;
  grpc__channelz__v1__socket__init(s);
  grpc__channelz__v1__socket_data__init(d);
  s->ref = socket_ref(a, e);
  d->streams_started = i64(e->stats.calls_started);
  d->streams_succeeded = i64(e->stats.calls_succeeded);
  d->streams_failed = i64(e->stats.calls_failed);
  d->messages_sent = i64(e->stats.messages_sent);
  d->messages_received = i64(e->stats.messages_received);
  /* a server's calls are streams the peer created */
  if (e->is_server_side)
    d->last_remote_stream_created_timestamp = timestamp(a, e->last_call_started_unix_ns);
  else
    d->last_local_stream_created_timestamp = timestamp(a, e->last_call_started_unix_ns);
  if (e->has_flow) {
    d->local_flow_control_window = int64_value(a, e->flow.local_window);
    d->remote_flow_control_window = int64_value(a, e->flow.remote_window);
  }
  s->data = d;
  s->remote = address_msg(a, e->peer.address);
  if (e->peer.secure) {
    Security *sec = arena_get(a, sizeof(*sec));
    Grpc__Channelz__V1__Security__Tls *tls = arena_get(a, sizeof(*tls));
    if (!sec || !tls) return NULL;
    grpc__channelz__v1__security__init(sec);
    grpc__channelz__v1__security__tls__init(tls);
    if (e->peer.tls_cipher) {
      /* the TLS library's own spelling, not necessarily the IANA name */
      tls->cipher_suite_case = GRPC__CHANNELZ__V1__SECURITY__TLS__CIPHER_SUITE_OTHER_NAME;
      tls->other_name = (char *)e->peer.tls_cipher;
    }
    if (e->peer.has_cert) {
      tls->remote_certificate.data = (uint8_t *)e->peer.cert_der;
      tls->remote_certificate.len = e->peer.cert_der_len;
    }
    sec->model_case = GRPC__CHANNELZ__V1__SECURITY__MODEL_TLS;
    sec->tls = tls;
    s->security = sec;
  }
  return a->failed ? NULL : s;
}

/* Sends the reply, or the status that says why it cannot be. */
static void finish(sgrpc_server_call *call, arena *a, const void *reply) {
  if (a->failed || !reply)
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "Out of memory");
  else if (sgrpc_server_call_reply(call, reply) < 0)
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED,
                                 "channelz answer could not be sent");
  arena_free(a);
}

/* ---- handlers ---- */

static void on_get_top_channels(sgrpc_server_call *call,
                                const Grpc__Channelz__V1__GetTopChannelsRequest *q, void *ud) {
  const sgrpc_channelz *cz = ud;
  Grpc__Channelz__V1__GetTopChannelsResponse r =
      GRPC__CHANNELZ__V1__GET_TOP_CHANNELS_RESPONSE__INIT;
  arena a = {&cz->mem, NULL, 0};
  sgrpc_channelz_entity e;
  size_t max = page_size(q->max_results);
  uint64_t from = req_id(q->start_channel_id);
  r.channel = arena_get(&a, max * sizeof(*r.channel));
  while (r.channel && r.n_channel < max && cz_find(cz, SGRPC_CHANNELZ_CHANNEL, 0, from, &e)) {
    Channel *c = channel_msg(cz, &a, &e);
    if (!c) break;
    r.channel[r.n_channel++] = c;
    from = e.id + 1;
  }
  r.end = !cz_find(cz, SGRPC_CHANNELZ_CHANNEL, 0, from, &e);
  finish(call, &a, &r);
}

static void on_get_servers(sgrpc_server_call *call, const Grpc__Channelz__V1__GetServersRequest *q,
                           void *ud) {
  const sgrpc_channelz *cz = ud;
  Grpc__Channelz__V1__GetServersResponse r = GRPC__CHANNELZ__V1__GET_SERVERS_RESPONSE__INIT;
  arena a = {&cz->mem, NULL, 0};
  sgrpc_channelz_entity e;
  size_t max = page_size(q->max_results);
  uint64_t from = req_id(q->start_server_id);
  r.server = arena_get(&a, max * sizeof(*r.server));
  while (r.server && r.n_server < max && cz_find(cz, SGRPC_CHANNELZ_SERVER, 0, from, &e)) {
    Server *s = server_msg(&a, &e);
    if (!s) break;
    r.server[r.n_server++] = s;
    from = e.id + 1;
  }
  r.end = !cz_find(cz, SGRPC_CHANNELZ_SERVER, 0, from, &e);
  finish(call, &a, &r);
}

/* Finds exactly id of kind; 0 when there is no such entity. */
static int find_id(const sgrpc_channelz *cz, sgrpc_channelz_kind kind, int64_t id,
                   sgrpc_channelz_entity *e) {
  uint64_t want = req_id(id);
  return want && cz_find(cz, kind, 0, want, e) && e->id == want;
}

static void on_get_server(sgrpc_server_call *call, const Grpc__Channelz__V1__GetServerRequest *q,
                          void *ud) {
  const sgrpc_channelz *cz = ud;
  Grpc__Channelz__V1__GetServerResponse r = GRPC__CHANNELZ__V1__GET_SERVER_RESPONSE__INIT;
  arena a = {&cz->mem, NULL, 0};
  sgrpc_channelz_entity e;
  if (!find_id(cz, SGRPC_CHANNELZ_SERVER, q->server_id, &e)) {
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_NOT_FOUND, "no such server");
    return;
  }
  r.server = server_msg(&a, &e);
  finish(call, &a, &r);
}

static void on_get_server_sockets(sgrpc_server_call *call,
                                  const Grpc__Channelz__V1__GetServerSocketsRequest *q,
                                  void *ud) {
  const sgrpc_channelz *cz = ud;
  Grpc__Channelz__V1__GetServerSocketsResponse r =
      GRPC__CHANNELZ__V1__GET_SERVER_SOCKETS_RESPONSE__INIT;
  arena a = {&cz->mem, NULL, 0};
  sgrpc_channelz_entity e;
  size_t max = page_size(q->max_results);
  uint64_t from = req_id(q->start_socket_id), server;
  if (!find_id(cz, SGRPC_CHANNELZ_SERVER, q->server_id, &e)) {
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_NOT_FOUND, "no such server");
    return;
  }
  server = e.id;
  r.socket_ref = arena_get(&a, max * sizeof(*r.socket_ref));
  while (r.socket_ref && r.n_socket_ref < max &&
         cz_find(cz, SGRPC_CHANNELZ_SOCKET, server, from, &e)) {
    SocketRef *s = socket_ref(&a, &e);
    if (!s) break;
    r.socket_ref[r.n_socket_ref++] = s;
    from = e.id + 1;
  }
  r.end = !cz_find(cz, SGRPC_CHANNELZ_SOCKET, server, from, &e);
  finish(call, &a, &r);
}

static void on_get_channel(sgrpc_server_call *call, const Grpc__Channelz__V1__GetChannelRequest *q,
                           void *ud) {
  const sgrpc_channelz *cz = ud;
  Grpc__Channelz__V1__GetChannelResponse r = GRPC__CHANNELZ__V1__GET_CHANNEL_RESPONSE__INIT;
  arena a = {&cz->mem, NULL, 0};
  sgrpc_channelz_entity e;
  if (!find_id(cz, SGRPC_CHANNELZ_CHANNEL, q->channel_id, &e)) {
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_NOT_FOUND, "no such channel");
    return;
  }
  r.channel = channel_msg(cz, &a, &e);
  finish(call, &a, &r);
}

static void on_get_subchannel(sgrpc_server_call *call,
                              const Grpc__Channelz__V1__GetSubchannelRequest *q, void *ud) {
  (void)q;
  (void)ud;
  (void)sgrpc_server_call_fail(call, SGRPC_STATUS_NOT_FOUND, "no such subchannel");
}

static void on_get_socket(sgrpc_server_call *call, const Grpc__Channelz__V1__GetSocketRequest *q,
                          void *ud) {
  const sgrpc_channelz *cz = ud;
  Grpc__Channelz__V1__GetSocketResponse r = GRPC__CHANNELZ__V1__GET_SOCKET_RESPONSE__INIT;
  arena a = {&cz->mem, NULL, 0};
  sgrpc_channelz_entity e;
  if (!find_id(cz, SGRPC_CHANNELZ_SOCKET, q->socket_id, &e)) {
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_NOT_FOUND, "no such socket");
    return;
  }
  r.socket = socket_msg(&a, &e);
  finish(call, &a, &r);
}

int sgrpc_channelz_register(sgrpc_channelz *cz, sgrpc_router *router) {
  Grpc__Channelz__V1__Channelz_SgrpcServer impl;
  if (!cz || !router) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(&impl, 0, sizeof(impl));
  impl.get_top_channels = on_get_top_channels;
  impl.get_servers = on_get_servers;
  impl.get_server = on_get_server;
  impl.get_server_sockets = on_get_server_sockets;
  impl.get_channel = on_get_channel;
  impl.get_subchannel = on_get_subchannel;
  impl.get_socket = on_get_socket;
  return grpc__channelz__v1__channelz__sgrpc_register(router, &impl, cz);
}
