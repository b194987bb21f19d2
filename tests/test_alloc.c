/*
 * Allocation failure at every allocation of a small scenario, for both
 * engines (nghttp2 allocates through the same hooks, so its allocations
 * are covered too). Allocation failure must be an error code, never a
 * crash, a leak or a silent loss: every run ends within a bounded loop,
 * every API call returns 0 or a documented code, and after both
 * connections are deleted no allocation is left.
 *
 * Scenario: a unary call with metadata (including a -bin value) answered
 * with a message, a status with a message, details and trailing
 * metadata; a server-streaming call of 3 messages of 20000 bytes; a call
 * the client cancels once the server's headers arrive. The streaming
 * call is compressed with gzip both ways (zlib allocates through the same
 * hooks), and the server starts a graceful shutdown when it sees that
 * call, so all three run to completion under GOAWAY and both connections
 * then close cleanly (CONN_CLOSED with reason 0).
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- return-code classes ---- */

static int is_conn_gone(int rv) { return sgrpc_is_fatal(rv) || rv == SGRPC_ERR_CONN_CLOSED; }

/* ---- a failing allocator that can also keep failing ---- */

typedef struct alloc_ctx {
  failmem fm;
  sgrpc_mem inner; /* failmem's hooks */
  long fail_from;  /* sticky mode: every allocation from this one fails */
} alloc_ctx;

static int sticky_fail(alloc_ctx *a) {
  if (a->fail_from && a->fm.count + 1 >= a->fail_from) {
    a->fm.count++;
    a->fm.failures++;
    return 1;
  }
  return 0;
}
static void *w_malloc(size_t n, void *ud) {
  alloc_ctx *a = ud;
  return sticky_fail(a) ? NULL : a->inner.malloc(n, a->inner.user_data);
}
static void w_free(void *p, void *ud) {
  alloc_ctx *a = ud;
  a->inner.free(p, a->inner.user_data);
}
static void *w_calloc(size_t k, size_t n, void *ud) {
  alloc_ctx *a = ud;
  return sticky_fail(a) ? NULL : a->inner.calloc(k, n, a->inner.user_data);
}
static void *w_realloc(void *p, size_t n, void *ud) {
  alloc_ctx *a = ud;
  if (p && n == 0) return a->inner.realloc(p, n, a->inner.user_data);
  return sticky_fail(a) ? NULL : a->inner.realloc(p, n, a->inner.user_data);
}

/* ---- the scenario ---- */

enum { C_UNARY, C_STREAM, C_CANCEL, NC };
static const char *const paths[NC] = {"/t.A/Unary", "/t.A/Stream", "/t.A/Cancel"};
static const uint8_t bin_in[] = {0x00, 0x01, 0x02, 0xff, 0x80};
static const uint8_t bin_tr[] = {0x00, 0xfe};
static const uint8_t details[] = {0x08, 0x06, 0x12, 0x03, 'a', 'b', 'c'};

/* Streamed messages span DATA frames: reassembly allocates too. */
#define STREAM_MSG 20000
static void stream_fill(uint8_t *m, int k) {
  size_t j;
  for (j = 0; j < STREAM_MSG; j++) m[j] = (uint8_t)(k * 77 + j * 3 + (j >> 9));
}

typedef struct scen {
  sgrpc_conn *cli, *srv;
  int64_t now;
  size_t split; /* deliver input in pieces of this size (0: whole) */
  int bad;      /* an API returned a code it does not document */
  char bad_what[160];
  int visible; /* some API reported an error, or a call ended in error */
  /* client */
  sgrpc_call *cc[NC];
  int c_closed[NC], c_status[NC], c_msgs[NC], c_headers[NC];
  int c_payload_ok; /* every message had the expected bytes */
  int u_trailers_ok;
  /* server */
  sgrpc_call *sc[NC];
  int s_new[NC], s_closed[NC], s_status[NC];
  int s_md_ok;
  int c_compressed;   /* stream replies that came compressed on the wire */
  int s_compressed;   /* stream requests that came compressed */
  int cli_clean, srv_clean; /* CONN_CLOSED with reason 0 seen */
  int c_retry[NC];          /* client CLOSE said retry_safe (never processed) */
  int c_cut[NC], s_cut[NC]; /* CLOSE because the connection ended under the call */
} scen;

static void bad_code(scen *s, const char *what, long rv) {
  if (!s->bad)
    snprintf(s->bad_what, sizeof(s->bad_what), "%s returned %ld (%s)", what, rv,
             sgrpc_strerror((int)rv));
  s->bad = 1;
}

/* Checks a call-level API result: 0 or one of the codes the header
 * documents for it under these conditions. */
static int check_call_rv(scen *s, const char *what, int rv) {
  if (rv == 0) return 0;
  s->visible = 1;
  if (rv == SGRPC_ERR_NOMEM || rv == SGRPC_ERR_CALL_CLOSED || is_conn_gone(rv)) return rv;
  bad_code(s, what, rv);
  return rv;
}

static int check_conn_rv(scen *s, const char *what, int rv) {
  if (rv != 0) bad_code(s, what, rv);
  return rv;
}

/* Ends a call the application gives up on. Out of memory changes
 * nothing, so one retry is what a careful application does. */
static void give_up(scen *s, sgrpc_call *call) {
  int rv = sgrpc_call_cancel(call);
  if (rv == SGRPC_ERR_NOMEM) rv = sgrpc_call_cancel(call);
  if (rv == SGRPC_ERR_CALL_CLOSED) rv = 0; /* ended meanwhile: fine */
  check_call_rv(s, "cancel", rv);
}

static int find_index(scen *s, sgrpc_call *call, sgrpc_call *const *tab) {
  int i;
  (void)s;
  for (i = 0; i < NC; i++)
    if (tab[i] == call) return i;
  return -1;
}

static int md_has(const sgrpc_md *md, size_t n, const char *key, const uint8_t *v, size_t vl) {
  size_t i;
  for (i = 0; i < n; i++)
    if (strcmp(md[i].key, key) == 0 && md[i].value_len == vl && memcmp(md[i].value, v, vl) == 0)
      return 1;
  return 0;
}

static void srv_event(scen *s, const sgrpc_event *ev) {
  int i = find_index(s, ev->call, s->sc);
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW: {
    int k;
    for (k = 0; k < NC; k++)
      if (ev->u.call_new.path_len == strlen(paths[k]) &&
          memcmp(ev->u.call_new.path, paths[k], ev->u.call_new.path_len) == 0)
        break;
    if (k == NC || s->sc[k]) {
      bad_code(s, "CALL_NEW with an unknown or repeated path", 0);
      sgrpc_call_release(ev->call);
      return;
    }
    s->sc[k] = ev->call;
    s->s_new[k] = 1;
    if (k == C_STREAM) {
      int rv = sgrpc_call_set_encoding(ev->call, "gzip");
      if (rv != 0) check_call_rv(s, "set_encoding", rv);
      rv = sgrpc_conn_shutdown(s->srv, SGRPC_NEVER, s->now);
      if (rv != 0) {
        s->visible = 1;
        if (rv != SGRPC_ERR_NOMEM && !is_conn_gone(rv)) bad_code(s, "conn_shutdown", rv);
      }
    }
    if (k == C_UNARY)
      s->s_md_ok =
          md_has(ev->u.call_new.md, ev->u.call_new.md_count, "x-a", (const uint8_t *)"1", 1) &&
          md_has(ev->u.call_new.md, ev->u.call_new.md_count, "x-b-bin", bin_in, sizeof(bin_in));
    if (k == C_CANCEL &&
        check_call_rv(s, "send_headers", sgrpc_call_send_headers(ev->call, NULL, 0)))
      give_up(s, ev->call);
    return;
  }
  case SGRPC_EV_MESSAGE:
    if (i == C_STREAM && ev->u.message.compressed) s->s_compressed++;
    if (i == C_UNARY) {
      sgrpc_md md[2] = {SGRPC_MD_STR("x-t", "v"), {"x-t-bin", 7, bin_tr, sizeof(bin_tr)}};
      sgrpc_status st = {
          SGRPC_STATUS_ALREADY_EXISTS, "exists already", details, sizeof(details), md, 2};
      if (ev->u.message.len != 4 || memcmp(ev->u.message.data, "ping", 4) != 0)
        bad_code(s, "server got a wrong unary request", 0);
      if (check_call_rv(s, "send(unary reply)",
                        sgrpc_call_send(ev->call, (const uint8_t *)"pong", 4, 0)) != 0) {
        /* could not reply: end the call so the client is not left waiting */
        give_up(s, ev->call);
        return;
      }
      if (check_call_rv(s, "send_status(unary)", sgrpc_call_send_status(ev->call, &st)) != 0)
        give_up(s, ev->call);
    }
    return;
  case SGRPC_EV_HALF_CLOSE:
    if (i == C_STREAM) {
      sgrpc_status st = {SGRPC_STATUS_OK, NULL, NULL, 0, NULL, 0};
      uint8_t m[STREAM_MSG];
      int k;
      for (k = 0; k < 3; k++) {
        stream_fill(m, k);
        if (check_call_rv(s, "send(stream)", sgrpc_call_send(ev->call, m, sizeof(m), 0))) {
          give_up(s, ev->call);
          return;
        }
      }
      if (check_call_rv(s, "send_status(stream)", sgrpc_call_send_status(ev->call, &st)) != 0)
        give_up(s, ev->call);
    }
    return;
  case SGRPC_EV_CLOSE:
    if (i >= 0) {
      s->s_closed[i]++;
      s->s_status[i] = ev->u.close.status.code;
      s->s_cut[i] = ev->u.close.status.code == SGRPC_STATUS_CANCELLED &&
                    strncmp(ev->u.close.status.message, "connection ", 11) == 0;
      s->sc[i] = NULL;
    }
    sgrpc_call_release(ev->call);
    return;
  case SGRPC_EV_CONN_CLOSED:
    if (ev->u.conn_closed.reason == 0) s->srv_clean = 1;
    return;
  default: return;
  }
}

static void cli_event(scen *s, const sgrpc_event *ev) {
  int i = find_index(s, ev->call, s->cc);
  switch (ev->type) {
  case SGRPC_EV_HEADERS:
    if (i < 0) return;
    s->c_headers[i]++;
    if (i == C_CANCEL) give_up(s, ev->call);
    return;
  case SGRPC_EV_MESSAGE:
    if (i < 0) return;
    if (i == C_UNARY && !(ev->u.message.len == 4 && memcmp(ev->u.message.data, "pong", 4) == 0))
      s->c_payload_ok = 0;
    if (i == C_STREAM) {
      uint8_t want[STREAM_MSG];
      stream_fill(want, s->c_msgs[i]);
      if (!(ev->u.message.len == STREAM_MSG && memcmp(ev->u.message.data, want, STREAM_MSG) == 0))
        s->c_payload_ok = 0;
    }
    if (i == C_CANCEL) s->c_payload_ok = 0;
    if (i == C_STREAM && ev->u.message.compressed) s->c_compressed++;
    s->c_msgs[i]++;
    return;
  case SGRPC_EV_CLOSE: {
    const sgrpc_status_info *st = &ev->u.close.status;
    if (i < 0) {
      bad_code(s, "CLOSE for an unknown client call", 0);
      return;
    }
    s->c_closed[i]++;
    s->c_status[i] = st->code;
    s->c_retry[i] = ev->u.close.retry_safe;
    s->c_cut[i] = st->code == SGRPC_STATUS_UNAVAILABLE && !ev->u.close.retry_safe &&
                  strncmp(st->message, "connection ", 11) == 0;
    if (i == C_UNARY && st->code == SGRPC_STATUS_ALREADY_EXISTS)
      s->u_trailers_ok = strcmp(st->message, "exists already") == 0 &&
                         st->details_len == sizeof(details) &&
                         memcmp(st->details, details, sizeof(details)) == 0 &&
                         md_has(st->md, st->md_count, "x-t", (const uint8_t *)"v", 1) &&
                         md_has(st->md, st->md_count, "x-t-bin", bin_tr, sizeof(bin_tr));
    sgrpc_call_release(ev->call);
    s->cc[i] = NULL;
    return;
  }
  case SGRPC_EV_CONN_CLOSED:
    if (ev->u.conn_closed.reason == 0) s->cli_clean = 1;
    return;
  default: return;
  }
}

static void drain(scen *s, sgrpc_conn *c) {
  sgrpc_event ev;
  int rv, guard;
  for (guard = 0; guard < 10000; guard++) {
    rv = sgrpc_conn_next_event(c, &ev);
    if (rv == 0) return;
    if (rv != 1) {
      bad_code(s, "next_event", rv);
      return;
    }
    if (c == s->srv)
      srv_event(s, &ev);
    else
      cli_event(s, &ev);
  }
  bad_code(s, "next_event never ran dry", 0);
}

/* Moves from's output into to, as an adapter would. Returns bytes moved.
 * A connection-ending code marks that end dead: it gets no more input,
 * but what it still has to send (a GOAWAY) is delivered. */
/* An end that reported a clean CONN_CLOSED has closed its socket: bytes
 * still on the way to it are lost harmlessly. */
static int clean(const scen *s, sgrpc_conn *c) { return c == s->cli ? s->cli_clean : s->srv_clean; }

static size_t pump(scen *s, sgrpc_conn *from, sgrpc_conn *to, int *from_dead, int *to_dead) {
  static uint8_t copy[1 << 17];
  const uint8_t *d;
  ssize_t n = sgrpc_conn_out_peek(from, &d);
  size_t off = 0;
  int guard;
  drain(s, from);
  if (n == SGRPC_ERR_CONN_CLOSED && clean(s, from)) return 0;
  if (n < 0) {
    if (!is_conn_gone((int)n)) bad_code(s, "out_peek", n);
    s->visible = 1;
    *from_dead = 1;
    return 0;
  }
  if (n == 0) return 0;
  if ((size_t)n > sizeof(copy)) n = (ssize_t)sizeof(copy);
  memcpy(copy, d, (size_t)n);
  if (sgrpc_conn_out_consume(from, (size_t)n) != 0) bad_code(s, "out_consume", -1);
  if (*to_dead) return (size_t)n; /* written into a closed socket */
  for (guard = 0; guard < 10000 && off < (size_t)n; guard++) {
    size_t piece = (size_t)n - off;
    ssize_t got;
    if (s->split && piece > s->split) piece = s->split;
    got = sgrpc_conn_recv(to, copy + off, piece, s->now);
    if (got == SGRPC_ERR_CONN_CLOSED && clean(s, to)) break;
    if (got < 0) {
      if (!is_conn_gone((int)got)) bad_code(s, "recv", got);
      s->visible = 1;
      *to_dead = 1;
      drain(s, to);
      break;
    }
    off += (size_t)got;
    drain(s, to);
  }
  return (size_t)n;
}

typedef struct run_result {
  int complete; /* everything happened exactly as without failures */
  int visible;
  int bad;
  long allocs;
  long failures;
  long live_after;
  int rounds;
  int unended; /* client calls still held without their CLOSE at the end */
  char bad_what[160];
} run_result;

static void run_scenario(long fail_at, long fail_from, size_t split, run_result *r) {
  alloc_ctx a;
  sgrpc_mem mem;
  scen s;
  int i, rv, cli_dead = 0, srv_dead = 0, round;
  memset(&a, 0, sizeof(a));
  memset(&s, 0, sizeof(s));
  memset(r, 0, sizeof(*r));
  failmem_init(&a.fm, &a.inner);
  a.fm.fail_at = fail_at;
  a.fail_from = fail_from;
  mem.user_data = &a;
  mem.malloc = w_malloc;
  mem.free = w_free;
  mem.calloc = w_calloc;
  mem.realloc = w_realloc;
  s.now = 1000000000;
  s.split = split;
  s.c_payload_ok = 1;

  rv = sgrpc_conn_client_new(&s.cli, NULL, &mem, s.now);
  if (rv == 0) {
    rv = sgrpc_conn_server_new(&s.srv, NULL, &mem, s.now);
    if (rv != 0) {
      sgrpc_conn_del(s.cli);
      s.cli = NULL;
    }
  }
  if (rv != 0) {
    if (rv != SGRPC_ERR_NOMEM) bad_code(&s, "conn_new", rv);
    if (s.cli || s.srv) bad_code(&s, "conn_new failed but set the pointer", rv);
    s.visible = 1;
    goto done;
  }

  for (i = 0; i < NC; i++) {
    sgrpc_call_opts o;
    sgrpc_md md[2] = {SGRPC_MD_STR("x-a", "1"), {"x-b-bin", 7, bin_in, sizeof(bin_in)}};
    memset(&o, 0, sizeof(o));
    o.path = paths[i];
    o.authority = "alloc.test";
    if (i == C_STREAM) o.encoding = "gzip";
    if (i == C_UNARY) {
      o.md = md;
      o.md_count = 2;
    }
    rv = sgrpc_call_start(s.cli, &o, s.now, &s.cc[i]);
    if (rv != 0) {
      s.visible = 1;
      if (rv != SGRPC_ERR_NOMEM && !is_conn_gone(rv)) bad_code(&s, "call_start", rv);
      if (s.cc[i]) bad_code(&s, "call_start failed but set the call", rv);
      continue;
    }
    if (i == C_UNARY)
      rv = sgrpc_call_send(s.cc[i], (const uint8_t *)"ping", 4, SGRPC_SEND_END);
    else if (i == C_STREAM)
      rv = sgrpc_call_send(s.cc[i], (const uint8_t *)"3", 1, SGRPC_SEND_END);
    else
      rv = sgrpc_call_send(s.cc[i], (const uint8_t *)"c", 1, 0);
    if (check_call_rv(&s, "call_send(client)", rv) != 0) {
      /* the request is incomplete: give up on this call */
      sgrpc_call_release(s.cc[i]);
      s.cc[i] = NULL;
    }
  }

  for (round = 0; round < 200; round++) {
    size_t moved = pump(&s, s.cli, s.srv, &cli_dead, &srv_dead);
    moved += pump(&s, s.srv, s.cli, &srv_dead, &cli_dead);
    if (!moved && !sgrpc_conn_want_write(s.cli) && !sgrpc_conn_want_write(s.srv)) break;
  }
  r->rounds = round;
  if (round == 200) bad_code(&s, "the pair never went quiet", 0);
  /* An end that failed (or finished) closes its socket: the other end
   * learns it from its transport. */
  if (cli_dead || srv_dead || !sgrpc_conn_is_alive(s.cli) || !sgrpc_conn_is_alive(s.srv)) {
    if (cli_dead || srv_dead || !s.cli_clean || !s.srv_clean) s.visible = 1;
    if (check_conn_rv(&s, "transport_closed", sgrpc_conn_transport_closed(s.cli)) == 0)
      drain(&s, s.cli);
    if (check_conn_rv(&s, "transport_closed", sgrpc_conn_transport_closed(s.srv)) == 0)
      drain(&s, s.srv);
  }
  drain(&s, s.cli);
  drain(&s, s.srv);
  for (i = 0; i < NC; i++) {
    if (s.cc[i] && !s.c_closed[i]) r->unended++;
  }
  if ((!sgrpc_conn_is_alive(s.cli) && !s.cli_clean) || (!sgrpc_conn_is_alive(s.srv) && !s.srv_clean))
    s.visible = 1;
  /* CONN_CLOSED with reason 0 promises a clean end: the connection did
   * not end under a call (calls that failed for their own reasons, or
   * were refused above a GOAWAY's last id, do not count) */
  for (i = 0; i < NC; i++) {
    if (s.srv_clean && s.s_cut[i]) bad_code(&s, "server CONN_CLOSED reason 0, but a call was cut", i);
    if (s.cli_clean && s.c_cut[i]) bad_code(&s, "client CONN_CLOSED reason 0, but a call was cut", i);
  }
  for (i = 0; i < NC; i++) {
    /* a call that ended other than planned is a visible failure */
    if (s.c_closed[i] > 1 || s.s_closed[i] > 1) bad_code(&s, "a call closed twice", i);
  }
  if (s.c_closed[C_UNARY] && s.c_status[C_UNARY] != SGRPC_STATUS_ALREADY_EXISTS) s.visible = 1;
  if (s.c_closed[C_STREAM] && s.c_status[C_STREAM] != SGRPC_STATUS_OK) s.visible = 1;
  if (s.c_closed[C_CANCEL] && s.c_status[C_CANCEL] != SGRPC_STATUS_CANCELLED) s.visible = 1;
  if (s.s_closed[C_UNARY] && s.s_status[C_UNARY] != SGRPC_STATUS_ALREADY_EXISTS) s.visible = 1;
  if (s.s_closed[C_STREAM] && s.s_status[C_STREAM] != SGRPC_STATUS_OK) s.visible = 1;
  if (s.s_closed[C_CANCEL] && s.s_status[C_CANCEL] != SGRPC_STATUS_CANCELLED) s.visible = 1;

  r->complete = s.c_closed[C_UNARY] == 1 && s.c_status[C_UNARY] == SGRPC_STATUS_ALREADY_EXISTS &&
                s.c_msgs[C_UNARY] == 1 && s.c_headers[C_UNARY] == 1 && s.u_trailers_ok &&
                s.c_closed[C_STREAM] == 1 && s.c_status[C_STREAM] == SGRPC_STATUS_OK &&
                s.c_msgs[C_STREAM] == 3 && s.c_closed[C_CANCEL] == 1 &&
                s.c_status[C_CANCEL] == SGRPC_STATUS_CANCELLED && s.c_payload_ok && s.s_md_ok &&
                s.s_closed[C_UNARY] == 1 && s.s_status[C_UNARY] == SGRPC_STATUS_ALREADY_EXISTS &&
                s.s_closed[C_STREAM] == 1 && s.s_status[C_STREAM] == SGRPC_STATUS_OK &&
                s.s_closed[C_CANCEL] == 1 && s.s_status[C_CANCEL] == SGRPC_STATUS_CANCELLED &&
                s.c_compressed == 3 && s.s_compressed == 1 && s.srv_clean && s.cli_clean &&
                sgrpc_conn_call_count(s.cli) == 0 && sgrpc_conn_call_count(s.srv) == 0;
  /* Whatever handles are still held go back, as a user would. */
  for (i = 0; i < NC; i++) {
    if (s.cc[i]) sgrpc_call_release(s.cc[i]);
    if (s.sc[i]) sgrpc_call_release(s.sc[i]);
  }
  sgrpc_conn_del(s.cli);
  sgrpc_conn_del(s.srv);
done:
  if (getenv("ALLOC_DEBUG")) /* one line per run, for diagnosis */
    fprintf(stderr,
            "k=%ld/%ld dead=%d/%d closed c%d%d%d s%d%d%d unended=%d vis=%d rounds=%d cli %d/%d/%d "
            "srv %d/%d/%d msgs %d %d md %d tr %d\n",
            fail_at, fail_from, cli_dead, srv_dead, s.c_closed[0], s.c_closed[1], s.c_closed[2],
            s.s_closed[0], s.s_closed[1], s.s_closed[2], r->unended, s.visible, r->rounds,
            s.c_status[0], s.c_status[1], s.c_status[2], s.s_status[0], s.s_status[1],
            s.s_status[2], s.c_msgs[0], s.c_msgs[1], s.s_md_ok, s.u_trailers_ok);
  r->visible = s.visible;
  r->bad = s.bad;
  memcpy(r->bad_what, s.bad_what, sizeof(r->bad_what));
  r->allocs = a.fm.count;
  r->failures = a.fm.failures;
  r->live_after = a.fm.live;
}

static void check_run(const run_result *r, const char *mode, long k) {
  if (r->bad) fail_msg("%s k=%ld: %s", mode, k, r->bad_what);
  if (r->live_after != 0) fail_msg("%s k=%ld: %ld allocations leaked", mode, k, r->live_after);
  /* a failure is never silent: either all went as planned, or something
   * reported an error */
  if (!r->complete && !r->visible)
    fail_msg("%s k=%ld: the scenario fell short without any error reported", mode, k);
}

/* Fails the k-th allocation, for every k of the scenario. */
static void fail_each(size_t split) {
  run_result base, r;
  long k, n, hit = 0, complete = 0;
  clock_t t0 = clock();
  run_scenario(0, 0, split, &base);
  check_run(&base, "no failure", 0);
  assert_true(base.complete);
  assert_false(base.visible);
  assert_int_equal(base.failures, 0);
  n = base.allocs;
  assert_true(n > 50); /* both engines and nghttp2 allocate */
  for (k = 1; k <= n; k++) {
    run_scenario(k, 0, split, &r);
    check_run(&r, "fail_at", k);
    /* One failure, handled as documented, leaves no call without its
     * final event once both transports are closed. */
    if (r.unended) fail_msg("fail_at k=%ld: %d client calls never got CLOSE", k, r.unended);
    if (r.failures) hit++;
    if (r.complete) complete++;
  }
  /* the counting is deterministic: every k up to N hits an allocation */
  assert_int_equal(hit, n);
  printf("# fail_at (split %zu): N=%ld allocations, %ld runs, %ld hit a failure, %ld still "
         "completed, %.2f s CPU\n",
         split, n, n, hit, complete, (double)(clock() - t0) / CLOCKS_PER_SEC);
}

/* Every allocation from the k-th on fails: cleanup under lasting memory
 * pressure. */
static void fail_from(size_t split) {
  run_result base, r;
  long k, n, hit = 0;
  clock_t t0 = clock();
  run_scenario(0, 0, split, &base);
  assert_true(base.complete);
  n = base.allocs;
  for (k = 1; k <= n; k++) {
    run_scenario(0, k, split, &r);
    check_run(&r, "fail_from", k);
    if (r.failures) hit++;
  }
  assert_int_equal(hit, n);
  printf("# fail_from (split %zu): N=%ld, %ld runs, %ld hit failures, %.2f s CPU\n", split, n, n,
         hit, (double)(clock() - t0) / CLOCKS_PER_SEC);
}

static void test_fail_each_allocation(void **state) {
  (void)state;
  fail_each(0);
}

/* Input in 7-byte pieces: messages are reassembled across chunks, which
 * allocates on paths the whole-chunk run never takes. */
static void test_fail_each_allocation_split(void **state) {
  (void)state;
  fail_each(7);
}

static void test_fail_from_allocation(void **state) {
  (void)state;
  fail_from(0);
  fail_from(7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fail_each_allocation),
      cmocka_unit_test(test_fail_each_allocation_split),
      cmocka_unit_test(test_fail_from_allocation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
