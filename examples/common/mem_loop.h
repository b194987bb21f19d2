/*
 * A tiny in-memory "network" for the examples: a client and a server
 * connection in one process, bytes moved between them by hand. A real
 * program does the same with a socket: read -> sgrpc_conn_recv -> pull
 * events -> dispatch, and write what sgrpc_conn_out_peek returns.
 */
#ifndef EXAMPLE_MEM_LOOP_H
#define EXAMPLE_MEM_LOOP_H

#include <stdlib.h>
#include <string.h>

#include <sgrpc/rpc.h>

typedef struct mem_loop {
  sgrpc_conn *cli, *srv;
  sgrpc_router *router;
  int64_t now;
  uint8_t *tmp;
  size_t tmp_cap;
} mem_loop;

static void mem_loop_drain(mem_loop *l, sgrpc_conn *conn) {
  sgrpc_event ev;
  while (sgrpc_conn_next_event(conn, &ev) == 1) {
    if (conn == l->srv) sgrpc_router_dispatch(l->router, conn, &ev, l->now);
    else sgrpc_rpc_client_dispatch(conn, &ev);
  }
}

/* Moves pending output of from into to; returns the bytes moved. */
static size_t mem_loop_pump(mem_loop *l, sgrpc_conn *from, sgrpc_conn *to) {
  const uint8_t *data;
  ssize_t n = sgrpc_conn_out_peek(from, &data);
  size_t off = 0;
  mem_loop_drain(l, from);
  if (n <= 0) return 0;
  /* copy: handlers may call into `from`, which ends the borrow */
  if ((size_t)n > l->tmp_cap) {
    uint8_t *t = realloc(l->tmp, (size_t)n);
    if (!t) abort();
    l->tmp = t;
    l->tmp_cap = (size_t)n;
  }
  memcpy(l->tmp, data, (size_t)n);
  sgrpc_conn_out_consume(from, (size_t)n);
  mem_loop_drain(l, from);
  while (off < (size_t)n) {
    ssize_t got = sgrpc_conn_recv(to, l->tmp + off, (size_t)n - off, l->now);
    if (got < 0) break;
    off += (size_t)got;
    mem_loop_drain(l, to);
  }
  return off;
}

/* Runs until nothing moves (bounded). */
static void mem_loop_run(mem_loop *l) {
  int i;
  for (i = 0; i < 100000; i++) {
    size_t moved = mem_loop_pump(l, l->cli, l->srv) + mem_loop_pump(l, l->srv, l->cli);
    if (!moved && !sgrpc_conn_want_write(l->cli) && !sgrpc_conn_want_write(l->srv)) break;
  }
}

static int mem_loop_init(mem_loop *l) {
  memset(l, 0, sizeof(*l));
  l->now = 1;
  if (sgrpc_conn_client_new(&l->cli, NULL, NULL, l->now) != 0) return -1;
  if (sgrpc_conn_server_new(&l->srv, NULL, NULL, l->now) != 0) return -1;
  return sgrpc_router_new(&l->router, NULL);
}

static void mem_loop_free(mem_loop *l) {
  sgrpc_conn_del(l->cli);
  sgrpc_conn_del(l->srv);
  sgrpc_router_del(l->router);
  free(l->tmp);
}

#endif
