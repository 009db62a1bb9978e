/*-------------------------------------------------------------------------
 *
 * kafka_consumer.c
 *	  Intake from Kafka: one background worker per source ("eventkit
 *	  kafka") consumes its topic with librdkafka and ingests what it polls,
 *	  batch by batch; each batch's events and the partition offsets after
 *	  it are stored in one transaction, so a crash at any point resumes
 *	  exactly after the last batch committed (docs/intake-kafka.md).
 *
 *	  - The supervisor, ek_kafka_supervise(), runs in the scheduler of each
 *		database (worker/scheduler.c) every pass: it starts a consumer for every
 *		source that has none.  A consumer holds its source's lock
 *		(kafka_source.h) for its life, so there is never more than one,
 *		even across scheduler restarts; it exits when its scheduler does
 *		(eventkit.scheduler_enabled off, a database held for DROP
 *		DATABASE, DROP EXTENSION), when its source is dropped, or when the
 *		postmaster dies.
 *	  - The consumer assigns itself every partition of the topic
 *		(rd_kafka_assign, no consumer group rebalancing) at the offsets
 *		stored in eventkit.kafka_offsets; partitions it has not seen start
 *		at their beginning (or, for a new source with auto.offset.reset
 *		latest, at their end) and get their row at once.  It looks for new
 *		partitions every topic.metadata.refresh.interval.ms.
 *	  - A batch is bounded by eventkit.kafka_batch_messages, _bytes and
 *		_ms.  Its transaction locks the source's row (drop waits for it),
 *		checks that the stored offsets are still those it started from
 *		(else it drops the batch and seeks to them: someone reset them),
 *		ingests the messages as the source's owner with
 *		SECURITY_RESTRICTED_OPERATION (ek_ingest_text_items; unusable
 *		messages are quarantined with their topic, partition and offset),
 *		and stores each partition's next offset.  A failed batch (database
 *		read-only, stream gone, privileges revoked) is kept and retried
 *		with backoff; the error shows in eventkit.kafka_sources and
 *		eventkit.health().
 *	  - librdkafka's threads never call PostgreSQL: its logs come through
 *		a log queue (log.queue) and its errors as events on the main
 *		queue, both polled here, on the worker's own thread; its threads
 *		are started with every signal blocked.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>

#include <librdkafka/rdkafka.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/pmsignal.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "util/guc.h"
#include "util/spi.h"
#include "ingest/ingest.h"
#include "intake/kafka_consumer.h"
#include "intake/kafka_source.h"

#define POLL_MS				100 /* longest wait in librdkafka at a time */
#define HOUSEKEEPING_MS		1000	/* source still there? state to store? */
#define METADATA_TIMEOUT_MS 1000
#define WATERMARK_TIMEOUT_MS 2000
#define MAX_BACKOFF_MS		30000	/* between attempts at a failed batch */
#define MAX_PROBE_MS		10000	/* between metadata probes while failing */
#define ERROR_QUIET_MS		10000	/* failing until errors stop this long */
#define LOCK_ATTEMPTS		50

int			ek_kafka_batch_messages = 1000;
int			ek_kafka_batch_bytes = 1024 * 1024;
int			ek_kafka_batch_ms = 200;

/* What the scheduler tells a consumer it starts. */
typedef struct KafkaExtra
{
	Oid			dboid;
	pid_t		scheduler_pid;
} KafkaExtra;

void
ek_kafka_define_gucs(void)
{
	DefineCustomIntVariable("eventkit.kafka_batch_messages",
							"Most Kafka messages a consumer stores in one transaction.",
							NULL,
							&ek_kafka_batch_messages,
							1000, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("eventkit.kafka_batch_bytes",
							"Most bytes of Kafka messages a consumer stores in one transaction.",
							"A batch ends at the first poll that reaches it.",
							&ek_kafka_batch_bytes,
							1024 * 1024, 1024, 256 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("eventkit.kafka_batch_ms",
							"Longest a Kafka consumer waits for more messages once a batch has one.",
							NULL,
							&ek_kafka_batch_ms,
							200, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------
 * Supervisor, in the scheduler
 * ---------------------------------------------------------------------
 */

typedef struct ConsumerHandle
{
	int32		source_id;
	BackgroundWorkerHandle *handle;
} ConsumerHandle;

static ConsumerHandle *handles = NULL;
static int	nhandles = 0;
static int	maxhandles = 0;

/* Does a consumer hold the source's lock?  (takes it for a moment if not) */
static bool
consumer_running(int32 source_id)
{
	LOCKTAG		tag;

	EK_KAFKA_SET_LOCKTAG(tag, MyDatabaseId, source_id);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, ExclusiveLock, false);
	return false;
}

static bool
start_consumer(int32 source_id)
{
	BackgroundWorker bgw;
	KafkaExtra	extra;
	MemoryContext old;
	bool		ok;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;	/* the scheduler restarts it */
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "eventkit");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "ek_kafka_consumer_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "eventkit kafka source %d", source_id);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "eventkit kafka");
	bgw.bgw_main_arg = Int32GetDatum(source_id);
	extra.dboid = MyDatabaseId;
	extra.scheduler_pid = MyProcPid;
	memcpy(bgw.bgw_extra, &extra, sizeof(extra));
	bgw.bgw_notify_pid = 0;		/* a consumer that exits waits for naptime */

	if (nhandles == maxhandles)
	{
		maxhandles = maxhandles ? 2 * maxhandles : 8;
		handles = handles ?
			repalloc(handles, sizeof(ConsumerHandle) * maxhandles) :
			MemoryContextAlloc(TopMemoryContext, sizeof(ConsumerHandle) * maxhandles);
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&bgw, &handles[nhandles].handle);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("eventkit: no background worker free for Kafka source %d; will retry",
						source_id),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	handles[nhandles].source_id = source_id;
	nhandles++;
	return true;
}

/*
 * Start a consumer for each source of this database that has none.  The
 * consumers of dropped sources exit by themselves.
 */
void
ek_kafka_supervise(void)
{
	List	   *ids;
	ListCell   *lc;

	if (!ek_kafka_catalog_installed())
		return;
	ids = ek_kafka_source_ids();

	for (int i = 0; i < nhandles;)
	{
		pid_t		pid;

		if (GetBackgroundWorkerPid(handles[i].handle, &pid) == BGWH_STOPPED ||
			!list_member_int(ids, handles[i].source_id))
		{
			pfree(handles[i].handle);
			handles[i] = handles[--nhandles];
		}
		else
			i++;
	}
	foreach(lc, ids)
	{
		int32		id = lfirst_int(lc);
		bool		known = false;

		for (int i = 0; i < nhandles; i++)
			if (handles[i].source_id == id)
				known = true;
		if (known || consumer_running(id))
			continue;
		if (!start_consumer(id))
			break;
	}
}

/* ---------------------------------------------------------------------
 * The consumer's state
 * ---------------------------------------------------------------------
 */

typedef struct Partition
{
	int64		committed;		/* next offset, as stored */
	bool		guard;			/* drop messages before committed */
	int64		stored_hw;		/* high watermark as last stored; -1 */
	int64		batch_next;		/* after the batch's last message; -1 */
	int64		batch_messages;
} Partition;

typedef struct Consumer
{
	int32		source_id;
	KafkaSource *src;
	pid_t		scheduler_pid;
	MemoryContext cxt;			/* the worker's life */
	MemoryContext batch_cxt;	/* one attempt at one batch */
	rd_kafka_t *rk;
	rd_kafka_queue_t *logq;
	rd_kafka_queue_t *mainq;
	rd_kafka_queue_t *consq;
	char	   *origin_prefix;	/* origin JSON of a message, up to "partition": */
	int			refresh_ms;

	Partition  *parts;			/* partitions 0 .. nparts-1 are assigned */
	int			nparts;

	rd_kafka_message_t **msgs;	/* the batch */
	int			nmsgs;
	int			maxmsgs;
	int64		nbytes;

	char	   *last_error;
	TimestampTz last_error_at;
	TimestampTz failing_since;	/* 0: healthy */
	bool		state_dirty;
	TimestampTz next_housekeeping;
	TimestampTz next_metadata;
	int			probe_ms;
	char	   *activity;
} Consumer;

static Consumer *consumer = NULL;

static TimestampTz
after_ms(int ms)
{
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
}

/* What pg_stat_activity shows of the consumer (set when it changes). */
static void
set_activity(Consumer *c, const char *fmt,...) pg_attribute_printf(2, 3);

static void
set_activity(Consumer *c, const char *fmt,...)
{
	char		buf[1024];
	int			n;
	va_list		ap;

	n = snprintf(buf, sizeof(buf), "eventkit kafka source \"%s\": ", c->src->name);
	va_start(ap, fmt);
	vsnprintf(buf + Min(n, sizeof(buf) - 1), sizeof(buf) - Min(n, sizeof(buf) - 1), fmt, ap);
	va_end(ap);
	if (c->activity != NULL && strcmp(c->activity, buf) == 0)
		return;
	if (c->activity != NULL)
		pfree(c->activity);
	c->activity = MemoryContextStrdup(c->cxt, buf);
	pgstat_report_activity(STATE_RUNNING, c->activity);
}

/* An error: the source is failing until errors stop (note_success). */
static void
record_error(Consumer *c, const char *fmt,...) pg_attribute_printf(2, 3);

static void
record_error(Consumer *c, const char *fmt,...)
{
	char		buf[1024];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->last_error != NULL)
		pfree(c->last_error);
	c->last_error = MemoryContextStrdup(c->cxt, buf);
	c->last_error_at = GetCurrentTimestamp();
	if (c->failing_since == 0)
		c->failing_since = c->last_error_at;
	c->state_dirty = true;
	/* probe the cluster soon, to see when it works again */
	c->next_metadata = Min(c->next_metadata, after_ms(c->probe_ms));
	set_activity(c, "failing: %s", buf);
}

/* Healthy again once no error came for a while. */
static void
note_success(Consumer *c)
{
	if (c->failing_since == 0 ||
		!TimestampDifferenceExceeds(c->last_error_at, GetCurrentTimestamp(), ERROR_QUIET_MS))
		return;
	c->failing_since = 0;
	c->state_dirty = true;
	c->probe_ms = 1000;
	set_activity(c, "consuming topic \"%s\"", c->src->topic);
}

static void
release_batch(Consumer *c)
{
	for (int i = 0; i < c->nmsgs; i++)
		rd_kafka_message_destroy(c->msgs[i]);
	c->nmsgs = 0;
	c->nbytes = 0;
	for (int p = 0; p < c->nparts; p++)
	{
		c->parts[p].batch_next = -1;
		c->parts[p].batch_messages = 0;
	}
}

/* At exit: librdkafka's threads stop before the process does. */
static void
destroy_consumer(int code, Datum arg)
{
	if (consumer == NULL || consumer->rk == NULL)
		return;
	release_batch(consumer);
	rd_kafka_queue_destroy(consumer->consq);
	rd_kafka_queue_destroy(consumer->mainq);
	rd_kafka_queue_destroy(consumer->logq);
	rd_kafka_destroy_flags(consumer->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	consumer->rk = NULL;
}

static void
begin_xact(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
commit_xact(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

/* After an error: the transaction rolled back, the error in *edata. */
static ErrorData *
abort_xact(Consumer *c)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(c->cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	return edata;
}

/*
 * Is this row (NULL: none) still the source this consumer serves?  A
 * source id can come back after DROP and CREATE EXTENSION.
 */
static bool
same_source(Consumer *c, const KafkaSource *src)
{
	return src != NULL && src->stream_id == c->src->stream_id &&
		strcmp(src->name, c->src->name) == 0 &&
		strcmp(src->topic, c->src->topic) == 0 &&
		strcmp(src->brokers, c->src->brokers) == 0;
}

static void
exit_source_gone(Consumer *c)
{
	ereport(LOG,
			(errmsg("eventkit kafka source \"%s\" no longer exists: its consumer exits",
					c->src->name)));
	proc_exit(0);
}

/* SIGHUP: reload before each transaction, so that each runs with the settings of its start */
static void
reload_config_if_pending(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* Wait, answering signals and draining librdkafka's queues. */
static void drain_events(Consumer *c);

static void
wait_ms(Consumer *c, int ms)
{
	TimestampTz end = after_ms(ms);

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);

		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(left, POLL_MS), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		reload_config_if_pending();
		drain_events(c);
	}
}

/* ---------------------------------------------------------------------
 * librdkafka's logs and errors, on this thread
 * ---------------------------------------------------------------------
 */

/* Never called: logs are polled from the log queue as events. */
static void
ignore_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
}

static void
handle_event(Consumer *c, rd_kafka_event_t *ev)
{
	switch (rd_kafka_event_type(ev))
	{
		case RD_KAFKA_EVENT_LOG:
			{
				const char *fac;
				const char *str;
				int			level;

				rd_kafka_event_log(ev, &fac, &str, &level);
				ereport(level <= 4 ? LOG : level <= 6 ? DEBUG1 : DEBUG2,
						(errmsg_internal("eventkit kafka source \"%s\": %s: %s",
										 c->src->name, fac, str)));
				break;
			}
		case RD_KAFKA_EVENT_ERROR:
			{
				char	   *msg = pstrdup(rd_kafka_event_error_string(ev));
				bool		fatal = rd_kafka_event_error_is_fatal(ev);

				record_error(c, "%s", msg);
				if (fatal)
				{
					rd_kafka_event_destroy(ev);
					ereport(ERROR,
							(errcode(ERRCODE_CONNECTION_FAILURE),
							 errmsg("eventkit kafka source \"%s\": fatal Kafka error: %s",
									c->src->name, msg),
							 errdetail("The consumer exits; the scheduler starts it again.")));
				}
				pfree(msg);
				break;
			}
		default:
			break;
	}
	rd_kafka_event_destroy(ev);
}

static void
drain_events(Consumer *c)
{
	rd_kafka_event_t *ev;

	for (int n = 0; n < 1000 && (ev = rd_kafka_queue_poll(c->logq, 0)) != NULL; n++)
		handle_event(c, ev);
	for (int n = 0; n < 1000 && (ev = rd_kafka_queue_poll(c->mainq, 0)) != NULL; n++)
		handle_event(c, ev);
}

/* ---------------------------------------------------------------------
 * Start
 * ---------------------------------------------------------------------
 */

/* The source's lock, for the life of the process; false if taken. */
static bool
lock_source(Consumer *c)
{
	LOCKTAG		tag;

	EK_KAFKA_SET_LOCKTAG(tag, MyDatabaseId, c->source_id);
	for (int i = 0; i < LOCK_ATTEMPTS; i++)
	{
		LockAcquireResult r;

		StartTransactionCommand();
		r = LockAcquire(&tag, ExclusiveLock, true, true);
		CommitTransactionCommand();
		if (r != LOCKACQUIRE_NOT_AVAIL)
			return true;
		/* the scheduler may be probing it for a moment */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return false;
}

static char *
load_source(Consumer *c)
{
	char	   *group;

	begin_xact();
	SPI_connect();
	MemoryContextSwitchTo(c->cxt);
	c->src = ek_kafka_catalog_installed() ? ek_kafka_read_source(c->source_id, false) : NULL;
	group = c->src == NULL ? NULL :
		psprintf("eventkit-%s-%s", get_database_name(MyDatabaseId), c->src->name);
	SPI_finish();
	commit_xact();
	MemoryContextSwitchTo(c->cxt);
	if (c->src == NULL)
		proc_exit(0);
	return group;
}

static void
start_librdkafka(Consumer *c, const char *group)
{
	rd_kafka_conf_t *conf = ek_kafka_conf(c->src, group, false);
	char		errstr[512];
	sigset_t	all;
	sigset_t	old;
	StringInfoData buf;

	rd_kafka_conf_set_log_cb(conf, ignore_log);
	rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_LOG);

	/* librdkafka's threads inherit this thread's signal mask */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (c->rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("eventkit kafka source \"%s\": could not create a Kafka consumer: %s",
						c->src->name, errstr)));
	}
	c->logq = rd_kafka_queue_new(c->rk);
	rd_kafka_set_log_queue(c->rk, c->logq);
	c->mainq = rd_kafka_queue_get_main(c->rk);
	c->consq = rd_kafka_queue_get_consumer(c->rk);
	on_proc_exit(destroy_consumer, (Datum) 0);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"kind\": \"kafka\", \"source\": ");
	escape_json(&buf, c->src->name);
	appendStringInfoString(&buf, ", \"topic\": ");
	escape_json(&buf, c->src->topic);
	appendStringInfoString(&buf, ", \"partition\": ");
	c->origin_prefix = buf.data;
	c->refresh_ms = ek_kafka_metadata_refresh_ms(c->src);
	c->probe_ms = 1000;
}

/* ---------------------------------------------------------------------
 * Partitions
 * ---------------------------------------------------------------------
 */

static int
read_offsets(Consumer *c, KafkaOffset **stored)
{
	int			n;

	begin_xact();
	SPI_connect();
	MemoryContextSwitchTo(c->batch_cxt);
	n = ek_kafka_read_offsets(c->source_id, false, stored);
	SPI_finish();
	commit_xact();
	MemoryContextSwitchTo(c->cxt);
	return n;
}

/*
 * Partitions 0 .. n-1: give those without stored offsets their start (the
 * beginning; the end for a new source that starts at latest), then
 * assign all of them at their stored offsets.  False if a watermark query
 * failed (try again later).
 */
static bool
assign_partitions(Consumer *c, int n)
{
	KafkaOffset *stored;
	int			nstored;
	KafkaOffset *start = MemoryContextAlloc(c->batch_cxt, sizeof(KafkaOffset) * n);
	int			nstart = 0;
	bool		at_latest;
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t err;

	nstored = read_offsets(c, &stored);
	at_latest = nstored == 0 && ek_kafka_starts_at_latest(c->src);
	for (int p = 0; p < n; p++)
	{
		bool		found = false;
		int64_t		lo;
		int64_t		hi;

		for (int i = 0; i < nstored; i++)
			if (stored[i].partition == p)
				found = true;
		if (found)
			continue;
		err = rd_kafka_query_watermark_offsets(c->rk, c->src->topic, p, &lo, &hi,
											   WATERMARK_TIMEOUT_MS);
		if (err)
		{
			record_error(c, "could not read the offsets of partition %d of topic \"%s\": %s",
						 p, c->src->topic, rd_kafka_err2str(err));
			MemoryContextReset(c->batch_cxt);
			return false;
		}
		start[nstart].partition = p;
		start[nstart].next_offset = at_latest ? hi : lo;
		nstart++;
	}
	if (nstart > 0)
	{
		bool		gone;

		begin_xact();
		SPI_connect();
		MemoryContextSwitchTo(c->batch_cxt);
		/* no rows for a source dropped meanwhile (the drop waits for this) */
		gone = !same_source(c, ek_kafka_read_source(c->source_id, true));
		if (!gone)
			ek_kafka_add_partitions(c->source_id, nstart, start);
		SPI_finish();
		commit_xact();
		MemoryContextSwitchTo(c->cxt);
		if (gone)
			exit_source_gone(c);
		nstored = read_offsets(c, &stored);
	}

	c->parts = c->parts ? repalloc(c->parts, sizeof(Partition) * n) :
		MemoryContextAlloc(c->cxt, sizeof(Partition) * n);
	list = rd_kafka_topic_partition_list_new(n);
	for (int p = 0; p < n; p++)
	{
		Partition  *part = &c->parts[p];

		part->committed = -1;
		for (int i = 0; i < nstored; i++)
			if (stored[i].partition == p)
				part->committed = stored[i].next_offset;
		if (part->committed < 0)
			elog(ERROR, "eventkit: no stored offset for partition %d", p);
		part->guard = true;
		part->stored_hw = p < c->nparts ? part->stored_hw : -1;
		part->batch_next = -1;
		part->batch_messages = 0;
		rd_kafka_topic_partition_list_add(list, c->src->topic, p)->offset = part->committed;
	}
	err = rd_kafka_assign(c->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	MemoryContextReset(c->batch_cxt);
	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("eventkit kafka source \"%s\": could not assign partitions: %s",
						c->src->name, rd_kafka_err2str(err))));
	if (n > c->nparts)
		ereport(LOG,
				(errmsg("eventkit kafka source \"%s\": consuming %d partition(s) of topic \"%s\"",
						c->src->name, n, c->src->topic)));
	c->nparts = n;
	return true;
}

/* Look for the topic's partitions (all topics: asking for one creates it). */
static void
refresh_partitions(Consumer *c)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t err;
	int			n = -1;

	err = rd_kafka_metadata(c->rk, 1, NULL, &md, METADATA_TIMEOUT_MS);
	if (err)
		record_error(c, "could not read the cluster's metadata: %s", rd_kafka_err2str(err));
	else
	{
		for (int i = 0; i < md->topic_cnt; i++)
			if (strcmp(md->topics[i].topic, c->src->topic) == 0)
			{
				if (md->topics[i].err)
					record_error(c, "topic \"%s\": %s", c->src->topic,
								 rd_kafka_err2str(md->topics[i].err));
				else
					n = md->topics[i].partition_cnt;
			}
		rd_kafka_metadata_destroy(md);
		if (n < 0 && c->nparts == 0)
		{
			record_error(c, "topic \"%s\" does not exist", c->src->topic);
			set_activity(c, "waiting for topic \"%s\"", c->src->topic);
		}
	}
	if (n > c->nparts && !assign_partitions(c, n))
		n = -1;
	if (n >= 0)
		note_success(c);

	if (c->failing_since != 0)
	{
		c->next_metadata = after_ms(c->probe_ms);
		c->probe_ms = Min(2 * c->probe_ms, MAX_PROBE_MS);
	}
	else
		c->next_metadata = after_ms(c->refresh_ms);
}

/* Someone changed the stored offsets: seek to them. */
static void
reassign(Consumer *c)
{
	int			n = c->nparts;

	ereport(LOG,
			(errmsg("eventkit kafka source \"%s\": the stored offsets changed; consuming from them",
					c->src->name)));
	c->nparts = 0;
	if (!assign_partitions(c, n))
		c->next_metadata = 0;
}

/* ---------------------------------------------------------------------
 * Batches
 * ---------------------------------------------------------------------
 */

static bool
accept_message(Consumer *c, rd_kafka_message_t *m)
{
	Partition  *p;

	if (m->err)
	{
		if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET &&
			m->partition >= 0 && m->partition < c->nparts)
			c->parts[m->partition].guard = false;	/* it starts elsewhere now */
		record_error(c, "partition %d: %s", (int) m->partition, rd_kafka_message_errstr(m));
		return false;
	}
	if (m->partition < 0 || m->partition >= c->nparts)
		return false;
	p = &c->parts[m->partition];
	/* stored already, or in this batch already: librdkafka fetched it twice */
	if ((p->guard && m->offset < p->committed) ||
		(p->batch_next >= 0 && m->offset < p->batch_next))
		return false;
	p->batch_next = m->offset + 1;
	p->batch_messages++;
	c->nbytes += m->len;
	return true;
}

/* Poll a batch: until it is full, or eventkit.kafka_batch_ms after its first message. */
static int
fill_batch(Consumer *c)
{
	TimestampTz deadline = 0;
	int			max = ek_kafka_batch_messages;

	if (max > c->maxmsgs)
	{
		c->msgs = c->msgs ? repalloc(c->msgs, sizeof(rd_kafka_message_t *) * max) :
			MemoryContextAlloc(c->cxt, sizeof(rd_kafka_message_t *) * max);
		c->maxmsgs = max;
	}
	while (c->nmsgs < max && c->nbytes < ek_kafka_batch_bytes)
	{
		long		timeout = POLL_MS;
		ssize_t		got;
		int			first = c->nmsgs;

		if (deadline != 0)
		{
			timeout = Min(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline),
						  POLL_MS);
			if (timeout <= 0)
				break;
		}
		got = rd_kafka_consume_batch_queue(c->consq, (int) timeout, c->msgs + first,
										   max - first);
		if (got < 0)
		{
			record_error(c, "%s", rd_kafka_err2str(rd_kafka_last_error()));
			break;
		}
		for (int i = first; i < first + got; i++)
		{
			rd_kafka_message_t *m = c->msgs[i];

			if (accept_message(c, m))
				c->msgs[c->nmsgs++] = m;
			else
				rd_kafka_message_destroy(m);
		}
		CHECK_FOR_INTERRUPTS();
		if (c->nmsgs == 0)
			break;				/* back to housekeeping */
		if (deadline == 0)
			deadline = after_ms(ek_kafka_batch_ms);
	}
	return c->nmsgs;
}

/* Are the stored offsets those this consumer stored (or started from)? */
static bool
offsets_unchanged(Consumer *c, const KafkaOffset *stored, int nstored)
{
	int			matched = 0;

	for (int i = 0; i < nstored; i++)
	{
		int32		p = stored[i].partition;

		if (p >= c->nparts)
			continue;
		if (stored[i].next_offset != c->parts[p].committed)
			return false;
		matched++;
	}
	return matched == c->nparts;
}

static IngestItem *
batch_items(Consumer *c)
{
	IngestItem *items = palloc(sizeof(IngestItem) * c->nmsgs);

	for (int i = 0; i < c->nmsgs; i++)
	{
		rd_kafka_message_t *m = c->msgs[i];

		items[i].data = m->payload != NULL ? (const char *) m->payload : "";
		items[i].len = m->payload != NULL ? (int) m->len : 0;
		items[i].origin = psprintf("%s%d, \"offset\": " INT64_FORMAT "}",
								   c->origin_prefix, (int) m->partition, (int64) m->offset);
		items[i].nevents = 0;
	}
	return items;
}

static KafkaProgress *
batch_progress(Consumer *c, const IngestItem *items, int *n)
{
	KafkaProgress *prog = palloc0(sizeof(KafkaProgress) * c->nparts);

	*n = 0;
	for (int p = 0; p < c->nparts; p++)
	{
		int64_t		lo;
		int64_t		hi;

		if (c->parts[p].batch_next < 0)
			continue;
		prog[*n].partition = p;
		prog[*n].next_offset = c->parts[p].batch_next;
		prog[*n].messages = c->parts[p].batch_messages;
		prog[*n].high_watermark =
			rd_kafka_get_watermark_offsets(c->rk, c->src->topic, p, &lo, &hi) ? -1 : hi;
		for (int i = 0; i < c->nmsgs; i++)
			if (c->msgs[i]->partition == p)
				prog[*n].events += items[i].nevents;
		(*n)++;
	}
	return prog;
}

typedef enum BatchResult
{
	BATCH_STORED,
	BATCH_FAILED,
	BATCH_STALE,				/* the stored offsets changed */
	BATCH_GONE					/* the source was dropped */
} BatchResult;

/*
 * One attempt at storing the batch: its events and the offsets after it,
 * in one transaction.
 */
static BatchResult
try_store_batch(Consumer *c)
{
	volatile BatchResult result = BATCH_STORED;

	reload_config_if_pending();
	PG_TRY();
	{
		KafkaSource *src = NULL;
		KafkaOffset *stored;
		int			nstored;

		begin_xact();
		SPI_connect();
		MemoryContextSwitchTo(c->batch_cxt);
		if (ek_kafka_catalog_installed())
			src = ek_kafka_read_source(c->source_id, true);
		if (!same_source(c, src))
			result = BATCH_GONE;
		else
		{
			nstored = ek_kafka_read_offsets(c->source_id, true, &stored);
			if (!offsets_unchanged(c, stored, nstored))
				result = BATCH_STALE;
		}
		SPI_finish();
		MemoryContextSwitchTo(c->batch_cxt);

		if (result == BATCH_STORED)
		{
			Oid			owner = get_role_oid(src->owner, true);
			IngestItem *items = batch_items(c);
			IngestCounts counts;
			KafkaProgress *prog;
			int			nprog;
			Oid			save_userid;
			int			save_sec;
			int			nestlevel;

			if (!OidIsValid(src->relid))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("the stream of Kafka source \"%s\" no longer exists", src->name),
						 errhint("Drop the source (eventkit.drop_kafka_source).")));
			if (!OidIsValid(owner))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("role \"%s\", the owner of Kafka source \"%s\", does not exist",
								src->owner, src->name),
						 errhint("Drop the source and create it again as another role.")));

			/* as the owner, as autovacuum runs a table owner's code */
			GetUserIdAndSecContext(&save_userid, &save_sec);
			SetUserIdAndSecContext(owner, save_sec | SECURITY_RESTRICTED_OPERATION);
			nestlevel = NewGUCNestLevel();
			ek_ingest_text_items(src->relid, items, c->nmsgs,
								 GetCurrentTransactionStartTimestamp(), &counts);
			AtEOXact_GUC(false, nestlevel);
			SetUserIdAndSecContext(save_userid, save_sec);

			prog = batch_progress(c, items, &nprog);
			SPI_connect();
			MemoryContextSwitchTo(c->batch_cxt);
			ek_kafka_store_progress(c->source_id, nprog, prog);
			SPI_finish();
		}
		commit_xact();
	}
	PG_CATCH();
	{
		ErrorData  *edata = abort_xact(c);

		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("eventkit kafka source \"%s\": batch of %d message(s) not stored, will retry: %s",
						c->src->name, c->nmsgs, edata->message)));
		record_error(c, "%s", edata->message);
		FreeErrorData(edata);
		result = BATCH_FAILED;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(c->cxt);
	MemoryContextReset(c->batch_cxt);
	return result;
}

static bool housekeeping(Consumer *c);

static void
store_batch(Consumer *c)
{
	int			backoff = 1000;

	for (;;)
	{
		switch (try_store_batch(c))
		{
			case BATCH_STORED:
				for (int p = 0; p < c->nparts; p++)
					if (c->parts[p].batch_next >= 0)
					{
						c->parts[p].committed = c->parts[p].batch_next;
						c->parts[p].guard = true;
					}
				release_batch(c);
				note_success(c);
				return;
			case BATCH_GONE:
				release_batch(c);
				exit_source_gone(c);
				break;
			case BATCH_STALE:
				release_batch(c);
				reassign(c);
				return;
			case BATCH_FAILED:
				(void) housekeeping(c);	/* the error state, if it can */
				wait_ms(c, backoff);
				backoff = Min(2 * backoff, MAX_BACKOFF_MS);
				if (!PostmasterIsAlive() || BackendPidGetProc(c->scheduler_pid) == NULL)
					proc_exit(1);
				break;
		}
	}
}

/* ---------------------------------------------------------------------
 * Housekeeping and the main loop
 * ---------------------------------------------------------------------
 */

/*
 * Every second or so, in a short transaction: is the source still there
 * (else exit)?  Are its stored offsets still those of this consumer
 * (returns false if not: someone reset them)?  Store the error state and
 * the high watermarks when they changed.  A failure (database read-only)
 * leaves them to the next time.
 */
static bool
housekeeping(Consumer *c)
{
	volatile bool gone = false;
	volatile bool stored = false;
	volatile bool unchanged = true;
	KafkaProgress *hw = MemoryContextAllocZero(c->batch_cxt,
											   sizeof(KafkaProgress) * Max(c->nparts, 1));
	int			nhw = 0;

	for (int p = 0; p < c->nparts; p++)
	{
		int64_t		lo;
		int64_t		hi;

		if (rd_kafka_get_watermark_offsets(c->rk, c->src->topic, p, &lo, &hi) == 0 &&
			hi >= 0 && hi != c->parts[p].stored_hw)
		{
			hw[nhw].partition = p;
			hw[nhw].high_watermark = hi;
			nhw++;
		}
	}

	reload_config_if_pending();
	PG_TRY();
	{
		begin_xact();
		SPI_connect();
		MemoryContextSwitchTo(c->batch_cxt);
		if (!ek_kafka_catalog_installed() ||
			!same_source(c, ek_kafka_read_source(c->source_id, false)))
			gone = true;
		else
		{
			KafkaOffset *offsets;
			int			noffsets = ek_kafka_read_offsets(c->source_id, false, &offsets);

			unchanged = c->nparts == 0 || offsets_unchanged(c, offsets, noffsets);
		}
		if (!gone && (c->state_dirty || nhw > 0))
		{
			ek_kafka_store_state(c->source_id, c->last_error, c->last_error_at,
								 c->failing_since);
			ek_kafka_store_watermarks(c->source_id, nhw, hw);
			stored = true;
		}
		SPI_finish();
		commit_xact();
	}
	PG_CATCH();
	{
		ErrorData  *edata = abort_xact(c);

		ereport(DEBUG1,
				(errmsg_internal("eventkit kafka source \"%s\": state not stored: %s",
								 c->src->name, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(c->cxt);
	if (stored)
	{
		c->state_dirty = false;
		for (int i = 0; i < nhw; i++)
			c->parts[hw[i].partition].stored_hw = hw[i].high_watermark;
	}
	MemoryContextReset(c->batch_cxt);
	if (gone)
		exit_source_gone(c);
	return unchanged;
}

static void
consumer_loop(Consumer *c)
{
	for (;;)
	{
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		reload_config_if_pending();
		drain_events(c);
		now = GetCurrentTimestamp();
		if (now >= c->next_housekeeping)
		{
			/* the scheduler that started this consumer stopped: so does it */
			if (!PostmasterIsAlive() || BackendPidGetProc(c->scheduler_pid) == NULL)
				proc_exit(0);
			if (!housekeeping(c))
				reassign(c);
			c->next_housekeeping = after_ms(HOUSEKEEPING_MS);
		}
		if (now >= c->next_metadata)
			refresh_partitions(c);
		if (c->nparts == 0)
		{
			wait_ms(c, POLL_MS);
			continue;
		}
		if (fill_batch(c) > 0)
			store_batch(c);
	}
}

void
ek_kafka_consumer_main(Datum arg)
{
	KafkaExtra	extra;
	Consumer   *c;
	char	   *group;

	memcpy(&extra, MyBgworkerEntry->bgw_extra, sizeof(extra));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(extra.dboid, InvalidOid, 0);
	pgstat_report_appname("eventkit kafka");

	c = MemoryContextAllocZero(TopMemoryContext, sizeof(Consumer));
	c->source_id = DatumGetInt32(arg);
	c->scheduler_pid = extra.scheduler_pid;
	c->cxt = AllocSetContextCreate(TopMemoryContext, "eventkit kafka consumer",
								   ALLOCSET_DEFAULT_SIZES);
	c->batch_cxt = AllocSetContextCreate(c->cxt, "eventkit kafka batch",
										 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(c->cxt);
	consumer = c;
	if (!lock_source(c))
		proc_exit(0);			/* another consumer has it */
	group = load_source(c);
	start_librdkafka(c, group);
	set_activity(c, "consuming topic \"%s\"", c->src->topic);
	consumer_loop(c);
}
