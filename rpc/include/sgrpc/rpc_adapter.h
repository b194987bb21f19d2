/*
 * Generated services and client stubs (<sgrpc/rpc.h>) over the adapter
 * core (<sgrpc/adapter.h>), whose servers and channels the libuv and
 * kqueue adapters hand out. Header-only, like <sgrpc/rpc_epoll.h>.
 *
 * Server: keep the core's default (user_releases_calls = 0: the core
 * releases each call after its CLOSE), and in the server's on_event call
 *   sgrpc_router_dispatch(router, sgrpc_ac_conn_engine(c), ev, now);
 * with now from the loop's clock (sgrpc_uv_now(), sgrpc_kq_now()).
 *
 * Client: sgrpc_rpc_ac_client_init(&client, channel, NULL), then call the
 * generated client functions with that clock's now.
 */
#ifndef SGRPC_RPC_ADAPTER_H
#define SGRPC_RPC_ADAPTER_H

#include <sgrpc/adapter.h>
#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The sgrpc_rpc_start_fn for an sgrpc_ac_channel (ctx). */
static inline void sgrpc_rpc_ac_call_event(const sgrpc_event *ev, void *user_data) {
  sgrpc_ac_channel *ch = (sgrpc_ac_channel *)user_data;
  (void)ch;
  (void)sgrpc_event_dispatch(ev, 0);
}

static inline int sgrpc_rpc_ac_start(void *ctx, const sgrpc_call_opts *opts, int64_t now,
                                     sgrpc_call **pcall) {
  (void)now;
  return sgrpc_ac_channel_call((sgrpc_ac_channel *)ctx, opts, sgrpc_rpc_ac_call_event, pcall);
}

/** Binds client to an adapter-core channel. */
static inline void sgrpc_rpc_ac_client_init(sgrpc_rpc_client *client, sgrpc_ac_channel *channel,
                                            const sgrpc_mem *mem) {
  sgrpc_rpc_client_init_transport(client, sgrpc_rpc_ac_start, channel, mem);
}

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_RPC_ADAPTER_H */
