/*
 * demo_loop.h over the epoll, libuv and kqueue adapters. Each adapter is
 * compiled in when CMake found it (SGRPC_DEMO_HAVE_EPOLL / _UV / _KQUEUE).
 * Only loop plumbing lives here: timers, signals, run and stop.
 */
#define _GNU_SOURCE
#include "demo_loop.h"

#include <stdlib.h>
#include <string.h>

#ifdef SGRPC_DEMO_HAVE_EPOLL
#include <sgrpc/epoll.h>
#endif
#ifdef SGRPC_DEMO_HAVE_UV
#include <sgrpc/uv.h>
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
#include <sgrpc/kqueue.h>
#endif

enum { L_EPOLL = 1, L_UV, L_KQUEUE };

struct demo_timer {
  demo_loop *l;
  void (*cb)(void *ud);
  void *ud;
  void *native; /* sgrpc_epoll_timer or sgrpc_kq_timer */
#ifdef SGRPC_DEMO_HAVE_UV
  uv_timer_t uvt;
#endif
  demo_timer *prev, *next;
};

struct demo_loop {
  int kind;
#ifdef SGRPC_DEMO_HAVE_EPOLL
  sgrpc_epoll_loop *ep;
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  uv_loop_t uv;
  sgrpc_uv *u;
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  sgrpc_kq_loop *kq;
#endif
  demo_timer *timers; /* pending, so that del can free them */
  void (*sig_cb)(int signo, int count, void *ud);
  void *sig_ud;
};

const char *demo_loop_kinds(void) {
  return ""
#ifdef SGRPC_DEMO_HAVE_EPOLL
         "epoll"
#endif
#ifdef SGRPC_DEMO_HAVE_UV
#ifdef SGRPC_DEMO_HAVE_EPOLL
         "|"
#endif
         "libuv"
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
#if defined(SGRPC_DEMO_HAVE_EPOLL) || defined(SGRPC_DEMO_HAVE_UV)
         "|"
#endif
         "kqueue"
#endif
      ;
}

const char *demo_loop_name(const demo_loop *l) {
  return l->kind == L_EPOLL ? "epoll" : l->kind == L_UV ? "libuv" : "kqueue";
}

int demo_loop_new(demo_loop **pl, const char *kind) {
  demo_loop *l = calloc(1, sizeof(*l));
  int rv = -1;
  *pl = NULL;
  if (!l) return -1;
#ifdef SGRPC_DEMO_HAVE_EPOLL
  if (strcmp(kind, "epoll") == 0) {
    l->kind = L_EPOLL;
    rv = sgrpc_epoll_loop_new(&l->ep) == 0 ? 0 : -1;
  }
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  if (strcmp(kind, "libuv") == 0) {
    l->kind = L_UV;
    if (uv_loop_init(&l->uv) == 0) {
      rv = sgrpc_uv_new(&l->u, &l->uv) == 0 ? 0 : -1;
      if (rv != 0) uv_loop_close(&l->uv);
    }
  }
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  if (strcmp(kind, "kqueue") == 0) {
    l->kind = L_KQUEUE;
    rv = sgrpc_kq_loop_new(&l->kq) == 0 ? 0 : -1;
  }
#endif
  if (rv != 0) {
    free(l);
    return -1;
  }
  *pl = l;
  return 0;
}

static void timer_unlink(demo_timer *t) {
  if (t->prev) t->prev->next = t->next;
  else t->l->timers = t->next;
  if (t->next) t->next->prev = t->prev;
}

#ifdef SGRPC_DEMO_HAVE_UV
static void uvt_closed(uv_handle_t *h) { free(h->data); }
#endif

/* Frees a timer that has fired or is cancelled (its native handle is
 * gone or stopped already). */
static void timer_free(demo_timer *t) {
#ifdef SGRPC_DEMO_HAVE_UV
  if (t->l->kind == L_UV) {
    uv_close((uv_handle_t *)&t->uvt, uvt_closed); /* libuv frees it later */
    return;
  }
#endif
  free(t);
}

static void timer_fire(demo_timer *t) {
  timer_unlink(t);
  t->native = NULL;
  t->cb(t->ud);
  timer_free(t);
}

#ifdef SGRPC_DEMO_HAVE_EPOLL
static void ep_fire(sgrpc_epoll_loop *loop, void *ud) {
  (void)loop;
  timer_fire(ud);
}
static void ep_signal(sgrpc_epoll_loop *loop, int signo, int count, void *ud) {
  demo_loop *l = ud;
  (void)loop;
  if (l->sig_cb) l->sig_cb(signo, count, l->sig_ud);
}
#endif
#ifdef SGRPC_DEMO_HAVE_UV
static void uv_fire(uv_timer_t *h) { timer_fire(h->data); }
static void uv_signal_seen(sgrpc_uv *u, int signo, int count, void *ud) {
  demo_loop *l = ud;
  (void)u;
  if (l->sig_cb) l->sig_cb(signo, count, l->sig_ud);
}
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
static void kq_fire(sgrpc_kq_loop *loop, void *ud) {
  (void)loop;
  timer_fire(ud);
}
static void kq_signal(sgrpc_kq_loop *loop, int signo, int count, void *ud) {
  demo_loop *l = ud;
  (void)loop;
  if (l->sig_cb) l->sig_cb(signo, count, l->sig_ud);
}
#endif

int demo_timer_start(demo_loop *l, int64_t delay_ns, void (*cb)(void *ud), void *ud,
                     demo_timer **pt) {
  demo_timer *t = calloc(1, sizeof(*t));
  int rv = -1;
  if (pt) *pt = NULL;
  if (!t) return -1;
  t->l = l;
  t->cb = cb;
  t->ud = ud;
  switch (l->kind) {
#ifdef SGRPC_DEMO_HAVE_EPOLL
  case L_EPOLL:
    rv = sgrpc_epoll_timer_start(l->ep, delay_ns, ep_fire, t, (sgrpc_epoll_timer **)&t->native);
    break;
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  case L_UV:
    uv_timer_init(&l->uv, &t->uvt);
    t->uvt.data = t;
    rv = uv_timer_start(&t->uvt, uv_fire, (uint64_t)((delay_ns + 999999) / 1000000), 0);
    if (rv != 0) {
      uv_close((uv_handle_t *)&t->uvt, uvt_closed);
      return -1;
    }
    break;
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  case L_KQUEUE:
    rv = sgrpc_kq_timer_start(l->kq, delay_ns, kq_fire, t, (sgrpc_kq_timer **)&t->native);
    break;
#endif
  default:
    break;
  }
  if (rv != 0) {
    free(t);
    return -1;
  }
  t->next = l->timers;
  if (l->timers) l->timers->prev = t;
  l->timers = t;
  if (pt) *pt = t;
  return 0;
}

void demo_timer_cancel(demo_timer *t) {
  if (!t) return;
  timer_unlink(t);
  switch (t->l->kind) {
#ifdef SGRPC_DEMO_HAVE_EPOLL
  case L_EPOLL:
    sgrpc_epoll_timer_cancel(t->native);
    break;
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  case L_UV:
    uv_timer_stop(&t->uvt);
    break;
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  case L_KQUEUE:
    sgrpc_kq_timer_cancel(t->native);
    break;
#endif
  default:
    break;
  }
  timer_free(t);
}

void demo_loop_del(demo_loop *l) {
  if (!l) return;
  switch (l->kind) {
#ifdef SGRPC_DEMO_HAVE_EPOLL
  case L_EPOLL:
    sgrpc_epoll_loop_del(l->ep); /* may cancel timers through CLOSE callbacks */
    break;
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  case L_UV:
    sgrpc_uv_del(l->u);
    break;
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  case L_KQUEUE:
    sgrpc_kq_loop_del(l->kq);
    break;
#endif
  default:
    break;
  }
  /* What is left never fired; epoll and kqueue freed their handles with
   * the loop, libuv's are closed here. */
  while (l->timers) {
    demo_timer *t = l->timers;
    timer_unlink(t);
#ifdef SGRPC_DEMO_HAVE_UV
    if (l->kind == L_UV) uv_timer_stop(&t->uvt);
#endif
    timer_free(t);
  }
#ifdef SGRPC_DEMO_HAVE_UV
  if (l->kind == L_UV) {
    int i;
    /* Close callbacks run here; bounded. */
    for (i = 0; i < 1000 && uv_run(&l->uv, UV_RUN_NOWAIT) != 0; i++) {
    }
    uv_loop_close(&l->uv);
  }
#endif
  free(l);
}

int64_t demo_loop_now(const demo_loop *l) {
  switch (l->kind) {
#ifdef SGRPC_DEMO_HAVE_EPOLL
  case L_EPOLL:
    return sgrpc_epoll_now();
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  case L_UV:
    return sgrpc_uv_now();
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  case L_KQUEUE:
    return sgrpc_kq_now();
#endif
  default:
    return 0;
  }
}

int demo_loop_listen(demo_loop *l, const sgrpc_ac_listen_opts *o, sgrpc_ac_server **ps) {
  switch (l->kind) {
#ifdef SGRPC_DEMO_HAVE_EPOLL
  case L_EPOLL:
    return sgrpc_epoll_listen(l->ep, o, ps);
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  case L_UV:
    return sgrpc_uv_listen(l->u, o, ps);
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  case L_KQUEUE:
    return sgrpc_kq_listen(l->kq, o, ps);
#endif
  default:
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
}

int demo_loop_channel(demo_loop *l, const sgrpc_ac_channel_opts *o, sgrpc_ac_channel **pch) {
  switch (l->kind) {
#ifdef SGRPC_DEMO_HAVE_EPOLL
  case L_EPOLL:
    return sgrpc_ac_channel_new(pch, sgrpc_epoll_loop_hub(l->ep), o);
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  case L_UV:
    return sgrpc_uv_channel_new(l->u, o, pch);
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  case L_KQUEUE:
    return sgrpc_kq_channel_new(l->kq, o, pch);
#endif
  default:
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
}

int demo_loop_catch_signals(demo_loop *l, void (*cb)(int signo, int count, void *ud), void *ud) {
  l->sig_cb = cb;
  l->sig_ud = ud;
  switch (l->kind) {
#ifdef SGRPC_DEMO_HAVE_EPOLL
  case L_EPOLL:
    return sgrpc_epoll_loop_catch_signals(l->ep, ep_signal, l);
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  case L_UV:
    return sgrpc_uv_catch_signals(l->u, uv_signal_seen, l);
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  case L_KQUEUE:
    return sgrpc_kq_catch_signals(l->kq, kq_signal, l);
#endif
  default:
    return -1;
  }
}

int demo_loop_run(demo_loop *l) {
  switch (l->kind) {
#ifdef SGRPC_DEMO_HAVE_EPOLL
  case L_EPOLL:
    return sgrpc_epoll_loop_run(l->ep) == 0 ? 0 : -1;
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  case L_UV:
    uv_run(&l->uv, UV_RUN_DEFAULT);
    return 0;
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  case L_KQUEUE:
    return sgrpc_kq_loop_run(l->kq) == 0 ? 0 : -1;
#endif
  default:
    return -1;
  }
}

void demo_loop_stop(demo_loop *l) {
  switch (l->kind) {
#ifdef SGRPC_DEMO_HAVE_EPOLL
  case L_EPOLL:
    sgrpc_epoll_loop_stop(l->ep);
    break;
#endif
#ifdef SGRPC_DEMO_HAVE_UV
  case L_UV:
    uv_stop(&l->uv);
    break;
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
  case L_KQUEUE:
    sgrpc_kq_loop_stop(l->kq);
    break;
#endif
  default:
    break;
  }
}
