/*
 * sgrpc-trace --descriptor-set: messages decoded as protobuf, best
 * effort, with the types of a FileDescriptorSet (protoc
 * --descriptor_set_out). Parsed with protobuf-c's descriptor.proto
 * bindings; the message bytes are walked by hand (protobuf-c cannot
 * unpack a message it has no generated code for).
 */
#include "pbdecode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <google/protobuf/descriptor.pb-c.h>

typedef Google__Protobuf__DescriptorProto msg_t;
typedef Google__Protobuf__FieldDescriptorProto field_t;
typedef Google__Protobuf__EnumDescriptorProto enum_t;

typedef struct named {
  char *name; /* full name with the leading dot: ".pkg.Msg" */
  const msg_t *msg;
  const enum_t *en;
} named;

struct pb_types {
  Google__Protobuf__FileDescriptorSet *set;
  named *types;
  size_t ntypes, cap;
};

static int add_type(pb_types *t, const char *scope, const char *name, const msg_t *m,
                    const enum_t *e) {
  size_t n = strlen(scope) + strlen(name) + 2;
  named *nt;
  if (t->ntypes == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 32;
    nt = realloc(t->types, cap * sizeof(*nt));
    if (!nt) return -1;
    t->types = nt;
    t->cap = cap;
  }
  nt = &t->types[t->ntypes];
  nt->name = malloc(n);
  if (!nt->name) return -1;
  snprintf(nt->name, n, "%s.%s", scope, name);
  nt->msg = m;
  nt->en = e;
  t->ntypes++;
  return 0;
}

static int add_msg(pb_types *t, const char *scope, const msg_t *m) {
  size_t i;
  char *inner;
  size_t n = strlen(scope) + strlen(m->name) + 2;
  if (add_type(t, scope, m->name, m, NULL) != 0) return -1;
  inner = malloc(n);
  if (!inner) return -1;
  snprintf(inner, n, "%s.%s", scope, m->name);
  for (i = 0; i < m->n_nested_type; i++)
    if (add_msg(t, inner, m->nested_type[i]) != 0) break;
  for (i = 0; i < m->n_enum_type; i++)
    if (add_type(t, inner, m->enum_type[i]->name, NULL, m->enum_type[i]) != 0) break;
  free(inner);
  return 0;
}

pb_types *pb_types_load(const uint8_t *data, size_t len) {
  pb_types *t = calloc(1, sizeof(*t));
  size_t f, i;
  if (!t) return NULL;
  t->set = google__protobuf__file_descriptor_set__unpack(NULL, len, data);
  if (!t->set) {
    free(t);
    return NULL;
  }
  for (f = 0; f < t->set->n_file; f++) {
    const Google__Protobuf__FileDescriptorProto *fd = t->set->file[f];
    char scope[512];
    snprintf(scope, sizeof(scope), "%s%s", fd->package && *fd->package ? "." : "",
             fd->package ? fd->package : "");
    for (i = 0; i < fd->n_message_type; i++) add_msg(t, scope, fd->message_type[i]);
    for (i = 0; i < fd->n_enum_type; i++)
      add_type(t, scope, fd->enum_type[i]->name, NULL, fd->enum_type[i]);
  }
  return t;
}

void pb_types_free(pb_types *t) {
  size_t i;
  if (!t) return;
  for (i = 0; i < t->ntypes; i++) free(t->types[i].name);
  free(t->types);
  google__protobuf__file_descriptor_set__free_unpacked(t->set, NULL);
  free(t);
}

static const named *find(const pb_types *t, const char *name) {
  size_t i;
  if (!name) return NULL;
  for (i = 0; i < t->ntypes; i++)
    if (strcmp(t->types[i].name, name) == 0) return &t->types[i];
  return NULL;
}

const char *pb_method_type(const pb_types *t, const char *path, size_t path_len, int request) {
  size_t f, s, m;
  for (f = 0; f < t->set->n_file; f++) {
    const Google__Protobuf__FileDescriptorProto *fd = t->set->file[f];
    for (s = 0; s < fd->n_service; s++) {
      const Google__Protobuf__ServiceDescriptorProto *sv = fd->service[s];
      for (m = 0; m < sv->n_method; m++) {
        char want[600];
        int n = snprintf(want, sizeof(want), "/%s%s%s/%s", fd->package ? fd->package : "",
                         fd->package && *fd->package ? "." : "", sv->name, sv->method[m]->name);
        if (n > 0 && (size_t)n == path_len && memcmp(want, path, path_len) == 0)
          return request ? sv->method[m]->input_type : sv->method[m]->output_type;
      }
    }
  }
  return NULL;
}

/* A varint at *off; -1 when cut short. */
static int rd_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v) {
  uint64_t x = 0;
  unsigned sh = 0;
  while (*off < len && sh < 64) {
    uint8_t b = p[(*off)++];
    x |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
    sh += 7;
  }
  return -1;
}

static void indent(const char *lead, int depth) {
  int i;
  printf("%s", lead);
  for (i = 0; i < depth; i++) printf("  ");
}

static void print_text(const uint8_t *s, size_t n) {
  size_t i;
  putchar('"');
  for (i = 0; i < n; i++) {
    if (s[i] == '"' || s[i] == '\\') printf("\\%c", s[i]);
    else if (s[i] < 0x20 || s[i] > 0x7e) printf("\\x%02x", s[i]);
    else putchar(s[i]);
  }
  putchar('"');
}

static void print_hex(const uint8_t *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) printf("%02x", s[i]);
}

static int is_varint_type(int type) {
  switch (type) {
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64:
    return 1;
  default:
    return 0;
  }
}

/* One scalar held in a varint, as its declared type says. */
static void print_varint(const pb_types *t, const field_t *fd, uint64_t v) {
  switch (fd ? (int)fd->type : 0) {
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
    printf("%d", (int32_t)(uint32_t)v);
    break;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64:
    printf("%lld", (long long)(int64_t)v);
    break;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32:
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64:
    printf("%lld", (long long)((int64_t)(v >> 1) ^ -(int64_t)(v & 1)));
    break;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL:
    printf("%s", v ? "true" : "false");
    break;
  case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM: {
    const named *e = find(t, fd->type_name);
    size_t i;
    if (e && e->en)
      for (i = 0; i < e->en->n_value; i++)
        if ((int64_t)e->en->value[i]->number == (int64_t)(int32_t)(uint32_t)v) {
          printf("%s", e->en->value[i]->name);
          return;
        }
    printf("%d", (int32_t)(uint32_t)v);
    break;
  }
  default:
    printf("%llu", (unsigned long long)v);
    break;
  }
}

/* A field's name is printed, its value not yet: a failure ends the line. */
static int line_open;

static int decode(const pb_types *t, const msg_t *m, const uint8_t *p, size_t len,
                  const char *lead, int depth) {
  size_t off = 0;
  if (depth > 32) return -1;
  while (off < len) {
    uint64_t key, v;
    const field_t *fd = NULL;
    size_t i;
    int wt;
    uint32_t num;
    if (rd_varint(p, len, &off, &key) != 0) return -1;
    wt = (int)(key & 7);
    num = (uint32_t)(key >> 3);
    if (num == 0) return -1;
    for (i = 0; m && i < m->n_field; i++)
      if ((uint32_t)m->field[i]->number == num) fd = m->field[i];
    indent(lead, depth);
    if (fd) printf("%s: ", fd->name);
    else printf("%u: ", num);
    line_open = 1;
    switch (wt) {
    case 0:
      if (rd_varint(p, len, &off, &v) != 0) return -1;
      print_varint(t, fd, v);
      putchar('\n');
      break;
    case 1:
      if (len - off < 8) return -1;
      {
        uint64_t x = 0;
        int k;
        for (k = 7; k >= 0; k--) x = x << 8 | p[off + (size_t)k];
        if (fd && fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE) {
          double d;
          memcpy(&d, &x, 8);
          printf("%g\n", d);
        } else if (fd && fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64) {
          printf("%lld\n", (long long)(int64_t)x);
        } else {
          printf("%llu\n", (unsigned long long)x);
        }
      }
      off += 8;
      break;
    case 5:
      if (len - off < 4) return -1;
      {
        uint32_t x = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                     (uint32_t)p[off + 3] << 24;
        if (fd && fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT) {
          float f;
          memcpy(&f, &x, 4);
          printf("%g\n", (double)f);
        } else if (fd && fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32) {
          printf("%d\n", (int32_t)x);
        } else {
          printf("%u\n", x);
        }
      }
      off += 4;
      break;
    case 2: {
      const uint8_t *b;
      if (rd_varint(p, len, &off, &v) != 0 || v > len - off) return -1;
      b = p + off;
      off += (size_t)v;
      if (fd && fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING) {
        print_text(b, (size_t)v);
        putchar('\n');
      } else if (fd && fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE) {
        const named *sub = find(t, fd->type_name);
        printf("{\n");
        line_open = 0;
        if (decode(t, sub ? sub->msg : NULL, b, (size_t)v, lead, depth + 1) != 0) return -1;
        indent(lead, depth);
        printf("}\n");
      } else if (fd && is_varint_type((int)fd->type)) { /* packed */
        size_t o = 0;
        int first = 1;
        putchar('[');
        while (o < (size_t)v) {
          uint64_t x;
          if (rd_varint(b, (size_t)v, &o, &x) != 0) return -1;
          printf("%s", first ? "" : ", ");
          first = 0;
          print_varint(t, fd, x);
        }
        printf("]\n");
      } else {
        print_hex(b, (size_t)v);
        putchar('\n');
      }
      break;
    }
    default:
      return -1;
    }
    line_open = 0;
  }
  return 0;
}

void pb_print(const pb_types *t, const char *type_name, const uint8_t *data, size_t len,
              const char *lead) {
  const named *n = find(t, type_name);
  if (!n || !n->msg) return;
  printf("%s%s {\n", lead, type_name + 1);
  line_open = 0;
  if (decode(t, n->msg, data, len, lead, 1) != 0) {
    if (line_open) printf("?\n");
    printf("%s  (the rest is not a valid %s)\n", lead, type_name + 1);
  }
  printf("%s}\n", lead);
}
