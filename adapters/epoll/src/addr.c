/*
 * Address strings of the epoll adapter: "host:port", "[v6]:port",
 * ":port" and "unix:/path".
 */
#define _GNU_SOURCE
#include "internal.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

int ep_parse_addr(const char *s, int passive, struct sockaddr_storage *ss,
                  socklen_t *len, char **unix_path) {
  char host[256], port[16];
  const char *colon;
  size_t hlen;
  struct addrinfo hints, *res = NULL;
  int rv;

  if (!s || !ss || !len) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(ss, 0, sizeof(*ss));
  if (unix_path) *unix_path = NULL;

  if (strncmp(s, "unix:", 5) == 0) {
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    const char *path = s + 5;
    size_t plen = strlen(path);
    if (plen == 0 || plen >= sizeof(un->sun_path)) return SGRPC_ERR_INVALID_ARGUMENT;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, plen + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
    if (unix_path) {
      *unix_path = strdup(path);
      if (!*unix_path) return SGRPC_ERR_NOMEM;
    }
    return 0;
  }

  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':') return SGRPC_ERR_INVALID_ARGUMENT;
    hlen = (size_t)(end - s - 1);
    if (hlen == 0 || hlen >= sizeof(host)) return SGRPC_ERR_INVALID_ARGUMENT;
    memcpy(host, s + 1, hlen);
    colon = end + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return SGRPC_ERR_INVALID_ARGUMENT;
    hlen = (size_t)(colon - s);
    if (hlen >= sizeof(host) || memchr(s, ':', hlen)) return SGRPC_ERR_INVALID_ARGUMENT;
    memcpy(host, s, hlen);
  }
  host[hlen] = '\0';
  if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port))
    return SGRPC_ERR_INVALID_ARGUMENT;
  strcpy(port, colon + 1);
  if (strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535)
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (hlen == 0 && !passive) return SGRPC_ERR_INVALID_ARGUMENT;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  /* Name resolution blocks; numeric hosts (the common case for servers
   * and tests) resolve without any lookup. */
  rv = getaddrinfo(hlen ? host : NULL, port, &hints, &res);
  if (rv != 0 || !res) return SGRPC_ERR_INVALID_ARGUMENT;
  if (res->ai_addrlen > sizeof(*ss)) {
    freeaddrinfo(res);
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}
