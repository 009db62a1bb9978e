/*-------------------------------------------------------------------------
 *
 * http_settings.c
 *	  The HTTP intake's settings (eventkit.http_*): their variables,
 *	  defined here so that both the listener (http.c) and the request
 *	  handling (http_api.c) read them without depending on each other, and
 *	  the parsing of eventkit.http_listen.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>

#include "utils/guc.h"

#include "intake/http_settings.h"

char	   *ek_http_listen = NULL;
char	   *ek_http_database = NULL;
int			ek_http_workers = 2;
int			ek_http_max_connections = 256;
int			ek_http_timeout = 30;	/* s */
int			ek_http_connection_memory = 64 * 1024;
char	   *ek_http_cors_origins = NULL;

/*
 * Split "host:port", "[v6]:port", ":port" or "*:port" into host (NULL:
 * every address) and port.  Returns false with a message on a bad value.
 */
bool
ek_http_split_listen_address(const char *value, char *host, size_t hostlen,
					 char *port, size_t portlen, const char **problem)
{
	const char *colon = strrchr(value, ':');
	const char *h = value;
	size_t		hlen;
	long		p;
	char	   *end;

	if (colon == NULL)
	{
		*problem = "Give an address and a port, such as 127.0.0.1:8088.";
		return false;
	}
	hlen = colon - value;
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']')
	{
		h++;
		hlen -= 2;
	}
	if (hlen >= hostlen)
	{
		*problem = "The host name is too long.";
		return false;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || p < 1 || p > 65535)
	{
		*problem = "The port must be a number from 1 to 65535.";
		return false;
	}
	snprintf(port, portlen, "%ld", p);
	return true;
}

static bool
check_http_listen(char **newval, void **extra, GucSource source)
{
	char		host[256];
	char		port[8];
	const char *problem;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!ek_http_split_listen_address(*newval, host, sizeof(host), port, sizeof(port), &problem))
	{
		GUC_check_errdetail("%s", problem);
		return false;
	}
	return true;
}

/* Called first thing from _PG_init (by ek_http_init). */
void
ek_http_define_gucs(void)
{
	DefineCustomStringVariable("eventkit.http_listen",
							   "Address and port the HTTP intake listens on.",
							   "Such as 127.0.0.1:8088, [::1]:8088 or *:8088 (every address). "
							   "Empty: no HTTP intake. Serve it on loopback and put a "
							   "TLS-terminating proxy in front of it.",
							   &ek_http_listen,
							   "",
							   PGC_POSTMASTER, 0,
							   check_http_listen, NULL, NULL);

	DefineCustomStringVariable("eventkit.http_database",
							   "Database whose write keys and streams the HTTP intake serves.",
							   NULL,
							   &ek_http_database,
							   "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.http_workers",
							"Listener processes of the HTTP intake.",
							"Each one is a background worker that ingests one request at a time: "
							"keep max_worker_processes above the other workers plus this.",
							&ek_http_workers,
							2, 1, 64,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.http_max_connections",
							"Most open HTTP connections per listener.",
							"A listener at the limit accepts no new connection until one closes.",
							&ek_http_max_connections,
							256, 1, 10000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.http_timeout",
							"Time an HTTP connection may stay idle, and a request may take to arrive.",
							"An idle connection is closed after it; so is one whose request "
							"body is still arriving after it.",
							&ek_http_timeout,
							30, 1, 3600,
							PGC_POSTMASTER, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventkit.http_connection_memory",
							"Memory per HTTP connection for the request line, headers and reading.",
							"A request whose headers do not fit is answered 431 "
							"(Request Header Fields Too Large).",
							&ek_http_connection_memory,
							64 * 1024, 8 * 1024, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("eventkit.http_cors_origins",
							   "Web origins whose pages may call the HTTP intake (CORS).",
							   "A comma-separated list such as https://shop.example.com, or * for any; "
							   "empty: no CORS headers (server-side SDKs need none).",
							   &ek_http_cors_origins,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
}

