/*
 * Hook registries (<sgrpc/events.h>) and metadata edits made by hooks.
 * The hook points themselves are in rpc.c, each behind one NULL test.
 */
#include "events_internal.h"

#include <stdlib.h>
#include <string.h>
#include "rpc_mem.h"

typedef struct hook {
  sgrpc_hook_fn fn;
  void *user_data;
} hook;

struct sgrpc_events {
  sgrpc_mem mem;
  hook *hooks[SGRPC_HOOK_TYPE_COUNT];
  size_t n[SGRPC_HOOK_TYPE_COUNT];
  size_t cap[SGRPC_HOOK_TYPE_COUNT];
  int firing; /* depth of hook_fire: listen is refused meanwhile */
};

int sgrpc_events_new(sgrpc_events **pevents, const sgrpc_mem *mem) {
  sgrpc_mem m;
  sgrpc_events *e;
  if (!pevents) return SGRPC_ERR_INVALID_ARGUMENT;
  if (sgrpc_mem_resolve(&m, mem) != 0) return SGRPC_ERR_INVALID_ARGUMENT;
  e = rpc_malloc(&m, sizeof(*e));
  if (!e) return SGRPC_ERR_NOMEM;
  memset(e, 0, sizeof(*e));
  e->mem = m;
  *pevents = e;
  return 0;
}

void sgrpc_events_del(sgrpc_events *e) {
  int t;
  if (!e) return;
  for (t = 0; t < SGRPC_HOOK_TYPE_COUNT; t++) rpc_free(&e->mem, e->hooks[t]);
  rpc_free(&e->mem, e);
}

int sgrpc_events_listen(sgrpc_events *e, sgrpc_hook_type type, sgrpc_hook_fn fn,
                        void *user_data) {
  if (!e || !fn || (int)type < 0 || type >= SGRPC_HOOK_TYPE_COUNT)
    return SGRPC_ERR_INVALID_ARGUMENT;
  if (e->firing) return SGRPC_ERR_INVALID_STATE;
  if (e->n[type] == e->cap[type]) {
    size_t cap = e->cap[type] ? e->cap[type] * 2 : 4;
    hook *nh = rpc_malloc(&e->mem, cap * sizeof(*nh));
    if (!nh) return SGRPC_ERR_NOMEM;
    if (e->n[type]) memcpy(nh, e->hooks[type], e->n[type] * sizeof(*nh));
    rpc_free(&e->mem, e->hooks[type]);
    e->hooks[type] = nh;
    e->cap[type] = cap;
  }
  e->hooks[type][e->n[type]].fn = fn;
  e->hooks[type][e->n[type]].user_data = user_data;
  e->n[type]++;
  return 0;
}

size_t sgrpc_events_count(const sgrpc_events *e, sgrpc_hook_type type) {
  if (!e || (int)type < 0 || type >= SGRPC_HOOK_TYPE_COUNT) return 0;
  return e->n[type];
}

int hook_wanted(const sgrpc_events *e, sgrpc_hook_type type) { return e->n[type] != 0; }

void hook_fire(sgrpc_events *e, sgrpc_hook_event *ev, hook_md_edit *ed) {
  size_t i;
  ev->md_editable = ed != NULL;
  ev->internal_ = ed;
  if (ed) {
    ed->mem = &e->mem;
    ed->items = (sgrpc_md *)(uintptr_t)ev->md; /* borrowed until the first edit */
    ed->n = ev->md_count;
    ed->cap = 0;
    ed->blocks = NULL;
  }
  if (!ev->status_message) ev->status_message = "";
  e->firing++;
  for (i = 0; i < e->n[ev->type]; i++) {
    e->hooks[ev->type][i].fn(ev, e->hooks[ev->type][i].user_data);
    if (ev->type == SGRPC_HOOK_RECV_REQUEST && ev->end_code) break;
  }
  e->firing--;
  ev->internal_ = NULL;
}

void hook_md_done(hook_md_edit *ed) {
  if (!ed || !ed->mem) return;
  while (ed->blocks) {
    hook_md_blk *b = ed->blocks;
    ed->blocks = b->next;
    rpc_free(ed->mem, b);
  }
  if (ed->cap) rpc_free(ed->mem, ed->items);
  ed->items = NULL;
  ed->n = ed->cap = 0;
  ed->mem = NULL;
}

/* Makes room for one more owned entry. */
static int ed_reserve(hook_md_edit *ed, size_t extra) {
  sgrpc_md *ni;
  size_t cap;
  if (ed->cap && ed->n + extra <= ed->cap) return 0;
  cap = (ed->n + extra) * 2 + 4;
  ni = rpc_malloc(ed->mem, cap * sizeof(*ni));
  if (!ni) return SGRPC_ERR_NOMEM;
  if (ed->n) memcpy(ni, ed->items, ed->n * sizeof(*ni));
  if (ed->cap) rpc_free(ed->mem, ed->items);
  ed->items = ni;
  ed->cap = cap;
  return 0;
}

int sgrpc_hook_md_add(sgrpc_hook_event *ev, const char *key, const uint8_t *value,
                      size_t value_len) {
  hook_md_edit *ed;
  hook_md_blk *b;
  size_t kl;
  char *s;
  if (!ev || !key || !*key || (!value && value_len)) return SGRPC_ERR_INVALID_ARGUMENT;
  ed = ev->internal_;
  if (!ev->md_editable || !ed) return SGRPC_ERR_INVALID_STATE;
  kl = strlen(key);
  if (value_len > SIZE_MAX / 2 - kl - sizeof(*b)) return SGRPC_ERR_INVALID_ARGUMENT;
  if (ed_reserve(ed, 1) < 0) return SGRPC_ERR_NOMEM;
  ev->md = ed->items; /* the array may have moved */
  b = rpc_malloc(ed->mem, sizeof(*b) + kl + 1 + value_len + 1);
  if (!b) return SGRPC_ERR_NOMEM;
  b->next = ed->blocks;
  ed->blocks = b;
  s = (char *)(b + 1);
  memcpy(s, key, kl + 1);
  if (value_len) memcpy(s + kl + 1, value, value_len);
  s[kl + 1 + value_len] = 0;
  ed->items[ed->n].key = s;
  ed->items[ed->n].key_len = kl;
  ed->items[ed->n].value = (const uint8_t *)s + kl + 1;
  ed->items[ed->n].value_len = value_len;
  ed->n++;
  ev->md = ed->items;
  ev->md_count = ed->n;
  return 0;
}

int sgrpc_hook_md_add_str(sgrpc_hook_event *ev, const char *key, const char *value) {
  if (!value) return SGRPC_ERR_INVALID_ARGUMENT;
  return sgrpc_hook_md_add(ev, key, (const uint8_t *)value, strlen(value));
}

int sgrpc_hook_md_remove(sgrpc_hook_event *ev, const char *key) {
  hook_md_edit *ed;
  size_t i, j, kl;
  int removed = 0;
  if (!ev || !key) return SGRPC_ERR_INVALID_ARGUMENT;
  ed = ev->internal_;
  if (!ev->md_editable || !ed) return SGRPC_ERR_INVALID_STATE;
  kl = strlen(key);
  for (i = 0; i < ed->n; i++)
    if (ed->items[i].key_len == kl && memcmp(ed->items[i].key, key, kl) == 0) break;
  if (i == ed->n) return 0;
  if (ed_reserve(ed, 0) < 0) return SGRPC_ERR_NOMEM;
  for (i = 0, j = 0; i < ed->n; i++) {
    if (ed->items[i].key_len == kl && memcmp(ed->items[i].key, key, kl) == 0) {
      removed++;
      continue;
    }
    ed->items[j++] = ed->items[i];
  }
  ed->n = j;
  ev->md = ed->items;
  ev->md_count = ed->n;
  return removed;
}

const uint8_t *sgrpc_md_find(const sgrpc_md *md, size_t n, const char *key,
                             size_t *value_len) {
  size_t i, kl;
  if (!md || !key) return NULL;
  kl = strlen(key);
  for (i = 0; i < n; i++) {
    if (md[i].key_len == kl && memcmp(md[i].key, key, kl) == 0) {
      if (value_len) *value_len = md[i].value_len;
      return md[i].value;
    }
  }
  return NULL;
}
