/*
 * grpc.reflection.v1 and v1alpha ServerReflection on the router, answered
 * from serialized FileDescriptorProtos (see include/sgrpc/reflection.h).
 *
 * The descriptors are read with a small protobuf wire walker rather than
 * protobuf-c's descriptor.proto messages: only names are needed (file
 * name, package, imports, the names of messages, fields, enums, services,
 * methods, and extensions with their extendee and number), and the library then carries no copy of
 * descriptor.pb-c whose symbols could clash with an application's.
 */
#include <sgrpc/reflection.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.sgrpc.h"
#include "grpc/reflection/v1alpha/reflection.sgrpc.h"
#include "rpc_mem.h"

#define MAX_NESTING 64

typedef struct refl_file {
  char *name;
  const uint8_t *data;
  size_t len;
  int owned; /* data was copied by add_file */
} refl_file;

typedef struct refl_symbol {
  char *name;
  size_t file;
  int kind; /* K_* */
} refl_symbol;

/* An extension field: "extendee" (no leading dot) gets field number. */
typedef struct refl_ext {
  char *extendee;
  int32_t number;
  size_t file;
} refl_ext;

struct sgrpc_reflection {
  sgrpc_mem mem;
  refl_file *files;
  size_t n_files, cap_files;
  refl_symbol *syms;
  size_t n_syms, cap_syms;
  const char **services; /* borrowed names */
  size_t n_services, cap_services;
  refl_ext *exts;
  size_t n_exts, cap_exts;
  /* Routers reflection is registered on, and how many of each one's
   * services it has taken in: their services are listed with no call of
   * sgrpc_reflection_add_service (reflection_sync). */
  struct {
    const sgrpc_router *router;
    size_t synced;
  } routers[SGRPC_REFLECTION_MAX_ROUTERS];
  size_t n_routers;
  sgrpc_reflection_warn_cb warn;
  void *warn_ud;
  int warn_set;
};

/* Makes room for one more element in *arr (count n, capacity *cap). */
static int grow(const sgrpc_mem *mem, void **arr, size_t n, size_t *cap, size_t elem) {
  size_t ncap;
  void *p;
  if (n < *cap) return 0;
  ncap = *cap ? *cap * 2 : 8;
  p = rpc_malloc(mem, ncap * elem);
  if (!p) return SGRPC_ERR_NOMEM;
  if (n) memcpy(p, *arr, n * elem);
  rpc_free(mem, *arr);
  *arr = p;
  *cap = ncap;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Protobuf wire walking                                               */
/* ------------------------------------------------------------------ */

typedef struct wire {
  const uint8_t *p, *end;
} wire;

static int wire_varint(wire *w, uint64_t *out) {
  uint64_t v = 0;
  int shift;
  for (shift = 0; shift < 64 && w->p < w->end; shift += 7) {
    uint8_t b = *w->p++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

/* Next field: 1 and its number (LEN fields also give their bytes), 0 at
 * the end, -1 when malformed. */
static int wire_next(wire *w, uint32_t *field, const uint8_t **val, size_t *vlen) {
  uint64_t key, v;
  if (w->p == w->end) return 0;
  if (wire_varint(w, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return -1;
  *field = (uint32_t)(key >> 3);
  *val = NULL;
  *vlen = 0;
  switch (key & 7) {
  case 0:
    return wire_varint(w, &v) < 0 ? -1 : 1;
  case 1:
    if (w->end - w->p < 8) return -1;
    w->p += 8;
    return 1;
  case 5:
    if (w->end - w->p < 4) return -1;
    w->p += 4;
    return 1;
  case 2:
    if (wire_varint(w, &v) < 0 || v > (uint64_t)(w->end - w->p)) return -1;
    *val = w->p;
    *vlen = (size_t)v;
    w->p += v;
    return 2;
  default:
    return -1; /* groups do not occur in descriptors */
  }
}

/* The last value of LEN field `field` in a message (protobuf's rule for
 * repeated scalars: last one wins). Returns 1 found, 0 absent, -1 bad. */
static int wire_find(const uint8_t *data, size_t len, uint32_t want, const uint8_t **val,
                     size_t *vlen) {
  wire w = {data, data + len};
  uint32_t f;
  const uint8_t *v;
  size_t vl;
  int rv, found = 0;
  *val = NULL; /* defined when the field is absent too */
  *vlen = 0;
  while ((rv = wire_next(&w, &f, &v, &vl)) > 0) {
    if (f == want && rv == 2) {
      *val = v;
      *vlen = vl;
      found = 1;
    }
  }
  return rv < 0 ? -1 : found;
}

/* ------------------------------------------------------------------ */
/* Symbol table                                                        */
/* ------------------------------------------------------------------ */

enum { K_MESSAGE, K_ENUM, K_SERVICE, K_LEAF, K_EXTENSION };

/* The last varint field `want` of a message: 1 found, 0 absent, -1 bad. */
static int wire_find_varint(const uint8_t *data, size_t len, uint32_t want, uint64_t *out) {
  wire w = {data, data + len};
  uint32_t f;
  const uint8_t *v;
  size_t vl;
  int rv, found = 0;
  for (;;) {
    const uint8_t *at = w.p;
    rv = wire_next(&w, &f, &v, &vl);
    if (rv <= 0) break;
    if (f == want && rv == 1 && (*at & 7) == 0) {
      wire again = {at, w.p};
      uint64_t key;
      if (wire_varint(&again, &key) < 0 || wire_varint(&again, out) < 0) return -1;
      found = 1;
    }
  }
  return rv < 0 ? -1 : found;
}

/* Records an extension field (FieldDescriptorProto msg) of file. */
static int ext_add(sgrpc_reflection *r, size_t file, const uint8_t *msg, size_t len) {
  const uint8_t *ext;
  size_t ext_len;
  uint64_t number = 0;
  char *s;
  if (wire_find(msg, len, 2, &ext, &ext_len) <= 0 || wire_find_varint(msg, len, 3, &number) <= 0 ||
      number == 0 || number > 0x1fffffff)
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (ext_len && ext[0] == '.') ext++, ext_len--; /* fully qualified: ".pkg.Msg" */
  if (grow(&r->mem, (void **)&r->exts, r->n_exts, &r->cap_exts, sizeof(refl_ext)) < 0)
    return SGRPC_ERR_NOMEM;
  s = rpc_malloc(&r->mem, ext_len + 1);
  if (!s) return SGRPC_ERR_NOMEM;
  memcpy(s, ext, ext_len);
  s[ext_len] = 0;
  r->exts[r->n_exts].extendee = s;
  r->exts[r->n_exts].number = (int32_t)number;
  r->exts[r->n_exts].file = file;
  r->n_exts++;
  return 0;
}

static int sym_add(sgrpc_reflection *r, size_t file, int kind, const char *scope,
                   size_t scope_len, const uint8_t *name, size_t name_len, char **out) {
  char *s;
  if (grow(&r->mem, (void **)&r->syms, r->n_syms, &r->cap_syms, sizeof(refl_symbol)) < 0)
    return SGRPC_ERR_NOMEM;
  s = rpc_malloc(&r->mem, scope_len + 1 + name_len + 1);
  if (!s) return SGRPC_ERR_NOMEM;
  if (scope_len) {
    memcpy(s, scope, scope_len);
    s[scope_len] = '.';
    memcpy(s + scope_len + 1, name, name_len);
    s[scope_len + 1 + name_len] = 0;
  } else {
    memcpy(s, name, name_len);
    s[name_len] = 0;
  }
  r->syms[r->n_syms].name = s;
  r->syms[r->n_syms].file = file;
  r->syms[r->n_syms].kind = kind;
  r->n_syms++;
  if (out) *out = s;
  return 0;
}

/* Adds the symbol named by field 1 of msg inside scope; children are then
 * walked with child(field) for the listed field numbers. */
static int walk(sgrpc_reflection *r, size_t file, const char *scope, const uint8_t *msg,
                size_t len, int kind, int depth);


static int walk(sgrpc_reflection *r, size_t file, const char *scope, const uint8_t *msg,
                size_t len, int kind, int depth) {
  const uint8_t *name, *v;
  size_t name_len, vl;
  char *full;
  wire w = {msg, msg + len};
  uint32_t f;
  int rv;
  if (depth > MAX_NESTING) return SGRPC_ERR_INVALID_ARGUMENT;
  rv = wire_find(msg, len, 1, &name, &name_len);
  if (rv < 0) return SGRPC_ERR_INVALID_ARGUMENT;
  if (rv == 0 || name_len == 0) return SGRPC_ERR_INVALID_ARGUMENT;
  rv = sym_add(r, file, kind, scope, strlen(scope), name, name_len, &full);
  if (rv < 0) return rv;
  if (kind == K_EXTENSION) return ext_add(r, file, msg, len);
  if (kind == K_ENUM || kind == K_LEAF) return 0;
  while ((rv = wire_next(&w, &f, &v, &vl)) > 0) {
    if (rv != 2) continue;
    if (kind == K_MESSAGE && f == 2) /* field */
      rv = walk(r, file, full, v, vl, K_LEAF, depth + 1);
    else if (kind == K_MESSAGE && f == 6) /* extension declared in a message */
      rv = walk(r, file, full, v, vl, K_EXTENSION, depth + 1);
    else if (kind == K_MESSAGE && f == 3) /* nested_type */
      rv = walk(r, file, full, v, vl, K_MESSAGE, depth + 1);
    else if (kind == K_MESSAGE && f == 4) /* enum_type */
      rv = walk(r, file, full, v, vl, K_ENUM, depth + 1);
    else if (kind == K_SERVICE && f == 2) /* method */
      rv = walk(r, file, full, v, vl, K_LEAF, depth + 1);
    else
      continue;
    if (rv < 0) return rv;
  }
  return rv < 0 ? SGRPC_ERR_INVALID_ARGUMENT : 0;
}

static long file_find(const sgrpc_reflection *r, const char *name, size_t len) {
  size_t i;
  for (i = 0; i < r->n_files; i++)
    if (strlen(r->files[i].name) == len && memcmp(r->files[i].name, name, len) == 0)
      return (long)i;
  return -1;
}

/* Adds a file; copy != 0 copies the bytes. On any error nothing of the
 * file stays. */
static int file_add(sgrpc_reflection *r, const uint8_t *data, size_t len, int copy) {
  const uint8_t *name, *pkg = NULL, *v;
  size_t name_len, pkg_len = 0, vl, syms_before = r->n_syms, exts_before = r->n_exts, idx;
  char *scope = NULL;
  refl_file *fl;
  long have;
  wire w;
  uint32_t f;
  int rv;
  if (!data && len) return SGRPC_ERR_INVALID_ARGUMENT;
  rv = wire_find(data, len, 1, &name, &name_len);
  if (rv <= 0 || name_len == 0) return SGRPC_ERR_INVALID_ARGUMENT;
  if (wire_find(data, len, 2, &pkg, &pkg_len) < 0) return SGRPC_ERR_INVALID_ARGUMENT;
  have = file_find(r, (const char *)name, name_len);
  if (have >= 0) {
    const refl_file *o = &r->files[have];
    return o->len == len && memcmp(o->data, data, len) == 0 ? 0 : SGRPC_ERR_INVALID_ARGUMENT;
  }
  if (grow(&r->mem, (void **)&r->files, r->n_files, &r->cap_files, sizeof(refl_file)) < 0)
    return SGRPC_ERR_NOMEM;
  idx = r->n_files;
  fl = &r->files[idx];
  memset(fl, 0, sizeof(*fl));
  fl->name = rpc_malloc(&r->mem, name_len + 1);
  scope = rpc_malloc(&r->mem, pkg_len + 1);
  if (!fl->name || !scope) {
    rv = SGRPC_ERR_NOMEM;
    goto fail;
  }
  memcpy(fl->name, name, name_len);
  fl->name[name_len] = 0;
  if (pkg_len) memcpy(scope, pkg, pkg_len);
  scope[pkg_len] = 0;
  if (copy) {
    uint8_t *c = rpc_malloc(&r->mem, len);
    if (!c) {
      rv = SGRPC_ERR_NOMEM;
      goto fail;
    }
    if (len) memcpy(c, data, len);
    fl->data = c;
    fl->owned = 1;
  } else {
    fl->data = data;
  }
  fl->len = len;
  w.p = fl->data;
  w.end = fl->data + len;
  while ((rv = wire_next(&w, &f, &v, &vl)) > 0) {
    if (rv != 2) continue;
    if (f == 4) rv = walk(r, idx, scope, v, vl, K_MESSAGE, 0);
    else if (f == 5) rv = walk(r, idx, scope, v, vl, K_ENUM, 0);
    else if (f == 6) rv = walk(r, idx, scope, v, vl, K_SERVICE, 0);
    else if (f == 7) rv = walk(r, idx, scope, v, vl, K_EXTENSION, 0);
    else continue;
    if (rv < 0) goto fail;
  }
  if (rv < 0) {
    rv = SGRPC_ERR_INVALID_ARGUMENT;
    goto fail;
  }
  rpc_free(&r->mem, scope);
  r->n_files++;
  return 0;
fail:
  while (r->n_syms > syms_before) rpc_free(&r->mem, r->syms[--r->n_syms].name);
  while (r->n_exts > exts_before) rpc_free(&r->mem, r->exts[--r->n_exts].extendee);
  rpc_free(&r->mem, scope);
  rpc_free(&r->mem, fl->name);
  if (fl->owned) rpc_free(&r->mem, (void *)fl->data);
  return rv;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

int sgrpc_reflection_new(sgrpc_reflection **pr, const sgrpc_mem *mem) {
  sgrpc_mem m;
  sgrpc_reflection *r;
  if (!pr) return SGRPC_ERR_INVALID_ARGUMENT;
  *pr = NULL;
  if (sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  r = rpc_malloc(&m, sizeof(*r));
  if (!r) return SGRPC_ERR_NOMEM;
  memset(r, 0, sizeof(*r));
  r->mem = m;
  *pr = r;
  return 0;
}

void sgrpc_reflection_del(sgrpc_reflection *r) {
  size_t i;
  if (!r) return;
  for (i = 0; i < r->n_files; i++) {
    rpc_free(&r->mem, r->files[i].name);
    if (r->files[i].owned) rpc_free(&r->mem, (void *)r->files[i].data);
  }
  for (i = 0; i < r->n_syms; i++) rpc_free(&r->mem, r->syms[i].name);
  for (i = 0; i < r->n_exts; i++) rpc_free(&r->mem, r->exts[i].extendee);
  rpc_free(&r->mem, r->files);
  rpc_free(&r->mem, r->syms);
  rpc_free(&r->mem, r->exts);
  rpc_free(&r->mem, (void *)r->services);
  rpc_free(&r->mem, r);
}

void sgrpc_reflection_set_warn(sgrpc_reflection *r, sgrpc_reflection_warn_cb cb, void *user_data) {
  if (!r) return;
  r->warn = cb;
  r->warn_ud = user_data;
  r->warn_set = 1;
}

static void refl_warn(sgrpc_reflection *r, const char *fmt, const char *a, const char *b) {
  char msg[512];
  snprintf(msg, sizeof(msg), fmt, a, b);
  if (!r->warn_set) {
    fprintf(stderr, "sgrpc reflection: %s\n", msg);
    return;
  }
  if (r->warn) r->warn(msg, r->warn_ud);
}

static int service_list(sgrpc_reflection *r, const char *name) {
  size_t i;
  for (i = 0; i < r->n_services; i++)
    if (strcmp(r->services[i], name) == 0) return 0;
  if (grow(&r->mem, (void **)&r->services, r->n_services, &r->cap_services,
           sizeof(const char *)) < 0)
    return SGRPC_ERR_NOMEM;
  r->services[r->n_services++] = name;
  return 0;
}

int sgrpc_reflection_add_service(sgrpc_reflection *r, const sgrpc_service_desc *svc) {
  size_t i;
  int rv;
  if (!r || !svc || !svc->name || !svc->name[0] || (svc->n_deps && !svc->deps))
    return SGRPC_ERR_INVALID_ARGUMENT;
  /* Imports first, so a failure leaves no file that needs them. A name
   * already known is kept: two protoc runs may encode the same import
   * differently, and either describes it. */
  for (i = 0; i < svc->n_deps; i++) {
    const sgrpc_file_desc *d = &svc->deps[i];
    if (!d->name || !d->data) return SGRPC_ERR_INVALID_ARGUMENT;
    if (file_find(r, d->name, strlen(d->name)) >= 0) continue;
    rv = file_add(r, d->data, d->len, 0);
    if (rv < 0) return rv;
  }
  if (svc->file_descriptor) {
    rv = file_add(r, svc->file_descriptor, svc->file_descriptor_len, 0);
    if (rv < 0) return rv;
  }
  return service_list(r, svc->name);
}

/* Names of the files f imports that reflection lacks go to the warning. */
static void warn_missing_imports(sgrpc_reflection *r, const sgrpc_service_desc *svc) {
  wire w;
  uint32_t f;
  const uint8_t *v;
  size_t vl;
  char dep[256];
  w.p = svc->file_descriptor;
  w.end = svc->file_descriptor + svc->file_descriptor_len;
  while (wire_next(&w, &f, &v, &vl) > 0) {
    if (f != 3) continue; /* FileDescriptorProto.dependency */
    if (file_find(r, (const char *)v, vl) >= 0) continue;
    if (vl >= sizeof(dep)) vl = sizeof(dep) - 1;
    memcpy(dep, v, vl);
    dep[vl] = 0;
    refl_warn(r,
              "service %s: its file imports %s, which reflection does not have (add it with "
              "sgrpc_reflection_add_file_set, or regenerate with this protoc-gen-sgrpc)",
              svc->name, dep);
  }
}

/* Takes in the services routers recorded since the last call. Returns 0
 * or SGRPC_ERR_NOMEM (what was taken stays; the rest is retried). */
static int reflection_sync(sgrpc_reflection *r) {
  size_t k;
  for (k = 0; k < r->n_routers; k++) {
    const sgrpc_router *router = r->routers[k].router;
    while (r->routers[k].synced < sgrpc_router_service_count(router)) {
      const sgrpc_service_desc *svc = sgrpc_router_service(router, r->routers[k].synced);
      int rv = sgrpc_reflection_add_service(r, svc);
      if (rv == SGRPC_ERR_NOMEM) return rv;
      r->routers[k].synced++;
      if (rv < 0) {
        refl_warn(r, "service %s: its file descriptor is not a valid FileDescriptorProto%s",
                  svc->name, "; reflection cannot describe it");
        continue;
      }
      if (!svc->file_descriptor)
        refl_warn(r, "service %s has no file descriptor%s", svc->name,
                  ": reflection lists it but cannot describe it (generate it with "
                  "protoc-gen-sgrpc, or add its file with sgrpc_reflection_add_file)");
      else
        warn_missing_imports(r, svc);
    }
  }
  return 0;
}

int sgrpc_reflection_add_file(sgrpc_reflection *r, const uint8_t *data, size_t len) {
  if (!r || !data) return SGRPC_ERR_INVALID_ARGUMENT;
  return file_add(r, data, len, 1);
}

int sgrpc_reflection_add_file_set(sgrpc_reflection *r, const uint8_t *data, size_t len) {
  wire w;
  uint32_t f;
  const uint8_t *v;
  size_t vl;
  int rv;
  if (!r || (!data && len)) return SGRPC_ERR_INVALID_ARGUMENT;
  w.p = data;
  w.end = data + len;
  while ((rv = wire_next(&w, &f, &v, &vl)) > 0) {
    if (f != 1 || rv != 2) continue; /* FileDescriptorSet.file */
    rv = file_add(r, v, vl, 1);
    if (rv < 0) return rv;
  }
  return rv < 0 ? SGRPC_ERR_INVALID_ARGUMENT : 0;
}

/* ------------------------------------------------------------------ */
/* Answers, independent of the protocol version                        */
/* ------------------------------------------------------------------ */

enum { Q_NONE, Q_LIST, Q_FILE, Q_SYMBOL, Q_EXTENSION, Q_EXTENSION_NUMBERS };
enum { A_LIST, A_FILES, A_NUMBERS, A_ERROR };

typedef struct refl_answer {
  int kind;
  size_t n;             /* A_FILES: files[] entries; A_NUMBERS: numbers[] */
  ProtobufCBinaryData *files;
  int32_t *numbers;
  int code;             /* A_ERROR */
  const char *message;
} refl_answer;

static void answer_error(refl_answer *a, int code, const char *message) {
  a->kind = A_ERROR;
  a->code = code;
  a->message = message;
}

/* The file, then what it imports, breadth first, each once. */
static int answer_files(sgrpc_reflection *r, size_t first, refl_answer *a) {
  size_t *order, n = 1, i, k;
  order = rpc_malloc(&r->mem, r->n_files * sizeof(size_t));
  if (!order) return SGRPC_ERR_NOMEM;
  order[0] = first;
  for (i = 0; i < n; i++) {
    const refl_file *fl = &r->files[order[i]];
    wire w = {fl->data, fl->data + fl->len};
    uint32_t f;
    const uint8_t *v;
    size_t vl;
    int rv;
    while ((rv = wire_next(&w, &f, &v, &vl)) > 0) {
      long dep;
      if (f != 3 || rv != 2) continue; /* dependency */
      dep = file_find(r, (const char *)v, vl);
      if (dep < 0) continue; /* not known here: the client may have it */
      for (k = 0; k < n && order[k] != (size_t)dep; k++) {
      }
      if (k == n) order[n++] = (size_t)dep;
    }
  }
  a->files = rpc_malloc(&r->mem, n * sizeof(ProtobufCBinaryData));
  if (!a->files) {
    rpc_free(&r->mem, order);
    return SGRPC_ERR_NOMEM;
  }
  for (i = 0; i < n; i++) {
    a->files[i].data = (uint8_t *)r->files[order[i]].data;
    a->files[i].len = r->files[order[i]].len;
  }
  a->n = n;
  a->kind = A_FILES;
  rpc_free(&r->mem, order);
  return 0;
}

static int is_message(const sgrpc_reflection *r, const char *name) {
  size_t i;
  for (i = 0; i < r->n_syms; i++)
    if (r->syms[i].kind == K_MESSAGE && strcmp(r->syms[i].name, name) == 0) return 1;
  return 0;
}

/* number is only read for Q_EXTENSION. */
static int refl_answer_query(sgrpc_reflection *r, int q, const char *arg, int32_t number,
                             refl_answer *a) {
  size_t i;
  int rv;
  memset(a, 0, sizeof(*a));
  rv = reflection_sync(r);
  if (rv < 0) return rv;
  switch (q) {
  case Q_LIST:
    a->kind = A_LIST;
    a->n = r->n_services;
    return 0;
  case Q_FILE: {
    long idx = file_find(r, arg, strlen(arg));
    if (idx < 0) {
      answer_error(a, SGRPC_STATUS_NOT_FOUND, "file not found");
      return 0;
    }
    return answer_files(r, (size_t)idx, a);
  }
  case Q_SYMBOL:
    for (i = 0; i < r->n_syms; i++)
      if (strcmp(r->syms[i].name, arg) == 0) return answer_files(r, r->syms[i].file, a);
    answer_error(a, SGRPC_STATUS_NOT_FOUND, "symbol not found");
    return 0;
  case Q_EXTENSION:
    for (i = 0; i < r->n_exts; i++)
      if (r->exts[i].number == number && strcmp(r->exts[i].extendee, arg) == 0)
        return answer_files(r, r->exts[i].file, a);
    answer_error(a, SGRPC_STATUS_NOT_FOUND, "extension not found");
    return 0;
  case Q_EXTENSION_NUMBERS:
    if (!is_message(r, arg)) {
      answer_error(a, SGRPC_STATUS_NOT_FOUND, "message type not found");
      return 0;
    }
    a->kind = A_NUMBERS;
    if (!r->n_exts) return 0;
    a->numbers = rpc_malloc(&r->mem, r->n_exts * sizeof(int32_t));
    if (!a->numbers) return SGRPC_ERR_NOMEM;
    for (i = 0; i < r->n_exts; i++) {
      size_t k;
      if (strcmp(r->exts[i].extendee, arg) != 0) continue;
      /* ascending, whatever order the files declared them in */
      for (k = a->n++; k > 0 && a->numbers[k - 1] > r->exts[i].number; k--)
        a->numbers[k] = a->numbers[k - 1];
      a->numbers[k] = r->exts[i].number;
    }
    return 0;
  default:
    answer_error(a, SGRPC_STATUS_INVALID_ARGUMENT, "empty reflection request");
    return 0;
  }
}

static void refl_answer_clear(sgrpc_reflection *r, refl_answer *a) {
  rpc_free(&r->mem, a->files);
  rpc_free(&r->mem, a->numbers);
  a->files = NULL;
  a->numbers = NULL;
}

/* ------------------------------------------------------------------ */
/* Requests waiting for room on their call                             */
/* ------------------------------------------------------------------ */

/* Answers go out in request order, one each. When an answer does not fit
 * the call's send buffer (the client asks faster than it reads), the
 * request waits here, packed, and is answered from on_writable. Requests
 * are small, so a client must pipeline a lot to reach this bound; past
 * it the call ends RESOURCE_EXHAUSTED rather than grow without end. */
#define REFL_MAX_BACKLOG (64u * 1024u)

typedef struct refl_pending {
  struct refl_pending *next;
  size_t len;
  /* the packed request follows */
} refl_pending;

/* A call's state (its user data), made at its first blocked answer. */
typedef struct refl_call {
  refl_pending *head, *tail;
  size_t bytes;
  int finish; /* the client half-closed: finish once the backlog is answered */
} refl_call;

static void refl_pending_pop(sgrpc_reflection *r, refl_call *st) {
  refl_pending *p = st->head;
  st->head = p->next;
  if (!st->head) st->tail = NULL;
  st->bytes -= p->len;
  rpc_free(&r->mem, p);
}

static void refl_call_free(sgrpc_reflection *r, refl_call *st) {
  while (st->head) refl_pending_pop(r, st);
  rpc_free(&r->mem, st);
}

/* Appends a request of len bytes (packed by pack into the node) to the
 * call's backlog. Returns 0, or a gRPC status code to end the call with. */
static int refl_defer(sgrpc_reflection *r, sgrpc_server_call *call, size_t len,
                      void (*pack)(const void *q, uint8_t *out), const void *q) {
  refl_call *st = sgrpc_server_call_get_user_data(call);
  refl_pending *p;
  if (st && st->bytes + len > REFL_MAX_BACKLOG) return SGRPC_STATUS_RESOURCE_EXHAUSTED;
  if (!st) {
    st = rpc_malloc(&r->mem, sizeof(*st));
    if (!st) return SGRPC_STATUS_RESOURCE_EXHAUSTED;
    memset(st, 0, sizeof(*st));
    sgrpc_server_call_set_user_data(call, st);
  }
  p = rpc_malloc(&r->mem, sizeof(*p) + len);
  if (!p) return SGRPC_STATUS_RESOURCE_EXHAUSTED;
  p->next = NULL;
  p->len = len;
  pack(q, (uint8_t *)(p + 1));
  if (st->tail) st->tail->next = p;
  else st->head = p;
  st->tail = p;
  st->bytes += len;
  return 0;
}

static void refl_on_close(sgrpc_server_call *call, const sgrpc_status_info *status, void *ud) {
  refl_call *st = sgrpc_server_call_get_user_data(call);
  (void)status;
  if (st) refl_call_free((sgrpc_reflection *)ud, st);
}

/* ------------------------------------------------------------------ */
/* The two protocol versions (same messages, different packages)       */
/* ------------------------------------------------------------------ */

#define RT(x) Grpc__Reflection__V1__##x
#define RF(x) grpc__reflection__v1__##x
#define RC(x) GRPC__REFLECTION__V1__##x
#define RN(x) x##_v1
#include "reflection_version.h"
#undef RT
#undef RF
#undef RC
#undef RN

#define RT(x) Grpc__Reflection__V1alpha__##x
#define RF(x) grpc__reflection__v1alpha__##x
#define RC(x) GRPC__REFLECTION__V1ALPHA__##x
#define RN(x) x##_v1alpha
#include "reflection_version.h"
#undef RT
#undef RF
#undef RC
#undef RN

int sgrpc_reflection_register(sgrpc_reflection *r, sgrpc_router *router) {
  size_t k;
  int rv;
  if (!r || !router) return SGRPC_ERR_INVALID_ARGUMENT;
  rv = sgrpc_reflection_add_service(r, &grpc__reflection__v1__server_reflection__sgrpc_service);
  if (rv == 0)
    rv = sgrpc_reflection_add_service(r,
                                      &grpc__reflection__v1alpha__server_reflection__sgrpc_service);
  if (rv == 0) rv = register_v1(r, router);
  if (rv == 0) rv = register_v1alpha(r, router);
  if (rv != 0) return rv;
  for (k = 0; k < r->n_routers; k++)
    if (r->routers[k].router == router) return reflection_sync(r);
  if (r->n_routers == SGRPC_REFLECTION_MAX_ROUTERS) return 0;
  r->routers[r->n_routers].router = router;
  r->routers[r->n_routers].synced = 0;
  r->n_routers++;
  /* Now, so that warnings come at start-up; later services come in with
   * the first request after they were registered. */
  return reflection_sync(r);
}
