/*
 * Protobuf decoding for sgrpc-trace --descriptor-set (pbdecode.c).
 */
#ifndef SGRPC_TRACE_PBDECODE_H
#define SGRPC_TRACE_PBDECODE_H

#include <stddef.h>
#include <stdint.h>

typedef struct pb_types pb_types;

/* Parses a serialized FileDescriptorSet; NULL when it is not one. */
pb_types *pb_types_load(const uint8_t *data, size_t len);
void pb_types_free(pb_types *t);

/* The request (request != 0) or response type of the method at path
 * ("/pkg.Svc/Method"), as a full name with a leading dot; NULL when the
 * set has no such method. Borrowed from t. */
const char *pb_method_type(const pb_types *t, const char *path, size_t path_len, int request);

/* Prints data as a message of type_name, one field per line, each line
 * starting with lead; nothing when the type is unknown. */
void pb_print(const pb_types *t, const char *type_name, const uint8_t *data, size_t len,
              const char *lead);

#endif
