/** @file
 * sgrpc recording and replay of one connection (docs/record-replay.md).
 *
 * The engine's only inputs are bytes, time and the application's calls,
 * so a connection can be recorded and replayed exactly. A recorder set on
 * a connection writes, through a callback the caller supplies, one record
 * for every call into the engine that changes its state or takes its
 * output, in order, each with the `now` of the moment: bytes received,
 * timer handling, output taken, events pulled, and the call API. The
 * engine does no IO: the callback decides where the bytes go (a file
 * writer is in <sgrpc/net_record.h>).
 *
 * Replay feeds a recording into a fresh engine with the same settings,
 * makes the same calls, and compares every record the fresh engine
 * produces with the recorded one: the first differing byte is reported.
 */
#ifndef SGRPC_RECORD_H
#define SGRPC_RECORD_H

#include <sgrpc/sgrpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The 8 bytes a recording starts with. */
#define SGRPC_RECORD_MAGIC "SGRPCREC"
/** The format version this library writes and reads. */
#define SGRPC_RECORD_VERSION 1
/** Size of the file header: magic, version (u16), flags (u16), reserved
 *  (u32). */
#define SGRPC_RECORD_HEADER_LEN 16

/** Recorder flag: store output bytes and message payloads as a length and
 *  a CRC-32 instead of the bytes (smaller files; replay still detects a
 *  difference, but cannot name the byte). */
#define SGRPC_RECORD_DIGEST 0x1

/** Record types (byte 0 of every record). */
typedef enum sgrpc_record_type {
  SGRPC_REC_CONN = 0x01,       /**< role and settings of the connection */
  SGRPC_REC_RECV = 0x02,       /**< sgrpc_conn_recv */
  SGRPC_REC_TRANSPORT_CLOSED = 0x03, /**< sgrpc_conn_transport_closed */
  SGRPC_REC_OUT_PEEK = 0x04,   /**< sgrpc_conn_out_peek */
  SGRPC_REC_OUT_CONSUME = 0x05, /**< sgrpc_conn_out_consume, with the bytes */
  SGRPC_REC_OUT_COPY = 0x06,   /**< sgrpc_conn_out_copy, with the bytes */
  SGRPC_REC_EXPIRY = 0x07,     /**< sgrpc_conn_handle_expiry */
  SGRPC_REC_PING = 0x08,       /**< sgrpc_conn_ping */
  SGRPC_REC_GOAWAY = 0x09,     /**< sgrpc_conn_goaway */
  SGRPC_REC_SHUTDOWN = 0x0a,   /**< sgrpc_conn_shutdown */
  SGRPC_REC_EVENT = 0x0b,      /**< sgrpc_conn_next_event, with the event */
  SGRPC_REC_CALL_START = 0x10, /**< sgrpc_call_start */
  SGRPC_REC_CALL_SEND = 0x11,  /**< sgrpc_call_send */
  SGRPC_REC_CALL_RESERVE = 0x12, /**< sgrpc_call_send_reserve */
  SGRPC_REC_CALL_COMMIT = 0x13, /**< sgrpc_call_send_commit, with the bytes */
  SGRPC_REC_CALL_SET_ENCODING = 0x14, /**< sgrpc_call_set_encoding */
  SGRPC_REC_CALL_CLOSE_SEND = 0x15, /**< sgrpc_call_close_send */
  SGRPC_REC_CALL_SEND_HEADERS = 0x16, /**< sgrpc_call_send_headers */
  SGRPC_REC_CALL_SEND_STATUS = 0x17, /**< sgrpc_call_send_status */
  SGRPC_REC_CALL_CANCEL = 0x18, /**< sgrpc_call_cancel */
  SGRPC_REC_CALL_RELEASE = 0x19, /**< sgrpc_call_release */
  SGRPC_REC_CALL_SEND_BORROWED = 0x1a, /**< sgrpc_call_send_borrowed, with the bytes */
  SGRPC_REC_OUT_PEEKV = 0x0c,  /**< sgrpc_conn_out_peekv */
  SGRPC_REC_TRIM = 0x0d,       /**< sgrpc_conn_trim */
  SGRPC_REC_TRUNCATED = 0x7f   /**< the recording stopped here (payload: why) */
} sgrpc_record_type;

/** Why a recording ended early (payload of SGRPC_REC_TRUNCATED). */
typedef enum sgrpc_record_stop {
  SGRPC_RECORD_STOP_CAP = 1,   /**< the next record would pass max_bytes */
  SGRPC_RECORD_STOP_NOMEM = 2  /**< a record could not be assembled */
} sgrpc_record_stop;

/**
 * Where a recorder's bytes go: called with the file header once, then
 * once per record (always whole records). Returns 0, or a negative value
 * to stop the recorder (the connection is not affected).
 */
typedef int (*sgrpc_record_write_cb)(const uint8_t *data, size_t len, void *user_data);

/** Options of sgrpc_recorder_new. Zero-initialise, then set fields. */
typedef struct sgrpc_recorder_opts {
  /** The sink. Required. */
  sgrpc_record_write_cb write;
  /** Given to write. */
  void *user_data;
  /** Bytes the recording may take in total, header and final
   *  SGRPC_REC_TRUNCATED record included; 0 for no limit. When the next
   *  record would not fit, a TRUNCATED record is written and the
   *  recorder stops. Values below 64 become 64. */
  uint64_t max_bytes;
  /** SGRPC_RECORD_* flags. */
  unsigned flags;
} sgrpc_recorder_opts;

/** A recorder: records one connection. */
typedef struct sgrpc_recorder sgrpc_recorder;

/** sgrpc_recorder_state values. */
enum {
  SGRPC_RECORDER_IDLE = 0,      /**< not set on a connection yet */
  SGRPC_RECORDER_ACTIVE = 1,    /**< recording */
  SGRPC_RECORDER_TRUNCATED = 2, /**< stopped at max_bytes or out of memory */
  SGRPC_RECORDER_FAILED = 3     /**< the sink returned an error */
};

/**
 * Creates a recorder; mem (NULL: libc) is used for its record buffer.
 * Returns 0 and sets *prec, or SGRPC_ERR_INVALID_ARGUMENT (NULL prec or
 * opts, no write callback, a partial mem) or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_recorder_new(sgrpc_recorder **prec, const sgrpc_recorder_opts *opts,
                                    const sgrpc_mem *mem);

/** Frees a recorder. The connection it was set on must be deleted
 *  first. NULL is a no-op. */
SGRPC_EXTERN void sgrpc_recorder_del(sgrpc_recorder *rec);

/** One of SGRPC_RECORDER_*. */
SGRPC_EXTERN int sgrpc_recorder_state(const sgrpc_recorder *rec);

/** Bytes given to the sink so far. */
SGRPC_EXTERN uint64_t sgrpc_recorder_bytes(const sgrpc_recorder *rec);

/**
 * Starts recording conn into rec: writes the file header and the
 * SGRPC_REC_CONN record (role, the settings the connection uses, its
 * creation time). Call it right after sgrpc_conn_*_new, before any
 * other call on conn. The connection keeps the pointer (not ownership):
 * rec must outlive conn.
 *
 * Returns 0, SGRPC_ERR_INVALID_ARGUMENT (NULL), SGRPC_ERR_INVALID_STATE
 * (rec already used, conn already has a recorder, or conn has already
 * received, sent or started something), or SGRPC_ERR_NOMEM. A sink error
 * or the size cap is not an error here: the recorder's state says it.
 */
SGRPC_EXTERN int sgrpc_conn_set_recorder(sgrpc_conn *conn, sgrpc_recorder *rec);

/* ------------------------------------------------------------------ */
/* Reading and replaying recordings                                    */
/* ------------------------------------------------------------------ */

/** One record of a recording, borrowed from the recording's bytes. */
typedef struct sgrpc_record {
  /** sgrpc_record_type. */
  int type;
  /** The record's now (absolute, nanoseconds). */
  int64_t now;
  /** The payload (after type, now delta and length). */
  const uint8_t *payload;
  /** Length of payload. */
  size_t payload_len;
  /** The whole encoded record. */
  const uint8_t *raw;
  /** Length of raw. */
  size_t raw_len;
  /** Where raw starts in the recording (bytes from its start). */
  size_t offset;
} sgrpc_record;

/** A cursor over a recording held in memory. */
typedef struct sgrpc_record_reader {
  /** The recording (borrowed). */
  const uint8_t *data;
  /** Its size. */
  size_t len;
  /** Where the next record starts. */
  size_t off;
  /** The now of the record read last (0 before the first). */
  int64_t now;
  /** The header's flags (SGRPC_RECORD_*). */
  unsigned flags;
  /** Index of the next record (0 is the SGRPC_REC_CONN record). */
  size_t index;
} sgrpc_record_reader;

/**
 * Checks the file header and sets up r over data (borrowed). Returns 0,
 * or SGRPC_ERR_INVALID_ARGUMENT (NULL, short, bad magic, or a version
 * this library does not read).
 */
SGRPC_EXTERN int sgrpc_record_reader_init(sgrpc_record_reader *r, const uint8_t *data,
                                          size_t len);

/**
 * Reads the next record into *rec. Returns 1 with a record, 0 at the end,
 * or SGRPC_ERR_INVALID_ARGUMENT when the bytes are malformed (a record
 * cut short: a crash while writing leaves one).
 */
SGRPC_EXTERN int sgrpc_record_next(sgrpc_record_reader *r, sgrpc_record *rec);

/** Name of a record type ("RECV", "EVENT", ...), "UNKNOWN" otherwise. */
SGRPC_EXTERN const char *sgrpc_record_type_name(int type);

/** The result of a replay. */
typedef struct sgrpc_replay_report {
  /** Records replayed (compared equal), the CONN record included. */
  size_t records;
  /** Nonzero when the recording ends with SGRPC_REC_TRUNCATED (or is cut
   *  short): everything before it replayed identically. */
  int truncated;
  /** Nonzero when a difference was found; the fields below say where. */
  int differs;
  /** Index of the first differing record (0 = CONN). */
  size_t diff_index;
  /** Its type (the recorded one). */
  int diff_type;
  /** Byte offset of that record in the recording. */
  size_t diff_record_offset;
  /** Offset of the first differing byte inside the record (the type byte
   *  is offset 0). */
  size_t diff_offset;
  /** The recorded byte at diff_offset; -1 when the recorded record ended
   *  before it. */
  int expected;
  /** The replayed byte at diff_offset; -1 when the replayed record ended
   *  before it (or the replay produced no record). */
  int got;
  /** What the recording says the differing call returned (when the record
   *  carries a result). */
  int64_t expected_result;
  /** What the replayed engine returned for that call. */
  int64_t got_result;
  /** Nonzero when expected_result / got_result are set. */
  int has_result;
} sgrpc_replay_report;

/**
 * Replays a recording held in memory (borrowed) into a fresh engine made
 * with the recorded role and settings and the allocator mem (NULL: libc;
 * a shared budget of the recorded connection is not recreated). Every
 * recorded call is made again in order with its recorded arguments and
 * now; the records the fresh engine produces must equal the recorded
 * ones byte for byte.
 *
 * Returns 0 when everything matched (report->truncated may be set), 1
 * when a difference was found (report says where), or a negative code:
 * SGRPC_ERR_INVALID_ARGUMENT (NULL, malformed recording),
 * SGRPC_ERR_NOMEM. report may be NULL.
 */
SGRPC_EXTERN int sgrpc_replay_mem(const uint8_t *data, size_t len, const sgrpc_mem *mem,
                                  sgrpc_replay_report *report);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_RECORD_H */
