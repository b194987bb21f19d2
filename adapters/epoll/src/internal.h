/*
 * Internal structures of the epoll adapter. The adapter is the epoll glue
 * of the adapter core (<sgrpc/adapter.h>): loop.c owns the epoll set, the
 * timerfd, the signalfd and the socket transports; server.c and
 * channel.c wrap the core's servers and channels in the public API of
 * <sgrpc/epoll.h>. A sgrpc_epoll_conn is the core's sgrpc_ac_conn.
 */
#ifndef SGRPC_EPOLL_INTERNAL_H
#define SGRPC_EPOLL_INTERNAL_H

#include <sgrpc/adapter.h>
#include <sgrpc/epoll.h>

#include <sys/socket.h>

/* What an epoll registration points at: every registered object starts
 * with an ep_handle so the loop can tell them apart. */
enum { EP_TIMERFD = 1, EP_SIGNALFD, EP_LISTENER, EP_CONN };

typedef struct ep_handle {
  int kind;
  int fd;
} ep_handle;

struct sgrpc_epoll_timer {
  sgrpc_epoll_loop *loop;
  int64_t when;
  uint64_t seq; /* creation order: a pass fires only timers older than it */
  sgrpc_epoll_timer_cb cb;
  void *user_data;
  sgrpc_epoll_timer *prev, *next;
};

/* One socket transport of the core (its `tx`). */
typedef struct ep_tx {
  ep_handle h; /* first: epoll data points here */
  sgrpc_epoll_loop *loop;
  sgrpc_ac_conn *c;   /* NULL once the core closed it */
  uint32_t armed;     /* epoll events currently registered */
  int connecting;
  struct ep_tx *next_dead;
} ep_tx;

struct sgrpc_epoll_server {
  ep_handle h; /* the listener; fd -1 once closed */
  sgrpc_epoll_loop *loop;
  sgrpc_ac_server *core;
  sgrpc_epoll_event_cb on_event;
  void *user_data;
  char *unix_path; /* unlinked when the listener closes */
  char peer_path[108]; /* Unix socket path shown as the peer of its conns */
  int is_unix;
  /* bare: made by sgrpc_epoll_listen, only the core server's listener
   * (not on loop->servers); freed at the end of the turn it closed in. */
  int bare, dead;
  sgrpc_epoll_server *prev, *next;
};

struct sgrpc_epoll_channel {
  sgrpc_epoll_loop *loop;
  sgrpc_ac_channel *core;
  sgrpc_epoll_event_cb on_conn_event;
  void *user_data;
  sgrpc_epoll_channel *prev, *next;
};

struct sgrpc_epoll_loop {
  int epfd;
  sgrpc_ac_hub *hub;
  int64_t hub_when;  /* what the core asked for */
  ep_handle timer_h; /* timerfd */
  ep_handle signal_h; /* signalfd, fd -1 when not catching */
  int64_t timer_armed; /* absolute expiry programmed, SGRPC_NEVER if none */
  uint64_t timer_seq;
  sgrpc_epoll_signal_cb on_signal;
  void *signal_user_data;
  int signal_count;
  int stop;
  ep_tx *dead; /* closed transports, freed at the end of the turn */
  sgrpc_epoll_server *dead_servers; /* closed bare listeners, likewise */
  sgrpc_epoll_server *servers;
  sgrpc_epoll_channel *channels;
  sgrpc_epoll_timer *timers;
  uint8_t *rbuf;
  size_t rbuf_cap;
};

/* loop.c */
ep_tx *ep_tx_new(sgrpc_epoll_loop *loop, int fd, int connecting);
void ep_tx_free_dead(sgrpc_epoll_loop *loop);

/* server.c */
void ep_server_accept(sgrpc_epoll_server *s);
void ep_listener_close(void *hub_ud, sgrpc_ac_server *core, void *listener);

/* channel.c: resolves a parsed target (blocking for names). */
int ep_resolve(const sgrpc_ac_target *t, int passive, struct sockaddr_storage *ss,
               socklen_t *len);

#endif
