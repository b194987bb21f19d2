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
 * Frees the object. Watch streams still open are ended with UNAVAILABLE
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

/** The grpc.health.v1.Health service description (with its embedded
 *  FileDescriptorProto), e.g. for sgrpc_reflection_add_service. */
SGRPC_EXTERN const sgrpc_service_desc *sgrpc_health_service(void);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_HEALTH_H */
