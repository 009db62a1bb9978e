/*-------------------------------------------------------------------------
 *
 * http_settings.h
 *	  The HTTP intake's settings (http_settings.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_HTTP_SETTINGS_H
#define EK_HTTP_SETTINGS_H

#include "postgres.h"

extern char *ek_http_listen;
extern char *ek_http_database;
extern int	ek_http_workers;
extern int	ek_http_max_connections;
extern int	ek_http_timeout;
extern int	ek_http_connection_memory;
extern char *ek_http_cors_origins;

extern void ek_http_define_gucs(void);
extern bool ek_http_split_listen_address(const char *value, char *host, size_t hostlen,
										 char *port, size_t portlen, const char **problem);

#endif							/* EK_HTTP_SETTINGS_H */
