/** @file
 * protobuf-c glue for the sgrpc RPC layer: the codec used by the method
 * tables protoc-gen-sgrpc emits, and an allocator adapter so unpacked
 * messages come from the connection's sgrpc_mem.
 */
#ifndef SGRPC_PROTOBUF_H
#define SGRPC_PROTOBUF_H

#include <protobuf-c/protobuf-c.h>
#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The protobuf-c codec, content subtype "proto". Method types are
 * const ProtobufCMessageDescriptor *; messages are ProtobufCMessage-based
 * structs. pack uses protobuf_c_message_pack, unpack
 * protobuf_c_message_unpack with an allocator made from the sgrpc_mem.
 */
SGRPC_EXTERN extern const sgrpc_codec sgrpc_codec_protobuf;

/**
 * Fills *out with a ProtobufCAllocator that allocates through mem (NULL:
 * libc). mem is kept by pointer: it must outlive every use of *out,
 * including freeing the messages it allocated.
 */
SGRPC_EXTERN void sgrpc_protobuf_allocator(ProtobufCAllocator *out,
                                           const sgrpc_mem *mem);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_PROTOBUF_H */
