/*
 * Recording and replay of one connection (<sgrpc/record.h>,
 * docs/record-replay.md).
 *
 * The public functions that change a connection or take its output are
 * defined here as thin wrappers: each calls its body (sg_api_* in conn.c,
 * call.c, event.c) and, when a recorder is set, writes one record with
 * the arguments and the result. The wrappers cost one pointer test when
 * no recorder is set. A nested call (sgrpc_conn_out_copy uses peek and
 * consume, sgrpc_call_release may cancel) records only the outer call:
 * the bodies call each other directly. The wrappers of calls that may
 * queue work for the driver end with its wake hook (sgrpc_conn_set_wake),
 * one pointer test when none is set.
 *
 * Replay drives a fresh engine with a recorder whose sink compares every
 * record it is given with the recorded one, so "the same output and
 * events" is checked in the recording's own encoding.
 */
#include <sgrpc/record.h>

#include <zlib.h>

#include "conn.h"

/* Longest record header: type, a 10-byte zigzag varint, a 10-byte varint. */
#define REC_HDR_MAX 21
/* Room kept for the TRUNCATED record under max_bytes. */
#define REC_TRUNC_LEN 4
#define REC_MIN_CAP 64

struct sgrpc_recorder {
  sgrpc_mem mem;
  sgrpc_recorder_opts opts;
  int state;
  uint8_t busy;  /* inside a recorded call: nested ones are not recorded */
  uint8_t oom;   /* assembling the current record failed */
  uint64_t bytes;
  int64_t last_now;
  sg_buf buf;    /* REC_HDR_MAX bytes of room, then the payload */
};

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

static void put(sgrpc_recorder *r, const void *d, size_t n) {
  if (r->oom) return;
  if (sg_buf_append(&r->mem, &r->buf, d, n) != 0) r->oom = 1;
}

static size_t uv_enc(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

static uint64_t zz(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzz(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static void put_u(sgrpc_recorder *r, uint64_t v) {
  uint8_t b[10];
  put(r, b, uv_enc(b, v));
}
static void put_s(sgrpc_recorder *r, int64_t v) { put_u(r, zz(v)); }
static void put_bytes(sgrpc_recorder *r, const void *d, size_t n) {
  put_u(r, n);
  put(r, d, n);
}
/* A string that may be NULL: length + 1, or 0 for NULL. */
static void put_str(sgrpc_recorder *r, const char *s) {
  size_t n;
  if (!s) {
    put_u(r, 0);
    return;
  }
  n = strlen(s);
  put_u(r, (uint64_t)n + 1);
  put(r, s, n);
}
static void put_md(sgrpc_recorder *r, const sgrpc_md *md, size_t n) {
  size_t i;
  if (!md) n = 0;
  put_u(r, n);
  for (i = 0; i < n; i++) {
    put_bytes(r, md[i].key, md[i].key ? md[i].key_len : 0);
    put_bytes(r, md[i].value, md[i].value ? md[i].value_len : 0);
  }
}
/* Output or message bytes: as they are, or length and CRC-32. */
static void put_payload(sgrpc_recorder *r, const uint8_t *d, size_t n) {
  if (r->opts.flags & SGRPC_RECORD_DIGEST) {
    uLong crc = crc32(0L, Z_NULL, 0);
    size_t off = 0;
    uint8_t b[4];
    while (off < n) {
      uInt chunk = n - off > 0x40000000u ? 0x40000000u : (uInt)(n - off);
      crc = crc32(crc, d + off, chunk);
      off += chunk;
    }
    put_u(r, n);
    b[0] = (uint8_t)(crc >> 24);
    b[1] = (uint8_t)(crc >> 16);
    b[2] = (uint8_t)(crc >> 8);
    b[3] = (uint8_t)crc;
    put(r, b, 4);
  } else {
    put_bytes(r, d, n);
  }
}

static int sink(sgrpc_recorder *r, const uint8_t *d, size_t n) {
  if (r->opts.write(d, n, r->opts.user_data) < 0) {
    r->state = SGRPC_RECORDER_FAILED;
    return -1;
  }
  r->bytes += n;
  return 0;
}

/* Writes the TRUNCATED record and stops. */
static void stop(sgrpc_recorder *r, int64_t now, int why) {
  uint8_t b[REC_HDR_MAX + 2];
  size_t n = 0;
  b[n++] = SGRPC_REC_TRUNCATED;
  n += uv_enc(b + n, zz(0));
  b[n++] = 1;
  b[n++] = (uint8_t)why;
  (void)now;
  if (sink(r, b, n) == 0) r->state = SGRPC_RECORDER_TRUNCATED;
}

/* Starts a record: payload bytes follow with put_*. */
static void begin(sgrpc_recorder *r) {
  r->oom = 0;
  r->buf.off = 0;
  r->buf.len = REC_HDR_MAX;
}

/* Finishes the record begun last and gives it to the sink. */
static void finish(sgrpc_recorder *r, int type, int64_t now) {
  uint8_t h[REC_HDR_MAX];
  size_t hn = 0, plen, total;
  if (r->state != SGRPC_RECORDER_ACTIVE) return;
  if (r->oom) {
    stop(r, now, SGRPC_RECORD_STOP_NOMEM);
    return;
  }
  plen = r->buf.len - REC_HDR_MAX;
  h[hn++] = (uint8_t)type;
  hn += uv_enc(h + hn, zz((int64_t)((uint64_t)now - (uint64_t)r->last_now)));
  hn += uv_enc(h + hn, plen);
  total = hn + plen;
  if (r->opts.max_bytes &&
      (r->bytes + total + REC_TRUNC_LEN > r->opts.max_bytes || total > r->opts.max_bytes)) {
    stop(r, now, SGRPC_RECORD_STOP_CAP);
    return;
  }
  memcpy(r->buf.p + REC_HDR_MAX - hn, h, hn);
  if (sink(r, r->buf.p + REC_HDR_MAX - hn, total) == 0) r->last_now = now;
}

/* Whether the wrapper of conn c records this call (not a nested one). */
static sgrpc_recorder *rec_of(sgrpc_conn *c) {
  sgrpc_recorder *r = c ? c->rec : NULL;
  if (!r || r->busy || r->state != SGRPC_RECORDER_ACTIVE) return NULL;
  return r;
}

/* ------------------------------------------------------------------ */
/* Recorder                                                            */
/* ------------------------------------------------------------------ */

int sgrpc_recorder_new(sgrpc_recorder **prec, const sgrpc_recorder_opts *opts,
                       const sgrpc_mem *mem) {
  sgrpc_mem m;
  sgrpc_recorder *r;
  if (!prec) return SGRPC_ERR_INVALID_ARGUMENT;
  *prec = NULL;
  if (!opts || !opts->write || sgrpc_mem_resolve(&m, mem) != 0)
    return SGRPC_ERR_INVALID_ARGUMENT;
  r = m.calloc(1, sizeof(*r), m.user_data);
  if (!r) return SGRPC_ERR_NOMEM;
  r->mem = m;
  r->opts = *opts;
  if (r->opts.max_bytes && r->opts.max_bytes < REC_MIN_CAP) r->opts.max_bytes = REC_MIN_CAP;
  /* The common records fit here, so recording rarely allocates. */
  if (sg_buf_reserve(&m, &r->buf, 256) != 0) {
    m.free(r, m.user_data);
    return SGRPC_ERR_NOMEM;
  }
  *prec = r;
  return 0;
}

void sgrpc_recorder_del(sgrpc_recorder *r) {
  sgrpc_mem m;
  if (!r) return;
  m = r->mem;
  sg_buf_free(&m, &r->buf);
  m.free(r, m.user_data);
}

int sgrpc_recorder_state(const sgrpc_recorder *r) { return r ? r->state : SGRPC_RECORDER_IDLE; }
uint64_t sgrpc_recorder_bytes(const sgrpc_recorder *r) { return r ? r->bytes : 0; }

static void put_settings(sgrpc_recorder *r, const sgrpc_settings *s) {
  put_u(r, s->max_recv_message_size);
  put_u(r, s->max_send_message_size);
  put_u(r, s->max_send_buffer);
  put_u(r, s->max_header_list_size);
  put_u(r, s->stream_window);
  put_u(r, s->connection_window);
  put_u(r, s->max_concurrent_streams);
  put_u(r, s->max_queued_events);
  put_u(r, s->out_chunk);
  put_str(r, s->scheme);
  put_str(r, s->user_agent);
  put_str(r, s->encoding);
  put_u(r, s->compress_min_size);
  put_s(r, s->keepalive_time);
  put_s(r, s->keepalive_timeout);
  put_s(r, s->keepalive_permit_without_calls);
  put_s(r, s->min_recv_ping_interval);
  put_u(r, s->max_ping_strikes);
  put_u(r, s->max_send_header_list_size);
  put_u(r, s->max_outbound_queue);
  put_s(r, s->settings_timeout);
  put_u(r, s->conn_memory_budget);
  put_u(r, s->shared_budget ? 1 : 0);
}

int sgrpc_conn_set_recorder(sgrpc_conn *c, sgrpc_recorder *r) {
  uint8_t h[SGRPC_RECORD_HEADER_LEN];
  if (!c || !r) return SGRPC_ERR_INVALID_ARGUMENT;
  if (c->rec || r->state != SGRPC_RECORDER_IDLE) return SGRPC_ERR_INVALID_STATE;
  if (c->stats.bytes_received || c->stats.bytes_sent || c->ncalls || c->evq_len ||
      sg_buf_avail(&c->out) || c->goaway_sent || c->shutdown || c->fatal ||
      c->transport_closed)
    return SGRPC_ERR_INVALID_STATE;
  memset(h, 0, sizeof(h));
  memcpy(h, SGRPC_RECORD_MAGIC, 8);
  h[9] = SGRPC_RECORD_VERSION;
  h[11] = (uint8_t)(r->opts.flags & SGRPC_RECORD_DIGEST);
  r->state = SGRPC_RECORDER_ACTIVE;
  r->last_now = 0;
  c->rec = r;
  if (sink(r, h, sizeof(h)) != 0) return 0;
  begin(r);
  put_u(r, c->role == SG_ROLE_SERVER ? 1 : 0);
  put_settings(r, &c->settings);
  finish(r, SGRPC_REC_CONN, c->now);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Wrappers                                                            */
/* ------------------------------------------------------------------ */

/* The stream id a call has now (client calls get theirs when their
 * HEADERS go out). */
static void put_call(sgrpc_recorder *r, const sgrpc_call *call) {
  put_u(r, call->rec_id);
  put_u(r, (uint32_t)call->stream_id);
}

sgrpc_ssize sgrpc_conn_recv(sgrpc_conn *c, const uint8_t *data, size_t len, int64_t now) {
  sgrpc_recorder *r = rec_of(c);
  sgrpc_ssize rv;
  if (!r) return sg_api_conn_recv(c, data, len, now);
  r->busy = 1;
  rv = sg_api_conn_recv(c, data, len, now);
  r->busy = 0;
  begin(r);
  put_s(r, rv);
  put(r, data, data ? len : 0);
  finish(r, SGRPC_REC_RECV, now);
  return rv;
}

int sgrpc_conn_transport_closed(sgrpc_conn *c) {
  sgrpc_recorder *r = rec_of(c);
  int rv;
  if (!r) return sg_api_conn_transport_closed(c);
  r->busy = 1;
  rv = sg_api_conn_transport_closed(c);
  r->busy = 0;
  begin(r);
  put_s(r, rv);
  finish(r, SGRPC_REC_TRANSPORT_CLOSED, c->now);
  return rv;
}

sgrpc_ssize sgrpc_conn_out_peek(sgrpc_conn *c, const uint8_t **data) {
  sgrpc_recorder *r = rec_of(c);
  sgrpc_ssize rv;
  if (!r || !data) return sg_api_conn_out_peek(c, data);
  r->busy = 1;
  rv = sg_api_conn_out_peek(c, data);
  r->busy = 0;
  begin(r);
  put_s(r, rv);
  finish(r, SGRPC_REC_OUT_PEEK, c->now);
  return rv;
}

/* The n output bytes consume is about to take, as one payload: from the
 * output buffer, or gathered over the queue of copied and borrowed pieces
 * (sgrpc_call_send_borrowed) when there is one. An n larger than what is
 * pending records no bytes (consume refuses it). */
static void put_out_payload(sgrpc_recorder *r, const sgrpc_conn *c, size_t n) {
  size_t i, left, at, pending = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  if (!c->oq_len) {
    if (n <= sg_buf_avail(&c->out)) put_payload(r, c->out.p + c->out.off, n);
    else put_payload(r, NULL, 0);
    return;
  }
  for (i = 0; i < c->oq_len; i++) pending += c->oq[c->oq_head + i].len;
  if (n > pending) {
    put_payload(r, NULL, 0);
    return;
  }
  put_u(r, n);
  at = c->out.off;
  for (i = 0, left = n; left && i < c->oq_len; i++) {
    const sg_oent *e = &c->oq[c->oq_head + i];
    const uint8_t *p = e->p ? e->p : c->out.p + at;
    size_t take = e->len < left ? e->len : left;
    if (!e->p) at += e->len;
    if (r->opts.flags & SGRPC_RECORD_DIGEST) crc = crc32(crc, p, (uInt)take);
    else put(r, p, take);
    left -= take;
  }
  if (r->opts.flags & SGRPC_RECORD_DIGEST) {
    uint8_t b[4];
    b[0] = (uint8_t)(crc >> 24);
    b[1] = (uint8_t)(crc >> 16);
    b[2] = (uint8_t)(crc >> 8);
    b[3] = (uint8_t)crc;
    put(r, b, 4);
  }
}

sgrpc_ssize sgrpc_conn_out_peekv(sgrpc_conn *c, sgrpc_iov *iov, size_t max, size_t *count) {
  sgrpc_recorder *r = rec_of(c);
  sgrpc_ssize rv;
  if (!r || !iov || !count) return sg_api_conn_out_peekv(c, iov, max, count);
  r->busy = 1;
  rv = sg_api_conn_out_peekv(c, iov, max, count);
  r->busy = 0;
  begin(r);
  put_u(r, max);
  put_s(r, rv);
  put_u(r, *count);
  finish(r, SGRPC_REC_OUT_PEEKV, c->now);
  return rv;
}

int sgrpc_conn_trim(sgrpc_conn *c) {
  sgrpc_recorder *r = rec_of(c);
  int rv;
  if (!r) return sg_api_conn_trim(c);
  r->busy = 1;
  rv = sg_api_conn_trim(c);
  r->busy = 0;
  begin(r);
  put_s(r, rv);
  finish(r, SGRPC_REC_TRIM, c->now);
  return rv;
}

int sgrpc_conn_out_consume(sgrpc_conn *c, size_t n) {
  sgrpc_recorder *r = rec_of(c);
  int rv;
  if (!r) return sg_api_conn_out_consume(c, n);
  begin(r);
  put_u(r, n);
  /* the bytes are read before consume may reset the buffer */
  put_out_payload(r, c, n);
  r->busy = 1;
  rv = sg_api_conn_out_consume(c, n);
  r->busy = 0;
  put_s(r, rv);
  finish(r, SGRPC_REC_OUT_CONSUME, c->now);
  return rv;
}

sgrpc_ssize sgrpc_conn_out_copy(sgrpc_conn *c, uint8_t *buf, size_t cap) {
  sgrpc_recorder *r = rec_of(c);
  sgrpc_ssize rv;
  if (!r) return sg_api_conn_out_copy(c, buf, cap);
  r->busy = 1;
  rv = sg_api_conn_out_copy(c, buf, cap);
  r->busy = 0;
  begin(r);
  put_u(r, cap);
  put_s(r, rv);
  put_payload(r, buf, rv > 0 ? (size_t)rv : 0);
  finish(r, SGRPC_REC_OUT_COPY, c->now);
  return rv;
}

int sgrpc_conn_handle_expiry(sgrpc_conn *c, int64_t now) {
  sgrpc_recorder *r = rec_of(c);
  int rv;
  if (!r) return sg_api_conn_handle_expiry(c, now);
  r->busy = 1;
  rv = sg_api_conn_handle_expiry(c, now);
  r->busy = 0;
  begin(r);
  put_s(r, rv);
  finish(r, SGRPC_REC_EXPIRY, now);
  return rv;
}

static int rec_conn_ping(sgrpc_conn *c, uint64_t opaque) {
  sgrpc_recorder *r = rec_of(c);
  int rv;
  if (!r) return sg_api_conn_ping(c, opaque);
  r->busy = 1;
  rv = sg_api_conn_ping(c, opaque);
  r->busy = 0;
  begin(r);
  put_u(r, opaque);
  put_s(r, rv);
  finish(r, SGRPC_REC_PING, c->now);
  return rv;
}

int sgrpc_conn_ping(sgrpc_conn *c, uint64_t opaque) {
  sgrpc_conn *wc = c;
  int rv = rec_conn_ping(c, opaque);
  sg_conn_wake(wc);
  return rv;
}

static int rec_conn_goaway(sgrpc_conn *c, uint32_t error_code, const char *debug, size_t debug_len) {
  sgrpc_recorder *r = rec_of(c);
  int rv;
  if (!r) return sg_api_conn_goaway(c, error_code, debug, debug_len);
  r->busy = 1;
  rv = sg_api_conn_goaway(c, error_code, debug, debug_len);
  r->busy = 0;
  begin(r);
  put_u(r, error_code);
  put_bytes(r, debug, debug ? debug_len : 0);
  put_s(r, rv);
  finish(r, SGRPC_REC_GOAWAY, c->now);
  return rv;
}

int sgrpc_conn_goaway(sgrpc_conn *c, uint32_t error_code, const char *debug, size_t debug_len) {
  sgrpc_conn *wc = c;
  int rv = rec_conn_goaway(c, error_code, debug, debug_len);
  sg_conn_wake(wc);
  return rv;
}

static int rec_conn_shutdown(sgrpc_conn *c, int64_t drain_deadline, int64_t now) {
  sgrpc_recorder *r = rec_of(c);
  int rv;
  if (!r) return sg_api_conn_shutdown(c, drain_deadline, now);
  r->busy = 1;
  rv = sg_api_conn_shutdown(c, drain_deadline, now);
  r->busy = 0;
  begin(r);
  put_s(r, drain_deadline);
  put_s(r, rv);
  finish(r, SGRPC_REC_SHUTDOWN, now);
  return rv;
}

int sgrpc_conn_shutdown(sgrpc_conn *c, int64_t drain_deadline, int64_t now) {
  sgrpc_conn *wc = c;
  int rv = rec_conn_shutdown(c, drain_deadline, now);
  sg_conn_wake(wc);
  return rv;
}

/* An event as the EVENT record holds it (docs/record-replay.md). */
static void put_event(sgrpc_recorder *r, const sgrpc_event *ev) {
  put_u(r, (unsigned)ev->type);
  if (ev->call) put_call(r, ev->call);
  else {
    put_u(r, 0);
    put_u(r, 0);
  }
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW:
    put_bytes(r, ev->u.call_new.path, ev->u.call_new.path_len);
    put_str(r, ev->u.call_new.authority);
    put_str(r, ev->u.call_new.user_agent);
    put_str(r, ev->u.call_new.content_type);
    put_str(r, ev->u.call_new.encoding);
    put_str(r, ev->u.call_new.accept_encoding);
    put_s(r, ev->u.call_new.deadline);
    put_md(r, ev->u.call_new.md, ev->u.call_new.md_count);
    break;
  case SGRPC_EV_HEADERS:
    put_str(r, ev->u.headers.encoding);
    put_md(r, ev->u.headers.md, ev->u.headers.md_count);
    break;
  case SGRPC_EV_MESSAGE:
    put_u(r, ev->u.message.compressed ? 1 : 0);
    put_payload(r, ev->u.message.data, ev->u.message.len);
    break;
  case SGRPC_EV_CLOSE:
    put_s(r, ev->u.close.status.code);
    put_bytes(r, ev->u.close.status.message, ev->u.close.status.message_len);
    put_bytes(r, ev->u.close.status.details, ev->u.close.status.details_len);
    put_md(r, ev->u.close.status.md, ev->u.close.status.md_count);
    put_u(r, ev->u.close.reset ? 1 : 0);
    put_u(r, ev->u.close.http2_error);
    put_u(r, ev->u.close.retry_safe ? 1 : 0);
    break;
  case SGRPC_EV_GOAWAY:
    put_u(r, ev->u.goaway.error_code);
    put_s(r, ev->u.goaway.last_stream_id);
    put_bytes(r, ev->u.goaway.debug, ev->u.goaway.debug_len);
    break;
  case SGRPC_EV_PING_ACK:
    put_u(r, ev->u.ping_ack.opaque);
    break;
  case SGRPC_EV_CONN_CLOSED:
    put_s(r, ev->u.conn_closed.reason);
    break;
  default:
    break;
  }
}

int sgrpc_conn_next_event(sgrpc_conn *c, sgrpc_event *ev) {
  sgrpc_recorder *r = rec_of(c);
  int rv;
  if (!r || !ev) return sg_api_conn_next_event(c, ev);
  r->busy = 1;
  rv = sg_api_conn_next_event(c, ev);
  r->busy = 0;
  begin(r);
  put_s(r, rv);
  if (rv == 1) put_event(r, ev);
  finish(r, SGRPC_REC_EVENT, c->now);
  return rv;
}

static int rec_call_start(sgrpc_conn *c, const sgrpc_call_opts *o, int64_t now, sgrpc_call **pcall) {
  sgrpc_recorder *r = rec_of(c);
  int rv;
  if (!r || !o || !pcall) return sg_api_call_start(c, o, now, pcall);
  r->busy = 1;
  rv = sg_api_call_start(c, o, now, pcall);
  r->busy = 0;
  begin(r);
  put_s(r, rv);
  put_u(r, rv == 0 && *pcall ? (*pcall)->rec_id : 0);
  put_str(r, o->path);
  put_str(r, o->authority);
  put_s(r, o->deadline);
  put_str(r, o->content_subtype);
  put_str(r, o->encoding);
  put_s(r, o->wait_for_ready);
  put_md(r, o->md, o->md_count);
  finish(r, SGRPC_REC_CALL_START, now);
  return rv;
}

int sgrpc_call_start(sgrpc_conn *c, const sgrpc_call_opts *o, int64_t now, sgrpc_call **pcall) {
  sgrpc_conn *wc = c;
  int rv = rec_call_start(c, o, now, pcall);
  sg_conn_wake(wc);
  return rv;
}

/* The recorder of a call's connection, when the call is recorded. */
static sgrpc_recorder *call_rec(sgrpc_call *call) { return call ? rec_of(call->conn) : NULL; }

static int rec_call_send(sgrpc_call *call, const uint8_t *data, size_t len, unsigned flags) {
  sgrpc_recorder *r = call_rec(call);
  int rv;
  if (!r) return sg_api_call_send(call, data, len, flags);
  r->busy = 1;
  rv = sg_api_call_send(call, data, len, flags);
  r->busy = 0;
  begin(r);
  put_call(r, call);
  put_u(r, flags);
  put_s(r, rv);
  /* A refused send queued nothing (WOULDBLOCK above all, which a busy
   * sender meets often): its length decides the outcome, not its bytes. */
  if (rv == 0) put_bytes(r, data, data ? len : 0);
  else put_u(r, len);
  finish(r, SGRPC_REC_CALL_SEND, call->conn->now);
  return rv;
}

int sgrpc_call_send(sgrpc_call *call, const uint8_t *data, size_t len, unsigned flags) {
  sgrpc_conn *wc = call ? call->conn : NULL;
  int rv = rec_call_send(call, data, len, flags);
  sg_conn_wake(wc);
  return rv;
}

static int rec_call_send_borrowed(sgrpc_call *call, const uint8_t *data, size_t len, unsigned flags,
                             sgrpc_release_cb release, void *release_ud) {
  sgrpc_recorder *r = call_rec(call);
  size_t mark;
  int rv;
  if (!r) return sg_api_call_send_borrowed(call, data, len, flags, release, release_ud);
  /* The bytes go into the record before the call: a compressed send
   * releases them inside it. A refused send keeps only the length, as
   * sgrpc_call_send's record does. */
  begin(r);
  put_call(r, call);
  put_u(r, flags);
  mark = r->buf.len;
  put_u(r, 1);
  put_bytes(r, data, data ? len : 0);
  r->busy = 1;
  rv = sg_api_call_send_borrowed(call, data, len, flags, release, release_ud);
  r->busy = 0;
  if (rv != 0 && !r->oom) {
    r->buf.len = mark;
    put_u(r, 0);
    put_u(r, len);
  }
  put_s(r, rv);
  finish(r, SGRPC_REC_CALL_SEND_BORROWED, call->conn->now);
  return rv;
}

int sgrpc_call_send_borrowed(sgrpc_call *call, const uint8_t *data, size_t len, unsigned flags,
                             sgrpc_release_cb release, void *release_ud) {
  sgrpc_conn *wc = call ? call->conn : NULL;
  int rv = rec_call_send_borrowed(call, data, len, flags, release, release_ud);
  sg_conn_wake(wc);
  return rv;
}

int sgrpc_call_send_reserve(sgrpc_call *call, size_t len, uint8_t **buf) {
  sgrpc_recorder *r = call_rec(call);
  int rv;
  if (!r) return sg_api_call_send_reserve(call, len, buf);
  r->busy = 1;
  rv = sg_api_call_send_reserve(call, len, buf);
  r->busy = 0;
  begin(r);
  put_call(r, call);
  put_u(r, len);
  put_s(r, rv);
  finish(r, SGRPC_REC_CALL_RESERVE, call->conn->now);
  return rv;
}

static int rec_call_send_commit(sgrpc_call *call, unsigned flags) {
  sgrpc_recorder *r = call_rec(call);
  int rv;
  if (!r) return sg_api_call_send_commit(call, flags);
  begin(r);
  put_call(r, call);
  put_u(r, flags);
  /* what the application wrote into the reservation, read before the
   * commit frames (or compresses) it */
  if (call->send & SG_SF_RESERVED)
    put_bytes(r, call->sbuf.p + call->reserved_at + 5, call->reserved_len);
  else
    put_bytes(r, NULL, 0);
  r->busy = 1;
  rv = sg_api_call_send_commit(call, flags);
  r->busy = 0;
  put_s(r, rv);
  finish(r, SGRPC_REC_CALL_COMMIT, call->conn->now);
  return rv;
}

int sgrpc_call_send_commit(sgrpc_call *call, unsigned flags) {
  sgrpc_conn *wc = call ? call->conn : NULL;
  int rv = rec_call_send_commit(call, flags);
  sg_conn_wake(wc);
  return rv;
}

int sgrpc_call_set_encoding(sgrpc_call *call, const char *encoding) {
  sgrpc_recorder *r = call_rec(call);
  int rv;
  if (!r) return sg_api_call_set_encoding(call, encoding);
  r->busy = 1;
  rv = sg_api_call_set_encoding(call, encoding);
  r->busy = 0;
  begin(r);
  put_call(r, call);
  put_str(r, encoding);
  put_s(r, rv);
  finish(r, SGRPC_REC_CALL_SET_ENCODING, call->conn->now);
  return rv;
}

/* The wrapper of the call functions that take only the call. */
static int simple_call(sgrpc_call *call, int (*fn)(sgrpc_call *), int type) {
  sgrpc_recorder *r = call_rec(call);
  sgrpc_conn *wc = call ? call->conn : NULL;
  int rv;
  if (!r) {
    rv = fn(call);
    sg_conn_wake(wc);
    return rv;
  }
  r->busy = 1;
  rv = fn(call);
  r->busy = 0;
  begin(r);
  put_call(r, call);
  put_s(r, rv);
  finish(r, type, call->conn->now);
  sg_conn_wake(wc);
  return rv;
}

int sgrpc_call_close_send(sgrpc_call *call) {
  return simple_call(call, sg_api_call_close_send, SGRPC_REC_CALL_CLOSE_SEND);
}

int sgrpc_call_cancel(sgrpc_call *call) {
  return simple_call(call, sg_api_call_cancel, SGRPC_REC_CALL_CANCEL);
}

static int rec_call_send_headers(sgrpc_call *call, const sgrpc_md *md, size_t md_count) {
  sgrpc_recorder *r = call_rec(call);
  int rv;
  if (!r) return sg_api_call_send_headers(call, md, md_count);
  r->busy = 1;
  rv = sg_api_call_send_headers(call, md, md_count);
  r->busy = 0;
  begin(r);
  put_call(r, call);
  put_md(r, md, md_count);
  put_s(r, rv);
  finish(r, SGRPC_REC_CALL_SEND_HEADERS, call->conn->now);
  return rv;
}

int sgrpc_call_send_headers(sgrpc_call *call, const sgrpc_md *md, size_t md_count) {
  sgrpc_conn *wc = call ? call->conn : NULL;
  int rv = rec_call_send_headers(call, md, md_count);
  sg_conn_wake(wc);
  return rv;
}

static int rec_call_send_status(sgrpc_call *call, const sgrpc_status *st) {
  sgrpc_recorder *r = call_rec(call);
  int rv;
  if (!r || !st) return sg_api_call_send_status(call, st);
  r->busy = 1;
  rv = sg_api_call_send_status(call, st);
  r->busy = 0;
  begin(r);
  put_call(r, call);
  put_s(r, st->code);
  put_str(r, st->message);
  put_bytes(r, st->details, st->details ? st->details_len : 0);
  put_md(r, st->md, st->md_count);
  put_s(r, rv);
  finish(r, SGRPC_REC_CALL_SEND_STATUS, call->conn->now);
  return rv;
}

int sgrpc_call_send_status(sgrpc_call *call, const sgrpc_status *st) {
  sgrpc_conn *wc = call ? call->conn : NULL;
  int rv = rec_call_send_status(call, st);
  sg_conn_wake(wc);
  return rv;
}

static void rec_call_release(sgrpc_call *call) {
  sgrpc_recorder *r = call_rec(call);
  sgrpc_conn *c;
  if (!r || (call->flags & SG_CF_RELEASED)) {
    sg_api_call_release(call);
    return;
  }
  c = call->conn;
  /* the call may be freed by the release: its numbers are taken first */
  begin(r);
  put_call(r, call);
  r->busy = 1;
  sg_api_call_release(call);
  r->busy = 0;
  finish(r, SGRPC_REC_CALL_RELEASE, c->now);
}

void sgrpc_call_release(sgrpc_call *call) {
  sgrpc_conn *wc = call ? call->conn : NULL;
  rec_call_release(call);
  sg_conn_wake(wc);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

const char *sgrpc_record_type_name(int type) {
  switch (type) {
  case SGRPC_REC_CONN: return "CONN";
  case SGRPC_REC_RECV: return "RECV";
  case SGRPC_REC_TRANSPORT_CLOSED: return "TRANSPORT_CLOSED";
  case SGRPC_REC_OUT_PEEK: return "OUT_PEEK";
  case SGRPC_REC_OUT_CONSUME: return "OUT_CONSUME";
  case SGRPC_REC_OUT_COPY: return "OUT_COPY";
  case SGRPC_REC_EXPIRY: return "EXPIRY";
  case SGRPC_REC_PING: return "PING";
  case SGRPC_REC_GOAWAY: return "GOAWAY";
  case SGRPC_REC_SHUTDOWN: return "SHUTDOWN";
  case SGRPC_REC_EVENT: return "EVENT";
  case SGRPC_REC_CALL_START: return "CALL_START";
  case SGRPC_REC_CALL_SEND: return "CALL_SEND";
  case SGRPC_REC_CALL_RESERVE: return "CALL_RESERVE";
  case SGRPC_REC_CALL_COMMIT: return "CALL_COMMIT";
  case SGRPC_REC_CALL_SET_ENCODING: return "CALL_SET_ENCODING";
  case SGRPC_REC_CALL_CLOSE_SEND: return "CALL_CLOSE_SEND";
  case SGRPC_REC_CALL_SEND_HEADERS: return "CALL_SEND_HEADERS";
  case SGRPC_REC_CALL_SEND_STATUS: return "CALL_SEND_STATUS";
  case SGRPC_REC_CALL_CANCEL: return "CALL_CANCEL";
  case SGRPC_REC_CALL_RELEASE: return "CALL_RELEASE";
  case SGRPC_REC_CALL_SEND_BORROWED: return "CALL_SEND_BORROWED";
  case SGRPC_REC_OUT_PEEKV: return "OUT_PEEKV";
  case SGRPC_REC_TRIM: return "TRIM";
  case SGRPC_REC_TRUNCATED: return "TRUNCATED";
  default: return "UNKNOWN";
  }
}

/* Reads a varint at *off; returns 0 or -1 when it runs past the end. */
static int uv_dec(const uint8_t *p, size_t len, size_t *off, uint64_t *v) {
  uint64_t x = 0;
  unsigned shift = 0;
  while (*off < len && shift < 64) {
    uint8_t b = p[(*off)++];
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
    shift += 7;
  }
  return -1;
}

int sgrpc_record_reader_init(sgrpc_record_reader *r, const uint8_t *data, size_t len) {
  if (!r || !data || len < SGRPC_RECORD_HEADER_LEN) return SGRPC_ERR_INVALID_ARGUMENT;
  if (memcmp(data, SGRPC_RECORD_MAGIC, 8) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  if (((unsigned)data[8] << 8 | data[9]) != SGRPC_RECORD_VERSION) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(r, 0, sizeof(*r));
  r->data = data;
  r->len = len;
  r->off = SGRPC_RECORD_HEADER_LEN;
  r->flags = (unsigned)data[10] << 8 | data[11];
  return 0;
}

int sgrpc_record_next(sgrpc_record_reader *r, sgrpc_record *rec) {
  size_t off;
  uint64_t d, n;
  if (!r || !rec) return SGRPC_ERR_INVALID_ARGUMENT;
  if (r->off >= r->len) return 0;
  off = r->off + 1;
  if (uv_dec(r->data, r->len, &off, &d) != 0 || uv_dec(r->data, r->len, &off, &n) != 0 ||
      n > r->len - off)
    return SGRPC_ERR_INVALID_ARGUMENT;
  rec->type = r->data[r->off];
  r->now = (int64_t)((uint64_t)r->now + (uint64_t)unzz(d));
  rec->now = r->now;
  rec->payload = r->data + off;
  rec->payload_len = (size_t)n;
  rec->raw = r->data + r->off;
  rec->raw_len = off + (size_t)n - r->off;
  rec->offset = r->off;
  r->off = off + (size_t)n;
  r->index++;
  return 1;
}

/* ------------------------------------------------------------------ */
/* Replay                                                              */
/* ------------------------------------------------------------------ */

/* A payload cursor. Reads past the end set bad and return zeros. */
typedef struct pl {
  const uint8_t *p;
  size_t len, off;
  int bad;
} pl;

static uint64_t get_u(pl *c) {
  uint64_t v = 0;
  if (c->bad || uv_dec(c->p, c->len, &c->off, &v) != 0) {
    c->bad = 1;
    return 0;
  }
  return v;
}
static int64_t get_s(pl *c) { return unzz(get_u(c)); }
static const uint8_t *get_bytes(pl *c, size_t *n) {
  uint64_t len = get_u(c);
  const uint8_t *p;
  if (c->bad || len > c->len - c->off) {
    c->bad = 1;
    *n = 0;
    return NULL;
  }
  p = c->p + c->off;
  c->off += (size_t)len;
  *n = (size_t)len;
  return p;
}

typedef struct rp_call {
  sgrpc_call *call;
  uint8_t *resv; /* the buffer of an open reservation */
} rp_call;

typedef struct replay {
  sgrpc_mem mem;
  sgrpc_conn *conn;
  sgrpc_recorder *rec;
  rp_call *calls;
  size_t ncalls;
  sg_buf scratch;     /* NUL-terminated strings and metadata of one call */
  char *strs[3];      /* the settings' strings, alive with the connection */
  /* the comparison of the record being replayed */
  const sgrpc_record *want;
  int produced;
  int differs;
  size_t diff_off;
  int exp_byte, got_byte;
  int header_seen;
  int has_got_res;
  int64_t got_res;
} replay;

static int rec_result(const sgrpc_record *rec, int64_t *res);

/* The result field of a record the replaying engine produced. */
static void note_got_result(replay *rp, int want_type, const uint8_t *d, size_t n) {
  sgrpc_record r;
  size_t off = 1;
  uint64_t v, plen;
  if (n < 1 || d[0] != want_type || uv_dec(d, n, &off, &v) != 0 ||
      uv_dec(d, n, &off, &plen) != 0 || plen > n - off)
    return;
  memset(&r, 0, sizeof(r));
  r.type = d[0];
  r.payload = d + off;
  r.payload_len = (size_t)plen;
  rp->has_got_res = rec_result(&r, &rp->got_res);
}

/* The replaying recorder's sink: compares with the recorded record. */
static int compare_sink(const uint8_t *d, size_t n, void *ud) {
  replay *rp = ud;
  size_t i, m;
  const sgrpc_record *w = rp->want;
  if (!rp->header_seen) { /* the file header */
    rp->header_seen = 1;
    return 0;
  }
  if (rp->differs) return 0;
  rp->produced++;
  if (!w || rp->produced > 1) {
    rp->differs = 1;
    rp->diff_off = 0;
    rp->exp_byte = -1;
    rp->got_byte = d[0];
    return 0;
  }
  m = n < w->raw_len ? n : w->raw_len;
  for (i = 0; i < m && d[i] == w->raw[i]; i++)
    ;
  if (i < m || n != w->raw_len) {
    rp->differs = 1;
    rp->diff_off = i;
    rp->exp_byte = i < w->raw_len ? w->raw[i] : -1;
    rp->got_byte = i < n ? d[i] : -1;
    note_got_result(rp, w->type, d, n);
  }
  return 0;
}

static rp_call *rp_slot(replay *rp, uint64_t id, int create) {
  if (id == 0 || id > UINT32_MAX) return NULL;
  if (id > rp->ncalls) {
    size_t n = rp->ncalls ? rp->ncalls : 16;
    rp_call *nc;
    if (!create) return NULL;
    while (n < id) n *= 2;
    nc = rp->mem.realloc(rp->calls, n * sizeof(*nc), rp->mem.user_data);
    if (!nc) return NULL;
    memset(nc + rp->ncalls, 0, (n - rp->ncalls) * sizeof(*nc));
    rp->calls = nc;
    rp->ncalls = n;
  }
  return &rp->calls[id - 1];
}

static sgrpc_call *rp_call_of(replay *rp, pl *c) {
  rp_call *s = rp_slot(rp, get_u(c), 0);
  (void)get_u(c); /* the stream id at the time: compared, not used */
  return s ? s->call : NULL;
}

/* Copies n bytes into the scratch buffer as a NUL-terminated string;
 * returns its offset there, or -1 without memory. */
static long rp_keep(replay *rp, const uint8_t *p, size_t n) {
  size_t at = rp->scratch.len;
  uint8_t z = 0;
  if (sg_buf_append(&rp->mem, &rp->scratch, p, n) != 0 ||
      sg_buf_append(&rp->mem, &rp->scratch, &z, 1) != 0)
    return -1;
  return (long)at;
}

/* A recorded string (NULL kept as NULL), as an offset into scratch, -2
 * for NULL, -1 without memory. */
static long rp_str(replay *rp, pl *c) {
  uint64_t n = get_u(c);
  const uint8_t *p;
  if (c->bad) return -2;
  if (n == 0) return -2;
  n--;
  if (n > c->len - c->off) {
    c->bad = 1;
    return -2;
  }
  p = c->p + c->off;
  c->off += (size_t)n;
  return rp_keep(rp, p, (size_t)n);
}

static const char *rp_at(replay *rp, long off) {
  return off >= 0 ? (const char *)rp->scratch.p + off : NULL;
}

/* Recorded metadata into scratch: entries after the strings. Returns the
 * count, or -1 (no memory / malformed). *at gets the entries' offset. */
static long rp_md(replay *rp, pl *c, size_t *at) {
  uint64_t n = get_u(c), i;
  size_t pad;
  if (c->bad || n > c->len) return -1;
  /* keys and values point into the payload: only the array is stored */
  pad = (sizeof(sgrpc_md) - rp->scratch.len % sizeof(sgrpc_md)) % sizeof(sgrpc_md);
  if (sg_buf_reserve(&rp->mem, &rp->scratch, pad + (size_t)n * sizeof(sgrpc_md) + 1) != 0)
    return -1;
  rp->scratch.len += pad;
  *at = rp->scratch.len;
  for (i = 0; i < n; i++) {
    sgrpc_md m;
    size_t kl, vl;
    const uint8_t *k = get_bytes(c, &kl);
    const uint8_t *v = get_bytes(c, &vl);
    if (c->bad) return -1;
    m.key = (const char *)k;
    m.key_len = kl;
    m.value = v;
    m.value_len = vl;
    memcpy(rp->scratch.p + rp->scratch.len, &m, sizeof(m));
    rp->scratch.len += sizeof(m);
  }
  return (long)n;
}

/* Makes the connection from the CONN record. */
static int rp_conn(replay *rp, const sgrpc_record *rec) {
  pl c = {rec->payload, rec->payload_len, 0, 0};
  sgrpc_settings s;
  int role, i, rv;
  sgrpc_settings_default(&s);
  role = (int)get_u(&c);
  s.max_recv_message_size = (uint32_t)get_u(&c);
  s.max_send_message_size = (uint32_t)get_u(&c);
  s.max_send_buffer = (uint32_t)get_u(&c);
  s.max_header_list_size = (uint32_t)get_u(&c);
  s.stream_window = (uint32_t)get_u(&c);
  s.connection_window = (uint32_t)get_u(&c);
  s.max_concurrent_streams = (uint32_t)get_u(&c);
  s.max_queued_events = (uint32_t)get_u(&c);
  s.out_chunk = (uint32_t)get_u(&c);
  for (i = 0; i < 3; i++) {
    uint64_t n = get_u(&c);
    rp->strs[i] = NULL;
    if (c.bad || n == 0) continue;
    n--;
    if (n > c.len - c.off) {
      c.bad = 1;
      break;
    }
    rp->strs[i] = rp->mem.malloc((size_t)n + 1, rp->mem.user_data);
    if (!rp->strs[i]) return SGRPC_ERR_NOMEM;
    memcpy(rp->strs[i], c.p + c.off, (size_t)n);
    rp->strs[i][n] = 0;
    c.off += (size_t)n;
  }
  s.scheme = rp->strs[0];
  s.user_agent = rp->strs[1];
  s.encoding = rp->strs[2];
  s.compress_min_size = (uint32_t)get_u(&c);
  s.keepalive_time = get_s(&c);
  s.keepalive_timeout = get_s(&c);
  s.keepalive_permit_without_calls = (int)get_s(&c);
  s.min_recv_ping_interval = get_s(&c);
  s.max_ping_strikes = (uint32_t)get_u(&c);
  s.max_send_header_list_size = (uint32_t)get_u(&c);
  s.max_outbound_queue = (size_t)get_u(&c);
  s.settings_timeout = get_s(&c);
  s.conn_memory_budget = (size_t)get_u(&c);
  (void)get_u(&c); /* a shared budget is not recreated */
  if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
  rv = role ? sgrpc_conn_server_new(&rp->conn, &s, &rp->mem, rec->now)
            : sgrpc_conn_client_new(&rp->conn, &s, &rp->mem, rec->now);
  if (rv == SGRPC_ERR_NOMEM) return rv;
  if (rv != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  return sgrpc_conn_set_recorder(rp->conn, rp->rec);
}

/* Frees the replay's copy of a borrowed message once the engine is done. */
static void rp_release(void *ud, const uint8_t *data, size_t len) {
  const sgrpc_mem *mem = ud;
  (void)len;
  mem->free((void *)data, mem->user_data);
}

/* Replays one record. Returns 0, or SGRPC_ERR_INVALID_ARGUMENT
 * (malformed) or SGRPC_ERR_NOMEM (the replay's own bookkeeping). */
static int rp_step(replay *rp, const sgrpc_record *rec) {
  pl c = {rec->payload, rec->payload_len, 0, 0};
  sgrpc_conn *conn = rp->conn;
  sgrpc_call *call;
  rp->scratch.len = rp->scratch.off = 0;
  switch (rec->type) {
  case SGRPC_REC_RECV: {
    (void)get_s(&c);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    sgrpc_conn_recv(conn, c.p + c.off, c.len - c.off, rec->now);
    return 0;
  }
  case SGRPC_REC_TRANSPORT_CLOSED:
    sgrpc_conn_transport_closed(conn);
    return 0;
  case SGRPC_REC_OUT_PEEK: {
    const uint8_t *p;
    sgrpc_conn_out_peek(conn, &p);
    return 0;
  }
  case SGRPC_REC_OUT_CONSUME: {
    uint64_t n = get_u(&c);
    if (c.bad || n > SIZE_MAX) return SGRPC_ERR_INVALID_ARGUMENT;
    sgrpc_conn_out_consume(conn, (size_t)n);
    return 0;
  }
  case SGRPC_REC_OUT_COPY: {
    uint64_t cap = get_u(&c);
    uint8_t *buf;
    if (c.bad || cap > SIZE_MAX) return SGRPC_ERR_INVALID_ARGUMENT;
    /* a cap larger than any output prepared at once is cut to it (the
     * record then differs) rather than allocated */
    if (cap > (uint64_t)conn->settings.out_chunk * 4 + (1u << 20))
      cap = (uint64_t)conn->settings.out_chunk * 4 + (1u << 20);
    buf = rp->mem.malloc(cap ? (size_t)cap : 1, rp->mem.user_data);
    if (!buf) return SGRPC_ERR_NOMEM;
    sgrpc_conn_out_copy(conn, buf, (size_t)cap);
    rp->mem.free(buf, rp->mem.user_data);
    return 0;
  }
  case SGRPC_REC_EXPIRY:
    sgrpc_conn_handle_expiry(conn, rec->now);
    return 0;
  case SGRPC_REC_PING: {
    uint64_t opaque = get_u(&c);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    sgrpc_conn_ping(conn, opaque);
    return 0;
  }
  case SGRPC_REC_GOAWAY: {
    uint64_t code = get_u(&c);
    size_t n;
    const uint8_t *d = get_bytes(&c, &n);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    sgrpc_conn_goaway(conn, (uint32_t)code, (const char *)d, n);
    return 0;
  }
  case SGRPC_REC_SHUTDOWN: {
    int64_t dl = get_s(&c);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    sgrpc_conn_shutdown(conn, dl, rec->now);
    return 0;
  }
  case SGRPC_REC_EVENT: {
    sgrpc_event ev;
    if (sgrpc_conn_next_event(conn, &ev) == 1 && ev.type == SGRPC_EV_CALL_NEW && ev.call) {
      rp_call *s = rp_slot(rp, ev.call->rec_id, 1);
      if (!s) return SGRPC_ERR_NOMEM;
      s->call = ev.call;
    }
    return 0;
  }
  case SGRPC_REC_CALL_START: {
    sgrpc_call_opts o;
    long path, auth, sub, enc, nmd;
    size_t mdat = 0;
    sgrpc_call *nc = NULL;
    memset(&o, 0, sizeof(o));
    (void)get_s(&c);
    (void)get_u(&c);
    path = rp_str(rp, &c);
    auth = rp_str(rp, &c);
    o.deadline = get_s(&c);
    sub = rp_str(rp, &c);
    enc = rp_str(rp, &c);
    o.wait_for_ready = (int)get_s(&c);
    nmd = rp_md(rp, &c, &mdat);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    if (path == -1 || auth == -1 || sub == -1 || enc == -1 || nmd < 0) return SGRPC_ERR_NOMEM;
    o.path = rp_at(rp, path);
    o.authority = rp_at(rp, auth);
    o.content_subtype = rp_at(rp, sub);
    o.encoding = rp_at(rp, enc);
    o.md = nmd ? (const sgrpc_md *)(void *)(rp->scratch.p + mdat) : NULL;
    o.md_count = (size_t)nmd;
    if (sgrpc_call_start(conn, &o, rec->now, &nc) == 0 && nc) {
      rp_call *s = rp_slot(rp, nc->rec_id, 1);
      if (!s) return SGRPC_ERR_NOMEM;
      s->call = nc;
    }
    return 0;
  }
  case SGRPC_REC_CALL_SEND: {
    uint64_t flags;
    size_t n;
    const uint8_t *d;
    int64_t res;
    uint8_t *zeros = NULL;
    call = rp_call_of(rp, &c);
    flags = get_u(&c);
    res = get_s(&c);
    if (res == 0) {
      d = get_bytes(&c, &n);
    } else { /* refused live: only the length was kept */
      uint64_t len = get_u(&c);
      if (c.bad || len > SIZE_MAX - 1) return SGRPC_ERR_INVALID_ARGUMENT;
      n = (size_t)len;
      zeros = rp->mem.calloc(1, n ? n : 1, rp->mem.user_data);
      if (!zeros) return SGRPC_ERR_NOMEM;
      d = zeros;
    }
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    if (call) sgrpc_call_send(call, d ? d : (const uint8_t *)"", n, (unsigned)flags);
    if (zeros) rp->mem.free(zeros, rp->mem.user_data);
    return 0;
  }
  case SGRPC_REC_CALL_SEND_BORROWED: {
    uint64_t flags, kept;
    size_t n;
    const uint8_t *d = NULL;
    uint8_t *copy;
    call = rp_call_of(rp, &c);
    flags = get_u(&c);
    kept = get_u(&c);
    if (kept) {
      d = get_bytes(&c, &n);
    } else {
      uint64_t len = get_u(&c);
      if (c.bad || len > SIZE_MAX - 1) return SGRPC_ERR_INVALID_ARGUMENT;
      n = (size_t)len;
    }
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    if (!call) return 0;
    /* the replay's own copy, lent to the engine until it is written */
    copy = rp->mem.calloc(1, n ? n : 1, rp->mem.user_data);
    if (!copy) return SGRPC_ERR_NOMEM;
    if (d && n) memcpy(copy, d, n);
    if (sgrpc_call_send_borrowed(call, copy, n, (unsigned)flags, rp_release, &rp->mem) != 0)
      rp->mem.free(copy, rp->mem.user_data);
    return 0;
  }
  case SGRPC_REC_OUT_PEEKV: {
    uint64_t max = get_u(&c);
    sgrpc_iov iov[64];
    size_t count;
    if (c.bad || max == 0) return SGRPC_ERR_INVALID_ARGUMENT;
    /* a larger recorded max is cut to the replay's array: the pieces
     * beyond it are left in the queue either way */
    sgrpc_conn_out_peekv(conn, iov, max < 64 ? (size_t)max : 64, &count);
    return 0;
  }
  case SGRPC_REC_TRIM:
    sgrpc_conn_trim(conn);
    return 0;
  case SGRPC_REC_CALL_RESERVE: {
    uint64_t id = get_u(&c), len;
    rp_call *s = rp_slot(rp, id, 0);
    uint8_t *buf = NULL;
    (void)get_u(&c);
    len = get_u(&c);
    if (c.bad || len > SIZE_MAX) return SGRPC_ERR_INVALID_ARGUMENT;
    if (s && s->call && sgrpc_call_send_reserve(s->call, (size_t)len, &buf) == 0) s->resv = buf;
    return 0;
  }
  case SGRPC_REC_CALL_COMMIT: {
    uint64_t id = get_u(&c), flags;
    rp_call *s = rp_slot(rp, id, 0);
    size_t n;
    const uint8_t *d;
    (void)get_u(&c);
    flags = get_u(&c);
    d = get_bytes(&c, &n);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    if (!s || !s->call) return 0;
    if (s->resv && (s->call->send & SG_SF_RESERVED) && n == s->call->reserved_len && n)
      memcpy(s->resv, d, n);
    s->resv = NULL;
    sgrpc_call_send_commit(s->call, (unsigned)flags);
    return 0;
  }
  case SGRPC_REC_CALL_SET_ENCODING: {
    long enc;
    call = rp_call_of(rp, &c);
    enc = rp_str(rp, &c);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    if (enc == -1) return SGRPC_ERR_NOMEM;
    if (call) sgrpc_call_set_encoding(call, rp_at(rp, enc));
    return 0;
  }
  case SGRPC_REC_CALL_CLOSE_SEND:
  case SGRPC_REC_CALL_CANCEL:
    call = rp_call_of(rp, &c);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    if (call) {
      if (rec->type == SGRPC_REC_CALL_CANCEL) sgrpc_call_cancel(call);
      else sgrpc_call_close_send(call);
    }
    return 0;
  case SGRPC_REC_CALL_SEND_HEADERS: {
    long nmd;
    size_t mdat = 0;
    call = rp_call_of(rp, &c);
    nmd = rp_md(rp, &c, &mdat);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    if (nmd < 0) return SGRPC_ERR_NOMEM;
    if (call)
      sgrpc_call_send_headers(call, nmd ? (const sgrpc_md *)(void *)(rp->scratch.p + mdat) : NULL,
                              (size_t)nmd);
    return 0;
  }
  case SGRPC_REC_CALL_SEND_STATUS: {
    sgrpc_status st;
    long msg, nmd;
    size_t mdat = 0, dn;
    memset(&st, 0, sizeof(st));
    call = rp_call_of(rp, &c);
    st.code = (int)get_s(&c);
    msg = rp_str(rp, &c);
    st.details = get_bytes(&c, &dn);
    st.details_len = dn;
    if (!dn) st.details = NULL;
    nmd = rp_md(rp, &c, &mdat);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    if (msg == -1 || nmd < 0) return SGRPC_ERR_NOMEM;
    st.message = rp_at(rp, msg);
    st.md = nmd ? (const sgrpc_md *)(void *)(rp->scratch.p + mdat) : NULL;
    st.md_count = (size_t)nmd;
    if (call) sgrpc_call_send_status(call, &st);
    return 0;
  }
  case SGRPC_REC_CALL_RELEASE: {
    uint64_t id = get_u(&c);
    rp_call *s = rp_slot(rp, id, 0);
    if (c.bad) return SGRPC_ERR_INVALID_ARGUMENT;
    if (s && s->call) {
      sgrpc_call_release(s->call);
      s->call = NULL;
      s->resv = NULL;
    }
    return 0;
  }
  default:
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
}

/* Reads the recorded result of a record, for the report. */
static int rec_result(const sgrpc_record *rec, int64_t *res) {
  pl c = {rec->payload, rec->payload_len, 0, 0};
  switch (rec->type) {
  case SGRPC_REC_RECV:
  case SGRPC_REC_TRANSPORT_CLOSED:
  case SGRPC_REC_OUT_PEEK:
  case SGRPC_REC_EXPIRY:
  case SGRPC_REC_EVENT:
  case SGRPC_REC_CALL_START:
    *res = get_s(&c);
    return !c.bad;
  case SGRPC_REC_TRIM:
    *res = get_s(&c);
    return !c.bad;
  case SGRPC_REC_OUT_COPY:
  case SGRPC_REC_OUT_PEEKV:
  case SGRPC_REC_PING:
    (void)get_u(&c);
    *res = get_s(&c);
    return !c.bad;
  case SGRPC_REC_SHUTDOWN:
    (void)get_s(&c);
    *res = get_s(&c);
    return !c.bad;
  default:
    return 0;
  }
}

int sgrpc_replay_mem(const uint8_t *data, size_t len, const sgrpc_mem *mem,
                     sgrpc_replay_report *report) {
  sgrpc_replay_report dummy;
  sgrpc_record_reader rd;
  sgrpc_record rec;
  sgrpc_recorder_opts ro;
  replay rp;
  int rv, i, result = 0;
  if (!report) report = &dummy;
  memset(report, 0, sizeof(*report));
  if (!data || sgrpc_record_reader_init(&rd, data, len) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(&rp, 0, sizeof(rp));
  if (sgrpc_mem_resolve(&rp.mem, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  rv = sgrpc_record_next(&rd, &rec);
  if (rv != 1 || rec.type != SGRPC_REC_CONN) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(&ro, 0, sizeof(ro));
  ro.write = compare_sink;
  ro.user_data = &rp;
  ro.flags = rd.flags & SGRPC_RECORD_DIGEST;
  if ((rv = sgrpc_recorder_new(&rp.rec, &ro, &rp.mem)) != 0) return rv;
  for (;;) {
    rp.want = &rec;
    rp.produced = 0;
    if (rec.type == SGRPC_REC_CONN) {
      if (rp.conn) {
        result = SGRPC_ERR_INVALID_ARGUMENT;
        break;
      }
      rv = rp_conn(&rp, &rec);
    } else if (rec.type == SGRPC_REC_TRUNCATED) {
      report->truncated = 1;
      break;
    } else {
      rv = rp_step(&rp, &rec);
    }
    if (rv != 0) {
      result = rv;
      break;
    }
    if (!rp.differs && rp.produced == 0) {
      rp.differs = 1;
      rp.diff_off = 0;
      rp.exp_byte = rec.raw[0];
      rp.got_byte = -1;
    }
    if (rp.differs) {
      report->differs = 1;
      report->diff_index = rd.index - 1;
      report->diff_type = rec.type;
      report->diff_record_offset = rec.offset;
      report->diff_offset = rp.diff_off;
      report->expected = rp.exp_byte;
      report->got = rp.got_byte;
      result = 1;
      break;
    }
    report->records++;
    rv = sgrpc_record_next(&rd, &rec);
    if (rv == 0) break;
    if (rv < 0) { /* cut short: what came before replayed */
      report->truncated = 1;
      break;
    }
  }
  if (report->differs) {
    int64_t res;
    if (rp.has_got_res && rec_result(&rec, &res)) {
      report->expected_result = res;
      report->got_result = rp.got_res;
      report->has_result = 1;
    }
  }
  for (i = 0; i < 3; i++)
    if (rp.strs[i]) rp.mem.free(rp.strs[i], rp.mem.user_data);
  sgrpc_conn_del(rp.conn);
  sgrpc_recorder_del(rp.rec);
  rp.mem.free(rp.calls, rp.mem.user_data);
  sg_buf_free(&rp.mem, &rp.scratch);
  return result;
}
