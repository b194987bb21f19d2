/*
 * Internal structures of the epoll adapter, shared by loop.c (loop,
 * timers, signals, connection IO), server.c, channel.c and addr.c.
 */
#ifndef SGRPC_EPOLL_INTERNAL_H
#define SGRPC_EPOLL_INTERNAL_H

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

struct sgrpc_epoll_conn {
  ep_handle h; /* first: epoll data points here */
  sgrpc_epoll_loop *loop;
  sgrpc_conn *engine;
  sgrpc_epoll_server *server;   /* accepted by this server, or NULL */
  sgrpc_epoll_channel *channel; /* opened by this channel, or NULL */
  uint32_t armed;               /* epoll events currently registered */
  uint8_t connecting;           /* non-blocking connect in progress */
  uint8_t closing;              /* close at the next service pass */
  uint8_t dead;                 /* closed; memory freed at end of turn */
  uint8_t goaway_seen;          /* client: the peer sent GOAWAY */
  uint8_t close_when_idle;      /* close once the engine holds no call */
  sgrpc_epoll_conn *prev, *next;
};

struct sgrpc_epoll_server {
  ep_handle h; /* the listener; fd -1 once closed */
  sgrpc_epoll_loop *loop;
  sgrpc_settings settings;
  int has_settings;
  sgrpc_epoll_event_cb on_event;
  void *user_data;
  int64_t drain_timeout_ns;
  char *unix_path; /* unlinked when the listener closes */
  int port;
  size_t nconns;
  int shutting_down;
  sgrpc_epoll_timer *drain_timer;
  sgrpc_epoll_server *prev, *next;
};

struct sgrpc_epoll_channel {
  sgrpc_epoll_loop *loop;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  char *authority;
  sgrpc_settings settings;
  int has_settings;
  sgrpc_epoll_event_cb on_conn_event;
  void *user_data;
  sgrpc_epoll_conn *cur; /* connection new calls go to, or NULL */
  size_t nconns;
  int closing;
  sgrpc_epoll_channel *prev, *next;
};

/* Per-call routing record of a client call (the engine call's user_data). */
typedef struct ep_call {
  sgrpc_epoll_call_cb cb;
  void *user_data;
} ep_call;

struct sgrpc_epoll_loop {
  int epfd;
  ep_handle timer_h; /* timerfd */
  ep_handle signal_h; /* signalfd, fd -1 when not catching */
  int64_t timer_armed; /* absolute expiry programmed, SGRPC_NEVER if none */
  uint64_t timer_seq;
  sgrpc_epoll_signal_cb on_signal;
  void *signal_user_data;
  int signal_count;
  int stop;
  int busy; /* a pass dispatched events: look again before blocking */
  sgrpc_epoll_conn *conns;
  sgrpc_epoll_conn *graveyard; /* closed connections freed at end of turn */
  sgrpc_epoll_server *servers;
  sgrpc_epoll_channel *channels;
  sgrpc_epoll_timer *timers;
  uint8_t *rbuf;
  size_t rbuf_cap;
};

/* loop.c */
sgrpc_epoll_conn *ep_conn_new(sgrpc_epoll_loop *loop, int fd, sgrpc_conn *engine,
                              int connecting);
void ep_conn_close(sgrpc_epoll_conn *c);
void ep_conn_set_events(sgrpc_epoll_conn *c, uint32_t events);
int ep_conn_service(sgrpc_epoll_conn *c);
void ep_loop_free_graveyard(sgrpc_epoll_loop *loop);

/* server.c */
void ep_server_accept(sgrpc_epoll_server *s);
void ep_server_conn_gone(sgrpc_epoll_server *s);

/* channel.c */
void ep_channel_conn_gone(sgrpc_epoll_channel *ch, sgrpc_epoll_conn *c);

/* addr.c: parses "host:port", "[v6]:port", ":port" or "unix:/path" into a
 * socket address. passive selects wildcard binding for an empty host.
 * *unix_path (when not NULL) gets a malloc'd copy of a Unix path. Returns
 * 0 or SGRPC_ERR_INVALID_ARGUMENT / SGRPC_ERR_NOMEM. */
int ep_parse_addr(const char *s, int passive, struct sockaddr_storage *ss,
                  socklen_t *len, char **unix_path);

#endif
