/*
 * protoc-gen-sgrpc: a protoc plugin emitting typed sgrpc stubs on top of
 * protoc-c's output. For every .proto file with services it writes
 * <file>.sgrpc.h and <file>.sgrpc.c (see docs/codegen.md).
 *
 * Usage: protoc --c_out=OUT --sgrpc_out=OUT [--plugin=protoc-gen-sgrpc=PATH] foo.proto
 *
 * Protocol (plugin.proto): a CodeGeneratorRequest on stdin, a
 * CodeGeneratorResponse on stdout. Problems in the .proto files are
 * reported in CodeGeneratorResponse.error with exit status 0; an input
 * that is not a CodeGeneratorRequest at all gets the same error response
 * plus a line on stderr and exit status 1, as protoc expects.
 *
 * C names follow protoc-c's conventions so that the generated code can
 * name its types: package foo.bar + message Baz -> Foo__Bar__Baz and
 * foo__bar__baz__descriptor. Every identifier this plugin introduces goes
 * through a uniquifier seeded with protoc-c's identifiers, so a clash
 * gets a numeric suffix instead of breaking the build.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/compiler/plugin.pb-c.h"

typedef Google__Protobuf__Compiler__CodeGeneratorRequest Request;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse Response;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse__File OutFile;
typedef Google__Protobuf__FileDescriptorProto FileProto;
typedef Google__Protobuf__DescriptorProto MsgProto;
typedef Google__Protobuf__EnumDescriptorProto EnumProto;
typedef Google__Protobuf__ServiceDescriptorProto SvcProto;
typedef Google__Protobuf__MethodDescriptorProto MethodProto;

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */
/* ------------------------------------------------------------------ */

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("protoc-gen-sgrpc: out of memory\n", stderr);
    exit(1);
  }
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fputs("protoc-gen-sgrpc: out of memory\n", stderr);
    exit(1);
  }
  return p;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = xmalloc(n);
  memcpy(d, s, n);
  return d;
}

/* A growable string. */
typedef struct sb {
  char *s;
  size_t len, cap;
} sb;

static void sb_putn(sb *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

static void sb_puts(sb *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(sb *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof(tmp)) {
    sb_putn(b, tmp, (size_t)n);
  } else {
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t)n);
    free(big);
  }
}

static char *sb_take(sb *b) {
  char *s = b->s ? b->s : xstrdup("");
  b->s = NULL;
  b->len = b->cap = 0;
  return s;
}

/* Set of strings (linear; generated files are small). */
typedef struct strset {
  char **v;
  size_t n, cap;
} strset;

static int set_has(const strset *s, const char *x) {
  size_t i;
  for (i = 0; i < s->n; i++)
    if (strcmp(s->v[i], x) == 0) return 1;
  return 0;
}

static void set_add(strset *s, const char *x) {
  if (set_has(s, x)) return;
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 64;
    s->v = xrealloc(s->v, s->cap * sizeof(char *));
  }
  s->v[s->n++] = xstrdup(x);
}

static void set_free(strset *s) {
  size_t i;
  for (i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  memset(s, 0, sizeof(*s));
}

/* Returns a new string: want, or want_2, want_3, ... whichever is free
 * in s; the result is added to s. */
static char *unique(strset *s, const char *want) {
  char *buf;
  size_t n = strlen(want) + 24;
  int i;
  if (!set_has(s, want)) {
    set_add(s, want);
    return xstrdup(want);
  }
  buf = xmalloc(n);
  for (i = 2;; i++) {
    snprintf(buf, n, "%s_%d", want, i);
    if (!set_has(s, buf)) break;
  }
  set_add(s, buf);
  return buf;
}

static const char *const c_keywords[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
    "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
    "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
    "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Alignas",
    "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn",
    "_Static_assert", "_Thread_local", "bool", "true", "false", "asm", NULL};

/* ------------------------------------------------------------------ */
/* protoc-c naming                                                     */
/* ------------------------------------------------------------------ */

/* protoc-c's ToCamel: drop underscores, capitalise the first letter and
 * every letter after an underscore. */
static void camel_piece(sb *b, const char *s, size_t n) {
  int up = 1;
  size_t i;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c == '_') {
      up = 1;
      continue;
    }
    if (up && islower((unsigned char)c)) c = (char)toupper((unsigned char)c);
    sb_putn(b, &c, 1);
    up = 0;
  }
}

/* protoc-c's CamelToLower: an underscore before an upper-case letter that
 * follows a non-upper-case character, then lower-case everything. */
static void lower_piece(sb *b, const char *s, size_t n) {
  int was_upper = 1;
  size_t i;
  for (i = 0; i < n; i++) {
    char c = s[i];
    int is_upper = isupper((unsigned char)c) != 0;
    if (is_upper) {
      if (!was_upper) sb_putn(b, "_", 1);
      c = (char)tolower((unsigned char)c);
    }
    sb_putn(b, &c, 1);
    was_upper = is_upper;
  }
}

/* Applies piece() to every dot-separated part of a full name, joined by
 * "__" (protoc-c's FullNameToC / FullNameToLower). */
static char *full_name_map(const char *full, void (*piece)(sb *, const char *, size_t)) {
  sb b = {0};
  const char *p = full;
  int first = 1;
  while (*p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n) {
      if (!first) sb_puts(&b, "__");
      piece(&b, p, n);
      first = 0;
    }
    p += n;
    if (*p == '.') p++;
  }
  return sb_take(&b);
}

static char *full_to_c(const char *full) { return full_name_map(full, camel_piece); }
static char *full_to_lower(const char *full) { return full_name_map(full, lower_piece); }

static char *to_upper_str(const char *s) {
  char *u = xstrdup(s);
  size_t i;
  for (i = 0; u[i]; i++) u[i] = (char)toupper((unsigned char)u[i]);
  return u;
}

static char *join_name(const char *pkg, const char *name) {
  sb b = {0};
  if (pkg && *pkg) {
    sb_puts(&b, pkg);
    sb_puts(&b, ".");
  }
  sb_puts(&b, name);
  return sb_take(&b);
}

/* protoc-c's FilenameIdentifier: alphanumerics kept, others as _xx hex. */
static char *file_ident(const char *name) {
  sb b = {0};
  size_t i;
  for (i = 0; name[i]; i++) {
    unsigned char c = (unsigned char)name[i];
    if (isalnum(c)) sb_putn(&b, (const char *)&c, 1);
    else sb_printf(&b, "_%x", c);
  }
  return sb_take(&b);
}

/* The file name without its .proto / .protodevel extension. */
static char *strip_proto(const char *name) {
  size_t n = strlen(name);
  char *s;
  if (n > 6 && strcmp(name + n - 6, ".proto") == 0) n -= 6;
  else if (n > 11 && strcmp(name + n - 11, ".protodevel") == 0) n -= 11;
  s = xmalloc(n + 1);
  memcpy(s, name, n);
  s[n] = 0;
  return s;
}

static int is_ident(const char *s) {
  size_t i;
  if (!s || !*s || isdigit((unsigned char)s[0])) return 0;
  for (i = 0; s[i]; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_') return 0;
  return 1;
}

/* Package names are dotted identifiers (or empty). */
static int is_dotted(const char *s) {
  sb b = {0};
  const char *p = s;
  int ok = 1;
  while (ok && *p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    b.len = 0;
    sb_putn(&b, p, n);
    ok = is_ident(b.s);
    p += n;
    if (*p == '.') {
      p++;
      if (!*p) ok = 0;
    }
  }
  free(b.s);
  return ok;
}

/* File names go into #include lines, string literals and comments. */
static int is_safe_file_name(const char *s) {
  size_t i;
  if (!s || !*s) return 0;
  for (i = 0; s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return 0;
    if (c == '*' && s[i + 1] == '/') return 0;
    if (c == '/' && s[i + 1] == '*') return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* Type map: ".pkg.Msg.Nested" -> C type and descriptor names          */
/* ------------------------------------------------------------------ */

typedef struct type_entry {
  char *full; /* with leading dot */
  char *c_name;
  char *lower;
} type_entry;

typedef struct gen {
  const Request *req;
  type_entry *types;
  size_t ntypes, types_cap;
  strset seeds; /* identifiers protoc-c emits for every file */
  char *error;
} gen;

static void set_error(gen *g, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  if (g->error) return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  g->error = xstrdup(buf);
}

static void add_type(gen *g, const char *full_no_dot) {
  type_entry *t;
  if (g->ntypes == g->types_cap) {
    g->types_cap = g->types_cap ? g->types_cap * 2 : 64;
    g->types = xrealloc(g->types, g->types_cap * sizeof(*g->types));
  }
  t = &g->types[g->ntypes++];
  {
    sb b = {0};
    sb_puts(&b, ".");
    sb_puts(&b, full_no_dot);
    t->full = sb_take(&b);
  }
  t->c_name = full_to_c(full_no_dot);
  t->lower = full_to_lower(full_no_dot);
}

static const type_entry *find_type(const gen *g, const char *full) {
  size_t i;
  for (i = 0; i < g->ntypes; i++)
    if (strcmp(g->types[i].full, full) == 0) return &g->types[i];
  return NULL;
}

/* Seeds the names protoc-c gives an enum: its type, descriptor and value
 * macros. */
static void seed_enum(gen *g, const char *full, const EnumProto *e) {
  char *c = full_to_c(full), *lower = full_to_lower(full), *upper = to_upper_str(lower);
  size_t i;
  sb b = {0};
  set_add(&g->seeds, c);
  b.len = 0;
  sb_printf(&b, "%s__descriptor", lower);
  set_add(&g->seeds, b.s);
  for (i = 0; i < e->n_value; i++) {
    if (!e->value[i]->name) continue;
    b.len = 0;
    sb_printf(&b, "%s__%s", upper, e->value[i]->name);
    set_add(&g->seeds, b.s);
  }
  free(b.s);
  free(c);
  free(lower);
  free(upper);
}

static int walk_messages(gen *g, const char *scope, MsgProto **msgs, size_t n, int depth) {
  size_t i, j;
  if (depth > 64) {
    set_error(g, "message nesting too deep in %s", scope);
    return -1;
  }
  for (i = 0; i < n; i++) {
    const MsgProto *m = msgs[i];
    char *full, *lower, *upper;
    sb b = {0};
    if (!is_ident(m->name)) {
      set_error(g, "invalid message name in scope '%s'", scope);
      return -1;
    }
    full = join_name(scope, m->name);
    add_type(g, full);
    lower = full_to_lower(full);
    upper = to_upper_str(lower);
    set_add(&g->seeds, g->types[g->ntypes - 1].c_name);
    {
      static const char *const fns[] = {"init", "get_packed_size", "pack", "pack_to_buffer",
                                        "unpack", "free_unpacked", "descriptor", NULL};
      for (j = 0; fns[j]; j++) {
        b.len = 0;
        sb_printf(&b, "%s__%s", lower, fns[j]);
        set_add(&g->seeds, b.s);
      }
      b.len = 0;
      sb_printf(&b, "%s__INIT", upper);
      set_add(&g->seeds, b.s);
    }
    for (j = 0; j < m->n_enum_type; j++) {
      char *ef;
      if (!is_ident(m->enum_type[j]->name)) {
        set_error(g, "invalid enum name in '%s'", full);
        free(b.s), free(full), free(lower), free(upper);
        return -1;
      }
      ef = join_name(full, m->enum_type[j]->name);
      seed_enum(g, ef, m->enum_type[j]);
      free(ef);
    }
    free(b.s);
    free(lower);
    free(upper);
    if (walk_messages(g, full, m->nested_type, m->n_nested_type, depth + 1) < 0) {
      free(full);
      return -1;
    }
    free(full);
  }
  return 0;
}

static const FileProto *find_file(const gen *g, const char *name) {
  size_t i;
  for (i = 0; i < g->req->n_proto_file; i++)
    if (g->req->proto_file[i]->name && strcmp(g->req->proto_file[i]->name, name) == 0)
      return g->req->proto_file[i];
  return NULL;
}

/* Collects the types and protoc-c identifiers of every file. */
static int index_files(gen *g) {
  size_t i, j, k;
  for (i = 0; i < g->req->n_proto_file; i++) {
    const FileProto *f = g->req->proto_file[i];
    const char *pkg = f->package ? f->package : "";
    if (!is_safe_file_name(f->name)) {
      set_error(g, "a FileDescriptorProto has a missing or unusable name");
      return -1;
    }
    if (!is_dotted(pkg)) {
      set_error(g, "%s: invalid package name", f->name);
      return -1;
    }
    if (walk_messages(g, pkg, f->message_type, f->n_message_type, 0) < 0) return -1;
    for (j = 0; j < f->n_enum_type; j++) {
      char *ef;
      if (!is_ident(f->enum_type[j]->name)) {
        set_error(g, "%s: invalid enum name", f->name);
        return -1;
      }
      ef = join_name(pkg, f->enum_type[j]->name);
      seed_enum(g, ef, f->enum_type[j]);
      free(ef);
    }
    for (j = 0; j < f->n_service; j++) {
      const SvcProto *s = f->service[j];
      char *full, *c, *lower;
      sb b = {0};
      if (!is_ident(s->name)) {
        set_error(g, "%s: invalid service name", f->name);
        return -1;
      }
      full = join_name(pkg, s->name);
      c = full_to_c(full);
      lower = full_to_lower(full);
      sb_printf(&b, "%s_Service", c);
      set_add(&g->seeds, b.s);
      b.len = 0;
      sb_printf(&b, "%s_ServiceDestroy", c);
      set_add(&g->seeds, b.s);
      b.len = 0;
      sb_printf(&b, "%s__init", lower);
      set_add(&g->seeds, b.s);
      b.len = 0;
      sb_printf(&b, "%s__descriptor", lower);
      set_add(&g->seeds, b.s);
      for (k = 0; k < s->n_method; k++) {
        if (!s->method[k]->name) continue;
        b.len = 0;
        sb_printf(&b, "%s__", lower);
        lower_piece(&b, s->method[k]->name, strlen(s->method[k]->name));
        set_add(&g->seeds, b.s);
      }
      free(b.s);
      free(full);
      free(c);
      free(lower);
    }
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Emission                                                            */
/* ------------------------------------------------------------------ */

enum { K_UNARY, K_SERVER_STREAM, K_CLIENT_STREAM, K_BIDI };
static const char *const kind_names[] = {"unary", "server streaming", "client streaming",
                                         "bidirectional streaming"};

typedef struct mgen {
  const MethodProto *m;
  int kind;
  const type_entry *in, *out;
  char *enum_name;  /* PKG__SVC__SGRPC_METHOD */
  char *field;      /* member of the server struct */
  char *done_type;  /* typedef of the completion callback */
  char *reply_type; /* typedef of the per-message callback (streaming replies) */
  char *call_fn;    /* client function */
  char *serve_fn;   /* static trampolines */
  char *done_fn;
  char *reply_fn;
} mgen;

typedef struct sgen {
  const SvcProto *s;
  char *full;
  char *methods_var, *service_var, *server_type, *register_fn, *count_enum;
  char *on_close_field, *on_writable_field;
  mgen *methods;
  size_t n;
} sgen;

static char *fmt_name(strset *set, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return unique(set, buf);
}

static void free_sgen(sgen *sv) {
  size_t i;
  for (i = 0; i < sv->n; i++) {
    mgen *m = &sv->methods[i];
    free(m->enum_name), free(m->field), free(m->done_type), free(m->reply_type);
    free(m->call_fn), free(m->serve_fn), free(m->done_fn), free(m->reply_fn);
  }
  free(sv->methods);
  free(sv->full), free(sv->methods_var), free(sv->service_var), free(sv->server_type);
  free(sv->register_fn), free(sv->count_enum), free(sv->on_close_field);
  free(sv->on_writable_field);
}

/* Names every generated identifier of one service. */
static int plan_service(gen *g, strset *names, const char *pkg, const SvcProto *s, sgen *sv) {
  char *c, *lower, *upper;
  strset fields = {0};
  size_t i;
  const char *const *kw;
  memset(sv, 0, sizeof(*sv));
  sv->s = s;
  sv->full = join_name(pkg, s->name);
  c = full_to_c(sv->full);
  lower = full_to_lower(sv->full);
  upper = to_upper_str(lower);
  for (kw = c_keywords; *kw; kw++) set_add(&fields, *kw);
  sv->methods_var = fmt_name(names, "%s__sgrpc_methods", lower);
  sv->service_var = fmt_name(names, "%s__sgrpc_service", lower);
  sv->server_type = fmt_name(names, "%s_SgrpcServer", c);
  sv->register_fn = fmt_name(names, "%s__sgrpc_register", lower);
  sv->count_enum = fmt_name(names, "%s__SGRPC_N_METHODS", upper);
  sv->on_close_field = unique(&fields, "on_close");
  sv->n = s->n_method;
  sv->methods = calloc(sv->n ? sv->n : 1, sizeof(mgen));
  if (!sv->methods) exit(1);
  for (i = 0; i < s->n_method && !g->error; i++) {
    const MethodProto *m = s->method[i];
    mgen *mg = &sv->methods[i];
    sb ml = {0}, mc = {0};
    char *mu;
    mg->m = m;
    if (!is_ident(m->name)) {
      set_error(g, "service %s: invalid method name", sv->full);
      break;
    }
    if (!m->input_type || !(mg->in = find_type(g, m->input_type))) {
      set_error(g, "%s.%s: unknown input type '%s'", sv->full, m->name,
                m->input_type ? m->input_type : "");
      break;
    }
    if (!m->output_type || !(mg->out = find_type(g, m->output_type))) {
      set_error(g, "%s.%s: unknown output type '%s'", sv->full, m->name,
                m->output_type ? m->output_type : "");
      break;
    }
    mg->kind = (m->has_client_streaming && m->client_streaming ? 2 : 0) |
               (m->has_server_streaming && m->server_streaming ? 1 : 0);
    lower_piece(&ml, m->name, strlen(m->name));
    camel_piece(&mc, m->name, strlen(m->name));
    mu = to_upper_str(ml.s);
    mg->enum_name = fmt_name(names, "%s__SGRPC_%s", upper, mu);
    mg->field = unique(&fields, ml.s);
    mg->done_type = fmt_name(names, "%s__%s_Done", c, mc.s);
    if (mg->kind == K_SERVER_STREAM || mg->kind == K_BIDI)
      mg->reply_type = fmt_name(names, "%s__%s_Reply", c, mc.s);
    mg->call_fn = fmt_name(names, "%s__%s__call", lower, ml.s);
    mg->serve_fn = fmt_name(names, "%s__%s__sgrpc_serve", lower, ml.s);
    mg->done_fn = fmt_name(names, "%s__%s__sgrpc_done", lower, ml.s);
    if (mg->reply_type) mg->reply_fn = fmt_name(names, "%s__%s__sgrpc_reply", lower, ml.s);
    free(mu);
    free(ml.s);
    free(mc.s);
  }
  /* named after the methods: a method called OnWritable keeps its field */
  sv->on_writable_field = unique(&fields, "on_writable");
  set_free(&fields);
  free(c);
  free(lower);
  free(upper);
  return g->error ? -1 : 0;
}

static void emit_header_service(sb *h, const sgen *sv) {
  size_t i;
  sb_printf(h, "/* ---- service %s ---- */\n\n", sv->full);
  sb_puts(h, "/** Method indexes into the method table. */\nenum {\n");
  for (i = 0; i < sv->n; i++) sb_printf(h, "  %s = %zu,\n", sv->methods[i].enum_name, i);
  sb_printf(h, "  %s = %zu\n};\n\n", sv->count_enum, sv->n);
  if (sv->n)
    sb_printf(h, "/** Paths, message descriptors and streaming flags of %s. */\n"
                 "extern const sgrpc_method %s[%zu];\n",
              sv->full, sv->methods_var, sv->n);
  sb_printf(h, "/** %s with its methods and file descriptor (for reflection). */\n"
               "extern const sgrpc_service_desc %s;\n\n",
            sv->full, sv->service_var);

  sb_printf(h,
            "/**\n * Server side of %s. Set the methods you implement; a NULL one is\n"
            " * not routed (its calls end UNIMPLEMENTED). Unary and server-streaming\n"
            " * methods are called once with the request (valid until the call ends);\n"
            " * client-streaming and bidi methods with each request (valid during the\n"
            " * call) and then with NULL when the client half-closed. Answer with\n"
            " * sgrpc_server_call_reply/_send/_finish/_fail; a send that returns\n"
            " * SGRPC_ERR_WOULDBLOCK is retried from %s.\n */\n"
            "typedef struct %s {\n",
            sv->full, sv->on_writable_field, sv->server_type);
  for (i = 0; i < sv->n; i++) {
    const mgen *m = &sv->methods[i];
    sb_printf(h, "  /** %s: %s, %s -> %s. */\n", m->m->name, kind_names[m->kind],
              m->in->full + 1, m->out->full + 1);
    sb_printf(h, "  void (*%s)(sgrpc_server_call *call, const %s *request, void *user_data);\n",
              m->field, m->in->c_name);
  }
  sb_printf(h,
            "  /** Optional: called when any call of this service ends. */\n"
            "  void (*%s)(sgrpc_server_call *call, const sgrpc_status_info *status,\n"
            "      void *user_data);\n"
            "  /** Optional: a call of this service whose send returned\n"
            "   *  SGRPC_ERR_WOULDBLOCK can take messages again (sgrpc_handler). */\n"
            "  void (*%s)(sgrpc_server_call *call, void *user_data);\n} %s;\n\n",
            sv->on_close_field, sv->on_writable_field, sv->server_type);
  sb_printf(h,
            "/** Routes the implemented methods of impl on router; user_data goes to\n"
            " *  every handler. Returns 0 or an error of sgrpc_router_add. */\n"
            "int %s(sgrpc_router *router, const %s *impl, void *user_data);\n\n",
            sv->register_fn, sv->server_type);

  for (i = 0; i < sv->n; i++) {
    const mgen *m = &sv->methods[i];
    int single_req = m->kind == K_UNARY || m->kind == K_SERVER_STREAM;
    sb_printf(h,
              "/** %s completion: the status, and for single-response methods the\n"
              " *  reply (NULL unless status->code is SGRPC_STATUS_OK). */\n"
              "typedef void (*%s)(sgrpc_client_call *call, const sgrpc_status_info *status,\n"
              "    const %s *reply, void *user_data);\n",
              m->m->name, m->done_type, m->out->c_name);
    if (m->reply_type)
      sb_printf(h,
                "/** %s: one streamed reply (valid during the callback). */\n"
                "typedef void (*%s)(sgrpc_client_call *call, const %s *reply, void *user_data);\n",
                m->m->name, m->reply_type, m->out->c_name);
    sb_printf(h, "/** Starts %s (%s)%s. opts may be NULL. Returns 0 or a negative\n"
                 " *  SGRPC_ERR_* code (then no callback runs). */\n",
              m->m->name, kind_names[m->kind],
              single_req ? "" : "; send requests with sgrpc_client_call_send (after\n"
                                " *  SGRPC_ERR_WOULDBLOCK, again from the callback given to\n"
                                " *  sgrpc_client_call_set_on_writable) and end with\n"
                                " *  sgrpc_client_call_close_send");
    sb_printf(h, "int %s(sgrpc_rpc_client *client,", m->call_fn);
    if (single_req) sb_printf(h, " const %s *request,", m->in->c_name);
    sb_puts(h, "\n    const sgrpc_rpc_opts *opts, int64_t now,");
    if (m->reply_type) sb_printf(h, " %s on_reply,", m->reply_type);
    sb_printf(h, " %s done,\n    sgrpc_client_call **pcall);\n\n", m->done_type);
  }
}

/* Appends s as the inside of a C string literal. */
static void sb_cstring(sb *c, const char *s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') sb_printf(c, "\\%c", ch);
    else if (ch < 0x20 || ch >= 0x7f) sb_printf(c, "\\%03o", ch);
    else sb_printf(c, "%c", ch);
  }
}

static void emit_source_service(sb *c, const sgen *sv, const char *fd_var,
                                const char *fd_len_var, const char *file_name,
                                const char *deps_var, size_t n_deps) {
  size_t i;
  if (sv->n) {
    sb_printf(c, "const sgrpc_method %s[%zu] = {\n", sv->methods_var, sv->n);
    for (i = 0; i < sv->n; i++) {
      const mgen *m = &sv->methods[i];
      sb_printf(c, "  {\"/%s/%s\", &%s__descriptor, &%s__descriptor, %d, %d,\n   &sgrpc_codec_protobuf},\n",
                sv->full, m->m->name, m->in->lower, m->out->lower,
                m->kind == K_CLIENT_STREAM || m->kind == K_BIDI,
                m->kind == K_SERVER_STREAM || m->kind == K_BIDI);
    }
    sb_puts(c, "};\n\n");
  }
  sb_printf(c, "const sgrpc_service_desc %s = {\"%s\", %s, %zu, \"", sv->service_var, sv->full,
            sv->n ? sv->methods_var : "NULL", sv->n);
  sb_cstring(c, file_name);
  sb_printf(c, "\", %s, %s, %s, %zu};\n\n", fd_var, fd_len_var, n_deps ? deps_var : "NULL",
            n_deps);

  for (i = 0; i < sv->n; i++) {
    const mgen *m = &sv->methods[i];
    sb_printf(c,
              "static void %s(sgrpc_server_call *call, const void *msg, void *user_data) {\n"
              "  void (*fn)(sgrpc_server_call *, const %s *, void *) =\n"
              "      (void (*)(sgrpc_server_call *, const %s *, void *))sgrpc_server_call_handler(call)->typed;\n"
              "  fn(call, (const %s *)msg, user_data);\n}\n\n",
              m->serve_fn, m->in->c_name, m->in->c_name, m->in->c_name);
  }
  sb_printf(c, "int %s(sgrpc_router *router, const %s *impl, void *user_data) {\n",
            sv->register_fn, sv->server_type);
  if (sv->n) sb_puts(c, "  sgrpc_handler h;\n  int rv;\n");
  sb_puts(c, "  if (!router || !impl) return SGRPC_ERR_INVALID_ARGUMENT;\n");
  if (sv->n) {
    sb_printf(c, "  memset(&h, 0, sizeof(h));\n  h.on_close = impl->%s;\n"
                 "  h.on_writable = impl->%s;\n  h.user_data = user_data;\n",
              sv->on_close_field, sv->on_writable_field);
  } else {
    sb_puts(c, "  (void)user_data;\n");
  }
  for (i = 0; i < sv->n; i++) {
    const mgen *m = &sv->methods[i];
    sb_printf(c,
              "  if (impl->%s) {\n    h.on_request = %s;\n    h.typed = (void (*)(void))impl->%s;\n"
              "    rv = sgrpc_router_add(router, &%s[%s], &h);\n    if (rv < 0) return rv;\n  }\n",
              m->field, m->serve_fn, m->field, sv->methods_var, m->enum_name);
  }
  /* Recorded last: a router lists only services whose methods it routes. */
  sb_printf(c, "  return sgrpc_router_add_service(router, &%s);\n}\n\n", sv->service_var);

  for (i = 0; i < sv->n; i++) {
    const mgen *m = &sv->methods[i];
    int single_req = m->kind == K_UNARY || m->kind == K_SERVER_STREAM;
    sb_printf(c,
              "static void %s(sgrpc_client_call *call, const sgrpc_status_info *status,\n"
              "    const void *reply, void *user_data) {\n"
              "  %s fn = (%s)sgrpc_client_call_callbacks(call)->typed[0];\n"
              "  fn(call, status, (const %s *)reply, user_data);\n}\n\n",
              m->done_fn, m->done_type, m->done_type, m->out->c_name);
    if (m->reply_type)
      sb_printf(c,
                "static void %s(sgrpc_client_call *call, const void *reply, void *user_data) {\n"
                "  %s fn = (%s)sgrpc_client_call_callbacks(call)->typed[1];\n"
                "  fn(call, (const %s *)reply, user_data);\n}\n\n",
                m->reply_fn, m->reply_type, m->reply_type, m->out->c_name);
    sb_printf(c, "int %s(sgrpc_rpc_client *client,", m->call_fn);
    if (single_req) sb_printf(c, " const %s *request,", m->in->c_name);
    sb_puts(c, "\n    const sgrpc_rpc_opts *opts, int64_t now,");
    if (m->reply_type) sb_printf(c, " %s on_reply,", m->reply_type);
    sb_printf(c, " %s done,\n    sgrpc_client_call **pcall) {\n", m->done_type);
    sb_puts(c, "  sgrpc_client_callbacks cb;\n");
    sb_printf(c, "  if (!done%s) return SGRPC_ERR_INVALID_ARGUMENT;\n",
              m->reply_type ? " || !on_reply" : "");
    sb_printf(c, "  memset(&cb, 0, sizeof(cb));\n  cb.on_close = %s;\n  cb.typed[0] = (void (*)(void))done;\n",
              m->done_fn);
    if (m->reply_type)
      sb_printf(c, "  cb.on_message = %s;\n  cb.typed[1] = (void (*)(void))on_reply;\n", m->reply_fn);
    sb_printf(c, "  return sgrpc_rpc_call_start(client, &%s[%s], %s, opts, now, &cb, pcall);\n}\n\n",
              sv->methods_var, m->enum_name, single_req ? "request" : "NULL");
  }
}

static void emit_bytes(sb *c, const uint8_t *d, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (i % 12 == 0) sb_puts(c, i ? "\n  " : "  ");
    else sb_puts(c, " ");
    sb_printf(c, "0x%02x,", d[i]);
  }
  if (n == 0) sb_puts(c, "  0x00");
  sb_puts(c, "\n");
}

/* The files f imports, directly or not, each after its own imports
 * (post-order), without repeats: what reflection needs to describe f. */
typedef struct deplist {
  const FileProto **v;
  size_t n, cap;
} deplist;

static int dep_has(const deplist *l, const FileProto *f) {
  size_t k;
  for (k = 0; k < l->n; k++)
    if (l->v[k] == f) return 1;
  return 0;
}

static void dep_push(deplist *l, const FileProto *f) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 8;
    l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
  }
  l->v[l->n++] = f;
}

/* entered holds every file visited so far, so a request with an import
 * cycle (protoc refuses them, a fuzzer does not) ends too. */
static void collect_deps(const gen *g, const FileProto *f, deplist *out, deplist *entered) {
  size_t i;
  for (i = 0; i < f->n_dependency; i++) {
    const FileProto *d = f->dependency[i] ? find_file(g, f->dependency[i]) : NULL;
    if (!d || dep_has(entered, d)) continue;
    dep_push(entered, d);
    collect_deps(g, d, out, entered);
    dep_push(out, d);
  }
}

/* Emits one static byte array per imported file and the table of them;
 * returns how many. Source info is dropped as for the file itself. */
static size_t emit_deps(sb *c, const gen *g, const FileProto *f, const char *deps_var) {
  deplist dl = {0}, entered = {0};
  size_t i;
  dep_push(&entered, f);
  collect_deps(g, f, &dl, &entered);
  free(entered.v);
  for (i = 0; i < dl.n; i++) {
    FileProto copy = *dl.v[i];
    size_t len;
    uint8_t *fd;
    copy.source_code_info = NULL;
    len = protobuf_c_message_get_packed_size(&copy.base);
    fd = xmalloc(len ? len : 1);
    protobuf_c_message_pack(&copy.base, fd);
    sb_printf(c, "static const uint8_t %s_%zu[%zu] = {\n", deps_var, i, len ? len : 1);
    emit_bytes(c, fd, len);
    sb_puts(c, "};\n");
    free(fd);
  }
  if (dl.n) {
    sb_printf(c, "static const sgrpc_file_desc %s[%zu] = {\n", deps_var, dl.n);
    for (i = 0; i < dl.n; i++) {
      FileProto copy = *dl.v[i];
      copy.source_code_info = NULL;
      sb_puts(c, "  {\"");
      sb_cstring(c, dl.v[i]->name ? dl.v[i]->name : "");
      sb_printf(c, "\", %s_%zu, %zu},\n", deps_var, i,
                protobuf_c_message_get_packed_size(&copy.base));
    }
    sb_puts(c, "};\n\n");
  }
  free(dl.v);
  return dl.n;
}

static int gen_file(gen *g, const FileProto *f, Response *resp) {
  const char *pkg = f->package ? f->package : "";
  char *base, *ident, *ident_lower, *fd_var, *fd_len_var, *deps_var;
  size_t n_deps;
  strset names = {0};
  sgen *svcs;
  sb h = {0}, c = {0};
  size_t i, len;
  uint8_t *fd;
  FileProto copy;
  OutFile *of[2];

  if (f->n_service == 0) return 0;
  base = strip_proto(f->name);
  ident = file_ident(f->name);
  /* The case stays: "Api.proto" and "api.proto" are two files whose
   * descriptor symbols must not collide when both are linked. */
  ident_lower = xstrdup(ident);
  for (i = 0; i < g->seeds.n; i++) set_add(&names, g->seeds.v[i]);
  fd_var = fmt_name(&names, "%s__sgrpc_file_descriptor", ident_lower);
  fd_len_var = fmt_name(&names, "%s__sgrpc_file_descriptor_len", ident_lower);
  deps_var = fmt_name(&names, "%s__sgrpc_file_deps", ident_lower);

  svcs = calloc(f->n_service, sizeof(sgen));
  if (!svcs) exit(1);
  for (i = 0; i < f->n_service; i++)
    if (plan_service(g, &names, pkg, f->service[i], &svcs[i]) < 0) break;

  if (!g->error) {
    sb_printf(&h, "/* Generated by protoc-gen-sgrpc. DO NOT EDIT.\n * source: %s */\n", f->name);
    sb_printf(&h, "#ifndef SGRPC_%s__INCLUDED\n#define SGRPC_%s__INCLUDED\n\n", ident, ident);
    sb_printf(&h, "#include <stddef.h>\n#include <stdint.h>\n\n#include <sgrpc/protobuf.h>\n"
                  "#include <sgrpc/rpc.h>\n\n#include \"%s.pb-c.h\"\n\n",
              base);
    sb_puts(&h, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    sb_printf(&h, "/** Serialized google.protobuf.FileDescriptorProto of %s. */\n"
                  "extern const uint8_t %s[];\nextern const size_t %s;\n\n",
              f->name, fd_var, fd_len_var);
    for (i = 0; i < f->n_service; i++) emit_header_service(&h, &svcs[i]);
    sb_puts(&h, "#ifdef __cplusplus\n}\n#endif\n\n");
    sb_printf(&h, "#endif /* SGRPC_%s__INCLUDED */\n", ident);

    /* The descriptor without source_code_info: reflection needs no
     * comments or spans, and it keeps the binary small. */
    copy = *f;
    copy.source_code_info = NULL;
    len = protobuf_c_message_get_packed_size(&copy.base);
    fd = xmalloc(len);
    protobuf_c_message_pack(&copy.base, fd);
    sb_printf(&c, "/* Generated by protoc-gen-sgrpc. DO NOT EDIT.\n * source: %s */\n", f->name);
    sb_printf(&c, "#include <string.h>\n\n#include \"%s.sgrpc.h\"\n\n", base);
    sb_printf(&c, "const uint8_t %s[%zu] = {\n", fd_var, len ? len : 1);
    emit_bytes(&c, fd, len);
    sb_printf(&c, "};\nconst size_t %s = %zu;\n\n", fd_len_var, len);
    free(fd);
    n_deps = emit_deps(&c, g, f, deps_var);
    for (i = 0; i < f->n_service; i++)
      emit_source_service(&c, &svcs[i], fd_var, fd_len_var, f->name, deps_var, n_deps);

    for (i = 0; i < 2; i++) {
      sb name = {0};
      of[i] = xmalloc(sizeof(OutFile));
      google__protobuf__compiler__code_generator_response__file__init(of[i]);
      sb_printf(&name, "%s.sgrpc.%s", base, i ? "c" : "h");
      of[i]->name = sb_take(&name);
      of[i]->content = i ? sb_take(&c) : sb_take(&h);
    }
    resp->file = xrealloc(resp->file, (resp->n_file + 2) * sizeof(OutFile *));
    resp->file[resp->n_file++] = of[0];
    resp->file[resp->n_file++] = of[1];
  }
  for (i = 0; i < f->n_service; i++) free_sgen(&svcs[i]);
  free(svcs);
  free(h.s);
  free(c.s);
  set_free(&names);
  free(base), free(ident), free(ident_lower), free(fd_var), free(fd_len_var), free(deps_var);
  return g->error ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

/* The plugin without its stdin/stdout: takes a serialized
 * CodeGeneratorRequest (input, len; borrowed) and sets *out (malloc'd,
 * the caller frees it) and *out_len to the serialized
 * CodeGeneratorResponse, which carries the generated files or the error.
 * Returns 0, or 1 when the input is not a usable request at all (the
 * response then holds that error, and the message also goes to diag
 * when diag is not NULL).
 * Kept apart from main so that fuzz/fuzz_protoc.c can run it on a buffer
 * (built with SGRPC_PLUGIN_NO_MAIN). */
int sgrpc_plugin_run(const uint8_t *input, size_t len, uint8_t **out, size_t *out_len,
                     FILE *diag);
int sgrpc_plugin_run(const uint8_t *input, size_t len, uint8_t **out, size_t *out_len,
                     FILE *diag) {
  Response resp;
  gen g;
  size_t i;
  int exit_code = 0;
  google__protobuf__compiler__code_generator_response__init(&resp);
  resp.has_supported_features = 1;
  resp.supported_features =
      GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL;
  memset(&g, 0, sizeof(g));

  if (len == 0) {
    set_error(&g, "protoc-gen-sgrpc: empty CodeGeneratorRequest on stdin");
    exit_code = 1;
  } else {
    g.req = google__protobuf__compiler__code_generator_request__unpack(NULL, len, input);
    if (!g.req) {
      set_error(&g, "protoc-gen-sgrpc: stdin is not a valid CodeGeneratorRequest");
      exit_code = 1;
    } else if (g.req->n_file_to_generate == 0) {
      set_error(&g, "protoc-gen-sgrpc: the CodeGeneratorRequest lists no file to generate");
      exit_code = 1;
    }
  }
  if (!g.error && index_files(&g) == 0) {
    for (i = 0; i < g.req->n_file_to_generate && !g.error; i++) {
      const char *name = g.req->file_to_generate[i];
      const FileProto *f = name ? find_file(&g, name) : NULL;
      if (!f) {
        set_error(&g, "protoc-gen-sgrpc: %s is not among the request's proto files",
                  name ? name : "(null)");
        exit_code = 1;
        break;
      }
      gen_file(&g, f, &resp);
    }
  }
  if (g.error) {
    /* drop partial output: protoc ignores files when error is set */
    for (i = 0; i < resp.n_file; i++) {
      free(resp.file[i]->name);
      free(resp.file[i]->content);
      free(resp.file[i]);
    }
    resp.n_file = 0;
    resp.error = g.error;
    if (exit_code && diag) fprintf(diag, "%s\n", g.error);
  }
  *out_len = protobuf_c_message_get_packed_size(&resp.base);
  *out = xmalloc(*out_len);
  protobuf_c_message_pack(&resp.base, *out);

  for (i = 0; i < resp.n_file; i++) {
    free(resp.file[i]->name);
    free(resp.file[i]->content);
    free(resp.file[i]);
  }
  free(resp.file);
  free(g.error);
  for (i = 0; i < g.ntypes; i++) {
    free(g.types[i].full);
    free(g.types[i].c_name);
    free(g.types[i].lower);
  }
  free(g.types);
  set_free(&g.seeds);
  if (g.req)
    google__protobuf__compiler__code_generator_request__free_unpacked((Request *)g.req, NULL);
  return exit_code;
}

#ifndef SGRPC_PLUGIN_NO_MAIN
static uint8_t *read_all(FILE *in, size_t *plen) {
  size_t cap = 65536, len = 0;
  uint8_t *buf = xmalloc(cap);
  for (;;) {
    size_t n;
    if (len == cap) {
      cap *= 2;
      buf = xrealloc(buf, cap);
    }
    n = fread(buf + len, 1, cap - len, in);
    len += n;
    if (n == 0) break;
  }
  *plen = len;
  return buf;
}

int main(int argc, char **argv) {
  size_t len, out_len;
  uint8_t *input, *out;
  int exit_code;
  (void)argv;
  if (argc > 1) {
    fputs("protoc-gen-sgrpc: a protoc plugin; run it through protoc:\n"
          "  protoc --c_out=OUT --sgrpc_out=OUT foo.proto\n",
          stderr);
    return 1;
  }
  input = read_all(stdin, &len);
  exit_code = sgrpc_plugin_run(input, len, &out, &out_len, stderr);
  if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout) != 0) exit_code = 1;
  free(out);
  free(input);
  return exit_code;
}
#endif
