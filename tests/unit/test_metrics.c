/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsutil.h"
#include "metrics.h"
#include "unit.h"
#include "version.h"
#include "xmalloc.h"

/* Node ids, writable because the sample callback takes a void *. */
static char node_odd[] = "a\\b\nc\"d", node_n[] = "n", node_n1[] = "n1";

static void
sample(void *arg, struct bd_metrics_sample *s)
{
	s->pool_id = "pool";
	s->node_id = arg;
	s->total_slots = 4;
	s->stats.state = "running";
	s->stats.running = 3;
	s->stats.free_slots = 1;
	s->stats.polls = 17;
	s->stats.lease_renewals = 5;
}

/* Whether every line is a HELP, a TYPE or a sample of the family named last. */
static void
assert_well_formed(const char *text)
{
	char family[128] = "", name[128];
	const char *line = text, *nl;

	ASSERT(text[strlen(text) - 1] == '\n');
	for (; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		ASSERT_NOT_NULL(nl);
		if (strncmp(line, "# HELP ", 7) == 0) {
			ASSERT(sscanf(line + 7, "%127s", family) == 1);
			/* TYPE of the same family follows. */
			snprintf(name, sizeof(name), "# TYPE %s ", family);
			ASSERT(strncmp(nl + 1, name, strlen(name)) == 0);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0)
			continue;
		ASSERT(line[0] != '#');
		ASSERT(strncmp(line, family, strlen(family)) == 0);
		ASSERT(strchr(line, ' ') != NULL);
	}
}

TEST(render_and_escaping)
{
	struct bd_metrics_sample s = { 0 };
	size_t len;
	char *text, *want;

	sample(node_odd, &s);
	text = bd_metrics_render(&s, &len);
	ASSERT_INT_EQ(len, strlen(text));
	assert_well_formed(text);
	/* Label values escape backslash, newline and double quote. */
	want = xasprintf("batchd_build_info{version=\"%s\",pool=\"pool\","
	    "node=\"a\\\\b\\nc\\\"d\"} 1\n", BATCHD_VERSION);
	ASSERT_STR_CONTAINS(text, want);
	free(want);
	ASSERT_STR_CONTAINS(text, "# TYPE batchd_node_state gauge\n");
	ASSERT_STR_CONTAINS(text, "batchd_node_state{state=\"running\"} 1\n");
	ASSERT_STR_CONTAINS(text, "batchd_node_state{state=\"idle\"} 0\n");
	ASSERT_STR_CONTAINS(text, "batchd_task_slots 4\n");
	ASSERT_STR_CONTAINS(text, "batchd_task_slots_used 3\n");
	ASSERT_STR_CONTAINS(text, "batchd_tasks_running 3\n");
	ASSERT_STR_CONTAINS(text, "batchd_queue_polls_total 17\n");
	ASSERT_STR_CONTAINS(text, "batchd_lease_renewals_total 5\n");
	ASSERT_STR_CONTAINS(text, "# TYPE batchd_queue_polls_total counter\n");
	free(text);
}

TEST(counters_and_histogram)
{
	struct bd_metrics_sample s = { 0 };
	struct bd_execution_info i = { 0 };
	char dir[] = "/tmp/bd-metrics-XXXXXX", *path, *text;
	size_t len;

	bd_metrics_add(BD_METRIC_UPLOAD_ERRORS, 2);
	bd_metrics_add(BD_METRIC_COUNT, 1);	/* out of range: ignored */
	bd_metrics_add_file(BD_METRIC_UPLOAD_FILES, 1000);
	ASSERT(mkdtemp(dir) != NULL);
	path = bd_path_join(dir, "f");
	ASSERT_INT_EQ(bd_write_file_atomic(path, "12345", 5, 0644), 0);
	bd_metrics_add_path(BD_METRIC_DOWNLOAD_FILES, path);
	bd_metrics_add_path(BD_METRIC_DOWNLOAD_FILES, dir);	/* not a file */
	bd_metrics_add_path(BD_METRIC_DOWNLOAD_FILES, NULL);
	ASSERT_INT_EQ(bd_metrics_get(BD_METRIC_DOWNLOAD_FILES), 1);
	ASSERT_INT_EQ(bd_metrics_get(BD_METRIC_DOWNLOAD_BYTES), 5);
	ASSERT_INT_EQ(bd_metrics_get(BD_METRIC_UPLOAD_FILES), 1);
	ASSERT_INT_EQ(bd_metrics_get(BD_METRIC_UPLOAD_BYTES), 1000);

	i.result = BD_RESULT_SUCCESS;
	i.start_ms = 1000000;
	i.end_ms = i.start_ms + 500;	/* 0.5 s */
	bd_metrics_task_ran(&i);
	i.end_ms = i.start_ms + 7000;	/* 7 s */
	bd_metrics_task_ran(&i);
	i.result = BD_RESULT_FAILURE;
	i.end_ms = i.start_ms + 100000LL * 1000;	/* past a day: +Inf */
	bd_metrics_task_ran(&i);
	i.start_ms = 0;		/* never started: counted, not timed */
	bd_metrics_task_ran(&i);

	sample(node_n, &s);
	text = bd_metrics_render(&s, &len);
	assert_well_formed(text);
	ASSERT_STR_CONTAINS(text, "batchd_task_runs_total{result=\"success\"} 2\n");
	ASSERT_STR_CONTAINS(text, "batchd_task_runs_total{result=\"failure\"} 2\n");
	ASSERT_STR_CONTAINS(text, "# TYPE batchd_task_duration_seconds histogram\n"
	    "batchd_task_duration_seconds_bucket{le=\"1\"} 1\n"
	    "batchd_task_duration_seconds_bucket{le=\"5\"} 1\n"
	    "batchd_task_duration_seconds_bucket{le=\"10\"} 2\n");
	ASSERT_STR_CONTAINS(text, "{le=\"86400\"} 2\n"
	    "batchd_task_duration_seconds_bucket{le=\"+Inf\"} 3\n"
	    "batchd_task_duration_seconds_sum 100007.500\n"
	    "batchd_task_duration_seconds_count 3\n");
	ASSERT_STR_CONTAINS(text, "batchd_download_bytes_total 5\n");
	ASSERT_STR_CONTAINS(text, "batchd_upload_errors_total 2\n");
	free(text);
	unlink(path);
	free(path);
	rmdir(dir);
}

/* The exporter on a real loop, scraped from another thread. */
struct scrape {
	int port;
	char reply[65536];
	uv_async_t done;
	struct bd_metrics *m;
};

static void *
scrape_thread(void *arg)
{
	struct scrape *sc = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_port = htons((uint16_t)sc->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1)
		while ((n = read(fd, sc->reply + got,
		    sizeof(sc->reply) - 1 - got)) > 0)
			got += (size_t)n;
	sc->reply[got] = '\0';
	close(fd);
	uv_async_send(&sc->done);
	return NULL;
}

static void
scrape_on_done(uv_async_t *a)
{
	struct scrape *sc = a->data;

	bd_metrics_stop(sc->m);
	uv_close((uv_handle_t *)a, NULL);
}

TEST(exporter)
{
	struct bd_metrics_options o = { 0 };
	struct scrape sc;
	struct bd_metrics *m;
	uv_loop_t loop;
	pthread_t th;
	char dir[] = "/tmp/bd-metrics-XXXXXX", *path, *cause = NULL, *text;
	size_t len;

	uv_loop_init(&loop);
	/* Nothing asked: nothing started. */
	ASSERT_INT_EQ(bd_metrics_start(&loop, &o, sample, node_n, &m, &cause), 0);
	ASSERT_NULL(m);

	/* A textfile directory that does not exist fails at once. */
	o.textfile_dir = "/nonexistent/metrics";
	ASSERT(bd_metrics_start(&loop, &o, sample, node_n, &m, &cause) < 0);
	ASSERT_STR_CONTAINS(cause, "metrics: cannot write "
	    "/nonexistent/metrics/batchd.prom");
	free(cause);
	cause = NULL;
	ASSERT_INT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);

	ASSERT(mkdtemp(dir) != NULL);
	o.textfile_dir = dir;
	o.listen = "127.0.0.1:0";
	o.interval_ms = 1000;
	ASSERT_INT_EQ(bd_metrics_start(&loop, &o, sample, node_n1, &m, &cause), 0);
	ASSERT_NOT_NULL(m);
	ASSERT(bd_metrics_port(m) > 0);
	path = bd_path_join(dir, "batchd.prom");
	ASSERT_INT_EQ(bd_read_file(path, 1 << 20, &text, &len), 0);
	assert_well_formed(text);
	ASSERT_STR_CONTAINS(text, "node=\"n1\"");
	free(text);

	memset(&sc, 0, sizeof(sc));
	sc.port = bd_metrics_port(m);
	sc.m = m;
	uv_async_init(&loop, &sc.done, scrape_on_done);
	sc.done.data = &sc;
	ASSERT_INT_EQ(pthread_create(&th, NULL, scrape_thread, &sc), 0);
	ASSERT_INT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
	pthread_join(th, NULL);
	ASSERT_STR_CONTAINS(sc.reply, "HTTP/1.1 200 OK\r\n");
	ASSERT_STR_CONTAINS(sc.reply, "Content-Type: text/plain; "
	    "version=0.0.4; charset=utf-8\r\n");
	ASSERT_STR_CONTAINS(sc.reply, "\r\n\r\n# HELP batchd_build_info ");
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);

	/* The last write at stop. */
	ASSERT_INT_EQ(bd_read_file(path, 1 << 20, &text, &len), 0);
	assert_well_formed(text);
	free(text);
	unlink(path);
	free(path);
	rmdir(dir);
}

int
main(void)
{
	RUN(render_and_escaping);
	RUN(counters_and_histogram);
	RUN(exporter);
	return 0;
}
