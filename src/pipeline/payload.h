/*-------------------------------------------------------------------------
 *
 * payload.h
 *	  The events of one payload (payload.c): collected from jsonb or text
 *	  (one event, an array, a batch envelope, NDJSON) within the stream's
 *	  limits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_PAYLOAD_H
#define EK_PIPELINE_PAYLOAD_H

#include "postgres.h"

#include "catalog/streams.h"
#include "pipeline/event.h"

/* A batch of events collected from one payload. */
typedef struct EventBatch
{
	SegmentEvent *events;
	int			nevents;
	int			capacity;
	EnvelopeDefaults env;
	/* the stream (named in messages) and its own limits (0: the setting's) */
	Oid			relid;
	int32		max_event_bytes;
	int32		max_batch_bytes;
	int32		max_batch_items;
	bool		replay;			/* replayed events: their size is not checked
								 * again */
	const char *origin;			/* given to the events collected (an intake
								 * worker's item), or NULL */
} EventBatch;

extern void ek_payload_init(EventBatch *b, const StreamInfo *stream);
extern void ek_payload_init_like(EventBatch *b, const EventBatch *proto);
extern void ek_payload_check_size(const EventBatch *b, int64 size);
extern void ek_payload_jsonb(EventBatch *b, Jsonb *jb);
extern void ek_payload_text(EventBatch *b, char *str, int len);
extern bool ek_payload_text_direct(EventBatch *b, const char *data, int len);
extern void ek_payload_item(EventBatch *b, const char *data, int len);
extern void ek_payload_unusable(EventBatch *b, const char *data, int len,
								EkReason reason, const char *msg);
extern SegmentEvent *ek_payload_add_value(EventBatch *b, const JsonbValue *v, int32 size);
extern SegmentEvent *ek_payload_add_event(EventBatch *b, const SegmentEvent *ev);
extern Jsonb *ek_payload_item_jsonb(SegmentEvent *ev);
extern int64 ek_payload_fingerprint(SegmentEvent *ev);
extern Jsonb *ek_envelope_jsonb(const EnvelopeDefaults *env);
extern void ek_envelope_read(Jsonb *envelope, EnvelopeDefaults *env);

#endif							/* EK_PIPELINE_PAYLOAD_H */
