/*
 * Retry helpers of the rpc client (retry.c): the request buffer kept for
 * replay, backoff with jitter, the throttling token bucket and server
 * pushback. The call flow that uses them is in rpc.c.
 */
#ifndef SGRPC_RETRY_INTERNAL_H
#define SGRPC_RETRY_INTERNAL_H

#include <sgrpc/rpc.h>

/* Sent requests of one call, packed, as records [u32 length][bytes]. */
typedef struct rt_buf {
  uint8_t *data;
  size_t len, cap;
  size_t limit; /* this call's limit (0: the client's per-call limit) */
} rt_buf;

/* Reserves a record of n bytes and sets *p to its payload. Returns 0, 1
 * when the call's or the client's limit would be passed (nothing
 * changed), or SGRPC_ERR_NOMEM. */
int rt_buf_reserve(sgrpc_rpc_client *cl, const sgrpc_mem *mem, rt_buf *b, size_t n,
                   uint8_t **p);
/* Drops the last record (of n payload bytes): its send failed. */
void rt_buf_unreserve(sgrpc_rpc_client *cl, rt_buf *b, size_t n);
/* Frees the buffer and gives its bytes back to the client's total. */
void rt_buf_free(sgrpc_rpc_client *cl, const sgrpc_mem *mem, rt_buf *b);
/* The record at *off: sets *data, *n and moves *off past it. Returns 0
 * at the end. */
int rt_buf_next(const rt_buf *b, size_t *off, const uint8_t **data, size_t *n);

/* A delay drawn uniformly from [0, cap) with the client's random source. */
int64_t rt_jitter(sgrpc_rpc_client *cl, int64_t cap);

/* Throttling (gRFC A6), no-ops without retryThrottling in the config. */
void rt_throttle_failure(sgrpc_rpc_client *cl);
void rt_throttle_success(sgrpc_rpc_client *cl);
int rt_throttle_allows(sgrpc_rpc_client *cl);

/* grpc-retry-pushback-ms in trailing metadata: 0 when absent, 1 with *ms
 * set for a valid value, -1 for a negative or malformed one (gRFC A6:
 * do not retry). */
int rt_pushback(const sgrpc_md *md, size_t n, int64_t *ms);

#endif
