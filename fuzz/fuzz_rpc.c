/*
 * fuzz_rpc / fuzz_services: the rpc layer's server side (router, codecs,
 * the generated dispatch) fed requests through the in-memory test channel
 * (<sgrpc/testing.h>).
 *
 *   fuzz_rpc       the route_guide example service (generated stubs,
 *                  protobuf-c codecs, all four RPC kinds) on a router
 *   fuzz_services  health (Check, Watch), reflection (v1, v1alpha) and
 *                  channelz (over a fixed source) built with -DFZ_SERVICES
 *
 * The client declares every method with the raw codec, so request bytes
 * reach the server's decoders unchanged. The input is a script; each op
 * takes one byte (and its operands):
 *   0 start   path index, flags (bit0: client streams, bit1: server
 *             streams, bit2: one metadata entry, bit3: a deadline of
 *             flags>>4 ms), [key, value], and for a single request its bytes
 *   1 send    slot, bytes          2 close_send slot    3 cancel slot
 *   4 run the channel              5 advance the clock by byte ms
 * Bytes are a length byte (255: two more bytes of length) and that many
 * bytes. A harness finding aborts: a call closed twice, a callback for a
 * slot not open, the channel busy after its round bound, a call left open
 * after the channel was deleted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/testing.h>

#ifdef FZ_SERVICES
#include <sgrpc/channelz.h>
#include <sgrpc/health.h>
#include <sgrpc/reflection.h>
#else
#include "route_guide_service.h"
#endif

#define FZ_SLOTS 8
#define FZ_MS 1000000LL

static void fz_fail(const char *what) {
  fprintf(stderr, "fuzz harness: %s\n", what);
  abort();
}

static const char *const fz_paths[] = {
#ifdef FZ_SERVICES
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.health.v1.Health/List",
#else
    "/routeguide.RouteGuide/GetFeature",
    "/routeguide.RouteGuide/ListFeatures",
    "/routeguide.RouteGuide/RecordRoute",
    "/routeguide.RouteGuide/RouteChat",
    "/routeguide.RouteGuide/Nope",
#endif
    "/x",
    "no-slash",
    "/routeguide.RouteGuide/",
#ifdef FZ_SERVICES
    "/grpc.channelz.v1.Channelz/GetTopChannels",
    "/grpc.channelz.v1.Channelz/GetServers",
    "/grpc.channelz.v1.Channelz/GetServer",
    "/grpc.channelz.v1.Channelz/GetServerSockets",
    "/grpc.channelz.v1.Channelz/GetChannel",
    "/grpc.channelz.v1.Channelz/GetSubchannel",
    "/grpc.channelz.v1.Channelz/GetSocket",
#endif
};
#define FZ_NPATHS (sizeof(fz_paths) / sizeof(fz_paths[0]))

typedef struct fz_script {
  const uint8_t *p;
  size_t len, off;
} fz_script;

static int fz_byte(fz_script *s) { return s->off < s->len ? s->p[s->off++] : -1; }

/* A length-prefixed run of bytes; b->len 0 at the end of input. */
static void fz_bytes(fz_script *s, sgrpc_bytes *b) {
  int n = fz_byte(s);
  size_t len;
  if (n < 0) n = 0;
  len = (size_t)n;
  if (n == 255) {
    int hi = fz_byte(s), lo = fz_byte(s);
    len = (size_t)(hi < 0 ? 0 : hi) << 8 | (size_t)(lo < 0 ? 0 : lo);
  }
  if (len > s->len - s->off) len = s->len - s->off;
  b->data = s->p + s->off;
  b->len = len;
  s->off += len;
}

typedef struct fz_slot {
  sgrpc_client_call *call;
  sgrpc_method method;
  int open;
} fz_slot;

static fz_slot fz_slots[FZ_SLOTS];
static int fz_open_calls;

static void fz_on_message(sgrpc_client_call *call, const void *msg, void *ud) {
  const sgrpc_bytes *b = msg;
  fz_slot *sl = ud;
  volatile uint8_t sink = 0;
  size_t i;
  if (!sl->open || sl->call != call) fz_fail("message for a slot not open");
  for (i = 0; i < b->len; i++) sink ^= b->data[i];
  (void)sink;
}

static void fz_on_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                        void *ud) {
  fz_slot *sl = ud;
  if (!sl->open || sl->call != call) fz_fail("close for a slot not open, or twice");
  if (st->message && strlen(st->message) > 1 << 20) fz_fail("status message runs away");
  (void)reply;
  /* SGRPC_FUZZ_TRACE=1 shows what a seed reaches */
  if (getenv("SGRPC_FUZZ_TRACE"))
    fprintf(stderr, "%s: status %d \"%s\"\n", sl->method.path, st->code,
            st->message ? st->message : "");
  sl->open = 0;
  sl->call = NULL;
  fz_open_calls--;
}

static const sgrpc_client_callbacks fz_cbs = {NULL, fz_on_message, fz_on_close, {NULL, NULL},
                                              NULL};

static void fz_start(sgrpc_test_channel *ch, fz_script *s) {
  int pi = fz_byte(s), flags = fz_byte(s), slot, rc;
  sgrpc_md md;
  sgrpc_bytes key, value, req;
  sgrpc_rpc_opts opts;
  fz_slot *sl = NULL;
  char keybuf[64];
  if (pi < 0 || flags < 0) return;
  for (slot = 0; slot < FZ_SLOTS; slot++)
    if (!fz_slots[slot].open) {
      sl = &fz_slots[slot];
      break;
    }
  memset(&opts, 0, sizeof(opts));
  if (flags & 4) {
    fz_bytes(s, &key);
    fz_bytes(s, &value);
    /* keys are C strings for the engine: copy with a terminator */
    if (key.len >= sizeof(keybuf)) key.len = sizeof(keybuf) - 1;
    memcpy(keybuf, key.data, key.len);
    keybuf[key.len] = '\0';
    md.key = keybuf;
    md.key_len = strlen(keybuf);
    md.value = value.data;
    md.value_len = value.len;
    opts.md = &md;
    opts.md_count = 1;
  }
  if (flags & 8) opts.deadline = sgrpc_test_channel_now(ch) + (int64_t)(flags >> 4) * FZ_MS + 1;
  if (!(flags & 1)) fz_bytes(s, &req);
  if (!sl) return;
  memset(&sl->method, 0, sizeof(sl->method));
  sl->method.path = fz_paths[(size_t)pi % FZ_NPATHS];
  sl->method.client_streaming = flags & 1;
  sl->method.server_streaming = (flags >> 1) & 1;
  sl->method.codec = &sgrpc_codec_raw;
  opts.user_data = sl;
  rc = sgrpc_rpc_call_start(sgrpc_test_channel_client(ch), &sl->method,
                            (flags & 1) ? NULL : &req, &opts, sgrpc_test_channel_now(ch),
                            &fz_cbs, &sl->call);
  if (rc == 0) {
    sl->open = 1;
    fz_open_calls++;
  }
}

static fz_slot *fz_pick(fz_script *s) {
  int b = fz_byte(s);
  fz_slot *sl;
  if (b < 0) return NULL;
  sl = &fz_slots[b % FZ_SLOTS];
  return sl->open ? sl : NULL;
}

static void fz_run(sgrpc_test_channel *ch) {
  int rc = sgrpc_test_channel_run(ch, 0);
  if (rc == SGRPC_ERR_WOULDBLOCK) fz_fail("channel still busy after 10000 rounds");
}

#ifdef FZ_SERVICES
typedef struct fz_server {
  sgrpc_health *health;
  sgrpc_reflection *refl;
  sgrpc_channelz *cz;
} fz_server;

/* channelz's source: ids 1..12, kinds by id % 3 (server, channel,
 * socket), sockets owned by the id before theirs, with addresses of
 * every shape and a TLS socket, so requests with any ids page through
 * real entries. */
static int fz_cz_find(void *ctx, sgrpc_channelz_kind kind, uint64_t parent, uint64_t from,
                      sgrpc_channelz_entity *e) {
  static const char *const addrs[] = {"ipv4:1.2.3.4:5", "ipv6:[::1]:6", "unix:/s", "x",
                                      "ipv4:bad:1", "ipv6:[zz]:1"};
  static const uint8_t der[2] = {0x30, 0x00};
  uint64_t id;
  (void)ctx;
  for (id = from ? from : 1; id <= 12; id++) {
    sgrpc_channelz_kind k = (sgrpc_channelz_kind)(id % 3 + 1);
    if (k != kind || (parent && (k != SGRPC_CHANNELZ_SOCKET || id - 1 != parent))) continue;
    e->kind = k;
    e->id = id;
    e->parent = k == SGRPC_CHANNELZ_SOCKET ? id - 1 : 0;
    e->name = addrs[id % 6];
    e->stats.calls_started = id;
    e->last_call_started_unix_ns = (int64_t)id * 1000000007;
    e->state = (int)(id % 7);
    e->has_flow = (int)(id & 1);
    e->peer.address = addrs[id % 6];
    e->peer.secure = id % 4 == 0;
    e->peer.has_cert = id % 4 == 0;
    e->peer.cert_der = der;
    e->peer.cert_der_len = sizeof(der);
    e->peer.tls_cipher = id % 8 == 0 ? "C" : NULL;
    e->is_server_side = (int)(id & 2);
    return 1;
  }
  return 0;
}

static int fz_server_init(fz_server *sv, sgrpc_router *router) {
  memset(sv, 0, sizeof(*sv));
  if (sgrpc_health_new(&sv->health, NULL) != 0 || sgrpc_reflection_new(&sv->refl, NULL) != 0)
    return -1;
  if (sgrpc_health_set(sv->health, "", SGRPC_HEALTH_SERVING) != 0 ||
      sgrpc_health_set(sv->health, "a", SGRPC_HEALTH_NOT_SERVING) != 0)
    return -1;
  if (sgrpc_health_register(sv->health, router) != 0) return -1;
  if (sgrpc_reflection_add_service(sv->refl, sgrpc_health_service()) != 0) return -1;
  {
    sgrpc_channelz_source src = {fz_cz_find, NULL};
    if (sgrpc_channelz_new(&sv->cz, NULL) != 0 || sgrpc_channelz_set_source(sv->cz, &src) != 0 ||
        sgrpc_channelz_register(sv->cz, router) != 0)
      return -1;
  }
  return sgrpc_reflection_register(sv->refl, router);
}

/* a health status change while calls run: Watch streams get updates */
static void fz_server_poke(fz_server *sv, int b) {
  (void)sgrpc_health_set(sv->health, (b & 1) ? "a" : "",
                         (b & 2) ? SGRPC_HEALTH_SERVING : SGRPC_HEALTH_NOT_SERVING);
}

static void fz_server_fini(fz_server *sv) {
  sgrpc_reflection_del(sv->refl);
  sgrpc_health_del(sv->health);
  sgrpc_channelz_del(sv->cz);
}
#else
typedef struct fz_server {
  Routeguide__RouteGuide_SgrpcServer impl;
} fz_server;

static int fz_server_init(fz_server *sv, sgrpc_router *router) {
  route_guide_service_init(&sv->impl);
  return routeguide__route_guide__sgrpc_register(router, &sv->impl, NULL);
}

static void fz_server_poke(fz_server *sv, int b) {
  (void)sv;
  (void)b;
}

static void fz_server_fini(fz_server *sv) { (void)sv; }
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sgrpc_router *router = NULL;
  sgrpc_test_channel *ch = NULL;
  fz_server sv;
  fz_script s = {data, size, 0};
  int ops = 0, op;
  memset(fz_slots, 0, sizeof(fz_slots));
  fz_open_calls = 0;
  if (sgrpc_router_new(&router, NULL) != 0) fz_fail("router_new");
  if (fz_server_init(&sv, router) != 0) fz_fail("server init");
  if (sgrpc_test_channel_new(&ch, router, NULL) != 0) fz_fail("test_channel_new");
  while ((op = fz_byte(&s)) >= 0 && ops++ < 256) {
    fz_slot *sl;
    switch (op % 7) {
    case 0:
      fz_start(ch, &s);
      break;
    case 1: {
      sgrpc_bytes b;
      sl = fz_pick(&s);
      fz_bytes(&s, &b);
      if (sl) (void)sgrpc_client_call_send(sl->call, &b);
      break;
    }
    case 2:
      if ((sl = fz_pick(&s)) != NULL) (void)sgrpc_client_call_close_send(sl->call);
      break;
    case 3:
      if ((sl = fz_pick(&s)) != NULL) (void)sgrpc_client_call_cancel(sl->call);
      break;
    case 4:
      fz_run(ch);
      break;
    case 5: {
      int b = fz_byte(&s);
      (void)sgrpc_test_channel_advance(ch, (int64_t)(b < 0 ? 1 : b) * FZ_MS);
      break;
    }
    default:
      fz_server_poke(&sv, fz_byte(&s));
      break;
    }
  }
  fz_run(ch);
  /* a second past every deadline the script could set */
  (void)sgrpc_test_channel_advance(ch, 1000 * FZ_MS);
  sgrpc_test_channel_del(ch);
  if (fz_open_calls != 0) fz_fail("a call left open after the channel was deleted");
  sgrpc_router_del(router);
  fz_server_fini(&sv);
  return 0;
}
