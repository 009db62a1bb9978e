/*-------------------------------------------------------------------------
 *
 * clock.c
 *	  The job workers' notion of now: when premake and retention jobs run,
 *	  which partitions are due.  The server's clock, always, in a
 *	  production build.
 *
 *	  A test build (make EK_TESTING=1, which test/run_tests.sh uses) can
 *	  move it with eventkit.testing_clock_offset, so that TAP tests can make
 *	  days pass in seconds.  The setting, and this code, exist only in such
 *	  a build (as TimescaleDB's swappable clock exists only in its debug
 *	  builds), so no setting of a production server can move the clock its
 *	  jobs keep time by: there, eventkit.testing_clock_offset is an unknown
 *	  parameter of the reserved prefix eventkit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "util/clock.h"
#include "util/guc.h"

TimestampTz
ek_job_clock(void)
{
#ifdef EK_TESTING
	return GetCurrentTimestamp() + (int64) ek_testing_clock_offset * USECS_PER_SEC;
#else
	return GetCurrentTimestamp();
#endif
}
