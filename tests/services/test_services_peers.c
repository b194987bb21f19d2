/*
 * The health and reflection services over the epoll adapter on 127.0.0.1,
 * asked by real peers:
 *  - grpcio (/usr/bin/python3, grpcio_services_peer.py; stubs generated at
 *    test time by grpc_tools.protoc): Check, Watch seeing status changes
 *    made here while its stream is open (and not the repeated one),
 *    reflection v1alpha and v1 (list_services, file_containing_symbol whose
 *    FileDescriptorProtos it loads into a descriptor pool, errors);
 *  - grpc-go 1.33 from Debian (GO111MODULE=off, GOPATH=/usr/share/gocode;
 *    go_services_peer.go) when go is installed: the same with grpc-go's
 *    health and reflection v1alpha client stubs.
 * Each peer exits 0 only when all its checks passed. Every wait is
 * bounded; peers are child processes killed by pid when late.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <sgrpc/health.h>
#include <sgrpc/reflection.h>
#include <sgrpc/epoll.h>
#include <sgrpc/net_rpc.h>

#include "grpc/testing/test.sgrpc.h"
#include "support.h"

#define SEC 1000000000LL

typedef struct server {
  sgrpc_epoll *loop;
  sgrpc_net_server *srv;
  sgrpc_router *router;
  sgrpc_health *health;
  sgrpc_reflection *refl;
  int port;
} server;

static void server_start(server *s, int seed) {
  sgrpc_net_listen_opts so;
  char addr[64];
  size_t len;
  uint8_t *set;
  int attempt, rv = -1;
  memset(s, 0, sizeof(*s));
  assert_int_equal(sgrpc_epoll_new(&s->loop, NULL), 0);
  assert_int_equal(sgrpc_router_new(&s->router, NULL), 0);
  assert_int_equal(sgrpc_health_new(&s->health, NULL), 0);
  assert_int_equal(sgrpc_health_set(s->health, "grpc.testing.TestService",
                                    SGRPC_HEALTH_NOT_SERVING),
                   0);
  assert_int_equal(sgrpc_health_register(s->health, s->router), 0);
  assert_int_equal(sgrpc_reflection_new(&s->refl, NULL), 0);
  assert_int_equal(
      sgrpc_reflection_add_service(s->refl, &grpc__testing__test_service__sgrpc_service), 0);
  assert_int_equal(sgrpc_reflection_add_service(s->refl, sgrpc_health_service()), 0);
  set = test_read_file(SGRPC_TESTING_DESC, &len);
  assert_int_equal(sgrpc_reflection_add_file_set(s->refl, set, len), 0);
  free(set);
  assert_int_equal(sgrpc_reflection_register(s->refl, s->router), 0);

  memset(&so, 0, sizeof(so));
  so.server.on_event = sgrpc_net_router_event;
  so.server.user_data = s->router;
  so.server.drain_timeout_ns = 2 * SEC;
  for (attempt = 0; attempt < 20; attempt++) {
    int port = 20000 + ((int)getpid() * 7 + seed * 1009 + attempt * 331) % 12000;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    so.listen = addr;
    rv = sgrpc_epoll_listen(s->loop, &so, &s->srv);
    if (rv == 0 || rv != SGRPC_ERR_SYSTEM(EADDRINUSE)) break;
  }
  assert_int_equal(rv, 0);
  s->port = sgrpc_net_server_port(s->srv);
  assert_true(s->port > 0 && s->port < 32768);
}

static void server_stop(server *s) {
  sgrpc_epoll_del(s->loop); /* open calls close through the router */
  assert_int_equal(sgrpc_health_watch_count(s->health), 0);
  sgrpc_health_del(s->health);
  sgrpc_reflection_del(s->refl);
  sgrpc_router_del(s->router);
}

/* Runs argv as a child with stdout to our stderr; serves the loop until it
 * exits (at most limit_ns; then it is killed). When the first Watch of
 * svc.Flip opens, flips the status: SERVING, SERVING again, NOT_SERVING.
 * Returns the exit code, or -1 when killed. */
static int run_peer(server *s, char *const argv[], int64_t limit_ns, int *flipped) {
  int64_t end = sgrpc_epoll_now() + limit_ns;
  pid_t pid = fork();
  int st, rc = -1;
  assert_true(pid >= 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(2, 1);
    execv(argv[0], argv);
    _exit(127);
  }
  *flipped = 0;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      break;
    }
    if (sgrpc_epoll_now() >= end) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    assert_true(sgrpc_epoll_run_once(s->loop, 20) >= 0);
    if (!*flipped && sgrpc_health_watch_count(s->health) == 1) {
      assert_int_equal(sgrpc_health_get(s->health, "svc.Flip"), SGRPC_HEALTH_SERVICE_UNKNOWN);
      assert_int_equal(sgrpc_health_set(s->health, "svc.Flip", SGRPC_HEALTH_SERVING), 0);
      assert_int_equal(sgrpc_health_set(s->health, "svc.Flip", SGRPC_HEALTH_SERVING), 0);
      assert_int_equal(sgrpc_health_set(s->health, "svc.Flip", SGRPC_HEALTH_NOT_SERVING), 0);
      *flipped = 1;
    }
  }
  /* the peer's cancel of its Watch may still be on the way */
  {
    int i;
    for (i = 0; i < 100 && sgrpc_health_watch_count(s->health); i++)
      assert_true(sgrpc_epoll_run_once(s->loop, 20) >= 0);
  }
  return rc;
}

static void grpcio_peer(void **state) {
  server s;
  char port[16];
  char *argv[] = {(char *)"/usr/bin/python3", (char *)SGRPC_GRPCIO_PEER, port,
                  (char *)SGRPC_PEER_OUT_DIR, NULL};
  int flipped;
  (void)state;
  server_start(&s, 1);
  snprintf(port, sizeof(port), "%d", s.port);
  assert_int_equal(run_peer(&s, argv, 120 * SEC, &flipped), 0);
  assert_int_equal(flipped, 1);
  assert_int_equal(sgrpc_health_watch_count(s.health), 0);
  server_stop(&s);
}

static void go_peer(void **state) {
  server s;
  char port[16];
  char *argv[] = {(char *)SGRPC_GO_PEER, port, NULL};
  int flipped;
  (void)state;
  if (access(SGRPC_GO_PEER, X_OK) != 0) {
    fprintf(stderr, "grpc-go peer not built (no go toolchain): %s\n", SGRPC_GO_PEER);
    skip();
  }
  server_start(&s, 2);
  snprintf(port, sizeof(port), "%d", s.port);
  assert_int_equal(run_peer(&s, argv, 120 * SEC, &flipped), 0);
  assert_int_equal(flipped, 1);
  server_stop(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(grpcio_peer),
      cmocka_unit_test(go_peer),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
