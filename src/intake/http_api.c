/*-------------------------------------------------------------------------
 *
 * http_api.c
 *	  The HTTP intake's requests: Segment's tracking API (POST /v1/batch,
 *	  /v1/import, /v1/track, /v1/identify, /v1/page, /v1/screen,
 *	  /v1/group, /v1/alias, and the short forms analytics.js uses: /v1/b,
 *	  /v1/t, /v1/i, /v1/p, /v1/s, /v1/g, /v1/a), GET /health and CORS
 *	  preflights, as callbacks of libmicrohttpd run by the listener's loop
 *	  (http.c).
 *
 *	  A request's body is gathered in malloc'd memory, never more than
 *	  eventkit.max_batch_bytes (a Content-Length over it is refused before
 *	  the body is read, a body that grows over it is discarded as it
 *	  arrives), and inflated (Content-Encoding gzip or deflate) into at most
 *	  that much.  When it is complete, one transaction: the write key
 *	  (HTTP Basic user name, or "writeKey" in the body) is looked up
 *	  (write_keys.c), the body is parsed and checked to be a Segment
 *	  payload, "writeKey" is taken out of what is stored, the type of a
 *	  single-event call is set from its path, and the payload is ingested
 *	  as the key's role (SECURITY_RESTRICTED_OPERATION: its session is the
 *	  bootstrap superuser's) by ek_ingest_jsonb_payload() (ingest/ingest.c).  The
 *	  answer is queued only after the commit returned:
 *
 *		200 {"success": true}: committed (events accepted, duplicates,
 *			quarantined alike)
 *		400 the body is not JSON, not a Segment payload, bad data
 *		401 no key, unknown or revoked key
 *		403 the key's role may not insert into its stream (any more), or
 *			the role or the stream is gone
 *		404, 405, 415: unknown path, wrong method, unknown encoding
 *		413 over eventkit.max_batch_bytes, max_event_bytes, max_batch_items
 *		503 anything else: the database failed, the SDK should retry (dedup
 *			makes that safe)
 *
 *	  Every PostgreSQL call of a request runs under PG_TRY in the callback
 *	  that finishes it: an error aborts the transaction and becomes the
 *	  answer, never an exit of the listener.  Secrets (keys) are never
 *	  logged: errors name a key by its prefix.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>
#include <zlib.h>

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "pipeline/json_parse.h"
#include "util/guc.h"
#include "ingest/ingest.h"
#include "intake/http_api.h"
#include "intake/http_settings.h"
#include "intake/write_keys.h"

/* a body that grows past the limit is read (and dropped) up to this much */
#define EK_DISCARD_FACTOR	8
/* last_used_at is written at most this often per key */
#define EK_TOUCH_INTERVAL_US	(60 * USECS_PER_SEC)

typedef enum RouteKind
{
	ROUTE_BATCH,				/* {"batch": [...], ...} */
	ROUTE_EVENT,				/* one event; its type from the path */
	ROUTE_HEALTH
} RouteKind;

typedef struct Route
{
	const char *path;
	RouteKind	kind;
	const char *type;			/* ROUTE_EVENT: the event type */
	const char *activity;		/* what pg_stat_activity shows */
} Route;

static const Route routes[] = {
	{"/v1/batch", ROUTE_BATCH, NULL, "POST /v1/batch"},
	{"/v1/import", ROUTE_BATCH, NULL, "POST /v1/import"},
	{"/v1/track", ROUTE_EVENT, "track", "POST /v1/track"},
	{"/v1/identify", ROUTE_EVENT, "identify", "POST /v1/identify"},
	{"/v1/page", ROUTE_EVENT, "page", "POST /v1/page"},
	{"/v1/screen", ROUTE_EVENT, "screen", "POST /v1/screen"},
	{"/v1/group", ROUTE_EVENT, "group", "POST /v1/group"},
	{"/v1/alias", ROUTE_EVENT, "alias", "POST /v1/alias"},
	/* analytics.js (browsers) posts to the short forms */
	{"/v1/b", ROUTE_BATCH, NULL, "POST /v1/b"},
	{"/v1/t", ROUTE_EVENT, "track", "POST /v1/t"},
	{"/v1/i", ROUTE_EVENT, "identify", "POST /v1/i"},
	{"/v1/p", ROUTE_EVENT, "page", "POST /v1/p"},
	{"/v1/s", ROUTE_EVENT, "screen", "POST /v1/s"},
	{"/v1/g", ROUTE_EVENT, "group", "POST /v1/g"},
	{"/v1/a", ROUTE_EVENT, "alias", "POST /v1/a"},
	{"/health", ROUTE_HEALTH, NULL, "GET /health"},
};

typedef enum BodyEncoding
{
	BODY_IDENTITY,
	BODY_GZIP,
	BODY_DEFLATE
} BodyEncoding;

/* One request, from its headers to its completion (malloc'd). */
typedef struct HttpRequest
{
	const Route *route;
	BodyEncoding encoding;
	char	   *body;			/* malloc'd */
	size_t		len;
	size_t		cap;
	size_t		limit;			/* most body bytes kept */
	size_t		discarded;		/* bytes dropped past the limit */
	bool		too_large;
	bool		out_of_memory;
	TimestampTz started;
} HttpRequest;

/* What to answer. */
typedef struct HttpAnswer
{
	unsigned int status;
	const char *code;			/* NULL: {"success": true} */
	const char *message;
	const char *allow;			/* 405: the methods allowed */
} HttpAnswer;

/* per-request allocations of PostgreSQL code, reset after each answer */
static MemoryContext request_cxt = NULL;

void
ek_http_api_init(void)
{
	request_cxt = AllocSetContextCreate(TopMemoryContext, "eventkit http request",
										ALLOCSET_DEFAULT_SIZES);
}

static void
set_answer(HttpAnswer *ans, unsigned int status, const char *code,
		   const char *message)
{
	ans->status = status;
	ans->code = code;
	ans->message = message;
	ans->allow = NULL;
}

/* ---------------------------------------------------------------------
 * Answers
 * ---------------------------------------------------------------------
 */

/* Is the request's Origin one of eventkit.http_cors_origins? */
static const char *
allowed_origin(struct MHD_Connection *conn)
{
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	const char *p = ek_http_cors_origins;
	size_t		olen;

	if (origin == NULL || p == NULL || *p == '\0')
		return NULL;
	olen = strlen(origin);
	while (*p)
	{
		const char *start;
		const char *end;

		while (*p == ' ' || *p == ',')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && end[-1] == ' ')
			end--;
		if (end - start == 1 && *start == '*')
			return "*";
		if ((size_t) (end - start) == olen && strncmp(start, origin, olen) == 0)
			return origin;
	}
	return NULL;
}

/* Append s to buf as a JSON string's contents (no allocation). */
static size_t
json_escape_into(char *buf, size_t size, size_t pos, const char *s)
{
	for (; *s && pos + 8 < size; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
		{
			buf[pos++] = '\\';
			buf[pos++] = c;
		}
		else if (c < 0x20)
			pos += snprintf(buf + pos, size - pos, "\\u%04x", c);
		else
			buf[pos++] = c;
	}
	buf[pos] = '\0';
	return pos;
}

/*
 * Queue the answer.  Plain C and libmicrohttpd only: also used where no
 * PostgreSQL call may fail.
 */
static enum MHD_Result
respond(struct MHD_Connection *conn, const HttpAnswer *ans)
{
	char		body[1024];
	size_t		len;
	struct MHD_Response *response;
	const char *origin;
	enum MHD_Result result;

	if (ans->code == NULL)
		len = strlcpy(body, ans->status == 204 ? "" : "{\"success\": true}", sizeof(body));
	else
	{
		len = snprintf(body, sizeof(body), "{\"success\": false, \"code\": \"%s\", \"message\": \"",
					   ans->code);
		len = json_escape_into(body, sizeof(body) - 3, len, ans->message ? ans->message : "");
		len += snprintf(body + len, sizeof(body) - len, "\"}");
	}
	response = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
	if (response == NULL)
		return MHD_NO;
	if (len > 0)
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (ans->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
								"Basic realm=\"eventkit\"");
	if (ans->allow)
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, ans->allow);
	if ((origin = allowed_origin(conn)) != NULL)
	{
		MHD_add_response_header(response, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, origin);
		MHD_add_response_header(response, MHD_HTTP_HEADER_VARY, "Origin");
		if (ans->status == 204)
		{
			MHD_add_response_header(response, "Access-Control-Allow-Methods", "POST, GET, OPTIONS");
			MHD_add_response_header(response, "Access-Control-Allow-Headers",
									"Content-Type, Authorization, Content-Encoding");
			MHD_add_response_header(response, "Access-Control-Max-Age", "86400");
		}
	}
	result = MHD_queue_response(conn, ans->status, response);
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result
respond_with(struct MHD_Connection *conn, unsigned int status, const char *code,
			 const char *message)
{
	HttpAnswer	ans;

	set_answer(&ans, status, code, message);
	return respond(conn, &ans);
}

/*
 * An error thrown while handling a request, as an answer.  Client errors
 * are logged at DEBUG1 (a client can send many); server ones at LOG.
 */
static void
error_answer(ErrorData *edata, const WriteKeyInfo *key, HttpAnswer *ans)
{
	int			code = edata->sqlerrcode;
	char	   *message = edata->detail ?
		psprintf("%s: %s", edata->message, edata->detail) : pstrdup(edata->message);

	if (code == ERRCODE_PROGRAM_LIMIT_EXCEEDED)
		set_answer(ans, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", message);
	else if (code == ERRCODE_INSUFFICIENT_PRIVILEGE)
		set_answer(ans, MHD_HTTP_FORBIDDEN, "forbidden", message);
	else if (code == ERRCODE_UNDEFINED_TABLE || code == ERRCODE_UNDEFINED_OBJECT)
		set_answer(ans, MHD_HTTP_FORBIDDEN, "forbidden",
				   psprintf("the stream of this write key is gone: %s", message));
	else if (ERRCODE_TO_CATEGORY(code) == ERRCODE_DATA_EXCEPTION ||
			 code == ERRCODE_STATEMENT_TOO_COMPLEX)
		set_answer(ans, MHD_HTTP_BAD_REQUEST, "invalid_payload", message);
	else
		set_answer(ans, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", message);

	ereport(ans->status == MHD_HTTP_SERVICE_UNAVAILABLE ? LOG : DEBUG1,
			(errcode(code),
			 errmsg("eventkit http: request with write key %s answered %u: %s",
					key->prefix[0] ? key->prefix : "(none)", ans->status, message)));
}

/* ---------------------------------------------------------------------
 * The body
 * ---------------------------------------------------------------------
 */

/* Keep a part of the body, or drop it past the limit.  No PostgreSQL calls. */
static enum MHD_Result
receive_body(HttpRequest *req, const char *data, size_t size)
{
	if (GetCurrentTimestamp() - req->started > (int64) ek_http_timeout * USECS_PER_SEC)
		return MHD_NO;			/* too slow: close the connection */
	if (req->too_large || req->out_of_memory)
	{
		req->discarded += size;
		/* a client that keeps sending past the limit is cut off */
		return req->discarded > EK_DISCARD_FACTOR * req->limit ? MHD_NO : MHD_YES;
	}
	if (size > req->limit - req->len)
	{
		req->too_large = true;
		req->discarded = req->len + size;
		free(req->body);
		req->body = NULL;
		return MHD_YES;
	}
	if (req->len + size > req->cap)
	{
		size_t		cap = Max(req->cap * 2, 16384);
		char	   *body;

		while (cap < req->len + size)
			cap *= 2;
		cap = Min(cap, req->limit);
		body = realloc(req->body, cap);
		if (body == NULL)
		{
			req->out_of_memory = true;
			free(req->body);
			req->body = NULL;
			return MHD_YES;
		}
		req->body = body;
		req->cap = cap;
	}
	memcpy(req->body + req->len, data, size);
	req->len += size;
	return MHD_YES;
}

/*
 * Inflate a gzip (or zlib, "deflate") body into at most limit bytes.  0 and
 * the result in *out (malloc'd), or the status to answer.
 */
static unsigned int
inflate_body(const HttpRequest *req, size_t limit, char **out, size_t *outlen)
{
	z_stream	zs;
	char	   *buf;
	size_t		cap = limit + 1;	/* one more: to see that it is over */
	int			rc;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, req->encoding == BODY_GZIP ? 16 + MAX_WBITS : MAX_WBITS) != Z_OK)
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	buf = malloc(cap);
	if (buf == NULL)
	{
		inflateEnd(&zs);
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	}
	zs.next_in = (Bytef *) req->body;
	zs.avail_in = req->len;
	zs.next_out = (Bytef *) buf;
	zs.avail_out = cap;
	for (;;)
	{
		rc = inflate(&zs, Z_NO_FLUSH);
		if (rc == Z_STREAM_END && zs.avail_in > 0 && zs.avail_out > 0)
		{
			/* concatenated gzip members */
			if (inflateReset(&zs) != Z_OK)
				break;
			continue;
		}
		if (rc == Z_STREAM_END)
			break;
		if (zs.avail_out == 0)
		{
			rc = Z_BUF_ERROR;
			break;
		}
		if (rc != Z_OK || zs.avail_in == 0)
			break;
	}
	inflateEnd(&zs);
	if (zs.avail_out == 0)
	{
		free(buf);
		return MHD_HTTP_CONTENT_TOO_LARGE;
	}
	if (rc != Z_STREAM_END)
	{
		free(buf);
		return rc == Z_MEM_ERROR ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_BAD_REQUEST;
	}
	*out = buf;
	*outlen = cap - zs.avail_out;
	return 0;
}

/* ---------------------------------------------------------------------
 * The payload
 * ---------------------------------------------------------------------
 */

/*
 * The body as jsonb: the database's encoding (checked: the bytes never
 * went through a client encoding), then the fast parser, or jsonb_in
 * when it declines (its errors are class 22: 400).
 */
static Jsonb *
parse_body(const char *data, size_t len)
{
	char	   *str;
	size_t		slen;
	Jsonb	   *jb;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the request body is empty"),
				 errhint("Send a Segment payload as JSON.")));
	str = pg_any_to_server(data, len, PG_UTF8);
	slen = (str == data) ? len : strlen(str);
	jb = ek_json_to_jsonb(str, slen);
	if (jb == NULL)
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												CStringGetDatum(pnstrdup(str, slen))));
	return jb;
}

static JsonbValue *
find_key(JsonbContainer *c, const char *key)
{
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

/* The writeKey a body carries (envelope or event), or NULL. */
static char *
body_write_key(Jsonb *jb)
{
	JsonbValue *v;

	if (!JB_ROOT_IS_OBJECT(jb))
		return NULL;
	v = find_key(&jb->root, "writeKey");
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static bool
is_key(const JsonbValue *k, const char *name)
{
	size_t		len = strlen(name);

	return k->type == jbvString && k->val.string.len == len &&
		memcmp(k->val.string.val, name, len) == 0;
}

/*
 * Push an event object without its "writeKey" and, when type is given,
 * with "type": type.  Returns what pushJsonbValue returned for its end.
 */
static JsonbValue *
push_event(JsonbParseState **state, JsonbContainer *event, const char *type)
{
	JsonbIterator *it = JsonbIteratorInit(event);
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;

	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);
		if (is_key(&k, "writeKey") || (type != NULL && is_key(&k, "type")))
			continue;
		pushJsonbValue(state, WJB_KEY, &k);
		pushJsonbValue(state, WJB_VALUE, &v);
	}
	if (type != NULL)
	{
		k.type = jbvString;
		k.val.string.val = "type";
		k.val.string.len = 4;
		v.type = jbvString;
		v.val.string.val = (char *) type;
		v.val.string.len = strlen(type);
		pushJsonbValue(state, WJB_KEY, &k);
		pushJsonbValue(state, WJB_VALUE, &v);
	}
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

static bool
has_write_key(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data) &&
		find_key(v->val.binary.data, "writeKey") != NULL;
}

/*
 * A batch envelope as ingest takes it: {"batch": [...], "sentAt",
 * "context"}.  Its writeKey is not stored by ingest; an event that carries
 * one is rebuilt without it (only then: SDKs put the key in the envelope
 * or the header).
 */
static Jsonb *
batch_payload(Jsonb *jb, const Route *route)
{
	JsonbValue *batch;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		rebuild = false;
	JsonbParseState *state = NULL;
	JsonbValue *result;

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb) ||
		(batch = find_key(&jb->root, "batch")) == NULL ||
		batch->type != jbvBinary || !JsonContainerIsArray(batch->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the body of %s is not a Segment batch", route->path),
				 errhint("Send {\"batch\": [event, ...], \"sentAt\": ...}.")));

	it = JsonbIteratorInit(batch->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_ELEM && has_write_key(&v))
		{
			rebuild = true;
			break;
		}
	if (!rebuild)
		return jb;

	/* the envelope without its writeKey, its events without theirs */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue	k;
		JsonbIterator *items;

		if (tok != WJB_KEY)
			continue;
		k = v;
		tok = JsonbIteratorNext(&it, &v, true);
		if (is_key(&k, "writeKey"))
			continue;
		pushJsonbValue(&state, WJB_KEY, &k);
		if (!is_key(&k, "batch"))
		{
			pushJsonbValue(&state, WJB_VALUE, &v);
			continue;
		}
		pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
		items = JsonbIteratorInit(v.val.binary.data);
		while ((tok = JsonbIteratorNext(&items, &v, true)) != WJB_DONE)
		{
			CHECK_FOR_INTERRUPTS();
			if (tok != WJB_ELEM)
				continue;
			if (has_write_key(&v))
				(void) push_event(&state, v.val.binary.data, NULL);
			else
				pushJsonbValue(&state, WJB_ELEM, &v);
		}
		pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

/*
 * One event of /v1/track etc.: its type is the path's (Segment's API sets
 * it so), its writeKey is not stored.
 */
static Jsonb *
event_payload(Jsonb *jb, const Route *route)
{
	JsonbValue *type;
	JsonbParseState *state = NULL;

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the body of %s is not a Segment event", route->path),
				 errhint("Send one event as a JSON object.")));
	type = find_key(&jb->root, "type");
	if (find_key(&jb->root, "writeKey") == NULL && type != NULL &&
		type->type == jbvString && type->val.string.len == strlen(route->type) &&
		memcmp(type->val.string.val, route->type, type->val.string.len) == 0)
		return jb;
	return JsonbValueToJsonb(push_event(&state, &jb->root, route->type));
}

/* ---------------------------------------------------------------------
 * A request, in one transaction
 * ---------------------------------------------------------------------
 */

static void
key_answer(const WriteKeyInfo *key, HttpAnswer *ans)
{
	switch (key->status)
	{
		case WRITE_KEY_OK:
			break;
		case WRITE_KEY_UNKNOWN:
			set_answer(ans, MHD_HTTP_UNAUTHORIZED, "unauthorized", "unknown write key");
			break;
		case WRITE_KEY_REVOKED:
			set_answer(ans, MHD_HTTP_UNAUTHORIZED, "unauthorized", "this write key was revoked");
			break;
		case WRITE_KEY_NO_STREAM:
			set_answer(ans, MHD_HTTP_FORBIDDEN, "forbidden",
					   "the stream of this write key was dropped");
			break;
		case WRITE_KEY_NO_ROLE:
			set_answer(ans, MHD_HTTP_FORBIDDEN, "forbidden",
					   "the role of this write key does not exist");
			break;
	}
}

/*
 * Everything a POST does between the start of its transaction and its
 * commit; true when it is to be committed.  header_key: the HTTP Basic
 * user name, or NULL.
 */
static bool
ingest_request(const HttpRequest *req, const char *data, size_t len,
			   const char *header_key, WriteKeyInfo *key, HttpAnswer *ans)
{
	const char *key_text = header_key;
	Jsonb	   *jb = NULL;
	TimestampTz received_at = GetCurrentTransactionStartTimestamp();
	IngestCounts counts;
	Oid			save_userid;
	int			save_sec;

	if (!ek_write_keys_installed())
	{
		set_answer(ans, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
				   psprintf("eventkit 1.3 or later is not installed in database \"%s\"",
							ek_http_database));
		return false;
	}
	/* with the key in the header, look it up before parsing the body */
	if (key_text == NULL)
	{
		jb = parse_body(data, len);
		key_text = body_write_key(jb);
	}
	if (key_text == NULL)
	{
		set_answer(ans, MHD_HTTP_UNAUTHORIZED, "unauthorized",
				   "no write key: send it as the HTTP Basic user name, or as writeKey in the body");
		return false;
	}
	ek_write_key_lookup(key_text, strlen(key_text), key);
	if (key->status != WRITE_KEY_OK)
	{
		key_answer(key, ans);
		return false;
	}
	if (jb == NULL)
		jb = parse_body(data, len);
	jb = req->route->kind == ROUTE_BATCH ? batch_payload(jb, req->route) :
		event_payload(jb, req->route);

	/* as the key's role; its triggers cannot reach the session's rights */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(key->role, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	ek_ingest_jsonb_payload(key->stream, jb, received_at, &counts);
	SetUserIdAndSecContext(save_userid, save_sec);

	if (!key->has_last_used || received_at - key->last_used_at >= EK_TOUCH_INTERVAL_US)
		ek_write_key_touch(key_text, strlen(key_text), received_at);
	set_answer(ans, MHD_HTTP_OK, NULL, NULL);
	return true;
}

/* GET /health: the database answers and has write keys. */
static bool
health_request(HttpAnswer *ans)
{
	if (!ek_write_keys_installed())
		set_answer(ans, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
				   psprintf("eventkit 1.3 or later is not installed in database \"%s\"",
							ek_http_database));
	else
		set_answer(ans, MHD_HTTP_OK, NULL, NULL);
	return false;
}

/* The HTTP Basic user name, copied; NULL if none.  Its password is ignored. */
static char *
basic_auth_user(struct MHD_Connection *conn)
{
	char	   *copy = NULL;
#if MHD_VERSION >= 0x00097701
	struct MHD_BasicAuthInfo *info = MHD_basic_auth_get_username_password3(conn);

	if (info != NULL)
	{
		if (info->username != NULL && info->username_len > 0)
			copy = pnstrdup(info->username, info->username_len);
		MHD_free(info);
	}
#else
	char	   *password = NULL;
	char	   *user = MHD_basic_auth_get_username_password(conn, &password);

	if (user != NULL && user[0] != '\0')
		copy = pstrdup(user);
	if (user != NULL)
		MHD_free(user);
	if (password != NULL)
		MHD_free(password);
#endif
	return copy;
}

/*
 * Run a request's database work in a transaction of its own, catching
 * every error into the answer.  Called with the complete body (POST) or
 * none (health).
 */
static void
run_request(struct MHD_Connection *conn, const HttpRequest *req,
			const char *data, size_t len, HttpAnswer *ans)
{
	MemoryContext old = MemoryContextSwitchTo(request_cxt);
	WriteKeyInfo key;

	memset(&key, 0, sizeof(key));
	QueryCancelPending = false;
	PG_TRY();
	{
		char	   *header_key = NULL;
		bool		commit;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (StatementTimeout > 0)
			enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
		pgstat_report_activity(STATE_RUNNING, req->route->activity);
		MemoryContextSwitchTo(request_cxt);

		if (req->route->kind == ROUTE_HEALTH)
			commit = health_request(ans);
		else
		{
			header_key = basic_auth_user(conn);
			commit = ingest_request(req, data, len, header_key, &key, ans);
		}
		PopActiveSnapshot();
		if (commit)
			CommitTransactionCommand();
		else
			AbortCurrentTransaction();
		disable_timeout(STATEMENT_TIMEOUT, false);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(request_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(request_cxt);
		error_answer(edata, &key, ans);
	}
	PG_END_TRY();
	QueryCancelPending = false;
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(old);
}

/* ---------------------------------------------------------------------
 * libmicrohttpd's callbacks
 * ---------------------------------------------------------------------
 */

static const Route *
find_route(const char *url)
{
	for (int i = 0; i < lengthof(routes); i++)
		if (strcmp(url, routes[i].path) == 0)
			return &routes[i];
	return NULL;
}

/* Limit on the body as it comes: compressed data may be a little larger. */
static size_t
body_limit(BodyEncoding encoding)
{
	size_t		limit = (size_t) ek_max_batch_bytes;

	return encoding == BODY_IDENTITY ? limit : limit + limit / 64 + 1024;
}

/*
 * The first call for a request: its headers are in.  Answers at once what
 * can be answered without the body (so without reading it).
 */
static enum MHD_Result
begin_request(struct MHD_Connection *conn, const char *url, const char *method,
			  void **req_cls)
{
	HttpRequest *req = calloc(1, sizeof(HttpRequest));
	const Route *route = find_route(url);
	const char *encoding;
	const char *length;

	if (req == NULL)
		return MHD_NO;
	*req_cls = req;
	req->started = GetCurrentTimestamp();
	req->route = route;

	if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
		return respond_with(conn, 204, NULL, NULL);
	if (route == NULL)
		return respond_with(conn, MHD_HTTP_NOT_FOUND, "not_found",
							"no such endpoint: POST /v1/batch, /v1/import, /v1/track, "
							"/v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias; GET /health");
	if (route->kind == ROUTE_HEALTH)
	{
		HttpAnswer	ans;

		if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
			strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		{
			set_answer(&ans, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
					   "use GET");
			ans.allow = "GET, HEAD";
			return respond(conn, &ans);
		}
		return MHD_YES;			/* answered by the last call: keeps the connection */
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
	{
		HttpAnswer	ans;

		set_answer(&ans, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "use POST");
		ans.allow = "POST, OPTIONS";
		return respond(conn, &ans);
	}

	encoding = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
										   MHD_HTTP_HEADER_CONTENT_ENCODING);
	if (encoding == NULL || strcasecmp(encoding, "identity") == 0)
		req->encoding = BODY_IDENTITY;
	else if (strcasecmp(encoding, "gzip") == 0 || strcasecmp(encoding, "x-gzip") == 0)
		req->encoding = BODY_GZIP;
	else if (strcasecmp(encoding, "deflate") == 0)
		req->encoding = BODY_DEFLATE;
	else
		return respond_with(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding",
							"Content-Encoding must be gzip, deflate or identity");
	req->limit = body_limit(req->encoding);

	length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
										 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (length != NULL)
	{
		unsigned long long n = strtoull(length, NULL, 10);

		if (n > req->limit)
			return respond_with(conn, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
								"the request body is larger than eventkit.max_batch_bytes");
		/* the whole body in one allocation (receive_body grows it otherwise) */
		if (n > 0 && (req->body = malloc(n)) != NULL)
			req->cap = n;
	}
	return MHD_YES;
}

/* The last call for a POST: the body is complete. */
static enum MHD_Result
finish_request(struct MHD_Connection *conn, HttpRequest *req)
{
	HttpAnswer	ans;
	char	   *data = req->body;
	size_t		len = req->len;
	char	   *inflated = NULL;
	enum MHD_Result result;

	if (req->route->kind == ROUTE_HEALTH)
	{
		run_request(conn, req, NULL, 0, &ans);
		result = respond(conn, &ans);
		MemoryContextReset(request_cxt);	/* ans's message lived there */
		return result;
	}
	if (req->too_large)
		return respond_with(conn, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
							"the request body is larger than eventkit.max_batch_bytes");
	if (req->out_of_memory)
		return respond_with(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
							"out of memory");
	if (req->encoding != BODY_IDENTITY)
	{
		unsigned int status = inflate_body(req, (size_t) ek_max_batch_bytes,
										   &inflated, &len);

		if (status == MHD_HTTP_CONTENT_TOO_LARGE)
			return respond_with(conn, status, "payload_too_large",
								"the inflated body is larger than eventkit.max_batch_bytes");
		if (status != 0)
			return respond_with(conn, status,
								status == MHD_HTTP_BAD_REQUEST ? "invalid_encoding" : "unavailable",
								status == MHD_HTTP_BAD_REQUEST ?
								"the body is not valid for its Content-Encoding" : "out of memory");
		data = inflated;
	}

	run_request(conn, req, data, len, &ans);
	free(inflated);
	result = respond(conn, &ans);
	MemoryContextReset(request_cxt);	/* ans's message lived there */
	return result;
}

enum MHD_Result
ek_http_handle_request(void *cls, struct MHD_Connection *connection,
					   const char *url, const char *method, const char *version,
					   const char *upload_data, size_t *upload_data_size,
					   void **req_cls)
{
	HttpRequest *req = *req_cls;

	if (req == NULL)
		return begin_request(connection, url, method, req_cls);
	if (*upload_data_size > 0)
	{
		enum MHD_Result result = receive_body(req, upload_data, *upload_data_size);

		*upload_data_size = 0;
		return result;
	}
	return finish_request(connection, req);
}

void
ek_http_request_completed(void *cls, struct MHD_Connection *connection,
						  void **req_cls, enum MHD_RequestTerminationCode toe)
{
	HttpRequest *req = *req_cls;

	if (req == NULL)
		return;
	free(req->body);
	free(req);
	*req_cls = NULL;
}
