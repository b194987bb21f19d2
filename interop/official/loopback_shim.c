/*
 * LD_PRELOAD shim for gRPC's own interop servers on C-core (grpc++ and
 * grpcio), which listen on every interface ("0.0.0.0:PORT" or "[::]:PORT")
 * and set SO_REUSEPORT. The interop runs must stay on the loopback and
 * must see a port that is already taken fail, so:
 *   - bind() to the IPv4 wildcard binds 127.0.0.1 instead; to the IPv6
 *     wildcard, ::ffff:127.0.0.1 (a dual-stack socket then takes 127.0.0.1
 *     clients and nothing from outside; an IPv6-only socket gets ::1);
 *   - setsockopt(SO_REUSEPORT, on) fails with ENOPROTOOPT, as on a system
 *     without it (C-core probes it once and then does without).
 * Nothing else of the program changes. Build:
 *   cc -shared -fPIC -O2 -o loopback_shim.so loopback_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);

static int is_v6only(int fd) {
  int on = 0;
  socklen_t len = sizeof(on);
  if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len) != 0) return 0;
  return on != 0;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static bind_fn real;
  if (!real) real = (bind_fn)dlsym(RTLD_NEXT, "bind");
  if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    struct sockaddr_in in;
    memcpy(&in, addr, sizeof(in));
    if (in.sin_addr.s_addr == htonl(INADDR_ANY)) {
      in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      return real(fd, (const struct sockaddr *)&in, sizeof(in));
    }
  } else if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    struct sockaddr_in6 in6;
    memcpy(&in6, addr, sizeof(in6));
    if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr)) {
      if (is_v6only(fd)) {
        in6.sin6_addr = in6addr_loopback;
      } else {
        static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                 0, 0, 0xff, 0xff, 127, 0, 0, 1};
        memcpy(&in6.sin6_addr, mapped, sizeof(mapped));
      }
      return real(fd, (const struct sockaddr *)&in6, sizeof(in6));
    }
  }
  return real(fd, addr, len);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
  static setsockopt_fn real;
  if (!real) real = (setsockopt_fn)dlsym(RTLD_NEXT, "setsockopt");
#ifdef SO_REUSEPORT
  if (level == SOL_SOCKET && name == SO_REUSEPORT && val && len >= (socklen_t)sizeof(int) &&
      *(const int *)val != 0) {
    errno = ENOPROTOOPT;
    return -1;
  }
#endif
  return real(fd, level, name, val, len);
}
