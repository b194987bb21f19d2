/* Internal interface between rpc.c and events.c: firing hooks and the
 * per-event metadata edit buffer. */
#ifndef SGRPC_EVENTS_INTERNAL_H
#define SGRPC_EVENTS_INTERNAL_H

#include <sgrpc/events.h>

/* Editable copy of an event's metadata. Starts borrowing the caller's
 * array; the first edit copies the entry array (strings stay borrowed)
 * and added strings live in blocks freed by hook_md_done. */
typedef struct hook_md_blk {
  struct hook_md_blk *next;
} hook_md_blk;

typedef struct hook_md_edit {
  const sgrpc_mem *mem;
  sgrpc_md *items; /* owned when cap != 0 */
  size_t n, cap;
  hook_md_blk *blocks;
} hook_md_edit;

/* Nonzero when events has a hook of type. */
int hook_wanted(const sgrpc_events *events, sgrpc_hook_type type);

/* Runs the hooks of ev->type in order. When ed is not NULL the metadata
 * (ev->md/md_count on entry) is editable through it. RECV_REQUEST stops at
 * the first hook that sets end_code. */
void hook_fire(sgrpc_events *events, sgrpc_hook_event *ev, hook_md_edit *ed);

/* Frees what the edits allocated; ev->md from that edit dies with it. */
void hook_md_done(hook_md_edit *ed);

#endif
