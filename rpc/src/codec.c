/*
 * Codecs: protobuf-c and raw bytes.
 */
#include <sgrpc/protobuf.h>

#include <stdlib.h>
#include <string.h>

/* ---- allocation through an optional sgrpc_mem ---- */

/* mem NULL is libc (sgrpc_protobuf_allocator's contract); otherwise a
 * complete allocator, as sgrpc_mem_resolve made every object's. */
static void *mem_alloc(const sgrpc_mem *mem, size_t n) {
  if (mem) return mem->malloc(n ? n : 1, mem->user_data);
  return malloc(n ? n : 1);
}

static void mem_release(const sgrpc_mem *mem, void *p) {
  if (!p) return;
  if (mem) mem->free(p, mem->user_data);
  else free(p);
}

static void *pb_alloc(void *ad, size_t n) { return mem_alloc(ad, n); }
static void pb_free(void *ad, void *p) { mem_release(ad, p); }

void sgrpc_protobuf_allocator(ProtobufCAllocator *out, const sgrpc_mem *mem) {
  out->alloc = pb_alloc;
  out->free = pb_free;
  /* protobuf-c wants a non-const pointer; it only hands it back to us */
  out->allocator_data = (void *)(uintptr_t)mem;
}

/* ---- protobuf-c ---- */

static int pb_check(const void *type, const void *msg) {
  const ProtobufCMessage *m = msg;
  return m && m->descriptor == type;
}

static size_t pb_packed_size(const void *type, const void *msg) {
  (void)type;
  return protobuf_c_message_get_packed_size(msg);
}

static size_t pb_pack(const void *type, const void *msg, uint8_t *out) {
  (void)type;
  return protobuf_c_message_pack(msg, out);
}

static void *pb_unpack(const void *type, const uint8_t *data, size_t len,
                       const sgrpc_mem *mem) {
  ProtobufCAllocator a;
  sgrpc_protobuf_allocator(&a, mem);
  return protobuf_c_message_unpack(type, &a, len, data);
}

static void pb_free_msg(const void *type, void *msg, const sgrpc_mem *mem) {
  ProtobufCAllocator a;
  (void)type;
  if (!msg) return;
  sgrpc_protobuf_allocator(&a, mem);
  protobuf_c_message_free_unpacked(msg, &a);
}

const sgrpc_codec sgrpc_codec_protobuf = {"proto", pb_check, pb_packed_size,
                                          pb_pack, pb_unpack, pb_free_msg};

/* ---- raw bytes ---- */

static int raw_check(const void *type, const void *msg) {
  const sgrpc_bytes *b = msg;
  (void)type;
  return b && (b->data || b->len == 0);
}

static size_t raw_packed_size(const void *type, const void *msg) {
  (void)type;
  return ((const sgrpc_bytes *)msg)->len;
}

static size_t raw_pack(const void *type, const void *msg, uint8_t *out) {
  const sgrpc_bytes *b = msg;
  (void)type;
  if (b->len) memcpy(out, b->data, b->len);
  return b->len;
}

/* One block: the sgrpc_bytes header, then the bytes. */
static void *raw_unpack(const void *type, const uint8_t *data, size_t len,
                        const sgrpc_mem *mem) {
  sgrpc_bytes *b;
  (void)type;
  if (len > SIZE_MAX - sizeof(*b)) return NULL;
  b = mem_alloc(mem, sizeof(*b) + len);
  if (!b) return NULL;
  if (len) memcpy(b + 1, data, len);
  b->data = (const uint8_t *)(b + 1);
  b->len = len;
  return b;
}

static void raw_free_msg(const void *type, void *msg, const sgrpc_mem *mem) {
  (void)type;
  mem_release(mem, msg);
}

const sgrpc_codec sgrpc_codec_raw = {"proto", raw_check, raw_packed_size,
                                     raw_pack, raw_unpack, raw_free_msg};
