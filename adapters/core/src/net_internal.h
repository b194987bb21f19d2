/*
 * Internals of the net layer shared by its files: core.c (connections,
 * servers, loop, timers), channel.c (channels, subchannels, load
 * balancing, connectivity state), target.c (channel targets and
 * addresses) and resolve.c (resolutions, the c-ares DNS resolver,
 * watched descriptors). Not installed.
 */
#ifndef SGRPC_NET_INTERNAL_H
#define SGRPC_NET_INTERNAL_H

#include <sgrpc/net_adapter.h>
#include <sgrpc/net_record.h>

enum { NET_IDLE = 0, NET_CONNECTING, NET_OPEN, NET_WAITING };

typedef struct sg_subch sg_subch;
typedef struct sg_dns sg_dns;

/* A call started on a connection that never connected: whether it fails
 * fast, and whether the channel ended it (its CLOSE is then rewritten). */
typedef struct sg_pcall {
  sgrpc_call *call;
  uint8_t fail_fast;
  uint8_t failed;
} sg_pcall;

struct sgrpc_net_conn {
  sgrpc_net_loop *loop;
  sgrpc_conn *engine;
  void *tx;
  sgrpc_net_server *server;
  sgrpc_net_channel *channel;
  sg_subch *sub;  /* channel: the subchannel it serves, NULL when detached */
  size_t addr_idx; /* channel: the address of the current attempt */
  int state;
  uint8_t closing;         /* close at the next service pass */
  uint8_t dead;            /* closed; freed when the loop unwinds */
  uint8_t blocked;         /* the transport took less than offered */
  uint8_t goaway_seen;     /* client: the peer sent GOAWAY */
  uint8_t close_when_idle; /* close once the engine holds no call */
  uint8_t ever_connected;
  uint8_t ready;           /* client: the engine said READY */
  uint8_t by_channel;      /* closed by the channel itself (idle, close) */
  uint8_t failfast_due;    /* channel: end the fail-fast calls at the next service */
  uint8_t lingering;
  /* Server shutdown: bytes_received + 2 when the GOAWAY went out (0:
   * not shutting down), and how long to wait for the peer's answer. */
  uint64_t drain_rx_mark;
  int64_t drain_ack_by;
  int64_t close_at;
  int64_t linger_ns;
  int64_t attempt_start, connect_deadline, retry_at;
  sgrpc_tls *tls;
  uint8_t *pend;
  size_t poff, plen, pcap;
  /* Why the connection failed (TLS, connect, resolution): the status
   * message of the calls it ends. */
  char reason[200];
  uint8_t tls_failed;
  /* Calls started before the first connect (per-call wait-for-ready). */
  sg_pcall *pcalls;
  size_t npcalls, cappcalls;
  const uint8_t *fill_src;
  size_t fill_len;
  int fill_called;
  sgrpc_ssize fill_got;
  char peer[128];
  sgrpc_record_file *rec; /* the connection's recording, or NULL */
  /* the peer certificate's SANs in the engine's form (sgrpc_conn_peer),
   * made on first request; the certificate cannot change afterwards */
  sgrpc_peer_san *sans;
  size_t nsans;
  uint64_t id; /* loop-unique, for channelz socket ids */
  sgrpc_net_conn *prev, *next;
  /* The channel's own list of its connections (channel.c). */
  sgrpc_net_conn *ch_prev, *ch_next;
  /* Service bookkeeping (core.c): a pass services only the connections
   * on the loop's work list; the others are quiet (conn_quiet) until an
   * adapter report, the engine's wake hook, a due expiry or a change by
   * the channel or server code puts them there (sg_conn_touch). Every live
   * connection sits in the loop's expiry heap under heap_key, its next
   * expiry as of its last service. */
  sgrpc_net_conn *wnext; /* next on the work list */
  sgrpc_net_conn *tnext; /* next due connection, inside sgrpc_net_loop_timer */
  uint8_t in_work;
  size_t heap_idx; /* 1-based position in the heap; 0: not in it */
  int64_t heap_key;
};

/* An entry of the loop's expiry heap: the key beside the connection. */
typedef struct sg_heap_ent {
  int64_t key;
  sgrpc_net_conn *c;
} sg_heap_ent;

struct sgrpc_net_timer {
  sgrpc_net_loop *loop;
  int64_t when;
  uint64_t seq;
  sgrpc_net_timer_cb cb;
  void *user_data;
  sgrpc_net_timer *prev, *next;
};

struct sgrpc_net_fd {
  sgrpc_net_loop *loop;
  sg_dns *dns;
  int fd;
  int events;
  void *handle;
  sgrpc_net_fd *next;
};

struct sgrpc_net_loop {
  sgrpc_net_ops ops;
  void *ud;
  sgrpc_mem mem;
  int depth;
  int64_t armed;
  int64_t now;
  size_t io_limit;
  int signals;
  sgrpc_net_conn *conns, *graveyard;
  sgrpc_net_server *servers;
  sgrpc_net_channel *channels;
  sgrpc_net_timer *timers;
  uint64_t timer_seq;
  uint64_t seeds;
  uint64_t ids; /* last id given to a server, channel or connection */
  /* Connections to service (FIFO through wnext) and how many were added
   * (a pass that added some goes on). */
  sgrpc_net_conn *work_head, *work_tail;
  uint64_t woken;
  /* 4-ary min-heap of the live connections by heap_key. */
  sg_heap_ent *heap;
  size_t heap_len, heap_cap;
  size_t nlive; /* connections made and not closed: the heap's worst size */
  uint64_t serviced; /* conn_service calls so far (sgrpc_net_loop_serviced) */
  /* Channels (channel.c): the ones whose state or expiry may have changed
   * since they were last looked at (through dnext), a min-heap of them
   * all by their expiry, how many there are and how many balance
   * round_robin. */
  sgrpc_net_channel *ch_dirty, *ch_batch;
  sgrpc_net_channel **ch_heap;
  size_t ch_heap_len, ch_heap_cap, nchannels, nrr;
};

/* Channel targets (target.c). */
enum { SG_T_DNS = 1, SG_T_IPV4, SG_T_IPV6, SG_T_UNIX, SG_T_UNIX_ABSTRACT, SG_T_CUSTOM };

typedef struct sg_target {
  int scheme;
  char host[256];   /* dns: the name (no brackets); others: "" */
  char port[8];     /* the port text (at most 5 digits) */
  char dns_server[72]; /* dns://server/ given in the target, or "" */
  char authority[300]; /* default :authority */
  /* Addresses known without a resolver (ipv4:, ipv6:, unix:, numeric
   * dns hosts); NULL when a resolver must run. */
  sgrpc_net_address *addrs;
  size_t naddrs;
} sg_target;

int sg_target_parse(sgrpc_net_loop *l, const char *s, int custom, sg_target *t);

/* Allocation through the loop's allocator. */
void *sg_net_calloc(const sgrpc_net_loop *l, size_t n);
void sg_net_free(const sgrpc_net_loop *l, void *p);

/* core.c services for the other files */
void sg_loop_enter(sgrpc_net_loop *l, int64_t now);
void sg_loop_leave(sgrpc_net_loop *l, int64_t now);
void sg_loop_kick(sgrpc_net_loop *l, int64_t now);
void sg_free_graveyard(sgrpc_net_loop *l);
sgrpc_net_conn *sg_conn_new(sgrpc_net_loop *l, sgrpc_conn *engine);
void sg_conn_close(sgrpc_net_conn *c);
/* Puts c on the work list of its loop (no-op when it is on it or dead):
 * every change to a connection made outside its own service (state,
 * closing, close_when_idle, deadlines, failfast_due) must be followed by
 * this, else the connection is not looked at until its next expiry. */
void sg_conn_touch(sgrpc_net_conn *c);
int sg_conn_make_tls(sgrpc_net_conn *c, sgrpc_tls_factory make, void *ud, const char *name);
int64_t sg_min64(int64_t a, int64_t b);

/* channel.c hooks called by core.c */
void sg_channel_conn_event(sgrpc_net_conn *c, const sgrpc_event *ev);
void sg_channel_conn_gone(sgrpc_net_channel *ch, sgrpc_net_conn *c);
void sg_channel_fail_fast(sgrpc_net_conn *c);
void sg_channel_connect_failed(sgrpc_net_conn *c, int64_t now);
void sg_channel_conn_connected(sgrpc_net_conn *c);
void sg_channel_close_event(sgrpc_net_conn *c, sgrpc_event *copy, int *changed);
void sg_channel_start_attempt(sgrpc_net_conn *c, int64_t now);
void sg_channels_maintain(sgrpc_net_loop *l, int64_t now);
int sg_channels_check_state(sgrpc_net_loop *l, int64_t now);
void sg_channels_timer(sgrpc_net_loop *l, int64_t now);
/* Marks ch for a look at its state and expiry in the next pass (no-op
 * when marked): every change to what channel_compute_state or the
 * channel's expiry read must be followed by this. */
void sg_channel_touch(sgrpc_net_channel *ch);
/* The expiries of the channels still marked after a pass, brought up to
 * date (they stay marked); and, in Debug builds, the bookkeeping checked. */
void sg_channels_settle(sgrpc_net_loop *l, int64_t now);
void sg_channels_verify(const sgrpc_net_loop *l, int64_t now);
int64_t sg_channels_next_expiry(const sgrpc_net_loop *l);
int sg_channels_have_work(const sgrpc_net_loop *l);
void sg_channels_abort_all(sgrpc_net_loop *l);
void sg_channels_close_all(sgrpc_net_loop *l, int64_t now);
void sg_channel_free_all(sgrpc_net_loop *l);

/* resolve.c */
int sg_dns_resolver(sgrpc_net_loop *l, const char *server, sgrpc_net_resolver *out, sg_dns **pdns);
void sg_dns_del(sg_dns *d);
int64_t sg_dns_next_expiry(const sg_dns *d);
void sg_dns_timer(sg_dns *d, int64_t now);
int sg_dns_busy(const sg_dns *d);

/* The channel's half of a resolution. */
struct sgrpc_net_resolve {
  sgrpc_net_channel *ch;
  void *ctx;
  int in_start;
  int done;
  int failed;
  sgrpc_net_address *addrs;
  size_t naddrs;
  char error[200];
};

/* Recording (core.c): the directory of a server or channel (the option,
 * else SGRPC_RECORD_DIR; "" means none; 0 or SGRPC_ERR_NOMEM), and the
 * recording of a new connection of an owner that records. */
int sg_record_setup(sgrpc_net_loop *l, const char *dir, uint64_t max, char **pdir,
                    uint64_t *pmax);
void sg_conn_record(sgrpc_net_conn *c, const char *dir, uint64_t max, const char *tag);
/* Counters (core.c, channel.c): an engine's counters added to a total; an
 * owner's totals (closed plus open connections); a channel's closed total. */
void sg_stats_add(sgrpc_conn_stats *t, const sgrpc_conn *engine);
void sg_owner_stats(const sgrpc_net_loop *l, const sgrpc_conn_stats *closed,
                    const sgrpc_net_server *s, const sgrpc_net_channel *ch, sgrpc_conn_stats *st);
void sg_channel_closed_stats(sgrpc_net_channel *ch, const sgrpc_conn *engine);
/* The next loop-unique id (servers, channels, connections). */
static inline uint64_t sg_loop_next_id(sgrpc_net_loop *l) { return ++l->ids; }

#endif
