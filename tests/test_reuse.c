/*
 * Reuse of ended calls and of nghttp2's blocks inside one connection
 * (engine/src/call.c call cache, conn.c ng_alloc): a reused call carries
 * nothing over from the call before it, and on a warm connection, where
 * most memory comes from the caches, an allocation failure is still an
 * error someone sees, never a silently wrong call.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MD 48

typedef struct want {
  /* what the client sends */
  size_t md_count;
  sgrpc_md md[MAX_MD];
  char keys[MAX_MD][32];
  uint8_t vals[MAX_MD][64];
  const char *subtype;
  uint8_t *msg;
  size_t msg_len;
  /* what the server answers */
  int code;
  char message[32];
  int trailer_md; /* 1: trailing metadata "t" = message[0..2) */
} want;

typedef struct world {
  want *w;
  /* server */
  int srv_new, srv_md_ok, srv_ct_ok, srv_msgs, srv_api_err;
  /* client */
  int done, status, got_msg_ok, trailer_ok, cli_api_err;
  char status_msg[64];
} world;

static void srv_event(world *x, const sgrpc_event *ev) {
  want *w = x->w;
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW: {
    size_t i;
    char ct[64];
    x->srv_new++;
    x->srv_md_ok = ev->u.call_new.md_count == w->md_count;
    for (i = 0; x->srv_md_ok && i < w->md_count; i++) {
      const sgrpc_md *m = &ev->u.call_new.md[i];
      x->srv_md_ok = m->key_len == w->md[i].key_len &&
                     memcmp(m->key, w->md[i].key, m->key_len) == 0 &&
                     m->value_len == w->md[i].value_len &&
                     memcmp(m->value, w->md[i].value, m->value_len) == 0;
    }
    snprintf(ct, sizeof(ct), "application/grpc%s%s", w->subtype ? "+" : "",
             w->subtype ? w->subtype : "");
    x->srv_ct_ok = strcmp(ev->u.call_new.content_type, ct) == 0;
    break;
  }
  case SGRPC_EV_MESSAGE:
    x->srv_msgs++;
    if (sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0) != 0) {
      /* as an application should: the reply is lost, so is the call */
      x->srv_api_err++;
      sgrpc_call_cancel(ev->call);
    }
    break;
  case SGRPC_EV_HALF_CLOSE: {
    sgrpc_status st;
    sgrpc_md t;
    if (x->srv_api_err) break;
    memset(&st, 0, sizeof(st));
    st.code = w->code;
    st.message = w->message[0] ? w->message : NULL;
    if (w->trailer_md) {
      t.key = "t";
      t.key_len = 1;
      t.value = (const uint8_t *)w->message;
      t.value_len = 2;
      st.md = &t;
      st.md_count = 1;
    }
    if (sgrpc_call_send_status(ev->call, &st) != 0) x->srv_api_err++;
    break;
  }
  case SGRPC_EV_CLOSE:
    sgrpc_call_release(ev->call);
    break;
  default:
    break;
  }
}

static void cli_event(world *x, const sgrpc_event *ev) {
  want *w = x->w;
  switch (ev->type) {
  case SGRPC_EV_MESSAGE:
    x->got_msg_ok = ev->u.message.len == w->msg_len &&
                    memcmp(ev->u.message.data, w->msg, w->msg_len) == 0;
    break;
  case SGRPC_EV_CLOSE: {
    const sgrpc_status_info *st = &ev->u.close.status;
    x->done = 1;
    x->status = st->code;
    snprintf(x->status_msg, sizeof(x->status_msg), "%.*s", (int)st->message_len, st->message);
    x->trailer_ok = w->trailer_md ? st->md_count == 1 && st->md[0].key_len == 1 &&
                                        st->md[0].value_len == 2 &&
                                        memcmp(st->md[0].value, w->message, 2) == 0
                                  : st->md_count == 0;
    sgrpc_call_release(ev->call);
    break;
  }
  default:
    break;
  }
}

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  if (conn == p->srv) srv_event(ud, ev);
  else cli_event(ud, ev);
}

/* Runs one call of w to its end; returns 0, or the code sgrpc_call_start
 * or sgrpc_call_send returned. */
static int run_call(pair *p, world *x, want *w) {
  sgrpc_call_opts o;
  sgrpc_call *call;
  int rv;
  memset(x, 0, sizeof(*x));
  x->w = w;
  memset(&o, 0, sizeof(o));
  o.path = "/t.R/Echo";
  o.md = w->md;
  o.md_count = w->md_count;
  o.content_subtype = w->subtype;
  rv = sgrpc_call_start(p->cli, &o, p->now, &call);
  if (rv != 0) return rv;
  rv = sgrpc_call_send(call, w->msg, w->msg_len, SGRPC_SEND_END);
  if (rv != 0) {
    sgrpc_call_release(call);
    pair_run(p, 200);
    return rv;
  }
  pair_run(p, 200);
  if (!x->done) {
    /* whatever went wrong, the call must still end once the transport goes */
    sgrpc_conn_transport_closed(p->cli);
    pair_drain(p, p->cli);
  }
  assert_true(x->done);
  return 0;
}

static void make_want(want *w, int i, size_t nmd, size_t vlen, size_t msg_len) {
  size_t j, k;
  memset(w, 0, sizeof(*w));
  w->md_count = nmd;
  for (j = 0; j < nmd; j++) {
    int bin = (i + (int)j) % 4 == 0;
    snprintf(w->keys[j], sizeof(w->keys[j]), "k%zu%s", j, bin ? "-bin" : "");
    for (k = 0; k < vlen; k++)
      w->vals[j][k] = bin ? (uint8_t)(i * 7 + j + k) : (uint8_t)('a' + (i + j + k) % 26);
    w->md[j].key = w->keys[j];
    w->md[j].key_len = strlen(w->keys[j]);
    w->md[j].value = w->vals[j];
    w->md[j].value_len = vlen;
  }
  w->subtype = i % 2 ? "proto" : NULL;
  w->msg_len = msg_len;
  w->msg = malloc(msg_len ? msg_len : 1);
  for (k = 0; k < msg_len; k++) w->msg[k] = (uint8_t)(i + k * 13);
}

/* 120 calls one after the other on one connection, each reusing the
 * previous call's object and buffers: metadata counts, content-types,
 * message sizes (some above what a kept buffer may hold) and status
 * shapes all change from call to call. */
static void test_reused_calls_carry_nothing_over(void **state) {
  pair p;
  world x;
  want w;
  int i;
  (void)state;
  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  p.on_event = on_event;
  p.ud = &x;
  for (i = 0; i < 120; i++) {
    make_want(&w, i, (size_t)(i % 5 == 4 ? 40 : i % 5), (size_t)(i % 3 ? 5 : 60),
              i % 7 == 0 ? 10000 : (size_t)(i % 11));
    w.code = i % 3 == 1 ? SGRPC_STATUS_NOT_FOUND : SGRPC_STATUS_OK;
    if (i % 3 == 1) snprintf(w.message, sizeof(w.message), "gone %d", i);
    if (i % 3 == 2) {
      snprintf(w.message, sizeof(w.message), "%02d", i % 100);
      w.trailer_md = 1;
    }
    assert_int_equal(run_call(&p, &x, &w), 0);
    assert_int_equal(x.srv_new, 1);
    assert_true(x.srv_md_ok);
    assert_true(x.srv_ct_ok);
    assert_int_equal(x.srv_msgs, 1);
    assert_int_equal(x.srv_api_err, 0);
    assert_int_equal(x.status, w.code);
    assert_string_equal(x.status_msg, w.message);
    assert_true(x.trailer_ok);
    assert_true(x.got_msg_ok);
    /* nothing is left open: the ended calls are cached, not counted */
    assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
    assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
    free(w.msg);
  }
  pair_free(&p);
}

/* One warm-up call fills the caches; the second call needs more than they
 * hold (40 metadata fields of 60 bytes, a 6000-byte message), so it still
 * allocates. Fails each of those allocations in turn: every failure is
 * seen (an API error, or a call that does not end OK), no call ends OK
 * with wrong data, and nothing leaks. */
static void test_warm_connection_allocation_failure(void **state) {
  long n = -1, k;
  (void)state;
  for (k = 0; n < 0 || k <= n; k++) {
    pair p;
    world x;
    want warm, big;
    sgrpc_mem mem;
    failmem fm;
    long before;
    int rv;
    failmem_init(&fm, &mem);
    assert_int_equal(pair_init(&p, NULL, NULL, &mem), 0);
    p.on_event = on_event;
    p.ud = &x;
    make_want(&warm, 1, 2, 5, 20);
    assert_int_equal(run_call(&p, &x, &warm), 0);
    assert_int_equal(x.status, SGRPC_STATUS_OK);
    make_want(&big, 2, 40, 60, 6000);
    before = fm.count;
    if (k > 0) fm.fail_at = before + k;
    rv = run_call(&p, &x, &big);
    if (k == 0) {
      /* the reference run: count what the call allocates on a warm connection */
      assert_int_equal(rv, 0);
      assert_int_equal(x.status, SGRPC_STATUS_OK);
      assert_true(x.srv_md_ok && x.got_msg_ok);
      n = fm.count - before;
      assert_true(n > 0);
      printf("# a 40-field call on a warm connection: %ld allocations\n", n);
    } else {
      assert_int_equal(fm.failures, 1);
      if (rv != 0) {
        assert_true(rv == SGRPC_ERR_NOMEM || sgrpc_is_fatal(rv));
      } else if (x.status == SGRPC_STATUS_OK) {
        /* ended OK: then everything arrived intact, on both sides */
        if (!(x.srv_md_ok && x.srv_ct_ok && x.got_msg_ok && x.trailer_ok))
          fprintf(stderr, "k=%ld new=%d md=%d ct=%d msgs=%d msg=%d tr=%d err=%d\n", k, x.srv_new,
                  x.srv_md_ok, x.srv_ct_ok, x.srv_msgs, x.got_msg_ok, x.trailer_ok, x.srv_api_err);
        assert_true(x.srv_md_ok && x.srv_ct_ok && x.got_msg_ok && x.trailer_ok);
      }
    }
    free(warm.msg);
    free(big.msg);
    pair_free(&p);
    assert_int_equal(fm.live, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reused_calls_carry_nothing_over),
      cmocka_unit_test(test_warm_connection_allocation_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
