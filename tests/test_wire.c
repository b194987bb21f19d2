/*
 * Unit tests of engine/src/wire.c: grpc-timeout, percent-encoding of
 * grpc-message, metadata key/value rules, base64 of -bin values, and
 * HTTP/2 received-field validation.
 */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <string.h>

#include <sgrpc/sgrpc.h>

#include "wire.h"

/* Deterministic PRNG (splitmix64) so failures reproduce. */
static uint64_t rng_state = UINT64_C(0x5eed5eed12345678);

static uint64_t rng_next(void) {
  uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static size_t rng_below(size_t n) { return (size_t)(rng_next() % n); }

/* ------------------------------------------------------------------ */
/* grpc-timeout                                                        */
/* ------------------------------------------------------------------ */

#define NS_H INT64_C(3600000000000)
#define NS_M INT64_C(60000000000)
#define NS_S INT64_C(1000000000)
#define NS_MS INT64_C(1000000)
#define NS_US INT64_C(1000)

static void expect_encode(int64_t ns, const char *want) {
  char buf[16];
  memset(buf, 'X', sizeof buf);
  int len = sgrpc_timeout_encode(ns, buf, sizeof buf);
  assert_int_equal(len, (int)strlen(want));
  assert_string_equal(buf, want);
}

static void expect_decode(const char *s, int64_t want) {
  int64_t ns = -42;
  assert_int_equal(sgrpc_timeout_decode(s, strlen(s), &ns), 0);
  assert_true(ns == want);
}

static void expect_decode_fails(const char *s, size_t len) {
  int64_t ns = -42;
  assert_int_equal(sgrpc_timeout_decode(s, len, &ns),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_true(ns == -42); /* untouched on failure */
}

static void test_timeout_encode_vectors(void **state) {
  (void)state;
  expect_encode(7 * NS_S, "7S");
  expect_encode(20 * NS_US, "20u");
  expect_encode(1500 * NS_MS, "1500m");
  expect_encode(100000000, "100m");
  expect_encode(123456789, "123457u"); /* no exact unit fits: round up */
  expect_encode(NS_H, "1H");
  expect_encode(5 * NS_H, "5H");
  expect_encode(NS_M, "1M");
  expect_encode(90 * NS_M, "90M"); /* exact in M, not in H */
  expect_encode(0, "0n");
  expect_encode(1, "1n");
  expect_encode(99999999, "99999999n");
  expect_encode(100000001, "100001u"); /* 9 digits of ns: round up */
  expect_encode(99999999 * NS_S, "99999999S");
  /* 99999999 s + 1 ns: rounding up in S gives 9 digits, so M it is. */
  expect_encode(99999999 * NS_S + 1, "1666667M");
  /* INT64_MAX ns is about 2562047.79 hours: rounded up. */
  expect_encode(INT64_MAX, "2562048H");
}

static void test_timeout_encode_errors(void **state) {
  char buf[16];
  (void)state;
  assert_int_equal(sgrpc_timeout_encode(-1, buf, sizeof buf),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_timeout_encode(INT64_MIN, buf, sizeof buf),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_timeout_encode(1, buf, 9), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_timeout_encode(1, NULL, 10),
                   SGRPC_ERR_INVALID_ARGUMENT);
  /* Exactly 10 bytes is enough for the longest value. */
  char ten[10];
  assert_int_equal(sgrpc_timeout_encode(99999999, ten, sizeof ten), 9);
  assert_string_equal(ten, "99999999n");
}

static void test_timeout_decode_vectors(void **state) {
  (void)state;
  expect_decode("7S", 7 * NS_S);
  expect_decode("5H", 5 * NS_H);
  expect_decode("3M", 3 * NS_M);
  expect_decode("250m", 250 * NS_MS);
  expect_decode("20u", 20 * NS_US);
  expect_decode("1n", 1);
  expect_decode("0n", 0);
  expect_decode("00000007S", 7 * NS_S); /* 8 digits, leading zeros */
  expect_decode("99999999n", 99999999);
  expect_decode("99999999M", 99999999 * NS_M); /* fits in int64 */
  /* 99999999 hours does not fit in int64 ns: saturates. */
  expect_decode("99999999H", INT64_MAX);
  expect_decode("2562047H", 2562047 * NS_H);
  expect_decode("2562048H", INT64_MAX);

  /* The length argument bounds the parse, not a NUL. */
  int64_t ns = 0;
  assert_int_equal(sgrpc_timeout_decode("12Sjunk", 3, &ns), 0);
  assert_true(ns == 12 * NS_S);
}

static void test_timeout_decode_rejects(void **state) {
  static const char *bad[] = {
      "123456789S", "",     "S",   "10",   "10x", "-1S", "1 S", "+1S",
      " 1S",        "1S ",  "1SS", "0x1S", "1:S", "/S",  "1s",  "1h",
      "1.5S",       "1,0S", "S1",  "1U",   "1N",  "١S",
  };
  size_t i;
  int64_t ns = 0;
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_decode_fails(bad[i], strlen(bad[i]));
  expect_decode_fails("1\0S", 3); /* embedded NUL */
  expect_decode_fails("7S", 1);   /* "7": no unit */
  expect_decode_fails("7S", 0);   /* empty */
  assert_int_equal(sgrpc_timeout_decode(NULL, 2, &ns),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_timeout_decode("7S", 2, NULL),
                   SGRPC_ERR_INVALID_ARGUMENT);
}

static const struct {
  char unit;
  int64_t ns;
} units[] = {{'H', NS_H},  {'M', NS_M},  {'S', NS_S},
             {'m', NS_MS}, {'u', NS_US}, {'n', 1}};
#define NUNITS (sizeof units / sizeof units[0])

static size_t unit_index(char c) {
  size_t u;
  for (u = 0; u < NUNITS; u++)
    if (units[u].unit == c)
      return u;
  fail_msg("unknown unit %c", c);
  return 0;
}

/* Checks every rule of the encoder for one value. */
static void check_timeout_roundtrip(int64_t x) {
  char buf[16];
  int len = sgrpc_timeout_encode(x, buf, sizeof buf);
  int64_t d = -1;
  size_t u, v;
  int exact_fit_exists = 0;

  assert_true(len >= 2 && len <= 9);
  assert_int_equal((int)strlen(buf), len);
  assert_int_equal(sgrpc_timeout_decode(buf, (size_t)len, &d), 0);
  u = unit_index(buf[len - 1]);
  assert_true(d >= x);
  if (d != INT64_MAX)
    assert_true(d - x < units[u].ns);
  for (v = 0; v < NUNITS; v++)
    if (x % units[v].ns == 0 && x / units[v].ns <= 99999999)
      exact_fit_exists = 1;
  if (x == 0) {
    assert_string_equal(buf, "0n");
  } else if (exact_fit_exists) {
    /* exact, and no coarser unit would also be exact and fit */
    assert_true(d == x);
    for (v = 0; v < u; v++)
      assert_false(x % units[v].ns == 0 && x / units[v].ns <= 99999999);
  } else {
    /* rounded up, and no finer unit would have fit */
    for (v = u + 1; v < NUNITS; v++)
      assert_true(x / units[v].ns + (x % units[v].ns != 0) > 99999999);
  }
}

static void test_timeout_roundtrip_random(void **state) {
  int i;
  (void)state;
  for (i = 0; i < 20000; i++) {
    /* Spread values over every magnitude, and hit round numbers often. */
    int bits = (int)rng_below(63) + 1;
    int64_t x = (int64_t)(rng_next() >> (64 - bits));
    if (i % 4 == 1)
      x -= x % units[rng_below(NUNITS)].ns;
    check_timeout_roundtrip(x);
  }
  check_timeout_roundtrip(0);
  check_timeout_roundtrip(INT64_MAX);
  check_timeout_roundtrip(99999999 * NS_M);
  check_timeout_roundtrip(99999999 * NS_M + 1);
  check_timeout_roundtrip(99999999 * NS_S + 1);
}

/* ------------------------------------------------------------------ */
/* Percent-encoding                                                    */
/* ------------------------------------------------------------------ */

static void expect_pct_encode(const char *in, size_t n, const char *want) {
  char out[1024];
  size_t len = sg_pct_encoded_len(in, n);
  assert_int_equal(len, strlen(want));
  assert_true(len <= sizeof out);
  assert_int_equal(sg_pct_encode(in, n, out), len);
  assert_memory_equal(out, want, len);
}

/* Decodes into a heap buffer of exactly sg_pct_decoded_max(n) bytes so
 * ASan catches a write past the documented bound. */
static void expect_pct_decode(const char *in, size_t n, const char *want,
                              size_t want_len) {
  size_t cap = sg_pct_decoded_max(n);
  char *out = malloc(cap ? cap : 1);
  assert_non_null(out);
  assert_int_equal(cap, 3 * n);
  size_t len = sg_pct_decode(in, n, out);
  assert_int_equal(len, want_len);
  assert_memory_equal(out, want, want_len);
  free(out);
}

#define DEC(in, want)                                                          \
  expect_pct_decode(in, sizeof(in) - 1, want, sizeof(want) - 1)
#define FFFD "\xEF\xBF\xBD"

static const char privet[] = "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82";
static const char privet_pct[] = "%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82";

static void test_pct_encode(void **state) {
  (void)state;
  expect_pct_encode(privet, sizeof privet - 1, privet_pct);
  expect_pct_encode("", 0, "");
  expect_pct_encode("hello world ~!", 14, "hello world ~!");
  expect_pct_encode("100%", 4, "100%25");
  expect_pct_encode("a\tb\r\n\x7f", 6, "a%09b%0D%0A%7F");
  expect_pct_encode("\0\x1f \xff", 4, "%00%1F %FF");

  /* Every byte: printable ASCII but '%' passes, the rest is %XX with
   * uppercase hex. */
  char all[256], out[768];
  int c;
  for (c = 0; c < 256; c++)
    all[c] = (char)c;
  size_t len = sg_pct_encode(all, 256, out);
  assert_int_equal(len, sg_pct_encoded_len(all, 256));
  assert_int_equal(len, 94 + 162 * 3); /* 0x20..0x7E minus '%' pass */
  size_t o = 0;
  for (c = 0; c < 256; c++) {
    if (c >= 0x20 && c <= 0x7E && c != '%') {
      assert_int_equal((unsigned char)out[o], c);
      o += 1;
    } else {
      static const char hex[] = "0123456789ABCDEF";
      assert_int_equal(out[o], '%');
      assert_int_equal(out[o + 1], hex[c >> 4]);
      assert_int_equal(out[o + 2], hex[c & 15]);
      o += 3;
    }
  }
  assert_int_equal(o, len);
}

static void test_pct_decode_vectors(void **state) {
  (void)state;
  expect_pct_decode(privet_pct, sizeof privet_pct - 1, privet,
                    sizeof privet - 1);
  DEC("", "");
  DEC("plain text", "plain text");
  DEC("%41%42c", "ABc");
  DEC("%c3%a9|%C3%A9", "\xC3\xA9|\xC3\xA9"); /* hex in either case */
  DEC("%FF", FFFD);
  DEC("%25", "%");
  /* A '%' without two hex digits stays as it is. */
  DEC("100%", "100%");
  DEC("%G1", "%G1");
  DEC("%4", "%4");
  DEC("%", "%");
  DEC("%%41", "%A");
  DEC("%4%41", "%4A");
  DEC("a%2", "a%2");
  DEC("%1G%20", "%1G ");
  /* Raw (not percent-encoded) UTF-8 passes through. */
  DEC("\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80");
  /* A sequence may mix raw and percent-encoded bytes. */
  DEC("%F0\x9F%98\x80", "\xF0\x9F\x98\x80");
}

static void test_pct_decode_invalid_utf8(void **state) {
  (void)state;
  /* Truncated sequence followed by ASCII: the ASCII survives. */
  DEC("%E2%82A", FFFD "A");
  DEC("\xE2\x82\x41", FFFD "A"); /* raw bytes, then "A" */
  DEC("%C3x", FFFD "x");
  DEC("%F0%9F%98", FFFD); /* truncated at the end */
  DEC("%F0%9F%98%F0%9F%98%80", FFFD "\xF0\x9F\x98\x80");
  /* A truncated sequence followed by a valid multi-byte character. */
  DEC("\xE2\x82\xC3\xA9", FFFD "\xC3\xA9");
  /* Mixed valid and invalid. */
  DEC("a\xC3\xA9\xFF\x62\xF0\x9F\x98\x80\x63",
      "a\xC3\xA9" FFFD "b\xF0\x9F\x98\x80\x63");
  /* Lone continuation bytes and bytes that never lead: one each. */
  DEC("\x80\xBF", FFFD FFFD);
  DEC("\xC0\xAF", FFFD FFFD); /* overlong '/' */
  DEC("\xC1\xBF", FFFD FFFD);
  DEC("\xE0\x80\xAF", FFFD FFFD FFFD); /* overlong 3-byte */
  DEC("\xE0\x9F\xBF", FFFD FFFD FFFD);
  DEC("\xE0\xA0\x80", "\xE0\xA0\x80");          /* U+0800, smallest 3-byte */
  DEC("\xED\xA0\x80", FFFD FFFD FFFD);          /* surrogate U+D800 */
  DEC("\xED\x9F\xBF", "\xED\x9F\xBF");          /* U+D7FF */
  DEC("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD); /* overlong 4-byte */
  DEC("\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF");  /* U+10FFFF */
  DEC("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* > U+10FFFF */
  DEC("\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD);
  DEC("\xFE\xFF", FFFD FFFD);
  /* Unicode 15, Table 3-8 (maximal subparts). */
  DEC("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
      "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
  /* Same, percent-encoded. */
  DEC("a%F1%80%80%E1%80%C2b%80c%80%BFd",
      "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
  /* Worst case reaches the 3n bound exactly. */
  DEC("\xFF\xFF\xFF", FFFD FFFD FFFD);
}

/* An independent, code-point based check of well-formed UTF-8. */
static int utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len, k;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (n - i < len)
      return 0;
    for (k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

static void test_utf8_checker_self(void **state) {
  (void)state;
  /* The fuzz test relies on this checker; make sure it can say no. */
  assert_true(utf8_valid((const unsigned char *)"a\xC3\xA9", 3));
  assert_false(utf8_valid((const unsigned char *)"\xFF", 1));
  assert_false(utf8_valid((const unsigned char *)"\xC3", 1));
  assert_false(utf8_valid((const unsigned char *)"\xC0\xAF", 2));
  assert_false(utf8_valid((const unsigned char *)"\xED\xA0\x80", 3));
  assert_false(utf8_valid((const unsigned char *)"\xF4\x90\x80\x80", 4));
}

static void test_pct_decode_fuzz(void **state) {
  /* Biased alphabet: '%', hex digits, continuation and lead bytes. */
  static const unsigned char pool[] = {
      '%',  '%',  '%',  '0',  '8',  '9',  'A',  'B',  'C',  'D',  'E',
      'F',  'a',  'f',  'g',  ' ',  0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
      0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0x00};
  int it;
  (void)state;
  for (it = 0; it < 10000; it++) {
    size_t n = rng_below(64), i;
    unsigned char *in = malloc(n ? n : 1);
    assert_non_null(in);
    for (i = 0; i < n; i++)
      in[i] =
          (it & 1) ? pool[rng_below(sizeof pool)] : (unsigned char)rng_next();
    size_t cap = sg_pct_decoded_max(n);
    char *out = malloc(cap ? cap : 1); /* exact: ASan guards the bound */
    assert_non_null(out);
    size_t len = sg_pct_decode((const char *)in, n, out);
    assert_true(len <= 3 * n);
    assert_true(utf8_valid((const unsigned char *)out, len));
    free(out);
    free(in);
  }
}

/* encode then decode is the identity on valid UTF-8. */
static void test_pct_roundtrip_utf8(void **state) {
  int it;
  (void)state;
  for (it = 0; it < 2000; it++) {
    unsigned char text[256];
    char enc[768], dec[768];
    size_t n = 0, k = rng_below(40);
    while (k-- > 0) {
      uint32_t cp;
      do {
        switch (rng_below(4)) {
        case 0:
          cp = (uint32_t)rng_below(0x80);
          break;
        case 1:
          cp = 0x80 + (uint32_t)rng_below(0x800 - 0x80);
          break;
        case 2:
          cp = 0x800 + (uint32_t)rng_below(0x10000 - 0x800);
          break;
        default:
          cp = 0x10000 + (uint32_t)rng_below(0x110000 - 0x10000);
          break;
        }
      } while (cp >= 0xD800 && cp <= 0xDFFF);
      if (cp < 0x80) {
        text[n++] = (unsigned char)cp;
      } else if (cp < 0x800) {
        text[n++] = (unsigned char)(0xC0 | cp >> 6);
        text[n++] = (unsigned char)(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        text[n++] = (unsigned char)(0xE0 | cp >> 12);
        text[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        text[n++] = (unsigned char)(0x80 | (cp & 0x3F));
      } else {
        text[n++] = (unsigned char)(0xF0 | cp >> 18);
        text[n++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        text[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        text[n++] = (unsigned char)(0x80 | (cp & 0x3F));
      }
    }
    size_t elen = sg_pct_encode((const char *)text, n, enc);
    assert_int_equal(elen, sg_pct_encoded_len((const char *)text, n));
    for (size_t i = 0; i < elen; i++)
      assert_true(enc[i] >= 0x20 && enc[i] <= 0x7E);
    size_t dlen = sg_pct_decode(enc, elen, dec);
    assert_int_equal(dlen, n);
    assert_memory_equal(dec, text, n);
    /* Valid UTF-8 without '%' also decodes to itself unencoded. */
    if (memchr(text, '%', n) == NULL) {
      dlen = sg_pct_decode((const char *)text, n, dec);
      assert_int_equal(dlen, n);
      assert_memory_equal(dec, text, n);
    }
  }
}

/* ------------------------------------------------------------------ */
/* Metadata keys and values                                            */
/* ------------------------------------------------------------------ */

static int check_kv(const char *key, const char *value) {
  sgrpc_md md = {key, strlen(key), (const uint8_t *)value, strlen(value)};
  return sgrpc_md_check(&md);
}

static void test_md_keys(void **state) {
  (void)state;
  assert_int_equal(check_kv("x-ok_1.2", "v"), 0);
  assert_int_equal(check_kv("a", ""), 0);
  assert_int_equal(check_kv("grpc", "v"), 0);
  assert_int_equal(check_kv("grpcx-a", "v"), 0);
  assert_int_equal(check_kv("tea", "v"), 0);
  assert_int_equal(check_kv("hosts", "v"), 0);
  assert_int_equal(check_kv("x-te", "v"), 0);
  assert_int_equal(check_kv("0123456789abcdefghijklmnopqrstuvwxyz-_.", "v"), 0);

  static const char *bad[] = {
      "grpc-internal",
      "grpc-",
      "grpc-status",
      "grpc-timeout",
      ":path",
      ":",
      "te",
      "content-type",
      "user-agent",
      "host",
      "connection",
      "keep-alive",
      "proxy-connection",
      "transfer-encoding",
      "upgrade",
      "Upper-Case",
      "~",
      "a b",
      "a\nb",
      "",
      "a:b",
      "a/b",
      "\xC3\xA9",
      "a+b",
      "X",
  };
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (check_kv(bad[i], "v") != SGRPC_ERR_BAD_METADATA)
      fail_msg("key \"%s\" accepted", bad[i]);
  }
  /* Embedded NUL in the key. */
  sgrpc_md nul = {"a\0b", 3, (const uint8_t *)"v", 1};
  assert_int_equal(sgrpc_md_check(&nul), SGRPC_ERR_BAD_METADATA);

  /* The internal predicates agree. */
  assert_true(sg_key_valid("x-ok_1.2", 8));
  assert_false(sg_key_valid("", 0));
  assert_false(sg_key_valid("Upper", 5));
  assert_true(sg_key_reserved("grpc-internal", 13));
  assert_true(sg_key_reserved(":path", 5));
  assert_true(sg_key_reserved("te", 2));
  assert_true(sg_key_reserved("keep-alive", 10));
  assert_false(sg_key_reserved("keep-alivf", 10));
  assert_false(sg_key_reserved("t", 1));
  assert_false(sg_key_reserved("x-ok_1.2", 8));
  assert_false(sg_key_reserved("", 0));
  assert_true(sg_key_is_bin("x-bin", 5));
  assert_true(sg_key_is_bin("-bin", 4));
  assert_false(sg_key_is_bin("bin", 3));
  assert_false(sg_key_is_bin("x-bim", 5));
  assert_false(sg_key_is_bin("x-bin-", 6));
}

static void test_md_text_values(void **state) {
  (void)state;
  assert_int_equal(check_kv("k", "with space"), 0);
  assert_int_equal(check_kv("k", " ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"), 0);
  assert_int_equal(check_kv("k", "a\tb"), SGRPC_ERR_BAD_METADATA);
  assert_int_equal(check_kv("k", "a\x7f"), SGRPC_ERR_BAD_METADATA);
  assert_int_equal(check_kv("k", "\x80"), SGRPC_ERR_BAD_METADATA);
  assert_int_equal(check_kv("k", "\x1f"), SGRPC_ERR_BAD_METADATA);
  assert_int_equal(check_kv("k", "a\r\nb"), SGRPC_ERR_BAD_METADATA);
  assert_int_equal(check_kv("k", "\xC3\xA9"), SGRPC_ERR_BAD_METADATA);
  sgrpc_md nul = {"k", 1, (const uint8_t *)"a\0b", 3};
  assert_int_equal(sgrpc_md_check(&nul), SGRPC_ERR_BAD_METADATA);

  /* Every byte: only 0x20..0x7E is text. */
  int c;
  for (c = 0; c < 256; c++) {
    uint8_t b = (uint8_t)c;
    assert_int_equal(sg_text_value_valid(&b, 1), c >= 0x20 && c <= 0x7E);
  }
  assert_true(sg_text_value_valid(NULL, 0));

  /* -bin values are raw bytes: anything goes. */
  sgrpc_md bin = {"x-bin", 5, (const uint8_t *)"\0\x80\xff\n", 4};
  assert_int_equal(sgrpc_md_check(&bin), 0);
  /* ...but the key rules still apply. */
  sgrpc_md rbin = {"grpc-x-bin", 10, (const uint8_t *)"\0", 1};
  assert_int_equal(sgrpc_md_check(&rbin), SGRPC_ERR_BAD_METADATA);
}

static void test_md_check_arguments(void **state) {
  (void)state;
  assert_int_equal(sgrpc_md_check(NULL), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_md nokey = {NULL, 0, (const uint8_t *)"v", 1};
  assert_int_equal(sgrpc_md_check(&nokey), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_md novalue = {"k", 1, NULL, 3};
  assert_int_equal(sgrpc_md_check(&novalue), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_md empty = {"k", 1, NULL, 0};
  assert_int_equal(sgrpc_md_check(&empty), 0);
  sgrpc_md lit = SGRPC_MD_STR("x-user", "alice");
  assert_int_equal(sgrpc_md_check(&lit), 0);
}

/* ------------------------------------------------------------------ */
/* Base64                                                              */
/* ------------------------------------------------------------------ */

static int in_b64_alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static void expect_b64(const char *raw, size_t n, const char *want) {
  char enc[64];
  uint8_t dec[64];
  size_t declen = 99;
  assert_int_equal(sg_b64_encoded_len(n), strlen(want));
  assert_int_equal(sg_b64_encode((const uint8_t *)raw, n, enc),
                   strlen(want));
  assert_memory_equal(enc, want, strlen(want));
  assert_int_equal(sg_b64_decode(want, strlen(want), dec, &declen), 0);
  assert_int_equal(declen, n);
  assert_memory_equal(dec, raw, n);
}

static void expect_b64_decode(const char *in, const char *want, size_t n) {
  uint8_t dec[64];
  size_t declen = 99;
  assert_int_equal(sg_b64_decode(in, strlen(in), dec, &declen), 0);
  assert_int_equal(declen, n);
  assert_memory_equal(dec, want, n);
}

static void test_b64_vectors(void **state) {
  (void)state;
  /* RFC 4648 section 10, unpadded. */
  expect_b64("", 0, "");
  expect_b64("f", 1, "Zg");
  expect_b64("fo", 2, "Zm8");
  expect_b64("foo", 3, "Zm9v");
  expect_b64("foob", 4, "Zm9vYg");
  expect_b64("fooba", 5, "Zm9vYmE");
  expect_b64("foobar", 6, "Zm9vYmFy");
  expect_b64("\xfb\xff", 2, "+/8"); /* standard, not URL-safe, alphabet */
  expect_b64("\0\0\0", 3, "AAAA");
  /* Padded input is accepted. */
  expect_b64_decode("Zg==", "f", 1);
  expect_b64_decode("Zm8=", "fo", 2);
  expect_b64_decode("Zm9vYg==", "foob", 4);
  /* Non-canonical trailing bits are accepted (documented in wire.c). */
  expect_b64_decode("QR==", "A", 1);
  expect_b64_decode("QR", "A", 1);
  expect_b64_decode("QUF=", "AA", 2);
}

static void test_b64_rejects(void **state) {
  static const char *bad[] = {
      "a",      "ab=c",
      "a*bc",   "abc==",
      "=",      "==",
      "===",    "====",
      "a===",   "ab=",
      "Zg=",    "Zg===",
      "Zm9v=",  "abcde",
      "ab c",   "ab-_",
      "Zm9v\n", "=Zm9",
      "Zm=v",   "Zg==Zg==",
      "Zm9vY",  "\xC3\xA9\x41\x41",
  };
  size_t i, declen = 77;
  uint8_t out[64];
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    /* Exact-size copy: ASan catches a read past the input. */
    size_t n = strlen(bad[i]);
    char *in = malloc(n ? n : 1);
    assert_non_null(in);
    memcpy(in, bad[i], n);
    if (sg_b64_decode(in, n, out, &declen) != -1)
      fail_msg("base64 \"%s\" accepted", bad[i]);
    free(in);
  }
  assert_int_equal(sg_b64_decode("ab\0c", 4, out, &declen), -1);
  /* n bounds the input: 5 characters of valid text are still 4k+1. */
  assert_int_equal(sg_b64_decode("Zm9vYmFy", 5, out, &declen), -1);
  assert_int_equal(declen, 77); /* untouched on failure */
}

static void test_b64_roundtrip_lengths(void **state) {
  size_t n, i;
  (void)state;
  for (n = 0; n <= 300; n++) {
    uint8_t raw[300], *dec;
    char enc[400 + 4];
    size_t elen, dlen = (size_t)-1;
    for (i = 0; i < n; i++)
      raw[i] = (uint8_t)rng_next();
    elen = sg_b64_encode(raw, n, enc);
    assert_int_equal(elen, sg_b64_encoded_len(n));
    assert_int_equal(elen, (n * 4 + 2) / 3); /* unpadded length */
    for (i = 0; i < elen; i++)
      assert_true(in_b64_alphabet(enc[i]));
    assert_true(sg_b64_decoded_max(elen) >= n);
    dec = malloc(sg_b64_decoded_max(elen) + 1);
    assert_non_null(dec);
    assert_int_equal(sg_b64_decode(enc, elen, dec, &dlen), 0);
    assert_int_equal(dlen, n);
    assert_memory_equal(dec, raw, n);
    /* The padded form decodes the same. */
    size_t plen = elen;
    while (plen % 4 != 0)
      enc[plen++] = '=';
    free(dec);
    dec = malloc(sg_b64_decoded_max(plen) + 1);
    assert_non_null(dec);
    assert_true(sg_b64_decoded_max(plen) >= n);
    dlen = (size_t)-1;
    assert_int_equal(sg_b64_decode(enc, plen, dec, &dlen), 0);
    assert_int_equal(dlen, n);
    assert_memory_equal(dec, raw, n);
    free(dec);
  }
}

/* ------------------------------------------------------------------ */
/* HTTP/2 received fields                                              */
/* ------------------------------------------------------------------ */

static int name_ok(const char *s) {
  return sg_h2_name_valid((const uint8_t *)s, strlen(s));
}

static int value_ok(const char *s, size_t n) {
  return sg_h2_value_valid((const uint8_t *)s, n);
}

static void test_h2_fields(void **state) {
  (void)state;
  assert_true(name_ok(":path"));
  assert_true(name_ok(":status"));
  assert_true(name_ok("content-type"));
  assert_true(name_ok("grpc-status-details-bin"));
  assert_true(name_ok("x!#$%&'*+-.^_`|~09az"));
  assert_true(name_ok("a"));
  assert_false(name_ok(""));
  assert_false(name_ok(":"));
  assert_false(name_ok("::path"));
  assert_false(name_ok("a:b"));
  assert_false(name_ok("Content-Type"));
  assert_false(name_ok(":Path"));
  assert_false(name_ok("a b"));
  assert_false(name_ok("a\"b"));
  assert_false(name_ok("a,b"));
  assert_false(name_ok("a(b)"));
  assert_false(name_ok("a/b"));
  assert_false(name_ok("a\x7f"));
  assert_false(name_ok("\xC3\xA9"));
  assert_false(sg_h2_name_valid((const uint8_t *)"a\0b", 3));

  /* Every byte as a one-character name. */
  int c;
  for (c = 0; c < 256; c++) {
    uint8_t b = (uint8_t)c;
    int want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
               (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
    assert_int_equal(sg_h2_name_valid(&b, 1), want);
    uint8_t pb[2] = {':', b};
    assert_int_equal(sg_h2_name_valid(pb, 2), want);
    assert_int_equal(sg_h2_value_valid(&b, 1),
                     c != 0 && c != '\r' && c != '\n');
  }

  assert_true(value_ok("", 0));
  assert_true(sg_h2_value_valid(NULL, 0));
  assert_true(value_ok("text/plain; q=1", 15));
  assert_true(value_ok("a\tb", 3));
  assert_true(value_ok("\x80\xff", 2));
  assert_false(value_ok("a\0b", 3));
  assert_false(value_ok("a\rb", 3));
  assert_false(value_ok("a\nb", 3));
  assert_false(value_ok("abc\n", 4));
}

/* The checks read 8 bytes at a time: a bad byte at every position of
 * every length up to 40, and a value or name that is good everywhere. */
static void test_h2_fields_every_position(void **state) {
  static const uint8_t bad_value[] = {0, '\r', '\n'};
  static const uint8_t bad_name[] = {'A', ' ', 0, 0x80, ':'};
  uint8_t buf[41];
  size_t n, pos, k;
  (void)state;
  for (n = 1; n <= 40; n++) {
    /* TAB and bytes above 0x7f are allowed in values */
    for (k = 0; k < n; k++) buf[k] = (uint8_t)("ab\tc-xyz.0"[k % 10] | (k % 3 == 1 ? 0x80 : 0));
    assert_true(sg_h2_value_valid(buf, n));
    for (pos = 0; pos < n; pos++) {
      for (k = 0; k < sizeof(bad_value); k++) {
        uint8_t keep = buf[pos];
        buf[pos] = bad_value[k];
        assert_false(sg_h2_value_valid(buf, n));
        buf[pos] = keep;
      }
    }
    for (k = 0; k < n; k++) buf[k] = (uint8_t)"abc-xyz.09"[k % 10];
    assert_true(sg_h2_name_valid(buf, n));
    for (pos = 0; pos < n; pos++) {
      for (k = 0; k < sizeof(bad_name); k++) {
        uint8_t keep = buf[pos];
        buf[pos] = bad_name[k];
        /* a ':' is allowed only first, and not alone */
        assert_int_equal(sg_h2_name_valid(buf, n), bad_name[k] == ':' && pos == 0 && n > 1);
        buf[pos] = keep;
      }
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timeout_encode_vectors),
      cmocka_unit_test(test_timeout_encode_errors),
      cmocka_unit_test(test_timeout_decode_vectors),
      cmocka_unit_test(test_timeout_decode_rejects),
      cmocka_unit_test(test_timeout_roundtrip_random),
      cmocka_unit_test(test_pct_encode),
      cmocka_unit_test(test_pct_decode_vectors),
      cmocka_unit_test(test_pct_decode_invalid_utf8),
      cmocka_unit_test(test_utf8_checker_self),
      cmocka_unit_test(test_pct_decode_fuzz),
      cmocka_unit_test(test_pct_roundtrip_utf8),
      cmocka_unit_test(test_md_keys),
      cmocka_unit_test(test_md_text_values),
      cmocka_unit_test(test_md_check_arguments),
      cmocka_unit_test(test_b64_vectors),
      cmocka_unit_test(test_b64_rejects),
      cmocka_unit_test(test_b64_roundtrip_lengths),
      cmocka_unit_test(test_h2_fields),
      cmocka_unit_test(test_h2_fields_every_position),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
