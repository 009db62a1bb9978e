/*-------------------------------------------------------------------------
 *
 * quarantine_poll.h
 *	  A Citus coordinator's scheduler looking at its workers' quarantines
 *	  for events that wait for a partition (worker/quarantine_poll.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_QUARANTINE_POLL_H
#define EK_QUARANTINE_POLL_H

#include "datatype/timestamp.h"

extern bool ek_poll_worker_quarantines(TimestampTz now);
extern long ek_worker_poll_wait_ms(TimestampTz now);

#endif							/* EK_QUARANTINE_POLL_H */
