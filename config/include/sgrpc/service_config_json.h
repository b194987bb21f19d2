/** @file
 * Service config JSON (doc/service_config.md in grpc/grpc, gRFC A6) parsed
 * into the plain C data of <sgrpc/service_config.h>. Library component
 * "config" (libsgrpc-config), built on libjansson.
 *
 * Fields read: loadBalancingConfig (the first entry naming pick_first or
 * round_robin; unknown policies before it are skipped) or the deprecated
 * loadBalancingPolicy; methodConfig[] with name[] {service, method},
 * timeout, waitForReady, maxRequestMessageBytes, maxResponseMessageBytes
 * and retryPolicy {maxAttempts, initialBackoff, maxBackoff,
 * backoffMultiplier, retryableStatusCodes}; retryThrottling {maxTokens,
 * tokenRatio}. Other fields (hedgingPolicy, healthCheckConfig, ...) are
 * ignored, as gRPC's clients do with fields they do not know.
 *
 * Durations are proto3 JSON Duration strings: decimal seconds with up to
 * nine fractional digits and an "s" suffix ("1.5s", "0.000001s").
 */
#ifndef SGRPC_SERVICE_CONFIG_JSON_H
#define SGRPC_SERVICE_CONFIG_JSON_H

#include <sgrpc/sgrpc.h>
#include <sgrpc/service_config.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest maxAttempts kept: larger values are lowered to it (gRFC A6). */
#define SGRPC_SERVICE_CONFIG_MAX_ATTEMPTS 5

/**
 * Parses the JSON text json (len bytes, need not be NUL-terminated) into a
 * new service config, allocated in one block with mem (copied; NULL:
 * libc). Every string and array of the result lives in that block; free
 * it with sgrpc_service_config_free. jansson's own temporary allocations
 * during the parse use jansson's allocator (libc unless the program set
 * another with json_set_alloc_funcs).
 *
 * Validation follows gRFC A6 and doc/service_config.md: maxAttempts must
 * be an integer >= 2 (values above SGRPC_SERVICE_CONFIG_MAX_ATTEMPTS are
 * lowered to it); initialBackoff and maxBackoff durations > 0;
 * backoffMultiplier a number > 0; retryableStatusCodes a non-empty array
 * of code names ("UNAVAILABLE") or numbers 1..16 (OK is refused);
 * retryThrottling.maxTokens an integer in 1..1000 and tokenRatio a number
 * > 0; two methodConfig names (in any entries) naming the same
 * service/method are refused; a name with a method needs a service;
 * timeout must be a duration >= 0; sizes integers >= 0; every field must
 * have its JSON type.
 *
 * On error, when err is not NULL and err_len > 0, a NUL-terminated message
 * naming the field and the reason (e.g. "methodConfig[0].retryPolicy.
 * maxAttempts: must be an integer >= 2") is written there, truncated to
 * err_len bytes; *pcfg is left untouched.
 *
 * Returns 0 and sets *pcfg; SGRPC_ERR_INVALID_ARGUMENT for NULL json or
 * pcfg, a partial mem, text that is not JSON, or an invalid field;
 * SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_service_config_parse(const char *json, size_t len, const sgrpc_mem *mem,
                                            sgrpc_service_config **pcfg, char *err,
                                            size_t err_len);

/** Frees a config returned by sgrpc_service_config_parse (with the
 *  allocator it was parsed with). NULL is a no-op. Never pass a config
 *  built by hand. */
SGRPC_EXTERN void sgrpc_service_config_free(sgrpc_service_config *cfg);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_SERVICE_CONFIG_JSON_H */
