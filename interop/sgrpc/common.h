/*
 * Shared by sgrpc's interop server and client (interop/sgrpc): the
 * generated grpc.testing code, command-line flag parsing in the style the
 * interop tooling uses (--name=value or --name value), and a queue of
 * packed messages waiting for room in a call's send buffer.
 */
#ifndef SGRPC_INTEROP_COMMON_H
#define SGRPC_INTEROP_COMMON_H

#include <sgrpc/epoll.h>
#include <sgrpc/tls_openssl.h>

/* Where the default interop test certificates (server1.pem/.key, ca.pem
 * of grpc's testdata) are read from when --tls_cert_file/--tls_key_file
 * or --ca_file are not given: Debian's golang-google-grpc-dev ships them. */
#ifndef IOP_TESTDATA
#define IOP_TESTDATA "/usr/share/gocode/src/google.golang.org/grpc/testdata"
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/testing/empty.pb-c.h"
#include "grpc/testing/messages.pb-c.h"
#include "grpc/testing/test.sgrpc.h"

#define IOP_ECHO_INITIAL "x-grpc-test-echo-initial"
#define IOP_ECHO_TRAILING "x-grpc-test-echo-trailing-bin"

/* Method table entries of the generated code (paths and descriptors). */
#define IOP_TEST_METHOD(m) (&grpc__testing__test_service__sgrpc_methods[GRPC__TESTING__TEST_SERVICE__SGRPC_##m])
#define IOP_REQ_DESC(method) ((const ProtobufCMessageDescriptor *)(method)->request_type)
#define IOP_RESP_DESC(method) ((const ProtobufCMessageDescriptor *)(method)->response_type)

/* Matches argv[*i] against "--name" or "--name=value". On a match sets
 * *val (the text after '=', else the next argument, else NULL for a bare
 * flag when takes_bare is set) and returns 1. */
static inline int iop_flag(int argc, char **argv, int *i, const char *name, int takes_bare,
                           const char **val) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0) return 0;
  if (a[2 + n] == '=') {
    *val = a + 3 + n;
    return 1;
  }
  if (a[2 + n] != 0) return 0;
  if (takes_bare) {
    /* "--use_tls" alone means true; "--use_tls false" is also accepted */
    if (*i + 1 < argc && (strcmp(argv[*i + 1], "true") == 0 || strcmp(argv[*i + 1], "false") == 0))
      *val = argv[++*i];
    else *val = "true";
    return 1;
  }
  *val = *i + 1 < argc ? argv[++*i] : NULL;
  return 1;
}

/* Parses a boolean flag value; -1 when it is neither true nor false. */
static inline int iop_bool(const char *v) {
  if (!v) return -1;
  if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) return 1;
  if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) return 0;
  return -1;
}

/* A packed message not yet accepted by sgrpc_call_send. */
typedef struct iop_out {
  struct iop_out *next;
  unsigned flags;
  size_t len;
  uint8_t data[];
} iop_out;

typedef struct iop_outq {
  iop_out *head, *tail;
} iop_outq;

/* Packs m and appends it. Returns 0 or SGRPC_ERR_NOMEM. */
static inline int iop_outq_push(iop_outq *q, const ProtobufCMessage *m, unsigned flags) {
  size_t len = protobuf_c_message_get_packed_size(m);
  iop_out *o = malloc(sizeof(*o) + (len ? len : 1));
  if (!o) return SGRPC_ERR_NOMEM;
  o->next = NULL;
  o->flags = flags;
  o->len = protobuf_c_message_pack(m, o->data);
  if (q->tail) q->tail->next = o;
  else q->head = o;
  q->tail = o;
  return 0;
}

/* Hands queued messages to the engine while its buffer takes them.
 * Returns 0 when the queue is empty, 1 when blocked (resume on
 * SGRPC_EV_WRITABLE), or the negative code of a failed send (the call
 * ended or cannot send any more; the queue is dropped). */
static inline int iop_outq_pump(iop_outq *q, sgrpc_call *call) {
  while (q->head) {
    iop_out *o = q->head;
    int rv = sgrpc_call_send(call, o->data, o->len, o->flags);
    if (rv == SGRPC_ERR_WOULDBLOCK) return 1;
    q->head = o->next;
    if (!q->head) q->tail = NULL;
    free(o);
    if (rv != 0) {
      while (q->head) {
        o = q->head;
        q->head = o->next;
        free(o);
      }
      q->tail = NULL;
      return rv;
    }
  }
  return 0;
}

static inline void iop_outq_clear(iop_outq *q) {
  while (q->head) {
    iop_out *o = q->head;
    q->head = o->next;
    free(o);
  }
  q->tail = NULL;
}

/* Finds key in md; returns the entry or NULL. */
static inline const sgrpc_md *iop_md_find(const sgrpc_md *md, size_t n, const char *key) {
  size_t i, kl = strlen(key);
  for (i = 0; i < n; i++)
    if (md[i].key_len == kl && memcmp(md[i].key, key, kl) == 0) return &md[i];
  return NULL;
}

/* Returns nonzero when every byte of data is zero. */
static inline int iop_all_zero(const uint8_t *data, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (data[i]) return 0;
  return 1;
}

#endif /* SGRPC_INTEROP_COMMON_H */
