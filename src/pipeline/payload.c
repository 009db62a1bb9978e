/*-------------------------------------------------------------------------
 *
 * payload.c
 *	  Collecting the items of one payload into a batch of events: one
 *	  event, an array of events, a Segment batch envelope ({"batch": [...],
 *	  "sentAt", "context"}), or NDJSON text (one event per line), within
 *	  the stream's limits (its own, or the settings'); text goes through
 *	  the fast JSON parser (json_parse.c), whose tree the events are
 *	  collected from (their columns are serialized from it, not the whole
 *	  payload: pipeline/event.c), or, when it declines, jsonb_in, and a
 *	  line that does not parse becomes a malformed_json item (an
 *	  intake worker's payload that cannot be read at all becomes one item
 *	  too, holding its bytes).  Also
 *	  the envelope's defaults kept with quarantined events, as they are
 *	  stored and read back, and what a quarantined item is stored once
 *	  under.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "pipeline/json_parse.h"
#include "pipeline/payload.h"
#include "util/guc.h"
#include "util/jsonb_raw.h"
#include "util/spi.h"

/* An empty batch with the stream and limits of proto. */
void
ek_payload_init_like(EventBatch *b, const EventBatch *proto)
{
	memset(b, 0, sizeof(EventBatch));
	b->env.context.type = jbvNull;
	b->relid = proto->relid;
	b->max_event_bytes = proto->max_event_bytes;
	b->max_batch_bytes = proto->max_batch_bytes;
	b->max_batch_items = proto->max_batch_items;
}

/* Initialize b for a payload of stream (its relid and own limits). */
void
ek_payload_init(EventBatch *b, const StreamInfo *stream)
{
	memset(b, 0, sizeof(EventBatch));
	b->env.context.type = jbvNull;
	if (stream != NULL)
	{
		b->relid = stream->relid;
		b->max_event_bytes = stream->max_event_bytes;
		b->max_batch_bytes = stream->max_batch_bytes;
		b->max_batch_items = stream->max_batch_items;
	}
}

/*
 * The limits of a call: the stream's own values where it has them, else
 * the settings (superuser-only, see util/guc.c).
 */
static void
limit_exceeded(const EventBatch *b, bool own, const char *name, int limit,
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
new_item(EventBatch *b)
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
check_event_size(const EventBatch *b, int32 size, int item)
{
	int			limit = b->max_event_bytes > 0 ? b->max_event_bytes : ek_max_event_bytes;

	if (size > limit && !b->replay)
		limit_exceeded(b, b->max_event_bytes > 0, "max_event_bytes", limit,
					   psprintf(_("event %d is %d bytes, more than the limit of %d bytes"),
								item, size, limit),
					   _("Send smaller events"));
}

SegmentEvent *
ek_payload_add_value(EventBatch *b, const JsonbValue *v, int32 size)
{
	SegmentEvent *ev = new_item(b);

	ev->source = *v;
	ev->size = size;
	check_event_size(b, size, ev->item);
	return ev;
}

void
ek_payload_check_size(const EventBatch *b, int64 size)
{
	int			limit = b->max_batch_bytes > 0 ? b->max_batch_bytes : ek_max_batch_bytes;

	if (size > limit)
		limit_exceeded(b, b->max_batch_bytes > 0, "max_batch_bytes", limit,
					   psprintf(_("payload is %lld bytes, more than the limit of %d bytes"),
								(long long) size, limit),
					   _("Split the payload into smaller batches"));
}

/*
 * Items of a JSON array container, read from its JEntries
 * (util/jsonb_raw.h) as JsonbIteratorNext (skipping nested containers)
 * returns them: a container as jbvBinary, its length without the
 * alignment padding before it.
 */
static void
add_array_items(EventBatch *b, JsonbContainer *array)
{
	uint32		n = JsonContainerSize(array);
	const char *base = ek_jsonb_base(array);
	uint32		offset = 0;

	Assert(JsonContainerIsArray(array));
	for (uint32 i = 0; i < n; i++)
	{
		EkJsonbChild child;
		uint32		start = offset;
		JsonbValue	v;

		CHECK_FOR_INTERRUPTS();
		ek_jsonb_child(array, base, i, &offset, &child);
		if (JBE_ISCONTAINER(child.entry))
		{
			v.type = jbvBinary;
			v.val.binary.data = (JsonbContainer *) child.data;
			v.val.binary.len = offset - INTALIGN(start);
			ek_payload_add_value(b, &v, v.val.binary.len);
		}
		else
		{
			ek_jsonb_child_scalar(&child, &v);
			ek_payload_add_value(b, &v, 16);
		}
	}
}

static JsonbValue *
find_key(JsonbContainer *c, const char *key)
{
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

/*
 * The envelope's checks, the same for a jsonb payload and a parsed text's
 * tree: "batch" that is not an array, "sentAt" (stored in b->env when it
 * is a timestamp), "context" that is neither an object nor null.
 */
static void envelope_batch_not_array(void) pg_attribute_noreturn();
static void envelope_context_not_object(void) pg_attribute_noreturn();

static void
envelope_batch_not_array(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"batch\" in a batch envelope must be an array of events"),
			 errhint("Send {\"batch\": [event, ...]} or an array of events.")));
}

static void
envelope_sent_at(EventBatch *b, const JsonbValue *sent_at)
{
	if (sent_at == NULL || sent_at->type == jbvNull)
		return;
	if (sent_at->type != jbvString ||
		!ek_parse_iso8601(sent_at->val.string.val, sent_at->val.string.len,
						  &b->env.sent_at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("\"sentAt\" of the batch envelope is not an ISO 8601 timestamp"),
				 errhint("Use a timestamp such as \"2024-01-31T12:00:00.000Z\", or leave sentAt out.")));
	b->env.has_sent_at = true;
}

static void
envelope_context_not_object(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"context\" of the batch envelope must be an object"),
			 errhint("Send the context as a JSON object, or leave it out.")));
}

/*
 * One event, an array of events, or {"batch": [...], "sentAt", "context"}.
 */
void
ek_payload_jsonb(EventBatch *b, Jsonb *jb)
{
	JsonbValue *batch;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbValue	v;

		(void) JsonbExtractScalar(&jb->root, &v);
		ek_payload_add_value(b, &v, VARSIZE_ANY_EXHDR(jb));
	}
	else if (JB_ROOT_IS_ARRAY(jb))
		add_array_items(b, &jb->root);
	else if ((batch = find_key(&jb->root, "batch")) != NULL)
	{
		JsonbValue *sent_at = find_key(&jb->root, "sentAt");
		JsonbValue *context = find_key(&jb->root, "context");

		if (batch->type != jbvBinary || !JsonContainerIsArray(batch->val.binary.data))
			envelope_batch_not_array();
		envelope_sent_at(b, sent_at);
		if (context != NULL && context->type == jbvBinary &&
			JsonContainerIsObject(context->val.binary.data))
			b->env.context = *context;
		else if (context != NULL && context->type != jbvNull)
			envelope_context_not_object();
		add_array_items(b, batch->val.binary.data);
	}
	else
	{
		JsonbValue	v;

		v.type = jbvBinary;
		v.val.binary.data = &jb->root;
		v.val.binary.len = VARSIZE_ANY_EXHDR(jb);
		ek_payload_add_value(b, &v, v.val.binary.len);
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
 * JSON text as the fast parser's tree (json_parse.h: true, *tree set), or
 * as jsonb_in's jsonb when the parser declines (false, and the jsonb, or
 * NULL with what is wrong in *errmsg_out).
 */
static bool
parse_json_text(const char *str, int len, JsonbValue *tree, Jsonb **jb_out,
				char **errmsg_out)
{
	Jsonb	   *jb;

	if (ek_json_parse(str, len, tree))
		return true;
	jb = try_parse_json(str, errmsg_out);
	*jb_out = jb;
	if (jb != NULL && ek_testing_json_crosscheck)
		ereport(NOTICE,
				(errmsg("the fast JSON parser declined a text jsonb_in accepts"),
				 errdetail("%s", pnstrdup(str, Min(len, 200)))));
	return false;
}

/* The value of key in an object of a parsed tree (pairs sorted, unique). */
static const JsonbValue *
tree_find_key(const JsonbValue *obj, const char *key)
{
	int			len = strlen(key);

	for (int i = 0; i < obj->val.object.nPairs; i++)
	{
		const JsonbPair *pair = &obj->val.object.pairs[i];

		if (pair->key.val.string.len == len &&
			memcmp(pair->key.val.string.val, key, len) == 0)
			return &pair->value;
	}
	return NULL;
}

/*
 * Elements of an array of a parsed tree, as add_array_items collects them
 * from its jsonb: a container's size is its jsonb's length.
 */
static void
add_tree_items(EventBatch *b, const JsonbValue *array)
{
	for (int i = 0; i < array->val.array.nElems; i++)
	{
		const JsonbValue *v = &array->val.array.elems[i];

		CHECK_FOR_INTERRUPTS();
		if (v->type == jbvObject || v->type == jbvArray)
			ek_payload_add_value(b, v, ek_json_tree_len(v));
		else
			ek_payload_add_value(b, v, 16);
	}
}

/*
 * The items of a parsed text, as ek_payload_jsonb collects them from the
 * same text's jsonb (the same items, sizes, envelope and errors), without
 * serializing the whole payload: the events' values stay in the tree.
 */
static void
payload_tree(EventBatch *b, const JsonbValue *root)
{
	const JsonbValue *batch;

	if (root->type == jbvArray)
		add_tree_items(b, root);
	else if (root->type != jbvObject)
		ek_payload_jsonb(b, ek_json_tree_jsonb(root));	/* a scalar */
	else if ((batch = tree_find_key(root, "batch")) != NULL)
	{
		const JsonbValue *sent_at = tree_find_key(root, "sentAt");
		const JsonbValue *context = tree_find_key(root, "context");

		if (batch->type != jbvArray)
			envelope_batch_not_array();
		envelope_sent_at(b, sent_at);
		if (context != NULL && context->type == jbvObject)
		{
			/* as jsonb: it is merged into each event's (event.c) */
			Jsonb	   *jb = ek_json_tree_jsonb(context);

			b->env.context.type = jbvBinary;
			b->env.context.val.binary.data = &jb->root;
			b->env.context.val.binary.len = VARSIZE_ANY_EXHDR(jb);
		}
		else if (context != NULL && context->type != jbvNull)
			envelope_context_not_object();
		add_tree_items(b, batch);
	}
	else
		ek_payload_add_value(b, root, ek_json_tree_len(root));
}

static void
add_malformed_item(EventBatch *b, const char *raw, int len, const char *msg)
{
	SegmentEvent *ev = new_item(b);

	ev->size = len;
	check_event_size(b, len, ev->item);
	ev->raw = pnstrdup(raw, len);
	ek_add_problem(&ev->problems, EK_REASON_MALFORMED_JSON, "%s", msg);
}

/*
 * JSON text that the fast parser reads (len bytes at data, not
 * NUL-terminated: a text datum's): its items collected, true; else false,
 * nothing done (ek_payload_text then, on a NUL-terminated copy: NDJSON,
 * malformed JSON, what jsonb_in must read).  The events' strings point
 * into data.
 */
bool
ek_payload_text_direct(EventBatch *b, const char *data, int len)
{
	JsonbValue	tree;

	if (!ek_json_parse(data, len, &tree))
		return false;
	payload_tree(b, &tree);
	return true;
}

/*
 * JSON text (one event, array, envelope) or NDJSON: one event per line.
 * A line that does not parse becomes a quarantined item.  str is
 * NUL-terminated, len bytes long.
 */
void
ek_payload_text(EventBatch *b, char *str, int len)
{
	const char *p = str;
	char	   *err = NULL;
	Jsonb	   *jb = NULL;
	JsonbValue	tree;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload is empty"),
				 errhint("Send a JSON event, an array of events, a batch envelope or NDJSON.")));

	if (parse_json_text(str, len, &tree, &jb, &err))
	{
		payload_tree(b, &tree);
		return;
	}
	if (jb != NULL)
	{
		ek_payload_jsonb(b, jb);
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
			jb = NULL;
			if (parse_json_text(line, linelen, &tree, &jb, &err))
				ek_payload_add_value(b, &tree, linelen);	/* a scalar too */
			else if (jb == NULL)
				add_malformed_item(b, line, linelen, err);
			else if (JB_ROOT_IS_SCALAR(jb))
			{
				JsonbValue	v;

				(void) JsonbExtractScalar(&jb->root, &v);
				ek_payload_add_value(b, &v, linelen);
			}
			else
			{
				JsonbValue	v;

				v.type = jbvBinary;
				v.val.binary.data = &jb->root;
				v.val.binary.len = VARSIZE_ANY_EXHDR(jb);
				ek_payload_add_value(b, &v, linelen);
			}
		}
		p = eol ? eol + 1 : p + linelen;
	}
}

/* The item as jsonb (NULL: it did not parse). */
Jsonb *
ek_payload_item_jsonb(SegmentEvent *ev)
{
	return ek_event_jsonb(ev);
}

/*
 * What the batch envelope lent its events ({"sentAt", "context"}), kept
 * with quarantined events so that a replay sees them as they came; NULL
 * when there was no envelope default.
 */
Jsonb *
ek_envelope_jsonb(const EnvelopeDefaults *env)
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
int64
ek_payload_fingerprint(SegmentEvent *ev)
{
	Jsonb	   *payload;

	if (ev->message_id != NULL)
		return ev->fingerprint;
	if (ev->raw != NULL)
		return DatumGetInt64(hash_any_extended((const unsigned char *) ev->raw,
											   strlen(ev->raw), 0));
	payload = ek_payload_item_jsonb(ev);
	return DatumGetInt64(hash_any_extended((const unsigned char *) VARDATA(payload),
										   VARSIZE(payload) - VARHDRSZ, 0));
}

/* What the envelope kept with a quarantined event lends it again. */
void
ek_envelope_read(Jsonb *envelope, EnvelopeDefaults *env)
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

/* An event collected elsewhere (another batch) as the next item of b. */
SegmentEvent *
ek_payload_add_event(EventBatch *b, const SegmentEvent *src)
{
	SegmentEvent *ev = new_item(b);
	int32		item = ev->item;

	*ev = *src;
	ev->item = item;
	return ev;
}

/*
 * An item that cannot be collected at all (not text, over the limits, a
 * bad batch envelope): one quarantined item holding its raw bytes, as
 * text when they are text, else as "\x" and hex; at most the stream's
 * max_event_bytes of them (the whole payload stays where it came from,
 * which the origin names).
 */
void
ek_payload_unusable(EventBatch *b, const char *data, int len, EkReason reason,
					const char *msg)
{
	SegmentEvent *ev = new_item(b);
	bool		is_text = memchr(data, '\0', len) == NULL &&
		pg_verifymbstr(data, len, true);
	int			max_event_bytes = b->max_event_bytes > 0 ? b->max_event_bytes : ek_max_event_bytes;
	int			kept;

	ev->size = len;
	if (is_text)
	{
		kept = pg_mbcliplen(data, len, max_event_bytes);
		ev->raw = pnstrdup(data, kept);
	}
	else
	{
		StringInfoData buf;

		kept = Min(len, max_event_bytes / 2);
		initStringInfo(&buf);
		appendStringInfoString(&buf, "\\x");
		for (int i = 0; i < kept; i++)
			appendStringInfo(&buf, "%02x", (unsigned char) data[i]);
		ev->raw = buf.data;
	}
	if (kept < len)
		ek_add_problem(&ev->problems, reason, "%s (the first %d of its %d bytes are kept)",
					   msg, kept, len);
	else
		ek_add_problem(&ev->problems, reason, "%s", msg);
}

/*
 * One intake item's events (len bytes of any kind at data): as JSON text
 * within the limits, or one malformed_json item when it has a NUL byte or
 * is not in the database's encoding.
 */
void
ek_payload_item(EventBatch *b, const char *data, int len)
{
	if (memchr(data, '\0', len) != NULL)
		ek_payload_unusable(b, data, len, EK_REASON_MALFORMED_JSON,
							"the payload contains a NUL byte");
	else if (!pg_verifymbstr(data, len, true))
		ek_payload_unusable(b, data, len, EK_REASON_MALFORMED_JSON,
							psprintf("the payload is not valid %s", GetDatabaseEncodingName()));
	else
	{
		ek_payload_check_size(b, len);
		ek_payload_text(b, pnstrdup(data, len), len);
	}
}
