#include "rawpeer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An item queued for a stream's body provider: a DATA frame or a trailer
 * block. One item becomes one frame, so tests control frame boundaries. */
typedef struct rp_item {
  int is_trailers;
  uint8_t *data;
  size_t len, off;
  int end_stream;
  nghttp2_nv *nv;
  size_t nvlen;
} rp_item;

typedef struct rp_stream {
  int32_t id;
  rp_item *items;
  size_t head, n, cap;
  int attached; /* a body provider is on the stream */
  int deferred; /* the provider returned NGHTTP2_ERR_DEFERRED */
} rp_stream;

/* Header lists are submitted with NGHTTP2_NV_FLAG_NO_COPY_NAME: otherwise
 * nghttp2 lowercases names while copying them, and tests could not send
 * an uppercase name. nghttp2 then reads the strings until the frame is
 * serialized, so they live until rawpeer_free. */
struct rp_kept {
  nghttp2_nv *nv;
  size_t n;
  struct rp_kept *next;
};

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  assert_non_null(p);
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  assert_non_null(p);
  return p;
}

static char *xdup(const void *s, size_t n) {
  char *d = xmalloc(n + 1);
  if (n) memcpy(d, s, n);
  d[n] = 0;
  return d;
}

static uint32_t rp_rand(rawpeer *rp) {
  uint64_t x = rp->rng ? rp->rng : 0x2545F4914F6CDD1Dull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rp->rng = x;
  return (uint32_t)(x >> 16);
}

/* ------------------------------------------------------------------ */
/* Streams and their queued frames                                     */
/* ------------------------------------------------------------------ */

static rp_stream *stream_get(rawpeer *rp, int32_t id, int create) {
  size_t i;
  rp_stream *s;
  for (i = 0; i < rp->nstreams; i++)
    if (rp->streams[i]->id == id) return rp->streams[i];
  if (!create) return NULL;
  if (rp->nstreams == rp->streams_cap) {
    rp->streams_cap = rp->streams_cap ? rp->streams_cap * 2 : 8;
    rp->streams = xrealloc(rp->streams, rp->streams_cap * sizeof(*rp->streams));
  }
  s = calloc(1, sizeof(*s));
  assert_non_null(s);
  s->id = id;
  rp->streams[rp->nstreams++] = s;
  return s;
}

/* it->nv belongs to rp->kept. */
static void item_free(rp_item *it) {
  free(it->data);
  memset(it, 0, sizeof(*it));
}

static rp_item *stream_push(rp_stream *s) {
  rp_item *it;
  if (s->head + s->n == s->cap) {
    if (s->head) {
      memmove(s->items, s->items + s->head, s->n * sizeof(*s->items));
      s->head = 0;
    }
    if (s->n == s->cap) {
      s->cap = s->cap ? s->cap * 2 : 8;
      s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
    }
  }
  it = &s->items[s->head + s->n++];
  memset(it, 0, sizeof(*it));
  return it;
}

static void stream_pop(rp_stream *s) {
  item_free(&s->items[s->head]);
  s->head++;
  s->n--;
  if (s->n == 0) s->head = 0;
}

static nghttp2_nv *nv_from_list(const char *const *list, size_t *pn) {
  size_t n = 0, i;
  nghttp2_nv *nv;
  while (list && list[2 * n]) n++;
  nv = xmalloc(n * sizeof(*nv));
  for (i = 0; i < n; i++) {
    size_t nl = strlen(list[2 * i]), vl = strlen(list[2 * i + 1]);
    nv[i].name = (uint8_t *)xdup(list[2 * i], nl);
    nv[i].namelen = nl;
    nv[i].value = (uint8_t *)xdup(list[2 * i + 1], vl);
    nv[i].valuelen = vl;
    nv[i].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  }
  *pn = n;
  return nv;
}

static nghttp2_nv *nv_from_fields(const rp_field *f, size_t n) {
  nghttp2_nv *nv = xmalloc(n * sizeof(*nv));
  size_t i;
  for (i = 0; i < n; i++) {
    nv[i].name = (uint8_t *)xdup(f[i].name, f[i].namelen);
    nv[i].namelen = f[i].namelen;
    nv[i].value = (uint8_t *)xdup(f[i].value, f[i].valuelen);
    nv[i].valuelen = f[i].valuelen;
    nv[i].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  }
  return nv;
}

static void nv_free(nghttp2_nv *nv, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    free(nv[i].name);
    free(nv[i].value);
  }
  free(nv);
}

/* Hands nv to rp->kept (freed by rawpeer_free). */
static void nv_keep(rawpeer *rp, nghttp2_nv *nv, size_t n) {
  struct rp_kept *k = xmalloc(sizeof(*k));
  k->nv = nv;
  k->n = n;
  k->next = rp->kept;
  rp->kept = k;
}

/* The body provider: one queued item per frame. */
static ssize_t rp_read(nghttp2_session *h2, int32_t sid, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *src, void *ud) {
  rp_stream *s = src->ptr;
  rp_item *it;
  (void)ud;
  if (s->n == 0) {
    s->deferred = 1;
    return NGHTTP2_ERR_DEFERRED;
  }
  it = &s->items[s->head];
  if (it->is_trailers) {
    /* Trailers straight after the headers: nghttp2 needs the provider to
     * end, which costs one empty DATA frame without END_STREAM. */
    int rv = nghttp2_submit_trailer(h2, sid, it->nv, it->nvlen);
    assert_int_equal(rv, 0);
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    stream_pop(s);
    s->attached = 0;
    return 0;
  } else {
    size_t n = it->len - it->off;
    if (n > length) n = length;
    if (n) memcpy(buf, it->data + it->off, n);
    it->off += n;
    if (it->off < it->len) return (ssize_t)n;
    if (it->end_stream) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      s->attached = 0;
      stream_pop(s);
      return (ssize_t)n;
    }
    stream_pop(s);
    if (s->n && s->items[s->head].is_trailers) {
      it = &s->items[s->head];
      assert_int_equal(nghttp2_submit_trailer(h2, sid, it->nv, it->nvlen), 0);
      *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      s->attached = 0;
      stream_pop(s);
    }
    return (ssize_t)n;
  }
}

static void stream_resume(rawpeer *rp, rp_stream *s) {
  if (s->deferred && s->id > 0) {
    s->deferred = 0;
    nghttp2_session_resume_data(rp->h2, s->id);
  }
}

/* ------------------------------------------------------------------ */
/* Recording received frames                                           */
/* ------------------------------------------------------------------ */

static rp_frame *frame_push(rawpeer *rp) {
  rp_frame *f;
  if (rp->nframes == rp->frames_cap) {
    rp->frames_cap = rp->frames_cap ? rp->frames_cap * 2 : 32;
    rp->frames = xrealloc(rp->frames, rp->frames_cap * sizeof(*rp->frames));
  }
  f = &rp->frames[rp->nframes++];
  memset(f, 0, sizeof(*f));
  return f;
}

static int cb_begin_headers(nghttp2_session *h2, const nghttp2_frame *fr, void *ud) {
  rawpeer *rp = ud;
  size_t i;
  (void)h2;
  (void)fr;
  for (i = 0; i < rp->ncur; i++) {
    free(rp->cur[i].name);
    free(rp->cur[i].value);
  }
  rp->ncur = 0;
  return 0;
}

static int cb_header(nghttp2_session *h2, const nghttp2_frame *fr, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
  rawpeer *rp = ud;
  rp_field *f;
  (void)h2;
  (void)fr;
  (void)flags;
  if (rp->ncur == rp->cur_cap) {
    rp->cur_cap = rp->cur_cap ? rp->cur_cap * 2 : 16;
    rp->cur = xrealloc(rp->cur, rp->cur_cap * sizeof(*rp->cur));
  }
  f = &rp->cur[rp->ncur++];
  f->name = xdup(name, namelen);
  f->namelen = namelen;
  f->value = xdup(value, valuelen);
  f->valuelen = valuelen;
  return 0;
}

static int cb_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t sid,
                         const uint8_t *data, size_t len, void *ud) {
  rawpeer *rp = ud;
  (void)h2;
  (void)flags;
  (void)sid;
  if (rp->dcur_len + len > rp->dcur_cap) {
    rp->dcur_cap = (rp->dcur_len + len) * 2;
    rp->dcur = xrealloc(rp->dcur, rp->dcur_cap);
  }
  if (len) memcpy(rp->dcur + rp->dcur_len, data, len);
  rp->dcur_len += len;
  return 0;
}

static int cb_frame_recv(nghttp2_session *h2, const nghttp2_frame *fr, void *ud) {
  rawpeer *rp = ud;
  rp_frame *f = frame_push(rp);
  (void)h2;
  f->type = fr->hd.type;
  f->flags = fr->hd.flags;
  f->stream_id = fr->hd.stream_id;
  switch (fr->hd.type) {
  case NGHTTP2_HEADERS:
    f->end_stream = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    /* count before this frame was pushed */
    rp->nframes--;
    f->hkind = rawpeer_count_frames(rp, fr->hd.stream_id, NGHTTP2_HEADERS) ? RP_HDRS_TRAILERS
                                                                          : RP_HDRS_FIRST;
    rp->nframes++;
    f->fields = rp->cur;
    f->nfields = rp->ncur;
    rp->cur = NULL;
    rp->ncur = rp->cur_cap = 0;
    break;
  case NGHTTP2_DATA:
    f->end_stream = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    f->data = xmalloc(rp->dcur_len);
    if (rp->dcur_len) memcpy(f->data, rp->dcur, rp->dcur_len);
    f->len = rp->dcur_len;
    rp->dcur_len = 0;
    break;
  case NGHTTP2_RST_STREAM:
    f->error_code = fr->rst_stream.error_code;
    break;
  case NGHTTP2_GOAWAY:
    f->error_code = fr->goaway.error_code;
    f->last_stream_id = fr->goaway.last_stream_id;
    f->data = (uint8_t *)xdup(fr->goaway.opaque_data, fr->goaway.opaque_data_len);
    f->len = fr->goaway.opaque_data_len;
    break;
  default:
    break;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Recording engine events                                             */
/* ------------------------------------------------------------------ */

static char *cdup(const char *s) { return s ? xdup(s, strlen(s)) : NULL; }

static void md_copy(rp_event *e, const sgrpc_md *md, size_t n) {
  size_t i;
  e->md = xmalloc(n * sizeof(*e->md));
  e->md_count = n;
  for (i = 0; i < n; i++) {
    e->md[i].key = xdup(md[i].key, md[i].key_len);
    e->md[i].value = (uint8_t *)xdup(md[i].value, md[i].value_len);
    e->md[i].value_len = md[i].value_len;
  }
}

static void record_event(rawpeer *rp, const sgrpc_event *ev) {
  rp_event *e;
  /* Readiness is the same in every test (test_conn_life covers it); the
   * suites count the events that answer the peer's frames. */
  if (ev->type == SGRPC_EV_READY) {
    rp->ready++;
    return;
  }
  if (rp->nevents == rp->events_cap) {
    rp->events_cap = rp->events_cap ? rp->events_cap * 2 : 32;
    rp->events = xrealloc(rp->events, rp->events_cap * sizeof(*rp->events));
  }
  e = &rp->events[rp->nevents++];
  memset(e, 0, sizeof(*e));
  e->type = ev->type;
  e->call = ev->call;
  e->stream_id = ev->call ? sgrpc_call_stream_id(ev->call) : 0;
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW:
    e->path = xdup(ev->u.call_new.path, ev->u.call_new.path_len);
    e->authority = cdup(ev->u.call_new.authority);
    e->user_agent = cdup(ev->u.call_new.user_agent);
    e->content_type = cdup(ev->u.call_new.content_type);
    e->encoding = cdup(ev->u.call_new.encoding);
    e->deadline = ev->u.call_new.deadline;
    md_copy(e, ev->u.call_new.md, ev->u.call_new.md_count);
    break;
  case SGRPC_EV_HEADERS:
    md_copy(e, ev->u.headers.md, ev->u.headers.md_count);
    e->encoding = cdup(ev->u.headers.encoding);
    break;
  case SGRPC_EV_MESSAGE:
    e->data = (uint8_t *)xdup(ev->u.message.data, ev->u.message.len);
    e->len = ev->u.message.len;
    e->compressed = ev->u.message.compressed;
    break;
  case SGRPC_EV_CLOSE: {
    const sgrpc_status_info *st = &ev->u.close.status;
    e->code = st->code;
    assert_non_null(st->message); /* contract: never NULL */
    e->message = xdup(st->message, st->message_len);
    e->message_len = st->message_len;
    if (st->details) {
      e->details = (uint8_t *)xdup(st->details, st->details_len);
      e->details_len = st->details_len;
    }
    md_copy(e, st->md, st->md_count);
    e->reset = ev->u.close.reset;
    e->http2_error = ev->u.close.http2_error;
    e->retry_safe = ev->u.close.retry_safe;
    break;
  }
  case SGRPC_EV_GOAWAY:
    e->goaway_error = ev->u.goaway.error_code;
    e->last_stream_id = ev->u.goaway.last_stream_id;
    e->data = (uint8_t *)xdup(ev->u.goaway.debug, ev->u.goaway.debug_len);
    e->len = ev->u.goaway.debug_len;
    break;
  default:
    break;
  }
}

int rawpeer_drain(rawpeer *rp) {
  sgrpc_event ev;
  int n = 0, rv;
  /* bounded: the engine's queue is finite and pulling never refills it */
  while ((rv = sgrpc_conn_next_event(rp->conn, &ev)) == 1) {
    n++;
    record_event(rp, &ev);
    if (rp->on_event) rp->on_event(rp, &ev, rp->ud);
    if (rp->auto_release && ev.type == SGRPC_EV_CLOSE) sgrpc_call_release(ev.call);
  }
  assert_true(rv == 0);
  return n;
}

/* ------------------------------------------------------------------ */
/* Life                                                                */
/* ------------------------------------------------------------------ */

static void rp_init(rawpeer *rp, int raw_is_client, const sgrpc_settings *s,
                    const sgrpc_mem *mem) {
  nghttp2_session_callbacks *cbs;
  nghttp2_option *opt;
  int rv;
  sgrpc_settings quiet;
  memset(rp, 0, sizeof(*rp));
  rp->now = 1000000000;
  rp->is_client = raw_is_client;
  if (!s) {
    /* Connection timers (SETTINGS ack, keepalive) are tested in
     * test_conn_life; here they would only add expiries to every check. */
    sgrpc_settings_default(&quiet);
    quiet.settings_timeout = SGRPC_NEVER;
    quiet.keepalive_time = SGRPC_NEVER;
    s = &quiet;
  }
  if (raw_is_client)
    rv = sgrpc_conn_server_new(&rp->conn, s, mem, rp->now);
  else
    rv = sgrpc_conn_client_new(&rp->conn, s, mem, rp->now);
  assert_int_equal(rv, 0);
  assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
  assert_int_equal(nghttp2_option_new(&opt), 0);
  /* The raw side must send and accept anything the test chooses. */
  nghttp2_option_set_no_http_messaging(opt, 1);
  if (raw_is_client)
    rv = nghttp2_session_client_new2(&rp->h2, cbs, rp, opt);
  else
    rv = nghttp2_session_server_new2(&rp->h2, cbs, rp, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  assert_int_equal(rv, 0);
  assert_int_equal(nghttp2_submit_settings(rp->h2, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

void rawpeer_new_client(rawpeer *rp, const sgrpc_settings *server_settings) {
  rp_init(rp, 1, server_settings, NULL);
}

void rawpeer_new_client_mem(rawpeer *rp, const sgrpc_settings *server_settings,
                            const sgrpc_mem *mem) {
  rp_init(rp, 1, server_settings, mem);
}

void rawpeer_new_server(rawpeer *rp, const sgrpc_settings *client_settings) {
  rp_init(rp, 0, client_settings, NULL);
}

void rawpeer_free(rawpeer *rp) {
  size_t i, j;
  sgrpc_conn_del(rp->conn);
  nghttp2_session_del(rp->h2);
  for (i = 0; i < rp->nframes; i++) {
    rp_frame *f = &rp->frames[i];
    for (j = 0; j < f->nfields; j++) {
      free(f->fields[j].name);
      free(f->fields[j].value);
    }
    free(f->fields);
    free(f->data);
  }
  free(rp->frames);
  for (i = 0; i < rp->nevents; i++) {
    rp_event *e = &rp->events[i];
    free(e->path);
    free(e->authority);
    free(e->user_agent);
    free(e->content_type);
    free(e->encoding);
    for (j = 0; j < e->md_count; j++) {
      free(e->md[j].key);
      free(e->md[j].value);
    }
    free(e->md);
    free(e->data);
    free(e->message);
    free(e->details);
  }
  free(rp->events);
  for (i = 0; i < rp->ncur; i++) {
    free(rp->cur[i].name);
    free(rp->cur[i].value);
  }
  free(rp->cur);
  free(rp->dcur);
  for (i = 0; i < rp->nstreams; i++) {
    rp_stream *s = rp->streams[i];
    while (s->n) stream_pop(s);
    free(s->items);
    free(s);
  }
  free(rp->streams);
  while (rp->kept) {
    struct rp_kept *k = rp->kept;
    rp->kept = k->next;
    nv_free(k->nv, k->n);
    free(k);
  }
  free(rp->buf);
  free(rp->scratch);
  memset(rp, 0, sizeof(*rp));
}

/* ------------------------------------------------------------------ */
/* Submitting                                                          */
/* ------------------------------------------------------------------ */

static void queue_data(rp_stream *s, const uint8_t *data, size_t len, int end_stream) {
  rp_item *it = stream_push(s);
  it->data = xmalloc(len);
  if (len) memcpy(it->data, data, len);
  it->len = len;
  it->end_stream = end_stream;
}

static int32_t submit_request_nv(rawpeer *rp, nghttp2_nv *nv, size_t n,
                                 const uint8_t *data, size_t len, int end_stream) {
  int32_t sid;
  assert_true(rp->is_client);
  if (!data && end_stream) {
    sid = nghttp2_submit_request(rp->h2, NULL, nv, n, NULL, NULL);
    assert_true(sid > 0);
    stream_get(rp, sid, 1);
  } else {
    nghttp2_data_provider prd;
    rp_stream *s = stream_get(rp, 0, 1);
    if (data || end_stream) queue_data(s, data, len, end_stream);
    s->attached = 1;
    prd.source.ptr = s;
    prd.read_callback = rp_read;
    sid = nghttp2_submit_request(rp->h2, NULL, nv, n, &prd, NULL);
    assert_true(sid > 0);
    s->id = sid;
  }
  nv_keep(rp, nv, n);
  return sid;
}

int32_t rawpeer_submit_request(rawpeer *rp, const char *const *nv, const uint8_t *data,
                               size_t len, int end_stream) {
  size_t n;
  nghttp2_nv *v = nv_from_list(nv, &n);
  return submit_request_nv(rp, v, n, data, len, end_stream);
}

int32_t rawpeer_submit_request_fields(rawpeer *rp, const rp_field *f, size_t n,
                                      const uint8_t *data, size_t len, int end_stream) {
  return submit_request_nv(rp, nv_from_fields(f, n), n, data, len, end_stream);
}

void rawpeer_submit_data(rawpeer *rp, int32_t sid, const uint8_t *data, size_t len,
                         int end_stream) {
  rp_stream *s = stream_get(rp, sid, 0);
  assert_non_null(s);
  assert_true(s->attached);
  assert_true(len <= 16384); /* one item must be one frame */
  queue_data(s, data, len, end_stream);
  stream_resume(rp, s);
}

void rawpeer_submit_response(rawpeer *rp, int32_t sid, const char *const *nv,
                             int end_stream) {
  size_t n;
  nghttp2_nv *v = nv_from_list(nv, &n);
  rp_stream *s = stream_get(rp, sid, 1);
  int rv;
  assert_false(rp->is_client);
  if (end_stream) {
    rv = nghttp2_submit_response(rp->h2, sid, v, n, NULL);
  } else {
    nghttp2_data_provider prd;
    s->attached = 1;
    prd.source.ptr = s;
    prd.read_callback = rp_read;
    rv = nghttp2_submit_response(rp->h2, sid, v, n, &prd);
  }
  assert_int_equal(rv, 0);
  nv_keep(rp, v, n);
}

void rawpeer_submit_headers(rawpeer *rp, int32_t sid, const char *const *nv, int end_stream) {
  size_t n;
  nghttp2_nv *v = nv_from_list(nv, &n);
  int32_t rv = nghttp2_submit_headers(rp->h2, end_stream ? NGHTTP2_FLAG_END_STREAM : 0, sid,
                                      NULL, v, n, NULL);
  assert_int_equal(rv, 0);
  nv_keep(rp, v, n);
}

void rawpeer_submit_trailers(rawpeer *rp, int32_t sid, const char *const *nv) {
  rp_stream *s = stream_get(rp, sid, 0);
  rp_item *it;
  assert_non_null(s);
  assert_true(s->attached);
  it = stream_push(s);
  it->is_trailers = 1;
  it->nv = nv_from_list(nv, &it->nvlen);
  nv_keep(rp, it->nv, it->nvlen);
  stream_resume(rp, s);
}

void rawpeer_submit_rst(rawpeer *rp, int32_t sid, uint32_t code) {
  assert_int_equal(nghttp2_submit_rst_stream(rp->h2, NGHTTP2_FLAG_NONE, sid, code), 0);
}

void rawpeer_submit_goaway(rawpeer *rp, int32_t last_sid, uint32_t code) {
  assert_int_equal(
      nghttp2_submit_goaway(rp->h2, NGHTTP2_FLAG_NONE, last_sid, code, NULL, 0), 0);
}

/* ------------------------------------------------------------------ */
/* Moving bytes                                                        */
/* ------------------------------------------------------------------ */

static void buf_reserve(rawpeer *rp, size_t n) {
  if (n > rp->buf_cap) {
    rp->buf_cap = n * 2;
    rp->buf = xrealloc(rp->buf, rp->buf_cap);
  }
}

/* Raw side -> engine. */
static size_t pump_to_engine(rawpeer *rp) {
  size_t len = 0, off = 0;
  int stalls = 0;
  for (;;) {
    const uint8_t *p;
    ssize_t n = nghttp2_session_mem_send(rp->h2, &p);
    if (n < 0) {
      rp->h2_err = (int)n;
      break;
    }
    if (n == 0) break;
    buf_reserve(rp, len + (size_t)n);
    memcpy(rp->buf + len, p, (size_t)n);
    len += (size_t)n;
  }
  while (off < len) {
    size_t piece = len - off;
    ssize_t got;
    if (rp->max_split) {
      size_t r = 1 + rp_rand(rp) % rp->max_split;
      if (r < piece) piece = r;
    }
    got = sgrpc_conn_recv(rp->conn, rp->buf + off, piece, rp->now);
    if (got < 0) {
      rp->conn_err = (int)got;
      rawpeer_drain(rp);
      return off;
    }
    off += (size_t)got;
    /* events may point into rp->buf: drain before feeding more */
    if (rawpeer_drain(rp) == 0 && got == 0) {
      /* no progress and nothing to pull: the engine refuses input */
      assert_true(++stalls < 3);
    } else {
      stalls = 0;
    }
  }
  return len;
}

/* Engine -> raw side. */
static size_t pump_to_raw(rawpeer *rp) {
  const uint8_t *data;
  ssize_t n = sgrpc_conn_out_peek(rp->conn, &data);
  uint8_t *tmp;
  ssize_t rv;
  if (n <= 0) {
    if (n < 0) rp->conn_err = (int)n;
    rawpeer_drain(rp);
    return 0;
  }
  /* copy: event handlers may call into the engine, ending the borrow */
  tmp = xmalloc((size_t)n);
  memcpy(tmp, data, (size_t)n);
  assert_int_equal(sgrpc_conn_out_consume(rp->conn, (size_t)n), 0);
  rawpeer_drain(rp);
  rv = nghttp2_session_mem_recv(rp->h2, tmp, (size_t)n);
  if (rv < 0) rp->h2_err = (int)rv;
  free(tmp);
  return (size_t)n;
}

size_t rawpeer_feed(rawpeer *rp) {
  rawpeer_drain(rp);
  return pump_to_engine(rp);
}

size_t rawpeer_flush(rawpeer *rp) {
  rawpeer_drain(rp);
  return pump_to_raw(rp);
}

size_t rawpeer_pump(rawpeer *rp) {
  size_t moved;
  rawpeer_drain(rp);
  moved = pump_to_engine(rp);
  moved += pump_to_raw(rp);
  return moved;
}

size_t rawpeer_run(rawpeer *rp, int max_rounds) {
  size_t total = 0;
  int i;
  for (i = 0; i < max_rounds; i++) {
    size_t moved = rawpeer_pump(rp);
    total += moved;
    if (!moved && !nghttp2_session_want_write(rp->h2) && !sgrpc_conn_want_write(rp->conn))
      break;
  }
  return total;
}

void rawpeer_advance(rawpeer *rp, int64_t ns) {
  rp->now += ns;
  if (sgrpc_conn_next_expiry(rp->conn) <= rp->now)
    assert_int_equal(sgrpc_conn_handle_expiry(rp->conn, rp->now), 0);
  rawpeer_drain(rp);
}

/* ------------------------------------------------------------------ */
/* Queries                                                             */
/* ------------------------------------------------------------------ */

const rp_frame *rawpeer_headers(const rawpeer *rp, int32_t sid, int nth) {
  size_t i;
  for (i = 0; i < rp->nframes; i++) {
    const rp_frame *f = &rp->frames[i];
    if (f->type == NGHTTP2_HEADERS && f->stream_id == sid && nth-- == 0) return f;
  }
  return NULL;
}

size_t rawpeer_count_frames(const rawpeer *rp, int32_t sid, uint8_t type) {
  size_t i, n = 0;
  for (i = 0; i < rp->nframes; i++)
    if (rp->frames[i].type == type && (sid < 0 || rp->frames[i].stream_id == sid)) n++;
  return n;
}

int64_t rawpeer_rst_code(const rawpeer *rp, int32_t sid) {
  size_t i;
  for (i = 0; i < rp->nframes; i++)
    if (rp->frames[i].type == NGHTTP2_RST_STREAM && rp->frames[i].stream_id == sid)
      return rp->frames[i].error_code;
  return -1;
}

int rawpeer_stream_ended(const rawpeer *rp, int32_t sid) {
  size_t i;
  for (i = 0; i < rp->nframes; i++)
    if (rp->frames[i].stream_id == sid && rp->frames[i].end_stream) return 1;
  return 0;
}

const uint8_t *rawpeer_stream_data(rawpeer *rp, int32_t sid, size_t *len) {
  size_t i, n = 0;
  for (i = 0; i < rp->nframes; i++)
    if (rp->frames[i].type == NGHTTP2_DATA && rp->frames[i].stream_id == sid)
      n += rp->frames[i].len;
  free(rp->scratch);
  rp->scratch = xmalloc(n);
  n = 0;
  for (i = 0; i < rp->nframes; i++)
    if (rp->frames[i].type == NGHTTP2_DATA && rp->frames[i].stream_id == sid) {
      if (rp->frames[i].len) memcpy(rp->scratch + n, rp->frames[i].data, rp->frames[i].len);
      n += rp->frames[i].len;
    }
  *len = n;
  return rp->scratch;
}

const rp_frame *rawpeer_goaway(const rawpeer *rp) {
  size_t i;
  const rp_frame *g = NULL;
  for (i = 0; i < rp->nframes; i++)
    if (rp->frames[i].type == NGHTTP2_GOAWAY) g = &rp->frames[i];
  return g;
}

const char *rawpeer_field(const rp_frame *f, const char *name) {
  size_t i;
  if (!f) return NULL;
  for (i = 0; i < f->nfields; i++)
    if (strcmp(f->fields[i].name, name) == 0) return f->fields[i].value;
  return NULL;
}

void rawpeer_assert_fields(const rp_frame *f, ...) {
  va_list ap;
  size_t i = 0, n = 0;
  int ok = 1;
  const char *exp[128];
  assert_non_null(f);
  va_start(ap, f);
  for (;;) {
    const char *name = va_arg(ap, const char *);
    if (!name) break;
    assert_true(n + 2 <= 128);
    exp[n++] = name;
    exp[n++] = va_arg(ap, const char *);
  }
  va_end(ap);
  if (f->nfields != n / 2) ok = 0;
  for (i = 0; ok && i < f->nfields; i++) {
    if (strcmp(f->fields[i].name, exp[2 * i]) != 0 ||
        f->fields[i].valuelen != strlen(exp[2 * i + 1]) ||
        memcmp(f->fields[i].value, exp[2 * i + 1], f->fields[i].valuelen) != 0)
      ok = 0;
  }
  if (!ok) {
    fprintf(stderr, "header list mismatch on stream %d\n  expected:\n", (int)f->stream_id);
    for (i = 0; i < n; i += 2) fprintf(stderr, "    %s: %s\n", exp[i], exp[i + 1]);
    fprintf(stderr, "  actual:\n");
    for (i = 0; i < f->nfields; i++)
      fprintf(stderr, "    %s: %s\n", f->fields[i].name, f->fields[i].value);
    fail_msg("header list mismatch");
  }
}

size_t rawpeer_count_events(const rawpeer *rp, sgrpc_event_type type,
                            const sgrpc_call *call) {
  size_t i, n = 0;
  for (i = 0; i < rp->nevents; i++)
    if (rp->events[i].type == type && (!call || rp->events[i].call == call)) n++;
  return n;
}

const rp_event *rawpeer_event(const rawpeer *rp, sgrpc_event_type type,
                              const sgrpc_call *call, int nth) {
  size_t i;
  for (i = 0; i < rp->nevents; i++)
    if (rp->events[i].type == type && (!call || rp->events[i].call == call) && nth-- == 0)
      return &rp->events[i];
  return NULL;
}

size_t rawpeer_grpc_frame(uint8_t *out, uint8_t flags, const void *msg, size_t len) {
  out[0] = flags;
  out[1] = (uint8_t)(len >> 24);
  out[2] = (uint8_t)(len >> 16);
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
  if (len) memcpy(out + 5, msg, len);
  return len + 5;
}
