/*
 * sgrpc server reflection: grpc.reflection.v1.ServerReflection and
 * grpc.reflection.v1alpha.ServerReflection (the one grpcurl and grpc_cli
 * ask first), the C counterpart of grpclib.reflection.
 *
 * The object answers from serialized FileDescriptorProtos: the ones
 * protoc-gen-sgrpc embeds in each generated service description, plus
 * those of the files they import (which have no service, so nothing
 * embeds them: add them with sgrpc_reflection_add_file, or all at once from
 * `protoc --include_imports --descriptor_set_out=FILE` with
 * sgrpc_reflection_add_file_set).
 *
 *   sgrpc_reflection *refl;
 *   sgrpc_reflection_new(&refl, NULL);
 *   sgrpc_reflection_add_service(refl, &helloworld__greeter__sgrpc_service);
 *   sgrpc_reflection_add_service(refl, sgrpc_health_service());
 *   sgrpc_reflection_register(refl, router);   // v1 and v1alpha
 *
 * Answers, one per request and in request order on the bidi stream:
 *  - list_services: every added service and the two reflection services;
 *  - file_by_filename: that file, then the files it imports (transitively,
 *    those known to the object);
 *  - file_containing_symbol: the same for the file that defines the fully
 *    qualified symbol: a service, a method ("pkg.Svc.Method"), a message,
 *    a nested message, a field, an enum (top-level or nested), an
 *    extension field;
 *  - file_containing_extension: the same for the file declaring that
 *    extension number of that message type;
 *  - all_extension_numbers_of_type: the known extension numbers of a
 *    known message type, ascending (possibly none);
 *  - unknown names: error_response NOT_FOUND; an empty request:
 *    error_response INVALID_ARGUMENT.
 * A client that asks faster than it reads gets its answers as its call
 * has room for them: the requests waiting for their turn are kept packed
 * (the answers are made when they go), up to 64 KiB of them; past that
 * the call ends RESOURCE_EXHAUSTED. The half-close is answered (status
 * OK) after the last waiting request.
 *
 * Not thread-safe; every function may be called from inside handlers.
 */
#ifndef SGRPC_REFLECTION_H
#define SGRPC_REFLECTION_H

#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sgrpc_reflection sgrpc_reflection;

/** Creates an empty reflection object; mem is copied (NULL: libc).
 *  Returns 0, SGRPC_ERR_INVALID_ARGUMENT or SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_reflection_new(sgrpc_reflection **prefl, const sgrpc_mem *mem);

/** Frees the object. No call may reach it afterwards (delete it after the
 *  last dispatch of the routers it is registered on). NULL is a no-op. */
SGRPC_EXTERN void sgrpc_reflection_del(sgrpc_reflection *refl);

/**
 * Lists service->name and adds its file (service->file_descriptor, when
 * not NULL) and the files it imports (service->deps; an import whose
 * name is already known is skipped). The description and its bytes are
 * borrowed: they must outlive the object (generated descriptions are
 * static). Adding a service twice is a no-op. Returns 0, SGRPC_ERR_INVALID_ARGUMENT (NULL, or descriptor
 * bytes that are not a FileDescriptorProto with a name, or a file of the same
 * name with other bytes) or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_reflection_add_service(sgrpc_reflection *refl,
                                              const sgrpc_service_desc *service);

/**
 * Adds one serialized FileDescriptorProto (copied), typically a file that
 * a service's file imports. Its services are not listed by list_services
 * unless added with sgrpc_reflection_add_service. The same file added
 * again (same name and bytes) is a no-op. Returns 0,
 * SGRPC_ERR_INVALID_ARGUMENT (malformed, no name, or the name is taken by
 * other bytes) or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_reflection_add_file(sgrpc_reflection *refl, const uint8_t *data,
                                           size_t len);

/**
 * Adds every file of a serialized google.protobuf.FileDescriptorSet, as
 * written by protoc --descriptor_set_out (use --include_imports). Stops at
 * the first error (files added before it stay). Errors as
 * sgrpc_reflection_add_file.
 */
SGRPC_EXTERN int sgrpc_reflection_add_file_set(sgrpc_reflection *refl, const uint8_t *data,
                                               size_t len);

/** How many routers one reflection object follows (see
 *  sgrpc_reflection_register). */
#define SGRPC_REFLECTION_MAX_ROUTERS 8

/** Receives a warning of the reflection object (msg is borrowed for the
 *  call). */
typedef void (*sgrpc_reflection_warn_cb)(const char *msg, void *user_data);

/**
 * Where warnings go: a service of a router reflection follows that it
 * cannot describe (no file descriptor, a malformed one, or a file whose
 * imports are missing). By default, before any call of this function,
 * each warning is one line on stderr ("sgrpc reflection: ..."); cb NULL
 * silences them. Each problem is reported once, when reflection takes the
 * service in.
 */
SGRPC_EXTERN void sgrpc_reflection_set_warn(sgrpc_reflection *refl, sgrpc_reflection_warn_cb cb,
                                            void *user_data);

/**
 * Routes /grpc.reflection.v1.ServerReflection/ServerReflectionInfo and
 * /grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo on router
 * to refl, and adds both services to the listing. From then on refl
 * lists and describes every service recorded on the router
 * (sgrpc_router_add_service, which generated register functions call),
 * with the files they import (sgrpc_service_desc.deps): those registered
 * before this call at once, later ones at the next request. The router
 * must outlive refl's use; refl follows up to
 * SGRPC_REFLECTION_MAX_ROUTERS routers (more are served but not
 * followed). Returns 0, SGRPC_ERR_INVALID_ARGUMENT (NULL, or a path
 * already routed) or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_reflection_register(sgrpc_reflection *refl, sgrpc_router *router);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_REFLECTION_H */
