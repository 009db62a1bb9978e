
# Copyright: eventkit authors
#
# The background worker's jobs run a stream's (or rollup's) work as its
# owner, under SECURITY_RESTRICTED_OPERATION, never as the bootstrap
# superuser the worker connects as.  A role that owns only its schema
# (mallory) puts code on its stream that records who runs it and tries to
# make mallory a superuser when it runs as one:
#
#  - redrive (replay of quarantined out_of_range events): a BEFORE INSERT
#    trigger and a deferred constraint trigger on the stream;
#  - rollup refresh: a trigger on the rollup table;
#  - premake and retention: event triggers (made by a superuser) record the
#    role that creates and drops mallory's partitions;
#  - ledger: the stream's ledger job still runs (it works on eventkit's own
#    tables, as the extension owner).
#
# Each path must record mallory (not a superuser) in a job worker's session
# (whose session user is the bootstrap superuser), and mallory must never
# become a superuser.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EventkitTest;

my $node = PostgreSQL::Test::Cluster->new('jobsec');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
});
$node->start;

sub poll { poll_jobs($node, 'postgres', @_) }
sub sql  { $node->safe_psql('postgres', @_) }

# Who ran what: rows written by mallory's triggers and by the event triggers.
sql(q{
CREATE EXTENSION eventkit;
CREATE ROLE mallory LOGIN;
CREATE SCHEMA mallory AUTHORIZATION mallory;
CREATE TABLE public.audit (path text, item text, who text, su boolean, sess text);
GRANT INSERT, SELECT ON public.audit TO PUBLIC;

CREATE FUNCTION public.record_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.audit
  SELECT 'ddl', c.command_tag || ' ' || c.object_identity, current_user,
         (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
         session_user
    FROM pg_event_trigger_ddl_commands() c
   WHERE c.schema_name = 'mallory' AND c.command_tag IN ('CREATE TABLE', 'ALTER TABLE');
END $$;
CREATE EVENT TRIGGER record_ddl ON ddl_command_end EXECUTE FUNCTION public.record_ddl();

CREATE FUNCTION public.record_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.audit
  SELECT 'drop', o.object_identity, current_user,
         (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
         session_user
    FROM pg_event_trigger_dropped_objects() o
   WHERE o.schema_name = 'mallory' AND o.object_type = 'table' AND o.original;
END $$;
CREATE EVENT TRIGGER record_drop ON sql_drop EXECUTE FUNCTION public.record_drop();
});

# mallory's stream, with code that escalates when run by a superuser
sql(q{
SET ROLE mallory;
SELECT eventkit.create_stream('mallory.s1', partition_interval => '1 minute', premake => 1,
							  retention => '5 minutes');
CREATE FUNCTION mallory.evil() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.audit
  SELECT TG_ARGV[0], to_jsonb(NEW) ->> 'message_id', current_user, r.rolsuper,
         session_user
    FROM pg_roles r WHERE r.rolname = current_user;
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'ALTER ROLE mallory SUPERUSER';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER evil BEFORE INSERT ON mallory.s1
  FOR EACH ROW EXECUTE FUNCTION mallory.evil('stream');
CREATE CONSTRAINT TRIGGER evil_later AFTER INSERT ON mallory.s1
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION mallory.evil('deferred');
});

my $is_super = q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'};
sub job_rows
{
	my ($path) = @_;
	return sql(qq{SELECT coalesce(string_agg(DISTINCT who || ' ' || su, ','), 'none')
  FROM public.audit WHERE path = '$path' AND sess = (SELECT rolname FROM pg_roles WHERE oid = 10)});
}

# ---- redrive: x1 is quarantined out_of_range (no partition made on ingest);
# x2 makes its partition; the redrive job then replays x1 into the stream
sql(q{
SET ROLE mallory;
SET eventkit.create_partitions_on_ingest = off;
SELECT * FROM eventkit.ingest('mallory.s1', jsonb_build_object('type', 'track',
  'messageId', 'x1', 'userId', 'u', 'event', 'e', 'timestamp', (now() - interval '3 minutes')::text));
RESET eventkit.create_partitions_on_ingest;
SELECT * FROM eventkit.ingest('mallory.s1', jsonb_build_object('type', 'track',
  'messageId', 'x2', 'userId', 'u', 'event', 'e', 'timestamp', (now() - interval '3 minutes')::text));
});
poll(q{SELECT count(*) = 2 FROM mallory.s1}, 'the redrive job replays the quarantined event');
is(sql($is_super), 'f', 'redrive: mallory did not become a superuser');
is(job_rows('stream'), 'mallory false', "redrive: the stream's trigger ran as mallory, not a superuser");
is(job_rows('deferred'), 'mallory false', 'redrive: its deferred trigger too');
is(sql(q{SELECT last_status FROM eventkit.jobs WHERE kind = 'redrive'}), 'succeeded',
	'the redrive run succeeded');
# (should it have failed, the paths below are still checked one by one)
sql(q{ALTER ROLE mallory NOSUPERUSER});

# ---- rollup refresh: a trigger on mallory's rollup table
sql(q{
SET ROLE mallory;
SELECT eventkit.create_rollup('mallory.r1', 'mallory.s1', '1 hour', '{event}', '{count}',
							  backfill => false);
CREATE TRIGGER evil BEFORE INSERT OR UPDATE ON mallory.r1
  FOR EACH ROW EXECUTE FUNCTION mallory.evil('rollup');
SELECT eventkit.set_rollup_schedule('mallory.r1', '1 second');
});
poll(q{SELECT coalesce(sum(count), 0) = 2 FROM mallory.r1}, 'the refresh job folds the events');
is(sql($is_super), 'f', 'refresh: mallory did not become a superuser');
is(job_rows('rollup'), 'mallory false', "refresh: the rollup table's trigger ran as mallory");

# ---- premake and retention: job clock +10 min; premake makes mallory's new
# partitions, retention drops those older than 5 minutes
sql(q{ALTER SYSTEM SET eventkit.testing_clock_offset = '10min'});
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT current_setting('eventkit.testing_clock_offset') = '10min'})
  or die 'offset not applied';
sql(q{UPDATE eventkit.jobs SET next_run_at = now() WHERE kind IN ('premake', 'retention')});
poll(q{SELECT count(*) > 0 FROM public.audit WHERE path = 'drop' AND sess = (SELECT rolname FROM pg_roles WHERE oid = 10)},
	'retention drops expired partitions');
poll(q{SELECT EXISTS (SELECT 1 FROM eventkit.partitions('mallory.s1')
  WHERE range_start >= now() + interval '10 minutes')}, 'premake makes future partitions');
is(job_rows('ddl'), 'mallory false', "premake: mallory's partitions are made as mallory");
is(job_rows('drop'), 'mallory false', "retention: mallory's partitions are dropped as mallory");

# ---- ledger: runs (as the extension owner) for a stream mallory owns
sql(q{UPDATE eventkit.jobs SET next_run_at = now() WHERE kind = 'ledger'});
poll(q{SELECT count(*) > 0 FROM eventkit.job_runs WHERE kind = 'ledger' AND status = 'succeeded'
  AND started_at > (SELECT max(started_at) FROM eventkit.job_runs WHERE kind = 'retention')},
	"the ledger job of mallory's stream runs");

is(sql(q{SELECT count(*) FROM eventkit.job_runs WHERE status IN ('failed', 'crashed')}), '0',
	'no job failed');
is(sql($is_super), 'f', 'in the end mallory is still not a superuser');

$node->stop;
done_testing();
