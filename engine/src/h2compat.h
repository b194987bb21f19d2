/*
 * nghttp2 API selection. nghttp2 1.60.0 deprecated every call and type
 * built on ssize_t (POSIX only, and too narrow in theory for its error
 * codes) in favour of "2" variants on nghttp2_ssize (ptrdiff_t), and a
 * build with NGHTTP2_NO_SSIZE_T drops the old ones. The engine names the
 * few it uses through sg_h2_* so that it compiles against either: the
 * "2" calls when the installed nghttp2 has them, the old ones otherwise
 * (the oldest supported is 1.52). Zero cost: types and macros only.
 */
#ifndef SGRPC_H2COMPAT_H
#define SGRPC_H2COMPAT_H

#include <nghttp2/nghttp2.h>

#if NGHTTP2_VERSION_NUM >= 0x013c00 /* 1.60.0 */
#define SG_H2_SSIZE_API 1
/* Byte count or negative nghttp2 error code. */
typedef nghttp2_ssize sg_h2_ssize;
/* A DATA source (nghttp2_data_provider2: source + read_callback). */
typedef nghttp2_data_provider2 sg_h2_data_provider;
#define sg_h2_session_mem_recv nghttp2_session_mem_recv2
#define sg_h2_session_mem_send nghttp2_session_mem_send2
#define sg_h2_submit_request nghttp2_submit_request2
#define sg_h2_submit_response nghttp2_submit_response2
#else
#define SG_H2_SSIZE_API 0
typedef ssize_t sg_h2_ssize;
typedef nghttp2_data_provider sg_h2_data_provider;
#define sg_h2_session_mem_recv nghttp2_session_mem_recv
#define sg_h2_session_mem_send nghttp2_session_mem_send
#define sg_h2_submit_request nghttp2_submit_request
#define sg_h2_submit_response nghttp2_submit_response
#endif

#endif
