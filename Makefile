# eventkit — PGXS build
MODULE_big = eventkit
OBJS = \
	src/eventkit.o \
	src/guc.o \
	src/catalog.o \
	src/partition.o \
	src/event.o \
	src/json_parse.o \
	src/dedup.o \
	src/ledger_filter.o \
	src/ingest.o \
	src/quarantine.o \
	src/writer.o \
	src/maintenance.o \
	src/plan.o \
	src/plan_check.o \
	src/jsonschema.o \
	src/jsonschema_compile.o \
	src/jsonschema_format.o \
	src/jsonschema_idn.o \
	src/jsonschema_meta.o \
	src/jsonschema_regex.o \
	src/jsonschema_sql.o \
	src/jobs.o \
	src/worker.o \
	src/rollup.o \
	src/rollup_sql.o \
	src/rollup_fold.o src/rollup_delta.o \
	src/rollup_values.o \
	src/intake/http.o src/intake/http_api.o src/intake/write_keys.o

EXTENSION = eventkit
DATA = eventkit--1.0.sql eventkit--1.0--1.1.sql eventkit--1.1--1.2.sql eventkit--1.2--1.3.sql
PGFILEDESC = "eventkit - event-collection backbone for PostgreSQL"

PG_CPPFLAGS = -I$(srcdir)/src $(ICU_CFLAGS)
PG_CFLAGS = -Werror -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels
# the HTTP intake (src/intake/): libmicrohttpd and zlib
SHLIB_LINK += -lmicrohttpd -lz

REGRESS = streams ingest dedup ledger pinned_formats clock_skew clock_bounds text_input json_parse bad_input limits partition_cap security maintenance maintenance_isolation writer dump_catalog \
	jsonschema regex_crosscheck idn_formats validator_cancel plans rollup rollup_random rollup_fold rollup_delta rollup_bad_values jobs quarantine plan_catalog partition_columns write_keys upgrade
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=test/eventkit.conf

ISOLATION = concurrent_dedup concurrent_abort ledger_rotation ledger_size_rotation plan_change rollup_refresh quarantine_retry
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso --temp-instance=./tmp_check_iso --temp-config=test/eventkit.conf

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = tmp_check tmp_check_iso results regression.diffs regression.out test/isolation/output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# the IDN formats (src/jsonschema_idn.c): libidn2 and ICU, when PostgreSQL has ICU
ifeq ($(with_icu),yes)
SHLIB_LINK += -lidn2 $(ICU_LIBS)
endif
