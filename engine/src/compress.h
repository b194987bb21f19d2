/*
 * Message compression for grpc-encoding: identity, gzip and deflate
 * (zlib). One deflate and one inflate stream per codec per connection,
 * created on first use and reset between messages, so steady-state
 * compression does not allocate.
 */
#ifndef SGRPC_COMPRESS_H
#define SGRPC_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct sgrpc_conn sgrpc_conn;

enum {
  SG_ENC_UNKNOWN = -1,
  SG_ENC_IDENTITY = 0,
  SG_ENC_GZIP = 1,
  SG_ENC_DEFLATE = 2,
  SG_ENC_COUNT = 3
};

/* The value sent in grpc-accept-encoding. */
#define SG_ACCEPT_ENCODING "identity,deflate,gzip"

/* Parses an encoding name (exact, lowercase). Empty or NULL is identity. */
int sg_enc_parse(const char *s, size_t n);
const char *sg_enc_name(int enc);
/* Nonzero when enc appears in a grpc-accept-encoding list. */
int sg_enc_accepted(const char *list, size_t n, int enc);

/* Appends the compression of in[0..n) to out. Returns 0, or -1 on no
 * memory or a zlib failure. */
int sg_compress(sgrpc_conn *c, int enc, const uint8_t *in, size_t n, sg_buf *out);

/* Appends the decompression of in[0..n) to out, refusing to produce more
 * than max bytes. Returns 0, -1 (no memory), -2 (corrupt input), or -3
 * (larger than max: stopped before allocating more than max). */
int sg_decompress(sgrpc_conn *c, int enc, const uint8_t *in, size_t n, size_t max,
                  sg_buf *out);

/* Frees the connection's zlib streams. */
void sg_compress_free(sgrpc_conn *c);

#endif
