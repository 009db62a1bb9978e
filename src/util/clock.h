/*-------------------------------------------------------------------------
 *
 * clock.h
 *	  The clock eventkit's jobs read (clock.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_UTIL_CLOCK_H
#define EK_UTIL_CLOCK_H

#include "postgres.h"

#include "datatype/timestamp.h"

extern TimestampTz ek_job_clock(void);

#endif							/* EK_UTIL_CLOCK_H */
