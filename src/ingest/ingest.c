/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  eventkit.ingest() and eventkit.ingest_verbose(): turning a payload
 *	  (one event, an array, a Segment batch envelope, or NDJSON text) into
 *	  stored rows, duplicates, conflicts, quarantine rows (a retried event
 *	  stored once) or rejections, in one transaction-safe pass per call;
 *	  and eventkit.replay_quarantine(), which runs quarantined events
 *	  through the same pass; and ek_ingest_jsonb_payload() and
 *	  ek_ingest_text_items() (ingest.h), the same pass for the intake
 *	  workers (src/intake/: HTTP, Kafka).
 *
 *	  A call runs in a memory context of its own.  Per batch (not per
 *	  event) it issues one statement each to: claim ids in the ledger
 *	  (dedup.c), insert the accepted rows into the stream (as the caller,
 *	  with the caller's privileges), insert quarantine and conflict rows,
 *	  and log the batch (as the extension owner).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "eventkit.h"
#include "ingest.h"

PG_FUNCTION_INFO_V1(eventkit_ingest_jsonb);
PG_FUNCTION_INFO_V1(eventkit_ingest_text);
PG_FUNCTION_INFO_V1(eventkit_ingest_verbose);
PG_FUNCTION_INFO_V1(eventkit_replay_quarantine);

typedef enum ItemStatus
{
	ITEM_ACCEPTED,
	ITEM_DUPLICATE,
	ITEM_CONFLICT,
	ITEM_QUARANTINED,
	ITEM_REJECTED
} ItemStatus;

static const char *const status_names[] = {
	"accepted", "duplicate", "conflict", "quarantined", "rejected"
};

typedef struct IngestBatch
{
	SegmentEvent *events;
	int			nevents;
	int			capacity;
	EnvelopeDefaults env;
	ItemStatus *status;
	int64		counts[5];
	int64	   *quarantine_ids;	/* replay: the quarantine row of each item */
	/* the stream (named in messages) and its own limits (0: the setting's) */
	Oid			relid;
	int32		max_event_bytes;
	int32		max_batch_bytes;
	int32		max_batch_items;
	const char *origin;			/* given to the items collected (IngestItem) */
} IngestBatch;

static SPIPlanPtr quarantine_plan = NULL;
static SPIPlanPtr quarantine_keyed_plan = NULL;
static SPIPlanPtr quarantine_origin_plan = NULL;
static SPIPlanPtr conflict_plan = NULL;
static SPIPlanPtr batch_plan = NULL;

/* ---------------------------------------------------------------------
 * Collecting items
 * ---------------------------------------------------------------------
 */

/*
 * The limits of a call: the stream's own values where it has them, else
 * the settings (superuser-only, see guc.c).
 */
static void
limit_exceeded(const IngestBatch *b, bool own, const char *name, int limit,
			   const char *msg, const char *advice)
{
	if (own)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg_internal("%s", msg),
				 errdetail("The %s of stream \"%s\" is %d; nothing was stored.",
						   name, get_rel_name(b->relid), limit),
				 errhint("%s, or have the stream's owner raise its %s with eventkit.alter_stream().",
						 advice, name)));
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg_internal("%s", msg),
			 errdetail("eventkit.%s is %d; nothing was stored.", name, limit),
			 errhint("%s, or have a superuser raise eventkit.%s.", advice, name)));
}

static SegmentEvent *
new_item(IngestBatch *b)
{
	SegmentEvent *ev;
	int			limit = b->max_batch_items > 0 ? b->max_batch_items : ek_max_batch_items;

	if (b->nevents >= limit)
		limit_exceeded(b, b->max_batch_items > 0, "max_batch_items", limit,
					   psprintf(_("batch has more than %d events"), limit),
					   _("Split the payload into smaller batches"));
	if (b->nevents == b->capacity)
	{
		b->capacity = b->capacity ? b->capacity * 2 : 64;
		b->events = b->events ? repalloc(b->events, sizeof(SegmentEvent) * b->capacity) :
			palloc(sizeof(SegmentEvent) * b->capacity);
	}
	ev = &b->events[b->nevents++];
	memset(ev, 0, sizeof(SegmentEvent));
	ev->item = b->nevents;
	ev->source.type = jbvNull;
	ev->origin = b->origin;
	return ev;
}

/*
 * A replayed event passed the size limit when it arrived: it is not
 * checked again.
 */
static void
check_event_size(const IngestBatch *b, int32 size, int item)
{
	int			limit = b->max_event_bytes > 0 ? b->max_event_bytes : ek_max_event_bytes;

	if (size > limit && b->quarantine_ids == NULL)
		limit_exceeded(b, b->max_event_bytes > 0, "max_event_bytes", limit,
					   psprintf(_("event %d is %d bytes, more than the limit of %d bytes"),
								item, size, limit),
					   _("Send smaller events"));
}

static void
add_value_item(IngestBatch *b, const JsonbValue *v, int32 size)
{
	SegmentEvent *ev = new_item(b);

	ev->source = *v;
	ev->size = size;
	check_event_size(b, size, ev->item);
}

static void
check_batch_size(const IngestBatch *b, int64 size)
{
	int			limit = b->max_batch_bytes > 0 ? b->max_batch_bytes : ek_max_batch_bytes;

	if (size > limit)
		limit_exceeded(b, b->max_batch_bytes > 0, "max_batch_bytes", limit,
					   psprintf(_("payload is %lld bytes, more than the limit of %d bytes"),
								(long long) size, limit),
					   _("Split the payload into smaller batches"));
}

/* Items of a JSON array container. */
static void
add_array_items(IngestBatch *b, JsonbContainer *array)
{
	JsonbIterator *it = JsonbIteratorInit(array);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		CHECK_FOR_INTERRUPTS();
		if (tok == WJB_ELEM)
			add_value_item(b, &v, v.type == jbvBinary ? v.val.binary.len : 16);
	}
}

static JsonbValue *
find_key(JsonbContainer *c, const char *key)
{
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

/*
 * One event, an array of events, or {"batch": [...], "sentAt", "context"}.
 */
static void
collect_jsonb_items(IngestBatch *b, Jsonb *jb)
{
	JsonbValue *batch;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbValue	v;

		(void) JsonbExtractScalar(&jb->root, &v);
		add_value_item(b, &v, VARSIZE_ANY_EXHDR(jb));
	}
	else if (JB_ROOT_IS_ARRAY(jb))
		add_array_items(b, &jb->root);
	else if ((batch = find_key(&jb->root, "batch")) != NULL)
	{
		JsonbValue *sent_at = find_key(&jb->root, "sentAt");
		JsonbValue *context = find_key(&jb->root, "context");

		if (batch->type != jbvBinary || !JsonContainerIsArray(batch->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"batch\" in a batch envelope must be an array of events"),
					 errhint("Send {\"batch\": [event, ...]} or an array of events.")));
		if (sent_at != NULL && sent_at->type != jbvNull)
		{
			if (sent_at->type != jbvString ||
				!ek_parse_iso8601(sent_at->val.string.val, sent_at->val.string.len,
								  &b->env.sent_at))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
						 errmsg("\"sentAt\" of the batch envelope is not an ISO 8601 timestamp"),
						 errhint("Use a timestamp such as \"2024-01-31T12:00:00.000Z\", or leave sentAt out.")));
			b->env.has_sent_at = true;
		}
		if (context != NULL && context->type == jbvBinary &&
			JsonContainerIsObject(context->val.binary.data))
			b->env.context = *context;
		else if (context != NULL && context->type != jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"context\" of the batch envelope must be an object"),
					 errhint("Send the context as a JSON object, or leave it out.")));
		add_array_items(b, batch->val.binary.data);
	}
	else
	{
		JsonbValue	v;

		v.type = jbvBinary;
		v.val.binary.data = &jb->root;
		v.val.binary.len = VARSIZE_ANY_EXHDR(jb);
		add_value_item(b, &v, v.val.binary.len);
	}
}

typedef struct JsonParse
{
	const char *str;
	Jsonb	   *result;
} JsonParse;

static void
parse_json(void *arg)
{
	JsonParse  *p = (JsonParse *) arg;

	p->result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(p->str)));
}

/*
 * Parse JSON text without letting a syntax error escape: returns NULL and
 * the error message instead.  Runs in a subtransaction; must not be called
 * while connected to SPI.
 */
static Jsonb *
try_parse_json(const char *str, char **errmsg_out)
{
	JsonParse	p = {str, NULL};
	ErrorData  *edata = ek_run_in_subtransaction(parse_json, &p);

	if (edata == NULL)
		return p.result;
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	*errmsg_out = edata->detail ? psprintf("%s: %s", edata->message, edata->detail) :
		pstrdup(edata->message);
	return NULL;
}

/*
 * JSON text to jsonb: the fast parser (json_parse.c), or jsonb_in when it
 * declines, which also explains what is wrong.
 */
static Jsonb *
parse_json_text(const char *str, int len, char **errmsg_out)
{
	Jsonb	   *jb = ek_json_to_jsonb(str, len);

	if (jb != NULL)
		return jb;
	jb = try_parse_json(str, errmsg_out);
	if (jb != NULL && ek_testing_json_crosscheck)
		ereport(NOTICE,
				(errmsg("the fast JSON parser declined a text jsonb_in accepts"),
				 errdetail("%s", pnstrdup(str, Min(len, 200)))));
	return jb;
}

static void
add_malformed_item(IngestBatch *b, const char *raw, int len, const char *msg)
{
	SegmentEvent *ev = new_item(b);

	ev->size = len;
	check_event_size(b, len, ev->item);
	ev->raw = pnstrdup(raw, len);
	ek_add_problem(ev, "malformed_json", "%s", msg);
}

/*
 * JSON text (one event, array, envelope) or NDJSON: one event per line.
 * A line that does not parse becomes a quarantined item.  str is
 * NUL-terminated, len bytes long.
 */
static void
collect_cstring_items(IngestBatch *b, char *str, int len)
{
	const char *p = str;
	char	   *err = NULL;
	Jsonb	   *jb;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload is empty"),
				 errhint("Send a JSON event, an array of events, a batch envelope or NDJSON.")));

	jb = parse_json_text(str, len, &err);
	if (jb != NULL)
	{
		collect_jsonb_items(b, jb);
		return;
	}
	if (*p == '[' || strchr(p, '\n') == NULL)
	{
		/* not NDJSON: the whole payload is one malformed item */
		add_malformed_item(b, str, len, err);
		return;
	}

	/* NDJSON */
	while (*p != '\0')
	{
		const char *eol = strchr(p, '\n');
		int			linelen = eol ? eol - p : strlen(p);
		const char *q = p;
		bool		blank = true;

		CHECK_FOR_INTERRUPTS();
		for (q = p; q < p + linelen; q++)
			if (*q != ' ' && *q != '\t' && *q != '\r')
				blank = false;
		if (!blank)
		{
			char	   *line = pnstrdup(p, linelen);

			err = NULL;
			jb = parse_json_text(line, linelen, &err);
			if (jb == NULL)
				add_malformed_item(b, line, linelen, err);
			else if (JB_ROOT_IS_SCALAR(jb))
			{
				JsonbValue	v;

				(void) JsonbExtractScalar(&jb->root, &v);
				add_value_item(b, &v, linelen);
			}
			else
			{
				JsonbValue	v;

				v.type = jbvBinary;
				v.val.binary.data = &jb->root;
				v.val.binary.len = VARSIZE_ANY_EXHDR(jb);
				add_value_item(b, &v, linelen);
			}
		}
		p = eol ? eol + 1 : p + linelen;
	}
}

static void
collect_text_items(IngestBatch *b, text *payload)
{
	char	   *str = text_to_cstring(payload);

	collect_cstring_items(b, str, strlen(str));
}

/* ---------------------------------------------------------------------
 * Writing
 * ---------------------------------------------------------------------
 */

static Jsonb *
item_payload(SegmentEvent *ev)
{
	if (ev->payload == NULL && ev->raw == NULL)
		ev->payload = JsonbValueToJsonb(&ev->source);
	return ev->payload;
}

/*
 * What the batch envelope lent its events ({"sentAt", "context"}), kept
 * with quarantined events so that a replay sees them as they came; NULL
 * when there was no envelope default.
 */
static Jsonb *
envelope_jsonb(const EnvelopeDefaults *env)
{
	JsonbParseState *state = NULL;
	JsonbValue	k;
	JsonbValue	v;

	if (!env->has_sent_at && env->context.type != jbvBinary)
		return NULL;
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	if (env->context.type == jbvBinary)
	{
		k.val.string.val = "context";
		k.val.string.len = 7;
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, (JsonbValue *) &env->context);
	}
	if (env->has_sent_at)
	{
		char	   *iso = ek_timestamp_iso(env->sent_at);

		k.val.string.val = "sentAt";
		k.val.string.len = 6;
		v.type = jbvString;
		v.val.string.val = iso;
		v.val.string.len = strlen(iso);
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/*
 * What a quarantined event is stored once under, with its message id: the
 * content fingerprint dedup uses (sentAt and receivedAt left out, so a
 * retry has the same one), or, for an item that is not a JSON object, a
 * hash of its text or value.
 */
static int64
quarantine_fingerprint(SegmentEvent *ev)
{
	Jsonb	   *payload;

	if (ev->message_id != NULL)
		return ev->fingerprint;
	if (ev->raw != NULL)
		return DatumGetInt64(hash_any_extended((const unsigned char *) ev->raw,
											   strlen(ev->raw), 0));
	payload = item_payload(ev);
	return DatumGetInt64(hash_any_extended((const unsigned char *) VARDATA(payload),
										   VARSIZE(payload) - VARHDRSZ, 0));
}

/*
 * Has eventkit.quarantine the retry key of 1.3 (a catalog not yet updated
 * has not)?  Syscache lookups, not a query, and only for batches that
 * quarantine.
 */
static bool
quarantine_has_retry_key(void)
{
	Oid			relid = get_relname_relid("quarantine", get_namespace_oid("eventkit", false));

	return get_attnum(relid, "fingerprint") != InvalidAttrNumber;
}

/*
 * Quarantine rows, as the extension owner.  An event already quarantined
 * (same stream, message id and fingerprint: a retry) is not stored again;
 * the caller still counts it as quarantined.  Events that came with an
 * origin (ek_ingest_text_items: an intake worker's topic, partition and
 * offset) store it in the origin column of 1.3, which such callers need.
 */
static void
insert_quarantine(const StreamInfo *stream, IngestBatch *b, SegmentEvent **q, int n,
				  int64 batch_id, TimestampTz received_at)
{
	Datum	   *items = palloc(sizeof(Datum) * n);
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *reasons = palloc(sizeof(Datum) * n);
	Datum	   *payloads = palloc(sizeof(Datum) * n);
	Datum	   *raws = palloc(sizeof(Datum) * n);
	Datum	   *versions = palloc(sizeof(Datum) * n);
	bool	   *id_nulls = palloc0(sizeof(bool) * n);
	bool	   *payload_nulls = palloc0(sizeof(bool) * n);
	bool	   *raw_nulls = palloc0(sizeof(bool) * n);
	bool	   *version_nulls = palloc0(sizeof(bool) * n);
	Datum	   *fingerprints = palloc(sizeof(Datum) * n);
	Datum	   *origins = palloc(sizeof(Datum) * n);
	bool	   *origin_nulls = palloc0(sizeof(bool) * n);
	Jsonb	   *envelope = envelope_jsonb(&b->env);
	Datum		args[13];
	char		argnulls[13];
	bool		keyed;
	bool		with_origin = false;
	int			rc;

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
		if (q[i]->origin != NULL)
			with_origin = true;
	keyed = quarantine_has_retry_key();
	if (with_origin && quarantine_origin_plan == NULL)
	{
		Oid			types[13] = {INT4OID, INT8OID, TIMESTAMPTZOID, INT4ARRAYOID,
			TEXTARRAYOID, JSONBARRAYOID, JSONBARRAYOID, TEXTARRAYOID, JSONBOID, INT4OID,
		INT4ARRAYOID, INT8ARRAYOID, JSONBARRAYOID};

		quarantine_origin_plan =
			ek_keep_plan("INSERT INTO eventkit.quarantine (stream_id, batch_id, item,"
						 " message_id, received_at, reasons, payload, raw, envelope,"
						 " plan_id, plan_version, fingerprint, origin)"
						 " SELECT $1, $2, x.i, x.m, $3, x.r, x.p, x.w, $9,"
						 " CASE WHEN x.v IS NOT NULL THEN $10 END, x.v, x.f, x.o"
						 " FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
						 " pg_catalog.unnest($6), pg_catalog.unnest($7),"
						 " pg_catalog.unnest($8), pg_catalog.unnest($11),"
						 " pg_catalog.unnest($12), pg_catalog.unnest($13))"
						 " AS x(i, m, r, p, w, v, f, o)"
						 " ON CONFLICT (stream_id, message_id, fingerprint)"
						 " WHERE fingerprint IS NOT NULL DO NOTHING",
						 13, types);
	}
	else if (!with_origin && keyed && quarantine_keyed_plan == NULL)
	{
		Oid			types[12] = {INT4OID, INT8OID, TIMESTAMPTZOID, INT4ARRAYOID,
			TEXTARRAYOID, JSONBARRAYOID, JSONBARRAYOID, TEXTARRAYOID, JSONBOID, INT4OID,
		INT4ARRAYOID, INT8ARRAYOID};

		quarantine_keyed_plan =
			ek_keep_plan("INSERT INTO eventkit.quarantine (stream_id, batch_id, item,"
						 " message_id, received_at, reasons, payload, raw, envelope,"
						 " plan_id, plan_version, fingerprint)"
						 " SELECT $1, $2, x.i, x.m, $3, x.r, x.p, x.w, $9,"
						 " CASE WHEN x.v IS NOT NULL THEN $10 END, x.v, x.f"
						 " FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
						 " pg_catalog.unnest($6), pg_catalog.unnest($7),"
						 " pg_catalog.unnest($8), pg_catalog.unnest($11),"
						 " pg_catalog.unnest($12)) AS x(i, m, r, p, w, v, f)"
						 " ON CONFLICT (stream_id, message_id, fingerprint)"
						 " WHERE fingerprint IS NOT NULL DO NOTHING",
						 12, types);
	}
	else if (!with_origin && !keyed && quarantine_plan == NULL)
	{
		Oid			types[11] = {INT4OID, INT8OID, TIMESTAMPTZOID, INT4ARRAYOID,
			TEXTARRAYOID, JSONBARRAYOID, JSONBARRAYOID, TEXTARRAYOID, JSONBOID, INT4OID,
		INT4ARRAYOID};

		quarantine_plan =
			ek_keep_plan("INSERT INTO eventkit.quarantine (stream_id, batch_id, item,"
						 " message_id, received_at, reasons, payload, raw, envelope,"
						 " plan_id, plan_version)"
						 " SELECT $1, $2, x.i, x.m, $3, x.r, x.p, x.w, $9,"
						 " CASE WHEN x.v IS NOT NULL THEN $10 END, x.v"
						 " FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
						 " pg_catalog.unnest($6), pg_catalog.unnest($7),"
						 " pg_catalog.unnest($8), pg_catalog.unnest($11)) AS x(i, m, r, p, w, v)",
						 11, types);
	}
	for (int i = 0; i < n; i++)
	{
		Jsonb	   *payload = item_payload(q[i]);

		items[i] = Int32GetDatum(q[i]->item);
		ids[i] = EK_TEXT_OR_NULL(q[i]->message_id);
		id_nulls[i] = q[i]->message_id == NULL;
		reasons[i] = JsonbPGetDatum(ek_problems_jsonb(q[i]));
		payloads[i] = EK_JSONB_OR_NULL(payload);
		payload_nulls[i] = payload == NULL;
		raws[i] = EK_TEXT_OR_NULL(q[i]->raw);
		raw_nulls[i] = q[i]->raw == NULL;
		versions[i] = Int32GetDatum(q[i]->plan_version);
		version_nulls[i] = q[i]->plan_version == 0;
		fingerprints[i] = Int64GetDatum(quarantine_fingerprint(q[i]));
		origin_nulls[i] = q[i]->origin == NULL;
		if (q[i]->origin != NULL)
			origins[i] = DirectFunctionCall1(jsonb_in, CStringGetDatum(q[i]->origin));
	}
	memset(argnulls, ' ', sizeof(argnulls));
	args[0] = Int32GetDatum(stream->stream_id);
	args[1] = Int64GetDatum(batch_id);
	args[2] = TimestampTzGetDatum(received_at);
	args[3] = ek_make_array(items, NULL, n, INT4OID);
	args[4] = ek_make_array(ids, id_nulls, n, TEXTOID);
	args[5] = ek_make_array(reasons, NULL, n, JSONBOID);
	args[6] = ek_make_array(payloads, payload_nulls, n, JSONBOID);
	args[7] = ek_make_array(raws, raw_nulls, n, TEXTOID);
	args[8] = EK_JSONB_OR_NULL(envelope);
	argnulls[8] = envelope == NULL ? 'n' : ' ';
	args[9] = Int32GetDatum(stream->plan_id);
	args[10] = ek_make_array(versions, version_nulls, n, INT4OID);
	args[11] = ek_make_array(fingerprints, NULL, n, INT8OID);
	if (with_origin)
		args[12] = ek_make_array(origins, origin_nulls, n, JSONBOID);
	rc = SPI_execute_plan(with_origin ? quarantine_origin_plan :
						  keyed ? quarantine_keyed_plan : quarantine_plan,
						  args, argnulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "eventkit: insert into quarantine failed: %s", SPI_result_code_string(rc));
}

/*
 * After a replay: events that are now stored (or known duplicates or
 * conflicts of stored ones) leave quarantine; the others stay, with the
 * reasons of this attempt.  As the extension owner.
 */
static void
settle_replayed(const StreamInfo *stream, IngestBatch *b)
{
	static SPIPlanPtr delete_plan = NULL;
	static SPIPlanPtr update_plan = NULL;
	Datum	   *gone = palloc(sizeof(Datum) * b->nevents);
	Datum	   *kept = palloc(sizeof(Datum) * b->nevents);
	Datum	   *reasons = palloc(sizeof(Datum) * b->nevents);
	Datum	   *versions = palloc(sizeof(Datum) * b->nevents);
	bool	   *version_nulls = palloc0(sizeof(bool) * b->nevents);
	int			ngone = 0;
	int			nkept = 0;
	int			rc;

	if (delete_plan == NULL)
	{
		Oid			dtypes[1] = {INT8ARRAYOID};
		Oid			utypes[4] = {INT8ARRAYOID, JSONBARRAYOID, INT4OID, INT4ARRAYOID};

		delete_plan = ek_keep_plan("DELETE FROM eventkit.quarantine"
								   " WHERE quarantine_id OPERATOR(pg_catalog.=) ANY ($1)",
								   1, dtypes);
		update_plan = ek_keep_plan("UPDATE eventkit.quarantine q SET reasons = x.r,"
								   " plan_id = CASE WHEN x.v IS NOT NULL THEN $3 END,"
								   " plan_version = x.v, replays = q.replays OPERATOR(pg_catalog.+) 1,"
								   " replayed_at = pg_catalog.now()"
								   " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
								   " pg_catalog.unnest($4)) AS x(id, r, v)"
								   " WHERE q.quarantine_id OPERATOR(pg_catalog.=) x.id",
								   4, utypes);
	}
	for (int i = 0; i < b->nevents; i++)
	{
		SegmentEvent *ev = &b->events[i];

		if (b->status[i] == ITEM_QUARANTINED || b->status[i] == ITEM_REJECTED)
		{
			kept[nkept] = Int64GetDatum(b->quarantine_ids[i]);
			reasons[nkept] = JsonbPGetDatum(ek_problems_jsonb(ev));
			versions[nkept] = Int32GetDatum(ev->plan_version);
			version_nulls[nkept] = ev->plan_version == 0;
			nkept++;
		}
		else
			gone[ngone++] = Int64GetDatum(b->quarantine_ids[i]);
	}
	if (ngone > 0)
	{
		Datum		args[1] = {ek_make_array(gone, NULL, ngone, INT8OID)};

		rc = SPI_execute_plan(delete_plan, args, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "eventkit: delete from quarantine failed: %s", SPI_result_code_string(rc));
	}
	if (nkept > 0)
	{
		Datum		args[4] = {ek_make_array(kept, NULL, nkept, INT8OID),
			ek_make_array(reasons, NULL, nkept, JSONBOID),
			Int32GetDatum(stream->plan_id),
		ek_make_array(versions, version_nulls, nkept, INT4OID)};

		rc = SPI_execute_plan(update_plan, args, NULL, false, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "eventkit: update of quarantine failed: %s", SPI_result_code_string(rc));
	}
}

/* Conflict log rows, as the extension owner. */
static void
insert_conflicts(const StreamInfo *stream, SegmentEvent **c, int n,
				 int64 batch_id, TimestampTz received_at)
{
	Datum	   *items = palloc(sizeof(Datum) * n);
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *payloads = palloc(sizeof(Datum) * n);
	Datum		args[6];
	int			rc;

	if (n == 0)
		return;
	if (conflict_plan == NULL)
	{
		Oid			types[6] = {INT4OID, INT8OID, TIMESTAMPTZOID, INT4ARRAYOID,
		TEXTARRAYOID, JSONBARRAYOID};

		conflict_plan =
			ek_keep_plan("INSERT INTO eventkit.conflicts (stream_id, batch_id, item,"
					  " message_id, received_at, payload)"
					  " SELECT $1, $2, x.i, x.m, $3, x.p"
					  " FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5),"
					  " pg_catalog.unnest($6)) AS x(i, m, p)",
					  6, types);
	}
	for (int i = 0; i < n; i++)
	{
		items[i] = Int32GetDatum(c[i]->item);
		ids[i] = PointerGetDatum(cstring_to_text(c[i]->message_id));
		payloads[i] = JsonbPGetDatum(item_payload(c[i]));
	}
	args[0] = Int32GetDatum(stream->stream_id);
	args[1] = Int64GetDatum(batch_id);
	args[2] = TimestampTzGetDatum(received_at);
	args[3] = ek_make_array(items, NULL, n, INT4OID);
	args[4] = ek_make_array(ids, NULL, n, TEXTOID);
	args[5] = ek_make_array(payloads, NULL, n, JSONBOID);
	rc = SPI_execute_plan(conflict_plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "eventkit: insert into conflicts failed: %s", SPI_result_code_string(rc));
}

static int64
next_batch_id(void)
{
	int			rc;
	bool		isnull;

	rc = SPI_execute("SELECT pg_catalog.nextval('eventkit.batch_id_seq')", false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "eventkit: could not allocate a batch id");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static void
log_batch(const StreamInfo *stream, IngestBatch *b, int64 batch_id,
		  TimestampTz received_at, Oid caller)
{
	Datum		args[10];
	int			rc;

	if (batch_plan == NULL)
	{
		Oid			types[10] = {INT8OID, INT4OID, TIMESTAMPTZOID, NAMEOID, INT4OID,
		INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};

		batch_plan =
			ek_keep_plan("INSERT INTO eventkit.ingest_batches (batch_id, stream_id,"
					  " received_at, ingested_by, items, accepted, duplicates,"
					  " conflicts, quarantined, rejected)"
					  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
					  10, types);
	}
	args[0] = Int64GetDatum(batch_id);
	args[1] = Int32GetDatum(stream->stream_id);
	args[2] = TimestampTzGetDatum(received_at);
	args[3] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(caller, false)));
	args[4] = Int32GetDatum(b->nevents);
	for (int s = 0; s < 5; s++)
		args[5 + s] = Int64GetDatum(b->counts[s]);
	rc = SPI_execute_plan(batch_plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "eventkit: could not log the batch: %s", SPI_result_code_string(rc));
}

/*
 * Where each event goes: outside the stream's clock bounds, quarantined
 * too_old or too_new.  Then, for events whose time no partition covers:
 * create the partition (past events within retention, future ones within
 * premake), at most eventkit.max_new_partitions per call, or quarantine
 * them with reason out_of_range (the worker makes their partitions and
 * re-drives them).
 */
static void
place_events(const StreamInfo *stream, IngestBatch *b, TimestampTz now)
{
	EkTimeBounds bounds;
	int			created = 0;
	MemoryContext cxt = CurrentMemoryContext;
	Relation	rel = table_open(stream->relid, NoLock);	/* locked by the caller */

	ek_time_bounds(stream, now, &bounds);
	for (int i = 0; i < b->nevents; i++)
	{
		SegmentEvent *ev = &b->events[i];

		if (ev->nproblems > 0)
			continue;
		if (ev->ts > bounds.too_new)
			ek_add_problem(ev, "too_new",
						   "event time %s is further ahead of the server's clock than the stream's max_future",
						   ek_timestamp_iso(ev->ts));
		else if (ev->ts < bounds.too_old)
			ek_add_problem(ev, "too_old",
						   "event time %s is further behind the server's clock than the stream's max_past",
						   ek_timestamp_iso(ev->ts));
		else if (ek_partition_exists_in(rel, ev->ts))
			continue;
		else if (ev->ts >= bounds.horizon)
			ek_add_problem(ev, "out_of_range",
						   "event time %s is after the partitions the stream keeps ready",
						   ek_timestamp_iso(ev->ts));
		else if (ev->ts < bounds.oldest)
			ek_add_problem(ev, "out_of_range",
						   "event time %s is older than the stream's retention",
						   ek_timestamp_iso(ev->ts));
		else if (!ek_create_partitions_on_ingest)
			ek_add_problem(ev, "out_of_range",
						   "no partition covers event time %s and eventkit.create_partitions_on_ingest is off",
						   ek_timestamp_iso(ev->ts));
		else if (created >= ek_max_new_partitions)
			ek_add_problem(ev, "out_of_range",
						   "no partition covers event time %s and this call has created eventkit.max_new_partitions (%d) partitions; maintenance creates it",
						   ek_timestamp_iso(ev->ts), ek_max_new_partitions);
		else
		{
			/* the stream's partition descriptor changes: reopen it after */
			table_close(rel, NoLock);
			ek_create_partition(stream, ek_bucket_start(&stream->partition_interval, ev->ts));
			created++;
			/* SPI leaves its own context current; problems must outlive it */
			MemoryContextSwitchTo(cxt);
			rel = table_open(stream->relid, NoLock);
		}
	}
	table_close(rel, NoLock);
}

/*
 * Problems that are not the event's fault (where it falls in time, a plan
 * that is missing): it is quarantined, to be re-driven or replayed, even
 * when eventkit.invalid_events rejects invalid events.
 */
static bool
not_its_fault(const SegmentEvent *ev)
{
	const char *reason = ev->problems[0].reason;

	return strcmp(reason, "out_of_range") == 0 || strcmp(reason, "too_old") == 0 ||
		strcmp(reason, "too_new") == 0 || strcmp(reason, "plan_missing") == 0;
}

/*
 * The whole ingest of one payload, whose items are in b.  known: the
 * stream's catalog row if the caller has read it in this call, else NULL.
 */
static void
ingest_batch(Oid relid, const StreamInfo *known, IngestBatch *b, TimestampTz received_at)
{
	StreamInfo	stream;
	Oid			caller = GetUserId();
	Oid			save_userid;
	int			save_sec;
	int64		batch_id;
	SegmentEvent **valid = palloc(sizeof(SegmentEvent *) * (b->nevents + 1));
	SegmentEvent **acc = palloc(sizeof(SegmentEvent *) * (b->nevents + 1));
	SegmentEvent **quar = palloc(sizeof(SegmentEvent *) * (b->nevents + 1));
	SegmentEvent **conf = palloc(sizeof(SegmentEvent *) * (b->nevents + 1));
	int			nvalid = 0,
				nacc = 0,
				nquar = 0,
				nconf = 0;
	DedupVerdict *verdicts = palloc(sizeof(DedupVerdict) * (b->nevents + 1));
	MemoryContext batch_cxt = CurrentMemoryContext;
	CompiledPlan *plan;

	b->status = palloc0(sizeof(ItemStatus) * (b->nevents + 1));

	for (int i = 0; i < b->nevents; i++)
	{
		SegmentEvent *ev = &b->events[i];

		CHECK_FOR_INTERRUPTS();
		if (ev->raw == NULL)
			ek_parse_event(ev, &b->env, received_at);
	}

	SPI_connect();
	MemoryContextSwitchTo(batch_cxt);

	/* SPI calls leave SPI's context current: switch back after each */
	if (known != NULL)
		stream = *known;
	else
		ek_lookup_stream(relid, &stream, false);
	MemoryContextSwitchTo(batch_cxt);
	plan = ek_plan_for_stream(&stream);
	if (plan != NULL)
		for (int i = 0; i < b->nevents; i++)
		{
			SegmentEvent *ev = &b->events[i];

			if (ev->nproblems == 0)
				ek_plan_check_event(plan, ev);
		}
	place_events(&stream, b, GetCurrentTransactionStartTimestamp());

	for (int i = 0; i < b->nevents; i++)
	{
		SegmentEvent *ev = &b->events[i];

		if (ev->nproblems == 0)
			valid[nvalid++] = ev;
		else if (ev->reject ||
				 (ek_invalid_events == INVALID_EVENTS_REJECT && !not_its_fault(ev)))
			b->status[i] = ITEM_REJECTED;
		else
		{
			b->status[i] = ITEM_QUARANTINED;
			quar[nquar++] = ev;
		}
	}

	ek_switch_to_owner(&save_userid, &save_sec);
	batch_id = next_batch_id();
	ek_dedup_claim(&stream, valid, nvalid, batch_id, verdicts);
	ek_restore_user(save_userid, save_sec);
	MemoryContextSwitchTo(batch_cxt);

	for (int i = 0; i < nvalid; i++)
	{
		int			idx = valid[i]->item - 1;

		switch (verdicts[i])
		{
			case DEDUP_NEW:
				b->status[idx] = ITEM_ACCEPTED;
				acc[nacc++] = valid[i];
				break;
			case DEDUP_DUPLICATE:
				b->status[idx] = ITEM_DUPLICATE;
				break;
			case DEDUP_CONFLICT:
				b->status[idx] = ITEM_CONFLICT;
				ek_add_problem(valid[i], "conflict",
							   "messageId \"%s\" was already stored with different content; the first copy is kept",
							   valid[i]->message_id);
				conf[nconf++] = valid[i];
				break;
		}
	}
	for (int i = 0; i < b->nevents; i++)
		b->counts[b->status[i]]++;

	ek_write_events(&stream, acc, nacc, batch_id, received_at);

	ek_switch_to_owner(&save_userid, &save_sec);
	if (b->quarantine_ids != NULL)
		settle_replayed(&stream, b);
	else
		insert_quarantine(&stream, b, quar, nquar, batch_id, received_at);
	insert_conflicts(&stream, conf, nconf, batch_id, received_at);
	if (plan != NULL)
		ek_log_batch_violations(&stream, b->events, b->nevents, batch_id);
	log_batch(&stream, b, batch_id, received_at, caller);
	ek_restore_user(save_userid, save_sec);

	SPI_finish();
	MemoryContextSwitchTo(batch_cxt);
}

/* ---------------------------------------------------------------------
 * SQL-callable entry points
 * ---------------------------------------------------------------------
 */

/*
 * Lock the stream against concurrent DROP, as an INSERT would; check
 * USAGE on its schema (which naming it in an INSERT needs, and a regclass
 * given as an OID skips) and INSERT on it.
 */
static void
lock_stream_for_insert(Oid relid)
{
	AclResult	aclresult;
	Oid			nspid;

	LockRelationOid(relid, RowExclusiveLock);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	nspid = get_rel_namespace(relid);
	aclresult = ek_namespace_aclcheck(nspid, GetUserId(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_SCHEMA, get_namespace_name(nspid));
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, get_rel_name(relid));
}

/*
 * Common start of every entry point: checks the arguments and the
 * caller's INSERT privilege, and opens the call's memory context.
 */
static MemoryContext
begin_ingest(FunctionCallInfo fcinfo, Oid *relid, TimestampTz *received_at)
{
	ek_apply_memory_retention();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null"),
				 errhint("Pass the stream table, such as 'events'.")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payload must not be null"),
				 errhint("Send a JSON event, an array of events or a batch envelope.")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("received_at must not be null"),
				 errhint("Leave received_at out to use now().")));
	*relid = PG_GETARG_OID(0);
	*received_at = PG_GETARG_TIMESTAMPTZ(2);
	if (TIMESTAMP_NOT_FINITE(*received_at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("received_at must be a finite timestamp"),
				 errhint("Leave received_at out to use now().")));
	lock_stream_for_insert(*relid);

	return AllocSetContextCreate(CurrentMemoryContext, "eventkit ingest",
								 ALLOCSET_DEFAULT_SIZES);
}

static Datum
ingest_result_datum(FunctionCallInfo fcinfo, const IngestBatch *b)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "eventkit: return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	for (int s = 0; s < 5; s++)
		values[s] = Int64GetDatum(b->counts[s]);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* An empty batch for a stream with the given limits (0: the settings'). */
static void
init_batch_for(IngestBatch *b, Oid relid, int32 max_event_bytes,
			   int32 max_batch_bytes, int32 max_batch_items)
{
	memset(b, 0, sizeof(IngestBatch));
	b->env.context.type = jbvNull;
	b->relid = relid;
	b->max_event_bytes = max_event_bytes;
	b->max_batch_bytes = max_batch_bytes;
	b->max_batch_items = max_batch_items;
}

/* An empty batch for the stream, with the stream's limits. */
static void
init_batch(IngestBatch *b, Oid relid, StreamInfo *stream)
{
	MemoryContext cxt = CurrentMemoryContext;

	SPI_connect();
	ek_lookup_stream(relid, stream, false);
	SPI_finish();
	MemoryContextSwitchTo(cxt);

	init_batch_for(b, relid, stream->max_event_bytes, stream->max_batch_bytes,
				   stream->max_batch_items);
}

/*
 * Collect the payload argument's items into b, within the stream's limits,
 * and ingest them.
 */
static void
ingest_payload_argument(FunctionCallInfo fcinfo, bool is_text, Oid relid,
						TimestampTz received_at, IngestBatch *b)
{
	StreamInfo	stream;

	init_batch(b, relid, &stream);
	if (is_text)
	{
		text	   *payload = PG_GETARG_TEXT_PP(1);

		check_batch_size(b, VARSIZE_ANY_EXHDR(payload));
		collect_text_items(b, payload);
	}
	else
	{
		Jsonb	   *payload = PG_GETARG_JSONB_P(1);

		check_batch_size(b, VARSIZE_ANY_EXHDR(payload));
		collect_jsonb_items(b, payload);
	}
	ingest_batch(relid, &stream, b, received_at);
}

static Datum
ingest_returning_counts(FunctionCallInfo fcinfo, bool is_text)
{
	Oid			relid;
	TimestampTz received_at;
	MemoryContext cxt = begin_ingest(fcinfo, &relid, &received_at);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	IngestBatch b;
	Datum		result;

	ingest_payload_argument(fcinfo, is_text, relid, received_at, &b);
	MemoryContextSwitchTo(old);
	result = ingest_result_datum(fcinfo, &b);
	MemoryContextDelete(cxt);
	return result;
}

/*
 * eventkit.ingest(stream, payload jsonb, received_at) for C callers (the
 * HTTP intake, src/intake/): the same privilege checks (the current user
 * needs USAGE on the stream's schema and INSERT on it), the stream's
 * limits, the same pass, the counts in *out.  Errors are thrown as from
 * the SQL function, nothing half-written.
 */
void
ek_ingest_jsonb_payload(Oid relid, Jsonb *payload, TimestampTz received_at,
						IngestCounts *out)
{
	MemoryContext cxt;
	MemoryContext old;
	StreamInfo	stream;
	IngestBatch b;

	ek_apply_memory_retention();
	lock_stream_for_insert(relid);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit ingest",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	init_batch(&b, relid, &stream);
	check_batch_size(&b, VARSIZE_ANY_EXHDR(payload));
	collect_jsonb_items(&b, payload);
	ingest_batch(relid, &stream, &b, received_at);
	MemoryContextSwitchTo(old);
	out->accepted = b.counts[ITEM_ACCEPTED];
	out->duplicates = b.counts[ITEM_DUPLICATE];
	out->conflicts = b.counts[ITEM_CONFLICT];
	out->quarantined = b.counts[ITEM_QUARANTINED];
	out->rejected = b.counts[ITEM_REJECTED];
	MemoryContextDelete(cxt);
}

Datum
eventkit_ingest_jsonb(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(ingest_returning_counts(fcinfo, false));
}

Datum
eventkit_ingest_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(ingest_returning_counts(fcinfo, true));
}

Datum
eventkit_ingest_verbose(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	TimestampTz received_at;
	MemoryContext cxt = begin_ingest(fcinfo, &relid, &received_at);
	MemoryContext old;
	IngestBatch b;

	InitMaterializedSRF(fcinfo, 0);
	old = MemoryContextSwitchTo(cxt);
	ingest_payload_argument(fcinfo, false, relid, received_at, &b);

	for (int i = 0; i < b.nevents; i++)
	{
		SegmentEvent *ev = &b.events[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(ev->item);
		values[1] = EK_TEXT_OR_NULL(ev->message_id);
		nulls[1] = ev->message_id == NULL;
		values[2] = PointerGetDatum(cstring_to_text(status_names[b.status[i]]));
		if (ev->nproblems > 0)
			values[3] = JsonbPGetDatum(ek_problems_jsonb(ev));
		else if (ev->violations != NULL)
			values[3] = JsonbPGetDatum(ev->violations);
		else
			nulls[3] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Replaying quarantined events
 * ---------------------------------------------------------------------
 */

typedef struct QuarantinedEvent
{
	int64		quarantine_id;
	int64		batch_id;
	TimestampTz received_at;
	Jsonb	   *payload;
	Jsonb	   *envelope;
} QuarantinedEvent;

/*
 * The stream's quarantined events that have a payload (all of them, or
 * those in ids), locked against a concurrent replay, in arrival order.
 */
static QuarantinedEvent *
read_quarantine(Oid relid, Datum ids, bool ids_null, int *n)
{
	MemoryContext cxt = CurrentMemoryContext;
	StreamInfo	stream;
	Oid			save_userid;
	int			save_sec;
	Oid			argtypes[2] = {INT4OID, INT8ARRAYOID};
	Datum		args[2];
	char		nulls[2] = {' ', ids_null ? 'n' : ' '};
	QuarantinedEvent *rows;
	int			rc;

	SPI_connect();
	ek_lookup_stream(relid, &stream, false);
	args[0] = Int32GetDatum(stream.stream_id);
	args[1] = ids;
	ek_switch_to_owner(&save_userid, &save_sec);
	rc = SPI_execute_with_args("SELECT quarantine_id, batch_id, received_at, payload, envelope"
							   " FROM eventkit.quarantine"
							   " WHERE stream_id OPERATOR(pg_catalog.=) $1"
							   " AND payload IS NOT NULL"
							   " AND ($2 IS NULL OR quarantine_id OPERATOR(pg_catalog.=) ANY ($2))"
							   " ORDER BY batch_id, item FOR UPDATE",
							   2, argtypes, args, nulls, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "eventkit: could not read eventkit.quarantine: %s", SPI_result_code_string(rc));
	ek_restore_user(save_userid, save_sec);

	*n = SPI_processed;
	rows = MemoryContextAlloc(cxt, sizeof(QuarantinedEvent) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		MemoryContext old = MemoryContextSwitchTo(cxt);

		rows[i].quarantine_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		rows[i].batch_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		rows[i].received_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		rows[i].payload = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 4, &isnull));
		d = SPI_getbinval(tup, desc, 5, &isnull);
		rows[i].envelope = isnull ? NULL : DatumGetJsonbPCopy(d);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return rows;
}

static void
envelope_defaults(Jsonb *envelope, EnvelopeDefaults *env)
{
	JsonbValue *v;

	env->has_sent_at = false;
	env->context.type = jbvNull;
	if (envelope == NULL)
		return;
	v = find_key(&envelope->root, "sentAt");
	if (v != NULL && v->type == jbvString)
		env->has_sent_at = ek_parse_iso8601(v->val.string.val, v->val.string.len,
											&env->sent_at);
	v = find_key(&envelope->root, "context");
	if (v != NULL && v->type == jbvBinary)
		env->context = *v;
}

/*
 * Re-run quarantined events of a stream (all of them, or those whose ids
 * are in the int8[] ids) through the normal path, with the plan in force
 * now: those stored (or found to be duplicates or conflicts of stored
 * events) leave quarantine, the others stay with updated reasons.  Events
 * are replayed in groups of their original batch, with that batch's
 * receipt time and envelope.  Runs as the current user, who needs INSERT
 * on the stream, as for ingest, and its ownership; the redrive job (jobs.c) calls it as the
 * stream's owner.  Adds the outcome to counts[5] (accepted, duplicates,
 * conflicts, quarantined, rejected).
 */
void
ek_replay_quarantine(Oid relid, Datum ids, bool ids_null, int64 *counts)
{
	MemoryContext cxt;
	MemoryContext old;
	QuarantinedEvent *rows;
	int			n;

	lock_stream_for_insert(relid);
	/* the quarantine holds other roles' events: the stream's owner decides */
	if (!ek_owns_relation(relid))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
	ek_apply_memory_retention();

	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit replay",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	rows = read_quarantine(relid, ids, ids_null, &n);
	for (int start = 0; start < n;)
	{
		IngestBatch b;
		int			end = start;

		memset(&b, 0, sizeof(b));
		envelope_defaults(rows[start].envelope, &b.env);
		while (end < n && rows[end].batch_id == rows[start].batch_id &&
			   end - start < ek_max_batch_items)
			end++;
		b.quarantine_ids = palloc(sizeof(int64) * (end - start));
		for (int i = start; i < end; i++)
		{
			Jsonb	   *jb = rows[i].payload;
			JsonbValue	v;

			if (JB_ROOT_IS_SCALAR(jb))
				(void) JsonbExtractScalar(&jb->root, &v);
			else
			{
				v.type = jbvBinary;
				v.val.binary.data = &jb->root;
				v.val.binary.len = VARSIZE_ANY_EXHDR(jb);
			}
			b.quarantine_ids[i - start] = rows[i].quarantine_id;
			add_value_item(&b, &v, VARSIZE_ANY_EXHDR(jb));
		}
		ingest_batch(relid, NULL, &b, rows[start].received_at);
		for (int s = 0; s < 5; s++)
			counts[s] += b.counts[s];
		start = end;
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/*
 * eventkit.replay_quarantine(stream regclass, ids bigint[] DEFAULT NULL):
 * the SQL face of ek_replay_quarantine().
 */
Datum
eventkit_replay_quarantine(PG_FUNCTION_ARGS)
{
	IngestBatch total;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream must not be null"),
				 errhint("Pass the stream table, such as 'events'.")));
	memset(&total, 0, sizeof(total));
	ek_replay_quarantine(PG_GETARG_OID(0), PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
						 PG_ARGISNULL(1), total.counts);
	PG_RETURN_DATUM(ingest_result_datum(fcinfo, &total));
}

/* ---------------------------------------------------------------------
 * Several payloads in one call (intake workers)
 * ---------------------------------------------------------------------
 */

/*
 * An item that cannot be collected at all (not text, over the limits, a
 * bad batch envelope): one quarantined item holding its raw bytes, as
 * text when they are text, else as "\x" and hex; at most
 * eventkit.max_event_bytes of them (the whole payload stays where it came
 * from, which the origin names).
 */
static void
add_unusable_item(IngestBatch *b, const IngestItem *item, const char *reason,
				  const char *msg)
{
	SegmentEvent *ev = new_item(b);
	bool		is_text = memchr(item->data, '\0', item->len) == NULL &&
		pg_verifymbstr(item->data, item->len, true);
	int			max_event_bytes = b->max_event_bytes > 0 ? b->max_event_bytes : ek_max_event_bytes;
	int			kept;

	ev->size = item->len;
	if (is_text)
	{
		kept = pg_mbcliplen(item->data, item->len, max_event_bytes);
		ev->raw = pnstrdup(item->data, kept);
	}
	else
	{
		StringInfoData buf;

		kept = Min(item->len, max_event_bytes / 2);
		initStringInfo(&buf);
		appendStringInfoString(&buf, "\\x");
		for (int i = 0; i < kept; i++)
			appendStringInfo(&buf, "%02x", (unsigned char) item->data[i]);
		ev->raw = buf.data;
	}
	if (kept < item->len)
		ek_add_problem(ev, reason, "%s (the first %d of its %d bytes are kept)",
					   msg, kept, item->len);
	else
		ek_add_problem(ev, reason, "%s", msg);
}

/* An empty batch with the stream and limits of proto (see init_batch). */
static void
reset_batch(IngestBatch *b, const IngestBatch *proto)
{
	init_batch_for(b, proto->relid, proto->max_event_bytes,
				   proto->max_batch_bytes, proto->max_batch_items);
}

/* One item's events into a batch of its own. */
static void
collect_item(IngestBatch *part, const IngestBatch *proto, const IngestItem *item)
{
	reset_batch(part, proto);
	part->origin = item->origin;
	if (memchr(item->data, '\0', item->len) != NULL)
		add_unusable_item(part, item, "malformed_json", "the payload contains a NUL byte");
	else if (!pg_verifymbstr(item->data, item->len, true))
		add_unusable_item(part, item, "malformed_json",
						  psprintf("the payload is not valid %s", GetDatabaseEncodingName()));
	else
	{
		check_batch_size(part, item->len);
		collect_cstring_items(part, pnstrdup(item->data, item->len), item->len);
	}
}

typedef struct ItemRange
{
	const IngestBatch *proto;
	const IngestItem *items;
	IngestBatch *parts;
	int			from;
	int			to;
} ItemRange;

static void
collect_item_range(void *arg)
{
	ItemRange  *r = (ItemRange *) arg;

	for (int i = r->from; i < r->to; i++)
	{
		CHECK_FOR_INTERRUPTS();
		collect_item(&r->parts[i], r->proto, &r->items[i]);
	}
}

/* Errors that are not the payload's fault end the call. */
static void
rethrow_unless_payload_error(ErrorData *edata)
{
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
		edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
		ReThrowError(edata);
}

static void
ingest_part(const StreamInfo *stream, IngestBatch *b, TimestampTz received_at,
			IngestCounts *out)
{
	ingest_batch(stream->relid, stream, b, received_at);
	out->accepted += b->counts[ITEM_ACCEPTED];
	out->duplicates += b->counts[ITEM_DUPLICATE];
	out->conflicts += b->counts[ITEM_CONFLICT];
	out->quarantined += b->counts[ITEM_QUARANTINED];
	out->rejected += b->counts[ITEM_REJECTED];
}

/*
 * Ingest several payloads into a stream as the current user, in the
 * caller's transaction, as eventkit.ingest(stream, text) would ingest each
 * of them in turn: the caller needs INSERT on the stream; events are
 * stored, found duplicates or conflicts, quarantined or rejected; the
 * events of an item are quarantined with its origin.  The events of
 * consecutive items are ingested together, in batches within
 * eventkit.max_batch_items and max_batch_bytes (an item with a batch
 * envelope is a batch of its own).  A payload that eventkit.ingest would
 * refuse with an error (over the limits, not text, a bad envelope) is one
 * quarantined item here, so that one bad payload never holds back the
 * others.  items[i].nevents is set.  Must not be called while connected
 * to SPI.
 */
void
ek_ingest_text_items(Oid relid, IngestItem *items, int nitems,
					 TimestampTz received_at, IngestCounts *out)
{
	MemoryContext cxt;
	MemoryContext old;
	StreamInfo	stream;
	IngestBatch proto;
	IngestBatch *parts;
	IngestBatch cur;
	int64		cur_bytes = 0;
	int			max_items;
	int			max_bytes;
	ItemRange	all;
	ErrorData  *edata;

	memset(out, 0, sizeof(IngestCounts));
	ek_apply_memory_retention();
	lock_stream_for_insert(relid);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventkit ingest items",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	init_batch(&proto, relid, &stream);
	max_items = proto.max_batch_items > 0 ? proto.max_batch_items : ek_max_batch_items;
	max_bytes = proto.max_batch_bytes > 0 ? proto.max_batch_bytes : ek_max_batch_bytes;

	/* collecting has no side effects: all at once, or one by one on error */
	parts = palloc0(sizeof(IngestBatch) * Max(nitems, 1));
	all.proto = &proto;
	all.items = items;
	all.parts = parts;
	all.from = 0;
	all.to = nitems;
	edata = ek_run_in_subtransaction(collect_item_range, &all);
	if (edata != NULL)
	{
		rethrow_unless_payload_error(edata);
		for (int i = 0; i < nitems; i++)
		{
			ItemRange	one = {&proto, items, parts, i, i + 1};

			edata = ek_run_in_subtransaction(collect_item_range, &one);
			if (edata == NULL)
				continue;
			rethrow_unless_payload_error(edata);
			reset_batch(&parts[i], &proto);
			parts[i].origin = items[i].origin;
			add_unusable_item(&parts[i], &items[i], "unusable_payload", edata->message);
		}
	}

	reset_batch(&cur, &proto);
	for (int i = 0; i < nitems; i++)
	{
		IngestBatch *p = &parts[i];
		bool		envelope = p->env.has_sent_at || p->env.context.type == jbvBinary;

		items[i].nevents = p->nevents;
		if (p->nevents == 0)
			continue;
		if (cur.nevents > 0 &&
			(envelope || cur.nevents + p->nevents > max_items ||
			 cur_bytes + items[i].len > max_bytes))
		{
			ingest_part(&stream, &cur, received_at, out);
			reset_batch(&cur, &proto);
			cur_bytes = 0;
		}
		if (envelope)
		{
			ingest_part(&stream, p, received_at, out);
			continue;
		}
		for (int e = 0; e < p->nevents; e++)
		{
			SegmentEvent *ev = new_item(&cur);
			int32		item = ev->item;

			*ev = p->events[e];
			ev->item = item;
		}
		cur_bytes += items[i].len;
	}
	if (cur.nevents > 0)
		ingest_part(&stream, &cur, received_at, out);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
