/*
 * Client side of the epoll adapter: a channel opens connections on
 * demand (non-blocking connect) and starts calls on them. Calls started
 * while the socket connects are held by the engine, which produces their
 * bytes once the adapter starts writing.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sgrpc_epoll_channel_new(sgrpc_epoll_channel **pch, sgrpc_epoll_loop *loop,
                            const sgrpc_epoll_channel_opts *opts) {
  sgrpc_epoll_channel *ch;
  const char *auth;
  int rv;
  if (!pch || !loop || !opts || !opts->target) return SGRPC_ERR_INVALID_ARGUMENT;
  *pch = NULL;
  ch = calloc(1, sizeof(*ch));
  if (!ch) return SGRPC_ERR_NOMEM;
  ch->loop = loop;
  rv = ep_parse_addr(opts->target, 0, &ch->addr, &ch->addr_len, NULL);
  if (rv != 0) {
    free(ch);
    return rv;
  }
  if (opts->authority) auth = opts->authority;
  else if (ch->addr.ss_family == AF_UNIX) auth = "localhost";
  else auth = opts->target;
  ch->authority = strdup(auth);
  if (!ch->authority) {
    free(ch);
    return SGRPC_ERR_NOMEM;
  }
  if (opts->settings) {
    ch->settings = *opts->settings;
    ch->has_settings = 1;
  }
  ch->on_conn_event = opts->on_conn_event;
  ch->user_data = opts->user_data;
  ch->next = loop->channels;
  if (loop->channels) loop->channels->prev = ch;
  loop->channels = ch;
  *pch = ch;
  return 0;
}

/* Opens a connection. A connect that fails at once still yields a
 * connection, marked to close: the calls started on it then end
 * UNAVAILABLE through their callbacks on the next turn, like calls on a
 * connect that fails later. */
static sgrpc_epoll_conn *channel_connect(sgrpc_epoll_channel *ch) {
  sgrpc_conn *engine = NULL;
  sgrpc_epoll_conn *c;
  int fd, rv, connecting = 1, failed = 0;
  fd = socket(ch->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return NULL;
  if (ch->addr.ss_family != AF_UNIX) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  do {
    rv = connect(fd, (struct sockaddr *)&ch->addr, ch->addr_len);
  } while (rv != 0 && errno == EINTR);
  if (rv == 0) connecting = 0;
  else if (errno != EINPROGRESS) failed = 1;
  if (sgrpc_conn_client_new(&engine, ch->has_settings ? &ch->settings : NULL, NULL,
                            sgrpc_epoll_now()) != 0) {
    close(fd);
    return NULL;
  }
  c = ep_conn_new(ch->loop, fd, engine, connecting);
  if (!c) {
    sgrpc_conn_del(engine);
    close(fd);
    return NULL;
  }
  c->channel = ch;
  c->closing = (uint8_t)failed;
  ch->nconns++;
  return c;
}

int sgrpc_epoll_channel_call(sgrpc_epoll_channel *ch, const sgrpc_call_opts *opts,
                             sgrpc_epoll_call_cb cb, sgrpc_call **pcall) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  ep_call *rec;
  int rv, attempt;
  if (pcall) *pcall = NULL;
  if (!ch || !opts || !cb) return SGRPC_ERR_INVALID_ARGUMENT;
  if (ch->closing) return SGRPC_ERR_GOING_AWAY;
  rec = calloc(1, sizeof(*rec));
  if (!rec) return SGRPC_ERR_NOMEM;
  rec->cb = cb;
  rec->user_data = opts->user_data;
  o = *opts;
  o.user_data = rec;
  if (!o.authority || !*o.authority) o.authority = ch->authority;
  for (attempt = 0; attempt < 2; attempt++) {
    if (!ch->cur || ch->cur->closing || ch->cur->dead || ch->cur->goaway_seen) {
      ch->cur = channel_connect(ch);
      if (!ch->cur) {
        free(rec);
        return SGRPC_ERR_NOMEM;
      }
    }
    rv = sgrpc_call_start(ch->cur->engine, &o, sgrpc_epoll_now(), &call);
    if (rv == 0) {
      if (pcall) *pcall = call;
      return 0;
    }
    /* The connection stopped taking calls: one retry on a new one. */
    if (rv != SGRPC_ERR_GOING_AWAY && !sgrpc_is_fatal(rv)) break;
    ch->cur = NULL;
  }
  free(rec);
  return rv;
}

void ep_channel_conn_gone(sgrpc_epoll_channel *ch, sgrpc_epoll_conn *c) {
  if (ch->nconns) ch->nconns--;
  if (ch->cur == c) ch->cur = NULL;
}

void sgrpc_epoll_channel_close(sgrpc_epoll_channel *ch) {
  sgrpc_epoll_conn *c;
  if (!ch || ch->closing) return;
  ch->closing = 1;
  ch->cur = NULL;
  /* No GOAWAY from the client: it would stop request HEADERS the engine
   * has queued but not yet written. Each connection closes once idle. */
  for (c = ch->loop->conns; c; c = c->next)
    if (c->channel == ch) c->close_when_idle = 1;
}

void sgrpc_epoll_channel_del(sgrpc_epoll_channel *ch) {
  sgrpc_epoll_loop *loop;
  sgrpc_epoll_conn *c, *next;
  if (!ch) return;
  loop = ch->loop;
  for (c = loop->conns; c; c = next) {
    next = c->next;
    if (c->channel == ch) ep_conn_close(c);
  }
  if (ch->prev) ch->prev->next = ch->next;
  else loop->channels = ch->next;
  if (ch->next) ch->next->prev = ch->prev;
  ep_loop_free_graveyard(loop);
  free(ch->authority);
  free(ch);
}
