/*
 * Recording and replay (<sgrpc/record.h>): both ends of an in-memory
 * pair are recorded through memory sinks while they run unary, streaming
 * (gzip), cancelled and deadline-expired calls, pings and a graceful
 * shutdown; each recording must replay identically into a fresh engine.
 * Then: a changed byte is found and named, a corrupted input replays to
 * the protocol error the live run gave, the size cap truncates cleanly,
 * a failing sink or allocator stops only the recorder, malformed
 * recordings are refused, and allocation failure at every allocation of
 * recording and of replay ends in a documented code without leaks.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/record.h>

#define MS 1000000LL

/* ---- a memory sink ---- */

typedef struct sinkbuf {
  uint8_t *p;
  size_t len, cap;
  int fail_after; /* >0: the nth write and later fail */
  int writes;
} sinkbuf;

static int sink_write(const uint8_t *d, size_t n, void *ud) {
  sinkbuf *s = ud;
  s->writes++;
  if (s->fail_after && s->writes >= s->fail_after) return -1;
  if (s->len + n > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + n) cap *= 2;
    s->p = realloc(s->p, cap);
    assert_non_null(s->p);
    s->cap = cap;
  }
  memcpy(s->p + s->len, d, n);
  s->len += n;
  return 0;
}

/* ---- the scenario ---- */

typedef struct scen {
  int closes;
  int server_calls;
  int statuses[8];
  int pings;
  int conn_closed_cli, conn_closed_srv;
  int shutdown_started;
  int hard_errors; /* an API call returned an undocumented code */
  sgrpc_call *to_cancel; /* the call cancelled later, NULL once released */
} scen;

static const uint8_t bin_value[] = {0, 1, 2, 0xff, 0x80};

static void check_rv(scen *s, int rv) {
  /* documented outcomes of the calls the scenario makes */
  if (rv == 0 || rv == SGRPC_ERR_NOMEM || rv == SGRPC_ERR_CALL_CLOSED ||
      rv == SGRPC_ERR_INVALID_STATE || rv == SGRPC_ERR_WOULDBLOCK ||
      rv == SGRPC_ERR_GOING_AWAY || sgrpc_is_fatal(rv) || rv == SGRPC_ERR_CONN_CLOSED)
    return;
  s->hard_errors++;
}

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  scen *s = ud;
  if (conn == p->srv) {
    switch (ev->type) {
    case SGRPC_EV_CALL_NEW:
      s->server_calls++;
      if (ev->u.call_new.path_len == 9 && memcmp(ev->u.call_new.path, "/t.S/Slow", 9) == 0)
        break; /* never answered: its deadline ends it */
      if (s->server_calls == 2 && !s->shutdown_started) {
        s->shutdown_started = 1;
        check_rv(s, sgrpc_conn_shutdown(p->srv, SGRPC_NEVER, p->now));
      }
      break;
    case SGRPC_EV_MESSAGE:
      check_rv(s, sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0));
      break;
    case SGRPC_EV_HALF_CLOSE: {
      sgrpc_md tmd[] = {SGRPC_MD_STR("x-trailer", "t")};
      sgrpc_status st = {SGRPC_STATUS_OK, "done \xc3\xa9", bin_value, sizeof(bin_value), tmd, 1};
      check_rv(s, sgrpc_call_send_status(ev->call, &st));
      break;
    }
    case SGRPC_EV_CLOSE:
      sgrpc_call_release(ev->call);
      break;
    case SGRPC_EV_CONN_CLOSED:
      s->conn_closed_srv++;
      break;
    default:
      break;
    }
  } else {
    switch (ev->type) {
    case SGRPC_EV_CLOSE:
      if (s->closes < 8) s->statuses[s->closes] = ev->u.close.status.code;
      s->closes++;
      if (ev->call == s->to_cancel) s->to_cancel = NULL;
      sgrpc_call_release(ev->call);
      break;
    case SGRPC_EV_PING_ACK:
      s->pings++;
      break;
    case SGRPC_EV_CONN_CLOSED:
      s->conn_closed_cli++;
      break;
    default:
      break;
    }
  }
}

/* Runs the scenario on p (already made, recorders set). */
static void run_scenario(pair *p, scen *s) {
  sgrpc_md md[] = {SGRPC_MD_STR("x-a", "1"),
                   {"x-b-bin", 7, bin_value, sizeof(bin_value)}};
  sgrpc_call_opts o;
  sgrpc_call *a = NULL, *b = NULL, *c = NULL, *d = NULL;
  uint8_t big[3000];
  uint8_t *buf = NULL;
  int i, rv;

  memset(big, 'z', sizeof(big));
  p->on_event = on_event;
  p->ud = s;
  pair_run(p, 50);

  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Unary";
  o.authority = "host";
  o.md = md;
  o.md_count = 2;
  o.content_subtype = "proto";
  rv = sgrpc_call_start(p->cli, &o, p->now, &a);
  check_rv(s, rv);
  if (rv == 0) check_rv(s, sgrpc_call_send(a, (const uint8_t *)"\x0a\x01x", 3, SGRPC_SEND_END));

  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Stream";
  o.encoding = "gzip";
  o.deadline = p->now + 60000 * MS;
  rv = sgrpc_call_start(p->cli, &o, p->now, &b);
  check_rv(s, rv);
  if (rv == 0) {
    for (i = 0; i < 3; i++) check_rv(s, sgrpc_call_send(b, big, sizeof(big), 0));
    rv = sgrpc_call_send_reserve(b, 4, &buf);
    check_rv(s, rv);
    if (rv == 0) {
      memcpy(buf, "resv", 4);
      check_rv(s, sgrpc_call_send_commit(b, 0));
    }
    check_rv(s, sgrpc_call_close_send(b));
  }

  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Slow";
  o.deadline = p->now + 50 * MS;
  rv = sgrpc_call_start(p->cli, &o, p->now, &c);
  check_rv(s, rv);

  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Cancelled";
  rv = sgrpc_call_start(p->cli, &o, p->now, &d);
  check_rv(s, rv);
  if (rv == 0) s->to_cancel = d;
  check_rv(s, sgrpc_conn_ping(p->cli, 77));
  pair_run(p, 50);
  if (s->to_cancel) check_rv(s, sgrpc_call_cancel(s->to_cancel));
  pair_run(p, 50);
  for (i = 0; i < 5; i++) {
    pair_advance(p, 20 * MS);
    pair_run(p, 50);
  }
  check_rv(s, sgrpc_conn_goaway(p->cli, 0, "bye", 3));
  pair_advance(p, 1000 * MS);
  pair_run(p, 50);
  pair_advance(p, 30000 * MS);
  pair_run(p, 50);
}

/* Makes a pair whose two ends are recorded into cs and ss. */
static void record_pair(pair *p, sgrpc_recorder **rc, sgrpc_recorder **rs, sinkbuf *cs,
                        sinkbuf *ss, unsigned flags, uint64_t cap) {
  sgrpc_recorder_opts ro;
  memset(&ro, 0, sizeof(ro));
  ro.write = sink_write;
  ro.flags = flags;
  ro.max_bytes = cap;
  ro.user_data = cs;
  assert_int_equal(sgrpc_recorder_new(rc, &ro, NULL), 0);
  ro.user_data = ss;
  assert_int_equal(sgrpc_recorder_new(rs, &ro, NULL), 0);
  assert_int_equal(pair_init(p, NULL, NULL, NULL), 0);
  assert_int_equal(sgrpc_conn_set_recorder(p->cli, *rc), 0);
  assert_int_equal(sgrpc_conn_set_recorder(p->srv, *rs), 0);
}

static void print_report(const sgrpc_replay_report *r) {
  if (r->differs)
    print_message("replay differs at record %zu (%s, offset %zu in the recording), byte %zu: "
                  "expected %d got %d; result %lld vs %lld\n",
                  r->diff_index, sgrpc_record_type_name(r->diff_type), r->diff_record_offset,
                  r->diff_offset, r->expected, r->got, (long long)r->expected_result,
                  (long long)r->got_result);
}

static size_t count_type(const sinkbuf *b, int type) {
  sgrpc_record_reader rd;
  sgrpc_record rec;
  size_t n = 0;
  assert_int_equal(sgrpc_record_reader_init(&rd, b->p, b->len), 0);
  while (sgrpc_record_next(&rd, &rec) == 1)
    if (rec.type == type) n++;
  return n;
}

static void test_record_replay_pair(void **state) {
  unsigned flags;
  (void)state;
  for (flags = 0; flags <= SGRPC_RECORD_DIGEST; flags += SGRPC_RECORD_DIGEST) {
    pair p;
    scen s;
    sinkbuf cs = {0}, ss = {0};
    sgrpc_recorder *rc, *rs;
    sgrpc_replay_report rep;
    int rv;

    memset(&s, 0, sizeof(s));
    record_pair(&p, &rc, &rs, &cs, &ss, flags, 0);
    run_scenario(&p, &s);
    assert_int_equal(s.hard_errors, 0);
    assert_int_equal(s.closes, 4);
    {
      int i, ok = 0, cancelled = 0, deadline = 0;
      for (i = 0; i < 4; i++) {
        ok += s.statuses[i] == SGRPC_STATUS_OK;
        cancelled += s.statuses[i] == SGRPC_STATUS_CANCELLED;
        deadline += s.statuses[i] == SGRPC_STATUS_DEADLINE_EXCEEDED;
      }
      assert_int_equal(ok, 2);
      assert_int_equal(cancelled, 1);
      assert_int_equal(deadline, 1);
    }
    assert_int_equal(s.pings, 1);
    assert_int_equal(sgrpc_recorder_state(rc), SGRPC_RECORDER_ACTIVE);
    assert_int_equal(sgrpc_recorder_state(rs), SGRPC_RECORDER_ACTIVE);
    assert_int_equal(sgrpc_recorder_bytes(rc), cs.len);
    pair_free(&p);
    sgrpc_recorder_del(rc);
    sgrpc_recorder_del(rs);

    /* every kind of call the scenario made is in the recordings */
    assert_true(count_type(&cs, SGRPC_REC_CALL_START) == 4);
    assert_true(count_type(&cs, SGRPC_REC_CALL_COMMIT) == 1);
    assert_true(count_type(&cs, SGRPC_REC_PING) == 1);
    assert_true(count_type(&cs, SGRPC_REC_EXPIRY) >= 1);
    assert_true(count_type(&ss, SGRPC_REC_CALL_SEND_STATUS) == 2);
    assert_true(count_type(&ss, SGRPC_REC_SHUTDOWN) == 1);
    assert_true(count_type(&ss, SGRPC_REC_RECV) > 3);

    rv = sgrpc_replay_mem(cs.p, cs.len, NULL, &rep);
    print_report(&rep);
    assert_int_equal(rv, 0);
    assert_false(rep.differs);
    assert_false(rep.truncated);
    assert_true(rep.records > 20);
    rv = sgrpc_replay_mem(ss.p, ss.len, NULL, &rep);
    print_report(&rep);
    assert_int_equal(rv, 0);
    assert_false(rep.differs);
    assert_true(rep.records > 20);
    free(cs.p);
    free(ss.p);
  }
}

/* The first RECV record with at least n bytes of data: its data offset
 * in the recording. */
static size_t find_recv_data(const sinkbuf *b, size_t n, size_t *rec_index) {
  sgrpc_record_reader rd;
  sgrpc_record rec;
  assert_int_equal(sgrpc_record_reader_init(&rd, b->p, b->len), 0);
  while (sgrpc_record_next(&rd, &rec) == 1) {
    if (rec.type == SGRPC_REC_RECV && rec.payload_len > n) {
      size_t res_len = 1; /* the result varint: small counts take 1-2 bytes */
      while (rec.payload[res_len - 1] & 0x80) res_len++;
      *rec_index = rd.index - 1;
      return (size_t)(rec.payload - b->p) + res_len;
    }
  }
  fail_msg("no RECV record");
  return 0;
}

/* A changed output byte, and a flipped input byte: both named. */
static void test_replay_names_difference(void **state) {
  pair p;
  scen s;
  sinkbuf cs = {0}, ss = {0};
  sgrpc_recorder *rc, *rs;
  sgrpc_replay_report rep;
  sgrpc_record_reader rd;
  sgrpc_record rec;
  size_t at = 0, idx = 0;
  uint8_t *copy;
  (void)state;
  memset(&s, 0, sizeof(s));
  record_pair(&p, &rc, &rs, &cs, &ss, 0, 0);
  run_scenario(&p, &s);
  pair_free(&p);
  sgrpc_recorder_del(rc);
  sgrpc_recorder_del(rs);

  /* change the last byte of the first output the server gave */
  copy = malloc(ss.len);
  memcpy(copy, ss.p, ss.len);
  assert_int_equal(sgrpc_record_reader_init(&rd, copy, ss.len), 0);
  while (sgrpc_record_next(&rd, &rec) == 1)
    if (rec.type == SGRPC_REC_OUT_CONSUME && rec.payload_len > 10) break;
  assert_int_equal(rec.type, SGRPC_REC_OUT_CONSUME);
  idx = rd.index - 1;
  at = rec.offset + rec.raw_len - 2; /* before the result byte */
  copy[at] ^= 0x40;
  assert_int_equal(sgrpc_replay_mem(copy, ss.len, NULL, &rep), 1);
  assert_true(rep.differs);
  assert_int_equal(rep.diff_index, idx);
  assert_int_equal(rep.diff_type, SGRPC_REC_OUT_CONSUME);
  assert_int_equal(rep.diff_record_offset + rep.diff_offset, at);
  assert_int_equal(rep.expected, copy[at]);
  assert_int_equal(rep.got, copy[at] ^ 0x40);
  assert_int_equal(rep.records, idx);
  free(copy);

  /* flip the first byte the server received (the preface's 'P'): the
   * fresh engine now fails where the live one read on */
  copy = malloc(ss.len);
  memcpy(copy, ss.p, ss.len);
  at = find_recv_data(&ss, 24, &idx);
  copy[at] ^= 0x01;
  assert_int_equal(sgrpc_replay_mem(copy, ss.len, NULL, &rep), 1);
  assert_int_equal(rep.diff_index, idx);
  assert_int_equal(rep.diff_type, SGRPC_REC_RECV);
  assert_true(rep.has_result);
  assert_true(rep.expected_result > 0);
  assert_int_equal(rep.got_result, SGRPC_ERR_PROTOCOL);
  free(copy);
  free(cs.p);
  free(ss.p);
}

/* A live run given corrupted input is recorded; its replay gives the
 * same protocol error, identically. */
static void test_corrupted_live_run_replays(void **state) {
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  sgrpc_conn *srv;
  sgrpc_recorder *r;
  sgrpc_recorder_opts ro;
  sinkbuf sb = {0};
  sgrpc_replay_report rep;
  sgrpc_record_reader rd;
  sgrpc_record rec;
  sgrpc_event ev;
  const uint8_t *out;
  uint8_t bad[24 + 9];
  sgrpc_ssize n;
  int saw_protocol = 0;
  (void)state;
  memcpy(bad, preface, 24);
  memset(bad + 24, 0, 9);
  bad[24 + 3] = 4; /* SETTINGS, empty */
  bad[5] ^= 0x01;  /* "HTTP" -> "HTUP" */
  memset(&ro, 0, sizeof(ro));
  ro.write = sink_write;
  ro.user_data = &sb;
  assert_int_equal(sgrpc_recorder_new(&r, &ro, NULL), 0);
  assert_int_equal(sgrpc_conn_server_new(&srv, NULL, NULL, 5 * MS), 0);
  assert_int_equal(sgrpc_conn_set_recorder(srv, r), 0);
  assert_int_equal(sgrpc_conn_set_recorder(srv, r), SGRPC_ERR_INVALID_STATE);
  n = sgrpc_conn_recv(srv, bad, sizeof(bad), 6 * MS);
  assert_int_equal(n, SGRPC_ERR_PROTOCOL);
  while (sgrpc_conn_next_event(srv, &ev) == 1)
    ;
  while ((n = sgrpc_conn_out_peek(srv, &out)) > 0) sgrpc_conn_out_consume(srv, (size_t)n);
  sgrpc_conn_del(srv);
  sgrpc_recorder_del(r);

  assert_int_equal(sgrpc_replay_mem(sb.p, sb.len, NULL, &rep), 0);
  assert_false(rep.differs);
  assert_int_equal(sgrpc_record_reader_init(&rd, sb.p, sb.len), 0);
  while (sgrpc_record_next(&rd, &rec) == 1)
    if (rec.type == SGRPC_REC_RECV && rec.payload[0] == 0x89 && rec.payload[1] == 0x0e)
      saw_protocol = 1; /* the result: zigzag(-901) = 1801 = varint 89 0e */
  assert_true(saw_protocol);
  free(sb.p);
}

/* The size cap: the recording stops with a TRUNCATED record, within the
 * cap, and what it holds still replays. */
static void test_size_cap(void **state) {
  pair p;
  scen s;
  sinkbuf cs = {0}, ss = {0};
  sgrpc_recorder *rc, *rs;
  sgrpc_replay_report rep;
  sgrpc_record_reader rd;
  sgrpc_record rec, last;
  (void)state;
  memset(&s, 0, sizeof(s));
  record_pair(&p, &rc, &rs, &cs, &ss, 0, 8000);
  run_scenario(&p, &s);
  assert_int_equal(s.hard_errors, 0);
  assert_int_equal(s.closes, 4); /* the connection did not notice */
  assert_int_equal(sgrpc_recorder_state(rc), SGRPC_RECORDER_TRUNCATED);
  assert_int_equal(sgrpc_recorder_state(rs), SGRPC_RECORDER_TRUNCATED);
  assert_true(cs.len <= 8000);
  assert_true(ss.len <= 8000);
  assert_true(cs.len > 4000);
  pair_free(&p);
  sgrpc_recorder_del(rc);
  sgrpc_recorder_del(rs);
  assert_int_equal(sgrpc_record_reader_init(&rd, cs.p, cs.len), 0);
  memset(&last, 0, sizeof(last));
  while (sgrpc_record_next(&rd, &rec) == 1) last = rec;
  assert_int_equal(last.type, SGRPC_REC_TRUNCATED);
  assert_int_equal(last.payload_len, 1);
  assert_int_equal(last.payload[0], SGRPC_RECORD_STOP_CAP);
  assert_int_equal(sgrpc_replay_mem(cs.p, cs.len, NULL, &rep), 0);
  assert_true(rep.truncated);
  assert_true(rep.records > 3);
  assert_int_equal(sgrpc_replay_mem(ss.p, ss.len, NULL, &rep), 0);
  assert_true(rep.truncated);
  free(cs.p);
  free(ss.p);
}

/* A failing sink stops the recorder, not the connection. */
static void test_sink_failure(void **state) {
  pair p;
  scen s;
  sinkbuf cs = {0}, ss = {0};
  sgrpc_recorder *rc, *rs;
  (void)state;
  memset(&s, 0, sizeof(s));
  cs.fail_after = 5;
  record_pair(&p, &rc, &rs, &cs, &ss, 0, 0);
  run_scenario(&p, &s);
  assert_int_equal(s.closes, 4);
  assert_int_equal(sgrpc_recorder_state(rc), SGRPC_RECORDER_FAILED);
  assert_int_equal(sgrpc_recorder_state(rs), SGRPC_RECORDER_ACTIVE);
  assert_int_equal(cs.writes, 5); /* nothing more was tried */
  pair_free(&p);
  sgrpc_recorder_del(rc);
  sgrpc_recorder_del(rs);
  free(cs.p);
  free(ss.p);
}

static void test_bad_arguments(void **state) {
  sgrpc_recorder *r = NULL;
  sgrpc_recorder_opts ro;
  sgrpc_conn *c;
  sgrpc_call *call;
  sgrpc_call_opts o;
  sgrpc_replay_report rep;
  sgrpc_record_reader rd;
  sgrpc_record rec;
  sinkbuf sb = {0};
  uint8_t junk[40];
  (void)state;
  memset(&ro, 0, sizeof(ro));
  assert_int_equal(sgrpc_recorder_new(NULL, &ro, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_recorder_new(&r, NULL, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_recorder_new(&r, &ro, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_null(r);
  ro.write = sink_write;
  ro.user_data = &sb;
  assert_int_equal(sgrpc_recorder_new(&r, &ro, NULL), 0);
  assert_int_equal(sgrpc_recorder_state(r), SGRPC_RECORDER_IDLE);
  assert_int_equal(sgrpc_conn_client_new(&c, NULL, NULL, 0), 0);
  assert_int_equal(sgrpc_conn_set_recorder(NULL, r), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_set_recorder(c, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  memset(&o, 0, sizeof(o));
  o.path = "/a.B/C";
  assert_int_equal(sgrpc_call_start(c, &o, 0, &call), 0);
  /* too late: a call was started unrecorded */
  assert_int_equal(sgrpc_conn_set_recorder(c, r), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_recorder_state(r), SGRPC_RECORDER_IDLE);
  sgrpc_conn_del(c);
  sgrpc_recorder_del(r);
  sgrpc_recorder_del(NULL);
  assert_int_equal(sb.len, 0);

  /* malformed recordings */
  assert_int_equal(sgrpc_replay_mem(NULL, 0, NULL, &rep), SGRPC_ERR_INVALID_ARGUMENT);
  memset(junk, 0, sizeof(junk));
  assert_int_equal(sgrpc_replay_mem(junk, sizeof(junk), NULL, &rep), SGRPC_ERR_INVALID_ARGUMENT);
  memcpy(junk, SGRPC_RECORD_MAGIC, 8);
  junk[9] = 99; /* a later version */
  assert_int_equal(sgrpc_record_reader_init(&rd, junk, sizeof(junk)), SGRPC_ERR_INVALID_ARGUMENT);
  junk[9] = SGRPC_RECORD_VERSION;
  junk[16] = SGRPC_REC_RECV; /* not a CONN record first */
  assert_int_equal(sgrpc_replay_mem(junk, 20, NULL, &rep), SGRPC_ERR_INVALID_ARGUMENT);
  junk[16] = SGRPC_REC_CONN;
  junk[18] = 100; /* payload longer than the data */
  assert_int_equal(sgrpc_record_reader_init(&rd, junk, 20), 0);
  assert_int_equal(sgrpc_record_next(&rd, &rec), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_replay_mem(junk, 20, NULL, &rep), SGRPC_ERR_INVALID_ARGUMENT);
  assert_string_equal(sgrpc_record_type_name(SGRPC_REC_EVENT), "EVENT");
  assert_string_equal(sgrpc_record_type_name(200), "UNKNOWN");
}

/* Allocation failure at every allocation: of recording (recorders and
 * engines share the failing allocator) and of replay. */
static void test_alloc_failures(void **state) {
  sinkbuf cs0 = {0}, ss0 = {0};
  long n, max_rec = 0, max_replay = 0, nomem_stops = 0;
  (void)state;
  {
    pair p;
    scen s;
    sgrpc_recorder *rc, *rs;
    memset(&s, 0, sizeof(s));
    record_pair(&p, &rc, &rs, &cs0, &ss0, 0, 0);
    run_scenario(&p, &s);
    pair_free(&p);
    sgrpc_recorder_del(rc);
    sgrpc_recorder_del(rs);
  }
  for (n = 1; n < 5000; n++) {
    failmem fm;
    sgrpc_mem mem;
    sgrpc_recorder_opts ro;
    sgrpc_recorder *rc = NULL, *rs = NULL;
    sinkbuf cs = {0}, ss = {0};
    pair p;
    scen s;
    int rv;
    failmem_init(&fm, &mem);
    fm.fail_at = n;
    memset(&ro, 0, sizeof(ro));
    ro.write = sink_write;
    ro.user_data = &cs;
    rv = sgrpc_recorder_new(&rc, &ro, &mem);
    if (rv == 0) {
      ro.user_data = &ss;
      rv = sgrpc_recorder_new(&rs, &ro, &mem);
    }
    if (rv == 0) rv = pair_init(&p, NULL, NULL, &mem);
    if (rv == 0) {
      rv = sgrpc_conn_set_recorder(p.cli, rc);
      assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
      if (rv == 0) assert_int_equal(sgrpc_conn_set_recorder(p.srv, rs), 0);
      memset(&s, 0, sizeof(s));
      run_scenario(&p, &s);
      assert_int_equal(s.hard_errors, 0);
      pair_free(&p);
    } else {
      assert_int_equal(rv, SGRPC_ERR_NOMEM);
    }
    if (rc && sgrpc_recorder_state(rc) == SGRPC_RECORDER_TRUNCATED) {
      /* only an allocation can stop an uncapped recorder: it says so */
      assert_true(cs.len > 4);
      assert_int_equal(cs.p[cs.len - 4], SGRPC_REC_TRUNCATED);
      assert_int_equal(cs.p[cs.len - 1], SGRPC_RECORD_STOP_NOMEM);
      nomem_stops++;
    }
    sgrpc_recorder_del(rc);
    sgrpc_recorder_del(rs);
    assert_int_equal(fm.live, 0);
    /* whatever was recorded before the failure replays */
    if (cs.len) {
      sgrpc_replay_report rep;
      rv = sgrpc_replay_mem(cs.p, cs.len, NULL, &rep);
      assert_true(rv == 0 || rv == 1);
    }
    free(cs.p);
    free(ss.p);
    if (fm.failures == 0) {
      max_rec = n;
      break;
    }
  }
  assert_true(max_rec > 50);
  assert_true(nomem_stops > 0);

  for (n = 1; n < 5000; n++) {
    failmem fm;
    sgrpc_mem mem;
    sgrpc_replay_report rep;
    int rv;
    failmem_init(&fm, &mem);
    fm.fail_at = n;
    rv = sgrpc_replay_mem(ss0.p, ss0.len, &mem, &rep);
    /* a failed allocation of the replayed engine shows as a difference;
     * one of the replay's own as NOMEM */
    assert_true(rv == 0 || rv == 1 || rv == SGRPC_ERR_NOMEM);
    assert_int_equal(fm.live, 0);
    if (fm.failures == 0) {
      assert_int_equal(rv, 0);
      max_replay = n;
      break;
    }
  }
  assert_true(max_replay > 50);
  free(cs0.p);
  free(ss0.p);
}


/* ---- borrowed sends, gather peeks and trims are recorded and replay ---- */

typedef struct bscen {
  int released, closes, ok;
} bscen;

static void b_release(void *ud, const uint8_t *data, size_t len) {
  bscen *b = ud;
  (void)data, (void)len;
  b->released++;
}

static void b_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  bscen *b = ud;
  if (conn == p->srv) {
    if (ev->type == SGRPC_EV_MESSAGE)
      assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, 16, 0), 0);
    else if (ev->type == SGRPC_EV_HALF_CLOSE) {
      sgrpc_status st = {SGRPC_STATUS_OK, NULL, NULL, 0, NULL, 0};
      assert_int_equal(sgrpc_call_send_status(ev->call, &st), 0);
    } else if (ev->type == SGRPC_EV_CLOSE)
      sgrpc_call_release(ev->call);
  } else if (ev->type == SGRPC_EV_CLOSE) {
    b->closes++;
    b->ok += ev->u.close.status.code == SGRPC_STATUS_OK;
    sgrpc_call_release(ev->call);
  }
}

static void test_borrowed_replays(void **state) {
  static uint8_t big[300 * 1024];
  pair p;
  bscen b;
  sinkbuf cs = {0}, ss = {0};
  sgrpc_recorder *rc, *rs;
  sgrpc_replay_report rep;
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  sgrpc_iov iov[8];
  size_t i, count = 0;
  (void)state;
  for (i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 7);
  memset(&b, 0, sizeof(b));
  record_pair(&p, &rc, &rs, &cs, &ss, 0, 0);
  p.on_event = b_event;
  p.ud = &b;
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Big";
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  /* larger than the stream window: the output queue holds borrowed
   * pieces across several pumps */
  assert_int_equal(sgrpc_call_send_borrowed(call, big, sizeof(big), SGRPC_SEND_END, b_release, &b),
                   0);
  assert_true(sgrpc_conn_out_peekv(p.cli, iov, 8, &count) > 0);
  assert_true(count >= 1);
  pair_run(&p, 2000);
  assert_int_equal(b.closes, 1);
  assert_int_equal(b.ok, 1);
  assert_int_equal(b.released, 1);
  assert_int_equal(sgrpc_conn_trim(p.srv), 0);
  pair_free(&p);
  sgrpc_recorder_del(rc);
  sgrpc_recorder_del(rs);
  assert_int_equal(count_type(&cs, SGRPC_REC_CALL_SEND_BORROWED), 1);
  assert_true(count_type(&cs, SGRPC_REC_OUT_PEEKV) >= 1);
  assert_int_equal(count_type(&ss, SGRPC_REC_TRIM), 1);
  assert_int_equal(sgrpc_replay_mem(cs.p, cs.len, NULL, &rep), 0);
  print_report(&rep);
  assert_false(rep.differs);
  assert_int_equal(sgrpc_replay_mem(ss.p, ss.len, NULL, &rep), 0);
  print_report(&rep);
  assert_false(rep.differs);
  free(cs.p);
  free(ss.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_record_replay_pair),
      cmocka_unit_test(test_borrowed_replays),
      cmocka_unit_test(test_replay_names_difference),
      cmocka_unit_test(test_corrupted_live_run_replays),
      cmocka_unit_test(test_size_cap),
      cmocka_unit_test(test_sink_failure),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
