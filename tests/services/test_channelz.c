/*
 * <sgrpc/channelz.h> on the in-memory pair, called through sgrpc's own
 * generated channelz client, over a fake source (two servers, a channel,
 * sockets with IPv4, IPv6, Unix and unparsable addresses, one under TLS
 * with a certificate): paging and end flags, lookups by id and NOT_FOUND,
 * every field of a socket, a channel's socket refs, no source at all, bad
 * arguments, and every allocation of a reply failed in turn
 * (RESOURCE_EXHAUSTED, nothing leaked).
 */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include <sgrpc/channelz.h>

#include "grpc/channelz/v1/channelz.sgrpc.h"

#define SEC 1000000000LL

/* ---- the fake source ---- */

static const uint8_t fake_der[3] = {0x30, 0x01, 0x00};
static const sgrpc_peer_san fake_sans[1] = {{SGRPC_PEER_SAN_URI, "spiffe://x/y"}};

typedef struct fake_entity {
  sgrpc_channelz_kind kind;
  uint64_t id, parent;
  const char *name;
  int secure;
} fake_entity;

static const fake_entity fakes[] = {
    {SGRPC_CHANNELZ_SERVER, 1, 0, "", 0},
    {SGRPC_CHANNELZ_CHANNEL, 2, 0, "example.com:443", 0},
    {SGRPC_CHANNELZ_SOCKET, 3, 1, "ipv4:10.1.2.3:5000", 1},
    {SGRPC_CHANNELZ_SOCKET, 4, 2, "ipv6:[2001:db8::1]:443", 0},
    {SGRPC_CHANNELZ_SERVER, 5, 0, "second", 0},
    {SGRPC_CHANNELZ_SOCKET, 6, 1, "unix:/run/s.sock", 0},
    {SGRPC_CHANNELZ_SOCKET, 7, 1, "pipe-7", 0},
};
#define NFAKES (sizeof(fakes) / sizeof(fakes[0]))

static int fake_find(void *ctx, sgrpc_channelz_kind kind, uint64_t parent, uint64_t from,
                     sgrpc_channelz_entity *e) {
  size_t i;
  const fake_entity *f = NULL;
  (void)ctx;
  for (i = 0; i < NFAKES; i++)
    if (fakes[i].kind == kind && fakes[i].id >= from && (!parent || fakes[i].parent == parent) &&
        (!f || fakes[i].id < f->id))
      f = &fakes[i];
  if (!f) return 0;
  e->kind = kind;
  e->id = f->id;
  e->parent = f->parent;
  /* the name in the entity's own buffer, as a real source may do */
  snprintf(e->name_buf, sizeof(e->name_buf), "%s", f->name);
  e->name = e->name_buf;
  e->stats.calls_started = f->id * 10;
  e->stats.calls_succeeded = f->id * 6;
  e->stats.calls_failed = f->id * 4;
  e->stats.messages_sent = f->id * 100;
  e->stats.messages_received = f->id * 200;
  e->last_call_started_unix_ns = 1700000000 * SEC + 5;
  e->state = SGRPC_CHANNELZ_STATE_READY;
  if (kind == SGRPC_CHANNELZ_SOCKET) {
    e->has_flow = 1;
    e->flow.local_window = 65535;
    e->flow.remote_window = 1000;
    e->is_server_side = f->parent == 1;
    e->peer.address = f->name;
    if (f->secure) {
      e->peer.secure = 1;
      e->peer.has_cert = 1;
      e->peer.cert_verified = 1;
      e->peer.cert_der = fake_der;
      e->peer.cert_der_len = sizeof(fake_der);
      e->peer.sans = fake_sans;
      e->peer.san_count = 1;
      e->peer.tls_cipher = "TLS_AES_128_GCM_SHA256";
    }
  }
  return 1;
}

/* ---- world ---- */

typedef struct world {
  pair p;
  sgrpc_router *router;
  sgrpc_channelz *cz;
  sgrpc_rpc_client client;
} world;

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  int rv = conn == p->srv ? sgrpc_router_dispatch(w->router, conn, ev, p->now)
                          : sgrpc_event_dispatch(ev, p->now);
  assert_true(rv >= 0);
  if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call);
}

static void world_init(world *w, const sgrpc_mem *mem, int with_source) {
  sgrpc_channelz_source src = {fake_find, NULL};
  memset(w, 0, sizeof(*w));
  assert_int_equal(pair_init(&w->p, NULL, NULL, NULL), 0);
  w->p.on_event = on_event;
  w->p.ud = w;
  assert_int_equal(sgrpc_router_new(&w->router, NULL), 0);
  assert_int_equal(sgrpc_channelz_new(&w->cz, mem), 0);
  if (with_source) assert_int_equal(sgrpc_channelz_set_source(w->cz, &src), 0);
  assert_int_equal(sgrpc_channelz_register(w->cz, w->router), 0);
  sgrpc_rpc_client_init(&w->client, w->p.cli, NULL);
}

static void world_free(world *w) {
  assert_int_equal(sgrpc_conn_call_count(w->p.srv), 0);
  pair_free(&w->p);
  sgrpc_channelz_del(w->cz);
  sgrpc_router_del(w->router);
}

/* ---- replies: packed in the callback, unpacked by the test ---- */

typedef struct reply {
  int done, code;
  uint8_t buf[4096];
  size_t len;
} reply;

static reply R;

static void keep(const sgrpc_status_info *st, const ProtobufCMessage *m) {
  R.done++;
  R.code = st->code;
  R.len = 0;
  if (m) {
    assert_true(protobuf_c_message_get_packed_size(m) <= sizeof(R.buf));
    R.len = protobuf_c_message_pack(m, R.buf);
  }
}

#define DONE_FN(name, Type)                                                               \
  static void name(sgrpc_client_call *call, const sgrpc_status_info *st, const Type *r,   \
                   void *ud) {                                                            \
    (void)call;                                                                           \
    (void)ud;                                                                             \
    keep(st, r ? &r->base : NULL);                                                        \
  }
DONE_FN(d_top, Grpc__Channelz__V1__GetTopChannelsResponse)
DONE_FN(d_servers, Grpc__Channelz__V1__GetServersResponse)
DONE_FN(d_server, Grpc__Channelz__V1__GetServerResponse)
DONE_FN(d_ssockets, Grpc__Channelz__V1__GetServerSocketsResponse)
DONE_FN(d_channel, Grpc__Channelz__V1__GetChannelResponse)
DONE_FN(d_sub, Grpc__Channelz__V1__GetSubchannelResponse)
DONE_FN(d_socket, Grpc__Channelz__V1__GetSocketResponse)

#define CALL(w, fn, req, cb)                                                             \
  do {                                                                                    \
    memset(&R, 0, sizeof(R));                                                             \
    assert_int_equal(fn(&(w)->client, (req), NULL, (w)->p.now, (cb), NULL), 0);          \
    pair_run(&(w)->p, 200);                                                               \
    assert_int_equal(R.done, 1);                                                          \
  } while (0)

static void test_servers_and_paging(void **state) {
  world w;
  Grpc__Channelz__V1__GetServersRequest q = GRPC__CHANNELZ__V1__GET_SERVERS_REQUEST__INIT;
  Grpc__Channelz__V1__GetServerRequest one = GRPC__CHANNELZ__V1__GET_SERVER_REQUEST__INIT;
  Grpc__Channelz__V1__GetServerSocketsRequest sq =
      GRPC__CHANNELZ__V1__GET_SERVER_SOCKETS_REQUEST__INIT;
  Grpc__Channelz__V1__GetServersResponse *r;
  Grpc__Channelz__V1__GetServerResponse *r1;
  Grpc__Channelz__V1__GetServerSocketsResponse *rs;
  (void)state;
  world_init(&w, NULL, 1);
  CALL(&w, grpc__channelz__v1__channelz__get_servers__call, &q, d_servers);
  assert_int_equal(R.code, SGRPC_STATUS_OK);
  r = grpc__channelz__v1__get_servers_response__unpack(NULL, R.len, R.buf);
  assert_non_null(r);
  assert_int_equal(r->n_server, 2);
  assert_true(r->end);
  assert_int_equal(r->server[0]->ref->server_id, 1);
  assert_int_equal(r->server[1]->ref->server_id, 5);
  assert_string_equal(r->server[1]->ref->name, "second"); /* copied, not the reused buffer */
  assert_int_equal(r->server[0]->data->calls_started, 10);
  assert_int_equal(r->server[0]->data->calls_succeeded, 6);
  assert_int_equal(r->server[0]->data->calls_failed, 4);
  assert_int_equal(r->server[0]->data->last_call_started_timestamp->seconds, 1700000000);
  assert_int_equal(r->server[0]->data->last_call_started_timestamp->nanos, 5);
  grpc__channelz__v1__get_servers_response__free_unpacked(r, NULL);

  q.max_results = 1; /* a page of one, then the rest */
  CALL(&w, grpc__channelz__v1__channelz__get_servers__call, &q, d_servers);
  r = grpc__channelz__v1__get_servers_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(r->n_server, 1);
  assert_false(r->end);
  grpc__channelz__v1__get_servers_response__free_unpacked(r, NULL);
  q.start_server_id = 2;
  CALL(&w, grpc__channelz__v1__channelz__get_servers__call, &q, d_servers);
  r = grpc__channelz__v1__get_servers_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(r->n_server, 1);
  assert_int_equal(r->server[0]->ref->server_id, 5);
  assert_true(r->end);
  grpc__channelz__v1__get_servers_response__free_unpacked(r, NULL);
  q.start_server_id = 6; /* past the last: empty, end */
  CALL(&w, grpc__channelz__v1__channelz__get_servers__call, &q, d_servers);
  r = grpc__channelz__v1__get_servers_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(r->n_server, 0);
  assert_true(r->end);
  grpc__channelz__v1__get_servers_response__free_unpacked(r, NULL);

  one.server_id = 5;
  CALL(&w, grpc__channelz__v1__channelz__get_server__call, &one, d_server);
  r1 = grpc__channelz__v1__get_server_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(r1->server->ref->server_id, 5);
  assert_int_equal(r1->server->data->calls_started, 50);
  grpc__channelz__v1__get_server_response__free_unpacked(r1, NULL);
  for (one.server_id = -1; one.server_id <= 2; one.server_id += 3) { /* -1, 2 (a channel) */
    CALL(&w, grpc__channelz__v1__channelz__get_server__call, &one, d_server);
    assert_int_equal(R.code, SGRPC_STATUS_NOT_FOUND);
  }

  sq.server_id = 1;
  CALL(&w, grpc__channelz__v1__channelz__get_server_sockets__call, &sq, d_ssockets);
  rs = grpc__channelz__v1__get_server_sockets_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(rs->n_socket_ref, 3);
  assert_int_equal(rs->socket_ref[0]->socket_id, 3);
  assert_string_equal(rs->socket_ref[0]->name, "ipv4:10.1.2.3:5000");
  assert_int_equal(rs->socket_ref[2]->socket_id, 7);
  assert_true(rs->end);
  grpc__channelz__v1__get_server_sockets_response__free_unpacked(rs, NULL);
  sq.start_socket_id = 4;
  sq.max_results = 1;
  CALL(&w, grpc__channelz__v1__channelz__get_server_sockets__call, &sq, d_ssockets);
  rs = grpc__channelz__v1__get_server_sockets_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(rs->n_socket_ref, 1);
  assert_int_equal(rs->socket_ref[0]->socket_id, 6);
  assert_false(rs->end);
  grpc__channelz__v1__get_server_sockets_response__free_unpacked(rs, NULL);
  sq.server_id = 9;
  CALL(&w, grpc__channelz__v1__channelz__get_server_sockets__call, &sq, d_ssockets);
  assert_int_equal(R.code, SGRPC_STATUS_NOT_FOUND);
  world_free(&w);
}

static void test_channels_and_sockets(void **state) {
  world w;
  Grpc__Channelz__V1__GetTopChannelsRequest tq = GRPC__CHANNELZ__V1__GET_TOP_CHANNELS_REQUEST__INIT;
  Grpc__Channelz__V1__GetChannelRequest cq = GRPC__CHANNELZ__V1__GET_CHANNEL_REQUEST__INIT;
  Grpc__Channelz__V1__GetSubchannelRequest subq = GRPC__CHANNELZ__V1__GET_SUBCHANNEL_REQUEST__INIT;
  Grpc__Channelz__V1__GetSocketRequest sq = GRPC__CHANNELZ__V1__GET_SOCKET_REQUEST__INIT;
  Grpc__Channelz__V1__GetTopChannelsResponse *rt;
  Grpc__Channelz__V1__GetChannelResponse *rc;
  Grpc__Channelz__V1__GetSocketResponse *rs;
  Grpc__Channelz__V1__Socket *s;
  static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  (void)state;
  world_init(&w, NULL, 1);
  CALL(&w, grpc__channelz__v1__channelz__get_top_channels__call, &tq, d_top);
  rt = grpc__channelz__v1__get_top_channels_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(rt->n_channel, 1);
  assert_true(rt->end);
  assert_int_equal(rt->channel[0]->ref->channel_id, 2);
  assert_string_equal(rt->channel[0]->data->target, "example.com:443");
  assert_int_equal(rt->channel[0]->data->state->state,
                   GRPC__CHANNELZ__V1__CHANNEL_CONNECTIVITY_STATE__STATE__READY);
  assert_int_equal(rt->channel[0]->n_socket_ref, 1);
  assert_int_equal(rt->channel[0]->socket_ref[0]->socket_id, 4);
  grpc__channelz__v1__get_top_channels_response__free_unpacked(rt, NULL);

  cq.channel_id = 2;
  CALL(&w, grpc__channelz__v1__channelz__get_channel__call, &cq, d_channel);
  rc = grpc__channelz__v1__get_channel_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(rc->channel->data->calls_failed, 8);
  grpc__channelz__v1__get_channel_response__free_unpacked(rc, NULL);
  cq.channel_id = 1;
  CALL(&w, grpc__channelz__v1__channelz__get_channel__call, &cq, d_channel);
  assert_int_equal(R.code, SGRPC_STATUS_NOT_FOUND);
  subq.subchannel_id = 2;
  CALL(&w, grpc__channelz__v1__channelz__get_subchannel__call, &subq, d_sub);
  assert_int_equal(R.code, SGRPC_STATUS_NOT_FOUND);

  /* TLS, IPv4, a server's socket */
  sq.socket_id = 3;
  CALL(&w, grpc__channelz__v1__channelz__get_socket__call, &sq, d_socket);
  rs = grpc__channelz__v1__get_socket_response__unpack(NULL, R.len, R.buf);
  s = rs->socket;
  assert_int_equal(s->ref->socket_id, 3);
  assert_int_equal(s->data->streams_started, 30);
  assert_int_equal(s->data->streams_succeeded, 18);
  assert_int_equal(s->data->streams_failed, 12);
  assert_int_equal(s->data->messages_sent, 300);
  assert_int_equal(s->data->messages_received, 600);
  assert_int_equal(s->data->local_flow_control_window->value, 65535);
  assert_int_equal(s->data->remote_flow_control_window->value, 1000);
  assert_non_null(s->data->last_remote_stream_created_timestamp);
  assert_null(s->data->last_local_stream_created_timestamp);
  assert_int_equal(s->remote->address_case, GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_TCPIP_ADDRESS);
  assert_int_equal(s->remote->tcpip_address->ip_address.len, 4);
  assert_memory_equal(s->remote->tcpip_address->ip_address.data, "\x0a\x01\x02\x03", 4);
  assert_int_equal(s->remote->tcpip_address->port, 5000);
  assert_int_equal(s->security->model_case, GRPC__CHANNELZ__V1__SECURITY__MODEL_TLS);
  assert_string_equal(s->security->tls->other_name, "TLS_AES_128_GCM_SHA256");
  assert_int_equal(s->security->tls->remote_certificate.len, sizeof(fake_der));
  assert_memory_equal(s->security->tls->remote_certificate.data, fake_der, sizeof(fake_der));
  grpc__channelz__v1__get_socket_response__free_unpacked(rs, NULL);
  /* IPv6, a channel's socket, no TLS */
  sq.socket_id = 4;
  CALL(&w, grpc__channelz__v1__channelz__get_socket__call, &sq, d_socket);
  rs = grpc__channelz__v1__get_socket_response__unpack(NULL, R.len, R.buf);
  s = rs->socket;
  assert_int_equal(s->remote->tcpip_address->ip_address.len, 16);
  assert_memory_equal(s->remote->tcpip_address->ip_address.data, v6, 16);
  assert_int_equal(s->remote->tcpip_address->port, 443);
  assert_non_null(s->data->last_local_stream_created_timestamp);
  assert_null(s->security);
  grpc__channelz__v1__get_socket_response__free_unpacked(rs, NULL);
  /* a Unix socket, and an address that is neither */
  sq.socket_id = 6;
  CALL(&w, grpc__channelz__v1__channelz__get_socket__call, &sq, d_socket);
  rs = grpc__channelz__v1__get_socket_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(rs->socket->remote->address_case,
                   GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_UDS_ADDRESS);
  assert_string_equal(rs->socket->remote->uds_address->filename, "/run/s.sock");
  grpc__channelz__v1__get_socket_response__free_unpacked(rs, NULL);
  sq.socket_id = 7;
  CALL(&w, grpc__channelz__v1__channelz__get_socket__call, &sq, d_socket);
  rs = grpc__channelz__v1__get_socket_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(rs->socket->remote->address_case,
                   GRPC__CHANNELZ__V1__ADDRESS__ADDRESS_OTHER_ADDRESS);
  assert_string_equal(rs->socket->remote->other_address->name, "pipe-7");
  grpc__channelz__v1__get_socket_response__free_unpacked(rs, NULL);
  sq.socket_id = 2; /* a channel's id is no socket */
  CALL(&w, grpc__channelz__v1__channelz__get_socket__call, &sq, d_socket);
  assert_int_equal(R.code, SGRPC_STATUS_NOT_FOUND);
  world_free(&w);
}

static void test_no_source_and_arguments(void **state) {
  world w;
  Grpc__Channelz__V1__GetTopChannelsRequest tq = GRPC__CHANNELZ__V1__GET_TOP_CHANNELS_REQUEST__INIT;
  Grpc__Channelz__V1__GetTopChannelsResponse *rt;
  sgrpc_channelz_source bad = {NULL, NULL};
  sgrpc_mem partial;
  sgrpc_channelz *cz = NULL;
  (void)state;
  world_init(&w, NULL, 0);
  CALL(&w, grpc__channelz__v1__channelz__get_top_channels__call, &tq, d_top);
  assert_int_equal(R.code, SGRPC_STATUS_OK);
  rt = grpc__channelz__v1__get_top_channels_response__unpack(NULL, R.len, R.buf);
  assert_int_equal(rt->n_channel, 0);
  assert_true(rt->end);
  grpc__channelz__v1__get_top_channels_response__free_unpacked(rt, NULL);
  assert_int_equal(sgrpc_channelz_set_source(w.cz, &bad), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_channelz_set_source(NULL, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_channelz_set_source(w.cz, NULL), 0);
  assert_int_equal(sgrpc_channelz_register(w.cz, w.router), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_channelz_register(NULL, w.router), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_channelz_new(NULL, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  memset(&partial, 0, sizeof(partial));
  partial.malloc = NULL;
  partial.free = NULL;
  partial.calloc = NULL;
  partial.realloc = NULL;
  partial.user_data = &partial;
  assert_int_equal(sgrpc_channelz_new(&cz, &partial), SGRPC_ERR_INVALID_ARGUMENT);
  assert_null(cz);
  assert_string_equal(sgrpc_channelz_service()->name, "grpc.channelz.v1.Channelz");
  assert_int_equal(sgrpc_channelz_service()->n_methods, 7);
  sgrpc_channelz_del(NULL);
  world_free(&w);
}

/* Every allocation of the object and of each reply failed in turn. */
static void test_allocation_failures(void **state) {
  Grpc__Channelz__V1__GetTopChannelsRequest tq = GRPC__CHANNELZ__V1__GET_TOP_CHANNELS_REQUEST__INIT;
  Grpc__Channelz__V1__GetSocketRequest sq = GRPC__CHANNELZ__V1__GET_SOCKET_REQUEST__INIT;
  Grpc__Channelz__V1__GetServersRequest vq = GRPC__CHANNELZ__V1__GET_SERVERS_REQUEST__INIT;
  Grpc__Channelz__V1__GetServerSocketsRequest ssq =
      GRPC__CHANNELZ__V1__GET_SERVER_SOCKETS_REQUEST__INIT;
  int which;
  failmem fm;
  sgrpc_mem mem;
  sgrpc_channelz *cz = NULL;
  (void)state;
  failmem_init(&fm, &mem);
  fm.count = 0;
  fm.fail_at = 1;
  assert_int_equal(sgrpc_channelz_new(&cz, &mem), SGRPC_ERR_NOMEM);
  assert_null(cz);
  sq.socket_id = 3;
  ssq.server_id = 1;
  for (which = 0; which < 4; which++) {
    long n;
    int ok = 0;
    for (n = 1; n < 200 && !ok; n++) {
      world w;
      failmem_init(&fm, &mem);
      world_init(&w, &mem, 1);
      fm.count = 0;
      fm.fail_at = n;
      memset(&R, 0, sizeof(R));
      if (which == 0)
        assert_int_equal(grpc__channelz__v1__channelz__get_top_channels__call(
                             &w.client, &tq, NULL, w.p.now, d_top, NULL),
                         0);
      else if (which == 1)
        assert_int_equal(grpc__channelz__v1__channelz__get_socket__call(&w.client, &sq, NULL,
                                                                        w.p.now, d_socket, NULL),
                         0);
      else if (which == 2)
        assert_int_equal(grpc__channelz__v1__channelz__get_servers__call(
                             &w.client, &vq, NULL, w.p.now, d_servers, NULL),
                         0);
      else
        assert_int_equal(grpc__channelz__v1__channelz__get_server_sockets__call(
                             &w.client, &ssq, NULL, w.p.now, d_ssockets, NULL),
                         0);
      pair_run(&w.p, 200);
      assert_int_equal(R.done, 1);
      fm.fail_at = 0;
      if (R.code == SGRPC_STATUS_OK) ok = 1;
      else assert_int_equal(R.code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
      world_free(&w);
      assert_int_equal(fm.live, 0);
    }
    assert_true(ok);
    assert_true(n > 3); /* replies took several allocations, each failed once */
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_servers_and_paging),
      cmocka_unit_test(test_channels_and_sockets),
      cmocka_unit_test(test_no_source_and_arguments),
      cmocka_unit_test(test_allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
