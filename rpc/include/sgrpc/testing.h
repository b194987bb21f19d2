/** @file
 * In-memory test channel (grpclib's ChannelFor): an sgrpc_rpc_client
 * wired to an sgrpc_router through two engine connections that hand their
 * bytes to each other. No sockets, no threads, no clock reads: the caller
 * runs the channel and owns its clock, so handlers, hooks and deadlines
 * can be unit-tested deterministically.
 *
 *   sgrpc_test_channel *ch;
 *   sgrpc_test_channel_new(&ch, router, NULL);
 *   sgrpc_rpc_call_start(sgrpc_test_channel_client(ch), &method, &req,
 *                        NULL, sgrpc_test_channel_now(ch), &callbacks, NULL);
 *   sgrpc_test_channel_run(ch, 0);          // on_close has run
 *   sgrpc_test_channel_del(ch);
 *
 * Generated client functions take the client and now the same way.
 * The channel pulls both connections' events: server events go to the
 * router, client events to the engine's dispatcher (the rpc client's
 * calls), and, as the puller, it releases each call after its CLOSE. The
 * router may serve other connections at the same time. Handlers and
 * callbacks may start, send and finish calls from inside the run.
 */
#ifndef SGRPC_TESTING_H
#define SGRPC_TESTING_H

#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An in-memory client and server pair (opaque; sgrpc_test_channel_new). */
typedef struct sgrpc_test_channel sgrpc_test_channel;

/** Options; zero-initialise. NULL options mean all defaults. */
typedef struct sgrpc_test_channel_opts {
  /** Engine settings of each side (NULL: defaults). */
  const sgrpc_settings *client_settings;
  /** settings of the server's connection; NULL for defaults */
  const sgrpc_settings *server_settings;
  /** Allocator of the engines, the client and the channel (copied; NULL:
   *  libc). Give the router the same one. */
  const sgrpc_mem *mem;
  /** Start time of the fake monotonic clock in ns (0: one second). */
  int64_t now;
} sgrpc_test_channel_opts;

/**
 * Creates a channel to router (not owned; it must outlive the channel)
 * and exchanges the connection prefaces. Returns 0,
 * SGRPC_ERR_INVALID_ARGUMENT, SGRPC_ERR_NOMEM, or an engine error; on
 * error nothing is left allocated.
 */
SGRPC_EXTERN int sgrpc_test_channel_new(sgrpc_test_channel **pch, sgrpc_router *router,
                                        const sgrpc_test_channel_opts *opts);

/**
 * Ends the channel: calls waiting out a retry backoff start their next
 * attempt at once, then both connections see their transport close, so every
 * call still open ends (client on_close with UNAVAILABLE, server on_close)
 * before the connections are freed. NULL is a no-op. Not from inside a
 * handler or callback.
 */
SGRPC_EXTERN void sgrpc_test_channel_del(sgrpc_test_channel *ch);

/** The rpc client whose calls go to the router. Valid until _del. Attach
 *  hooks with sgrpc_rpc_client_set_events. */
SGRPC_EXTERN sgrpc_rpc_client *sgrpc_test_channel_client(sgrpc_test_channel *ch);

/**
 * Moves bytes both ways and dispatches every event until nothing is left
 * to move, or max_rounds rounds (0: 10000) passed. Returns 0 when idle,
 * SGRPC_ERR_WOULDBLOCK when still busy after max_rounds, or the negative
 * code of a connection that failed fatally (also returned by later runs).
 * Not from inside a handler or callback.
 */
SGRPC_EXTERN int sgrpc_test_channel_run(sgrpc_test_channel *ch, size_t max_rounds);

/** The channel's clock (ns). Pass it as now to calls started on it. */
SGRPC_EXTERN int64_t sgrpc_test_channel_now(const sgrpc_test_channel *ch);

/**
 * Moves the clock forward by ns (>= 0), lets both engines handle the
 * timers that expired (deadlines, keepalive) and runs the channel as
 * sgrpc_test_channel_run(ch, 0). Returns what run returns, or
 * SGRPC_ERR_INVALID_ARGUMENT for a negative ns.
 */
SGRPC_EXTERN int sgrpc_test_channel_advance(sgrpc_test_channel *ch, int64_t ns);

/** When the earliest pending retry timer of the channel's client is due
 *  (the channel's clock), or SGRPC_NEVER when none is. The channel's
 *  client has a timer hook: retry policies wait their backoff on the
 *  channel's clock, and timers due fire while the channel runs. */
SGRPC_EXTERN int64_t sgrpc_test_channel_next_timer(const sgrpc_test_channel *ch);

/** The engine connections, for tests that look at them (stats, call
 *  counts). Do not feed, drain or free them. */
SGRPC_EXTERN sgrpc_conn *sgrpc_test_channel_client_conn(const sgrpc_test_channel *ch);
/** The engine connection of the server side. */
SGRPC_EXTERN sgrpc_conn *sgrpc_test_channel_server_conn(const sgrpc_test_channel *ch);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_TESTING_H */
