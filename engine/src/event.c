/*
 * The event queue: a ring of sg_event the nghttp2 callbacks push and
 * sgrpc_conn_next_event pops, with what each event still owns (message
 * storage, window credit, a reference on its call) given back on the next
 * pull.
 */
#include <string.h>

#include "conn.h"

sg_event *sg_event_push(sgrpc_conn *c, sgrpc_event_type type, sgrpc_call *call) {
  sg_event *e;
  if (c->evq_len == c->evq_cap) {
    /* small at first: an idle connection keeps little */
    size_t ncap = c->evq_cap ? c->evq_cap * 2 : 4, i;
    sg_event *nq = sg_malloc(c, ncap * sizeof(*nq));
    if (!nq) return NULL;
    for (i = 0; i < c->evq_len; i++)
      nq[i] = c->evq[(c->evq_head + i) % c->evq_cap];
    sg_free(c, c->evq);
    c->evq = nq;
    c->evq_cap = ncap;
    c->evq_head = 0;
  }
  e = &c->evq[(c->evq_head + c->evq_len) % c->evq_cap];
  c->evq_len++;
  memset(e, 0, sizeof(*e));
  e->ev.type = type;
  e->ev.call = call;
  if (call) call->ev_refs++;
  return e;
}

/* Gives back what the previously pulled event owned. */
void sg_event_retire(sgrpc_conn *c) {
  if (c->retired_counted) {
    size_t n = c->retired_counted;
    c->retired_counted = 0;
    c->mem_drain -= n;
    sg_budget_give(c, n);
  }
  if (c->retired.p) {
    sgrpc_call *call = c->retired_call;
    if (call && !call->spare.p && !(call->flags & SG_CF_RELEASED)) {
      call->spare = c->retired;
      call->spare.len = call->spare.off = 0;
      sg_budget_take(c, call->spare.cap); /* the call's again */
    } else {
      sg_buf_free(&c->mem, &c->retired);
    }
    memset(&c->retired, 0, sizeof(c->retired));
  }
  if (c->retired_call) {
    sgrpc_call *call = c->retired_call;
    c->retired_call = NULL;
    if (c->retired_is_new) sg_call_drop_request_hdrs(c, call);
    call->ev_refs--;
    sg_call_maybe_free(call);
  }
}

/* Stream-level credit only: connection-level credit goes back as bytes
 * arrive (on_data_chunk_recv). Holding both until the reader pulls lets
 * partial messages on several streams use up the connection window with
 * none of them complete: a deadlock (4 concurrent 1 MiB messages against
 * a 4 MiB window did it). Memory stays bounded by the stream windows. */
void sg_credit(sgrpc_conn *c, int32_t stream_id, size_t n) {
  int rv;
  if (n == 0 || c->fatal) return;
  rv = nghttp2_session_consume_stream(c->session, stream_id, n);
  if (rv != 0 && nghttp2_is_fatal(rv)) c->fatal = sg_map_nghttp2_error(rv);
}

int sg_api_conn_next_event(sgrpc_conn *c, sgrpc_event *ev) {
  if (!c || !ev) return SGRPC_ERR_INVALID_ARGUMENT;
  sg_event_retire(c);
  while (c->evq_len) {
    sg_event *e = &c->evq[c->evq_head];
    sgrpc_call *call = e->ev.call;
    c->evq_head = (c->evq_head + 1) % c->evq_cap;
    c->evq_len--;
    sg_credit(c, e->credit_stream, e->credit);
    if (call && e->ev.type == SGRPC_EV_CLOSE && !(call->flags & SG_CF_COUNTED)) {
      call->flags |= SG_CF_COUNTED;
      if (e->ev.u.close.status.code == SGRPC_STATUS_OK) c->stats.calls_succeeded++;
      else c->stats.calls_failed++;
    }
    if (call) {
      call->ev_refs--;
      if (call->flags & SG_CF_RELEASED) { /* the user gave the handle back: drop it */
        sg_buf_free(&c->mem, &e->owned);
        c->mem_drain -= e->counted;
        sg_budget_give(c, e->counted);
        sg_call_maybe_free(call);
        continue;
      }
      e->ev.call_user_data = call->user_data;
      /* keep the call alive until the next pull, so borrowed data stays */
      call->ev_refs++;
      c->retired_call = call;
    }
    c->retired = e->owned;
    c->retired_counted = e->counted;
    c->retired_is_msg = e->ev.type == SGRPC_EV_MESSAGE;
    c->retired_is_new = e->ev.type == SGRPC_EV_CALL_NEW;
    *ev = e->ev;
    return 1;
  }
  memset(ev, 0, sizeof(*ev));
  ev->type = SGRPC_EV_NONE;
  return 0;
}

/* What sgrpc_conn_take_message hands out: the buffer and the allocator
 * that frees it, so that it can go back after the connection is gone. */
typedef struct sg_taken {
  sgrpc_mem mem;
  uint8_t *p;
  size_t cap; /* its allocated size, for sg_spare_park */
} sg_taken;

static void taken_release(void *ud, const uint8_t *data, size_t len) {
  sg_taken *t = ud;
  sgrpc_mem mem = t->mem;
  (void)data;
  (void)len;
  mem.free(t->p, mem.user_data);
  mem.free(t, mem.user_data);
}

int sg_taken_recycle(sgrpc_conn *c, sgrpc_release_cb release, void *release_ud) {
  sg_taken *t = release_ud;
  uint8_t *p;
  size_t cap;
  if (release != taken_release || t->mem.free != c->mem.free ||
      t->mem.user_data != c->mem.user_data)
    return 0;
  p = t->p;
  cap = t->cap;
  sg_free(c, t);
  sg_spare_park(c, p, cap);
  return 1;
}

int sgrpc_conn_take_message(sgrpc_conn *c, const uint8_t **data, size_t *len,
                            sgrpc_release_cb *release, void **release_ud) {
  sg_taken *t;
  if (!c || !data || !len || !release || !release_ud) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!c->retired_is_msg || !c->retired.p) return SGRPC_ERR_INVALID_STATE;
  t = sg_malloc(c, sizeof(*t));
  if (!t) return SGRPC_ERR_NOMEM;
  t->mem = c->mem;
  t->p = c->retired.p;
  t->cap = c->retired.cap;
  *data = c->retired.p;
  *len = c->retired.len;
  *release = taken_release;
  *release_ud = t;
  /* the engine no longer holds it: the budget gets it back at once */
  memset(&c->retired, 0, sizeof(c->retired));
  c->retired_is_msg = 0;
  if (c->retired_counted) {
    size_t n = c->retired_counted;
    c->retired_counted = 0;
    c->mem_drain -= n;
    sg_budget_give(c, n);
  }
  return 0;
}
