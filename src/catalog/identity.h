/*-------------------------------------------------------------------------
 *
 * identity.h
 *	  The identity graph and erasure rows of eventkit's catalog
 *	  (identity.c): eventkit.identity_links (every linked id of a stream
 *	  and its canonical user), eventkit.suppressions (ids erased by
 *	  forget_user, whose later events are rejected) and eventkit.erasures
 *	  (the audit log of forget_user).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_CATALOG_IDENTITY_H
#define EK_CATALOG_IDENTITY_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "storage/itemptr.h"

/* A row of eventkit.identity_links. */
typedef struct IdentityLink
{
	char	   *id;
	char	   *canonical_id;
	TimestampTz first_seen;
	TimestampTz last_seen;
	ItemPointerData tid;		/* where ek_identity_links_read found it, or
								 * where it was written */
} IdentityLink;

/* What one forget_user call erased (a row of eventkit.erasures). */
typedef struct ErasureLog
{
	int64		erasure_id;		/* ek_erasures_next_id() */
	int32		stream_id;
	const char *stream_name;	/* schema-qualified, as it was */
	const char *user_id;		/* as asked */
	Datum		ids;			/* text[]: every id erased and suppressed */
	int64		events;
	int64		quarantined;
	int64		conflicts;
	int64		ledger_rows;
	int64		rollup_buckets;
} ErasureLog;

extern bool ek_identity_installed(void);
extern int	ek_identity_links_read(int32 stream_id, const char **ids, int nids,
								   const ItemPointerData *hints, const bool *skip,
								   IdentityLink **links);
extern int64 ek_identity_set_size(int32 stream_id, const char *canonical_id);
extern void ek_identity_links_repoint(int32 stream_id, Datum olds, Datum news);
extern void ek_identity_links_add_canonical(int32 stream_id, Datum olds, Datum news,
											Datum firsts, Datum lasts);
extern void ek_identity_links_canonical(int32 stream_id, const char **ids, int nids,
										const bool *which, bool *is_canonical);
extern void ek_identity_links_update(int32 stream_id, Datum ids,
									 Datum canonicals, Datum firsts, Datum lasts);
extern int	ek_identity_links_update_in_place(int32 stream_id, IdentityLink *rows, int n);
extern void ek_identity_links_insert(int32 stream_id, IdentityLink *rows, int n);
extern char *ek_identity_resolve(int32 stream_id, const char *id);
extern List *ek_identity_members(int32 stream_id, const char *canonical_id);
extern int64 ek_identity_links_forget(int32 stream_id, Datum ids);
extern void ek_identity_forget_stream(int32 stream_id);
extern uint64 ek_identity_graph_generation(void);

extern bool ek_suppressions_exist(int32 stream_id);
extern List *ek_suppressions_match(int32 stream_id, Datum ids);
extern void ek_suppressions_add(int32 stream_id, Datum ids, int64 erasure_id);

extern int64 ek_erasures_next_id(void);
extern void ek_erasures_log(const ErasureLog *log);

#endif							/* EK_CATALOG_IDENTITY_H */
