/*-------------------------------------------------------------------------
 *
 * json_parse.h
 *	  The fast path from JSON text to jsonb (json_parse.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_PIPELINE_JSON_PARSE_H
#define EK_PIPELINE_JSON_PARSE_H

#include "postgres.h"

#include "utils/jsonb.h"

extern Jsonb *ek_json_to_jsonb(const char *str, int len);

#endif							/* EK_PIPELINE_JSON_PARSE_H */
