/** @file
 * sgrpc channelz: the grpc.channelz.v1.Channelz service, so that existing
 * channelz tools (grpcdebug, grpc-go's and grpcio's channelz clients) can
 * inspect an sgrpc process: its servers, channels and connections
 * ("sockets") with their call and message counters, flow-control windows,
 * peer addresses and TLS facts.
 *
 * The rpc layer does not know the transport, so the service reads
 * everything through a source (sgrpc_channelz_source) that the transport
 * provides: <sgrpc/net_rpc.h>'s sgrpc_net_channelz_use_loop serves every
 * server, channel and connection of a net loop.
 *
 *   sgrpc_channelz *cz;
 *   sgrpc_channelz_new(&cz, NULL);
 *   sgrpc_net_channelz_use_loop(cz, sgrpc_epoll_net(loop));
 *   sgrpc_channelz_register(cz, router);
 *
 * Answers (see docs/channelz.md for the table of fields):
 *  - GetServers / GetTopChannels: pages of at most max_results entries
 *    (0 or more than 100: 100) with ids >= the start id, in id order,
 *    end = true on the last page.
 *  - GetServer / GetChannel / GetSocket: NOT_FOUND for an unknown id.
 *  - GetServerSockets: the open connections of a server, paged likewise.
 *  - GetSubchannel: NOT_FOUND (a channel's connections are listed as its
 *    sockets; sgrpc has no subchannel objects to report).
 * A reply that cannot be built for lack of memory ends RESOURCE_EXHAUSTED.
 *
 * Like the rest of the rpc layer: not thread-safe, loop-agnostic.
 */
#ifndef SGRPC_CHANNELZ_H
#define SGRPC_CHANNELZ_H

#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What a channelz entity is. */
typedef enum sgrpc_channelz_kind {
  SGRPC_CHANNELZ_SERVER = 1,  /**< a listening server */
  SGRPC_CHANNELZ_CHANNEL = 2, /**< a client channel */
  SGRPC_CHANNELZ_SOCKET = 3   /**< one connection of a server or channel */
} sgrpc_channelz_kind;

/** Channel connectivity; the values are channelz's
 *  ChannelConnectivityState.State. */
typedef enum sgrpc_channelz_state {
  SGRPC_CHANNELZ_STATE_UNKNOWN = 0,           /**< not reported */
  SGRPC_CHANNELZ_STATE_IDLE = 1,              /**< no connection */
  SGRPC_CHANNELZ_STATE_CONNECTING = 2,        /**< connecting */
  SGRPC_CHANNELZ_STATE_READY = 3,             /**< a connection is up */
  SGRPC_CHANNELZ_STATE_TRANSIENT_FAILURE = 4, /**< the last attempt failed */
  SGRPC_CHANNELZ_STATE_SHUTDOWN = 5           /**< closing */
} sgrpc_channelz_state;

/**
 * One server, channel or socket as a source reports it. Every pointer is
 * borrowed until the service's handler returns (a source must not change
 * its objects while it answers).
 */
typedef struct sgrpc_channelz_entity {
  /** What it is. */
  sgrpc_channelz_kind kind;
  /** Its id: nonzero, unique among all entities of the source, stable
   *  while the entity lives. */
  uint64_t id;
  /** Socket: the id of its server or channel; otherwise 0. */
  uint64_t parent;
  /** Channel: its target; socket: the peer address; server: "" or a
   *  name of the source's choice. Never NULL. */
  const char *name;
  /** Server and channel: totals over all their connections, closed ones
   *  included; socket: the connection's own counters. */
  sgrpc_conn_stats stats;
  /** stats.last_call_started on the wall clock, in ns since the Unix
   *  epoch; 0 when no call started. */
  int64_t last_call_started_unix_ns;
  /** Channel: its connectivity (sgrpc_channelz_state). */
  int state;
  /** Socket: nonzero when flow holds the connection's windows. */
  int has_flow;
  /** Socket: the connection-level HTTP/2 flow-control windows. */
  sgrpc_conn_flow flow;
  /** Socket: who the peer is (address, TLS session, certificate). */
  sgrpc_peer peer;
  /** Socket: nonzero on a server's connection (its calls are remote
   *  streams), 0 on a channel's. */
  int is_server_side;
  /** Room a source may format name into (name then points here). */
  char name_buf[320];
} sgrpc_channelz_entity;

/**
 * Where the service reads its entities from. find fills *e (zeroed by
 * the caller) with the entity of the given kind whose id is the smallest
 * one >= from, among those whose parent is parent when parent is nonzero,
 * and returns 1; it returns 0 when there is none.
 */
typedef struct sgrpc_channelz_source {
  /** The lookup described above. Required. */
  int (*find)(void *ctx, sgrpc_channelz_kind kind, uint64_t parent, uint64_t from,
              sgrpc_channelz_entity *e);
  /** Passed to find. */
  void *ctx;
} sgrpc_channelz_source;

/** The channelz service object (opaque). */
typedef struct sgrpc_channelz sgrpc_channelz;

/**
 * Creates a channelz object with no source (every list is empty until
 * sgrpc_channelz_set_source). mem is copied (NULL: libc); replies are
 * built with it. Returns 0, SGRPC_ERR_INVALID_ARGUMENT or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_channelz_new(sgrpc_channelz **pcz, const sgrpc_mem *mem);

/** Frees the object (NULL: no-op). No call may reach it afterwards:
 *  delete it after the routers it is registered on stop dispatching. */
SGRPC_EXTERN void sgrpc_channelz_del(sgrpc_channelz *cz);

/** Sets the source (copied; NULL removes it). Returns 0 or
 *  SGRPC_ERR_INVALID_ARGUMENT (NULL cz, a source without find). */
SGRPC_EXTERN int sgrpc_channelz_set_source(sgrpc_channelz *cz, const sgrpc_channelz_source *src);

/**
 * Routes the seven /grpc.channelz.v1.Channelz/ methods on router to cz,
 * which must outlive the router's dispatching. Returns 0,
 * SGRPC_ERR_INVALID_ARGUMENT (NULL, or already routed) or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_channelz_register(sgrpc_channelz *cz, sgrpc_router *router);

/** The grpc.channelz.v1.Channelz service description (with its embedded
 *  FileDescriptorProto), e.g. for sgrpc_reflection_add_service. */
SGRPC_EXTERN const sgrpc_service_desc *sgrpc_channelz_service(void);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_CHANNELZ_H */
