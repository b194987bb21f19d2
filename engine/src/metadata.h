/*
 * Header blocks (metadata.c): the fields of one received HEADERS block,
 * collected in arrival order with the ones the engine knows recognised,
 * then viewed as user metadata or as a status.
 */
#ifndef SG_METADATA_H
#define SG_METADATA_H

#include <sgrpc/sgrpc.h>

#include "buf.h"
#include "h2compat.h"

/* The fields the engine knows, recognised once as they arrive. */
enum {
  SG_HK_OTHER = 0,       /* user metadata */
  SG_HK_PSEUDO,          /* a pseudo-header gRPC does not use */
  SG_HK_METHOD,
  SG_HK_PATH,
  SG_HK_SCHEME,
  SG_HK_AUTHORITY,
  SG_HK_STATUS,          /* last pseudo-header */
  SG_HK_CONTENT_TYPE,
  SG_HK_TE,
  SG_HK_TIMEOUT,
  SG_HK_USER_AGENT,
  SG_HK_ENCODING,
  SG_HK_ACCEPT_ENCODING,
  SG_HK_GRPC_STATUS,
  SG_HK_GRPC_MESSAGE,
  SG_HK_STATUS_DETAILS,
  SG_HK_HOST,
  SG_HK_CONTENT_LENGTH,  /* HTTP framing, checked against the DATA (server) */
  SG_HK_CONN_SPECIFIC    /* connection, keep-alive, ... (RFC 7540 8.1.2.2) */
};

/* One collected header block: raw fields first, then the processed view.
 * Only the names of SG_HK_OTHER and SG_HK_PSEUDO fields are stored (the
 * others are known by their kind); every value is. */
typedef struct sg_field {
  uint32_t name_off, name_len, value_off, value_len;
  uint8_t kind;          /* SG_HK_* */
} sg_field;

typedef struct sg_hdrs {
  sg_buf store;      /* name\0value\0 ..., then decoded -bin values */
  sg_field *fields;  /* raw fields, in arrival order */
  uint32_t nfields, fields_cap;
  uint32_t total;    /* RFC 7540 header list size so far */
  uint8_t overflow;  /* exceeded max_header_list_size; fields dropped */
  uint8_t invalid;   /* a field broke HTTP/2 field rules */
  sgrpc_md *md;      /* user metadata view, built at end of block */
  uint32_t nmd, md_cap;
  uint32_t ct_field; /* 1 + index of the first content-type, 0 when none */
} sg_hdrs;

/* The name of an SG_HK_OTHER or SG_HK_PSEUDO field. */
static inline const char *sg_field_name(const sg_hdrs *h, const sg_field *f) {
  return (const char *)h->store.p + f->name_off;
}
/* A field's value (NUL-terminated in the store). */
static inline const char *sg_field_value(const sg_hdrs *h, const sg_field *f) {
  return (const char *)h->store.p + f->value_off;
}
static inline int sg_kind_is_pseudo(uint8_t kind) {
  return kind >= SG_HK_PSEUDO && kind <= SG_HK_STATUS;
}

/* Empties a block for reuse, keeping its memory. */
void sg_hdrs_reset(sg_hdrs *h);
/* Frees a block's memory. */
void sg_hdrs_free(sgrpc_conn *c, sg_hdrs *h);
/* nghttp2's on_header callback (user data: the connection): adds the
 * field to c->hblock when it belongs to the block being collected. */
int sg_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                 size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                 void *ud);
/* Builds h->md from the non-protocol fields, decoding -bin values into
 * the store. Returns 0, -1 on no memory, -2 on bad base64. The md
 * pointers are offsets until sg_hdrs_fix_md. */
int sg_hdrs_build_md(sgrpc_conn *c, sg_hdrs *h);
/* Turns h->md's offsets into pointers once the store no longer moves. */
void sg_hdrs_fix_md(sg_hdrs *h);
/* Fills st from a trailer block (grpc-status, grpc-message,
 * grpc-status-details-bin, the metadata); st points into h's store.
 * Returns 0 or -1 (no memory). */
int sg_hdrs_parse_status(sgrpc_conn *c, sg_hdrs *h, sgrpc_status_info *st);
/* gRPC status for a response with a non-200 HTTP status (gRPC's
 * http-grpc-status-mapping.md). */
int sg_http_to_grpc_status(int http_status);
/* gRPC status for a stream reset with an HTTP/2 error code. */
int sg_rst_to_grpc_status(uint32_t h2_code);

#endif
