/*
 * Recording files (<sgrpc/net_record.h>): the IO around the engine's
 * recorder, kept out of the engine (sans-IO) and out of core.c (which
 * does no system calls).
 */
#include <sgrpc/net_record.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Buffered like a log: one write per 64 KiB, not per record. */
#define RF_BUFSIZE (64u << 10)
/* Names tried before giving up (a directory full of our names). */
#define RF_NAME_TRIES 100000

struct sgrpc_record_file {
  sgrpc_mem mem;
  FILE *fp;
  sgrpc_recorder *rec;
  char *path;
  int err; /* errno of the first failed write */
};

/* Numbers of the files this process made: the next name to try. */
static atomic_uint rf_seq;

static int rf_write(const uint8_t *d, size_t n, void *ud) {
  sgrpc_record_file *f = ud;
  if (fwrite(d, 1, n, f->fp) != n) {
    if (!f->err) f->err = errno ? errno : EIO;
    return -1;
  }
  return 0;
}

static int tag_ok(const char *t) {
  size_t n = 0;
  for (; t[n]; n++) {
    char ch = t[n];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
      return 0;
  }
  return n > 0 && n <= 32;
}

int sgrpc_record_file_open(sgrpc_record_file **pf, const char *dir, const char *tag,
                           uint64_t max_bytes, unsigned flags, const sgrpc_mem *umem) {
  sgrpc_mem mem;
  sgrpc_record_file *f;
  sgrpc_recorder_opts ro;
  size_t plen;
  int fd = -1, tries, rv;
  if (pf) *pf = NULL;
  if (!pf || !dir || !*dir || !tag || !tag_ok(tag) || sgrpc_mem_resolve(&mem, umem) != 0)
    return SGRPC_ERR_INVALID_ARGUMENT;
  f = mem.calloc(1, sizeof(*f), mem.user_data);
  if (!f) return SGRPC_ERR_NOMEM;
  f->mem = mem;
  plen = strlen(dir) + 80;
  f->path = mem.malloc(plen, mem.user_data);
  if (!f->path) {
    mem.free(f, mem.user_data);
    return SGRPC_ERR_NOMEM;
  }
  for (tries = 0; tries < RF_NAME_TRIES; tries++) {
    unsigned long long n = (unsigned long long)atomic_fetch_add(&rf_seq, 1u);
    snprintf(f->path, plen, "%s/sgrpc-%s-%ld-%llu.sgrec", dir, tag, (long)getpid(), n);
    fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) break;
  }
  if (fd < 0) {
    rv = SGRPC_ERR_SYSTEM(errno > 0 && errno < 400 ? errno : EIO);
    goto fail;
  }
  f->fp = fdopen(fd, "wb");
  if (!f->fp) {
    rv = errno == ENOMEM ? SGRPC_ERR_NOMEM : SGRPC_ERR_SYSTEM(errno > 0 && errno < 400 ? errno : EIO);
    close(fd);
    unlink(f->path);
    goto fail;
  }
  setvbuf(f->fp, NULL, _IOFBF, RF_BUFSIZE);
  memset(&ro, 0, sizeof(ro));
  ro.write = rf_write;
  ro.user_data = f;
  ro.max_bytes = max_bytes ? max_bytes : SGRPC_RECORD_DEFAULT_MAX_BYTES;
  ro.flags = flags;
  rv = sgrpc_recorder_new(&f->rec, &ro, &mem);
  if (rv != 0) {
    fclose(f->fp);
    unlink(f->path);
    goto fail;
  }
  *pf = f;
  return 0;

fail:
  mem.free(f->path, mem.user_data);
  mem.free(f, mem.user_data);
  return rv;
}

sgrpc_recorder *sgrpc_record_file_recorder(const sgrpc_record_file *f) { return f ? f->rec : NULL; }

const char *sgrpc_record_file_path(const sgrpc_record_file *f) { return f ? f->path : NULL; }

int sgrpc_record_file_close(sgrpc_record_file *f) {
  sgrpc_mem mem;
  int rv = 0;
  if (!f) return 0;
  mem = f->mem;
  if (fclose(f->fp) != 0 && !f->err) f->err = errno ? errno : EIO;
  if (f->err) rv = SGRPC_ERR_SYSTEM(f->err > 0 && f->err < 400 ? f->err : EIO);
  sgrpc_recorder_del(f->rec);
  mem.free(f->path, mem.user_data);
  mem.free(f, mem.user_data);
  return rv;
}

int sgrpc_replay_file(const char *path, const sgrpc_mem *mem, sgrpc_replay_report *report) {
  FILE *fp;
  uint8_t *data = NULL;
  size_t len = 0, cap = 0;
  int rv;
  if (report) memset(report, 0, sizeof(*report));
  if (!path) return SGRPC_ERR_INVALID_ARGUMENT;
  fp = fopen(path, "rb");
  if (!fp) return SGRPC_ERR_SYSTEM(errno > 0 && errno < 400 ? errno : EIO);
  for (;;) {
    size_t got;
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      uint8_t *nd = realloc(data, ncap);
      if (!nd) {
        free(data);
        fclose(fp);
        return SGRPC_ERR_NOMEM;
      }
      data = nd;
      cap = ncap;
    }
    got = fread(data + len, 1, cap - len, fp);
    len += got;
    if (got == 0) break;
  }
  rv = ferror(fp) ? SGRPC_ERR_SYSTEM(EIO) : 0;
  fclose(fp);
  if (rv == 0) rv = sgrpc_replay_mem(data, len, mem, report);
  free(data);
  return rv;
}

static const char *err_text(int64_t v) {
  return v < 0 && v >= INT32_MIN ? sgrpc_strerror((int)v) : "";
}

int sgrpc_replay_report_format(const sgrpc_replay_report *r, char *buf, size_t cap) {
  char e[16], g[16], res[200];
  if (!r) return snprintf(buf, cap, "no report");
  if (!r->differs)
    return snprintf(buf, cap, "identical: %zu records replayed%s", r->records,
                    r->truncated ? " (the recording was truncated)" : "");
  if (r->expected < 0) snprintf(e, sizeof(e), "(nothing)");
  else snprintf(e, sizeof(e), "0x%02x", (unsigned)r->expected);
  if (r->got < 0) snprintf(g, sizeof(g), "(nothing)");
  else snprintf(g, sizeof(g), "0x%02x", (unsigned)r->got);
  res[0] = 0;
  if (r->has_result)
    snprintf(res, sizeof(res), "; result: expected %lld%s%s%s, got %lld%s%s%s",
             (long long)r->expected_result, r->expected_result < 0 ? " (" : "",
             err_text(r->expected_result), r->expected_result < 0 ? ")" : "",
             (long long)r->got_result, r->got_result < 0 ? " (" : "", err_text(r->got_result),
             r->got_result < 0 ? ")" : "");
  return snprintf(buf, cap,
                  "record %zu (%s at file offset %zu) differs at byte %zu of the record: "
                  "expected %s, got %s%s",
                  r->diff_index, sgrpc_record_type_name(r->diff_type), r->diff_record_offset,
                  r->diff_offset, e, g, res);
}

const char *sgrpc_record_env(uint64_t *max_bytes) {
  const char *dir = getenv("SGRPC_RECORD_DIR");
  const char *cap = getenv("SGRPC_RECORD_MAX_BYTES");
  if (max_bytes) {
    char *end = NULL;
    unsigned long long v = 0;
    if (cap && *cap) {
      errno = 0;
      v = strtoull(cap, &end, 10);
      if (errno || !end || *end) v = 0;
    }
    *max_bytes = v;
  }
  return dir && *dir ? dir : NULL;
}
