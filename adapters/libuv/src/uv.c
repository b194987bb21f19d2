/*
 * The libuv adapter: uv streams and timers feeding the net layer. No
 * gRPC or HTTP/2 logic lives here: readiness -> bytes -> net entry
 * points, and the net ops -> libuv requests.
 */
#define _GNU_SOURCE
#include <sgrpc/uv.h>
#include <sgrpc/net_adapter.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define UVA_READ_BUF (64 * 1024)
#define UVA_WRITE_BUF (64 * 1024)
/* Bytes in flight in uv_write before the net layer is told to wait. */
#define UVA_MAX_INFLIGHT (1024 * 1024)

struct sgrpc_uv {
  uv_loop_t *loop;
  sgrpc_net_loop *net;
  sgrpc_mem mem;
  uv_timer_t timer;
  uv_prepare_t prepare;
  uv_signal_t sig[2];
  int sig_started;
  int signals;
  int handles; /* our own handles still open; freed at 0 once deleting */
  int deleting;
  sgrpc_net_signal_cb on_signal;
  void *signal_ud;
  char rbuf[UVA_READ_BUF];
};

/* One transport: a TCP or pipe stream. Freed from its close callback. */
typedef struct uva_tx {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  sgrpc_uv *u;        /* NULL once closing: u may be gone by then */
  sgrpc_mem mem;      /* a copy: the transport may outlive u */
  sgrpc_net_conn *c;   /* NULL once the net layer closed the transport */
  size_t inflight;
  int handle_open;    /* uv_*_init done and not yet closed */
  int closing;
  int shut;           /* ops->shutdown_write: 1 pending, 2 done */
  uv_connect_t creq;
  uv_shutdown_t sreq;
} uva_tx;

typedef struct uva_write {
  uv_write_t req;
  uva_tx *tx;
  size_t len;
  uint8_t data[];
} uva_write;

typedef struct uva_listener {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  sgrpc_uv *u;
  sgrpc_mem mem; /* a copy: the close callback may run after sgrpc_uv_del */
  sgrpc_net_server *s;
  int is_pipe;
  char path[108]; /* unlinked when the listener closes */
} uva_listener;

int64_t sgrpc_uv_now(void) { return (int64_t)uv_hrtime(); }

static void *mem_calloc(const sgrpc_mem *m, size_t n) { return m->calloc(1, n, m->user_data); }
static void mem_free(const sgrpc_mem *m, void *p) { m->free(p, m->user_data); }

/* A libuv error as the library's system error code (libuv's own codes
 * outside errno's range, getaddrinfo's for one, become EIO). */
static int uva_err(int uverr) {
  int e = uverr < 0 ? -uverr : EIO;
  return SGRPC_ERR_SYSTEM(e >= 1 && e <= 399 ? e : EIO);
}

static uva_tx *tx_alloc(sgrpc_uv *u) {
  uva_tx *tx = mem_calloc(&u->mem, sizeof(*tx));
  if (!tx) return NULL;
  tx->mem = u->mem;
  tx->u = u;
  return tx;
}

/* ------------------------------------------------------------------ */
/* Transports                                                          */
/* ------------------------------------------------------------------ */

static void tx_maybe_free(uva_tx *tx) {
  if (!tx->handle_open) mem_free(&tx->mem, tx);
}

static void tx_close_cb(uv_handle_t *h) {
  uva_tx *tx = h->data;
  tx->handle_open = 0;
  tx_maybe_free(tx);
}

static void tx_close_handle(uva_tx *tx) {
  if (tx->handle_open && !uv_is_closing(&tx->h.handle)) uv_close(&tx->h.handle, tx_close_cb);
  else tx_maybe_free(tx);
}

static void tx_shutdown_cb(uv_shutdown_t *req, int status) {
  uva_tx *tx = req->data;
  (void)status;
  tx->shut = 2;
  /* The net layer's half-close: reading goes on until EOF; closed since
   * (op_close waited for this): now. */
  if (tx->closing) tx_close_handle(tx);
}

/* ops->shutdown_write: uv_shutdown flushes the writes in flight, then
 * shuts the write side; reading goes on. */
static int op_shutdown_write(void *p) {
  uva_tx *tx = p;
  if (tx->shut) return 0;
  if (!tx->handle_open || uv_is_closing(&tx->h.handle)) return -1;
  tx->sreq.data = tx;
  if (uv_shutdown(&tx->sreq, &tx->h.stream, tx_shutdown_cb) != 0) return -1;
  tx->shut = 1;
  return 0;
}

/* ops->close: the net layer is done with the transport. Output still in
 * flight (a GOAWAY, the last trailers) is flushed by uv_shutdown first;
 * uv_close alone would cancel it. */
static void op_close(void *p) {
  uva_tx *tx = p;
  tx->c = NULL;
  tx->u = NULL;
  if (tx->closing) return;
  tx->closing = 1;
  if (tx->handle_open && !uv_is_closing(&tx->h.handle)) {
    uv_read_stop(&tx->h.stream);
    if (tx->shut == 1) return; /* tx_shutdown_cb closes once output is out */
    if (tx->inflight > 0 && !tx->shut) {
      tx->sreq.data = tx;
      if (uv_shutdown(&tx->sreq, &tx->h.stream, tx_shutdown_cb) == 0) {
        tx->shut = 1;
        return;
      }
    }
  }
  tx_close_handle(tx);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  uva_tx *tx = h->data;
  size_t cap = UVA_READ_BUF, lim;
  (void)suggested;
  if (!tx->u) {
    /* Closing: libuv still asks once more; a zero buffer is "no read". */
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  lim = sgrpc_net_loop_io_limit(tx->u->net);
  if (lim && lim < cap) cap = lim;
  *buf = uv_buf_init(tx->u->rbuf, (unsigned)cap);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  uva_tx *tx = s->data;
  if (!tx->c) return;
  if (n > 0) sgrpc_net_conn_read(tx->c, (const uint8_t *)buf->base, (size_t)n, sgrpc_uv_now());
  else if (n < 0) sgrpc_net_conn_closed(tx->c, sgrpc_uv_now()); /* EOF or error */
}

static void write_cb(uv_write_t *req, int status) {
  uva_write *w = req->data;
  uva_tx *tx = w->tx;
  tx->inflight -= w->len;
  mem_free(&tx->mem, w);
  if (!tx->c) return;
  if (status < 0) sgrpc_net_conn_closed(tx->c, sgrpc_uv_now());
  else sgrpc_net_conn_writable(tx->c, sgrpc_uv_now());
}

/* ops->write_owned: one heap buffer per uv_write, filled by the net layer with
 * sgrpc_conn_out_copy, freed in write_cb. */
static sgrpc_ssize op_write_owned(void *p, sgrpc_ssize (*fill)(void *, uint8_t *, size_t), void *fctx) {
  uva_tx *tx = p;
  size_t cap = UVA_WRITE_BUF, lim = sgrpc_net_loop_io_limit(tx->u->net);
  uva_write *w;
  uv_buf_t buf;
  ssize_t n;
  if (lim) {
    if (tx->inflight > 0) return 0; /* one small write at a time */
    if (lim < cap) cap = lim;
  } else if (tx->inflight >= UVA_MAX_INFLIGHT) {
    return 0;
  }
  w = tx->mem.malloc(sizeof(*w) + cap, tx->mem.user_data);
  if (!w) return 0; /* retried when an in-flight write completes */
  n = fill(fctx, w->data, cap);
  if (n <= 0) {
    mem_free(&tx->mem, w);
    return n < 0 ? -1 : 0;
  }
  w->tx = tx;
  w->len = (size_t)n;
  w->req.data = w;
  buf = uv_buf_init((char *)w->data, (unsigned)n);
  if (uv_write(&w->req, &tx->h.stream, &buf, 1, write_cb) != 0) {
    mem_free(&tx->mem, w);
    return -1;
  }
  tx->inflight += (size_t)n;
  return n;
}

static void tx_start_reading(uva_tx *tx) {
  if (uv_read_start(&tx->h.stream, alloc_cb, read_cb) != 0 && tx->c)
    sgrpc_net_conn_closed(tx->c, sgrpc_uv_now());
}

/* ------------------------------------------------------------------ */
/* Client connections                                                  */
/* ------------------------------------------------------------------ */

static void connect_cb(uv_connect_t *req, int status) {
  uva_tx *tx = req->data;
  if (!tx->c) return; /* closed while connecting (UV_ECANCELED) */
  if (status < 0) {
    sgrpc_net_conn_closed(tx->c, sgrpc_uv_now());
    return;
  }
  if (tx->h.handle.type == UV_TCP) uv_tcp_nodelay(&tx->h.tcp, 1);
  sgrpc_net_conn_connected(tx->c, sgrpc_uv_now());
  if (tx->c) tx_start_reading(tx);
}

/* An abstract Unix socket (libuv before 1.46 cannot name one): a
 * non-blocking connect() answers at once for Unix sockets, and the
 * connected descriptor becomes the pipe. */
static int connect_abstract(sgrpc_uv *u, uva_tx *tx, sgrpc_net_conn *c,
                            const sgrpc_net_address *a) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rv;
  if (fd < 0) return SGRPC_ERR_SYSTEM(errno);
  do {
    rv = connect(fd, (const struct sockaddr *)&a->addr, a->len);
  } while (rv != 0 && errno == EINTR);
  if (rv != 0) {
    rv = SGRPC_ERR_SYSTEM(errno);
    close(fd);
    return rv;
  }
  if ((rv = uv_pipe_init(u->loop, &tx->h.pipe, 0)) != 0) {
    close(fd);
    return uva_err(rv);
  }
  tx->h.handle.data = tx;
  tx->handle_open = 1;
  if ((rv = uv_pipe_open(&tx->h.pipe, fd)) != 0) {
    close(fd);
    tx->c = NULL;
    tx_close_handle(tx);
    return uva_err(rv);
  }
  sgrpc_net_conn_set_transport(c, tx);
  sgrpc_net_conn_connected(c, sgrpc_uv_now());
  if (tx->c) tx_start_reading(tx);
  return 0;
}

/* ops->connect: to a resolved address (the net layer resolved it). */
static int op_connect(void *ud, sgrpc_net_conn *c, const sgrpc_net_address *a) {
  sgrpc_uv *u = ud;
  uva_tx *tx;
  int rv;
  if (!a || a->len == 0 || a->len > sizeof(a->addr)) return SGRPC_ERR_INVALID_ARGUMENT;
  tx = tx_alloc(u);
  if (!tx) return SGRPC_ERR_NOMEM;
  tx->c = c;
  tx->h.handle.data = tx;
  tx->creq.data = tx;
  if (a->addr.ss_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->addr;
    char path[sizeof(un->sun_path) + 1];
    if (un->sun_path[0] == '\0') {
      rv = connect_abstract(u, tx, c, a);
      if (rv != 0 && !tx->handle_open) mem_free(&u->mem, tx);
      return rv;
    }
    if ((rv = uv_pipe_init(u->loop, &tx->h.pipe, 0)) != 0) {
      mem_free(&u->mem, tx);
      return uva_err(rv);
    }
    tx->h.handle.data = tx;
    tx->handle_open = 1;
    sgrpc_net_conn_set_transport(c, tx);
    memcpy(path, un->sun_path, sizeof(un->sun_path));
    path[sizeof(un->sun_path)] = '\0';
    uv_pipe_connect(&tx->creq, &tx->h.pipe, path, connect_cb); /* errors come to the cb */
    return 0;
  }
  if ((rv = uv_tcp_init(u->loop, &tx->h.tcp)) != 0) {
    mem_free(&u->mem, tx);
    return uva_err(rv);
  }
  tx->h.handle.data = tx;
  tx->handle_open = 1;
  rv = uv_tcp_connect(&tx->creq, &tx->h.tcp, (const struct sockaddr *)&a->addr, connect_cb);
  if (rv != 0) {
    tx->c = NULL;
    tx_close_handle(tx);
    return uva_err(rv);
  }
  sgrpc_net_conn_set_transport(c, tx);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Watched descriptors (ops->fd_watch): one uv_poll each               */
/* ------------------------------------------------------------------ */

typedef struct uva_watch {
  uv_poll_t poll;
  sgrpc_mem mem;   /* a copy: the close callback may outlive the adapter */
  sgrpc_net_fd *f; /* NULL once stopped */
} uva_watch;

static void watch_cb(uv_poll_t *p, int status, int events) {
  uva_watch *w = p->data;
  int ev = ((events & UV_READABLE) ? SGRPC_NET_FD_READ : 0) |
           ((events & UV_WRITABLE) ? SGRPC_NET_FD_WRITE : 0);
  if (status < 0 || (events & UV_DISCONNECT)) ev = SGRPC_NET_FD_READ | SGRPC_NET_FD_WRITE;
  if (w->f) sgrpc_net_fd_ready(w->f, ev, sgrpc_uv_now());
}

static void watch_close_cb(uv_handle_t *h) {
  uva_watch *w = h->data;
  mem_free(&w->mem, w);
}

static int op_fd_watch(void *ud, sgrpc_net_fd *f, int fd, int events) {
  sgrpc_uv *u = ud;
  uva_watch *w = sgrpc_net_fd_handle(f);
  int uvev = ((events & SGRPC_NET_FD_READ) ? UV_READABLE : 0) |
             ((events & SGRPC_NET_FD_WRITE) ? UV_WRITABLE : 0);
  int rv;
  if (!events) {
    if (!w) return 0;
    /* the owner closes fd right after: stop polling it first */
    uv_poll_stop(&w->poll);
    w->f = NULL;
    sgrpc_net_fd_set_handle(f, NULL);
    uv_close((uv_handle_t *)&w->poll, watch_close_cb);
    return 0;
  }
  if (!w) {
    w = mem_calloc(&u->mem, sizeof(*w));
    if (!w) return SGRPC_ERR_NOMEM;
    w->mem = u->mem;
    if ((rv = uv_poll_init(u->loop, &w->poll, fd)) != 0) {
      mem_free(&u->mem, w);
      return uva_err(rv);
    }
    w->poll.data = w;
    w->f = f;
    sgrpc_net_fd_set_handle(f, w);
  }
  if ((rv = uv_poll_start(&w->poll, uvev, watch_cb)) != 0) return uva_err(rv);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Servers                                                             */
/* ------------------------------------------------------------------ */

static void format_peer(uva_tx *tx, int is_pipe, char *out, size_t cap) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char host[64];
  out[0] = '\0';
  if (is_pipe) {
    char path[108];
    size_t plen = sizeof(path);
    if (uv_pipe_getsockname(&tx->h.pipe, path, &plen) == 0 && plen < sizeof(path)) {
      path[plen] = '\0';
      snprintf(out, cap, "unix:%.100s", path);
    }
    return;
  }
  if (uv_tcp_getpeername(&tx->h.tcp, (struct sockaddr *)&ss, &len) != 0) return;
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, host, sizeof(host));
    snprintf(out, cap, "ipv6:[%s]:%d", host, ntohs(a->sin6_port));
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    uv_ip4_name(a, host, sizeof(host));
    snprintf(out, cap, "ipv4:%s:%d", host, ntohs(a->sin_port));
  }
}

static void connection_cb(uv_stream_t *server, int status) {
  uva_listener *l = server->data;
  uva_tx *tx;
  sgrpc_net_conn *c = NULL;
  char peer[128];
  int rv;
  if (!l->s) return;
  if (status < 0) {
    /* libuv already keeps a spare descriptor to shed the connection it
     * cannot take (no spin); the net layer counts the failure. */
    sgrpc_net_server_accept_failed(l->s, uva_err(status), sgrpc_uv_now());
    return;
  }
  tx = tx_alloc(l->u);
  if (!tx) return;
  rv = l->is_pipe ? uv_pipe_init(l->u->loop, &tx->h.pipe, 0) : uv_tcp_init(l->u->loop, &tx->h.tcp);
  if (rv != 0) {
    mem_free(&l->u->mem, tx);
    return;
  }
  tx->h.handle.data = tx;
  tx->handle_open = 1;
  if (uv_accept(server, &tx->h.stream) != 0) {
    tx_close_handle(tx);
    return;
  }
  if (!l->is_pipe) uv_tcp_nodelay(&tx->h.tcp, 1);
  format_peer(tx, l->is_pipe, peer, sizeof(peer));
  if (sgrpc_net_server_accept(l->s, tx, peer, sgrpc_uv_now(), &c) != 0) {
    tx->u = NULL;
    tx_close_handle(tx);
    return;
  }
  tx->c = c;
  tx_start_reading(tx);
}

static void listener_close_cb(uv_handle_t *h) {
  uva_listener *l = h->data;
  mem_free(&l->mem, l);
}

static void op_listener_close(void *ud, sgrpc_net_server *s, void *p) {
  uva_listener *l = p;
  (void)ud;
  (void)s;
  l->s = NULL;
  if (l->path[0]) unlink(l->path);
  uv_close(&l->h.handle, listener_close_cb);
}

/* The bound TCP port of a listener. */
static void listen_port(uva_listener *l, int *port) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len) == 0)
    *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int listen_bind(sgrpc_uv *u, uva_listener *l, const sgrpc_net_listen_opts *o, int *port) {
  sgrpc_net_target t;
  int rv;
  *port = 0;
  if (o->use_fd) {
    /* The handle gets a duplicate: closing the handle after a failure
     * must leave the user's descriptor open (sgrpc_uv_listen closes the
     * original once everything worked). */
    int fd = dup(o->fd);
    if (fd < 0) return -errno;
    l->is_pipe = o->fd_is_unix;
    if (l->is_pipe) {
      if ((rv = uv_pipe_init(u->loop, &l->h.pipe, 0)) == 0) {
        l->h.handle.data = l;
        rv = uv_pipe_open(&l->h.pipe, fd);
      }
    } else if ((rv = uv_tcp_init(u->loop, &l->h.tcp)) == 0) {
      l->h.handle.data = l;
      if ((rv = uv_tcp_open(&l->h.tcp, fd)) == 0) listen_port(l, port);
    }
    if (rv != 0) close(fd); /* not taken by the handle */
    return rv;
  }
  if (sgrpc_net_target_parse(o->listen, 1, &t) != 0) return UV_EINVAL;
  if (t.kind == SGRPC_NET_TARGET_UNIX) {
    struct stat st;
    l->is_pipe = 1;
    if ((rv = uv_pipe_init(u->loop, &l->h.pipe, 0)) != 0) return rv;
    l->h.handle.data = l;
    /* Replace a stale socket file, never any other kind of file. */
    if (lstat(t.path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(t.path);
    if ((rv = uv_pipe_bind(&l->h.pipe, t.path)) != 0) return rv;
    memcpy(l->path, t.path, sizeof(l->path));
    return 0;
  } else {
    struct addrinfo hints, *res = NULL;
    uv_getaddrinfo_t req;
    uv_os_fd_t fd;
    int one = 1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    /* A NULL callback makes uv_getaddrinfo synchronous. */
    rv = uv_getaddrinfo(u->loop, &req, NULL, t.host[0] ? t.host : NULL, t.port, &hints);
    if (rv != 0) return UV_EINVAL;
    res = req.addrinfo;
    rv = uv_tcp_init_ex(u->loop, &l->h.tcp, res->ai_family);
    if (rv == 0) {
      l->h.handle.data = l;
      if (o->reuseport && uv_fileno(&l->h.handle, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
      rv = uv_tcp_bind(&l->h.tcp, res->ai_addr, 0); /* libuv sets SO_REUSEADDR */
    }
    uv_freeaddrinfo(res);
    if (rv == 0) listen_port(l, port);
    return rv;
  }
}

int sgrpc_uv_listen(sgrpc_uv *u, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  uva_listener *l;
  sgrpc_net_server *s = NULL;
  int rv, port = 0;
  if (ps) *ps = NULL;
  if (!u || !o || !ps || (!o->use_fd && !o->listen) || !o->server.on_event)
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (!o->use_fd) {
    sgrpc_net_target t;
    if (sgrpc_net_target_parse(o->listen, 1, &t) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  }
  l = mem_calloc(&u->mem, sizeof(*l));
  if (!l) return SGRPC_ERR_NOMEM;
  l->u = u;
  l->mem = u->mem;
  l->h.handle.type = UV_UNKNOWN_HANDLE;
  rv = listen_bind(u, l, o, &port);
  if (rv == 0) {
    l->h.handle.data = l;
    rv = uv_listen(&l->h.stream, o->backlog > 0 ? o->backlog : 128, connection_cb);
  }
  if (rv != 0) {
    int saved = rv;
    if (l->h.handle.type != UV_UNKNOWN_HANDLE) {
      l->path[0] = '\0';
      uv_close(&l->h.handle, listener_close_cb);
    } else {
      mem_free(&u->mem, l);
    }
    return saved == UV_EINVAL && !o->use_fd ? SGRPC_ERR_INVALID_ARGUMENT : uva_err(saved);
  }
  rv = sgrpc_net_server_new(&s, u->net, &o->server);
  if (rv != 0) {
    if (l->path[0]) unlink(l->path);
    uv_close(&l->h.handle, listener_close_cb);
    return rv;
  }
  l->s = s;
  sgrpc_net_server_set_listener(s, l, port);
  if (o->use_fd) close(o->fd); /* the handle has its duplicate */
  *ps = s;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Timer, per-turn service, signals                                    */
/* ------------------------------------------------------------------ */

static void timer_cb(uv_timer_t *t) {
  sgrpc_uv *u = t->data;
  sgrpc_net_loop_timer(u->net, sgrpc_uv_now());
}

static void op_timer_arm(void *ud, int64_t when) {
  sgrpc_uv *u = ud;
  int64_t now, ms;
  if (u->deleting) return;
  if (when == SGRPC_NEVER) {
    uv_timer_stop(&u->timer);
    return;
  }
  now = sgrpc_uv_now();
  ms = when <= now ? 0 : (when - now + 999999) / 1000000; /* round up: never early */
  uv_timer_start(&u->timer, timer_cb, (uint64_t)ms, 0);
}

/* Runs before libuv blocks: writes whatever engine calls made outside
 * sgrpc callbacks (e.g. in the user's own timers) queued. */
static void prepare_cb(uv_prepare_t *p) {
  sgrpc_uv *u = p->data;
  sgrpc_net_loop_service(u->net, sgrpc_uv_now());
}

/* The net layer's policy; the user hears of each signal first. */
static void signal_cb(uv_signal_t *h, int signo) {
  sgrpc_uv *u = h->data;
  u->signals++;
  if (u->on_signal) u->on_signal(u->net, signo, u->signals, u->signal_ud);
  if (sgrpc_net_loop_signal(u->net, signo, sgrpc_uv_now()) >= 2) uv_stop(u->loop);
}

int sgrpc_uv_catch_signals(sgrpc_uv *u, sgrpc_net_signal_cb on_signal, void *ud) {
  int i, rv;
  static const int signos[2] = {SIGINT, SIGTERM};
  if (!u) return SGRPC_ERR_INVALID_ARGUMENT;
  u->on_signal = on_signal;
  u->signal_ud = ud;
  if (u->sig_started) return 0;
  for (i = 0; i < 2; i++) {
    if ((rv = uv_signal_start(&u->sig[i], signal_cb, signos[i])) != 0) return uva_err(rv);
    uv_unref((uv_handle_t *)&u->sig[i]);
  }
  u->sig_started = 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Life                                                                */
/* ------------------------------------------------------------------ */

/* libuv writes to sockets with write(2)/writev(2), which raise SIGPIPE
 * when the peer has reset the connection; its default action kills the
 * process (a client that hangs up during a graceful shutdown did exactly
 * that). Like gRPC C-core and Node, ignore it while it is at its default;
 * a handler the application installed is left alone. The write then
 * fails with EPIPE and the connection closes as for any transport error. */
static void ignore_default_sigpipe(void) {
  struct sigaction cur;
  if (sigaction(SIGPIPE, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL) {
    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    (void)sigaction(SIGPIPE, &ign, NULL);
  }
}

int sgrpc_uv_new(sgrpc_uv **pu, uv_loop_t *loop, const sgrpc_mem *mem) {
  sgrpc_net_ops ops;
  sgrpc_mem m;
  sgrpc_uv *u;
  int i, rv;
  if (pu) *pu = NULL;
  if (!pu || !loop) return SGRPC_ERR_INVALID_ARGUMENT;
  if (sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  u = mem_calloc(&m, sizeof(*u));
  if (!u) return SGRPC_ERR_NOMEM;
  ignore_default_sigpipe();
  u->mem = m;
  u->loop = loop;
  memset(&ops, 0, sizeof(ops));
  ops.connect = op_connect;
  ops.write_owned = op_write_owned;
  ops.close = op_close;
  ops.timer_arm = op_timer_arm;
  ops.listener_close = op_listener_close;
  ops.shutdown_write = op_shutdown_write;
  ops.fd_watch = op_fd_watch;
  rv = sgrpc_net_loop_new(&u->net, &ops, u, &m);
  if (rv != 0) {
    mem_free(&m, u);
    return rv;
  }
  uv_timer_init(loop, &u->timer);
  u->timer.data = u;
  uv_prepare_init(loop, &u->prepare);
  u->prepare.data = u;
  uv_prepare_start(&u->prepare, prepare_cb);
  uv_unref((uv_handle_t *)&u->prepare);
  for (i = 0; i < 2; i++) {
    uv_signal_init(loop, &u->sig[i]);
    u->sig[i].data = u;
    uv_unref((uv_handle_t *)&u->sig[i]);
  }
  u->handles = 4;
  *pu = u;
  return 0;
}

static void own_close_cb(uv_handle_t *h) {
  sgrpc_uv *u = h->data;
  if (--u->handles == 0) mem_free(&u->mem, u);
}

void sgrpc_uv_del(sgrpc_uv *u) {
  int i;
  if (!u) return;
  sgrpc_net_loop_del(u->net);
  u->net = NULL;
  u->deleting = 1;
  uv_close((uv_handle_t *)&u->timer, own_close_cb);
  uv_close((uv_handle_t *)&u->prepare, own_close_cb);
  for (i = 0; i < 2; i++) uv_close((uv_handle_t *)&u->sig[i], own_close_cb);
}

sgrpc_net_loop *sgrpc_uv_net(const sgrpc_uv *u) { return u ? u->net : NULL; }

int sgrpc_uv_channel_new(sgrpc_uv *u, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch) {
  if (pch) *pch = NULL;
  if (!u) return SGRPC_ERR_INVALID_ARGUMENT;
  return sgrpc_net_channel_new(pch, u->net, o);
}
