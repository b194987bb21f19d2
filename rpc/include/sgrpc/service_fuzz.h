/** @file
 * Fuzz your own service: a libFuzzer harness for generated service tables
 * and the application's handlers.
 *
 * Each fuzzer input is decoded as a script of client actions — start a
 * call on one of the services' methods (with metadata, a deadline, a
 * compressed request), send requests, half-close, cancel, run the
 * channel, move the clock — and played through the in-memory test
 * channel (<sgrpc/testing.h>) and two real engine connections into the
 * handlers. Requests are built from the methods' protobuf-c descriptors
 * (ProtobufCMessageDescriptor fields), so most of them are valid
 * messages with fields set from the input; a flag in the script corrupts
 * one now and then, another makes one allocation of the harness's
 * allocator fail. After every input the harness checks:
 *  - every client call ended with exactly one status (a code in 0..16);
 *  - every server call's on_close ran exactly once, and no handler
 *    (on_request, on_writable) ran for a call after its on_close;
 *  - nothing allocated through the harness's counting allocator (router,
 *    engines, channel, unpacked requests) is left once everything is
 *    freed.
 * The fuzzer build adds ASan and UBSan. docs/fuzzing.md walks through it;
 * the CMake function sgrpc_add_service_fuzzer() (shipped with the rpc
 * component of the CMake package) generates the entry points below.
 */
#ifndef SGRPC_SERVICE_FUZZ_H
#define SGRPC_SERVICE_FUZZ_H

#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Registers the application's handlers on router (typically by calling
 * the generated PACKAGE__SERVICE__sgrpc_register with the
 * application's server struct). Called once per input on a fresh router
 * that uses the harness's counting allocator. ctx is
 * sgrpc_service_fuzz_target.ctx. Returns 0, or a negative code, which
 * fails the input.
 */
typedef int (*sgrpc_service_fuzz_register_fn)(sgrpc_router *router, void *ctx);

/** What a service fuzzer drives. Zero-initialise, then fill. */
typedef struct sgrpc_service_fuzz_target {
  /** The generated service descriptors (PACKAGE__SERVICE__sgrpc_service)
   *  whose methods the script calls. Methods with the protobuf-c codec
   *  get structure-aware requests; others get raw bytes. Required. */
  const sgrpc_service_desc *const *services;
  /** Number of entries in services (at least 1). */
  size_t n_services;
  /** Registers the handlers. Required. */
  sgrpc_service_fuzz_register_fn register_handlers;
  /** Passed to register_handlers and reset. */
  void *ctx;
  /** Optional: called after each input, once everything was freed, so
   *  handlers that keep state between calls can start clean. */
  void (*reset)(void *ctx);
  /** Optional engine settings of the server side (NULL: defaults). */
  const sgrpc_settings *server_settings;
} sgrpc_service_fuzz_target;

/** Returned by sgrpc_service_fuzz_run when an invariant failed (a positive
 *  value, distinct from every SGRPC_ERR_* code). */
#define SGRPC_SERVICE_FUZZ_VIOLATION 1

/**
 * Runs one input. Returns 0 when every invariant held (whatever the
 * calls' statuses were), SGRPC_SERVICE_FUZZ_VIOLATION with a
 * NUL-terminated reason in why (when why is not NULL and why_cap > 0),
 * or SGRPC_ERR_INVALID_ARGUMENT for a target missing a required field.
 * Memory errors in handlers are the sanitizers' to report. Not
 * re-entrant: one input at a time per process. With the environment
 * variable SGRPC_FUZZ_TRACE set, every action and status is printed to
 * stderr (to read what a crashing input does).
 */
SGRPC_EXTERN int sgrpc_service_fuzz_run(const sgrpc_service_fuzz_target *target,
                                        const uint8_t *data, size_t size, char *why,
                                        size_t why_cap);

/**
 * The body of LLVMFuzzerTestOneInput: runs the input and, when an
 * invariant failed, prints the reason to stderr and aborts (so libFuzzer
 * records the input as a crash). Returns 0.
 */
SGRPC_EXTERN int sgrpc_service_fuzz_one(const sgrpc_service_fuzz_target *target,
                                        const uint8_t *data, size_t size);

/**
 * A main() for builds without libFuzzer (any compiler): each argument
 * that is a file is run as one input, a directory runs every file in it;
 * "-runs=N" also runs N inputs made by a fixed pseudo-random generator
 * ("-seed=S", default 1; "-max_len=L", default 512 bytes). Returns 0 when
 * every input passed, 1 after the first violation (reason and input name
 * on stderr), 2 for a usage error or an unreadable file.
 */
SGRPC_EXTERN int sgrpc_service_fuzz_main(const sgrpc_service_fuzz_target *target, int argc,
                                         char **argv);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_SERVICE_FUZZ_H */
