/*
 * The epoll adapter: readiness -> read -> net entry points; the net
 * layer's output -> send() from the engine's borrowed bytes; one timerfd
 * for the net loop's single timer (CLOCK_MONOTONIC ns is the engine's
 * `now`); SIGINT/SIGTERM through a signalfd. Sockets come from the shared
 * POSIX code (posix_net.c). No gRPC or HTTP/2 logic lives here.
 */
#define _GNU_SOURCE
#include <sgrpc/epoll.h>
#include <sgrpc/net_adapter.h>

#include "posix_net.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define EP_READ_BUF (64 * 1024)
/* Reads per readiness notification: epoll is level-triggered, so a busy
 * connection comes back on the next turn instead of starving others. */
#define EP_READS_PER_WAKE 8
#define EP_ACCEPTS_PER_WAKE 64
#define EP_MAX_EVENTS 64

/* What an epoll registration points at: every registered object starts
 * with an ep_handle so the loop can tell them apart. */
enum { EP_TIMERFD = 1, EP_SIGNALFD, EP_LISTENER, EP_CONN, EP_WATCH };

typedef struct ep_handle {
  int kind;
  int fd;
} ep_handle;

/* One socket transport of the net layer (its `tx`). */
typedef struct ep_tx {
  ep_handle h; /* first: epoll data points here */
  sgrpc_epoll *e;
  sgrpc_net_conn *c; /* NULL once the net layer closed it */
  uint32_t armed;    /* epoll events currently registered */
  int connecting;
  struct ep_tx *next_dead;
} ep_tx;

typedef struct ep_listener {
  ep_handle h; /* h.fd mirrors l.fd; -1 once closed */
  sgrpc_epoll *e;
  sgrpc_net_server *s;
  pn_listener l;
  struct ep_listener *next_dead;
} ep_listener;

/* A descriptor the net layer asked to watch (ops->fd_watch: the DNS
 * resolver's sockets). */
typedef struct ep_watch {
  ep_handle h;
  sgrpc_net_fd *f; /* NULL once stopped */
  struct ep_watch *next_dead;
} ep_watch;

struct sgrpc_epoll {
  int epfd;
  sgrpc_net_loop *net;
  sgrpc_mem mem;
  int64_t net_when;    /* what the net loop asked for */
  int64_t timer_armed; /* what the timerfd is programmed for, SGRPC_NEVER if none */
  ep_handle timer_h;   /* timerfd */
  ep_handle signal_h;  /* signalfd, fd -1 when not catching */
  sgrpc_net_signal_cb on_signal;
  void *signal_ud;
  int signals;
  int stop;
  ep_tx *dead; /* closed transports and listeners, freed at the end of the turn */
  ep_listener *dead_listeners;
  ep_watch *dead_watches;
  uint8_t rbuf[EP_READ_BUF];
};

int64_t sgrpc_epoll_now(void) { return pn_now(); }

static void *ep_alloc(sgrpc_epoll *e, size_t n) { return e->mem.calloc(1, n, e->mem.user_data); }
static void ep_free(sgrpc_epoll *e, void *p) { e->mem.free(p, e->mem.user_data); }

static int ep_add(sgrpc_epoll *e, int fd, uint32_t events, ep_handle *h) {
  struct epoll_event ee;
  memset(&ee, 0, sizeof(ee));
  ee.events = events;
  ee.data.ptr = h;
  return epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ee);
}

/* ------------------------------------------------------------------ */
/* Transports                                                          */
/* ------------------------------------------------------------------ */

static void tx_set_events(ep_tx *tx, uint32_t events) {
  struct epoll_event ee;
  if (tx->h.fd < 0 || tx->armed == events) return;
  memset(&ee, 0, sizeof(ee));
  ee.events = events;
  ee.data.ptr = &tx->h;
  if (epoll_ctl(tx->e->epfd, EPOLL_CTL_MOD, tx->h.fd, &ee) == 0) tx->armed = events;
}

static ep_tx *tx_new(sgrpc_epoll *e, int fd, int connecting) {
  ep_tx *tx = ep_alloc(e, sizeof(*tx));
  if (!tx) return NULL;
  tx->h.kind = EP_CONN;
  tx->h.fd = fd;
  tx->e = e;
  tx->connecting = connecting;
  tx->armed = connecting ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  if (ep_add(e, fd, tx->armed, &tx->h) != 0) {
    ep_free(e, tx);
    return NULL;
  }
  return tx;
}

static void free_dead(sgrpc_epoll *e) {
  while (e->dead) {
    ep_tx *tx = e->dead;
    e->dead = tx->next_dead;
    ep_free(e, tx);
  }
  while (e->dead_watches) {
    ep_watch *w = e->dead_watches;
    e->dead_watches = w->next_dead;
    ep_free(e, w);
  }
  while (e->dead_listeners) {
    ep_listener *l = e->dead_listeners;
    e->dead_listeners = l->next_dead;
    ep_free(e, l);
  }
}

/* ops->write: send what the socket takes; EPOLLOUT only while output is
 * stuck behind a full socket (or the io limit cut the write short). */
static sgrpc_ssize op_write(void *p, const uint8_t *data, size_t len) {
  ep_tx *tx = p;
  size_t lim = sgrpc_net_loop_io_limit(tx->e->net), n = len;
  ssize_t w;
  if (lim && n > lim) n = lim;
  w = pn_send(tx->h.fd, data, n);
  if (w < 0) return -1;
  tx_set_events(tx, EPOLLIN | ((size_t)w < len ? EPOLLOUT : 0));
  return w;
}

/* ops->writev: op_write for several pieces (sendmsg). */
static sgrpc_ssize op_writev(void *p, const sgrpc_iov *iov, size_t n) {
  ep_tx *tx = p;
  size_t lim = sgrpc_net_loop_io_limit(tx->e->net), total = 0, i;
  ssize_t w;
  for (i = 0; i < n && i < PN_IOV_MAX; i++) total += iov[i].len;
  w = pn_sendv(tx->h.fd, iov, n, lim);
  if (w < 0) return -1;
  tx_set_events(tx, EPOLLIN | ((size_t)w < total ? EPOLLOUT : 0));
  return w;
}

/* ops->close. The memory waits until the end of the turn: an epoll batch
 * may still point at it. */
static void op_close(void *p) {
  ep_tx *tx = p;
  sgrpc_epoll *e = tx->e;
  tx->c = NULL;
  if (tx->h.fd >= 0) {
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, tx->h.fd, NULL);
    close(tx->h.fd);
    tx->h.fd = -1;
  }
  tx->next_dead = e->dead;
  e->dead = tx;
}

/* ops->shutdown_write: output queued in the kernel goes first, then FIN;
 * reading goes on until the peer's EOF. */
static int op_shutdown_write(void *p) {
  ep_tx *tx = p;
  tx_set_events(tx, EPOLLIN);
  return pn_shutdown_write(tx->h.fd);
}

/* ops->connect: a non-blocking connect; EPOLLOUT reports the outcome. */
static int op_connect(void *ud, sgrpc_net_conn *c, const sgrpc_net_address *a) {
  sgrpc_epoll *e = ud;
  ep_tx *tx;
  int fd, rv = pn_connect(a, &fd);
  if (rv != 0) return rv;
  tx = tx_new(e, fd, 1);
  if (!tx) {
    close(fd);
    return SGRPC_ERR_NOMEM;
  }
  tx->c = c;
  sgrpc_net_conn_set_transport(c, tx);
  return 0;
}

static uint32_t watch_events(int events) {
  return ((events & SGRPC_NET_FD_READ) ? EPOLLIN : 0u) |
         ((events & SGRPC_NET_FD_WRITE) ? EPOLLOUT : 0u);
}

/* ops->fd_watch: the descriptor joins the loop's own epoll set. */
static int op_fd_watch(void *ud, sgrpc_net_fd *f, int fd, int events) {
  sgrpc_epoll *e = ud;
  ep_watch *w = sgrpc_net_fd_handle(f);
  struct epoll_event ee;
  if (!events) {
    if (!w) return 0;
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->f = NULL;
    sgrpc_net_fd_set_handle(f, NULL);
    /* an epoll batch of this turn may still point at w */
    w->next_dead = e->dead_watches;
    e->dead_watches = w;
    return 0;
  }
  if (!w) {
    w = ep_alloc(e, sizeof(*w));
    if (!w) return SGRPC_ERR_NOMEM;
    w->h.kind = EP_WATCH;
    w->h.fd = fd;
    w->f = f;
    if (ep_add(e, fd, watch_events(events), &w->h) != 0) {
      int rv = pn_err();
      ep_free(e, w);
      return rv;
    }
    sgrpc_net_fd_set_handle(f, w);
    return 0;
  }
  memset(&ee, 0, sizeof(ee));
  ee.events = watch_events(events);
  ee.data.ptr = &w->h;
  return epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ee) == 0 ? 0 : pn_err();
}

static void tx_readable(ep_tx *tx) {
  sgrpc_epoll *e = tx->e;
  size_t cap = sizeof(e->rbuf), lim = sgrpc_net_loop_io_limit(e->net);
  int i;
  if (lim && lim < cap) cap = lim;
  for (i = 0; i < EP_READS_PER_WAKE && tx->c; i++) {
    ssize_t n = pn_read(tx->h.fd, e->rbuf, cap);
    if (n == -1) return;
    if (n <= 0) { /* EOF or error */
      sgrpc_net_conn_closed(tx->c, pn_now());
      return;
    }
    sgrpc_net_conn_read(tx->c, e->rbuf, (size_t)n, pn_now());
    if ((size_t)n < cap) return;
  }
}

static void tx_connected(ep_tx *tx) {
  tx->connecting = 0;
  tx_set_events(tx, EPOLLIN);
  if (pn_connect_result(tx->h.fd) != 0) sgrpc_net_conn_closed(tx->c, pn_now());
  else sgrpc_net_conn_connected(tx->c, pn_now());
}

/* ------------------------------------------------------------------ */
/* Listeners                                                           */
/* ------------------------------------------------------------------ */

/* ops->listener_close: graceful shutdown or server_del. */
static void op_listener_close(void *ud, sgrpc_net_server *s, void *p) {
  sgrpc_epoll *e = ud;
  ep_listener *l = p;
  (void)s;
  if (l->h.fd < 0) return;
  epoll_ctl(e->epfd, EPOLL_CTL_DEL, l->h.fd, NULL);
  pn_listener_close(&l->l);
  l->h.fd = -1;
  l->s = NULL;
  /* An epoll batch of this turn may still point at l. */
  l->next_dead = e->dead_listeners;
  e->dead_listeners = l;
}

/* ops->listener_pause: a resting listener is not watched (level-triggered
 * epoll would report its backlog on every turn). */
static void op_listener_pause(void *ud, sgrpc_net_server *s, void *p, int pause) {
  sgrpc_epoll *e = ud;
  ep_listener *l = p;
  struct epoll_event ee;
  (void)s;
  if (l->h.fd < 0) return;
  memset(&ee, 0, sizeof(ee));
  ee.events = pause ? 0 : EPOLLIN;
  ee.data.ptr = &l->h;
  epoll_ctl(e->epfd, EPOLL_CTL_MOD, l->h.fd, &ee);
}

static void listener_accept(ep_listener *l) {
  int i;
  for (i = 0; i < EP_ACCEPTS_PER_WAKE && l->s; i++) {
    sgrpc_net_conn *c = NULL;
    char peer[128];
    ep_tx *tx;
    int fd = pn_accept(&l->l, peer, sizeof(peer));
    if (fd == -2) continue;
    if (fd == -3) {
      /* Out of descriptors: the net layer rests the listener a while
       * (ops->listener_pause) instead of letting it spin. */
      sgrpc_net_server_accept_failed(l->s, SGRPC_ERR_SYSTEM(errno), pn_now());
      return;
    }
    if (fd < 0) return; /* EAGAIN, or EMFILE and friends: try on the next turn */
    tx = tx_new(l->e, fd, 0);
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

int sgrpc_epoll_listen(sgrpc_epoll *e, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  ep_listener *l;
  int rv;
  if (ps) *ps = NULL;
  if (!e || !o || !ps || (!o->use_fd && !o->listen) || !o->server.on_event)
    return SGRPC_ERR_INVALID_ARGUMENT;
  l = ep_alloc(e, sizeof(*l));
  if (!l) return SGRPC_ERR_NOMEM;
  l->h.kind = EP_LISTENER;
  l->e = e;
  rv = pn_listen(o, &l->l);
  if (rv == 0 && ep_add(e, l->l.fd, EPOLLIN, &l->h) != 0) rv = pn_err();
  if (rv == 0) rv = sgrpc_net_server_new(&l->s, e->net, &o->server);
  if (rv != 0) {
    if (l->l.fd >= 0) {
      epoll_ctl(e->epfd, EPOLL_CTL_DEL, l->l.fd, NULL);
      if (!o->use_fd) pn_listener_close(&l->l);
    }
    ep_free(e, l);
    return rv;
  }
  l->h.fd = l->l.fd;
  sgrpc_net_server_set_listener(l->s, l, l->l.port);
  *ps = l->s;
  return 0;
}

int sgrpc_epoll_channel_new(sgrpc_epoll *e, const sgrpc_net_channel_opts *o,
                            sgrpc_net_channel **pch) {
  if (pch) *pch = NULL;
  if (!e) return SGRPC_ERR_INVALID_ARGUMENT;
  return sgrpc_net_channel_new(pch, e->net, o);
}

/* ------------------------------------------------------------------ */
/* Timer and signals                                                   */
/* ------------------------------------------------------------------ */

static void op_timer_arm(void *ud, int64_t when) {
  sgrpc_epoll *e = ud;
  e->net_when = when; /* programmed into the timerfd before waiting */
}

static void timer_program(sgrpc_epoll *e, int64_t when) {
  struct itimerspec its;
  if (when == e->timer_armed) return;
  memset(&its, 0, sizeof(its));
  if (when != SGRPC_NEVER) {
    if (when < 1) when = 1; /* a zero it_value would disarm */
    its.it_value.tv_sec = when / 1000000000;
    its.it_value.tv_nsec = when % 1000000000;
  }
  if (timerfd_settime(e->timer_h.fd, TFD_TIMER_ABSTIME, &its, NULL) == 0) e->timer_armed = when;
}

int sgrpc_epoll_catch_signals(sgrpc_epoll *e, sgrpc_net_signal_cb cb, void *ud) {
  sigset_t set;
  int fd;
  if (!e) return SGRPC_ERR_INVALID_ARGUMENT;
  e->on_signal = cb;
  e->signal_ud = ud;
  if (e->signal_h.fd >= 0) return 0;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return pn_err();
  fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return pn_err();
  if (ep_add(e, fd, EPOLLIN, &e->signal_h) != 0) {
    int rv = pn_err();
    close(fd);
    return rv;
  }
  e->signal_h.fd = fd;
  return 0;
}

/* The net layer's policy: the first signal drains, the second ends
 * everything (and this loop stops). The user hears of each one first. */
static void signal_received(sgrpc_epoll *e) {
  struct signalfd_siginfo si;
  while (read(e->signal_h.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    e->signals++;
    if (e->on_signal) e->on_signal(e->net, (int)si.ssi_signo, e->signals, e->signal_ud);
    if (sgrpc_net_loop_signal(e->net, (int)si.ssi_signo, pn_now()) >= 2) e->stop = 1;
  }
}

/* ------------------------------------------------------------------ */
/* Loop                                                                */
/* ------------------------------------------------------------------ */

int sgrpc_epoll_new(sgrpc_epoll **pe, const sgrpc_mem *mem) {
  sgrpc_net_ops ops;
  sgrpc_mem m;
  sgrpc_epoll *e;
  int rv;
  if (pe) *pe = NULL;
  if (!pe || sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  e = m.calloc(1, sizeof(*e), m.user_data);
  if (!e) return SGRPC_ERR_NOMEM;
  e->mem = m;
  e->timer_armed = SGRPC_NEVER;
  e->net_when = SGRPC_NEVER;
  e->signal_h.kind = EP_SIGNALFD;
  e->signal_h.fd = -1;
  e->timer_h.kind = EP_TIMERFD;
  e->timer_h.fd = -1;
  rv = SGRPC_ERR_SYSTEM(EIO);
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0) goto sysfail;
  e->timer_h.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (e->timer_h.fd < 0) goto sysfail;
  if (ep_add(e, e->timer_h.fd, EPOLLIN, &e->timer_h) != 0) goto sysfail;
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
  rv = sgrpc_net_loop_new(&e->net, &ops, e, &m);
  if (rv != 0) goto fail;
  *pe = e;
  return 0;
sysfail:
  rv = pn_err();
fail:
  if (e->timer_h.fd >= 0) close(e->timer_h.fd);
  if (e->epfd >= 0) close(e->epfd);
  ep_free(e, e);
  return rv;
}

void sgrpc_epoll_del(sgrpc_epoll *e) {
  if (!e) return;
  sgrpc_net_loop_del(e->net);
  free_dead(e);
  if (e->signal_h.fd >= 0) close(e->signal_h.fd);
  close(e->timer_h.fd);
  close(e->epfd);
  ep_free(e, e);
}

sgrpc_net_loop *sgrpc_epoll_net(const sgrpc_epoll *e) { return e ? e->net : NULL; }
int sgrpc_epoll_get_fd(const sgrpc_epoll *e) { return e ? e->epfd : -1; }

void sgrpc_epoll_stop(sgrpc_epoll *e) {
  if (e) e->stop = 1;
}

int sgrpc_epoll_run_once(sgrpc_epoll *e, int timeout_ms) {
  struct epoll_event evs[EP_MAX_EVENTS];
  int64_t now;
  int n, i;
  if (!e) return SGRPC_ERR_INVALID_ARGUMENT;
  now = pn_now();
  sgrpc_net_loop_service(e->net, now);
  free_dead(e);
  if (e->stop || !sgrpc_net_loop_has_work(e->net)) return 0;
  if (e->net_when <= now) timeout_ms = 0; /* due already: do not block */
  timer_program(e, e->net_when);
  n = epoll_wait(e->epfd, evs, EP_MAX_EVENTS, timeout_ms);
  if (n < 0) {
    if (errno != EINTR) return pn_err();
    n = 0;
  }
  for (i = 0; i < n; i++) {
    ep_handle *h = evs[i].data.ptr;
    uint32_t ev = evs[i].events;
    switch (h->kind) {
    case EP_TIMERFD: {
      uint64_t ticks;
      while (read(e->timer_h.fd, &ticks, sizeof(ticks)) < 0 && errno == EINTR) {
      }
      e->timer_armed = SGRPC_NEVER;
      break;
    }
    case EP_SIGNALFD:
      signal_received(e);
      break;
    case EP_LISTENER: {
      ep_listener *l = (ep_listener *)h;
      if (l->h.fd >= 0) listener_accept(l);
      break;
    }
    case EP_CONN: {
      ep_tx *tx = (ep_tx *)h;
      if (!tx->c) break;
      if (tx->connecting) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) tx_connected(tx);
        break;
      }
      if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) tx_readable(tx);
      if (tx->c && (ev & EPOLLOUT)) {
        tx_set_events(tx, EPOLLIN);
        sgrpc_net_conn_writable(tx->c, pn_now());
      }
      break;
    }
    case EP_WATCH: {
      ep_watch *w = (ep_watch *)h;
      int events = ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? SGRPC_NET_FD_READ : 0) |
                   ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ? SGRPC_NET_FD_WRITE : 0);
      if (w->f) sgrpc_net_fd_ready(w->f, events, pn_now());
      break;
    }
    default:
      break;
    }
  }
  /* The timer is checked against the clock every turn, so an early wake
   * or a timerfd event batched with others never loses it. */
  now = pn_now();
  if (e->net_when <= now) sgrpc_net_loop_timer(e->net, now);
  sgrpc_net_loop_service(e->net, pn_now());
  free_dead(e);
  return !e->stop && sgrpc_net_loop_has_work(e->net) ? 1 : 0;
}

int sgrpc_epoll_run(sgrpc_epoll *e) {
  int rv;
  if (!e) return SGRPC_ERR_INVALID_ARGUMENT;
  do {
    rv = sgrpc_epoll_run_once(e, -1);
  } while (rv > 0);
  e->stop = 0;
  return rv < 0 ? rv : 0;
}
