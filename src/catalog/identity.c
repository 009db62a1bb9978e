/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  eventkit.identity_links, eventkit.suppressions and eventkit.erasures
 *	  (since 1.4).
 *
 *	  identity_links is kept flat: every id of a stream that an event
 *	  linked (anonymousId with userId, alias previousId to userId) has one
 *	  row naming its canonical user, but the canonical user: since 1.9 it
 *	  has no row of its own (an id without a row is its own user; a row
 *	  stored before names itself, and is accepted), and gets one when a
 *	  merge re-points it.  The identity stage (pipeline/identity.c) reads the
 *	  rows of a batch's ids without SQL: at the heap tuple where it last
 *	  saw an id's row when that is still the row's live version, else by a
 *	  probe of the primary key (or not at all, for an id the stage takes
 *	  for new: its speculation), the batch's probes in the ids' order with
 *	  one descent for the ids on one leaf page (util/btree_probe.c), and
 *	  writes a batch's changes in three steps: its changed ids (updated in
 *	  place, in C), the sets a merge re-points (SQL), its new ids (inserted
 *	  in C).
 *
 *	  suppressions holds the ids forget_user erased; whether a stream has
 *	  any is cached per backend (one query after each change anywhere,
 *	  told by a relcache invalidation of eventkit.suppressions), so that a
 *	  stream without suppressions pays a hash lookup per batch and no query.
 *
 *	  erasures is the audit log of forget_user: who, when, which ids, how
 *	  many rows of each kind; never the erased data.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog/catalog.h"
#include "catalog/identity.h"
#include "util/btree_probe.h"
#include "util/bulk_insert.h"
#include "util/compat.h"
#include "util/owner.h"
#include "util/relcache.h"
#include "util/spi.h"

/*
 * A set's rows: its members (id <> canonical_id: identity_links_canonical is
 * partial since 1.8, and leaves out the canonical rows) and, stored before
 * 1.9, its canonical id's own row (by the primary key; since 1.9 a
 * canonical id has none).  Every statement below that reads a set by its
 * canonical id asks for the two apart, so that each reads an index:
 * "canonical_id = $x" alone would read every row of the stream.  A set's
 * size counts its canonical id once, with a row or without.
 */
static EkStatement set_size = {
	.sql = "SELECT (SELECT pg_catalog.count(*) FROM eventkit.identity_links"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND canonical_id OPERATOR(pg_catalog.=) $2"
	" AND id OPERATOR(pg_catalog.<>) canonical_id) OPERATOR(pg_catalog.+) 1",
	.nargs = 2,.argtypes = {INT4OID, TEXTOID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY | EK_STMT_LATEST_SNAPSHOT | EK_STMT_ONE_ROW
};

/*
 * the rows of losing canonical ids that have none (since 1.9 a canonical id
 * has no row of its own), naming the winner, with their sets' first and
 * latest times (and the batch's, $4 and $5, NULL when the batch did not
 * link it); one whose own row was stored before 1.9 keeps it (the
 * re-pointing updates it: the stage did not read it, not being the
 * batch's)
 */
static EkStatement add_canonical = {
	.sql = "INSERT INTO eventkit.identity_links (stream_id, id, canonical_id, first_seen, last_seen)"
		" SELECT $1, x.o, x.n, LEAST(m.f, x.f), GREATEST(m.l, x.l)"
		" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
		" pg_catalog.unnest($4), pg_catalog.unnest($5)) AS x(o, n, f, l)"
		" CROSS JOIN LATERAL (SELECT pg_catalog.min(first_seen) AS f, pg_catalog.max(last_seen) AS l"
		" FROM eventkit.identity_links WHERE stream_id OPERATOR(pg_catalog.=) $1"
		" AND canonical_id OPERATOR(pg_catalog.=) x.o"
		" AND id OPERATOR(pg_catalog.<>) canonical_id) AS m"
		" WHERE x.f IS NOT NULL OR m.f IS NOT NULL"
		" ON CONFLICT (stream_id, id) DO NOTHING",
		.nargs = 5,.argtypes = {INT4OID, TEXTARRAYOID, TEXTARRAYOID,
		TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID},
	.expected = SPI_OK_INSERT
};

/* the members of the losing sets, then the losing canonical ids' own rows (stored before 1.9) */
static EkStatement repoint[] = {
	{.sql = "UPDATE eventkit.identity_links l SET canonical_id = x.n"
		" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(o, n)"
		" WHERE l.stream_id OPERATOR(pg_catalog.=) $1"
		" AND l.canonical_id OPERATOR(pg_catalog.=) x.o"
		" AND l.id OPERATOR(pg_catalog.<>) l.canonical_id",
		.nargs = 3,.argtypes = {INT4OID, TEXTARRAYOID, TEXTARRAYOID},
	.expected = SPI_OK_UPDATE},
	{.sql = "UPDATE eventkit.identity_links l SET canonical_id = x.n"
		" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS x(o, n)"
		" WHERE l.stream_id OPERATOR(pg_catalog.=) $1"
		" AND l.id OPERATOR(pg_catalog.=) x.o"
		" AND l.canonical_id OPERATOR(pg_catalog.=) x.o",
		.nargs = 3,.argtypes = {INT4OID, TEXTARRAYOID, TEXTARRAYOID},
	.expected = SPI_OK_UPDATE},
};

/*
 * stored ids whose canonical id or times change, when they cannot be
 * updated in place (ek_identity_links_update_in_place: a row changed by
 * hand meanwhile): an upsert that always updates (its conflict check probes
 * the key, where an UPDATE ... FROM the arrays may be planned as a join
 * over the whole table)
 */
static EkStatement update_links = {
	.sql = "INSERT INTO eventkit.identity_links AS l"
	" (stream_id, id, canonical_id, first_seen, last_seen)"
	" SELECT $1, x.i, x.c, x.f, x.l"
	" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
	" pg_catalog.unnest($4), pg_catalog.unnest($5)) AS x(i, c, f, l)"
	" ON CONFLICT (stream_id, id) DO UPDATE SET"
	" canonical_id = excluded.canonical_id,"
	" first_seen = LEAST(l.first_seen, excluded.first_seen),"
	" last_seen = GREATEST(l.last_seen, excluded.last_seen)",
	.nargs = 5,.argtypes = {INT4OID, TEXTARRAYOID, TEXTARRAYOID,
	TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID},.expected = SPI_OK_INSERT
};

static EkStatement resolve = {
	.sql = "SELECT canonical_id FROM eventkit.identity_links"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
	.nargs = 2,.argtypes = {INT4OID, TEXTOID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY
};

static EkStatement members = {
	.sql = "SELECT m.id FROM (SELECT id FROM eventkit.identity_links"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND canonical_id OPERATOR(pg_catalog.=) $2"
	" AND id OPERATOR(pg_catalog.<>) canonical_id"
	" UNION ALL SELECT id FROM eventkit.identity_links"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND id OPERATOR(pg_catalog.=) $2"
	" AND canonical_id OPERATOR(pg_catalog.=) $2) m ORDER BY m.id",
	.nargs = 2,.argtypes = {INT4OID, TEXTOID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY
};

static EkStatement forget_links = {
	.sql = "DELETE FROM eventkit.identity_links"
	" WHERE stream_id OPERATOR(pg_catalog.=) $1"
	" AND (id OPERATOR(pg_catalog.=) ANY ($2)"
	" OR (canonical_id OPERATOR(pg_catalog.=) ANY ($2)"
	" AND id OPERATOR(pg_catalog.<>) canonical_id))",
	.nargs = 2,.argtypes = {INT4OID, TEXTARRAYOID},.expected = SPI_OK_DELETE
};

static EkStatement forget_stream[] = {
	{.sql = "DELETE FROM eventkit.identity_links WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
	{.sql = "DELETE FROM eventkit.suppressions WHERE stream_id OPERATOR(pg_catalog.=) $1",
	.nargs = 1,.argtypes = {INT4OID},.expected = SPI_OK_DELETE},
};

static EkStatement suppressed_streams = {
	.sql = "SELECT DISTINCT stream_id FROM eventkit.suppressions",
	.expected = SPI_OK_SELECT,.flags = EK_STMT_READ_ONLY
};

static EkStatement match_suppressed = {
	.sql = "SELECT DISTINCT s.id FROM pg_catalog.unnest($2) AS x(id)"
	" JOIN eventkit.suppressions s ON s.stream_id OPERATOR(pg_catalog.=) $1"
	" AND s.id OPERATOR(pg_catalog.=) x.id",
	.nargs = 2,.argtypes = {INT4OID, TEXTARRAYOID},.expected = SPI_OK_SELECT,
	.flags = EK_STMT_READ_ONLY
};

static EkStatement add_suppressions = {
	.sql = "INSERT INTO eventkit.suppressions (stream_id, id, erasure_id)"
	" SELECT $1, x.i, $3 FROM pg_catalog.unnest($2) AS x(i)"
	" ON CONFLICT (stream_id, id) DO NOTHING",
	.nargs = 3,.argtypes = {INT4OID, TEXTARRAYOID, INT8OID},.expected = SPI_OK_INSERT
};

static EkStatement next_erasure_id = {
	.sql = "SELECT pg_catalog.nextval('eventkit.erasures_erasure_id_seq'::pg_catalog.regclass)",
	.nargs = 0,.expected = SPI_OK_SELECT,.flags = EK_STMT_ONE_ROW
};

static EkStatement log_erasure = {
	.sql = "INSERT INTO eventkit.erasures (erasure_id, stream_id, stream, user_id, ids,"
	" erased_by, events, quarantined, conflicts, ledger_rows, rollup_buckets)"
	" VALUES ($1, $2, $3, $4, $5, pg_catalog.session_user(), $6, $7, $8, $9, $10)",
	.nargs = 10,.argtypes = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTARRAYOID, INT8OID,
	INT8OID, INT8OID, INT8OID, INT8OID},.expected = SPI_OK_INSERT
};

/* Is the 1.4 catalog (identity graph, suppressions) installed? */
bool
ek_identity_installed(void)
{
	return ek_catalog_version() >= EK_CATALOG_1_4;
}

static char *
text_value(uint64 row, int col)
{
	bool		isnull;
	Datum		d = ek_spi_value(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* identity_links' columns, in the table's order */
#define LINK_STREAM_ID	1
#define LINK_ID			2
#define LINK_CANONICAL	3
#define LINK_FIRST_SEEN	4
#define LINK_LAST_SEEN	5

/*
 * Is the tuple at *tid (a hint: where this backend last saw the row of id)
 * the version of that row the snapshot sees?  Into slot if so.  A tuple
 * there that the snapshot does not see (updated, deleted, or written by a
 * transaction that aborted), an unused or redirected line pointer, another
 * row (the table rewritten by VACUUM FULL or CLUSTER), or a block past the
 * table's end (nblocks) all say no: the caller probes the primary key.
 * The snapshot sees at most one version of a key (the primary key), so a
 * yes is the row the probe would find.  No pruning (heap_fetch), unlike an
 * index fetch: see room_for_update.
 */
static bool
fetch_hinted(Relation rel, BlockNumber nblocks, ItemPointer tid, Snapshot snapshot,
			 TupleTableSlot *slot, int32 stream_id, const char *id)
{
	ItemPointerData t = *tid;
	text	   *stored;
	size_t		len = strlen(id);

	if (!ItemPointerIsValid(&t) || ItemPointerGetBlockNumber(&t) >= nblocks)
		return false;
	if (!table_tuple_fetch_row_version(rel, &t, snapshot, slot))
		return false;
	slot_getallattrs(slot);
	if (slot->tts_isnull[LINK_STREAM_ID - 1] || slot->tts_isnull[LINK_ID - 1] ||
		DatumGetInt32(slot->tts_values[LINK_STREAM_ID - 1]) != stream_id)
		return false;
	stored = DatumGetTextPP(slot->tts_values[LINK_ID - 1]);
	return VARSIZE_ANY_EXHDR(stored) == len &&
		memcmp(VARDATA_ANY(stored), id, len) == 0;
}

/*
 * Start loading into the CPU's caches what fetch_hinted will read for the
 * ids whose rows the hints say where to find (not skipped, within the
 * table's nblocks): each hinted tuple's buffer descriptor, line pointer
 * and tuple.  At full size (the ingest benchmark's ~50,000 rows) each is a
 * cache miss, and the fetches, one after the other, waited for each in
 * turn; so their misses overlap.  The buffer is looked up (PrefetchBuffer:
 * the buffer mapping, which the fetch's ReadBuffer then finds in the CPU's
 * cache) but not pinned, so the page may change or be replaced meanwhile:
 * what is read here is only an address to prefetch (a line pointer read
 * without the page's lock, kept within the page), never used as data.
 */
static void
prefetch_hinted(Relation rel, BlockNumber nblocks, const ItemPointerData *hints,
				const bool *skip, int nids)
{
#if defined(__GNUC__) || defined(__clang__)
	char	  **pages = palloc(sizeof(char *) * Max(nids, 1));
	ItemId	   *lps = palloc(sizeof(ItemId) * Max(nids, 1));
	int			n = 0;

	for (int i = 0; i < nids; i++)
	{
		PrefetchBufferResult r;
		OffsetNumber off;

		if ((skip != NULL && skip[i]) || !ItemPointerIsValid(&hints[i]) ||
			ItemPointerGetBlockNumber(&hints[i]) >= nblocks)
			continue;
		off = ItemPointerGetOffsetNumber(&hints[i]);
		if (off < FirstOffsetNumber || off > MaxHeapTuplesPerPage)
			continue;
		r = PrefetchBuffer(rel, MAIN_FORKNUM, ItemPointerGetBlockNumber(&hints[i]));
		if (!BufferIsValid(r.recent_buffer))
			continue;			/* not in shared buffers: the fetch reads it */
		__builtin_prefetch(GetBufferDescriptor(r.recent_buffer - 1), 1);
		pages[n] = (char *) BufferGetBlock(r.recent_buffer);
		lps[n] = PageGetItemId((Page) pages[n], off);
		__builtin_prefetch(lps[n]);
		n++;
	}
	for (int k = 0; k < n; k++)
	{
		ItemIdData	lp;

		memcpy(&lp, (const void *) lps[k], sizeof(lp));	/* (a hint) */
		/* the tuple's first two 64-byte lines (a row is about 100 bytes) */
		if (lp.lp_flags == LP_NORMAL && lp.lp_off >= SizeOfPageHeaderData &&
			lp.lp_off + Min(lp.lp_len, 128) <= BLCKSZ)
		{
			__builtin_prefetch(pages[k] + lp.lp_off);
			if (lp.lp_len > 64 - lp.lp_off % 64)
				__builtin_prefetch(pages[k] + lp.lp_off + 64);
		}
	}
	pfree(pages);
	pfree(lps);
#endif
}

/*
 * Make room on the page of the row just fetched at its tid (into slot) for
 * four new versions of it (a re-timed link updates two rows, often on one
 * page, and a batch may re-time two links of a page before it updates
 * them), if the page has none: prune it
 * (heap_page_prune_opt, which does so only when it may, with a cleanup
 * lock, and only the versions no one can see any more), so that the row's
 * update in place, if the batch re-times it, stays HOT.  A fetch at a tid
 * (heap_fetch) never prunes, unlike an index fetch, so a page whose rows
 * are only re-timed filled with their old versions, and its next update
 * went to another page, with new entries in both indexes, the primary
 * key's unique check walking the key's older entries (EVENTS=50000
 * USERS=2500 test/bench/instructions.sh: 238 of 7,950 updates, each
 * ~90,000 instructions against ~6,000 for a HOT one).  A page with room is
 * left as it is (a prune costs more than an update; with room for two
 * versions instead of four, 127 updates of the 7,950 were not HOT, 71 with
 * four, 0 when the room was checked at each update, at the price of a
 * buffer read per update; four costs the fewest instructions of the
 * three).  The slot is cleared
 * first (the cleanup lock needs this backend's pin to be the only one): the
 * caller has taken what it needs from it.
 */
static void
room_for_update(Relation rel, TupleTableSlot *slot, const IdentityLink *row)
{
	Buffer		buf;
	BlockNumber block;
	Size		len;

	if (!TTS_IS_BUFFERTUPLE(slot))
		return;					/* (a heap table's slot holds the page) */
	buf = ((BufferHeapTupleTableSlot *) slot)->buffer;
	if (!BufferIsValid(buf))
		return;
	/* a version: header, stream_id, two short texts, two timestamps */
	len = MAXALIGN(SizeofHeapTupleHeader + sizeof(int32) +
				   strlen(row->id) + strlen(row->canonical_id) + 2 +
				   MAXIMUM_ALIGNOF + 2 * sizeof(TimestampTz));
	/* (read without the content lock: a hint, as heap_page_prune_opt reads it) */
	if (PageGetHeapFreeSpace(BufferGetPage(buf)) >= 4 * len)
		return;
	block = BufferGetBlockNumber(buf);
	ExecClearTuple(slot);
	buf = ReadBuffer(rel, block);
	heap_page_prune_opt(rel, buf);
	ReleaseBuffer(buf);
}

/*
 * The visible rows of the ids (sorted, in the index's order) that probe
 * marks, by their values in column col (LINK_ID: the primary key;
 * LINK_CANONICAL: identity_links_canonical, index idx): for each id found,
 * the first version snapshot sees of a row with that value, handed to
 * found(i, slot, arg).  One descent of the index for the ids on one leaf
 * page (util/btree_probe.c: a batch's unknown userIds, or its new
 * anonymous ids, mostly share a leaf or two), then the heap tids fetched
 * with snapshot (table_index_fetch_tuple, which prunes a page as an index
 * scan does); an id whose entries may go on past the leaf it was searched
 * on is probed by an index scan.  Each row taken has the stream and value
 * asked for (checked).
 */
typedef void (*ProbeFound) (int i, TupleTableSlot *slot, void *arg);

static bool
row_matches(TupleTableSlot *slot, int32 stream_id, int col, const char *value)
{
	text	   *stored;
	size_t		len = strlen(value);

	slot_getallattrs(slot);
	if (slot->tts_isnull[LINK_STREAM_ID - 1] || slot->tts_isnull[col - 1] ||
		DatumGetInt32(slot->tts_values[LINK_STREAM_ID - 1]) != stream_id)
		return false;
	stored = DatumGetTextPP(slot->tts_values[col - 1]);
	return VARSIZE_ANY_EXHDR(stored) == len &&
		memcmp(VARDATA_ANY(stored), value, len) == 0;
}

static void
probe_ids(Relation rel, Relation idx, Snapshot snapshot, int32 stream_id,
		  const char **ids, int nids, const bool *probe, int col,
		  TupleTableSlot *slot, ProbeFound found, void *arg)
{
	int		   *which = palloc(sizeof(int) * Max(nids, 1));
	Datum	   *values = palloc(sizeof(Datum) * Max(nids, 1));
	EkProbeResult *results;
	ItemPointerData *tids;
	IndexFetchTableData *fetch;
	IndexScanDesc scan = NULL;
	int			n = 0;

	for (int i = 0; i < nids; i++)
		if (probe[i])
		{
			which[n] = i;
			values[n++] = CStringGetTextDatum(ids[i]);
		}
	if (n == 0)
		return;
	results = palloc(sizeof(EkProbeResult) * n);
	(void) ek_btree_probe_sorted(idx, snapshot, Int32GetDatum(stream_id),
								 values, n, results, &tids);
	fetch = table_index_fetch_begin(rel);
	for (int k = 0; k < n; k++)
	{
		const char *id = ids[which[k]];

		CHECK_FOR_INTERRUPTS();
		if (results[k].fallback)
		{
			ScanKeyData key[2];

			if (scan == NULL)
				scan = index_beginscan(rel, idx, snapshot, 2, 0);
			ScanKeyEntryInitialize(&key[0], 0, 1, BTEqualStrategyNumber, INT4OID,
								   idx->rd_indcollation[0], F_INT4EQ,
								   Int32GetDatum(stream_id));
			ScanKeyEntryInitialize(&key[1], 0, 2, BTEqualStrategyNumber, TEXTOID,
								   idx->rd_indcollation[1], F_TEXTEQ, values[k]);
			index_rescan(scan, key, 2, NULL, 0);
			while (index_getnext_slot(scan, ForwardScanDirection, slot))
				if (row_matches(slot, stream_id, col, id))
				{
					found(which[k], slot, arg);
					break;
				}
			continue;
		}
		for (int t = 0; t < results[k].count; t++)
		{
			bool		call_again = false;
			bool		all_dead = false;

			if (table_index_fetch_tuple(fetch, &tids[results[k].start + t], snapshot,
										slot, &call_again, &all_dead) &&
				row_matches(slot, stream_id, col, id))
			{
				found(which[k], slot, arg);
				break;
			}
		}
	}
	table_index_fetch_end(fetch);
	if (scan != NULL)
		index_endscan(scan);
}

/* probe_ids' found for ek_identity_links_read: the row, in the id's place */
typedef struct ReadRows
{
	const char **ids;
	IdentityLink *rows;			/* one per id */
	bool	   *have;
} ReadRows;

static void
take_row(IdentityLink *row, TupleTableSlot *slot, const char *id)
{
	row->id = pstrdup(id);
	row->canonical_id = TextDatumGetCString(slot->tts_values[LINK_CANONICAL - 1]);
	row->first_seen = DatumGetTimestampTz(slot->tts_values[LINK_FIRST_SEEN - 1]);
	row->last_seen = DatumGetTimestampTz(slot->tts_values[LINK_LAST_SEEN - 1]);
	row->tid = slot->tts_tid;
}

static void
read_found(int i, TupleTableSlot *slot, void *arg)
{
	ReadRows   *r = arg;

	take_row(&r->rows[i], slot, r->ids[i]);
	r->have[i] = true;
}

/*
 * The rows of the nids ids (sorted, unique), into *links (palloc'd in the
 * caller's context, in the ids' order); returns how many.  Read with the
 * latest snapshot (after the identity lock: what its previous holder
 * committed; and this transaction's own earlier batches), without SQL: the
 * read every batch with links makes.  hints (NULL, or one per id; an
 * invalid one: none) are where the caller last saw each id's row (its
 * cache of known links): a row still there, and the version the snapshot
 * sees, is read from the heap at once (fetch_hinted); the other ids are
 * probed in the primary key (probe_ids: one descent for the ids on one
 * leaf), but those that skip (NULL, or one per id) marks: they are not read
 * at all (the caller takes them for absent, and finds out otherwise when it
 * inserts them: pipeline/identity.c, speculation).
 */
int
ek_identity_links_read(int32 stream_id, const char **ids, int nids,
					   const ItemPointerData *hints, const bool *skip,
					   IdentityLink **links)
{
	Relation	rel;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	BlockNumber nblocks = InvalidBlockNumber;
	ReadRows	r;
	bool	   *probe;
	int			nprobe = 0;
	int			n = 0;

	*links = palloc(sizeof(IdentityLink) * Max(nids, 1));
	r.ids = ids;
	r.rows = palloc(sizeof(IdentityLink) * Max(nids, 1));
	r.have = palloc0(sizeof(bool) * Max(nids, 1));
	probe = palloc0(sizeof(bool) * Max(nids, 1));
	CommandCounterIncrement();
	rel = table_open(ek_catalog_relid("identity_links"), AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	if (hints != NULL)
	{
		for (int i = 0; i < nids && nblocks == InvalidBlockNumber; i++)
			if (ItemPointerIsValid(&hints[i]) && (skip == NULL || !skip[i]))
				nblocks = RelationGetNumberOfBlocks(rel);
		if (nblocks != InvalidBlockNumber)
			prefetch_hinted(rel, nblocks, hints, skip, nids);
	}
	for (int i = 0; i < nids; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (skip != NULL && skip[i])
			continue;
		if (hints != NULL && ItemPointerIsValid(&hints[i]))
		{
			if (fetch_hinted(rel, nblocks, (ItemPointer) &hints[i], snapshot,
							 slot, stream_id, ids[i]))
			{
				take_row(&r.rows[i], slot, ids[i]);
				r.have[i] = true;
				room_for_update(rel, slot, &r.rows[i]);
				continue;
			}
		}
		probe[i] = true;		/* (an index fetch prunes as it goes) */
		nprobe++;
	}
	if (nprobe > 0)
	{
		Relation	idx = index_open(get_relname_relid("identity_links_pkey",
													   RelationGetNamespace(rel)),
									 AccessShareLock);

		probe_ids(rel, idx, snapshot, stream_id, ids, nids, probe, LINK_ID,
				  slot, read_found, &r);
		index_close(idx, NoLock);
	}
	for (int i = 0; i < nids; i++)
		if (r.have[i])
			(*links)[n++] = r.rows[i];
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
	return n;
}

/*
 * How many ids resolve to canonical_id (latest snapshot): its members and
 * itself, with a row (before 1.9) or without.
 */
int64
ek_identity_set_size(int32 stream_id, const char *canonical_id)
{
	Datum		args[2] = {Int32GetDatum(stream_id), CStringGetTextDatum(canonical_id)};
	bool		isnull;

	ek_stmt_run(&set_size, args, NULL);
	return DatumGetInt64(ek_spi_value(0, 1, &isnull));
}

/* Every id resolving to olds[i] resolves to news[i] now (text[] both). */
void
ek_identity_links_repoint(int32 stream_id, Datum olds, Datum news)
{
	Datum		args[3] = {Int32GetDatum(stream_id), olds, news};

	for (int i = 0; i < lengthof(repoint); i++)
		ek_stmt_run(&repoint[i], args, NULL);
}

/*
 * Insert the rows of canonical ids without one (olds, text[]) that a merge
 * re-points to news (text[]), at the first and latest times of their sets'
 * members and of firsts and lasts (timestamptz[], NULL elements for none).
 * Before the members are changed.
 */
void
ek_identity_links_add_canonical(int32 stream_id, Datum olds, Datum news,
								Datum firsts, Datum lasts)
{
	Datum		args[5] = {Int32GetDatum(stream_id), olds, news, firsts, lasts};

	ek_stmt_run(&add_canonical, args, NULL);
}

/* probe_ids' found for ek_identity_links_canonical */
static void
canonical_found(int i, TupleTableSlot *slot, void *arg)
{
	((bool *) arg)[i] = true;
}

/*
 * For the ids (sorted) that which marks: whether an id is the canonical id
 * of stored members (is_canonical[i]), by probing identity_links_canonical
 * with the latest snapshot (probe_ids: one descent for the ids on one
 * leaf).  Since 1.9 a canonical id has no row: an id without one is new or
 * such an id.
 */
void
ek_identity_links_canonical(int32 stream_id, const char **ids, int nids,
							const bool *which, bool *is_canonical)
{
	Relation	rel;
	Relation	idx;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	bool		any = false;

	for (int i = 0; i < nids; i++)
	{
		is_canonical[i] = false;
		any |= which[i];
	}
	if (!any)
		return;
	CommandCounterIncrement();
	rel = table_open(ek_catalog_relid("identity_links"), AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	idx = index_open(get_relname_relid("identity_links_canonical",
									   RelationGetNamespace(rel)),
					 AccessShareLock);
	probe_ids(rel, idx, snapshot, stream_id, ids, nids, which, LINK_CANONICAL,
			  slot, canonical_found, is_canonical);
	index_close(idx, NoLock);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
}

/*
 * Update the stored rows of ids (text[]) to their canonical ids (text[])
 * and the event times (timestamptz[]) of their first and last links in a
 * batch (a stored first_seen is kept if older, a stored last_seen if
 * newer).
 */
void
ek_identity_links_update(int32 stream_id, Datum ids, Datum canonicals,
						 Datum firsts, Datum lasts)
{
	Datum		args[5] = {Int32GetDatum(stream_id), ids, canonicals, firsts, lasts};

	ek_stmt_run(&update_links, args, NULL);
}

/*
 * Store row (of stream stream_id) in slot as a virtual tuple of
 * eventkit.identity_links, whose LINK_LAST_SEEN columns the callers
 * checked.
 */
static void
store_link_row(TupleTableSlot *slot, int32 stream_id, const IdentityLink *row)
{
	slot->tts_values[LINK_STREAM_ID - 1] = Int32GetDatum(stream_id);
	slot->tts_values[LINK_ID - 1] = CStringGetTextDatum(row->id);
	slot->tts_values[LINK_CANONICAL - 1] = CStringGetTextDatum(row->canonical_id);
	slot->tts_values[LINK_FIRST_SEEN - 1] = TimestampTzGetDatum(row->first_seen);
	slot->tts_values[LINK_LAST_SEEN - 1] = TimestampTzGetDatum(row->last_seen);
	memset(slot->tts_isnull, false, sizeof(bool) * LINK_LAST_SEEN);
	ExecStoreVirtualTuple(slot);
}

/*
 * Update the n stored rows, each at the tid where ek_identity_links_read
 * found it under the identity lock, to its canonical id and times (the
 * caller has merged the stored times in), in C: table_tuple_update on the
 * tuple, and the index entries only when the update is not HOT (a new
 * canonical id; a re-timing changes no indexed column and, with the room
 * fillfactor 70 leaves on the page, is HOT).  The upsert through SPI it
 * replaces probed the primary key again for every row: with it the stage
 * cost 43,252 instructions an event in test/bench/instructions.sh's
 * WARMUP=200000 measure, 31,696 with this.
 *
 * Correct under concurrency because every writer of a stream's links
 * (ingest, forget_user) holds the stream's identity lock: the read under
 * it, with the latest snapshot, saw the latest version of each row and no
 * one else writes it until this transaction ends.  A row that is not at
 * its tid any more all the same (updated or deleted by hand meanwhile,
 * outside the contract) is not updated and moved to the front of rows:
 * returns how many, for the caller to write through the upsert, which
 * waits for and re-checks the row.  The others' tid is set to their new
 * version's.  Caller: holds the identity lock.
 */
int
ek_identity_links_update_in_place(int32 stream_id, IdentityLink *rows, int n)
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	CommandId	cid;
	Snapshot	snapshot;
	int			nleft = 0;

	if (n == 0)
		return 0;
	rel = table_open(ek_catalog_relid("identity_links"), RowExclusiveLock);
	if (RelationGetDescr(rel)->natts != LINK_LAST_SEEN)
		elog(ERROR, "eventkit: eventkit.identity_links has %d columns, expected %d",
			 RelationGetDescr(rel)->natts, LINK_LAST_SEEN);
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = table_slot_create(rel, NULL);
	cid = GetCurrentCommandId(true);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	for (int i = 0; i < n; i++)
	{
		EkUpdateIndexes update_indexes;

		CHECK_FOR_INTERRUPTS();
		ExecClearTuple(slot);
		store_link_row(slot, stream_id, &rows[i]);
		if (ek_tuple_update(rel, &rows[i].tid, slot, cid, snapshot, &update_indexes) != TM_Ok)
		{
			IdentityLink left = rows[i];

			rows[i] = rows[nleft];
			rows[nleft++] = left;
			continue;
		}
		rows[i].tid = slot->tts_tid;	/* the new version */
		/* no range table here: index entries as for an insert */
		if (ek_update_needs_indexes(update_indexes))
			list_free(ek_insert_index_tuples(rri, slot, estate));
	}
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	return nleft;
}

/*
 * Insert the n new rows (absent: the caller holds the identity lock) with
 * table_multi_insert and their index entries, as the ledger and the
 * stream's rows are written: an INSERT through SPI cost about four times
 * as many instructions a row (test/bench/instructions.sh).  The primary
 * key is still checked (ExecInsertIndexTuples: UNIQUE_CHECK_YES), so a
 * row that is not absent after all raises unique_violation as the INSERT
 * did.  Caller: the catalog's owner or superuser rights are not needed,
 * this writes the table directly (no triggers or policies of its own for
 * INSERT).  Sets each row's tid to where it was inserted.
 */
void
ek_identity_links_insert(int32 stream_id, IdentityLink *rows, int n)
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleDesc	desc;
	TupleTableSlot **slots;
	CommandId	cid;
	BulkInsertState bistate;

	if (n == 0)
		return;
	rel = table_open(ek_catalog_relid("identity_links"), RowExclusiveLock);
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	desc = CreateTupleDescCopy(RelationGetDescr(rel));	/* unpinned */
	if (desc->natts != LINK_LAST_SEEN)
		elog(ERROR, "eventkit: eventkit.identity_links has %d columns, expected %d",
			 desc->natts, LINK_LAST_SEEN);
	slots = palloc(sizeof(TupleTableSlot *) * n);
	cid = GetCurrentCommandId(true);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	for (int i = 0; i < n; i++)
	{
		TupleTableSlot *slot = MakeTupleTableSlot(desc, &TTSOpsHeapTuple);

		CHECK_FOR_INTERRUPTS();
		ExecClearTuple(slot);
		store_link_row(slot, stream_id, &rows[i]);
		slots[i] = slot;
	}
	bistate = ek_begin_bulk_insert();
	table_multi_insert(rel, slots, n, cid, 0, ek_bulk_insert_for(bistate, rel));
	ek_end_bulk_insert(bistate);
	for (int i = 0; i < n; i++)
	{
		list_free(ek_insert_index_tuples(rri, slots[i], estate));
		rows[i].tid = slots[i]->tts_tid;
		ExecDropSingleTupleTableSlot(slots[i]);
	}
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
}

/* The canonical user of id; NULL when no event linked it. */
char *
ek_identity_resolve(int32 stream_id, const char *id)
{
	Datum		args[2] = {Int32GetDatum(stream_id), CStringGetTextDatum(id)};

	if (ek_stmt_run(&resolve, args, NULL) == 0)
		return NULL;
	return text_value(0, 1);
}

/* The ids (char *) that resolve to canonical_id, in id order. */
List *
ek_identity_members(int32 stream_id, const char *canonical_id)
{
	Datum		args[2] = {Int32GetDatum(stream_id), CStringGetTextDatum(canonical_id)};
	uint64		n = ek_stmt_run(&members, args, NULL);
	List	   *out = NIL;

	for (uint64 r = 0; r < n; r++)
		out = lappend(out, text_value(r, 1));
	return out;
}

/*
 * Remove the rows of the ids (text[]) and of the ids resolving to them (a
 * canonical id's own row is among the former).
 */
int64
ek_identity_links_forget(int32 stream_id, Datum ids)
{
	Datum		args[2] = {Int32GetDatum(stream_id), ids};

	return (int64) ek_stmt_run(&forget_links, args, NULL);
}

/* Remove a stream's links and suppressions (the stream is dropped). */
void
ek_identity_forget_stream(int32 stream_id)
{
	Datum		args[1] = {Int32GetDatum(stream_id)};

	if (!ek_identity_installed())
		return;
	for (int i = 0; i < lengthof(forget_stream); i++)
		ek_stmt_run(&forget_stream[i], args, NULL);
	CacheInvalidateRelcacheByRelid(ek_catalog_relid("suppressions"));
}

/* ---------------------------------------------------------------------
 * Suppressions
 * ---------------------------------------------------------------------
 */

static HTAB *suppressed = NULL;	/* stream ids with suppressions */
static bool suppressed_stale = true;
static bool suppressed_callback = false;
static Oid	suppressions_relid = InvalidOid;
static Oid	links_relid = InvalidOid;
static Oid	links_relfilenode = InvalidOid;
static bool links_check = false;	/* identity_links invalidated since */

/*
 * Bumped by every relcache invalidation of eventkit.suppressions (each
 * forget_user and drop_stream sends one at commit), by one of
 * eventkit.identity_links that leaves it another table or another file
 * (DROP EXTENSION, TRUNCATE, a rewrite), and by a reset of the whole
 * relcache: what the identity stage's cache of known links checks
 * (pipeline/identity.c).  The invalidations of identity_links that change
 * neither (the statistics that VACUUM and ANALYZE, autovacuum's too, write
 * into its pg_class row; a rename) remove no link, and keep the cache: an
 * autovacuum of the table while a session ingests used to flush its
 * cache, costing it a read of every id it then met again (regress
 * identity_cache).
 */
static uint64 graph_generation = 1;

static void
suppressions_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == suppressions_relid)
		suppressed_stale = true;
	if (relid == InvalidOid || relid == suppressions_relid)
	{
		graph_generation++;
		links_relid = InvalidOid;	/* looked up again: a new table? */
	}
	else if (relid == links_relid)
		links_check = true;		/* a new file?  (ek_identity_graph_generation) */
}

/*
 * Is identity_links still the table relid in the file relfilenode, not
 * created nor given a new file by the current transaction (whose TRUNCATE
 * empties it in place, keeping its file)?  Caller: in a transaction.
 */
static bool
links_same(Oid relid, Oid relfilenode)
{
	Relation	rel;
	bool		same;

	if (!OidIsValid(relid))
		return false;
	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		return false;
	same = rel->rd_node.relNode == relfilenode &&
		rel->rd_createSubid == InvalidSubTransactionId &&
		rel->rd_newRelfilenodeSubid == InvalidSubTransactionId;
	links_relfilenode = rel->rd_node.relNode;
	relation_close(rel, NoLock);
	return same;
}

static void
register_callback(void)
{
	if (!suppressed_callback)
	{
		ek_register_relcache_callback(suppressions_relcache_callback, (Datum) 0);
		suppressed_callback = true;
	}
}

/*
 * The generation of the identity graph as this backend knows it: it
 * changes whenever links may have been removed (forget_user, drop_stream,
 * a truncated or dropped table), as told by the invalidations processed so
 * far.  Links are only ever added or merged otherwise, so two ids seen in
 * one set stay in one set while this stays the same.
 */
uint64
ek_identity_graph_generation(void)
{
	register_callback();
	if (!OidIsValid(links_relid))
	{
		links_relid = ek_catalog_relid("identity_links");
		suppressions_relid = ek_catalog_relid("suppressions");
		links_check = false;
		(void) links_same(links_relid, InvalidOid);	/* (its file) */
		graph_generation++;
	}
	else if (links_check)
	{
		Oid			relid = ek_catalog_relid("identity_links");
		bool		same = links_same(relid, links_relfilenode);

		links_check = false;
		if (!same || relid != links_relid)
		{
			links_relid = relid;
			suppressions_relid = ek_catalog_relid("suppressions");
			graph_generation++;
		}
	}
	return graph_generation;
}

/*
 * Has the stream suppressed ids?  From the per-backend cache: a query
 * only after eventkit.suppressions changed.  Caller: SPI connected.
 */
bool
ek_suppressions_exist(int32 stream_id)
{
	bool		found;

	if (!ek_identity_installed())
		return false;
	register_callback();
	if (suppressed_stale || suppressed == NULL)
	{
		HASHCTL		ctl;
		uint64		n;
		HTAB	   *h;

		if (suppressed != NULL)
			hash_destroy(suppressed);
		suppressed = NULL;
		suppressions_relid = ek_catalog_relid("suppressions");
		suppressed_stale = false;
		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(int32);
		ctl.hcxt = CacheMemoryContext;
		h = hash_create("eventkit streams with suppressions", 16, &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		/* (an invalidation while this reads: the next call reads again) */
		n = ek_stmt_run(&suppressed_streams, NULL, NULL);
		for (uint64 r = 0; r < n; r++)
		{
			bool		isnull;
			int32		id = DatumGetInt32(ek_spi_value(r, 1, &isnull));

			(void) hash_search(h, &id, HASH_ENTER, &found);
		}
		suppressed = h;
	}
	(void) hash_search(suppressed, &stream_id, HASH_FIND, &found);
	return found;
}

/* Which of the ids (text[]) are suppressed in the stream (a list of char *). */
List *
ek_suppressions_match(int32 stream_id, Datum ids)
{
	Datum		args[2] = {Int32GetDatum(stream_id), ids};
	uint64		n = ek_stmt_run(&match_suppressed, args, NULL);
	List	   *out = NIL;

	for (uint64 r = 0; r < n; r++)
		out = lappend(out, text_value(r, 1));
	return out;
}

/* Suppress the ids (text[]) in the stream; every backend is told at commit. */
void
ek_suppressions_add(int32 stream_id, Datum ids, int64 erasure_id)
{
	Datum		args[3] = {Int32GetDatum(stream_id), ids, Int64GetDatum(erasure_id)};

	ek_stmt_run(&add_suppressions, args, NULL);
	CacheInvalidateRelcacheByRelid(ek_catalog_relid("suppressions"));
}

/*
 * The id of the next erasure (forget_user takes it first: the workers
 * record it with the suppressions they add).
 */
int64
ek_erasures_next_id(void)
{
	bool		isnull;

	ek_stmt_run(&next_erasure_id, NULL, NULL);
	return DatumGetInt64(ek_spi_value(0, 1, &isnull));
}

/* Log an erasure (its id from ek_erasures_next_id). */
void
ek_erasures_log(const ErasureLog *log)
{
	Datum		args[10] = {
		Int64GetDatum(log->erasure_id),
		Int32GetDatum(log->stream_id),
		CStringGetTextDatum(log->stream_name),
		CStringGetTextDatum(log->user_id),
		log->ids,
		Int64GetDatum(log->events),
		Int64GetDatum(log->quarantined),
		Int64GetDatum(log->conflicts),
		Int64GetDatum(log->ledger_rows),
		Int64GetDatum(log->rollup_buckets),
	};

	ek_stmt_run(&log_erasure, args, NULL);
}
