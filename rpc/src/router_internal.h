/*
 * Library-private access to a router's routes, for the service fuzz
 * harness (service_fuzz.c), which wraps every handler to check that none
 * runs after its call ended.
 */
#ifndef SGRPC_ROUTER_INTERNAL_H
#define SGRPC_ROUTER_INTERNAL_H

#include <sgrpc/rpc.h>

/* Calls fn with each route's method and a pointer to the router's own
 * copy of its handler, which fn may change (the route keeps the change).
 * Routes added afterwards are not visited. */
void sg_router_each_handler(sgrpc_router *router,
                            void (*fn)(const sgrpc_method *method, sgrpc_handler *handler,
                                       void *ctx),
                            void *ctx);

#endif
