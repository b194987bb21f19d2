/*
 * The built-in DNS resolver (dns: targets) on c-ares, driven by the loop:
 * c-ares's sockets are watched through ops->fd_watch (epoll/kqueue: the
 * loop's own descriptor; libuv: uv_poll) and its timeouts through the
 * net layer's timer, so a lookup never blocks the loop. One c-ares
 * channel per sgrpc channel (each may ask its own DNS server).
 *
 * c-ares allocates through its own (process-wide) allocator; the results
 * are copied into the loop's allocator before they reach the channel.
 */
#define _DEFAULT_SOURCE
#include "net_internal.h"

#include <ares.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

/* How long c-ares waits for one server answer, and how often it asks. */
#define DNS_TIMEOUT_MS 2000
#define DNS_TRIES 2

struct sg_dns {
  sgrpc_net_loop *loop;
  ares_channel ac;
  int ready; /* ac initialised */
  char server[72];
  sgrpc_net_fd *fds;
  int64_t next; /* c-ares's next timeout, SGRPC_NEVER when idle */
  sgrpc_net_resolve *req; /* the lookup in progress */
  int cancelling;
  char host[256];
};

/* ------------------------------------------------------------------ */
/* Watched descriptors                                                 */
/* ------------------------------------------------------------------ */

static void dns_sock_state(void *data, ares_socket_t s, int readable, int writable) {
  sg_dns *d = data;
  sgrpc_net_loop *l = d->loop;
  sgrpc_net_fd **pf, *f;
  int events = (readable ? SGRPC_NET_FD_READ : 0) | (writable ? SGRPC_NET_FD_WRITE : 0);
  for (pf = &d->fds; *pf; pf = &(*pf)->next)
    if ((*pf)->fd == s) break;
  f = *pf;
  if (!l->ops.fd_watch) return; /* c-ares then waits for its timeout */
  if (!f) {
    if (!events) return;
    f = sg_net_calloc(l, sizeof(*f));
    /* Out of memory: the socket is not watched and the query ends by its
     * timeout, as a lost answer would. */
    if (!f) return;
    f->loop = l;
    f->dns = d;
    f->fd = s;
    if (l->ops.fd_watch(l->ud, f, s, events) != 0) {
      sg_net_free(l, f);
      return;
    }
    f->events = events;
    f->next = d->fds;
    d->fds = f;
    return;
  }
  if (events) {
    if (events != f->events && l->ops.fd_watch(l->ud, f, s, events) == 0) f->events = events;
    return;
  }
  l->ops.fd_watch(l->ud, f, s, 0);
  *pf = f->next;
  sg_net_free(l, f);
}

static void dns_update_timeout(sg_dns *d, int64_t now) {
  struct timeval tv, *tp;
  if (!d->ready || !d->req) {
    d->next = SGRPC_NEVER;
    return;
  }
  tp = ares_timeout(d->ac, NULL, &tv);
  d->next = tp ? now + (int64_t)tp->tv_sec * 1000000000LL + (int64_t)tp->tv_usec * 1000 : SGRPC_NEVER;
}

void sgrpc_net_fd_ready(sgrpc_net_fd *f, int events, int64_t now) {
  sg_dns *d;
  sgrpc_net_loop *l;
  ares_socket_t s;
  if (!f) return;
  d = f->dns;
  l = f->loop;
  s = f->fd;
  sg_loop_enter(l, now);
  /* the resolver's timeout moves: the channel's expiry with it */
  if (d->req) sg_channel_touch(d->req->ch);
  /* f may be freed by this (c-ares closes the socket): not used after. */
  ares_process_fd(d->ac, (events & SGRPC_NET_FD_READ) ? s : ARES_SOCKET_BAD,
                  (events & SGRPC_NET_FD_WRITE) ? s : ARES_SOCKET_BAD);
  dns_update_timeout(d, now);
  sg_loop_leave(l, now);
}

void sgrpc_net_fd_set_handle(sgrpc_net_fd *f, void *handle) {
  if (f) f->handle = handle;
}
void *sgrpc_net_fd_handle(const sgrpc_net_fd *f) { return f ? f->handle : NULL; }

/* ------------------------------------------------------------------ */
/* Lookups                                                             */
/* ------------------------------------------------------------------ */

static void dns_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res) {
  sg_dns *d = arg;
  sgrpc_net_resolve *r = d->req;
  sgrpc_net_loop *l = d->loop;
  struct ares_addrinfo_node *n;
  sgrpc_net_address *addrs = NULL;
  size_t count = 0, i = 0;
  char err[200];
  (void)timeouts;
  if (d->cancelling || !r) {
    if (res) ares_freeaddrinfo(res);
    return;
  }
  d->req = NULL;
  if (status != ARES_SUCCESS) {
    snprintf(err, sizeof(err), "DNS resolution of \"%.120s\" failed: %s", d->host,
             ares_strerror(status));
    if (res) ares_freeaddrinfo(res);
    sgrpc_net_resolve_done(r, NULL, 0, err, l->now);
    return;
  }
  for (n = res ? res->nodes : NULL; n; n = n->ai_next)
    if ((n->ai_family == AF_INET || n->ai_family == AF_INET6) &&
        (size_t)n->ai_addrlen <= sizeof(struct sockaddr_storage))
      count++;
  if (count) addrs = sg_net_calloc(l, count * sizeof(*addrs));
  if (count && !addrs) {
    ares_freeaddrinfo(res);
    sgrpc_net_resolve_done(r, NULL, 0, "DNS resolution: out of memory", l->now);
    return;
  }
  for (n = res ? res->nodes : NULL; n; n = n->ai_next)
    if ((n->ai_family == AF_INET || n->ai_family == AF_INET6) &&
        (size_t)n->ai_addrlen <= sizeof(struct sockaddr_storage)) {
      memcpy(&addrs[i].addr, n->ai_addr, (size_t)n->ai_addrlen);
      addrs[i].len = (socklen_t)n->ai_addrlen;
      i++;
    }
  if (res) ares_freeaddrinfo(res);
  if (count == 0) {
    snprintf(err, sizeof(err), "DNS resolution of \"%.120s\": no addresses", d->host);
    sgrpc_net_resolve_done(r, NULL, 0, err, l->now);
    return;
  }
  sgrpc_net_resolve_done(r, addrs, count, NULL, l->now);
  sg_net_free(l, addrs);
}

static int dns_init(sg_dns *d) {
  struct ares_options o;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  memset(&o, 0, sizeof(o));
  o.sock_state_cb = dns_sock_state;
  o.sock_state_cb_data = d;
  o.timeout = DNS_TIMEOUT_MS;
  o.tries = DNS_TRIES;
  if (d->server[0]) {
    /* a server given for tests: ask it only, not /etc/hosts first */
    o.lookups = (char *)"b";
    mask |= ARES_OPT_LOOKUPS;
  }
  if (ares_init_options(&d->ac, &o, mask) != ARES_SUCCESS) return SGRPC_ERR_NOMEM;
  d->ready = 1;
  if (d->server[0] && ares_set_servers_ports_csv(d->ac, d->server) != ARES_SUCCESS)
    return SGRPC_ERR_INVALID_ARGUMENT;
  return 0;
}

/* The dns: part of a target: "[dns:][//server/]host[:port]". */
static void split_target(const char *target, char *host, size_t hcap, char *port, size_t pcap) {
  const char *s = target, *colon;
  size_t n;
  if (strncmp(s, "dns:", 4) == 0) {
    s += 4;
    if (strncmp(s, "//", 2) == 0) {
      const char *slash = strchr(s + 2, '/');
      s = slash ? slash + 1 : s + 2;
    }
  }
  colon = strrchr(s, ':');
  n = colon ? (size_t)(colon - s) : strlen(s);
  snprintf(host, hcap, "%.*s", (int)n, s);
  snprintf(port, pcap, "%s", colon ? colon + 1 : "443");
}

static int dns_start(void *ud, sgrpc_net_loop *loop, const char *target, sgrpc_net_resolve *r,
                     void **pctx) {
  sg_dns *d = ud;
  struct ares_addrinfo_hints hints;
  char port[8];
  int rv;
  (void)loop;
  if (d->req) return SGRPC_ERR_INVALID_STATE;
  if (!d->ready && (rv = dns_init(d)) != 0) return rv;
  split_target(target, d->host, sizeof(d->host), port, sizeof(port));
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = ARES_AI_NUMERICSERV;
  d->req = r;
  *pctx = d;
  /* may answer at once (a name from /etc/hosts) */
  ares_getaddrinfo(d->ac, d->host, port, &hints, dns_answer, d);
  dns_update_timeout(d, d->loop->now);
  return 0;
}

static void dns_cancel(void *ud, void *ctx) {
  sg_dns *d = ud;
  (void)ctx;
  if (!d->req) return;
  d->req = NULL;
  d->cancelling = 1;
  ares_cancel(d->ac);
  d->cancelling = 0;
  d->next = SGRPC_NEVER;
}

int sg_dns_resolver(sgrpc_net_loop *l, const char *server, sgrpc_net_resolver *out,
                    sg_dns **pdns) {
  sg_dns *d = sg_net_calloc(l, sizeof(*d));
  if (!d) return SGRPC_ERR_NOMEM;
  d->loop = l;
  d->next = SGRPC_NEVER;
  if (server) snprintf(d->server, sizeof(d->server), "%s", server);
  out->start = dns_start;
  out->cancel = dns_cancel;
  out->user_data = d;
  *pdns = d;
  return 0;
}

void sg_dns_del(sg_dns *d) {
  if (!d) return;
  if (d->ready) {
    d->cancelling = 1;
    d->req = NULL;
    ares_destroy(d->ac); /* closes its sockets: the watches stop first */
  }
  while (d->fds) {
    sgrpc_net_fd *f = d->fds;
    d->fds = f->next;
    if (d->loop->ops.fd_watch) d->loop->ops.fd_watch(d->loop->ud, f, f->fd, 0);
    sg_net_free(d->loop, f);
  }
  sg_net_free(d->loop, d);
}

int64_t sg_dns_next_expiry(const sg_dns *d) { return d && d->req ? d->next : SGRPC_NEVER; }

void sg_dns_timer(sg_dns *d, int64_t now) {
  if (!d || !d->req || d->next > now) return;
  ares_process_fd(d->ac, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  dns_update_timeout(d, now);
}

int sg_dns_busy(const sg_dns *d) { return d && d->req; }
