/*-------------------------------------------------------------------------
 *
 * values.h
 *	  The rules for a rollup's bad values (values.c), which the fold and
 *	  the realtime views apply alike, and the fold's reading of a measure's
 *	  number at its JSON path.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_VALUES_H
#define EK_ROLLUP_VALUES_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "rollup/rollup.h"

/* One element of a JSON path, as the #> operator reads it. */
typedef struct RollupPathKey
{
	const char *key;
	int			len;
	bool		is_index;		/* a valid integer, for arrays */
	int			index;
} RollupPathKey;

extern int	ek_rollup_number_reason(Numeric num, RollupRange range);
extern RollupPathKey *ek_rollup_path_keys(List *keys, int *n);
extern bool ek_rollup_json_path_value(Jsonb *jb, const RollupPathKey *path, int npath,
									  JsonbValue *out);
extern Datum ek_rollup_bound_text(Datum value, bool *truncated);
extern Datum ek_rollup_skips_jsonb(const RollupSkips *skips, bool *isnull);

#endif							/* EK_ROLLUP_VALUES_H */
