/*
 * The service fuzz harness (<sgrpc/service_fuzz.h>): fuzzer bytes become
 * a script of client calls played through the in-memory test channel
 * into the application's handlers, with invariants checked per input.
 *
 * Script layout: a sequence of ops, one byte each (op % 8), then its
 * operands. Every read past the end of the input gives 0, so any input
 * is a valid script.
 *   0, 1  start: method byte (index over all services' methods; one more
 *         value names a path no service has), flags byte (bit0: one
 *         metadata entry, bit1: a deadline of 1 + byte ms, bit2: gzip
 *         requests, bit3: corrupt the request, bit4: fail the allocation
 *         1 + byte % 64 from now, through the harness's allocator: in
 *         the engines, the router, the channel or a request's decoding),
 *         then for methods with a single request the request (below)
 *   2     send: slot byte, then a request for that call's method
 *   3     close_send: slot byte          4  cancel: slot byte
 *   5     run the channel                6  advance the clock: byte ms
 *   7     send raw bytes: slot byte, length byte, bytes
 * A request of a protobuf-c method is built field by field from the
 * descriptor: per field a presence byte (bit0), for repeated fields a
 * count (byte % 5), for each value bytes that pick a value of the
 * field's type (varints, fixed, zigzag, strings of printable bytes,
 * enum values from the descriptor, nested messages down to depth 4).
 * Required fields are always written.
 */
#include <sgrpc/service_fuzz.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/protobuf.h>
#include <sgrpc/testing.h>

#if !defined(_WIN32)
#include <dirent.h>
#include <sys/stat.h>
#endif

#include "router_internal.h"

#define SF_SLOTS 8
#define SF_MAX_METHODS 256
#define SF_MAX_SERVER_CALLS 512
#define SF_MAX_OPS 256
#define SF_MAX_DEPTH 4
#define SF_MS 1000000LL
/* a request larger than this is cut (keeps each input fast) */
#define SF_MAX_MSG 8192

/* ------------------------------------------------------------------ */
/* Counting allocator                                                  */
/* ------------------------------------------------------------------ */

/* Each block carries its size in front, so frees can be counted too. */
typedef union sf_hdr {
  size_t size;
  max_align_t align;
} sf_hdr;

typedef struct sf_counter {
  size_t blocks;
  size_t bytes;
  /* allocations left before the one that fails (0: none fails) */
  unsigned fail_in;
  unsigned failed;
} sf_counter;

/* One-shot failure injection: returns nonzero when this allocation is
 * the one the script chose to fail. */
static int sf_trace_on;

static int sf_inject(sf_counter *c) {
  if (!c->fail_in) return 0;
  if (--c->fail_in) return 0;
  c->failed++;
  if (sf_trace_on) fprintf(stderr, "  (an allocation fails here)\n");
  return 1;
}

static void *sf_malloc(size_t n, void *ud) {
  sf_counter *c = ud;
  sf_hdr *h;
  if (sf_inject(c)) return NULL;
  h = malloc(sizeof(sf_hdr) + n);
  if (!h) return NULL;
  h->size = n;
  c->blocks++;
  c->bytes += n;
  return h + 1;
}

static void sf_free(void *p, void *ud) {
  sf_counter *c = ud;
  sf_hdr *h;
  if (!p) return;
  h = (sf_hdr *)p - 1;
  c->blocks--;
  c->bytes -= h->size;
  free(h);
}

static void *sf_calloc(size_t nmemb, size_t size, void *ud) {
  void *p;
  if (size && nmemb > ((size_t)-1 - sizeof(sf_hdr)) / size) return NULL;
  p = sf_malloc(nmemb * size, ud);
  if (p) memset(p, 0, nmemb * size);
  return p;
}

static void *sf_realloc(void *p, size_t n, void *ud) {
  sf_counter *c = ud;
  sf_hdr *h, *nh;
  if (!p) return sf_malloc(n, ud);
  if (sf_inject(c)) return NULL;
  h = (sf_hdr *)p - 1;
  nh = realloc(h, sizeof(sf_hdr) + n);
  if (!nh) return NULL;
  c->bytes -= nh->size;
  c->bytes += n;
  nh->size = n;
  return nh + 1;
}

/* ------------------------------------------------------------------ */
/* State of one input                                                  */
/* ------------------------------------------------------------------ */

typedef struct sf_slot {
  sgrpc_client_call *call;
  const sgrpc_method *method; /* the service's own method */
  int open;
  int closes;
} sf_slot;

/* one server call, by stream id (the test channel has one connection) */
typedef struct sf_server_call {
  int32_t stream;
  int state; /* 1 running, 2 on_close ran */
} sf_server_call;

/* a route's handler as the application registered it */
typedef struct sf_route {
  const sgrpc_method *method;
  sgrpc_handler orig;
} sf_route;

typedef struct sf_state {
  const sgrpc_service_fuzz_target *target;
  const uint8_t *p;
  size_t len, off;
  sf_counter counter;
  sgrpc_mem mem;
  const sgrpc_method *methods[SF_MAX_METHODS]; /* the services' methods */
  sgrpc_method raw[SF_MAX_METHODS];            /* the same, raw codec */
  size_t n_methods;
  sf_slot slots[SF_SLOTS];
  sf_server_call server[SF_MAX_SERVER_CALLS];
  size_t n_server;
  sf_route routes[SF_MAX_METHODS];
  size_t n_routes;
  int trace;
  int violated;
  char why[256];
} sf_state;

/* The harness is not re-entrant (documented): one state per process. */
static sf_state sf;

static void sf_violation(const char *fmt, ...) {
  va_list ap;
  if (sf.violated) return;
  sf.violated = 1;
  va_start(ap, fmt);
  vsnprintf(sf.why, sizeof(sf.why), fmt, ap);
  va_end(ap);
}

static void sf_trace(const char *fmt, ...) {
  va_list ap;
  if (!sf.trace) return;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

static unsigned sf_byte(void) { return sf.off < sf.len ? sf.p[sf.off++] : 0; }

static uint64_t sf_bytes_le(unsigned n) {
  uint64_t v = 0;
  unsigned i;
  for (i = 0; i < n; i++) v |= (uint64_t)sf_byte() << (8 * i);
  return v;
}

/* ------------------------------------------------------------------ */
/* Structure-aware requests from protobuf-c descriptors                */
/* ------------------------------------------------------------------ */

typedef struct sf_buf {
  uint8_t data[SF_MAX_MSG];
  size_t len;
  int full;
} sf_buf;

static void sf_put(sf_buf *b, const void *d, size_t n) {
  if (b->full || n > SF_MAX_MSG - b->len) {
    b->full = 1;
    return;
  }
  memcpy(b->data + b->len, d, n);
  b->len += n;
}

static void sf_varint(sf_buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) tmp[n] |= 0x80;
    n++;
  } while (v);
  sf_put(b, tmp, n);
}

static void sf_tag(sf_buf *b, uint32_t id, unsigned wire) {
  sf_varint(b, (uint64_t)id << 3 | wire);
}

/* An integer worth trying: small, a boundary, or raw input bytes. */
static uint64_t sf_number(void) {
  unsigned sel = sf_byte();
  switch (sel & 7) {
  case 0:
    return 0;
  case 1:
    return 1;
  case 2:
    return (uint64_t)-1;
  case 3:
    return 0x7fffffff;
  case 4:
    return 0x80000000u;
  case 5:
    return sf_bytes_le(8);
  default:
    return sf_bytes_le(1 + (sel >> 3) % 4);
  }
}

static void sf_message(sf_buf *b, const ProtobufCMessageDescriptor *d, int depth);

static int sf_packable(ProtobufCType t) {
  return t != PROTOBUF_C_TYPE_STRING && t != PROTOBUF_C_TYPE_BYTES &&
         t != PROTOBUF_C_TYPE_MESSAGE;
}

/* One value of field f, without its tag. */
static void sf_value(sf_buf *b, const ProtobufCFieldDescriptor *f, int depth) {
  uint64_t v;
  uint8_t tmp[8];
  unsigned i, n;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
    /* negative int32 values are sign-extended to 10 bytes on the wire */
    sf_varint(b, (uint64_t)(int64_t)(int32_t)sf_number());
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_UINT64:
    sf_varint(b, sf_number());
    break;
  case PROTOBUF_C_TYPE_UINT32:
    sf_varint(b, (uint32_t)sf_number());
    break;
  case PROTOBUF_C_TYPE_SINT32: {
    int32_t s = (int32_t)sf_number();
    sf_varint(b, (uint32_t)(((uint32_t)s << 1) ^ (uint32_t)(s >> 31)));
    break;
  }
  case PROTOBUF_C_TYPE_SINT64: {
    int64_t s = (int64_t)sf_number();
    sf_varint(b, ((uint64_t)s << 1) ^ (uint64_t)(s >> 63));
    break;
  }
  case PROTOBUF_C_TYPE_BOOL:
    sf_varint(b, sf_byte() & 1);
    break;
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumDescriptor *e = f->descriptor;
    unsigned sel = sf_byte();
    if (e && e->n_values && sel < 240)
      sf_varint(b, (uint64_t)(int64_t)e->values[sel % e->n_values].value);
    else
      sf_varint(b, (uint64_t)(int64_t)(int32_t)sf_number());
    break;
  }
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    v = sf_number();
    for (i = 0; i < 4; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    sf_put(b, tmp, 4);
    break;
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    v = sf_number();
    for (i = 0; i < 8; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    sf_put(b, tmp, 8);
    break;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
    n = sf_byte() % 33;
    sf_varint(b, n);
    for (i = 0; i < n; i++) {
      uint8_t c = (uint8_t)sf_byte();
      /* strings stay printable ASCII (valid UTF-8) */
      if (f->type == PROTOBUF_C_TYPE_STRING) c = (uint8_t)(0x20 + c % 0x5f);
      sf_put(b, &c, 1);
    }
    break;
  case PROTOBUF_C_TYPE_MESSAGE: {
    sf_buf *sub = malloc(sizeof(*sub));
    if (!sub) {
      b->full = 1;
      return;
    }
    sub->len = 0;
    sub->full = 0;
    if (depth < SF_MAX_DEPTH && f->descriptor) sf_message(sub, f->descriptor, depth + 1);
    sf_varint(b, sub->len);
    sf_put(b, sub->data, sub->len);
    if (sub->full) b->full = 1;
    free(sub);
    break;
  }
  }
}

static unsigned sf_wire_type(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    return 5;
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 1;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE:
    return 2;
  default:
    return 0;
  }
}

static void sf_message(sf_buf *b, const ProtobufCMessageDescriptor *d, int depth) {
  unsigned i;
  for (i = 0; i < d->n_fields && !b->full; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    unsigned presence = sf_byte();
    if (f->label != PROTOBUF_C_LABEL_REQUIRED && !(presence & 1)) continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      unsigned k, count = sf_byte() % 5;
      if ((f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) && sf_packable(f->type)) {
        sf_buf *sub = malloc(sizeof(*sub));
        if (!sub) {
          b->full = 1;
          return;
        }
        sub->len = 0;
        sub->full = 0;
        for (k = 0; k < count; k++) sf_value(sub, f, depth);
        sf_tag(b, f->id, 2);
        sf_varint(b, sub->len);
        sf_put(b, sub->data, sub->len);
        if (sub->full) b->full = 1;
        free(sub);
      } else {
        for (k = 0; k < count; k++) {
          sf_tag(b, f->id, sf_wire_type(f->type));
          sf_value(b, f, depth);
        }
      }
    } else {
      sf_tag(b, f->id, sf_wire_type(f->type));
      sf_value(b, f, depth);
    }
  }
  /* now and then an unknown field, which decoders must skip */
  if (!b->full && depth == 0 && (sf_byte() & 0x0f) == 0x0f) {
    sf_tag(b, 536870911u, 0);
    sf_varint(b, sf_number());
  }
}

/* The request bytes for method m into b; corrupt flips or cuts them. */
static void sf_request(sf_buf *b, const sgrpc_method *m, int corrupt) {
  b->len = 0;
  b->full = 0;
  if (m->codec == &sgrpc_codec_protobuf && m->request_type) {
    sf_message(b, m->request_type, 0);
  } else {
    unsigned i, n = sf_byte();
    for (i = 0; i < n; i++) {
      uint8_t c = (uint8_t)sf_byte();
      sf_put(b, &c, 1);
    }
  }
  if (corrupt && b->len) {
    unsigned how = sf_byte();
    if (how & 1) b->len = sf_byte() % b->len;
    else b->data[sf_byte() % b->len] ^= (uint8_t)(1u << (how >> 1) % 8);
  }
}

/* ------------------------------------------------------------------ */
/* Server side: every handler wrapped                                  */
/* ------------------------------------------------------------------ */

static sf_server_call *sf_server_find(sgrpc_server_call *call, int create) {
  int32_t stream = sgrpc_call_stream_id(sgrpc_server_call_handle(call));
  size_t i;
  for (i = 0; i < sf.n_server; i++)
    if (sf.server[i].stream == stream) return &sf.server[i];
  if (!create || sf.n_server == SF_MAX_SERVER_CALLS) return NULL;
  sf.server[sf.n_server].stream = stream;
  sf.server[sf.n_server].state = 1;
  return &sf.server[sf.n_server++];
}

static void sf_on_request(sgrpc_server_call *call, const void *msg, void *ud) {
  sf_route *r = ud;
  sf_server_call *sc = sf_server_find(call, 1);
  if (sc && sc->state == 2)
    sf_violation("%s: on_request ran after the call's on_close (stream %d)", r->method->path,
                 (int)sc->stream);
  r->orig.on_request(call, msg, r->orig.user_data);
}

static void sf_on_writable(sgrpc_server_call *call, void *ud) {
  sf_route *r = ud;
  sf_server_call *sc = sf_server_find(call, 1);
  if (sc && sc->state == 2)
    sf_violation("%s: on_writable ran after the call's on_close (stream %d)", r->method->path,
                 (int)sc->stream);
  if (r->orig.on_writable) r->orig.on_writable(call, r->orig.user_data);
}

static void sf_on_server_close(sgrpc_server_call *call, const sgrpc_status_info *st, void *ud) {
  sf_route *r = ud;
  sf_server_call *sc = sf_server_find(call, 1);
  if (sc && sc->state == 2)
    sf_violation("%s: on_close ran twice (stream %d)", r->method->path, (int)sc->stream);
  if (sc) sc->state = 2;
  sf_trace("  server %s stream %d ended: %s\n", r->method->path, sc ? (int)sc->stream : -1,
           sgrpc_status_name(st ? st->code : 2));
  if (r->orig.on_close) r->orig.on_close(call, st, r->orig.user_data);
}

static void sf_wrap(const sgrpc_method *m, sgrpc_handler *h, void *ctx) {
  sf_route *r;
  (void)ctx;
  if (sf.n_routes == SF_MAX_METHODS) return;
  r = &sf.routes[sf.n_routes++];
  r->method = m;
  r->orig = *h;
  h->on_request = sf_on_request;
  h->on_close = sf_on_server_close;
  /* the router treats a handler without on_writable differently: keep it so */
  h->on_writable = r->orig.on_writable ? sf_on_writable : NULL;
  h->user_data = r;
  /* typed stays: generated trampolines read it from the route */
}

/* ------------------------------------------------------------------ */
/* Client side                                                         */
/* ------------------------------------------------------------------ */

static void sf_on_message(sgrpc_client_call *call, const void *msg, void *ud) {
  sf_slot *s = ud;
  const sgrpc_bytes *b = msg;
  if (!s->open || s->call != call) sf_violation("a response arrived for a call that had ended");
  sf_trace("  %s: response of %zu bytes\n", s->method->path, b ? b->len : (size_t)0);
}

static void sf_on_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                        void *ud) {
  sf_slot *s = ud;
  (void)reply;
  s->closes++;
  if (s->closes > 1 || !s->open || s->call != call)
    sf_violation("%s: a call got a second status", s->method ? s->method->path : "?");
  if (!st || st->code < 0 || st->code > 16)
    sf_violation("%s: status code %d outside 0..16", s->method->path, st ? st->code : -1);
  sf_trace("  %s ended: %s \"%s\"\n", s->method->path, sgrpc_status_name(st ? st->code : 2),
           st && st->message ? st->message : "");
  s->open = 0;
  s->call = NULL;
}

static const sgrpc_client_callbacks sf_cbs = {NULL, sf_on_message, sf_on_close, {NULL, NULL},
                                              NULL};

static const sgrpc_method sf_unknown = {"/sgrpc.fuzz.Unknown/Method", NULL, NULL, 0, 0,
                                        &sgrpc_codec_raw};

static sf_slot *sf_pick(void) {
  sf_slot *s = &sf.slots[sf_byte() % SF_SLOTS];
  return s->open ? s : NULL;
}

static void sf_start(sgrpc_test_channel *ch, sf_buf *req) {
  unsigned mi = sf_byte() % (unsigned)(sf.n_methods + 1);
  unsigned flags = sf_byte();
  const sgrpc_method *m = mi < sf.n_methods ? sf.methods[mi] : &sf_unknown;
  const sgrpc_method *wire = mi < sf.n_methods ? &sf.raw[mi] : &sf_unknown;
  sgrpc_rpc_opts opts;
  sgrpc_md md;
  static const char *const keys[] = {"x-fuzz", "x-fuzz-bin", "authorization", "x-request-id"};
  char value[17];
  sgrpc_bytes body;
  sf_slot *s = NULL;
  size_t i;
  int rc;
  memset(&opts, 0, sizeof(opts));
  if (flags & 1) {
    unsigned k = sf_byte(), n = sf_byte() % 17;
    for (i = 0; i < n; i++) value[i] = (char)(0x20 + sf_byte() % 0x5f);
    value[n] = '\0';
    md = sgrpc_md_str(keys[k % 4], value);
    opts.md = &md;
    opts.md_count = 1;
  }
  if (flags & 2) opts.deadline = sgrpc_test_channel_now(ch) + (1 + (int64_t)sf_byte()) * SF_MS;
  if (flags & 4) opts.encoding = "gzip";
  if (flags & 16) sf.counter.fail_in = 1 + sf_byte() % 64;
  if (!wire->client_streaming) sf_request(req, m, (flags & 8) != 0);
  for (i = 0; i < SF_SLOTS; i++)
    if (!sf.slots[i].open) {
      s = &sf.slots[i];
      break;
    }
  if (!s) return;
  memset(s, 0, sizeof(*s));
  s->method = m;
  opts.user_data = s;
  body.data = req->data;
  body.len = req->len;
  rc = sgrpc_rpc_call_start(sgrpc_test_channel_client(ch), wire,
                            wire->client_streaming ? NULL : &body, &opts,
                            sgrpc_test_channel_now(ch), &sf_cbs, &s->call);
  sf_trace("start %s%s%s%s%s: %d\n", m->path, (flags & 2) ? " deadline" : "",
           (flags & 4) ? " gzip" : "", (flags & 8) ? " corrupt" : "",
           (flags & 16) ? " fail-alloc" : "", rc);
  if (rc == 0) s->open = 1;
}

static void sf_send(sf_buf *req, int raw) {
  sf_slot *s = sf_pick();
  const sgrpc_method *m = s ? s->method : &sf_unknown;
  sgrpc_bytes body;
  if (raw) {
    unsigned i, n = sf_byte();
    req->len = 0;
    req->full = 0;
    for (i = 0; i < n; i++) {
      uint8_t c = (uint8_t)sf_byte();
      sf_put(req, &c, 1);
    }
  } else {
    sf_request(req, m, 0);
  }
  if (!s) return;
  body.data = req->data;
  body.len = req->len;
  sf_trace("send %s %zu bytes%s: %d\n", m->path, req->len, raw ? " (raw)" : "",
           sgrpc_client_call_send(s->call, &body));
}

static void sf_run(sgrpc_test_channel *ch) {
  int rc = sgrpc_test_channel_run(ch, 0);
  if (rc == SGRPC_ERR_WOULDBLOCK) sf_violation("the channel was still busy after 10000 rounds");
}

/* ------------------------------------------------------------------ */
/* One input                                                           */
/* ------------------------------------------------------------------ */

int sgrpc_service_fuzz_run(const sgrpc_service_fuzz_target *t, const uint8_t *data, size_t size,
                           char *why, size_t why_cap) {
  sgrpc_router *router = NULL;
  sgrpc_test_channel *ch = NULL;
  sgrpc_test_channel_opts copts;
  sf_buf *req;
  size_t i, j;
  int ops = 0, rc = 0;
  if (why && why_cap) why[0] = '\0';
  if (!t || !t->services || !t->n_services || !t->register_handlers || (!data && size))
    return SGRPC_ERR_INVALID_ARGUMENT;
  memset(&sf, 0, sizeof(sf));
  sf.target = t;
  sf.p = data;
  sf.len = size;
  sf.trace = getenv("SGRPC_FUZZ_TRACE") != NULL;
  sf_trace_on = sf.trace;
  sf.mem.user_data = &sf.counter;
  sf.mem.malloc = sf_malloc;
  sf.mem.free = sf_free;
  sf.mem.calloc = sf_calloc;
  sf.mem.realloc = sf_realloc;
  for (i = 0; i < t->n_services; i++) {
    const sgrpc_service_desc *d = t->services[i];
    if (!d) return SGRPC_ERR_INVALID_ARGUMENT;
    for (j = 0; j < d->n_methods && sf.n_methods < SF_MAX_METHODS; j++) {
      sf.methods[sf.n_methods] = &d->methods[j];
      /* the client sends bytes made here unchanged, and takes replies raw */
      sf.raw[sf.n_methods] = d->methods[j];
      sf.raw[sf.n_methods].codec = &sgrpc_codec_raw;
      sf.n_methods++;
    }
  }
  req = malloc(sizeof(*req));
  if (!req) return SGRPC_ERR_NOMEM;

  if (sgrpc_router_new(&router, &sf.mem) != 0) {
    free(req);
    return SGRPC_ERR_NOMEM;
  }
  rc = t->register_handlers(router, t->ctx);
  if (rc != 0) {
    sf_violation("register_handlers returned %d", rc);
    goto out;
  }
  sg_router_each_handler(router, sf_wrap, NULL);
  memset(&copts, 0, sizeof(copts));
  copts.mem = &sf.mem;
  copts.server_settings = t->server_settings;
  rc = sgrpc_test_channel_new(&ch, router, &copts);
  if (rc != 0) {
    sf_violation("sgrpc_test_channel_new returned %d", rc);
    goto out;
  }
  while (sf.off < sf.len && ops++ < SF_MAX_OPS && !sf.violated) {
    sf_slot *s;
    switch (sf_byte() % 8) {
    case 0:
    case 1:
      sf_start(ch, req);
      break;
    case 2:
      sf_send(req, 0);
      break;
    case 3:
      if ((s = sf_pick()) != NULL) {
        sf_trace("close_send %s: %d\n", s->method->path, sgrpc_client_call_close_send(s->call));
      }
      break;
    case 4:
      if ((s = sf_pick()) != NULL) {
        sf_trace("cancel %s: %d\n", s->method->path, sgrpc_client_call_cancel(s->call));
      }
      break;
    case 5:
      sf_trace("run\n");
      sf_run(ch);
      break;
    case 6: {
      unsigned ms = sf_byte();
      sf_trace("advance %u ms\n", ms);
      (void)sgrpc_test_channel_advance(ch, (int64_t)ms * SF_MS);
      break;
    }
    default:
      sf_send(req, 1);
      break;
    }
  }
  sf.counter.fail_in = 0;
  sf_run(ch);
  /* past every deadline the script could set: deadline-bound calls end */
  (void)sgrpc_test_channel_advance(ch, 300 * 1000 * SF_MS);
out:
  sgrpc_test_channel_del(ch);
  sgrpc_router_del(router);
  free(req);
  for (i = 0; i < SF_SLOTS; i++)
    if (sf.slots[i].open)
      sf_violation("%s: a call never got a status", sf.slots[i].method->path);
  for (i = 0; i < sf.n_server; i++)
    if (sf.server[i].state != 2)
      sf_violation("server call on stream %d never ran on_close", (int)sf.server[i].stream);
  if (sf.counter.blocks != 0)
    sf_violation("leak: %zu blocks (%zu bytes) of the harness allocator left after everything "
                 "was freed",
                 sf.counter.blocks, sf.counter.bytes);
  if (t->reset) t->reset(t->ctx);
  if (sf.violated) {
    if (why && why_cap) snprintf(why, why_cap, "%s", sf.why);
    return SGRPC_SERVICE_FUZZ_VIOLATION;
  }
  return 0;
}

int sgrpc_service_fuzz_one(const sgrpc_service_fuzz_target *t, const uint8_t *data, size_t size) {
  char why[256];
  int rc = sgrpc_service_fuzz_run(t, data, size, why, sizeof(why));
  if (rc == SGRPC_SERVICE_FUZZ_VIOLATION) {
    fprintf(stderr, "sgrpc service fuzz: invariant violated: %s\n", why);
    abort();
  }
  if (rc < 0) {
    fprintf(stderr, "sgrpc service fuzz: bad target (%s)\n", sgrpc_strerror(rc));
    abort();
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* main() without libFuzzer                                            */
/* ------------------------------------------------------------------ */

static int sf_run_file(const sgrpc_service_fuzz_target *t, const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  char why[256];
  int rc;
  if (!f) {
    fprintf(stderr, "%s: cannot open\n", path);
    return 2;
  }
  for (;;) {
    size_t n;
    if (len == cap) {
      uint8_t *nb;
      cap = cap ? cap * 2 : 4096;
      nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return 2;
      }
      buf = nb;
    }
    n = fread(buf + len, 1, cap - len, f);
    if (n == 0) break;
    len += n;
  }
  fclose(f);
  rc = sgrpc_service_fuzz_run(t, buf, len, why, sizeof(why));
  free(buf);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", path, rc > 0 ? why : sgrpc_strerror(rc));
    return 1;
  }
  return 0;
}

static int sf_run_path(const sgrpc_service_fuzz_target *t, const char *path, size_t *count) {
#if !defined(_WIN32)
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    int rc = 0;
    if (!d) {
      fprintf(stderr, "%s: cannot open\n", path);
      return 2;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
      char full[4096];
      if (e->d_name[0] == '.') continue;
      snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
      rc = sf_run_file(t, full);
      (*count)++;
    }
    closedir(d);
    return rc;
  }
#endif
  (*count)++;
  return sf_run_file(t, path);
}

int sgrpc_service_fuzz_main(const sgrpc_service_fuzz_target *t, int argc, char **argv) {
  unsigned long runs = 0, seed = 1, max_len = 512, k;
  size_t count = 0;
  int i, rc = 0;
  uint8_t *buf;
  char why[256];
  for (i = 1; i < argc && rc == 0; i++) {
    if (!strncmp(argv[i], "-runs=", 6)) runs = strtoul(argv[i] + 6, NULL, 10);
    else if (!strncmp(argv[i], "-seed=", 6)) seed = strtoul(argv[i] + 6, NULL, 10);
    else if (!strncmp(argv[i], "-max_len=", 9)) max_len = strtoul(argv[i] + 9, NULL, 10);
    else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: %s [-runs=N] [-seed=S] [-max_len=L] [FILE|DIR]...\n", argv[0]);
      return 2;
    } else rc = sf_run_path(t, argv[i], &count);
  }
  if (rc != 0) return rc;
  if (max_len == 0) max_len = 1;
  buf = malloc(max_len);
  if (!buf) return 2;
  {
    /* xorshift64*: the same inputs for the same seed everywhere */
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (k = 0; k < runs && rc == 0; k++) {
      size_t len, b;
      x ^= x >> 12;
      x ^= x << 25;
      x ^= x >> 27;
      len = (size_t)((x * 0x2545f4914f6cdd1dull) >> 33) % (max_len + 1);
      for (b = 0; b < len; b++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        buf[b] = (uint8_t)((x * 0x2545f4914f6cdd1dull) >> 56);
      }
      rc = sgrpc_service_fuzz_run(t, buf, len, why, sizeof(why));
      if (rc != 0) {
        fprintf(stderr, "run %lu (seed %lu): %s\n", k, seed, rc > 0 ? why : sgrpc_strerror(rc));
        rc = 1;
      }
      count++;
    }
  }
  free(buf);
  if (rc == 0) printf("%zu inputs, every invariant held\n", count);
  return rc;
}
