/*-------------------------------------------------------------------------
 *
 * route.c
 *	  Routing for clients of a stream distributed on Citus: which node
 *	  holds the shard of an event's user key, so that a client, an SDK
 *	  proxy or a load balancer sends each node only the events of its own
 *	  shards, and each call there claims and writes local shards only (no
 *	  other node, no two-phase commit; docs/citus.md, "Routing clients").
 *
 *	  eventkit.route_events(stream, payload): for each event of a payload
 *	  (one event, an array, a batch envelope: what ingest takes), its item,
 *	  its messageId (derived from its content when absent, as ingest
 *	  derives it), its user key (userId, else anonymousId: parsed by
 *	  ingest's own parser, pipeline/event.c), the key's shard and the
 *	  primary node that holds it.  eventkit.route_user(stream, user_id,
 *	  anonymous_id): the same for one user.  The shard is Citus's hash of
 *	  the key in the shards' hash ranges and the node the shard's placement
 *	  (util/citus_shards.c), read from Citus's catalog on this node (any
 *	  node, metadata synced) with heap scans: no query through Citus, no
 *	  other node reached.  Both run with the caller's rights and need
 *	  SELECT on the stream (and USAGE on its schema); they write nothing.
 *
 *	  A route is advice, not a lock: a shard moved after it was read sends
 *	  that node's call through Citus to the shard's new node, as a batch of
 *	  mixed users always is; the results are the same.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "pipeline/event.h"
#include "pipeline/payload.h"
#include "util/citus.h"
#include "util/citus_shards.h"
#include "util/compat.h"
#include "util/spi.h"

/* What a route reads once per call: the stream's shards and the nodes */
typedef struct Router
{
	EkShardMap *map;
	EkCitusNode *nodes;
	int			nnodes;
} Router;

/*
 * Check the caller may read relid (USAGE on its schema, SELECT on it) and
 * that it is a stream distributed on Citus by its user key; read its
 * shards, their placements and the nodes.
 */
static void
router_open(Oid relid, Router *r)
{
	AttrNumber	key;

	ek_check_relation_access(relid, ACL_SELECT);

	key = get_attnum(relid, "user_key");
	if (ek_citus_table_kind(relid) != EK_CITUS_HASH || key == InvalidAttrNumber ||
		ek_citus_distribution_attnum(relid) != key)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation \"%s\" is not a stream distributed on Citus", get_rel_name(relid)),
				 errdetail("Only a stream hash-distributed by user_key (eventkit.distribute_stream) has nodes to route its events to."),
				 errhint("Send the events of a stream that is not distributed to the server that holds it.")));
	r->map = ek_citus_shard_map(relid, "user_key");
	ek_citus_shards_read(r->map);
	r->nodes = ek_citus_primary_nodes(&r->nnodes);
}

/*
 * One output row's routing columns for user key key (NULL: none): the
 * shard and its node's name and port, into values/nulls from position at.
 * A key outside every hash range, a shard with more than one placement,
 * or a group without an active primary has no node (NULL): such events
 * may be sent to any node.
 */
static void
route_key(const Router *r, const char *key, Datum *values, bool *nulls, int at)
{
	int			shard = key != NULL ? ek_citus_shard_index(r->map, key) : -1;
	int32		group = shard >= 0 ? r->map->groups[shard] : -1;

	nulls[at] = nulls[at + 1] = nulls[at + 2] = true;
	if (shard < 0)
		return;
	values[at] = Int64GetDatum(r->map->shardids[shard]);
	nulls[at] = false;
	if (group < 0)
		return;
	for (int i = 0; i < r->nnodes; i++)
		if (r->nodes[i].group == group)
		{
			values[at + 1] = CStringGetTextDatum(r->nodes[i].name);
			values[at + 2] = Int32GetDatum(r->nodes[i].port);
			nulls[at + 1] = nulls[at + 2] = false;
			return;
		}
}

/*
 * eventkit.route_events(stream regclass, payload jsonb)
 *	RETURNS TABLE(item int, message_id text, user_key text, shard bigint,
 *				  nodename text, nodeport int)
 */
PG_FUNCTION_INFO_V1(eventkit_route_events);

Datum
eventkit_route_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = PG_GETARG_OID(0);
	Jsonb	   *payload = PG_GETARG_JSONB_P(1);
	MemoryContext cxt;
	MemoryContext old;
	Router		r;
	EventBatch	b;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit route",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	router_open(relid, &r);

	/* the payload's events, within the limits ingest applies */
	ek_payload_init(&b, NULL);
	b.relid = relid;
	ek_payload_check_size(&b, VARSIZE_ANY_EXHDR(payload));
	ek_payload_jsonb(&b, payload);

	for (int i = 0; i < b.nevents; i++)
	{
		SegmentEvent *ev = &b.events[i];
		const char *key = NULL;
		Datum		values[6];
		bool		nulls[6] = {false, false, true, false, false, false};

		CHECK_FOR_INTERRUPTS();
		if (ev->raw == NULL)
			ek_parse_event(ev, &b.env, now);
		if (ev->raw == NULL)
			key = ek_event_user_key(ev);
		values[0] = Int32GetDatum(ev->item);
		nulls[1] = ev->message_id == NULL;
		if (!nulls[1])
			values[1] = CStringGetTextDatum(ev->message_id);
		if (key != NULL)
		{
			values[2] = CStringGetTextDatum(key);
			nulls[2] = false;
		}
		route_key(&r, key, values, nulls, 3);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}

/* An id as an event's userId or anonymousId: an empty one is none */
static char *
id_argument(FunctionCallInfo fcinfo, int arg)
{
	char	   *s;

	if (PG_ARGISNULL(arg))
		return NULL;
	s = TextDatumGetCString(PG_GETARG_DATUM(arg));
	return s[0] == '\0' ? NULL : s;
}

/*
 * eventkit.route_user(stream regclass, user_id text, anonymous_id text
 * DEFAULT NULL) RETURNS TABLE(user_key text, shard bigint, nodename text,
 * nodeport int): one row, the key an event with these ids has (user_id,
 * else anonymous_id; an empty one is none) and its node.
 */
PG_FUNCTION_INFO_V1(eventkit_route_user);

Datum
eventkit_route_user(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = ek_stream_arg(fcinfo, 0);
	Router		r;
	char	   *key;
	Datum		values[4];
	bool		nulls[4] = {true, true, true, true};

	InitMaterializedSRF(fcinfo, 0);
	router_open(relid, &r);
	key = id_argument(fcinfo, 1);
	if (key == NULL)
		key = id_argument(fcinfo, 2);
	if (key != NULL)
	{
		values[0] = CStringGetTextDatum(key);
		nulls[0] = false;
	}
	route_key(&r, key, values, nulls, 1);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
