/*
 * The kqueue adapter: plain BSD kqueue code feeding the adapter core.
 * readiness -> read/send -> core entry points; one EVFILT_TIMER carries
 * the earliest of the hub's expiry and the user's timers. No gRPC or
 * HTTP/2 logic lives here.
 */
#include <sgrpc/kqueue.h>

#include <sys/types.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* BSD: SO_NOSIGPIPE is set on each socket instead */
#endif

#define KQ_READ_BUF (64 * 1024)
#define KQ_READS_PER_WAKE 8
#define KQ_ACCEPTS_PER_WAKE 64
#define KQ_MAX_EVENTS 64
#define KQ_TIMER_IDENT 1

enum { KQ_CONN = 1, KQ_LISTENER };

/* Every registration's udata points at one of these. */
typedef struct kq_handle {
  int kind;
  int fd;
} kq_handle;

typedef struct kq_tx {
  kq_handle h;
  sgrpc_kq_loop *loop;
  sgrpc_ac_conn *c;
  int connecting;
  int want_write; /* EVFILT_WRITE registered */
  int dead;       /* closed: freed at the end of the turn */
  struct kq_tx *next_dead;
} kq_tx;

typedef struct kq_listener {
  kq_handle h;
  sgrpc_kq_loop *loop;
  sgrpc_ac_server *s;
  char path[108];
  int is_unix;
  int dead;
  struct kq_listener *next_dead;
} kq_listener;

struct sgrpc_kq_timer {
  sgrpc_kq_loop *loop;
  int64_t when;
  uint64_t seq;
  sgrpc_kq_timer_cb cb;
  void *user_data;
  sgrpc_kq_timer *prev, *next;
};

struct sgrpc_kq_loop {
  int kq;
  sgrpc_ac_hub *hub;
  int64_t hub_when;    /* what the core asked for */
  int64_t kernel_when; /* what EVFILT_TIMER is armed for, SGRPC_NEVER: none */
  sgrpc_kq_timer *timers;
  uint64_t timer_seq;
  kq_tx *dead_tx;
  kq_listener *dead_listeners;
  int stop;
  int catching;
  sgrpc_kq_signal_cb on_signal;
  void *signal_ud;
  uint8_t rbuf[KQ_READ_BUF];
};

int64_t sgrpc_kq_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t op_now(void *ud) {
  (void)ud;
  return sgrpc_kq_now();
}

static void kq_change(sgrpc_kq_loop *loop, int fd, int filter, int flags, void *udata) {
  struct kevent kev;
  EV_SET(&kev, (uintptr_t)fd, filter, flags, 0, 0, udata);
  kevent(loop->kq, &kev, 1, NULL, 0, NULL);
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -1;
  fcntl(fd, F_SETFD, FD_CLOEXEC);
#ifdef SO_NOSIGPIPE
  {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
  }
#endif
  return 0;
}

/* Resolves a parsed target into a socket address (blocking for names). */
static int resolve(const sgrpc_ac_target *t, int passive, struct sockaddr_storage *ss,
                   socklen_t *len) {
  struct addrinfo hints, *res = NULL;
  memset(ss, 0, sizeof(*ss));
  if (t->kind == SGRPC_AC_TARGET_UNIX) {
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, t->path, strlen(t->path) + 1);
    *len = (socklen_t)sizeof(*un);
    return 0;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  if (getaddrinfo(t->host[0] ? t->host : NULL, t->port, &hints, &res) != 0 || !res) return -1;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Transports                                                          */
/* ------------------------------------------------------------------ */

static void tx_want_write(kq_tx *tx, int on) {
  if (tx->want_write == on || tx->dead) return;
  kq_change(tx->loop, tx->h.fd, EVFILT_WRITE, on ? EV_ADD | EV_ENABLE : EV_DELETE, &tx->h);
  tx->want_write = on;
}

/* ops->write: send what the socket takes; a short count (EAGAIN or the
 * io limit) arms EVFILT_WRITE, whose event calls sgrpc_ac_conn_writable. */
static ssize_t op_write(void *p, const uint8_t *data, size_t len) {
  kq_tx *tx = p;
  size_t lim = sgrpc_ac_hub_io_limit(tx->loop->hub), n = len;
  ssize_t w;
  if (lim && n > lim) n = lim;
  do {
    w = send(tx->h.fd, data, n, MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    w = 0;
  }
  if ((size_t)w < len) tx_want_write(tx, 1);
  return w;
}

static void op_close(void *p) {
  kq_tx *tx = p;
  sgrpc_kq_loop *loop = tx->loop;
  if (tx->dead) return;
  tx->dead = 1;
  tx->c = NULL;
  /* Delete explicitly: the descriptor number may be reused at once. */
  kq_change(loop, tx->h.fd, EVFILT_READ, EV_DELETE, NULL);
  if (tx->want_write) kq_change(loop, tx->h.fd, EVFILT_WRITE, EV_DELETE, NULL);
  close(tx->h.fd);
  tx->h.fd = -1;
  /* A batch of events from this turn may still point at tx. */
  tx->next_dead = loop->dead_tx;
  loop->dead_tx = tx;
}

static kq_tx *tx_new(sgrpc_kq_loop *loop, int fd, int connecting) {
  kq_tx *tx = calloc(1, sizeof(*tx));
  if (!tx) return NULL;
  tx->h.kind = KQ_CONN;
  tx->h.fd = fd;
  tx->loop = loop;
  tx->connecting = connecting;
  kq_change(loop, fd, EVFILT_READ, EV_ADD | EV_ENABLE, &tx->h);
  if (connecting) tx_want_write(tx, 1);
  return tx;
}

static void tx_readable(kq_tx *tx) {
  sgrpc_kq_loop *loop = tx->loop;
  size_t cap = sizeof(loop->rbuf), lim = sgrpc_ac_hub_io_limit(loop->hub);
  int i;
  if (lim && lim < cap) cap = lim;
  for (i = 0; i < KQ_READS_PER_WAKE && tx->c; i++) {
    ssize_t n = read(tx->h.fd, loop->rbuf, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      sgrpc_ac_conn_closed(tx->c, sgrpc_kq_now());
      return;
    }
    if (n == 0) {
      sgrpc_ac_conn_closed(tx->c, sgrpc_kq_now());
      return;
    }
    sgrpc_ac_conn_read(tx->c, loop->rbuf, (size_t)n, sgrpc_kq_now());
    if ((size_t)n < cap) return;
  }
}

static void tx_writable(kq_tx *tx) {
  if (tx->connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    tx->connecting = 0;
    tx_want_write(tx, 0);
    if (getsockopt(tx->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      sgrpc_ac_conn_closed(tx->c, sgrpc_kq_now());
      return;
    }
    sgrpc_ac_conn_connected(tx->c, sgrpc_kq_now());
    return;
  }
  tx_want_write(tx, 0);
  sgrpc_ac_conn_writable(tx->c, sgrpc_kq_now());
}

static int op_connect(void *ud, sgrpc_ac_conn *c, const sgrpc_ac_target *t) {
  sgrpc_kq_loop *loop = ud;
  struct sockaddr_storage ss;
  socklen_t len;
  kq_tx *tx;
  int fd, rv;
  if (resolve(t, 0, &ss, &len) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return SGRPC_ERR_INVALID_STATE;
  if (set_nonblock(fd) != 0) {
    close(fd);
    return SGRPC_ERR_INVALID_STATE;
  }
  if (ss.ss_family != AF_UNIX) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  do {
    rv = connect(fd, (struct sockaddr *)&ss, len);
  } while (rv != 0 && errno == EINTR);
  if (rv != 0 && errno != EINPROGRESS) {
    close(fd);
    return SGRPC_ERR_INVALID_STATE; /* refused at once (Unix sockets) */
  }
  tx = tx_new(loop, fd, 1);
  if (!tx) {
    close(fd);
    return SGRPC_ERR_NOMEM;
  }
  tx->c = c;
  sgrpc_ac_conn_set_transport(c, tx);
  /* Connected or not, EVFILT_WRITE reports the outcome. */
  return 0;
}

/* ------------------------------------------------------------------ */
/* Listeners                                                           */
/* ------------------------------------------------------------------ */

static void format_peer(const struct sockaddr_storage *ss, const char *unix_path, char *out,
                        size_t cap) {
  char host[64];
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    snprintf(out, cap, "ipv6:[%s]:%d", host, ntohs(a->sin6_port));
  } else if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    snprintf(out, cap, "ipv4:%s:%d", host, ntohs(a->sin_port));
  } else {
    snprintf(out, cap, "unix:%s", unix_path);
  }
}

static void listener_accept(kq_listener *l) {
  int i;
  for (i = 0; i < KQ_ACCEPTS_PER_WAKE && !l->dead; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    sgrpc_ac_conn *c = NULL;
    char peer[160];
    kq_tx *tx;
    int fd = accept(l->h.fd, (struct sockaddr *)&ss, &len);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; /* EAGAIN, or EMFILE and friends: next turn */
    }
    if (set_nonblock(fd) != 0) {
      close(fd);
      continue;
    }
    if (!l->is_unix) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    format_peer(&ss, l->path, peer, sizeof(peer));
    tx = tx_new(l->loop, fd, 0);
    if (!tx) {
      close(fd);
      continue;
    }
    if (sgrpc_ac_server_accept(l->s, tx, peer, sgrpc_kq_now(), &c) != 0) {
      op_close(tx);
      continue;
    }
    tx->c = c;
  }
}

static void op_listener_close(void *ud, sgrpc_ac_server *s, void *p) {
  kq_listener *l = p;
  sgrpc_kq_loop *loop = ud;
  (void)s;
  if (l->dead) return;
  l->dead = 1;
  kq_change(loop, l->h.fd, EVFILT_READ, EV_DELETE, NULL);
  close(l->h.fd);
  if (l->is_unix && l->path[0]) unlink(l->path);
  l->next_dead = loop->dead_listeners;
  loop->dead_listeners = l;
}

int sgrpc_kq_listen(sgrpc_kq_loop *loop, const sgrpc_ac_listen_opts *o, sgrpc_ac_server **ps) {
  kq_listener *l;
  sgrpc_ac_server *s = NULL;
  int rv, one = 1, saved, port = 0, fd = -1;
  if (!loop || !o || !ps || (!o->use_fd && !o->listen)) return SGRPC_ERR_INVALID_ARGUMENT;
  *ps = NULL;
  l = calloc(1, sizeof(*l));
  if (!l) return SGRPC_ERR_NOMEM;
  l->h.kind = KQ_LISTENER;
  l->loop = loop;
  if (o->use_fd) {
    fd = o->fd;
    l->is_unix = o->fd_is_unix;
  } else {
    sgrpc_ac_target t;
    struct sockaddr_storage ss;
    socklen_t len;
    if (sgrpc_ac_target_parse(o->listen, 1, &t) != 0 || resolve(&t, 1, &ss, &len) != 0) {
      free(l);
      return SGRPC_ERR_INVALID_ARGUMENT;
    }
    rv = SGRPC_ERR_INVALID_STATE;
    fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) goto fail;
    if (ss.ss_family == AF_UNIX) {
      struct stat st;
      l->is_unix = 1;
      memcpy(l->path, t.path, sizeof(l->path));
      /* Replace a stale socket file, never any other kind of file. */
      if (lstat(t.path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(t.path);
    } else {
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (o->reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) goto fail;
  }
  rv = SGRPC_ERR_INVALID_STATE;
  if (set_nonblock(fd) != 0) goto fail;
  if (listen(fd, o->backlog > 0 ? o->backlog : 128) != 0) goto fail;
  if (!l->is_unix) {
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
      port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  }
  rv = sgrpc_ac_server_new(&s, loop->hub, &o->server);
  if (rv != 0) goto fail;
  l->h.fd = fd;
  l->s = s;
  kq_change(loop, fd, EVFILT_READ, EV_ADD | EV_ENABLE, &l->h);
  sgrpc_ac_server_set_listener(s, l, port);
  *ps = s;
  return 0;
fail:
  saved = errno;
  if (fd >= 0 && !o->use_fd) close(fd);
  free(l);
  errno = saved;
  return rv;
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

static void op_timer_arm(void *ud, int64_t when) {
  sgrpc_kq_loop *loop = ud;
  loop->hub_when = when; /* programmed into EVFILT_TIMER before waiting */
}

int sgrpc_kq_timer_start(sgrpc_kq_loop *loop, int64_t delay_ns, sgrpc_kq_timer_cb cb, void *ud,
                         sgrpc_kq_timer **ptimer) {
  sgrpc_kq_timer *t;
  if (!loop || !cb || delay_ns < 0) return SGRPC_ERR_INVALID_ARGUMENT;
  t = calloc(1, sizeof(*t));
  if (!t) return SGRPC_ERR_NOMEM;
  t->loop = loop;
  t->when = sgrpc_kq_now() + delay_ns;
  t->seq = ++loop->timer_seq;
  t->cb = cb;
  t->user_data = ud;
  t->next = loop->timers;
  if (loop->timers) loop->timers->prev = t;
  loop->timers = t;
  if (ptimer) *ptimer = t;
  return 0;
}

static void timer_unlink(sgrpc_kq_timer *t) {
  if (t->prev) t->prev->next = t->next;
  else t->loop->timers = t->next;
  if (t->next) t->next->prev = t->prev;
}

void sgrpc_kq_timer_cancel(sgrpc_kq_timer *t) {
  if (!t) return;
  timer_unlink(t);
  free(t);
}

/* Fires due user timers created before this pass (a callback may start
 * a zero-delay timer; it waits for the next pass). */
static void timers_fire(sgrpc_kq_loop *loop, int64_t now) {
  uint64_t limit = loop->timer_seq;
  int guard;
  for (guard = 0; guard < 100000; guard++) {
    sgrpc_kq_timer *t;
    for (t = loop->timers; t; t = t->next)
      if (t->when <= now && t->seq <= limit) break;
    if (!t) return;
    timer_unlink(t);
    t->cb(loop, t->user_data);
    free(t);
  }
}

static int64_t loop_next_when(const sgrpc_kq_loop *loop) {
  int64_t when = loop->hub_when;
  const sgrpc_kq_timer *t;
  for (t = loop->timers; t; t = t->next)
    if (t->when < when) when = t->when;
  return when;
}

/* Programs the single EVFILT_TIMER (milliseconds, rounded up). */
static void timer_program(sgrpc_kq_loop *loop, int64_t when, int64_t now) {
  struct kevent kev;
  if (when == loop->kernel_when) return;
  if (when == SGRPC_NEVER) {
    EV_SET(&kev, KQ_TIMER_IDENT, EVFILT_TIMER, EV_DELETE, 0, 0, NULL);
  } else {
    int64_t ms = when <= now ? 0 : (when - now + 999999) / 1000000;
    EV_SET(&kev, KQ_TIMER_IDENT, EVFILT_TIMER, EV_ADD | EV_ENABLE | EV_ONESHOT, 0, (intptr_t)ms,
           NULL);
  }
  kevent(loop->kq, &kev, 1, NULL, 0, NULL);
  loop->kernel_when = when;
}

/* ------------------------------------------------------------------ */
/* Signals                                                             */
/* ------------------------------------------------------------------ */

int sgrpc_kq_catch_signals(sgrpc_kq_loop *loop, sgrpc_kq_signal_cb on_signal, void *ud) {
  static const int signos[2] = {SIGINT, SIGTERM};
  int i;
  if (!loop) return SGRPC_ERR_INVALID_ARGUMENT;
  loop->on_signal = on_signal;
  loop->signal_ud = ud;
  if (loop->catching) return 0;
  for (i = 0; i < 2; i++) {
    struct kevent kev;
    signal(signos[i], SIG_IGN);
    EV_SET(&kev, (uintptr_t)signos[i], EVFILT_SIGNAL, EV_ADD | EV_ENABLE, 0, 0, NULL);
    if (kevent(loop->kq, &kev, 1, NULL, 0, NULL) != 0) return SGRPC_ERR_INVALID_STATE;
  }
  loop->catching = 1;
  return 0;
}

static void signal_received(sgrpc_kq_loop *loop, int signo, intptr_t times) {
  intptr_t i;
  for (i = 0; i < (times > 0 ? times : 1); i++) {
    int count = sgrpc_ac_hub_signal(loop->hub, signo, sgrpc_kq_now());
    if (loop->on_signal) loop->on_signal(loop, signo, count, loop->signal_ud);
    if (count >= 2) loop->stop = 1;
  }
}

/* ------------------------------------------------------------------ */
/* Loop                                                                */
/* ------------------------------------------------------------------ */

int sgrpc_kq_loop_new(sgrpc_kq_loop **ploop) {
  sgrpc_kq_loop *loop;
  sgrpc_ac_ops ops;
  int rv;
  if (!ploop) return SGRPC_ERR_INVALID_ARGUMENT;
  *ploop = NULL;
  loop = calloc(1, sizeof(*loop));
  if (!loop) return SGRPC_ERR_NOMEM;
  loop->hub_when = SGRPC_NEVER;
  loop->kernel_when = SGRPC_NEVER;
  loop->kq = kqueue();
  if (loop->kq < 0) {
    free(loop);
    return SGRPC_ERR_INVALID_STATE;
  }
  memset(&ops, 0, sizeof(ops));
  ops.now = op_now;
  ops.connect = op_connect;
  ops.write = op_write;
  ops.close = op_close;
  ops.timer_arm = op_timer_arm;
  ops.listener_close = op_listener_close;
  rv = sgrpc_ac_hub_new(&loop->hub, &ops, loop);
  if (rv != 0) {
    close(loop->kq);
    free(loop);
    return rv;
  }
  *ploop = loop;
  return 0;
}

static void free_dead(sgrpc_kq_loop *loop) {
  while (loop->dead_tx) {
    kq_tx *tx = loop->dead_tx;
    loop->dead_tx = tx->next_dead;
    free(tx);
  }
  while (loop->dead_listeners) {
    kq_listener *l = loop->dead_listeners;
    loop->dead_listeners = l->next_dead;
    free(l);
  }
}

void sgrpc_kq_loop_del(sgrpc_kq_loop *loop) {
  if (!loop) return;
  sgrpc_ac_hub_del(loop->hub);
  while (loop->timers) sgrpc_kq_timer_cancel(loop->timers);
  free_dead(loop);
  if (loop->catching) {
    struct kevent kev[2];
    EV_SET(&kev[0], SIGINT, EVFILT_SIGNAL, EV_DELETE, 0, 0, NULL);
    EV_SET(&kev[1], SIGTERM, EVFILT_SIGNAL, EV_DELETE, 0, 0, NULL);
    kevent(loop->kq, kev, 2, NULL, 0, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
  }
  close(loop->kq);
  free(loop);
}

sgrpc_ac_hub *sgrpc_kq_loop_hub(const sgrpc_kq_loop *loop) { return loop ? loop->hub : NULL; }
int sgrpc_kq_loop_get_fd(const sgrpc_kq_loop *loop) { return loop ? loop->kq : -1; }
void sgrpc_kq_loop_stop(sgrpc_kq_loop *loop) {
  if (loop) loop->stop = 1;
}

int sgrpc_kq_channel_new(sgrpc_kq_loop *loop, const sgrpc_ac_channel_opts *o,
                         sgrpc_ac_channel **pch) {
  if (!loop) return SGRPC_ERR_INVALID_ARGUMENT;
  return sgrpc_ac_channel_new(pch, loop->hub, o);
}

static int loop_has_work(const sgrpc_kq_loop *loop) {
  return loop->timers || sgrpc_ac_hub_has_work(loop->hub);
}

int sgrpc_kq_loop_run_once(sgrpc_kq_loop *loop, int timeout_ms) {
  struct kevent evs[KQ_MAX_EVENTS];
  struct timespec ts, *tsp = NULL;
  int64_t now, when;
  int n, i;
  if (!loop) return SGRPC_ERR_INVALID_ARGUMENT;
  now = sgrpc_kq_now();
  sgrpc_ac_hub_service(loop->hub, now);
  free_dead(loop);
  if (loop->stop || !loop_has_work(loop)) return 0;
  when = loop_next_when(loop);
  if (when <= now) timeout_ms = 0; /* due already: do not block */
  timer_program(loop, when, now);
  if (timeout_ms >= 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
    tsp = &ts;
  }
  n = kevent(loop->kq, NULL, 0, evs, KQ_MAX_EVENTS, tsp);
  if (n < 0) {
    if (errno != EINTR) return SGRPC_ERR_INVALID_STATE;
    n = 0;
  }
  for (i = 0; i < n; i++) {
    struct kevent *e = &evs[i];
    if (e->flags & EV_ERROR) continue;
    if (e->filter == EVFILT_TIMER) {
      loop->kernel_when = SGRPC_NEVER; /* one-shot: gone */
      continue;
    }
    if (e->filter == EVFILT_SIGNAL) {
      signal_received(loop, (int)e->ident, e->data);
      continue;
    }
    {
      kq_handle *h = e->udata;
      if (!h) continue;
      if (h->kind == KQ_LISTENER) {
        kq_listener *l = (kq_listener *)h;
        if (!l->dead) listener_accept(l);
      } else {
        kq_tx *tx = (kq_tx *)h;
        if (tx->dead || !tx->c) continue;
        if (e->filter == EVFILT_READ && !tx->connecting) tx_readable(tx);
        else if (e->filter == EVFILT_WRITE) tx_writable(tx);
      }
    }
  }
  /* Timers: checked every turn against the clock, so a timer event that
   * arrived with others, or an early wake, is never missed. */
  now = sgrpc_kq_now();
  if (loop->hub_when <= now) sgrpc_ac_hub_timer(loop->hub, now);
  timers_fire(loop, now);
  sgrpc_ac_hub_service(loop->hub, sgrpc_kq_now());
  free_dead(loop);
  return !loop->stop && loop_has_work(loop) ? 1 : 0;
}

int sgrpc_kq_loop_run(sgrpc_kq_loop *loop) {
  int rv;
  if (!loop) return SGRPC_ERR_INVALID_ARGUMENT;
  do {
    rv = sgrpc_kq_loop_run_once(loop, -1);
  } while (rv > 0);
  loop->stop = 0;
  return rv < 0 ? rv : 0;
}
