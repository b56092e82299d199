/* SPDX-License-Identifier: MIT */
/*
 * Resource-file downloads against a real nginx (tests/lib/nginx-harness.sh)
 * and real directories: every source form, fileMode, the failure codes that
 * can be produced for real, cancellation, and that no message carries a SAS
 * signature.  Plain servers go through the blob client too: parallel
 * ranges, a server that ignores Range, and one that refuses HEAD.  The
 * Azure Storage forms against Azurite are in
 * tests/integration/test_run_blob.py.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "download.h"
#include "fsutil.h"
#include "metrics.h"
#include "nginx_support.h"
#include "xmalloc.h"
#include "unit.h"

static char *root;		/* the test's temporary directory */
static char *ngdir;		/* the nginx harness's directory */
static int port;		/* 0 when nginx is not available */
static int wd_serial;

#define SAS "?sv=x&sig=SECRET"

/* Writes len bytes of data (or a pattern when data is NULL) to path. */
static void
put_file(const char *path, const char *data, size_t len)
{
	char *dir = bd_path_dirname(path);
	char *buf = NULL;

	ASSERT_INT_EQ(bd_mkdir_p(dir, 0755), 0);
	free(dir);
	if (data == NULL) {
		buf = xmalloc(len);
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)(i * 7 + i / 251);
		data = buf;
	}
	ASSERT_INT_EQ(bd_write_file_atomic(path, data, len, 0644), 0);
	free(buf);
}

/* Asserts that path holds exactly the text want and has mode. */
static void
check_file(const char *path, const char *want, unsigned mode)
{
	struct stat st;
	size_t len;
	char *data;

	ASSERT_INT_EQ(bd_read_file(path, 1 << 20, &data, &len), 0);
	ASSERT_STR_EQ(data, want);
	free(data);
	ASSERT_INT_EQ(stat(path, &st), 0);
	ASSERT_INT_EQ(st.st_mode & 07777, mode);
}

/* A fresh working directory; caller frees. */
static char *
new_wd(void)
{
	char *wd = xasprintf("%s/wd%d", root, ++wd_serial);

	ASSERT_INT_EQ(bd_mkdir_p(wd, 0755), 0);
	return wd;
}

/* Counts files under dir whose name contains needle. */
static int
count_named(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *p = xasprintf("%s/%s", dir, de->d_name);
		if (strstr(de->d_name, needle) != NULL)
			n++;
		if (de->d_type == DT_DIR)
			n += count_named(p, needle);
		free(p);
	}
	closedir(d);
	return n;
}

static struct bd_resource_file
rf_make(enum bd_resource_source src, const char *url, const char *path,
    const char *prefix, unsigned mode)
{
	struct bd_resource_file rf = { 0 };

	rf.source = src;
	rf.url = xstrdup(url);
	rf.file_path = path ? xstrdup(path) : NULL;
	rf.blob_prefix = prefix ? xstrdup(prefix) : NULL;
	rf.file_mode = mode;
	return rf;
}

static void
rf_clear(struct bd_resource_file *rf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rf[i].url);
		free(rf[i].file_path);
		free(rf[i].blob_prefix);
	}
}

static char *
http_url(const char *path)
{
	return xasprintf("http://127.0.0.1:%d/%s", port, path);
}

struct outcome {
	bool done;
	struct bd_failure_info *failure;
	int cancelled;
	int progress;
	struct bd_download *d;
	bool cancel_on_progress;
};

static void
on_done(void *arg, struct bd_failure_info *f, int cancelled)
{
	struct outcome *o = arg;

	ASSERT(!o->done);
	o->done = true;
	o->failure = f;
	o->cancelled = cancelled;
}

static void
on_progress(void *arg, const char *name, int64_t done, int64_t total)
{
	struct outcome *o = arg;

	ASSERT_NOT_NULL(name);
	ASSERT(done >= 0);
	o->progress++;
	if (o->cancel_on_progress)
		bd_download_cancel(o->d);
}

static void
on_http_closed(void *arg)
{
	*(bool *)arg = true;
}

/*
 * Downloads files into wd with at most par at once; returns the outcome.
 * how: 0 = run, 1 = cancel at once, 2 = cancel on the first progress.
 */
static struct outcome
run(struct bd_resource_file *files, size_t n, const char *wd, int par,
    int how)
{
	struct outcome o = { 0 };
	struct bd_http *http;
	uv_loop_t loop;
	bool closed = false;

	ASSERT_INT_EQ(uv_loop_init(&loop), 0);
	ASSERT_INT_EQ(bd_http_new(&loop, NULL, &http), 0);
	struct bd_download_options opts = {
		.loop = &loop, .http = http, .files = files, .n_files = n,
		.wd = wd, .max_parallel = par, .progress_cb = on_progress,
		.progress_arg = &o,
	};
	o.cancel_on_progress = how == 2;
	ASSERT_INT_EQ(bd_download_start(&opts, on_done, &o, &o.d), 0);
	if (how == 1)
		bd_download_cancel(o.d);
	ASSERT(!o.done);
	while (!o.done)
		uv_run(&loop, UV_RUN_ONCE);
	bd_download_free(o.d);
	bd_http_close(http, on_http_closed, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT(closed);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	if (o.failure != NULL) {
		ASSERT(strstr(o.failure->message, "SECRET") == NULL);
		fprintf(stderr, "   %s: %s\n", o.failure->code,
		    o.failure->message);
	}
	return o;
}

/* Asserts a failure with code and category, and frees it. */
static void
expect(struct outcome *o, const char *code, enum bd_error_category cat,
    const char *part)
{
	ASSERT_NOT_NULL(o->failure);
	ASSERT_STR_EQ(o->failure->code, code);
	ASSERT_INT_EQ(o->failure->category, cat);
	if (part != NULL)
		ASSERT_STR_CONTAINS(o->failure->message, part);
	ASSERT(strstr(o->failure->message, "SECRET") == NULL);
	bd_failure_info_free(o->failure);
	o->failure = NULL;
}

TEST(http_ok)
{
	char *wd = new_wd(), *www = xasprintf("%s/www/a.txt", ngdir);
	char *u1 = http_url("a.txt" SAS), *u2 = http_url("big.bin");
	char *www2 = xasprintf("%s/www/big.bin", ngdir), *p;
	struct bd_resource_file rf[2];
	struct stat st;

	put_file(www, "hello\n", 6);
	put_file(www2, NULL, 3 << 20);
	int heads = ng_access_count("\"HEAD /", "", NULL);
	int gets = ng_access_count("\"GET /a.txt", "", NULL);
	uint64_t files = bd_metrics_get(BD_METRIC_DOWNLOAD_FILES);
	uint64_t bytes = bd_metrics_get(BD_METRIC_DOWNLOAD_BYTES);
	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u1, "dir/sub/a.txt", NULL, 0640);
	rf[1] = rf_make(BD_RESOURCE_HTTP_URL, u2, "big.bin", NULL, 0770);
	struct outcome o = run(rf, 2, wd, 0, 0);
	ASSERT_NULL(o.failure);
	/* The metrics count the files and their bytes (the blob client's
	 * size, not a stat of each file). */
	ASSERT_INT_EQ(bd_metrics_get(BD_METRIC_DOWNLOAD_FILES), files + 2);
	ASSERT_INT_EQ(bd_metrics_get(BD_METRIC_DOWNLOAD_BYTES),
	    bytes + 6 + (3 << 20));
	ASSERT_INT_EQ(o.cancelled, 0);
	ASSERT(o.progress > 0);
	p = xasprintf("%s/dir/sub/a.txt", wd);
	check_file(p, "hello\n", 0640);
	free(p);
	p = xasprintf("%s/big.bin", wd);
	ASSERT_INT_EQ(stat(p, &st), 0);
	ASSERT_INT_EQ(st.st_size, 3 << 20);
	ASSERT_INT_EQ(st.st_mode & 0777, 0770);
	free(p);
	ASSERT_INT_EQ(count_named(wd, "partial"), 0);
	/* A small file is one ranged GET, without a HEAD first. */
	ASSERT_INT_EQ(ng_access_count("\"HEAD /", "", NULL), heads);
	ASSERT_INT_EQ(ng_access_count("206 \"GET /a.txt",
	    "range=\"bytes=0-8388607\"", NULL), 1);
	ASSERT_INT_EQ(ng_access_count("\"GET /a.txt", "", NULL), gets + 1);
	rf_clear(rf, 2);
	free(u1);
	free(u2);
	free(www);
	free(www2);
	free(wd);
}

/* An empty file: the first ranged GET is refused (416), the HEAD says 0. */
TEST(http_empty)
{
	char *wd = new_wd(), *www = xasprintf("%s/www/empty.txt", ngdir);
	char *u = http_url("empty.txt" SAS), *p;
	struct bd_resource_file rf[1];

	put_file(www, "", 0);
	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u, "empty.txt", NULL, 0644);
	uint64_t files = bd_metrics_get(BD_METRIC_DOWNLOAD_FILES);
	uint64_t bytes = bd_metrics_get(BD_METRIC_DOWNLOAD_BYTES);
	struct outcome o = run(rf, 1, wd, 0, 0);
	ASSERT_NULL(o.failure);
	ASSERT_INT_EQ(bd_metrics_get(BD_METRIC_DOWNLOAD_FILES), files + 1);
	ASSERT_INT_EQ(bd_metrics_get(BD_METRIC_DOWNLOAD_BYTES), bytes);
	p = xasprintf("%s/empty.txt", wd);
	check_file(p, "", 0644);
	free(p);
	ASSERT_INT_EQ(count_named(wd, "partial"), 0);
	rf_clear(rf, 1);
	free(u);
	free(www);
	free(wd);
}

/*
 * A partial file left behind, as a link to a file the download must not
 * write, is replaced rather than followed or failed on.
 */
TEST(http_leftover_partial)
{
	char *wd = new_wd(), *www = xasprintf("%s/www/left.txt", ngdir);
	char *u = http_url("left.txt" SAS), *p, *victim, *data;
	struct bd_resource_file rf[1];
	size_t len;

	put_file(www, "fresh\n", 6);
	victim = xasprintf("%s/victim", wd);
	put_file(victim, "keep\n", 5);
	p = xasprintf("%s/.left.txt.batchd-partial", wd);
	ASSERT_INT_EQ(symlink(victim, p), 0);
	free(p);
	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u, "left.txt", NULL, 0640);
	struct outcome o = run(rf, 1, wd, 0, 0);
	ASSERT_NULL(o.failure);
	p = xasprintf("%s/left.txt", wd);
	check_file(p, "fresh\n", 0640);
	free(p);
	ASSERT_INT_EQ(bd_read_file(victim, 1024, &data, &len), 0);
	ASSERT_STR_EQ(data, "keep\n");
	free(data);
	ASSERT_INT_EQ(count_named(wd, "partial"), 0);
	rf_clear(rf, 1);
	free(victim);
	free(u);
	free(www);
	free(wd);
}

TEST(http_errors)
{
	char *wd = new_wd();
	char *u404 = http_url("missing.txt" SAS), *u403 = http_url("status/403"
	    SAS), *u400 = http_url("status/400" SAS);
	struct bd_resource_file rf[1];
	struct outcome o;

	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u404, "x/m.txt", NULL, 0770);
	o = run(rf, 1, wd, 0, 0);
	expect(&o, "BlobNotFound", BD_CATEGORY_USER_ERROR,
	    "resourceFiles[0] (x/m.txt): ");
	ASSERT_INT_EQ(count_named(wd, "m.txt"), 0);
	rf_clear(rf, 1);

	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u403, "d.txt", NULL, 0770);
	o = run(rf, 1, wd, 0, 0);
	expect(&o, "BlobAccessDenied", BD_CATEGORY_USER_ERROR, "HTTP 403");
	rf_clear(rf, 1);

	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u400, "d.txt", NULL, 0770);
	o = run(rf, 1, wd, 0, 0);
	expect(&o, "BlobDownloadMiscError", BD_CATEGORY_USER_ERROR, "400");
	rf_clear(rf, 1);
	ASSERT_INT_EQ(count_named(wd, "partial"), 0);
	ASSERT_INT_EQ(count_named(wd, "d.txt"), 0);
	free(u404);
	free(u403);
	free(u400);
	free(wd);
}

TEST(http_first_failure_stops_rest)
{
	char *wd = new_wd(), *big = xasprintf("%s/www/big2.bin", ngdir);
	struct bd_resource_file rf[12];
	char *u;

	put_file(big, NULL, 8 << 20);
	for (int i = 0; i < 12; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%d.bin", i);
		u = http_url(i == 5 ? "nope" SAS : "slow/big2.bin");
		rf[i] = rf_make(BD_RESOURCE_HTTP_URL, u, name, NULL, 0770);
		free(u);
	}
	struct outcome o = run(rf, 12, wd, 4, 0);
	expect(&o, "BlobNotFound", BD_CATEGORY_USER_ERROR, "resourceFiles[5]");
	ASSERT_INT_EQ(count_named(wd, "partial"), 0);
	rf_clear(rf, 12);
	free(big);
	free(wd);
}

TEST(cancel)
{
	char *wd = new_wd(), *big = xasprintf("%s/www/big3.bin", ngdir);
	char *u = http_url("slow/big3.bin");
	struct bd_resource_file rf[1];
	struct outcome o;

	put_file(big, NULL, 30 << 20);
	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u, "c.bin", NULL, 0770);
	o = run(rf, 1, wd, 0, 1);
	ASSERT_INT_EQ(o.cancelled, 1);
	ASSERT_NULL(o.failure);
	o = run(rf, 1, wd, 0, 2);
	ASSERT_INT_EQ(o.cancelled, 1);
	ASSERT_NULL(o.failure);
	ASSERT_INT_EQ(count_named(wd, "c.bin"), 0);
	rf_clear(rf, 1);
	free(u);
	free(big);
	free(wd);
}

/*
 * Many small files, 4 at once: their partial files are created and renamed
 * in batches.  All arrive; a rename that fails (a directory in the way) or
 * a blob that is missing fails the set, and no partial file is left, of
 * the files then waiting for their rename or created ahead.
 */
TEST(small_files_in_batches)
{
	char *wd = new_wd(), *www = xasprintf("%s/www/s.txt", ngdir), *p;
	struct bd_resource_file rf[24];
	char name[32];
	struct outcome o;

	put_file(www, "small\n", 6);
	for (int how = 0; how < 3; how++) {
		for (int i = 0; i < 24; i++) {
			char *u = http_url(how == 2 && i == 17 ? "nope" SAS :
			    "s.txt" SAS);
			snprintf(name, sizeof(name), "b%d/f%d", how, i);
			rf[i] = rf_make(BD_RESOURCE_HTTP_URL, u, name, NULL,
			    0640);
			free(u);
		}
		if (how == 1) {
			p = xasprintf("%s/b1/f13/x", wd);
			put_file(p, "x", 1);
			free(p);
		}
		o = run(rf, 24, wd, 4, 0);
		if (how == 0) {
			ASSERT_NULL(o.failure);
			for (int i = 0; i < 24; i++) {
				p = xasprintf("%s/b0/f%d", wd, i);
				check_file(p, "small\n", 0640);
				free(p);
			}
		} else if (how == 1)
			expect(&o, "ResourceFileCreateFailed",
			    BD_CATEGORY_USER_ERROR, "resourceFiles[13]");
		else
			expect(&o, "BlobNotFound", BD_CATEGORY_USER_ERROR,
			    "resourceFiles[17]");
		ASSERT_INT_EQ(count_named(wd, "partial"), 0);
		rf_clear(rf, 24);
	}
	free(www);
	free(wd);
}

TEST(file_url)
{
	char *wd = new_wd(), *src = xasprintf("%s/src/f s.bin", root);
	char *url = xasprintf("file://%s", src), *p;
	char *missing = xasprintf("file://%s/src/none" SAS, root);
	struct bd_resource_file rf[1];
	struct outcome o;

	url = xrealloc(url, strlen(url) + 3);
	/* A space percent-encoded, as a URL carries it. */
	char *sp = strstr(url, "f s.bin");
	memmove(sp + 3, sp + 1, strlen(sp + 1) + 1);
	memcpy(sp + 1, "%20", 3);
	put_file(src, "local\n", 6);
	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, url, "in/f.bin", NULL, 0600);
	o = run(rf, 1, wd, 0, 0);
	ASSERT_NULL(o.failure);
	p = xasprintf("%s/in/f.bin", wd);
	check_file(p, "local\n", 0600);
	free(p);
	rf_clear(rf, 1);

	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, missing, "g.bin", NULL, 0600);
	o = run(rf, 1, wd, 0, 0);
	expect(&o, "BlobNotFound", BD_CATEGORY_USER_ERROR, "(g.bin)");
	rf_clear(rf, 1);

	if (geteuid() != 0) {
		ASSERT_INT_EQ(chmod(src, 0), 0);
		rf[0] = rf_make(BD_RESOURCE_HTTP_URL, url, "h.bin", NULL, 0600);
		o = run(rf, 1, wd, 0, 0);
		expect(&o, "BlobAccessDenied", BD_CATEGORY_USER_ERROR, NULL);
		rf_clear(rf, 1);
		ASSERT_INT_EQ(chmod(src, 0644), 0);
	}
	free(missing);
	free(url);
	free(src);
	free(wd);
}

TEST(local_create_errors)
{
	char *wd = new_wd(), *src = xasprintf("%s/src2/a", root);
	char *url = xasprintf("file://%s", src), *p;
	struct bd_resource_file rf[1];
	struct outcome o;

	put_file(src, "a", 1);
	p = xasprintf("%s/plain", wd);
	put_file(p, "x", 1);
	free(p);
	p = xasprintf("%s/adir/x", wd);
	put_file(p, "x", 1);
	free(p);
	/* A regular file where a directory must go. */
	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, url, "plain/a", NULL, 0600);
	o = run(rf, 1, wd, 0, 0);
	expect(&o, "ResourceDirectoryCreateFailed", BD_CATEGORY_USER_ERROR,
	    "plain/a");
	rf_clear(rf, 1);
	/* A directory where the file must go, over http and file://. */
	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, url, "adir", NULL, 0600);
	o = run(rf, 1, wd, 0, 0);
	expect(&o, "ResourceFileCreateFailed", BD_CATEGORY_USER_ERROR, NULL);
	rf_clear(rf, 1);
	if (port != 0) {
		char *www = xasprintf("%s/www/a.txt", ngdir);
		char *u = http_url("a.txt");
		put_file(www, "hello\n", 6);
		rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u, "adir", NULL, 0600);
		o = run(rf, 1, wd, 0, 0);
		expect(&o, "ResourceFileCreateFailed", BD_CATEGORY_USER_ERROR,
		    NULL);
		rf_clear(rf, 1);
		ASSERT_INT_EQ(count_named(wd, "partial"), 0);
		free(u);
		free(www);
	}
	free(url);
	free(src);
	free(wd);
}

/* A container directory with nested blobs, a dot file and a symlink. */
static char *
make_container(void)
{
	char *c = xasprintf("%s/container%d", root, ++wd_serial), *p;
	const char *names[] = { "a.txt", "d/b.txt", "d/e/c.txt", "dx.txt",
	    "x/y.txt", ".hidden" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		p = xasprintf("%s/%s", c, names[i]);
		put_file(p, names[i], strlen(names[i]));
		free(p);
	}
	p = xasprintf("%s/link", c);
	ASSERT_INT_EQ(symlink("/etc/passwd", p), 0);
	free(p);
	p = xasprintf("%s/dlink", c);
	ASSERT_INT_EQ(symlink("/etc", p), 0);
	free(p);
	return c;
}

/* Asserts that wd/rel holds rel's own name (as make_container wrote). */
static void
check_blob(const char *wd, const char *dir, const char *blob, unsigned mode)
{
	char *p = dir ? xasprintf("%s/%s/%s", wd, dir, blob) :
	    xasprintf("%s/%s", wd, blob);

	check_file(p, blob, mode);
	free(p);
}

TEST(file_container)
{
	char *c = make_container(), *url = xasprintf("file://%s" SAS, c);
	char *wd = new_wd(), *wd2 = new_wd(), *wd3 = new_wd();
	struct bd_resource_file rf[1];
	struct outcome o;

	rf[0] = rf_make(BD_RESOURCE_STORAGE_CONTAINER_URL, url, NULL, NULL,
	    0750);
	o = run(rf, 1, wd, 0, 0);
	ASSERT_NULL(o.failure);
	check_blob(wd, NULL, "a.txt", 0750);
	check_blob(wd, NULL, "d/b.txt", 0750);
	check_blob(wd, NULL, "d/e/c.txt", 0750);
	check_blob(wd, NULL, "dx.txt", 0750);
	check_blob(wd, NULL, "x/y.txt", 0750);
	check_blob(wd, NULL, ".hidden", 0750);
	ASSERT_INT_EQ(count_named(wd, "link"), 0);
	rf_clear(rf, 1);

	/* A "directory" prefix, kept in the name, below filePath. */
	rf[0] = rf_make(BD_RESOURCE_STORAGE_CONTAINER_URL, url, "in/put",
	    "d/", 0640);
	o = run(rf, 1, wd2, 0, 0);
	ASSERT_NULL(o.failure);
	check_blob(wd2, "in/put", "d/b.txt", 0640);
	check_blob(wd2, "in/put", "d/e/c.txt", 0640);
	ASSERT_INT_EQ(count_named(wd2, "a.txt"), 0);
	ASSERT_INT_EQ(count_named(wd2, "dx.txt"), 0);
	ASSERT_INT_EQ(count_named(wd2, "y.txt"), 0);
	rf_clear(rf, 1);

	/* A partial file-name prefix. */
	rf[0] = rf_make(BD_RESOURCE_STORAGE_CONTAINER_URL, url, NULL, "d", 0600);
	o = run(rf, 1, wd3, 0, 0);
	ASSERT_NULL(o.failure);
	check_blob(wd3, NULL, "d/b.txt", 0600);
	check_blob(wd3, NULL, "d/e/c.txt", 0600);
	check_blob(wd3, NULL, "dx.txt", 0600);
	ASSERT_INT_EQ(count_named(wd3, "a.txt"), 0);
	rf_clear(rf, 1);
	free(url);
	free(c);
	free(wd);
	free(wd2);
	free(wd3);
}

TEST(container_errors)
{
	char *wd = new_wd(), *c = make_container();
	char *missing = xasprintf("file://%s/nothere" SAS, root);
	char *url = xasprintf("file://%s" SAS, c), *p;
	struct bd_resource_file rf[1];
	struct outcome o;

	rf[0] = rf_make(BD_RESOURCE_STORAGE_CONTAINER_URL, missing, NULL,
	    NULL, 0770);
	o = run(rf, 1, wd, 0, 0);
	expect(&o, "ResourceContainerNotFound", BD_CATEGORY_USER_ERROR,
	    "resourceFiles[0]");
	rf_clear(rf, 1);

	/* No storage account configured. */
	rf[0] = rf_make(BD_RESOURCE_AUTO_STORAGE_CONTAINER, "mycontainer",
	    NULL, NULL, 0770);
	o = run(rf, 1, wd, 0, 0);
	expect(&o, "ResourceContainerListMiscError", BD_CATEGORY_SERVER_ERROR,
	    "autoStorageContainerName needs a storage account");
	rf_clear(rf, 1);

	/* http(s) containers that a plain server cannot list. */
	if (port != 0) {
		/* (A 5xx would be retried for seconds first.) */
		const char *paths[] = { "nocontainer" SAS, "status/403" SAS,
		    "a.txt" SAS };
		const char *codes[] = { "ResourceContainerNotFound",
		    "ResourceContainerAccessDenied",
		    "ResourceContainerListMiscError" };
		char *www = xasprintf("%s/www/a.txt", ngdir);
		put_file(www, "not XML\n", 8);
		for (int i = 0; i < 3; i++) {
			char *u = http_url(paths[i]);
			rf[0] = rf_make(BD_RESOURCE_STORAGE_CONTAINER_URL, u,
			    NULL, NULL, 0770);
			o = run(rf, 1, wd, 0, 0);
			expect(&o, codes[i], i < 2 ? BD_CATEGORY_USER_ERROR :
			    BD_CATEGORY_SERVER_ERROR, "resourceFiles[0] (.)");
			rf_clear(rf, 1);
			free(u);
		}
		free(www);
	}

	if (geteuid() != 0) {
		p = xasprintf("%s/d", c);
		ASSERT_INT_EQ(chmod(p, 0), 0);
		rf[0] = rf_make(BD_RESOURCE_STORAGE_CONTAINER_URL, url, NULL,
		    NULL, 0770);
		o = run(rf, 1, wd, 0, 0);
		expect(&o, "ResourceContainerAccessDenied",
		    BD_CATEGORY_USER_ERROR, NULL);
		rf_clear(rf, 1);
		/* A prefix that avoids the unreadable directory. */
		rf[0] = rf_make(BD_RESOURCE_STORAGE_CONTAINER_URL, url, NULL,
		    "x/", 0770);
		o = run(rf, 1, wd, 0, 0);
		ASSERT_NULL(o.failure);
		check_blob(wd, NULL, "x/y.txt", 0770);
		rf_clear(rf, 1);
		ASSERT_INT_EQ(chmod(p, 0755), 0);
		free(p);
	}
	free(missing);
	free(url);
	free(c);
	free(wd);
}

/* Asserts that path holds len bytes of put_file's pattern. */
static void
check_pattern(const char *path, size_t len)
{
	char *data;
	size_t got;

	ASSERT_INT_EQ(bd_read_file(path, len + 1, &data, &got), 0);
	ASSERT_INT_EQ(got, len);
	for (size_t i = 0; i < len; i++)
		if (data[i] != (char)(i * 7 + i / 251))
			ASSERT_INT_EQ(i, len);	/* shows the first bad byte */
	free(data);
}

TEST(http_ranges)
{
	char *wd = new_wd(), *www = xasprintf("%s/www/r40.bin", ngdir);
	char *u1 = http_url("r40.bin" SAS), *u2 = http_url("norange/r40.bin");
	char *u3 = http_url("liar/r40.bin");
	struct bd_resource_file rf[3];
	long long sent;
	char *p;

	/* Past the blob client's 32 MiB: 8 MiB ranges, in parallel. */
	put_file(www, NULL, (40 << 20) + 3);
	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u1, "ranged.bin", NULL, 0640);
	rf[1] = rf_make(BD_RESOURCE_HTTP_URL, u2, "whole.bin", NULL, 0640);
	rf[2] = rf_make(BD_RESOURCE_HTTP_URL, u3, "liar.bin", NULL, 0640);
	struct outcome o = run(rf, 3, wd, 0, 0);
	ASSERT_NULL(o.failure);
	p = xasprintf("%s/ranged.bin", wd);
	check_pattern(p, (40 << 20) + 3);
	free(p);
	p = xasprintf("%s/whole.bin", wd);
	check_pattern(p, (40 << 20) + 3);
	free(p);
	p = xasprintf("%s/liar.bin", wd);
	check_pattern(p, (40 << 20) + 3);
	free(p);
	ASSERT(ng_access_count("206 \"GET /r40.bin",
	    "range=\"bytes=8388608-", NULL) > 0);
	ASSERT(ng_access_count("206 \"GET /r40.bin",
	    "range=\"bytes=41943040-41943042\"", NULL) > 0);
	/*
	 * The first GET asks for the first 8 MiB instead of a HEAD.  A
	 * server that ignores Range answers it 200 with the whole file, which
	 * is ended after those 8 MiB, then read in one GET without a Range;
	 * one that says it serves ranges but answers 200 the same: far less
	 * than a whole body per part.
	 */
	ASSERT_INT_EQ(ng_access_count("\"GET /norange/r40.bin", "", NULL), 2);
	ASSERT_INT_EQ(ng_access_count("\"HEAD /norange/r40.bin", "", NULL), 0);
	ASSERT_INT_EQ(ng_access_count("200 \"GET /norange/r40.bin",
	    "range=\"-\"", NULL), 1);
	(void)ng_access_count("\"GET /norange/r40.bin", "", &sent);
	ASSERT(sent < 2LL * ((40 << 20) + 3));
	ASSERT_INT_EQ(ng_access_count("\"GET /liar/r40.bin", "range=\"-\"",
	    NULL), 1);
	ASSERT(ng_access_count("\"GET /liar/r40.bin", "range=\"bytes=", NULL) >=
	    1);
	(void)ng_access_count("\"GET /liar/r40.bin", "", &sent);
	ASSERT(sent < 2LL * ((40 << 20) + 3));
	ASSERT_INT_EQ(count_named(wd, "partial"), 0);
	rf_clear(rf, 3);
	free(u1);
	free(u2);
	free(u3);
	free(www);
	free(wd);
}

/*
 * A server of its own for what nginx will not do: HEAD answered with 405
 * (mode 0), without a length (mode 1), or with a weak ETag (mode 2), and
 * GET with "hello\n", or with 412 for an If-Match on that weak ETag, as
 * RFC 9110 has it, or for any Range.  One request per connection, n
 * connections.
 */
struct tiny {
	int lfd, port, mode, n;
	int heads, gets;
	pthread_t th;
};

static void *
tiny_serve(void *arg)
{
	struct tiny *t = arg;
	char req[4096];

	for (int i = 0; i < t->n; i++) {
		int fd = accept(t->lfd, NULL, NULL);
		size_t len = 0;
		ssize_t got;
		const char *reply;

		if (fd == -1)
			break;
		while (len < sizeof(req) - 1 && (got = read(fd, req + len,
		    sizeof(req) - 1 - len)) > 0) {
			len += (size_t)got;
			req[len] = '\0';
			if (strstr(req, "\r\n\r\n") != NULL)
				break;
		}
		req[len] = '\0';
		if (strncmp(req, "HEAD ", 5) == 0) {
			t->heads++;
			reply = t->mode == 0 ? "HTTP/1.1 405 Method Not Allowed"
			    "\r\nContent-Length: 0\r\nConnection: close\r\n"
			    "\r\n" : t->mode == 1 ? "HTTP/1.1 200 OK\r\n"
			    "Connection: close\r\n\r\n" : "HTTP/1.1 200 OK\r\n"
			    "Content-Length: 6\r\nETag: W/\"weak\"\r\n"
			    "Connection: close\r\n\r\n";
		} else if (strcasestr(req, "\r\nIf-Match: W/") != NULL ||
		    strcasestr(req, "\r\nRange:") != NULL) {
			t->gets++;
			reply = "HTTP/1.1 412 Precondition Failed\r\n"
			    "Content-Length: 0\r\nConnection: close\r\n\r\n";
		} else {
			t->gets++;
			reply = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
			    "Connection: close\r\n\r\nhello\n";
		}
		(void)!write(fd, reply, strlen(reply));
		close(fd);
	}
	return NULL;
}

static void
tiny_start(struct tiny *t, int mode, int n)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);

	memset(t, 0, sizeof(*t));
	t->mode = mode;
	t->n = n;
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT((t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1);
	ASSERT_INT_EQ(bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ASSERT_INT_EQ(listen(t->lfd, 4), 0);
	ASSERT_INT_EQ(getsockname(t->lfd, (struct sockaddr *)&sa, &sl), 0);
	t->port = ntohs(sa.sin_port);
	ASSERT_INT_EQ(pthread_create(&t->th, NULL, tiny_serve, t), 0);
}

TEST(head_refused)
{
	char *wd = new_wd(), *u, *p;
	struct bd_resource_file rf[1];
	struct tiny t;

	/* The first GET asks for a range, refused (412): then the HEAD.
	   Mode 0 falls back to a plain GET; modes 1 and 2 (a size taken
	   for unknown, not 0; no If-Match on a weak ETag, and no ranges
	   joined under it) get one streamed GET from the blob client. */
	for (int mode = 0; mode < 3; mode++) {
		tiny_start(&t, mode, 3);
		u = xasprintf("http://127.0.0.1:%d/file?token=x", t.port);
		rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u, "got.txt", NULL, 0644);
		struct outcome o = run(rf, 1, wd, 0, 0);
		ASSERT_INT_EQ(pthread_join(t.th, NULL), 0);
		close(t.lfd);
		ASSERT_NULL(o.failure);
		ASSERT_INT_EQ(t.heads, 1);
		ASSERT_INT_EQ(t.gets, 2);
		p = xasprintf("%s/got.txt", wd);
		check_file(p, "hello\n", 0644);
		ASSERT_INT_EQ(unlink(p), 0);
		free(p);
		rf_clear(rf, 1);
		free(u);
	}
	free(wd);
}

TEST(many_in_parallel)
{
	char *wd = new_wd();
	struct bd_resource_file rf[40];
	char name[64];

	for (int i = 0; i < 40; i++) {
		char *src = xasprintf("%s/many/%d", root, i), *u;
		snprintf(name, sizeof(name), "%d\n", i);
		put_file(src, name, strlen(name));
		u = i % 2 || port == 0 ? xasprintf("file://%s", src) :
		    http_url("a.txt");
		snprintf(name, sizeof(name), "out/%d", i);
		rf[i] = rf_make(BD_RESOURCE_HTTP_URL, u, name, NULL, 0644);
		free(u);
		free(src);
	}
	struct outcome o = run(rf, 40, wd, 3, 0);
	ASSERT_NULL(o.failure);
	for (int i = 1; i < 40; i += 2) {
		char *p = xasprintf("%s/out/%d", wd, i);
		snprintf(name, sizeof(name), "%d\n", i);
		check_file(p, name, 0644);
		free(p);
	}
	rf_clear(rf, 40);
	free(wd);
}

TEST(disk_full)
{
	char *wd = new_wd(), *src = xasprintf("%s/bigsrc", root);
	char *url = xasprintf("file://%s", src);
	struct bd_resource_file rf[1];
	struct outcome o;

	if (geteuid() != 0 || mount("tmpfs", wd, "tmpfs", 0, "size=64k") != 0) {
		fprintf(stderr, "   skipped: needs root and tmpfs\n");
		free(url);
		free(src);
		free(wd);
		return;
	}
	put_file(src, NULL, 1 << 20);
	rf[0] = rf_make(BD_RESOURCE_HTTP_URL, url, "big", NULL, 0644);
	o = run(rf, 1, wd, 0, 0);
	expect(&o, "DiskFull", BD_CATEGORY_SERVER_ERROR, "big");
	rf_clear(rf, 1);
	if (port != 0) {
		char *www = xasprintf("%s/www/full.bin", ngdir);
		char *u = http_url("full.bin" SAS);
		put_file(www, NULL, 1 << 20);
		rf[0] = rf_make(BD_RESOURCE_HTTP_URL, u, "big", NULL, 0644);
		o = run(rf, 1, wd, 0, 0);
		expect(&o, "DiskFull", BD_CATEGORY_SERVER_ERROR, "big");
		rf_clear(rf, 1);
		free(www);
		free(u);
	}
	ASSERT_INT_EQ(count_named(wd, "big"), 0);
	ASSERT_INT_EQ(umount(wd), 0);
	free(url);
	free(src);
	free(wd);
}

TEST(nothing_to_do)
{
	char *wd = new_wd();
	struct outcome o = run(NULL, 0, wd, 0, 0);

	ASSERT_NULL(o.failure);
	ASSERT_INT_EQ(o.cancelled, 0);
	free(wd);
}

int
main(void)
{
	char tmpl[] = "/tmp/test_download.XXXXXX";

	ASSERT_NOT_NULL(mkdtemp(tmpl));
	root = tmpl;
	ngdir = xasprintf("%s/nginx", root);
	port = ng_start(ngdir, false);
	if (port != 0) {
		RUN(http_ok);
		RUN(http_empty);
		RUN(http_leftover_partial);
		RUN(http_errors);
		RUN(http_first_failure_stops_rest);
		RUN(small_files_in_batches);
		RUN(cancel);
		RUN(http_ranges);
	}
	RUN(head_refused);
	RUN(file_url);
	RUN(local_create_errors);
	RUN(file_container);
	RUN(container_errors);
	RUN(many_in_parallel);
	RUN(disk_full);
	RUN(nothing_to_do);
	ng_stop();
	free(ngdir);
	ASSERT_INT_EQ(bd_rm_rf(root), 0);
	return 0;
}
