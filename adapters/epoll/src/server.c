/*
 * Server side of the epoll adapter: listening socket, accept, graceful
 * shutdown (GOAWAY, drain, close when idle).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#define EP_ACCEPTS_PER_WAKE 64

static void server_close_listener(sgrpc_epoll_server *s) {
  if (s->h.fd < 0) return;
  epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, s->h.fd, NULL);
  close(s->h.fd);
  s->h.fd = -1;
  if (s->unix_path) unlink(s->unix_path);
}

int sgrpc_epoll_server_new(sgrpc_epoll_server **pserver, sgrpc_epoll_loop *loop,
                           const sgrpc_epoll_server_opts *opts) {
  sgrpc_epoll_server *s;
  struct sockaddr_storage ss;
  socklen_t len;
  struct epoll_event ee;
  int rv, one = 1, saved;

  if (!pserver || !loop || !opts || !opts->listen || !opts->on_event)
    return SGRPC_ERR_INVALID_ARGUMENT;
  *pserver = NULL;
  s = calloc(1, sizeof(*s));
  if (!s) return SGRPC_ERR_NOMEM;
  s->h.kind = EP_LISTENER;
  s->h.fd = -1;
  s->loop = loop;
  s->on_event = opts->on_event;
  s->user_data = opts->user_data;
  s->drain_timeout_ns = opts->drain_timeout_ns;
  if (opts->settings) {
    s->settings = *opts->settings;
    s->has_settings = 1;
  }
  rv = ep_parse_addr(opts->listen, 1, &ss, &len, &s->unix_path);
  if (rv != 0) goto fail;

  rv = SGRPC_ERR_INVALID_STATE;
  s->h.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->h.fd < 0) goto fail;
  if (ss.ss_family == AF_UNIX) {
    struct stat st;
    /* Replace a stale socket file, never any other kind of file. */
    if (lstat(s->unix_path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(s->unix_path);
  } else {
    setsockopt(s->h.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (bind(s->h.fd, (struct sockaddr *)&ss, len) != 0) goto fail;
  if (listen(s->h.fd, opts->backlog > 0 ? opts->backlog : 128) != 0) goto fail;
  if (ss.ss_family != AF_UNIX) {
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(s->h.fd, (struct sockaddr *)&bound, &blen) == 0)
      s->port = bound.ss_family == AF_INET6
                    ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                    : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  }
  memset(&ee, 0, sizeof(ee));
  ee.events = EPOLLIN;
  ee.data.ptr = &s->h;
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, s->h.fd, &ee) != 0) goto fail;

  s->next = loop->servers;
  if (loop->servers) loop->servers->prev = s;
  loop->servers = s;
  *pserver = s;
  return 0;
fail:
  saved = errno;
  if (s->h.fd >= 0) close(s->h.fd);
  free(s->unix_path);
  free(s);
  errno = saved;
  return rv;
}

int sgrpc_epoll_server_port(const sgrpc_epoll_server *s) { return s ? s->port : 0; }

size_t sgrpc_epoll_server_conn_count(const sgrpc_epoll_server *s) { return s ? s->nconns : 0; }

void ep_server_accept(sgrpc_epoll_server *s) {
  int i;
  for (i = 0; i < EP_ACCEPTS_PER_WAKE && s->h.fd >= 0; i++) {
    sgrpc_conn *engine = NULL;
    sgrpc_epoll_conn *c;
    int one = 1;
    int fd = accept4(s->h.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; /* EAGAIN, or EMFILE and friends: try on the next turn */
    }
    if (!s->unix_path) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (sgrpc_conn_server_new(&engine, s->has_settings ? &s->settings : NULL, NULL,
                              sgrpc_epoll_now()) != 0) {
      close(fd);
      continue;
    }
    c = ep_conn_new(s->loop, fd, engine, 0);
    if (!c) {
      sgrpc_conn_del(engine);
      close(fd);
      continue;
    }
    c->server = s;
    s->nconns++;
  }
}

void ep_server_conn_gone(sgrpc_epoll_server *s) {
  if (s->nconns) s->nconns--;
  if (s->shutting_down && s->nconns == 0 && s->drain_timer) {
    sgrpc_epoll_timer_cancel(s->drain_timer);
    s->drain_timer = NULL;
  }
}

static void server_drain_expired(sgrpc_epoll_loop *loop, void *ud) {
  sgrpc_epoll_server *s = ud;
  sgrpc_epoll_conn *c;
  s->drain_timer = NULL;
  for (c = loop->conns; c; c = c->next)
    if (c->server == s) c->closing = 1;
}

void sgrpc_epoll_server_shutdown(sgrpc_epoll_server *s) {
  sgrpc_epoll_conn *c;
  if (!s || s->shutting_down) return;
  s->shutting_down = 1;
  server_close_listener(s);
  for (c = s->loop->conns; c; c = c->next)
    if (c->server == s) sgrpc_conn_goaway(c->engine, 0, NULL, 0);
  if (s->drain_timeout_ns > 0 && s->nconns)
    sgrpc_epoll_timer_start(s->loop, s->drain_timeout_ns, server_drain_expired, s,
                            &s->drain_timer);
}

void sgrpc_epoll_server_del(sgrpc_epoll_server *s) {
  sgrpc_epoll_loop *loop;
  sgrpc_epoll_conn *c, *next;
  if (!s) return;
  loop = s->loop;
  server_close_listener(s);
  for (c = loop->conns; c; c = next) {
    next = c->next;
    if (c->server == s) ep_conn_close(c);
  }
  if (s->drain_timer) sgrpc_epoll_timer_cancel(s->drain_timer);
  if (s->prev) s->prev->next = s->next;
  else loop->servers = s->next;
  if (s->next) s->next->prev = s->prev;
  ep_loop_free_graveyard(loop);
  free(s->unix_path);
  free(s);
}
