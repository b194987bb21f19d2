/*
 * rpc sends push back (rpc/include/sgrpc/rpc.h): a sender that loops
 * until SGRPC_ERR_WOULDBLOCK and resumes from on_writable streams a
 * million messages each way on the in-memory pair, in order, while the
 * bytes held by every allocation of both engines, the router and the
 * client stay within the per-call send buffer plus a constant. A send
 * repeated at once after WOULDBLOCK pushes back again and loses nothing;
 * a status or half-close given while a send is blocked goes out after the
 * buffered messages; allocation failures in the send path are error
 * codes, never crashes or leaks.
 *
 * Messages use the raw codec: 4 bytes, the message's index big-endian.
 * Under valgrind (detected with <valgrind/valgrind.h> where installed) the
 * two streams carry 100,000 messages instead of a million, to stay within
 * a few seconds: the per-message cost there is the engine's and the
 * codec's, not something the count would show more of.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/events.h>
#include <sgrpc/rpc.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND() 0
#endif

/* The streams' length: a million, or 100,000 under valgrind. */
#define MILLION (UNDER_VALGRIND() ? 100000u : 1000000u)

/* The per-call send buffer of the sending side in the streaming tests. */
#define CAP (16u * 1024u)

static const sgrpc_method m_down = {"/pushback.Test/Down", NULL, NULL, 0, 1, &sgrpc_codec_raw};
static const sgrpc_method m_up = {"/pushback.Test/Up", NULL, NULL, 1, 0, &sgrpc_codec_raw};

typedef struct world {
  pair p;
  failmem fm;        /* the server's: its engine and the router */
  failmem cfm;       /* the client's: its engine and the rpc client */
  sgrpc_mem mem, cmem;
  sgrpc_router *router;
  sgrpc_rpc_client client;
  int dispatch_err;
  /* the sender (server on Down, client on Up) */
  uint32_t total, next;
  int blocked;       /* sends that returned SGRPC_ERR_WOULDBLOCK */
  int resumes;       /* on_writable calls */
  int end_when_blocked; /* finish / close_send at the first WOULDBLOCK */
  int ended;         /* the sender finished or half-closed */
  size_t big;        /* nonzero: Down sends one small and one message this big */
  long fail_in_send; /* nonzero: a send of Down's big mode fails its nth allocation */
  int fail_first;    /* that send is the first (headers not out yet), else the big one */
  int send_rv;       /* what that send returned */
  /* the receiver */
  uint32_t got;
  int half_closed;
  /* the client's end of the call */
  int done, code;
  char message[64];
  char trailer[32];
  uint32_t reply; /* Up: the count the server answered */
} world;

static void put32(uint8_t *b, uint32_t v) {
  b[0] = (uint8_t)(v >> 24);
  b[1] = (uint8_t)(v >> 16);
  b[2] = (uint8_t)(v >> 8);
  b[3] = (uint8_t)v;
}

/* The index at the front of a message (4 bytes, or more in big mode). */
static uint32_t get32(const sgrpc_bytes *m) {
  assert_true(m->len >= 4);
  return (uint32_t)m->data[0] << 24 | (uint32_t)m->data[1] << 16 | (uint32_t)m->data[2] << 8 |
         m->data[3];
}

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  int rv = conn == p->srv ? sgrpc_router_dispatch(w->router, conn, ev, p->now)
                          : sgrpc_event_dispatch(ev, p->now);
  if (rv < 0) w->dispatch_err = rv;
  if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call); /* the puller releases */
}

/* ---- server ---- */

/* The status of the finish given while blocked: its strings live on the
 * stack and are wiped after the call, so the engine must have copied it. */
static int finish_wiped(sgrpc_server_call *call) {
  char text[16], key[16], value[16];
  sgrpc_md md[1];
  sgrpc_status st;
  int rv;
  snprintf(text, sizeof(text), "%s", "stopped");
  snprintf(key, sizeof(key), "%s", "x-sent");
  snprintf(value, sizeof(value), "%s", "all");
  md[0].key = key;
  md[0].key_len = strlen(key);
  md[0].value = (const uint8_t *)value;
  md[0].value_len = strlen(value);
  memset(&st, 0, sizeof(st));
  st.code = SGRPC_STATUS_ABORTED;
  st.message = text;
  st.md = md;
  st.md_count = 1;
  rv = sgrpc_server_call_finish(call, &st);
  memset(text, 'X', sizeof(text) - 1);
  memset(key, 'X', sizeof(key) - 1);
  memset(value, 'X', sizeof(value) - 1);
  return rv;
}

/* Sends the messages left until the engine pushes back, then the status. */
static void down_pump(sgrpc_server_call *call, world *w) {
  while (w->next < w->total) {
    uint8_t b[4];
    sgrpc_bytes m;
    int rv;
    put32(b, w->next);
    m.data = b;
    m.len = 4;
    rv = sgrpc_server_call_send(call, &m);
    if (rv == SGRPC_ERR_WOULDBLOCK) {
      w->blocked++;
      /* at once again: still full, nothing taken, nothing lost */
      assert_int_equal(sgrpc_server_call_send(call, &m), SGRPC_ERR_WOULDBLOCK);
      if (w->end_when_blocked) {
        assert_int_equal(finish_wiped(call), 0);
        w->ended = 1;
        /* finished: sends are refused, the engine keeps the rest */
        assert_int_equal(sgrpc_server_call_send(call, &m), SGRPC_ERR_INVALID_STATE);
      }
      return;
    }
    assert_int_equal(rv, 0);
    w->next++;
  }
  assert_int_equal(sgrpc_server_call_finish(call, NULL), 0);
  w->ended = 1;
}

/* A send whose w->fail_in_send-th allocation fails. */
static void send_failing(sgrpc_server_call *call, world *w, const sgrpc_bytes *m) {
  w->fm.fail_at = w->fm.count + w->fail_in_send;
  w->send_rv = sgrpc_server_call_send(call, m);
  w->fm.fail_at = 0;
  if (w->send_rv == SGRPC_ERR_NOMEM) {
    /* nothing was taken and the call is still usable: send it again */
    assert_int_equal(sgrpc_server_call_send(call, m), 0);
  } else {
    assert_int_equal(w->send_rv, 0);
  }
}

/* Down with w->big: one small message (the first send also submits the
 * response headers), then one of w->big bytes that makes the engine's
 * buffer grow; one of the two sends has an allocation fail. */
static void down_big(sgrpc_server_call *call, world *w) {
  static uint8_t blob[256 * 1024];
  sgrpc_bytes m;
  m.data = blob;
  m.len = 4;
  put32(blob, 0);
  if (w->fail_first) send_failing(call, w, &m);
  else assert_int_equal(sgrpc_server_call_send(call, &m), 0);
  m.len = w->big;
  put32(blob, 1);
  if (!w->fail_first) send_failing(call, w, &m);
  else assert_int_equal(sgrpc_server_call_send(call, &m), 0);
  assert_int_equal(sgrpc_server_call_finish(call, NULL), 0);
}

static void srv_down(sgrpc_server_call *call, const void *msg, void *ud) {
  world *w = ud;
  w->total = get32(msg);
  w->next = 0;
  if (w->big) down_big(call, w);
  else down_pump(call, w);
}

static void srv_down_writable(sgrpc_server_call *call, void *ud) {
  world *w = ud;
  assert_false(w->ended); /* never after the status */
  w->resumes++;
  down_pump(call, w);
}

static void srv_up(sgrpc_server_call *call, const void *msg, void *ud) {
  world *w = ud;
  uint8_t b[4];
  sgrpc_bytes m;
  if (msg) {
    assert_false(w->half_closed);
    assert_int_equal(get32(msg), w->got); /* in order, none lost */
    w->got++;
    return;
  }
  w->half_closed = 1;
  put32(b, w->got);
  m.data = b;
  m.len = 4;
  assert_int_equal(sgrpc_server_call_reply(call, &m), 0);
}

/* ---- client ---- */

static void cli_message(sgrpc_client_call *call, const void *msg, void *ud) {
  world *w = ud;
  (void)call;
  assert_int_equal(get32(msg), w->got); /* in order, none lost */
  w->got++;
}

static void cli_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                      void *ud) {
  world *w = ud;
  size_t i;
  (void)call;
  w->done++;
  w->code = st->code;
  snprintf(w->message, sizeof(w->message), "%s", st->message);
  for (i = 0; i < st->md_count; i++)
    if (strcmp(st->md[i].key, "x-sent") == 0)
      snprintf(w->trailer, sizeof(w->trailer), "%s", (const char *)st->md[i].value);
  if (reply) w->reply = get32(reply);
}

/* Sends the requests left until the engine pushes back, then half-closes. */
static void up_pump(sgrpc_client_call *call, world *w) {
  while (w->next < w->total) {
    uint8_t b[4];
    sgrpc_bytes m;
    int rv;
    put32(b, w->next);
    m.data = b;
    m.len = 4;
    rv = sgrpc_client_call_send(call, &m);
    if (rv == SGRPC_ERR_WOULDBLOCK) {
      w->blocked++;
      assert_int_equal(sgrpc_client_call_send(call, &m), SGRPC_ERR_WOULDBLOCK);
      if (w->end_when_blocked) {
        /* the engine half-closes after the requests it buffers */
        assert_int_equal(sgrpc_client_call_close_send(call), 0);
        w->ended = 1;
        assert_int_equal(sgrpc_client_call_send(call, &m), SGRPC_ERR_INVALID_STATE);
        assert_int_equal(sgrpc_client_call_close_send(call), SGRPC_ERR_INVALID_STATE);
      }
      return;
    }
    assert_int_equal(rv, 0);
    w->next++;
  }
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  w->ended = 1;
}

static void cli_up_writable(sgrpc_client_call *call, void *ud) {
  world *w = ud;
  assert_false(w->ended); /* never after close_send */
  w->resumes++;
  up_pump(call, w);
}

/* ---- the world ---- */

/* Each side counts its own bytes: the sender's are the ones bounded by its
 * send buffer. */
static void world_init(world *w, uint32_t cli_cap, uint32_t srv_cap) {
  sgrpc_settings cs, ss;
  sgrpc_handler h;
  memset(w, 0, sizeof(*w));
  failmem_init(&w->fm, &w->mem);
  failmem_init(&w->cfm, &w->cmem);
  sgrpc_settings_default(&cs);
  sgrpc_settings_default(&ss);
  if (cli_cap) cs.max_send_buffer = cli_cap;
  if (srv_cap) ss.max_send_buffer = srv_cap;
  w->p.now = 1000000000;
  assert_int_equal(sgrpc_conn_client_new(&w->p.cli, &cs, &w->cmem, w->p.now), 0);
  assert_int_equal(sgrpc_conn_server_new(&w->p.srv, &ss, &w->mem, w->p.now), 0);
  w->p.on_event = on_event;
  w->p.ud = w;
  assert_int_equal(sgrpc_router_new(&w->router, &w->mem), 0);
  memset(&h, 0, sizeof(h));
  h.user_data = w;
  h.on_request = srv_down;
  h.on_writable = srv_down_writable;
  assert_int_equal(sgrpc_router_add(w->router, &m_down, &h), 0);
  h.on_request = srv_up;
  h.on_writable = NULL;
  assert_int_equal(sgrpc_router_add(w->router, &m_up, &h), 0);
  sgrpc_rpc_client_init(&w->client, w->p.cli, &w->cmem);
  pair_run(&w->p, 100); /* prefaces and SETTINGS */
}

static void world_free(world *w) {
  assert_int_equal(w->dispatch_err, 0);
  assert_int_equal(w->p.cli_err, 0);
  assert_int_equal(w->p.srv_err, 0);
  assert_int_equal(sgrpc_conn_call_count(w->p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(w->p.srv), 0);
  pair_free(&w->p);
  sgrpc_router_del(w->router);
  assert_int_equal(w->fm.live, 0); /* nothing leaked */
  assert_int_equal(w->cfm.live, 0);
}

static void start_down(world *w, uint32_t total) {
  uint8_t b[4];
  sgrpc_bytes req;
  sgrpc_rpc_opts o;
  sgrpc_client_callbacks cb;
  put32(b, total);
  req.data = b;
  req.len = 4;
  memset(&o, 0, sizeof(o));
  o.user_data = w;
  memset(&cb, 0, sizeof(cb));
  cb.on_message = cli_message;
  cb.on_close = cli_close;
  assert_int_equal(sgrpc_rpc_call_start(&w->client, &m_down, &req, &o, w->p.now, &cb, NULL), 0);
}

static sgrpc_client_call *start_up(world *w) {
  sgrpc_rpc_opts o;
  sgrpc_client_callbacks cb;
  sgrpc_client_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.user_data = w;
  memset(&cb, 0, sizeof(cb));
  cb.on_close = cli_close;
  cb.on_writable = cli_up_writable; /* the callbacks' slot (no setter) */
  assert_int_equal(sgrpc_rpc_call_start(&w->client, &m_up, NULL, &o, w->p.now, &cb, &call), 0);
  assert_non_null(call);
  return call;
}

/* What a sender may hold beyond its connection's idle state: its
 * per-call buffer (whose capacity may double once while it grows) and a
 * constant for the engine's output chunk and HTTP/2 framing, whatever the
 * number of messages. */
#define SENDER_SLACK (128u * 1024u)
/* The receiver's own constant: events queued from one frame (a 16 KiB
 * DATA frame of 9-byte messages is some 1800 events), its windows. */
#define RECEIVER_MAX (1024u * 1024u)

typedef struct mark {
  size_t idle, cidle;
} mark;

static mark mark_idle(world *w) {
  mark m;
  m.idle = w->fm.peak = w->fm.bytes;
  m.cidle = w->cfm.peak = w->cfm.bytes;
  return m;
}

static void report(const char *what, const world *w, mark m) {
  if (getenv("SGRPC_PUSHBACK_VERBOSE"))
    fprintf(stderr,
            "%s: server idle %zu peak +%zu, client idle %zu peak +%zu; %d blocked, %d resumes\n",
            what, m.idle, w->fm.peak - m.idle, m.cidle, w->cfm.peak - m.cidle, w->blocked,
            w->resumes);
}

/* ---- tests ---- */

static void test_server_stream_million(void **state) {
  world w;
  mark m;
  (void)state;
  world_init(&w, 0, CAP);
  m = mark_idle(&w);
  start_down(&w, MILLION);
  pair_run(&w.p, 10000000);
  report("server stream", &w, m);
  assert_int_equal(w.done, 1);
  assert_int_equal(w.code, SGRPC_STATUS_OK);
  assert_int_equal(w.got, MILLION);
  assert_true(w.blocked >= (int)(MILLION / 2000)); /* pushed back all along */
  assert_int_equal(w.resumes, w.blocked);
  assert_true(w.fm.peak - m.idle <= 2 * CAP + SENDER_SLACK);
  assert_true(w.cfm.peak - m.cidle <= RECEIVER_MAX);
  world_free(&w);
}

static void test_client_stream_million(void **state) {
  world w;
  sgrpc_client_call *call;
  mark m;
  (void)state;
  world_init(&w, CAP, 0);
  m = mark_idle(&w);
  call = start_up(&w);
  w.total = MILLION;
  up_pump(call, &w);
  assert_int_equal(w.blocked, 1);
  assert_true(w.next > 0 && w.next < MILLION);
  pair_run(&w.p, 10000000);
  report("client stream", &w, m);
  assert_int_equal(w.done, 1);
  assert_int_equal(w.code, SGRPC_STATUS_OK);
  assert_int_equal(w.got, MILLION);
  assert_int_equal(w.reply, MILLION);
  assert_true(w.blocked >= (int)(MILLION / 2000));
  assert_int_equal(w.resumes, w.blocked);
  assert_true(w.cfm.peak - m.cidle <= 2 * CAP + SENDER_SLACK);
  assert_true(w.fm.peak - m.idle <= RECEIVER_MAX);
  world_free(&w);
}

/* The status given while a send is blocked goes out after every message
 * the engine had taken, with its text and trailers intact. */
static void test_finish_while_blocked(void **state) {
  world w;
  (void)state;
  world_init(&w, 0, 1024);
  w.end_when_blocked = 1;
  start_down(&w, 100000);
  pair_run(&w.p, 100000);
  assert_int_equal(w.blocked, 1);
  assert_int_equal(w.resumes, 0); /* not after the finish */
  assert_int_equal(w.done, 1);
  assert_int_equal(w.code, SGRPC_STATUS_ABORTED);
  assert_string_equal(w.message, "stopped");
  assert_string_equal(w.trailer, "all");
  assert_true(w.next > 100); /* more than a message was buffered... */
  assert_int_equal(w.got, w.next); /* ...and every one arrived before the status */
  world_free(&w);
}

/* close_send while a send is blocked: the server gets every request the
 * engine had taken, then the half-close. */
static void test_close_send_while_blocked(void **state) {
  world w;
  sgrpc_client_call *call;
  (void)state;
  world_init(&w, 1024, 0);
  call = start_up(&w);
  w.total = 100000;
  w.end_when_blocked = 1;
  up_pump(call, &w);
  assert_int_equal(w.blocked, 1);
  assert_true(w.ended);
  assert_true(w.next > 100);
  pair_run(&w.p, 100000);
  assert_int_equal(w.resumes, 0); /* not after close_send */
  assert_true(w.half_closed);
  assert_int_equal(w.got, w.next);
  assert_int_equal(w.done, 1);
  assert_int_equal(w.code, SGRPC_STATUS_OK);
  assert_int_equal(w.reply, w.next);
  world_free(&w);
}

/* The engine's buffer cannot grow for a large message: the send returns
 * SGRPC_ERR_NOMEM, keeps nothing, and the same message goes on a retry. */
static void test_send_nomem(void **state) {
  world w;
  (void)state;
  world_init(&w, 0, 0);
  w.big = 200 * 1024;
  w.fail_in_send = 1; /* the buffer's realloc */
  start_down(&w, 2);
  pair_run(&w.p, 100000);
  assert_int_equal(w.send_rv, SGRPC_ERR_NOMEM);
  assert_int_equal(w.fm.failures, 1);
  assert_int_equal(w.done, 1);
  assert_int_equal(w.code, SGRPC_STATUS_OK);
  assert_int_equal(w.got, 2);
  world_free(&w);
}

/* The client's send, its buffer's growth failed. */
static void test_client_send_nomem(void **state) {
  static uint8_t blob[200 * 1024];
  world w;
  sgrpc_client_call *call;
  sgrpc_bytes m;
  (void)state;
  world_init(&w, 0, 0);
  call = start_up(&w);
  put32(blob, 0);
  m.data = blob;
  m.len = 4;
  assert_int_equal(sgrpc_client_call_send(call, &m), 0);
  m.len = sizeof(blob);
  w.cfm.fail_at = w.cfm.count + 1;
  assert_int_equal(sgrpc_client_call_send(call, &m), SGRPC_ERR_NOMEM);
  w.cfm.fail_at = 0;
  m.len = 4;
  put32(blob, 1);
  assert_int_equal(sgrpc_client_call_send(call, &m), 0);
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  pair_run(&w.p, 100000);
  assert_int_equal(w.got, 2); /* the failed one never went */
  assert_int_equal(w.done, 1);
  assert_int_equal(w.code, SGRPC_STATUS_OK);
  assert_int_equal(w.reply, 2);
  world_free(&w);
}

/* Every allocation a send makes fails in turn, on a call whose response
 * headers are not out yet (the send submits them too): each failure is
 * SGRPC_ERR_NOMEM from the send, the call goes on, nothing leaks. */
static void test_send_alloc_failures(void **state) {
  long k;
  int failed = 0;
  (void)state;
  for (k = 1; k < 64; k++) {
    world w;
    world_init(&w, 0, 0);
    w.big = 100 * 1024;
    w.fail_in_send = k;
    w.fail_first = 1;
    start_down(&w, 2);
    pair_run(&w.p, 100000);
    assert_true(w.send_rv == 0 || w.send_rv == SGRPC_ERR_NOMEM);
    assert_int_equal(w.done, 1);
    assert_int_equal(w.code, SGRPC_STATUS_OK);
    assert_int_equal(w.got, 2);
    world_free(&w);
    if (w.send_rv == 0) break; /* the send made fewer than k allocations */
    failed++;
  }
  assert_true(failed >= 1);
  assert_true(k < 64);
}

/* Send hooks fire once per message that goes, never for a send that
 * pushed back (or each retry would show the message again). */
static void count_hook(sgrpc_hook_event *ev, void *ud) {
  (void)ev;
  (*(int *)ud)++;
}

static void test_send_hooks_once(void **state) {
  world w;
  sgrpc_events *events;
  sgrpc_client_call *call;
  int srv_sends = 0, cli_sends = 0;
  (void)state;
  world_init(&w, 1024, 1024);
  assert_int_equal(sgrpc_events_new(&events, NULL), 0);
  assert_int_equal(
      sgrpc_events_listen(events, SGRPC_HOOK_SERVER_SEND_MESSAGE, count_hook, &srv_sends), 0);
  assert_int_equal(
      sgrpc_events_listen(events, SGRPC_HOOK_CLIENT_SEND_MESSAGE, count_hook, &cli_sends), 0);
  sgrpc_router_set_events(w.router, events);
  sgrpc_rpc_client_set_events(&w.client, events);

  start_down(&w, 20000);
  pair_run(&w.p, 100000);
  assert_int_equal(w.done, 1);
  assert_int_equal(w.code, SGRPC_STATUS_OK);
  assert_int_equal(w.got, 20000);
  assert_true(w.blocked > 10);
  assert_int_equal(srv_sends, 20000);
  assert_int_equal(cli_sends, 1); /* Down's request */

  w.done = 0;
  w.got = w.next = 0;
  w.blocked = w.resumes = 0;
  w.ended = 0;
  cli_sends = 0;
  call = start_up(&w);
  w.total = 20000;
  up_pump(call, &w);
  pair_run(&w.p, 100000);
  assert_int_equal(w.done, 1);
  assert_int_equal(w.code, SGRPC_STATUS_OK);
  assert_int_equal(w.reply, 20000);
  assert_true(w.blocked > 10);
  assert_int_equal(cli_sends, 20000);
  world_free(&w);
  sgrpc_events_del(events);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_server_stream_million),
      cmocka_unit_test(test_client_stream_million),
      cmocka_unit_test(test_finish_while_blocked),
      cmocka_unit_test(test_close_send_while_blocked),
      cmocka_unit_test(test_send_nomem),
      cmocka_unit_test(test_client_send_nomem),
      cmocka_unit_test(test_send_alloc_failures),
      cmocka_unit_test(test_send_hooks_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
