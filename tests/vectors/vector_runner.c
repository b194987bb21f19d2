/*
 * The golden vector runner: executes every case of a Markdown file of tests/vectors/
 * against the engine (<sgrpc/sgrpc.h> only) and compares the
 * transcript it produces with the file, line for line. The syntax is
 * defined in tests/vectors/README.md; this file implements exactly that.
 *
 * Usage: vector_runner [--print] FILE.md [CASE-SUBSTRING]
 * Exit status 0 when every case matched, 1 otherwise (each mismatch is
 * printed as a diff of the case). --print writes each case's actual
 * transcript as a trace block instead of comparing.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <sgrpc/sgrpc.h>

/* ------------------------------------------------------------------ */
/* Small growable buffers                                              */
/* ------------------------------------------------------------------ */

typedef struct {
  uint8_t *p;
  size_t len, cap;
} vbuf;

static void vb_need(vbuf *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n + 1) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) {
    fprintf(stderr, "vector_runner: out of memory\n");
    exit(2);
  }
  b->p = p;
  b->cap = cap;
}
static void vb_add(vbuf *b, const void *d, size_t n) {
  vb_need(b, n);
  if (n) memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = 0;
}
static void vb_byte(vbuf *b, uint8_t c) { vb_add(b, &c, 1); }
static void vb_printf(vbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[512];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) vb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
static void vb_free(vbuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* A list of owned strings (transcript lines). */
typedef struct {
  char **v;
  size_t n, cap;
} strlist;

static void sl_push(strlist *l, const char *s) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
    if (!l->v) exit(2);
  }
  l->v[l->n] = strdup(s);
  if (!l->v[l->n]) exit(2);
  l->n++;
}
static void sl_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

/* ------------------------------------------------------------------ */
/* Errors while executing a case (bad syntax in the vector)            */
/* ------------------------------------------------------------------ */

static char g_err[512];
static int g_errline;

static int fail_syntax(int line, const char *fmt, ...) {
  if (g_err[0]) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
  g_errline = line;
  return -1;
}

/* ------------------------------------------------------------------ */
/* Values: hex, strings, numbers, times, names                         */
/* ------------------------------------------------------------------ */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* hex := (pair ['{' count '}'])* */
static int parse_hex(const char *s, vbuf *out) {
  while (*s) {
    int h = hexval(s[0]), l = s[0] ? hexval(s[1]) : -1;
    if (h < 0 || l < 0) return -1;
    uint8_t byte = (uint8_t)(h * 16 + l);
    s += 2;
    unsigned long n = 1;
    if (*s == '{') {
      char *end;
      errno = 0;
      n = strtoul(s + 1, &end, 10);
      if (errno || end == s + 1 || *end != '}' || n == 0 || n > (1ul << 26)) return -1;
      s = end + 1;
    }
    for (unsigned long i = 0; i < n; i++) vb_byte(out, byte);
  }
  return 0;
}

static void print_hex(vbuf *o, const uint8_t *d, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t j = i + 1;
    while (j < n && d[j] == d[i]) j++;
    if (j - i >= 16) {
      vb_printf(o, "%02x{%zu}", d[i], j - i);
      i = j;
    } else {
      vb_printf(o, "%02x", d[i]);
      i++;
    }
  }
}

/* A quoted string "..." with \\ \" \xHH; s points at the opening quote.
 * Returns the number of characters used, or -1. */
static int parse_quoted(const char *s, vbuf *out) {
  if (*s != '"') return -1;
  const char *p = s + 1;
  while (*p && *p != '"') {
    if (*p == '\\') {
      if (p[1] == '\\' || p[1] == '"') {
        vb_byte(out, (uint8_t)p[1]);
        p += 2;
      } else if (p[1] == 'x' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0) {
        vb_byte(out, (uint8_t)(hexval(p[2]) * 16 + hexval(p[3])));
        p += 4;
      } else {
        return -1;
      }
    } else {
      vb_byte(out, (uint8_t)*p++);
    }
  }
  if (*p != '"') return -1;
  return (int)(p + 1 - s);
}

static void print_quoted(vbuf *o, const uint8_t *d, size_t n) {
  vb_byte(o, '"');
  for (size_t i = 0; i < n; i++) {
    if (d[i] == '\\' || d[i] == '"') {
      vb_byte(o, '\\');
      vb_byte(o, d[i]);
    } else if (d[i] < 0x20 || d[i] > 0x7e) {
      vb_printf(o, "\\x%02x", d[i]);
    } else {
      vb_byte(o, d[i]);
    }
  }
  vb_byte(o, '"');
}

static void print_qstr(vbuf *o, const char *s) {
  print_quoted(o, (const uint8_t *)(s ? s : ""), s ? strlen(s) : 0);
}

/* A header or metadata value printed as the rest of a line. */
static void print_hvalue(vbuf *o, const uint8_t *d, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (d[i] == '\\') {
      vb_add(o, "\\\\", 2);
    } else if (d[i] < 0x20 || d[i] > 0x7e || (d[i] == ' ' && i + 1 == n)) {
      vb_printf(o, "\\x%02x", d[i]);
    } else {
      vb_byte(o, d[i]);
    }
  }
}

static int parse_hvalue(const char *s, vbuf *out) {
  while (*s) {
    if (*s == '\\') {
      if (s[1] == '\\') {
        vb_byte(out, '\\');
        s += 2;
      } else if (s[1] == 'x' && hexval(s[2]) >= 0 && hexval(s[3]) >= 0) {
        vb_byte(out, (uint8_t)(hexval(s[2]) * 16 + hexval(s[3])));
        s += 4;
      } else {
        return -1;
      }
    } else {
      vb_byte(out, (uint8_t)*s++);
    }
  }
  return 0;
}

static int parse_int(const char *s, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 0);
  if (errno || end == s || *end) return -1;
  *v = x;
  return 0;
}

static int parse_time(const char *s, int64_t *v) {
  if (!strcmp(s, "NEVER")) {
    *v = SGRPC_NEVER;
    return 0;
  }
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || end == s) return -1;
  int64_t mul = 1;
  if (!*end || !strcmp(end, "ns")) mul = 1;
  else if (!strcmp(end, "us")) mul = 1000;
  else if (!strcmp(end, "ms")) mul = 1000000;
  else if (!strcmp(end, "s")) mul = 1000000000;
  else if (!strcmp(end, "m")) mul = 60LL * 1000000000;
  else if (!strcmp(end, "h")) mul = 3600LL * 1000000000;
  else return -1;
  *v = (int64_t)x * mul;
  return 0;
}

static void print_time(vbuf *o, int64_t t) {
  if (t == SGRPC_NEVER) vb_printf(o, "NEVER");
  else vb_printf(o, "%" PRId64, t);
}

static const char *const status_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

static int parse_status(const char *s, int *code) {
  for (int i = 0; i <= 16; i++)
    if (!strcmp(s, status_names[i])) {
      *code = i;
      return 0;
    }
  int64_t v;
  if (parse_int(s, &v) || v < INT32_MIN || v > INT32_MAX) return -1;
  *code = (int)v;
  return 0;
}

static void print_status(vbuf *o, int code) {
  if (code >= 0 && code <= 16) vb_printf(o, "%s", status_names[code]);
  else vb_printf(o, "%d", code);
}

static const char *const h2err_names[] = {
    "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
    "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};

static int parse_h2err(const char *s, uint32_t *code) {
  for (uint32_t i = 0; i < 14; i++)
    if (!strcmp(s, h2err_names[i])) {
      *code = i;
      return 0;
    }
  int64_t v;
  if (parse_int(s, &v) || v < 0 || v > UINT32_MAX) return -1;
  *code = (uint32_t)v;
  return 0;
}

static void print_h2err(vbuf *o, uint32_t code) {
  if (code < 14) vb_printf(o, "%s", h2err_names[code]);
  else vb_printf(o, "%" PRIu32, code);
}

static const struct {
  int code;
  const char *name;
} err_names[] = {
    {SGRPC_ERR_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
    {SGRPC_ERR_INVALID_STATE, "INVALID_STATE"},
    {SGRPC_ERR_WOULDBLOCK, "WOULDBLOCK"},
    {SGRPC_ERR_CALL_CLOSED, "CALL_CLOSED"},
    {SGRPC_ERR_MESSAGE_TOO_LARGE, "MESSAGE_TOO_LARGE"},
    {SGRPC_ERR_BAD_METADATA, "BAD_METADATA"},
    {SGRPC_ERR_NOMEM, "NOMEM"},
    {SGRPC_ERR_GOING_AWAY, "GOING_AWAY"},
    {SGRPC_ERR_EVENTS_PENDING, "EVENTS_PENDING"},
    {SGRPC_ERR_METADATA_TOO_LARGE, "METADATA_TOO_LARGE"},
    {SGRPC_ERR_BAD_ENCODING, "BAD_ENCODING"},
    {SGRPC_ERR_PROTOCOL, "PROTOCOL"},
    {SGRPC_ERR_CONN_NOMEM, "CONN_NOMEM"},
    {SGRPC_ERR_CONN_CLOSED, "CONN_CLOSED"},
    {SGRPC_ERR_HTTP2, "HTTP2"},
    {SGRPC_ERR_KEEPALIVE_TIMEOUT, "KEEPALIVE_TIMEOUT"},
    {SGRPC_ERR_SETTINGS_TIMEOUT, "SETTINGS_TIMEOUT"},
    {SGRPC_ERR_TOO_MANY_PINGS, "TOO_MANY_PINGS"},
};

static void print_err(vbuf *o, int code) {
  for (size_t i = 0; i < sizeof err_names / sizeof err_names[0]; i++)
    if (err_names[i].code == code) {
      vb_printf(o, "%s", err_names[i].name);
      return;
    }
  vb_printf(o, "%d", code);
}

/* ------------------------------------------------------------------ */
/* Tokens of one line                                                  */
/* ------------------------------------------------------------------ */

#define MAX_TOK 32

typedef struct {
  char *key[MAX_TOK]; /* NULL for a bare word */
  char *val[MAX_TOK];
  int n;
} toks;

/* Splits "KEYWORD a=1 b="x y" c" into tokens; s is modified in place. */
static int tokenize(char *s, toks *t) {
  t->n = 0;
  while (*s) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) break;
    if (t->n == MAX_TOK) return -1;
    char *start = s;
    char *eq = NULL;
    while (*s && *s != ' ' && *s != '\t') {
      if (*s == '=' && !eq) {
        eq = s;
        if (s[1] == '"') {
          /* skip the quoted string, escapes included */
          s += 2;
          while (*s && *s != '"') s += (*s == '\\' && s[1]) ? 2 : 1;
          if (*s != '"') return -1;
        }
      }
      s++;
    }
    if (*s) *s++ = 0;
    if (eq) {
      *eq = 0;
      t->key[t->n] = start;
      t->val[t->n] = eq + 1;
    } else {
      t->key[t->n] = NULL;
      t->val[t->n] = start;
    }
    t->n++;
  }
  return 0;
}

static const char *tk_get(const toks *t, const char *key) {
  for (int i = 0; i < t->n; i++)
    if (t->key[i] && !strcmp(t->key[i], key)) return t->val[i];
  return NULL;
}

/* Parses a quoted string field into a NUL-terminated heap copy. */
static int tk_string(const toks *t, const char *key, vbuf *out, int *present) {
  const char *v = tk_get(t, key);
  *present = v != NULL;
  if (!v) return 0;
  int n = parse_quoted(v, out);
  if (n < 0 || v[n]) return -1;
  vb_need(out, 0);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Lines of a case                                                     */
/* ------------------------------------------------------------------ */

typedef struct {
  char *text; /* as written, without the newline */
  int lineno;
} sline;

typedef struct {
  char *name;
  int lineno;
  sline *lines;
  size_t n, cap;
} vcase;

static int is_cont(const char *s) { return s[0] == ' ' || s[0] == '\t'; }
static int is_blank(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  return *s == 0;
}

/* The comparison form of a line: a continuation line gets exactly two
 * leading spaces and keeps its rest; any other line has runs of spaces
 * outside quotes collapsed; trailing spaces go. */
static void normalize(const char *s, vbuf *o) {
  o->len = 0;
  vb_need(o, 0);
  if (is_cont(s)) {
    while (*s == ' ' || *s == '\t') s++;
    vb_add(o, "  ", 2);
    vb_add(o, s, strlen(s));
  } else {
    int inq = 0, sp = 0;
    for (; *s; s++) {
      if (inq) {
        vb_byte(o, (uint8_t)*s);
        if (*s == '\\' && s[1]) vb_byte(o, (uint8_t)*++s);
        else if (*s == '"') inq = 0;
      } else if (*s == ' ' || *s == '\t') {
        sp = 1;
      } else {
        if (sp && o->len) vb_byte(o, ' ');
        sp = 0;
        vb_byte(o, (uint8_t)*s);
        if (*s == '"') inq = 1;
      }
    }
  }
  while (o->len && o->p[o->len - 1] == ' ') o->p[--o->len] = 0;
}

/* ------------------------------------------------------------------ */
/* HPACK (input side: literal without indexing, new name, no Huffman)  */
/* ------------------------------------------------------------------ */

static void hpack_int(vbuf *o, uint8_t first, int prefix, size_t v) {
  size_t max = ((size_t)1 << prefix) - 1;
  if (v < max) {
    vb_byte(o, (uint8_t)(first | v));
    return;
  }
  vb_byte(o, (uint8_t)(first | max));
  v -= max;
  while (v >= 128) {
    vb_byte(o, (uint8_t)(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  vb_byte(o, (uint8_t)v);
}

/* "  name: value" -> HPACK field. Returns -1 for a malformed line. */
static int hpack_line(const char *line, vbuf *o) {
  while (*line == ' ' || *line == '\t') line++;
  const char *sep = strstr(line + 1, ": ");
  const char *name_end = sep;
  const char *val = sep ? sep + 2 : NULL;
  if (!sep) {
    /* "name:" with an empty value */
    size_t l = strlen(line);
    if (l < 2 || line[l - 1] != ':') return -1;
    name_end = line + l - 1;
    val = "";
  }
  vbuf v = {0};
  if (parse_hvalue(val, &v)) {
    vb_free(&v);
    return -1;
  }
  vb_byte(o, 0x00);
  hpack_int(o, 0, 7, (size_t)(name_end - line));
  vb_add(o, line, (size_t)(name_end - line));
  hpack_int(o, 0, 7, v.len);
  vb_add(o, v.p, v.len);
  vb_free(&v);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Frame names                                                         */
/* ------------------------------------------------------------------ */

static const char *const frame_names[] = {"DATA", "HEADERS", "PRIORITY", "RST_STREAM",
                                          "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
                                          "WINDOW_UPDATE", "CONTINUATION"};

static const char *const setting_names[] = {NULL,
                                            "HEADER_TABLE_SIZE",
                                            "ENABLE_PUSH",
                                            "MAX_CONCURRENT_STREAMS",
                                            "INITIAL_WINDOW_SIZE",
                                            "MAX_FRAME_SIZE",
                                            "MAX_HEADER_LIST_SIZE"};

static int parse_flags(const char *s, int type, uint8_t *flags) {
  *flags = 0;
  char buf[128];
  if (strlen(s) >= sizeof buf) return -1;
  strcpy(buf, s);
  for (char *tok = strtok(buf, "|"); tok; tok = strtok(NULL, "|")) {
    if (!strcmp(tok, "END_STREAM") && (type == 0 || type == 1)) *flags |= 0x1;
    else if (!strcmp(tok, "ACK") && (type == 4 || type == 6)) *flags |= 0x1;
    else if (!strcmp(tok, "END_HEADERS") && (type == 1 || type == 5 || type == 9)) *flags |= 0x4;
    else if (!strcmp(tok, "PADDED") && (type == 0 || type == 1 || type == 5)) *flags |= 0x8;
    else if (!strcmp(tok, "PRIORITY") && type == 1) *flags |= 0x20;
    else {
      int64_t v;
      if (parse_int(tok, &v) || v < 0 || v > 255) return -1;
      *flags |= (uint8_t)v;
    }
  }
  return 0;
}

static void print_flags(vbuf *o, int type, uint8_t flags) {
  if (!flags) {
    vb_printf(o, "0");
    return;
  }
  int first = 1;
  for (int bit = 0; bit < 8; bit++) {
    uint8_t m = (uint8_t)(1u << bit);
    if (!(flags & m)) continue;
    const char *name = NULL;
    if (m == 0x1 && (type == 0 || type == 1)) name = "END_STREAM";
    else if (m == 0x1 && (type == 4 || type == 6)) name = "ACK";
    else if (m == 0x4 && (type == 1 || type == 5 || type == 9)) name = "END_HEADERS";
    else if (m == 0x8 && (type == 0 || type == 1 || type == 5)) name = "PADDED";
    else if (m == 0x20 && type == 1) name = "PRIORITY";
    if (!first) vb_byte(o, '|');
    first = 0;
    if (name) vb_printf(o, "%s", name);
    else vb_printf(o, "0x%02x", m);
  }
}

static void put32(vbuf *o, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  vb_add(o, b, 4);
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* ------------------------------------------------------------------ */
/* Building one input frame                                            */
/* ------------------------------------------------------------------ */

/* Builds the bytes of the `<` line at lines[i] and its continuation
 * lines; returns the index of the next line or -1. */
static long build_frame(vcase *c, size_t i, vbuf *out) {
  char *copy = strdup(c->lines[i].text + 1);
  int ln = c->lines[i].lineno;
  toks t;
  vbuf payload = {0}, tmp = {0};
  size_t j = i + 1;
  long rv = -1;
  if (!copy) exit(2);
  if (tokenize(copy, &t) || t.n == 0 || t.key[0]) {
    fail_syntax(ln, "bad frame line");
    goto done;
  }
  const char *kw = t.val[0];
  while (j < c->n && is_cont(c->lines[j].text)) j++;

  if (!strcmp(kw, "PREFACE")) {
    vb_add(out, PREFACE, sizeof PREFACE - 1);
    rv = (long)j;
    goto done;
  }
  if (!strcmp(kw, "RAW")) {
    const char *d = tk_get(&t, "data");
    if (!d || parse_hex(d, out)) {
      fail_syntax(ln, "RAW needs data=<hex>");
      goto done;
    }
    rv = (long)j;
    goto done;
  }
  int type = -1;
  for (int k = 0; k < 10; k++)
    if (!strcmp(kw, frame_names[k])) type = k;
  int64_t v;
  if (!strcmp(kw, "UNKNOWN")) {
    const char *ty = tk_get(&t, "type");
    if (!ty || parse_int(ty, &v) || v < 0 || v > 255) {
      fail_syntax(ln, "UNKNOWN needs type=N");
      goto done;
    }
    type = (int)v;
  }
  if (type < 0) {
    fail_syntax(ln, "unknown frame type %s", kw);
    goto done;
  }
  uint32_t stream = 0;
  uint8_t flags = 0;
  const char *s;
  if ((s = tk_get(&t, "stream"))) {
    if (parse_int(s, &v) || v < 0 || v > 0x7fffffff) {
      fail_syntax(ln, "bad stream");
      goto done;
    }
    stream = (uint32_t)v;
  }
  if ((s = tk_get(&t, "flags")) && parse_flags(s, type, &flags)) {
    fail_syntax(ln, "bad flags %s", s);
    goto done;
  }
  if ((s = tk_get(&t, "payload"))) {
    if (parse_hex(s, &payload)) {
      fail_syntax(ln, "bad payload hex");
      goto done;
    }
  } else {
    switch (type) {
    case 0: /* DATA */
      for (size_t k = i + 1; k < j; k++) {
        char *cl = strdup(c->lines[k].text);
        toks ct;
        if (!cl) exit(2);
        int bad = tokenize(cl, &ct) || ct.n == 0 || ct.key[0];
        const char *d = bad ? NULL : tk_get(&ct, "data");
        tmp.len = 0;
        if (!bad && (!d || parse_hex(d, &tmp))) bad = 1;
        if (!bad && !strcmp(ct.val[0], "msg")) {
          const char *f = tk_get(&ct, "flag"), *l = tk_get(&ct, "len");
          int64_t fv = 0, lv = (int64_t)tmp.len;
          if ((f && (parse_int(f, &fv) || fv < 0 || fv > 255)) ||
              (l && (parse_int(l, &lv) || lv < 0 || lv > UINT32_MAX)))
            bad = 1;
          else {
            vb_byte(&payload, (uint8_t)fv);
            put32(&payload, (uint32_t)lv);
            vb_add(&payload, tmp.p, tmp.len);
          }
        } else if (!bad && !strcmp(ct.val[0], "raw")) {
          vb_add(&payload, tmp.p, tmp.len);
        } else {
          bad = 1;
        }
        free(cl);
        if (bad) {
          fail_syntax(c->lines[k].lineno, "bad DATA piece");
          goto done;
        }
      }
      break;
    case 1: /* HEADERS */
    case 9: /* CONTINUATION */
    case 5: /* PUSH_PROMISE */
      if (type == 5) {
        const char *pr = tk_get(&t, "promised");
        if (!pr || parse_int(pr, &v) || v < 0 || v > 0x7fffffff) {
          fail_syntax(ln, "PUSH_PROMISE needs promised=N");
          goto done;
        }
        put32(&payload, (uint32_t)v);
      }
      if ((s = tk_get(&t, "hpack"))) {
        if (parse_hex(s, &payload)) {
          fail_syntax(ln, "bad hpack hex");
          goto done;
        }
      } else {
        for (size_t k = i + 1; k < j; k++)
          if (hpack_line(c->lines[k].text, &payload)) {
            fail_syntax(c->lines[k].lineno, "bad header line");
            goto done;
          }
      }
      break;
    case 2: { /* PRIORITY */
      int64_t dep = 0, w = 15, ex = 0;
      const char *a = tk_get(&t, "dep"), *b = tk_get(&t, "weight"), *e = tk_get(&t, "exclusive");
      if ((a && parse_int(a, &dep)) || (b && parse_int(b, &w)) || (e && parse_int(e, &ex))) {
        fail_syntax(ln, "bad PRIORITY fields");
        goto done;
      }
      put32(&payload, (uint32_t)dep | (ex ? 0x80000000u : 0));
      vb_byte(&payload, (uint8_t)w);
      break;
    }
    case 3: { /* RST_STREAM */
      uint32_t e;
      const char *a = tk_get(&t, "error");
      if (!a || parse_h2err(a, &e)) {
        fail_syntax(ln, "RST_STREAM needs error=");
        goto done;
      }
      put32(&payload, e);
      break;
    }
    case 4: /* SETTINGS */
      for (int k = 1; k < t.n; k++) {
        if (!t.key[k] || !strcmp(t.key[k], "stream") || !strcmp(t.key[k], "flags") ||
            !strcmp(t.key[k], "length"))
          continue;
        int id = -1;
        for (int m = 1; m <= 6; m++)
          if (!strcmp(t.key[k], setting_names[m])) id = m;
        if (id < 0 && (parse_int(t.key[k], &v) || v < 0 || v > 0xffff)) {
          fail_syntax(ln, "unknown setting %s", t.key[k]);
          goto done;
        }
        if (id < 0) id = (int)v;
        if (parse_int(t.val[k], &v) || v < 0 || v > UINT32_MAX) {
          fail_syntax(ln, "bad setting value");
          goto done;
        }
        vb_byte(&payload, (uint8_t)(id >> 8));
        vb_byte(&payload, (uint8_t)id);
        put32(&payload, (uint32_t)v);
      }
      break;
    case 6: { /* PING */
      const char *a = tk_get(&t, "opaque");
      if (a) {
        if (parse_hex(a, &payload)) {
          fail_syntax(ln, "bad opaque");
          goto done;
        }
      } else {
        for (int k = 0; k < 8; k++) vb_byte(&payload, 0);
      }
      break;
    }
    case 7: { /* GOAWAY */
      uint32_t e = 0;
      const char *a = tk_get(&t, "last_stream"), *b = tk_get(&t, "error");
      if (!a || parse_int(a, &v) || v < 0 || v > 0x7fffffff || (b && parse_h2err(b, &e))) {
        fail_syntax(ln, "GOAWAY needs last_stream= [error=]");
        goto done;
      }
      put32(&payload, (uint32_t)v);
      put32(&payload, e);
      int present;
      if (tk_string(&t, "debug", &payload, &present)) {
        fail_syntax(ln, "bad debug string");
        goto done;
      }
      break;
    }
    case 8: { /* WINDOW_UPDATE */
      const char *a = tk_get(&t, "increment");
      if (!a || parse_int(a, &v) || v < 0 || v > UINT32_MAX) {
        fail_syntax(ln, "WINDOW_UPDATE needs increment=");
        goto done;
      }
      put32(&payload, (uint32_t)v);
      break;
    }
    default:
      fail_syntax(ln, "UNKNOWN needs payload=");
      goto done;
    }
  }
  uint32_t len = (uint32_t)payload.len;
  if ((s = tk_get(&t, "length"))) {
    if (parse_int(s, &v) || v < 0 || v > 0xffffff) {
      fail_syntax(ln, "bad length");
      goto done;
    }
    len = (uint32_t)v;
  }
  uint8_t hdr[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, (uint8_t)type, flags,
                    (uint8_t)(stream >> 24), (uint8_t)(stream >> 16), (uint8_t)(stream >> 8),
                    (uint8_t)stream};
  vb_add(out, hdr, 9);
  vb_add(out, payload.p, payload.len);
  rv = (long)j;
done:
  vb_free(&payload);
  vb_free(&tmp);
  free(copy);
  return rv;
}

/* ------------------------------------------------------------------ */
/* Printing the engine's output                                        */
/* ------------------------------------------------------------------ */

typedef struct {
  vbuf pending; /* bytes not yet printed (an incomplete frame) */
  int preface_left; /* client: the preface comes first */
  nghttp2_hd_inflater *inf;
  vbuf block; /* header block being collected across CONTINUATION */
} outparse;

static int inflate_block(outparse *op, const uint8_t *in, size_t len, strlist *lines) {
  vbuf line = {0};
  int rc = 0;
  for (;;) {
    nghttp2_nv nv;
    int iflags = 0;
#if NGHTTP2_VERSION_NUM >= 0x013c00
    nghttp2_ssize r = nghttp2_hd_inflate_hd3(op->inf, &nv, &iflags, in, len, 1);
#else
    ssize_t r = nghttp2_hd_inflate_hd2(op->inf, &nv, &iflags, in, len, 1);
#endif
    if (r < 0) {
      sl_push(lines, "  (HPACK decoding failed)");
      rc = -1;
      break;
    }
    in += r;
    len -= (size_t)r;
    if (iflags & NGHTTP2_HD_INFLATE_EMIT) {
      line.len = 0;
      vb_add(&line, "  ", 2);
      vb_add(&line, nv.name, nv.namelen);
      vb_add(&line, ": ", 2);
      print_hvalue(&line, nv.value, nv.valuelen);
      if (nv.valuelen == 0) line.p[--line.len] = 0; /* "name:" */
      sl_push(lines, (char *)line.p);
    }
    if (iflags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(op->inf);
      break;
    }
    if (r == 0 && len == 0 && !(iflags & NGHTTP2_HD_INFLATE_EMIT)) break;
  }
  vb_free(&line);
  return rc;
}

static void print_data_payload(const uint8_t *p, size_t n, strlist *lines) {
  vbuf l = {0};
  size_t off = 0;
  while (off + 5 <= n) {
    uint32_t mlen = get32(p + off + 1);
    if ((size_t)mlen > n - off - 5) break;
    l.len = 0;
    vb_printf(&l, "  msg flag=%u len=%" PRIu32 " data=", p[off], mlen);
    print_hex(&l, p + off + 5, mlen);
    sl_push(lines, (char *)l.p);
    off += 5 + (size_t)mlen;
  }
  if (off < n) {
    l.len = 0;
    vb_printf(&l, "  raw data=");
    print_hex(&l, p + off, n - off);
    sl_push(lines, (char *)l.p);
  }
  vb_free(&l);
}

/* A header block fragment of HEADERS, PUSH_PROMISE (first: a new block)
 * or CONTINUATION: the frame line, then the decoded fields once the
 * block ends (END_HEADERS), or the fragment's size until then. */
static void print_block(outparse *op, vbuf *l, int first, uint8_t flags, const uint8_t *p,
                        size_t plen, strlist *lines) {
  if (first) op->block.len = 0;
  vb_add(&op->block, p, plen);
  if (flags & 0x4) {
    sl_push(lines, (char *)l->p);
    inflate_block(op, op->block.p, op->block.len, lines);
    op->block.len = 0;
  } else {
    vb_printf(l, " len=%zu", plen);
    sl_push(lines, (char *)l->p);
  }
}

/* Prints every complete frame in op->pending. */
static void print_output(outparse *op, strlist *lines) {
  vbuf l = {0};
  size_t off = 0;
  const uint8_t *b = op->pending.p;
  size_t n = op->pending.len;
  if (op->preface_left) {
    if (n < sizeof PREFACE - 1) goto keep;
    if (memcmp(b, PREFACE, sizeof PREFACE - 1) == 0) {
      sl_push(lines, "> PREFACE");
      off = sizeof PREFACE - 1;
    }
    op->preface_left = 0;
  }
  while (n - off >= 9) {
    const uint8_t *h = b + off;
    uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    if (n - off - 9 < len) break;
    int type = h[3];
    uint8_t flags = h[4];
    uint32_t stream = get32(h + 5) & 0x7fffffff;
    const uint8_t *p = h + 9;
    l.len = 0;
    vb_printf(&l, "> %s", type < 10 ? frame_names[type] : "UNKNOWN");
    if (type != 4 && type != 6 && type != 7) vb_printf(&l, " stream=%" PRIu32, stream);
    vb_printf(&l, " flags=");
    print_flags(&l, type, flags);
    size_t plen = len;
    /* strip padding and priority of DATA/HEADERS */
    if ((type == 0 || type == 1 || type == 5) && (flags & 0x8) && plen >= 1 && p[0] < plen) {
      plen -= 1u + p[0];
      p += 1;
    }
    if (type == 1 && (flags & 0x20) && plen >= 5) {
      p += 5;
      plen -= 5;
    }
    switch (type) {
    case 0:
      sl_push(lines, (char *)l.p);
      print_data_payload(p, plen, lines);
      break;
    case 5:
      if (plen < 4) {
        vb_printf(&l, " payload=");
        print_hex(&l, p, len);
        sl_push(lines, (char *)l.p);
        break;
      }
      vb_printf(&l, " promised=%" PRIu32, get32(p) & 0x7fffffff);
      print_block(op, &l, 1, flags, p + 4, plen - 4, lines);
      break;
    case 1:
    case 9:
      print_block(op, &l, type == 9 ? 0 : 1, flags, p, plen, lines);
      break;
    case 2:
      if (len == 5) {
        uint32_t d = get32(p);
        vb_printf(&l, " dep=%" PRIu32 " weight=%u exclusive=%u", d & 0x7fffffff, p[4], d >> 31);
      } else {
        vb_printf(&l, " payload=");
        print_hex(&l, p, len);
      }
      sl_push(lines, (char *)l.p);
      break;
    case 3:
    case 8:
      if (len == 4) {
        vb_printf(&l, type == 3 ? " error=" : " increment=");
        if (type == 3) print_h2err(&l, get32(p));
        else vb_printf(&l, "%" PRIu32, get32(p));
      } else {
        vb_printf(&l, " payload=");
        print_hex(&l, p, len);
      }
      sl_push(lines, (char *)l.p);
      break;
    case 4:
      if (len % 6 == 0) {
        for (size_t k = 0; k < len; k += 6) {
          unsigned id = (unsigned)p[k] << 8 | p[k + 1];
          if (id >= 1 && id <= 6) vb_printf(&l, " %s=", setting_names[id]);
          else vb_printf(&l, " 0x%02x=", id);
          vb_printf(&l, "%" PRIu32, get32(p + k + 2));
        }
      } else {
        vb_printf(&l, " payload=");
        print_hex(&l, p, len);
      }
      sl_push(lines, (char *)l.p);
      break;
    case 6:
      vb_printf(&l, " opaque=");
      print_hex(&l, p, len);
      sl_push(lines, (char *)l.p);
      break;
    case 7:
      if (len >= 8) {
        vb_printf(&l, " last_stream=%" PRIu32 " error=", get32(p) & 0x7fffffff);
        print_h2err(&l, get32(p + 4));
        vb_printf(&l, " debug=");
        print_quoted(&l, p + 8, len - 8);
      } else {
        vb_printf(&l, " payload=");
        print_hex(&l, p, len);
      }
      sl_push(lines, (char *)l.p);
      break;
    default:
      vb_printf(&l, " type=%d payload=", type);
      print_hex(&l, p, len);
      sl_push(lines, (char *)l.p);
      break;
    }
    off += 9 + len;
  }
keep:
  if (off) {
    memmove(op->pending.p, op->pending.p + off, n - off);
    op->pending.len = n - off;
  }
  vb_free(&l);
}

/* ------------------------------------------------------------------ */
/* Running a case                                                      */
/* ------------------------------------------------------------------ */

#define MAX_CALLS 64

typedef struct {
  sgrpc_conn *conn;
  int64_t now;
  sgrpc_call *calls[MAX_CALLS];
  size_t ncalls;
  outparse op;
  strlist *actual;
  /* strings the settings point at, kept for the connection's life */
  vbuf sset[3];
} runner;

static void md_lines(const sgrpc_md *md, size_t n, strlist *lines) {
  vbuf l = {0};
  for (size_t i = 0; i < n; i++) {
    l.len = 0;
    vb_add(&l, "  ", 2);
    vb_add(&l, md[i].key, md[i].key_len);
    vb_add(&l, ": ", 2);
    print_hvalue(&l, md[i].value, md[i].value_len);
    if (md[i].value_len == 0) l.p[--l.len] = 0;
    sl_push(lines, (char *)l.p);
  }
  vb_free(&l);
}

static void add_call(runner *r, sgrpc_call *c) {
  if (r->ncalls < MAX_CALLS) r->calls[r->ncalls++] = c;
}
static void drop_call(runner *r, sgrpc_call *c) {
  for (size_t i = 0; i < r->ncalls; i++)
    if (r->calls[i] == c) {
      r->calls[i] = r->calls[--r->ncalls];
      return;
    }
}
static sgrpc_call *find_call(runner *r, int32_t stream) {
  for (size_t i = 0; i < r->ncalls; i++)
    if (sgrpc_call_stream_id(r->calls[i]) == stream) return r->calls[i];
  return NULL;
}

/* Pulls every queued event; returns how many lines it wrote. */
static size_t drain(runner *r) {
  size_t before = r->actual->n;
  sgrpc_event ev;
  vbuf l = {0};
  int rc;
  while ((rc = sgrpc_conn_next_event(r->conn, &ev)) == 1) {
    l.len = 0;
    int32_t sid = ev.call ? sgrpc_call_stream_id(ev.call) : 0;
    const sgrpc_md *md = NULL;
    size_t mdn = 0;
    switch (ev.type) {
    case SGRPC_EV_CALL_NEW:
      vb_printf(&l, "= CALL_NEW stream=%d path=", (int)sid);
      print_quoted(&l, (const uint8_t *)ev.u.call_new.path, ev.u.call_new.path_len);
      vb_printf(&l, " authority=");
      print_qstr(&l, ev.u.call_new.authority);
      vb_printf(&l, " user_agent=");
      print_qstr(&l, ev.u.call_new.user_agent);
      vb_printf(&l, " content_type=");
      print_qstr(&l, ev.u.call_new.content_type);
      vb_printf(&l, " encoding=");
      print_qstr(&l, ev.u.call_new.encoding);
      vb_printf(&l, " accept_encoding=");
      print_qstr(&l, ev.u.call_new.accept_encoding);
      vb_printf(&l, " deadline=");
      print_time(&l, ev.u.call_new.deadline);
      md = ev.u.call_new.md;
      mdn = ev.u.call_new.md_count;
      add_call(r, ev.call);
      break;
    case SGRPC_EV_HEADERS:
      vb_printf(&l, "= HEADERS stream=%d encoding=", (int)sid);
      print_qstr(&l, ev.u.headers.encoding);
      md = ev.u.headers.md;
      mdn = ev.u.headers.md_count;
      break;
    case SGRPC_EV_MESSAGE:
      vb_printf(&l, "= MESSAGE stream=%d compressed=%d len=%zu data=", (int)sid,
                ev.u.message.compressed, ev.u.message.len);
      print_hex(&l, ev.u.message.data, ev.u.message.len);
      break;
    case SGRPC_EV_HALF_CLOSE:
      vb_printf(&l, "= HALF_CLOSE stream=%d", (int)sid);
      break;
    case SGRPC_EV_CLOSE:
      vb_printf(&l, "= CLOSE stream=%d code=", (int)sid);
      print_status(&l, ev.u.close.status.code);
      vb_printf(&l, " message=");
      print_quoted(&l, (const uint8_t *)ev.u.close.status.message, ev.u.close.status.message_len);
      vb_printf(&l, " reset=%d http2_error=", ev.u.close.reset);
      print_h2err(&l, ev.u.close.http2_error);
      vb_printf(&l, " retry_safe=%d details=", ev.u.close.retry_safe);
      print_hex(&l, ev.u.close.status.details, ev.u.close.status.details_len);
      md = ev.u.close.status.md;
      mdn = ev.u.close.status.md_count;
      break;
    case SGRPC_EV_WRITABLE:
      vb_printf(&l, "= WRITABLE stream=%d", (int)sid);
      break;
    case SGRPC_EV_GOAWAY:
      vb_printf(&l, "= GOAWAY error=");
      print_h2err(&l, ev.u.goaway.error_code);
      vb_printf(&l, " last_stream=%d debug=", (int)ev.u.goaway.last_stream_id);
      print_quoted(&l, ev.u.goaway.debug, ev.u.goaway.debug_len);
      break;
    case SGRPC_EV_PING_ACK:
      vb_printf(&l, "= PING_ACK opaque=%" PRIu64, ev.u.ping_ack.opaque);
      break;
    case SGRPC_EV_READY:
      vb_printf(&l, "= READY");
      break;
    case SGRPC_EV_CONN_CLOSED:
      vb_printf(&l, "= CONN_CLOSED reason=");
      if (ev.u.conn_closed.reason) print_err(&l, ev.u.conn_closed.reason);
      else vb_printf(&l, "0");
      break;
    default:
      vb_printf(&l, "= EVENT%d", (int)ev.type);
      break;
    }
    sl_push(r->actual, (char *)l.p);
    if (md) md_lines(md, mdn, r->actual);
    if (ev.type == SGRPC_EV_CLOSE) {
      drop_call(r, ev.call);
      sgrpc_call_release(ev.call);
    }
  }
  if (rc < 0) {
    l.len = 0;
    vb_printf(&l, "= ERROR ");
    print_err(&l, rc);
    sl_push(r->actual, (char *)l.p);
  }
  vb_free(&l);
  return r->actual->n - before;
}

/* Takes all output and prints its complete frames; returns how many
 * bytes were taken. */
static size_t take_output(runner *r) {
  size_t taken = 0;
  const uint8_t *d;
  sgrpc_ssize n;
  int guard = 0;
  while ((n = sgrpc_conn_out_peek(r->conn, &d)) > 0 && guard++ < 100000) {
    vb_add(&r->op.pending, d, (size_t)n);
    sgrpc_conn_out_consume(r->conn, (size_t)n);
    taken += (size_t)n;
  }
  print_output(&r->op, r->actual);
  return taken;
}

static void after_step(runner *r, int rc) {
  if (rc < 0) {
    vbuf l = {0};
    vb_printf(&l, "= ERROR ");
    print_err(&l, rc);
    sl_push(r->actual, (char *)l.p);
    vb_free(&l);
  }
  /* as an adapter's loop does: until neither produces anything (taking
   * output can end a stream, which queues its CLOSE) */
  for (int round = 0; round < 1000; round++) {
    size_t ev = drain(r);
    size_t out = take_output(r);
    if (!ev && !out) break;
  }
}

/* Collects metadata continuation lines i+1.. into an array (values are
 * owned by store). Returns the index after them. */
static size_t collect_md(vcase *c, size_t i, sgrpc_md *md, size_t *count, vbuf *store,
                         size_t cap) {
  size_t j = i + 1;
  size_t n = 0;
  /* first pass: copy names and values into store as NUL-separated
   * strings; offsets fixed up afterwards (store may move) */
  size_t offs[32][3];
  for (; j < c->n && is_cont(c->lines[j].text); j++) {
    const char *s = c->lines[j].text;
    while (*s == ' ' || *s == '\t') s++;
    const char *sep = strstr(s + 1, ": ");
    const char *val = sep ? sep + 2 : "";
    size_t klen = sep ? (size_t)(sep - s) : strlen(s) - 1;
    if (n >= cap || n >= 32) {
      fail_syntax(c->lines[j].lineno, "too many metadata lines");
      break;
    }
    offs[n][0] = store->len;
    vb_add(store, s, klen);
    vb_byte(store, 0);
    offs[n][1] = store->len;
    vbuf v = {0};
    if (parse_hvalue(val, &v)) fail_syntax(c->lines[j].lineno, "bad metadata value");
    vb_add(store, v.p, v.len);
    offs[n][2] = v.len;
    vb_byte(store, 0);
    vb_free(&v);
    n++;
  }
  for (size_t k = 0; k < n; k++) {
    md[k].key = (const char *)store->p + offs[k][0];
    md[k].key_len = strlen(md[k].key);
    md[k].value = store->p + offs[k][1];
    md[k].value_len = offs[k][2];
  }
  *count = n;
  return j;
}

static int settings_from(runner *r, const toks *t, sgrpc_settings *st, int ln) {
  sgrpc_settings_default(st);
  st->user_agent = "sgrpc-vector";
  for (int k = 1; k < t->n; k++) {
    const char *key = t->key[k], *val = t->val[k];
    int64_t v;
    if (!key) return fail_syntax(ln, "bad setting %s", val);
#define U32(name)                                                              \
  if (!strcmp(key, #name)) {                                                   \
    if (parse_int(val, &v) || v < 0 || v > UINT32_MAX)                         \
      return fail_syntax(ln, "bad value for " #name);                          \
    st->name = (uint32_t)v;                                                    \
    continue;                                                                  \
  }
#define SZ(name)                                                               \
  if (!strcmp(key, #name)) {                                                   \
    if (parse_int(val, &v) || v < 0) return fail_syntax(ln, "bad value for " #name); \
    st->name = (size_t)v;                                                      \
    continue;                                                                  \
  }
#define TIME(name)                                                             \
  if (!strcmp(key, #name)) {                                                   \
    if (parse_time(val, &v)) return fail_syntax(ln, "bad value for " #name);   \
    st->name = v;                                                              \
    continue;                                                                  \
  }
#define STR(name, slot)                                                        \
  if (!strcmp(key, #name)) {                                                   \
    r->sset[slot].len = 0;                                                     \
    int q = parse_quoted(val, &r->sset[slot]);                                 \
    if (q < 0 || val[q]) return fail_syntax(ln, "bad string for " #name);      \
    vb_need(&r->sset[slot], 0);                                                \
    st->name = (const char *)r->sset[slot].p;                                  \
    continue;                                                                  \
  }
    U32(max_recv_message_size)
    U32(max_send_message_size)
    U32(max_send_buffer)
    U32(max_header_list_size)
    U32(stream_window)
    U32(connection_window)
    U32(max_concurrent_streams)
    U32(max_queued_events)
    U32(out_chunk)
    U32(compress_min_size)
    U32(max_ping_strikes)
    U32(max_send_header_list_size)
    SZ(max_outbound_queue)
    SZ(conn_memory_budget)
    TIME(keepalive_time)
    TIME(keepalive_timeout)
    TIME(min_recv_ping_interval)
    TIME(settings_timeout)
    STR(scheme, 0)
    STR(user_agent, 1)
    STR(encoding, 2)
    if (!strcmp(key, "keepalive_permit_without_calls")) {
      if (parse_int(val, &v)) return fail_syntax(ln, "bad value");
      st->keepalive_permit_without_calls = (int)v;
      continue;
    }
#undef U32
#undef SZ
#undef TIME
#undef STR
    return fail_syntax(ln, "unknown setting %s", key);
  }
  return 0;
}

static sgrpc_call *need_call(runner *r, const toks *t, int ln) {
  const char *s = tk_get(t, "stream");
  int64_t v;
  if (!s || parse_int(s, &v)) {
    fail_syntax(ln, "stream=N required");
    return NULL;
  }
  sgrpc_call *c = find_call(r, (int32_t)v);
  if (!c) fail_syntax(ln, "no open call on stream %s", s);
  return c;
}

/* Executes the `!` line at i; returns the next line index or -1. */
static long do_action(runner *r, vcase *c, size_t i) {
  char *copy = strdup(c->lines[i].text + 1);
  int ln = c->lines[i].lineno;
  toks t;
  long next = -1;
  vbuf store = {0}, a = {0}, b = {0};
  sgrpc_md md[32];
  size_t mdn = 0;
  if (!copy) exit(2);
  if (tokenize(copy, &t) || t.n == 0 || t.key[0]) {
    fail_syntax(ln, "bad call line");
    goto done;
  }
  const char *kw = t.val[0];
  size_t j = collect_md(c, i, md, &mdn, &store, 32);
  if (g_err[0]) goto done;
  int rc = 0;
  int present;
  const char *s;
  int64_t v;
  if (!strcmp(kw, "client") || !strcmp(kw, "server")) {
    sgrpc_settings st;
    if (r->conn) {
      fail_syntax(ln, "connection made twice");
      goto done;
    }
    if (settings_from(r, &t, &st, ln)) goto done;
    rc = kw[0] == 'c' ? sgrpc_conn_client_new(&r->conn, &st, NULL, r->now)
                      : sgrpc_conn_server_new(&r->conn, &st, NULL, r->now);
    r->op.preface_left = kw[0] == 'c';
    if (rc < 0) {
      fail_syntax(ln, "connection refused its settings (%d)", rc);
      goto done;
    }
    next = (long)j;
    after_step(r, 0);
    goto done;
  }
  if (!r->conn) {
    fail_syntax(ln, "the case must start with ! client or ! server");
    goto done;
  }
  if (!strcmp(kw, "start")) {
    sgrpc_call_opts o;
    memset(&o, 0, sizeof o);
    vbuf path = {0}, auth = {0}, sub = {0}, enc = {0};
    int pp, pa, ps, pe;
    if (tk_string(&t, "path", &path, &pp) || !pp || tk_string(&t, "authority", &auth, &pa) ||
        tk_string(&t, "subtype", &sub, &ps) || tk_string(&t, "encoding", &enc, &pe)) {
      fail_syntax(ln, "start needs path=\"...\"");
    } else if ((s = tk_get(&t, "deadline")) && parse_time(s, &o.deadline)) {
      fail_syntax(ln, "bad deadline");
    } else {
      o.path = (const char *)path.p;
      o.authority = pa ? (const char *)auth.p : NULL;
      o.content_subtype = ps ? (const char *)sub.p : NULL;
      o.encoding = pe ? (const char *)enc.p : NULL;
      o.md = mdn ? md : NULL;
      o.md_count = mdn;
      sgrpc_call *call = NULL;
      rc = sgrpc_call_start(r->conn, &o, r->now, &call);
      if (rc == 0) add_call(r, call);
    }
    vb_free(&path);
    vb_free(&auth);
    vb_free(&sub);
    vb_free(&enc);
    if (g_err[0]) goto done;
  } else if (!strcmp(kw, "send")) {
    sgrpc_call *call = need_call(r, &t, ln);
    unsigned fl = 0;
    if (!call) goto done;
    if ((s = tk_get(&t, "flags"))) {
      char fb[64];
      snprintf(fb, sizeof fb, "%s", s);
      for (char *f = strtok(fb, "|"); f; f = strtok(NULL, "|")) {
        if (!strcmp(f, "END")) fl |= SGRPC_SEND_END;
        else if (!strcmp(f, "COMPRESSED")) fl |= SGRPC_SEND_COMPRESSED;
        else if (!strcmp(f, "NO_COMPRESS")) fl |= SGRPC_SEND_NO_COMPRESS;
        else if (strcmp(f, "0")) {
          fail_syntax(ln, "bad send flag %s", f);
          goto done;
        }
      }
    }
    if (!(s = tk_get(&t, "data")) || parse_hex(s, &a)) {
      fail_syntax(ln, "send needs data=<hex>");
      goto done;
    }
    rc = sgrpc_call_send(call, a.p ? a.p : (const uint8_t *)"", a.len, fl);
  } else if (!strcmp(kw, "close_send")) {
    sgrpc_call *call = need_call(r, &t, ln);
    if (!call) goto done;
    rc = sgrpc_call_close_send(call);
  } else if (!strcmp(kw, "headers")) {
    sgrpc_call *call = need_call(r, &t, ln);
    if (!call) goto done;
    rc = sgrpc_call_send_headers(call, mdn ? md : NULL, mdn);
  } else if (!strcmp(kw, "set_encoding")) {
    sgrpc_call *call = need_call(r, &t, ln);
    if (!call) goto done;
    if (tk_string(&t, "encoding", &a, &present) || !present) {
      fail_syntax(ln, "set_encoding needs encoding=");
      goto done;
    }
    rc = sgrpc_call_set_encoding(call, (const char *)a.p);
  } else if (!strcmp(kw, "status")) {
    sgrpc_call *call = need_call(r, &t, ln);
    sgrpc_status st;
    memset(&st, 0, sizeof st);
    if (!call) goto done;
    if (!(s = tk_get(&t, "code")) || parse_status(s, &st.code)) {
      fail_syntax(ln, "status needs code=");
      goto done;
    }
    if (tk_string(&t, "message", &a, &present)) {
      fail_syntax(ln, "bad message");
      goto done;
    }
    st.message = present ? (const char *)a.p : NULL;
    if ((s = tk_get(&t, "details"))) {
      if (parse_hex(s, &b)) {
        fail_syntax(ln, "bad details");
        goto done;
      }
      st.details = b.p ? b.p : (const uint8_t *)"";
      st.details_len = b.len;
    }
    st.md = mdn ? md : NULL;
    st.md_count = mdn;
    rc = sgrpc_call_send_status(call, &st);
  } else if (!strcmp(kw, "cancel")) {
    sgrpc_call *call = need_call(r, &t, ln);
    if (!call) goto done;
    rc = sgrpc_call_cancel(call);
  } else if (!strcmp(kw, "release")) {
    sgrpc_call *call = need_call(r, &t, ln);
    if (!call) goto done;
    drop_call(r, call);
    sgrpc_call_release(call);
  } else if (!strcmp(kw, "ping")) {
    if (!(s = tk_get(&t, "opaque")) || parse_int(s, &v)) {
      fail_syntax(ln, "ping needs opaque=");
      goto done;
    }
    rc = sgrpc_conn_ping(r->conn, (uint64_t)v);
  } else if (!strcmp(kw, "goaway")) {
    uint32_t e = 0;
    if ((s = tk_get(&t, "error")) && parse_h2err(s, &e)) {
      fail_syntax(ln, "bad error");
      goto done;
    }
    if (tk_string(&t, "debug", &a, &present)) {
      fail_syntax(ln, "bad debug");
      goto done;
    }
    rc = sgrpc_conn_goaway(r->conn, e, present ? (const char *)a.p : NULL, present ? a.len : 0);
  } else if (!strcmp(kw, "shutdown")) {
    int64_t dl = SGRPC_NEVER;
    if ((s = tk_get(&t, "deadline")) && parse_time(s, &dl)) {
      fail_syntax(ln, "bad deadline");
      goto done;
    }
    rc = sgrpc_conn_shutdown(r->conn, dl, r->now);
  } else if (!strcmp(kw, "expiry")) {
    rc = sgrpc_conn_handle_expiry(r->conn, r->now);
  } else if (!strcmp(kw, "transport_closed")) {
    rc = sgrpc_conn_transport_closed(r->conn);
  } else {
    fail_syntax(ln, "unknown call %s", kw);
    goto done;
  }
  after_step(r, rc);
  next = (long)j;
done:
  vb_free(&store);
  vb_free(&a);
  vb_free(&b);
  free(copy);
  return next;
}

/* Feeds one read group; returns the index after it or -1. */
static long do_read(runner *r, vcase *c, size_t i) {
  vbuf bytes = {0};
  size_t j = i;
  while (j < c->n && c->lines[j].text[0] == '<') {
    long nx = build_frame(c, j, &bytes);
    if (nx < 0) {
      vb_free(&bytes);
      return -1;
    }
    j = (size_t)nx;
  }
  if (!r->conn) {
    vb_free(&bytes);
    fail_syntax(c->lines[i].lineno, "the case must start with ! client or ! server");
    return -1;
  }
  size_t off = 0;
  for (int rounds = 0;; rounds++) {
    sgrpc_ssize n = sgrpc_conn_recv(r->conn, bytes.p ? bytes.p + off : (const uint8_t *)"",
                                    bytes.len - off, r->now);
    if (n < 0) {
      after_step(r, (int)n);
      break;
    }
    off += (size_t)n;
    if (off >= bytes.len || rounds > 100000) {
      after_step(r, 0);
      break;
    }
    /* the event queue filled up: pull the events, then feed the rest */
    drain(r);
  }
  vb_free(&bytes);
  return (long)j;
}

/* ------------------------------------------------------------------ */
/* Diff                                                                */
/* ------------------------------------------------------------------ */

static void print_diff(const strlist *exp, const strlist *act) {
  size_t n = exp->n, m = act->n;
  /* LCS table (cases are small) */
  unsigned *t = calloc((n + 1) * (m + 1), sizeof *t);
  if (!t) exit(2);
#define T(a, b) t[(a) * (m + 1) + (b)]
  for (size_t a = n; a-- > 0;)
    for (size_t b = m; b-- > 0;)
      T(a, b) = !strcmp(exp->v[a], act->v[b]) ? T(a + 1, b + 1) + 1
                : T(a + 1, b) > T(a, b + 1)  ? T(a + 1, b)
                                             : T(a, b + 1);
  size_t a = 0, b = 0;
  printf("    --- expected (the vector)\n    +++ actual (the engine)\n");
  while (a < n || b < m) {
    if (a < n && b < m && !strcmp(exp->v[a], act->v[b])) {
      printf("      %s\n", exp->v[a]);
      a++;
      b++;
    } else if (b < m && (a == n || T(a, b + 1) >= T(a + 1, b))) {
      printf("    + %s\n", act->v[b++]);
    } else {
      printf("    - %s\n", exp->v[a++]);
    }
  }
#undef T
  free(t);
}

/* --print: write the actual transcript instead of comparing (for writing
 * a new case: run it with only the input lines, check, paste) */
static int g_print;

static int run_case(vcase *c) {
  runner r;
  memset(&r, 0, sizeof r);
  strlist exp = {0}, act = {0};
  vbuf norm = {0};
  r.actual = &act;
  g_err[0] = 0;
  r.op.inf = NULL;
  if (nghttp2_hd_inflate_new(&r.op.inf) != 0) exit(2);

  /* expected transcript: every line except comments and blanks */
  for (size_t i = 0; i < c->n; i++) {
    const char *s = c->lines[i].text;
    if (is_blank(s) || s[0] == '#') continue;
    normalize(s, &norm);
    sl_push(&exp, (char *)norm.p);
  }

  size_t i = 0;
  while (i < c->n && !g_err[0]) {
    const char *s = c->lines[i].text;
    if (is_blank(s) || s[0] == '#') {
      i++;
      continue;
    }
    if (s[0] == '=' || s[0] == '>') {
      /* expectations: skip with their continuation lines */
      i++;
      while (i < c->n && is_cont(c->lines[i].text)) i++;
      continue;
    }
    if (is_cont(s)) {
      fail_syntax(c->lines[i].lineno, "continuation line without a line to continue");
      break;
    }
    /* echo the input line(s) into the actual transcript */
    size_t j = i + 1;
    if (s[0] == '<')
      while (j < c->n && (c->lines[j].text[0] == '<' || is_cont(c->lines[j].text))) j++;
    else
      while (j < c->n && is_cont(c->lines[j].text)) j++;
    for (size_t k = i; k < j; k++) {
      normalize(c->lines[k].text, &norm);
      sl_push(&act, (char *)norm.p);
    }
    long nx;
    if (s[0] == '@') {
      char *copy = strdup(s + 1);
      toks t;
      if (!copy) exit(2);
      if (tokenize(copy, &t) || t.n != 1 || t.key[0] || parse_time(t.val[0], &r.now))
        fail_syntax(c->lines[i].lineno, "bad time step");
      free(copy);
      nx = (long)j;
      if (r.conn && !g_err[0]) after_step(&r, 0);
    } else if (s[0] == '!') {
      nx = do_action(&r, c, i);
    } else if (s[0] == '<') {
      nx = do_read(&r, c, i);
    } else {
      fail_syntax(c->lines[i].lineno, "unknown line");
      nx = -1;
    }
    if (nx < 0) break;
    i = (size_t)nx;
  }
  /* anything left over in the output buffer is shown raw */
  if (r.op.pending.len && !g_err[0]) {
    vbuf l = {0};
    vb_printf(&l, "> RAW data=");
    print_hex(&l, r.op.pending.p, r.op.pending.len);
    sl_push(&act, (char *)l.p);
    vb_free(&l);
  }

  int ok;
  if (g_print && !g_err[0]) {
    printf("## %s\n\n```trace\n", c->name);
    for (size_t k = 0; k < act.n; k++) printf("%s\n", act.v[k]);
    printf("```\n\n");
    ok = 1;
  } else if (g_err[0]) {
    printf("not ok - %s\n    line %d: %s\n", c->name, g_errline, g_err);
    ok = 0;
  } else {
    ok = exp.n == act.n;
    for (size_t k = 0; ok && k < exp.n; k++) ok = !strcmp(exp.v[k], act.v[k]);
    if (ok) {
      printf("ok - %s\n", c->name);
    } else {
      printf("not ok - %s (line %d)\n", c->name, c->lineno);
      print_diff(&exp, &act);
    }
  }
  sgrpc_conn_del(r.conn);
  nghttp2_hd_inflate_del(r.op.inf);
  vb_free(&r.op.pending);
  vb_free(&r.op.block);
  for (int k = 0; k < 3; k++) vb_free(&r.sset[k]);
  vb_free(&norm);
  sl_free(&exp);
  sl_free(&act);
  return ok;
}

/* ------------------------------------------------------------------ */
/* Reading the Markdown file                                           */
/* ------------------------------------------------------------------ */

static void case_add(vcase *c, const char *text, int lineno) {
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 32;
    c->lines = realloc(c->lines, c->cap * sizeof *c->lines);
    if (!c->lines) exit(2);
  }
  c->lines[c->n].text = strdup(text);
  if (!c->lines[c->n].text) exit(2);
  c->lines[c->n].lineno = lineno;
  c->n++;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--print")) {
    g_print = 1;
    argv++;
    argc--;
  }
  if (argc < 2) {
    fprintf(stderr, "usage: %s [--print] FILE.md [CASE-SUBSTRING]\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  vcase *cases = NULL;
  size_t ncases = 0, capcases = 0;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  int lineno = 0, in_trace = 0, in_fence = 0;
  vcase *cur = NULL;
  while ((len = getline(&line, &lcap, f)) >= 0) {
    lineno++;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (!strncmp(line, "```", 3)) {
      if (in_fence) {
        in_fence = in_trace = 0;
      } else {
        in_fence = 1;
        const char *info = line + 3;
        while (*info == ' ') info++;
        in_trace = !strcmp(info, "trace");
        if (in_trace && !cur) {
          fprintf(stderr, "%s:%d: trace block before any heading\n", argv[1], lineno);
          return 2;
        }
      }
      continue;
    }
    if (in_fence) {
      if (in_trace) case_add(cur, line, lineno);
      continue;
    }
    if (line[0] == '#') {
      const char *h = line;
      while (*h == '#') h++;
      while (*h == ' ') h++;
      if (!*h) continue;
      if (ncases == capcases) {
        capcases = capcases ? capcases * 2 : 16;
        cases = realloc(cases, capcases * sizeof *cases);
        if (!cases) exit(2);
      }
      cur = &cases[ncases++];
      memset(cur, 0, sizeof *cur);
      cur->name = strdup(h);
      cur->lineno = lineno;
    }
  }
  free(line);
  fclose(f);

  int failed = 0, ran = 0;
  for (size_t k = 0; k < ncases; k++) {
    if (cases[k].n == 0) continue;
    if (argc > 2 && !strstr(cases[k].name, argv[2])) continue;
    ran++;
    if (!run_case(&cases[k])) failed++;
  }
  for (size_t k = 0; k < ncases; k++) {
    for (size_t l = 0; l < cases[k].n; l++) free(cases[k].lines[l].text);
    free(cases[k].lines);
    free(cases[k].name);
  }
  free(cases);
  if (!g_print) printf("%d cases, %d failed\n", ran, failed);
  if (ran == 0) {
    printf("no case found\n");
    return 1;
  }
  return failed ? 1 : 0;
}
