/*-------------------------------------------------------------------------
 *
 * btree_probe.c
 *	  Equality probes of a two-column btree index, the first column fixed
 *	  (a stream id) and the second probed for many values in ascending
 *	  order: the heap tids of each value's entries, with one descent of the
 *	  tree for all the values that fall on one leaf page.
 *
 *	  An index scan per value (index_rescan, index_getnext_slot) descends
 *	  from the root each time, and pays the scan's set-up (its keys
 *	  preprocessed, the leaf's matching items copied out) for an answer
 *	  that is mostly "absent".  A batch's ids, sorted, often fall on the
 *	  same leaf (the identity stage probes its unknown userIds in the
 *	  primary key, and its new anonymous ids in identity_links_canonical:
 *	  keys of one shape among keys of another shape, all on one or two
 *	  leaves): here a value is searched on the leaf page the previous one
 *	  was found on when it is below that page's high key (or the page is
 *	  the rightmost), with the page's read lock kept meanwhile; otherwise
 *	  the tree is descended again (_bt_search).  The heap is not read here:
 *	  the caller fetches the tids with its snapshot (table_index_fetch_tuple),
 *	  after the lock is released, as an index scan returns them.
 *
 *	  A value whose equal entries reach the end of the leaf page and that
 *	  is not below the page's high key (they may go on on the next page) is
 *	  left to the caller (fallback): nothing is read past a leaf page's end.
 *	  Values must be in the index's order for the leaf to be re-used: each
 *	  is compared with the previous one by the index's own comparison, and a
 *	  value out of order descends the tree.
 *
 *	  No predicate lock on the index's pages (SERIALIZABLE; the caller's
 *	  heap fetch locks the tuple it reads), as the heap fetches at a known
 *	  tid the identity stage makes: a reader under its own lock.  Items marked
 *	  dead are returned as others are (the heap fetch says they are not
 *	  visible); nothing is marked dead here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/itup.h"
#include "access/nbtree.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#include "util/btree_probe.h"
#include "util/compat.h"

static void
add_tid(ItemPointerData **tids, int *ntids, int *maxtids, ItemPointer tid)
{
	if (*ntids >= *maxtids)
	{
		*maxtids *= 2;
		*tids = repalloc(*tids, sizeof(ItemPointerData) * *maxtids);
	}
	(*tids)[(*ntids)++] = *tid;
}

/*
 * May the leaf page held in buf (read-locked) answer the value in key, the
 * previous value having been searched there?  When the value comes after
 * the previous one in the index's order and before the page's high key
 * (every entry of it would then be on this page, whose key space starts at
 * or below the previous value), or the page is the rightmost.
 */
static bool
leaf_covers(Relation index, BTScanInsert key, Buffer buf, Datum prev)
{
	Page		page = BufferGetPage(buf);
	BTPageOpaque opaque = BTPageGetOpaque(page);
	ScanKey		sk = &key->scankeys[1];
	int32		cmp = DatumGetInt32(FunctionCall2Coll(&sk->sk_func, sk->sk_collation,
													  sk->sk_argument, prev));

	if (sk->sk_flags & SK_BT_DESC)
		INVERT_COMPARE_RESULT(cmp);
	if (cmp <= 0)
		return false;			/* not after the previous value */
	return P_RIGHTMOST(opaque) || _bt_compare(index, key, page, P_HIKEY) < 0;
}

/*
 * The heap tids of the entries (first, seconds[i]) of index (two key
 * columns, a btree), for the n values, best in ascending order: into
 * results[i] and *tids (palloc'd); returns the number of tids.  Read with
 * snapshot (only for the tree's own checks: the caller judges the tids'
 * visibility).  Caller: holds a lock on the index.
 */
int
ek_btree_probe_sorted(Relation index, Snapshot snapshot, Datum first,
					  const Datum *seconds, int n, EkProbeResult *results,
					  ItemPointerData **tids)
{
	Datum		values[2];
	bool		isnull[2] = {false, false};
	BTScanInsert key;
	Buffer		buf = InvalidBuffer;
	int			ntids = 0;
	int			maxtids = Max(n, 8);
	int			i;

	*tids = palloc(sizeof(ItemPointerData) * maxtids);
	if (n == 0)
		return 0;
	if (IndexRelationGetNumberOfKeyAttributes(index) != 2 ||
		index->rd_rel->relam != BTREE_AM_OID)
		elog(ERROR, "eventkit: index \"%s\" is not a btree of two key columns",
			 RelationGetRelationName(index));
	values[0] = first;
	values[1] = seconds[0];
	key = _bt_mkscankey(index, index_form_tuple(RelationGetDescr(index), values, isnull));
	key->scantid = NULL;		/* every entry of a value, whatever its tid */

	for (i = 0; i < n; i++)
	{
		Page		page;
		BTPageOpaque opaque;
		OffsetNumber low;
		OffsetNumber high;
		OffsetNumber maxoff;
		OffsetNumber off;

		key->scankeys[1].sk_argument = seconds[i];
		results[i].start = ntids;
		results[i].count = 0;
		results[i].fallback = false;
		if (BufferIsValid(buf) && !leaf_covers(index, key, buf, seconds[i - 1]))
		{
			_bt_relbuf(index, buf);
			buf = InvalidBuffer;
		}
		if (!BufferIsValid(buf))
		{
			CHECK_FOR_INTERRUPTS();
			_bt_freestack(ek_bt_search(index, key, &buf, snapshot));
			if (!BufferIsValid(buf))
				break;			/* an empty index: nothing anywhere */
		}

		/* the first item at or after the value (the leaf's _bt_binsrch) */
		page = BufferGetPage(buf);
		opaque = BTPageGetOpaque(page);
		low = P_FIRSTDATAKEY(opaque);
		maxoff = PageGetMaxOffsetNumber(page);
		high = maxoff + 1;
		while (high > low)
		{
			OffsetNumber mid = low + (high - low) / 2;

			if (_bt_compare(index, key, page, mid) > 0)
				low = mid + 1;
			else
				high = mid;
		}
		for (off = low; off <= maxoff; off++)
		{
			IndexTuple	itup;

			if (_bt_compare(index, key, page, off) != 0)
				break;
			itup = (IndexTuple) PageGetItem(page, PageGetItemId(page, off));
			if (BTreeTupleIsPosting(itup))
			{
				for (int j = 0; j < BTreeTupleGetNPosting(itup); j++)
					add_tid(tids, &ntids, &maxtids, BTreeTupleGetPostingN(itup, j));
			}
			else
				add_tid(tids, &ntids, &maxtids, &itup->t_tid);
		}
		results[i].count = ntids - results[i].start;
		if (off > maxoff && results[i].count > 0 && !P_RIGHTMOST(opaque) &&
			_bt_compare(index, key, page, P_HIKEY) >= 0)
		{
			/* its entries may go on on the next page: the caller's */
			ntids = results[i].start;
			results[i].count = 0;
			results[i].fallback = true;
		}
	}
	for (; i < n; i++)
	{
		/* (an empty index) */
		results[i].start = ntids;
		results[i].count = 0;
		results[i].fallback = false;
	}
	if (BufferIsValid(buf))
		_bt_relbuf(index, buf);
	return ntids;
}
