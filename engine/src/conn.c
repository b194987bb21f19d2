/*
 * The connection: codes and settings, nghttp2 in memory mode and its
 * callbacks (request/response semantics), input and output, connection
 * life and the timers. Header blocks are in metadata.c, the event queue
 * in event.c, the call API in call.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "conn.h"
#include "wire.h"

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

static void *libc_malloc(size_t n, void *ud) { (void)ud; return malloc(n); }
static void libc_free(void *p, void *ud) { (void)ud; free(p); }
static void *libc_calloc(size_t a, size_t b, void *ud) { (void)ud; return calloc(a, b); }
static void *libc_realloc(void *p, size_t n, void *ud) { (void)ud; return realloc(p, n); }

/* ------------------------------------------------------------------ */
/* Codes and names                                                     */
/* ------------------------------------------------------------------ */

const char *sgrpc_version(int *num) {
  if (num) *num = SGRPC_VERSION_NUM;
  return SGRPC_VERSION;
}

/* The TLS range of <sgrpc/tls.h> (SGRPC_ERR_TLS_FIRST/LAST there). */
#define SG_ERR_TLS_FIRST (-699)
#define SG_ERR_TLS_LAST (-600)

const char *sgrpc_strerror(int code) {
  switch (code) {
  case 0: return "success";
  case SGRPC_ERR_INVALID_ARGUMENT: return "invalid argument";
  case SGRPC_ERR_INVALID_STATE: return "operation not allowed in the call's state";
  case SGRPC_ERR_WOULDBLOCK: return "send buffer full; wait for a writable event";
  case SGRPC_ERR_CALL_CLOSED: return "call already ended";
  case SGRPC_ERR_MESSAGE_TOO_LARGE: return "message larger than max_send_message_size";
  case SGRPC_ERR_BAD_METADATA: return "metadata key or value not allowed";
  case SGRPC_ERR_NOMEM: return "out of memory";
  case SGRPC_ERR_GOING_AWAY: return "connection accepts no new calls";
  case SGRPC_ERR_EVENTS_PENDING: return "events must be pulled before feeding more input";
  case SGRPC_ERR_PROTOCOL: return "peer violated the HTTP/2 protocol";
  case SGRPC_ERR_CONN_NOMEM: return "out of memory while processing the connection";
  case SGRPC_ERR_CONN_CLOSED: return "connection closed";
  case SGRPC_ERR_HTTP2: return "HTTP/2 layer failure";
  case SGRPC_ERR_METADATA_TOO_LARGE: return "header block larger than the send limit";
  case SGRPC_ERR_BAD_ENCODING: return "unknown or unaccepted compression";
  case SGRPC_ERR_KEEPALIVE_TIMEOUT: return "keepalive ping not acknowledged in time";
  case SGRPC_ERR_SETTINGS_TIMEOUT: return "SETTINGS not acknowledged in time";
  case SGRPC_ERR_TOO_MANY_PINGS: return "too many pings (ENHANCE_YOUR_CALM)";
  /* The TLS seam's codes (SGRPC_ERR_TLS_* of <sgrpc/tls.h>, which the
   * engine does not include: a layer below may not depend on one above;
   * test_tls checks the numbers still match). */
  case -601: return "TLS configuration error (options, certificate, key or CA)";
  case -602: return "TLS handshake failed";
  case -603: return "TLS peer certificate verification failed";
  case -604: return "TLS peer certificate does not match the expected name";
  case -605: return "TLS peer sent no certificate";
  case -606: return "TLS peer did not negotiate ALPN h2";
  case -607: return "malformed TLS data from the peer";
  case -608: return "TLS peer sent a fatal alert";
  case -609: return "TLS session closed by the peer (close_notify)";
  case -610: return "transport ended without TLS close_notify";
  case -611: return "TLS library internal error";
  default: break;
  }
  if (sgrpc_err_errno(code)) return "system error";
  if (code >= SG_ERR_TLS_FIRST && code <= SG_ERR_TLS_LAST) return "unknown TLS error";
  return "unknown error code";
}

int sgrpc_err_errno(int code) {
  return code < SGRPC_ERR_SYSTEM_BASE && code >= SGRPC_ERR_SYSTEM_LAST
             ? SGRPC_ERR_SYSTEM_BASE - code
             : 0;
}

int sgrpc_is_fatal(int code) {
  return code <= SGRPC_ERR_FATAL || (code >= SG_ERR_TLS_FIRST && code <= SG_ERR_TLS_LAST) ||
         sgrpc_err_errno(code) != 0;
}

const char *sgrpc_status_name(int code) {
  static const char *const names[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
      "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  if (code < 0 || code > 16) return "UNKNOWN";
  return names[code];
}

/* Bytes of sgrpc_settings a caller of the given version filled: a new
 * version adds fields at the end, and for an older caller the first field
 * of the next version ends its struct. 0 for an unknown version. */
static size_t settings_size(uint32_t version) {
  switch (version) {
  case SGRPC_SETTINGS_V1: return offsetof(sgrpc_settings, conn_memory_budget);
  case SGRPC_SETTINGS_V2: return sizeof(sgrpc_settings);
  default: return 0;
  }
}

static void settings_fill(sgrpc_settings *s) {
  memset(s, 0, sizeof(*s));
  s->version = SGRPC_SETTINGS_VERSION;
  s->max_recv_message_size = 4u << 20;
  s->max_send_message_size = INT32_MAX;
  s->max_send_buffer = 64u << 10;
  s->max_header_list_size = 16u << 10;
  s->stream_window = 4u << 20;
  s->connection_window = 4u << 20;
  s->max_concurrent_streams = 256;
  s->max_queued_events = 32;
  s->out_chunk = 64u << 10;
  s->scheme = "http";
  s->user_agent = "sgrpc-c/" SGRPC_VERSION;
  s->encoding = NULL;
  s->compress_min_size = 0;
  s->keepalive_time = 0;
  s->keepalive_timeout = 20 * 1000000000ll;
  s->keepalive_permit_without_calls = 0;
  s->min_recv_ping_interval = 300 * 1000000000ll;
  s->max_ping_strikes = 2;
  s->max_send_header_list_size = 16u << 10;
  s->max_outbound_queue = 16u << 20;
  s->settings_timeout = 20 * 1000000000ll;
  s->conn_memory_budget = 64u << 20;
  s->shared_budget = NULL;
}

/* "0 means the default", field by field (keepalive_time's default
 * depends on the role: conn_new resolves it). */
static void settings_resolve(sgrpc_settings *s) {
  sgrpc_settings d;
  settings_fill(&d);
#define SG_DEFAULT(f)                                                          \
  if (!s->f) s->f = d.f
  SG_DEFAULT(max_recv_message_size);
  SG_DEFAULT(max_send_message_size);
  SG_DEFAULT(max_send_buffer);
  SG_DEFAULT(max_header_list_size);
  SG_DEFAULT(stream_window);
  SG_DEFAULT(connection_window);
  SG_DEFAULT(max_concurrent_streams);
  SG_DEFAULT(max_queued_events);
  SG_DEFAULT(out_chunk);
  SG_DEFAULT(scheme);
  SG_DEFAULT(user_agent);
  SG_DEFAULT(min_recv_ping_interval);
  SG_DEFAULT(max_ping_strikes);
  SG_DEFAULT(max_send_header_list_size);
  SG_DEFAULT(max_outbound_queue);
  SG_DEFAULT(settings_timeout);
  SG_DEFAULT(conn_memory_budget);
#undef SG_DEFAULT
  if (s->out_chunk < 1024) s->out_chunk = 1024;
  if (s->keepalive_timeout <= 0) s->keepalive_timeout = d.keepalive_timeout;
}

/* now + d, SGRPC_NEVER when it would not fit. */
static int64_t time_after(int64_t now, int64_t d) {
  return d >= 0 && now <= INT64_MAX - d ? now + d : SGRPC_NEVER;
}

void sgrpc_settings_default_versioned(int version, sgrpc_settings *s) {
  sgrpc_settings d;
  size_t n;
  if (!s) return;
  n = version > 0 ? settings_size((uint32_t)version) : 0;
  if (n) {
    settings_fill(&d);
    memcpy(s, &d, n);
  }
  s->version = (uint32_t)version;
}

int sgrpc_settings_copy(sgrpc_settings *dst, const sgrpc_settings *src) {
  size_t n;
  if (!dst || !src || (n = settings_size(src->version)) == 0)
    return SGRPC_ERR_INVALID_ARGUMENT;
  settings_fill(dst);
  memcpy(dst, src, n);
  dst->version = SGRPC_SETTINGS_VERSION;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Request and response semantics                                      */
/* ------------------------------------------------------------------ */

static int streq(const char *a, size_t alen, const char *lit) {
  size_t n = strlen(lit);
  return alen == n && memcmp(a, lit, n) == 0;
}

/* "application/grpc", optionally followed by "+subtype" or ";params". */
static int content_type_ok(const char *v, size_t n) {
  static const char base[] = "application/grpc";
  const size_t bl = sizeof(base) - 1;
  if (n < bl || memcmp(v, base, bl) != 0) return 0;
  return n == bl || v[bl] == '+' || v[bl] == ';';
}

/* Client: the call fails on something received from the server (a bad
 * response): the status is ours, and our side of the stream is reset. */
static int client_fail(sgrpc_call *call, int code, const char *msg, size_t msg_len) {
  sg_close_info ci = {code, msg, msg_len, .send_rst = 1};
  return sg_call_client_finish(call, &ci);
}

/* Client: the call fails as the server's side ends (bad trailers, a
 * stream ended without them): nothing left to reset. */
static int client_end(sgrpc_call *call, int code, const char *msg, size_t msg_len) {
  sg_close_info ci = {.code = code, .msg = msg, .msg_len = msg_len};
  return sg_call_client_finish(call, &ci);
}

/* Client: the server has finished the call while our side may still be
 * open (e.g. a stream still sending): reset it so the stream closes. */
static void client_end_stream(sgrpc_conn *c, sgrpc_call *call) {
  if ((call->flags & SG_CF_STREAM_OPEN) &&
      nghttp2_session_get_stream_local_close(c->session, call->stream_id) == 0)
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                              NGHTTP2_NO_ERROR);
}

/* Client: the first HEADERS of a response. */
static int client_on_response(sgrpc_conn *c, sgrpc_call *call, int end_stream) {
  sg_hdrs *h = &call->hin;
  uint32_t i;
  int http = -1, ct_ok = 0, has_status = 0;
  const char *enc = NULL;
  char msg[64];

  call->recv |= SG_RF_HEADERS;
  if (h->invalid) {
    return client_fail(call, SGRPC_STATUS_INTERNAL, SG_LIT("malformed response header field"));
  }
  if (h->overflow) {
    return client_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED,
                       SG_LIT("response header list too large"));
  }
  for (i = 0; i < h->nfields; i++) {
    sg_field *f = &h->fields[i];
    const char *v = sg_field_value(h, f);
    if (f->kind == SG_HK_STATUS) {
      if (f->value_len == 3 && v[0] >= '1' && v[0] <= '9' && v[1] >= '0' &&
          v[1] <= '9' && v[2] >= '0' && v[2] <= '9')
        http = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
    } else if (f->kind == SG_HK_CONTENT_TYPE) {
      ct_ok = content_type_ok(v, f->value_len);
    } else if (f->kind == SG_HK_ENCODING) {
      enc = v;
    } else if (f->kind == SG_HK_GRPC_STATUS) {
      has_status = 1;
    }
  }
  if (http < 0) {
    return client_fail(call, SGRPC_STATUS_INTERNAL, SG_LIT("malformed response: missing :status"));
  }
  if (http >= 100 && http < 200) { /* informational: wait for the real one */
    call->recv &= (uint8_t)~SG_RF_HEADERS;
    sg_budget_give(c, h->total);
    sg_hdrs_reset(h);
    return 0;
  }
  if (http != 200) {
    size_t n;
    memcpy(msg, SG_LIT("unexpected HTTP status "));
    n = SG_LITLEN("unexpected HTTP status ");
    msg[n++] = (char)('0' + http / 100);
    msg[n++] = (char)('0' + http / 10 % 10);
    msg[n++] = (char)('0' + http % 10);
    msg[n] = 0;
    return client_fail(call, sg_http_to_grpc_status(http), msg, n);
  }
  /* A trailers-only response carrying grpc-status is taken at its word
   * whatever its content-type, as C-core and grpc-js do: some servers
   * (grpclib) answer an unknown method without one. A response that goes
   * on to messages keeps the check. */
  if (!ct_ok && !(end_stream && has_status)) {
    return client_fail(call, SGRPC_STATUS_UNKNOWN, SG_LIT("invalid content-type in response"));
  }
  call->recv_enc = (int8_t)(enc ? sg_enc_parse(enc, strlen(enc)) : SG_ENC_IDENTITY);
  if (call->recv_enc == SG_ENC_UNKNOWN && !end_stream) {
    return client_fail(call, SGRPC_STATUS_INTERNAL,
                       SG_LIT("response uses an unsupported grpc-encoding"));
  }
  if (end_stream) { /* trailers-only */
    sg_event *e = sg_event_push(c, SGRPC_EV_CLOSE, call);
    if (!e) return -1;
    if (sg_hdrs_parse_status(c, h, &e->ev.u.close.status) != 0) return -1;
    sg_call_set_closed(call);
    call->recv |= SG_RF_END;
    sg_call_heap_remove(call);
    client_end_stream(c, call);
    return 0;
  } else {
    sg_event *e;
    int rv = sg_hdrs_build_md(c, h);
    if (rv == -1) return -1;
    if (rv == -2) {
      return client_fail(call, SGRPC_STATUS_INTERNAL,
                         SG_LIT("malformed binary metadata in response"));
    }
    e = sg_event_push(c, SGRPC_EV_HEADERS, call);
    if (!e) return -1;
    sg_hdrs_fix_md(h);
    e->ev.u.headers.md = h->md;
    e->ev.u.headers.md_count = h->nmd;
    e->ev.u.headers.encoding = enc ? enc : "";
    return 0;
  }
}

/* Client: a later HEADERS block (trailers). */
static int client_on_trailers(sgrpc_conn *c, sgrpc_call *call, int end_stream) {
  sg_hdrs *h = call->htr; /* set by on_begin_headers for this block */
  sg_event *e;
  if (!end_stream) {
    return client_fail(call, SGRPC_STATUS_INTERNAL,
                       SG_LIT("second header block without END_STREAM"));
  }
  call->recv |= SG_RF_END;
  if (h && !h->invalid) { /* a pseudo-header makes trailers malformed (8.1.2.1) */
    uint32_t i;
    for (i = 0; i < h->nfields; i++)
      if (sg_kind_is_pseudo(h->fields[i].kind)) h->invalid = 1;
  }
  if (!h || h->invalid) {
    return client_end(call, SGRPC_STATUS_INTERNAL, SG_LIT("malformed trailer field"));
  }
  if (h->overflow) {
    return client_end(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, SG_LIT("trailer list too large"));
  }
  if (call->pfx_have || call->msg_need) {
    return client_end(call, SGRPC_STATUS_INTERNAL, SG_LIT("stream ended inside a message"));
  }
  e = sg_event_push(c, SGRPC_EV_CLOSE, call);
  if (!e) return -1;
  if (sg_hdrs_parse_status(c, h, &e->ev.u.close.status) != 0) return -1;
  sg_call_set_closed(call);
  sg_call_heap_remove(call);
  client_end_stream(c, call);
  return 0;
}

/* Server: the request stream broke HTTP/2's message rules after the
 * request headers (RFC 7540 8.1.2.6, 8.1): reset it with PROTOCOL_ERROR
 * and drop what else comes. A surfaced call then gets its CLOSE from
 * on_stream_close. Returns 0 or NGHTTP2_ERR_CALLBACK_FAILURE. */
static int server_malformed(sgrpc_conn *c, sgrpc_call *call) {
  if (call->recv & SG_RF_MALFORMED) return 0;
  call->recv |= SG_RF_DISCARD | SG_RF_MALFORMED;
  if (nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                NGHTTP2_PROTOCOL_ERROR) != 0)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  return 0;
}

/* Server: a content-length value (RFC 9110 8.6: digits only). Returns 0
 * and sets *n, or -1 when it is not a plain decimal that fits. */
static int parse_content_length(const char *v, size_t len, uint64_t *n) {
  uint64_t x = 0;
  size_t i;
  if (len == 0 || len > 18) return -1;
  for (i = 0; i < len; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  *n = x;
  return 0;
}

/* Server: a complete request header block. Returns 0, -1 (no memory) or
 * an nghttp2 error code to reset the stream with. */
static int server_on_request(sgrpc_conn *c, sgrpc_call *call, int end_stream) {
  sg_hdrs *h = &call->hin;
  uint32_t i;
  const sg_field *method = NULL, *path = NULL, *scheme = NULL, *authority = NULL,
                 *ct = NULL, *te = NULL, *timeout = NULL, *ua = NULL, *enc = NULL,
                 *aenc = NULL;
  int64_t tmo = -1;
  sg_event *e;
  int rv;

  /* Ended while its header block was still arriving (a drain deadline
   * passed between HEADERS and the last CONTINUATION): the status went
   * out then, and the user, who was never told of the call, never is. */
  if (call->state == SG_CALL_CLOSED) return 0;
  if (h->invalid) return NGHTTP2_PROTOCOL_ERROR;
  for (i = 0; i < h->nfields; i++) {
    const sg_field *f = &h->fields[i];
    const sg_field **slot = NULL;
    switch (f->kind) {
    case SG_HK_METHOD: slot = &method; break;
    case SG_HK_PATH: slot = &path; break;
    case SG_HK_SCHEME: slot = &scheme; break;
    case SG_HK_AUTHORITY: slot = &authority; break;
    case SG_HK_PSEUDO:
    case SG_HK_STATUS: return NGHTTP2_PROTOCOL_ERROR; /* unknown or response pseudo-header */
    case SG_HK_CONTENT_TYPE: ct = f; continue;
    case SG_HK_TE: te = f; continue;
    case SG_HK_TIMEOUT: timeout = f; continue;
    case SG_HK_USER_AGENT: ua = f; continue;
    case SG_HK_ENCODING: enc = f; continue;
    case SG_HK_ACCEPT_ENCODING: aenc = f; continue;
    case SG_HK_CONTENT_LENGTH:
      /* HTTP/2 8.1.2.6: the DATA must add up to it (checked as it comes);
       * a second or unparsable one makes the request malformed. */
      if ((call->recv & SG_RF_CLEN) ||
          parse_content_length(sg_field_value(h, f), f->value_len, &call->clen_left) != 0)
        return NGHTTP2_PROTOCOL_ERROR;
      call->recv |= SG_RF_CLEN;
      continue;
    case SG_HK_CONN_SPECIFIC:
      return NGHTTP2_PROTOCOL_ERROR; /* connection-specific, RFC 7540 8.1.2.2 */
    default: continue;
    }
    if (*slot) return NGHTTP2_PROTOCOL_ERROR; /* duplicated */
    if (i > 0 && !sg_kind_is_pseudo(h->fields[i - 1].kind))
      return NGHTTP2_PROTOCOL_ERROR; /* pseudo-header after a regular one */
    *slot = f;
  }
  /* Over the limit or the budget, fields were dropped (even the
   * pseudo-headers): the answer is the limit, not a malformed request. */
  if (h->overflow) {
    return sg_call_server_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED,
                               "request header list too large", 0);
  }
  if (!method || !path || !scheme || path->value_len == 0)
    return NGHTTP2_PROTOCOL_ERROR;
  if (end_stream && (call->recv & SG_RF_CLEN) && call->clen_left != 0)
    return NGHTTP2_PROTOCOL_ERROR; /* announced a body, sent none */
  if (!streq(sg_field_value(h, method), method->value_len, "POST")) {
    return sg_call_server_fail(call, -405, NULL, 0);
  }
  if (!ct || !content_type_ok(sg_field_value(h, ct), ct->value_len)) {
    return sg_call_server_fail(call, -415, "Unacceptable content-type header", 0);
  }
  if (te && !streq(sg_field_value(h, te), te->value_len, "trailers")) {
    return sg_call_server_fail(call, -400, "Required \"te: trailers\" header", 0);
  }
  if (timeout && sgrpc_timeout_decode(sg_field_value(h, timeout), timeout->value_len, &tmo) != 0) {
    return sg_call_server_fail(call, SGRPC_STATUS_INTERNAL,
                               "Invalid grpc-timeout header", 0);
  }
  call->recv_enc = (int8_t)(enc ? sg_enc_parse(sg_field_value(h, enc), enc->value_len)
                                : SG_ENC_IDENTITY);
  if (call->recv_enc == SG_ENC_UNKNOWN) {
    /* The trailers-only answer advertises grpc-accept-encoding. */
    return sg_call_server_fail(call, SGRPC_STATUS_UNIMPLEMENTED,
                               "Unsupported grpc-encoding", 0);
  }
  call->accept_mask = 1u << SG_ENC_IDENTITY;
  if (aenc) {
    int k;
    for (k = 1; k < SG_ENC_COUNT; k++)
      if (sg_enc_accepted(sg_field_value(h, aenc), aenc->value_len, k))
        call->accept_mask |= (uint8_t)(1u << k);
  }
  call->send_enc = (call->accept_mask >> c->default_enc) & 1 ? c->default_enc : SG_ENC_IDENTITY;
  rv = sg_hdrs_build_md(c, h);
  if (rv == -1) return -1;
  if (rv == -2) {
    return sg_call_server_fail(call, SGRPC_STATUS_INTERNAL,
                               "Malformed binary metadata", 0);
  }
  /* Everything below points into the store, which no longer moves. */
  {
    static const char empty[] = "";
    e = sg_event_push(c, SGRPC_EV_CALL_NEW, call);
    if (!e) return -1;
    sg_hdrs_fix_md(h);
    e->ev.u.call_new.path = sg_field_value(h, path);
    e->ev.u.call_new.path_len = path->value_len;
    e->ev.u.call_new.authority = authority ? sg_field_value(h, authority) : empty;
    e->ev.u.call_new.user_agent = ua ? sg_field_value(h, ua) : empty;
    e->ev.u.call_new.content_type = sg_field_value(h, ct);
    e->ev.u.call_new.encoding = enc ? sg_field_value(h, enc) : empty;
    e->ev.u.call_new.accept_encoding = aenc ? sg_field_value(h, aenc) : empty;
    e->ev.u.call_new.md = h->md;
    e->ev.u.call_new.md_count = h->nmd;
    if (tmo >= 0) {
      call->deadline = tmo > INT64_MAX - c->now ? SGRPC_NEVER : c->now + tmo;
    }
    e->ev.u.call_new.deadline = call->deadline;
  }
  /* The call now belongs to the user. */
  call->flags &= (uint8_t)~SG_CF_RELEASED;
  sg_call_opened(call);
  if (call->deadline != SGRPC_NEVER) sg_call_heap_add(call);
  if (end_stream) {
    call->recv |= SG_RF_END;
    if (!sg_event_push(c, SGRPC_EV_HALF_CLOSE, call)) return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* nghttp2 callbacks                                                   */
/* ------------------------------------------------------------------ */

static sgrpc_call *stream_call(sgrpc_conn *c, int32_t stream_id) {
  return nghttp2_session_get_stream_user_data(c->session, stream_id);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud) {
  sgrpc_conn *c = ud;
  sgrpc_call *call;
  c->hblock = NULL;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (c->role == SG_ROLE_SERVER && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (c->goaway_final && frame->hd.stream_id > c->goaway_last_id) {
      /* Beyond the last id our GOAWAY announced: never a call. The peer
       * may retry it elsewhere; REFUSED_STREAM says it was not run. */
      int rv = nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                         NGHTTP2_REFUSED_STREAM);
      return rv == 0 || !nghttp2_is_fatal(rv) ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    call = sg_call_new(c);
    if (!call) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    call->stream_id = frame->hd.stream_id;
    call->flags |= SG_CF_STREAM_OPEN;
    call->flags |= SG_CF_RELEASED; /* engine-owned until CALL_NEW is queued */
    if (nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, call) != 0) {
      call->flags &= (uint8_t)~SG_CF_STREAM_OPEN;
      sg_call_maybe_free(call);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    sg_call_take_spare_hdrs(c, call);
    c->hblock = &call->hin;
    c->hblock_stream = frame->hd.stream_id;
    return 0;
  }
  call = stream_call(c, frame->hd.stream_id);
  if (!call) return 0;
  if (c->role == SG_ROLE_CLIENT && !(call->recv & SG_RF_HEADERS)) {
    c->hblock = &call->hin;
  } else {
    /* trailers (a server's request trailers: collected, checked, then
     * ignored); without memory for them nghttp2 resets the stream */
    if (!call->htr) {
      call->htr = c->mem.calloc(1, sizeof(*call->htr), c->mem.user_data);
      if (!call->htr) {
        c->hblock = NULL;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
    }
    c->hblock = call->htr;
  }
  c->hblock_stream = frame->hd.stream_id;
  sg_budget_give(c, c->hblock->total);
  sg_hdrs_reset(c->hblock);
  return 0;
}

/* The call fails on what it received: no more of its DATA is kept, and
 * the buffer it was reassembling into goes back (allocator and budget). */
static void fail_on_receive(sgrpc_conn *c, sgrpc_call *call, int code, const char *msg) {
  call->recv |= SG_RF_DISCARD;
  sg_budget_give(c, call->rbuf.cap);
  sg_buf_free(&c->mem, &call->rbuf);
  if (c->role == SG_ROLE_SERVER) {
    sg_call_server_fail(call, code, msg, 1);
  } else {
    client_fail(call, code, msg, strlen(msg));
  }
}

/* Completes the message in progress into a MESSAGE event. data is the
 * zero-copy body (NULL when the body is in call->rbuf). remaining is the
 * number of chunk bytes after the message's end. A compressed message is
 * inflated into a buffer the event owns. Returns 0 (the call may have
 * failed: check (call->recv & SG_RF_DISCARD)) or -1 (no memory). */
static int emit_message(sgrpc_conn *c, sgrpc_call *call, const uint8_t *data,
                        size_t remaining) {
  const uint8_t *body = data ? data : call->rbuf.p;
  sg_buf dec;
  sg_event *e;
  memset(&dec, 0, sizeof(dec));
  if (call->msg_compressed) {
    int rv;
    size_t had;
    dec = call->spare; /* counted as the call's */
    memset(&call->spare, 0, sizeof(call->spare));
    dec.len = dec.off = 0;
    had = dec.cap;
    rv = sg_decompress(c, call->recv_enc, body, call->msg_len,
                       c->settings.max_recv_message_size, &dec);
    if (rv == 0 && dec.cap > had) {
      if (sg_budget_fits(c, dec.cap - had)) sg_budget_take(c, dec.cap - had);
      else rv = -4;
    }
    if (rv != 0) {
      sg_buf_free(&c->mem, &dec);
      sg_budget_give(c, had);
      if (rv == -1) return -1;
      fail_on_receive(c, call,
                      rv <= -3 ? SGRPC_STATUS_RESOURCE_EXHAUSTED : SGRPC_STATUS_INTERNAL,
                      rv == -3   ? "decompressed message larger than max_recv_message_size"
                      : rv == -4 ? "connection memory budget exhausted"
                                 : "message could not be decompressed");
      return 0;
    }
  }
  e = sg_event_push(c, SGRPC_EV_MESSAGE, call);
  if (!e) {
    sg_budget_give(c, dec.cap);
    sg_buf_free(&c->mem, &dec);
    return -1;
  }
  /* A buffer the event takes stays counted, as the event's, until it is
   * released (sg_event_retire); it drains without more input. */
  if (call->msg_compressed) {
    e->owned = dec;
    e->ev.u.message.data = dec.p ? dec.p : (const uint8_t *)"";
    e->ev.u.message.len = dec.len;
    e->counted = dec.cap;
    c->mem_drain += dec.cap;
    call->rbuf.len = 0; /* the compressed copy stays with the call for reuse */
  } else {
    if (data) {
      e->ev.u.message.data = data;
    } else {
      e->owned = call->rbuf;
      e->ev.u.message.data = e->owned.p;
      e->counted = call->rbuf.cap;
      c->mem_drain += call->rbuf.cap;
      call->rbuf = call->spare;
      memset(&call->spare, 0, sizeof(call->spare));
    }
    e->ev.u.message.len = call->msg_len;
  }
  e->ev.u.message.compressed = call->msg_compressed;
  e->credit_stream = call->stream_id;
  e->credit = call->held - remaining;
  call->held = remaining;
  call->pfx_have = 0;
  call->msg_need = 0;
  c->stats.messages_received++;
  return 0;
}

/* Makes room in the reassembly buffer for take more bytes of the current
 * message. It grows with the bytes that came, never with the announced
 * length (a peer announcing 4 MiB and sending 5 bytes costs 256), by
 * doubling, capped at the message's length; near the budget's end, to
 * exactly what is needed. The capacity is what the budget counts.
 * `arrived` is how many more bytes of input sgrpc_conn_recv was handed
 * after this chunk: they are here already, so the buffer is sized for
 * them at once (up to the message's end) instead of doubling through
 * them, which saves reallocations and their copies for a large message
 * (a 64 KiB read holding a 64 KiB message: one allocation, not four).
 * Returns 0, -1 (no memory) or -2 (it would pass the budget). */
/* Buffers this large are worth keeping for the next message: below it
 * growing a fresh one is cheap (no page faults, malloc's own reuse). */
#define SG_SPARE_MIN (64u << 10)

void sg_spare_park(sgrpc_conn *c, uint8_t *p, size_t cap) {
  if (!c->session || cap < SG_SPARE_MIN || (c->big_spare.p && c->big_spare.cap >= cap)) {
    c->mem.free(p, c->mem.user_data);
    return;
  }
  sg_spare_drop(c);
  /* kept only while it takes at most half of the room left in the
   * budgets: what is kept for speed must not crowd out calls */
  if (cap > SIZE_MAX / 2 || !sg_budget_fits_now(c, 2 * cap)) {
    c->mem.free(p, c->mem.user_data);
    return;
  }
  sg_budget_take(c, cap);
  c->big_spare.p = p;
  c->big_spare.cap = cap;
}

void sg_spare_drop(sgrpc_conn *c) {
  if (!c->big_spare.p) return;
  sg_budget_give(c, c->big_spare.cap);
  sg_buf_free(&c->mem, &c->big_spare);
}

/* A message starting to arrive into an empty reassembly buffer takes the
 * kept large buffer instead of growing a new one through realloc copies
 * and fresh pages (a 1 MiB echo: a quarter of the server's CPU went to
 * page faults and realloc). Only for a message at least half the kept
 * buffer's size, so a small message does not sit on a large buffer;
 * the buffer is already counted, so the budget does not change. */
static void rbuf_adopt_spare(sgrpc_conn *c, sgrpc_call *call) {
  sg_buf *b = &call->rbuf;
  if (!c->big_spare.p || b->len || c->big_spare.cap <= b->cap ||
      c->big_spare.cap / 2 > call->msg_len)
    return;
  if (b->p) {
    sg_budget_give(c, b->cap);
    sg_buf_free(&c->mem, b);
  }
  *b = c->big_spare;
  memset(&c->big_spare, 0, sizeof(c->big_spare));
}

static int rbuf_grow(sgrpc_conn *c, sgrpc_call *call, size_t take, size_t arrived) {
  sg_buf *b = &call->rbuf;
  size_t need = b->len + take, cap;
  uint8_t *np;
  if (b->cap >= need) return 0;
  rbuf_adopt_spare(c, call);
  if (b->cap >= need) return 0;
  cap = b->cap < 256 ? 256 : b->cap;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  if (arrived > call->msg_len) arrived = call->msg_len;
  if (cap < need + arrived && need + arrived >= need) cap = need + arrived;
  if (cap > call->msg_len) cap = call->msg_len; /* need <= msg_len */
  if (!sg_budget_fits(c, cap - b->cap)) {
    cap = need;
    if (!sg_budget_fits(c, cap - b->cap)) return -2;
  }
  np = sg_realloc(c, b->p, cap);
  if (!np) return -1;
  sg_budget_take(c, cap - b->cap);
  b->p = np;
  b->cap = cap;
  return 0;
}

static int on_data_chunk_recv(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *ud) {
  sgrpc_conn *c = ud;
  sgrpc_call *call = stream_call(c, stream_id);
  size_t pos = 0;
  int rv;
  (void)s;
  (void)flags;
  /* Connection credit goes back as bytes arrive, unless received
   * messages the application holds and queued output fill half the
   * budget: then the peer is held until they drain (sg_budget_give). */
  if (sg_budget_withhold(c)) {
    c->conn_withheld += len;
  } else {
    rv = nghttp2_session_consume_connection(c->session, len);
    if (rv != 0 && nghttp2_is_fatal(rv)) {
      c->fatal = sg_map_nghttp2_error(rv);
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  if (call && (call->recv & SG_RF_CLEN) && !(call->recv & SG_RF_MALFORMED)) {
    if (len > call->clen_left) { /* more DATA than content-length */
      sg_credit(c, stream_id, len);
      return server_malformed(c, call);
    }
    call->clen_left -= len;
  }
  if (!call || (call->recv & SG_RF_DISCARD) || call->state == SG_CALL_CLOSED) {
    sg_credit(c, stream_id, len);
    return 0;
  }
  call->held += len;
  while (pos < len && !(call->recv & SG_RF_DISCARD)) {
    if (call->pfx_have < 5) {
      size_t take = 5 - call->pfx_have;
      if (take > len - pos) take = len - pos;
      memcpy(call->pfx + call->pfx_have, data + pos, take);
      call->pfx_have = (uint8_t)(call->pfx_have + take);
      pos += take;
      if (call->pfx_have < 5) break;
      call->msg_len = (uint32_t)call->pfx[1] << 24 | (uint32_t)call->pfx[2] << 16 |
                      (uint32_t)call->pfx[3] << 8 | call->pfx[4];
      if (call->pfx[0] > 1) {
        fail_on_receive(c, call, SGRPC_STATUS_INTERNAL, "invalid message flags");
        break;
      }
      call->msg_compressed = call->pfx[0];
      if (call->msg_compressed && call->recv_enc <= SG_ENC_IDENTITY) {
        fail_on_receive(c, call, SGRPC_STATUS_INTERNAL,
                        "compressed message without grpc-encoding");
        break;
      }
      if (call->msg_len > c->settings.max_recv_message_size) {
        fail_on_receive(c, call, SGRPC_STATUS_RESOURCE_EXHAUSTED,
                        "received message larger than max_recv_message_size");
        break;
      }
      call->msg_need = call->msg_len;
      call->rbuf.len = 0;
      if (call->msg_need == 0) {
        if (emit_message(c, call, (const uint8_t *)"", len - pos) != 0)
          return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      continue;
    }
    if (call->rbuf.len == 0 && len - pos >= call->msg_need) {
      /* zero-copy: the whole body is in this chunk */
      const uint8_t *body = data + pos;
      pos += call->msg_need;
      if (emit_message(c, call, body, len - pos) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
      continue;
    } else {
      size_t take = call->msg_need;
      if (take > len - pos) take = len - pos;
      {
        /* input bytes after this chunk (DATA chunks point into it) */
        const uint8_t *end = data + len;
        size_t arrived = end >= c->in_begin && end <= c->in_end ? (size_t)(c->in_end - end) : 0;
        rv = rbuf_grow(c, call, take, arrived);
      }
      if (rv == -2) {
        fail_on_receive(c, call, SGRPC_STATUS_RESOURCE_EXHAUSTED,
                        "connection memory budget exhausted");
        break;
      }
      if (rv != 0) {
        c->fatal = SGRPC_ERR_CONN_NOMEM;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      memcpy(call->rbuf.p + call->rbuf.len, data + pos, take);
      call->rbuf.len += take;
      pos += take;
      call->msg_need -= (uint32_t)take;
      if (call->msg_need == 0) {
        if (emit_message(c, call, NULL, len - pos) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
    }
  }
  if (call->recv & SG_RF_DISCARD) { /* failed above: give all credit back now */
    size_t h = call->held;
    call->held = 0;
    sg_credit(c, stream_id, h);
  } else if (call->held >= c->settings.stream_window / 2) {
    /* A message larger than half the window could never complete if
     * credit waited for it: the bytes sit in bounded reassembly memory. */
    size_t h = call->held;
    call->held = 0;
    sg_credit(c, stream_id, h);
  }
  if (c->evq_len >= c->settings.max_queued_events) {
    c->paused = 1;
    return NGHTTP2_ERR_PAUSE;
  }
  return 0;
}

/* A GOAWAY with the last processed stream id was just queued: nghttp2
 * stamps it with that id now, so later request streams are above it. */
static void sg_goaway_final(sgrpc_conn *c) {
  c->goaway_final = 1;
  c->goaway_last_id = nghttp2_session_get_last_proc_stream_id(c->session);
}

/* Server: grpc-core's ping abuse policy. A ping sooner than allowed after
 * the previous one is a strike; too many strikes end the connection with
 * GOAWAY ENHANCE_YOUR_CALM "too_many_pings". */
static int ping_policy(sgrpc_conn *c) {
  int64_t interval = (c->open_calls || c->settings.keepalive_permit_without_calls)
                         ? c->settings.min_recv_ping_interval
                         : 7200 * 1000000000ll;
  int strike = c->last_ping_recv != INT64_MIN && c->now - c->last_ping_recv < interval;
  c->last_ping_recv = c->now;
  if (!strike) return 0;
  if (++c->ping_strikes <= c->settings.max_ping_strikes) return 0;
  if (nghttp2_submit_goaway(
          c->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->session),
          NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)SG_LIT("too_many_pings")) != 0)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  sg_goaway_final(c);
  c->goaway_sent = 1;
  c->fatal = SGRPC_ERR_TOO_MANY_PINGS;
  return 0;
}

/* Server graceful shutdown, second step: the GOAWAY with the real last
 * stream id, sent once the PING that followed the notice came back. */
int sg_shutdown_final(sgrpc_conn *c) {
  int rv;
  if (c->shutdown != 1) return 0;
  c->shutdown = 2;
  c->shutdown_ping_deadline = SGRPC_NEVER;
  rv = nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                             nghttp2_session_get_last_proc_stream_id(c->session),
                             NGHTTP2_NO_ERROR, NULL, 0);
  if (rv == 0) sg_goaway_final(c);
  return rv == 0 || !nghttp2_is_fatal(rv) ? 0 : -1;
}

/* Server: the client ended its side (END_STREAM on DATA, or on a
 * trailer block): HALF_CLOSE, or INTERNAL when a message was cut short. */
static int server_recv_end(sgrpc_conn *c, sgrpc_call *call) {
  if ((call->recv & SG_RF_CLEN) && call->clen_left != 0)
    return server_malformed(c, call); /* less DATA than content-length */
  call->recv |= SG_RF_END;
  if (call->pfx_have || call->msg_need) {
    fail_on_receive(c, call, SGRPC_STATUS_INTERNAL, "request ended inside a message");
  } else if (!(call->flags & SG_CF_RELEASED) && !sg_event_push(c, SGRPC_EV_HALF_CLOSE, call)) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud) {
  sgrpc_conn *c = ud;
  sgrpc_call *call;
  int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  int rv;
  c->last_recv = c->now;
  switch (frame->hd.type) {
  case NGHTTP2_SETTINGS:
    if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
      c->settings_acked = 1;
      c->settings_deadline = SGRPC_NEVER;
    } else if (!c->ready) {
      c->ready = 1;
      if (!sg_event_push(c, SGRPC_EV_READY, NULL)) return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  case NGHTTP2_HEADERS:
    call = stream_call(c, frame->hd.stream_id);
    if (!call) return 0;
    if (c->role == SG_ROLE_SERVER) {
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        rv = server_on_request(c, call, end);
        if (rv == -1) return NGHTTP2_ERR_CALLBACK_FAILURE;
        if (rv > 0) {
          /* malformed request: reset, the user never sees it */
          if (nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                        (uint32_t)rv) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
      }
      /* A later block is trailers: it must end the stream and carry no
       * pseudo-header (RFC 7540 8.1, 8.1.2.1); otherwise the stream is
       * malformed. Well-formed trailers end the client's messages. */
      if (call->recv & SG_RF_MALFORMED) return 0;
      if (!end || !call->htr || call->htr->invalid) return server_malformed(c, call);
      {
        uint32_t i;
        for (i = 0; i < call->htr->nfields; i++)
          if (sg_kind_is_pseudo(call->htr->fields[i].kind)) return server_malformed(c, call);
      }
      if (call->state != SG_CALL_CLOSED && !(call->recv & SG_RF_END))
        return server_recv_end(c, call);
      return 0;
    }
    if (call->state == SG_CALL_CLOSED) return 0;
    rv = (call->recv & SG_RF_HEADERS) ? client_on_trailers(c, call, end)
                           : client_on_response(c, call, end);
    return rv == -1 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
  case NGHTTP2_DATA:
    if (!end) return 0;
    call = stream_call(c, frame->hd.stream_id);
    if (!call || (call->recv & SG_RF_MALFORMED)) return 0;
    if (c->role == SG_ROLE_SERVER && (call->recv & SG_RF_CLEN) && call->clen_left != 0)
      return server_malformed(c, call); /* less DATA than content-length */
    if (call->state == SG_CALL_CLOSED) return 0;
    if (c->role == SG_ROLE_SERVER) return server_recv_end(c, call);
    call->recv |= SG_RF_END;
    client_end(call, SGRPC_STATUS_INTERNAL,
               SG_LIT("server closed the stream without sending trailers"));
    return 0;
  case NGHTTP2_PING: {
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) v = v << 8 | frame->ping.opaque_data[i];
    if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
      sg_event *e;
      if (v == SG_PING_KEEPALIVE) {
        c->ka_ack_deadline = SGRPC_NEVER;
        return 0;
      }
      if (v == SG_PING_SHUTDOWN) {
        return sg_shutdown_final(c) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      e = sg_event_push(c, SGRPC_EV_PING_ACK, NULL);
      if (!e) return NGHTTP2_ERR_CALLBACK_FAILURE;
      e->ev.u.ping_ack.opaque = v;
      return 0;
    }
    if (c->role == SG_ROLE_SERVER) return ping_policy(c);
    return 0;
  }
  case NGHTTP2_GOAWAY: {
    sg_event *e;
    c->goaway_recv = 1;
    c->goaway_debug.len = 0;
    if (sg_buf_append(&c->mem, &c->goaway_debug, frame->goaway.opaque_data,
                      frame->goaway.opaque_data_len) != 0)
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (frame->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM &&
        frame->goaway.opaque_data_len == SG_LITLEN("too_many_pings") &&
        memcmp(frame->goaway.opaque_data, SG_LIT("too_many_pings")) == 0 &&
        c->ka_time != SGRPC_NEVER) {
      /* as grpc-core: the server wants fewer pings, so ping half as often */
      c->ka_time = c->ka_time > INT64_MAX / 2 ? SGRPC_NEVER : c->ka_time * 2;
    }
    e = sg_event_push(c, SGRPC_EV_GOAWAY, NULL);
    if (!e) return NGHTTP2_ERR_CALLBACK_FAILURE;
    e->ev.u.goaway.error_code = frame->goaway.error_code;
    e->ev.u.goaway.last_stream_id = frame->goaway.last_stream_id;
    e->ev.u.goaway.debug = c->goaway_debug.p;
    e->ev.u.goaway.debug_len = c->goaway_debug.len;
    return 0;
  }
  default:
    return 0;
  }
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud) {
  sgrpc_conn *c = ud;
  sgrpc_call *call;
  if (c->role != SG_ROLE_SERVER) return 0;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  /* as grpc-core: sending headers or data forgives earlier pings */
  c->ping_strikes = 0;
  c->last_ping_recv = INT64_MIN;
  if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
  call = stream_call(c, frame->hd.stream_id);
  if (!call) return 0;
  call->send |= SG_SF_STATUS_SENT;
  /* The response is complete while the client may still be sending: tell
   * it to stop, as HTTP/2 section 8.1 allows. */
  if (!(call->recv & SG_RF_END) &&
      nghttp2_session_get_stream_remote_close(s, frame->hd.stream_id) == 0) {
    if (nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR) != 0)
      return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static sgrpc_call *find_call(sgrpc_conn *c, int32_t stream_id) {
  sgrpc_call *call;
  for (call = c->calls; call; call = call->next)
    if (call->stream_id == stream_id && (call->flags & SG_CF_STREAM_OPEN)) return call;
  return NULL;
}

static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *frame,
                             int lib_error_code, void *ud) {
  sgrpc_conn *c = ud;
  sgrpc_call *call;
  (void)s;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (c->role != SG_ROLE_CLIENT || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  /* A request that never left: the stream was never opened, so no
   * stream-close callback will come. */
  call = find_call(c, frame->hd.stream_id);
  if (!call) return 0;
  call->flags &= (uint8_t)~SG_CF_STREAM_OPEN;
  if (call->state != SG_CALL_CLOSED) {
    sg_close_info ci = {SGRPC_STATUS_UNAVAILABLE,
                        SG_LIT("request could not be sent on this connection"),
                        .retry_safe = 1};
    sg_call_client_finish(call, &ci);
  }
  (void)lib_error_code;
  sg_call_maybe_free(call);
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code,
                           void *ud) {
  sgrpc_conn *c = ud;
  sgrpc_call *call = stream_call(c, stream_id);
  if (!call) return 0;
  nghttp2_session_set_stream_user_data(s, stream_id, NULL);
  call->flags &= (uint8_t)~SG_CF_STREAM_OPEN;
  if (call->held) {
    size_t h = call->held;
    call->held = 0;
    sg_credit(c, stream_id, h);
  }
  if (call->state != SG_CALL_CLOSED) {
    if (c->role == SG_ROLE_CLIENT) {
      int code = sg_rst_to_grpc_status(error_code);
      const char *msg = "stream reset by peer";
      uint8_t retry = error_code == NGHTTP2_REFUSED_STREAM;
      if (error_code == NGHTTP2_REFUSED_STREAM) msg = "stream refused by server";
      sg_close_info ci = {code, msg, strlen(msg), .reset = 1, .h2err = error_code,
                          .retry_safe = retry};
      sg_call_client_finish(call, &ci);
    } else if (!(call->flags & SG_CF_RELEASED)) {
      sg_event *e = sg_event_push(c, SGRPC_EV_CLOSE, call);
      if (e) {
        if (call->send & SG_SF_STATUS_SENT) {
          e->ev.u.close.status.code = call->sent_code;
          e->ev.u.close.status.message = "";
        } else if (call->recv & SG_RF_MALFORMED) {
          e->ev.u.close.status.code = SGRPC_STATUS_INTERNAL;
          e->ev.u.close.status.message = "malformed request stream";
          e->ev.u.close.status.message_len = SG_LITLEN("malformed request stream");
          e->ev.u.close.reset = 1;
          e->ev.u.close.http2_error = error_code;
        } else {
          e->ev.u.close.status.code = SGRPC_STATUS_CANCELLED;
          e->ev.u.close.status.message = "call cancelled by the client";
          e->ev.u.close.status.message_len = SG_LITLEN("call cancelled by the client");
          e->ev.u.close.reset = 1;
          e->ev.u.close.http2_error = error_code;
        }
        sg_call_set_closed(call);
      } else {
        c->fatal = SGRPC_ERR_CONN_NOMEM;
      }
    }
    sg_call_set_closed(call);
    sg_call_heap_remove(call);
  }
  sg_call_maybe_free(call);
  return 0;
}

/* nghttp2's allocations. About eight small blocks come and go with every
 * call (stream, frame items, copies of header lists, header buffers);
 * the malloc/free pairs cost more than the rest of the engine's call
 * handling (callgrind). Blocks up to 256 bytes are rounded up to one of
 * nine sizes and, when freed, kept on per-connection lists for the next
 * ones (at most NG_CACHE_MAX blocks, about 20 KiB; all freed with the
 * connection). A kept block is reused only by nghttp2 on the same
 * connection; a new block still comes from the user's allocator, and its
 * failure is still nghttp2's NGHTTP2_ERR_NOMEM. Every block carries a
 * 16-byte header (its class, and the size of a larger block).
 *
 * The classes are fine because some blocks live long: an open call keeps
 * nghttp2's stream (152 bytes in nghttp2 1.52 on 64-bit) and its DATA
 * item (224), and a connection keeps about twenty HPACK table entries of
 * 32 to 80 bytes. With classes of 64, 128 and 256 bytes an open call
 * held 544 bytes of heap for the two blocks (432 now), an idle
 * connection about 2.4 KB for its HPACK entries (1.9 KB now). Other
 * sizes are as correct, only rounded up further. */
#define NG_HDR 16
#define NG_NCLASS 9
#define NG_DIRECT 0xff
#define NG_CACHE_MAX 80
static const size_t ng_class_size[NG_NCLASS] = {32, 48, 64, 80, 96, 128, 160, 224, 256};
/* the class of a block of n bytes, 1 <= n <= 256, by (n - 1) / 16 */
static const uint8_t ng_class_of[16] = {0, 0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 7, 7, 8, 8};
_Static_assert(sizeof(((sgrpc_conn *)0)->ng_free_blocks) == NG_NCLASS * sizeof(uint8_t *),
               "one free list per class");

static void *ng_alloc(sgrpc_conn *c, size_t n) {
  uint8_t *b;
  if (n <= ng_class_size[NG_NCLASS - 1]) {
    int k = n ? ng_class_of[(n - 1) >> 4] : 0;
    b = c->ng_free_blocks[k];
    if (b) {
      memcpy(&c->ng_free_blocks[k], b + 8, sizeof(b)); /* the list link */
      c->ng_free_count--;
      SG_UNPOISON(b + NG_HDR, ng_class_size[k]);
      return b + NG_HDR;
    }
    b = sg_malloc(c, NG_HDR + ng_class_size[k]);
    if (!b) return NULL;
    b[0] = (uint8_t)k;
    return b + NG_HDR;
  }
  if (n > SIZE_MAX - NG_HDR) return NULL;
  b = sg_malloc(c, NG_HDR + n);
  if (!b) return NULL;
  b[0] = NG_DIRECT;
  memcpy(b + 8, &n, sizeof(n));
  return b + NG_HDR;
}

static void ng_release(sgrpc_conn *c, void *p) {
  uint8_t *b;
  if (!p) return;
  b = (uint8_t *)p - NG_HDR;
  if (b[0] != NG_DIRECT && c->ng_free_count < NG_CACHE_MAX) {
    memcpy(b + 8, &c->ng_free_blocks[b[0]], sizeof(b));
    c->ng_free_blocks[b[0]] = b;
    c->ng_free_count++;
    SG_POISON(p, ng_class_size[b[0]]);
    return;
  }
  sg_free(c, b);
}

static void ng_cache_clear(sgrpc_conn *c) {
  int k;
  for (k = 0; k < NG_NCLASS; k++) {
    while (c->ng_free_blocks[k]) {
      uint8_t *b = c->ng_free_blocks[k];
      memcpy(&c->ng_free_blocks[k], b + 8, sizeof(b));
      sg_free(c, b);
    }
  }
  c->ng_free_count = 0;
}

static void *ng_malloc(size_t n, void *ud) { return ng_alloc(ud, n); }
static void ng_free(void *p, void *ud) { ng_release(ud, p); }
static void *ng_calloc(size_t a, size_t b, void *ud) {
  void *p;
  if (b && a > SIZE_MAX / b) return NULL;
  p = ng_alloc(ud, a * b);
  if (p) memset(p, 0, a * b);
  return p;
}
static void *ng_realloc(void *p, size_t n, void *ud) {
  sgrpc_conn *c = ud;
  uint8_t *b, *nb;
  size_t old;
  void *q;
  if (!p) return ng_alloc(c, n);
  b = (uint8_t *)p - NG_HDR;
  if (b[0] == NG_DIRECT) {
    memcpy(&old, b + 8, sizeof(old));
    if (n > ng_class_size[NG_NCLASS - 1]) { /* stays large: the user's realloc */
      if (n > SIZE_MAX - NG_HDR) return NULL;
      nb = sg_realloc(c, b, NG_HDR + n);
      if (!nb) return NULL;
      memcpy(nb + 8, &n, sizeof(n));
      return nb + NG_HDR;
    }
  } else {
    old = ng_class_size[b[0]];
    if (n <= old) return p;
  }
  q = ng_alloc(c, n);
  if (!q) return NULL;
  memcpy(q, p, old < n ? old : n);
  ng_release(c, p);
  return q;
}

/* ------------------------------------------------------------------ */
/* Connection                                                          */
/* ------------------------------------------------------------------ */

void sg_budget_give(sgrpc_conn *c, size_t n) {
  int rv;
  if (n) {
    c->mem_used -= n;
    if (c->settings.shared_budget) c->settings.shared_budget->used -= n;
  }
  if (!c->conn_withheld || sg_budget_withhold(c) || !c->session || c->fatal) return;
  rv = nghttp2_session_consume_connection(c->session, c->conn_withheld);
  c->conn_withheld = 0;
  if (rv != 0 && nghttp2_is_fatal(rv)) c->fatal = sg_map_nghttp2_error(rv);
}

int sgrpc_budget_new(sgrpc_budget **pbudget, size_t limit, const sgrpc_mem *mem) {
  sgrpc_mem m;
  sgrpc_budget *b;
  if (!pbudget) return SGRPC_ERR_INVALID_ARGUMENT;
  *pbudget = NULL;
  if (sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  b = m.malloc(sizeof(*b), m.user_data);
  if (!b) return SGRPC_ERR_NOMEM;
  b->mem = m;
  b->limit = limit ? limit : (size_t)256 << 20;
  b->used = 0;
  *pbudget = b;
  return 0;
}

void sgrpc_budget_del(sgrpc_budget *b) {
  if (b) b->mem.free(b, b->mem.user_data);
}

size_t sgrpc_budget_used(const sgrpc_budget *b) { return b ? b->used : 0; }

int sgrpc_mem_resolve(sgrpc_mem *out, const sgrpc_mem *mem) {
  static const sgrpc_mem libc_mem = {NULL, libc_malloc, libc_free, libc_calloc,
                                     libc_realloc};
  if (!out) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!mem) mem = &libc_mem;
  if (!mem->malloc || !mem->free || !mem->calloc || !mem->realloc)
    return SGRPC_ERR_INVALID_ARGUMENT;
  *out = *mem;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Output with borrowed DATA                                           */
/* ------------------------------------------------------------------ */

/* Room for n more entries. Returns 0 or -1 (no memory). */
static int oq_reserve(sgrpc_conn *c, size_t n) {
  size_t cap;
  sg_oent *nq;
  if (c->oq_cap - c->oq_head - c->oq_len >= n) return 0;
  if (c->oq_head && c->oq_cap - c->oq_len >= n) {
    memmove(c->oq, c->oq + c->oq_head, c->oq_len * sizeof(*c->oq));
    c->oq_head = 0;
    return 0;
  }
  cap = c->oq_cap ? c->oq_cap * 2 : 16;
  while (cap - c->oq_len < n) cap *= 2;
  nq = sg_malloc(c, cap * sizeof(*nq));
  if (!nq) return -1;
  if (c->oq_len) memcpy(nq, c->oq + c->oq_head, c->oq_len * sizeof(*nq));
  sg_free(c, c->oq);
  c->oq = nq;
  c->oq_cap = cap;
  c->oq_head = 0;
  return 0;
}

/* n bytes were appended to out: an entry for them once entries are in
 * use (room made by oq_reserve). */
static void oq_copied(sgrpc_conn *c, size_t n) {
  sg_oent *last;
  if (!c->oq_len || !n) return;
  last = &c->oq[c->oq_head + c->oq_len - 1];
  if (!last->p) {
    last->len += n;
    return;
  }
  last = &c->oq[c->oq_head + c->oq_len++];
  last->p = NULL;
  last->len = n;
  last->chunk = NULL;
}

/* Queues n borrowed bytes at p, holding a reference on k (room for two
 * entries made by oq_reserve). */
static void oq_borrowed(sgrpc_conn *c, const uint8_t *p, size_t n, sg_chunk *k) {
  sg_oent *e;
  if (!c->oq_len && sg_buf_avail(&c->out)) {
    /* what out holds goes first */
    e = &c->oq[c->oq_head + c->oq_len++];
    e->p = NULL;
    e->len = sg_buf_avail(&c->out);
    e->chunk = NULL;
  }
  e = &c->oq[c->oq_head + c->oq_len++];
  e->p = p;
  e->len = n;
  e->chunk = k;
  k->refs++;
  c->oq_ref_bytes += n;
}

/* Lets go of every borrowed byte still queued (connection deleted). */
static void oq_clear(sgrpc_conn *c) {
  size_t i;
  for (i = 0; i < c->oq_len; i++) {
    sg_oent *e = &c->oq[c->oq_head + i];
    if (e->chunk) sg_chunk_unref(c, e->chunk);
  }
  c->oq_len = c->oq_head = 0;
  c->oq_ref_bytes = 0;
  sg_free(c, c->oq);
  c->oq = NULL;
  c->oq_cap = 0;
}

/* A GOAWAY frame: 9-byte header, last stream id, error code. */
#define SG_GOAWAY_FRAME_LEN 17

/* nghttp2's send_data callback: a DATA frame of a borrowed message
 * (read_chunk said NO_COPY). Its 9-byte header and the part of the
 * message's 5-byte prefix it carries are copied into out, the body
 * bytes are queued by reference. Room for all of it is made first, so a
 * failure (no memory: the connection fails) leaves the output whole. */
static int send_data_cb(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *ud) {
  sgrpc_conn *c = ud;
  sgrpc_call *call = source->ptr;
  sg_chunk *k = call->cq_head;
  size_t pfx;
  (void)s;
  (void)frame; /* no padding: the engine sets no padding callback */
  /* A frame read_chunk sized, left pending when mem_send failed (the
   * connection is failing, and closing the calls dropped their queues):
   * nghttp2 resets the stream instead. */
  if (!k || length > 5 + k->len - k->sent) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  pfx = k->sent < 5 ? 5 - k->sent : 0;
  if (pfx > length) pfx = length;
  if (oq_reserve(c, 3) != 0) goto nomem;
  sg_buf_compact(&c->out);
  if (sg_buf_reserve(&c->mem, &c->out, 9 + pfx + SG_GOAWAY_FRAME_LEN) != 0) goto nomem;
  memcpy(c->out.p + c->out.len, framehd, 9);
  if (pfx) memcpy(c->out.p + c->out.len + 9, k->pfx + k->sent, pfx);
  c->out.len += 9 + pfx;
  oq_copied(c, 9 + pfx);
  if (length > pfx) oq_borrowed(c, k->p + (k->sent + pfx - 5), length - pfx, k);
  k->sent += length;
  call->cq_bytes -= length;
  if (k->sent == 5 + k->len) { /* all framed: the queue lets go of it */
    call->cq_head = k->next;
    if (!call->cq_head) call->cq_tail = NULL;
    sg_chunk_unref(c, k);
  }
  return 0;
nomem:
  c->fatal = SGRPC_ERR_CONN_NOMEM;
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* Output bytes ready: out's, plus the borrowed ones. */
static size_t out_pending(const sgrpc_conn *c) {
  return sg_buf_avail(&c->out) + c->oq_ref_bytes;
}

static int conn_new(sgrpc_conn **pconn, int role, const sgrpc_settings *settings,
                    const sgrpc_mem *umem, int64_t now) {
  sgrpc_mem mem_copy;
  const sgrpc_mem *mem = &mem_copy;
  sgrpc_conn *c;
  nghttp2_session_callbacks *cbs = NULL;
  nghttp2_option *opt = NULL;
  nghttp2_settings_entry iv[4];
  size_t niv = 0;
  int rv;

  if (!pconn) return SGRPC_ERR_INVALID_ARGUMENT;
  *pconn = NULL;
  if (sgrpc_mem_resolve(&mem_copy, umem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  if (settings && settings_size(settings->version) == 0)
    return SGRPC_ERR_INVALID_ARGUMENT;
  c = mem->calloc(1, sizeof(*c), mem->user_data);
  if (!c) return SGRPC_ERR_NOMEM;
  c->mem = *mem;
  c->ngmem.mem_user_data = c;
  c->ngmem.malloc = ng_malloc;
  c->ngmem.free = ng_free;
  c->ngmem.calloc = ng_calloc;
  c->ngmem.realloc = ng_realloc;
  /* An older caller's struct ends early: read only its fields, the rest
   * are the defaults. */
  settings_fill(&c->settings);
  if (settings) memcpy(&c->settings, settings, settings_size(settings->version));
  c->settings.version = SGRPC_SETTINGS_VERSION;
  settings_resolve(&c->settings);
  if (c->settings.stream_window < 65535 || c->settings.stream_window > INT32_MAX ||
      c->settings.connection_window < 65535 ||
      c->settings.connection_window > INT32_MAX) {
    mem->free(c, mem->user_data);
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
  c->role = role;
  c->now = now;
  if (c->settings.encoding) {
    int enc = sg_enc_parse(c->settings.encoding, strlen(c->settings.encoding));
    if (enc == SG_ENC_UNKNOWN) {
      mem->free(c, mem->user_data);
      return SGRPC_ERR_BAD_ENCODING;
    }
    c->default_enc = (int8_t)enc;
  }
  c->ka_time = c->settings.keepalive_time;
  if (c->ka_time == 0) c->ka_time = role == SG_ROLE_SERVER ? 7200 * 1000000000ll : SGRPC_NEVER;
  if (c->ka_time < 0) c->ka_time = SGRPC_NEVER;
  c->last_recv = now;
  c->ka_ack_deadline = SGRPC_NEVER;
  c->last_ping_recv = INT64_MIN;
  c->shutdown_ping_deadline = SGRPC_NEVER;
  c->drain_deadline = SGRPC_NEVER;
  c->trim_at = SGRPC_NEVER;
  c->settings_deadline = time_after(now, c->settings.settings_timeout);

  rv = nghttp2_session_callbacks_new(&cbs);
  if (rv != 0) goto nomem;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, sg_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
  nghttp2_session_callbacks_set_send_data_callback(cbs, send_data_cb);
  rv = nghttp2_option_new(&opt);
  if (rv != 0) goto nomem;
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_no_http_messaging(opt, 1);
  nghttp2_option_set_max_send_header_block_length(opt, 1u << 20);
  /* Until the server's SETTINGS arrive its stream limit is unknown; like
   * grpc-go, hold requests back rather than have the first flight refused.
   * nghttp2 releases the queued HEADERS once the real limit is known. */
  if (role == SG_ROLE_CLIENT) nghttp2_option_set_peer_max_concurrent_streams(opt, 1);
  if (role == SG_ROLE_SERVER)
    rv = nghttp2_session_server_new3(&c->session, cbs, c, opt, &c->ngmem);
  else
    rv = nghttp2_session_client_new3(&c->session, cbs, c, opt, &c->ngmem);
  nghttp2_option_del(opt);
  opt = NULL;
  nghttp2_session_callbacks_del(cbs);
  cbs = NULL;
  if (rv != 0) goto nomem;

  iv[niv].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
  iv[niv++].value = c->settings.stream_window;
  iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
  iv[niv++].value = c->settings.max_header_list_size;
  if (role == SG_ROLE_SERVER) {
    iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[niv++].value = c->settings.max_concurrent_streams;
  } else {
    iv[niv].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
    iv[niv++].value = 0;
  }
  rv = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, niv);
  if (rv != 0) goto nomem;
  if (c->settings.connection_window > 65535) {
    rv = nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                               (int32_t)c->settings.connection_window);
    if (rv != 0) goto nomem;
  }
  *pconn = c;
  return 0;

nomem:
  if (opt) nghttp2_option_del(opt);
  if (cbs) nghttp2_session_callbacks_del(cbs);
  if (c->session) nghttp2_session_del(c->session);
  ng_cache_clear(c);
  mem->free(c, mem->user_data);
  return rv == NGHTTP2_ERR_NOMEM || rv == 0 ? SGRPC_ERR_NOMEM : SGRPC_ERR_HTTP2;
}

int sgrpc_conn_client_new(sgrpc_conn **pconn, const sgrpc_settings *settings,
                          const sgrpc_mem *mem, int64_t now) {
  return conn_new(pconn, SG_ROLE_CLIENT, settings, mem, now);
}

int sgrpc_conn_server_new(sgrpc_conn **pconn, const sgrpc_settings *settings,
                          const sgrpc_mem *mem, int64_t now) {
  return conn_new(pconn, SG_ROLE_SERVER, settings, mem, now);
}

void sgrpc_conn_del(sgrpc_conn *c) {
  sgrpc_mem mem;
  size_t i;
  if (!c) return;
  mem = c->mem;
  /* nghttp2 first: its stream-close callbacks are not called on delete */
  nghttp2_session_del(c->session);
  c->session = NULL;
  ng_cache_clear(c);
  sg_spare_drop(c);
  for (i = 0; i < c->evq_len; i++) {
    sg_event *e = &c->evq[(c->evq_head + i) % c->evq_cap];
    sg_buf_free(&mem, &e->owned);
  }
  sg_free(c, c->evq);
  sg_buf_free(&mem, &c->retired);
  while (c->calls) sg_call_free(c->calls);
  sg_call_cache_clear(c);
  sg_compress_free(c);
  sg_free(c, c->heap);
  sg_free(c, c->nv);
  sg_buf_free(&mem, &c->scratch);
  sg_buf_free(&mem, &c->out);
  oq_clear(c);
  sg_buf_free(&mem, &c->goaway_debug);
  /* what the connection still counts (messages in events) leaves the
   * shared budget with it */
  if (c->settings.shared_budget) c->settings.shared_budget->used -= c->mem_used;
  mem.free(c, mem.user_data);
}

int sgrpc_conn_is_server(const sgrpc_conn *c) { return c && c->role == SG_ROLE_SERVER; }

size_t sgrpc_conn_call_count(const sgrpc_conn *c) { return c ? c->ncalls : 0; }

/* Ends every open call: the connection is gone. Returns how many calls
 * were still open. */
static int close_all_calls(sgrpc_conn *c, const char *why) {
  sgrpc_call *call, *next;
  int cut = 0;
  for (call = c->calls; call; call = next) {
    next = call->next;
    if (call->state == SG_CALL_CLOSED) continue;
    cut++;
    if (c->role == SG_ROLE_CLIENT) {
      sg_close_info ci = {SGRPC_STATUS_UNAVAILABLE, why, strlen(why),
                          .retry_safe = !(call->send & SG_SF_HEADERS)};
      sg_call_client_finish(call, &ci);
    } else if (!(call->flags & SG_CF_RELEASED)) {
      sg_event *e = sg_event_push(c, SGRPC_EV_CLOSE, call);
      if (e) {
        e->ev.u.close.status.code = SGRPC_STATUS_CANCELLED;
        e->ev.u.close.status.message = why;
        e->ev.u.close.status.message_len = strlen(why);
      }
    }
    sg_call_set_closed(call);
    sg_call_heap_remove(call);
  }
  return cut;
}

/* Queues SGRPC_EV_CONN_CLOSED once. */
void sg_conn_closed(sgrpc_conn *c, int reason, const char *why) {
  sg_event *e;
  if (c->closed_reported) return;
  e = sg_event_push(c, SGRPC_EV_CONN_CLOSED, NULL);
  if (!e) return;
  c->closed_reported = 1;
  e->ev.u.conn_closed.reason = reason;
  e->ev.u.conn_closed.message = why;
}

static void check_alive(sgrpc_conn *c) {
  if (c->transport_closed) return;
  if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
    /* Reason 0 promises a clean end: a session that ended under open
     * calls (e.g. nghttp2 terminated it, or the peer's GOAWAY left them
     * no way to finish) is not one. */
    int cut = close_all_calls(c, "connection closed");
    int reason = c->fatal ? c->fatal : cut ? SGRPC_ERR_CONN_CLOSED : 0;
    c->transport_closed = 1;
    sg_conn_closed(c, reason, reason ? sgrpc_strerror(reason) : "connection finished");
  }
}

static void set_fatal(sgrpc_conn *c, int code) {
  if (c->fatal) return;
  c->fatal = code;
  if (code == SGRPC_ERR_PROTOCOL)
    nghttp2_session_terminate_session(c->session, NGHTTP2_PROTOCOL_ERROR);
  else if (code == SGRPC_ERR_CONN_NOMEM && !c->out_lost)
    /* the peer learns why (when the GOAWAY itself finds memory) instead
     * of seeing the connection just close */
    nghttp2_session_terminate_session(c->session, NGHTTP2_INTERNAL_ERROR);
  close_all_calls(c, code == SGRPC_ERR_PROTOCOL ? "connection protocol error"
                                                : "connection failed");
  sg_conn_closed(c, code, sgrpc_strerror(code));
}

/* The fatal code of an nghttp2 error from mem_recv or mem_send: the one
 * a callback recorded, or, for a callback that failed without recording
 * one, no memory (what every such failure is: an event, a buffer or a
 * frame that could not be allocated). */
static int session_error(sgrpc_conn *c, int rv) {
  int code = c->fatal;
  c->fatal = 0;
  if (code) return code;
  return rv == NGHTTP2_ERR_CALLBACK_FAILURE ? SGRPC_ERR_CONN_NOMEM
                                            : sg_map_nghttp2_error(rv);
}

sgrpc_ssize sg_api_conn_recv(sgrpc_conn *c, const uint8_t *data, size_t len, int64_t now) {
  size_t off = 0;
  if (!c || (!data && len)) return SGRPC_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->transport_closed) return SGRPC_ERR_CONN_CLOSED;
  if (c->evq_len) return SGRPC_ERR_EVENTS_PENDING;
  sg_event_retire(c);
  c->now = now;
  c->in_begin = data;
  c->in_end = data ? data + len : NULL;
  while (off < len) {
    sg_h2_ssize rv = sg_h2_session_mem_recv(c->session, data + off, len - off);
    if (rv < 0) {
      set_fatal(c, session_error(c, (int)rv));
      return c->fatal;
    }
    off += (size_t)rv;
    c->stats.bytes_received += (uint64_t)rv;
    c->stats.last_activity = now;
    if (c->fatal) {
      int code = c->fatal;
      c->fatal = 0;
      set_fatal(c, code);
      return c->fatal;
    }
    if (c->paused) {
      c->paused = 0;
      /* Paused at the last input byte: if it ended a DATA frame, a
       * zero-length call finishes that frame now (its END_STREAM may be
       * all that is left, and no more input may ever come). */
      if (off == len) {
        rv = sg_h2_session_mem_recv(c->session, data + off, 0);
        if (rv < 0) set_fatal(c, session_error(c, (int)rv));
        if (c->fatal) {
          close_all_calls(c, "connection failed");
          return c->fatal;
        }
      }
      break;
    }
    if (rv == 0) break;
  }
  check_alive(c);
  return (sgrpc_ssize)off;
}

int sg_api_conn_transport_closed(sgrpc_conn *c) {
  if (!c) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!c->transport_closed) {
    close_all_calls(c, "connection closed by transport");
    c->transport_closed = 1;
    sg_conn_closed(c, c->fatal ? c->fatal : SGRPC_ERR_CONN_CLOSED, "transport closed");
  }
  return 0;
}

/* Appends GOAWAY INTERNAL_ERROR to the output when its room is there
 * (prepare_output keeps it after every append). */
static void out_goaway_by_hand(sgrpc_conn *c) {
  uint32_t last = (uint32_t)nghttp2_session_get_last_proc_stream_id(c->session);
  uint8_t *f;
  if (c->out.cap - c->out.len < SG_GOAWAY_FRAME_LEN) return;
  f = c->out.p + c->out.len;
  memset(f, 0, SG_GOAWAY_FRAME_LEN);
  f[2] = 8;              /* payload length */
  f[3] = NGHTTP2_GOAWAY; /* type; flags 0, stream 0 */
  f[9] = (uint8_t)(last >> 24 & 0x7f);
  f[10] = (uint8_t)(last >> 16);
  f[11] = (uint8_t)(last >> 8);
  f[12] = (uint8_t)last;
  f[16] = NGHTTP2_INTERNAL_ERROR;
  c->out.len += SG_GOAWAY_FRAME_LEN;
  oq_copied(c, SG_GOAWAY_FRAME_LEN);
}

static int prepare_output(sgrpc_conn *c) {
  if (c->out_lost) return c->fatal;
  while (out_pending(c) < c->settings.out_chunk) {
    const uint8_t *p;
    sg_h2_ssize n = sg_h2_session_mem_send(c->session, &p);
    if (n < 0) {
      set_fatal(c, session_error(c, (int)n));
      return c->fatal;
    }
    if (n == 0) break;
    sg_buf_compact(&c->out);
    /* Room for the bytes and, after them, a GOAWAY should a later
     * append fail. */
    if ((c->oq_len && oq_reserve(c, 2) != 0) ||
        sg_buf_reserve(&c->mem, &c->out, (size_t)n + SG_GOAWAY_FRAME_LEN) != 0) {
      /* nghttp2 has handed these bytes over: without them the peer's
       * HPACK state is broken, so nothing nghttp2 makes may follow. What
       * is buffered still goes, then a GOAWAY INTERNAL_ERROR written
       * here, in the room kept for it, so the peer learns why. */
      c->out_lost = 1;
      if (!c->oq_len || oq_reserve(c, 1) == 0) out_goaway_by_hand(c);
      set_fatal(c, SGRPC_ERR_CONN_NOMEM);
      return c->fatal;
    }
    memcpy(c->out.p + c->out.len, p, (size_t)n);
    c->out.len += (size_t)n;
    oq_copied(c, (size_t)n);
  }
  return 0;
}

sgrpc_ssize sg_api_conn_out_peek(sgrpc_conn *c, const uint8_t **data) {
  if (!c || !data) return SGRPC_ERR_INVALID_ARGUMENT;
  *data = NULL;
  if (!c->transport_closed || sg_buf_avail(&c->out)) {
    if (!c->transport_closed) prepare_output(c);
  }
  if (c->oq_len) {
    const sg_oent *e = &c->oq[c->oq_head];
    *data = e->p ? e->p : c->out.p + c->out.off;
    return (sgrpc_ssize)e->len;
  }
  if (sg_buf_avail(&c->out) == 0) {
    if (!c->transport_closed) check_alive(c);
    return c->fatal && c->fatal != SGRPC_ERR_PROTOCOL ? c->fatal : 0;
  }
  *data = c->out.p + c->out.off;
  return (sgrpc_ssize)sg_buf_avail(&c->out);
}

sgrpc_ssize sg_api_conn_out_peekv(sgrpc_conn *c, sgrpc_iov *iov, size_t max, size_t *count) {
  size_t i, n = 0, at, total = 0;
  if (!c || !iov || !count || max == 0) return SGRPC_ERR_INVALID_ARGUMENT;
  *count = 0;
  if (!c->transport_closed) prepare_output(c);
  if (!c->oq_len) {
    if (sg_buf_avail(&c->out) == 0) {
      if (!c->transport_closed) check_alive(c);
      return c->fatal && c->fatal != SGRPC_ERR_PROTOCOL ? c->fatal : 0;
    }
    iov[0].base = c->out.p + c->out.off;
    iov[0].len = sg_buf_avail(&c->out);
    *count = 1;
    return (sgrpc_ssize)iov[0].len;
  }
  at = c->out.off;
  for (i = 0; i < c->oq_len && n < max; i++) {
    const sg_oent *e = &c->oq[c->oq_head + i];
    if (e->p) {
      iov[n].base = e->p;
    } else {
      iov[n].base = c->out.p + at;
      at += e->len;
    }
    iov[n++].len = e->len;
    total += e->len;
  }
  *count = n;
  return (sgrpc_ssize)total;
}

/* Consumes n output bytes through the entries (n <= out_pending). */
static void oq_consume(sgrpc_conn *c, size_t n) {
  while (n) {
    sg_oent *e = &c->oq[c->oq_head];
    size_t take = n < e->len ? n : e->len;
    if (e->p) {
      e->p += take;
      c->oq_ref_bytes -= take;
    } else {
      c->out.off += take;
    }
    e->len -= take;
    n -= take;
    if (e->len == 0) {
      sg_chunk *k = e->chunk;
      c->oq_head++;
      c->oq_len--;
      if (k) sg_chunk_unref(c, k);
    }
  }
  if (!c->oq_len) c->oq_head = 0;
}

int sg_api_conn_out_consume(sgrpc_conn *c, size_t n) {
  if (!c || n > out_pending(c)) return SGRPC_ERR_INVALID_ARGUMENT;
  if (c->oq_len) oq_consume(c, n);
  else c->out.off += n;
  c->stats.bytes_sent += n;
  if (c->out.off == c->out.len) c->out.off = c->out.len = 0;
  return 0;
}

sgrpc_ssize sg_api_conn_out_copy(sgrpc_conn *c, uint8_t *buf, size_t cap) {
  const uint8_t *p;
  sgrpc_ssize n;
  if (!c || (!buf && cap)) return SGRPC_ERR_INVALID_ARGUMENT;
  n = sg_api_conn_out_peek(c, &p);
  if (n <= 0) return n;
  if ((size_t)n > cap) n = (sgrpc_ssize)cap;
  memcpy(buf, p, (size_t)n);
  sg_api_conn_out_consume(c, (size_t)n);
  return n;
}

int sgrpc_conn_want_write(const sgrpc_conn *c) {
  if (!c) return 0;
  if (sg_buf_avail(&c->out) || c->oq_len) return 1;
  if (c->transport_closed || c->out_lost) return 0;
  return nghttp2_session_want_write(c->session);
}

int sgrpc_conn_has_work(const sgrpc_conn *c) {
  if (!c || c->evq_len || c->fatal || c->transport_closed) return 1;
  if (c->retired.p || c->retired_call || c->retired_counted) return 1;
  if (sg_buf_avail(&c->out) || c->oq_len) return 1;
  return nghttp2_session_want_write(c->session) || !nghttp2_session_want_read(c->session);
}

int sgrpc_conn_is_alive(const sgrpc_conn *c) {
  if (!c || c->fatal || c->transport_closed) return 0;
  return nghttp2_session_want_read(c->session) || nghttp2_session_want_write(c->session);
}

int sg_api_conn_ping(sgrpc_conn *c, uint64_t opaque) {
  uint8_t d[8];
  int i, rv;
  if (!c) return SGRPC_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->transport_closed) return SGRPC_ERR_CONN_CLOSED;
  for (i = 7; i >= 0; i--) {
    d[i] = (uint8_t)opaque;
    opaque >>= 8;
  }
  rv = nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, d);
  return rv == 0 ? 0 : rv == NGHTTP2_ERR_NOMEM ? SGRPC_ERR_NOMEM : SGRPC_ERR_HTTP2;
}

int sg_api_conn_goaway(sgrpc_conn *c, uint32_t error_code, const char *debug,
                      size_t debug_len) {
  int rv;
  if (!c || (!debug && debug_len)) return SGRPC_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->transport_closed) return SGRPC_ERR_CONN_CLOSED;
  rv = nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                             nghttp2_session_get_last_proc_stream_id(c->session),
                             error_code, (const uint8_t *)debug, debug_len);
  if (rv != 0) return rv == NGHTTP2_ERR_NOMEM ? SGRPC_ERR_NOMEM : SGRPC_ERR_HTTP2;
  sg_goaway_final(c);
  c->goaway_sent = 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

/* When the next keepalive ping is due, or SGRPC_NEVER. */
static int64_t keepalive_due(const sgrpc_conn *c) {
  if (c->ka_time == SGRPC_NEVER || c->ka_ack_deadline != SGRPC_NEVER || c->fatal ||
      c->transport_closed)
    return SGRPC_NEVER;
  if (!c->open_calls && !c->settings.keepalive_permit_without_calls) return SGRPC_NEVER;
  if (c->last_recv > INT64_MAX - c->ka_time) return SGRPC_NEVER;
  return c->last_recv + c->ka_time;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t sgrpc_conn_next_expiry(const sgrpc_conn *c) {
  int64_t t;
  if (!c) return SGRPC_NEVER;
  t = c->heap_len ? c->heap[0]->deadline : SGRPC_NEVER;
  if (c->fatal || c->transport_closed) return t;
  t = min64(t, c->settings_deadline);
  t = min64(t, c->ka_ack_deadline);
  t = min64(t, keepalive_due(c));
  t = min64(t, c->shutdown_ping_deadline);
  t = min64(t, c->drain_deadline);
  t = min64(t, c->trim_at);
  return t;
}

/* Ends every call still open when the drain deadline passes. */
static void drain_expired(sgrpc_conn *c) {
  sgrpc_call *call, *next;
  c->drain_deadline = SGRPC_NEVER;
  for (call = c->calls; call; call = next) {
    next = call->next;
    if (call->state == SG_CALL_CLOSED) continue;
    if (c->role == SG_ROLE_CLIENT) {
      nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                NGHTTP2_CANCEL);
      sg_close_info ci = {SGRPC_STATUS_UNAVAILABLE,
                          SG_LIT("connection shut down before the call finished"), .reset = 1,
                          .h2err = NGHTTP2_CANCEL};
      sg_call_client_finish(call, &ci);
    } else {
      /* As grpc-core's server shutdown: the client learns why (status
       * UNAVAILABLE in trailers, the stream reset if its side is open),
       * rather than seeing the connection vanish. */
      sg_call_server_fail(call, SGRPC_STATUS_UNAVAILABLE, "server shutting down", 1);
    }
  }
  if (c->shutdown == 1) sg_shutdown_final(c);
}

int sg_api_conn_handle_expiry(sgrpc_conn *c, int64_t now) {
  if (!c) return SGRPC_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->transport_closed) return SGRPC_ERR_CONN_CLOSED;
  c->now = now;
  while (c->heap_len && c->heap[0]->deadline <= now) {
    sgrpc_call *call = c->heap[0];
    sg_call_heap_remove(call);
    if (call->state == SG_CALL_CLOSED) continue;
    if (c->role == SG_ROLE_CLIENT) {
      client_fail(call, SGRPC_STATUS_DEADLINE_EXCEEDED, SG_LIT("deadline exceeded"));
    } else {
      sg_call_server_fail(call, SGRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded", 1);
    }
    if (c->fatal) return c->fatal;
  }
  if (c->settings_deadline <= now) {
    nghttp2_session_terminate_session(c->session, NGHTTP2_SETTINGS_TIMEOUT);
    set_fatal(c, SGRPC_ERR_SETTINGS_TIMEOUT);
    return c->fatal;
  }
  if (c->ka_ack_deadline <= now) {
    set_fatal(c, SGRPC_ERR_KEEPALIVE_TIMEOUT);
    return c->fatal;
  }
  if (keepalive_due(c) <= now) {
    uint8_t d[8];
    uint64_t v = SG_PING_KEEPALIVE;
    int i;
    for (i = 7; i >= 0; i--, v >>= 8) d[i] = (uint8_t)v;
    if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, d) != 0) {
      set_fatal(c, SGRPC_ERR_CONN_NOMEM);
      return c->fatal;
    }
    c->ka_ack_deadline = time_after(now, c->settings.keepalive_timeout);
  }
  if (c->shutdown_ping_deadline <= now && sg_shutdown_final(c) != 0) {
    set_fatal(c, SGRPC_ERR_CONN_NOMEM);
    return c->fatal;
  }
  if (c->drain_deadline <= now) drain_expired(c);
  if (c->trim_at <= now) {
    c->trim_at = SGRPC_NEVER;
    if (c->ncalls == 0) sg_api_conn_trim(c);
  }
  return c->fatal;
}

int sg_api_conn_trim(sgrpc_conn *c) {
  if (!c) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!c->session) return 0;
  c->trim_at = SGRPC_NEVER; /* done: nothing is due for it any more */
  sg_call_cache_clear(c);
  ng_cache_clear(c);
  sg_spare_drop(c);
  if (!c->evq_len) {
    sg_free(c, c->evq);
    c->evq = NULL;
    c->evq_cap = c->evq_head = 0;
  }
  if (!c->oq_len) {
    sg_free(c, c->oq);
    c->oq = NULL;
    c->oq_cap = c->oq_head = 0;
  }
  if (!sg_buf_avail(&c->out)) sg_buf_free(&c->mem, &c->out);
  sg_buf_free(&c->mem, &c->scratch);
  sg_free(c, c->nv);
  c->nv = NULL;
  c->nv_cap = 0;
  return 0;
}

int sg_api_conn_shutdown(sgrpc_conn *c, int64_t drain_deadline, int64_t now) {
  int rv;
  if (!c) return SGRPC_ERR_INVALID_ARGUMENT;
  if (c->fatal) return c->fatal;
  if (c->transport_closed) return SGRPC_ERR_CONN_CLOSED;
  c->now = now;
  if (drain_deadline < c->drain_deadline) c->drain_deadline = drain_deadline;
  if (c->shutdown) return 0;
  if (c->role == SG_ROLE_SERVER) {
    uint8_t d[8];
    uint64_t v = SG_PING_SHUTDOWN;
    int i;
    for (i = 7; i >= 0; i--, v >>= 8) d[i] = (uint8_t)v;
    rv = nghttp2_submit_shutdown_notice(c->session);
    if (rv == 0) rv = nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, d);
    if (rv != 0) return rv == NGHTTP2_ERR_NOMEM ? SGRPC_ERR_NOMEM : SGRPC_ERR_HTTP2;
    c->shutdown = 1;
    c->shutdown_ping_deadline = time_after(now, c->settings.keepalive_timeout);
  } else {
    rv = nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    if (rv != 0) return rv == NGHTTP2_ERR_NOMEM ? SGRPC_ERR_NOMEM : SGRPC_ERR_HTTP2;
    c->shutdown = 2;
  }
  c->goaway_sent = 1;
  return 0;
}

int64_t sgrpc_conn_keepalive_time(const sgrpc_conn *c) { return c ? c->ka_time : SGRPC_NEVER; }

void sgrpc_conn_get_stats(const sgrpc_conn *c, sgrpc_conn_stats *st) {
  if (!st) return;
  if (!c) {
    memset(st, 0, sizeof(*st));
    return;
  }
  *st = c->stats;
}

int sgrpc_conn_get_flow(const sgrpc_conn *c, sgrpc_conn_flow *flow) {
  if (!c || !flow) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(flow, 0, sizeof(*flow));
  if (!c->session) return SGRPC_ERR_INVALID_STATE;
  flow->local_window = nghttp2_session_get_local_window_size(c->session);
  flow->remote_window = nghttp2_session_get_remote_window_size(c->session);
  return 0;
}

void sgrpc_conn_set_peer_source(sgrpc_conn *c, sgrpc_peer_fn fn, void *ctx) {
  if (!c) return;
  c->peer_fn = fn;
  c->peer_ctx = fn ? ctx : NULL;
}

void sgrpc_conn_set_wake(sgrpc_conn *c, sgrpc_wake_fn fn, void *ud) {
  if (!c) return;
  c->wake_fn = fn;
  c->wake_ud = fn ? ud : NULL;
}

int sgrpc_conn_peer(const sgrpc_conn *c, sgrpc_peer *peer) {
  int rv;
  if (!c || !peer) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(peer, 0, sizeof(*peer));
  peer->address = "";
  if (!c->peer_fn) return 0;
  rv = c->peer_fn(c->peer_ctx, peer);
  if (rv < 0) {
    /* a failed source must not leave half an identity to authorize on */
    memset(peer, 0, sizeof(*peer));
    peer->address = "";
    return rv;
  }
  if (!peer->address) peer->address = "";
  if (!peer->cert_subject) peer->cert_subject = "";
  if (!peer->cert_issuer) peer->cert_issuer = "";
  return 0;
}

sgrpc_ssize sgrpc_peer_cert_pem(const sgrpc_peer *peer, char *buf, size_t cap) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char head[] = "-----BEGIN CERTIFICATE-----\n";
  static const char tail[] = "-----END CERTIFICATE-----\n";
  size_t n, enc, need, i, col = 0, o;
  const uint8_t *d;
  if (!peer || !peer->has_cert || !peer->cert_der || peer->cert_der_len == 0)
    return SGRPC_ERR_INVALID_ARGUMENT;
  n = peer->cert_der_len;
  if (n > ((size_t)PTRDIFF_MAX / 2)) return SGRPC_ERR_INVALID_ARGUMENT;
  enc = (n + 2) / 3 * 4;
  need = (sizeof(head) - 1) + enc + (enc + 63) / 64 + (sizeof(tail) - 1) + 1;
  if (!buf || cap < need) return (sgrpc_ssize)need;
  d = peer->cert_der;
  memcpy(buf, head, sizeof(head) - 1);
  o = sizeof(head) - 1;
  for (i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16;
    size_t left = n - i;
    char q[4];
    size_t k;
    if (left > 1) v |= (uint32_t)d[i + 1] << 8;
    if (left > 2) v |= d[i + 2];
    q[0] = b64[(v >> 18) & 63];
    q[1] = b64[(v >> 12) & 63];
    q[2] = left > 1 ? b64[(v >> 6) & 63] : '=';
    q[3] = left > 2 ? b64[v & 63] : '=';
    for (k = 0; k < 4; k++) {
      buf[o++] = q[k];
      if (++col == 64) {
        buf[o++] = '\n';
        col = 0;
      }
    }
  }
  if (col) buf[o++] = '\n';
  memcpy(buf + o, tail, sizeof(tail) - 1);
  o += sizeof(tail) - 1;
  buf[o] = '\0';
  return (sgrpc_ssize)o;
}
