/*
 * Wire helpers: base64 for -bin metadata, percent-encoding of
 * grpc-message, metadata key/value rules, HTTP/2 field validation.
 * Pure functions on caller-provided buffers; no allocation.
 */
#ifndef SG_WIRE_H
#define SG_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Length of the unpadded standard-alphabet base64 encoding of n bytes. */
size_t sg_b64_encoded_len(size_t n);
/* Writes the unpadded base64 of in[0..n) to out (sg_b64_encoded_len(n)
 * bytes, no NUL). Returns the number of bytes written. */
size_t sg_b64_encode(const uint8_t *in, size_t n, char *out);
/* Upper bound of decoded bytes for n encoded characters. */
size_t sg_b64_decoded_max(size_t n);
/* Decodes standard-alphabet base64, padded or unpadded, into out (at least
 * sg_b64_decoded_max(n) bytes). Returns 0 and sets *outlen, or -1 on a
 * character outside the alphabet, misplaced padding, or a length of 4k+1. */
int sg_b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen);

/* Percent-encoding of grpc-message: bytes outside 0x20-0x7E and '%' become
 * %XX (uppercase hex). */
size_t sg_pct_encoded_len(const char *s, size_t n);
size_t sg_pct_encode(const char *s, size_t n, char *out);
/* Worst-case decoded size for n input bytes (each invalid byte can become
 * the 3-byte U+FFFD). */
size_t sg_pct_decoded_max(size_t n);
/* Percent-decodes s (a '%' not followed by two hex digits is kept as is),
 * then replaces invalid UTF-8 sequences with U+FFFD. Never fails. out holds
 * sg_pct_decoded_max(n) bytes. Returns the decoded length. */
size_t sg_pct_decode(const char *s, size_t n, char *out);

/* Nonzero when k[0..n) is a legal gRPC metadata key: non-empty, every byte
 * in [0-9a-z-_.]. */
int sg_key_valid(const char *k, size_t n);
/* Nonzero when the key is reserved for the protocol (see sgrpc_md_check in
 * sgrpc.h for the list). */
int sg_key_reserved(const char *k, size_t n);
/* Nonzero when the key ends in "-bin". */
int sg_key_is_bin(const char *k, size_t n);
/* Nonzero when every byte is printable ASCII 0x20-0x7E. */
int sg_text_value_valid(const uint8_t *v, size_t n);

/* Received-field validation (the engine runs nghttp2 without its HTTP
 * messaging checks and applies these instead). A name is valid when it is
 * non-empty and made of lowercase RFC 7230 token characters, optionally
 * after one leading ':'. A value is valid when it has no NUL, CR or LF. */
int sg_h2_name_valid(const uint8_t *name, size_t n);
int sg_h2_value_valid(const uint8_t *v, size_t n);

#endif
