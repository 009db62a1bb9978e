/*-------------------------------------------------------------------------
 *
 * http.c
 *	  The HTTP intake's listener: its settings (eventkit.http_*), its
 *	  listening sockets and its background workers ("eventkit http"),
 *	  each one an event loop around libmicrohttpd.  Requests themselves
 *	  are http_api.c's.
 *
 *	  The postmaster opens the listening sockets while it loads eventkit
 *	  (shared_preload_libraries) and its eventkit.http_workers listeners
 *	  inherit them, like the postmaster's own port: the port stays open
 *	  across a listener's restart or the postmaster's crash recovery
 *	  (connections wait in the backlog), and the listeners share one queue
 *	  of new connections.  Each listener publishes how many connections it
 *	  has open (a small array in shared memory).  One that has none, or no
 *	  more than any other, accepts a new connection at once; one that has
 *	  more leaves it for EK_ACCEPT_DELAY_MS per connection of difference (at
 *	  most EK_ACCEPT_DELAY_MAX_MS) to a less busy listener before taking it
 *	  itself (the other may be in the middle of a long request).  So a few
 *	  keep-alive clients (an SDK keeps its connection) spread over the
 *	  listeners instead of sharing one, as they could with SO_REUSEPORT.
 *
 *	  PostgreSQL is not thread-safe, so libmicrohttpd runs without threads
 *	  of its own: MHD_USE_EPOLL without an internal polling thread, its
 *	  epoll descriptor in the listener's WaitEventSet beside the latch and
 *	  the listening sockets, MHD_run() after every wake-up, the wait bounded
 *	  by MHD_get_timeout().  Every callback runs on this one thread.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "intake/http.h"
#include "intake/http_api.h"
#include "intake/http_settings.h"

#define EK_MAX_LISTEN_SOCKETS	4
#define EK_ACCEPT_DELAY_MS		2
#define EK_ACCEPT_DELAY_MAX_MS	50

/* opened by the postmaster, inherited by the listeners */
static int	listen_fds[EK_MAX_LISTEN_SOCKETS];
static int	nlisten = 0;

/* whether libmicrohttpd's messages are worth a LOG line (start-up) */
static bool mhd_log_loudly = true;

/* open connections of each listener, for the choice of who accepts */
typedef struct EkHttpShared
{
	int			nlisteners;
	pg_atomic_uint32 connections[FLEXIBLE_ARRAY_MEMBER];
} EkHttpShared;

static EkHttpShared *http_shared = NULL;
static int	my_slot = -1;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* ---------------------------------------------------------------------
 * The postmaster: sockets and workers
 * ---------------------------------------------------------------------
 */

static void
open_listen_sockets(void)
{
	char		host[256];
	char		port[8];
	const char *problem;
	struct addrinfo hints;
	struct addrinfo *addrs;
	int			rc;

	if (!ek_http_split_listen_address(ek_http_listen, host, sizeof(host), port, sizeof(port),
							  &problem))
		return;					/* the check hook said so already */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &addrs);
	if (rc != 0)
	{
		ereport(WARNING,
				(errmsg("eventkit: HTTP intake is off: could not resolve \"%s\": %s",
						ek_http_listen, gai_strerror(rc))));
		return;
	}
	for (struct addrinfo *a = addrs; a != NULL && nlisten < EK_MAX_LISTEN_SOCKETS; a = a->ai_next)
	{
		int			fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
								a->ai_protocol);
		int			one = 1;

		if (fd < 0)
			continue;
		(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
#ifdef IPV6_V6ONLY
		if (a->ai_family == AF_INET6)
			(void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
#endif
		if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0)
		{
			ereport(WARNING,
					(errcode_for_socket_access(),
					 errmsg("eventkit: could not listen on \"%s\" for the HTTP intake: %m",
							ek_http_listen)));
			close(fd);
			continue;
		}
		listen_fds[nlisten++] = fd;
	}
	freeaddrinfo(addrs);
	if (nlisten == 0)
		ereport(WARNING,
				(errmsg("eventkit: HTTP intake is off: no socket listens on \"%s\"",
						ek_http_listen),
				 errhint("Free the port, or set eventkit.http_listen to another one, and restart the server.")));
}

static void
register_listeners(void)
{
	for (int i = 1; i <= ek_http_workers; i++)
	{
		BackgroundWorker bgw;

		memset(&bgw, 0, sizeof(bgw));
		bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
		bgw.bgw_restart_time = 5;
		snprintf(bgw.bgw_library_name, BGW_MAXLEN, "eventkit");
		snprintf(bgw.bgw_function_name, BGW_MAXLEN, "ek_http_worker_main");
		snprintf(bgw.bgw_name, BGW_MAXLEN, "eventkit http listener %d", i);
		snprintf(bgw.bgw_type, BGW_MAXLEN, "eventkit http");
		bgw.bgw_main_arg = Int32GetDatum(i);
		RegisterBackgroundWorker(&bgw);
	}
}

static Size
http_shmem_size(void)
{
	return add_size(offsetof(EkHttpShared, connections),
					mul_size(sizeof(pg_atomic_uint32), ek_http_workers));
}

static void
http_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(http_shmem_size());
}

static void
http_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	http_shared = ShmemInitStruct("eventkit http", http_shmem_size(), &found);
	if (!found)
	{
		http_shared->nlisteners = ek_http_workers;
		for (int i = 0; i < ek_http_workers; i++)
			pg_atomic_init_u32(&http_shared->connections[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Called from _PG_init (before eventkit's other settings, which reserve the
 * "eventkit" prefix).  Only while preloading: the settings are
 * PGC_POSTMASTER ones, and only the postmaster opens sockets and registers
 * the listeners.
 */
void
ek_http_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	ek_http_define_gucs();
	if (ek_http_listen == NULL || ek_http_listen[0] == '\0')
		return;
	/* not in a single-user backend, nor during pg_upgrade */
	if (!IsPostmasterEnvironment || IsUnderPostmaster || IsBinaryUpgrade)
		return;
	open_listen_sockets();
	if (nlisten == 0)
		return;
	register_listeners();
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = http_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = http_shmem_startup;
}

/* ---------------------------------------------------------------------
 * The listener
 * ---------------------------------------------------------------------
 */

static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char		buf[512];
	size_t		len;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	len = strlen(buf);
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	ereport(mhd_log_loudly ? LOG : DEBUG1,
			(errmsg_internal("eventkit http: libmicrohttpd: %s", buf)));
}

static void
mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
	ereport(FATAL,
			(errmsg_internal("eventkit http: libmicrohttpd failed at %s:%u: %s",
							 file ? file : "?", line, reason ? reason : "?")));
}

static unsigned int
open_connections(struct MHD_Daemon *daemon)
{
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return info ? info->num_connections : 0;
}

/*
 * Accept one waiting connection and hand it to libmicrohttpd.  False when
 * none was waiting (another listener took it).
 */
static bool
accept_one(struct MHD_Daemon *daemon)
{
	for (int i = 0; i < nlisten; i++)
	{
		struct sockaddr_storage addr;
		socklen_t	addrlen = sizeof(addr);
		int			fd = accept4(listen_fds[i], (struct sockaddr *) &addr, &addrlen,
								 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
		{
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				errno != ECONNABORTED)
				ereport(LOG,
						(errcode_for_socket_access(),
						 errmsg("eventkit http: could not accept a connection: %m")));
			continue;
		}
		/* on failure libmicrohttpd closes the socket */
		(void) MHD_add_connection(daemon, fd, (struct sockaddr *) &addr, addrlen);
		return true;
	}
	return false;
}

/*
 * How long to leave a waiting connection to a less busy listener, in ms:
 * 0 when no listener has fewer connections than this one.
 */
static long
accept_delay(unsigned int active)
{
	unsigned int fewest = active;

	if (active == 0)
		return 0;
	for (int i = 0; i < ek_http_workers; i++)
		if (i != my_slot)
			fewest = Min(fewest, pg_atomic_read_u32(&http_shared->connections[i]));
	return Min((long) (active - fewest) * EK_ACCEPT_DELAY_MS, EK_ACCEPT_DELAY_MAX_MS);
}

static WaitEventSet *
make_wait_set(int mhd_fd, bool with_listen_sockets)
{
	WaitEventSet *set = CreateWaitEventSet(TopMemoryContext, 3 + nlisten);

	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, mhd_fd, NULL, NULL);
	if (with_listen_sockets)
		for (int i = 0; i < nlisten; i++)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, listen_fds[i], NULL,
							  &listen_fds[i]);
	return set;
}

void
ek_http_worker_main(Datum arg)
{
	struct MHD_Daemon *daemon;
	const union MHD_DaemonInfo *info;
	WaitEventSet *accepting;
	WaitEventSet *busy;
	TimestampTz pending_since = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(ek_http_database, NULL, 0);
	pgstat_report_appname(MyBgworkerEntry->bgw_name);
	my_slot = DatumGetInt32(arg) - 1;
	Assert(my_slot >= 0 && my_slot < ek_http_workers);

	ek_http_api_init();
	MHD_set_panic_func(mhd_panic, NULL);
	daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG,
							  0, NULL, NULL,
							  ek_http_handle_request, NULL,
							  MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
							  MHD_OPTION_CONNECTION_LIMIT,
							  (unsigned int) ek_http_max_connections,
							  MHD_OPTION_CONNECTION_TIMEOUT,
							  (unsigned int) ek_http_timeout,
							  MHD_OPTION_CONNECTION_MEMORY_LIMIT,
							  (size_t) ek_http_connection_memory,
							  MHD_OPTION_NOTIFY_COMPLETED,
							  ek_http_request_completed, NULL,
							  MHD_OPTION_END);
	if (daemon == NULL)
		ereport(ERROR,
				(errmsg("eventkit http: could not start libmicrohttpd")));
	info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || info->epoll_fd < 0)
		ereport(ERROR,
				(errmsg("eventkit http: libmicrohttpd has no epoll descriptor")));
	accepting = make_wait_set(info->epoll_fd, true);
	busy = make_wait_set(info->epoll_fd, false);
	mhd_log_loudly = false;
	ereport(LOG,
			(errmsg("eventkit http: listening on \"%s\" for database \"%s\"",
					ek_http_listen, ek_http_database)));

	for (;;)
	{
		WaitEvent	events[EK_MAX_LISTEN_SOCKETS + 3];
		unsigned int active = open_connections(daemon);
		MHD_UNSIGNED_LONG_LONG mhd_timeout;
		long		timeout = -1;
		long		stats_due;
		WaitEventSet *set = accepting;
		int			n;

		/* a cancel only means something during a request (http_api.c) */
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (MHD_get_timeout(daemon, &mhd_timeout) == MHD_YES)
			timeout = (long) Min(mhd_timeout, (MHD_UNSIGNED_LONG_LONG) INT_MAX);
		/* the requests' table statistics, for autovacuum (rate-limited) */
		stats_due = pgstat_report_stat(false);
		if (stats_due > 0 && (timeout < 0 || timeout > stats_due))
			timeout = stats_due;

		/*
		 * Which listener takes a new connection: see the file header.
		 */
		pg_atomic_write_u32(&http_shared->connections[my_slot], active);
		if (active >= (unsigned int) ek_http_max_connections)
		{
			set = busy;
			pending_since = 0;
		}
		else if (pending_since != 0)
		{
			long		delay = accept_delay(active);
			long		waited = (long) ((GetCurrentTimestamp() - pending_since) / 1000);

			if (waited >= delay)
			{
				(void) accept_one(daemon);
				pending_since = 0;
				MHD_run(daemon);
				continue;
			}
			set = busy;
			if (timeout < 0 || timeout > delay - waited)
				timeout = delay - waited;
		}

		n = WaitEventSetWait(set, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
		for (int i = 0; i < n; i++)
		{
			if (events[i].events & WL_LATCH_SET)
				ResetLatch(MyLatch);
			else if (events[i].user_data != NULL)
			{
				/* a listening socket has a connection waiting */
				if (accept_delay(active) == 0)
					(void) accept_one(daemon);
				else if (pending_since == 0)
					pending_since = GetCurrentTimestamp();
				break;
			}
		}
		MHD_run(daemon);
	}
}
