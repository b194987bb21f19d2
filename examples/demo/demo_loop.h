/*
 * The demo's event loop, chosen at run time (--loop=epoll|libuv|kqueue):
 * the few loop functions the demo needs, over whichever adapters were
 * built. Everything gRPC goes through the adapter core (<sgrpc/adapter.h>):
 * servers and channels are the core's, so server.c and client.c are the
 * same code on every loop. kqueue on Linux runs on the kqueue-on-poll shim
 * of tests/kqueue_shim (built with the tests).
 */
#ifndef SGRPC_DEMO_LOOP_H
#define SGRPC_DEMO_LOOP_H

#include <sgrpc/adapter.h>

typedef struct demo_loop demo_loop;
typedef struct demo_timer demo_timer;

/** The loops this build has, "|"-separated ("epoll|libuv|kqueue"). */
const char *demo_loop_kinds(void);
/** Makes a loop of kind (one of demo_loop_kinds). 0, or -1 for an unknown
 *  or unbuilt kind or when the loop cannot be made. */
int demo_loop_new(demo_loop **pl, const char *kind);
/** Frees the loop and everything on it (open calls get their CLOSE). */
void demo_loop_del(demo_loop *l);
const char *demo_loop_name(const demo_loop *l);
/** The monotonic clock the loop gives the engine: build deadlines on it. */
int64_t demo_loop_now(const demo_loop *l);
/** sgrpc_epoll_listen, sgrpc_uv_listen or sgrpc_kq_listen. */
int demo_loop_listen(demo_loop *l, const sgrpc_ac_listen_opts *o, sgrpc_ac_server **ps);
/** A channel whose connections run on this loop. */
int demo_loop_channel(demo_loop *l, const sgrpc_ac_channel_opts *o, sgrpc_ac_channel **pch);
/** SIGINT/SIGTERM: the first drains (graceful), the second exits at once;
 *  cb (optional) is told each one. */
int demo_loop_catch_signals(demo_loop *l, void (*cb)(int signo, int count, void *ud), void *ud);
/** Calls cb once after delay_ns. *pt (optional) stays valid until cb
 *  starts or demo_timer_cancel. */
int demo_timer_start(demo_loop *l, int64_t delay_ns, void (*cb)(void *ud), void *ud,
                     demo_timer **pt);
void demo_timer_cancel(demo_timer *t);
/** Runs until demo_loop_stop or until nothing is left to do. 0 or -1. */
int demo_loop_run(demo_loop *l);
/** Makes demo_loop_run return; callable from callbacks. */
void demo_loop_stop(demo_loop *l);

#endif
