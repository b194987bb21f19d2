/*
 * Wire helpers: base64 for -bin metadata, percent-encoding of
 * grpc-message, metadata key/value rules, HTTP/2 field validation and
 * grpc-timeout. They run once per header field, so they are table-driven,
 * never allocate and never call the printf family.
 */
#include <sgrpc/sgrpc.h>

#include <string.h>

#include "wire.h"

/* ------------------------------------------------------------------ */
/* Character tables                                                    */
/* ------------------------------------------------------------------ */

/* Bits of char_class. */
#define CC_KEY 0x01   /* gRPC metadata key byte: [0-9a-z-_.] */
#define CC_TCHAR 0x02 /* lowercase RFC 7230 tchar */
#define CC_PCT 0x04   /* byte that grpc-message percent-encodes */
#define CC_VBAD 0x08  /* NUL, LF or CR: never in an HTTP/2 field value */

/* clang-format off */
static const uint8_t char_class[256] = {
    12,  4,  4,  4,  4,  4,  4,  4,  4,  4, 12,  4,  4, 12,  4,  4, /* 00 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* 10 */
     0,  2,  0,  2,  2,  6,  2,  2,  0,  0,  2,  2,  0,  3,  3,  0, /* 20 */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  0,  0,  0,  0,  0,  0, /* 30 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 40 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  3, /* 50 */
     2,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3, /* 60 */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  0,  2,  0,  2,  4, /* 70 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* 80 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* 90 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* A0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* B0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* C0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* D0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* E0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* F0 */
};

/* Base64 digit values; 64 marks a byte outside the alphabet. */
static const uint8_t b64_value[256] = {
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* 00 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* 10 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64, 64, 63, /* 20 */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64, /* 30 */
    64,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, /* 40 */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 64, /* 50 */
    64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 60 */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64, /* 70 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* 80 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* 90 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* A0 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* B0 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* C0 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* D0 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* E0 */
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, /* F0 */
};

/* Hex digit values, either case; 16 marks a non-hex byte. */
static const uint8_t hex_value[256] = {
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* 00 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* 10 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* 20 */
     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 16, 16, 16, 16, 16, 16, /* 30 */
    16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* 40 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* 50 */
    16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* 60 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* 70 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* 80 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* 90 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* A0 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* B0 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* C0 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* D0 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* E0 */
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, /* F0 */
};

/* UTF-8 lead byte classes, an index into utf8_seq: 0 is ASCII, 1 can
 * never start a well-formed sequence (continuation bytes, C0, C1,
 * F5-FF). */
static const uint8_t utf8_lead[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 10 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 20 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 30 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 40 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 50 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 60 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 70 */
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1, /* 80 */
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1, /* 90 */
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1, /* A0 */
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1, /* B0 */
     1,  1,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2, /* C0 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2, /* D0 */
     3,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  5,  4,  4, /* E0 */
     6,  7,  7,  7,  8,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1, /* F0 */
};
/* clang-format on */

/* Continuation count and allowed range of the second byte for each
 * utf8_lead class (Unicode 15, Table 3-7). The narrowed second-byte ranges
 * are what reject overlongs (E0, F0), surrogates (ED) and code points
 * above U+10FFFF (F4). */
static const struct {
  uint8_t need, lo, hi;
} utf8_seq[9] = {
    {0, 0, 0},       {0, 0, 0},       {1, 0x80, 0xBF},
    {2, 0xA0, 0xBF}, {2, 0x80, 0xBF}, {2, 0x80, 0x9F},
    {3, 0x90, 0xBF}, {3, 0x80, 0xBF}, {3, 0x80, 0x8F},
};

static const char b64_alphabet[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const char hex_upper[17] = "0123456789ABCDEF";

/* ------------------------------------------------------------------ */
/* Base64                                                              */
/* ------------------------------------------------------------------ */

size_t sg_b64_encoded_len(size_t n) {
  return n / 3 * 4 + (n % 3 != 0 ? n % 3 + 1 : 0);
}

size_t sg_b64_encode(const uint8_t *in, size_t n, char *out) {
  char *o = out;
  size_t i = 0;
  uint32_t v;

  for (; n - i >= 3; i += 3) {
    v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    o[0] = b64_alphabet[v >> 18];
    o[1] = b64_alphabet[(v >> 12) & 63];
    o[2] = b64_alphabet[(v >> 6) & 63];
    o[3] = b64_alphabet[v & 63];
    o += 4;
  }
  switch (n - i) {
  case 2:
    v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    o[0] = b64_alphabet[v >> 18];
    o[1] = b64_alphabet[(v >> 12) & 63];
    o[2] = b64_alphabet[(v >> 6) & 63];
    o += 3;
    break;
  case 1:
    v = (uint32_t)in[i] << 16;
    o[0] = b64_alphabet[v >> 18];
    o[1] = b64_alphabet[(v >> 12) & 63];
    o += 2;
    break;
  default:
    break;
  }
  return (size_t)(o - out);
}

size_t sg_b64_decoded_max(size_t n) { return n / 4 * 3 + n % 4 * 3 / 4; }

/*
 * Padding is accepted only as the last one or two characters of an input
 * whose length is a multiple of 4; any other '=' is outside the alphabet.
 *
 * The unused low bits of the last character (4 bits for 2 trailing
 * characters, 2 for 3) are ignored rather than required to be zero:
 * "QQ==" and "QR==" both decode to "A". Go's StdEncoding would reject the
 * second; peers that produce it exist, and the decoded bytes are
 * unambiguous, so being lenient costs nothing.
 */
int sg_b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen) {
  const unsigned char *s = (const unsigned char *)in;
  uint8_t *o = out;
  size_t i, rem, full;
  uint32_t a, b, c, d, v;

  if (n != 0 && n % 4 == 0 && s[n - 1] == '=') {
    n--;
    if (s[n - 1] == '=')
      n--;
  }
  rem = n % 4;
  if (rem == 1)
    return -1;
  full = n - rem;
  for (i = 0; i < full; i += 4) {
    a = b64_value[s[i]];
    b = b64_value[s[i + 1]];
    c = b64_value[s[i + 2]];
    d = b64_value[s[i + 3]];
    if ((a | b | c | d) & 64)
      return -1;
    v = a << 18 | b << 12 | c << 6 | d;
    o[0] = (uint8_t)(v >> 16);
    o[1] = (uint8_t)(v >> 8);
    o[2] = (uint8_t)v;
    o += 3;
  }
  if (rem != 0) {
    a = b64_value[s[i]];
    b = b64_value[s[i + 1]];
    c = rem == 3 ? b64_value[s[i + 2]] : 0;
    if ((a | b | c) & 64)
      return -1;
    v = a << 18 | b << 12 | c << 6;
    *o++ = (uint8_t)(v >> 16);
    if (rem == 3)
      *o++ = (uint8_t)(v >> 8);
  }
  *outlen = (size_t)(o - out);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Percent-encoding (grpc-message)                                     */
/* ------------------------------------------------------------------ */

size_t sg_pct_encoded_len(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i, len = n;

  for (i = 0; i < n; i++)
    if (char_class[p[i]] & CC_PCT)
      len += 2;
  return len;
}

size_t sg_pct_encode(const char *s, size_t n, char *out) {
  const unsigned char *p = (const unsigned char *)s;
  char *o = out;
  size_t i;

  for (i = 0; i < n; i++) {
    unsigned c = p[i];
    if (char_class[c] & CC_PCT) {
      o[0] = '%';
      o[1] = hex_upper[c >> 4];
      o[2] = hex_upper[c & 15];
      o += 3;
    } else {
      *o++ = (char)c;
    }
  }
  return (size_t)(o - out);
}

size_t sg_pct_decoded_max(size_t n) { return 3 * n; }

/* Reads the percent-decoded byte starting at s[i] (i < n) into *c and
 * returns how many input bytes it spans: 3 for %XX, else 1 (a '%' without
 * two hex digits after it is an ordinary byte). */
static size_t pct_byte(const unsigned char *s, size_t n, size_t i,
                       unsigned *c) {
  if (s[i] == '%' && n - i > 2) {
    unsigned hi = hex_value[s[i + 1]], lo = hex_value[s[i + 2]];
    if (((hi | lo) & 16) == 0) {
      *c = hi << 4 | lo;
      return 3;
    }
  }
  *c = s[i];
  return 1;
}

/*
 * One pass: percent-decode on the fly and validate UTF-8 with one
 * sequence of lookahead. An ill-formed sequence is replaced following
 * Unicode's "substitution of maximal subparts" (the WHATWG decoder
 * behaves the same): the longest prefix of a well-formed sequence becomes
 * one U+FFFD and the byte that broke it is read again as a new start, so
 * a valid character after a truncated sequence is never lost.
 *
 * Output bound: a well-formed sequence is copied byte for byte, and every
 * U+FFFD (3 bytes) consumes at least one decoded byte, each of which
 * consumed at least one input byte; so the output never exceeds 3 * n.
 */
size_t sg_pct_decode(const char *s, size_t n, char *out) {
  const unsigned char *p = (const unsigned char *)s;
  unsigned char *o = (unsigned char *)out;
  unsigned char seq[4];
  size_t i = 0, j, adv;
  unsigned c, d, cls, k, need, lo, hi;

  while (i < n) {
    c = p[i];
    if (c < 0x80 && c != '%') { /* the common case */
      *o++ = (unsigned char)c;
      i++;
      continue;
    }
    adv = pct_byte(p, n, i, &c);
    cls = utf8_lead[c];
    if (cls == 0) {
      *o++ = (unsigned char)c;
      i += adv;
      continue;
    }
    j = i + adv;
    need = utf8_seq[cls].need;
    lo = utf8_seq[cls].lo;
    hi = utf8_seq[cls].hi;
    seq[0] = (unsigned char)c;
    /* A byte that cannot lead (need == 0) skips the loop and fails. */
    for (k = 1; k <= need && j < n; k++) {
      adv = pct_byte(p, n, j, &d);
      if (d < lo || d > hi)
        break;
      seq[k] = (unsigned char)d;
      j += adv;
      lo = 0x80;
      hi = 0xBF;
    }
    if (need != 0 && k > need) {
      memcpy(o, seq, k);
      o += k;
    } else {
      o[0] = 0xEF;
      o[1] = 0xBF;
      o[2] = 0xBD;
      o += 3;
    }
    i = j;
  }
  return (size_t)(o - (unsigned char *)out);
}

/* ------------------------------------------------------------------ */
/* Metadata keys and values                                            */
/* ------------------------------------------------------------------ */

int sg_key_valid(const char *k, size_t n) {
  const unsigned char *p = (const unsigned char *)k;
  size_t i;

  if (n == 0)
    return 0;
  for (i = 0; i < n; i++)
    if (!(char_class[p[i]] & CC_KEY))
      return 0;
  return 1;
}

#define KEY_IS(k, lit) (memcmp((k), (lit), sizeof(lit) - 1) == 0)

int sg_key_reserved(const char *k, size_t n) {
  if (n == 0)
    return 0;
  if (k[0] == ':')
    return 1;
  if (n >= 5 && KEY_IS(k, "grpc-"))
    /* gRFC A6's two retry keys are metadata the rpc layer (client) and
     * servers (pushback) send like any other */
    return !((n == 26 && KEY_IS(k, "grpc-previous-rpc-attempts")) ||
             (n == 22 && KEY_IS(k, "grpc-retry-pushback-ms")));
  switch (n) {
  case 2:
    return KEY_IS(k, "te");
  case 4:
    return KEY_IS(k, "host");
  case 7:
    return KEY_IS(k, "upgrade");
  case 10:
    return KEY_IS(k, "user-agent") || KEY_IS(k, "connection") ||
           KEY_IS(k, "keep-alive");
  case 12:
    return KEY_IS(k, "content-type");
  case 16:
    return KEY_IS(k, "proxy-connection");
  case 17:
    return KEY_IS(k, "transfer-encoding");
  default:
    return 0;
  }
}

int sg_key_is_bin(const char *k, size_t n) {
  return n >= 4 && KEY_IS(k + n - 4, "-bin");
}

int sg_text_value_valid(const uint8_t *v, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if ((uint8_t)(v[i] - 0x20) > 0x7E - 0x20)
      return 0;
  return 1;
}

SGRPC_EXTERN int sgrpc_md_check(const sgrpc_md *md) {
  if (md == NULL || md->key == NULL ||
      (md->value == NULL && md->value_len != 0))
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (!sg_key_valid(md->key, md->key_len) ||
      sg_key_reserved(md->key, md->key_len))
    return SGRPC_ERR_BAD_METADATA;
  if (!sg_key_is_bin(md->key, md->key_len) &&
      !sg_text_value_valid(md->value, md->value_len))
    return SGRPC_ERR_BAD_METADATA;
  return 0;
}

/* ------------------------------------------------------------------ */
/* HTTP/2 received fields                                              */
/* ------------------------------------------------------------------ */

int sg_h2_name_valid(const uint8_t *name, size_t n) {
  size_t i = 0;
  uint8_t ok = CC_TCHAR;

  if (n == 0)
    return 0;
  if (name[0] == ':') {
    if (n == 1)
      return 0;
    i = 1;
  }
  /* no branch per byte: the classes of all bytes are and-ed */
  for (; i < n; i++)
    ok &= char_class[name[i]];
  return (ok & CC_TCHAR) != 0;
}

/* Nonzero when some byte of x is below 0x0e, where NUL, LF and CR are
 * (exact as a yes/no answer: the standard "has less than" word test). */
#define WORD_HAS_LOW(x)                                                        \
  (((x) - UINT64_C(0x0e0e0e0e0e0e0e0e)) & ~(x) & UINT64_C(0x8080808080808080))

static int bytes_have_vbad(const uint8_t *v, size_t n) {
  uint8_t bad = 0;
  size_t i;
  for (i = 0; i < n; i++)
    bad |= char_class[v[i]];
  return (bad & CC_VBAD) != 0;
}

/* Nonzero when one of the 8 bytes at p is NUL, LF or CR. Text never has
 * bytes below 0x0e but for TAB: only then are the bytes looked at. */
static int word_has_vbad(const uint8_t *p) {
  uint64_t x;
  memcpy(&x, p, 8);
  return WORD_HAS_LOW(x) != 0 && bytes_have_vbad(p, 8);
}

int sg_h2_value_valid(const uint8_t *v, size_t n) {
  size_t i;

  if (n >= 8) {
    /* 8 bytes at a time; the last word overlaps the one before it */
    for (i = 0; i + 8 < n; i += 8)
      if (word_has_vbad(v + i))
        return 0;
    return !word_has_vbad(v + n - 8);
  }
  return !bytes_have_vbad(v, n);
}

/* ------------------------------------------------------------------ */
/* grpc-timeout                                                        */
/* ------------------------------------------------------------------ */

#define TIMEOUT_MAX_VALUE 99999999 /* 8 digits */
#define TIMEOUT_NUNITS 6

/* Coarsest first. */
static const struct {
  int64_t ns;
  char unit;
} timeout_units[TIMEOUT_NUNITS] = {
    {INT64_C(3600000000000), 'H'}, {INT64_C(60000000000), 'M'},
    {INT64_C(1000000000), 'S'},    {INT64_C(1000000), 'm'},
    {INT64_C(1000), 'u'},          {INT64_C(1), 'n'},
};

SGRPC_EXTERN int sgrpc_timeout_encode(int64_t ns, char *buf, size_t cap) {
  char digits[8];
  int64_t q = 0, unit_ns;
  size_t u, nd = 0, len = 0;
  char unit;

  if (ns < 0 || buf == NULL || cap < 10)
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (ns == 0) {
    buf[0] = '0';
    buf[1] = 'n';
    buf[2] = '\0';
    return 2;
  }
  /* An exact unit loses nothing; the coarsest one has the fewest digits. */
  for (u = 0; u < TIMEOUT_NUNITS; u++) {
    unit_ns = timeout_units[u].ns;
    q = ns / unit_ns;
    if (ns % unit_ns == 0 && q <= TIMEOUT_MAX_VALUE)
      break;
  }
  if (u == TIMEOUT_NUNITS) {
    /* No exact fit: the finest unit that fits, rounded up so the peer
     * never sees a shorter deadline than ours. */
    for (u = TIMEOUT_NUNITS; u-- > 0;) {
      unit_ns = timeout_units[u].ns;
      q = ns / unit_ns + (ns % unit_ns != 0);
      if (q <= TIMEOUT_MAX_VALUE)
        break;
    }
    /* Unreachable for int64 (INT64_MAX is ~2.6e6 hours) but kept so the
     * output can never exceed 8 digits. */
    if (q > TIMEOUT_MAX_VALUE) {
      u = 0;
      q = TIMEOUT_MAX_VALUE;
    }
  }
  unit = timeout_units[u].unit;
  do {
    digits[nd++] = (char)('0' + q % 10);
    q /= 10;
  } while (q != 0);
  while (nd != 0)
    buf[len++] = digits[--nd];
  buf[len++] = unit;
  buf[len] = '\0';
  return (int)len;
}

SGRPC_EXTERN int sgrpc_timeout_decode(const char *s, size_t len, int64_t *ns) {
  int64_t v = 0, unit_ns;
  size_t i;
  unsigned d;

  if (s == NULL || ns == NULL || len < 2 || len > 9)
    return SGRPC_ERR_INVALID_ARGUMENT;
  for (i = 0; i + 1 < len; i++) {
    d = (unsigned)(unsigned char)s[i] - (unsigned)'0';
    if (d > 9)
      return SGRPC_ERR_INVALID_ARGUMENT;
    v = v * 10 + (int64_t)d;
  }
  switch (s[len - 1]) {
  case 'H':
    unit_ns = INT64_C(3600000000000);
    break;
  case 'M':
    unit_ns = INT64_C(60000000000);
    break;
  case 'S':
    unit_ns = INT64_C(1000000000);
    break;
  case 'm':
    unit_ns = INT64_C(1000000);
    break;
  case 'u':
    unit_ns = INT64_C(1000);
    break;
  case 'n':
    unit_ns = 1;
    break;
  default:
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
  /* 8 digits of hours reach 3.6e20 ns, past INT64_MAX (~2562047 h):
   * saturate, as grpc-go does. INT64_MAX is also SGRPC_NEVER. */
  *ns = v > INT64_MAX / unit_ns ? INT64_MAX : v * unit_ns;
  return 0;
}
