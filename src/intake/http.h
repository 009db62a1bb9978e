/*-------------------------------------------------------------------------
 *
 * http.h
 *	  The HTTP intake's listener (http.c): its settings and set-up.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_HTTP_H
#define EK_HTTP_H

#include "postgres.h"

#include "fmgr.h"

extern char *ek_http_listen;
extern char *ek_http_database;
extern int	ek_http_workers;
extern int	ek_http_max_connections;
extern int	ek_http_timeout;
extern int	ek_http_connection_memory;
extern char *ek_http_cors_origins;

extern void ek_http_init(void);
extern PGDLLEXPORT void ek_http_worker_main(Datum arg);

#endif							/* EK_HTTP_H */
