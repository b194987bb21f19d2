/*
 * sgrpc-trace: reads connection recordings (docs/record-replay.md).
 *
 *   sgrpc-trace print [--descriptor-set FDS] FILE...
 *                                  frames and events, in the golden-vector
 *                                  line syntax (tests/vectors/README.md);
 *                                  with a FileDescriptorSet, messages are
 *                                  also decoded as protobuf (comments)
 *   sgrpc-trace replay FILE...     replays into a fresh engine; exit 1 at
 *                                  the first difference, naming it
 *   sgrpc-trace records FILE...    one line per record (index, offset,
 *                                  type, now, payload size)
 *   sgrpc-trace to-corpus [-o DIR] FILE...
 *                                  the bytes the connection received, as an
 *                                  input of fuzz_server (server recordings)
 *                                  or fuzz_client (client recordings), in
 *                                  DIR/<server|client>/<sha1 of content>
 *
 * Exit status: 0 success, 1 a replay differed, 2 usage or unreadable /
 * malformed recording.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nghttp2/nghttp2.h>
#include <sgrpc/net_record.h>

#ifdef SGRPC_TRACE_PROTOBUF
#include "pbdecode.h"
#endif

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  uint8_t *d = NULL;
  size_t cap = 0, n = 0;
  if (!fp) {
    fprintf(stderr, "sgrpc-trace: %s: %s\n", path, strerror(errno));
    return NULL;
  }
  for (;;) {
    size_t got;
    if (n == cap) {
      uint8_t *nd;
      cap = cap ? cap * 2 : 65536;
      nd = realloc(d, cap);
      if (!nd) {
        free(d);
        fclose(fp);
        fprintf(stderr, "sgrpc-trace: out of memory\n");
        return NULL;
      }
      d = nd;
    }
    got = fread(d + n, 1, cap - n, fp);
    n += got;
    if (got == 0) break;
  }
  fclose(fp);
  *len = n;
  return d;
}

typedef struct cur {
  const uint8_t *p;
  size_t len, off;
  int bad;
} cur;

static uint64_t cu(cur *c) {
  uint64_t v = 0;
  unsigned sh = 0;
  while (!c->bad && c->off < c->len && sh < 64) {
    uint8_t b = c->p[c->off++];
    v |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80)) return v;
    sh += 7;
  }
  c->bad = 1;
  return 0;
}
static int64_t cs(cur *c) {
  uint64_t v = cu(c);
  return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}
static const uint8_t *cb(cur *c, size_t *n) {
  uint64_t l = cu(c);
  const uint8_t *p;
  if (c->bad || l > c->len - c->off) {
    c->bad = 1;
    *n = 0;
    return NULL;
  }
  p = c->p + c->off;
  c->off += (size_t)l;
  *n = (size_t)l;
  return p;
}
/* A string that may be NULL (length + 1, 0 for NULL). *isnull set. */
static const uint8_t *cstr(cur *c, size_t *n, int *isnull) {
  uint64_t l = cu(c);
  const uint8_t *p;
  *isnull = l == 0;
  *n = 0;
  if (c->bad || l == 0) return NULL;
  l--;
  if (l > c->len - c->off) {
    c->bad = 1;
    return NULL;
  }
  p = c->p + c->off;
  c->off += (size_t)l;
  *n = (size_t)l;
  return p;
}

/* ------------------------------------------------------------------ */
/* Values in the vector syntax                                         */
/* ------------------------------------------------------------------ */

static void p_str(const uint8_t *s, size_t n) {
  size_t i;
  putchar('"');
  for (i = 0; i < n; i++) {
    uint8_t ch = s[i];
    if (ch == '\\' || ch == '"') printf("\\%c", ch);
    else if (ch < 0x20 || ch > 0x7e) printf("\\x%02x", ch);
    else putchar(ch);
  }
  putchar('"');
}

static void p_hex(const uint8_t *d, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t run = 1;
    while (i + run < n && d[i + run] == d[i]) run++;
    if (run >= 8) {
      printf("%02x{%zu}", d[i], run);
      i += run;
    } else {
      printf("%02x", d[i]);
      i++;
    }
  }
}

static void p_time(int64_t t) {
  if (t == SGRPC_NEVER) printf("NEVER");
  else printf("%lld", (long long)t);
}

static const char *h2err_name(uint32_t e) {
  static const char *names[] = {"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR",
                                "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
                                "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
                                "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
                                "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};
  return e < sizeof(names) / sizeof(names[0]) ? names[e] : NULL;
}
static void p_h2err(uint32_t e) {
  const char *n = h2err_name(e);
  if (n) printf("%s", n);
  else printf("%u", e);
}

static const char *sgerr_name(int64_t e) {
  switch (e) {
  case SGRPC_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
  case SGRPC_ERR_INVALID_STATE: return "INVALID_STATE";
  case SGRPC_ERR_WOULDBLOCK: return "WOULDBLOCK";
  case SGRPC_ERR_CALL_CLOSED: return "CALL_CLOSED";
  case SGRPC_ERR_MESSAGE_TOO_LARGE: return "MESSAGE_TOO_LARGE";
  case SGRPC_ERR_BAD_METADATA: return "BAD_METADATA";
  case SGRPC_ERR_NOMEM: return "NOMEM";
  case SGRPC_ERR_GOING_AWAY: return "GOING_AWAY";
  case SGRPC_ERR_EVENTS_PENDING: return "EVENTS_PENDING";
  case SGRPC_ERR_METADATA_TOO_LARGE: return "METADATA_TOO_LARGE";
  case SGRPC_ERR_BAD_ENCODING: return "BAD_ENCODING";
  case SGRPC_ERR_PROTOCOL: return "PROTOCOL";
  case SGRPC_ERR_CONN_NOMEM: return "CONN_NOMEM";
  case SGRPC_ERR_CONN_CLOSED: return "CONN_CLOSED";
  case SGRPC_ERR_HTTP2: return "HTTP2";
  case SGRPC_ERR_KEEPALIVE_TIMEOUT: return "KEEPALIVE_TIMEOUT";
  case SGRPC_ERR_SETTINGS_TIMEOUT: return "SETTINGS_TIMEOUT";
  case SGRPC_ERR_TOO_MANY_PINGS: return "TOO_MANY_PINGS";
  default: return NULL;
  }
}
static void p_sgerr(int64_t e) {
  const char *n = sgerr_name(e);
  if (n) printf("%s", n);
  else printf("%lld", (long long)e);
}
static void p_error_line(int64_t rv) {
  printf("= ERROR ");
  p_sgerr(rv);
  putchar('\n');
}

/* A header or metadata line: "  name: value". */
static void p_field(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
  size_t i;
  printf("  ");
  for (i = 0; i < kl; i++) {
    if (k[i] < 0x20 || k[i] > 0x7e || k[i] == '\\') printf("\\x%02x", k[i]);
    else putchar(k[i]);
  }
  /* an empty value is "name:", as the vector runner writes it */
  printf(vl ? ": " : ":");
  for (i = 0; i < vl; i++) {
    uint8_t ch = v[i];
    if (ch == '\\') printf("\\\\");
    else if (ch < 0x20 || ch > 0x7e || (ch == ' ' && i + 1 == vl)) printf("\\x%02x", ch);
    else putchar(ch);
  }
  putchar('\n');
}

/* Metadata as recorded: count, then key and value byte strings. */
static void p_md(cur *c) {
  uint64_t n = cu(c), i;
  for (i = 0; i < n && !c->bad; i++) {
    size_t kl, vl;
    const uint8_t *k = cb(c, &kl), *v = cb(c, &vl);
    if (!c->bad) p_field(k, kl, v, vl);
  }
}

/* ------------------------------------------------------------------ */
/* HTTP/2 frames                                                       */
/* ------------------------------------------------------------------ */

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

typedef struct dir {
  char mark;             /* '<' or '>' */
  size_t preface_left;   /* client-to-server direction: preface bytes to go */
  uint8_t *part;         /* an incomplete frame carried to the next chunk */
  size_t part_len, part_cap;
  nghttp2_hd_inflater *inf;
  uint8_t *block;        /* a header block being collected */
  size_t block_len, block_cap;
} dir;

static void grow(uint8_t **p, size_t *cap, size_t need) {
  if (need <= *cap) return;
  while (*cap < need) *cap = *cap ? *cap * 2 : 1024;
  *p = realloc(*p, *cap);
  if (!*p) {
    fprintf(stderr, "sgrpc-trace: out of memory\n");
    exit(2);
  }
}

static void p_flags(int type, uint8_t f) {
  static const struct {
    int type;
    uint8_t bit;
    const char *name;
  } names[] = {{0, 0x1, "END_STREAM"}, {0, 0x8, "PADDED"},       {1, 0x1, "END_STREAM"},
               {1, 0x4, "END_HEADERS"}, {1, 0x8, "PADDED"},      {1, 0x20, "PRIORITY"},
               {4, 0x1, "ACK"},         {6, 0x1, "ACK"},         {9, 0x4, "END_HEADERS"},
               {5, 0x4, "END_HEADERS"}, {5, 0x8, "PADDED"}};
  int bit, first = 1;
  printf(" flags=");
  if (!f) {
    putchar('0');
    return;
  }
  for (bit = 0; bit < 8; bit++) {
    uint8_t b = (uint8_t)(1u << bit);
    size_t i;
    const char *nm = NULL;
    if (!(f & b)) continue;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
      if (names[i].type == type && names[i].bit == b) nm = names[i].name;
    printf("%s", first ? "" : "|");
    first = 0;
    if (nm) printf("%s", nm);
    else printf("0x%02x", b);
  }
}

/* Decodes a complete header block and prints its fields. */
static void p_block(dir *d, const char *lead) {
  const uint8_t *in = d->block;
  size_t left = d->block_len;
  if (!d->inf && nghttp2_hd_inflate_new(&d->inf) != 0) {
    fprintf(stderr, "sgrpc-trace: out of memory\n");
    exit(2);
  }
  for (;;) {
    nghttp2_nv nv;
    int fl = 0;
#if NGHTTP2_VERSION_NUM >= 0x013c00
    nghttp2_ssize rv = nghttp2_hd_inflate_hd3(d->inf, &nv, &fl, in, left, 1);
#else
    ssize_t rv = nghttp2_hd_inflate_hd2(d->inf, &nv, &fl, in, left, 1);
#endif
    if (rv < 0) {
      printf("%s  (HPACK decoding failed)\n", lead);
      break;
    }
    in += rv;
    left -= (size_t)rv;
    if (fl & NGHTTP2_HD_INFLATE_EMIT) {
      printf("%s", lead);
      p_field(nv.name, nv.namelen, nv.value, nv.valuelen);
    }
    if (fl & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(d->inf);
      break;
    }
    if (rv == 0 && left == 0) break;
  }
  d->block_len = 0;
}

/* Prints one complete frame (header + payload), lines prefixed by lead
 * ("" or "# " for a frame split across reads). */
static void p_frame(dir *d, const uint8_t *f, const char *lead) {
  uint32_t len = (uint32_t)f[0] << 16 | (uint32_t)f[1] << 8 | f[2];
  int type = f[3];
  uint8_t flags = f[4];
  uint32_t sid = ((uint32_t)f[5] << 24 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 8 | f[8]) &
                 0x7fffffffu;
  const uint8_t *p = f + 9;
  static const char *tn[] = {"DATA",   "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS",
                             "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"};
  printf("%s%c %s", lead, d->mark, type <= 9 ? tn[type] : "UNKNOWN");
  if (type != 4 && type != 6 && type != 7) printf(" stream=%u", sid);
  p_flags(type, flags);
  switch (type) {
  case 0: { /* DATA: messages while they fit, then the rest as raw */
    size_t n = len, pad = 0;
    if ((flags & 0x8) && n >= 1 && p[0] < n) {
      pad = p[0];
      p++;
      n -= 1 + pad;
    }
    putchar('\n');
    while (n >= 5) {
      uint32_t ml = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
      if ((size_t)ml > n - 5) break;
      printf("%s  msg flag=%u len=%u data=", lead, p[0], ml);
      p_hex(p + 5, ml);
      putchar('\n');
      p += 5 + ml;
      n -= 5 + ml;
    }
    if (n) {
      printf("%s  raw data=", lead);
      p_hex(p, n);
      putchar('\n');
    }
    return;
  }
  case 1:
  case 9: {
    size_t n = len;
    if (type == 1) {
      if ((flags & 0x8) && n >= 1 && p[0] < n) {
        n -= 1u + p[0];
        p++;
      }
      if ((flags & 0x20) && n >= 5) {
        p += 5;
        n -= 5;
      }
      d->block_len = 0;
    }
    grow(&d->block, &d->block_cap, d->block_len + n + 1);
    memcpy(d->block + d->block_len, p, n);
    d->block_len += n;
    if (!(flags & 0x4)) {
      printf(" len=%zu\n", n);
      return;
    }
    putchar('\n');
    p_block(d, lead);
    return;
  }
  case 2:
    if (len == 5)
      printf(" dep=%u weight=%u exclusive=%u",
             ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) &
                 0x7fffffffu,
             p[4], p[0] >> 7);
    else {
      printf(" payload=");
      p_hex(p, len);
    }
    break;
  case 3:
    if (len == 4) {
      printf(" error=");
      p_h2err((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    } else {
      printf(" payload=");
      p_hex(p, len);
    }
    break;
  case 4: {
    static const char *sn[] = {NULL,
                               "HEADER_TABLE_SIZE",
                               "ENABLE_PUSH",
                               "MAX_CONCURRENT_STREAMS",
                               "INITIAL_WINDOW_SIZE",
                               "MAX_FRAME_SIZE",
                               "MAX_HEADER_LIST_SIZE"};
    uint32_t i;
    if (len % 6) {
      printf(" payload=");
      p_hex(p, len);
      break;
    }
    for (i = 0; i + 6 <= len; i += 6) {
      unsigned id = (unsigned)p[i] << 8 | p[i + 1];
      uint32_t v = (uint32_t)p[i + 2] << 24 | (uint32_t)p[i + 3] << 16 |
                   (uint32_t)p[i + 4] << 8 | p[i + 5];
      if (id >= 1 && id <= 6) printf(" %s=%u", sn[id], v);
      else printf(" 0x%02x=%u", id, v);
    }
    break;
  }
  case 6:
    printf(" opaque=");
    p_hex(p, len);
    break;
  case 7:
    if (len >= 8) {
      printf(" last_stream=%u error=",
             ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) &
                 0x7fffffffu);
      p_h2err((uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7]);
      printf(" debug=");
      p_str(p + 8, len - 8);
    } else {
      printf(" payload=");
      p_hex(p, len);
    }
    break;
  case 8:
    if (len == 4)
      printf(" increment=%u",
             ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) &
                 0x7fffffffu);
    else {
      printf(" payload=");
      p_hex(p, len);
    }
    break;
  default:
    printf(" type=%d payload=", type);
    p_hex(p, len);
    break;
  }
  putchar('\n');
}

static void p_raw(dir *d, const uint8_t *b, size_t n) {
  printf("%c RAW data=", d->mark);
  p_hex(b, n);
  putchar('\n');
}

/* One chunk of one direction's bytes (a read, or output taken): whole
 * frames print as frames; pieces of a frame that spans chunks print as
 * RAW (so the bytes stay exact) and the frame, once complete, as a
 * comment. */
static void p_chunk(dir *d, const uint8_t *b, size_t n) {
  size_t off = 0;
  if (d->preface_left) {
    size_t take = n < d->preface_left ? n : d->preface_left;
    if (take == 24 && memcmp(b, preface, 24) == 0) printf("%c PREFACE\n", d->mark);
    else p_raw(d, b, take);
    d->preface_left -= take;
    off = take;
  }
  if (d->part_len && off < n) {
    size_t need = 9;
    size_t take;
    if (d->part_len >= 9)
      need = 9 + ((size_t)d->part[0] << 16 | (size_t)d->part[1] << 8 | d->part[2]);
    take = n - off < need - d->part_len ? n - off : need - d->part_len;
    grow(&d->part, &d->part_cap, d->part_len + take);
    memcpy(d->part + d->part_len, b + off, take);
    d->part_len += take;
    p_raw(d, b + off, take);
    off += take;
    if (d->part_len == 9 && need == 9) { /* the header completed: the payload may follow */
      need = 9 + ((size_t)d->part[0] << 16 | (size_t)d->part[1] << 8 | d->part[2]);
      take = n - off < need - 9 ? n - off : need - 9;
      grow(&d->part, &d->part_cap, need);
      memcpy(d->part + 9, b + off, take);
      d->part_len += take;
      if (take) p_raw(d, b + off, take);
      off += take;
    }
    if (d->part_len >= 9 &&
        d->part_len == 9 + ((size_t)d->part[0] << 16 | (size_t)d->part[1] << 8 | d->part[2])) {
      printf("# the frame the RAW pieces above complete:\n");
      p_frame(d, d->part, "# ");
      d->part_len = 0;
    }
  }
  while (off < n) {
    size_t left = n - off, flen;
    if (left < 9) break;
    flen = 9 + ((size_t)b[off] << 16 | (size_t)b[off + 1] << 8 | b[off + 2]);
    if (left < flen) break;
    p_frame(d, b + off, "");
    off += flen;
  }
  if (off < n) {
    grow(&d->part, &d->part_cap, n - off);
    memcpy(d->part, b + off, n - off);
    d->part_len = n - off;
    p_raw(d, b + off, n - off);
  }
}

/* ------------------------------------------------------------------ */
/* print                                                               */
/* ------------------------------------------------------------------ */

typedef struct printer {
  int server;
  int digest;
  int64_t now;
  dir in, out;
  /* call number -> the stream id it ends up with (0: never had one) */
  uint32_t *streams;
  size_t nstreams;
  /* call number -> its :path (borrowed from the recording), for decoding */
  const uint8_t **paths;
  size_t *path_lens;
#ifdef SGRPC_TRACE_PROTOBUF
  pb_types *pb;
#endif
} printer;

/* Makes room for call number id in the per-call tables. */
static int call_slot(printer *pr, uint64_t id) {
  if (id == 0 || id > 10000000) return 0;
  if (id >= pr->nstreams) {
    size_t n = pr->nstreams ? pr->nstreams : 64;
    while (n <= id) n *= 2;
    pr->streams = realloc(pr->streams, n * sizeof(*pr->streams));
    pr->paths = realloc(pr->paths, n * sizeof(*pr->paths));
    pr->path_lens = realloc(pr->path_lens, n * sizeof(*pr->path_lens));
    if (!pr->streams || !pr->paths || !pr->path_lens) exit(2);
    memset(pr->streams + pr->nstreams, 0, (n - pr->nstreams) * sizeof(*pr->streams));
    memset(pr->paths + pr->nstreams, 0, (n - pr->nstreams) * sizeof(*pr->paths));
    memset(pr->path_lens + pr->nstreams, 0, (n - pr->nstreams) * sizeof(*pr->path_lens));
    pr->nstreams = n;
  }
  return 1;
}

static void note_stream(printer *pr, uint64_t id, uint64_t sid) {
  if (sid && call_slot(pr, id)) pr->streams[id] = (uint32_t)sid;
}

static void note_path(printer *pr, uint64_t id, const uint8_t *path, size_t len) {
  if (path && call_slot(pr, id)) {
    pr->paths[id] = path;
    pr->path_lens[id] = len;
  }
}

/* With a descriptor set: a message of call number id, decoded under the
 * line that showed it. request: the message is the method's input. */
static void p_decoded(printer *pr, uint64_t id, int request, const uint8_t *d, size_t n) {
#ifdef SGRPC_TRACE_PROTOBUF
  const char *type;
  if (!pr->pb || id == 0 || id >= pr->nstreams || !pr->paths[id]) return;
  type = pb_method_type(pr->pb, (const char *)pr->paths[id], pr->path_lens[id], request);
  if (type) pb_print(pr->pb, type, d, n, "#   ");
#else
  (void)pr;
  (void)id;
  (void)request;
  (void)d;
  (void)n;
#endif
}

/* The stream of a call as the vector names it: its stream id (learned
 * from any record), 0 for a call that never had one. */
static uint32_t stream_of_id(printer *pr, cur *c, uint64_t *pid) {
  uint64_t id = cu(c), sid = cu(c);
  if (pid) *pid = id;
  if (sid) return (uint32_t)sid;
  return id < pr->nstreams ? pr->streams[id] : 0;
}
static uint32_t stream_of(printer *pr, cur *c) { return stream_of_id(pr, c, NULL); }

/* First pass: every record that names a call with its stream id. */
static void learn_streams(printer *pr, const uint8_t *data, size_t len) {
  sgrpc_record_reader rd;
  sgrpc_record rec;
  if (sgrpc_record_reader_init(&rd, data, len) != 0) return;
  while (sgrpc_record_next(&rd, &rec) == 1) {
    cur c = {rec.payload, rec.payload_len, 0, 0};
    uint64_t id, sid;
    switch (rec.type) {
    case SGRPC_REC_EVENT: {
      uint64_t type;
      if (cs(&c) != 1) continue;
      type = cu(&c);
      id = cu(&c);
      sid = cu(&c);
      if (c.bad) continue;
      note_stream(pr, id, sid);
      if (type == SGRPC_EV_CALL_NEW) {
        size_t n;
        const uint8_t *path = cb(&c, &n);
        if (!c.bad) note_path(pr, id, path, n);
      }
      continue;
    }
    case SGRPC_REC_CALL_START: {
      size_t n;
      int isnull;
      const uint8_t *path;
      (void)cs(&c);
      id = cu(&c);
      path = cstr(&c, &n, &isnull);
      if (!c.bad && !isnull) note_path(pr, id, path, n);
      continue;
    }
    case SGRPC_REC_CALL_SEND:
    case SGRPC_REC_CALL_RESERVE:
    case SGRPC_REC_CALL_COMMIT:
    case SGRPC_REC_CALL_SET_ENCODING:
    case SGRPC_REC_CALL_CLOSE_SEND:
    case SGRPC_REC_CALL_SEND_HEADERS:
    case SGRPC_REC_CALL_SEND_STATUS:
    case SGRPC_REC_CALL_CANCEL:
    case SGRPC_REC_CALL_RELEASE:
      break;
    default:
      continue;
    }
    id = cu(&c);
    sid = cu(&c);
    if (!c.bad) note_stream(pr, id, sid);
  }
}

static void p_time_step(printer *pr, int64_t now) {
  if (now == pr->now) return;
  pr->now = now;
  printf("@ ");
  p_time(now);
  putchar('\n');
}

static void p_conn(printer *pr, const sgrpc_record *rec) {
  cur c = {rec->payload, rec->payload_len, 0, 0};
  sgrpc_settings d;
  static const char *u32names[] = {"max_recv_message_size", "max_send_message_size",
                                   "max_send_buffer",       "max_header_list_size",
                                   "stream_window",         "connection_window",
                                   "max_concurrent_streams", "max_queued_events",
                                   "out_chunk"};
  uint64_t defs[9];
  int i;
  sgrpc_settings_default(&d);
  defs[0] = d.max_recv_message_size;
  defs[1] = d.max_send_message_size;
  defs[2] = d.max_send_buffer;
  defs[3] = d.max_header_list_size;
  defs[4] = d.stream_window;
  defs[5] = d.connection_window;
  defs[6] = d.max_concurrent_streams;
  defs[7] = d.max_queued_events;
  defs[8] = d.out_chunk;
  pr->server = (int)cu(&c);
  pr->in.preface_left = pr->server ? 24 : 0;
  pr->out.preface_left = pr->server ? 0 : 24;
  p_time_step(pr, rec->now);
  printf("! %s", pr->server ? "server" : "client");
  for (i = 0; i < 9; i++) {
    uint64_t v = cu(&c);
    if (v != defs[i]) printf(" %s=%llu", u32names[i], (unsigned long long)v);
  }
  {
    static const char *sn[] = {"scheme", "user_agent", "encoding"};
    for (i = 0; i < 3; i++) {
      size_t n;
      int isnull;
      const uint8_t *s = cstr(&c, &n, &isnull);
      if (isnull) continue;
      if (i == 0 && n == 4 && memcmp(s, "http", 4) == 0) continue;
      printf(" %s=", sn[i]);
      p_str(s, n);
    }
  }
  {
    uint64_t v = cu(&c);
    int64_t t;
    if (v) printf(" compress_min_size=%llu", (unsigned long long)v);
    t = cs(&c);
    if (t) printf(" keepalive_time=%lld", (long long)t);
    t = cs(&c);
    if (t != d.keepalive_timeout) printf(" keepalive_timeout=%lld", (long long)t);
    t = cs(&c);
    if (t) printf(" keepalive_permit_without_calls=%lld", (long long)t);
    t = cs(&c);
    if (t != d.min_recv_ping_interval) printf(" min_recv_ping_interval=%lld", (long long)t);
    v = cu(&c);
    if (v != d.max_ping_strikes) printf(" max_ping_strikes=%llu", (unsigned long long)v);
    v = cu(&c);
    if (v != d.max_send_header_list_size)
      printf(" max_send_header_list_size=%llu", (unsigned long long)v);
    v = cu(&c);
    if (v != d.max_outbound_queue) printf(" max_outbound_queue=%llu", (unsigned long long)v);
    t = cs(&c);
    if (t != d.settings_timeout) printf(" settings_timeout=%lld", (long long)t);
    v = cu(&c);
    if (v != d.conn_memory_budget) printf(" conn_memory_budget=%llu", (unsigned long long)v);
    v = cu(&c);
    putchar('\n');
    if (v) printf("# the connection counted against a shared budget (not replayed)\n");
  }
}

/* Output bytes (or their digest) of a consume or copy record. */
static void p_output(printer *pr, cur *c) {
  if (pr->digest) {
    uint64_t n = cu(c);
    if (c->bad || c->len - c->off < 4) return;
    printf("# > %llu bytes of output, crc32 %02x%02x%02x%02x\n", (unsigned long long)n,
           c->p[c->off], c->p[c->off + 1], c->p[c->off + 2], c->p[c->off + 3]);
    c->off += 4;
  } else {
    size_t n;
    const uint8_t *b = cb(c, &n);
    if (n) p_chunk(&pr->out, b, n);
  }
}

static void p_event(printer *pr, cur *c) {
  static const char *names[] = {"NONE",     "CALL_NEW", "HEADERS",  "MESSAGE",
                                "HALF_CLOSE", "CLOSE",  "WRITABLE", "GOAWAY",
                                "PING_ACK", "READY",    "CONN_CLOSED"};
  uint64_t type = cu(c), id;
  uint32_t sid = stream_of_id(pr, c, &id);
  size_t n;
  int isnull;
  const uint8_t *s;
  if (c->bad || type > 10) {
    printf("# malformed EVENT record\n");
    return;
  }
  printf("= %s", names[type]);
  switch (type) {
  case SGRPC_EV_CALL_NEW: {
    static const char *f[] = {"authority", "user_agent", "content_type", "encoding",
                              "accept_encoding"};
    int i;
    printf(" stream=%u path=", sid);
    s = cb(c, &n);
    p_str(s, n);
    for (i = 0; i < 5; i++) {
      s = cstr(c, &n, &isnull);
      printf(" %s=", f[i]);
      p_str(s, n);
    }
    printf(" deadline=");
    p_time(cs(c));
    putchar('\n');
    p_md(c);
    return;
  }
  case SGRPC_EV_HEADERS:
    printf(" stream=%u encoding=", sid);
    s = cstr(c, &n, &isnull);
    p_str(s, n);
    putchar('\n');
    p_md(c);
    return;
  case SGRPC_EV_MESSAGE: {
    uint64_t comp = cu(c);
    printf(" stream=%u compressed=%llu", sid, (unsigned long long)comp);
    if (pr->digest) {
      uint64_t len = cu(c);
      printf(" len=%llu", (unsigned long long)len);
      if (c->len - c->off >= 4)
        printf("  # data: crc32 %02x%02x%02x%02x", c->p[c->off], c->p[c->off + 1],
               c->p[c->off + 2], c->p[c->off + 3]);
    } else {
      s = cb(c, &n);
      printf(" len=%zu data=", n);
      p_hex(s, n);
      putchar('\n');
      /* received messages are requests on a server, responses on a client */
      if (!c->bad) p_decoded(pr, id, pr->server, s, n);
      return;
    }
    putchar('\n');
    return;
  }
  case SGRPC_EV_CLOSE: {
    int64_t code = cs(c);
    const uint8_t *msg, *det;
    size_t ml, dl;
    cur md;
    uint64_t reset, h2, retry;
    msg = cb(c, &ml);
    det = cb(c, &dl);
    md = *c;
    /* skip the metadata to reach the flags, print it afterwards */
    {
      uint64_t k = cu(c), i;
      for (i = 0; i < k && !c->bad; i++) {
        size_t a;
        (void)cb(c, &a);
        (void)cb(c, &a);
      }
    }
    reset = cu(c);
    h2 = cu(c);
    retry = cu(c);
    printf(" stream=%u code=", sid);
    if (code >= 0 && code <= 16) printf("%s", sgrpc_status_name((int)code));
    else printf("%lld", (long long)code);
    printf(" message=");
    p_str(msg, ml);
    printf(" reset=%llu http2_error=", (unsigned long long)reset);
    p_h2err((uint32_t)h2);
    printf(" retry_safe=%llu details=", (unsigned long long)retry);
    p_hex(det, dl);
    putchar('\n');
    p_md(&md);
    return;
  }
  case SGRPC_EV_GOAWAY: {
    uint64_t e = cu(c);
    int64_t last = cs(c);
    printf(" error=");
    p_h2err((uint32_t)e);
    printf(" last_stream=%lld debug=", (long long)last);
    s = cb(c, &n);
    p_str(s, n);
    putchar('\n');
    return;
  }
  case SGRPC_EV_PING_ACK:
    printf(" opaque=%llu\n", (unsigned long long)cu(c));
    return;
  case SGRPC_EV_CONN_CLOSED: {
    int64_t r = cs(c);
    printf(" reason=");
    if (r) p_sgerr(r);
    else putchar('0');
    putchar('\n');
    return;
  }
  case SGRPC_EV_HALF_CLOSE:
  case SGRPC_EV_WRITABLE:
    printf(" stream=%u\n", sid);
    return;
  default:
    putchar('\n');
    return;
  }
}

static void p_send_flags(uint64_t f) {
  if (!f) return;
  printf(" flags=");
  printf("%s", f & SGRPC_SEND_END ? "END" : "");
  if (f & SGRPC_SEND_COMPRESSED) printf("%sCOMPRESSED", f & SGRPC_SEND_END ? "|" : "");
  if (f & SGRPC_SEND_NO_COMPRESS)
    printf("%sNO_COMPRESS", f & (SGRPC_SEND_END | SGRPC_SEND_COMPRESSED) ? "|" : "");
}

static void p_record(printer *pr, const sgrpc_record *rec) {
  cur c = {rec->payload, rec->payload_len, 0, 0};
  int64_t rv = 0;
  uint32_t sid;
  size_t n;
  int isnull;
  const uint8_t *s;
  if (rec->type == SGRPC_REC_CONN) {
    p_conn(pr, rec);
    return;
  }
  if (rec->type == SGRPC_REC_TRUNCATED) {
    printf("# the recording stops here: %s\n",
           rec->payload_len && rec->payload[0] == SGRPC_RECORD_STOP_CAP ? "size cap reached"
                                                                       : "out of memory");
    return;
  }
  p_time_step(pr, rec->now);
  switch (rec->type) {
  case SGRPC_REC_RECV: {
    size_t take;
    rv = cs(&c);
    take = c.len - c.off;
    if (rv >= 0 && (uint64_t)rv < take) take = (size_t)rv;
    putchar('\n'); /* a read group of its own */
    if (take) p_chunk(&pr->in, c.p + c.off, take);
    if (rv < 0) p_error_line(rv);
    else if ((size_t)rv < c.len - c.off)
      printf("# recv took %lld of %zu bytes (event queue full)\n", (long long)rv, c.len - c.off);
    return;
  }
  case SGRPC_REC_TRANSPORT_CLOSED:
    printf("! transport_closed\n");
    rv = cs(&c);
    break;
  case SGRPC_REC_OUT_PEEK:
    rv = cs(&c);
    if (rv < 0) p_error_line(rv);
    return;
  case SGRPC_REC_OUT_CONSUME:
    (void)cu(&c);
    p_output(pr, &c);
    rv = cs(&c);
    break;
  case SGRPC_REC_OUT_COPY:
    (void)cu(&c);
    rv = cs(&c);
    p_output(pr, &c);
    break;
  case SGRPC_REC_EXPIRY:
    printf("! expiry\n");
    rv = cs(&c);
    break;
  case SGRPC_REC_PING:
    printf("! ping opaque=%llu\n", (unsigned long long)cu(&c));
    rv = cs(&c);
    break;
  case SGRPC_REC_GOAWAY: {
    uint64_t e = cu(&c);
    printf("! goaway error=");
    p_h2err((uint32_t)e);
    s = cb(&c, &n);
    if (n) {
      printf(" debug=");
      p_str(s, n);
    }
    putchar('\n');
    rv = cs(&c);
    break;
  }
  case SGRPC_REC_SHUTDOWN: {
    int64_t dl = cs(&c);
    printf("! shutdown");
    if (dl != SGRPC_NEVER) printf(" deadline=%lld", (long long)dl);
    putchar('\n');
    rv = cs(&c);
    break;
  }
  case SGRPC_REC_EVENT:
    rv = cs(&c);
    if (rv == 1) {
      p_event(pr, &c);
      return;
    }
    break;
  case SGRPC_REC_CALL_START: {
    uint64_t id;
    int64_t dl, wfr;
    size_t pl, al, sl, el;
    int pn, an, sn, en;
    const uint8_t *path, *auth, *sub, *enc;
    rv = cs(&c);
    id = cu(&c);
    path = cstr(&c, &pl, &pn);
    auth = cstr(&c, &al, &an);
    dl = cs(&c);
    sub = cstr(&c, &sl, &sn);
    enc = cstr(&c, &el, &en);
    wfr = cs(&c);
    printf("! start path=");
    p_str(path, pl);
    if (!an && al) {
      printf(" authority=");
      p_str(auth, al);
    }
    if (dl && dl != SGRPC_NEVER) printf(" deadline=%lld", (long long)dl);
    if (!sn) {
      printf(" subtype=");
      p_str(sub, sl);
    }
    if (!en) {
      printf(" encoding=");
      p_str(enc, el);
    }
    putchar('\n');
    p_md(&c);
    if (wfr) printf("# wait_for_ready=%lld\n", (long long)wfr);
    if (rv == 0 && id < pr->nstreams && pr->streams[id])
      printf("# call %llu: stream %u\n", (unsigned long long)id, pr->streams[id]);
    break;
  }
  case SGRPC_REC_CALL_SEND:
  case SGRPC_REC_CALL_COMMIT: {
    uint64_t flags, id;
    sid = stream_of_id(pr, &c, &id);
    flags = cu(&c);
    if (rec->type == SGRPC_REC_CALL_SEND) rv = cs(&c);
    if (rec->type == SGRPC_REC_CALL_SEND && rv != 0) { /* refused: only the length */
      printf("! send stream=%u", sid);
      p_send_flags(flags);
      printf(" data=00{%llu}\n# (the bytes of a refused send are not recorded)\n",
             (unsigned long long)cu(&c));
      break;
    }
    s = cb(&c, &n);
    if (rec->type == SGRPC_REC_CALL_COMMIT) rv = cs(&c);
    printf("! send stream=%u", sid);
    p_send_flags(flags);
    printf(" data=");
    p_hex(s, n);
    putchar('\n');
    if (rec->type == SGRPC_REC_CALL_COMMIT) printf("# (sgrpc_call_send_reserve + commit)\n");
    if (!c.bad && !(flags & SGRPC_SEND_COMPRESSED)) p_decoded(pr, id, !pr->server, s, n);
    break;
  }
  case SGRPC_REC_CALL_RESERVE:
    sid = stream_of(pr, &c);
    n = (size_t)cu(&c);
    rv = cs(&c);
    if (rv < 0) {
      printf("# send_reserve stream=%u len=%zu\n", sid, n);
      p_error_line(rv);
    }
    return;
  case SGRPC_REC_CALL_SET_ENCODING:
    sid = stream_of(pr, &c);
    s = cstr(&c, &n, &isnull);
    printf("! set_encoding stream=%u encoding=", sid);
    p_str(s, n);
    putchar('\n');
    rv = cs(&c);
    break;
  case SGRPC_REC_CALL_CLOSE_SEND:
    printf("! close_send stream=%u\n", stream_of(pr, &c));
    rv = cs(&c);
    break;
  case SGRPC_REC_CALL_CANCEL:
    printf("! cancel stream=%u\n", stream_of(pr, &c));
    rv = cs(&c);
    break;
  case SGRPC_REC_CALL_RELEASE:
    printf("! release stream=%u\n", stream_of(pr, &c));
    return;
  case SGRPC_REC_CALL_SEND_HEADERS:
    printf("! headers stream=%u\n", stream_of(pr, &c));
    p_md(&c);
    rv = cs(&c);
    break;
  case SGRPC_REC_CALL_SEND_STATUS: {
    int64_t code;
    const uint8_t *det;
    size_t dl;
    sid = stream_of(pr, &c);
    code = cs(&c);
    s = cstr(&c, &n, &isnull);
    det = cb(&c, &dl);
    printf("! status stream=%u code=", sid);
    if (code >= 0 && code <= 16) printf("%s", sgrpc_status_name((int)code));
    else printf("%lld", (long long)code);
    if (!isnull) {
      printf(" message=");
      p_str(s, n);
    }
    if (dl) {
      printf(" details=");
      p_hex(det, dl);
    }
    putchar('\n');
    p_md(&c);
    rv = cs(&c);
    break;
  }
  default:
    printf("# record type %d (%s), %zu bytes\n", rec->type, sgrpc_record_type_name(rec->type),
           rec->payload_len);
    return;
  }
  if (c.bad) printf("# malformed %s record\n", sgrpc_record_type_name(rec->type));
  else if (rv < 0) p_error_line(rv);
}

static int cmd_print(const char *path, void *pb) {
  size_t len;
  uint8_t *data = read_file(path, &len);
  sgrpc_record_reader rd;
  sgrpc_record rec;
  printer pr;
  int rv;
  if (!data) return 2;
  if (sgrpc_record_reader_init(&rd, data, len) != 0) {
    fprintf(stderr, "sgrpc-trace: %s: not a recording (bad header or version)\n", path);
    free(data);
    return 2;
  }
  memset(&pr, 0, sizeof(pr));
#ifdef SGRPC_TRACE_PROTOBUF
  pr.pb = pb;
#else
  (void)pb;
#endif
  pr.in.mark = '<';
  pr.out.mark = '>';
  pr.digest = (rd.flags & SGRPC_RECORD_DIGEST) != 0;
  learn_streams(&pr, data, len);
  printf("# %s: sgrpc recording, format %d%s\n", path, SGRPC_RECORD_VERSION,
         pr.digest ? ", output and messages as digests" : "");
  while ((rv = sgrpc_record_next(&rd, &rec)) == 1) p_record(&pr, &rec);
  if (rv < 0) printf("# the recording ends in a cut record at offset %zu\n", rd.off);
  free(pr.streams);
  free(pr.paths);
  free(pr.path_lens);
  free(pr.in.part);
  free(pr.out.part);
  free(pr.in.block);
  free(pr.out.block);
  if (pr.in.inf) nghttp2_hd_inflate_del(pr.in.inf);
  if (pr.out.inf) nghttp2_hd_inflate_del(pr.out.inf);
  free(data);
  return 0;
}

/* ------------------------------------------------------------------ */
/* replay, records                                                     */
/* ------------------------------------------------------------------ */

static int cmd_replay(const char *path) {
  sgrpc_replay_report r;
  char msg[512];
  int rv = sgrpc_replay_file(path, NULL, &r);
  if (rv < 0) {
    fprintf(stderr, "sgrpc-trace: %s: %s\n", path,
            sgrpc_err_errno(rv) ? strerror(sgrpc_err_errno(rv))
                                : rv == SGRPC_ERR_INVALID_ARGUMENT ? "not a valid recording"
                                                                   : sgrpc_strerror(rv));
    return 2;
  }
  sgrpc_replay_report_format(&r, msg, sizeof(msg));
  printf("%s: %s\n", path, msg);
  return rv == 0 ? 0 : 1;
}

static int cmd_records(const char *path) {
  size_t len;
  uint8_t *data = read_file(path, &len);
  sgrpc_record_reader rd;
  sgrpc_record rec;
  int rv;
  if (!data) return 2;
  if (sgrpc_record_reader_init(&rd, data, len) != 0) {
    fprintf(stderr, "sgrpc-trace: %s: not a recording\n", path);
    free(data);
    return 2;
  }
  printf("# index offset type now payload_offset payload_len\n");
  while ((rv = sgrpc_record_next(&rd, &rec)) == 1)
    printf("%zu %zu %s %lld %zu %zu\n", rd.index - 1, rec.offset,
           sgrpc_record_type_name(rec.type), (long long)rec.now,
           (size_t)(rec.payload - data), rec.payload_len);
  free(data);
  return rv < 0 ? 2 : 0;
}

/* ------------------------------------------------------------------ */
/* to-corpus                                                           */
/* ------------------------------------------------------------------ */

/* SHA-1 (FIPS 180-4), to name corpus files by content as fuzz/corpus
 * does. */
typedef struct sha1 {
  uint32_t h[5];
  uint64_t len;
  uint8_t buf[64];
  size_t n;
} sha1;

static uint32_t rol(uint32_t x, int k) { return x << k | x >> (32 - k); }

static void sha1_block(sha1 *s, const uint8_t *p) {
  uint32_t w[80], a, b, c, d, e;
  int i;
  for (i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
           p[4 * i + 3];
  for (; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  a = s->h[0];
  b = s->h[1];
  c = s->h[2];
  d = s->h[3];
  e = s->h[4];
  for (i = 0; i < 80; i++) {
    uint32_t f, k, t;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    t = rol(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rol(b, 30);
    b = a;
    a = t;
  }
  s->h[0] += a;
  s->h[1] += b;
  s->h[2] += c;
  s->h[3] += d;
  s->h[4] += e;
}

static void sha1_init(sha1 *s) {
  static const uint32_t h0[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
  memcpy(s->h, h0, sizeof(h0));
  s->len = 0;
  s->n = 0;
}

static void sha1_update(sha1 *s, const uint8_t *p, size_t n) {
  s->len += n;
  while (n) {
    size_t take = 64 - s->n < n ? 64 - s->n : n;
    memcpy(s->buf + s->n, p, take);
    s->n += take;
    p += take;
    n -= take;
    if (s->n == 64) {
      sha1_block(s, s->buf);
      s->n = 0;
    }
  }
}

static void sha1_hex(sha1 *s, char out[41]) {
  uint64_t bits = s->len * 8;
  uint8_t pad = 0x80, z = 0, lenb[8];
  int i;
  sha1_update(s, &pad, 1);
  while (s->n != 56) sha1_update(s, &z, 1);
  for (i = 0; i < 8; i++) lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
  sha1_update(s, lenb, 8);
  for (i = 0; i < 5; i++) sprintf(out + 8 * i, "%08x", s->h[i]);
}

static int cmd_to_corpus(const char *outdir, const char *path) {
  size_t len, n = 0, cap = 0;
  uint8_t *data = read_file(path, &len), *in = NULL;
  sgrpc_record_reader rd;
  sgrpc_record rec;
  int server = -1, rv;
  char hex[41], *file;
  const char *target;
  sha1 h;
  FILE *fp;
  if (!data) return 2;
  if (sgrpc_record_reader_init(&rd, data, len) != 0) {
    fprintf(stderr, "sgrpc-trace: %s: not a recording\n", path);
    free(data);
    return 2;
  }
  /* fuzz_common.h's layout: byte 0 = 0 (the rest in one chunk), byte 1
   * = 0 (the harness's seed), then the peer's bytes */
  grow(&in, &cap, 2);
  in[0] = in[1] = 0;
  n = 2;
  while ((rv = sgrpc_record_next(&rd, &rec)) == 1) {
    cur c = {rec.payload, rec.payload_len, 0, 0};
    if (rec.type == SGRPC_REC_CONN) server = (int)cu(&c);
    if (rec.type == SGRPC_REC_RECV) {
      int64_t got = cs(&c);
      size_t take = c.len - c.off;
      if (got >= 0 && (uint64_t)got < take) take = (size_t)got;
      grow(&in, &cap, n + take);
      memcpy(in + n, c.p + c.off, take);
      n += take;
    }
  }
  free(data);
  if (rv < 0 || server < 0) {
    fprintf(stderr, "sgrpc-trace: %s: malformed recording\n", path);
    free(in);
    return 2;
  }
  target = server ? "server" : "client";
  file = malloc(strlen(outdir) + 64);
  if (!file) exit(2);
  sprintf(file, "%s/%s", outdir, target);
  if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "sgrpc-trace: %s: %s\n", outdir, strerror(errno));
    free(in);
    free(file);
    return 2;
  }
  if (mkdir(file, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "sgrpc-trace: %s: %s\n", file, strerror(errno));
    free(in);
    free(file);
    return 2;
  }
  sha1_init(&h);
  sha1_update(&h, in, n);
  sha1_hex(&h, hex);
  sprintf(file, "%s/%s/%s", outdir, target, hex);
  fp = fopen(file, "wb");
  if (!fp || fwrite(in, 1, n, fp) != n || fclose(fp) != 0) {
    fprintf(stderr, "sgrpc-trace: %s: %s\n", file, strerror(errno));
    free(in);
    free(file);
    return 2;
  }
  printf("%s (fuzz_%s input, %zu bytes)\n", file, target, n);
  free(in);
  free(file);
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: sgrpc-trace print [--descriptor-set FDS] FILE...\n"
          "       sgrpc-trace replay FILE...\n"
          "       sgrpc-trace records FILE...\n"
          "       sgrpc-trace to-corpus [-o DIR] FILE...   (DIR: default \"corpus\")\n"
          "Reads connection recordings (docs/record-replay.md). Exit status: 0 ok,\n"
          "1 a replay differed, 2 usage error or unreadable recording.\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *cmd, *outdir = "corpus";
  int i = 2, worst = 0;
  void *pb = NULL;
  if (argc < 2) return usage();
  cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
    usage();
    return 0;
  }
  if (strcmp(cmd, "to-corpus") == 0 && argc > 3 && strcmp(argv[2], "-o") == 0) {
    outdir = argv[3];
    i = 4;
  }
  if (strcmp(cmd, "print") == 0 && argc > 3 && strcmp(argv[2], "--descriptor-set") == 0) {
#ifdef SGRPC_TRACE_PROTOBUF
    size_t len;
    uint8_t *d = read_file(argv[3], &len);
    if (!d) return 2;
    pb = pb_types_load(d, len);
    free(d);
    if (!pb) {
      fprintf(stderr, "sgrpc-trace: %s: not a FileDescriptorSet\n", argv[3]);
      return 2;
    }
    i = 4;
#else
    fprintf(stderr, "sgrpc-trace: built without protobuf-c: --descriptor-set is not available\n");
    return 2;
#endif
  }
  if (i >= argc) return usage();
  for (; i < argc; i++) {
    int rv;
    if (strcmp(cmd, "print") == 0) rv = cmd_print(argv[i], pb);
    else if (strcmp(cmd, "replay") == 0) rv = cmd_replay(argv[i]);
    else if (strcmp(cmd, "records") == 0) rv = cmd_records(argv[i]);
    else if (strcmp(cmd, "to-corpus") == 0) rv = cmd_to_corpus(outdir, argv[i]);
    else return usage();
    fflush(stdout);
    if (rv == 2) worst = 2;
    else if (rv > worst) worst = rv;
  }
#ifdef SGRPC_TRACE_PROTOBUF
  pb_types_free(pb);
#endif
  return worst;
}
