/*
 * Calls: the client and server call API, the send buffer and its data
 * provider, status/trailer building, and the deadline heap.
 */
#include <stddef.h>
#include <string.h>

#include "compress.h"
#include "conn.h"
#include "wire.h"

/* nghttp2 pulls a call's DATA through this (the source is the call). */
static sg_h2_ssize data_read_cb(nghttp2_session *s, int32_t stream_id, uint8_t *buf,
                                size_t length, uint32_t *data_flags,
                                nghttp2_data_source *source, void *ud) {
  (void)s;
  (void)stream_id;
  (void)ud;
  return sg_call_read_data(source->ptr, buf, length, data_flags);
}

/* ------------------------------------------------------------------ */
/* Life of a call                                                      */
/* ------------------------------------------------------------------ */

/* Ended calls are kept per connection, with their buffers, and reused
 * by the next calls: a unary call otherwise costs half a dozen
 * allocations and frees (call, header store, field and metadata arrays,
 * send buffer). The cache is bounded in count and a kept call keeps only
 * small buffers, so an idle connection holds at most a few KiB more. A
 * reused call allocates nothing until a buffer must grow, and any such
 * growth still fails with an error when the allocator fails. */
#define SG_CALL_CACHE 32
#define SG_KEEP_BYTES 4096  /* larger buffers go back to the allocator */
#define SG_KEEP_ENTRIES 64  /* same for the field and metadata arrays */

_Static_assert(offsetof(sgrpc_call, trailer_nv) - offsetof(sgrpc_call, rbuf) ==
                   3 * sizeof(sg_buf) + sizeof(sg_hdrs) + sizeof(sg_hdrs *),
               "call_cache_put: the kept buffers must be contiguous");

static void keep_buf(sgrpc_conn *c, sg_buf *b) {
  if (b->cap > SG_KEEP_BYTES) sg_buf_free(&c->mem, b);
  b->len = b->off = 0;
}

/* A reassembly buffer of an ended call: a large one is kept for the
 * connection's next large message (sg_spare_park), as a taken one is. */
static void keep_msg_buf(sgrpc_conn *c, sg_buf *b) {
  if (b->cap > SG_KEEP_BYTES) {
    sg_spare_park(c, b->p, b->cap);
    memset(b, 0, sizeof(*b));
  }
  b->len = b->off = 0;
}

static void keep_hdrs(sgrpc_conn *c, sg_hdrs *h) {
  keep_buf(c, &h->store);
  if (h->fields_cap > SG_KEEP_ENTRIES) {
    sg_free(c, h->fields);
    h->fields = NULL;
    h->fields_cap = 0;
  }
  if (h->md_cap > SG_KEEP_ENTRIES) {
    sg_free(c, h->md);
    h->md = NULL;
    h->md_cap = 0;
  }
  sg_hdrs_reset(h);
}

static void call_release_memory(sgrpc_conn *c, sgrpc_call *call) {
  sg_buf_free(&c->mem, &call->rbuf);
  sg_buf_free(&c->mem, &call->spare);
  sg_buf_free(&c->mem, &call->sbuf);
  sg_hdrs_free(c, &call->hin);
  if (call->htr) {
    sg_hdrs_free(c, call->htr);
    sg_free(c, call->htr);
  }
  sg_free(c, call->trailer_mem);
  sg_free(c, call);
}

/* Puts a call that was taken off every list into the cache (or frees
 * it), every field but its buffers back to zero. */
static void call_cache_put(sgrpc_conn *c, sgrpc_call *call) {
  if (!c->session || c->nfree_calls >= SG_CALL_CACHE) {
    call_release_memory(c, call);
    return;
  }
  keep_msg_buf(c, &call->rbuf);
  keep_msg_buf(c, &call->spare);
  keep_buf(c, &call->sbuf);
  keep_hdrs(c, &call->hin);
  if (call->htr) keep_hdrs(c, call->htr);
  sg_free(c, call->trailer_mem);
  /* everything around the buffers (rbuf ... htr, kept together) */
  memset(call, 0, offsetof(sgrpc_call, rbuf));
  memset(&call->trailer_nv, 0, sizeof(*call) - offsetof(sgrpc_call, trailer_nv));
  call->next = c->free_calls;
  c->free_calls = call;
  c->nfree_calls++;
  SG_POISON(call, sizeof(*call));
}

/* Spare blocks a connection keeps for its next calls (request header
 * blocks, send buffers): a list threaded through the blocks, each
 * starting with a record whose first member is the next block. */
static inline void spare_push(uint8_t **head, uint32_t *n, uint8_t *blk, void *rec,
                              size_t len) {
  memcpy(rec, head, sizeof(*head)); /* rec->next = *head */
  memcpy(blk, rec, len);
  *head = blk;
  (*n)++;
}

/* Takes the first spare block off the list; its record goes to rec. */
static inline uint8_t *spare_pop(uint8_t **head, uint32_t *n, void *rec, size_t len) {
  uint8_t *blk = *head;
  memcpy(rec, blk, len);
  memcpy(head, rec, sizeof(*head)); /* *head = rec->next */
  (*n)--;
  return blk;
}

/* A header block kept in c->hdrs_spare: its three allocations and
 * capacities, written at the start of its store. */
typedef struct sg_hdrs_spare {
  uint8_t *next;   /* the next spare's store */
  sg_field *fields;
  sgrpc_md *md;
  size_t store_cap;
  uint32_t fields_cap, md_cap;
} sg_hdrs_spare;

/* An open server call's request header block, once its CALL_NEW was
 * pulled, goes to the connection's spares (or is freed). A connection
 * keeps as many spare header blocks as one batch of input can start
 * requests before their CALL_NEWs are pulled: input pauses once
 * max_queued_events are queued, at a header field at the latest, so that
 * is max_queued_events + 1 (h2load's requests, all HEADERS before their
 * DATA, reach it). Fewer, and a busy connection allocates header blocks
 * per call again. */
void sg_call_drop_request_hdrs(sgrpc_conn *c, sgrpc_call *call) {
  sg_hdrs *h = &call->hin;
  sg_hdrs_spare sp;
  if (c->role != SG_ROLE_SERVER || call->state == SG_CALL_IDLE) return;
  if (h->ct_field) { /* request_content_type reads it when answering */
    const sg_field *f = &h->fields[h->ct_field - 1];
    if (f->value_len != SG_LITLEN("application/grpc") ||
        memcmp(sg_field_value(h, f), SG_LIT("application/grpc")) != 0)
      return;
  }
  sg_budget_give(c, h->total);
  h->total = 0;
  if (!c->session || c->nhdrs_spare > c->settings.max_queued_events || !h->store.p ||
      h->store.cap < sizeof(sp) || h->store.cap > SG_KEEP_BYTES ||
      h->fields_cap > SG_KEEP_ENTRIES || h->md_cap > SG_KEEP_ENTRIES) {
    sg_hdrs_free(c, h);
    return;
  }
  sp.fields = h->fields;
  sp.md = h->md;
  sp.store_cap = h->store.cap;
  sp.fields_cap = h->fields_cap;
  sp.md_cap = h->md_cap;
  spare_push(&c->hdrs_spare, &c->nhdrs_spare, h->store.p, &sp, sizeof(sp));
  memset(h, 0, sizeof(*h));
}

void sg_call_take_spare_hdrs(sgrpc_conn *c, sgrpc_call *call) {
  sg_hdrs *h = &call->hin;
  sg_hdrs_spare sp;
  if (h->store.p || !c->hdrs_spare) return;
  /* a cached call's own arrays, if only its store went (usually none) */
  if (h->fields || h->md) sg_hdrs_free(c, h);
  h->store.p = spare_pop(&c->hdrs_spare, &c->nhdrs_spare, &sp, sizeof(sp));
  h->store.cap = sp.store_cap;
  h->fields = sp.fields;
  h->fields_cap = sp.fields_cap;
  h->md = sp.md;
  h->md_cap = sp.md_cap;
}

static void hdrs_spare_clear(sgrpc_conn *c) {
  while (c->hdrs_spare) {
    sg_hdrs_spare sp;
    uint8_t *store = spare_pop(&c->hdrs_spare, &c->nhdrs_spare, &sp, sizeof(sp));
    sg_free(c, sp.fields);
    sg_free(c, sp.md);
    sg_free(c, store);
  }
}

/* A send buffer kept in c->sbuf_spare: written at its start (a send
 * buffer is at least 64 bytes). */
typedef struct sg_sbuf_spare {
  uint8_t *next; /* the next spare buffer */
  size_t cap;
} sg_sbuf_spare;

/* Spare send buffers a connection keeps: enough for the calls that send
 * in one input batch of a streaming exchange without allocating, few
 * enough that open calls' buffers mostly go back to the allocator. */
#define SG_SBUF_SPARE 8

/* The call's send buffer drained: it gives the buffer to the
 * connection's spares (or frees it) so an idle open call holds none.
 * Not while a reservation points into it (the commit reads it there),
 * nor once the call's side is ended (a unary call keeps it for the call
 * cache: no list traffic per request), nor for large buffers (kept with
 * the call as before, so a stream of large messages does not allocate
 * per message). */
static void sbuf_give(sgrpc_conn *c, sgrpc_call *call) {
  sg_sbuf_spare sp;
  if ((call->send & (SG_SF_END | SG_SF_RESERVED | SG_SF_STATUS_PENDING)) ||
      call->sbuf.cap > SG_KEEP_BYTES || call->sbuf.cap < sizeof(sp) ||
      sg_buf_avail(&call->sbuf) || !c->session)
    return;
  if (c->nsbuf_spare >= SG_SBUF_SPARE) {
    sg_buf_free(&c->mem, &call->sbuf);
    return;
  }
  sp.cap = call->sbuf.cap;
  spare_push(&c->sbuf_spare, &c->nsbuf_spare, call->sbuf.p, &sp, sizeof(sp));
  memset(&call->sbuf, 0, sizeof(call->sbuf));
}

/* A call without a send buffer takes a spare one (any size: a smaller
 * one grows in sg_buf_reserve as a call's own would). */
static void sbuf_take(sgrpc_conn *c, sgrpc_call *call) {
  sg_sbuf_spare sp;
  call->sbuf.p = spare_pop(&c->sbuf_spare, &c->nsbuf_spare, &sp, sizeof(sp));
  call->sbuf.cap = sp.cap;
  call->sbuf.off = call->sbuf.len = 0;
}

static void sbuf_spare_clear(sgrpc_conn *c) {
  while (c->sbuf_spare) {
    sg_sbuf_spare sp;
    sg_free(c, spare_pop(&c->sbuf_spare, &c->nsbuf_spare, &sp, sizeof(sp)));
  }
}

void sg_call_cache_clear(sgrpc_conn *c) {
  hdrs_spare_clear(c);
  sbuf_spare_clear(c);
  while (c->free_calls) {
    sgrpc_call *call = c->free_calls;
    SG_UNPOISON(call, sizeof(*call));
    c->free_calls = call->next;
    c->nfree_calls--;
    call_release_memory(c, call);
  }
}

sgrpc_call *sg_call_new(sgrpc_conn *c) {
  sgrpc_call *call = c->free_calls;
  if (call) {
    SG_UNPOISON(call, sizeof(*call));
    c->free_calls = call->next;
    c->nfree_calls--;
    sg_budget_take(c, call->rbuf.cap + call->spare.cap);
  } else {
    call = c->mem.calloc(1, sizeof(*call), c->mem.user_data);
    if (!call) return NULL;
  }
  call->conn = c;
  call->rec_id = ++c->rec_call_seq;
  call->deadline = SGRPC_NEVER;
  call->prev = NULL;
  call->next = c->calls;
  if (c->calls) c->calls->prev = call;
  c->calls = call;
  c->ncalls++;
  return call;
}

void sg_chunk_unref(sgrpc_conn *c, sg_chunk *k) {
  if (--k->refs) return;
  if (k->own) sg_free(c, k->own);
  else if (k->release && !sg_taken_recycle(c, k->release, k->release_ud))
    k->release(k->release_ud, k->p, k->len);
  sg_free(c, k);
}

/* Drops the borrowed messages nghttp2 has not framed yet (what the
 * output already points at stays until it is written). */
static void call_drop_chunks(sgrpc_conn *c, sgrpc_call *call) {
  while (call->cq_head) {
    sg_chunk *k = call->cq_head;
    call->cq_head = k->next;
    sg_queued_sub(c, 5 + k->len - k->sent);
    sg_chunk_unref(c, k);
  }
  call->cq_tail = NULL;
  call->cq_bytes = 0;
}

void sg_call_free(sgrpc_call *call) {
  sgrpc_conn *c = call->conn;
  if (call->cq_head) call_drop_chunks(c, call);
  if (call->prev) call->prev->next = call->next;
  else c->calls = call->next;
  if (call->next) call->next->prev = call->prev;
  c->ncalls--;
  if (call->state == SG_CALL_OPEN) c->open_calls--;
  sg_queued_sub(c, sg_buf_avail(&call->sbuf));
  call->sbuf.off = call->sbuf.len = 0;
  /* what it counts against the budget: its reassembly buffers, its
   * header blocks (the small buffers a cached call keeps are counted
   * again when it is reused) */
  sg_budget_give(c, call->rbuf.cap + call->spare.cap + call->hin.total +
                        (call->htr ? call->htr->total : 0));
  call->rbuf.len = 0;
  call->hin.total = 0;
  if (call->htr) call->htr->total = 0;
  sg_call_heap_remove(call);
  if (c->retired_call == call) c->retired_call = NULL;
  if (c->hblock == &call->hin || (call->htr && c->hblock == call->htr)) c->hblock = NULL;
  /* nghttp2 may still hold the stream (fatal error, transport gone) */
  if (c->session && call->stream_id > 0)
    nghttp2_session_set_stream_user_data(c->session, call->stream_id, NULL);
  call_cache_put(c, call);
  /* the budget it held may wake others (not while the conn is deleted) */
  if (c->session) {
    sg_unblock_calls(c);
    /* A connection that has made one call so far has shown no call rate
     * to keep memory for: it gives back at once (on the next expiry
     * pass), so the next connection's call reuses the blocks; later
     * calls wait a second, which a busy connection never reaches. The
     * second falls on a grain, so connections that went idle together
     * are trimmed by one timer. */
    if (c->ncalls == 0)
      c->trim_at = c->stats.calls_started <= 1
                       ? c->now
                       : (c->now + SG_TRIM_AFTER_NS) & ~SG_TRIM_GRAIN_MASK;
  }
}

void sg_call_opened(sgrpc_call *call) {
  if (call->state != SG_CALL_IDLE) return;
  call->state = SG_CALL_OPEN;
  call->conn->open_calls++;
  call->conn->stats.calls_started++;
  call->conn->stats.last_call_started = call->conn->now;
}

void sg_call_set_closed(sgrpc_call *call) {
  if (call->state == SG_CALL_OPEN) call->conn->open_calls--;
  call->state = SG_CALL_CLOSED;
}

/* Drops whatever the call still had to send from the connection total. */
static void call_drop_sbuf(sgrpc_call *call) {
  if (call->cq_head) call_drop_chunks(call->conn, call);
  sg_queued_sub(call->conn, sg_buf_avail(&call->sbuf));
  call->sbuf.off = call->sbuf.len = 0;
  sg_unblock_calls(call->conn);
}

/* The connection-wide send budget has room again: wake blocked calls. */
void sg_unblock_calls(sgrpc_conn *c) {
  sgrpc_call *call;
  if (!c->conn_blocked || c->queued >= c->settings.max_outbound_queue / 2) return;
  c->conn_blocked = 0;
  for (call = c->calls; call; call = call->next) {
    if (!(call->send & SG_SF_WANT_WRITABLE) || call->state == SG_CALL_CLOSED ||
        (call->flags & SG_CF_RELEASED))
      continue;
    if (sg_buf_avail(&call->sbuf) + call->cq_bytes >= c->settings.max_send_buffer) continue;
    call->send &= (uint8_t)~SG_SF_WANT_WRITABLE;
    if (!sg_event_push(c, SGRPC_EV_WRITABLE, call)) {
      if (!c->fatal) c->fatal = SGRPC_ERR_CONN_NOMEM;
      return;
    }
  }
}

void sg_call_maybe_free(sgrpc_call *call) {
  if ((call->flags & SG_CF_RELEASED) && !(call->flags & SG_CF_STREAM_OPEN) && call->ev_refs == 0)
    sg_call_free(call);
}

/* ------------------------------------------------------------------ */
/* Deadline heap                                                       */
/* ------------------------------------------------------------------ */

static void heap_swap(sgrpc_conn *c, size_t a, size_t b) {
  sgrpc_call *t = c->heap[a];
  c->heap[a] = c->heap[b];
  c->heap[b] = t;
  c->heap[a]->heap_idx = a;
  c->heap[b]->heap_idx = b;
}

static void heap_up(sgrpc_conn *c, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (c->heap[p]->deadline <= c->heap[i]->deadline) break;
    heap_swap(c, i, p);
    i = p;
  }
}

static void heap_down(sgrpc_conn *c, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < c->heap_len && c->heap[l]->deadline < c->heap[m]->deadline) m = l;
    if (r < c->heap_len && c->heap[r]->deadline < c->heap[m]->deadline) m = r;
    if (m == i) break;
    heap_swap(c, i, m);
    i = m;
  }
}

/* Arms the call's deadline. On no memory the conn becomes fatal: a
 * deadline that silently never fires is worse than a failed connection. */
void sg_call_heap_add(sgrpc_call *call) {
  sgrpc_conn *c = call->conn;
  if (call->flags & SG_CF_IN_HEAP) return;
  if (c->heap_len == c->heap_cap) {
    size_t ncap = c->heap_cap ? c->heap_cap * 2 : 16;
    sgrpc_call **nh = sg_realloc(c, c->heap, ncap * sizeof(*nh));
    if (!nh) {
      if (!c->fatal) c->fatal = SGRPC_ERR_CONN_NOMEM;
      return;
    }
    c->heap = nh;
    c->heap_cap = ncap;
  }
  call->heap_idx = c->heap_len;
  c->heap[c->heap_len++] = call;
  call->flags |= SG_CF_IN_HEAP;
  heap_up(c, call->heap_idx);
}

void sg_call_heap_remove(sgrpc_call *call) {
  sgrpc_conn *c = call->conn;
  size_t i = call->heap_idx;
  if (!(call->flags & SG_CF_IN_HEAP)) return;
  call->flags &= (uint8_t)~SG_CF_IN_HEAP;
  c->heap_len--;
  if (i != c->heap_len) {
    c->heap[i] = c->heap[c->heap_len];
    c->heap[i]->heap_idx = i;
    heap_down(c, i);
    heap_up(c, i);
  }
}

/* ------------------------------------------------------------------ */
/* Header lists                                                        */
/* ------------------------------------------------------------------ */

int sg_nv_reserve(sgrpc_conn *c, size_t n) {
  nghttp2_nv *nv;
  if (c->nv_cap >= n) return 0;
  nv = sg_realloc(c, c->nv, n * sizeof(*nv));
  if (!nv) return -1;
  c->nv = nv;
  c->nv_cap = n;
  return 0;
}

static void nv_set(nghttp2_nv *nv, const char *name, size_t nlen, const void *value,
                   size_t vlen) {
  nv->name = (uint8_t *)(uintptr_t)name;
  nv->namelen = nlen;
  nv->value = (uint8_t *)(uintptr_t)value;
  nv->valuelen = vlen;
  nv->flags = NGHTTP2_NV_FLAG_NONE;
}

#define NV_LIT(nv, n, v) nv_set((nv), SG_LIT(n), SG_LIT(v))

static int check_md(const sgrpc_md *md, size_t n) {
  size_t i;
  if (n && !md) return SGRPC_ERR_INVALID_ARGUMENT;
  for (i = 0; i < n; i++) {
    int rv = sgrpc_md_check(&md[i]);
    if (rv) return rv;
  }
  return 0;
}

/* Bytes needed to hold the encoded values of md. */
static size_t md_encoded_size(const sgrpc_md *md, size_t n) {
  size_t i, total = 0;
  for (i = 0; i < n; i++) {
    total += sg_key_is_bin(md[i].key, md[i].key_len)
                 ? sg_b64_encoded_len(md[i].value_len)
                 : 0;
  }
  return total;
}

/* Bytes to copy md keys and non-binary values. */
static size_t md_copy_size(const sgrpc_md *md, size_t n) {
  size_t i, total = 0;
  for (i = 0; i < n; i++) {
    total += md[i].key_len;
    if (!sg_key_is_bin(md[i].key, md[i].key_len)) total += md[i].value_len;
  }
  return total;
}

/* Appends md to nv, base64-encoding -bin values into *space (which must
 * hold md_encoded_size bytes). Returns the new nv count. */
static size_t md_to_nv(nghttp2_nv *nv, size_t at, const sgrpc_md *md, size_t n,
                       char **space) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (sg_key_is_bin(md[i].key, md[i].key_len)) {
      size_t l = sg_b64_encode(md[i].value, md[i].value_len, *space);
      nv_set(&nv[at++], md[i].key, md[i].key_len, *space, l);
      *space += l;
    } else {
      nv_set(&nv[at++], md[i].key, md[i].key_len, md[i].value, md[i].value_len);
    }
  }
  return at;
}

/* Size of a header list as SETTINGS_MAX_HEADER_LIST_SIZE counts it. */
static size_t nv_list_size(const nghttp2_nv *nv, size_t n) {
  size_t i, total = 0;
  for (i = 0; i < n; i++) total += nv[i].namelen + nv[i].valuelen + 32;
  return total;
}

static int header_list_fits(sgrpc_conn *c, const nghttp2_nv *nv, size_t n) {
  size_t limit = c->settings.max_send_header_list_size;
  uint32_t peer = nghttp2_session_get_remote_settings(c->session,
                                                      NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE);
  if (peer < limit) limit = peer;
  return nv_list_size(nv, n) <= limit;
}

static int ng_to_sg(int rv) {
  switch (rv) {
  case 0: return 0;
  case NGHTTP2_ERR_NOMEM: return SGRPC_ERR_NOMEM;
  case NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE:
  case NGHTTP2_ERR_START_STREAM_NOT_ALLOWED:
  case NGHTTP2_ERR_SESSION_CLOSING: return SGRPC_ERR_GOING_AWAY;
  case NGHTTP2_ERR_STREAM_CLOSED:
  case NGHTTP2_ERR_STREAM_CLOSING: return SGRPC_ERR_CALL_CLOSED;
  case NGHTTP2_ERR_INVALID_ARGUMENT: return SGRPC_ERR_INVALID_ARGUMENT;
  case NGHTTP2_ERR_INVALID_STATE:
  case NGHTTP2_ERR_DATA_EXIST: return SGRPC_ERR_INVALID_STATE;
  default: return SGRPC_ERR_HTTP2;
  }
}

static int conn_usable(const sgrpc_conn *c) {
  if (c->fatal) return c->fatal;
  if (c->transport_closed) return SGRPC_ERR_CONN_CLOSED;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Client                                                              */
/* ------------------------------------------------------------------ */

int sg_api_call_start(sgrpc_conn *c, const sgrpc_call_opts *o, int64_t now,
                     sgrpc_call **pcall) {
  char tmo[16], ct[64];
  size_t n = 0, space_len, ctlen, plen, alen = 0;
  char *space;
  int tmolen = -1, rv, enc, expired = 0;
  int32_t sid;
  sgrpc_call *call;
  sg_h2_data_provider prd;

  if (!pcall) return SGRPC_ERR_INVALID_ARGUMENT;
  *pcall = NULL;
  if (!c || !o || !o->path) return SGRPC_ERR_INVALID_ARGUMENT;
  if (c->role != SG_ROLE_CLIENT) return SGRPC_ERR_INVALID_STATE;
  if ((rv = conn_usable(c)) != 0) return rv;
  if (c->goaway_recv || c->goaway_sent) return SGRPC_ERR_GOING_AWAY;
  plen = strlen(o->path);
  if (plen < 2 || o->path[0] != '/' || !sg_h2_value_valid((const uint8_t *)o->path, plen))
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (o->authority) {
    alen = strlen(o->authority);
    if (!sg_h2_value_valid((const uint8_t *)o->authority, alen))
      return SGRPC_ERR_INVALID_ARGUMENT;
  }
  if ((rv = check_md(o->md, o->md_count)) != 0) return rv;
  if (o->encoding) {
    enc = sg_enc_parse(o->encoding, strlen(o->encoding));
    if (enc == SG_ENC_UNKNOWN) return SGRPC_ERR_BAD_ENCODING;
  } else {
    enc = c->default_enc;
  }
  if (o->deadline != 0 && o->deadline != SGRPC_NEVER) {
    if (o->deadline <= now)
      expired = 1;
    else if ((tmolen = sgrpc_timeout_encode(o->deadline - now, tmo, sizeof(tmo))) < 0)
      return SGRPC_ERR_INVALID_ARGUMENT;
  }
  memcpy(ct, SG_LIT("application/grpc"));
  ctlen = SG_LITLEN("application/grpc");
  if (o->content_subtype && o->content_subtype[0]) {
    size_t sl = strlen(o->content_subtype);
    if (sl > sizeof(ct) - 18) return SGRPC_ERR_INVALID_ARGUMENT;
    ct[ctlen++] = '+';
    memcpy(ct + ctlen, o->content_subtype, sl);
    ctlen += sl;
    if (!sg_h2_value_valid((const uint8_t *)ct, ctlen)) return SGRPC_ERR_INVALID_ARGUMENT;
  }
  if (sg_nv_reserve(c, 10 + o->md_count) != 0) return SGRPC_ERR_NOMEM;
  space_len = md_encoded_size(o->md, o->md_count);
  c->scratch.len = c->scratch.off = 0;
  if (sg_buf_reserve(&c->mem, &c->scratch, space_len + 1) != 0) return SGRPC_ERR_NOMEM;
  space = (char *)c->scratch.p;

  call = sg_call_new(c);
  if (!call) return SGRPC_ERR_NOMEM;
  call->user_data = o->user_data;
  call->on_event = o->on_event;
  if (expired) {
    /* gRPC's outcome for a deadline already past: the call exists and
     * ends DEADLINE_EXCEEDED at once, without a stream or a byte sent. */
    sg_close_info ci = {SGRPC_STATUS_DEADLINE_EXCEEDED,
                        SG_LIT("deadline exceeded before the call started"), .reset = 0};
    if (sg_call_client_finish(call, &ci) != 0) {
      call->flags |= SG_CF_RELEASED;
      sg_call_free(call);
      return c->fatal;
    }
    *pcall = call;
    return 0;
  }

  NV_LIT(&c->nv[n++], ":method", "POST");
  nv_set(&c->nv[n++], SG_LIT(":scheme"), c->settings.scheme, strlen(c->settings.scheme));
  nv_set(&c->nv[n++], SG_LIT(":path"), o->path, plen);
  if (alen) nv_set(&c->nv[n++], SG_LIT(":authority"), o->authority, alen);
  if (tmolen > 0) nv_set(&c->nv[n++], SG_LIT("grpc-timeout"), tmo, (size_t)tmolen);
  NV_LIT(&c->nv[n++], "te", "trailers");
  nv_set(&c->nv[n++], SG_LIT("content-type"), ct, ctlen);
  if (enc != SG_ENC_IDENTITY) {
    const char *en = sg_enc_name(enc);
    nv_set(&c->nv[n++], SG_LIT("grpc-encoding"), en, strlen(en));
  }
  NV_LIT(&c->nv[n++], "grpc-accept-encoding", SG_ACCEPT_ENCODING);
  nv_set(&c->nv[n++], SG_LIT("user-agent"), c->settings.user_agent,
         strlen(c->settings.user_agent));
  n = md_to_nv(c->nv, n, o->md, o->md_count, &space);
  if (!header_list_fits(c, c->nv, n)) {
    call->flags |= SG_CF_RELEASED;
    sg_call_free(call);
    return SGRPC_ERR_METADATA_TOO_LARGE;
  }
  call->send_enc = (int8_t)enc;

  prd.source.ptr = call;
  prd.read_callback = data_read_cb;
  sid = sg_h2_submit_request(c->session, NULL, c->nv, n, &prd, call);
  if (sid < 0) {
    call->flags |= SG_CF_RELEASED;
    sg_call_free(call);
    return ng_to_sg(sid);
  }
  call->stream_id = sid;
  call->flags |= SG_CF_STREAM_OPEN;
  call->send |= SG_SF_HEADERS;
  sg_call_opened(call);
  if (tmolen > 0) {
    call->deadline = o->deadline;
    sg_call_heap_add(call);
  }
  *pcall = call;
  return 0;
}

/* Ends a client call with a status event (see sg_close_info). Returns 0,
 * or -1 when the event could not be queued (the connection becomes
 * fatal). */
int sg_call_client_finish(sgrpc_call *call, const sg_close_info *ci) {
  sgrpc_conn *c = call->conn;
  sg_event *e;
  if (call->state == SG_CALL_CLOSED) return 0;
  sg_call_set_closed(call);
  call->recv |= SG_RF_DISCARD;
  sg_call_heap_remove(call);
  call_drop_sbuf(call); /* the status is known: nothing more is worth sending */
  if (ci->send_rst && (call->flags & SG_CF_STREAM_OPEN) && !c->fatal) {
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                              NGHTTP2_CANCEL);
  }
  if (call->flags & SG_CF_RELEASED) return 0;
  e = sg_event_push(c, SGRPC_EV_CLOSE, call);
  if (!e) goto nomem;
  if (sg_buf_append(&c->mem, &e->owned, ci->msg, ci->msg_len) != 0 ||
      sg_buf_append(&c->mem, &e->owned, "", 1) != 0)
    goto nomem;
  e->ev.u.close.status.code = ci->code;
  e->ev.u.close.status.message = (const char *)e->owned.p;
  e->ev.u.close.status.message_len = ci->msg_len;
  e->ev.u.close.reset = ci->reset;
  e->ev.u.close.http2_error = ci->h2err;
  e->ev.u.close.retry_safe = ci->retry_safe;
  return 0;
nomem:
  if (!c->fatal) c->fatal = SGRPC_ERR_CONN_NOMEM;
  return -1;
}

int sg_api_call_close_send(sgrpc_call *call) {
  int rv;
  if (!call) return SGRPC_ERR_INVALID_ARGUMENT;
  if (call->conn->role != SG_ROLE_CLIENT) return SGRPC_ERR_INVALID_STATE;
  if (call->state == SG_CALL_CLOSED) return SGRPC_ERR_CALL_CLOSED;
  if ((rv = conn_usable(call->conn)) != 0) return rv;
  if (call->send & SG_SF_END) return SGRPC_ERR_INVALID_STATE;
  call->send |= SG_SF_END;
  return sg_call_resume(call);
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

int sg_call_resume(sgrpc_call *call) {
  sgrpc_conn *c = call->conn;
  int rv;
  if (!(call->send & SG_SF_DEFERRED) || !(call->flags & SG_CF_STREAM_OPEN)) return 0;
  call->send &= (uint8_t)~SG_SF_DEFERRED;
  rv = nghttp2_session_resume_data(c->session, call->stream_id);
  if (rv == NGHTTP2_ERR_NOMEM) return SGRPC_ERR_NOMEM;
  return 0; /* other errors: the stream is gone and will report itself */
}

static int submit_trailer_now(sgrpc_call *call) {
  sgrpc_conn *c = call->conn;
  int rv = nghttp2_submit_trailer(c->session, call->stream_id, call->trailer_nv,
                                  call->trailer_nvlen);
  sg_free(c, call->trailer_mem);
  call->trailer_mem = NULL;
  call->trailer_nv = NULL;
  call->trailer_nvlen = 0;
  call->send &= (uint8_t)~SG_SF_STATUS_PENDING;
  return rv;
}

static sgrpc_ssize read_end(sgrpc_call *call, size_t n, uint32_t *data_flags);

/* Bytes were taken from the call's queue: WRITABLE when a blocked send
 * has room again, and calls blocked on the connection limit woken. */
static int after_take(sgrpc_conn *c, sgrpc_call *call, size_t left) {
  if ((call->send & SG_SF_WANT_WRITABLE) && left < c->settings.max_send_buffer &&
      call->state != SG_CALL_CLOSED && !(call->flags & SG_CF_RELEASED)) {
    call->send &= (uint8_t)~SG_SF_WANT_WRITABLE;
    if (!sg_event_push(c, SGRPC_EV_WRITABLE, call)) return -1;
  }
  sg_unblock_calls(c);
  return 0;
}

/* The next DATA frame out of the first borrowed message, framed in
 * place: nghttp2 calls send_data (sg_call_send_data) with its header
 * and the length returned here, which then advances the message. */
static sgrpc_ssize read_chunk(sgrpc_call *call, size_t length, uint32_t *data_flags) {
  sgrpc_conn *c = call->conn;
  sg_chunk *k = call->cq_head;
  size_t left = 5 + k->len - k->sent;
  size_t n = left < length ? left : length;
  sg_queued_sub(c, n);
  if (after_take(c, call, call->cq_bytes - n) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (n == left && !k->next) {
    return read_end(call, n, data_flags); /* n > 0: never deferred */
  }
  return (sgrpc_ssize)n;
}

sgrpc_ssize sg_call_read_data(sgrpc_call *call, uint8_t *buf, size_t length,
                              uint32_t *data_flags) {
  sgrpc_conn *c = call->conn;
  size_t avail = sg_buf_avail(&call->sbuf);
  size_t n = 0;
  if (avail) {
    n = avail < length ? avail : length;
    memcpy(buf, call->sbuf.p + call->sbuf.off, n);
    call->sbuf.off += n;
    sg_queued_sub(c, n);
    avail -= n;
    if (avail == 0) call->sbuf.off = call->sbuf.len = 0;
    if (after_take(c, call, avail + call->cq_bytes) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (avail) return (sgrpc_ssize)n;
  }
  if (call->cq_head) {
    /* borrowed messages follow: in frames of their own */
    if (n) return (sgrpc_ssize)n;
    return read_chunk(call, length, data_flags);
  }
  return read_end(call, n, data_flags);
}

/* What follows the last queued byte: EOF when our side is done. */
static sgrpc_ssize read_end(sgrpc_call *call, size_t n, uint32_t *data_flags) {
  if (call->conn->role == SG_ROLE_CLIENT) {
    if (call->send & SG_SF_END) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      return (sgrpc_ssize)n;
    }
  } else if (call->send & SG_SF_STATUS_PENDING) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    if (submit_trailer_now(call) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (sgrpc_ssize)n;
  }
  if (n) return (sgrpc_ssize)n;
  /* nothing left to send and our side goes on: the send buffer stays
   * empty until the next send (given here, where nghttp2 asks once more
   * after the last bytes, not at every drain: a unary call's path does
   * not pass here and pays nothing for it) */
  call->send |= SG_SF_DEFERRED;
  sbuf_give(call->conn, call);
  return NGHTTP2_ERR_DEFERRED;
}

/* Server: the content-type to answer with: the request's own. */
static const char *request_content_type(sgrpc_call *call, size_t *len) {
  const sg_hdrs *h = &call->hin;
  if (h->ct_field) {
    const sg_field *f = &h->fields[h->ct_field - 1];
    *len = f->value_len;
    return (const char *)h->store.p + f->value_off;
  }
  *len = SG_LITLEN("application/grpc");
  return "application/grpc";
}

/* The response headers of almost every call: no metadata, no
 * compression, the plain content-type. Literals (lowercase names), so
 * nghttp2 need not copy the strings: its copy of the list is then the
 * nv array alone (120 bytes instead of 205 for these three, one per
 * call until the frame is written; a burst of new calls holds one each
 * at once). */
#define NV_CONST(n, v)                                                         \
  { (uint8_t *)(n), (uint8_t *)(v), SG_LITLEN(n), SG_LITLEN(v),                \
    NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE }
static const nghttp2_nv plain_response_nv[] = {
    NV_CONST(":status", "200"), NV_CONST("content-type", "application/grpc"),
    NV_CONST("grpc-accept-encoding", SG_ACCEPT_ENCODING)};

static int server_submit_headers(sgrpc_call *call, const sgrpc_md *md, size_t md_count) {
  sgrpc_conn *c = call->conn;
  size_t n = 0, ctlen, space_len;
  const char *ct = request_content_type(call, &ctlen);
  char *space;
  sg_h2_data_provider prd;
  int rv;
  prd.source.ptr = call;
  prd.read_callback = data_read_cb;
  if (md_count == 0 && call->send_enc <= SG_ENC_IDENTITY &&
      ctlen == SG_LITLEN("application/grpc") && memcmp(ct, SG_LIT("application/grpc")) == 0) {
    /* prepared once: nothing to build */
    if (!header_list_fits(c, plain_response_nv, 3)) return SGRPC_ERR_METADATA_TOO_LARGE;
    rv = sg_h2_submit_response(c->session, call->stream_id, plain_response_nv, 3, &prd);
    if (rv != 0) return ng_to_sg(rv);
    call->send |= SG_SF_HEADERS;
    return 0;
  }
  if (sg_nv_reserve(c, 4 + md_count) != 0) return SGRPC_ERR_NOMEM;
  space_len = md_encoded_size(md, md_count);
  c->scratch.len = c->scratch.off = 0;
  if (sg_buf_reserve(&c->mem, &c->scratch, space_len + 1) != 0) return SGRPC_ERR_NOMEM;
  space = (char *)c->scratch.p;
  NV_LIT(&c->nv[n++], ":status", "200");
  nv_set(&c->nv[n++], SG_LIT("content-type"), ct, ctlen);
  if (call->send_enc > SG_ENC_IDENTITY) {
    const char *en = sg_enc_name(call->send_enc);
    nv_set(&c->nv[n++], SG_LIT("grpc-encoding"), en, strlen(en));
  }
  NV_LIT(&c->nv[n++], "grpc-accept-encoding", SG_ACCEPT_ENCODING);
  n = md_to_nv(c->nv, n, md, md_count, &space);
  if (!header_list_fits(c, c->nv, n)) return SGRPC_ERR_METADATA_TOO_LARGE;
  rv = sg_h2_submit_response(c->session, call->stream_id, c->nv, n, &prd);
  if (rv != 0) return ng_to_sg(rv);
  call->send |= SG_SF_HEADERS;
  return 0;
}

#define SEND_FLAGS (SGRPC_SEND_END | SGRPC_SEND_COMPRESSED | SGRPC_SEND_NO_COMPRESS)

/* Checks a message of len bytes may be queued now and sends the server's
 * initial metadata if due. */
static int send_check(sgrpc_call *call, size_t len) {
  sgrpc_conn *c = call->conn;
  int rv;
  if (call->state == SG_CALL_CLOSED) return SGRPC_ERR_CALL_CLOSED;
  if ((rv = conn_usable(c)) != 0) return rv;
  if (call->send & (SG_SF_END | SG_SF_RESERVED)) return SGRPC_ERR_INVALID_STATE;
  if (len > c->settings.max_send_message_size || len > UINT32_MAX)
    return SGRPC_ERR_MESSAGE_TOO_LARGE;
  if (sg_buf_avail(&call->sbuf) + call->cq_bytes >= c->settings.max_send_buffer) {
    call->send |= SG_SF_WANT_WRITABLE;
    return SGRPC_ERR_WOULDBLOCK;
  }
  if (c->queued >= c->settings.max_outbound_queue) {
    call->send |= SG_SF_WANT_WRITABLE;
    c->conn_blocked = 1;
    return SGRPC_ERR_WOULDBLOCK;
  }
  if (c->role == SG_ROLE_SERVER && !(call->send & SG_SF_HEADERS)) {
    if ((rv = server_submit_headers(call, NULL, 0)) != 0) return rv;
  }
  return 0;
}

/* send_check, then room for 5 + len bytes at the end of the send buffer. */
static int send_prepare(sgrpc_call *call, size_t len) {
  sgrpc_conn *c = call->conn;
  int rv;
  if ((rv = send_check(call, len)) != 0) return rv;
  sg_buf_compact(&call->sbuf);
  if (!call->sbuf.cap) {
    if (c->sbuf_spare) {
      sbuf_take(c, call);
      return sg_buf_reserve(&c->mem, &call->sbuf, 5 + len) != 0 ? SGRPC_ERR_NOMEM : 0;
    }
    /* A call's first buffer fits its first message (rounded up to 16,
     * at least 64): a stream keeps it while it holds bytes, and
     * doubling from 64 left up to half of it unused (256 bytes for a
     * 136-byte echo reply). It grows by doubling from there. */
    size_t cap;
    if (len > SIZE_MAX - 20) return SGRPC_ERR_NOMEM;
    cap = 5 + len < 64 ? 64 : ((5 + len + 15) & ~(size_t)15);
    call->sbuf.p = sg_malloc(c, cap);
    if (!call->sbuf.p) return SGRPC_ERR_NOMEM;
    call->sbuf.cap = cap;
    return 0;
  }
  if (sg_buf_reserve(&c->mem, &call->sbuf, 5 + len) != 0) return SGRPC_ERR_NOMEM;
  return 0;
}

static int send_flags_ok(const sgrpc_call *call, unsigned flags) {
  if (flags & ~(unsigned)SEND_FLAGS) return 0;
  if ((flags & SGRPC_SEND_END) && call->conn->role != SG_ROLE_CLIENT) return 0;
  if ((flags & SGRPC_SEND_COMPRESSED) && call->send_enc <= SG_ENC_IDENTITY) return 0;
  return 1;
}

/* Appends k to the call's queue of borrowed messages. */
static void chunk_queue(sgrpc_call *call, sg_chunk *k) {
  k->refs = 1;
  k->next = NULL;
  if (call->cq_tail) call->cq_tail->next = k;
  else call->cq_head = k;
  call->cq_tail = k;
  call->cq_bytes += 5 + k->len;
}

/* A copied message framed at sbuf[at] while borrowed ones are queued:
 * it must go after them, so it moves into a chunk of its own (rare: a
 * call that mixes both kinds of send). Returns 0 or -1 (no memory). */
static int chunk_from_sbuf(sgrpc_call *call, size_t at, size_t body) {
  sgrpc_conn *c = call->conn;
  sg_chunk *k = sg_malloc(c, sizeof(*k));
  uint8_t *own = sg_malloc(c, body ? body : 1);
  if (!k || !own) {
    sg_free(c, k);
    sg_free(c, own);
    return -1;
  }
  memset(k, 0, sizeof(*k));
  memcpy(k->pfx, call->sbuf.p + at, 5);
  if (body) memcpy(own, call->sbuf.p + at + 5, body);
  k->own = own;
  k->p = own;
  k->len = body;
  call->sbuf.len = at;
  chunk_queue(call, k);
  return 0;
}

/* A large message (sgrpc_call_send, or the rpc layer's reserve and
 * commit) is sent from where it was written instead of being copied
 * twice more (by nghttp2 into its frame, then into the output): when it
 * is all the send buffer holds, the buffer itself becomes its chunk, and
 * the next send starts a new one. Below this size the copies cost less
 * than a new buffer per message. */
#define SG_HANDOVER_MIN (256u << 10)

/* The send buffer holds exactly one framed message at sbuf[at] (nothing
 * before it left to send): it becomes that message's chunk, freed once
 * written. Only the small chunk record is allocated; without memory for
 * it the message stays in sbuf and goes out copied, as before. */
static void chunk_take_sbuf(sgrpc_call *call, size_t at, size_t body) {
  sgrpc_conn *c = call->conn;
  sg_chunk *k = sg_malloc(c, sizeof(*k));
  if (!k) return; /* stays a copied message */
  memset(k, 0, sizeof(*k));
  memcpy(k->pfx, call->sbuf.p + at, 5);
  k->own = call->sbuf.p;
  k->p = call->sbuf.p + at + 5;
  k->len = body;
  memset(&call->sbuf, 0, sizeof(call->sbuf));
  chunk_queue(call, k);
}

/* Frames the message at the end of the send buffer (room made by
 * send_prepare). data may already sit at its place after the prefix
 * slot (reserve/commit); it must not otherwise overlap the buffer. */
static int send_finish(sgrpc_call *call, const uint8_t *data, size_t len, unsigned flags) {
  sgrpc_conn *c = call->conn;
  size_t at = call->sbuf.len, body;
  uint8_t *p;
  int compress = call->send_enc > SG_ENC_IDENTITY &&
                 !(flags & (SGRPC_SEND_COMPRESSED | SGRPC_SEND_NO_COMPRESS)) &&
                 len >= c->settings.compress_min_size;
  if (compress) {
    call->sbuf.len += 5;
    if (sg_compress(c, call->send_enc, data, len, &call->sbuf) != 0) {
      call->sbuf.len = at;
      return SGRPC_ERR_NOMEM;
    }
    body = call->sbuf.len - at - 5;
  } else {
    /* memmove: a committed reservation may have to move down when the
     * buffer drained (and restarted at 0) between reserve and commit */
    if (len && data != call->sbuf.p + at + 5) memmove(call->sbuf.p + at + 5, data, len);
    call->sbuf.len += 5 + len;
    body = len;
  }
  p = call->sbuf.p + at;
  p[0] = (compress || (flags & SGRPC_SEND_COMPRESSED)) ? 1 : 0;
  p[1] = (uint8_t)(body >> 24);
  p[2] = (uint8_t)(body >> 16);
  p[3] = (uint8_t)(body >> 8);
  p[4] = (uint8_t)body;
  if (call->cq_tail && chunk_from_sbuf(call, at, body) != 0) {
    call->sbuf.len = at;
    return SGRPC_ERR_NOMEM;
  }
  if (body >= SG_HANDOVER_MIN && !call->cq_tail && call->sbuf.off == at)
    chunk_take_sbuf(call, at, body);
  sg_queued_add(c, 5 + body);
  c->stats.messages_sent++;
  if (flags & SGRPC_SEND_END) call->send |= SG_SF_END;
  return sg_call_resume(call);
}

int sg_api_call_send(sgrpc_call *call, const uint8_t *data, size_t len, unsigned flags) {
  int rv;
  if (!call || (!data && len) || !send_flags_ok(call, flags)) return SGRPC_ERR_INVALID_ARGUMENT;
  if ((rv = send_prepare(call, len)) != 0) return rv;
  return send_finish(call, data, len, flags);
}

int sg_api_call_send_borrowed(sgrpc_call *call, const uint8_t *data, size_t len,
                               unsigned flags, sgrpc_release_cb release, void *release_ud) {
  sgrpc_conn *c;
  sg_chunk *k;
  int rv;
  if (!call || (!data && len) || !send_flags_ok(call, flags)) return SGRPC_ERR_INVALID_ARGUMENT;
  c = call->conn;
  if (call->send_enc > SG_ENC_IDENTITY &&
      !(flags & (SGRPC_SEND_COMPRESSED | SGRPC_SEND_NO_COMPRESS)) &&
      len >= c->settings.compress_min_size) {
    /* compressed into the send buffer: the caller's bytes are done with */
    if ((rv = sg_api_call_send(call, data, len, flags)) != 0) return rv;
    if (release) release(release_ud, data, len);
    return 0;
  }
  if ((rv = send_check(call, len)) != 0) return rv;
  k = sg_malloc(c, sizeof(*k));
  if (!k) return SGRPC_ERR_NOMEM;
  memset(k, 0, sizeof(*k));
  k->p = data;
  k->len = len;
  k->pfx[0] = (flags & SGRPC_SEND_COMPRESSED) ? 1 : 0;
  k->pfx[1] = (uint8_t)(len >> 24);
  k->pfx[2] = (uint8_t)(len >> 16);
  k->pfx[3] = (uint8_t)(len >> 8);
  k->pfx[4] = (uint8_t)len;
  k->release = release;
  k->release_ud = release_ud;
  chunk_queue(call, k);
  sg_queued_add(c, 5 + len);
  c->stats.messages_sent++;
  if (flags & SGRPC_SEND_END) call->send |= SG_SF_END;
  rv = sg_call_resume(call);
  if (rv != 0) {
    /* queued but nghttp2 could not be told: the send failed, so the
     * message must not go out later and the caller keeps data */
    call->cq_tail = NULL;
    {
      sg_chunk **pp = &call->cq_head;
      while (*pp != k) {
        call->cq_tail = *pp;
        pp = &(*pp)->next;
      }
      *pp = NULL;
    }
    call->cq_bytes -= 5 + len;
    sg_queued_sub(c, 5 + len);
    c->stats.messages_sent--;
    if (flags & SGRPC_SEND_END) call->send &= (uint8_t)~SG_SF_END;
    sg_free(c, k);
  }
  return rv;
}

int sg_api_call_send_reserve(sgrpc_call *call, size_t len, uint8_t **buf) {
  int rv;
  if (!call || !buf) return SGRPC_ERR_INVALID_ARGUMENT;
  *buf = NULL;
  if ((rv = send_prepare(call, len)) != 0) return rv;
  call->send |= SG_SF_RESERVED;
  call->reserved_len = (uint32_t)len;
  call->reserved_at = call->sbuf.len;
  *buf = call->sbuf.p + call->sbuf.len + 5;
  return 0;
}

int sg_api_call_send_commit(sgrpc_call *call, unsigned flags) {
  sgrpc_conn *c;
  const uint8_t *raw;
  size_t len;
  if (!call || !send_flags_ok(call, flags)) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!(call->send & SG_SF_RESERVED)) return SGRPC_ERR_INVALID_STATE;
  c = call->conn;
  call->send &= (uint8_t)~SG_SF_RESERVED;
  len = call->reserved_len;
  /* The call may have ended since the reserve: the bytes are dropped. */
  if (call->state == SG_CALL_CLOSED) return SGRPC_ERR_CALL_CLOSED;
  raw = call->sbuf.p + call->reserved_at + 5;
  if (call->send_enc > SG_ENC_IDENTITY &&
      !(flags & (SGRPC_SEND_COMPRESSED | SGRPC_SEND_NO_COMPRESS)) &&
      len >= c->settings.compress_min_size) {
    /* zlib cannot write over its own input: compress from a copy */
    c->scratch.len = c->scratch.off = 0;
    if (sg_buf_append(&c->mem, &c->scratch, raw, len) != 0) return SGRPC_ERR_NOMEM;
    raw = c->scratch.p;
  }
  return send_finish(call, raw, len, flags);
}

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

int sg_api_call_set_encoding(sgrpc_call *call, const char *encoding) {
  int enc;
  if (!call || !encoding) return SGRPC_ERR_INVALID_ARGUMENT;
  if (call->conn->role != SG_ROLE_SERVER) return SGRPC_ERR_INVALID_STATE;
  if (call->state == SG_CALL_CLOSED) return SGRPC_ERR_CALL_CLOSED;
  if (call->send & SG_SF_HEADERS) return SGRPC_ERR_INVALID_STATE;
  enc = sg_enc_parse(encoding, strlen(encoding));
  if (enc == SG_ENC_UNKNOWN || !((call->accept_mask >> enc) & 1)) return SGRPC_ERR_BAD_ENCODING;
  call->send_enc = (int8_t)enc;
  return 0;
}

int sg_api_call_send_headers(sgrpc_call *call, const sgrpc_md *md, size_t md_count) {
  int rv;
  if (!call) return SGRPC_ERR_INVALID_ARGUMENT;
  if (call->conn->role != SG_ROLE_SERVER) return SGRPC_ERR_INVALID_STATE;
  if (call->state == SG_CALL_CLOSED) return SGRPC_ERR_CALL_CLOSED;
  if ((rv = conn_usable(call->conn)) != 0) return rv;
  if (call->send & (SG_SF_HEADERS | SG_SF_END)) return SGRPC_ERR_INVALID_STATE;
  if ((rv = check_md(md, md_count)) != 0) return rv;
  return server_submit_headers(call, md, md_count);
}

#define STATUS_NV(v) NV_CONST("grpc-status", v)
static const nghttp2_nv status_only_nv[17] = {
    STATUS_NV("0"),  STATUS_NV("1"),  STATUS_NV("2"),  STATUS_NV("3"),  STATUS_NV("4"),
    STATUS_NV("5"),  STATUS_NV("6"),  STATUS_NV("7"),  STATUS_NV("8"),  STATUS_NV("9"),
    STATUS_NV("10"), STATUS_NV("11"), STATUS_NV("12"), STATUS_NV("13"), STATUS_NV("14"),
    STATUS_NV("15"), STATUS_NV("16")};

/* Builds the status fields into one allocation kept in call->trailer_*.
 * http_status > 0 makes it a complete trailers-only header block. */
static int build_status(sgrpc_call *call, int http_status, int code, const char *msg,
                        const uint8_t *details, size_t details_len, const sgrpc_md *md,
                        size_t md_count) {
  sgrpc_conn *c = call->conn;
  size_t msg_len = msg ? strlen(msg) : 0;
  size_t enc_msg, enc_det, nnv, bytes;
  uint8_t *mem;
  nghttp2_nv *nv;
  char *space, *codes, *status3;
  size_t n = 0, ctlen;
  const char *ct;
  if (http_status == 0 && msg_len == 0 && details_len == 0 && md_count == 0 && code >= 0 &&
      code <= 16) {
    /* Trailers that are only grpc-status: constant, nothing to build. */
    if (!header_list_fits(c, &status_only_nv[code], 1)) return SGRPC_ERR_METADATA_TOO_LARGE;
    sg_free(c, call->trailer_mem);
    call->trailer_mem = NULL;
    call->trailer_nv = &status_only_nv[code];
    call->trailer_nvlen = 1;
    return 0;
  }
  enc_msg = msg_len ? sg_pct_encoded_len(msg, msg_len) : 0;
  enc_det = details_len ? sg_b64_encoded_len(details_len) : 0;
  nnv = 7 + md_count;
  bytes = nnv * sizeof(nghttp2_nv) + 16 + 4 + enc_msg + enc_det +
          md_encoded_size(md, md_count) + md_copy_size(md, md_count);
  mem = sg_malloc(c, bytes);
  nv = (nghttp2_nv *)(void *)mem;
  if (!mem) return SGRPC_ERR_NOMEM;
  space = (char *)(mem + nnv * sizeof(nghttp2_nv));
  status3 = space;
  space += 4;
  codes = space;
  space += 16;
  if (http_status > 0) {
    status3[0] = (char)('0' + http_status / 100);
    status3[1] = (char)('0' + http_status / 10 % 10);
    status3[2] = (char)('0' + http_status % 10);
    nv_set(&nv[n++], SG_LIT(":status"), status3, 3);
    if (http_status == 405) goto done; /* a bare HTTP answer */
    ct = request_content_type(call, &ctlen);
    if (http_status != 200) {
      ct = "application/grpc";
      ctlen = SG_LITLEN("application/grpc");
    }
    nv_set(&nv[n++], SG_LIT("content-type"), ct, ctlen);
    NV_LIT(&nv[n++], "grpc-accept-encoding", SG_ACCEPT_ENCODING);
  }
  {
    /* grpc-status in decimal */
    char tmp[12];
    size_t k = 0, i;
    unsigned v = (unsigned)code;
    do {
      tmp[k++] = (char)('0' + v % 10);
      v /= 10;
    } while (v && k < sizeof(tmp));
    for (i = 0; i < k; i++) codes[i] = tmp[k - 1 - i];
    nv_set(&nv[n++], SG_LIT("grpc-status"), codes, k);
  }
  if (enc_msg) {
    sg_pct_encode(msg, msg_len, space);
    nv_set(&nv[n++], SG_LIT("grpc-message"), space, enc_msg);
    space += enc_msg;
  }
  if (enc_det) {
    sg_b64_encode(details, details_len, space);
    nv_set(&nv[n++], SG_LIT("grpc-status-details-bin"), space, enc_det);
    space += enc_det;
  }
  /* Trailers may be submitted long after this returns: copy everything. */
  {
    size_t i;
    for (i = 0; i < md_count; i++) {
      char *k = space, *v;
      size_t vl;
      memcpy(k, md[i].key, md[i].key_len);
      space += md[i].key_len;
      v = space;
      if (sg_key_is_bin(md[i].key, md[i].key_len)) {
        vl = sg_b64_encode(md[i].value, md[i].value_len, v);
      } else {
        vl = md[i].value_len;
        if (vl) memcpy(v, md[i].value, vl);
      }
      space += vl;
      nv_set(&nv[n++], k, md[i].key_len, v, vl);
    }
  }
done:
  if (!header_list_fits(c, nv, n)) {
    sg_free(c, mem);
    return SGRPC_ERR_METADATA_TOO_LARGE;
  }
  sg_free(c, call->trailer_mem);
  call->trailer_mem = mem;
  call->trailer_nv = nv;
  call->trailer_nvlen = n;
  return 0;
}

/* Sends the status: trailers-only when nothing was sent, otherwise as
 * trailers after the buffered messages. */
static int server_end(sgrpc_call *call, int http_status, int code, const char *msg,
                      const uint8_t *details, size_t details_len, const sgrpc_md *md,
                      size_t md_count) {
  sgrpc_conn *c = call->conn;
  int rv;
  if (!(call->send & SG_SF_HEADERS)) {
    rv = build_status(call, http_status ? http_status : 200, code, msg, details,
                      details_len, md, md_count);
    if (rv) return rv;
    rv = sg_h2_submit_response(c->session, call->stream_id, call->trailer_nv,
                                 call->trailer_nvlen, NULL);
    sg_free(c, call->trailer_mem);
    call->trailer_mem = NULL;
    call->trailer_nv = NULL;
    if (rv != 0) return ng_to_sg(rv);
    call->send |= SG_SF_HEADERS;
  } else {
    rv = build_status(call, 0, code, msg, details, details_len, md, md_count);
    if (rv) return rv;
    call->send |= SG_SF_STATUS_PENDING;
    rv = sg_call_resume(call);
    if (rv) return rv;
  }
  call->send |= SG_SF_END;
  call->sent_code = code;
  /* The status is final: a deadline passing while it waits to be written
   * must not reset the stream and replace it with DEADLINE_EXCEEDED. */
  sg_call_heap_remove(call);
  return 0;
}

int sg_api_call_send_status(sgrpc_call *call, const sgrpc_status *st) {
  int rv;
  if (!call || !st || st->code < 0 || st->code > 16 || (st->details_len && !st->details))
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (call->conn->role != SG_ROLE_SERVER) return SGRPC_ERR_INVALID_STATE;
  if (call->state == SG_CALL_CLOSED) return SGRPC_ERR_CALL_CLOSED;
  if ((rv = conn_usable(call->conn)) != 0) return rv;
  if (call->send & SG_SF_END) return SGRPC_ERR_INVALID_STATE;
  if ((rv = check_md(st->md, st->md_count)) != 0) return rv;
  return server_end(call, 0, st->code, st->message, st->details, st->details_len, st->md,
                    st->md_count);
}

/* Server: the engine ends the call itself (bad request, deadline, limit).
 * code < 0 means an HTTP error status -code instead of a gRPC one. Queues
 * the CLOSE event when notify_app and the user holds the call. Returns 0,
 * -1 on no memory. */
int sg_call_server_fail(sgrpc_call *call, int code, const char *msg, int notify_app) {
  sgrpc_conn *c = call->conn;
  int http = 0, gcode = code, rv;
  if (call->state == SG_CALL_CLOSED || c->fatal) return 0;
  if (code < 0) {
    http = -code;
    gcode = http == 400 ? SGRPC_STATUS_INTERNAL : SGRPC_STATUS_UNKNOWN;
  }
  call->recv |= SG_RF_DISCARD;
  sg_call_heap_remove(call);
  if (!(call->send & SG_SF_END)) {
    /* Unsent messages are dropped: the status must go now. */
    call_drop_sbuf(call);
    rv = server_end(call, http, gcode, msg, NULL, 0, NULL, 0);
    if (rv == SGRPC_ERR_NOMEM) {
      c->fatal = SGRPC_ERR_CONN_NOMEM;
      return -1;
    }
  } else if (call->flags & SG_CF_STREAM_OPEN) {
    /* our status is already on its way; make sure the stream ends */
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                              NGHTTP2_CANCEL);
  }
  sg_call_set_closed(call);
  if (notify_app && !(call->flags & SG_CF_RELEASED)) {
    sg_event *e = sg_event_push(c, SGRPC_EV_CLOSE, call);
    if (!e) {
      c->fatal = SGRPC_ERR_CONN_NOMEM;
      return -1;
    }
    e->ev.u.close.status.code = gcode;
    e->ev.u.close.status.message = msg ? msg : "";
    e->ev.u.close.status.message_len = msg ? strlen(msg) : 0;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Both sides                                                          */
/* ------------------------------------------------------------------ */

int sg_api_call_cancel(sgrpc_call *call) {
  sgrpc_conn *c;
  if (!call) return SGRPC_ERR_INVALID_ARGUMENT;
  c = call->conn;
  if (call->state == SG_CALL_CLOSED) return SGRPC_ERR_CALL_CLOSED;
  if ((call->flags & SG_CF_STREAM_OPEN) && !c->fatal && !c->transport_closed) {
    int rv = nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                       NGHTTP2_CANCEL);
    if (rv == NGHTTP2_ERR_NOMEM) return SGRPC_ERR_NOMEM;
  }
  if (c->role == SG_ROLE_CLIENT) {
    sg_close_info ci = {SGRPC_STATUS_CANCELLED, SG_LIT("call cancelled"), .reset = 1,
                        .h2err = NGHTTP2_CANCEL};
    if (sg_call_client_finish(call, &ci) != 0)
      return c->fatal;
    return 0;
  }
  sg_call_set_closed(call);
  call->recv |= SG_RF_DISCARD;
  sg_call_heap_remove(call);
  if (!(call->flags & SG_CF_RELEASED)) {
    sg_event *e = sg_event_push(c, SGRPC_EV_CLOSE, call);
    if (!e) {
      c->fatal = SGRPC_ERR_CONN_NOMEM;
      return c->fatal;
    }
    e->ev.u.close.status.code = SGRPC_STATUS_CANCELLED;
    e->ev.u.close.status.message = "call cancelled";
    e->ev.u.close.status.message_len = SG_LITLEN("call cancelled");
    e->ev.u.close.reset = 1;
    e->ev.u.close.http2_error = NGHTTP2_CANCEL;
  }
  return 0;
}

void sg_api_call_release(sgrpc_call *call) {
  if (!call || (call->flags & SG_CF_RELEASED)) return;
  call->flags |= SG_CF_RELEASED;
  if (call->state != SG_CALL_CLOSED) {
    sg_api_call_cancel(call);
  } else if (call->conn->role == SG_ROLE_CLIENT && (call->flags & SG_CF_STREAM_OPEN) &&
             !call->conn->fatal && !call->conn->transport_closed &&
             nghttp2_session_get_stream_local_close(call->conn->session,
                                                    call->stream_id) == 0) {
    /* The status is known but our side never ended: free the stream.
     * (A server's stream is left alone: its trailers may still be queued.) */
    nghttp2_submit_rst_stream(call->conn->session, NGHTTP2_FLAG_NONE,
                              call->stream_id, NGHTTP2_NO_ERROR);
  }
  /* After a fatal error nghttp2 still runs to flush the GOAWAY and may
   * read this stream's data provider, so only a closed transport (no more
   * output at all) lets the call go before nghttp2 closes the stream. */
  if (call->conn->transport_closed) call->flags &= (uint8_t)~SG_CF_STREAM_OPEN;
  sg_call_maybe_free(call);
}

void sgrpc_call_set_user_data(sgrpc_call *call, void *user_data) {
  if (call) call->user_data = user_data;
}
void *sgrpc_call_get_user_data(const sgrpc_call *call) {
  return call ? call->user_data : NULL;
}

void sgrpc_call_set_callback(sgrpc_call *call, sgrpc_call_cb on_event, void *user_data) {
  if (!call) return;
  call->on_event = on_event;
  call->user_data = user_data;
}

int sgrpc_event_dispatch(const sgrpc_event *ev, int64_t now) {
  sgrpc_call_cb cb;
  if (!ev || !ev->call) return 0;
  cb = ev->call->on_event;
  if (!cb) return 0;
  cb(ev, ev->call_user_data, now);
  return 1;
}
int32_t sgrpc_call_stream_id(const sgrpc_call *call) { return call ? call->stream_id : 0; }
sgrpc_conn *sgrpc_call_conn(const sgrpc_call *call) { return call ? call->conn : NULL; }
