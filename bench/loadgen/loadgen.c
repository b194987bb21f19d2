/*
 * sgrpc-loadgen: a gRPC load generator on sgrpc's epoll client, for the
 * bench.Echo service (bench/proto/echo.proto) or any server of the same
 * shape (a unary and a bidi-streaming method taking and returning a
 * message with one bytes field).
 *
 *   sgrpc-loadgen --target=127.0.0.1:50051 [--mode=unary|stream|idle|hold]
 *                 [--connections=C] [--concurrency=M]
 *                 [--duration=SECONDS | --requests=N] [--payload=BYTES]
 *                 [--hold=SECONDS] [--interval=SECONDS]
 *                 [--path=/pkg.Svc/Method] [--quiet]
 *
 * unary   M calls in flight in total, spread over C connections; each call
 *         sends one EchoMsg and half-closes; a new call starts as soon as
 *         one ends.
 * stream  M bidi streams spread over C connections; each sends a message,
 *         waits for its echo, sends the next (ping-pong); a "request" is
 *         one echoed message. Streams half-close when the run ends.
 * idle    C connections each make one unary call, then stay open and idle
 *         for --hold seconds (to measure a server's memory per idle
 *         connection).
 * hold    M streams over C connections each exchange one message and stay
 *         open for --hold seconds (memory per open call).
 * paced   C connections, each making one unary call every --interval
 *         seconds (phases spread evenly over the interval), for
 *         --duration seconds: many connections at a low rate (bench/run
 *         --scale). "READY" once every connection has made its first
 *         call; the latency figures count the calls after that only.
 * For idle and hold, "READY" is printed once everything is open.
 *
 * Every call's grpc-status is checked (and every reply's length against
 * the request); anything but OK counts as an error, by status name. The
 * exit status is 0 only when there were no errors and at least one
 * request completed. The last line is machine-readable:
 *   RESULT ok=.. errors=.. elapsed_s=.. rps=.. p50_us=.. p90_us=..
 *          p99_us=.. p999_us=.. max_us=.. cpu_us_per_req=.. mib_s=..
 */
#define _GNU_SOURCE
#include <sgrpc/epoll.h>

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "echo_msg.h"

/* ---- latency histogram: log-linear, about 1.6 % resolution ---- */

#define H_SUB 64 /* buckets per power of two */
#define H_BUCKETS (64 * H_SUB)

typedef struct hist {
  uint64_t count;
  uint64_t max;
  uint64_t b[H_BUCKETS];
} hist;

static unsigned h_index(uint64_t v) {
  unsigned e;
  if (v < H_SUB) return (unsigned)v;
  e = 63u - (unsigned)__builtin_clzll(v); /* v >= 2^e, e >= 6 */
  return (e - 5) * H_SUB + (unsigned)((v >> (e - 6)) - H_SUB);
}

/* The lowest value that falls into bucket i. */
static uint64_t h_value(unsigned i) {
  unsigned e;
  if (i < H_SUB) return i;
  e = i / H_SUB + 5;
  return (uint64_t)(i % H_SUB + H_SUB) << (e - 6);
}

static void h_add(hist *h, uint64_t v) {
  h->b[h_index(v)]++;
  h->count++;
  if (v > h->max) h->max = v;
}

/* The q-quantile (0 < q <= 1), as the middle of its bucket. */
static double h_quantile(const hist *h, double q) {
  uint64_t want, seen = 0;
  unsigned i;
  if (!h->count) return 0;
  want = (uint64_t)ceil(q * (double)h->count);
  if (want == 0) want = 1;
  for (i = 0; i < H_BUCKETS; i++) {
    seen += h->b[i];
    if (seen >= want) {
      double lo = (double)h_value(i), hi = (double)h_value(i + 1);
      double mid = (lo + hi) / 2;
      return mid > (double)h->max ? (double)h->max : mid;
    }
  }
  return (double)h->max;
}

/* ---- the run ---- */

enum { MODE_UNARY, MODE_STREAM, MODE_IDLE, MODE_HOLD, MODE_PACED };

typedef struct slot {
  int conn;           /* index of its channel */
  sgrpc_call *call;   /* the call in flight, NULL between calls */
  int64_t t0;         /* when the request in flight was sent */
  int replies;        /* replies on the current unary call */
  int closing;        /* stream: half-closed */
  int replies_seen;   /* paced: its first call has ended */
} slot;

static struct {
  int mode;
  const char *target;
  const char *path;
  int connections, concurrency;
  double duration, hold, interval;
  int64_t pace_t0;    /* paced: the schedule's origin */
  int pace_next;      /* paced: next slot due, in phase order */
  uint64_t pace_round;
  uint64_t late;      /* paced: a slot was still busy when due again */
  int64_t t_ready;    /* paced: when READY was printed (0: never) */
  uint64_t ok_at_ready;
  uint64_t requests; /* 0: run for duration */
  size_t payload;
  int quiet;
  sgrpc_epoll *loop;
  sgrpc_net_channel **ch;
  slot *slots;
  uint8_t *msg;
  size_t msg_len;
  uint64_t started, ok, errors;
  uint64_t ok_window; /* ok before the duration ran out (for the rate) */
  uint64_t err_by_status[17], err_other;
  uint64_t bytes; /* payload bytes echoed */
  int stopping;    /* no new requests */
  int active;      /* calls not yet closed */
  int ready;       /* idle/hold: requests answered so far */
  hist h;
  int64_t t_start, t_end;
} g;

static void slot_start(slot *s);

static void finish_run(void) {
  g.stopping = 1;
  if (g.active == 0) sgrpc_epoll_stop(g.loop);
}

static int may_start(void) {
  if (g.stopping) return 0;
  if (g.requests && g.started >= g.requests) return 0;
  return 1;
}

static void count_error(int code) {
  g.errors++;
  if (code >= 0 && code <= 16) g.err_by_status[code]++;
  else g.err_other++;
}

/* Sends the request. Large ones go from g.msg itself (it lives as long
 * as the loop): no copy, so the generator costs less per byte than the
 * servers it measures. */
static int send_msg(sgrpc_call *call, unsigned flags) {
  if (g.msg_len >= (16u << 10))
    return sgrpc_call_send_borrowed(call, g.msg, g.msg_len, flags, NULL, NULL);
  return sgrpc_call_send(call, g.msg, g.msg_len, flags);
}

/* Checks one reply: same length as the request and a valid EchoMsg. */
static int reply_ok(const sgrpc_event *ev) {
  size_t plen;
  return ev->u.message.len == g.msg_len &&
         echo_msg_check(ev->u.message.data, ev->u.message.len, &plen) == 0 &&
         plen == g.payload;
}

static void all_ready_check(void) {
  if (g.ready == (g.mode == MODE_IDLE || g.mode == MODE_PACED ? g.connections : g.concurrency)) {
    printf("READY\n");
    fflush(stdout);
    /* paced: latency from here on is the steady state's */
    if (g.mode == MODE_PACED) {
      memset(&g.h, 0, sizeof(g.h));
      g.t_ready = sgrpc_epoll_now();
      g.ok_at_ready = g.ok;
    }
  }
}

static void on_call(const sgrpc_event *ev, void *ud, int64_t cb_now) {
  slot *s = ud;
  int64_t now;
  (void)cb_now; /* latency is measured on a fresh clock read */
  switch (ev->type) {
  case SGRPC_EV_MESSAGE:
    if (!reply_ok(ev)) {
      s->replies = -1000; /* judged at CLOSE */
      if (g.mode != MODE_UNARY && g.mode != MODE_IDLE) {
        count_error(-1);
        sgrpc_call_cancel(s->call);
      }
      break;
    }
    s->replies++;
    if (g.mode == MODE_STREAM) {
      now = sgrpc_epoll_now();
      h_add(&g.h, (uint64_t)(now - s->t0));
      g.ok++;
      if (!g.t_end) g.ok_window++;
      g.bytes += g.payload;
      if (g.requests && g.ok >= g.requests) finish_run();
      if (may_start()) {
        g.started++;
        s->t0 = now;
        if (send_msg(s->call, 0) != 0) {
          count_error(-1);
          sgrpc_call_cancel(s->call);
        }
      } else if (!s->closing) {
        s->closing = 1;
        sgrpc_call_close_send(s->call);
      }
    } else if (g.mode == MODE_HOLD) {
      g.ready++;
      all_ready_check();
    }
    break;
  case SGRPC_EV_CLOSE:
    now = sgrpc_epoll_now();
    s->call = NULL;
    g.active--;
    if (g.mode == MODE_UNARY || g.mode == MODE_IDLE || g.mode == MODE_PACED) {
      if (ev->u.close.status.code == SGRPC_STATUS_OK && s->replies == 1) {
        h_add(&g.h, (uint64_t)(now - s->t0));
        g.ok++;
        if (!g.t_end) g.ok_window++;
        g.bytes += g.payload;
      } else {
        count_error(ev->u.close.status.code == SGRPC_STATUS_OK ? -1 : ev->u.close.status.code);
        if (!g.quiet && g.errors <= 3)
          fprintf(stderr, "sgrpc-loadgen: call ended %s \"%s\"\n",
                  sgrpc_status_name(ev->u.close.status.code), ev->u.close.status.message);
      }
      if (g.mode == MODE_IDLE) {
        g.ready++;
        all_ready_check();
      } else if (g.mode == MODE_PACED) {
        if (!s->replies_seen) {
          s->replies_seen = 1;
          g.ready++;
          all_ready_check();
        }
      } else if (may_start()) {
        slot_start(s);
      } else if (g.requests && g.ok + g.errors >= g.requests) {
        finish_run();
      }
    } else if (ev->u.close.status.code != SGRPC_STATUS_OK) {
      count_error(ev->u.close.status.code);
      if (!g.quiet && g.errors <= 3)
        fprintf(stderr, "sgrpc-loadgen: stream ended %s \"%s\"\n",
                sgrpc_status_name(ev->u.close.status.code), ev->u.close.status.message);
    }
    if (g.stopping && g.active == 0) sgrpc_epoll_stop(g.loop);
    break;
  default:
    break;
  }
}

static void slot_start(slot *s) {
  sgrpc_call_opts o;
  int rv;
  int unary = g.mode == MODE_UNARY || g.mode == MODE_IDLE || g.mode == MODE_PACED;
  memset(&o, 0, sizeof(o));
  o.path = g.path ? g.path : unary ? "/bench.Echo/Unary" : "/bench.Echo/Stream";
  o.user_data = s;
  s->replies = 0;
  s->closing = 0;
  s->t0 = sgrpc_epoll_now();
  o.on_event = on_call;
  rv = sgrpc_net_channel_call(g.ch[s->conn], &o, s->t0, &s->call);
  g.started++;
  if (rv != 0) {
    count_error(-1);
    if (!g.quiet) fprintf(stderr, "sgrpc-loadgen: call start: %s\n", sgrpc_strerror(rv));
    finish_run();
    return;
  }
  g.active++;
  rv = send_msg(s->call, unary ? SGRPC_SEND_END : 0);
  if (rv != 0) {
    if (!g.quiet) fprintf(stderr, "sgrpc-loadgen: send: %s\n", sgrpc_strerror(rv));
    sgrpc_call_cancel(s->call); /* counted as an error at its CLOSE */
  }
}

/* When slot i is due in round r (paced). */
static int64_t pace_due(int i, uint64_t r) {
  double at = ((double)r + (double)i / g.connections) * g.interval * 1e9;
  return g.pace_t0 + (int64_t)at;
}

/* Paced: every few milliseconds, starts the calls that are due (a slot
 * still busy from its last call skips a turn, counted as late). */
static void on_pace(sgrpc_net_loop *loop, void *ud, int64_t now) {
  int guard;
  (void)ud;
  if (g.stopping) return;
  for (guard = 0; guard < g.connections && pace_due(g.pace_next, g.pace_round) <= now; guard++) {
    slot *s = &g.slots[g.pace_next];
    if (s->call) g.late++;
    else slot_start(s);
    if (++g.pace_next == g.connections) {
      g.pace_next = 0;
      g.pace_round++;
    }
  }
  sgrpc_net_timer_start(loop, now + 2000000, on_pace, NULL, NULL);
}

/* A net timer: what it queues is written when it returns. */
static void on_deadline(sgrpc_net_loop *loop, void *ud, int64_t now) {
  size_t i;
  (void)loop;
  (void)ud;
  g.t_end = now;
  if (g.mode == MODE_PACED) g.active--; /* the schedule's own count */
  finish_run();
  /* Streams half-close now, not at their next reply. */
  for (i = 0; i < (size_t)g.concurrency; i++) {
    slot *s = &g.slots[i];
    if (s->call && g.mode != MODE_UNARY && !s->closing) {
      s->closing = 1;
      sgrpc_call_close_send(s->call);
    }
  }
}

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s --target=HOST:PORT [--mode=unary|stream|idle|hold|paced]\n"
          "       [--connections=C] [--concurrency=M] [--duration=S | --requests=N]\n"
          "       [--payload=BYTES] [--hold=S] [--interval=S] [--path=/pkg.Svc/Method]\n"
          "       [--quiet]\n",
          argv0);
}

static int opt(const char *arg, const char *name, const char **val) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0 || arg[n] != '=') return 0;
  *val = arg + n + 1;
  return 1;
}

int main(int argc, char **argv) {
  sgrpc_net_channel_opts co;
  sgrpc_settings st;
  struct rusage ru0, ru1;
  const char *v;
  uint8_t hdr[16];
  size_t hl, i;
  int k;
  double elapsed, cpu_us;

  g.target = "127.0.0.1:50051";
  g.connections = 1;
  g.concurrency = 1;
  g.duration = 5;
  g.payload = 128;
  g.hold = 5;
  g.interval = 5;
  for (k = 1; k < argc; k++) {
    const char *a = argv[k];
    if (opt(a, "--target", &v)) g.target = v;
    else if (opt(a, "--mode", &v)) {
      if (strcmp(v, "unary") == 0) g.mode = MODE_UNARY;
      else if (strcmp(v, "stream") == 0) g.mode = MODE_STREAM;
      else if (strcmp(v, "idle") == 0) g.mode = MODE_IDLE;
      else if (strcmp(v, "hold") == 0) g.mode = MODE_HOLD;
      else if (strcmp(v, "paced") == 0) g.mode = MODE_PACED;
      else return usage(argv[0]), 2;
    } else if (opt(a, "--connections", &v)) g.connections = atoi(v);
    else if (opt(a, "--concurrency", &v)) g.concurrency = atoi(v);
    else if (opt(a, "--duration", &v)) g.duration = atof(v);
    else if (opt(a, "--requests", &v)) g.requests = strtoull(v, NULL, 10);
    else if (opt(a, "--payload", &v)) g.payload = (size_t)strtoull(v, NULL, 10);
    else if (opt(a, "--hold", &v)) g.hold = atof(v);
    else if (opt(a, "--interval", &v)) g.interval = atof(v);
    else if (opt(a, "--path", &v)) g.path = v;
    else if (strcmp(a, "--quiet") == 0) g.quiet = 1;
    else return usage(argv[0]), 2;
  }
  if (g.mode == MODE_IDLE || g.mode == MODE_PACED) g.concurrency = g.connections;
  if (g.connections < 1 || g.concurrency < 1 || g.duration <= 0 || g.payload > (1u << 30) ||
      g.interval <= 0) {
    usage(argv[0]);
    return 2;
  }
  if (g.concurrency < g.connections) g.connections = g.concurrency;

  hl = echo_msg_header(g.payload, hdr);
  g.msg_len = hl + g.payload;
  g.msg = malloc(g.msg_len ? g.msg_len : 1);
  g.slots = calloc((size_t)g.concurrency, sizeof(*g.slots));
  g.ch = calloc((size_t)g.connections, sizeof(*g.ch));
  if (!g.msg || !g.slots || !g.ch) return 1;
  memcpy(g.msg, hdr, hl);
  for (i = 0; i < g.payload; i++) g.msg[hl + i] = (uint8_t)('a' + i % 26);

  if (sgrpc_epoll_new(&g.loop, NULL) != 0) return 1;
  sgrpc_settings_default(&st);
  /* A 1 GiB payload must fit; the server decides what it accepts. */
  st.max_recv_message_size = (uint32_t)(g.msg_len + 64 > 4u << 20 ? g.msg_len + 64 : 4u << 20);
  /* room for every request queued and every reply arriving at once */
  if (g.msg_len > (1u << 20)) {
    size_t want = 2 * (g.msg_len + 5) * (size_t)(g.concurrency + 1);
    if (want > st.conn_memory_budget) st.conn_memory_budget = want;
    if (want > st.max_outbound_queue) st.max_outbound_queue = want;
  }
  memset(&co, 0, sizeof(co));
  co.target = g.target;
  co.settings = &st;
  for (k = 0; k < g.connections; k++) {
    int rv = sgrpc_epoll_channel_new(g.loop, &co, &g.ch[k]);
    if (rv != 0) {
      fprintf(stderr, "sgrpc-loadgen: bad target %s: %s\n", g.target, sgrpc_strerror(rv));
      return 2;
    }
  }

  getrusage(RUSAGE_SELF, &ru0);
  g.t_start = sgrpc_epoll_now();
  g.t_end = 0;
  for (k = 0; k < g.concurrency; k++) {
    g.slots[k].conn = k % g.connections;
    if (g.mode != MODE_PACED && may_start()) slot_start(&g.slots[k]);
  }
  if (g.mode == MODE_PACED) {
    g.pace_t0 = g.t_start;
    on_pace(sgrpc_epoll_net(g.loop), NULL, g.t_start);
    g.active++; /* the schedule itself: run until the deadline */
  }
  if (g.mode == MODE_IDLE || g.mode == MODE_HOLD)
    sgrpc_net_timer_start(sgrpc_epoll_net(g.loop), sgrpc_epoll_now() + (int64_t)(g.hold * 1e9),
                          on_deadline, NULL, NULL);
  else if (!g.requests)
    sgrpc_net_timer_start(sgrpc_epoll_net(g.loop), sgrpc_epoll_now() + (int64_t)(g.duration * 1e9),
                          on_deadline, NULL, NULL);
  if (g.active) sgrpc_epoll_run(g.loop);
  if (!g.t_end) {
    g.t_end = sgrpc_epoll_now();
    g.ok_window = g.ok;
  }
  getrusage(RUSAGE_SELF, &ru1);
  for (k = 0; k < g.connections; k++) sgrpc_net_channel_del(g.ch[k]);
  sgrpc_epoll_del(g.loop);

  elapsed = (double)(g.t_end - g.t_start) / 1e9;
  cpu_us = ((double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
            (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec)) * 1e6 +
           (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
           (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
  if (!g.quiet) {
    static const char *const names[] = {"unary", "stream", "idle", "hold", "paced"};
    printf("sgrpc-loadgen: %s %s, %d connection(s), %d in flight, %zu-byte payload\n",
           names[g.mode], g.target, g.connections, g.concurrency, g.payload);
    printf("  requests   %" PRIu64 " ok, %" PRIu64 " errors in %.3f s\n", g.ok, g.errors, elapsed);
    printf("  rate       %.1f req/s, %.2f MiB/s of payload each way\n",
           elapsed > 0 ? (double)g.ok_window / elapsed : 0,
           elapsed > 0 ? (double)g.bytes / elapsed / 1048576.0 : 0);
    printf("  latency    p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
           h_quantile(&g.h, 0.5) / 1e3, h_quantile(&g.h, 0.9) / 1e3, h_quantile(&g.h, 0.99) / 1e3,
           h_quantile(&g.h, 0.999) / 1e3, (double)g.h.max / 1e3);
    printf("  client CPU %.2f us per request\n", g.ok ? cpu_us / (double)g.ok : 0);
    for (k = 0; k <= 16; k++)
      if (g.err_by_status[k])
        printf("  errors     %s: %" PRIu64 "\n", sgrpc_status_name(k), g.err_by_status[k]);
    if (g.late) printf("  late       %" PRIu64 " calls skipped: the previous one was still running\n",
                       g.late);
    if (g.err_other) printf("  errors     other (bad reply, start/send failure): %" PRIu64 "\n",
                            g.err_other);
  }
  printf("RESULT ok=%" PRIu64 " errors=%" PRIu64 " elapsed_s=%.4f rps=%.1f p50_us=%.2f "
         "p90_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f cpu_us_per_req=%.3f mib_s=%.2f "
         "ready_rps=%.1f late=%" PRIu64 "\n",
         g.ok, g.errors, elapsed, elapsed > 0 ? (double)g.ok_window / elapsed : 0,
         h_quantile(&g.h, 0.5) / 1e3, h_quantile(&g.h, 0.9) / 1e3, h_quantile(&g.h, 0.99) / 1e3,
         h_quantile(&g.h, 0.999) / 1e3, (double)g.h.max / 1e3, g.ok ? cpu_us / (double)g.ok : 0,
         elapsed > 0 ? (double)g.bytes / elapsed / 1048576.0 : 0,
         g.t_ready && g.t_end > g.t_ready
             ? (double)(g.ok_window - g.ok_at_ready) / ((double)(g.t_end - g.t_ready) / 1e9)
             : 0.0,
         g.late);
  free(g.msg);
  free(g.slots);
  free(g.ch);
  return g.errors == 0 && g.ok > 0 ? 0 : 1;
}
