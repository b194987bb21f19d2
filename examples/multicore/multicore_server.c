/*
 * sgrpc-multicore-server: one epoll loop per core, each with its own
 * SO_REUSEPORT listener on the same port (docs/multicore.md).
 *
 *   sgrpc-multicore-server [--loops=N] [--host=ADDR] [--port=P] [--work-us=U]
 *
 * N loops (default: one per online CPU), each in its own thread with its
 * own sgrpc_epoll, listener, connections and counters. The kernel spreads
 * incoming connections over the listeners (by a hash of the addresses and
 * ports), and a connection stays on the loop that accepted it: nothing is
 * shared between loops, so there is no lock anywhere. --port=0 takes a
 * port the kernel picks; the line "listening on HOST:PORT (N loops)" tells
 * which, once every loop listens.
 *
 * The service is the benchmark's echo (bench/proto/echo.proto):
 * /bench.Echo/Unary sends its request back, unchanged, with the trailer
 * "sgrpc-loop: I" naming the loop that served it; sgrpc-loadgen drives it.
 * --work-us=U makes each call spend U microseconds of CPU first, standing
 * in for a handler that computes something (bench/run --multicore uses it
 * to show a server whose handlers, not the load, are the limit).
 *
 * SIGINT/SIGTERM: the main thread waits for the signal (it is blocked in
 * every thread, so no loop catches it) and wakes each loop through its own
 * pipe; each loop then shuts its server down gracefully (GOAWAY, running
 * calls finish) and its thread ends when the last connection closed. A
 * second signal ends the process at once. At exit the calls each loop
 * served are printed ("loop I: N calls").
 */
#define _GNU_SOURCE
#include <sgrpc/epoll.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LOOPS 256

/* Everything one loop owns. Only its thread touches it while it runs;
 * main reads calls and err after pthread_join. */
typedef struct loop {
  int index;
  char index_text[8]; /* the "sgrpc-loop" trailer value */
  int64_t work_ns;    /* --work-us */
  sgrpc_epoll *epoll;
  sgrpc_net_server *server;
  int wake[2]; /* main writes one byte: shut down */
  uint64_t calls;
  int err;
  pthread_t thread;
} loop;

/* Per-call state kept in the call's user_data: no allocation per call. */
enum { CALL_UNARY = 1, CALL_ANSWERED = 2 };

static void finish(sgrpc_call *call, int code, const char *msg, const loop *l) {
  sgrpc_md md = {"sgrpc-loop", 10, (const uint8_t *)l->index_text, strlen(l->index_text)};
  sgrpc_status st = {.code = code, .message = msg, .md = &md, .md_count = 1};
  if (sgrpc_call_send_status(call, &st) != 0) sgrpc_call_cancel(call);
}

static void on_event(sgrpc_net_conn *conn, const sgrpc_event *ev, void *ud, int64_t now) {
  loop *l = ud;
  uintptr_t state = (uintptr_t)ev->call_user_data;
  (void)conn;
  (void)now;
  if (!ev->call) return; /* connection events: nothing to do */
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW:
    if (ev->u.call_new.path_len == 17 && memcmp(ev->u.call_new.path, "/bench.Echo/Unary", 17) == 0)
      sgrpc_call_set_user_data(ev->call, (void *)(uintptr_t)CALL_UNARY);
    else
      finish(ev->call, SGRPC_STATUS_UNIMPLEMENTED, "unknown method", l);
    break;
  case SGRPC_EV_MESSAGE:
    if (state == CALL_UNARY) {
      int rv;
      if (l->work_ns > 0) { /* the stand-in for a handler's computation */
        int64_t until = sgrpc_epoll_now() + l->work_ns;
        while (sgrpc_epoll_now() < until) {
        }
      }
      rv = sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0);
      sgrpc_call_set_user_data(ev->call, (void *)(uintptr_t)CALL_ANSWERED);
      if (rv == 0) {
        l->calls++;
        finish(ev->call, SGRPC_STATUS_OK, NULL, l);
      } else {
        /* a reply larger than the call's send buffer (settings) */
        finish(ev->call, SGRPC_STATUS_RESOURCE_EXHAUSTED, sgrpc_strerror(rv), l);
      }
    } else if (state == CALL_ANSWERED) {
      finish(ev->call, SGRPC_STATUS_UNIMPLEMENTED, "more than one request on a unary call", l);
    }
    break;
  case SGRPC_EV_HALF_CLOSE:
    if (state == CALL_UNARY)
      finish(ev->call, SGRPC_STATUS_UNIMPLEMENTED, "unary call without a request", l);
    break;
  default:
    break; /* the net layer releases the call after its CLOSE */
  }
}

/* The loop's thread: the adapter's loop embedded in a poll() that also
 * watches the wake pipe (docs/adapters.md, "a loop you already run"). */
static void *loop_main(void *arg) {
  loop *l = arg;
  struct pollfd p[2] = {{.fd = sgrpc_epoll_get_fd(l->epoll), .events = POLLIN},
                        {.fd = l->wake[0], .events = POLLIN}};
  int stopping = 0;
  for (;;) {
    int rv = sgrpc_epoll_run_once(l->epoll, 0);
    if (rv <= 0) { /* 0: listener and connections gone, shutdown done */
      l->err = rv;
      break;
    }
    if (poll(p, stopping ? 1 : 2, -1) < 0 && errno != EINTR) {
      l->err = SGRPC_ERR_SYSTEM(errno);
      break;
    }
    if (!stopping && (p[1].revents & (POLLIN | POLLHUP))) {
      stopping = 1;
      sgrpc_net_server_shutdown(l->server, sgrpc_epoll_now());
    }
  }
  if (!stopping) kill(getpid(), SIGTERM); /* a loop failed: wake main */
  return NULL;
}

static int listen_loop(loop *l, const char *host, int port) {
  char addr[300];
  sgrpc_net_listen_opts o;
  int rv = sgrpc_epoll_new(&l->epoll, NULL);
  if (rv != 0) return rv;
  snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
  memset(&o, 0, sizeof(o));
  o.listen = addr;
  o.reuseport = 1; /* every loop binds the same port */
  o.backlog = 1024;
  o.server.on_event = on_event;
  o.server.user_data = l;
  o.server.drain_timeout_ns = 5 * (int64_t)1000000000;
  return sgrpc_epoll_listen(l->epoll, &o, &l->server);
}

int main(int argc, char **argv) {
  static loop loops[MAX_LOOPS];
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int n = ncpu > 0 && ncpu <= MAX_LOOPS ? (int)ncpu : 1, port = 50051, i, started = 0, sig = 0;
  const char *host = "127.0.0.1";
  uint64_t total = 0;
  int failed = 0, work_us = 0;
  sigset_t set;

  for (i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--loops=", 8) == 0) n = atoi(argv[i] + 8);
    else if (strncmp(argv[i], "--port=", 7) == 0) port = atoi(argv[i] + 7);
    else if (strncmp(argv[i], "--host=", 7) == 0) host = argv[i] + 7;
    else if (strncmp(argv[i], "--work-us=", 10) == 0) work_us = atoi(argv[i] + 10);
    else {
      fprintf(stderr, "usage: %s [--loops=N] [--host=ADDR] [--port=P] [--work-us=U]\n",
              argv[0]);
      return 2;
    }
  }
  if (n < 1 || n > MAX_LOOPS || port < 0 || port > 65535 || work_us < 0 || work_us > 1000000) {
    fprintf(stderr, "%s: --loops must be 1..%d, --port 0..65535, --work-us 0..1000000\n",
            argv[0], MAX_LOOPS);
    return 2;
  }
  /* Blocked before any thread exists, so blocked in all of them: only
   * sigwait below takes SIGINT/SIGTERM. */
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  /* Each loop and its listener are made here, so a bad address or a busy
   * port is reported before anything runs; loop 0 learns the port when
   * --port=0. Each is then handed to its thread and never touched here
   * again until that thread is joined. */
  for (i = 0; i < n; i++) {
    int rv;
    loops[i].index = i;
    loops[i].wake[0] = loops[i].wake[1] = -1;
    loops[i].work_ns = (int64_t)work_us * 1000;
    snprintf(loops[i].index_text, sizeof(loops[i].index_text), "%d", i);
    rv = listen_loop(&loops[i], host, port);
    if (rv == 0 && pipe(loops[i].wake) != 0) rv = SGRPC_ERR_SYSTEM(errno);
    if (rv != 0) {
      fprintf(stderr, "%s: loop %d: cannot listen on %s port %d: %s\n", argv[0], i, host, port,
              sgrpc_strerror(rv));
      failed = 1;
      n = i + 1;
      break;
    }
    if (port == 0) port = sgrpc_net_server_port(loops[i].server);
  }
  for (i = 0; i < n && !failed; i++) {
    if (pthread_create(&loops[i].thread, NULL, loop_main, &loops[i]) != 0) {
      fprintf(stderr, "%s: cannot start thread %d\n", argv[0], i);
      failed = 1;
      break;
    }
    started = i + 1;
  }
  if (!failed) {
    printf("listening on %s:%d (%d loops)\n", host, port, n);
    fflush(stdout);
    sigwait(&set, &sig);
    printf("signal %d: shutting down\n", sig);
    fflush(stdout);
  }
  /* The second signal ends the process at once (default action). */
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  for (i = 0; i < started; i++) {
    if (write(loops[i].wake[1], "x", 1) != 1) failed = 1;
  }
  for (i = 0; i < started; i++) {
    pthread_join(loops[i].thread, NULL);
    if (loops[i].err < 0) {
      fprintf(stderr, "loop %d: %s\n", i, sgrpc_strerror(loops[i].err));
      failed = 1;
    }
    printf("loop %d: %" PRIu64 " calls\n", i, loops[i].calls);
    total += loops[i].calls;
  }
  for (i = 0; i < n; i++) {
    sgrpc_epoll_del(loops[i].epoll);
    if (loops[i].wake[0] >= 0) close(loops[i].wake[0]);
    if (loops[i].wake[1] >= 0) close(loops[i].wake[1]);
  }
  printf("served %" PRIu64 " calls on %d loops\n", total, started);
  return failed ? 1 : 0;
}
