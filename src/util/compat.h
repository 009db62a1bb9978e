/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The PostgreSQL version differences eventkit papers over, in one place:
 *	  macros with one spelling for PostgreSQL 15 and the releases after it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_COMPAT_H
#define EK_UTIL_COMPAT_H

#include "postgres.h"

#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"

/* Does the current user own the relation?  (object_ownercheck from 16 on) */
#if PG_VERSION_NUM >= 160000
#define ek_owns_relation(relid) \
	object_ownercheck(RelationRelationId, (relid), GetUserId())
#else
#define ek_owns_relation(relid) pg_class_ownercheck((relid), GetUserId())
#endif

/* A privilege on a schema (object_aclcheck from 16 on) */
#if PG_VERSION_NUM >= 160000
#define ek_namespace_aclcheck(nspid, roleid, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#else
#define ek_namespace_aclcheck(nspid, roleid, mode) \
	pg_namespace_aclcheck((nspid), (roleid), (mode))
#endif

/* A privilege on a function (object_aclcheck from 16 on) */
#if PG_VERSION_NUM >= 160000
#define ek_proc_aclcheck(procid, roleid, mode) \
	object_aclcheck(ProcedureRelationId, (procid), (roleid), (mode))
#else
#define ek_proc_aclcheck(procid, roleid, mode) \
	pg_proc_aclcheck((procid), (roleid), (mode))
#endif

/* ExecInsertIndexTuples() took an onlySummarizing argument in 16 */
#if PG_VERSION_NUM >= 160000
#define ek_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#else
#define ek_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#endif

/*
 * table_tuple_update() says which indexes need the new version: a bool up to
 * 15, a TU_UpdateIndexes from 16 on (none, all, or the summarizing ones
 * only).  ek_tuple_update() updates a row in place with one spelling (the
 * failure data and lock mode are not kept: callers that get something but
 * TM_Ok leave the row to another path), and ek_update_indexes() then inserts
 * the new version into the indexes that need it (the estate must have a
 * range table holding the relation: the update's index hint reads it).
 */
#if PG_VERSION_NUM >= 160000
typedef TU_UpdateIndexes EkUpdateIndexes;
#define ek_update_needs_indexes(u) ((u) != TU_None)
#define ek_update_index_tuples(rri, slot, estate, u) \
	ExecInsertIndexTuples((rri), (slot), (estate), true, false, NULL, NIL, (u) == TU_Summarizing)
#else
typedef bool EkUpdateIndexes;
#define ek_update_needs_indexes(u) (u)
#define ek_update_index_tuples(rri, slot, estate, u) \
	ExecInsertIndexTuples((rri), (slot), (estate), true, false, NULL, NIL)
#endif

static inline TM_Result
ek_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
				CommandId cid, Snapshot snapshot, EkUpdateIndexes *update_indexes)
{
	TM_FailureData tmfd;
	LockTupleMode lockmode;

	return table_tuple_update(rel, otid, slot, cid, snapshot, InvalidSnapshot,
							  true, &tmfd, &lockmode, update_indexes);
}

static inline void
ek_update_indexes(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
				  EkUpdateIndexes update_indexes)
{
	if (rri->ri_NumIndices > 0 && ek_update_needs_indexes(update_indexes))
		list_free(ek_update_index_tuples(rri, slot, estate, update_indexes));
}

/*
 * A btree's descent to the leaf page of a key, read-locked (nbtree.h's
 * _bt_search): it takes the snapshot up to 15, the heap relation (unused
 * for a read) from 16 on.
 */
#if PG_VERSION_NUM >= 160000
#define ek_bt_search(index, key, bufp, snapshot) \
	_bt_search((index), NULL, (key), (bufp), BT_READ)
#else
#define ek_bt_search(index, key, bufp, snapshot) \
	_bt_search((index), (key), (bufp), BT_READ, (snapshot))
#endif

/* PostgreSQL 17's foreach_ptr(), for older servers */
#ifndef foreach_ptr
#define foreach_ptr(type, var, lst) \
	for (type *var = 0, *var##__outerloop = (type *) 1; \
		 var##__outerloop; \
		 var##__outerloop = 0) \
		for (ForEachState var##__state = {(lst), 0}; \
			 (var##__state.l != NIL && \
			  var##__state.i < var##__state.l->length && \
			  (var = (type *) lfirst(&var##__state.l->elements[var##__state.i]), true)); \
			 var##__state.i++)
#endif

#endif							/* EK_UTIL_COMPAT_H */
