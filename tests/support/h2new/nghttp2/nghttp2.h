/*
 * Test shim: the installed nghttp2 (1.52 here) made to look like 1.60+,
 * with the nghttp2_ssize declarations as nghttp2.h documents them and
 * the deprecated ssize_t calls poisoned. The ctest engine_h2compat_ssize_api
 * compiles the engine sources against it, so the h2compat.h path for a
 * newer nghttp2 stays compile-correct on a machine that lacks one.
 */
#include_next <nghttp2/nghttp2.h>
#include <stddef.h>
#undef NGHTTP2_VERSION_NUM
#define NGHTTP2_VERSION_NUM 0x014000
typedef ptrdiff_t nghttp2_ssize;
typedef nghttp2_ssize (*nghttp2_data_source_read_callback2)(
    nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
    uint32_t *data_flags, nghttp2_data_source *source, void *user_data);
typedef struct { nghttp2_data_source source; nghttp2_data_source_read_callback2 read_callback; } nghttp2_data_provider2;
nghttp2_ssize nghttp2_session_mem_send2(nghttp2_session *session, const uint8_t **data_ptr);
nghttp2_ssize nghttp2_session_mem_recv2(nghttp2_session *session, const uint8_t *in, size_t inlen);
int32_t nghttp2_submit_request2(nghttp2_session *session, const nghttp2_priority_spec *pri_spec,
    const nghttp2_nv *nva, size_t nvlen, const nghttp2_data_provider2 *data_prd, void *stream_user_data);
int nghttp2_submit_response2(nghttp2_session *session, int32_t stream_id,
    const nghttp2_nv *nva, size_t nvlen, const nghttp2_data_provider2 *data_prd);
/* the deprecated ones must not be used on this path */
#define nghttp2_session_mem_send POISONED_deprecated
#define nghttp2_session_mem_recv POISONED_deprecated
#define nghttp2_submit_request POISONED_deprecated
#define nghttp2_submit_response POISONED_deprecated
#define nghttp2_submit_data POISONED_deprecated
#define nghttp2_data_provider POISONED_deprecated
#define nghttp2_data_source_read_callback POISONED_deprecated
