/*-------------------------------------------------------------------------
 *
 * values.h
 *	  The rules for a rollup's bad values (values.c), which the fold and
 *	  the realtime views apply alike.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_ROLLUP_VALUES_H
#define EK_ROLLUP_VALUES_H

#include "postgres.h"

#include "utils/numeric.h"

#include "rollup/rollup.h"

extern int	ek_rollup_number_reason(Numeric num, RollupRange range);
extern Datum ek_rollup_bound_text(Datum value, bool *truncated);

#endif							/* EK_ROLLUP_VALUES_H */
