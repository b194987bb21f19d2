/* A program outside the sgrpc tree, built against an installed sgrpc by
 * tests/package/run.sh. main.c checks the engine; each other file checks
 * one component and is compiled in only when that component is used.
 * Every check returns 0 on success and prints one line. */
#ifndef SGRPC_CONSUMER_H
#define SGRPC_CONSUMER_H

/* loop_<adapter>.c: the adapter listens on 127.0.0.1, then is deleted */
int consumer_loop(void);
/* tls.c: an OpenSSL client session that writes its ClientHello */
int consumer_tls(void);
/* rpc.c: a router with one method, then freed */
int consumer_rpc(void);
/* config.c: a service config parsed from JSON, then freed */
int consumer_config(void);

#endif
