/*
 * The epoll loop: readiness -> read -> core entry points; the core's
 * output -> send() from the engine's borrowed bytes; one timerfd for the
 * earliest of the core's expiry and the user's timers (CLOCK_MONOTONIC ns
 * is the engine's `now`); SIGINT/SIGTERM through a signalfd. No gRPC or
 * HTTP/2 logic lives here.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define EP_READ_BUF (64 * 1024)
/* Reads per readiness notification: epoll is level-triggered, so a busy
 * connection comes back on the next turn instead of starving others. */
#define EP_READS_PER_WAKE 8
#define EP_MAX_EVENTS 64

int64_t sgrpc_epoll_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Connections (the core's sgrpc_ac_conn)                              */
/* ------------------------------------------------------------------ */

sgrpc_conn *sgrpc_epoll_conn_engine(const sgrpc_epoll_conn *c) {
  return sgrpc_ac_conn_engine((const sgrpc_ac_conn *)c);
}

sgrpc_epoll_server *sgrpc_epoll_conn_server(const sgrpc_epoll_conn *c) {
  return sgrpc_ac_server_user_data(sgrpc_ac_conn_server((const sgrpc_ac_conn *)c));
}

sgrpc_epoll_loop *sgrpc_epoll_conn_loop(const sgrpc_epoll_conn *c) {
  return sgrpc_ac_hub_user(sgrpc_ac_conn_hub((const sgrpc_ac_conn *)c));
}

sgrpc_ac_hub *sgrpc_epoll_loop_hub(const sgrpc_epoll_loop *loop) { return loop ? loop->hub : NULL; }

/* ------------------------------------------------------------------ */
/* Transports                                                          */
/* ------------------------------------------------------------------ */

static void tx_set_events(ep_tx *tx, uint32_t events) {
  struct epoll_event ee;
  if (tx->h.fd < 0 || tx->armed == events) return;
  memset(&ee, 0, sizeof(ee));
  ee.events = events;
  ee.data.ptr = &tx->h;
  if (epoll_ctl(tx->loop->epfd, EPOLL_CTL_MOD, tx->h.fd, &ee) == 0) tx->armed = events;
}

ep_tx *ep_tx_new(sgrpc_epoll_loop *loop, int fd, int connecting) {
  struct epoll_event ee;
  ep_tx *tx = calloc(1, sizeof(*tx));
  if (!tx) return NULL;
  tx->h.kind = EP_CONN;
  tx->h.fd = fd;
  tx->loop = loop;
  tx->connecting = connecting;
  tx->armed = connecting ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  memset(&ee, 0, sizeof(ee));
  ee.events = tx->armed;
  ee.data.ptr = &tx->h;
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) != 0) {
    free(tx);
    return NULL;
  }
  return tx;
}

void ep_tx_free_dead(sgrpc_epoll_loop *loop) {
  while (loop->dead_servers) {
    sgrpc_epoll_server *s = loop->dead_servers;
    loop->dead_servers = s->next;
    free(s->unix_path);
    free(s);
  }
  while (loop->dead) {
    ep_tx *tx = loop->dead;
    loop->dead = tx->next_dead;
    free(tx);
  }
}

/* ops->write: send what the socket takes; EPOLLOUT only while output is
 * stuck behind a full socket (or the io limit cut the write short). */
static ssize_t op_write(void *p, const uint8_t *data, size_t len) {
  ep_tx *tx = p;
  size_t lim = sgrpc_ac_hub_io_limit(tx->loop->hub), n = len;
  ssize_t w;
  if (lim && n > lim) n = lim;
  do {
    w = send(tx->h.fd, data, n, MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1; /* EPIPE, ECONNRESET */
    w = 0;
  }
  tx_set_events(tx, EPOLLIN | ((size_t)w < len ? EPOLLOUT : 0));
  return w;
}

/* ops->close. The memory waits until the end of the turn: an epoll batch
 * may still point at it. */
static void op_close(void *p) {
  ep_tx *tx = p;
  sgrpc_epoll_loop *loop = tx->loop;
  tx->c = NULL;
  if (tx->h.fd >= 0) {
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, tx->h.fd, NULL);
    close(tx->h.fd);
    tx->h.fd = -1;
  }
  tx->next_dead = loop->dead;
  loop->dead = tx;
}

/* ops->connect: a non-blocking connect; EPOLLOUT reports the outcome. */
static int op_connect(void *ud, sgrpc_ac_conn *c, const sgrpc_ac_target *t) {
  sgrpc_epoll_loop *loop = ud;
  struct sockaddr_storage ss;
  socklen_t len;
  ep_tx *tx;
  int fd, rv;
  if (ep_resolve(t, 0, &ss, &len) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return SGRPC_ERR_INVALID_STATE;
  if (ss.ss_family != AF_UNIX) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  do {
    rv = connect(fd, (struct sockaddr *)&ss, len);
  } while (rv != 0 && errno == EINTR);
  if (rv != 0 && errno != EINPROGRESS) {
    close(fd); /* refused at once (Unix sockets): the core fails the calls */
    return SGRPC_ERR_INVALID_STATE;
  }
  tx = ep_tx_new(loop, fd, 1);
  if (!tx) {
    close(fd);
    return SGRPC_ERR_NOMEM;
  }
  tx->c = c;
  sgrpc_ac_conn_set_transport(c, tx);
  return 0;
}

static void tx_readable(ep_tx *tx) {
  sgrpc_epoll_loop *loop = tx->loop;
  size_t cap = loop->rbuf_cap, lim = sgrpc_ac_hub_io_limit(loop->hub);
  int i;
  if (lim && lim < cap) cap = lim;
  for (i = 0; i < EP_READS_PER_WAKE && tx->c; i++) {
    ssize_t n = read(tx->h.fd, loop->rbuf, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      sgrpc_ac_conn_closed(tx->c, sgrpc_epoll_now());
      return;
    }
    if (n == 0) { /* EOF */
      sgrpc_ac_conn_closed(tx->c, sgrpc_epoll_now());
      return;
    }
    sgrpc_ac_conn_read(tx->c, loop->rbuf, (size_t)n, sgrpc_epoll_now());
    if ((size_t)n < cap) return;
  }
}

static void tx_connected(ep_tx *tx) {
  int err = 0;
  socklen_t len = sizeof(err);
  tx->connecting = 0;
  tx_set_events(tx, EPOLLIN);
  if (getsockopt(tx->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    sgrpc_ac_conn_closed(tx->c, sgrpc_epoll_now());
    return;
  }
  sgrpc_ac_conn_connected(tx->c, sgrpc_epoll_now());
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

static int64_t op_now(void *ud) {
  (void)ud;
  return sgrpc_epoll_now();
}

static void op_timer_arm(void *ud, int64_t when) {
  sgrpc_epoll_loop *loop = ud;
  loop->hub_when = when; /* programmed into the timerfd before waiting */
}

int sgrpc_epoll_timer_start(sgrpc_epoll_loop *loop, int64_t delay_ns, sgrpc_epoll_timer_cb cb,
                            void *user_data, sgrpc_epoll_timer **ptimer) {
  sgrpc_epoll_timer *t;
  if (!loop || !cb || delay_ns < 0) return SGRPC_ERR_INVALID_ARGUMENT;
  t = calloc(1, sizeof(*t));
  if (!t) return SGRPC_ERR_NOMEM;
  t->loop = loop;
  t->when = sgrpc_epoll_now() + delay_ns;
  t->seq = ++loop->timer_seq;
  t->cb = cb;
  t->user_data = user_data;
  t->next = loop->timers;
  if (loop->timers) loop->timers->prev = t;
  loop->timers = t;
  if (ptimer) *ptimer = t;
  return 0;
}

static void timer_unlink(sgrpc_epoll_timer *t) {
  sgrpc_epoll_loop *loop = t->loop;
  if (t->prev) t->prev->next = t->next;
  else loop->timers = t->next;
  if (t->next) t->next->prev = t->prev;
}

void sgrpc_epoll_timer_cancel(sgrpc_epoll_timer *t) {
  if (!t) return;
  timer_unlink(t);
  free(t);
}

/* Fires due timers created before this pass; callbacks may start or
 * cancel timers, so the list is rescanned after each one. */
static void timers_fire(sgrpc_epoll_loop *loop, int64_t now) {
  uint64_t limit = loop->timer_seq;
  int guard;
  for (guard = 0; guard < 100000; guard++) {
    sgrpc_epoll_timer *t;
    for (t = loop->timers; t; t = t->next)
      if (t->when <= now && t->seq <= limit) break;
    if (!t) return;
    timer_unlink(t);
    t->cb(loop, t->user_data);
    free(t);
  }
}

static int64_t next_when(const sgrpc_epoll_loop *loop) {
  int64_t when = loop->hub_when;
  const sgrpc_epoll_timer *t;
  for (t = loop->timers; t; t = t->next)
    if (t->when < when) when = t->when;
  return when;
}

/* Programs the timerfd for the earliest core or user timer. */
static void timer_program(sgrpc_epoll_loop *loop, int64_t when) {
  struct itimerspec its;
  if (when == loop->timer_armed) return;
  memset(&its, 0, sizeof(its));
  if (when != SGRPC_NEVER) {
    if (when < 1) when = 1; /* a zero it_value would disarm */
    its.it_value.tv_sec = when / 1000000000;
    its.it_value.tv_nsec = when % 1000000000;
  }
  if (timerfd_settime(loop->timer_h.fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
    loop->timer_armed = when;
}

/* ------------------------------------------------------------------ */
/* Signals                                                             */
/* ------------------------------------------------------------------ */

int sgrpc_epoll_loop_catch_signals(sgrpc_epoll_loop *loop, sgrpc_epoll_signal_cb on_signal,
                                   void *user_data) {
  sigset_t set;
  struct epoll_event ee;
  int fd;
  if (!loop) return SGRPC_ERR_INVALID_ARGUMENT;
  loop->on_signal = on_signal;
  loop->signal_user_data = user_data;
  if (loop->signal_h.fd >= 0) return 0;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return SGRPC_ERR_INVALID_STATE;
  fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return SGRPC_ERR_INVALID_STATE;
  memset(&ee, 0, sizeof(ee));
  ee.events = EPOLLIN;
  ee.data.ptr = &loop->signal_h;
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) != 0) {
    close(fd);
    return SGRPC_ERR_INVALID_STATE;
  }
  loop->signal_h.fd = fd;
  return 0;
}

/* The core's policy: the first signal drains, the second ends everything
 * (and this loop stops). */
static void signal_received(sgrpc_epoll_loop *loop) {
  struct signalfd_siginfo si;
  while (read(loop->signal_h.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    loop->signal_count++;
    if (loop->on_signal)
      loop->on_signal(loop, (int)si.ssi_signo, loop->signal_count, loop->signal_user_data);
    if (sgrpc_ac_hub_signal(loop->hub, (int)si.ssi_signo, sgrpc_epoll_now()) >= 2)
      loop->stop = 1;
  }
}

/* ------------------------------------------------------------------ */
/* Loop                                                                */
/* ------------------------------------------------------------------ */

int sgrpc_epoll_loop_new(sgrpc_epoll_loop **ploop) {
  sgrpc_epoll_loop *loop;
  sgrpc_ac_ops ops;
  struct epoll_event ee;
  int rv;
  if (!ploop) return SGRPC_ERR_INVALID_ARGUMENT;
  *ploop = NULL;
  loop = calloc(1, sizeof(*loop));
  if (!loop) return SGRPC_ERR_NOMEM;
  loop->rbuf_cap = EP_READ_BUF;
  loop->rbuf = malloc(loop->rbuf_cap);
  loop->timer_armed = SGRPC_NEVER;
  loop->hub_when = SGRPC_NEVER;
  loop->signal_h.kind = EP_SIGNALFD;
  loop->signal_h.fd = -1;
  loop->timer_h.kind = EP_TIMERFD;
  loop->timer_h.fd = -1;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  rv = SGRPC_ERR_NOMEM;
  if (!loop->rbuf) goto fail;
  rv = SGRPC_ERR_INVALID_STATE;
  if (loop->epfd < 0) goto fail;
  loop->timer_h.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (loop->timer_h.fd < 0) goto fail;
  memset(&ee, 0, sizeof(ee));
  ee.events = EPOLLIN;
  ee.data.ptr = &loop->timer_h;
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->timer_h.fd, &ee) != 0) goto fail;
  memset(&ops, 0, sizeof(ops));
  ops.now = op_now;
  ops.connect = op_connect;
  ops.write = op_write;
  ops.close = op_close;
  ops.timer_arm = op_timer_arm;
  ops.listener_close = ep_listener_close;
  rv = sgrpc_ac_hub_new(&loop->hub, &ops, loop);
  if (rv != 0) goto fail;
  *ploop = loop;
  return 0;
fail:
  if (loop->timer_h.fd >= 0) close(loop->timer_h.fd);
  if (loop->epfd >= 0) close(loop->epfd);
  free(loop->rbuf);
  free(loop);
  return rv;
}

void sgrpc_epoll_loop_del(sgrpc_epoll_loop *loop) {
  if (!loop) return;
  while (loop->servers) sgrpc_epoll_server_del(loop->servers);
  while (loop->channels) sgrpc_epoll_channel_del(loop->channels);
  sgrpc_ac_hub_del(loop->hub);
  while (loop->timers) sgrpc_epoll_timer_cancel(loop->timers);
  ep_tx_free_dead(loop);
  if (loop->signal_h.fd >= 0) close(loop->signal_h.fd);
  close(loop->timer_h.fd);
  close(loop->epfd);
  free(loop->rbuf);
  free(loop);
}

int sgrpc_epoll_loop_get_fd(const sgrpc_epoll_loop *loop) { return loop ? loop->epfd : -1; }

void sgrpc_epoll_loop_stop(sgrpc_epoll_loop *loop) {
  if (loop) loop->stop = 1;
}

static int loop_has_work(const sgrpc_epoll_loop *loop) {
  return loop->timers || sgrpc_ac_hub_has_work(loop->hub);
}

int sgrpc_epoll_loop_run_once(sgrpc_epoll_loop *loop, int timeout_ms) {
  struct epoll_event evs[EP_MAX_EVENTS];
  int64_t now, when;
  int n, i;
  if (!loop) return SGRPC_ERR_INVALID_ARGUMENT;
  now = sgrpc_epoll_now();
  sgrpc_ac_hub_service(loop->hub, now);
  ep_tx_free_dead(loop);
  if (loop->stop || !loop_has_work(loop)) return 0;
  when = next_when(loop);
  if (when <= now) timeout_ms = 0; /* due already: do not block */
  timer_program(loop, when);
  n = epoll_wait(loop->epfd, evs, EP_MAX_EVENTS, timeout_ms);
  if (n < 0) {
    if (errno != EINTR) return SGRPC_ERR_INVALID_STATE;
    n = 0;
  }
  for (i = 0; i < n; i++) {
    ep_handle *h = evs[i].data.ptr;
    uint32_t e = evs[i].events;
    switch (h->kind) {
    case EP_TIMERFD: {
      uint64_t ticks;
      while (read(loop->timer_h.fd, &ticks, sizeof(ticks)) < 0 && errno == EINTR) {
      }
      loop->timer_armed = SGRPC_NEVER;
      break;
    }
    case EP_SIGNALFD:
      signal_received(loop);
      break;
    case EP_LISTENER: {
      sgrpc_epoll_server *s = (sgrpc_epoll_server *)h;
      if (s->h.fd >= 0) ep_server_accept(s);
      break;
    }
    case EP_CONN: {
      ep_tx *tx = (ep_tx *)h;
      if (!tx->c) break;
      if (tx->connecting) {
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) tx_connected(tx);
        break;
      }
      if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) tx_readable(tx);
      if (tx->c && (e & EPOLLOUT)) {
        tx_set_events(tx, EPOLLIN);
        sgrpc_ac_conn_writable(tx->c, sgrpc_epoll_now());
      }
      break;
    }
    default:
      break;
    }
  }
  /* Timers are checked against the clock every turn, so an early wake or
   * a timerfd event batched with others never loses one. */
  now = sgrpc_epoll_now();
  if (loop->hub_when <= now) sgrpc_ac_hub_timer(loop->hub, now);
  timers_fire(loop, now);
  sgrpc_ac_hub_service(loop->hub, sgrpc_epoll_now());
  ep_tx_free_dead(loop);
  return !loop->stop && loop_has_work(loop) ? 1 : 0;
}

int sgrpc_epoll_loop_ready(sgrpc_epoll_loop *loop) { return sgrpc_epoll_loop_run_once(loop, 0); }

int sgrpc_epoll_loop_run(sgrpc_epoll_loop *loop) {
  int rv;
  if (!loop) return SGRPC_ERR_INVALID_ARGUMENT;
  do {
    rv = sgrpc_epoll_loop_run_once(loop, -1);
  } while (rv > 0);
  loop->stop = 0;
  return rv < 0 ? rv : 0;
}
