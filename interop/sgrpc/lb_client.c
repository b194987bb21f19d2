/*
 * sgrpc-lb-client: many UnaryCall RPCs over one sgrpc channel, counting
 * which backend served each (SimpleResponse.server_id, asked for with
 * fill_server_id), for the load-balancing and proxy tests of interop/lb.
 *
 *   sgrpc-lb-client --target=TARGET --calls=N [--concurrency=C]
 *                   [--kill_pid=PID --kill_after=K] [--warmup_backends=W]
 *                   [--authority=NAME] [--lb_policy=NAME] [--retry_unavailable=R]
 *
 * --lb_policy sets the channel's load-balancing policy (pick_first or
 * round_robin; TARGET is then e.g. "ipv4:127.0.0.1:P1,127.0.0.1:P2").
 * --retry_unavailable starts a call that ended UNAVAILABLE again, up to R
 * more times (what a retry policy with retryableStatusCodes UNAVAILABLE
 * does; the grpc-go and grpcio clients of interop/lb are given one); each
 * retry prints "rr: retried INDEX CODE SAFE".
 *
 * TARGET is anything sgrpc_epoll_channel_new takes (a proxy's
 * "127.0.0.1:PORT" in the HAProxy and nghttpx tests). At most C calls are
 * in flight (default 8), each with a 20 s deadline; the channel waits for
 * ready. With --kill_pid, once K calls have completed the client sends
 * SIGKILL to PID (a backend), waits until it is dead, and goes on, so the
 * kill lands mid-run with calls in flight; those are counted as
 * "inflight", calls started later as "after", earlier ones as "before". With --warmup_backends, calls
 * are first made one at a time, uncounted, until W distinct backends
 * answered (bounded by 10 s): a balancer spreads calls over the backends
 * it has ready, and the counted run starts once all of them are.
 *
 * Prints, as the other clients of interop/lb do (run_rr.sh, lib.sh check
 * these lines):
 *   rr: served PHASE SERVER_ID COUNT
 *   rr: failed INDEX PHASE CODE SAFE "MESSAGE"   (one per failed call; SAFE
 *       is retry_safe when the server never processed the call, so a
 *       transparent retry could have saved it, "-" otherwise)
 *   rr: warmup N calls, M backends answered
 *   rr: total ok=N failed=M
 * Exit status 0 when every call succeeded, 1 otherwise, 2 for bad usage.
 */
#define _GNU_SOURCE
#include "common.h"

#include <signal.h>
#include <sys/types.h>
#include <time.h>

#define CALL_TIMEOUT_NS (20LL * 1000000000)
#define RUN_TIMEOUT_NS (120LL * 1000000000)
#define WARMUP_TIMEOUT_NS (10LL * 1000000000)
#define MAX_IDS 32

enum { PH_BEFORE, PH_INFLIGHT, PH_AFTER, PH_COUNT_ };
static const char *const phase_name[PH_COUNT_] = {"before", "inflight", "after"};

/* One backend id seen in responses and its count per phase. */
typedef struct served {
  char id[64];
  long count[PH_COUNT_];
} served;

/* One call in flight. */
typedef struct lcall {
  long index;
  int started_after; /* started once the kill was sent */
  char id[64];       /* server_id of the response, "" before one came */
  int got_response;
  int bad_response;
  int warmup; /* a warm-up call: not counted */
  int attempts; /* retries made (--retry_unavailable) */
  struct lcall *next_retry;
} lcall;

static sgrpc_epoll *loop;
static sgrpc_net_channel *channel;
static served ids[MAX_IDS];
static size_t n_ids;
static long n_calls, n_started, n_done, n_ok, n_failed, kill_after;
static pid_t kill_pid;
static int killed;
static const char *authority;
static uint8_t request[16];
static size_t request_len;
/* warm-up: backends heard from, calls made, one call in flight at most */
static served warm_ids[MAX_IDS];
static size_t n_warm_ids;
static long warmup_want, n_warm_calls;
static int warming, warm_in_flight;
/* --retry_unavailable: the limit, and calls waiting to start again (from
 * the main loop, not from inside the call's own callback) */
static long retry_max;
static lcall *retry_head;
static long n_retried;

/* Notes a warm-up answer; ends the warm-up once enough backends answered. */
static void warm_seen(const char *id) {
  size_t i;
  for (i = 0; i < n_warm_ids; i++)
    if (strcmp(warm_ids[i].id, id) == 0) break;
  if (i == n_warm_ids && n_warm_ids < MAX_IDS)
    snprintf(warm_ids[n_warm_ids++].id, sizeof(warm_ids[0].id), "%s", id);
  if ((long)n_warm_ids >= warmup_want) warming = 0;
}

static void count_served(const char *id, int phase) {
  size_t i;
  for (i = 0; i < n_ids; i++)
    if (strcmp(ids[i].id, id) == 0) break;
  if (i == n_ids) {
    if (n_ids == MAX_IDS) i = MAX_IDS - 1; /* lumped into the last: the check fails anyway */
    else snprintf(ids[n_ids++].id, sizeof(ids[0].id), "%s", id);
  }
  ids[i].count[phase]++;
}

/* Returns nonzero once pid has died: its /proc entry is gone or a zombie
 * (its sockets are closed by then). */
static int process_dead(pid_t pid) {
  char path[64], buf[512];
  const char *p;
  size_t n;
  FILE *f;
  snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
  f = fopen(path, "r");
  if (!f) return 1;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  p = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold anything */
  return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

/* SIGKILLs the backend and waits (bounded, 5 s) until it is dead, so that
 * calls counted as "after" start only once its connections are gone. */
static void kill_backend(void) {
  struct timespec ms = {0, 1000000};
  int i;
  if (kill(kill_pid, SIGKILL) != 0) {
    printf("rr: kill %ld failed\n", (long)kill_pid);
    return;
  }
  for (i = 0; i < 5000 && !process_dead(kill_pid); i++) nanosleep(&ms, NULL);
  if (!process_dead(kill_pid)) printf("rr: %ld still alive 5 s after SIGKILL\n", (long)kill_pid);
}

static void on_call_event(const sgrpc_event *ev, void *ud, int64_t now) {
  lcall *c = ud;
  (void)now;
  switch (ev->type) {
  case SGRPC_EV_MESSAGE: {
    Grpc__Testing__SimpleResponse *r = grpc__testing__simple_response__unpack(
        NULL, ev->u.message.len, ev->u.message.data);
    if (!r || c->got_response) {
      c->bad_response = 1;
    } else {
      snprintf(c->id, sizeof(c->id), "%s", r->server_id ? r->server_id : "");
      c->got_response = 1;
    }
    if (r) grpc__testing__simple_response__free_unpacked(r, NULL);
    break;
  }
  case SGRPC_EV_CLOSE: {
    const sgrpc_status_info *st = &ev->u.close.status;
    int phase;
    if (c->warmup) {
      warm_in_flight = 0;
      if (st->code == SGRPC_STATUS_OK && c->got_response && !c->bad_response) warm_seen(c->id);
      free(c);
      break;
    }
    phase = c->started_after ? PH_AFTER : killed ? PH_INFLIGHT : PH_BEFORE;
    if (st->code == SGRPC_STATUS_UNAVAILABLE && c->attempts < retry_max) {
      printf("rr: retried %ld %s %s\n", c->index, sgrpc_status_name(st->code),
             ev->u.close.retry_safe ? "retry_safe" : "-");
      c->attempts++;
      n_retried++;
      c->got_response = c->bad_response = 0;
      c->id[0] = 0;
      c->next_retry = retry_head;
      retry_head = c;
      break;
    }
    if (st->code == SGRPC_STATUS_OK && c->got_response && !c->bad_response && c->id[0]) {
      count_served(c->id, phase);
      n_ok++;
    } else {
      printf("rr: failed %ld %s %s %s \"%.*s%s\"\n", c->index, phase_name[phase],
             sgrpc_status_name(st->code), ev->u.close.retry_safe ? "retry_safe" : "-",
             (int)st->message_len, st->message,
             st->code == SGRPC_STATUS_OK ? " (no or bad response)" : "");
      n_failed++;
    }
    n_done++;
    free(c);
    if (kill_pid > 0 && !killed && n_done >= kill_after) {
      /* nothing starts while the kill is under way: one thread */
      kill_backend();
      killed = 1;
    }
    break;
  }
  default:
    break;
  }
}

/* Starts call c (UnaryCall, the request, half-close). Returns 0 when it
 * started (it then ends through SGRPC_EV_CLOSE), else the error of
 * sgrpc_net_channel_call (c is the caller's again). */
static int start_call(lcall *c, int64_t now) {
  sgrpc_call_opts o;
  sgrpc_call *h = NULL;
  int rv;
  memset(&o, 0, sizeof(o));
  o.path = IOP_TEST_METHOD(UNARY_CALL)->path;
  o.authority = authority;
  o.deadline = now + CALL_TIMEOUT_NS;
  o.content_subtype = "proto";
  o.user_data = c;
  o.on_event = on_call_event;
  o.wait_for_ready = 1;
  rv = sgrpc_net_channel_call(channel, &o, now, &h);
  if (rv != 0) return rv;
  if (sgrpc_call_send(h, request, request_len, SGRPC_SEND_END) != 0) sgrpc_call_cancel(h);
  return 0;
}

/* Starts calls until `concurrency` are in flight or none is left (from
 * the main loop, not from call callbacks); during the warm-up, one
 * uncounted call at a time. A counted call that cannot start counts as
 * failed. */
static void top_up(long concurrency, int64_t now) {
  if (warming) {
    lcall *c;
    if (warm_in_flight) return;
    c = calloc(1, sizeof(*c));
    if (!c) return; /* retried on the next turn of the loop */
    c->warmup = 1;
    n_warm_calls++;
    if (start_call(c, now) != 0) free(c);
    else warm_in_flight = 1;
    return;
  }
  while (retry_head) {
    lcall *c = retry_head;
    int rv;
    retry_head = c->next_retry;
    rv = start_call(c, now);
    if (rv != 0) {
      printf("rr: failed %ld %s UNAVAILABLE - \"call start: %s\"\n", c->index,
             phase_name[c->started_after ? PH_AFTER : PH_BEFORE], sgrpc_strerror(rv));
      free(c);
      n_failed++;
      n_done++;
    }
  }
  while (n_started < n_calls && n_started - n_done < concurrency) {
    lcall *c = calloc(1, sizeof(*c));
    int rv;
    if (!c) {
      printf("rr: failed %ld start RESOURCE_EXHAUSTED - \"out of memory\"\n", n_started);
      n_started++;
      n_failed++;
      n_done++;
      continue;
    }
    c->index = n_started++;
    c->started_after = killed;
    rv = start_call(c, now);
    if (rv != 0) {
      printf("rr: failed %ld %s UNAVAILABLE - \"call start: %s\"\n", c->index,
             phase_name[c->started_after ? PH_AFTER : PH_BEFORE], sgrpc_strerror(rv));
      free(c);
      n_failed++;
      n_done++;
      continue;
    }
    /* a started call always ends through SGRPC_EV_CLOSE, which counts it */
  }
}

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s --target=TARGET --calls=N [--concurrency=C] [--kill_pid=PID"
          " --kill_after=K] [--warmup_backends=W] [--authority=NAME]\n"
          "          [--lb_policy=NAME] [--retry_unavailable=R]\n",
          argv0);
}

int main(int argc, char **argv) {
  const char *target = NULL, *lb_policy = NULL, *v;
  long concurrency = 8;
  int k;
  int i;
  size_t j;
  sgrpc_net_channel_opts co;
  Grpc__Testing__SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  int64_t until, warm_until;
  for (i = 1; i < argc; i++) {
    if (iop_flag(argc, argv, &i, "target", 0, &v)) target = v;
    else if (iop_flag(argc, argv, &i, "calls", 0, &v)) n_calls = v ? atol(v) : 0;
    else if (iop_flag(argc, argv, &i, "concurrency", 0, &v)) concurrency = v ? atol(v) : 0;
    else if (iop_flag(argc, argv, &i, "kill_pid", 0, &v)) kill_pid = v ? (pid_t)atol(v) : 0;
    else if (iop_flag(argc, argv, &i, "kill_after", 0, &v)) kill_after = v ? atol(v) : 0;
    else if (iop_flag(argc, argv, &i, "warmup_backends", 0, &v)) warmup_want = v ? atol(v) : 0;
    else if (iop_flag(argc, argv, &i, "authority", 0, &v)) authority = v;
    else if (iop_flag(argc, argv, &i, "lb_policy", 0, &v)) lb_policy = v;
    else if (iop_flag(argc, argv, &i, "retry_unavailable", 0, &v)) retry_max = v ? atol(v) : 0;
    else {
      usage(argv[0]);
      return 2;
    }
  }
  if (!target || !*target || n_calls <= 0 || concurrency <= 0 || kill_pid < 0 ||
      warmup_want < 0 || warmup_want > MAX_IDS || retry_max < 0) {
    usage(argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  req.fill_server_id = 1;
  request_len = grpc__testing__simple_request__pack(&req, request);
  if (sgrpc_epoll_new(&loop, NULL) != 0) {
    printf("rr: cannot create the epoll loop\n");
    return 1;
  }
  memset(&co, 0, sizeof(co));
  co.target = target;
  co.wait_for_ready = 1;
  co.lb_policy = lb_policy;
  if (sgrpc_epoll_channel_new(loop, &co, &channel) != 0) {
    printf("rr: bad target %s\n", target);
    sgrpc_epoll_del(loop);
    return 2;
  }
  warming = warmup_want > 0;
  warm_until = sgrpc_epoll_now() + WARMUP_TIMEOUT_NS;
  until = sgrpc_epoll_now() + RUN_TIMEOUT_NS;
  top_up(concurrency, sgrpc_epoll_now());
  while (n_done < n_calls && sgrpc_epoll_now() < until) {
    if (sgrpc_epoll_run_once(loop, 50) < 0) break;
    if (warming && sgrpc_epoll_now() >= warm_until) {
      /* a warm-up call may still be in flight: it is not counted */
      warming = 0;
    }
    top_up(concurrency, sgrpc_epoll_now());
  }
  if (n_done < n_calls) printf("rr: timed out with %ld calls done\n", n_done);
  sgrpc_net_channel_close(channel, sgrpc_epoll_now());
  until = sgrpc_epoll_now() + 1000000000LL;
  while (sgrpc_epoll_now() < until && sgrpc_epoll_run_once(loop, 20) > 0) {
  }
  sgrpc_epoll_del(loop);
  if (warmup_want > 0)
    printf("rr: warmup %ld calls, %zu backends answered\n", n_warm_calls, n_warm_ids);
  for (k = 0; k < PH_COUNT_; k++)
    for (j = 0; j < n_ids; j++)
      if (ids[j].count[k]) printf("rr: served %s %s %ld\n", phase_name[k], ids[j].id, ids[j].count[k]);
  while (retry_head) { /* the run timed out with these waiting */
    lcall *c = retry_head;
    retry_head = c->next_retry;
    free(c);
  }
  if (n_retried) printf("rr: retries %ld\n", n_retried);
  printf("rr: total ok=%ld failed=%ld\n", n_ok, n_failed + (n_calls - n_done));
  return n_ok == n_calls ? 0 : 1;
}
