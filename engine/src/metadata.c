/*
 * Header blocks: fields collected as nghttp2 hands them over (recognised
 * once, validated, stored compactly), the user-metadata view with -bin
 * values decoded, the status of a trailer block, and the mappings from
 * HTTP status and RST_STREAM codes to gRPC status codes.
 */
#include <string.h>

#include "conn.h"
#include "wire.h"

void sg_hdrs_reset(sg_hdrs *h) {
  h->store.len = h->store.off = 0;
  h->nfields = 0;
  h->total = 0;
  h->overflow = h->invalid = 0;
  h->nmd = 0;
  h->ct_field = 0;
}

void sg_hdrs_free(sgrpc_conn *c, sg_hdrs *h) {
  sg_buf_free(&c->mem, &h->store);
  sg_free(c, h->fields);
  sg_free(c, h->md);
  memset(h, 0, sizeof(*h));
}

#define NAME_IS(k, lit) (memcmp((k), (lit), SG_LITLEN(lit)) == 0)

/* Recognises a field name by its length, then one comparison. A known
 * name is a valid lowercase token by construction. */
static uint8_t header_kind(const uint8_t *k, size_t n) {
  if (n && k[0] == ':') {
    switch (n) {
    case 5: return NAME_IS(k, ":path") ? SG_HK_PATH : SG_HK_PSEUDO;
    case 7:
      if (NAME_IS(k, ":method")) return SG_HK_METHOD;
      if (NAME_IS(k, ":scheme")) return SG_HK_SCHEME;
      if (NAME_IS(k, ":status")) return SG_HK_STATUS;
      return SG_HK_PSEUDO;
    case 10: return NAME_IS(k, ":authority") ? SG_HK_AUTHORITY : SG_HK_PSEUDO;
    default: return SG_HK_PSEUDO;
    }
  }
  switch (n) {
  case 2: return NAME_IS(k, "te") ? SG_HK_TE : SG_HK_OTHER;
  case 4: return NAME_IS(k, "host") ? SG_HK_HOST : SG_HK_OTHER;
  case 7: return NAME_IS(k, "upgrade") ? SG_HK_CONN_SPECIFIC : SG_HK_OTHER;
  case 10:
    if (NAME_IS(k, "user-agent")) return SG_HK_USER_AGENT;
    if (NAME_IS(k, "connection") || NAME_IS(k, "keep-alive")) return SG_HK_CONN_SPECIFIC;
    return SG_HK_OTHER;
  case 11: return NAME_IS(k, "grpc-status") ? SG_HK_GRPC_STATUS : SG_HK_OTHER;
  case 12:
    if (NAME_IS(k, "content-type")) return SG_HK_CONTENT_TYPE;
    if (NAME_IS(k, "grpc-timeout")) return SG_HK_TIMEOUT;
    if (NAME_IS(k, "grpc-message")) return SG_HK_GRPC_MESSAGE;
    return SG_HK_OTHER;
  case 13: return NAME_IS(k, "grpc-encoding") ? SG_HK_ENCODING : SG_HK_OTHER;
  case 14: return NAME_IS(k, "content-length") ? SG_HK_CONTENT_LENGTH : SG_HK_OTHER;
  case 16: return NAME_IS(k, "proxy-connection") ? SG_HK_CONN_SPECIFIC : SG_HK_OTHER;
  case 17: return NAME_IS(k, "transfer-encoding") ? SG_HK_CONN_SPECIFIC : SG_HK_OTHER;
  case 20: return NAME_IS(k, "grpc-accept-encoding") ? SG_HK_ACCEPT_ENCODING : SG_HK_OTHER;
  case 23: return NAME_IS(k, "grpc-status-details-bin") ? SG_HK_STATUS_DETAILS : SG_HK_OTHER;
  default: return SG_HK_OTHER;
  }
}

/* memcpy for the short strings of header fields, without a call for the
 * common lengths (the copies of two overlapping words cover every byte). */
static inline void copy_short(uint8_t *d, const uint8_t *s, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
    memcpy(d, &a, 8);
    memcpy(d + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    memcpy(&a, s, 4);
    memcpy(&b, s + n - 4, 4);
    memcpy(d, &a, 4);
    memcpy(d + n - 4, &b, 4);
  } else if (n < 4) {
    size_t i;
    for (i = 0; i < n; i++) d[i] = s[i];
  } else {
    memcpy(d, s, n);
  }
}

/* Appends s and a NUL to the store (room already reserved); returns its
 * offset. */
static inline uint32_t store_copy(sg_hdrs *h, const uint8_t *s, size_t n) {
  uint32_t at = (uint32_t)h->store.len;
  copy_short(h->store.p + at, s, n);
  h->store.p[at + n] = 0;
  h->store.len += n + 1;
  return at;
}

/* First sizes of a block's store and field array, for a new call (a
 * reused one keeps what its earlier blocks grew to). They hold the
 * requests of sgrpc's client and of h2load (8 fields, about 110 bytes of
 * values and stored names) without a realloc; a larger block (grpc++
 * sends a longer user-agent and more fields) grows by doubling, once or
 * twice, only while its call is new. They are what an open call holds:
 * 512 bytes and 16 fields before, 864 bytes of heap against 320. */
#define SG_HDRS_FIRST_STORE 128
#define SG_HDRS_FIRST_FIELDS 8

static int hdrs_add(sgrpc_conn *c, sg_hdrs *h, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen) {
  sg_field *f;
  uint8_t kind = header_kind(name, nlen);
  int keep_name = kind <= SG_HK_PSEUDO;
  if ((keep_name && !sg_h2_name_valid(name, nlen)) || !sg_h2_value_valid(value, vlen)) {
    h->invalid = 1;
    return 0;
  }
  if ((uint64_t)h->total + nlen + vlen + 32 > c->settings.max_header_list_size ||
      !sg_budget_fits(c, nlen + vlen + 32)) {
    h->overflow = 1; /* the call ends RESOURCE_EXHAUSTED */
    return 0;
  }
  h->total += (uint32_t)(nlen + vlen + 32);
  sg_budget_take(c, nlen + vlen + 32);
  if (h->nfields == h->fields_cap) {
    uint32_t ncap = h->fields_cap ? h->fields_cap * 2 : SG_HDRS_FIRST_FIELDS;
    sg_field *nf = sg_realloc(c, h->fields, ncap * sizeof(*nf));
    if (!nf) return -1;
    h->fields = nf;
    h->fields_cap = ncap;
  }
  /* The first block holds a typical request's fields at once: growing
   * from 64 by doubling cost three reallocs per call (callgrind). */
  if (sg_buf_reserve(&c->mem, &h->store,
                     h->store.cap || nlen + vlen + 2 > SG_HDRS_FIRST_STORE
                         ? nlen + vlen + 2
                         : SG_HDRS_FIRST_STORE) != 0)
    return -1;
  f = &h->fields[h->nfields++];
  f->kind = kind;
  f->name_len = (uint32_t)nlen;
  f->name_off = keep_name ? store_copy(h, name, nlen) : UINT32_MAX;
  f->value_len = (uint32_t)vlen;
  f->value_off = store_copy(h, value, vlen);
  if (kind == SG_HK_CONTENT_TYPE && !h->ct_field) h->ct_field = h->nfields;
  return 0;
}

/* Builds h->md from the non-protocol fields, decoding -bin values into
 * the store. Returns 0, -1 on no memory, -2 on bad base64. */
int sg_hdrs_build_md(sgrpc_conn *c, sg_hdrs *h) {
  uint32_t i;
  h->nmd = 0;
  for (i = 0; i < h->nfields; i++) {
    sg_field *f = &h->fields[i];
    const char *k;
    sgrpc_md *m;
    if (f->kind != SG_HK_OTHER) continue; /* handled by the engine */
    k = sg_field_name(h, f);
    if (h->nmd == h->md_cap) {
      uint32_t ncap = h->md_cap ? h->md_cap * 2 : 8;
      sgrpc_md *nm = sg_realloc(c, h->md, ncap * sizeof(*nm));
      if (!nm) return -1;
      h->md = nm;
      h->md_cap = ncap;
    }
    m = &h->md[h->nmd++];
    m->key_len = f->name_len;
    /* pointers are fixed up below, once the store stops moving */
    m->key = (const char *)(uintptr_t)f->name_off;
    if (sg_key_is_bin(k, f->name_len)) {
      size_t max = sg_b64_decoded_max(f->value_len), outlen = 0;
      size_t at;
      if (sg_buf_reserve(&c->mem, &h->store, max + 1) != 0) return -1;
      at = h->store.len;
      if (sg_b64_decode((const char *)h->store.p + f->value_off, f->value_len,
                        h->store.p + at, &outlen) != 0) {
        h->nmd--; /* half-built entry: its value was never set */
        return -2;
      }
      h->store.p[at + outlen] = 0;
      h->store.len += outlen + 1;
      m->value = (const uint8_t *)(uintptr_t)at;
      m->value_len = outlen;
    } else {
      m->value = (const uint8_t *)(uintptr_t)f->value_off;
      m->value_len = f->value_len;
    }
  }
  return 0;
}

void sg_hdrs_fix_md(sg_hdrs *h) {
  uint32_t i;
  for (i = 0; i < h->nmd; i++) {
    h->md[i].key = (const char *)h->store.p + (uintptr_t)h->md[i].key;
    h->md[i].value = h->store.p + (uintptr_t)h->md[i].value;
  }
}

/* Appends a NUL-terminated copy of s to the store; returns its offset or
 * SIZE_MAX on no memory. */
static size_t store_put(sgrpc_conn *c, sg_hdrs *h, const void *s, size_t n) {
  size_t at;
  if (sg_buf_reserve(&c->mem, &h->store, n + 1) != 0) return SIZE_MAX;
  at = h->store.len;
  if (n) memcpy(h->store.p + at, s, n);
  h->store.p[at + n] = 0;
  h->store.len += n + 1;
  return at;
}

/* Parses grpc-status, grpc-message and grpc-status-details-bin from h
 * into the CLOSE event e. Returns 0 or -1 (no memory). */
int sg_hdrs_parse_status(sgrpc_conn *c, sg_hdrs *h, sgrpc_status_info *st) {
  uint32_t i;
  int have = 0, code = SGRPC_STATUS_UNKNOWN, bad = 0;
  size_t msg_at = SIZE_MAX, msg_len = 0, det_at = SIZE_MAX, det_len = 0;
  int rv;

  rv = sg_hdrs_build_md(c, h);
  if (rv == -1) return -1;
  if (rv == -2) bad = 1;
  for (i = 0; i < h->nfields; i++) {
    sg_field *f = &h->fields[i];
    const char *v = sg_field_value(h, f);
    if (f->kind == SG_HK_GRPC_STATUS) {
      uint32_t j, val = 0;
      if (have || f->value_len == 0 || f->value_len > 3) { have = -1; continue; }
      for (j = 0; j < f->value_len; j++) {
        if (v[j] < '0' || v[j] > '9') break;
        val = val * 10 + (uint32_t)(v[j] - '0');
      }
      if (j != f->value_len || val > 16) { have = -1; continue; }
      have = 1;
      code = (int)val;
    } else if (f->kind == SG_HK_GRPC_MESSAGE) {
      size_t max = sg_pct_decoded_max(f->value_len);
      if (sg_buf_reserve(&c->mem, &h->store, max + 1) != 0) return -1;
      msg_at = h->store.len;
      v = sg_field_value(h, f); /* the store may have moved */
      msg_len = sg_pct_decode(v, f->value_len, (char *)h->store.p + msg_at);
      h->store.p[msg_at + msg_len] = 0;
      h->store.len += msg_len + 1;
    } else if (f->kind == SG_HK_STATUS_DETAILS) {
      size_t max = sg_b64_decoded_max(f->value_len);
      if (sg_buf_reserve(&c->mem, &h->store, max + 1) != 0) return -1;
      det_at = h->store.len;
      if (sg_b64_decode(sg_field_value(h, f), f->value_len, h->store.p + det_at, &det_len) != 0) {
        det_at = SIZE_MAX;
        det_len = 0;
        continue;
      }
      h->store.len += det_len + 1;
    }
  }
  if (have != 1) {
    static const char missing[] = "missing or invalid grpc-status in trailers";
    code = SGRPC_STATUS_UNKNOWN;
    msg_at = store_put(c, h, missing, sizeof(missing) - 1);
    if (msg_at == SIZE_MAX) return -1;
    msg_len = sizeof(missing) - 1;
  } else if (bad && code == SGRPC_STATUS_OK) {
    static const char badbin[] = "malformed binary metadata in trailers";
    code = SGRPC_STATUS_INTERNAL;
    msg_at = store_put(c, h, badbin, sizeof(badbin) - 1);
    if (msg_at == SIZE_MAX) return -1;
    msg_len = sizeof(badbin) - 1;
  }
  if (msg_at == SIZE_MAX) {
    msg_at = store_put(c, h, SG_LIT(""));
    if (msg_at == SIZE_MAX) return -1;
  }
  sg_hdrs_fix_md(h);
  st->code = code;
  st->message = (const char *)h->store.p + msg_at;
  st->message_len = msg_len;
  st->details = det_at == SIZE_MAX ? NULL : h->store.p + det_at;
  st->details_len = det_len;
  st->md = h->md;
  st->md_count = h->nmd;
  return 0;
}

int sg_http_to_grpc_status(int s) {
  switch (s) {
  case 400: return SGRPC_STATUS_INTERNAL;
  case 401: return SGRPC_STATUS_UNAUTHENTICATED;
  case 403: return SGRPC_STATUS_PERMISSION_DENIED;
  case 404: return SGRPC_STATUS_UNIMPLEMENTED;
  case 429:
  case 502:
  case 503:
  case 504: return SGRPC_STATUS_UNAVAILABLE;
  default: return SGRPC_STATUS_UNKNOWN;
  }
}

int sg_rst_to_grpc_status(uint32_t code) {
  switch (code) {
  case NGHTTP2_CANCEL: return SGRPC_STATUS_CANCELLED;
  case NGHTTP2_REFUSED_STREAM: return SGRPC_STATUS_UNAVAILABLE;
  case NGHTTP2_ENHANCE_YOUR_CALM: return SGRPC_STATUS_RESOURCE_EXHAUSTED;
  case NGHTTP2_INADEQUATE_SECURITY: return SGRPC_STATUS_PERMISSION_DENIED;
  default: return SGRPC_STATUS_INTERNAL;
  }
}

/* nghttp2's on_header callback: adds the field to the block that
 * on_begin_headers chose (c->hblock). */
int sg_on_header(nghttp2_session *s, const nghttp2_frame *frame,
                 const uint8_t *name, size_t namelen, const uint8_t *value,
                 size_t valuelen, uint8_t flags, void *ud) {
  sgrpc_conn *c = ud;
  sg_hdrs *h = c->hblock; /* the fields of one block arrive together */
  (void)s;
  (void)flags;
  if (!h || frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != c->hblock_stream)
    return 0;
  if (hdrs_add(c, h, name, namelen, value, valuelen) != 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  /* A full queue pauses input here as it does at DATA: a burst of new
   * streams (each a CALL_NEW) would otherwise grow the event ring, and
   * keep a header block per stream, beyond max_queued_events. nghttp2
   * takes the field as processed and goes on after it. */
  if (c->evq_len >= c->settings.max_queued_events) {
    c->paused = 1;
    return NGHTTP2_ERR_PAUSE;
  }
  return 0;
}
