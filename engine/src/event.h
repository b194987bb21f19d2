/*
 * The event queue (event.c).
 */
#ifndef SG_EVENT_H
#define SG_EVENT_H

#include <sgrpc/sgrpc.h>

#include "buf.h"

/* An event in the queue, with what must happen when it is pulled. */
typedef struct sg_event {
  sgrpc_event ev;
  sg_buf owned;          /* message storage owned by the event */
  size_t credit;         /* window credit to return on pull */
  int32_t credit_stream;
  char *owned_msg;       /* synthesized status text owned by the event */
  size_t counted;        /* message bytes counted against the budget */
} sg_event;

/* Appends an event of type for call (NULL: a connection event), zeroed
 * but for type and call, and takes a reference on the call. Returns NULL
 * on no memory. */
sg_event *sg_event_push(sgrpc_conn *c, sgrpc_event_type type, sgrpc_call *call);
/* Gives back what the previously pulled event owned (its storage, its
 * call's reference). */
void sg_event_retire(sgrpc_conn *c);
/* Returns n bytes of stream window credit to the peer. */
void sg_credit(sgrpc_conn *c, int32_t stream_id, size_t n);

#endif
