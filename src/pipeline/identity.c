/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  The identity stage: the identity graph kept at ingest, and the
 *	  suppression check.
 *
 *	  Links.  An event stored with both anonymousId and userId links the
 *	  two; an alias links previousId to userId.  Linked ids form sets, one
 *	  per user (union-find), kept flat in eventkit.identity_links: every id
 *	  names its set's canonical id, which is always a userId; since 1.9 the
 *	  canonical id itself has no row (an id without one is its own user),
 *	  until a merge re-points it (rows stored before, naming themselves,
 *	  are accepted: read, re-timed and re-pointed as any row).  A link
 *	  between two sets merges them: an alias gives the merged set the
 *	  canonical id of its userId's set (its previousId, and everything
 *	  linked to it, now resolve to that user); a link by an event carrying
 *	  both ids keeps the canonical id of the larger set (the userId's on a
 *	  tie), so that a merge re-points the smaller set.
 *
 *	  Per batch with links: first the backend's cache of known links (below)
 *	  drops the links it says change nothing; then one read of the rows of
 *	  the remaining links' ids; when
 *	  they already say what the batch says (a known visitor identifying
 *	  again within a day of the times recorded), nothing is
 *	  written and no lock is taken.  Otherwise the stream's identity lock
 *	  (a transaction-level advisory lock, eventkit_lock_key below) is taken,
 *	  the rows are read again with the latest snapshot (what the previous
 *	  holder committed; speculating, the ids the cache does not know are
 *	  taken for new instead, below), the batch's links are applied in order, and at
 *	  most three steps write: the batch's changed ids (updated in place,
 *	  in C, at the tids the read under the lock found; HOT when only the
 *	  times move), the sets a merge re-points, the rows of the batch's new
 *	  ids (inserted in C: the lock says they are absent).  Concurrent
 *	  ingests that link the same ids thus
 *	  apply their links one after the other, never from a stale read.  A
 *	  batch without links costs a pass over its events and no statement.
 *
 *	  Suppressions.  Events carrying an id that forget_user erased
 *	  (userId, anonymousId or previousId) get the problem "suppressed", so
 *	  the orchestrator rejects them before dedup: they are never stored,
 *	  quarantined or entered in the ledger.  A stream without
 *	  suppressions pays one cached lookup per batch (catalog/identity.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "catalog/identity.h"
#include "pipeline/identity.h"
#include "pipeline/identity_cache.h"
#include "util/guc.h"
#include "util/spi.h"

/*
 * The identity lock of a stream: an advisory lock tag that SQL's
 * pg_advisory_lock() cannot take (field4 3; SQL uses 1 and 2), keyed by
 * the stream id and this constant ("ekid").
 */
#define EK_IDENTITY_LOCK_KEY 0x656b6964
#define EK_IDENTITY_LOCK_FIELD4 3

/*
 * first_seen and last_seen move only by more than eventkit.identity_time_step
 * (a day by default; read per batch: cached times are within the stored
 * ones, so the cache stays exact whatever the step), a known visitor's link
 * within it writes nothing (re-timings cost ingest more than new links).
 */
#define EK_IDENTITY_SEEN_STEP ((int64) ek_identity_time_step * USECS_PER_SEC)

/*
 * Did this backend's last batch with links write some (and for which
 * stream)?  Then the next batch of that stream takes the identity lock if
 * it is free (never waiting for it) and reads once, under it, instead of
 * reading a first time without the lock and, finding new links as its
 * predecessor did, again with it: a stream that is learning its audience
 * (most links new) pays one read a batch.  A batch whose links are known
 * still never waits (isolation spec identity_merge); one that took the
 * lock this way and writes nothing holds it to its commit all the same.
 * Only which path is taken depends on this; both are correct.
 */
static int32 last_stream_id = 0;
static bool last_wrote = false;

/*
 * Speculation: were the ids this backend's cache did not know absent from
 * the graph, the last time it read them?  A long-lived session ingesting
 * a stream from its start (pgbench's, an intake worker's) knows every
 * stored id of it, all it wrote and read: an id it does not know is new,
 * and the probe of the primary key that says so (about 7,000 instructions)
 * was a seventh of the stage's cost over the ingest benchmark's run.  Then
 * the next batch with new links, under the identity lock, does not read
 * those ids but takes them for absent, in a subtransaction (only from ids:
 * a userId taken for absent would get no row of its own, since 1.9, so no
 * insert would check it): each is inserted as new, and the primary key's unique check (which the insert
 * does anyway) says if one was stored after all (by another session, or
 * before a flush of the cache); the subtransaction is then rolled back and
 * the batch read and written again the ordinary way, and speculation stops
 * until EK_SPECULATE_AFTER_MISS reads in a row find the unknown ids absent
 * (EK_SPECULATE_AFTER at first, and after a flush of the cache).  Exact
 * either way: an id taken for absent is always inserted (it is linked), so
 * a wrong guess never commits.  (Only the path taken depends on this, as
 * for last_wrote.)  One stream at a time (that of the reads).  Isolation
 * spec identity_speculate.
 */
#define EK_SPECULATE_AFTER 2		/* reads finding the unknown ids absent */
#define EK_SPECULATE_AFTER_MISS 16	/* the same, after a wrong guess */
static bool speculate = false;	/* for the stream spec_stream_id */
static int32 spec_stream_id = 0;
static int	clean_reads = 0;	/* such reads in a row (negative: owed) */
static uint64 spec_flushes = 0;	/* ek_idcache_flushes() when last synced */

/*
 * The cache was flushed since speculation last looked (by an abort, a
 * new generation of the graph, forget_user): stored ids are unknown to it
 * now, so stop speculating (as a flush did before the cache had a file).
 */
static void
speculation_sync(void)
{
	uint64		f = ek_idcache_flushes();

	if (f != spec_flushes)
	{
		spec_flushes = f;
		speculate = false;
		clean_reads = Min(clean_reads, 0);
	}
}

/* One id of a batch's links, or a canonical id they lead to. */
typedef struct IdNode
{
	const char *id;
	struct IdNode *parent;		/* NULL: unknown so far; a root: itself */
	bool		stored;			/* has a row */
	bool		is_canon;		/* the canonical id of stored members */
	bool		read;			/* its row was read (times known) */
	const char *stored_canon;	/* its row's canonical id */
	TimestampTz stored_first;	/* its row's first_seen and last_seen */
	TimestampTz stored_last;
	ItemPointerData tid;		/* where its row was read, or written */
	struct KnownId *known;		/* its cache entry, found by the read */
	bool		linked;			/* one of the batch's links names it */
	TimestampTz first;			/* event times of its links in the batch */
	TimestampTz last;
	int64		added;			/* a root: members added by the batch */
	int64		stored_size;	/* a stored root: its rows, -1 unknown */
} IdNode;

typedef struct Link
{
	const char *from;			/* anonymousId or previousId */
	const char *to;				/* userId */
	bool		alias;
	TimestampTz ts;
	uint64		from_key;		/* ek_idcache_key() of each, for the cache */
	uint64		to_key;
	size_t		from_len;
	size_t		to_len;
} Link;

typedef struct Graph
{
	IdNode	   *nodes;			/* sorted by id */
	int			n;
	int32		stream_id;
	const bool *is_from;		/* per id of the batch: a link's from id */
	const bool *is_to;			/* per id of the batch: a link's userId */
} Graph;

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int
cmp_node(const void *a, const void *b)
{
	return strcmp(((const IdNode *) a)->id, ((const IdNode *) b)->id);
}

/*
 * An id of a batch's links, and whether the link names it as its from id
 * (else as its userId): sorted by the id (sort_batch_ids, the comparison
 * inlined), they give the batch's ids in order and, where one is repeated,
 * what the links name it as, without a search per link.
 */
typedef struct BatchId
{
	const char *id;
	bool		from;
} BatchId;

#define ST_SORT sort_batch_ids
#define ST_ELEMENT_TYPE BatchId
#define ST_COMPARE(a, b) strcmp((a)->id, (b)->id)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

static IdNode *
node_of(Graph *g, const char *id)
{
	IdNode		key = {.id = id};

	return bsearch(&key, g->nodes, g->n, sizeof(IdNode), cmp_node);
}

static IdNode *
root_of(IdNode *x)
{
	IdNode	   *r = x;

	while (r->parent != r)
		r = r->parent;
	while (x->parent != r)
	{
		IdNode	   *next = x->parent;

		x->parent = r;
		x = next;
	}
	return r;
}

/* Do the batch's links move a stored id's first or last seen time enough? */
static bool
seen_moved(const IdNode *x)
{
	return x->stored &&
		(x->last > x->stored_last + EK_IDENTITY_SEEN_STEP ||
		 x->first < x->stored_first - EK_IDENTITY_SEEN_STEP);
}

/*
 * The size of a root's set: its stored members and itself (with a row or,
 * since 1.9, without), and the members the batch added.  Tells whether the
 * root is the canonical id of stored members (a userId the read did not
 * probe for that: a merge may re-point them).
 */
static int64
set_size(Graph *g, IdNode *root)
{
	if (root->stored_size < 0)
	{
		root->stored_size = ek_identity_set_size(g->stream_id, root->id);
		if (root->stored_size > 1)
			root->is_canon = true;
	}
	return root->stored_size + root->added;
}

/*
 * The cache of known links (pipeline/identity_cache.c, where why it is
 * exact is told): a link whose two ids it puts under one canonical id, at
 * a time within both ids' cached times give or take EK_IDENTITY_SEEN_STEP,
 * changes nothing and is dropped before the batch's ids are read.
 */

/* Does the cache say the link changes nothing? */
static bool
link_known(int32 stream_id, const Link *l)
{
	KnownId    *a = ek_idcache_find_keyed(stream_id, l->from, l->from_len, l->from_key);
	KnownId    *u;

	if (a == NULL ||
		(u = ek_idcache_find_keyed(stream_id, l->to, l->to_len, l->to_key)) == NULL)
		return false;
	if (a->canon != u->canon)
		return false;			/* interned: one pointer per canonical id */
	for (int e = 0; e < 2; e++)
	{
		KnownId    *x = e == 0 ? a : u;

		if (x->norow)
			continue;			/* a canonical id without a row: no times */
		if (l->ts > x->last + EK_IDENTITY_SEEN_STEP ||
			l->ts < x->first - EK_IDENTITY_SEEN_STEP)
			return false;
	}
	return true;
}

/*
 * Remember the rows of the graph's linked ids as they are now: written
 * (wrote) or as read.  First the entries the read found (IdNode.known),
 * updated in place, then the new ones: an insert may move entries.
 */
static void
cache_graph(Graph *g, bool wrote)
{
	for (int pass = 0; pass < 2; pass++)
	{
		for (int i = 0; i < g->n; i++)
		{
			IdNode	   *x = &g->nodes[i];
			TimestampTz first;
			TimestampTz last;
			bool		norow = false;

			if (x->parent == NULL || !x->linked)
				continue;
			if ((x->known != NULL) != (pass == 0))
				continue;
			if (!x->read && root_of(x) == x)
			{
				/* a canonical id without a row (since 1.9): nothing to time */
				if (!wrote && !x->is_canon)
					continue;
				first = last = 0;
				norow = true;
				ItemPointerSetInvalid(&x->tid);
			}
			else if (!x->read)
			{
				if (!wrote)
					continue;
				first = x->first;	/* a new row */
				last = x->last;
			}
			else if (wrote &&
					 (strcmp(x->stored_canon, root_of(x)->id) != 0 || seen_moved(x)))
			{
				first = Min(x->stored_first, x->first);	/* as the update wrote */
				last = Max(x->stored_last, x->last);
			}
			else
			{
				first = x->stored_first;
				last = x->stored_last;
			}
			if (pass == 0)
				ek_idcache_put_at(x->known, root_of(x)->id, first, last, &x->tid,
							 norow);
			else
				ek_idcache_put(g->stream_id, x->id, root_of(x)->id, first, last,
						  &x->tid, norow);
		}
	}
	/* the entries may have moved */
	for (int i = 0; i < g->n; i++)
		g->nodes[i].known = NULL;
}

/* Does the cache not know one of the ids that speculation would not read? */
static bool
some_uncached(Graph *g, const char **ids, int nids)
{
	for (int i = 0; i < nids; i++)
		if (g->is_from[i] && !g->is_to[i] && ek_idcache_find(g->stream_id, ids[i]) == NULL)
			return true;
	return false;
}

/*
 * The graph of the ids (sorted, unique) as stored: their rows, and nodes
 * for the canonical ids those rows name.  Speculating, the ids the cache
 * does not know are not read: they are taken for absent (see speculate).
 * Otherwise, the read tells whether to speculate next time.
 */
static void
read_graph(Graph *g, const char **ids, int nids, bool locked, bool speculating)
{
	IdentityLink *rows;
	int			nrows;
	ItemPointerData *hints;
	bool	   *uncached;
	KnownId   **knowns;
	bool	   *skip;
	int			nskipped = 0;
	bool	   *probe;
	bool	   *canonical;
	int			nprobe = 0;
	int			nuncached = 0;
	const char **extra;
	int			nextra = 0;

	/* where the cache says the ids' rows were: read there if still live */
	hints = palloc(sizeof(ItemPointerData) * Max(nids, 1));
	uncached = palloc(sizeof(bool) * Max(nids, 1));
	skip = palloc(sizeof(bool) * Max(nids, 1));
	knowns = palloc(sizeof(KnownId *) * Max(nids, 1));
	for (int i = 0; i < nids; i++)
	{
		KnownId    *k = knowns[i] = ek_idcache_find(g->stream_id, ids[i]);

		if (k != NULL)
			hints[i] = k->tid;
		else
			ItemPointerSetInvalid(&hints[i]);
		uncached[i] = k == NULL;
		nuncached += k == NULL;

		/*
		 * (only a from id: it is inserted, and the primary key says if it
		 * had a row; a userId without a row is not, since 1.9)
		 */
		skip[i] = speculating && k == NULL && g->is_from[i] && !g->is_to[i];
		/* a canonical id without a row, as cached: see below */
		skip[i] |= k != NULL && k->norow && strcmp(k->canon, ids[i]) == 0;
		nskipped += skip[i];
	}
	/* speculating: the from ids the cache does not know are taken for absent */
	nrows = ek_identity_links_read(g->stream_id, ids, nids, hints,
								   nskipped > 0 ? skip : NULL, &rows);

	/*
	 * A canonical id the cache knows without a row (it had none when
	 * cached) has none still if a row just read names it: sets only merge,
	 * and a merge that re-points it re-points its members with it.  Only
	 * the others are read (one re-pointed since has a row again).
	 */
	if (nskipped > 0)
	{
		bool	   *done = palloc(sizeof(bool) * nids);
		int			nleft_ids = 0;

		for (int i = 0; i < nids; i++)
			done[i] = !(skip[i] && knowns[i] != NULL && knowns[i]->norow);
		for (int r = 0; r < nrows; r++)
		{
			const char **at = bsearch(&rows[r].canonical_id, ids, nids, sizeof(char *), cmp_str);

			if (at != NULL)
				done[at - ids] = true;	/* confirmed: not read */
		}
		for (int i = 0; i < nids; i++)
			nleft_ids += !done[i];
		if (nleft_ids > 0)
		{
			IdentityLink *more;
			int			nmore = ek_identity_links_read(g->stream_id, ids, nids, hints,
													   done, &more);

			if (nmore > 0)
			{
				IdentityLink *all = palloc(sizeof(IdentityLink) * (nrows + nmore));

				memcpy(all, rows, sizeof(IdentityLink) * nrows);
				memcpy(all + nrows, more, sizeof(IdentityLink) * nmore);
				rows = all;
				nrows += nmore;
			}
		}
	}
	if (!speculating && nuncached > 0)
	{
		/* were the ids the cache does not know absent?  Then speculate. */
		int			found = 0;

		speculation_sync();

		for (int r = 0; r < nrows; r++)
		{
			const char **at = bsearch(&rows[r].id, ids, nids, sizeof(char *), cmp_str);

			found += at != NULL && uncached[at - ids];
		}
		if (g->stream_id != spec_stream_id)
		{
			/* one stream at a time: another's ids are not this one's */
			spec_stream_id = g->stream_id;
			clean_reads = Min(clean_reads, 0);
		}
		clean_reads = found == 0 ? clean_reads + 1 : Min(clean_reads, 0);
		speculate = clean_reads >= EK_SPECULATE_AFTER;
	}

	/*
	 * The ids, and the canonical ids their rows name: those that are not
	 * among the ids (mostly none: a set's canonical id links with its
	 * members) sorted apart and merged in, rather than sorting them all.
	 */
	extra = palloc(sizeof(char *) * Max(nrows, 1));
	for (int r = 0; r < nrows; r++)
		if (bsearch(&rows[r].canonical_id, ids, nids, sizeof(char *), cmp_str) == NULL)
			extra[nextra++] = rows[r].canonical_id;
	if (nextra > 1)
		qsort(extra, nextra, sizeof(char *), cmp_str);
	g->nodes = palloc0(sizeof(IdNode) * Max(nids + nextra, 1));
	g->n = 0;
	for (int i = 0, j = 0; i < nids || j < nextra;)
	{
		const char *next;
		KnownId    *known = NULL;

		if (j == nextra || (i < nids && strcmp(ids[i], extra[j]) <= 0))
		{
			known = knowns[i];
			next = ids[i++];
		}
		else
			next = extra[j++];
		if (g->n == 0 || strcmp(g->nodes[g->n - 1].id, next) != 0)
		{
			g->nodes[g->n].id = next;
			g->nodes[g->n].known = known;
			g->nodes[g->n].stored_size = -1;
			g->n++;
		}
	}

	/* a canonical id's row names itself: stored roots */
	for (int r = 0, xi = 0; r < nrows; r++)
	{
		IdNode	   *x;
		IdNode	   *c = node_of(g, rows[r].canonical_id);

		/* the rows come in the ids' order, as the nodes */
		while (xi < g->n && strcmp(g->nodes[xi].id, rows[r].id) < 0)
			xi++;
		x = xi < g->n && strcmp(g->nodes[xi].id, rows[r].id) == 0 ?
			&g->nodes[xi] : node_of(g, rows[r].id);

		x->stored = true;
		x->read = true;
		x->stored_canon = rows[r].canonical_id;
		x->stored_first = rows[r].first_seen;
		x->stored_last = rows[r].last_seen;
		x->tid = rows[r].tid;
		x->parent = c;
		c->is_canon = true;
		c->parent = c;
	}

	/*
	 * Since 1.9 a canonical id has no row: an id without one is new, or the
	 * canonical id of stored members.  The cache knows it for the canonical
	 * ids it saw (sets only merge; a re-pointed one has a row again).
	 * Otherwise, under the lock, a from id is probed (identity_links_canonical):
	 * linking it to another set is a merge.  A userId's stored members
	 * matter only to a merge, which asks for its set's size (set_size).
	 */
	probe = palloc(sizeof(bool) * Max(nids, 1));
	canonical = palloc(sizeof(bool) * Max(nids, 1));
	for (int i = 0, xi = 0; i < nids; i++)
	{
		IdNode	   *x;

		probe[i] = false;
		while (strcmp(g->nodes[xi].id, ids[i]) < 0)
			xi++;
		x = &g->nodes[xi];
		if (x->stored || x->is_canon)
			continue;
		if (knowns[i] != NULL && knowns[i]->norow &&
			strcmp(knowns[i]->canon, ids[i]) == 0)
		{
			x->is_canon = true;
			x->parent = x;
		}
		else if (locked && g->is_from[i])
		{
			probe[i] = true;
			nprobe++;
		}
	}
	if (nprobe > 0)
	{
		ek_identity_links_canonical(g->stream_id, ids, nids, probe, canonical);
		for (int i = 0; i < nids; i++)
			if (probe[i] && canonical[i])
			{
				IdNode	   *x = node_of(g, ids[i]);

				x->is_canon = true;
				x->parent = x;
			}
	}
}

/*
 * Apply the links to the graph, in order.  Without sizes (first, unlocked
 * pass) it stops at the first merge of two sets and returns true, a write
 * being certain; otherwise returns whether anything must be written.
 */
static bool
apply_links(Graph *g, const Link *links, int nlinks, bool with_sizes)
{
	for (int i = 0; i < nlinks; i++)
	{
		const Link *l = &links[i];
		IdNode	   *u = node_of(g, l->to);
		IdNode	   *a = node_of(g, l->from);
		IdNode	   *ru;
		IdNode	   *ra;

		CHECK_FOR_INTERRUPTS();
		for (int e = 0; e < 2; e++)
		{
			IdNode	   *x = e == 0 ? u : a;

			if (!x->linked)
				x->first = x->last = l->ts;
			x->linked = true;
			x->first = Min(x->first, l->ts);
			x->last = Max(x->last, l->ts);
		}
		if (u->parent == NULL)
		{
			/*
			 * a new user, or (not probed) the canonical id of stored members:
			 * its own canonical id (set_size counts it)
			 */
			u->parent = u;
		}
		ru = root_of(u);
		if (a->parent == NULL)
		{
			a->parent = ru;
			ru->added++;
			continue;
		}
		ra = root_of(a);
		if (ra == ru)
			continue;
		if (!with_sizes)
			return true;
		/*
		 * a merge: the alias's user wins, else the larger set (both sizes
		 * asked for: they tell whether the loser has stored members)
		 */
		{
			int64		su = set_size(g, ru);
			int64		sa = set_size(g, ra);

			if (l->alias || su >= sa)
			{
				ra->parent = ru;
				ru->added += sa;
			}
			else
			{
				ru->parent = ra;
				ra->added += su;
			}
		}
	}

	for (int i = 0; i < g->n; i++)
	{
		IdNode	   *x = &g->nodes[i];
		IdNode	   *r;

		if (x->parent == NULL)
			continue;
		r = root_of(x);
		/* a new member, or a rowless canonical id losing a merge */
		if (!x->stored && (x->linked || x->is_canon) && r != x)
			return true;
		if (x->stored && strcmp(r->id, x->stored_canon) != 0)
			return true;
		if (x->linked && seen_moved(x))
			return true;
	}
	return false;
}

/*
 * Write what the graph changed: the batch's changed ids first (updated in
 * place in C, where the read under the lock found their rows), then the
 * re-pointed sets (after the in-place updates: a changed row names its new
 * canonical id, which no set is re-pointed from, so the re-pointing does
 * not touch a row updated here), then the batch's new ids (inserted in C,
 * catalog/identity.c).  Caller: holds the identity lock, and the graph was
 * read under it.
 */
static int
write_graph(Graph *g)
{
	Datum	   *olds = palloc(sizeof(Datum) * g->n);
	Datum	   *news = palloc(sizeof(Datum) * g->n);
	IdentityLink *added = palloc(sizeof(IdentityLink) * g->n);
	IdentityLink *changed = palloc(sizeof(IdentityLink) * g->n);
	IdNode	  **added_nodes = palloc(sizeof(IdNode *) * g->n);
	IdNode	  **changed_nodes = palloc(sizeof(IdNode *) * g->n);
	Datum	   *rowless_olds = palloc(sizeof(Datum) * g->n);
	Datum	   *rowless_news = palloc(sizeof(Datum) * g->n);
	Datum	   *rowless_firsts = palloc(sizeof(Datum) * g->n);
	Datum	   *rowless_lasts = palloc(sizeof(Datum) * g->n);
	bool	   *rowless_nulls = palloc(sizeof(bool) * g->n);
	int			nadded = 0;
	int			nchanged = 0;
	int			nleft;
	int			nrepoint = 0;
	int			nrowless = 0;

	for (int i = 0; i < g->n; i++)
	{
		IdNode	   *x = &g->nodes[i];
		IdNode	   *r;

		if (x->parent == NULL)
			continue;
		r = root_of(x);
		/* a stored set whose canonical id lost a merge */
		if (x->is_canon && r != x)
		{
			olds[nrepoint] = CStringGetTextDatum(x->id);
			news[nrepoint] = CStringGetTextDatum(r->id);
			nrepoint++;
			if (!x->stored)
			{
				/* no row (since 1.9): one now, naming the winner */
				rowless_olds[nrowless] = olds[nrepoint - 1];
				rowless_news[nrowless] = news[nrepoint - 1];
				rowless_firsts[nrowless] = TimestampTzGetDatum(x->first);
				rowless_lasts[nrowless] = TimestampTzGetDatum(x->last);
				rowless_nulls[nrowless] = !x->linked;
				ItemPointerSetInvalid(&x->tid);
				nrowless++;
				continue;
			}
		}
		if (!x->linked)
			continue;
		if (!x->stored)
		{
			if (r == x)
				continue;		/* a canonical id: no row (since 1.9) */
			added[nadded].id = (char *) x->id;
			added[nadded].canonical_id = (char *) r->id;
			added[nadded].first_seen = x->first;
			added[nadded].last_seen = x->last;
			added_nodes[nadded] = x;
			nadded++;
		}
		else if (strcmp(x->stored_canon, r->id) != 0 || seen_moved(x))
		{
			/* read under the lock: its tid and times are current */
			changed[nchanged].id = (char *) x->id;
			changed[nchanged].canonical_id = (char *) r->id;
			changed[nchanged].first_seen = Min(x->stored_first, x->first);
			changed[nchanged].last_seen = Max(x->stored_last, x->last);
			changed[nchanged].tid = x->tid;
			changed_nodes[nchanged] = x;
			nchanged++;
		}
	}
	/* rowless canonical ids re-pointed: from their members, before these change */
	if (nrowless > 0)
		ek_identity_links_add_canonical(g->stream_id,
										ek_make_array(rowless_olds, NULL, nrowless, TEXTOID),
										ek_make_array(rowless_news, NULL, nrowless, TEXTOID),
										ek_make_array(rowless_firsts, rowless_nulls, nrowless,
													  TIMESTAMPTZOID),
										ek_make_array(rowless_lasts, rowless_nulls, nrowless,
													  TIMESTAMPTZOID));
	nleft = ek_identity_links_update_in_place(g->stream_id, changed, nchanged);
	for (int i = 0; i < nchanged; i++)	/* new versions */
		(nleft == 0 ? changed_nodes[i] : node_of(g, changed[i].id))->tid = changed[i].tid;
	if (nleft > 0)
	{
		/* rows not where the read found them (changed by hand): the upsert */
		Datum	   *ids = palloc(sizeof(Datum) * nleft);
		Datum	   *canons = palloc(sizeof(Datum) * nleft);
		Datum	   *firsts = palloc(sizeof(Datum) * nleft);
		Datum	   *lasts = palloc(sizeof(Datum) * nleft);

		for (int i = 0; i < nleft; i++)
		{
			/* (the upsert's version: where, this backend does not know) */
			ItemPointerSetInvalid(&node_of(g, changed[i].id)->tid);
			ids[i] = CStringGetTextDatum(changed[i].id);
			canons[i] = CStringGetTextDatum(changed[i].canonical_id);
			firsts[i] = TimestampTzGetDatum(changed[i].first_seen);
			lasts[i] = TimestampTzGetDatum(changed[i].last_seen);
		}
		ek_identity_links_update(g->stream_id,
								 ek_make_array(ids, NULL, nleft, TEXTOID),
								 ek_make_array(canons, NULL, nleft, TEXTOID),
								 ek_make_array(firsts, NULL, nleft, TIMESTAMPTZOID),
								 ek_make_array(lasts, NULL, nleft, TIMESTAMPTZOID));
	}
	if (nrepoint > 0)
		ek_identity_links_repoint(g->stream_id,
								  ek_make_array(olds, NULL, nrepoint, TEXTOID),
								  ek_make_array(news, NULL, nrepoint, TEXTOID));
	ek_identity_links_insert(g->stream_id, added, nadded);
	for (int i = 0; i < nadded; i++)
		added_nodes[i]->tid = added[i].tid;
	return nrepoint + nadded + nchanged;
}

typedef struct Speculation
{
	Graph	   *g;
	const char **ids;
	int			nids;
	const Link *links;
	int			nlinks;
	int			nwritten;
} Speculation;

static void
speculate_write(void *arg)
{
	Speculation *sp = arg;

	read_graph(sp->g, sp->ids, sp->nids, true, true);
	sp->nwritten = apply_links(sp->g, sp->links, sp->nlinks, true) ? write_graph(sp->g) : 0;
}

/*
 * Read and write the batch's links speculating (see speculate), in a
 * subtransaction; false if it must be done again the ordinary way (an id
 * taken for absent was stored, or there was nothing to speculate on).
 * Caller: holds the identity lock.
 */
static bool
write_speculatively(Graph *g, const char **ids, int nids,
					const Link *links, int nlinks, int *nwritten)
{
	Speculation sp = {g, ids, nids, links, nlinks, 0};
	ErrorData  *edata;

	if (!some_uncached(g, ids, nids))
		return false;			/* no probe to save */
	ek_idcache_in_speculation(true);
	edata = ek_run_in_subtransaction(speculate_write, &sp);
	ek_idcache_in_speculation(false);
	if (edata == NULL)
	{
		*nwritten = sp.nwritten;
		return true;
	}
	if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
		ReThrowError(edata);
	FreeErrorData(edata);
	speculate = false;
	clean_reads = EK_SPECULATE_AFTER - EK_SPECULATE_AFTER_MISS;
	return false;
}

/*
 * Take the stream's identity lock until the end of the transaction, waiting
 * for it unless dont_wait; returns whether it was taken.
 */
static bool
acquire_identity_lock(int32 stream_id, bool dont_wait)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) stream_id,
						 EK_IDENTITY_LOCK_KEY, EK_IDENTITY_LOCK_FIELD4);
	return LockAcquire(&tag, ExclusiveLock, false, dont_wait) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * Take the stream's identity lock until the end of the transaction (also
 * forget_user's, so that no ingest links the ids it erases meanwhile).
 */
void
ek_identity_lock(int32 stream_id)
{
	(void) acquire_identity_lock(stream_id, false);
	/* forget_user removes links: this backend's cache forgets them all */
	ek_idcache_flush();
}

/* Take the stream's identity lock if no one holds it; never waits. */
static bool
try_identity_lock(int32 stream_id)
{
	return acquire_identity_lock(stream_id, true);
}

/*
 * Keep the identity graph of the events a batch stored (in item order).
 * Returns the rows written (0 when the graph already said it all).
 * Caller: SPI connected, as the ingesting role (the catalog statements
 * run as the extension owner).
 */
int
ek_identity_link_events(const StreamInfo *stream, SegmentEvent **events, int n)
{
	Link	   *links = NULL;
	int			nlinks = 0;
	const char **ids;
	int			nids = 0;
	int			nunique = 0;
	int			nwritten;
	Graph		g;

	if (n == 0 || !ek_identity_installed())
		return 0;
	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = events[i];

		if (ev->user_id == NULL)
			continue;
		for (int k = 0; k < 2; k++)
		{
			const char *from = k == 0 ? ev->anonymous_id : ev->previous_id;

			if (from == NULL || strcmp(from, ev->user_id) == 0 ||
				(k == 1 && strcmp(ev->type, "alias") != 0))
				continue;
			if (links == NULL)
				links = palloc(sizeof(Link) * 2 * n);
			links[nlinks].from = from;
			links[nlinks].to = ev->user_id;
			links[nlinks].alias = k == 1;
			links[nlinks].ts = ev->ts;
			nlinks++;
		}
	}
	if (nlinks == 0)
		return 0;

	/* drop the links the cache says change nothing */
	ek_idcache_get();
	speculation_sync();
	for (int i = 0; i < nlinks; i++)
	{
		Link	   *l = &links[i];

		l->from_len = strlen(l->from);
		l->from_key = ek_idcache_key(stream->stream_id, l->from, l->from_len);
		ek_idcache_prefetch(l->from_key);
		l->to_len = strlen(l->to);
		l->to_key = ek_idcache_key(stream->stream_id, l->to, l->to_len);
		ek_idcache_prefetch(l->to_key);
	}
	{
		int			nkept = 0;

		for (int i = 0; i < nlinks; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (!link_known(stream->stream_id, &links[i]))
				links[nkept++] = links[i];
		}
		nlinks = nkept;
	}
	if (nlinks == 0)
	{
		last_stream_id = stream->stream_id;
		last_wrote = false;
		return 0;
	}

	/* the batch's ids, sorted and unique, and what the links name each as */
	{
		BatchId    *all = palloc(sizeof(BatchId) * 2 * nlinks);
		bool	   *is_from = palloc0(sizeof(bool) * 2 * nlinks);
		bool	   *is_to = palloc0(sizeof(bool) * 2 * nlinks);

		for (int i = 0; i < nlinks; i++)
		{
			all[nids].id = links[i].from;
			all[nids++].from = true;
			all[nids].id = links[i].to;
			all[nids++].from = false;
		}
		sort_batch_ids(all, nids);
		ids = palloc(sizeof(char *) * nids);
		for (int i = 0; i < nids; i++)
		{
			if (nunique == 0 || strcmp(ids[nunique - 1], all[i].id) != 0)
				ids[nunique++] = all[i].id;
			if (all[i].from)
				is_from[nunique - 1] = true;
			else
				is_to[nunique - 1] = true;
		}
		g.is_from = is_from;
		g.is_to = is_to;
	}

	g.stream_id = stream->stream_id;
	if (!(last_wrote && last_stream_id == stream->stream_id &&
		  try_identity_lock(stream->stream_id)))
	{
		/*
		 * A read without the lock: most batches of a known audience stop
		 * here (it never speculates: a batch whose links are known never
		 * waits for the lock, whatever this backend's cache knows).
		 */
		read_graph(&g, ids, nunique, false, false);
		if (!apply_links(&g, links, nlinks, false))
		{
			cache_graph(&g, false);
			last_stream_id = stream->stream_id;
			last_wrote = false;
			return 0;
		}
	}

	/* something to write: one batch at a time per stream, from fresh rows */
	(void) acquire_identity_lock(stream->stream_id, false);
	speculation_sync();
	if (!(speculate && spec_stream_id == stream->stream_id &&
		  write_speculatively(&g, ids, nunique, links, nlinks, &nwritten)))
	{
		read_graph(&g, ids, nunique, true, false);
		nwritten = apply_links(&g, links, nlinks, true) ? write_graph(&g) : 0;
	}
	cache_graph(&g, nwritten > 0);
	last_stream_id = stream->stream_id;
	last_wrote = nwritten > 0;
	return nwritten;
}

/*
 * Give the events (those without problems so far) that carry a
 * suppressed id the problem "suppressed".  Caller: SPI connected.
 */
void
ek_identity_check_suppressed(const StreamInfo *stream, SegmentEvent *events, int n)
{
	Datum	   *elems;
	int			nelems = 0;
	List	   *matched;
	const char **hits;
	int			nhits = 0;
	ListCell   *lc;

	if (n == 0 || !ek_suppressions_exist(stream->stream_id))
		return;
	elems = palloc(sizeof(Datum) * 3 * n);
	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = &events[i];

		if (!ek_event_ok(ev))
			continue;
		if (ev->user_id)
			elems[nelems++] = CStringGetTextDatum(ev->user_id);
		if (ev->anonymous_id)
			elems[nelems++] = CStringGetTextDatum(ev->anonymous_id);
		if (ev->previous_id)
			elems[nelems++] = CStringGetTextDatum(ev->previous_id);
	}
	if (nelems == 0)
		return;
	matched = ek_suppressions_match(stream->stream_id,
									ek_make_array(elems, NULL, nelems, TEXTOID));
	if (matched == NIL)
		return;
	hits = palloc(sizeof(char *) * list_length(matched));
	foreach(lc, matched)
		hits[nhits++] = lfirst(lc);
	qsort(hits, nhits, sizeof(char *), cmp_str);

	for (int i = 0; i < n; i++)
	{
		SegmentEvent *ev = &events[i];
		const char *fields[3] = {"userId", "anonymousId", "previousId"};
		const char *values[3] = {ev->user_id, ev->anonymous_id, ev->previous_id};

		CHECK_FOR_INTERRUPTS();
		if (!ek_event_ok(ev))
			continue;
		for (int k = 0; k < 3; k++)
			if (values[k] != NULL &&
				bsearch(&values[k], hits, nhits, sizeof(char *), cmp_str) != NULL)
			{
				ek_add_problem(&ev->problems, EK_REASON_SUPPRESSED,
							   "the event's %s was erased by eventkit.forget_user() and is suppressed",
							   fields[k]);
				break;
			}
	}
}
