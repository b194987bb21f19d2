/*
 * Allocation in the rpc layer: every object keeps a complete sgrpc_mem,
 * resolved once when it is created (sgrpc_mem_resolve: NULL means libc,
 * a partial struct is refused), so these helpers need no fallback.
 */
#ifndef SGRPC_RPC_MEM_H
#define SGRPC_RPC_MEM_H

#include <sgrpc/sgrpc.h>

static inline void *rpc_malloc(const sgrpc_mem *mem, size_t n) {
  return mem->malloc(n ? n : 1, mem->user_data);
}

static inline void *rpc_calloc(const sgrpc_mem *mem, size_t n) {
  return mem->calloc(1, n ? n : 1, mem->user_data);
}

static inline void rpc_free(const sgrpc_mem *mem, void *p) {
  if (p) mem->free(p, mem->user_data);
}

#endif
