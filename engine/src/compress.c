#include "compress.h"

#include <string.h>
#include <zlib.h>

#include "conn.h"

int sg_enc_parse(const char *s, size_t n) {
  if (!s || n == 0) return SG_ENC_IDENTITY;
  if (n == SG_LITLEN("identity") && memcmp(s, SG_LIT("identity")) == 0) return SG_ENC_IDENTITY;
  if (n == SG_LITLEN("gzip") && memcmp(s, SG_LIT("gzip")) == 0) return SG_ENC_GZIP;
  if (n == SG_LITLEN("deflate") && memcmp(s, SG_LIT("deflate")) == 0) return SG_ENC_DEFLATE;
  return SG_ENC_UNKNOWN;
}

const char *sg_enc_name(int enc) {
  switch (enc) {
  case SG_ENC_GZIP: return "gzip";
  case SG_ENC_DEFLATE: return "deflate";
  default: return "identity";
  }
}

int sg_enc_accepted(const char *list, size_t n, int enc) {
  size_t i = 0;
  if (enc == SG_ENC_IDENTITY) return 1;
  while (i < n) {
    size_t start, end;
    while (i < n && (list[i] == ' ' || list[i] == ',')) i++;
    start = i;
    while (i < n && list[i] != ',') i++;
    end = i;
    while (end > start && list[end - 1] == ' ') end--;
    if (end > start && sg_enc_parse(list + start, end - start) == enc) return 1;
  }
  return 0;
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
  sgrpc_conn *c = opaque;
  if (size && items > SIZE_MAX / size) return Z_NULL;
  return sg_malloc(c, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p) { sg_free(opaque, p); }

static int window_bits(int enc) { return enc == SG_ENC_GZIP ? 15 + 16 : 15; }

static z_stream *deflater(sgrpc_conn *c, int enc) {
  z_stream *z = c->zdef[enc];
  if (z) {
    if (deflateReset(z) != Z_OK) return NULL;
    return z;
  }
  z = sg_malloc(c, sizeof(*z));
  if (!z) return NULL;
  memset(z, 0, sizeof(*z));
  z->zalloc = z_alloc;
  z->zfree = z_free;
  z->opaque = c;
  if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits(enc), 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    sg_free(c, z);
    return NULL;
  }
  c->zdef[enc] = z;
  return z;
}

static z_stream *inflater(sgrpc_conn *c, int enc) {
  z_stream *z = c->zinf[enc];
  if (z) {
    if (inflateReset(z) != Z_OK) return NULL;
    return z;
  }
  z = sg_malloc(c, sizeof(*z));
  if (!z) return NULL;
  memset(z, 0, sizeof(*z));
  z->zalloc = z_alloc;
  z->zfree = z_free;
  z->opaque = c;
  if (inflateInit2(z, window_bits(enc)) != Z_OK) {
    sg_free(c, z);
    return NULL;
  }
  c->zinf[enc] = z;
  return z;
}

int sg_compress(sgrpc_conn *c, int enc, const uint8_t *in, size_t n, sg_buf *out) {
  z_stream *z;
  int rv;
  if (enc <= SG_ENC_IDENTITY || enc >= SG_ENC_COUNT || n > UINT32_MAX) return -1;
  z = deflater(c, enc);
  if (!z) return -1;
  if (sg_buf_reserve(&c->mem, out, deflateBound(z, (uLong)n)) != 0) return -1;
  z->next_in = (Bytef *)(uintptr_t)in;
  z->avail_in = (uInt)n;
  z->next_out = out->p + out->len;
  z->avail_out = (uInt)(out->cap - out->len > UINT32_MAX ? UINT32_MAX : out->cap - out->len);
  rv = deflate(z, Z_FINISH);
  if (rv != Z_STREAM_END) return -1;
  out->len = (size_t)(z->next_out - out->p);
  return 0;
}

int sg_decompress(sgrpc_conn *c, int enc, const uint8_t *in, size_t n, size_t max,
                  sg_buf *out) {
  z_stream *z;
  size_t start = out->len;
  if (enc <= SG_ENC_IDENTITY || enc >= SG_ENC_COUNT || n > UINT32_MAX) return -2;
  z = inflater(c, enc);
  if (!z) return -1;
  z->next_in = (Bytef *)(uintptr_t)in;
  z->avail_in = (uInt)n;
  for (;;) {
    size_t produced = out->len - start, room, step;
    int rv;
    /* Grow by what the input suggests, never past max + 1: a bomb is
     * stopped after at most max bytes of output. */
    step = n * 4 < 4096 ? 4096 : n * 4;
    if (step > max + 1 - produced) step = max + 1 - produced;
    if (step == 0) return -3;
    if (sg_buf_reserve(&c->mem, out, step) != 0) return -1;
    room = out->cap - out->len;
    if (room > max + 1 - produced) room = max + 1 - produced;
    if (room > UINT32_MAX) room = UINT32_MAX;
    z->next_out = out->p + out->len;
    z->avail_out = (uInt)room;
    rv = inflate(z, Z_NO_FLUSH);
    out->len = (size_t)(z->next_out - out->p);
    if (out->len - start > max) return -3;
    if (rv == Z_STREAM_END) {
      /* trailing bytes after the stream are corrupt input */
      return z->avail_in == 0 ? 0 : -2;
    }
    if (rv == Z_MEM_ERROR) return -1;
    if (rv != Z_OK && rv != Z_BUF_ERROR) return -2;
    if (rv == Z_BUF_ERROR && z->avail_in == 0) return -2; /* truncated */
  }
}

void sg_compress_free(sgrpc_conn *c) {
  int i;
  for (i = 0; i < SG_ENC_COUNT; i++) {
    if (c->zdef[i]) {
      deflateEnd(c->zdef[i]);
      sg_free(c, c->zdef[i]);
      c->zdef[i] = NULL;
    }
    if (c->zinf[i]) {
      inflateEnd(c->zinf[i]);
      sg_free(c, c->zinf[i]);
      c->zinf[i] = NULL;
    }
  }
}
