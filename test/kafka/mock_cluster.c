/*
 * mock_cluster.c
 *	  A Kafka cluster for eventkit's tests and benchmark, without a broker:
 *	  librdkafka's mock cluster (rd_kafka_mock_cluster_new, here through
 *	  the test.mock.num.brokers property of a producer) in a process that
 *	  prints its bootstrap address and then obeys commands read from stdin,
 *	  one per line, each answered by one line on stdout ("ok ..." or
 *	  "error ...").  It stays up until stdin ends, "quit", or it is killed.
 *
 *	  mock_cluster [-b brokers] [-t topic] [-p partitions]
 *		brokers: 3; topic: none created at start (-p 0), or "events" with
 *		3 partitions when -t is given without -p.
 *
 *	  Commands:
 *		create TOPIC PARTITIONS		create a topic
 *		produce TOPIC PART FILE		each line of FILE is one message; PART -1
 *									spreads line i over partition i % partitions
 *		hex TOPIC PART HEX			one message given in hex ("-": a null
 *									value, "" not allowed: use "empty")
 *		empty TOPIC PART			one message with an empty value
 *		down BROKER / up BROKER		take a broker down or bring it back
 *		wm TOPIC PART				"ok LOW HIGH": the partition's watermarks
 *		quit
 *
 *	  Messages are produced with lz4 compression: the mock keeps at most
 *	  5 MB of (compressed) message sets per partition and drops the oldest
 *	  beyond that.  "produce" answers once every message is acknowledged.
 *
 *	  Built by the test suite (make test/kafka/mock_cluster): cc
 *	  mock_cluster.c -lrdkafka.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_TOPICS 16

static rd_kafka_t *rk;
static rd_kafka_mock_cluster_t *mcluster;
static int	delivery_failures;
static char delivery_error[512];

static struct
{
	char		name[256];
	int			partitions;
}			topics[MAX_TOPICS];
static int	ntopics;

static void
reply(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void
on_delivery(rd_kafka_t *k, const rd_kafka_message_t *m, void *opaque)
{
	if (m->err)
	{
		delivery_failures++;
		snprintf(delivery_error, sizeof(delivery_error), "%s", rd_kafka_err2str(m->err));
	}
}

static int
topic_partitions(const char *topic)
{
	for (int i = 0; i < ntopics; i++)
		if (strcmp(topics[i].name, topic) == 0)
			return topics[i].partitions;
	return 0;
}

static int
create_topic(const char *topic, int partitions)
{
	rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mcluster, topic, partitions, 1);

	if (err)
	{
		reply("error create %s: %s", topic, rd_kafka_err2str(err));
		return -1;
	}
	if (ntopics < MAX_TOPICS)
	{
		snprintf(topics[ntopics].name, sizeof(topics[ntopics].name), "%s", topic);
		topics[ntopics].partitions = partitions;
		ntopics++;
	}
	return 0;
}

/* Queue one message, waiting while the producer's queue is full. */
static int
send_one(const char *topic, int partition, const void *value, size_t len)
{
	for (;;)
	{
		rd_kafka_resp_err_t err;

		err = rd_kafka_producev(rk,
								RD_KAFKA_V_TOPIC(topic),
								RD_KAFKA_V_PARTITION(partition),
								RD_KAFKA_V_VALUE((void *) value, len),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		{
			rd_kafka_poll(rk, 100);
			continue;
		}
		if (err)
		{
			reply("error produce: %s", rd_kafka_err2str(err));
			return -1;
		}
		return 0;
	}
}

/* Wait for every queued message; report failures. */
static int
finish_sending(long sent)
{
	rd_kafka_resp_err_t err = rd_kafka_flush(rk, 120 * 1000);

	if (err)
	{
		reply("error flush: %s", rd_kafka_err2str(err));
		return -1;
	}
	if (delivery_failures)
	{
		reply("error %d of %ld messages not delivered: %s", delivery_failures, sent,
			  delivery_error);
		delivery_failures = 0;
		return -1;
	}
	reply("ok %ld", sent);
	return 0;
}

static void
produce_file(const char *topic, int partition, const char *path)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	long		n = 0;
	int			nparts = topic_partitions(topic);

	if (f == NULL)
	{
		reply("error %s: %s", path, strerror(errno));
		return;
	}
	if (partition < 0 && nparts <= 0)
	{
		reply("error topic %s was not created here: give a partition", topic);
		fclose(f);
		return;
	}
	while ((len = getline(&line, &cap, f)) > 0)
	{
		if (line[len - 1] == '\n')
			len--;
		if (send_one(topic, partition >= 0 ? partition : (int) (n % nparts), line, len) < 0)
			break;
		n++;
	}
	free(line);
	fclose(f);
	finish_sending(n);
}

static int
hexval(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

static void
produce_hex(const char *topic, int partition, const char *hex)
{
	size_t		n = strlen(hex) / 2;
	unsigned char *buf = malloc(n + 1);

	if (strcmp(hex, "-") == 0)
	{
		if (send_one(topic, partition, NULL, 0) == 0)
			finish_sending(1);
		free(buf);
		return;
	}
	for (size_t i = 0; i < n; i++)
	{
		if (!isxdigit((unsigned char) hex[2 * i]) || !isxdigit((unsigned char) hex[2 * i + 1]))
		{
			reply("error not hex: %s", hex);
			free(buf);
			return;
		}
		buf[i] = (unsigned char) (hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
	}
	if (send_one(topic, partition, buf, n) == 0)
		finish_sending(1);
	free(buf);
}

static void
watermarks(const char *topic, int partition)
{
	int64_t		lo,
				hi;
	rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, partition,
																&lo, &hi, 10000);

	if (err)
		reply("error wm: %s", rd_kafka_err2str(err));
	else
		reply("ok %lld %lld", (long long) lo, (long long) hi);
}

static void
broker_state(int broker, int up)
{
	rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mcluster, broker) :
		rd_kafka_mock_broker_set_down(mcluster, broker);

	if (err)
		reply("error broker %d: %s", broker, rd_kafka_err2str(err));
	else
		reply("ok");
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];
	char		nbrokers[16] = "3";
	const char *topic = NULL;
	int			partitions = -1;
	char	   *line = NULL;
	size_t		cap = 0;
	int			opt;

	while ((opt = getopt(argc, argv, "b:t:p:")) != -1)
	{
		switch (opt)
		{
			case 'b':
				snprintf(nbrokers, sizeof(nbrokers), "%d", atoi(optarg));
				break;
			case 't':
				topic = optarg;
				break;
			case 'p':
				partitions = atoi(optarg);
				break;
			default:
				fprintf(stderr, "usage: %s [-b brokers] [-t topic] [-p partitions]\n", argv[0]);
				return 2;
		}
	}

	if (rd_kafka_conf_set(conf, "test.mock.num.brokers", nbrokers, errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "compression.codec", "lz4", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)))
	{
		fprintf(stderr, "mock_cluster: %s\n", errstr);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "mock_cluster: %s\n", errstr);
		return 1;
	}
	mcluster = rd_kafka_handle_mock_cluster(rk);
	if (mcluster == NULL)
	{
		fprintf(stderr, "mock_cluster: this librdkafka has no mock cluster\n");
		return 1;
	}
	if (topic != NULL && partitions != 0 &&
		create_topic(topic, partitions < 0 ? 3 : partitions) < 0)
		return 1;
	reply("bootstrap %s", rd_kafka_mock_cluster_bootstraps(mcluster));

	while (getline(&line, &cap, stdin) > 0)
	{
		char		cmd[32],
					a[256],
					c[4096];
		int			b;
		int			n;

		line[strcspn(line, "\r\n")] = '\0';
		n = sscanf(line, "%31s %255s %d %4095s", cmd, a, &b, c);
		if (n <= 0)
			continue;
		if (strcmp(cmd, "quit") == 0)
			break;
		else if (strcmp(cmd, "create") == 0 && n >= 3)
		{
			if (create_topic(a, b) == 0)
				reply("ok");
		}
		else if (strcmp(cmd, "produce") == 0 && n == 4)
			produce_file(a, b, c);
		else if (strcmp(cmd, "hex") == 0 && n == 4)
			produce_hex(a, b, c);
		else if (strcmp(cmd, "empty") == 0 && n >= 3)
		{
			if (send_one(a, b, "", 0) == 0)
				finish_sending(1);
		}
		else if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && n >= 2)
			broker_state(atoi(a), cmd[0] == 'u');
		else if (strcmp(cmd, "wm") == 0 && n >= 3)
			watermarks(a, b);
		else
			reply("error unknown command: %s", line);
		rd_kafka_poll(rk, 0);
	}
	free(line);
	rd_kafka_flush(rk, 5000);
	rd_kafka_destroy(rk);
	return 0;
}
