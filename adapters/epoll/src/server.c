/*
 * Server side of the epoll adapter: the listening socket and accept. The
 * connection work (dispatch, call release, GOAWAY, drain) is the core's.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#define EP_ACCEPTS_PER_WAKE 64

/* Events of the core server, handed on with the epoll connection type. */
static void server_event(sgrpc_ac_conn *c, const sgrpc_event *ev, void *ud) {
  sgrpc_epoll_server *s = ud;
  s->on_event((sgrpc_epoll_conn *)c, ev, s->user_data);
}

/* ops->listener_close: graceful shutdown or server_del. */
void ep_listener_close(void *hub_ud, sgrpc_ac_server *core, void *listener) {
  sgrpc_epoll_server *s = listener;
  (void)hub_ud;
  (void)core;
  if (s->h.fd >= 0) {
    epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, s->h.fd, NULL);
    close(s->h.fd);
    s->h.fd = -1;
    if (s->unix_path) unlink(s->unix_path);
  }
  if (s->bare && !s->dead) {
    /* An epoll batch of this turn may still point at s. */
    s->dead = 1;
    s->next = s->loop->dead_servers;
    s->loop->dead_servers = s;
  }
}

/* Opens s's listening socket from o (bound and listening, non-blocking,
 * in the epoll set) and sets *port. A socket the user handed over (use_fd)
 * is theirs again when this fails: it is not closed then. */
static int listener_open(sgrpc_epoll_server *s, const sgrpc_ac_listen_opts *o, int *port) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  struct epoll_event ee;
  int one = 1, fd;
  *port = 0;
  if (o->use_fd) {
    int fl = fcntl(o->fd, F_GETFL);
    if (fl < 0 || fcntl(o->fd, F_SETFL, fl | O_NONBLOCK) != 0) return SGRPC_ERR_INVALID_STATE;
    fcntl(o->fd, F_SETFD, FD_CLOEXEC);
    s->is_unix = o->fd_is_unix;
    fd = o->fd;
    if (s->is_unix && getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
        ss.ss_family == AF_UNIX)
      snprintf(s->peer_path, sizeof(s->peer_path), "%.100s",
               ((struct sockaddr_un *)&ss)->sun_path);
  } else {
    sgrpc_ac_target t;
    if (sgrpc_ac_target_parse(o->listen, 1, &t) != 0 || ep_resolve(&t, 1, &ss, &len) != 0)
      return SGRPC_ERR_INVALID_ARGUMENT;
    if (t.kind == SGRPC_AC_TARGET_UNIX) {
      struct stat st;
      s->is_unix = 1;
      if (!(s->unix_path = strdup(t.path))) return SGRPC_ERR_NOMEM;
      snprintf(s->peer_path, sizeof(s->peer_path), "%.100s", t.path);
      /* Replace a stale socket file, never any other kind of file. */
      if (lstat(s->unix_path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(s->unix_path);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return SGRPC_ERR_INVALID_STATE;
    s->h.fd = fd;
    if (!s->is_unix) {
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        return SGRPC_ERR_INVALID_STATE;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) return SGRPC_ERR_INVALID_STATE;
  }
  if (listen(fd, o->backlog > 0 ? o->backlog : 128) != 0) return SGRPC_ERR_INVALID_STATE;
  if (!s->is_unix) {
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
      *port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  }
  memset(&ee, 0, sizeof(ee));
  ee.events = EPOLLIN;
  ee.data.ptr = &s->h;
  if (epoll_ctl(s->loop->epfd, EPOLL_CTL_ADD, fd, &ee) != 0) return SGRPC_ERR_INVALID_STATE;
  s->h.fd = fd;
  return 0;
}

/* Undoes a failed listener_open / server creation, errno kept. */
static void listener_fail(sgrpc_epoll_server *s, const sgrpc_ac_listen_opts *o) {
  int saved = errno;
  if (s->h.fd >= 0) {
    epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, s->h.fd, NULL);
    if (!o->use_fd) close(s->h.fd);
  }
  free(s->unix_path);
  free(s);
  errno = saved;
}

static sgrpc_epoll_server *server_alloc(sgrpc_epoll_loop *loop) {
  sgrpc_epoll_server *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->h.kind = EP_LISTENER;
  s->h.fd = -1;
  s->loop = loop;
  return s;
}

int sgrpc_epoll_server_new(sgrpc_epoll_server **pserver, sgrpc_epoll_loop *loop,
                           const sgrpc_epoll_server_opts *opts) {
  sgrpc_epoll_server *s;
  sgrpc_ac_listen_opts lo;
  int rv, port = 0;

  if (!pserver || !loop || !opts || !opts->listen || !opts->on_event)
    return SGRPC_ERR_INVALID_ARGUMENT;
  *pserver = NULL;
  memset(&lo, 0, sizeof(lo));
  lo.listen = opts->listen;
  lo.backlog = opts->backlog;
  lo.server.settings = opts->settings;
  lo.server.drain_timeout_ns = opts->drain_timeout_ns;
  lo.server.single_goaway = 1; /* this API's documented shutdown: one GOAWAY */
  lo.server.make_filter = opts->make_filter;
  lo.server.filter_user_data = opts->filter_user_data;
  if (!(s = server_alloc(loop))) return SGRPC_ERR_NOMEM;
  s->on_event = opts->on_event;
  s->user_data = opts->user_data;
  lo.server.on_event = server_event;
  lo.server.user_data = s;
  rv = listener_open(s, &lo, &port);
  if (rv == 0) rv = sgrpc_ac_server_new(&s->core, loop->hub, &lo.server);
  if (rv != 0) {
    listener_fail(s, &lo);
    return rv;
  }
  sgrpc_ac_server_set_listener(s->core, s, port);
  s->next = loop->servers;
  if (loop->servers) loop->servers->prev = s;
  loop->servers = s;
  *pserver = s;
  return 0;
}

int sgrpc_epoll_listen(sgrpc_epoll_loop *loop, const sgrpc_ac_listen_opts *o,
                       sgrpc_ac_server **ps) {
  sgrpc_epoll_server *s;
  int rv, port = 0;
  if (!loop || !o || !ps || (!o->use_fd && !o->listen) || !o->server.on_event)
    return SGRPC_ERR_INVALID_ARGUMENT;
  *ps = NULL;
  if (!(s = server_alloc(loop))) return SGRPC_ERR_NOMEM;
  /* Only a listener: the core server belongs to the hub, and this object
   * goes when the core closes its listener (ep_listener_close). */
  s->bare = 1;
  rv = listener_open(s, o, &port);
  if (rv == 0) rv = sgrpc_ac_server_new(&s->core, loop->hub, &o->server);
  if (rv != 0) {
    listener_fail(s, o);
    return rv;
  }
  sgrpc_ac_server_set_listener(s->core, s, port);
  *ps = s->core;
  return 0;
}

int sgrpc_epoll_server_port(const sgrpc_epoll_server *s) {
  return s ? sgrpc_ac_server_port(s->core) : 0;
}

sgrpc_ac_server *sgrpc_epoll_server_core(const sgrpc_epoll_server *s) {
  return s ? s->core : NULL;
}

size_t sgrpc_epoll_server_conn_count(const sgrpc_epoll_server *s) {
  return s ? sgrpc_ac_server_conn_count(s->core) : 0;
}

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
    snprintf(out, cap, "unix:%.100s", unix_path);
  }
}

void ep_server_accept(sgrpc_epoll_server *s) {
  int i;
  for (i = 0; i < EP_ACCEPTS_PER_WAKE && s->h.fd >= 0; i++) {
    struct sockaddr_storage ss;
    socklen_t slen = sizeof(ss);
    sgrpc_ac_conn *c = NULL;
    char peer[128];
    ep_tx *tx;
    int one = 1;
    int fd = accept4(s->h.fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; /* EAGAIN, or EMFILE and friends: try on the next turn */
    }
    if (!s->is_unix) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    format_peer(&ss, s->peer_path, peer, sizeof(peer));
    tx = ep_tx_new(s->loop, fd, 0);
    if (!tx) {
      close(fd);
      continue;
    }
    if (sgrpc_ac_server_accept(s->core, tx, peer, sgrpc_epoll_now(), &c) != 0) {
      epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, fd, NULL);
      close(fd);
      free(tx);
      continue;
    }
    tx->c = c;
  }
}

void sgrpc_epoll_server_shutdown(sgrpc_epoll_server *s) {
  if (s) sgrpc_ac_server_shutdown(s->core);
}

void sgrpc_epoll_server_del(sgrpc_epoll_server *s) {
  sgrpc_epoll_loop *loop;
  if (!s) return;
  loop = s->loop;
  sgrpc_ac_server_del(s->core); /* closes the listener and connections */
  ep_listener_close(loop, NULL, s);
  if (s->prev) s->prev->next = s->next;
  else loop->servers = s->next;
  if (s->next) s->next->prev = s->prev;
  ep_tx_free_dead(loop);
  free(s->unix_path);
  free(s);
}
