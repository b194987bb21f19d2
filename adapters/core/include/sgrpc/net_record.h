/** @file
 * Recording connections to files, and replaying recording files
 * (libsgrpc-net). The recorder and the format are the engine's
 * (<sgrpc/record.h>, docs/record-replay.md); this is the IO around them.
 *
 * The net layer records on its own when a server's or channel's options
 * name a directory (sgrpc_net_server_opts.record_dir,
 * sgrpc_net_channel_opts.record_dir), or when the environment does:
 *
 *   SGRPC_RECORD_DIR        directory for the recordings (must exist)
 *   SGRPC_RECORD_MAX_BYTES  size cap per file (bytes; 0 or unset: 64 MiB)
 *
 * One file per connection, named sgrpc-ROLE-PID-N.sgrec,
 * created exclusively (never overwriting). A file that reaches its cap
 * ends with a TRUNCATED record.
 */
#ifndef SGRPC_NET_RECORD_H
#define SGRPC_NET_RECORD_H

#include <sgrpc/record.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The size cap used when a directory is given without one: 64 MiB. */
#define SGRPC_RECORD_DEFAULT_MAX_BYTES (64ull << 20)

/** A recording file and its recorder. */
typedef struct sgrpc_record_file sgrpc_record_file;

/**
 * Creates a new recording file in dir, named sgrpc-TAG-PID-N.sgrec
 * (N: the first number not taken), and a recorder writing into it with
 * max_bytes (0: SGRPC_RECORD_DEFAULT_MAX_BYTES) and flags
 * (SGRPC_RECORD_*). mem (NULL: libc) allocates the recorder and the
 * file object. Set the recorder on a connection with
 * sgrpc_conn_set_recorder (sgrpc_record_file_recorder).
 *
 * Returns 0 and sets *pf, or SGRPC_ERR_INVALID_ARGUMENT (NULL argument,
 * tag not [a-z0-9_-] or longer than 32), SGRPC_ERR_NOMEM, or
 * SGRPC_ERR_SYSTEM(errno) when the file cannot be created.
 */
SGRPC_EXTERN int sgrpc_record_file_open(sgrpc_record_file **pf, const char *dir, const char *tag,
                                        uint64_t max_bytes, unsigned flags, const sgrpc_mem *mem);

/** The file's recorder (owned by the file object). */
SGRPC_EXTERN sgrpc_recorder *sgrpc_record_file_recorder(const sgrpc_record_file *f);

/** The file's path (owned by the file object). */
SGRPC_EXTERN const char *sgrpc_record_file_path(const sgrpc_record_file *f);

/**
 * Flushes and closes the file and frees the recorder and f. The
 * connection the recorder was set on must be deleted first. Returns 0, or
 * SGRPC_ERR_SYSTEM(errno) when the last bytes could not be written (the
 * file then ends with a cut record, which readers treat as the end).
 * NULL is a no-op returning 0.
 */
SGRPC_EXTERN int sgrpc_record_file_close(sgrpc_record_file *f);

/**
 * Replays the recording in file path (sgrpc_replay_mem on its bytes):
 * for a test of one's own, e.g. assert_int_equal(sgrpc_replay_file(p,
 * NULL, &r), 0). Returns what sgrpc_replay_mem returns, or
 * SGRPC_ERR_SYSTEM(errno) when the file cannot be read.
 */
SGRPC_EXTERN int sgrpc_replay_file(const char *path, const sgrpc_mem *mem,
                                   sgrpc_replay_report *report);

/**
 * Writes a one-line description of a replay's outcome into buf (always
 * NUL-terminated when cap > 0), e.g. "record 12 (RECV at offset 1840):
 * byte 3 differs: expected 0x06 got 0x89 (result 33 expected, -901
 * (protocol error) got)". Returns the length it wanted (as snprintf).
 */
SGRPC_EXTERN int sgrpc_replay_report_format(const sgrpc_replay_report *r, char *buf, size_t cap);

/**
 * Reads SGRPC_RECORD_DIR and SGRPC_RECORD_MAX_BYTES: returns the
 * directory (the environment's string, NULL when unset or empty) and
 * stores the cap in *max_bytes (0 when unset or not a number). The net
 * layer calls it for servers and channels whose options name no
 * directory.
 */
SGRPC_EXTERN const char *sgrpc_record_env(uint64_t *max_bytes);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_NET_RECORD_H */
