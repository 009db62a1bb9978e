/*-------------------------------------------------------------------------
 *
 * event.h
 *	  One Segment event as ingest handles it (event.c): its fields, its
 *	  time, its fingerprint and its problems.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_EVENT_H
#define EK_PIPELINE_EVENT_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "pipeline/problem.h"

/* Values the batch envelope lends to the events in it. */
typedef struct EnvelopeDefaults
{
	bool		has_sent_at;
	TimestampTz sent_at;
	JsonbValue	context;		/* batch-level context (jbvBinary), or jbvNull */
} EnvelopeDefaults;

/* One event, as extracted from its JSON form. */
typedef struct SegmentEvent
{
	int32		item;			/* 1-based position in the payload */
	JsonbValue	source;			/* the event: jbvBinary (read from jsonb), a
								 * tree of the JSON parser (json_parse.h:
								 * jbvObject, jbvArray), a scalar, or
								 * NULL-typed */
	Jsonb	   *payload;		/* the event as a standalone jsonb */
	char	   *raw;			/* raw text when the item did not parse */
	int32		size;			/* bytes of the item */
	const char *origin;			/* JSON text: where an intake worker got it
								 * (ingest.h), kept if quarantined; or NULL */

	char	   *message_id;
	bool		derived_id;		/* message_id computed from content */
	char	   *type;
	char	   *event;
	char	   *user_id;
	char	   *anonymous_id;
	char	   *previous_id;	/* an alias's previousId (also in extra) */
	TimestampTz ts;
	bool		has_sent_at;
	TimestampTz sent_at;
	bool		has_original_timestamp;
	TimestampTz original_timestamp;
	bool		has_timestamp;
	TimestampTz timestamp;
	Jsonb	   *properties;
	Jsonb	   *traits;
	Jsonb	   *context;
	Jsonb	   *extra;
	int64		fingerprint;

	EkProblems	problems;		/* none: it can be stored */

	/* tracking plan (pipeline/plan/) */
	int32		plan_version;	/* 0: not checked against a plan */
	List	   *findings;		/* PlanFinding *, in the order found */
	Jsonb	   *violations;		/* tagged/omitted findings, stored on the row */

	/*
	 * Stored already: a distributed stream's event that the call of its
	 * node claimed and wrote there (pipeline/dedup/dist_ledger.c); the
	 * writer leaves it alone.
	 */
	bool		stored;
} SegmentEvent;

/*
 * The event's user key (the stream's user_key column, by which a stream is
 * distributed and the ledger keyed): its userId, else its anonymousId;
 * NULL with neither.
 */
static inline const char *
ek_event_user_key(const SegmentEvent *ev)
{
	return ev->user_id != NULL ? ev->user_id : ev->anonymous_id;
}

#define ek_event_ok(ev) ((ev)->problems.n == 0)

extern void ek_parse_event(SegmentEvent *ev, const EnvelopeDefaults *env,
						   TimestampTz received_at);
extern Jsonb *ek_event_jsonb(SegmentEvent *ev);
extern bool ek_parse_iso8601(const char *str, int len, TimestampTz *result);
extern char *ek_timestamp_iso(TimestampTz ts);
extern bool ek_stored_event_time(Jsonb *payload, Jsonb *envelope,
								 TimestampTz received_at, TimestampTz *ts);

#endif							/* EK_PIPELINE_EVENT_H */
