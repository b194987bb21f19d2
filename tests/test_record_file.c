/*
 * Recording files (<sgrpc/net_record.h>) and sgrpc-trace:
 *  - a pair recorded into files, unique names, sgrpc_replay_file, the
 *    report text, the size cap, argument and system errors;
 *  - SGRPC_RECORD_DIR / SGRPC_RECORD_MAX_BYTES;
 *  - the net layer's record_dir option and the environment variable on a
 *    real epoll server and channel over 127.0.0.1 (one file per
 *    connection, both replay identically; "" turns recording off);
 *  - the sgrpc-trace binary given as argv[1]: print's lines, replay's
 *    exit codes and message, records, to-corpus, usage errors.
 */
#include "support.h"
#include "low_port.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sgrpc/epoll.h>
#include <sgrpc/net_record.h>

#define MS 1000000LL
#define SEC 1000000000LL

static const char *trace_bin;

/* ---- a unary call on an in-memory pair ---- */

static void pair_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  int *closes = ud;
  if (conn == p->srv) {
    if (ev->type == SGRPC_EV_MESSAGE) {
      sgrpc_md md[] = {SGRPC_MD_STR("x-h", "v")};
      sgrpc_call_send_headers(ev->call, md, 1);
      sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0);
    } else if (ev->type == SGRPC_EV_HALF_CLOSE) {
      sgrpc_status st = {SGRPC_STATUS_OK, NULL, NULL, 0, NULL, 0};
      sgrpc_call_send_status(ev->call, &st);
    } else if (ev->type == SGRPC_EV_CLOSE) {
      sgrpc_call_release(ev->call);
    }
  } else if (ev->type == SGRPC_EV_CLOSE) {
    assert_int_equal(ev->u.close.status.code, SGRPC_STATUS_OK);
    (*closes)++;
    sgrpc_call_release(ev->call);
  }
}

/* Records one unary call of a pair (path, one request message, echoed
 * back) with recorders rc and rs (either may be NULL). */
static void record_call(sgrpc_recorder *rc, sgrpc_recorder *rs, const char *path,
                        const uint8_t *msg, size_t len) {
  pair p;
  sgrpc_call_opts o;
  sgrpc_call *call;
  int closes = 0;
  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  if (rc) assert_int_equal(sgrpc_conn_set_recorder(p.cli, rc), 0);
  if (rs) assert_int_equal(sgrpc_conn_set_recorder(p.srv, rs), 0);
  p.on_event = pair_event;
  p.ud = &closes;
  memset(&o, 0, sizeof(o));
  o.path = path;
  o.authority = "h";
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  assert_int_equal(sgrpc_call_send(call, msg, len, SGRPC_SEND_END), 0);
  pair_run(&p, 50);
  assert_int_equal(closes, 1);
  pair_free(&p);
}

static void record_unary(sgrpc_recorder *rc, sgrpc_recorder *rs) {
  record_call(rc, rs, "/t.S/Unary", (const uint8_t *)"\x0a\x01x", 3);
}

static char *make_tmpdir(void) {
  char *d = strdup("/tmp/sgrpc-rec-test.XXXXXX");
  assert_non_null(d);
  assert_non_null(mkdtemp(d));
  return d;
}

static void rm_tree(const char *dir) {
  DIR *dp = opendir(dir);
  struct dirent *de;
  char path[1024];
  if (!dp) return;
  while ((de = readdir(dp))) {
    struct stat st;
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(path);
    else unlink(path);
  }
  closedir(dp);
  rmdir(dir);
}

/* The files in dir whose names start with prefix: their count, and the
 * first one's path in first. */
static int list_files(const char *dir, const char *prefix, char *first, size_t cap) {
  DIR *dp = opendir(dir);
  struct dirent *de;
  int n = 0;
  assert_non_null(dp);
  while ((de = readdir(dp))) {
    if (de->d_name[0] == '.' || strncmp(de->d_name, prefix, strlen(prefix)) != 0) continue;
    if (n++ == 0 && first) snprintf(first, cap, "%s/%s", dir, de->d_name);
  }
  closedir(dp);
  return n;
}

static void test_file_sink(void **state) {
  char *dir = make_tmpdir();
  sgrpc_record_file *fc, *fs, *f3;
  sgrpc_replay_report rep;
  char msg[256];
  const char *pc;
  struct stat st;
  (void)state;
  assert_int_equal(sgrpc_record_file_open(&fc, dir, "client", 0, 0, NULL), 0);
  assert_int_equal(sgrpc_record_file_open(&fs, dir, "server", 0, SGRPC_RECORD_DIGEST, NULL), 0);
  assert_int_equal(sgrpc_record_file_open(&f3, dir, "client", 0, 0, NULL), 0);
  pc = sgrpc_record_file_path(fc);
  assert_non_null(strstr(pc, "/sgrpc-client-"));
  assert_string_equal(pc + strlen(pc) - 6, ".sgrec");
  assert_string_not_equal(pc, sgrpc_record_file_path(f3)); /* unique names */
  assert_int_equal(sgrpc_record_file_close(f3), 0);
  record_unary(sgrpc_record_file_recorder(fc), sgrpc_record_file_recorder(fs));
  assert_int_equal(sgrpc_recorder_state(sgrpc_record_file_recorder(fc)), SGRPC_RECORDER_ACTIVE);
  {
    char path[512];
    snprintf(path, sizeof(path), "%s", sgrpc_record_file_path(fc));
    assert_int_equal(sgrpc_record_file_close(fc), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 100);
    assert_int_equal(sgrpc_replay_file(path, NULL, &rep), 0);
    assert_true(rep.records > 10);
    sgrpc_replay_report_format(&rep, msg, sizeof(msg));
    assert_non_null(strstr(msg, "identical: "));
    snprintf(path, sizeof(path), "%s", sgrpc_record_file_path(fs));
    assert_int_equal(sgrpc_record_file_close(fs), 0);
    assert_int_equal(sgrpc_replay_file(path, NULL, &rep), 0);
  }
  assert_int_equal(sgrpc_record_file_close(NULL), 0);
  rm_tree(dir);
  free(dir);
}

static void test_file_errors_and_cap(void **state) {
  char *dir = make_tmpdir(), path[512], msg[300];
  sgrpc_record_file *f = NULL;
  sgrpc_replay_report rep;
  struct stat st;
  uint8_t *data;
  size_t len;
  (void)state;
  assert_int_equal(sgrpc_record_file_open(NULL, dir, "x", 0, 0, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_record_file_open(&f, NULL, "x", 0, 0, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_record_file_open(&f, dir, "../x", 0, 0, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_record_file_open(&f, dir, "", 0, 0, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_record_file_open(&f, "/nonexistent-sgrpc-dir", "x", 0, 0, NULL),
                   SGRPC_ERR_SYSTEM(ENOENT));
  assert_null(f);
  assert_int_equal(sgrpc_replay_file("/nonexistent-sgrpc-dir/f", NULL, &rep),
                   SGRPC_ERR_SYSTEM(ENOENT));
  assert_int_equal(sgrpc_replay_file(NULL, NULL, &rep), SGRPC_ERR_INVALID_ARGUMENT);

  /* the cap: the file stays within it and ends with TRUNCATED */
  assert_int_equal(sgrpc_record_file_open(&f, dir, "server", 300, 0, NULL), 0);
  snprintf(path, sizeof(path), "%s", sgrpc_record_file_path(f));
  record_unary(NULL, sgrpc_record_file_recorder(f));
  assert_int_equal(sgrpc_recorder_state(sgrpc_record_file_recorder(f)), SGRPC_RECORDER_TRUNCATED);
  assert_int_equal(sgrpc_record_file_close(f), 0);
  assert_int_equal(stat(path, &st), 0);
  assert_true(st.st_size <= 300 && st.st_size > 100);
  data = test_read_file(path, &len);
  assert_int_equal(data[len - 4], SGRPC_REC_TRUNCATED);
  assert_int_equal(data[len - 1], SGRPC_RECORD_STOP_CAP);
  assert_int_equal(sgrpc_replay_file(path, NULL, &rep), 0);
  assert_true(rep.truncated);
  sgrpc_replay_report_format(&rep, msg, sizeof(msg));
  assert_non_null(strstr(msg, "truncated"));
  free(data);
  rm_tree(dir);
  free(dir);
}

/* Allocation failure at each allocation of sgrpc_record_file_open: a
 * documented code, nothing leaked, no file left behind. */
static void test_file_alloc_failures(void **state) {
  char *dir = make_tmpdir();
  long n;
  int ok = 0;
  (void)state;
  for (n = 1; n < 50 && !ok; n++) {
    failmem fm;
    sgrpc_mem mem;
    sgrpc_record_file *f = NULL;
    int rv;
    failmem_init(&fm, &mem);
    fm.fail_at = n;
    rv = sgrpc_record_file_open(&f, dir, "server", 0, 0, &mem);
    if (rv == 0) {
      record_unary(NULL, sgrpc_record_file_recorder(f));
      assert_int_equal(sgrpc_record_file_close(f), 0);
      ok = fm.failures == 0;
      if (!ok) { /* a failure while recording: the file says where it stopped */
        char path[512];
        assert_int_equal(list_files(dir, "sgrpc-server-", path, sizeof(path)), 1);
        unlink(path);
      }
    } else {
      assert_int_equal(rv, SGRPC_ERR_NOMEM);
      assert_null(f);
      assert_int_equal(list_files(dir, "sgrpc-", NULL, 0), 0);
    }
    assert_int_equal(fm.live, 0);
  }
  assert_true(ok);
  assert_true(n > 3);
  rm_tree(dir);
  free(dir);
}

static void test_env(void **state) {
  uint64_t cap = 1;
  (void)state;
  unsetenv("SGRPC_RECORD_DIR");
  unsetenv("SGRPC_RECORD_MAX_BYTES");
  assert_null(sgrpc_record_env(&cap));
  assert_int_equal(cap, 0);
  setenv("SGRPC_RECORD_DIR", "/tmp/x", 1);
  setenv("SGRPC_RECORD_MAX_BYTES", "12345", 1);
  assert_string_equal(sgrpc_record_env(&cap), "/tmp/x");
  assert_int_equal(cap, 12345);
  setenv("SGRPC_RECORD_MAX_BYTES", "12k", 1);
  sgrpc_record_env(&cap);
  assert_int_equal(cap, 0); /* not a number: the default */
  setenv("SGRPC_RECORD_DIR", "", 1);
  assert_null(sgrpc_record_env(NULL));
  unsetenv("SGRPC_RECORD_DIR");
  unsetenv("SGRPC_RECORD_MAX_BYTES");
}

/* ---- the net layer: a real server and channel ---- */

typedef struct net_world {
  sgrpc_epoll *loop;
  int done;
} net_world;

static void srv_event(sgrpc_net_conn *c, const sgrpc_event *ev, void *ud, int64_t now) {
  (void)c;
  (void)ud;
  (void)now;
  if (ev->type == SGRPC_EV_MESSAGE) {
    sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0);
  } else if (ev->type == SGRPC_EV_HALF_CLOSE) {
    sgrpc_status st = {SGRPC_STATUS_OK, "fine", NULL, 0, NULL, 0};
    sgrpc_call_send_status(ev->call, &st);
  }
}

static void call_event(const sgrpc_event *ev, void *ud, int64_t now) {
  net_world *w = ud;
  (void)now;
  if (ev->type == SGRPC_EV_CLOSE) {
    assert_int_equal(ev->u.close.status.code, SGRPC_STATUS_OK);
    w->done = 1;
  }
}

/* One unary call from a channel to a server on 127.0.0.1; srv_dir and
 * cli_dir are the options' record_dir. */
static void net_call(const char *srv_dir, const char *cli_dir) {
  net_world w;
  sgrpc_net_listen_opts so;
  sgrpc_net_channel_opts co;
  sgrpc_net_server *srv;
  sgrpc_net_channel *ch;
  sgrpc_call_opts o;
  sgrpc_call *call;
  char target[64];
  int i;
  memset(&w, 0, sizeof(w));
  assert_int_equal(sgrpc_epoll_new(&w.loop, NULL), 0);
  memset(&so, 0, sizeof(so));
  so.server.on_event = srv_event;
  so.server.user_data = &w;
  so.server.record_dir = srv_dir;
  so.server.record_max_bytes = 1 << 20;
  {
    static char srv_addr[64];
    int rv;
    TEST_LISTEN_LOW(rv, srv_addr, "127.0.0.1:%d", so, sgrpc_epoll_listen(w.loop, &so, &srv));
    assert_int_equal(rv, 0);
  }
  snprintf(target, sizeof(target), "127.0.0.1:%d", sgrpc_net_server_port(srv));
  memset(&co, 0, sizeof(co));
  co.target = target;
  co.record_dir = cli_dir;
  assert_int_equal(sgrpc_epoll_channel_new(w.loop, &co, &ch), 0);
  memset(&o, 0, sizeof(o));
  o.path = "/t.S/Net";
  o.on_event = call_event;
  o.user_data = &w;
  o.deadline = sgrpc_epoll_now() + 10 * SEC;
  assert_int_equal(sgrpc_net_channel_call(ch, &o, sgrpc_epoll_now(), &call), 0);
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"abc", 3, SGRPC_SEND_END), 0);
  for (i = 0; i < 400 && !w.done; i++) assert_true(sgrpc_epoll_run_once(w.loop, 50) >= 0);
  assert_true(w.done);
  sgrpc_net_channel_del(ch);
  sgrpc_net_server_del(srv);
  sgrpc_epoll_del(w.loop);
}

static void check_one_replay(const char *dir, const char *prefix) {
  char path[512];
  sgrpc_replay_report rep;
  assert_int_equal(list_files(dir, prefix, path, sizeof(path)), 1);
  assert_int_equal(sgrpc_replay_file(path, NULL, &rep), 0);
  assert_true(rep.records > 10);
}

static void test_net_options(void **state) {
  char *d1 = make_tmpdir(), *d2 = make_tmpdir(), *d3 = make_tmpdir();
  (void)state;
  unsetenv("SGRPC_RECORD_DIR");
  net_call(d1, d2);
  check_one_replay(d1, "sgrpc-server-");
  check_one_replay(d2, "sgrpc-client-");
  assert_int_equal(list_files(d1, "sgrpc-client-", NULL, 0), 0);
  /* the environment, when the options name no directory */
  setenv("SGRPC_RECORD_DIR", d3, 1);
  net_call(NULL, NULL);
  check_one_replay(d3, "sgrpc-server-");
  check_one_replay(d3, "sgrpc-client-");
  /* "" turns it off whatever the environment says */
  net_call("", "");
  assert_int_equal(list_files(d3, "sgrpc-", NULL, 0), 2);
  unsetenv("SGRPC_RECORD_DIR");
  rm_tree(d1);
  rm_tree(d2);
  rm_tree(d3);
  free(d1);
  free(d2);
  free(d3);
}

/* ---- sgrpc-trace ---- */

/* Runs sgrpc-trace with args; returns its exit status, output in out. */
static int run_trace(char *out, size_t cap, const char *args) {
  char cmd[2048];
  FILE *fp;
  size_t n = 0;
  int st;
  /* a cross build's tool runs under the emulator scripts/cross names */
  snprintf(cmd, sizeof(cmd), "%s %s %s 2>&1",
           getenv("SGRPC_TEST_EMULATOR") ? getenv("SGRPC_TEST_EMULATOR") : "", trace_bin, args);
  fp = popen(cmd, "r");
  assert_non_null(fp);
  while (n + 1 < cap) {
    size_t got = fread(out + n, 1, cap - 1 - n, fp);
    if (got == 0) break;
    n += got;
  }
  out[n] = 0;
  st = pclose(fp);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_line(const char *out, const char *line) {
  const char *p = out;
  size_t n = strlen(line);
  while ((p = strstr(p, line))) {
    if ((p == out || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0)) return;
    p++;
  }
  fail_msg("line not in the output: %s\n--- output:\n%s", line, out);
}

static void test_trace_tool(void **state) {
  static char out[1 << 16];
  char *dir, args[2048], cpath[512], spath[512], bad[600];
  sgrpc_record_file *fc, *fs;
  uint8_t *data;
  size_t len, i;
  FILE *fp;
  sgrpc_record_reader rd;
  sgrpc_record rec;
  (void)state;
  if (!trace_bin) skip();
  dir = make_tmpdir();
  assert_int_equal(sgrpc_record_file_open(&fc, dir, "client", 0, 0, NULL), 0);
  assert_int_equal(sgrpc_record_file_open(&fs, dir, "server", 0, 0, NULL), 0);
  snprintf(cpath, sizeof(cpath), "%s", sgrpc_record_file_path(fc));
  snprintf(spath, sizeof(spath), "%s", sgrpc_record_file_path(fs));
  record_unary(sgrpc_record_file_recorder(fc), sgrpc_record_file_recorder(fs));
  sgrpc_record_file_close(fc);
  sgrpc_record_file_close(fs);

  /* print: the vector syntax of tests/vectors/README.md */
  snprintf(args, sizeof(args), "print %s", cpath);
  assert_int_equal(run_trace(out, sizeof(out), args), 0);
  expect_line(out, "@ 1000000000");
  expect_line(out, "! client user_agent=\"sgrpc-c/" SGRPC_VERSION "\"");
  expect_line(out, "! start path=\"/t.S/Unary\" authority=\"h\"");
  expect_line(out, "! send stream=1 flags=END data=0a0178");
  expect_line(out, "> PREFACE");
  expect_line(out, "> HEADERS stream=1 flags=END_HEADERS");
  expect_line(out, "  :path: /t.S/Unary");
  expect_line(out, "> DATA stream=1 flags=END_STREAM");
  expect_line(out, "  msg flag=0 len=3 data=0a0178");
  expect_line(out, "= HEADERS stream=1 encoding=\"\"");
  expect_line(out, "  x-h: v");
  expect_line(out, "= MESSAGE stream=1 compressed=0 len=3 data=0a0178");
  expect_line(out, "= CLOSE stream=1 code=OK message=\"\" reset=0 http2_error=NO_ERROR "
                   "retry_safe=0 details=");
  expect_line(out, "! release stream=1");
  snprintf(args, sizeof(args), "print %s", spath);
  assert_int_equal(run_trace(out, sizeof(out), args), 0);
  expect_line(out, "< PREFACE");
  expect_line(out, "< HEADERS stream=1 flags=END_HEADERS");
  expect_line(out, "= CALL_NEW stream=1 path=\"/t.S/Unary\" authority=\"h\" user_agent=\"sgrpc-c/"
                   SGRPC_VERSION "\" content_type=\"application/grpc\" encoding=\"\" "
                   "accept_encoding=\"identity,deflate,gzip\" deadline=NEVER");
  expect_line(out, "! headers stream=1");
  expect_line(out, "! status stream=1 code=OK");
  expect_line(out, "= HALF_CLOSE stream=1");
  expect_line(out, "  grpc-status: 0");

  /* replay: identical, then a changed output byte */
  snprintf(args, sizeof(args), "replay %s %s", cpath, spath);
  assert_int_equal(run_trace(out, sizeof(out), args), 0);
  assert_non_null(strstr(out, "identical: "));
  data = test_read_file(spath, &len);
  assert_int_equal(sgrpc_record_reader_init(&rd, data, len), 0);
  while (sgrpc_record_next(&rd, &rec) == 1)
    if (rec.type == SGRPC_REC_OUT_CONSUME) break;
  assert_int_equal(rec.type, SGRPC_REC_OUT_CONSUME);
  i = rec.offset + rec.raw_len - 2;
  data[i] ^= 0xff;
  snprintf(bad, sizeof(bad), "%s/changed.sgrec", dir);
  fp = fopen(bad, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, len, fp), len);
  fclose(fp);
  snprintf(args, sizeof(args), "replay %s", bad);
  assert_int_equal(run_trace(out, sizeof(out), args), 1);
  {
    char want[128];
    snprintf(want, sizeof(want), "record %zu (OUT_CONSUME at file offset %zu) differs at byte %zu",
             rd.index - 1, rec.offset, rec.raw_len - 2);
    if (!strstr(out, want)) fail_msg("want \"%s\" in: %s", want, out);
  }
  free(data);

  /* records and to-corpus */
  snprintf(args, sizeof(args), "records %s", spath);
  assert_int_equal(run_trace(out, sizeof(out), args), 0);
  assert_non_null(strstr(out, "0 16 CONN 1000000000 "));
  snprintf(args, sizeof(args), "to-corpus -o %s/corpus %s", dir, spath);
  assert_int_equal(run_trace(out, sizeof(out), args), 0);
  assert_non_null(strstr(out, "/corpus/server/"));
  assert_int_equal(list_files(dir, "corpus", NULL, 0), 1);
  {
    char cdir[600], entry[700];
    snprintf(cdir, sizeof(cdir), "%s/corpus/server", dir);
    assert_int_equal(list_files(cdir, "", entry, sizeof(entry)), 1);
    data = test_read_file(entry, &len);
    assert_true(len > 26);
    assert_int_equal(data[0], 0);
    assert_int_equal(data[1], 0);
    assert_memory_equal(data + 2, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    free(data);
  }

  /* errors: usage, a missing file, not a recording */
  assert_int_equal(run_trace(out, sizeof(out), ""), 2);
  assert_int_equal(run_trace(out, sizeof(out), "frobnicate x"), 2);
  assert_int_equal(run_trace(out, sizeof(out), "replay /nonexistent-sgrpc-file"), 2);
  snprintf(args, sizeof(args), "print %s/corpus/server", dir);
  assert_int_equal(run_trace(out, sizeof(out), args), 2);
  snprintf(bad, sizeof(bad), "%s/junk.sgrec", dir);
  fp = fopen(bad, "wb");
  assert_non_null(fp);
  fputs("this is not a recording at all", fp);
  fclose(fp);
  snprintf(args, sizeof(args), "replay %s", bad);
  assert_int_equal(run_trace(out, sizeof(out), args), 2);
  assert_non_null(strstr(out, "not a valid recording"));
  snprintf(args, sizeof(args), "print %s", bad);
  assert_int_equal(run_trace(out, sizeof(out), args), 2);
  assert_int_equal(run_trace(out, sizeof(out), "--help"), 0);
  rm_tree(dir);
  free(dir);
}

/* print --descriptor-set: messages decoded with examples/demo's types
 * (the set is built by protoc for this test, SGRPC_DEMO_DESC). */
static void test_trace_descriptor_set(void **state) {
#ifdef SGRPC_DEMO_DESC
  static char out[1 << 16];
  /* demo.Hello{name: "world", sleep_ms: 7}, echoed back as a demo.Reply
   * (whose field 2 is unknown to Reply) */
  static const uint8_t hello[] = {0x0a, 5, 'w', 'o', 'r', 'l', 'd', 0x10, 7};
  static const uint8_t broken[] = {0x0a, 9, 'a', 'b'};
  char *dir, args[2048], spath[512], cpath[512];
  sgrpc_record_file *fs, *fc;
  (void)state;
  if (!trace_bin) skip();
  dir = make_tmpdir();
  assert_int_equal(sgrpc_record_file_open(&fs, dir, "server", 0, 0, NULL), 0);
  snprintf(spath, sizeof(spath), "%s", sgrpc_record_file_path(fs));
  assert_int_equal(sgrpc_record_file_open(&fc, dir, "client", 0, 0, NULL), 0);
  snprintf(cpath, sizeof(cpath), "%s", sgrpc_record_file_path(fc));
  record_call(sgrpc_record_file_recorder(fc), sgrpc_record_file_recorder(fs), "/demo.Demo/Say",
              hello, sizeof(hello));
  sgrpc_record_file_close(fs);
  sgrpc_record_file_close(fc);
  snprintf(args, sizeof(args), "print --descriptor-set %s %s", SGRPC_DEMO_DESC, spath);
  assert_int_equal(run_trace(out, sizeof(out), args), 0);
  expect_line(out, "= MESSAGE stream=1 compressed=0 len=9 data=0a05776f726c641007");
  expect_line(out, "#   demo.Hello {");
  expect_line(out, "#     name: \"world\"");
  expect_line(out, "#     sleep_ms: 7");
  expect_line(out, "#   demo.Reply {");
  expect_line(out, "#     text: \"world\"");
  expect_line(out, "#     2: 7");
  /* the client sends a Hello and receives a Reply */
  snprintf(args, sizeof(args), "print --descriptor-set %s %s", SGRPC_DEMO_DESC, cpath);
  assert_int_equal(run_trace(out, sizeof(out), args), 0);
  assert_true(strstr(out, "#   demo.Hello {") < strstr(out, "#   demo.Reply {"));
  assert_non_null(strstr(out, "#   demo.Reply {"));

  /* a message that is not valid protobuf: said so, no crash */
  assert_int_equal(sgrpc_record_file_open(&fs, dir, "server", 0, 0, NULL), 0);
  snprintf(spath, sizeof(spath), "%s", sgrpc_record_file_path(fs));
  record_call(NULL, sgrpc_record_file_recorder(fs), "/demo.Demo/Say", broken, sizeof(broken));
  sgrpc_record_file_close(fs);
  snprintf(args, sizeof(args), "print --descriptor-set %s %s", SGRPC_DEMO_DESC, spath);
  assert_int_equal(run_trace(out, sizeof(out), args), 0);
  expect_line(out, "#     name: ?");
  expect_line(out, "#     (the rest is not a valid demo.Hello)");
  /* a file that is not a descriptor set */
  snprintf(args, sizeof(args), "print --descriptor-set %s %s", spath, spath);
  assert_int_equal(run_trace(out, sizeof(out), args), 2);
  assert_non_null(strstr(out, "not a FileDescriptorSet"));
  rm_tree(dir);
  free(dir);
#else
  (void)state;
  skip();
#endif
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_sink),     cmocka_unit_test(test_file_errors_and_cap),
      cmocka_unit_test(test_file_alloc_failures),
      cmocka_unit_test(test_env),           cmocka_unit_test(test_net_options),
      cmocka_unit_test(test_trace_tool),    cmocka_unit_test(test_trace_descriptor_set),
  };
  trace_bin = argc > 1 ? argv[1] : NULL;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
