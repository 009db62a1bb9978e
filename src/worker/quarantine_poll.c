/*-------------------------------------------------------------------------
 *
 * quarantine_poll.c
 *	  A Citus coordinator's scheduler looking at its workers' quarantines,
 *	  so that a worker's late events are stored promptly.
 *
 *	  No call makes a partition of a distributed stream: an event whose
 *	  time no partition covers waits in the quarantine of the node the call
 *	  ran on, out_of_range, until the coordinator's premake job makes the
 *	  partition and its redrive job replays it (worker/maintenance.c,
 *	  stream/distribute.c).  A coordinator's call wakes its scheduler at
 *	  commit (ek_nudge_partition_jobs); a worker's call cannot reach it
 *	  (the coordinator's part of a call's two-phase commit is prepared and
 *	  then committed by COMMIT PREPARED, which runs no commit callback).
 *	  So the coordinator's scheduler asks its workers instead: every
 *	  eventkit.worker_quarantine_poll, while the database has distributed
 *	  streams, one query on every worker (run_command_on_workers, all at
 *	  once) gives, per stream, the highest quarantine id of its events
 *	  waiting there for a partition; a stream whose highest id on some
 *	  worker grew since the last poll (or that the first poll finds) has
 *	  its premake job made due.  Ingest pays nothing for it.
 *
 *	  What the polls saw is kept in the scheduler's memory (a few entries:
 *	  one per worker and stream with events waiting).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "catalog/jobs.h"
#include "catalog/streams.h"
#include "util/citus.h"
#include "util/guc.h"
#include "util/spi.h"
#include "worker/quarantine_poll.h"

/* the highest waiting quarantine id a poll saw, per worker and stream */
typedef struct SeenWaiting
{
	char	   *key;			/* "host:port stream" */
	int64		max_id;
} SeenWaiting;

static SeenWaiting *seen = NULL;
static int	nseen = 0;
static int	maxseen = 0;
static TimestampTz last_poll = 0;
static bool distributed_streams = false;	/* as the last pass saw */
static bool failure_logged = false;

/* on a worker: "schema.stream=max_id" lines, one per stream with events waiting */
#define WAITING_ON_WORKER \
	"SELECT pg_catalog.string_agg(pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'" \
	" OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname) OPERATOR(pg_catalog.||) '='" \
	" OPERATOR(pg_catalog.||) q.m::pg_catalog.text, E'\\n')" \
	" FROM (SELECT stream_id, pg_catalog.max(quarantine_id) AS m FROM eventkit.quarantine" \
	" WHERE payload IS NOT NULL" \
	" AND reasons OPERATOR(pg_catalog.@>) '[{\"reason\": \"out_of_range\"}]'::pg_catalog.jsonb" \
	" GROUP BY stream_id) q" \
	" JOIN eventkit.streams s USING (stream_id)" \
	" JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid" \
	" JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"

/* Is key's highest id now above what was seen?  Remembers it. */
static bool
grew(const char *key, int64 max_id)
{
	for (int i = 0; i < nseen; i++)
	{
		if (strcmp(seen[i].key, key) != 0)
			continue;
		if (max_id <= seen[i].max_id)
			return false;
		seen[i].max_id = max_id;
		return true;
	}
	if (nseen == maxseen)
	{
		maxseen = Max(8, maxseen * 2);
		seen = seen == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(SeenWaiting) * maxseen) :
			repalloc(seen, sizeof(SeenWaiting) * maxseen);
	}
	seen[nseen].key = MemoryContextStrdup(TopMemoryContext, key);
	seen[nseen].max_id = max_id;
	nseen++;
	return true;
}

/* The coordinator's distributed stream of that name, made due; or nothing. */
static void
make_premake_due(const char *name)
{
	List	   *names = stringToQualifiedNameList(name);
	Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
	StreamInfo	stream;

	if (!OidIsValid(relid) || ek_citus_table_kind(relid) != EK_CITUS_HASH ||
		!ek_streams_read(relid, &stream, true))
		return;
	ek_jobs_run_now(EK_JOB_PREMAKE, stream.stream_id);
}

static void
poll_workers(void *arg)
{
	int			n;
	EkCitusResult *results = ek_citus_run_on_workers(WAITING_ON_WORKER, true, &n);
	bool		failed = false;

	for (int i = 0; i < n; i++)
	{
		char	   *line;
		char	   *save;

		if (!results[i].ok)
		{
			if (!failure_logged)
				ereport(LOG,
						(errmsg("eventkit scheduler: could not look at the quarantine of Citus worker %s:%d: %s",
								results[i].node, results[i].port, results[i].result),
						 errhint("Its events waiting for a partition are stored at the premake job's next run.")));
			failed = true;
			continue;
		}
		for (line = strtok_r(results[i].result, "\n", &save); line != NULL;
			 line = strtok_r(NULL, "\n", &save))
		{
			char	   *eq = strrchr(line, '=');
			int64		max_id;

			if (eq == NULL)
				continue;
			*eq = '\0';
			max_id = strtoll(eq + 1, NULL, 10);
			if (grew(psprintf("%s:%d %s", results[i].node, results[i].port, line), max_id))
				make_premake_due(line);
		}
	}
	failure_logged = failed;
}

static bool
have_distributed_streams(void)
{
	ListCell   *lc;

	if (!ek_citus_present() || ek_citus_on_worker())
		return false;
	foreach(lc, ek_streams_relids())
		if (ek_citus_table_kind(lfirst_oid(lc)) == EK_CITUS_HASH)
			return true;
	return false;
}

/*
 * In a scheduler pass (SPI connected, a snapshot pushed): when the last
 * poll is eventkit.worker_quarantine_poll ago and distributed streams
 * exist, ask the workers and make due the premake job of each stream that
 * has new events waiting there.  A failure is logged (once until a poll
 * succeeds), never raised.  Returns whether it made a job due.
 */
bool
ek_poll_worker_quarantines(TimestampTz now)
{
	ErrorData  *edata;
	int			before = nseen;
	int64		sum_before = 0;
	int64		sum_after = 0;

	if (ek_worker_quarantine_poll <= 0)
	{
		distributed_streams = false;
		return false;
	}
	if (!TimestampDifferenceExceeds(last_poll, now, ek_worker_quarantine_poll))
		return false;
	distributed_streams = have_distributed_streams();
	if (!distributed_streams)
		return false;
	last_poll = now;
	for (int i = 0; i < nseen; i++)
		sum_before += seen[i].max_id;
	edata = ek_run_in_subtransaction(poll_workers, NULL);
	if (edata != NULL)
	{
		if (!failure_logged)
			ereport(LOG,
					(errmsg("eventkit scheduler: could not look at the Citus workers' quarantines: %s",
							edata->message),
					 errhint("Their events waiting for a partition are stored at the premake job's next run.")));
		failure_logged = true;
		FreeErrorData(edata);
		return false;
	}
	for (int i = 0; i < nseen; i++)
		sum_after += seen[i].max_id;
	return nseen != before || sum_after != sum_before;
}

/*
 * How long the scheduler may sleep before its next poll: its naptime when
 * there is nothing to poll.
 */
long
ek_worker_poll_wait_ms(TimestampTz now)
{
	long		naptime = ek_naptime * 1000L;
	long		left;

	if (!distributed_streams || ek_worker_quarantine_poll <= 0)
		return naptime;
	left = ek_worker_quarantine_poll -
		(long) ((now - last_poll) / 1000);
	return Min(naptime, Max(left, 10));
}
