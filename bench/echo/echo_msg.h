/*
 * bench.EchoMsg { bytes payload = 1; } on the wire, without a protobuf
 * runtime: the echo servers and the load generator only need to check a
 * message and to build one.
 */
#ifndef SGRPC_BENCH_ECHO_MSG_H
#define SGRPC_BENCH_ECHO_MSG_H

#include <stddef.h>
#include <stdint.h>

/* Checks that buf[0..len) is a well-formed EchoMsg whose fields are all
 * known or skippable, and stores the payload's length in *payload_len.
 * Returns 0, or -1 for a malformed message. A proto3 parser accepts the
 * same set of inputs for this schema. */
static inline int echo_msg_check(const uint8_t *buf, size_t len, size_t *payload_len) {
  size_t off = 0;
  *payload_len = 0;
  while (off < len) {
    uint64_t key = 0, v = 0;
    int shift = 0;
    do { /* field key */
      if (off >= len || shift > 63) return -1;
      key |= (uint64_t)(buf[off] & 0x7f) << shift;
      shift += 7;
    } while (buf[off++] & 0x80);
    if ((key >> 3) == 0) return -1;
    switch (key & 7) {
    case 0: /* varint */
    case 2: /* length-delimited */
      shift = 0;
      do {
        if (off >= len || shift > 63) return -1;
        v |= (uint64_t)(buf[off] & 0x7f) << shift;
        shift += 7;
      } while (buf[off++] & 0x80);
      if ((key & 7) == 2) {
        if (v > len - off) return -1;
        off += (size_t)v;
        if ((key >> 3) == 1) *payload_len = (size_t)v;
      } else if ((key >> 3) == 1) {
        return -1; /* field 1 must be bytes */
      }
      break;
    case 1:
      if (len - off < 8 || (key >> 3) == 1) return -1;
      off += 8;
      break;
    case 5:
      if (len - off < 4 || (key >> 3) == 1) return -1;
      off += 4;
      break;
    default:
      return -1;
    }
  }
  return 0;
}

/* Writes the EchoMsg header for a payload of n bytes (tag 0x0a, varint
 * length; none for an empty payload, as proto3 omits default fields) into
 * out (at least 11 bytes). Returns its length. */
static inline size_t echo_msg_header(size_t n, uint8_t *out) {
  size_t k = 0;
  if (n == 0) return 0;
  out[k++] = 0x0a;
  do {
    out[k++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>= 7;
  } while (n);
  return k;
}

#endif
