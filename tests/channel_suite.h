/*
 * Channels reaching several servers, on every adapter: gRPC targets,
 * name resolution (a real DNS server, dnsmasq, started by the test and
 * the channel's c-ares resolver pointed at it; a resolver of the test's
 * own), pick_first and round_robin, connectivity state, idle timeout,
 * per-call wait-for-ready, and allocation failures of the channel code.
 *
 * Everything runs on one loop in one process, on loopback: three sgrpc
 * servers on the same port of 127.0.0.2, .3 and .4 (port chosen by the
 * kernel for the first), dnsmasq on 127.0.0.1 at a port below 32768.
 * Every wait is bounded; nothing sleeps to synchronise.
 *
 * A test file fills a chs_adapter and calls channel_suite_run().
 * Header-only: tests/CMakeLists.txt builds each test_*.c alone.
 */
#ifndef SGRPC_TESTS_CHANNEL_SUITE_H
#define SGRPC_TESTS_CHANNEL_SUITE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sgrpc/net_adapter.h>

#include <time.h>

#include "support.h"
#include "low_port.h"

#define SEC 1000000000LL
#define MS 1000000LL

typedef struct chs_adapter {
  const char *name;
  void *(*loop_new)(const sgrpc_mem *mem); /* NULL on failure */
  void (*loop_del)(void *loop);
  sgrpc_net_loop *(*net)(void *loop);
  int64_t (*now)(void);
  void (*run_once)(void *loop, int timeout_ms);
  int (*listen)(void *loop, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps);
  int (*channel_new)(void *loop, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch);
} chs_adapter;

static const chs_adapter *CA;

/* ------------------------------------------------------------------ */
/* Backends: three echo servers that say who they are                  */
/* ------------------------------------------------------------------ */

#define NB 3
#define MAX_CALLS 16384

typedef struct backend {
  int id; /* 0..2: 127.0.0.(2 + id) */
  sgrpc_net_server *srv;
  int calls; /* calls answered */
} backend;

typedef struct cworld cworld;

typedef struct ccall {
  cworld *w;
  int done;
  int status;
  int served_by; /* backend id from the reply, -1 none */
  int retry_safe;
  char msg[200];
} ccall;

struct cworld {
  void *loop;
  sgrpc_net_loop *net;
  backend b[NB];
  int port;
  sgrpc_net_channel *ch;
  ccall *calls; /* MAX_CALLS */
  int started, done, ok;
  int states[64];
  int nstates;
  /* dnsmasq */
  pid_t dns_pid;
  int dns_port;
  char hosts_path[128];
  char dns_server[64];
};

static void backend_event(sgrpc_net_conn *conn, const sgrpc_event *ev, void *ud, int64_t now) {
  backend *b = ud;
  (void)conn;
  (void)now;
  if (ev->type == SGRPC_EV_CALL_NEW) {
    b->calls++;
  } else if (ev->type == SGRPC_EV_MESSAGE) {
    sgrpc_status st = {0};
    uint8_t who = (uint8_t)b->id;
    assert_int_equal(sgrpc_call_send(ev->call, &who, 1, 0), 0);
    assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
  }
}

static int backend_listen(cworld *w, int id, int port) {
  sgrpc_net_listen_opts lo;
  char addr[64];
  int rv;
  memset(&lo, 0, sizeof(lo));
  snprintf(addr, sizeof(addr), "127.0.0.%d:%d", 2 + id, port);
  lo.listen = addr;
  lo.server.on_event = backend_event;
  lo.server.user_data = &w->b[id];
  lo.server.drain_timeout_ns = 30 * SEC;
  w->b[id].id = id;
  rv = CA->listen(w->loop, &lo, &w->b[id].srv);
  if (rv == 0) w->port = sgrpc_net_server_port(w->b[id].srv);
  return rv;
}

static void world_new(cworld *w, int nbackends) {
  int i, attempt;
  memset(w, 0, sizeof(*w));
  w->dns_pid = -1;
  w->calls = calloc(MAX_CALLS, sizeof(*w->calls));
  assert_non_null(w->calls);
  w->loop = CA->loop_new(NULL);
  assert_non_null(w->loop);
  w->net = CA->net(w->loop);
  {
    static int seeded;
    if (!seeded) { /* three adapters' suites run at once: differ by pid */
      srand((unsigned)getpid() ^ (unsigned)time(NULL));
      seeded = 1;
    }
  }
  /* One port for all, below 32768: a kernel-chosen port would come from
   * the ephemeral range, where a client socket may take it while a
   * stopped backend is down (the restart tests listen on it again). A
   * clash (rare) starts over with another port. */
  for (attempt = 0; attempt < 50; attempt++) {
    int rv, port = 20000 + (int)((unsigned)rand() % 12000u);
    rv = backend_listen(w, 0, port);
    for (i = 1; i < nbackends && rv == 0; i++) rv = backend_listen(w, i, port);
    if (rv == 0) return;
    for (i = 0; i < NB; i++) {
      sgrpc_net_server_del(w->b[i].srv);
      w->b[i].srv = NULL;
    }
  }
  fail_msg("no common port for the backends");
}

static void dns_stop(cworld *w);

static void world_free(cworld *w) {
  if (w->ch) sgrpc_net_channel_del(w->ch);
  CA->loop_del(w->loop);
  dns_stop(w);
  free(w->calls);
}

static void run_until(cworld *w, const int *v, int want, int limit_ms) {
  int64_t end = CA->now() + limit_ms * MS;
  while (*v < want && CA->now() < end) CA->run_once(w->loop, 10);
}

/* ------------------------------------------------------------------ */
/* dnsmasq                                                             */
/* ------------------------------------------------------------------ */

static void write_hosts(cworld *w, const char *text) {
  FILE *f = fopen(w->hosts_path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  chmod(w->hosts_path, 0644); /* dnsmasq may run as nobody */
}

/* 1 when something holds UDP port p on 127.0.0.1. */
static int udp_taken(int p) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_DGRAM, 0), taken;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)p);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  taken = bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno == EADDRINUSE;
  close(fd);
  return taken;
}

/* Starts dnsmasq on 127.0.0.1 (port below 32768) answering from the
 * hosts text only. Returns 0, or -1 when dnsmasq is not installed. */
static int dns_start(cworld *w, const char *hosts) {
  int attempt;
  if (access("/usr/sbin/dnsmasq", X_OK) != 0) return -1;
  snprintf(w->hosts_path, sizeof(w->hosts_path), "/tmp/sgrpc-chs-%d.hosts", (int)getpid());
  write_hosts(w, hosts);
  for (attempt = 0; attempt < 20; attempt++) {
    int64_t end;
    char port_arg[32], hosts_arg[160];
    int p = 20000 + ((int)getpid() * 13 + attempt * 397) % 12000;
    if (udp_taken(p)) continue;
    snprintf(port_arg, sizeof(port_arg), "--port=%d", p);
    snprintf(hosts_arg, sizeof(hosts_arg), "--addn-hosts=%s", w->hosts_path);
    w->dns_pid = fork();
    assert_true(w->dns_pid >= 0);
    if (w->dns_pid == 0) {
      int dn = open("/dev/null", O_RDWR);
      if (dn >= 0) {
        dup2(dn, 1);
        dup2(dn, 2);
      }
      execl("/usr/sbin/dnsmasq", "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
            "--no-resolv", "--no-hosts", "--listen-address=127.0.0.1", "--bind-interfaces",
            "--pid-file=", "--log-facility=/dev/null", port_arg, hosts_arg, (char *)NULL);
      _exit(127);
    }
    /* ready once it holds the port (or gone: try another port) */
    end = CA->now() + 5 * SEC;
    while (CA->now() < end) {
      int st;
      if (udp_taken(p)) {
        w->dns_port = p;
        snprintf(w->dns_server, sizeof(w->dns_server), "127.0.0.1:%d", p);
        return 0;
      }
      if (waitpid(w->dns_pid, &st, WNOHANG) == w->dns_pid) break;
      usleep(2000); /* polling a child's start-up, not ordering events */
    }
    kill(w->dns_pid, SIGKILL);
    waitpid(w->dns_pid, NULL, 0);
    w->dns_pid = -1;
  }
  fail_msg("dnsmasq did not start");
  return -1;
}

static void dns_stop(cworld *w) {
  if (w->dns_pid > 0) {
    kill(w->dns_pid, SIGTERM);
    waitpid(w->dns_pid, NULL, 0);
    w->dns_pid = -1;
  }
  if (w->hosts_path[0]) unlink(w->hosts_path);
}

/* The records of the tests: one name, four addresses (the ::1 one never
 * has a server). */
static const char k_hosts[] = "127.0.0.2 multi.test\n"
                              "127.0.0.3 multi.test\n"
                              "127.0.0.4 multi.test\n"
                              "::1 multi.test\n"
                              "127.0.0.2 one.test\n";

/* ------------------------------------------------------------------ */
/* Calls                                                               */
/* ------------------------------------------------------------------ */

static void call_event(const sgrpc_event *ev, void *ud, int64_t now) {
  ccall *cc = ud;
  (void)now;
  if (ev->type == SGRPC_EV_MESSAGE && ev->u.message.len == 1) {
    cc->served_by = ev->u.message.data[0];
  } else if (ev->type == SGRPC_EV_CLOSE) {
    assert_false(cc->done);
    cc->done = 1;
    cc->status = ev->u.close.status.code;
    cc->retry_safe = ev->u.close.retry_safe;
    snprintf(cc->msg, sizeof(cc->msg), "%.*s", (int)ev->u.close.status.message_len,
             ev->u.close.status.message ? ev->u.close.status.message : "");
    cc->w->done++;
    if (cc->status == SGRPC_STATUS_OK) cc->w->ok++;
  }
}

/* Starts call number w->started; wfr: its wait_for_ready field. */
static ccall *call_start(cworld *w, sgrpc_net_channel *ch, int wfr, int64_t timeout) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  ccall *cc;
  assert_true(w->started < MAX_CALLS);
  cc = &w->calls[w->started++];
  memset(cc, 0, sizeof(*cc));
  cc->w = w;
  cc->status = -1;
  cc->served_by = -1;
  memset(&o, 0, sizeof(o));
  o.path = "/t.T/Echo";
  o.deadline = CA->now() + timeout;
  o.on_event = call_event;
  o.user_data = cc;
  o.wait_for_ready = wfr;
  assert_int_equal(sgrpc_net_channel_call(ch, &o, CA->now(), &call), 0);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, SGRPC_SEND_END), 0);
  return cc;
}

static int g_killed_at = -1; /* test_dns_round_robin: when a server went */

/* One call to completion. */
static ccall *call_one(cworld *w, sgrpc_net_channel *ch, int wfr, int64_t timeout) {
  ccall *cc = call_start(w, ch, wfr, timeout);
  int64_t end = CA->now() + timeout + 2 * SEC;
  while (!cc->done && CA->now() < end) CA->run_once(w->loop, 10);
  assert_true(cc->done);
  return cc;
}

/* n more calls, at most `window` at a time; every one must end OK.
 * between(w, k) runs after the k-th completion when set. */
static void call_many(cworld *w, sgrpc_net_channel *ch, int n, int window,
                      void (*between)(cworld *w, int k)) {
  int first = w->started, target_done = w->done + n, last_seen = w->done;
  int64_t end = CA->now() + 60 * SEC;
  while (w->done < target_done && CA->now() < end) {
    while (w->started - first < n && w->started - w->done < window)
      call_start(w, ch, 1, 20 * SEC);
    CA->run_once(w->loop, 10);
    if (between && w->done != last_seen) {
      last_seen = w->done;
      between(w, w->done);
    }
  }
  assert_int_equal(w->done, target_done);
  {
    int i;
    for (i = first; i < w->started; i++)
      if (w->calls[i].status != SGRPC_STATUS_OK)
        fail_msg("call %d: status %d \"%s\" retry_safe %d (killed at %d)", i, w->calls[i].status, w->calls[i].msg, w->calls[i].retry_safe, g_killed_at);
  }
}

static void state_cb(sgrpc_net_channel *ch, sgrpc_net_channel_state st, void *ud, int64_t now) {
  cworld *w = ud;
  (void)ch;
  (void)now;
  if (w->nstates < 64) w->states[w->nstates++] = (int)st;
}

static int saw_state(const cworld *w, int st) {
  int i;
  for (i = 0; i < w->nstates; i++)
    if (w->states[i] == st) return 1;
  return 0;
}

static void channel_opts(cworld *w, sgrpc_net_channel_opts *co, const char *target) {
  memset(co, 0, sizeof(*co));
  co->target = target;
  co->user_data = w;
  co->on_state_change = state_cb;
  co->backoff.initial = 20 * MS;
  co->backoff.max = 100 * MS;
  co->backoff.min_connect_timeout = 2 * SEC;
  co->min_resolve_interval_ns = 50 * MS;
}

/* ------------------------------------------------------------------ */
/* Targets                                                             */
/* ------------------------------------------------------------------ */

static void test_bad_targets(void **state) {
  static const char *const bad[] = {
      "", " ", "dns:", "dns://", "dns:///", "dns://x/a.test", "dns:///:50051", "host:", "host:0",
      "host:65536", "host:12a", "host:-1", "a..b:5", ".a:5", "a b:5", "a\tb", "ipv4:",
      "ipv4:1.2.3.4:", "ipv4:1.2.3:5", "ipv4:1.2.3.4:5,", "ipv4:,1.2.3.4:5", "ipv4:[::1]:5",
      "ipv4:300.1.1.1:5", "ipv6:", "ipv6:1.2.3.4:5", "ipv6:[::1", "ipv6:[::1]:", "ipv6:[::1]x",
      "ipv6:[::g]:5", "unix:", "unix://", "unix://host/path", "unix-abstract:"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"
      "12345678901234567890",
      "[::1", "[::1]:", "[::1]:x", "[]:5", "1.2.3:5", "::g:5",
      "dns:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:5",
  };
  static const char *const good[] = {
      "localhost:50051", "localhost", "dns:localhost:5", "dns:///a-b.test:5", "dns://127.0.0.1:53/x.test",
      "dns://[::1]:53/x.test:5", "127.0.0.1:5", "127.0.0.1", "[::1]:5", "::1", "[::1]",
      "ipv4:127.0.0.1:5,127.0.0.2,10.0.0.1:65535", "ipv6:[::1]:5,::2,[fe80::1]:7",
      "unix:/tmp/x.sock", "unix:rel.sock", "unix:///tmp/x.sock", "unix-abstract:name",
      "unix-abstract:", "my_host.example:443",
  };
  sgrpc_net_channel_opts co;
  sgrpc_net_channel *ch;
  void *loop = CA->loop_new(NULL);
  size_t i;
  (void)state;
  assert_non_null(loop);
  memset(&co, 0, sizeof(co));
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    co.target = bad[i];
    if (CA->channel_new(loop, &co, &ch) != SGRPC_ERR_INVALID_ARGUMENT)
      fail_msg("bad target accepted: \"%s\"", bad[i]);
    assert_null(ch);
  }
  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    co.target = good[i];
    if (CA->channel_new(loop, &co, &ch) != 0) fail_msg("good target refused: \"%s\"", good[i]);
    sgrpc_net_channel_del(ch);
  }
  /* options checked too */
  co.target = "localhost:5";
  co.lb_policy = "random";
  assert_int_equal(CA->channel_new(loop, &co, &ch), SGRPC_ERR_INVALID_ARGUMENT);
  co.lb_policy = NULL;
  co.dns_server = "not-an-ip";
  assert_int_equal(CA->channel_new(loop, &co, &ch), SGRPC_ERR_INVALID_ARGUMENT);
  co.dns_server = NULL;
  {
    /* the service config's policy wins over the option */
    sgrpc_service_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.lb_policy = "round_robin";
    co.lb_policy = "pick_first";
    co.service_config = &sc;
    assert_int_equal(CA->channel_new(loop, &co, &ch), 0);
    assert_ptr_equal(sgrpc_net_channel_service_config(ch), &sc);
    sgrpc_net_channel_del(ch);
    sc.lb_policy = "bogus";
    assert_int_equal(CA->channel_new(loop, &co, &ch), SGRPC_ERR_INVALID_ARGUMENT);
  }
  {
    sgrpc_net_address a;
    char text[80];
    assert_int_equal(sgrpc_net_address_parse("[::1]:80", 1, &a), 0);
    assert_int_equal(sgrpc_net_address_format(&a, text, sizeof(text)), 0);
    assert_string_equal(text, "ipv6:[::1]:80");
    assert_int_equal(sgrpc_net_address_parse("10.1.2.3", 7, &a), 0);
    assert_int_equal(sgrpc_net_address_format(&a, text, sizeof(text)), 0);
    assert_string_equal(text, "ipv4:10.1.2.3:7");
    assert_int_equal(sgrpc_net_address_parse("unix-abstract:ab", 0, &a), 0);
    assert_int_equal(sgrpc_net_address_format(&a, text, sizeof(text)), 0);
    assert_string_equal(text, "unix-abstract:ab");
    assert_int_equal(sgrpc_net_address_parse("name:80", 1, &a), SGRPC_ERR_INVALID_ARGUMENT);
  }
  CA->loop_del(loop);
}

/* ipv4:, ipv6:, unix:, unix-abstract: and the bare forms reach a server. */
static void test_static_targets(void **state) {
  cworld w;
  sgrpc_net_channel_opts co;
  sgrpc_net_channel *ch;
  char target[160], path[108];
  int i, v6_ok;
  (void)state;
  world_new(&w, 2);
  /* ipv4: with a dead first address (nothing on 127.0.0.9): pick_first
   * goes on to the next */
  snprintf(target, sizeof(target), "ipv4:127.0.0.9:%d,127.0.0.3:%d", w.port, w.port);
  channel_opts(&w, &co, target);
  assert_int_equal(CA->channel_new(w.loop, &co, &ch), 0);
  for (i = 0; i < 3; i++) {
    ccall *cc = call_one(&w, ch, 0, 5 * SEC);
    assert_int_equal(cc->status, SGRPC_STATUS_OK);
    assert_int_equal(cc->served_by, 1);
  }
  assert_true(sgrpc_net_channel_get_state(ch, 0, CA->now()) == SGRPC_NET_CHANNEL_READY);
  sgrpc_net_channel_del(ch);
  /* ipv6: */
  {
    sgrpc_net_listen_opts lo;
    sgrpc_net_server *s6 = NULL;
    backend b6 = {2, NULL, 0};
    static char addr6[64];
    int rv6;
    memset(&lo, 0, sizeof(lo));
    lo.server.on_event = backend_event;
    lo.server.user_data = &b6;
    TEST_LISTEN_LOW(rv6, addr6, "[::1]:%d", lo, CA->listen(w.loop, &lo, &s6));
    v6_ok = rv6 == 0;
    if (v6_ok) {
      snprintf(target, sizeof(target), "ipv6:[::1]:%d", sgrpc_net_server_port(s6));
      channel_opts(&w, &co, target);
      assert_int_equal(CA->channel_new(w.loop, &co, &ch), 0);
      assert_int_equal(call_one(&w, ch, 0, 5 * SEC)->served_by, 2);
      sgrpc_net_channel_del(ch);
      snprintf(target, sizeof(target), "[::1]:%d", sgrpc_net_server_port(s6));
      channel_opts(&w, &co, target);
      assert_int_equal(CA->channel_new(w.loop, &co, &ch), 0);
      assert_int_equal(call_one(&w, ch, 0, 5 * SEC)->served_by, 2);
      sgrpc_net_channel_del(ch);
      sgrpc_net_server_del(s6);
    }
  }
  /* unix: (path, and the unix:///abs form) */
  snprintf(path, sizeof(path), "/tmp/sgrpc-chs-%d.sock", (int)getpid());
  {
    sgrpc_net_listen_opts lo;
    sgrpc_net_server *su = NULL;
    backend bu = {2, NULL, 0};
    char listen[128];
    snprintf(listen, sizeof(listen), "unix:%s", path);
    memset(&lo, 0, sizeof(lo));
    lo.listen = listen;
    lo.server.on_event = backend_event;
    lo.server.user_data = &bu;
    assert_int_equal(CA->listen(w.loop, &lo, &su), 0);
    channel_opts(&w, &co, listen);
    assert_int_equal(CA->channel_new(w.loop, &co, &ch), 0);
    assert_int_equal(call_one(&w, ch, 0, 5 * SEC)->status, SGRPC_STATUS_OK);
    sgrpc_net_channel_del(ch);
    snprintf(target, sizeof(target), "unix://%s", path);
    channel_opts(&w, &co, target);
    assert_int_equal(CA->channel_new(w.loop, &co, &ch), 0);
    assert_int_equal(call_one(&w, ch, 0, 5 * SEC)->status, SGRPC_STATUS_OK);
    sgrpc_net_channel_del(ch);
    sgrpc_net_server_del(su);
  }
  /* unix-abstract: a listener the test binds, handed over */
  {
    sgrpc_net_listen_opts lo;
    sgrpc_net_server *sa = NULL;
    backend ba = {2, NULL, 0};
    struct sockaddr_un un;
    char name[64];
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    socklen_t len;
    assert_true(fd >= 0);
    snprintf(name, sizeof(name), "sgrpc-chs-%d", (int)getpid());
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    memcpy(un.sun_path + 1, name, strlen(name));
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    assert_int_equal(bind(fd, (struct sockaddr *)&un, len), 0);
    memset(&lo, 0, sizeof(lo));
    lo.use_fd = 1;
    lo.fd = fd;
    lo.fd_is_unix = 1;
    lo.server.on_event = backend_event;
    lo.server.user_data = &ba;
    assert_int_equal(CA->listen(w.loop, &lo, &sa), 0);
    snprintf(target, sizeof(target), "unix-abstract:%s", name);
    channel_opts(&w, &co, target);
    assert_int_equal(CA->channel_new(w.loop, &co, &ch), 0);
    assert_int_equal(call_one(&w, ch, 0, 5 * SEC)->status, SGRPC_STATUS_OK);
    assert_int_equal(ba.calls, 1);
    sgrpc_net_channel_del(ch);
    sgrpc_net_server_del(sa);
  }
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* DNS                                                                 */
/* ------------------------------------------------------------------ */

/* pick_first over the four records: the dead ones (::1, and 127.0.0.2
 * whose server is gone) are skipped, whatever their order. */
static void test_dns_pick_first(void **state) {
  cworld w;
  sgrpc_net_channel_opts co;
  char target[128];
  ccall *cc;
  (void)state;
  world_new(&w, NB);
  if (dns_start(&w, k_hosts) != 0) {
    world_free(&w);
    skip();
  }
  sgrpc_net_server_del(w.b[0].srv);
  w.b[0].srv = NULL;
  snprintf(target, sizeof(target), "dns:///multi.test:%d", w.port);
  channel_opts(&w, &co, target);
  co.dns_server = w.dns_server;
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  assert_int_equal(sgrpc_net_channel_get_state(w.ch, 0, CA->now()), SGRPC_NET_CHANNEL_IDLE);
  cc = call_one(&w, w.ch, 0, 10 * SEC);
  if (cc->status != SGRPC_STATUS_OK) fail_msg("pick_first: %d \"%s\"", cc->status, cc->msg);
  assert_true(cc->served_by == 1 || cc->served_by == 2);
  assert_int_equal(sgrpc_net_channel_address_count(w.ch), 4);
  /* the same connection keeps serving */
  assert_int_equal(call_one(&w, w.ch, 0, 5 * SEC)->served_by, cc->served_by);
  assert_true(saw_state(&w, SGRPC_NET_CHANNEL_CONNECTING));
  assert_true(saw_state(&w, SGRPC_NET_CHANNEL_READY));
  sgrpc_net_channel_close(w.ch, CA->now());
  assert_int_equal(sgrpc_net_channel_get_state(w.ch, 0, CA->now()), SGRPC_NET_CHANNEL_SHUTDOWN);
  {
    int64_t end = CA->now() + 2 * SEC;
    while (w.states[w.nstates - 1] != SGRPC_NET_CHANNEL_SHUTDOWN && CA->now() < end)
      CA->run_once(w.loop, 10);
    assert_int_equal(w.states[w.nstates - 1], SGRPC_NET_CHANNEL_SHUTDOWN);
  }
  world_free(&w);
}


static void kill_middle(cworld *w, int k) {
  if (g_killed_at < 0 && k >= 1000) {
    /* a rolling restart's first half: the server drains and goes */
    g_killed_at = k;
    sgrpc_net_server_shutdown(w->b[1].srv, CA->now());
  }
}

/* round_robin over the four records: 3,000 calls spread evenly over the
 * three live servers; one killed mid-run loses no wait-for-ready call;
 * restarted, it gets traffic again. */
static void test_dns_round_robin(void **state) {
  cworld *w = calloc(1, sizeof(*w));
  sgrpc_net_channel_opts co;
  char target[128];
  int i, before[NB];
  int64_t end;
  (void)state;
  assert_non_null(w);
  world_new(w, NB);
  if (dns_start(w, k_hosts) != 0) {
    world_free(w);
    free(w);
    skip();
  }
  snprintf(target, sizeof(target), "multi.test:%d", w->port);
  channel_opts(w, &co, target);
  co.dns_server = w->dns_server;
  co.lb_policy = "round_robin";
  assert_int_equal(CA->channel_new(w->loop, &co, &w->ch), 0);
  /* connect first, so that the spread is measured over READY backends */
  sgrpc_net_channel_get_state(w->ch, 1, CA->now());
  end = CA->now() + 10 * SEC;
  while (CA->now() < end && (sgrpc_net_server_conn_count(w->b[0].srv) == 0 ||
                             sgrpc_net_server_conn_count(w->b[1].srv) == 0 ||
                             sgrpc_net_server_conn_count(w->b[2].srv) == 0))
    CA->run_once(w->loop, 10);
  for (i = 0; i < NB; i++) assert_int_equal(sgrpc_net_server_conn_count(w->b[i].srv), 1);
  call_many(w, w->ch, 3000, 64, NULL);
  for (i = 0; i < NB; i++)
    if (w->b[i].calls < 900 || w->b[i].calls > 1100)
      fail_msg("backend %d took %d of 3000 calls", i, w->b[i].calls);
  /* kill one mid-run (gracefully: it drains) */
  for (i = 0; i < NB; i++) before[i] = w->b[i].calls;
  g_killed_at = -1;
  call_many(w, w->ch, 3000, 64, kill_middle);
  assert_true(g_killed_at >= 0);
  assert_true(w->b[1].calls - before[1] < 1200);
  /* restart it on the same address: traffic comes back */
  {
    sgrpc_net_server *old = w->b[1].srv;
    int again = w->b[1].calls;
    assert_int_equal(backend_listen(w, 1, w->port), 0);
    end = CA->now() + 10 * SEC;
    while (w->b[1].calls < again + 50 && CA->now() < end) call_many(w, w->ch, 100, 16, NULL);
    assert_true(w->b[1].calls >= again + 50);
    sgrpc_net_server_del(old);
  }
  world_free(w);
  free(w);
}

/* A new record set is picked up after re-resolution: the only backend
 * of one.test goes away, the name moves to another. */
static void test_dns_change(void **state) {
  cworld w;
  sgrpc_net_channel_opts co;
  char target[128];
  ccall *cc;
  uint64_t res0;
  int64_t end;
  (void)state;
  world_new(&w, NB);
  if (dns_start(&w, k_hosts) != 0) {
    world_free(&w);
    skip();
  }
  snprintf(target, sizeof(target), "one.test:%d", w.port);
  channel_opts(&w, &co, target);
  co.dns_server = w.dns_server;
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  cc = call_one(&w, w.ch, 1, 5 * SEC);
  assert_int_equal(cc->status, SGRPC_STATUS_OK);
  assert_int_equal(cc->served_by, 0);
  assert_int_equal(sgrpc_net_channel_address_count(w.ch), 1);
  res0 = sgrpc_net_channel_resolutions(w.ch);
  write_hosts(&w, "127.0.0.4 one.test\n127.0.0.3 one.test\n");
  assert_int_equal(kill(w.dns_pid, SIGHUP), 0);
  sgrpc_net_server_del(w.b[0].srv);
  w.b[0].srv = NULL;
  /* wait-for-ready calls until one reaches the new record set (dnsmasq
   * may answer the old one once more: the failure re-resolves again) */
  end = CA->now() + 10 * SEC;
  do {
    cc = call_one(&w, w.ch, 1, 3 * SEC);
  } while ((cc->status != SGRPC_STATUS_OK || cc->served_by == 0) && CA->now() < end);
  assert_int_equal(cc->status, SGRPC_STATUS_OK);
  assert_true(cc->served_by == 1 || cc->served_by == 2);
  assert_true(sgrpc_net_channel_resolutions(w.ch) > res0);
  assert_int_equal(sgrpc_net_channel_address_count(w.ch), 2);
  world_free(&w);
}

/* A name the server does not know: fail-fast calls end UNAVAILABLE with
 * the resolver's reason, marked safe to retry; the channel is in
 * TRANSIENT_FAILURE. */
static void test_dns_failure(void **state) {
  cworld w;
  sgrpc_net_channel_opts co;
  char target[128];
  ccall *cc;
  (void)state;
  world_new(&w, 1);
  if (dns_start(&w, k_hosts) != 0) {
    world_free(&w);
    skip();
  }
  snprintf(target, sizeof(target), "dns:///nowhere.test:%d", w.port);
  channel_opts(&w, &co, target);
  co.dns_server = w.dns_server;
  co.backoff.initial = 2 * SEC; /* no second resolution during the test */
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  cc = call_one(&w, w.ch, 0, 10 * SEC);
  assert_int_equal(cc->status, SGRPC_STATUS_UNAVAILABLE);
  if (!strstr(cc->msg, "nowhere.test")) fail_msg("message: \"%s\"", cc->msg);
  assert_true(cc->retry_safe);
  assert_int_equal(sgrpc_net_channel_get_state(w.ch, 0, CA->now()),
                   SGRPC_NET_CHANNEL_TRANSIENT_FAILURE);
  /* fail fast while resolution backs off: at once */
  {
    int64_t t0 = CA->now();
    cc = call_one(&w, w.ch, -1, 10 * SEC);
    assert_int_equal(cc->status, SGRPC_STATUS_UNAVAILABLE);
    assert_true(strstr(cc->msg, "nowhere.test") != NULL);
    assert_true(CA->now() - t0 < SEC);
  }
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* A resolver of the user's                                            */
/* ------------------------------------------------------------------ */

typedef struct my_resolver {
  cworld *w;
  int starts, cancels;
  int fail;
  sgrpc_net_resolve *r;
  sgrpc_net_timer *t;
  char answer[128];
} my_resolver;

static void my_deliver(sgrpc_net_loop *loop, void *ud, int64_t now) {
  my_resolver *m = ud;
  sgrpc_net_address a[2];
  (void)loop;
  m->t = NULL;
  if (m->fail) {
    sgrpc_net_resolve_done(m->r, NULL, 0, "registry says: no instances of my-service", now);
  } else {
    char first[64], second[64];
    const char *comma = strchr(m->answer, ',');
    snprintf(first, sizeof(first), "%.*s", (int)(comma - m->answer), m->answer);
    snprintf(second, sizeof(second), "%s", comma + 1);
    assert_int_equal(sgrpc_net_address_parse(first, 0, &a[0]), 0);
    assert_int_equal(sgrpc_net_address_parse(second, 0, &a[1]), 0);
    sgrpc_net_resolve_done(m->r, a, 2, NULL, now);
  }
  m->r = NULL;
}

static int my_start(void *ud, sgrpc_net_loop *loop, const char *target, sgrpc_net_resolve *r,
                    void **pctx) {
  my_resolver *m = ud;
  assert_string_equal(target, "registry:///my-service");
  m->starts++;
  m->r = r;
  *pctx = m;
  /* answers 10 ms later, as a service registry would */
  return sgrpc_net_timer_start(loop, CA->now() + 10 * MS, my_deliver, m, &m->t);
}

static void my_cancel(void *ud, void *ctx) {
  my_resolver *m = ud;
  assert_ptr_equal(ctx, m);
  m->cancels++;
  sgrpc_net_timer_cancel(m->t);
  m->t = NULL;
  m->r = NULL;
}

static void test_user_resolver(void **state) {
  cworld w;
  sgrpc_net_channel_opts co;
  sgrpc_net_resolver res;
  my_resolver m;
  int i;
  (void)state;
  world_new(&w, NB);
  memset(&m, 0, sizeof(m));
  snprintf(m.answer, sizeof(m.answer), "127.0.0.3:%d,127.0.0.4:%d", w.port, w.port);
  res.start = my_start;
  res.cancel = my_cancel;
  res.user_data = &m;
  channel_opts(&w, &co, "registry:///my-service");
  co.resolver = &res;
  co.lb_policy = "round_robin";
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  call_many(&w, w.ch, 40, 4, NULL);
  assert_int_equal(m.starts, 1);
  assert_int_equal(w.b[0].calls, 0);
  assert_true(w.b[1].calls > 0 && w.b[2].calls > 0);
  assert_int_equal(w.b[1].calls + w.b[2].calls, 40);
  for (i = 0; i < 40; i++) assert_true(w.calls[i].served_by >= 1);
  sgrpc_net_channel_del(w.ch);
  /* a failing resolver: the calls end with its reason */
  m.fail = 1;
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  {
    ccall *cc = call_one(&w, w.ch, 0, 5 * SEC);
    assert_int_equal(cc->status, SGRPC_STATUS_UNAVAILABLE);
    assert_non_null(strstr(cc->msg, "no instances of my-service"));
  }
  sgrpc_net_channel_del(w.ch);
  /* deleted while resolving: cancelled */
  m.fail = 0;
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  sgrpc_net_channel_get_state(w.ch, 1, CA->now());
  assert_non_null(m.r);
  sgrpc_net_channel_del(w.ch);
  w.ch = NULL;
  assert_int_equal(m.cancels, 1);
  world_free(&w);
}

/* ------------------------------------------------------------------ */
/* State, idle, wait-for-ready                                         */
/* ------------------------------------------------------------------ */

static void test_state_and_idle(void **state) {
  cworld w;
  sgrpc_net_channel_opts co;
  char target[128];
  int64_t end;
  int n0;
  (void)state;
  world_new(&w, 1);
  snprintf(target, sizeof(target), "127.0.0.2:%d", w.port);
  channel_opts(&w, &co, target);
  co.idle_timeout_ns = 200 * MS;
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  assert_int_equal(sgrpc_net_channel_get_state(w.ch, 1, CA->now()), SGRPC_NET_CHANNEL_IDLE);
  end = CA->now() + 5 * SEC;
  while (sgrpc_net_channel_get_state(w.ch, 0, CA->now()) != SGRPC_NET_CHANNEL_READY &&
         CA->now() < end)
    CA->run_once(w.loop, 10);
  assert_int_equal(w.states[0], SGRPC_NET_CHANNEL_CONNECTING);
  assert_int_equal(w.states[1], SGRPC_NET_CHANNEL_READY);
  assert_int_equal(call_one(&w, w.ch, 0, 5 * SEC)->status, SGRPC_STATUS_OK);
  /* no call for 200 ms: IDLE, connection closed */
  n0 = w.nstates;
  end = CA->now() + 5 * SEC;
  while ((w.states[w.nstates - 1] != SGRPC_NET_CHANNEL_IDLE ||
          sgrpc_net_channel_conn_count(w.ch) != 0) &&
         CA->now() < end)
    CA->run_once(w.loop, 10);
  assert_true(w.nstates > n0);
  assert_int_equal(w.states[w.nstates - 1], SGRPC_NET_CHANNEL_IDLE);
  assert_int_equal(sgrpc_net_channel_conn_count(w.ch), 0);
  /* a call wakes it up */
  assert_int_equal(call_one(&w, w.ch, 0, 5 * SEC)->status, SGRPC_STATUS_OK);
  assert_int_equal(w.states[w.nstates - 1], SGRPC_NET_CHANNEL_READY);
  /* the server goes: TRANSIENT_FAILURE after failed attempts (once the
   * channel has seen its connection end) */
  sgrpc_net_server_del(w.b[0].srv);
  w.b[0].srv = NULL;
  end = CA->now() + 5 * SEC;
  while (sgrpc_net_channel_conn_count(w.ch) != 0 && CA->now() < end) CA->run_once(w.loop, 10);
  assert_int_equal(sgrpc_net_channel_conn_count(w.ch), 0);
  {
    ccall *cc = call_one(&w, w.ch, 0, 5 * SEC);
    assert_int_equal(cc->status, SGRPC_STATUS_UNAVAILABLE);
    assert_true(cc->retry_safe);
    assert_non_null(strstr(cc->msg, "failed to connect"));
  }
  assert_true(saw_state(&w, SGRPC_NET_CHANNEL_TRANSIENT_FAILURE));
  world_free(&w);
}

/* Per-call wait-for-ready on a fail-fast channel (and the reverse): with
 * the server down, the fail-fast call ends at once, retry-safe; the
 * waiting one succeeds once the server is back. */
static void test_per_call_wfr(void **state) {
  cworld w;
  sgrpc_net_channel_opts co;
  char target[128];
  ccall *ff, *wfr, *ff2;
  int64_t end;
  (void)state;
  world_new(&w, 1);
  snprintf(target, sizeof(target), "127.0.0.2:%d", w.port);
  sgrpc_net_server_del(w.b[0].srv);
  w.b[0].srv = NULL;
  channel_opts(&w, &co, target);
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  wfr = call_start(&w, w.ch, 1, 10 * SEC);
  ff = call_start(&w, w.ch, 0, 10 * SEC);
  run_until(&w, &ff->done, 1, 5000);
  assert_int_equal(ff->status, SGRPC_STATUS_UNAVAILABLE);
  assert_true(ff->retry_safe);
  assert_false(wfr->done);
  /* still backing off: a fail-fast call ends at once, the waiting stays */
  ff2 = call_start(&w, w.ch, -1, 10 * SEC);
  run_until(&w, &ff2->done, 1, 2000);
  assert_int_equal(ff2->status, SGRPC_STATUS_UNAVAILABLE);
  assert_false(wfr->done);
  assert_int_equal(backend_listen(&w, 0, w.port), 0);
  end = CA->now() + 5 * SEC;
  while (!wfr->done && CA->now() < end) CA->run_once(w.loop, 10);
  assert_int_equal(wfr->status, SGRPC_STATUS_OK);
  sgrpc_net_channel_del(w.ch);
  /* a wait-for-ready channel, a fail-fast call */
  sgrpc_net_server_del(w.b[0].srv);
  w.b[0].srv = NULL;
  channel_opts(&w, &co, target);
  co.wait_for_ready = 1;
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  wfr = call_start(&w, w.ch, 0, 300 * MS);
  ff = call_start(&w, w.ch, -1, 10 * SEC);
  run_until(&w, &ff->done, 1, 5000);
  assert_int_equal(ff->status, SGRPC_STATUS_UNAVAILABLE);
  assert_false(wfr->done);
  run_until(&w, &wfr->done, 1, 5000);
  assert_int_equal(wfr->status, SGRPC_STATUS_UNAVAILABLE); /* its deadline */
  world_free(&w);
}

/* too_many_pings: the doubled keepalive time carries to the next
 * connection of the channel. */
static void test_keepalive_carry(void **state) {
  cworld w;
  sgrpc_net_channel_opts co;
  sgrpc_settings cs, ss;
  char target[128];
  sgrpc_net_listen_opts lo;
  sgrpc_net_server *srv = NULL;
  backend bk = {0, NULL, 0};
  int seen_ready = 0;
  int64_t end, ka2 = 0;
  int attempt, rv = -1;
  (void)state;
  memset(&w, 0, sizeof(w));
  w.dns_pid = -1;
  w.calls = calloc(16, sizeof(*w.calls));
  assert_non_null(w.calls);
  w.loop = CA->loop_new(NULL);
  w.net = CA->net(w.loop);
  /* a strict server: pings more often than every 10 s are strikes */
  sgrpc_settings_default(&ss);
  ss.min_recv_ping_interval = 10 * SEC;
  ss.max_ping_strikes = 1;
  ss.keepalive_permit_without_calls = 1;
  memset(&lo, 0, sizeof(lo));
  lo.server.on_event = backend_event;
  lo.server.user_data = &bk;
  lo.server.settings = &ss;
  for (attempt = 0; attempt < 20 && rv != 0; attempt++) {
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", 20000 + ((int)getpid() * 3 + attempt * 577) % 12000);
    lo.listen = listen;
    rv = CA->listen(w.loop, &lo, &srv);
  }
  assert_int_equal(rv, 0);
  snprintf(target, sizeof(target), "127.0.0.1:%d", sgrpc_net_server_port(srv));
  sgrpc_settings_default(&cs);
  cs.keepalive_time = 20 * MS;
  cs.keepalive_timeout = 5 * SEC;
  cs.keepalive_permit_without_calls = 1;
  channel_opts(&w, &co, target);
  co.settings = &cs;
  co.idle_timeout_ns = -1;
  assert_int_equal(CA->channel_new(w.loop, &co, &w.ch), 0);
  sgrpc_net_channel_get_state(w.ch, 1, CA->now());
  /* connected, then the server's GOAWAY too_many_pings ends it */
  end = CA->now() + 5 * SEC;
  while (!seen_ready && CA->now() < end) {
    CA->run_once(w.loop, 10);
    seen_ready = sgrpc_net_channel_get_state(w.ch, 0, CA->now()) == SGRPC_NET_CHANNEL_READY;
  }
  assert_true(seen_ready);
  while (sgrpc_net_channel_conn_count(w.ch) != 0 && CA->now() < end) CA->run_once(w.loop, 10);
  assert_int_equal(sgrpc_net_channel_conn_count(w.ch), 0);
  /* the next connection's engine starts from the doubled time */
  {
    sgrpc_call *call = NULL;
    sgrpc_call_opts o;
    ccall *cc = &w.calls[w.started++];
    memset(cc, 0, sizeof(*cc));
    cc->w = &w;
    memset(&o, 0, sizeof(o));
    o.path = "/t.T/Echo";
    o.on_event = call_event;
    o.user_data = cc;
    assert_int_equal(sgrpc_net_channel_call(w.ch, &o, CA->now(), &call), 0);
    ka2 = sgrpc_conn_keepalive_time(sgrpc_call_conn(call));
    assert_int_equal(sgrpc_call_cancel(call), 0);
    run_until(&w, &cc->done, 1, 2000);
  }
  if (ka2 != 2 * cs.keepalive_time)
    fail_msg("keepalive of the next connection: %lld ns", (long long)ka2);
  sgrpc_net_channel_del(w.ch);
  w.ch = NULL;
  CA->loop_del(w.loop);
  free(w.calls);
}

/* ------------------------------------------------------------------ */
/* Allocation failures of the channel code                             */
/* ------------------------------------------------------------------ */

typedef struct fm_resolver {
  int port;
} fm_resolver;

static int fm_start(void *ud, sgrpc_net_loop *loop, const char *target, sgrpc_net_resolve *r,
                    void **pctx) {
  fm_resolver *f = ud;
  sgrpc_net_address a[3];
  char t[64];
  int i;
  (void)loop;
  (void)target;
  for (i = 0; i < 3; i++) {
    snprintf(t, sizeof(t), "127.0.0.%d:%d", 2 + i, f->port);
    assert_int_equal(sgrpc_net_address_parse(t, 0, &a[i]), 0);
  }
  *pctx = f;
  /* at once, inside start: allowed */
  sgrpc_net_resolve_done(r, a, 3, NULL, CA->now());
  return 0;
}

static void fm_cancel(void *ud, void *ctx) {
  (void)ud;
  (void)ctx;
}

static void test_alloc_failures(void **state) {
  long n;
  int completed = 0;
  (void)state;
  /* every other allocation (the pattern repeats per call), up to past
   * the last one of a run (about 420) */
  for (n = 1; n < 1000 && !completed; n += 2) {
    failmem fm;
    sgrpc_mem mem;
    void *loop;
    sgrpc_net_channel_opts co;
    sgrpc_net_channel *ch1 = NULL, *ch2 = NULL;
    sgrpc_net_resolver res;
    fm_resolver fr = {1};
    cworld *w = calloc(1, sizeof(*w));
    int rv1, rv2, ok = 1, i;
    assert_non_null(w);
    w->calls = calloc(32, sizeof(*w->calls));
    assert_non_null(w->calls);
    failmem_init(&fm, &mem);
    fm.fail_at = n;
    loop = CA->loop_new(&mem);
    if (!loop) {
      free(w->calls);
      free(w);
      continue;
    }
    w->loop = loop;
    w->net = CA->net(loop);
    memset(&co, 0, sizeof(co));
    co.target = "ipv4:127.0.0.9:1,127.0.0.8:1,127.0.0.7:1";
    co.lb_policy = "round_robin";
    co.backoff.initial = 5 * MS;
    rv1 = CA->channel_new(loop, &co, &ch1);
    assert_true(rv1 == 0 || rv1 == SGRPC_ERR_NOMEM);
    res.start = fm_start;
    res.cancel = fm_cancel;
    res.user_data = &fr;
    co.target = "x:svc";
    co.resolver = &res;
    co.lb_policy = NULL;
    rv2 = CA->channel_new(loop, &co, &ch2);
    assert_true(rv2 == 0 || rv2 == SGRPC_ERR_NOMEM);
    if (rv1 || rv2) ok = 0;
    for (i = 0; i < 20; i++) {
      sgrpc_net_channel *ch = i % 2 ? ch1 : ch2;
      sgrpc_call_opts o;
      sgrpc_call *call = NULL;
      ccall *cc;
      int rv;
      if (!ch || w->started >= MAX_CALLS) continue;
      cc = &w->calls[w->started++];
      memset(cc, 0, sizeof(*cc));
      cc->w = w;
      memset(&o, 0, sizeof(o));
      o.path = "/t.T/Echo";
      o.deadline = CA->now() + 60 * MS;
      o.on_event = call_event;
      o.user_data = cc;
      o.wait_for_ready = i % 3 == 0 ? 1 : 0;
      rv = sgrpc_net_channel_call(ch, &o, CA->now(), &call);
      if (rv != 0) {
        assert_int_equal(rv, SGRPC_ERR_NOMEM);
        ok = 0;
        cc->done = 1;
        w->done++;
      }
    }
    {
      int64_t end = CA->now() + 1500 * MS;
      while (w->done < w->started && CA->now() < end) CA->run_once(loop, 10);
    }
    /* every call ended (refused everywhere: UNAVAILABLE) */
    /* Every call ended, except where the engine itself ran out of
     * memory queueing a CLOSE (its connection then fails for good and
     * the call is freed with it; the engine's limit, not the channel's). */
    if (w->done != w->started && fm.failures == 0)
      fail_msg("allocation %ld failing: %d of %d calls ended", n, w->done, w->started);
    for (i = 0; i < w->started; i++)
      if (w->calls[i].status != SGRPC_STATUS_UNAVAILABLE && w->calls[i].status != 0) ok = 0;
    if (fm.failures == 0 && ok) completed = 1;
    sgrpc_net_channel_del(ch1);
    sgrpc_net_channel_del(ch2);
    CA->loop_del(loop);
    assert_int_equal(fm.live, 0);
    free(w->calls);
    free(w);
  }
  assert_true(completed);
}

static int channel_suite_run(const chs_adapter *a) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_targets),      cmocka_unit_test(test_static_targets),
      cmocka_unit_test(test_dns_pick_first),   cmocka_unit_test(test_dns_round_robin),
      cmocka_unit_test(test_dns_change),       cmocka_unit_test(test_dns_failure),
      cmocka_unit_test(test_user_resolver),    cmocka_unit_test(test_state_and_idle),
      cmocka_unit_test(test_per_call_wfr),     cmocka_unit_test(test_keepalive_carry),
      cmocka_unit_test(test_alloc_failures),
  };
  CA = a;
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests_name(a->name, tests, NULL, NULL);
}

#endif
