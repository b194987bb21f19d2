/*
 * Targets and addresses: the listen-side "host:port" parser, gRPC's
 * channel target names (doc/naming.md) and numeric socket addresses. No
 * name lookup and no system call happens here: inet_pton and friends
 * only read text.
 */
#define _DEFAULT_SOURCE
#include "net_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define SG_DEFAULT_PORT 443
/* Addresses in one ipv4:/ipv6: target. */
#define SG_MAX_STATIC_ADDRS 64

/* ------------------------------------------------------------------ */
/* Listen side (and the parsed view of a channel's target)             */
/* ------------------------------------------------------------------ */

int sgrpc_net_target_parse(const char *s, int passive, sgrpc_net_target *t) {
  const char *colon, *port;
  size_t hlen, plen;
  if (!s || !t) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(t, 0, sizeof(*t));
  if (strncmp(s, "unix:", 5) == 0) {
    plen = strlen(s + 5);
    if (plen == 0 || plen >= sizeof(t->path)) return SGRPC_ERR_INVALID_ARGUMENT;
    t->kind = SGRPC_NET_TARGET_UNIX;
    memcpy(t->path, s + 5, plen + 1);
    return 0;
  }
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':') return SGRPC_ERR_INVALID_ARGUMENT;
    hlen = (size_t)(end - s - 1);
    if (hlen == 0 || hlen >= sizeof(t->host) || memchr(s + 1, '[', hlen))
      return SGRPC_ERR_INVALID_ARGUMENT;
    memcpy(t->host, s + 1, hlen);
    colon = end + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return SGRPC_ERR_INVALID_ARGUMENT;
    hlen = (size_t)(colon - s);
    /* A bare IPv6 literal needs brackets. */
    if (hlen >= sizeof(t->host) || memchr(s, ':', hlen)) return SGRPC_ERR_INVALID_ARGUMENT;
    memcpy(t->host, s, hlen);
  }
  t->host[hlen] = '\0';
  port = colon + 1;
  plen = strlen(port);
  if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen)
    return SGRPC_ERR_INVALID_ARGUMENT;
  t->port_num = atoi(port);
  if (t->port_num > 65535) return SGRPC_ERR_INVALID_ARGUMENT;
  if (hlen == 0 && !passive) return SGRPC_ERR_INVALID_ARGUMENT;
  memcpy(t->port, port, plen + 1);
  t->kind = SGRPC_NET_TARGET_TCP;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Addresses                                                           */
/* ------------------------------------------------------------------ */

/* A port for a channel: 1..65535, digits only. Returns it or -1. */
static int port_value(const char *p, size_t n) {
  int v = 0;
  size_t i;
  if (n == 0 || n > 5) return -1;
  for (i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v >= 1 && v <= 65535 ? v : -1;
}

static int addr_v4(const char *host, size_t hlen, int port, sgrpc_net_address *a) {
  struct sockaddr_in *in = (struct sockaddr_in *)&a->addr;
  char buf[INET_ADDRSTRLEN + 1];
  if (hlen == 0 || hlen >= sizeof(buf)) return SGRPC_ERR_INVALID_ARGUMENT;
  memcpy(buf, host, hlen);
  buf[hlen] = '\0';
  memset(a, 0, sizeof(*a));
  if (inet_pton(AF_INET, buf, &in->sin_addr) != 1) return SGRPC_ERR_INVALID_ARGUMENT;
  in->sin_family = AF_INET;
  in->sin_port = htons((uint16_t)port);
  a->len = sizeof(*in);
  return 0;
}

static int addr_v6(const char *host, size_t hlen, int port, sgrpc_net_address *a) {
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->addr;
  char buf[INET6_ADDRSTRLEN + 1];
  if (hlen == 0 || hlen >= sizeof(buf)) return SGRPC_ERR_INVALID_ARGUMENT;
  memcpy(buf, host, hlen);
  buf[hlen] = '\0';
  memset(a, 0, sizeof(*a));
  if (inet_pton(AF_INET6, buf, &in6->sin6_addr) != 1) return SGRPC_ERR_INVALID_ARGUMENT;
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons((uint16_t)port);
  a->len = sizeof(*in6);
  return 0;
}

static int addr_unix(const char *path, size_t n, int abstract, sgrpc_net_address *a) {
  struct sockaddr_un *un = (struct sockaddr_un *)&a->addr;
  size_t off = abstract ? 1 : 0;
  memset(a, 0, sizeof(*a));
  if ((!abstract && n == 0) || n + off >= sizeof(un->sun_path)) return SGRPC_ERR_INVALID_ARGUMENT;
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path + off, path, n);
  /* An abstract name is exactly its bytes: the length says where it ends. */
  a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + off + n + (abstract ? 0 : 1));
  return 0;
}

/* "a.b.c.d[:port]" (v4only), "[v6]:port", "[v6]" or a bare v6 literal. */
static int addr_ip(const char *s, size_t n, int default_port, int family, sgrpc_net_address *a) {
  const char *colon;
  int port = default_port;
  if (n > 0 && s[0] == '[') {
    const char *end = memchr(s, ']', n);
    if (!end || family == AF_INET) return SGRPC_ERR_INVALID_ARGUMENT;
    if ((size_t)(end - s) + 1 < n) {
      if (end[1] != ':') return SGRPC_ERR_INVALID_ARGUMENT;
      port = port_value(end + 2, n - (size_t)(end - s) - 2);
      if (port < 0) return SGRPC_ERR_INVALID_ARGUMENT;
    }
    return addr_v6(s + 1, (size_t)(end - s - 1), port, a);
  }
  colon = memchr(s, ':', n);
  if (colon && memchr(colon + 1, ':', n - (size_t)(colon - s) - 1)) {
    /* two colons: a bare IPv6 literal without a port */
    if (family == AF_INET) return SGRPC_ERR_INVALID_ARGUMENT;
    return addr_v6(s, n, port, a);
  }
  if (family == AF_INET6) return SGRPC_ERR_INVALID_ARGUMENT;
  if (colon) {
    port = port_value(colon + 1, n - (size_t)(colon - s) - 1);
    if (port < 0) return SGRPC_ERR_INVALID_ARGUMENT;
    n = (size_t)(colon - s);
  }
  return addr_v4(s, n, port, a);
}

int sgrpc_net_address_parse(const char *text, int default_port, sgrpc_net_address *out) {
  if (!text || !out || default_port < 0 || default_port > 65535) return SGRPC_ERR_INVALID_ARGUMENT;
  if (strncmp(text, "unix:", 5) == 0) return addr_unix(text + 5, strlen(text + 5), 0, out);
  if (strncmp(text, "unix-abstract:", 14) == 0)
    return addr_unix(text + 14, strlen(text + 14), 1, out);
  return addr_ip(text, strlen(text), default_port, AF_UNSPEC, out);
}

int sgrpc_net_address_format(const sgrpc_net_address *a, char *out, size_t cap) {
  char ip[INET6_ADDRSTRLEN];
  if (!out || cap == 0) return SGRPC_ERR_INVALID_ARGUMENT;
  out[0] = '\0';
  if (!a) return SGRPC_ERR_INVALID_ARGUMENT;
  switch (a->addr.ss_family) {
  case AF_INET: {
    const struct sockaddr_in *in = (const struct sockaddr_in *)&a->addr;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    snprintf(out, cap, "ipv4:%s:%u", ip, (unsigned)ntohs(in->sin_port));
    return 0;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->addr;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    snprintf(out, cap, "ipv6:[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    return 0;
  }
  case AF_UNIX: {
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->addr;
    size_t base = offsetof(struct sockaddr_un, sun_path);
    if (a->len > base && un->sun_path[0] == '\0')
      snprintf(out, cap, "unix-abstract:%.*s", (int)(a->len - base - 1), un->sun_path + 1);
    else
      snprintf(out, cap, "unix:%.*s", (int)sizeof(un->sun_path), un->sun_path);
    return 0;
  }
  default:
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
}

/* ------------------------------------------------------------------ */
/* Channel targets                                                     */
/* ------------------------------------------------------------------ */

static int add_addr(sgrpc_net_loop *l, sg_target *t, const sgrpc_net_address *a) {
  if (!t->addrs) {
    t->addrs = sg_net_calloc(l, SG_MAX_STATIC_ADDRS * sizeof(*t->addrs));
    if (!t->addrs) return SGRPC_ERR_NOMEM;
  }
  if (t->naddrs == SG_MAX_STATIC_ADDRS) return SGRPC_ERR_INVALID_ARGUMENT;
  t->addrs[t->naddrs++] = *a;
  return 0;
}

/* "ipv4:" / "ipv6:" lists: comma-separated, none empty. */
static int parse_list(sgrpc_net_loop *l, const char *s, int family, sg_target *t) {
  if (!*s) return SGRPC_ERR_INVALID_ARGUMENT;
  for (;;) {
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    sgrpc_net_address a;
    int rv = addr_ip(s, n, SG_DEFAULT_PORT, family, &a);
    if (rv == 0) rv = add_addr(l, t, &a);
    if (rv != 0) return rv;
    if (!comma) return 0;
    s = comma + 1;
  }
}

/* A DNS name: letters, digits, '-', '_' and dots between labels of 1..63. */
static int valid_name(const char *h, size_t n) {
  size_t i, label = 0;
  if (n == 0 || n > 253) return 0;
  for (i = 0; i < n; i++) {
    char ch = h[i];
    if (ch == '.') {
      if (label == 0) return 0;
      label = 0;
      continue;
    }
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '_'))
      return 0;
    if (++label > 63) return 0;
  }
  return 1;
}

/* "host[:port]" of a dns: target (host may be a bracketed IPv6 literal or
 * an IPv4 literal: those need no resolver). */
static int parse_dns(sgrpc_net_loop *l, const char *s, sg_target *t) {
  const char *colon, *hs = s;
  size_t hn;
  int port = SG_DEFAULT_PORT;
  sgrpc_net_address a;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end) return SGRPC_ERR_INVALID_ARGUMENT;
    if (end[1] && (end[1] != ':' || (port = port_value(end + 2, strlen(end + 2))) < 0))
      return SGRPC_ERR_INVALID_ARGUMENT;
    if (addr_v6(s + 1, (size_t)(end - s - 1), port, &a) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
    snprintf(t->port, sizeof(t->port), "%hu", (unsigned short)port);
    snprintf(t->host, sizeof(t->host), "%.*s", (int)(end - s - 1), s + 1);
    return add_addr(l, t, &a);
  }
  colon = strchr(s, ':');
  if (colon && strchr(colon + 1, ':')) {
    /* a bare IPv6 literal */
    if (addr_v6(s, strlen(s), port, &a) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
    snprintf(t->port, sizeof(t->port), "%hu", (unsigned short)port);
    snprintf(t->host, sizeof(t->host), "%s", s);
    return add_addr(l, t, &a);
  }
  hn = colon ? (size_t)(colon - s) : strlen(s);
  if (colon && (port = port_value(colon + 1, strlen(colon + 1))) < 0)
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (!valid_name(hs, hn)) return SGRPC_ERR_INVALID_ARGUMENT;
  memcpy(t->host, hs, hn);
  t->host[hn] = '\0';
  snprintf(t->port, sizeof(t->port), "%hu", (unsigned short)port);
  if (addr_v4(hs, hn, port, &a) == 0) return add_addr(l, t, &a);
  /* Every label numeric but not an address ("1.2.3"): not a name either. */
  if (strspn(hs, "0123456789.") >= hn) return SGRPC_ERR_INVALID_ARGUMENT;
  return 0; /* a name: the resolver runs */
}

static int parse_target(sgrpc_net_loop *l, const char *s, int custom, sg_target *t) {
  size_t i, n = strlen(s);
  if (n == 0 || n > 1000) return SGRPC_ERR_INVALID_ARGUMENT;
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) return SGRPC_ERR_INVALID_ARGUMENT;
  if (custom) {
    if (n > 255) return SGRPC_ERR_INVALID_ARGUMENT;
    t->scheme = SG_T_CUSTOM;
    snprintf(t->authority, sizeof(t->authority), "%s", s);
    /* the host for TLS names: after a scheme and "//authority/", if any */
    {
      const char *h = strchr(s, ':');
      h = h ? h + 1 : s;
      if (strncmp(h, "//", 2) == 0) {
        const char *slash = strchr(h + 2, '/');
        h = slash ? slash + 1 : h + 2;
      }
      snprintf(t->host, sizeof(t->host), "%s", h);
      snprintf(t->authority, sizeof(t->authority), "%s", h);
    }
    return 0;
  }
  if (strncmp(s, "unix:", 5) == 0) {
    const char *p = s + 5;
    sgrpc_net_address a;
    int rv;
    if (strncmp(p, "//", 2) == 0) {
      /* unix://absolute_path: the authority must be empty */
      p += 2;
      if (p[0] != '/') return SGRPC_ERR_INVALID_ARGUMENT;
    }
    t->scheme = SG_T_UNIX;
    snprintf(t->authority, sizeof(t->authority), "localhost");
    rv = addr_unix(p, strlen(p), 0, &a);
    return rv ? rv : add_addr(l, t, &a);
  }
  if (strncmp(s, "unix-abstract:", 14) == 0) {
    sgrpc_net_address a;
    int rv = addr_unix(s + 14, strlen(s + 14), 1, &a);
    t->scheme = SG_T_UNIX_ABSTRACT;
    snprintf(t->authority, sizeof(t->authority), "localhost");
    return rv ? rv : add_addr(l, t, &a);
  }
  if (strncmp(s, "ipv4:", 5) == 0 || strncmp(s, "ipv6:", 5) == 0) {
    int v6 = s[3] == '6', rv;
    char text[80];
    t->scheme = v6 ? SG_T_IPV6 : SG_T_IPV4;
    rv = parse_list(l, s + 5, v6 ? AF_INET6 : AF_INET, t);
    if (rv != 0) return rv;
    /* the first address, as host:port, names the server */
    sgrpc_net_address_format(&t->addrs[0], text, sizeof(text));
    snprintf(t->authority, sizeof(t->authority), "%s", text + 5);
    {
      const char *end = strrchr(text + 5, ':');
      const char *h = text + 5;
      size_t hn = (size_t)(end - h);
      if (v6) {
        h++;
        hn -= 2;
      }
      snprintf(t->host, sizeof(t->host), "%.*s", (int)hn, h);
      snprintf(t->port, sizeof(t->port), "%s", end + 1);
    }
    return 0;
  }
  t->scheme = SG_T_DNS;
  if (strncmp(s, "dns:", 4) == 0) {
    s += 4;
    if (strncmp(s, "//", 2) == 0) {
      const char *slash = strchr(s + 2, '/');
      size_t an;
      sgrpc_net_address a;
      if (!slash) return SGRPC_ERR_INVALID_ARGUMENT;
      an = (size_t)(slash - s - 2);
      if (an >= sizeof(t->dns_server)) return SGRPC_ERR_INVALID_ARGUMENT;
      if (an > 0) {
        /* the DNS server to ask: it must be a numeric address */
        memcpy(t->dns_server, s + 2, an);
        t->dns_server[an] = '\0';
        if (addr_ip(t->dns_server, an, 53, AF_UNSPEC, &a) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
      }
      s = slash + 1;
    }
  }
  if (!*s) return SGRPC_ERR_INVALID_ARGUMENT;
  snprintf(t->authority, sizeof(t->authority), "%s", s);
  return parse_dns(l, s, t);
}

int sg_target_parse(sgrpc_net_loop *l, const char *s, int custom, sg_target *t) {
  int rv;
  memset(t, 0, sizeof(*t));
  rv = parse_target(l, s, custom, t);
  if (rv != 0) {
    sg_net_free(l, t->addrs);
    t->addrs = NULL;
    t->naddrs = 0;
  }
  return rv;
}
