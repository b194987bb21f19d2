/*
 * The POSIX socket code of the epoll and kqueue adapters (posix_net.h).
 */
#include "posix_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* BSD: SO_NOSIGPIPE is set on each socket instead */
#endif

/* errno as the library's system error code; SGRPC_ERR_SYSTEM covers
 * errno 1..399, anything else (none on the supported systems) is EIO. */
int pn_err(void) { return SGRPC_ERR_SYSTEM(errno >= 1 && errno <= 399 ? errno : EIO); }

int64_t pn_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sgrpc_net_to_unix_ns(int64_t t) {
  struct timespec wall, mono;
  if (t <= 0) return 0;
  clock_gettime(CLOCK_REALTIME, &wall);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return t + ((int64_t)wall.tv_sec - (int64_t)mono.tv_sec) * 1000000000 +
         ((int64_t)wall.tv_nsec - (int64_t)mono.tv_nsec);
}

int pn_resolve(const sgrpc_net_target *t, int passive, struct sockaddr_storage *ss,
               socklen_t *len) {
  struct addrinfo hints, *res = NULL;
  memset(ss, 0, sizeof(*ss));
  if (t->kind == SGRPC_NET_TARGET_UNIX) {
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    size_t plen = strlen(t->path);
    if (plen >= sizeof(un->sun_path)) return SGRPC_ERR_INVALID_ARGUMENT;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, t->path, plen + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
    return 0;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  if (getaddrinfo(t->host[0] ? t->host : NULL, t->port, &hints, &res) != 0 || !res)
    return SGRPC_ERR_INVALID_ARGUMENT;
  /* A resolver may hand back an address family larger than the storage. */
  if (res->ai_addrlen > sizeof(*ss)) {
    freeaddrinfo(res);
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = (socklen_t)res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

void pn_format_peer(const struct sockaddr_storage *ss, const char *unix_path, char *out,
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

int pn_socket_setup(int fd) {
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

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int bound_port(int fd) {
  struct sockaddr_storage b;
  socklen_t blen = sizeof(b);
  if (getsockname(fd, (struct sockaddr *)&b, &blen) != 0) return 0;
  if (b.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&b)->sin6_port);
  if (b.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&b)->sin_port);
  return 0;
}

int pn_listen(const sgrpc_net_listen_opts *o, pn_listener *l) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int one = 1, rv;
  memset(l, 0, sizeof(*l));
  l->fd = -1;
  if (o->use_fd) {
    l->fd = o->fd;
    l->is_unix = o->fd_is_unix;
    if (l->is_unix && getsockname(o->fd, (struct sockaddr *)&ss, &len) == 0 &&
        ss.ss_family == AF_UNIX)
      snprintf(l->peer_path, sizeof(l->peer_path), "%.100s",
               ((struct sockaddr_un *)&ss)->sun_path);
  } else {
    sgrpc_net_target t;
    if (!o->listen || sgrpc_net_target_parse(o->listen, 1, &t) != 0)
      return SGRPC_ERR_INVALID_ARGUMENT;
    if ((rv = pn_resolve(&t, 1, &ss, &len)) != 0) return rv;
    l->fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (l->fd < 0) return pn_err();
    if (ss.ss_family == AF_UNIX) {
      struct stat st;
      l->is_unix = 1;
      /* Replace a stale socket file, never any other kind of file. */
      if (lstat(t.path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(t.path);
      snprintf(l->peer_path, sizeof(l->peer_path), "%.100s", t.path);
    } else {
      setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (o->reuseport && setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    }
    if (bind(l->fd, (struct sockaddr *)&ss, len) != 0) goto fail;
    if (l->is_unix) memcpy(l->unix_path, t.path, sizeof(l->unix_path));
  }
  if (pn_socket_setup(l->fd) != 0) goto fail;
  if (listen(l->fd, o->backlog > 0 ? o->backlog : 128) != 0) goto fail;
  if (!l->is_unix) l->port = bound_port(l->fd);
  return 0;
fail:
  rv = pn_err(); /* carries errno: nothing below needs to keep it */
  if (!o->use_fd) {
    close(l->fd);
    if (l->unix_path[0]) unlink(l->unix_path);
  }
  l->fd = -1;
  return rv;
}

void pn_listener_close(pn_listener *l) {
  if (l->fd < 0) return;
  close(l->fd);
  l->fd = -1;
  if (l->unix_path[0]) unlink(l->unix_path);
}

int pn_accept(const pn_listener *l, char *peer, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t slen = sizeof(ss);
  int fd = accept(l->fd, (struct sockaddr *)&ss, &slen);
  if (fd < 0) {
    if (errno == EINTR || errno == ECONNABORTED) return -2;
    return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : -3;
  }
  if (pn_socket_setup(fd) != 0) {
    close(fd);
    return -2;
  }
  if (!l->is_unix) set_nodelay(fd);
  pn_format_peer(&ss, l->peer_path, peer, cap);
  return fd;
}

int pn_connect(const sgrpc_net_address *a, int *pfd) {
  int fd, rv;
  *pfd = -1;
  if (!a || a->len == 0 || a->len > sizeof(a->addr)) return SGRPC_ERR_INVALID_ARGUMENT;
  fd = socket(a->addr.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return pn_err();
  if (pn_socket_setup(fd) != 0) {
    rv = pn_err();
    close(fd);
    return rv;
  }
  if (a->addr.ss_family != AF_UNIX) set_nodelay(fd);
  do {
    rv = connect(fd, (const struct sockaddr *)&a->addr, a->len);
  } while (rv != 0 && errno == EINTR);
  if (rv != 0 && errno != EINPROGRESS) {
    rv = pn_err(); /* refused at once (Unix sockets): the net layer fails the calls */
    close(fd);
    return rv;
  }
  *pfd = fd;
  return 0;
}

int pn_connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno ? errno : EIO;
  return err;
}

ssize_t pn_send(int fd, const uint8_t *data, size_t len) {
  ssize_t w;
  do {
    w = send(fd, data, len, MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1; /* EPIPE, ECONNRESET */
  return w;
}

ssize_t pn_sendv(int fd, const sgrpc_iov *iov, size_t n, size_t limit) {
  struct iovec v[PN_IOV_MAX];
  struct msghdr m;
  size_t i, total = 0;
  ssize_t w;
  if (n > PN_IOV_MAX) n = PN_IOV_MAX;
  for (i = 0; i < n; i++) {
    size_t len = iov[i].len;
    if (limit && len > limit - total) len = limit - total;
    v[i].iov_base = (void *)(uintptr_t)iov[i].base; /* sendmsg does not write */
    v[i].iov_len = len;
    total += len;
    if (limit && total == limit) {
      i++;
      break;
    }
  }
  memset(&m, 0, sizeof(m));
  m.msg_iov = v;
  m.msg_iovlen = i;
  do {
    w = sendmsg(fd, &m, MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  return w;
}

ssize_t pn_read(int fd, uint8_t *buf, size_t cap) {
  ssize_t n;
  do {
    n = read(fd, buf, cap);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : -2;
  return n;
}

int pn_shutdown_write(int fd) { return shutdown(fd, SHUT_WR) == 0 ? 0 : -1; }
