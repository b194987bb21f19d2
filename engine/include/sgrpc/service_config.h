/** @file
 * Service config (doc/service_config.md in grpc/grpc) as plain C data.
 *
 * This header only describes the data: a channel (<sgrpc/net.h>) takes
 * its load-balancing policy from it and the rpc client (<sgrpc/rpc.h>)
 * its per-method timeouts, wait-for-ready, message-size limits and retry
 * policies. A user may build one by hand (static const tables are fine:
 * nothing here is ever written to or freed by sgrpc) or parse the JSON
 * form with sgrpc_service_config_parse() from <sgrpc/service_config_json.h>
 * (library component "config").
 *
 * Durations are nanoseconds; 0 means "not set" everywhere below.
 */
#ifndef SGRPC_SERVICE_CONFIG_H
#define SGRPC_SERVICE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A method config's name entry: service "" matches every service (the
 *  config's default); method NULL or "" matches every method of service. */
typedef struct sgrpc_method_name {
  const char *service; /**< "package.Service", or "" for all services */
  const char *method;  /**< "Method", or NULL/"" for all its methods */
} sgrpc_method_name;

/** retryPolicy (gRFC A6). Valid only with max_attempts >= 2,
 *  initial_backoff > 0, max_backoff > 0, backoff_multiplier > 0 and at
 *  least one retryable code. */
typedef struct sgrpc_retry_policy {
  int max_attempts;          /**< original call included; capped at 5 */
  int64_t initial_backoff;   /**< ns */
  int64_t max_backoff;       /**< ns */
  double backoff_multiplier; /**< > 0 */
  uint32_t retryable_codes;  /**< bit (1u << code) per sgrpc_status_code */
} sgrpc_retry_policy;

/** One methodConfig entry. */
typedef struct sgrpc_method_config {
  const sgrpc_method_name *names; /**< the names this config applies to */
  size_t names_count; /**< number of entries in names */
  int64_t timeout;                   /**< ns; 0: none */
  int wait_for_ready;                /**< 0: unset, 1: true, -1: false */
  size_t max_request_message_bytes;  /**< 0: unset */
  size_t max_response_message_bytes; /**< 0: unset */
  const sgrpc_retry_policy *retry_policy; /**< NULL: no retries */
} sgrpc_method_config;

/** retryThrottling (gRFC A6): token bucket per channel. */
typedef struct sgrpc_retry_throttling {
  uint32_t max_tokens; /**< 1..1000 */
  double token_ratio;  /**< > 0; up to 3 decimal places are used */
} sgrpc_retry_throttling;

/** A whole service config. */
typedef struct sgrpc_service_config {
  /** The first policy of loadBalancingConfig that sgrpc knows:
   *  "pick_first" or "round_robin"; NULL: the channel's own choice. */
  const char *lb_policy;
  const sgrpc_method_config *methods; /**< the per-method configs */
  size_t methods_count; /**< number of entries in methods */
  /** NULL: no throttling. */
  const sgrpc_retry_throttling *retry_throttling;
} sgrpc_service_config;

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_SERVICE_CONFIG_H */
