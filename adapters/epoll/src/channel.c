/*
 * Client side of the epoll adapter: the public channel API over the
 * core's channel (lazy connect, queued calls, backoff, GOAWAY handling),
 * and address resolution for the loop's connect.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

int ep_resolve(const sgrpc_ac_target *t, int passive, struct sockaddr_storage *ss,
               socklen_t *len) {
  struct addrinfo hints, *res = NULL;
  memset(ss, 0, sizeof(*ss));
  if (t->kind == SGRPC_AC_TARGET_UNIX) {
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    size_t plen = strlen(t->path);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, t->path, plen + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
    return 0;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  /* Name resolution blocks; numeric hosts (the common case for servers
   * and tests) resolve without any lookup. */
  if (getaddrinfo(t->host[0] ? t->host : NULL, t->port, &hints, &res) != 0 || !res) return -1;
  if (res->ai_addrlen > sizeof(*ss)) {
    freeaddrinfo(res);
    return -1;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static void channel_conn_event(sgrpc_ac_conn *c, const sgrpc_event *ev, void *ud) {
  sgrpc_epoll_channel *ch = ud;
  if (ch->on_conn_event) ch->on_conn_event((sgrpc_epoll_conn *)c, ev, ch->user_data);
}

int sgrpc_epoll_channel_new(sgrpc_epoll_channel **pch, sgrpc_epoll_loop *loop,
                            const sgrpc_epoll_channel_opts *opts) {
  sgrpc_epoll_channel *ch;
  sgrpc_ac_channel_opts co;
  sgrpc_ac_target t;
  int rv;
  if (!pch || !loop || !opts || !opts->target) return SGRPC_ERR_INVALID_ARGUMENT;
  *pch = NULL;
  if (sgrpc_ac_target_parse(opts->target, 0, &t) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  ch = calloc(1, sizeof(*ch));
  if (!ch) return SGRPC_ERR_NOMEM;
  ch->loop = loop;
  ch->on_conn_event = opts->on_conn_event;
  ch->user_data = opts->user_data;
  memset(&co, 0, sizeof(co));
  co.target = opts->target;
  co.authority = opts->authority;
  co.settings = opts->settings;
  co.on_conn_event = channel_conn_event;
  co.user_data = ch;
  co.make_filter = opts->make_filter;
  co.filter_user_data = opts->filter_user_data;
  co.wait_for_ready = opts->wait_for_ready;
  co.backoff = opts->backoff;
  rv = sgrpc_ac_channel_new(&ch->core, loop->hub, &co);
  if (rv != 0) {
    free(ch);
    return rv;
  }
  ch->next = loop->channels;
  if (loop->channels) loop->channels->prev = ch;
  loop->channels = ch;
  *pch = ch;
  return 0;
}

int sgrpc_epoll_channel_call(sgrpc_epoll_channel *ch, const sgrpc_call_opts *opts,
                             sgrpc_epoll_call_cb cb, sgrpc_call **pcall) {
  if (pcall) *pcall = NULL;
  if (!ch) return SGRPC_ERR_INVALID_ARGUMENT;
  return sgrpc_ac_channel_call(ch->core, opts, cb, pcall);
}

sgrpc_ac_channel *sgrpc_epoll_channel_core(const sgrpc_epoll_channel *ch) {
  return ch ? ch->core : NULL;
}

void sgrpc_epoll_channel_close(sgrpc_epoll_channel *ch) {
  if (ch) sgrpc_ac_channel_close(ch->core);
}

void sgrpc_epoll_channel_del(sgrpc_epoll_channel *ch) {
  sgrpc_epoll_loop *loop;
  if (!ch) return;
  loop = ch->loop;
  sgrpc_ac_channel_del(ch->core);
  if (ch->prev) ch->prev->next = ch->next;
  else loop->channels = ch->next;
  if (ch->next) ch->next->prev = ch->prev;
  ep_tx_free_dead(loop);
  free(ch);
}
