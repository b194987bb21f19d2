/*
 * The RouteGuide service of the examples: its feature database and an
 * implementation table ready for routeguide__route_guide__sgrpc_register.
 */
#ifndef EXAMPLE_ROUTE_GUIDE_SERVICE_H
#define EXAMPLE_ROUTE_GUIDE_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "route_guide.sgrpc.h"

typedef struct route_guide_feature {
  const char *name;
  int32_t lat, lon;
} route_guide_feature;

extern const route_guide_feature route_guide_features[];
extern const size_t route_guide_n_features;

/** The feature's name at p, or "" when there is none. */
const char *route_guide_feature_at(const Routeguide__Point *p);

/** Fills impl with the four handlers (GetFeature, ListFeatures,
 *  RecordRoute, RouteChat) and the per-call cleanup. */
void route_guide_service_init(Routeguide__RouteGuide_SgrpcServer *impl);

#endif /* EXAMPLE_ROUTE_GUIDE_SERVICE_H */
