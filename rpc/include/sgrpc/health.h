/** @file
 * sgrpc health service: grpc.health.v1.Health (Check and Watch) as a
 * library object, the C counterpart of grpclib.health.
 *
 * The application keeps one sgrpc_health per set of servers, sets the
 * status of each service it serves (the empty name "" stands for the whole
 * server) and registers the object on its routers:
 *
 *   sgrpc_health *health;
 *   sgrpc_health_new(&health, NULL);              // "" starts SERVING
 *   sgrpc_health_set(health, "helloworld.Greeter", SGRPC_HEALTH_SERVING);
 *   sgrpc_health_register(health, router);
 *   ...
 *   sgrpc_health_set(health, "helloworld.Greeter", SGRPC_HEALTH_NOT_SERVING);
 *
 * Semantics (grpc's health.proto):
 *  - Check(service): the status set for service; a service that has no
 *    status ends the call with NOT_FOUND. When the connection's whole
 *    output is full (settings.max_outbound_queue) the answer cannot be
 *    taken and the call ends RESOURCE_EXHAUSTED.
 *  - Watch(service): the current status at once (SERVICE_UNKNOWN when
 *    none is set, and the stream stays open), then every change as soon as
 *    sgrpc_health_set makes it. Setting the status a watcher last received
 *    sends nothing (no duplicates). A watcher that reads slower than the
 *    changes come gets the latest status once its call has room again
 *    (the changes in between are skipped, as grpc-go's server does), so
 *    a Watch holds no more than the engine's per-call send buffer.
 *
 * Like the rest of the rpc layer the object is loop-agnostic and not
 * thread-safe: call it from the thread that runs the routers it is
 * registered on. Every function may be called from inside handlers and
 * callbacks.
 */
#ifndef SGRPC_HEALTH_H
#define SGRPC_HEALTH_H

#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Serving status; the values are those of
 *  grpc.health.v1.HealthCheckResponse.ServingStatus. */
typedef enum sgrpc_health_status {
  SGRPC_HEALTH_UNKNOWN = 0, /**< status not known */
  SGRPC_HEALTH_SERVING = 1, /**< the service answers calls */
  SGRPC_HEALTH_NOT_SERVING = 2, /**< the service does not answer calls */
  /** Only seen on Watch streams; as an argument of sgrpc_health_set it
   *  removes the service (Check answers NOT_FOUND again). */
  SGRPC_HEALTH_SERVICE_UNKNOWN = 3
} sgrpc_health_status;

/** A health service: per-service statuses and their Watch subscribers (opaque). */
typedef struct sgrpc_health sgrpc_health;

/**
 * Creates a health object whose only entry is "" = SERVING. mem is copied
 * (NULL: libc); the object, its entries and its Watch records are
 * allocated with it. Returns 0, SGRPC_ERR_INVALID_ARGUMENT or
 * SGRPC_ERR_NOMEM (nothing is left allocated).
 */
SGRPC_EXTERN int sgrpc_health_new(sgrpc_health **phealth, const sgrpc_mem *mem);

/**
 * Frees the object, stopping its checks (sgrpc_health_checks_stop). Watch streams still open are ended with UNAVAILABLE
 * ("health service stopped") and forgotten; their records are freed when
 * their calls close. No new call may reach the object afterwards: delete
 * it after the last sgrpc_router_dispatch of the routers it is registered
 * on, or before any new call can arrive (then delete the routers' connections
 * as usual). NULL is a no-op.
 */
SGRPC_EXTERN void sgrpc_health_del(sgrpc_health *health);

/**
 * Sets the status of service (NUL-terminated; "" is the whole server;
 * copied). status is SGRPC_HEALTH_SERVING, _NOT_SERVING, _UNKNOWN, or
 * _SERVICE_UNKNOWN to remove the entry. Every Watch of service whose last
 * sent status differs gets the new one now (a Watch whose call's send
 * buffer is full gets the status current when it drains instead).
 *
 * Returns 0, SGRPC_ERR_INVALID_ARGUMENT (NULL arguments, a status out of
 * range) or SGRPC_ERR_NOMEM (the previous status stays, watchers get
 * nothing).
 */
SGRPC_EXTERN int sgrpc_health_set(sgrpc_health *health, const char *service,
                                  sgrpc_health_status status);

/** The status set for service, or SGRPC_HEALTH_SERVICE_UNKNOWN when none
 *  is (or an argument is NULL). */
SGRPC_EXTERN sgrpc_health_status sgrpc_health_get(const sgrpc_health *health,
                                                  const char *service);

/** Sets every entry, "" included, to status (SERVING or NOT_SERVING), as
 *  a server does when it begins or ends a graceful shutdown. Returns 0 or
 *  SGRPC_ERR_INVALID_ARGUMENT. */
SGRPC_EXTERN int sgrpc_health_set_all(sgrpc_health *health, sgrpc_health_status status);

/**
 * Routes /grpc.health.v1.Health/Check and /Watch on router to health. An
 * object may be registered on several routers; it must outlive their
 * dispatching (see sgrpc_health_del). Returns 0, SGRPC_ERR_INVALID_ARGUMENT
 * (NULL, or the paths are already routed) or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_health_register(sgrpc_health *health, sgrpc_router *router);

/** Number of Watch streams open on health (0 for NULL). */
SGRPC_EXTERN size_t sgrpc_health_watch_count(const sgrpc_health *health);

/* ------------------------------------------------------------------ */
/* Health checks that run themselves (grpclib's ServiceCheck)          */
/* ------------------------------------------------------------------ */

/**
 * How the health object asks to be called back later. The rpc layer
 * reads no clock and owns no timer: the loop's owner provides one-shot
 * timers (<sgrpc/net_rpc.h>'s sgrpc_net_health_use_loop binds the net
 * layer's sgrpc_net_timer_start).
 */
typedef struct sgrpc_health_timers {
  /** Arms a one-shot timer that calls sgrpc_health_timer_fire(arg, now)
   *  once at absolute time when (a time already past fires soon, never
   *  from inside start), storing a handle for cancel in *ptimer. Returns
   *  0 or a negative SGRPC_ERR_* code. Required. */
  int (*start)(void *ctx, int64_t when, void *arg, void **ptimer);
  /** Cancels a timer armed by start that has not fired yet. Required. */
  void (*cancel)(void *ctx, void *timer);
  /** Passed to start and cancel. */
  void *ctx;
} sgrpc_health_timers;

/** What a timer armed through sgrpc_health_timers.start calls when it
 *  fires: arg is the start's arg, now the loop's clock. */
SGRPC_EXTERN void sgrpc_health_timer_fire(void *arg, int64_t now);

/**
 * Gives health its timers (copied). Needed before sgrpc_health_check_add.
 * Returns 0, SGRPC_ERR_INVALID_ARGUMENT (NULL, a missing function) or
 * SGRPC_ERR_INVALID_STATE (checks are running: stop them first).
 */
SGRPC_EXTERN int sgrpc_health_set_timers(sgrpc_health *health, const sgrpc_health_timers *timers);

/**
 * One run of a check, given to the check function. Answer it with
 * sgrpc_health_probe_done, at once or later (from another callback on the
 * same thread), before the check's timeout. Plain data: copy it freely.
 */
typedef struct sgrpc_health_probe {
  /** The health object the probe belongs to. */
  sgrpc_health *health;
  /** Which run this is (unique per health object). */
  uint64_t id;
} sgrpc_health_probe;

/**
 * A check: finds out whether service works (a query to a database, a
 * look at a queue) and reports it with sgrpc_health_probe_done(probe,
 * SGRPC_HEALTH_SERVING or _NOT_SERVING). now is the loop's clock.
 * service is borrowed for the call. The check may add and remove checks
 * (itself included) but must not delete the health object.
 */
typedef void (*sgrpc_health_check_fn)(sgrpc_health_probe probe, const char *service,
                                      void *user_data, int64_t now);

/** What sgrpc_health_check_add takes. Zero-initialise. */
typedef struct sgrpc_health_check_opts {
  /** The check. Required. */
  sgrpc_health_check_fn check;
  /** Passed to check. */
  void *user_data;
  /** Time between the starts of two runs, in ns; > 0. */
  int64_t interval;
  /** How long a run may take before it counts as NOT_SERVING, in ns;
   *  0 takes interval; at most interval. */
  int64_t timeout;
} sgrpc_health_check_opts;

/**
 * Runs o->check for service (copied) every o->interval, the first run at
 * now (on a timer, not from inside this call), and sets the service's
 * status from each answer with sgrpc_health_set, so Watch subscribers see
 * every flip. A run not answered within o->timeout sets NOT_SERVING (and
 * its late answer is refused). Until the first answer a service without
 * a status is UNKNOWN. If a timer cannot be armed the service is set
 * NOT_SERVING and its check stops (sgrpc_health_check_count drops).
 *
 * Returns 0, SGRPC_ERR_INVALID_ARGUMENT (NULL, no check, interval <= 0,
 * timeout out of range), SGRPC_ERR_INVALID_STATE (no timers set, or the
 * service already has a check), SGRPC_ERR_NOMEM, or the timer start's
 * error (nothing is left running).
 */
SGRPC_EXTERN int sgrpc_health_check_add(sgrpc_health *health, const char *service,
                                        const sgrpc_health_check_opts *o, int64_t now);

/**
 * Answers a run: status is SGRPC_HEALTH_SERVING or _NOT_SERVING (set as
 * by sgrpc_health_set; Watch subscribers see the change). Returns 0,
 * SGRPC_ERR_INVALID_ARGUMENT (bad status, NULL health) or
 * SGRPC_ERR_INVALID_STATE when the run is no longer waited for (it timed
 * out, was answered, or its check was removed): the answer is dropped.
 * The probe's health object must still exist.
 */
SGRPC_EXTERN int sgrpc_health_probe_done(sgrpc_health_probe probe, sgrpc_health_status status);

/**
 * Stops the check of service (its timers are cancelled; the status stays
 * what it last was). Callable from inside the check itself. Returns 0,
 * SGRPC_ERR_INVALID_ARGUMENT, or SGRPC_ERR_INVALID_STATE (no such check).
 */
SGRPC_EXTERN int sgrpc_health_check_remove(sgrpc_health *health, const char *service);

/** Stops every check (as sgrpc_health_check_remove on each). */
SGRPC_EXTERN void sgrpc_health_checks_stop(sgrpc_health *health);

/** Number of checks running (0 for NULL). */
SGRPC_EXTERN size_t sgrpc_health_check_count(const sgrpc_health *health);

/** The grpc.health.v1.Health service description (with its embedded
 *  FileDescriptorProto), e.g. for sgrpc_reflection_add_service. */
SGRPC_EXTERN const sgrpc_service_desc *sgrpc_health_service(void);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_HEALTH_H */
