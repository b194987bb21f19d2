/*
 * The epoll loop: readiness -> read -> sgrpc_conn_recv -> events ->
 * callbacks -> sgrpc_conn_out_peek -> send -> out_consume, with engine
 * timers on one timerfd (CLOCK_MONOTONIC ns is the engine's `now`).
 * No gRPC or HTTP/2 logic lives here.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
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
/* Output rounds per service pass (each round: peek, send, events). */
#define EP_WRITE_ROUNDS 64
#define EP_MAX_EVENTS 64

int64_t sgrpc_epoll_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

sgrpc_conn *sgrpc_epoll_conn_engine(const sgrpc_epoll_conn *c) { return c ? c->engine : NULL; }
sgrpc_epoll_server *sgrpc_epoll_conn_server(const sgrpc_epoll_conn *c) {
  return c ? c->server : NULL;
}
sgrpc_epoll_loop *sgrpc_epoll_conn_loop(const sgrpc_epoll_conn *c) { return c ? c->loop : NULL; }

void ep_conn_set_events(sgrpc_epoll_conn *c, uint32_t events) {
  struct epoll_event ee;
  if (c->dead || c->armed == events) return;
  memset(&ee, 0, sizeof(ee));
  ee.events = events;
  ee.data.ptr = &c->h;
  if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->h.fd, &ee) == 0) c->armed = events;
}

sgrpc_epoll_conn *ep_conn_new(sgrpc_epoll_loop *loop, int fd, sgrpc_conn *engine,
                              int connecting) {
  struct epoll_event ee;
  sgrpc_epoll_conn *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  c->h.kind = EP_CONN;
  c->h.fd = fd;
  c->loop = loop;
  c->engine = engine;
  c->connecting = (uint8_t)connecting;
  c->armed = connecting ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  memset(&ee, 0, sizeof(ee));
  ee.events = c->armed;
  ee.data.ptr = &c->h;
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) != 0) {
    free(c);
    return NULL;
  }
  c->next = loop->conns;
  if (loop->conns) loop->conns->prev = c;
  loop->conns = c;
  return c;
}

/* Hands one engine event to its callback. Client call events go to the
 * call's own callback with the user's user_data; the adapter releases a
 * call once its CLOSE has been delivered. */
static void conn_dispatch(sgrpc_epoll_conn *c, const sgrpc_event *ev) {
  c->loop->busy = 1;
  if (c->server) {
    c->server->on_event(c, ev, c->server->user_data);
    if (ev->type == SGRPC_EV_CLOSE && ev->call) sgrpc_call_release(ev->call);
    return;
  }
  if (ev->call) {
    ep_call *rec = ev->call_user_data;
    sgrpc_event e = *ev;
    if (!rec) return;
    e.call_user_data = rec->user_data;
    if (rec->cb) rec->cb(&e, rec->user_data);
    if (ev->type == SGRPC_EV_CLOSE) {
      sgrpc_call_set_user_data(ev->call, NULL);
      free(rec);
      sgrpc_call_release(ev->call);
    }
    return;
  }
  if (ev->type == SGRPC_EV_GOAWAY) {
    /* New calls must go to a fresh connection from now on. */
    c->goaway_seen = 1;
    if (c->channel && c->channel->cur == c) c->channel->cur = NULL;
  }
  if (c->channel && c->channel->on_conn_event)
    c->channel->on_conn_event(c, ev, c->channel->user_data);
}

/* Pulls and dispatches every queued event. Returns how many. */
static int conn_drain(sgrpc_epoll_conn *c) {
  sgrpc_event ev;
  int n = 0;
  while (sgrpc_conn_next_event(c->engine, &ev) == 1) {
    conn_dispatch(c, &ev);
    n++;
  }
  return n;
}

/* Writes engine output until it is empty or the socket is full. Events
 * produced by the output step (a stream closing as its last frame leaves)
 * are dispatched, and whatever their callbacks queue is written too. */
static void conn_flush(sgrpc_epoll_conn *c) {
  int round, blocked = 1; /* stays 1 when the rounds run out: come back */
  for (round = 0; round < EP_WRITE_ROUNDS && !c->closing; round++) {
    const uint8_t *p;
    ssize_t n = sgrpc_conn_out_peek(c->engine, &p), w;
    if (n < 0) { /* fatal with nothing left to send */
      c->closing = 1;
      break;
    }
    if (n == 0) {
      if (conn_drain(c) == 0) {
        blocked = 0;
        break;
      }
      continue;
    }
    w = send(c->h.fd, p, (size_t)n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      c->closing = 1; /* EPIPE, ECONNRESET, ...: the transport is gone */
      break;
    }
    sgrpc_conn_out_consume(c->engine, (size_t)w);
    conn_drain(c);
    if (w < n) break; /* short write: the socket buffer is full */
  }
  /* EPOLLOUT only while output is stuck behind a full socket; the engine
   * may say it wants to write while it has nothing to give (flow
   * control), which must not make the loop spin. */
  if (!c->closing) ep_conn_set_events(c, EPOLLIN | (blocked ? EPOLLOUT : 0));
}

/* Feeds bytes to the engine, draining events whenever it stops early
 * (its event queue filled up) and feeding the rest. */
static int conn_feed(sgrpc_epoll_conn *c, const uint8_t *buf, size_t len) {
  size_t off = 0;
  int stalls = 0;
  conn_drain(c);
  while (off < len) {
    ssize_t r = sgrpc_conn_recv(c->engine, buf + off, len - off, sgrpc_epoll_now());
    int got;
    if (r < 0) {
      /* Fatal: deliver the calls' CLOSE events; the service pass sends
       * the queued GOAWAY and closes once the engine is not alive. */
      conn_drain(c);
      return -1;
    }
    off += (size_t)r;
    got = conn_drain(c);
    if (r == 0 && got == 0 && ++stalls > 2) { /* engine refuses input: give up */
      c->closing = 1;
      return -1;
    }
  }
  return 0;
}

static void conn_readable(sgrpc_epoll_conn *c) {
  sgrpc_epoll_loop *loop = c->loop;
  int i;
  for (i = 0; i < EP_READS_PER_WAKE && !c->closing; i++) {
    ssize_t n = read(c->h.fd, loop->rbuf, loop->rbuf_cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      c->closing = 1;
      return;
    }
    if (n == 0) { /* EOF */
      c->closing = 1;
      return;
    }
    if (conn_feed(c, loop->rbuf, (size_t)n) < 0) return;
    if ((size_t)n < loop->rbuf_cap) return;
  }
}

static void conn_connected(sgrpc_epoll_conn *c) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(c->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    c->closing = 1;
    return;
  }
  c->connecting = 0;
}

/* Closes the transport: open calls end through their callbacks, the
 * socket is closed, and the memory waits in the graveyard until the end
 * of the turn (an epoll batch may still point at it). */
void ep_conn_close(sgrpc_epoll_conn *c) {
  sgrpc_epoll_loop *loop = c->loop;
  if (c->dead) return;
  sgrpc_conn_transport_closed(c->engine);
  conn_drain(c);
  c->dead = 1;
  epoll_ctl(loop->epfd, EPOLL_CTL_DEL, c->h.fd, NULL);
  close(c->h.fd);
  c->h.fd = -1;
  if (c->prev) c->prev->next = c->next;
  else loop->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = NULL;
  c->next = loop->graveyard;
  loop->graveyard = c;
  if (c->server) ep_server_conn_gone(c->server);
  if (c->channel) ep_channel_conn_gone(c->channel, c);
  c->server = NULL;
  c->channel = NULL;
}

/* Brings a connection up to date: dispatches queued events, writes
 * output, and closes it when the engine is done with it. Returns the
 * number of events dispatched plus one if it closed. */
int ep_conn_service(sgrpc_epoll_conn *c) {
  int n;
  if (c->dead) return 0;
  n = conn_drain(c);
  if (!c->connecting && !c->closing) conn_flush(c);
  if (c->closing ||
      (!c->connecting && !sgrpc_conn_want_write(c->engine) &&
       (!sgrpc_conn_is_alive(c->engine) ||
        (c->close_when_idle && sgrpc_conn_call_count(c->engine) == 0)))) {
    ep_conn_close(c);
    return n + 1;
  }
  return n;
}

void ep_loop_free_graveyard(sgrpc_epoll_loop *loop) {
  while (loop->graveyard) {
    sgrpc_epoll_conn *c = loop->graveyard;
    loop->graveyard = c->next;
    sgrpc_conn_del(c->engine);
    free(c);
  }
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

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
    loop->busy = 1;
    t->cb(loop, t->user_data);
    free(t);
  }
}

/* Programs the timerfd for the earliest engine or user timer. */
static void timers_rearm(sgrpc_epoll_loop *loop) {
  int64_t when = SGRPC_NEVER;
  sgrpc_epoll_conn *c;
  sgrpc_epoll_timer *t;
  struct itimerspec its;
  for (c = loop->conns; c; c = c->next) {
    int64_t e = sgrpc_conn_next_expiry(c->engine);
    if (e < when) when = e;
  }
  for (t = loop->timers; t; t = t->next)
    if (t->when < when) when = t->when;
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

static void timer_expired(sgrpc_epoll_loop *loop) {
  uint64_t ticks;
  int64_t now = sgrpc_epoll_now();
  sgrpc_epoll_conn *c;
  while (read(loop->timer_h.fd, &ticks, sizeof(ticks)) < 0 && errno == EINTR) {
  }
  loop->timer_armed = SGRPC_NEVER;
  for (c = loop->conns; c; c = c->next) {
    if (c->dead || sgrpc_conn_next_expiry(c->engine) > now) continue;
    if (sgrpc_conn_handle_expiry(c->engine, now) < 0) c->closing = 1;
  }
  timers_fire(loop, now);
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

static void signal_received(sgrpc_epoll_loop *loop) {
  struct signalfd_siginfo si;
  while (read(loop->signal_h.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    loop->signal_count++;
    if (loop->on_signal)
      loop->on_signal(loop, (int)si.ssi_signo, loop->signal_count, loop->signal_user_data);
    if (loop->signal_count == 1) {
      sgrpc_epoll_server *s;
      sgrpc_epoll_channel *ch;
      for (s = loop->servers; s; s = s->next) sgrpc_epoll_server_shutdown(s);
      for (ch = loop->channels; ch; ch = ch->next) sgrpc_epoll_channel_close(ch);
    } else {
      loop->stop = 1;
    }
  }
}

/* ------------------------------------------------------------------ */
/* Loop                                                                */
/* ------------------------------------------------------------------ */

int sgrpc_epoll_loop_new(sgrpc_epoll_loop **ploop) {
  sgrpc_epoll_loop *loop;
  struct epoll_event ee;
  int rv;
  if (!ploop) return SGRPC_ERR_INVALID_ARGUMENT;
  *ploop = NULL;
  loop = calloc(1, sizeof(*loop));
  if (!loop) return SGRPC_ERR_NOMEM;
  loop->rbuf_cap = EP_READ_BUF;
  loop->rbuf = malloc(loop->rbuf_cap);
  loop->timer_armed = SGRPC_NEVER;
  loop->signal_h.kind = EP_SIGNALFD;
  loop->signal_h.fd = -1;
  loop->timer_h.kind = EP_TIMERFD;
  loop->timer_h.fd = -1;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!loop->rbuf || loop->epfd < 0) goto fail;
  loop->timer_h.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (loop->timer_h.fd < 0) goto fail;
  memset(&ee, 0, sizeof(ee));
  ee.events = EPOLLIN;
  ee.data.ptr = &loop->timer_h;
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->timer_h.fd, &ee) != 0) goto fail;
  *ploop = loop;
  return 0;
fail:
  rv = loop->rbuf ? SGRPC_ERR_INVALID_STATE : SGRPC_ERR_NOMEM;
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
  while (loop->conns) ep_conn_close(loop->conns);
  while (loop->timers) sgrpc_epoll_timer_cancel(loop->timers);
  ep_loop_free_graveyard(loop);
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
  const sgrpc_epoll_server *s;
  if (loop->conns || loop->timers) return 1;
  for (s = loop->servers; s; s = s->next)
    if (s->h.fd >= 0) return 1;
  return 0;
}

/* Services every connection, repeating while callbacks keep producing
 * work for other connections (bounded; a turn with work left does not
 * block in epoll_wait). */
static void service_all(sgrpc_epoll_loop *loop) {
  int pass;
  for (pass = 0; pass < 4; pass++) {
    sgrpc_epoll_conn *c, *next;
    int work = 0;
    for (c = loop->conns; c; c = next) {
      next = c->next;
      work += ep_conn_service(c);
    }
    if (!work) {
      loop->busy = 0;
      break;
    }
  }
  timers_rearm(loop);
}

int sgrpc_epoll_loop_run_once(sgrpc_epoll_loop *loop, int timeout_ms) {
  struct epoll_event evs[EP_MAX_EVENTS];
  int n, i;
  if (!loop) return SGRPC_ERR_INVALID_ARGUMENT;
  loop->busy = 0;
  service_all(loop);
  ep_loop_free_graveyard(loop);
  if (loop->stop || !loop_has_work(loop)) return 0;
  if (loop->busy) timeout_ms = 0;
  n = epoll_wait(loop->epfd, evs, EP_MAX_EVENTS, timeout_ms);
  if (n < 0) {
    if (errno != EINTR) return SGRPC_ERR_INVALID_STATE;
    n = 0;
  }
  for (i = 0; i < n; i++) {
    ep_handle *h = evs[i].data.ptr;
    uint32_t e = evs[i].events;
    switch (h->kind) {
    case EP_TIMERFD:
      timer_expired(loop);
      break;
    case EP_SIGNALFD:
      signal_received(loop);
      break;
    case EP_LISTENER: {
      sgrpc_epoll_server *s = (sgrpc_epoll_server *)h;
      if (s->h.fd >= 0) ep_server_accept(s);
      break;
    }
    case EP_CONN: {
      sgrpc_epoll_conn *c = (sgrpc_epoll_conn *)h;
      if (c->dead) break;
      if (c->connecting) {
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) conn_connected(c);
        break;
      }
      if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_readable(c);
      /* EPOLLOUT: the service pass below writes */
      break;
    }
    default:
      break;
    }
  }
  service_all(loop);
  ep_loop_free_graveyard(loop);
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
