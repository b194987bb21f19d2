/*
 * Test support: a "raw peer". An nghttp2 session driven directly by the
 * test talks to one sgrpc engine, so every header list and frame the
 * engine emits can be checked exactly, and any (also malformed) input can
 * be sent to it.
 *
 * Role: rawpeer_new_client() makes an HTTP/2 client facing an sgrpc server
 * connection; rawpeer_new_server() makes an HTTP/2 server facing an sgrpc
 * client connection. The raw session runs without nghttp2's HTTP
 * messaging checks, so it sends what the test asks and records what it
 * gets without judging it.
 *
 * Recording: every frame the raw peer receives is kept in rp->frames (in
 * arrival order, deep copies), and every event pulled from the sgrpc
 * connection is kept in rp->events (deep copies, valid until
 * rawpeer_free). rp->on_event, if set, sees each live event right after it
 * is recorded and may call sgrpc_call_* and rawpeer_submit_* functions
 * (but not rawpeer_run/rawpeer_pump).
 *
 * Every loop is bounded by the caller's max_rounds.
 */
#ifndef SGRPC_TEST_RAWPEER_H
#define SGRPC_TEST_RAWPEER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <nghttp2/nghttp2.h>
#include <sgrpc/sgrpc.h>

typedef struct rawpeer rawpeer;

/* One header field, NUL-terminated copies (lengths exclude the NUL). */
typedef struct rp_field {
  char *name;
  size_t namelen;
  char *value;
  size_t valuelen;
} rp_field;

/* What kind of header block a HEADERS frame carried, from the raw peer's
 * view: the first block on a stream or a later one (trailers). */
enum { RP_HDRS_FIRST = 1, RP_HDRS_TRAILERS = 2 };

/* One frame received by the raw peer. type is an NGHTTP2_* frame type. */
typedef struct rp_frame {
  uint8_t type;
  uint8_t flags;
  int32_t stream_id;
  int end_stream;       /* END_STREAM set (HEADERS, DATA) */
  int hkind;            /* HEADERS: RP_HDRS_FIRST or RP_HDRS_TRAILERS */
  rp_field *fields;     /* HEADERS: the decoded list, in order */
  size_t nfields;
  uint8_t *data;        /* DATA: payload (padding removed); GOAWAY: debug */
  size_t len;
  uint32_t error_code;  /* RST_STREAM, GOAWAY */
  int32_t last_stream_id; /* GOAWAY */
} rp_frame;

/* A metadata entry copied out of an event. */
typedef struct rp_md {
  char *key;
  uint8_t *value; /* NUL-terminated copy; value_len excludes the NUL */
  size_t value_len;
} rp_md;

/* A deep copy of one sgrpc event. Fields not used by the type are 0. */
typedef struct rp_event {
  sgrpc_event_type type;
  sgrpc_call *call;     /* identity only; may be released by now */
  int32_t stream_id;    /* of the call at the time of the event */
  /* CALL_NEW */
  char *path, *authority, *user_agent, *content_type, *encoding;
  int64_t deadline;
  /* CALL_NEW and HEADERS: metadata; CLOSE: trailing metadata */
  rp_md *md;
  size_t md_count;
  /* MESSAGE */
  uint8_t *data;
  size_t len;
  int compressed;
  /* CLOSE */
  int code;
  char *message;
  size_t message_len;
  uint8_t *details;     /* NULL when the event had none */
  size_t details_len;
  int reset;
  uint32_t http2_error;
  int retry_safe;
  /* GOAWAY */
  uint32_t goaway_error;
  int32_t last_stream_id;
} rp_event;

typedef void (*rawpeer_event_fn)(rawpeer *rp, const sgrpc_event *ev, void *ud);

struct rawpeer {
  int ready; /* SGRPC_EV_READY events seen (not recorded as events) */
  nghttp2_session *h2;  /* the raw side */
  sgrpc_conn *conn;     /* the engine under test */
  int is_client;        /* the raw side is the HTTP/2 client */
  int64_t now;          /* fake monotonic clock, ns */
  size_t max_split;     /* 0: whole chunks into the engine; else 1..max_split */
  uint64_t rng;
  int auto_release;     /* release calls after their CLOSE was handled */
  rawpeer_event_fn on_event;
  void *ud;

  rp_frame *frames;
  size_t nframes, frames_cap;
  rp_event *events;
  size_t nevents, events_cap;

  int conn_err;         /* last negative code from sgrpc_conn_recv / out_peek */
  int h2_err;           /* last negative code from the raw nghttp2 session */

  /* internals */
  rp_field *cur;        /* header block being collected */
  size_t ncur, cur_cap;
  uint8_t *dcur;        /* DATA payload being collected */
  size_t dcur_len, dcur_cap;
  struct rp_stream **streams;
  size_t nstreams, streams_cap;
  uint8_t *buf;         /* bytes in flight */
  size_t buf_cap;
  uint8_t *scratch;     /* rawpeer_stream_data result */
  struct rp_kept *kept; /* header lists nghttp2 references (NO_COPY) */
};

/* Creates the engine side with settings (NULL: defaults) and the raw side.
 * The raw side queues its preface and SETTINGS at once. Fails the test on
 * error. The clock starts at 1 s. */
void rawpeer_new_client(rawpeer *rp, const sgrpc_settings *server_settings);
void rawpeer_new_server(rawpeer *rp, const sgrpc_settings *client_settings);
/* rawpeer_new_client with the engine allocating through mem (NULL: libc). */
void rawpeer_new_client_mem(rawpeer *rp, const sgrpc_settings *server_settings,
                            const sgrpc_mem *mem);
void rawpeer_free(rawpeer *rp);

/* Raw client: submits a request. nv is name,value,...,NULL (plain C
 * strings; names are sent exactly as given). When data is non-NULL, or
 * when end_stream is 0, a body provider is attached and data (if any) is
 * queued as one DATA frame; more can follow with rawpeer_submit_data.
 * With data NULL and end_stream set, the HEADERS frame carries
 * END_STREAM. Returns the stream id. */
int32_t rawpeer_submit_request(rawpeer *rp, const char *const *nv, const uint8_t *data,
                               size_t len, int end_stream);
/* Same with an explicit field array (for lengths, embedded bytes). */
int32_t rawpeer_submit_request_fields(rawpeer *rp, const rp_field *f, size_t n,
                                      const uint8_t *data, size_t len, int end_stream);
/* Queues one DATA frame of exactly these bytes (len must fit one frame). */
void rawpeer_submit_data(rawpeer *rp, int32_t sid, const uint8_t *data, size_t len,
                         int end_stream);
/* Raw server: response HEADERS; end_stream makes it trailers-only (no
 * body provider). */
void rawpeer_submit_response(rawpeer *rp, int32_t sid, const char *const *nv,
                             int end_stream);
/* Submits a bare HEADERS frame on an existing stream right away (e.g. an
 * informational response, or a second block without END_STREAM). It is
 * not ordered after queued DATA. */
void rawpeer_submit_headers(rawpeer *rp, int32_t sid, const char *const *nv, int end_stream);
/* Queues a trailer block (HEADERS with END_STREAM) after the queued DATA. */
void rawpeer_submit_trailers(rawpeer *rp, int32_t sid, const char *const *nv);
void rawpeer_submit_rst(rawpeer *rp, int32_t sid, uint32_t code);
void rawpeer_submit_goaway(rawpeer *rp, int32_t last_sid, uint32_t code);

/* One direction only: raw side -> engine (feed), engine -> raw side
 * (flush). Each drains engine events and returns the bytes moved. */
size_t rawpeer_feed(rawpeer *rp);
size_t rawpeer_flush(rawpeer *rp);
/* Moves bytes both ways once and drains engine events. Returns bytes
 * moved. */
size_t rawpeer_pump(rawpeer *rp);
/* Pumps until nothing moves or max_rounds passes. Returns bytes moved. */
size_t rawpeer_run(rawpeer *rp, int max_rounds);
/* Drains the engine's events (recording them). Returns the count. */
int rawpeer_drain(rawpeer *rp);
/* Advances the clock, runs the engine's expiry, drains events. */
void rawpeer_advance(rawpeer *rp, int64_t ns);

/* ---- queries on what was recorded ---- */

/* The nth (0-based) HEADERS frame received on stream sid, or NULL. */
const rp_frame *rawpeer_headers(const rawpeer *rp, int32_t sid, int nth);
/* Number of frames of a type received on sid (sid < 0: any stream). */
size_t rawpeer_count_frames(const rawpeer *rp, int32_t sid, uint8_t type);
/* The RST_STREAM code received on sid, or -1 when none came. */
int64_t rawpeer_rst_code(const rawpeer *rp, int32_t sid);
/* Nonzero when a frame with END_STREAM was received on sid. */
int rawpeer_stream_ended(const rawpeer *rp, int32_t sid);
/* The DATA payload received on sid, concatenated (valid until the next
 * query of this kind or rawpeer_free). */
const uint8_t *rawpeer_stream_data(rawpeer *rp, int32_t sid, size_t *len);
/* The last GOAWAY received, or NULL. */
const rp_frame *rawpeer_goaway(const rawpeer *rp);
/* First value of a header named name in f, or NULL. */
const char *rawpeer_field(const rp_frame *f, const char *name);

/* Fails the test unless f holds exactly the given fields in this order.
 * The variadic list is name, value, ..., NULL. Prints both lists on a
 * mismatch. */
void rawpeer_assert_fields(const rp_frame *f, ...);

/* Number of recorded events of a type (call NULL: any call). */
size_t rawpeer_count_events(const rawpeer *rp, sgrpc_event_type type,
                            const sgrpc_call *call);
/* The nth recorded event of a type (call NULL: any call), or NULL. */
const rp_event *rawpeer_event(const rawpeer *rp, sgrpc_event_type type,
                              const sgrpc_call *call, int nth);

/* Writes the 5-byte gRPC prefix and the message into out (len + 5 bytes).
 * Returns len + 5. */
size_t rawpeer_grpc_frame(uint8_t *out, uint8_t flags, const void *msg, size_t len);

#endif
