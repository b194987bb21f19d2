/*
 * Internal structures of the engine: the connection and the call, shared
 * by conn.c (the connection, nghttp2 callbacks, output, timers), call.c
 * (the call API), event.c (the event queue) and metadata.c (header
 * blocks).
 *
 * Dependencies run one way between the sources: conn.c uses call.c,
 * event.c and metadata.c; call.c uses event.c and metadata.c; metadata.c
 * uses neither. event.c drops its reference on a call with
 * sg_call_maybe_free (call.c), the one call back up, because a queued
 * event keeps its call alive.
 */
#ifndef SGRPC_CONN_H
#define SGRPC_CONN_H

#include <sgrpc/sgrpc.h>
#include "h2compat.h"

#include "buf.h"
#include "event.h"
#include "metadata.h"

enum {
  SG_ROLE_CLIENT = 0,
  SG_ROLE_SERVER = 1
};

/* The life of a call. A call only moves forward through these. */
typedef enum sg_call_state {
  SG_CALL_IDLE = 0, /* server: request headers arriving; the engine owns it */
  SG_CALL_OPEN,     /* started (client) or surfaced in CALL_NEW (server);
                       counted in conn->open_calls */
  SG_CALL_CLOSED    /* its final event is queued, or it ended unseen: the
                       API returns SGRPC_ERR_CALL_CLOSED */
} sg_call_state;

/* sgrpc_call.flags: the handle and what the engine tracks about it. */
enum {
  SG_CF_RELEASED = 1 << 0,    /* not the user's (returned, or before CALL_NEW) */
  SG_CF_STREAM_OPEN = 1 << 1, /* nghttp2 still knows the stream */
  SG_CF_IN_HEAP = 1 << 2,     /* deadline armed */
  SG_CF_COUNTED = 1 << 3      /* stats: the call's end was counted */
};

/* sgrpc_call.send: our side. */
enum {
  SG_SF_HEADERS = 1 << 0,        /* request / response headers submitted */
  SG_SF_DEFERRED = 1 << 1,       /* the data provider returned NGHTTP2_ERR_DEFERRED */
  SG_SF_END = 1 << 2,            /* client: half-close requested; server: status given */
  SG_SF_STATUS_PENDING = 1 << 3, /* server: trailers wait for the buffer to drain */
  SG_SF_STATUS_SENT = 1 << 4,    /* server: the frame ending our side was sent */
  SG_SF_WANT_WRITABLE = 1 << 5,  /* a send got SGRPC_ERR_WOULDBLOCK */
  SG_SF_RESERVED = 1 << 6        /* a send_reserve awaits its commit */
};

/* sgrpc_call.recv: the peer's side. */
enum {
  SG_RF_END = 1 << 0,     /* peer sent END_STREAM */
  SG_RF_HEADERS = 1 << 1, /* client: response headers seen */
  SG_RF_DISCARD = 1 << 2, /* drop further DATA (the call failed while receiving) */
  SG_RF_CLEN = 1 << 3,    /* server: the request had content-length (clen_left counts) */
  SG_RF_MALFORMED = 1 << 4 /* server: we reset the stream with PROTOCOL_ERROR */
};

/* A message whose body the engine references instead of copying
 * (sgrpc_call_send_borrowed): its 5-byte prefix, the borrowed body, and
 * how much of the 5 + len bytes nghttp2 has framed. The call's queue
 * holds one reference while it is queued; every output entry pointing
 * into it holds one more. The last reference calls release (once) and
 * frees the chunk. An owned copy (own != NULL) is freed instead. */
typedef struct sg_chunk {
  struct sg_chunk *next;  /* the call's queue */
  const uint8_t *p;       /* body */
  size_t len;             /* body bytes */
  size_t sent;            /* of 5 + len: handed to the output */
  uint32_t refs;
  uint8_t pfx[5];
  sgrpc_release_cb release;
  void *release_ud;
  uint8_t *own;           /* a copy the engine made (mixed send order) */
} sg_chunk;

/* One piece of output once referenced bytes are queued: p == NULL means
 * len bytes copied into conn->out (in order), otherwise len borrowed
 * bytes at p, kept alive by a reference on chunk. */
typedef struct sg_oent {
  const uint8_t *p;
  size_t len;
  sg_chunk *chunk;
} sg_oent;

struct sgrpc_call {
  sgrpc_conn *conn;
  void *user_data;
  sgrpc_call_cb on_event; /* the dispatcher's per-call callback, or NULL */
  int32_t stream_id;

  /* The call's life in three parts, as nghttp2 keeps a stream's: a
   * state, and a flag set for each direction. */
  uint8_t state;         /* sg_call_state */
  uint8_t flags;         /* SG_CF_*: the handle and the engine's bookkeeping */
  uint8_t send;          /* SG_SF_*: our side */
  uint8_t recv;          /* SG_RF_*: the peer's side */

  /* receiving */
  uint8_t pfx_have;      /* bytes of the 5-byte prefix collected */
  uint8_t pfx[5];
  uint8_t msg_compressed;
  uint32_t msg_need;     /* body bytes still expected for current message */
  uint32_t msg_len;      /* length of current message */
  size_t held;           /* DATA bytes received, not yet credited or owned by an event */
  uint64_t clen_left;    /* server, SG_RF_CLEN: DATA bytes content-length still announces */

  uint32_t ev_refs;      /* queued events that point at this call */
  uint32_t rec_id;       /* the call's number in a recording (record.c) */
  size_t heap_idx;
  int64_t deadline;

  sg_buf rbuf;           /* reassembly of a message spanning chunks */
  sg_buf spare;          /* recycled reassembly buffer */
  sg_buf sbuf;           /* framed outgoing bytes, read from sbuf.off */

  sg_hdrs hin;           /* request headers (server) / response headers (client) */
  /* trailers (client; a server collects a request's to check them):
   * allocated with the first trailer block and kept by the call cache,
   * so that a server call, which almost never gets one, does not carry
   * 80 bytes for it */
  sg_hdrs *htr;

  /* server: the trailer block waiting to be submitted */
  const nghttp2_nv *trailer_nv;
  size_t trailer_nvlen;
  uint8_t *trailer_mem;  /* one allocation holding trailer_nv and its strings */
  int sent_code;         /* status this side sent (server) */
  int8_t send_enc;       /* SG_ENC_* for messages we send */
  int8_t recv_enc;       /* SG_ENC_* the peer announced (grpc-encoding) */
  uint8_t accept_mask;   /* server: encodings the client accepts (1 << SG_ENC_*) */
  uint32_t reserved_len;
  size_t reserved_at;    /* where the reservation's prefix slot starts */
  /* borrowed messages queued after what sbuf holds (sbuf gets no new
   * bytes while this is not empty: order) */
  sg_chunk *cq_head, *cq_tail;
  size_t cq_bytes;       /* of their 5 + len bytes: not yet framed */

  sgrpc_call *prev, *next;
};

struct sgrpc_conn {
  sgrpc_mem mem;
  nghttp2_mem ngmem;
  sgrpc_settings settings;
  nghttp2_session *session;
  int role;
  int fatal;             /* sticky fatal error code, 0 when healthy */
  uint8_t transport_closed;
  uint8_t goaway_sent;
  /* A GOAWAY with a real last stream id (not the shutdown notice) was
   * queued: request streams above goaway_last_id are refused, even before
   * nghttp2 has written it (output may be blocked for long). */
  uint8_t goaway_final;
  int32_t goaway_last_id;
  uint8_t goaway_recv;
  uint8_t paused;        /* the last mem_recv was paused by a full queue */
  uint8_t out_lost;      /* output nghttp2 produced could not be kept: send no more */
  int64_t now;
  /* the input of the sgrpc_conn_recv running (rbuf_grow's look-ahead) */
  const uint8_t *in_begin, *in_end;

  /* event ring */
  sg_event *evq;
  size_t evq_cap, evq_head, evq_len;
  /* what the last pulled event still owns (released on the next pull) */
  sg_buf retired;
  size_t retired_counted;  /* its message bytes counted against the budget */
  sgrpc_call *retired_call;
  uint8_t retired_is_msg;  /* retired holds a MESSAGE event's bytes */
  uint8_t retired_is_new;  /* the last pulled event was a CALL_NEW */
  char *retired_msg;

  /* output */
  sg_buf out;            /* prepared output; out.off = bytes consumed */
  /* Output with borrowed DATA (NGHTTP2_DATA_FLAG_NO_COPY): while it is
   * not empty, these entries describe every byte of output in order,
   * the copied ones being out's unread bytes. Empty in the common case,
   * where out alone is the output. */
  sg_oent *oq;
  size_t oq_cap, oq_head, oq_len;
  size_t oq_ref_bytes;   /* borrowed bytes the entries still point at */

  /* calls */
  sgrpc_call *calls;     /* list of all calls the engine holds */
  size_t ncalls;
  sgrpc_call *free_calls; /* ended calls kept for reuse, with their buffers */
  size_t nfree_calls;
  sg_buf big_spare; /* a large message buffer kept for the next one (sg_spare_park) */
  /* request header blocks (store, field and metadata arrays) given up
   * by open calls once their CALL_NEW was pulled, for the next requests:
   * a list threaded through the stores (call.c) */
  uint8_t *hdrs_spare;
  uint32_t nhdrs_spare;
  /* small send buffers given up by open calls whose output drained
   * (an idle open call holds none), for the next send on any call: a
   * list threaded through the buffers (call.c) */
  uint8_t *sbuf_spare;
  uint32_t nsbuf_spare;
  uint8_t *ng_free_blocks[9]; /* nghttp2's freed small blocks, by size class */
  uint32_t ng_free_count;
  sgrpc_call **heap;     /* deadline min-heap */
  size_t heap_len, heap_cap;

  /* the header block being received (set by on_begin_headers) */
  sg_hdrs *hblock;
  int32_t hblock_stream;

  /* scratch for building header lists */
  nghttp2_nv *nv;
  size_t nv_cap;
  sg_buf scratch;

  /* GOAWAY debug data kept for the event */
  sg_buf goaway_debug;

  /* compression: zlib streams per codec, created on first use */
  struct z_stream_s *zdef[3], *zinf[3];
  int8_t default_enc;

  /* connection life */
  uint8_t ready;             /* peer SETTINGS seen */
  uint8_t closed_reported;   /* CONN_CLOSED queued */
  uint8_t settings_acked;
  uint8_t shutdown;          /* 0 none, 1 notice sent, 2 final GOAWAY sent */
  int64_t settings_deadline; /* SGRPC_NEVER once acked */
  int64_t shutdown_ping_deadline;
  int64_t drain_deadline;
  int64_t trim_at;           /* the last call ended: kept memory goes back
                                then if none started (SGRPC_NEVER: no) */

  /* keepalive */
  int64_t ka_time;           /* effective keepalive time, SGRPC_NEVER when off */
  int64_t last_recv;         /* now of the last frame received */
  int64_t ka_ack_deadline;   /* SGRPC_NEVER when no keepalive ping is out */
  int64_t last_ping_recv;    /* server ping policy */
  uint32_t ping_strikes;

  /* back-pressure across calls */
  size_t queued;             /* bytes in all calls' send buffers (change it
                                with sg_queued_add / sg_queued_sub) */
  uint8_t conn_blocked;      /* a send was refused for the connection limit */

  /* memory budget (settings.conn_memory_budget, settings.shared_budget) */
  size_t mem_used;           /* bytes counted: reassembly, received messages
                                not released, header blocks, queued output */
  size_t mem_drain;          /* of mem_used: what drains without more input
                                (messages in events, queued output) */
  size_t conn_withheld;      /* connection-level credit held back */

  sgrpc_conn_stats stats;
  /* who is on the other end: the transport's callback (sgrpc_conn_peer) */
  sgrpc_peer_fn peer_fn;
  void *peer_ctx;
  /* the driver's wake hook (sgrpc_conn_set_wake), called by record.c's
   * wrappers after an API call that may have queued work */
  sgrpc_wake_fn wake_fn;
  void *wake_ud;
  uint32_t open_calls;       /* calls surfaced to the user and not yet ended */

  /* recording (record.c): the recorder, or NULL; calls made so far */
  struct sgrpc_recorder *rec;
  uint32_t rec_call_seq;
};

#if defined(__SANITIZE_ADDRESS__)
#define SG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_ASAN 1
#endif
#endif
#ifdef SG_ASAN
/* Memory the engine keeps for reuse is poisoned, so a use after free
 * still trips ASan. */
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define SG_POISON(p, n) __asan_poison_memory_region((p), (n))
#define SG_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define SG_POISON(p, n) ((void)(p), (void)(n))
#define SG_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A budget several connections share (sgrpc_budget_new). */
struct sgrpc_budget {
  sgrpc_mem mem;
  size_t limit;
  size_t used;
};

/* Whether n more bytes fit the connection's budget and the shared one. */
static inline int sg_budget_fits_now(const sgrpc_conn *c, size_t n) {
  const sgrpc_budget *b = c->settings.shared_budget;
  size_t lim = c->settings.conn_memory_budget;
  if (c->mem_used > lim || n > lim - c->mem_used) return 0;
  return !b || (b->used <= b->limit && n <= b->limit - b->used);
}
void sg_spare_drop(sgrpc_conn *c);
/* sg_budget_fits_now, after giving back the kept large buffer (big_spare)
 * when the bytes do not fit with it: a kept buffer never costs a call. */
static inline int sg_budget_fits(sgrpc_conn *c, size_t n) {
  if (sg_budget_fits_now(c, n)) return 1;
  if (!c->big_spare.p) return 0;
  sg_spare_drop(c);
  return sg_budget_fits_now(c, n);
}
/* Counts n bytes against the budgets (the caller checked they fit, or
 * the bytes are queued output, bounded by max_outbound_queue). */
static inline void sg_budget_take(sgrpc_conn *c, size_t n) {
  c->mem_used += n;
  if (c->settings.shared_budget) c->settings.shared_budget->used += n;
}
/* Gives n counted bytes back, and the held-back connection credit once
 * what drains without input is under half the budget again. */
void sg_budget_give(sgrpc_conn *c, size_t n);
/* Keeps a large message buffer the connection no longer uses (cap bytes
 * at p, the connection's allocator) for the next large message, counted
 * against the budget; frees it instead when it is small, smaller than the
 * one kept, or does not fit the budget. */
void sg_spare_park(sgrpc_conn *c, uint8_t *p, size_t cap);
/* Whether release/release_ud is a message taken from this connection
 * (sgrpc_conn_take_message) with its allocator; if so the buffer goes to
 * sg_spare_park instead of being freed, and 1 is returned (event.c). */
int sg_taken_recycle(sgrpc_conn *c, sgrpc_release_cb release, void *release_ud);
/* Whether connection-level credit is held back now. */
static inline int sg_budget_withhold(const sgrpc_conn *c) {
  return c->mem_drain >= c->settings.conn_memory_budget / 2;
}
/* Bytes entering / leaving the calls' send buffers. */
static inline void sg_queued_add(sgrpc_conn *c, size_t n) {
  c->queued += n;
  c->mem_drain += n;
  sg_budget_take(c, n);
}
static inline void sg_queued_sub(sgrpc_conn *c, size_t n) {
  c->queued -= n;
  c->mem_drain -= n;
  sg_budget_give(c, n);
}

/* How long a connection without calls keeps what it caches for the next
 * ones (ended calls, nghttp2's blocks, the event ring, output buffer). */
#define SG_TRIM_AFTER_NS 1000000000ll
/* The trim falls on a multiple of 2^27 ns (134 ms) at most that much
 * before SG_TRIM_AFTER_NS: connections of a busy server that went idle
 * within the same 134 ms are trimmed by one timer instead of one each
 * (a server holding thousands of connections that call now and then
 * otherwise wakes once per call for it). */
#define SG_TRIM_GRAIN_MASK ((int64_t)((1ll << 27) - 1))

/* PING payloads the engine uses for itself (user pings keep theirs). */
#define SG_PING_KEEPALIVE 0x73677270634b41ull /* "sgrpcKA" */
#define SG_PING_SHUTDOWN 0x7367727063534Dull  /* "sgrpcSM" */

/* The SGRPC_ERR_* of a fatal nghttp2 error. */
static inline int sg_map_nghttp2_error(int rv) {
  switch (rv) {
  case NGHTTP2_ERR_NOMEM: return SGRPC_ERR_CONN_NOMEM;
  case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
  case NGHTTP2_ERR_FLOODED:
  case NGHTTP2_ERR_PROTO:
  case NGHTTP2_ERR_HEADER_COMP:
  case NGHTTP2_ERR_FLOW_CONTROL:
  case NGHTTP2_ERR_SETTINGS_EXPECTED:
    return SGRPC_ERR_PROTOCOL;
  default: return SGRPC_ERR_HTTP2;
  }
}

/* allocation through the connection's hooks */
static inline void *sg_malloc(sgrpc_conn *c, size_t n) {
  return c->mem.malloc(n, c->mem.user_data);
}
static inline void *sg_realloc(sgrpc_conn *c, void *p, size_t n) {
  return c->mem.realloc(p, n, c->mem.user_data);
}
static inline void sg_free(sgrpc_conn *c, void *p) {
  if (p) c->mem.free(p, c->mem.user_data);
}

/* How a client call ends (sg_call_client_finish). The message is copied
 * into the CLOSE event. */
typedef struct sg_close_info {
  int code;            /* gRPC status */
  const char *msg;     /* status message, msg_len bytes */
  size_t msg_len;
  uint8_t reset;       /* the stream ended by RST_STREAM (event's reset) */
  uint32_t h2err;      /* its HTTP/2 error code */
  uint8_t retry_safe;  /* the server never processed the call */
  uint8_t send_rst;    /* reset our side of the stream with CANCEL */
} sg_close_info;

/* calls (call.c) */
sgrpc_call *sg_call_new(sgrpc_conn *c);
void sg_call_maybe_free(sgrpc_call *call);
void sg_call_free(sgrpc_call *call);
void sg_call_cache_clear(sgrpc_conn *c);
/* Server: a call's CALL_NEW was pulled and the user has called into the
 * connection since, so the request's header block may go (its strings
 * were borrowed until then); it goes to c->hdrs_spare (up to
 * max_queued_events + 1 of them) or back to the allocator. Kept when the answer needs it (a content-type other than
 * application/grpc is echoed in the response). */
void sg_call_drop_request_hdrs(sgrpc_conn *c, sgrpc_call *call);
/* Gives a new server call a spare header block, if one is kept. */
void sg_call_take_spare_hdrs(sgrpc_conn *c, sgrpc_call *call);
void sg_call_heap_add(sgrpc_call *call);
void sg_call_heap_remove(sgrpc_call *call);
void sg_chunk_unref(sgrpc_conn *c, sg_chunk *k);
int sg_call_send_data(sgrpc_call *call, const uint8_t *framehd, size_t length);
sgrpc_ssize sg_call_read_data(sgrpc_call *call, uint8_t *buf, size_t length,
                              uint32_t *data_flags);
int sg_call_server_fail(sgrpc_call *call, int code, const char *msg,
                        int notify_app);
int sg_call_client_finish(sgrpc_call *call, const sg_close_info *ci);
int sg_call_resume(sgrpc_call *call);
int sg_nv_reserve(sgrpc_conn *c, size_t n);
void sg_conn_closed(sgrpc_conn *c, int reason, const char *why);
int sg_shutdown_final(sgrpc_conn *c);
void sg_call_opened(sgrpc_call *call);
void sg_call_set_closed(sgrpc_call *call);
void sg_unblock_calls(sgrpc_conn *c);

/* The public functions a recorder sees, wrapped in record.c: these are
 * their bodies (same contracts as in <sgrpc/sgrpc.h>). */
sgrpc_ssize sg_api_conn_recv(sgrpc_conn *c, const uint8_t *data, size_t len, int64_t now);
int sg_api_conn_transport_closed(sgrpc_conn *c);
sgrpc_ssize sg_api_conn_out_peek(sgrpc_conn *c, const uint8_t **data);
int sg_api_conn_out_consume(sgrpc_conn *c, size_t n);
sgrpc_ssize sg_api_conn_out_copy(sgrpc_conn *c, uint8_t *buf, size_t cap);
int sg_api_conn_handle_expiry(sgrpc_conn *c, int64_t now);
int sg_api_conn_ping(sgrpc_conn *c, uint64_t opaque);
int sg_api_conn_goaway(sgrpc_conn *c, uint32_t error_code, const char *debug, size_t debug_len);
int sg_api_conn_shutdown(sgrpc_conn *c, int64_t drain_deadline, int64_t now);
int sg_api_conn_next_event(sgrpc_conn *c, sgrpc_event *ev);
int sg_api_call_start(sgrpc_conn *c, const sgrpc_call_opts *o, int64_t now, sgrpc_call **pcall);
int sg_api_call_send(sgrpc_call *call, const uint8_t *data, size_t len, unsigned flags);
int sg_api_call_send_reserve(sgrpc_call *call, size_t len, uint8_t **buf);
int sg_api_call_send_commit(sgrpc_call *call, unsigned flags);
int sg_api_call_set_encoding(sgrpc_call *call, const char *encoding);
int sg_api_call_close_send(sgrpc_call *call);
int sg_api_call_send_headers(sgrpc_call *call, const sgrpc_md *md, size_t md_count);
int sg_api_call_send_status(sgrpc_call *call, const sgrpc_status *st);
int sg_api_call_cancel(sgrpc_call *call);
void sg_api_call_release(sgrpc_call *call);
sgrpc_ssize sg_api_conn_out_peekv(sgrpc_conn *c, sgrpc_iov *iov, size_t max, size_t *count);
int sg_api_conn_trim(sgrpc_conn *c);
int sg_api_call_send_borrowed(sgrpc_call *call, const uint8_t *data, size_t len, unsigned flags,
                              sgrpc_release_cb release, void *release_ud);

/* Tells the driver that an API call may have queued work on c (record.c
 * calls it after every API body that can). One load and a branch when no
 * hook is set. */
static inline void sg_conn_wake(sgrpc_conn *c) {
  if (c && c->wake_fn) c->wake_fn(c->wake_ud);
}

#endif
