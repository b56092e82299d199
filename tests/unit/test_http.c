/* SPDX-License-Identifier: MIT */
/*
 * Tests of common/http against a real nginx started by
 * tests/lib/nginx-harness.sh (skipped with 77 when nginx is missing).
 * Faults are real: statuses from nginx, a closed port, nginx killed with
 * SIGKILL mid-transfer, a full tmpfs.  Whatever happens, an atexit handler
 * stops nginx and removes the scratch directory.
 */
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "version.h"
#include "error.h"
#include "http.h"
#include "nginx_support.h"
#include "unit.h"
#include "xmalloc.h"

#define MiB		(1024 * 1024)
#define BIG_SIZE	(64 * MiB)
#define MID_SIZE	(4 * MiB)

static uv_loop_t loop;
static char *work_dir;		/* scratch: nginx, files, mounts */
static char *nginx_dir;		/* nginx's prefix; www/ inside */
static char *full_dir;		/* tmpfs mount point, when mounted */
static int port;
static unsigned char *big;	/* the contents of www/big.bin */
static unsigned char *mid;	/* the contents of www/mid.bin */
static int null_fd;		/* /dev/null, a sink for big downloads */

/* Fills buf with bytes that depend on seed, the same every run. */
static void
fill(unsigned char *buf, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
	size_t i;

	for (i = 0; i < n; i++) {
		if ((i & 7) == 0) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		buf[i] = (unsigned char)(x >> ((i & 7) * 8));
	}
}

/* Writes n bytes of data to path under nginx's www/. */
static void
write_www(const char *name, const void *data, size_t n)
{
	char *path = xasprintf("%s/www/%s", nginx_dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t w;

	ASSERT(fd >= 0);
	w = write(fd, data, n);
	ASSERT_INT_EQ(w, n);
	ASSERT_INT_EQ(close(fd), 0);
	free(path);
}

/* Reads a whole file (at most max bytes); caller frees. */
static unsigned char *
read_path(const char *path, size_t max, size_t *len)
{
	unsigned char *buf = xmalloc(max + 1);
	int fd = open(path, O_RDONLY);
	ssize_t r;
	size_t n = 0;

	if (fd < 0)
		UNIT_FAIL("open %s: %s", path, strerror(errno));
	while ((r = read(fd, buf + n, max + 1 - n)) > 0)
		n += (size_t)r;
	ASSERT(r == 0);
	close(fd);
	*len = n;
	return buf;
}

/* atexit: stops nginx and removes everything the test made. */
static void
cleanup(void)
{
	char *cmd;

	ng_stop();
	if (full_dir != NULL) {
		umount2(full_dir, MNT_DETACH);
		full_dir = NULL;
	}
	if (work_dir != NULL) {
		cmd = xasprintf("rm -rf '%s'", work_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", work_dir);
		free(cmd);
	}
}

/* A URL on the test server; caller frees. */
static char *
url(const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", port, path);
}

/* What a done callback saw. */
struct result {
	int calls;
	int status;
	long http_status;
	int attempts;
	int64_t bytes;
	int64_t content_length;
	int64_t entity_length;
	char *body;
	size_t body_len;
	bool has_body;
	char *detail;
	char *error_code;
	char *etag;
	uint64_t start_ms;
	uint64_t end_ms;
	int64_t last_done;	/* from the progress callback */
	int64_t last_total;
	struct bd_http_transfer *t;
};

static void
on_done(struct bd_http_transfer *t, int status,
    const struct bd_http_response *r, void *arg)
{
	struct result *res = arg;

	ASSERT_NOT_NULL(r);
	res->calls++;
	res->status = status;
	res->http_status = r->status;
	res->attempts = r->attempts;
	res->bytes = r->bytes_received;
	res->content_length = r->content_length;
	res->entity_length = r->entity_length;
	res->has_body = r->body != NULL;
	free(res->body);
	res->body = NULL;
	if (r->body != NULL) {
		res->body = xmalloc(r->body_len + 1);
		memcpy(res->body, r->body, r->body_len + 1);
	}
	res->body_len = r->body_len;
	free(res->detail);
	res->detail = r->error_detail ? xstrdup(r->error_detail) : NULL;
	free(res->error_code);
	res->error_code = r->error_code ? xstrdup(r->error_code) : NULL;
	free(res->etag);
	res->etag = r->etag ? xstrdup(r->etag) : NULL;
	ASSERT(bd_http_response_header(r, "content-length") == NULL ||
	    r->content_length >= 0);
	res->end_ms = uv_now(&loop);
}

static void
result_free(struct result *res)
{
	free(res->body);
	free(res->detail);
	free(res->error_code);
	free(res->etag);
	memset(res, 0, sizeof(*res));
}

/* Runs the loop until *flag is non-zero. */
static void
run_until(const int *flag)
{
	while (*flag == 0)
		uv_run(&loop, UV_RUN_ONCE);
}

/* A timer that only ends uv_run after ms. */
static void
on_sleep(uv_timer_t *timer)
{
	*(int *)timer->data = 1;
}

static void
on_handle_closed(uv_handle_t *handle)
{
	*(int *)handle->data = 1;
}

/* Runs the loop for ms, letting whatever is pending happen. */
static void
run_for(uint64_t ms)
{
	uv_timer_t timer;
	int fired = 0, closed = 0;

	uv_timer_init(&loop, &timer);
	timer.data = &fired;
	uv_timer_start(&timer, on_sleep, ms, 0);
	run_until(&fired);
	timer.data = &closed;
	uv_close((uv_handle_t *)&timer, on_handle_closed);
	run_until(&closed);
}

static void
on_closed(void *arg)
{
	*(int *)arg = 1;
}

static struct bd_http *
http_new(int max_active)
{
	struct bd_http_options o = { max_active, 0, NULL };
	struct bd_http *h;

	ASSERT_INT_EQ(bd_http_new(&loop, &o, &h), 0);
	return h;
}

/* Closes h and waits until it is gone. */
static void
http_close(struct bd_http *h)
{
	int closed = 0;

	bd_http_close(h, on_closed, &closed);
	run_until(&closed);
}

/* A GET of path with a quick retry policy. */
static void
req_init(struct bd_http_request *req, const char *u)
{
	bd_http_request_init(req);
	req->url = u;
	req->retry.max_attempts = 3;
	req->retry.base_delay_ms = 50;
	req->retry.max_delay_ms = 200;
}

/* Starts req on h and runs the loop until its callback ran. */
static void
fetch(struct bd_http *h, const struct bd_http_request *req, struct result *res)
{
	res->start_ms = uv_now(&loop);
	ASSERT_INT_EQ(bd_http_start(h, req, on_done, res, &res->t), 0);
	ASSERT_NOT_NULL(res->t);
	run_until(&res->calls);
	ASSERT_INT_EQ(res->calls, 1);
}

/* A file in the scratch directory, opened read-write and empty. */
static int
scratch_file(const char *name)
{
	char *path = xasprintf("%s/%s", work_dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		UNIT_FAIL("open %s: %s", path, strerror(errno));
	free(path);
	return fd;
}

/* Checks that fd holds want at off. */
static void
check_fd(int fd, off_t off, const unsigned char *want, size_t n)
{
	unsigned char *buf = xmalloc(n ? n : 1);
	ssize_t r = pread(fd, buf, n, off);

	ASSERT_INT_EQ(r, n);
	ASSERT(memcmp(buf, want, n) == 0);
	free(buf);
}

/* Counts lines of the access log containing needle. */
static int
log_count(const char *needle)
{
	char *log = ng_access_log(), *p = log;
	int n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	free(log);
	return n;
}

static void
progress_record(void *arg, int64_t done, int64_t total)
{
	struct result *res = arg;

	ASSERT(done >= res->last_done);
	res->last_done = done;
	res->last_total = total;
}

TEST(get_memory)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/hello.txt");
	char *ua;

	write_www("hello.txt", "hello world\n", 12);
	req_init(&req, u);
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.http_status, 200);
	ASSERT_INT_EQ(res.attempts, 1);
	ASSERT_INT_EQ(res.body_len, 12);
	ASSERT_STR_EQ(res.body, "hello world\n");
	ASSERT_INT_EQ(res.content_length, 12);
	ASSERT_INT_EQ(res.entity_length, 12);
	ASSERT_INT_EQ(res.bytes, 12);
	ASSERT_NOT_NULL(res.etag);
	ASSERT_NULL(res.detail);
	ua = xasprintf("ua=\"batchd/%s\"", BATCHD_VERSION);
	run_for(100);	/* nginx logs a request after answering it */
	ASSERT(log_count(ua) >= 1);
	free(ua);
	result_free(&res);

	/* HEAD: the length without a body. */
	req.method = "HEAD";
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.http_status, 200);
	ASSERT_INT_EQ(res.content_length, 12);
	ASSERT_INT_EQ(res.bytes, 0);
	result_free(&res);
	free(u);
	http_close(h);
}

TEST(get_file)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/mid.bin");
	int fd = scratch_file("mid.out");

	req_init(&req, u);
	req.sink_fd = fd;
	req.sink_offset = 100;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.http_status, 200);
	ASSERT_INT_EQ(res.bytes, MID_SIZE);
	ASSERT(!res.has_body);
	check_fd(fd, 100, mid, MID_SIZE);
	close(fd);
	result_free(&res);
	free(u);
	http_close(h);
}

TEST(big_download)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/big.bin");
	int fd = scratch_file("big.out");
	struct stat st;

	req_init(&req, u);
	req.sink_fd = fd;
	req.sink_offset = 0;
	req.progress_cb = progress_record;
	req.progress_arg = &res;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.bytes, BIG_SIZE);
	ASSERT_INT_EQ(res.last_done, BIG_SIZE);
	ASSERT_INT_EQ(res.last_total, BIG_SIZE);
	ASSERT_INT_EQ(fstat(fd, &st), 0);
	ASSERT_INT_EQ(st.st_size, BIG_SIZE);
	check_fd(fd, 0, big, BIG_SIZE);
	close(fd);
	result_free(&res);
	free(u);
	http_close(h);
}

TEST(ranged_get)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/big.bin"), *nr = url("/norange/big.bin");
	int fd = scratch_file("range.out");

	/* A middle range into memory. */
	req_init(&req, u);
	req.range_start = 1000;
	req.range_end = 1999;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.http_status, 206);
	ASSERT_INT_EQ(res.body_len, 1000);
	ASSERT(memcmp(res.body, big + 1000, 1000) == 0);
	ASSERT_INT_EQ(res.entity_length, BIG_SIZE);
	result_free(&res);

	/* The tail into a file at an offset. */
	req_init(&req, u);
	req.range_start = BIG_SIZE - 5000;
	req.sink_fd = fd;
	req.sink_offset = 7;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.http_status, 206);
	ASSERT_INT_EQ(res.bytes, 5000);
	check_fd(fd, 7, big + BIG_SIZE - 5000, 5000);
	result_free(&res);

	/* A server that ignores Range: the module cuts the range out. */
	req_init(&req, nr);
	req.range_start = 3 * MiB + 5;
	req.range_end = 3 * MiB + 5 + 99999;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.http_status, 200);
	ASSERT_INT_EQ(res.body_len, 100000);
	ASSERT(memcmp(res.body, big + 3 * MiB + 5, 100000) == 0);
	result_free(&res);

	req_init(&req, nr);
	req.range_start = BIG_SIZE - 4096;
	req.sink_fd = fd;
	req.sink_offset = 0;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.bytes, 4096);
	check_fd(fd, 0, big + BIG_SIZE - 4096, 4096);
	result_free(&res);

	close(fd);
	free(u);
	free(nr);
	http_close(h);
}

TEST(put)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/upload/dir/sub/part.bin"), *m = url("/upload/mem.txt");
	char *bigpath = xasprintf("%s/www/big.bin", nginx_dir);
	char *path;
	unsigned char *got;
	size_t len;
	int fd = open(bigpath, O_RDONLY);
	const char *hdrs[] = { "x-ms-blob-type: BlockBlob",
	    "Content-Type: application/octet-stream" };

	ASSERT(fd >= 0);
	/* A range of a file. */
	bd_http_request_init(&req);
	req.method = "PUT";
	req.url = u;
	req.headers = hdrs;
	req.n_headers = 2;
	req.body_fd = fd;
	req.body_offset = 12345;
	req.body_length = 3 * MiB + 17;
	req.progress_cb = progress_record;
	req.progress_arg = &res;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.http_status, 201);
	ASSERT_INT_EQ(res.last_done, 3 * MiB + 17);
	path = xasprintf("%s/www/upload/dir/sub/part.bin", nginx_dir);
	got = read_path(path, 8 * MiB, &len);
	ASSERT_INT_EQ(len, 3 * MiB + 17);
	ASSERT(memcmp(got, big + 12345, len) == 0);
	free(got);
	free(path);
	result_free(&res);

	/* Memory, replacing an existing blob. */
	bd_http_request_init(&req);
	req.method = "PUT";
	req.url = m;
	req.body_mem = "first";
	req.body_mem_len = 5;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	result_free(&res);
	req.body_mem = "uploaded from memory\n";
	req.body_mem_len = strlen(req.body_mem);
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT(res.http_status == 201 || res.http_status == 204);
	/*
	 * Only the big body waited for a 100 Continue: a small one goes
	 * with its headers, sparing a round trip per small upload.
	 */
	run_for(100);	/* nginx logs a request after answering it */
	ASSERT_INT_EQ(ng_access_count("\"PUT /upload/dir/sub/part.bin",
	    "expect=\"100-continue\"", NULL), 1);
	ASSERT_INT_EQ(ng_access_count("\"PUT /upload/mem.txt",
	    "expect=\"-\"", NULL), 2);
	path = xasprintf("%s/www/upload/mem.txt", nginx_dir);
	got = read_path(path, 1024, &len);
	ASSERT_INT_EQ(len, 21);
	ASSERT(memcmp(got, "uploaded from memory\n", 21) == 0);
	free(got);
	result_free(&res);

	/* An empty PUT sends Content-Length: 0; DELETE removes. */
	req.body_mem = NULL;
	req.body_mem_len = 0;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	got = read_path(path, 1024, &len);
	ASSERT_INT_EQ(len, 0);
	free(got);
	result_free(&res);
	bd_http_request_init(&req);
	req.method = "DELETE";
	req.url = m;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, 0);
	ASSERT_INT_EQ(res.http_status, 204);
	ASSERT(access(path, F_OK) != 0);
	result_free(&res);
	free(path);

	/* A PUT to a server that keeps failing sends the body each time. */
	free(u);
	u = url("/status/503");
	bd_http_request_init(&req);
	req.method = "PUT";
	req.url = u;
	req.body_fd = fd;
	req.body_offset = 0;
	req.body_length = 100000;
	req.retry.max_attempts = 2;
	req.retry.base_delay_ms = 10;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, BD_EHTTP);
	ASSERT_INT_EQ(res.attempts, 2);
	result_free(&res);

	close(fd);
	free(bigpath);
	free(u);
	free(m);
	http_close(h);
}

TEST(not_found)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/status/404?sv=1&sig=SECRETVALUE");
	char *missing = url("/no/such/file.bin");
	int fd = scratch_file("missing.out");
	struct stat st;

	req_init(&req, u);
	req.retry.max_attempts = 5;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, BD_EHTTP);
	ASSERT_INT_EQ(res.http_status, 404);
	ASSERT_INT_EQ(res.attempts, 1);
	ASSERT_STR_EQ(res.error_code, "BlobNotFound");
	ASSERT_STR_EQ(res.detail, "HTTP 404 (BlobNotFound)");
	ASSERT_STR_EQ(res.body, "status 404\n");
	result_free(&res);

	/* The error body never reaches a file sink. */
	req_init(&req, missing);
	req.sink_fd = fd;
	req.sink_offset = 0;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, BD_EHTTP);
	ASSERT_INT_EQ(res.http_status, 404);
	ASSERT_INT_EQ(res.attempts, 1);
	ASSERT_STR_EQ(res.detail, "HTTP 404");
	ASSERT(res.has_body);
	ASSERT_INT_EQ(fstat(fd, &st), 0);
	ASSERT_INT_EQ(st.st_size, 0);
	result_free(&res);

	close(fd);
	free(u);
	free(missing);
	http_close(h);
}

TEST(retry_503)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/status/503");
	int before = log_count("\"GET /status/503 ");

	req_init(&req, u);
	req.retry.max_attempts = 3;
	req.retry.base_delay_ms = 100;
	req.retry.max_delay_ms = 1000;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, BD_EHTTP);
	ASSERT_INT_EQ(res.http_status, 503);
	ASSERT_INT_EQ(res.attempts, 3);
	ASSERT_STR_CONTAINS(res.detail, "HTTP 503");
	ASSERT_STR_CONTAINS(res.detail, "after 3 attempts");
	/* Backoffs of 100 then 200 ms, each jittered down to half at most. */
	ASSERT(res.end_ms - res.start_ms >= 150);
	run_for(100);	/* nginx logs a request after answering it */
	ASSERT_INT_EQ(log_count("\"GET /status/503 ") - before, 3);
	result_free(&res);

	/* max_total_ms ends the retries early. */
	req.retry.max_attempts = 10;
	req.retry.base_delay_ms = 400;
	req.retry.max_total_ms = 500;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, BD_EHTTP);
	ASSERT(res.attempts >= 1 && res.attempts <= 2);
	result_free(&res);
	free(u);
	http_close(h);
}

TEST(retry_after)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/status/429");

	req_init(&req, u);
	req.retry.max_attempts = 2;
	req.retry.base_delay_ms = 10;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, BD_EHTTP);
	ASSERT_INT_EQ(res.http_status, 429);
	ASSERT_INT_EQ(res.attempts, 2);
	/* Retry-After: 1 beats the 10 ms backoff. */
	ASSERT(res.end_ms - res.start_ms >= 990);
	result_free(&res);
	free(u);
	http_close(h);
}

/* A loopback port nothing listens on. */
static int
closed_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM, 0), p;

	ASSERT(s >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_INT_EQ(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ASSERT_INT_EQ(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	p = ntohs(sa.sin_port);
	close(s);
	return p;
}

TEST(connection_refused)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = xasprintf("http://127.0.0.1:%d/x?sv=1&sig=SECRETVALUE",
	    closed_port());

	req_init(&req, u);
	req.retry.max_attempts = 3;
	req.retry.base_delay_ms = 20;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, BD_ENET);
	ASSERT_INT_EQ(res.attempts, 3);
	ASSERT_INT_EQ(res.http_status, 0);
	ASSERT_NOT_NULL(res.detail);
	ASSERT_STR_CONTAINS(res.detail, "after 3 attempts");
	ASSERT(strstr(res.detail, "SECRETVALUE") == NULL);
	fprintf(stderr, "   detail: %s\n", res.detail);
	result_free(&res);
	free(u);

	/* A bad request never starts, and its callback never runs. */
	u = xstrdup("ftp://127.0.0.1/x");
	req_init(&req, u);
	ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &res, NULL), -EINVAL);
	free(u);
	u = url("/x");
	req_init(&req, u);
	{
		const char *bad[] = { "X-Evil: a\r\nInjected: b" };

		req.headers = bad;
		req.n_headers = 1;
		ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &res, NULL),
		    -EINVAL);
	}
	req_init(&req, u);
	req.range_end = 10;
	ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &res, NULL), -EINVAL);
	req_init(&req, u);
	req.method = "get";
	ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &res, NULL), -EINVAL);
	run_for(20);
	ASSERT_INT_EQ(res.calls, 0);
	free(u);
	http_close(h);
}

TEST(too_big)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/mid.bin");

	req_init(&req, u);
	req.max_memory_body = MiB;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, BD_ETOOBIG);
	ASSERT_INT_EQ(res.attempts, 1);
	result_free(&res);
	free(u);
	http_close(h);
}

TEST(timeout)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct result res = { 0 };
	char *u = url("/slow/big.bin");

	/* 64 MiB at 50 MB/s cannot finish in 200 ms: each attempt times out. */
	req_init(&req, u);
	req.sink_fd = null_fd;
	req.sink_offset = 0;
	req.total_timeout_ms = 200;
	req.retry.max_attempts = 2;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, BD_ETIMEDOUT);
	ASSERT_INT_EQ(res.attempts, 2);
	ASSERT(res.bytes > 0);
	ASSERT_STR_CONTAINS(res.detail, "after 2 attempts");
	fprintf(stderr, "   detail: %s\n", res.detail);
	result_free(&res);
	free(u);
	http_close(h);
}

/* Sets the mtime of name under www/ to age seconds before now. */
static void
www_age(const char *name, time_t age)
{
	char *path = xasprintf("%s/www/%s", nginx_dir, name);
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
	ASSERT_INT_EQ(utimensat(AT_FDCWD, path, ts, 0), 0);
	free(path);
}

/* State of the kill-and-restart tests. */
struct resume {
	struct result res;
	uv_timer_t timer;
	const char *path;	/* URL path; NULL: /slow/big.bin */
	bool killed;
	bool change;		/* rewrite big.bin while nginx is down */
	unsigned char *changed;
	size_t changed_len;	/* its length; 0: BIG_SIZE */
};

/* Kills nginx, maybe changes the file, and starts it on the same port. */
static void
on_kill(uv_timer_t *timer)
{
	struct resume *r = timer->data;
	char portarg[16];

	ng_harness("kill", NULL);
	if (r->change) {
		write_www("big.bin", r->changed, r->changed_len);
		/* A new mtime, so a new ETag and Last-Modified, even within
		   the same second; in the past, so the date stays strong. */
		www_age("big.bin", 100);
	}
	snprintf(portarg, sizeof(portarg), "%d", port);
	ASSERT_INT_EQ(ng_harness("start", portarg), port);
}

static void
progress_kill(void *arg, int64_t done, int64_t total)
{
	struct resume *r = arg;

	if (!r->killed && done >= 16 * MiB) {
		r->killed = true;
		uv_timer_start(&r->timer, on_kill, 0, 0);
	}
	r->res.last_done = done;
}

/* Downloads r's path (/slow/big.bin), killing nginx on the way. */
static void
download_with_kill(struct resume *r, const unsigned char *want)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	char *u = url(r->path != NULL ? r->path : "/slow/big.bin");
	int fd = scratch_file("resume.out"), closed = 0;
	size_t len = r->change && r->changed_len > 0 ? r->changed_len :
	    BIG_SIZE;
	struct stat st;

	if (r->change && r->changed_len == 0)
		r->changed_len = BIG_SIZE;
	uv_timer_init(&loop, &r->timer);
	r->timer.data = r;
	req_init(&req, u);
	req.sink_fd = fd;
	req.sink_offset = 0;
	req.retry.max_attempts = 10;
	req.retry.base_delay_ms = 100;
	req.progress_cb = progress_kill;
	req.progress_arg = r;
	fetch(h, &req, &r->res);
	if (r->res.status != 0)
		UNIT_FAIL("status %d: %s", r->res.status, r->res.detail);
	ASSERT(r->killed);
	ASSERT(r->res.attempts > 1);
	ASSERT_INT_EQ(r->res.bytes, len);
	ASSERT_INT_EQ(fstat(fd, &st), 0);
	ASSERT_INT_EQ(st.st_size, len);
	check_fd(fd, 0, want, len);
	fprintf(stderr, "   attempts %d, last status %ld\n", r->res.attempts,
	    r->res.http_status);
	close(fd);
	free(u);
	r->timer.data = &closed;
	uv_close((uv_handle_t *)&r->timer, on_handle_closed);
	run_until(&closed);
	http_close(h);
	run_for(100);	/* nginx logs a request after answering it */
}

TEST(resume_after_kill)
{
	struct resume r;
	int before = log_count("\"GET /slow/big.bin HTTP/1.1\" range=\"bytes=");

	memset(&r, 0, sizeof(r));
	download_with_kill(&r, big);
	ASSERT_INT_EQ(r.res.http_status, 206);
	/* The server saw a resumed request. */
	ASSERT(log_count("\"GET /slow/big.bin HTTP/1.1\" range=\"bytes=") >
	    before);
	result_free(&r.res);
}

TEST(resume_changed_file)
{
	struct resume r;

	memset(&r, 0, sizeof(r));
	r.change = true;
	r.changed = xmalloc(BIG_SIZE);
	fill(r.changed, BIG_SIZE, 2);
	/* If-Range sees the new ETag: a 200, and the download starts over. */
	download_with_kill(&r, r.changed);
	ASSERT_INT_EQ(r.res.http_status, 200);
	write_www("big.bin", big, BIG_SIZE);
	www_age("big.bin", 200);
	free(r.changed);
	result_free(&r.res);
}

/*
 * A weak ETag guards no range, and forbids If-Range on the date too: the
 * broken download starts again, without a Range, and is right.
 */
TEST(resume_weak_etag)
{
	struct resume r;
	const char *get = "\"GET /weak/big.bin HTTP/1.1\"";

	memset(&r, 0, sizeof(r));
	r.path = "/weak/big.bin";
	download_with_kill(&r, big);
	ASSERT_INT_EQ(r.res.http_status, 200);
	/* The cut request is not logged: nginx was killed. */
	ASSERT(ng_access_count(get, "range=\"-\"", NULL) >= 1);
	ASSERT_INT_EQ(ng_access_count(get, "range=\"bytes=", NULL), 0);
	ASSERT_INT_EQ(ng_access_count(get, "ifr=\"-\"", NULL),
	    ng_access_count(get, "", NULL));
	result_free(&r.res);
}

/* Without an ETag, a strong Last-Modified guards the resume. */
TEST(resume_no_etag)
{
	struct resume r;
	const char *get = "\"GET /noetag/big.bin HTTP/1.1\"";
	int ranged = ng_access_count(get, "range=\"bytes=", NULL);
	int guarded = ng_access_count(get, "GMT\"", NULL);

	memset(&r, 0, sizeof(r));
	r.path = "/noetag/big.bin";
	download_with_kill(&r, big);
	ASSERT_INT_EQ(r.res.http_status, 206);
	/* Every resumed request carried If-Range with the date. */
	ASSERT(ng_access_count(get, "range=\"bytes=", NULL) > ranged);
	ASSERT_INT_EQ(ng_access_count(get, "range=\"bytes=", NULL) - ranged,
	    ng_access_count(get, "GMT\"", NULL) - guarded);
	result_free(&r.res);
}

/*
 * The file changes (shorter) while the server is down: If-Range on the
 * old date gets a 200, and the download starts over, truncated.
 */
TEST(resume_no_etag_changed)
{
	struct resume r;

	memset(&r, 0, sizeof(r));
	r.path = "/noetag/big.bin";
	r.change = true;
	r.changed_len = BIG_SIZE / 2;
	r.changed = xmalloc(r.changed_len);
	fill(r.changed, r.changed_len, 4);
	download_with_kill(&r, r.changed);
	ASSERT_INT_EQ(r.res.http_status, 200);
	write_www("big.bin", big, BIG_SIZE);
	www_age("big.bin", 200);
	free(r.changed);
	result_free(&r.res);
}

/*
 * No validator at all and the file changes, shorter: the retry asks for
 * the whole file, and what was written of the old one is cut off.
 */
TEST(resume_no_validator)
{
	struct resume r;
	const char *get = "\"GET /novalidator/big.bin HTTP/1.1\"";

	memset(&r, 0, sizeof(r));
	r.path = "/novalidator/big.bin";
	r.change = true;
	r.changed_len = BIG_SIZE / 2;
	r.changed = xmalloc(r.changed_len);
	fill(r.changed, r.changed_len, 5);
	download_with_kill(&r, r.changed);
	ASSERT_INT_EQ(r.res.http_status, 200);
	ASSERT(ng_access_count(get, "range=\"-\"", NULL) >= 1);
	ASSERT_INT_EQ(ng_access_count(get, "range=\"bytes=", NULL), 0);
	write_www("big.bin", big, BIG_SIZE);
	www_age("big.bin", 200);
	free(r.changed);
	result_free(&r.res);
}

/* State of the cancel tests. */
struct cancel {
	struct result res;
	struct bd_http *h;
	bool cancelled;
	bool close;
	int closed;
};

static void
progress_cancel(void *arg, int64_t done, int64_t total)
{
	struct cancel *c = arg;

	if (!c->cancelled && done >= MiB) {
		c->cancelled = true;
		if (c->close) {
			bd_http_close(c->h, on_closed, &c->closed);
			return;
		}
		bd_http_cancel(c->res.t);
		bd_http_cancel(c->res.t);
	}
}

static void
on_cancel_timer(uv_timer_t *timer)
{
	struct result *res = timer->data;

	bd_http_cancel(res->t);
}

TEST(cancel)
{
	struct bd_http *h = http_new(1);
	struct bd_http_request req;
	struct cancel c;
	struct result a = { 0 }, b = { 0 }, d = { 0 };
	char *slow = url("/slow/big.bin"), *busy = url("/status/503");
	uv_timer_t timer;
	int closed = 0, active, queued;

	/* From inside libcurl (the progress callback), twice. */
	memset(&c, 0, sizeof(c));
	req_init(&req, slow);
	req.sink_fd = null_fd;
	req.sink_offset = 0;
	req.progress_cb = progress_cancel;
	req.progress_arg = &c;
	fetch(h, &req, &c.res);
	if (!c.cancelled)
		UNIT_FAIL("not cancelled: status %d, %s", c.res.status,
		    c.res.detail ? c.res.detail : "");
	ASSERT_INT_EQ(c.res.status, -ECANCELED);
	run_for(100);
	ASSERT_INT_EQ(c.res.calls, 1);
	result_free(&c.res);

	/* A queued transfer, and a running one from a timer. */
	req_init(&req, slow);
	req.sink_fd = null_fd;
	req.sink_offset = 0;
	ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &a, &a.t), 0);
	ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &b, &b.t), 0);
	bd_http_counts(h, &active, &queued);
	ASSERT_INT_EQ(active, 1);
	ASSERT_INT_EQ(queued, 1);
	bd_http_cancel(b.t);
	ASSERT_INT_EQ(b.calls, 0);	/* never from inside bd_http_cancel() */
	bd_http_counts(h, &active, &queued);
	ASSERT_INT_EQ(queued, 0);
	uv_timer_init(&loop, &timer);
	timer.data = &a;
	uv_timer_start(&timer, on_cancel_timer, 100, 0);
	run_until(&a.calls);
	run_until(&b.calls);
	ASSERT_INT_EQ(a.status, -ECANCELED);
	ASSERT_INT_EQ(b.status, -ECANCELED);
	ASSERT_INT_EQ(b.attempts, 0);

	/* During a backoff. */
	req_init(&req, busy);
	req.retry.max_attempts = 5;
	req.retry.base_delay_ms = 5000;
	req.retry.max_delay_ms = 5000;
	d.start_ms = uv_now(&loop);
	ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &d, &d.t), 0);
	timer.data = &d;
	uv_timer_start(&timer, on_cancel_timer, 300, 0);
	run_until(&d.calls);
	ASSERT_INT_EQ(d.status, -ECANCELED);
	ASSERT_INT_EQ(d.attempts, 1);
	ASSERT(d.end_ms - d.start_ms < 2000);
	run_for(50);
	ASSERT_INT_EQ(a.calls + b.calls + d.calls, 3);
	timer.data = &closed;
	uv_close((uv_handle_t *)&timer, on_handle_closed);
	run_until(&closed);
	result_free(&a);
	result_free(&b);
	result_free(&d);
	free(slow);
	free(busy);
	http_close(h);
}

TEST(close_cancels)
{
	struct bd_http *h = http_new(1);
	struct bd_http_request req;
	struct result a = { 0 }, b = { 0 };
	struct cancel c;
	char *slow = url("/slow/big.bin");
	int closed = 0;

	req_init(&req, slow);
	req.sink_fd = null_fd;
	req.sink_offset = 0;
	ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &a, NULL), 0);
	ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &b, NULL), 0);
	run_for(50);
	bd_http_close(h, on_closed, &closed);
	ASSERT_INT_EQ(bd_http_start(h, &req, on_done, &b, NULL), -ECANCELED);
	ASSERT_INT_EQ(a.calls + b.calls, 0);
	run_until(&closed);
	ASSERT_INT_EQ(a.calls, 1);
	ASSERT_INT_EQ(b.calls, 1);
	ASSERT_INT_EQ(a.status, -ECANCELED);
	ASSERT_INT_EQ(b.status, -ECANCELED);
	result_free(&a);
	result_free(&b);

	/* Closing from inside libcurl (a progress callback). */
	memset(&c, 0, sizeof(c));
	c.h = http_new(1);
	c.close = true;
	req.progress_cb = progress_cancel;
	req.progress_arg = &c;
	ASSERT_INT_EQ(bd_http_start(c.h, &req, on_done, &c.res, NULL), 0);
	run_until(&c.closed);
	ASSERT_INT_EQ(c.res.calls, 1);
	ASSERT_INT_EQ(c.res.status, -ECANCELED);
	result_free(&c.res);
	free(slow);
}

/* One of the concurrent transfers. */
struct conc {
	struct result res;
	struct bd_http *h;
	bool running;
	bool finished;
	int *now;
	int *max;
};

static void
progress_conc(void *arg, int64_t done, int64_t total)
{
	struct conc *c = arg;
	int active;

	bd_http_counts(c->h, &active, NULL);
	ASSERT(active <= 4);
	if (!c->running && !c->finished) {
		c->running = true;
		(*c->now)++;
		if (*c->now > *c->max)
			*c->max = *c->now;
	}
	/* All bytes are in: off the wire, though the callback comes later. */
	if (c->running && done == MID_SIZE) {
		c->running = false;
		c->finished = true;
		(*c->now)--;
	}
}

static void
on_done_conc(struct bd_http_transfer *t, int status,
    const struct bd_http_response *r, void *arg)
{
	struct conc *c = arg;

	if (c->running)
		(*c->now)--;
	c->running = false;
	on_done(t, status, r, &c->res);
}

TEST(concurrency)
{
	struct bd_http *h = http_new(4);
	struct bd_http_request req;
	struct conc c[20];
	char *u = url("/slow/mid.bin");
	char *log, *p, *line;
	int i, now = 0, max = 0, active, queued, all;
	long conns[64], id;
	int n_conns = 0, j, lines = 0;

	/* A fresh log, so only these requests are counted. */
	p = xasprintf("%s/logs/access.log", nginx_dir);
	ASSERT_INT_EQ(truncate(p, 0), 0);
	free(p);
	memset(c, 0, sizeof(c));
	req_init(&req, u);
	req.progress_cb = progress_conc;
	for (i = 0; i < 20; i++) {
		c[i].h = h;
		c[i].now = &now;
		c[i].max = &max;
		req.progress_arg = &c[i];
		ASSERT_INT_EQ(bd_http_start(h, &req, on_done_conc, &c[i], NULL),
		    0);
	}
	bd_http_counts(h, &active, &queued);
	ASSERT_INT_EQ(active, 4);
	ASSERT_INT_EQ(queued, 16);
	do {
		uv_run(&loop, UV_RUN_ONCE);
		bd_http_counts(h, &active, &queued);
		ASSERT(active <= 4);
		for (all = 1, i = 0; i < 20; i++)
			all &= c[i].res.calls == 1;
	} while (!all);
	for (i = 0; i < 20; i++) {
		ASSERT_INT_EQ(c[i].res.status, 0);
		ASSERT_INT_EQ(c[i].res.body_len, MID_SIZE);
		ASSERT(memcmp(c[i].res.body, mid, MID_SIZE) == 0);
		result_free(&c[i].res);
	}
	fprintf(stderr, "   at most %d at once\n", max);
	ASSERT(max <= 4);
	ASSERT(max >= 2);

	/* nginx saw at most 4 connections, each reused. */
	run_for(100);
	log = ng_access_log();
	for (line = strtok(log, "\n"); line != NULL;
	    line = strtok(NULL, "\n")) {
		if (strstr(line, "GET /slow/mid.bin") == NULL)
			continue;
		lines++;
		id = strtol(line, NULL, 10);
		for (j = 0; j < n_conns && conns[j] != id; j++)
			;
		if (j == n_conns && n_conns < 64)
			conns[n_conns++] = id;
	}
	free(log);
	ASSERT_INT_EQ(lines, 20);
	fprintf(stderr, "   %d connections\n", n_conns);
	ASSERT(n_conns <= 4);
	free(u);
	http_close(h);
}

TEST(disk_full)
{
	struct bd_http *h;
	struct bd_http_request req;
	struct result res = { 0 };
	char *u, *path, *opts;
	int fd;

	full_dir = xasprintf("%s/full", work_dir);
	ASSERT_INT_EQ(mkdir(full_dir, 0755), 0);
	opts = xstrdup("size=1m");
	if (geteuid() != 0 ||
	    mount("tmpfs", full_dir, "tmpfs", 0, opts) != 0) {
		fprintf(stderr, "   cannot mount a tmpfs (%s): skipping the "
		    "full-disk case\n", geteuid() != 0 ? "not root" :
		    strerror(errno));
		free(opts);
		free(full_dir);
		full_dir = NULL;
		return;
	}
	free(opts);
	path = xasprintf("%s/out.bin", full_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT(fd >= 0);
	h = http_new(4);
	u = url("/big.bin");
	req_init(&req, u);
	req.sink_fd = fd;
	req.sink_offset = 0;
	fetch(h, &req, &res);
	ASSERT_INT_EQ(res.status, -ENOSPC);
	ASSERT_INT_EQ(res.attempts, 1);
	ASSERT_STR_CONTAINS(res.detail, strerror(ENOSPC));
	result_free(&res);
	close(fd);
	free(path);
	free(u);
	http_close(h);
	ASSERT_INT_EQ(umount2(full_dir, MNT_DETACH), 0);
	free(full_dir);
	full_dir = NULL;
}

int
main(void)
{
	char tmpl[] = "/tmp/test_http.XXXXXX";
	const char *tmp = getenv("TMPDIR");
	char *t;

	t = tmp != NULL && tmp[0] != '\0' ?
	    xasprintf("%s/test_http.XXXXXX", tmp) : xstrdup(tmpl);
	if (mkdtemp(t) == NULL)
		UNIT_FAIL("mkdtemp %s: %s", t, strerror(errno));
	work_dir = t;
	/* Let nginx's workers (nobody when not root) into the directory. */
	ASSERT_INT_EQ(chmod(work_dir, 0755), 0);
	nginx_dir = xasprintf("%s/nginx", work_dir);
	atexit(cleanup);
	port = ng_start(nginx_dir, true);
	big = xmalloc(BIG_SIZE);
	fill(big, BIG_SIZE, 1);
	write_www("big.bin", big, BIG_SIZE);
	/* Old enough for its Last-Modified to be a strong validator. */
	www_age("big.bin", 200);
	mid = xmalloc(MID_SIZE);
	fill(mid, MID_SIZE, 3);
	write_www("mid.bin", mid, MID_SIZE);
	ASSERT_INT_EQ(uv_loop_init(&loop), 0);
	null_fd = open("/dev/null", O_WRONLY);
	ASSERT(null_fd >= 0);

	RUN(get_memory);
	RUN(get_file);
	RUN(big_download);
	RUN(ranged_get);
	RUN(put);
	RUN(not_found);
	RUN(retry_503);
	RUN(retry_after);
	RUN(connection_refused);
	RUN(too_big);
	RUN(timeout);
	RUN(resume_after_kill);
	RUN(resume_changed_file);
	RUN(resume_weak_etag);
	RUN(resume_no_etag);
	RUN(resume_no_etag_changed);
	RUN(resume_no_validator);
	RUN(cancel);
	RUN(close_cancels);
	RUN(concurrency);
	RUN(disk_full);

	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	close(null_fd);
	cleanup();
	free(big);
	free(mid);
	free(nginx_dir);
	free(work_dir);
	work_dir = NULL;
	return 0;
}
