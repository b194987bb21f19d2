/*
 * The kqueue adapter: plain BSD kqueue code feeding the net layer.
 * readiness -> read/send -> net entry points; one EVFILT_TIMER carries
 * the net loop's single timer; EVFILT_SIGNAL for SIGINT/SIGTERM. Sockets
 * come from the shared POSIX code (posix_net.c). No gRPC or HTTP/2 logic
 * lives here.
 */
#include <sgrpc/kqueue.h>
#include <sgrpc/net_adapter.h>

#include "posix_net.h"

#include <sys/types.h>
#include <sys/event.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KQ_READ_BUF (64 * 1024)
#define KQ_READS_PER_WAKE 8
#define KQ_ACCEPTS_PER_WAKE 64
#define KQ_MAX_EVENTS 64
#define KQ_TIMER_IDENT 1

enum { KQ_CONN = 1, KQ_LISTENER, KQ_WATCH };

/* Every registration's udata points at one of these. */
typedef struct kq_handle {
  int kind;
  int fd;
} kq_handle;

typedef struct kq_tx {
  kq_handle h;
  sgrpc_kqueue *k;
  sgrpc_net_conn *c;
  int connecting;
  int want_write; /* EVFILT_WRITE registered */
  int dead;       /* closed: freed at the end of the turn */
  struct kq_tx *next_dead;
} kq_tx;

typedef struct kq_listener {
  kq_handle h;
  sgrpc_kqueue *k;
  sgrpc_net_server *s;
  pn_listener l;
  int dead;
  struct kq_listener *next_dead;
} kq_listener;

/* A descriptor the net layer asked to watch (ops->fd_watch: the DNS
 * resolver's sockets), one EVFILT_READ and/or EVFILT_WRITE each. */
typedef struct kq_watch {
  kq_handle h;
  sgrpc_net_fd *f; /* NULL once stopped */
  int events;
  struct kq_watch *next_dead;
} kq_watch;

struct sgrpc_kqueue {
  int kq;
  sgrpc_net_loop *net;
  sgrpc_mem mem;
  int64_t net_when;    /* what the net loop asked for */
  int64_t kernel_when; /* what EVFILT_TIMER is armed for, SGRPC_NEVER: none */
  kq_tx *dead_tx;
  kq_listener *dead_listeners;
  kq_watch *dead_watches;
  int stop;
  int catching;
  int signals;
  sgrpc_net_signal_cb on_signal;
  void *signal_ud;
  uint8_t rbuf[KQ_READ_BUF];
};

int64_t sgrpc_kqueue_now(void) { return pn_now(); }

static void *kq_alloc(sgrpc_kqueue *k, size_t n) { return k->mem.calloc(1, n, k->mem.user_data); }
static void kq_free(sgrpc_kqueue *k, void *p) { k->mem.free(p, k->mem.user_data); }

static int kq_change(sgrpc_kqueue *k, int fd, int filter, int flags, void *udata) {
  struct kevent kev;
  EV_SET(&kev, (uintptr_t)fd, filter, flags, 0, 0, udata);
  return kevent(k->kq, &kev, 1, NULL, 0, NULL);
}

/* ------------------------------------------------------------------ */
/* Transports                                                          */
/* ------------------------------------------------------------------ */

static void tx_want_write(kq_tx *tx, int on) {
  if (tx->want_write == on || tx->dead) return;
  kq_change(tx->k, tx->h.fd, EVFILT_WRITE, on ? EV_ADD | EV_ENABLE : EV_DELETE, &tx->h);
  tx->want_write = on;
}

/* ops->write: send what the socket takes; a short count (EAGAIN or the
 * io limit) arms EVFILT_WRITE, whose event calls sgrpc_net_conn_writable. */
static sgrpc_ssize op_write(void *p, const uint8_t *data, size_t len) {
  kq_tx *tx = p;
  size_t lim = sgrpc_net_loop_io_limit(tx->k->net), n = len;
  ssize_t w;
  if (lim && n > lim) n = lim;
  w = pn_send(tx->h.fd, data, n);
  if (w < 0) return -1;
  if ((size_t)w < len) tx_want_write(tx, 1);
  return w;
}

/* ops->writev: op_write for several pieces (sendmsg). */
static sgrpc_ssize op_writev(void *p, const sgrpc_iov *iov, size_t n) {
  kq_tx *tx = p;
  size_t lim = sgrpc_net_loop_io_limit(tx->k->net), total = 0, i;
  ssize_t w;
  for (i = 0; i < n && i < PN_IOV_MAX; i++) total += iov[i].len;
  w = pn_sendv(tx->h.fd, iov, n, lim);
  if (w < 0) return -1;
  if ((size_t)w < total) tx_want_write(tx, 1);
  return w;
}

/* ops->shutdown_write: queued output first, then FIN; reading goes on. */
static int op_shutdown_write(void *p) {
  kq_tx *tx = p;
  return pn_shutdown_write(tx->h.fd);
}

static void op_close(void *p) {
  kq_tx *tx = p;
  sgrpc_kqueue *k = tx->k;
  if (tx->dead) return;
  tx->dead = 1;
  tx->c = NULL;
  /* Delete explicitly: the descriptor number may be reused at once. */
  kq_change(k, tx->h.fd, EVFILT_READ, EV_DELETE, NULL);
  if (tx->want_write) kq_change(k, tx->h.fd, EVFILT_WRITE, EV_DELETE, NULL);
  close(tx->h.fd);
  tx->h.fd = -1;
  /* A batch of events from this turn may still point at tx. */
  tx->next_dead = k->dead_tx;
  k->dead_tx = tx;
}

static kq_tx *tx_new(sgrpc_kqueue *k, int fd, int connecting) {
  kq_tx *tx = kq_alloc(k, sizeof(*tx));
  if (!tx) return NULL;
  tx->h.kind = KQ_CONN;
  tx->h.fd = fd;
  tx->k = k;
  tx->connecting = connecting;
  kq_change(k, fd, EVFILT_READ, EV_ADD | EV_ENABLE, &tx->h);
  if (connecting) tx_want_write(tx, 1);
  return tx;
}

static void tx_readable(kq_tx *tx) {
  sgrpc_kqueue *k = tx->k;
  size_t cap = sizeof(k->rbuf), lim = sgrpc_net_loop_io_limit(k->net);
  int i;
  if (lim && lim < cap) cap = lim;
  for (i = 0; i < KQ_READS_PER_WAKE && tx->c; i++) {
    ssize_t n = pn_read(tx->h.fd, k->rbuf, cap);
    if (n == -1) return;
    if (n <= 0) { /* EOF or error */
      sgrpc_net_conn_closed(tx->c, pn_now());
      return;
    }
    sgrpc_net_conn_read(tx->c, k->rbuf, (size_t)n, pn_now());
    if ((size_t)n < cap) return;
  }
}

static void tx_writable(kq_tx *tx) {
  tx_want_write(tx, 0);
  if (tx->connecting) {
    tx->connecting = 0;
    if (pn_connect_result(tx->h.fd) != 0) sgrpc_net_conn_closed(tx->c, pn_now());
    else sgrpc_net_conn_connected(tx->c, pn_now());
    return;
  }
  sgrpc_net_conn_writable(tx->c, pn_now());
}

/* Brings a watch's filters to `events`. Returns 0 or a negative code. */
static int watch_set(sgrpc_kqueue *k, kq_watch *w, int events) {
  static const int bits[2] = {SGRPC_NET_FD_READ, SGRPC_NET_FD_WRITE};
  static const int filters[2] = {EVFILT_READ, EVFILT_WRITE};
  int i;
  for (i = 0; i < 2; i++) {
    int on = (events & bits[i]) != 0, was = (w->events & bits[i]) != 0;
    if (on == was) continue;
    if (kq_change(k, w->h.fd, filters[i], on ? EV_ADD | EV_ENABLE : EV_DELETE, &w->h) != 0 && on)
      return pn_err();
    w->events = on ? (w->events | bits[i]) : (w->events & ~bits[i]);
  }
  return 0;
}

/* ops->fd_watch: the descriptor joins the loop's own kqueue. */
static int op_fd_watch(void *ud, sgrpc_net_fd *f, int fd, int events) {
  sgrpc_kqueue *k = ud;
  kq_watch *w = sgrpc_net_fd_handle(f);
  int rv;
  if (!events) {
    if (!w) return 0;
    watch_set(k, w, 0);
    w->f = NULL;
    sgrpc_net_fd_set_handle(f, NULL);
    w->next_dead = k->dead_watches; /* a batch may still point at w */
    k->dead_watches = w;
    return 0;
  }
  if (!w) {
    w = kq_alloc(k, sizeof(*w));
    if (!w) return SGRPC_ERR_NOMEM;
    w->h.kind = KQ_WATCH;
    w->h.fd = fd;
    w->f = f;
    if ((rv = watch_set(k, w, events)) != 0) {
      watch_set(k, w, 0);
      kq_free(k, w);
      return rv;
    }
    sgrpc_net_fd_set_handle(f, w);
    return 0;
  }
  return watch_set(k, w, events);
}

/* ops->connect: non-blocking; connected or not, EVFILT_WRITE reports. */
static int op_connect(void *ud, sgrpc_net_conn *c, const sgrpc_net_address *a) {
  sgrpc_kqueue *k = ud;
  kq_tx *tx;
  int fd, rv = pn_connect(a, &fd);
  if (rv != 0) return rv;
  tx = tx_new(k, fd, 1);
  if (!tx) {
    close(fd);
    return SGRPC_ERR_NOMEM;
  }
  tx->c = c;
  sgrpc_net_conn_set_transport(c, tx);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Listeners                                                           */
/* ------------------------------------------------------------------ */

static void listener_accept(kq_listener *l) {
  int i;
  for (i = 0; i < KQ_ACCEPTS_PER_WAKE && !l->dead; i++) {
    sgrpc_net_conn *c = NULL;
    char peer[128];
    kq_tx *tx;
    int fd = pn_accept(&l->l, peer, sizeof(peer));
    if (fd == -2) continue;
    if (fd == -3) {
      /* Out of descriptors: the net layer rests the listener a while
       * (ops->listener_pause) instead of letting it spin. */
      sgrpc_net_server_accept_failed(l->s, SGRPC_ERR_SYSTEM(errno), pn_now());
      return;
    }
    if (fd < 0) return; /* EAGAIN, or EMFILE and friends: next turn */
    tx = tx_new(l->k, fd, 0);
    if (!tx) {
      close(fd);
      continue;
    }
    if (sgrpc_net_server_accept(l->s, tx, peer, pn_now(), &c) != 0) {
      op_close(tx);
      continue;
    }
    tx->c = c;
  }
}

/* ops->listener_pause: a resting listener's backlog is not reported. */
static void op_listener_pause(void *ud, sgrpc_net_server *s, void *p, int pause) {
  kq_listener *l = p;
  sgrpc_kqueue *k = ud;
  (void)s;
  if (l->dead) return;
  kq_change(k, l->h.fd, EVFILT_READ, pause ? EV_DISABLE : EV_ENABLE, &l->h);
}

static void op_listener_close(void *ud, sgrpc_net_server *s, void *p) {
  kq_listener *l = p;
  sgrpc_kqueue *k = ud;
  (void)s;
  if (l->dead) return;
  l->dead = 1;
  kq_change(k, l->h.fd, EVFILT_READ, EV_DELETE, NULL);
  pn_listener_close(&l->l);
  l->next_dead = k->dead_listeners;
  k->dead_listeners = l;
}

int sgrpc_kqueue_listen(sgrpc_kqueue *k, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  kq_listener *l;
  int rv;
  if (ps) *ps = NULL;
  if (!k || !o || !ps || (!o->use_fd && !o->listen) || !o->server.on_event)
    return SGRPC_ERR_INVALID_ARGUMENT;
  l = kq_alloc(k, sizeof(*l));
  if (!l) return SGRPC_ERR_NOMEM;
  l->h.kind = KQ_LISTENER;
  l->k = k;
  rv = pn_listen(o, &l->l);
  if (rv == 0) rv = sgrpc_net_server_new(&l->s, k->net, &o->server);
  if (rv == 0 && kq_change(k, l->l.fd, EVFILT_READ, EV_ADD | EV_ENABLE, &l->h) != 0) {
    rv = pn_err();
    sgrpc_net_server_del(l->s);
  }
  if (rv != 0) {
    if (l->l.fd >= 0 && !o->use_fd) pn_listener_close(&l->l);
    kq_free(k, l);
    return rv;
  }
  l->h.fd = l->l.fd;
  sgrpc_net_server_set_listener(l->s, l, l->l.port);
  *ps = l->s;
  return 0;
}

int sgrpc_kqueue_channel_new(sgrpc_kqueue *k, const sgrpc_net_channel_opts *o,
                             sgrpc_net_channel **pch) {
  if (pch) *pch = NULL;
  if (!k) return SGRPC_ERR_INVALID_ARGUMENT;
  return sgrpc_net_channel_new(pch, k->net, o);
}

/* ------------------------------------------------------------------ */
/* Timer and signals                                                   */
/* ------------------------------------------------------------------ */

static void op_timer_arm(void *ud, int64_t when) {
  sgrpc_kqueue *k = ud;
  k->net_when = when; /* programmed into EVFILT_TIMER before waiting */
}

/* Programs the single EVFILT_TIMER (milliseconds, rounded up). */
static void timer_program(sgrpc_kqueue *k, int64_t when, int64_t now) {
  struct kevent kev;
  if (when == k->kernel_when) return;
  if (when == SGRPC_NEVER) {
    EV_SET(&kev, KQ_TIMER_IDENT, EVFILT_TIMER, EV_DELETE, 0, 0, NULL);
  } else {
    int64_t ms = when <= now ? 0 : (when - now + 999999) / 1000000;
    EV_SET(&kev, KQ_TIMER_IDENT, EVFILT_TIMER, EV_ADD | EV_ENABLE | EV_ONESHOT, 0, (intptr_t)ms,
           NULL);
  }
  kevent(k->kq, &kev, 1, NULL, 0, NULL);
  k->kernel_when = when;
}

int sgrpc_kqueue_catch_signals(sgrpc_kqueue *k, sgrpc_net_signal_cb cb, void *ud) {
  static const int signos[2] = {SIGINT, SIGTERM};
  int i;
  if (!k) return SGRPC_ERR_INVALID_ARGUMENT;
  k->on_signal = cb;
  k->signal_ud = ud;
  if (k->catching) return 0;
  for (i = 0; i < 2; i++) {
    struct kevent kev;
    signal(signos[i], SIG_IGN);
    EV_SET(&kev, (uintptr_t)signos[i], EVFILT_SIGNAL, EV_ADD | EV_ENABLE, 0, 0, NULL);
    if (kevent(k->kq, &kev, 1, NULL, 0, NULL) != 0) return pn_err();
  }
  k->catching = 1;
  return 0;
}

/* The net layer's policy, once per delivery; the user hears first. */
static void signal_received(sgrpc_kqueue *k, int signo, intptr_t times) {
  intptr_t i;
  for (i = 0; i < (times > 0 ? times : 1); i++) {
    k->signals++;
    if (k->on_signal) k->on_signal(k->net, signo, k->signals, k->signal_ud);
    if (sgrpc_net_loop_signal(k->net, signo, pn_now()) >= 2) k->stop = 1;
  }
}

/* ------------------------------------------------------------------ */
/* Loop                                                                */
/* ------------------------------------------------------------------ */

int sgrpc_kqueue_new(sgrpc_kqueue **pk, const sgrpc_mem *mem) {
  sgrpc_net_ops ops;
  sgrpc_kqueue *k;
  sgrpc_mem m;
  int rv;
  if (pk) *pk = NULL;
  if (!pk || sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  k = m.calloc(1, sizeof(*k), m.user_data);
  if (!k) return SGRPC_ERR_NOMEM;
  k->mem = m;
  k->net_when = SGRPC_NEVER;
  k->kernel_when = SGRPC_NEVER;
  k->kq = kqueue();
  if (k->kq < 0) {
    rv = pn_err();
    kq_free(k, k);
    return rv;
  }
  memset(&ops, 0, sizeof(ops));
  ops.connect = op_connect;
  ops.write = op_write;
  ops.writev = op_writev;
  ops.close = op_close;
  ops.timer_arm = op_timer_arm;
  ops.listener_close = op_listener_close;
  ops.shutdown_write = op_shutdown_write;
  ops.listener_pause = op_listener_pause;
  ops.fd_watch = op_fd_watch;
  rv = sgrpc_net_loop_new(&k->net, &ops, k, &m);
  if (rv != 0) {
    close(k->kq);
    kq_free(k, k);
    return rv;
  }
  *pk = k;
  return 0;
}

static void free_dead(sgrpc_kqueue *k) {
  while (k->dead_tx) {
    kq_tx *tx = k->dead_tx;
    k->dead_tx = tx->next_dead;
    kq_free(k, tx);
  }
  while (k->dead_watches) {
    kq_watch *w = k->dead_watches;
    k->dead_watches = w->next_dead;
    kq_free(k, w);
  }
  while (k->dead_listeners) {
    kq_listener *l = k->dead_listeners;
    k->dead_listeners = l->next_dead;
    kq_free(k, l);
  }
}

void sgrpc_kqueue_del(sgrpc_kqueue *k) {
  if (!k) return;
  sgrpc_net_loop_del(k->net);
  free_dead(k);
  if (k->catching) {
    struct kevent kev[2];
    EV_SET(&kev[0], SIGINT, EVFILT_SIGNAL, EV_DELETE, 0, 0, NULL);
    EV_SET(&kev[1], SIGTERM, EVFILT_SIGNAL, EV_DELETE, 0, 0, NULL);
    kevent(k->kq, kev, 2, NULL, 0, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
  }
  close(k->kq);
  kq_free(k, k);
}

sgrpc_net_loop *sgrpc_kqueue_net(const sgrpc_kqueue *k) { return k ? k->net : NULL; }
int sgrpc_kqueue_get_fd(const sgrpc_kqueue *k) { return k ? k->kq : -1; }
void sgrpc_kqueue_stop(sgrpc_kqueue *k) {
  if (k) k->stop = 1;
}

int sgrpc_kqueue_run_once(sgrpc_kqueue *k, int timeout_ms) {
  struct kevent evs[KQ_MAX_EVENTS];
  struct timespec ts, *tsp = NULL;
  int64_t now;
  int n, i;
  if (!k) return SGRPC_ERR_INVALID_ARGUMENT;
  now = pn_now();
  sgrpc_net_loop_service(k->net, now);
  free_dead(k);
  if (k->stop || !sgrpc_net_loop_has_work(k->net)) return 0;
  if (k->net_when <= now) timeout_ms = 0; /* due already: do not block */
  timer_program(k, k->net_when, now);
  if (timeout_ms >= 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
    tsp = &ts;
  }
  n = kevent(k->kq, NULL, 0, evs, KQ_MAX_EVENTS, tsp);
  if (n < 0) {
    if (errno != EINTR) return pn_err();
    n = 0;
  }
  for (i = 0; i < n; i++) {
    struct kevent *ev = &evs[i];
    kq_handle *h;
    if (ev->flags & EV_ERROR) continue;
    if (ev->filter == EVFILT_TIMER) {
      k->kernel_when = SGRPC_NEVER; /* one-shot: gone */
      continue;
    }
    if (ev->filter == EVFILT_SIGNAL) {
      signal_received(k, (int)ev->ident, ev->data);
      continue;
    }
    h = ev->udata;
    if (!h) continue;
    if (h->kind == KQ_WATCH) {
      kq_watch *w = (kq_watch *)h;
      int events = ev->filter == EVFILT_READ ? SGRPC_NET_FD_READ : SGRPC_NET_FD_WRITE;
      if (ev->flags & EV_EOF) events = SGRPC_NET_FD_READ | SGRPC_NET_FD_WRITE;
      if (w->f) sgrpc_net_fd_ready(w->f, events, pn_now());
    } else if (h->kind == KQ_LISTENER) {
      kq_listener *l = (kq_listener *)h;
      if (!l->dead) listener_accept(l);
    } else {
      kq_tx *tx = (kq_tx *)h;
      if (tx->dead || !tx->c) continue;
      if (ev->filter == EVFILT_READ && !tx->connecting) tx_readable(tx);
      else if (ev->filter == EVFILT_WRITE) tx_writable(tx);
    }
  }
  /* The timer is checked every turn against the clock, so a timer event
   * that arrived with others, or an early wake, is never missed. */
  now = pn_now();
  if (k->net_when <= now) sgrpc_net_loop_timer(k->net, now);
  sgrpc_net_loop_service(k->net, pn_now());
  free_dead(k);
  return !k->stop && sgrpc_net_loop_has_work(k->net) ? 1 : 0;
}

int sgrpc_kqueue_run(sgrpc_kqueue *k) {
  int rv;
  if (!k) return SGRPC_ERR_INVALID_ARGUMENT;
  do {
    rv = sgrpc_kqueue_run_once(k, -1);
  } while (rv > 0);
  k->stop = 0;
  return rv < 0 ? rv : 0;
}
