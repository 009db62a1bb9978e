# eventkit — PGXS build
MODULE_big = eventkit
OBJS = \
	src/eventkit.o \
	src/util/guc.o \
	src/util/clock.o \
	src/util/spi.o \
	src/util/owner.o \
	src/util/bulk_insert.o \
	src/util/jsonb_raw.o \
	src/util/citus.o \
	src/util/citus_shards.o \
	src/util/relcache.o \
	src/util/btree_probe.o \
	src/catalog/catalog.o \
	src/catalog/streams.o \
	src/catalog/quarantine.o \
	src/catalog/batches.o \
	src/catalog/generations.o \
	src/catalog/plans.o \
	src/catalog/rollups.o \
	src/catalog/jobs.o \
	src/catalog/intake_keys.o \
	src/catalog/kafka.o \
	src/catalog/identity.o \
	src/catalog/cluster.o \
	src/jsonschema/jsonschema.o \
	src/jsonschema/jsonschema_compile.o \
	src/jsonschema/jsonschema_dialect.o \
	src/jsonschema/jsonschema_format.o \
	src/jsonschema/jsonschema_idn.o \
	src/jsonschema/jsonschema_meta.o \
	src/jsonschema/jsonschema_regex.o \
	src/jsonschema/jsonschema_sql.o \
	src/pipeline/problem.o \
	src/pipeline/event.o \
	src/pipeline/json_parse.o \
	src/pipeline/payload.o \
	src/pipeline/columns.o \
	src/pipeline/partition.o \
	src/pipeline/writer.o \
	src/pipeline/dist_node.o \
	src/pipeline/identity.o \
	src/pipeline/identity_cache.o \
	src/pipeline/identity_dist.o \
	src/pipeline/plan/plan.o \
	src/pipeline/plan/plan_check.o \
	src/pipeline/plan/plan_formats.o \
	src/pipeline/plan/plan_schema.o \
	src/pipeline/plan/plan_columns.o \
	src/pipeline/plan/plan_sql.o \
	src/pipeline/dedup/ledger.o \
	src/pipeline/dedup/ledger_filter.o \
	src/pipeline/dedup/ledger_key.o \
	src/pipeline/dedup/dedup.o \
	src/pipeline/dedup/dist_ledger.o \
	src/pipeline/dedup/dist_claim.o \
	src/rollup/definition.o \
	src/rollup/definition_sql.o \
	src/rollup/filter.o \
	src/rollup/values.o \
	src/rollup/hll.o \
	src/rollup/hll_hash.o \
	src/rollup/view.o \
	src/rollup/fold.o \
	src/rollup/fold_merge.o \
	src/rollup/fold_write.o \
	src/rollup/delta.o \
	src/rollup/wdelta.o \
	src/rollup/backfill.o \
	src/rollup/derived.o \
	src/rollup/refresh.o \
	src/rollup/manage.o \
	src/ingest/ingest.o \
	src/ingest/quarantine.o \
	src/stream/stream.o \
	src/stream/distribute.o \
	src/stream/cluster_stats.o \
	src/stream/route.o \
	src/stream/identity.o \
	src/stream/owner_change.o \
	src/worker/shmem.o \
	src/worker/maintenance.o \
	src/worker/jobs.o \
	src/worker/scheduler.o \
	src/worker/quarantine_poll.o \
	src/worker/launcher.o \
	src/intake/http_settings.o \
	src/intake/http.o \
	src/intake/http_api.o \
	src/intake/write_keys.o \
	src/intake/kafka_source.o \
	src/intake/kafka_consumer.o

EXTENSION = eventkit
DATA = eventkit--1.0.sql eventkit--1.0--1.1.sql eventkit--1.1--1.2.sql eventkit--1.2--1.3.sql \
	eventkit--1.3.sql eventkit--1.3--1.4.sql eventkit--1.4.sql \
	eventkit--1.4--1.5.sql eventkit--1.5.sql \
	eventkit--1.5--1.6.sql eventkit--1.6.sql \
	eventkit--1.6--1.7.sql eventkit--1.7.sql \
	eventkit--1.7--1.8.sql eventkit--1.8.sql \
	eventkit--1.8--1.9.sql eventkit--1.9.sql \
	eventkit--1.9--1.10.sql eventkit--1.10.sql \
	eventkit--1.10--1.11.sql eventkit--1.11.sql \
	eventkit--1.11--1.12.sql eventkit--1.12.sql \
	eventkit--1.12--1.13.sql eventkit--1.13.sql \
	eventkit--1.13--1.14.sql eventkit--1.14.sql \
	eventkit--1.14--1.15.sql eventkit--1.15.sql \
	eventkit--1.15--1.16.sql eventkit--1.16.sql \
	eventkit--1.16--1.17.sql eventkit--1.17.sql
PGFILEDESC = "eventkit - event-collection backbone for PostgreSQL"

PG_CPPFLAGS = -I$(srcdir)/src $(ICU_CFLAGS)

# A test build (make EK_TESTING=1, as test/run_tests.sh builds) has the test
# hooks eventkit.testing_clock_offset, eventkit.testing_json_crosscheck and
# eventkit.testing_regex_crosscheck
# (src/util/guc.h); a production build has none.
ifdef EK_TESTING
PG_CPPFLAGS += -DEK_TESTING
endif
PG_CFLAGS = -Werror -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels
# the intakes (src/intake/): libmicrohttpd and zlib for HTTP, librdkafka for Kafka
SHLIB_LINK += -lmicrohttpd -lz -lrdkafka

REGRESS = streams ingest dedup ledger pinned_formats clock_skew clock_bounds text_input json_parse bad_input limits partition_cap security maintenance maintenance_isolation writer dump_catalog catalog_schema \
	jsonschema regex_crosscheck idn_formats jsonb_raw validator_cancel plans rollup rollup_random rollup_fold rollup_delta rollup_bad_values jobs quarantine plan_catalog partition_columns write_keys kafka_source upgrade rollup_options rollup_of plan_formats event_views analytics identity forget_user rollup_cdelta rollup_cmerge identity_cache rollup_realtime identity_tid rollup_hll_merge stream_owner identity_probe route parse_tree
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=test/eventkit.conf

ISOLATION = concurrent_dedup concurrent_abort ledger_rotation ledger_size_rotation plan_change rollup_refresh quarantine_retry rollup_options identity_merge inflight_claims identity_cache identity_retime identity_tid identity_speculate late_partition_lock rollup_measures
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso --temp-instance=./tmp_check_iso --temp-config=test/eventkit.conf

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = tmp_check tmp_check_iso results regression.diffs regression.out test/isolation/output_iso \
	test/kafka/mock_cluster

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Intake from Kafka: the TAP tests and test/bench/kafka.sh run a mock Kafka
# cluster (librdkafka's) in this helper.
test/kafka/mock_cluster: test/kafka/mock_cluster.c
	$(CC) -Wall -Werror -O2 -o $@ $< -lrdkafka

installcheck: test/kafka/mock_cluster

# the IDN formats (src/jsonschema/jsonschema_idn.c): libidn2 and ICU, when PostgreSQL has ICU
ifeq ($(with_icu),yes)
SHLIB_LINK += -lidn2 $(ICU_LIBS)
endif
