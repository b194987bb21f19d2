/*
 * POSIX socket code shared by the epoll and kqueue adapters (internal:
 * compiled into each, not installed). Everything here is plain BSD
 * sockets: name resolution, listeners, non-blocking connect, accept,
 * peer text, send/read with EINTR and EAGAIN folded in, errno mapping.
 * The net layer itself (core.c) makes no system call.
 */
#ifndef SGRPC_POSIX_NET_H
#define SGRPC_POSIX_NET_H

#include <sgrpc/net.h>

#include <sys/types.h>
#include <sys/socket.h>

/** SGRPC_ERR_SYSTEM(errno) of the last failed call (EIO when errno is 0). */
int pn_err(void);

/** CLOCK_MONOTONIC in ns. */
int64_t pn_now(void);

/** Resolves a listen address (blocking getaddrinfo for names, used by
 *  the listen calls only, never on a channel's path; numeric hosts need
 *  no lookup). Returns 0 or SGRPC_ERR_INVALID_ARGUMENT (unknown name, an
 *  address that does not fit, a Unix path too long). */
int pn_resolve(const sgrpc_net_target *t, int passive, struct sockaddr_storage *ss,
               socklen_t *len);

/** "ipv4:1.2.3.4:5", "ipv6:[::1]:5", or "unix:<unix_path>" for any other
 *  family (accepted Unix sockets have no useful peer name). */
void pn_format_peer(const struct sockaddr_storage *ss, const char *unix_path, char *out,
                    size_t cap);

/** Non-blocking, close-on-exec, and no SIGPIPE where the platform has
 *  SO_NOSIGPIPE. Returns 0 or -1 (errno set). */
int pn_socket_setup(int fd);

/** A listener opened by pn_listen. */
typedef struct pn_listener {
  int fd;
  int is_unix;
  int port;            /* bound TCP port, 0 for Unix sockets */
  char unix_path[108]; /* the socket file we made (unlink on close), or "" */
  char peer_path[108]; /* what the peers of its connections are called */
} pn_listener;

/**
 * Opens o's listener: binds o->listen (replacing a stale Unix socket
 * file; SO_REUSEADDR on TCP, SO_REUSEPORT on request) or adopts o->fd,
 * then listen() and non-blocking. Returns 0, SGRPC_ERR_INVALID_ARGUMENT
 * or SGRPC_ERR_SYSTEM(errno). On failure nothing is left open, except a
 * descriptor the user handed over, which stays theirs and open.
 */
int pn_listen(const sgrpc_net_listen_opts *o, pn_listener *l);

/** Closes a listener (and removes the socket file it made). */
void pn_listener_close(pn_listener *l);

/**
 * Accepts one connection, non-blocking, TCP_NODELAY on TCP, its peer text
 * in peer. Returns the descriptor, -1 when nothing more is pending now
 * (EAGAIN), -2 when this one failed but the next may work (EINTR,
 * ECONNABORTED, setup failure), -3 when accept failed otherwise, errno
 * kept (EMFILE and friends: see sgrpc_net_server_accept_failed).
 */
int pn_accept(const pn_listener *l, char *peer, size_t cap);

/** Starts a non-blocking connect to a resolved address (TCP_NODELAY on
 *  TCP). Returns 0 and the descriptor in *pfd (connected or in progress:
 *  writability tells), SGRPC_ERR_INVALID_ARGUMENT or
 *  SGRPC_ERR_SYSTEM(errno). */
int pn_connect(const sgrpc_net_address *a, int *pfd);

/** After writability of a connecting socket: 0 when connected, else the
 *  errno of the failure. */
int pn_connect_result(int fd);

/** send() without SIGPIPE: the count taken (0 when the socket is full), or
 *  -1 when the connection failed. */
ssize_t pn_send(int fd, const uint8_t *data, size_t len);

/** Gather form of pn_send (sendmsg): at most PN_IOV_MAX pieces and, when
 *  limit is not 0, at most limit bytes are offered. Same results. */
ssize_t pn_sendv(int fd, const sgrpc_iov *iov, size_t n, size_t limit);
/** The most pieces pn_sendv passes to the kernel in one call. */
#define PN_IOV_MAX 64

/** ops->shutdown_write of the socket adapters: shutdown(SHUT_WR), so that
 *  the peer reads EOF after everything sent. Returns 0 or -1. */
int pn_shutdown_write(int fd);

/** read(): the count (>0), 0 at EOF, -1 when nothing is there now, -2 on
 *  an error. */
ssize_t pn_read(int fd, uint8_t *buf, size_t cap);

#endif
