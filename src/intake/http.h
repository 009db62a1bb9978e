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

extern void ek_http_init(void);
extern PGDLLEXPORT void ek_http_worker_main(Datum arg);

#endif							/* EK_HTTP_H */
