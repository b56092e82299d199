/* SPDX-License-Identifier: MIT */
/*
 * Tests of common/blob against a real Azurite started by
 * tests/lib/azurite-harness.sh, with the official Azure SDK for JavaScript
 * (tests/lib/node/blobtool.js) as the other party: it uploads what batchd
 * downloads and checks what batchd uploads.  Skipped with 77 only when
 * node or npm is missing.  Faults are real: a tampered and an expired SAS,
 * missing containers and blobs, a wrong stored MD5, and Azurite killed
 * with SIGKILL in the middle of a download and restarted on the same port.
 * An atexit handler stops Azurite and removes the scratch directory.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <openssl/evp.h>

#include "azurite_support.h"
#include "blob.h"
#include "error.h"
#include "http.h"
#include "storage_auth.h"
#include "unit.h"
#include "xmalloc.h"

#define MiB		(1024 * 1024)
#define LARGE		(100 * MiB)
#define UPLOAD_LARGE	(80 * MiB + 12345)
#define MANY		2500

static uv_loop_t loop;
static struct bd_http *http;
static int blob_port;
static struct bd_storage_account *account;
static struct bd_blob_container *shared;	/* "test", Shared Key */
static unsigned char *large;			/* contents of "big.bin" */

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

/* Base64 MD5 of n bytes. */
static char *
md5_b64(const void *data, size_t n)
{
	unsigned char md[16];
	unsigned int len = 0;

	EVP_Digest(data, n, md, &len, EVP_md5(), NULL);
	return bd_storage_base64(md, 16);
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

/* Runs blobtool on container (NULL: "test"); it must succeed.  Returns
   its output (caller frees). */
static char * __attribute__((format(printf, 2, 3)))
tool(const char *container, const char *fmt, ...)
{
	char *env, *out;
	va_list ap;

	env = xasprintf("BLOBTOOL_CONTAINER=%s",
	    container != NULL ? container : "test");
	va_start(ap, fmt);
	out = az_vtool("blobtool", env, fmt, ap);
	va_end(ap);
	free(env);
	return out;
}

/* What a blob callback saw. */
struct done {
	int calls;
	int status;
	long http_status;
	char *code;
	char *detail;
	int64_t bytes;
	bool md5_checked;
	char *content_md5;
	int64_t size;
	char *props_md5;
	char *meta_color;
	struct bd_xml_list *list;
	int64_t progress;
	int progress_calls;
	void (*on_progress)(struct done *);
};

/* Error texts never carry a signature or the account key. */
static char *secret_sig;

/* Remembers the sig value of SAS URL url for check_secret_free(). */
static void
remember_sig(const char *url)
{
	const char *p = strstr(url, "sig=");

	ASSERT_NOT_NULL(p);
	free(secret_sig);
	secret_sig = xstrndup(p + 4, strcspn(p + 4, "&"));
	ASSERT(strlen(secret_sig) > 10);
}

static void
check_secret_free(const char *text)
{
	if (text == NULL)
		return;
	if (strstr(text, BD_STORAGE_DEV_KEY) != NULL)
		UNIT_FAIL("the account key in \"%s\"", text);
	if (secret_sig != NULL && strstr(text, secret_sig) != NULL)
		UNIT_FAIL("the SAS signature in \"%s\"", text);
}

static void
on_done(struct bd_blob_op *op, const struct bd_blob_result *r, void *arg)
{
	struct done *d = arg;
	size_t i;

	d->calls++;
	d->status = r->status;
	d->http_status = r->http_status;
	d->code = r->code != NULL ? xstrdup(r->code) : NULL;
	d->detail = r->detail != NULL ? xstrdup(r->detail) : NULL;
	check_secret_free(r->detail);
	d->bytes = r->bytes;
	d->md5_checked = r->md5_checked;
	d->content_md5 = r->content_md5 ? xstrdup(r->content_md5) : NULL;
	if (r->props != NULL) {
		d->size = r->props->size;
		d->props_md5 = r->props->content_md5 != NULL ?
		    xstrdup(r->props->content_md5) : NULL;
		for (i = 0; i < r->props->n_headers; i++)
			if (strcasecmp(r->props->headers[i].name,
			    "x-ms-meta-color") == 0)
				d->meta_color = xstrdup(
				    r->props->headers[i].value);
	}
	if (r->list != NULL)
		d->list = bd_blob_take_list(op);
}

static void
on_progress(void *arg, int64_t done, int64_t total)
{
	struct done *d = arg;

	ASSERT(done >= 0 && done <= total);
	d->progress = done;
	d->progress_calls++;
	if (d->on_progress != NULL)
		d->on_progress(d);
}

/* Runs the loop until d's callback ran once. */
static void
wait_done(struct done *d)
{
	while (d->calls == 0)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_INT_EQ(d->calls, 1);
	if (d->status != 0)
		fprintf(stderr, "   status %d: %s\n", d->status,
		    d->detail ? d->detail : "");
}

static void
done_clear(struct done *d)
{
	free(d->code);
	free(d->detail);
	free(d->content_md5);
	free(d->props_md5);
	free(d->meta_color);
	bd_xml_list_free(d->list);
	memset(d, 0, sizeof(*d));
}

/* Downloads name from c into a new file; returns the done record. */
static void
get(struct bd_blob_container *c, const char *name, const char *path,
    struct done *d)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	ASSERT(fd >= 0);
	ASSERT_INT_EQ(bd_blob_get_start(c, name, fd, on_progress, on_done, d,
	    NULL), 0);
	wait_done(d);
	close(fd);
}

/* Asserts that the file at path holds exactly n bytes of data. */
static void
assert_file(const char *path, const void *data, size_t n)
{
	size_t len;
	unsigned char *got = read_path(path, n + 1, &len);

	ASSERT_INT_EQ(len, n);
	ASSERT(memcmp(got, data, n) == 0);
	free(got);
}

/* A container of the test account by name, with Shared Key. */
static struct bd_blob_container *
container(const char *name, const struct bd_blob_options *o)
{
	struct bd_blob_container *c = NULL;
	char *cause = NULL;

	ASSERT_INT_EQ(bd_blob_container_from_account(&loop, http, account, name,
	    o, &c, &cause), 0);
	return c;
}

/* A container from a SAS URL. */
static struct bd_blob_container *
container_url(const char *url, const struct bd_blob_options *o)
{
	struct bd_blob_container *c = NULL;
	char *cause = NULL;

	ASSERT_INT_EQ(bd_blob_container_from_url(&loop, http, url, o, &c,
	    &cause), 0);
	return c;
}

/* Container "test" by a SAS URL, as resource files have it; caller frees. */
static struct bd_blob_container *
container_sas(const struct bd_blob_options *o)
{
	char *url = tool(NULL, "sas-container racwdl 3600");
	struct bd_blob_container *c;

	url[strcspn(url, "\n")] = '\0';
	remember_sig(url);
	c = container_url(url, o);
	free(url);
	return c;
}

TEST(container_create)
{
	struct done d = { 0 };
	char *out;

	ASSERT_INT_EQ(bd_blob_container_create_start(shared, on_done, &d,
	    NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	/* The SDK sees it (an empty listing, not an error). */
	out = tool(NULL, "list");
	ASSERT_STR_EQ(out, "");
	free(out);
	ASSERT_INT_EQ(bd_blob_container_create_start(shared, on_done, &d,
	    NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, -EEXIST);
	ASSERT_STR_EQ(d.code, "ContainerAlreadyExists");
	done_clear(&d);
}

TEST(get_small)
{
	unsigned char data[1000];
	struct done d = { 0 };
	char *src, *dst, *md5, *out;

	fill(data, sizeof(data), 1);
	src = az_write_file("small.src", data, sizeof(data));
	free(tool(NULL, "upload '%s' dir/small.bin --md5", src));
	dst = xasprintf("%s/small.dst", az_work_dir());
	get(shared, "dir/small.bin", dst, &d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.bytes, sizeof(data));
	ASSERT(d.md5_checked);
	md5 = md5_b64(data, sizeof(data));
	out = tool(NULL, "md5 dir/small.bin");
	ASSERT_STR_EQ(out, md5);
	ASSERT_STR_EQ(d.props_md5, md5);
	assert_file(dst, data, sizeof(data));
	done_clear(&d);
	free(out);
	free(md5);

	/* Without a stored MD5 nothing is checked. */
	free(tool(NULL, "upload '%s' nomd5.bin --no-md5", src));
	get(shared, "nomd5.bin", dst, &d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT(!d.md5_checked);
	assert_file(dst, data, sizeof(data));
	done_clear(&d);

	/* An empty blob. */
	free(src);
	src = az_write_file("empty.src", "", 0);
	free(tool(NULL, "upload '%s' empty.bin", src));
	get(shared, "empty.bin", dst, &d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.bytes, 0);
	assert_file(dst, "", 0);
	done_clear(&d);
	free(src);
	free(dst);
}

TEST(get_large)
{
	struct bd_blob_options o = { 0 };
	struct bd_blob_container *c;
	struct done d = { 0 };
	char *src, *dst;

	src = az_write_file("big.src", large, LARGE);
	free(tool(NULL, "upload '%s' big.bin --md5", src));
	dst = xasprintf("%s/big.dst", az_work_dir());
	get(shared, "big.bin", dst, &d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.bytes, LARGE);
	ASSERT(d.md5_checked);
	ASSERT_INT_EQ(d.progress, LARGE);
	ASSERT(d.progress_calls > 10);
	assert_file(dst, large, LARGE);
	done_clear(&d);

	/* Smaller ranges, fewer at once, and a small-blob threshold. */
	o.get_single_max = 1 * MiB;
	o.get_chunk_size = 3 * MiB + 7;
	o.get_parallel = 3;
	c = container("test", &o);
	get(c, "big.bin", dst, &d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT(d.md5_checked);
	assert_file(dst, large, LARGE);
	done_clear(&d);
	bd_blob_container_free(c);

	/* The first range instead of a HEAD (get_probe): its 206 gives the
	   size and the blob's MD5, the ranges after it are checked too. */
	o.get_probe = true;
	o.md5_off_loop_min = 1;
	c = container_sas(&o);
	get(c, "big.bin", dst, &d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.bytes, LARGE);
	ASSERT(d.md5_checked);
	ASSERT_INT_EQ(d.progress, LARGE);
	assert_file(dst, large, LARGE);
	done_clear(&d);
	bd_blob_container_free(c);
	free(src);
	free(dst);
}

TEST(get_bad_md5)
{
	struct bd_blob_options o = { 0 };
	struct bd_blob_container *c;
	struct done d = { 0 };
	char *dst = xasprintf("%s/bad.dst", az_work_dir());

	/* Copy small.bin's bytes under a wrong stored MD5. */
	free(tool(NULL, "upload '%s/small.src' badmd5.bin --md5",
	    az_work_dir()));
	free(tool(NULL, "set-md5 badmd5.bin AAAAAAAAAAAAAAAAAAAAAA=="));
	get(shared, "badmd5.bin", dst, &d);
	ASSERT_INT_EQ(d.status, BD_ECHECKSUM);
	ASSERT_STR_CONTAINS(d.detail, "AAAAAAAAAAAAAAAAAAAAAA==");
	ASSERT_STR_CONTAINS(d.detail, "badmd5.bin");
	ASSERT(!d.md5_checked);
	done_clear(&d);

	/* The same in small ranges, hashed as they arrive (get_large has
	   a good MD5 checked that way). */
	o.get_single_max = 512;
	o.get_chunk_size = 300;
	o.get_parallel = 3;
	o.md5_off_loop_min = 1;
	c = container("test", &o);
	get(c, "badmd5.bin", dst, &d);
	ASSERT_INT_EQ(d.status, BD_ECHECKSUM);
	ASSERT(!d.md5_checked);
	done_clear(&d);
	bd_blob_container_free(c);

	/* Starting with a ranged GET, whole in it or not. */
	o.get_probe = true;
	c = container_sas(&o);
	get(c, "badmd5.bin", dst, &d);
	ASSERT_INT_EQ(d.status, BD_ECHECKSUM);
	ASSERT_STR_CONTAINS(d.detail, "AAAAAAAAAAAAAAAAAAAAAA==");
	check_secret_free(d.detail);
	done_clear(&d);
	bd_blob_container_free(c);
	memset(&o, 0, sizeof(o));
	o.get_probe = true;
	c = container_sas(&o);
	get(c, "badmd5.bin", dst, &d);
	ASSERT_INT_EQ(d.status, BD_ECHECKSUM);
	ASSERT(!d.md5_checked);
	done_clear(&d);
	bd_blob_container_free(c);
	free(dst);
}

TEST(list_pages)
{
	struct bd_blob_options o = { 0 };
	struct bd_blob_container *c;
	struct done d = { 0 };
	char want[64];
	size_t i;

	free(tool(NULL, "upload-many many/ %d", MANY));
	o.list_page_size = 700;		/* four pages */
	c = container("test", &o);
	ASSERT_INT_EQ(bd_blob_list_start(c, "many/", NULL, on_done, &d,
	    NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_NOT_NULL(d.list);
	ASSERT_INT_EQ(d.list->n_blobs, MANY);
	for (i = 0; i < MANY; i++) {
		snprintf(want, sizeof(want), "many/%05zu", i);
		ASSERT_STR_EQ(d.list->blobs[i].name, want);
		snprintf(want, sizeof(want), "blob %zu\n", i);
		ASSERT_INT_EQ(d.list->blobs[i].size, strlen(want));
		ASSERT_NOT_NULL(d.list->blobs[i].content_md5);
	}
	done_clear(&d);

	/* A prefix that matches one name, and a delimiter. */
	ASSERT_INT_EQ(bd_blob_list_start(c, "many/0249", NULL, on_done, &d,
	    NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.list->n_blobs, 10);
	done_clear(&d);
	ASSERT_INT_EQ(bd_blob_list_start(c, NULL, "/", on_done, &d, NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.list->n_prefixes, 2);
	ASSERT_STR_EQ(d.list->prefixes[0], "dir/");
	ASSERT_STR_EQ(d.list->prefixes[1], "many/");
	ASSERT(d.list->n_blobs >= 3);
	done_clear(&d);

	/* A limit on the names. */
	o.list_limits.max_names = 1000;
	bd_blob_container_free(c);
	c = container("test", &o);
	ASSERT_INT_EQ(bd_blob_list_start(c, "many/", NULL, on_done, &d,
	    NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, BD_ETOOBIG);
	ASSERT_STR_CONTAINS(d.detail, "more than 1000 names");
	done_clear(&d);
	bd_blob_container_free(c);
}

/* The bytes of Azurite's debug log from offset on; caller frees. */
static char *
debug_log(size_t offset, size_t *len)
{
	char *path = xasprintf("%s/azurite/debug.log", az_work_dir());
	unsigned char *all = read_path(path, 1 << 30, len);
	char *tail;

	ASSERT(*len >= offset);
	tail = xstrndup((char *)all + offset, *len - offset);
	*len -= offset;
	free(all);
	free(path);
	return tail;
}

/* How many lines of text hold both needles. */
static size_t
count_lines(const char *text, const char *a, const char *b)
{
	size_t n = 0;
	const char *line = text, *end;

	for (; *line != '\0'; line = *end ? end + 1 : end) {
		char *one;
		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		one = xstrndup(line, (size_t)(end - line));
		n += strstr(one, a) != NULL && strstr(one, b) != NULL;
		free(one);
	}
	return n;
}

/*
 * Blobs taken from a listing download without a HEAD: size, ETag (bare in
 * the listing, quoted for If-Match) and Content-MD5 come from List Blobs;
 * a big listed blob still comes in parallel ranges.
 */
TEST(get_listed)
{
	struct bd_blob_options o = { 0 };
	struct bd_blob_container *c;
	struct done d = { 0 }, l = { 0 };
	size_t mark, len, i;
	char *dst = xasprintf("%s/listed.dst", az_work_dir()), *log, want[64];
	int fd;

	free(debug_log(0, &mark));
	ASSERT_INT_EQ(bd_blob_list_start(shared, "many/000", NULL, on_done, &l,
	    NULL), 0);
	wait_done(&l);
	ASSERT_INT_EQ(l.status, 0);
	ASSERT_INT_EQ(l.list->n_blobs, 100);
	for (i = 0; i < l.list->n_blobs; i++) {
		fd = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0644);
		ASSERT(fd >= 0);
		ASSERT_INT_EQ(bd_blob_get_listed_start(shared,
		    &l.list->blobs[i], fd, on_progress, on_done, &d, NULL), 0);
		wait_done(&d);
		close(fd);
		ASSERT_INT_EQ(d.status, 0);
		ASSERT(d.md5_checked);
		snprintf(want, sizeof(want), "blob %zu\n", i);
		assert_file(dst, want, strlen(want));
		done_clear(&d);
	}
	done_clear(&l);

	/* big.bin in 4 MiB ranges from its listing, If-Match on each. */
	o.get_single_max = 1 * MiB;
	o.get_chunk_size = 4 * MiB;
	c = container("test", &o);
	ASSERT_INT_EQ(bd_blob_list_start(c, "big.bin", NULL, on_done, &l,
	    NULL), 0);
	wait_done(&l);
	ASSERT_INT_EQ(l.list->n_blobs, 1);
	ASSERT(l.list->blobs[0].etag[0] != '"');
	fd = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_INT_EQ(bd_blob_get_listed_start(c, &l.list->blobs[0], fd,
	    on_progress, on_done, &d, NULL), 0);
	wait_done(&d);
	close(fd);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT(d.md5_checked);
	ASSERT_INT_EQ(d.progress, LARGE);
	assert_file(dst, large, LARGE);
	done_clear(&d);
	done_clear(&l);
	bd_blob_container_free(c);

	log = debug_log(mark, &len);
	ASSERT_INT_EQ(count_lines(log, "RequestMethod=HEAD", "/test/"), 0);
	ASSERT_INT_EQ(count_lines(log, "RequestMethod=GET", "/test/many/000"),
	    100);
	ASSERT_INT_EQ(count_lines(log, "NormalizedDownloadRange=bytes=",
	    "RequiredContentLength=4194304"), LARGE / (4 * MiB));
	free(log);
	free(dst);
}

/* Uploads n bytes of data as name with the output-file headers. */
static void
put_and_check(struct bd_blob_container *c, const char *name,
    const unsigned char *data, size_t n)
{
	const char *headers[] = {
		"Content-Type: text/x-batchd",
		"Cache-Control: max-age=60",
		"x-ms-meta-color: blue",
	};
	struct done d = { 0 };
	char *src, *dst, *md5, *props;
	int fd;

	src = az_write_file("put.src", data, n);
	fd = open(src, O_RDONLY);
	ASSERT(fd >= 0);
	ASSERT_INT_EQ(bd_blob_put_file_start(c, name, fd, -1, headers, 3,
	    on_progress, on_done, &d, NULL), 0);
	wait_done(&d);
	close(fd);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.bytes, n);
	/* Upload progress: the bytes sent, ending with all of them. */
	ASSERT(d.progress_calls > 0);
	ASSERT_INT_EQ(d.progress, n);
	md5 = md5_b64(data, n);
	ASSERT_STR_EQ(d.content_md5, md5);
	done_clear(&d);

	/* The SDK's view: bytes, MD5 and headers. */
	props = tool(NULL, "props '%s'", name);
	ASSERT_STR_CONTAINS(props, "\"contentType\":\"text/x-batchd\"");
	ASSERT_STR_CONTAINS(props, "\"cacheControl\":\"max-age=60\"");
	ASSERT_STR_CONTAINS(props, "\"metadata\":{\"color\":\"blue\"}");
	ASSERT_STR_CONTAINS(props, md5);
	ASSERT_STR_CONTAINS(props, "\"blobType\":\"BlockBlob\"");
	free(props);
	dst = xasprintf("%s/put.dst", az_work_dir());
	free(tool(NULL, "download '%s' '%s'", name, dst));
	assert_file(dst, data, n);

	/* Our own download agrees, MD5 checked, metadata seen. */
	get(c, name, dst, &d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT(d.md5_checked);
	ASSERT_STR_EQ(d.meta_color, "blue");
	done_clear(&d);
	free(md5);
	free(dst);
	free(src);
}

TEST(put)
{
	struct bd_blob_options o = { 0 };
	struct bd_blob_container *c;
	unsigned char *data = xmalloc(UPLOAD_LARGE);
	struct done d = { 0 };
	char *out, *md5;

	fill(data, UPLOAD_LARGE, 7);
	put_and_check(shared, "out/small.txt", data, 5000);
	put_and_check(shared, "out/empty.txt", data, 0);
	/* 80 MiB and a bit: eleven 8 MiB blocks. */
	put_and_check(shared, "out/large.bin", data, UPLOAD_LARGE);

	/* Blocks from a small threshold, and hashing on the loop thread. */
	o.put_single_max = 100000;
	o.put_block_size = 65536;
	o.put_parallel = 3;
	o.md5_off_loop_min = 1 << 30;
	c = container("test", &o);
	put_and_check(c, "out/blocks.bin", data, 1000000);
	bd_blob_container_free(c);

	/* From memory. */
	ASSERT_INT_EQ(bd_blob_put_mem_start(shared, "out/mem.txt", "hello\n",
	    6, NULL, 0, on_done, &d, NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	out = tool(NULL, "md5 out/mem.txt");
	md5 = md5_b64("hello\n", 6);
	ASSERT_STR_EQ(out, md5);
	free(out);
	free(md5);

	/* A header with a line break is refused at once. */
	{
		const char *bad[] = { "x-ms-meta-a: b\r\nx: y" };

		ASSERT_INT_EQ(bd_blob_put_mem_start(shared, "x", "", 0, bad, 1,
		    on_done, &d, NULL), -EINVAL);
		ASSERT_INT_EQ(d.calls, 0);
	}
	free(data);
}

TEST(sas)
{
	struct bd_blob_container *c;
	struct done d = { 0 };
	char *url, *bad, *dst, *p;
	unsigned char data[3000];

	url = tool(NULL, "sas-container racwdl 3600");
	remember_sig(url);
	c = container_url(url, NULL);
	dst = xasprintf("%s/sas.dst", az_work_dir());
	get(c, "big.bin", dst, &d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT(d.md5_checked);
	assert_file(dst, large, LARGE);
	done_clear(&d);
	ASSERT_INT_EQ(bd_blob_list_start(c, "dir/", NULL, on_done, &d, NULL),
	    0);
	wait_done(&d);
	ASSERT_INT_EQ(d.list->n_blobs, 1);
	done_clear(&d);
	fill(data, sizeof(data), 3);
	put_and_check(c, "sas/put.bin", data, sizeof(data));

	/* A tampered signature. */
	bad = xstrdup(url);
	p = strstr(bad, "sig=") + 4;
	*p = *p == 'A' ? 'B' : 'A';
	bd_blob_container_free(c);
	c = container_url(bad, NULL);
	get(c, "dir/small.bin", dst, &d);
	ASSERT_INT_EQ(d.status, BD_EDENIED);
	ASSERT_INT_EQ(d.http_status, 403);
	/* Azure says AuthenticationFailed, Azurite AuthorizationFailure. */
	ASSERT(strcmp(d.code, "AuthenticationFailed") == 0 ||
	    strcmp(d.code, "AuthorizationFailure") == 0);
	ASSERT_STR_CONTAINS(d.detail, "the storage service refused the SAS");
	ASSERT(strstr(d.detail, p) == NULL);
	done_clear(&d);
	bd_blob_container_free(c);
	free(bad);

	/* A read-only SAS cannot list, and says so. */
	free(url);
	url = tool(NULL, "sas-container r 3600");
	remember_sig(url);
	c = container_url(url, NULL);
	ASSERT_INT_EQ(bd_blob_list_start(c, NULL, NULL, on_done, &d, NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, BD_EDENIED);
	ASSERT_STR_CONTAINS(d.detail, "the SAS lacks list permission (sp=r)");
	done_clear(&d);
	bd_blob_container_free(c);

	/* An expired SAS. */
	free(url);
	url = tool(NULL, "sas-container rl -60");
	remember_sig(url);
	c = container_url(url, NULL);
	get(c, "dir/small.bin", dst, &d);
	ASSERT_INT_EQ(d.status, BD_EDENIED);
	ASSERT_STR_CONTAINS(d.detail, "the SAS expired at ");
	done_clear(&d);
	bd_blob_container_free(c);

	/* A blob SAS URL serves the blob itself (name NULL). */
	free(url);
	url = tool(NULL, "sas-blob dir/small.bin r 3600");
	remember_sig(url);
	c = container_url(url, NULL);
	get(c, NULL, dst, &d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.bytes, 1000);
	ASSERT(d.md5_checked);
	done_clear(&d);
	bd_blob_container_free(c);
	free(url);
	free(dst);
}

TEST(not_found)
{
	struct bd_blob_container *c = container("nosuchcontainer", NULL);
	struct done d = { 0 };
	char *dst = xasprintf("%s/nf.dst", az_work_dir());

	get(shared, "no/such/blob", dst, &d);
	ASSERT_INT_EQ(d.status, BD_ENOTFOUND);
	ASSERT_INT_EQ(d.http_status, 404);
	ASSERT_STR_EQ(d.code, "BlobNotFound");
	ASSERT_STR_CONTAINS(d.detail, "BlobNotFound");
	ASSERT_STR_CONTAINS(d.detail, "/test/no/such/blob");
	done_clear(&d);

	ASSERT_INT_EQ(bd_blob_list_start(c, NULL, NULL, on_done, &d, NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, BD_ENOTFOUND);
	ASSERT_STR_EQ(d.code, "ContainerNotFound");
	ASSERT_STR_CONTAINS(d.detail, "ContainerNotFound");
	ASSERT_STR_CONTAINS(d.detail, "The specified container does not "
	    "exist.");
	done_clear(&d);

	get(c, "some/blob", dst, &d);
	ASSERT_INT_EQ(d.status, BD_ENOTFOUND);
	ASSERT_STR_EQ(d.code, "ContainerNotFound");
	done_clear(&d);

	ASSERT_INT_EQ(bd_blob_put_mem_start(c, "x", "x", 1, NULL, 0, on_done,
	    &d, NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, BD_ENOTFOUND);
	ASSERT_STR_EQ(d.code, "ContainerNotFound");
	done_clear(&d);

	/* Delete a blob, then it is gone. */
	ASSERT_INT_EQ(bd_blob_delete_start(shared, "nomd5.bin", on_done, &d,
	    NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	ASSERT_INT_EQ(bd_blob_get_props_start(shared, "nomd5.bin", on_done,
	    &d, NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, BD_ENOTFOUND);
	done_clear(&d);
	bd_blob_container_free(c);
	free(dst);
}

/* Wrong keys: Shared Key refused. */
TEST(bad_key)
{
	struct bd_storage_account *a = NULL;
	struct bd_blob_container *c = NULL;
	struct done d = { 0 };
	char *conn, *cause = NULL;

	conn = xasprintf("DefaultEndpointsProtocol=http;AccountName="
	    "devstoreaccount1;AccountKey=a2V5a2V5a2V5;BlobEndpoint="
	    "http://127.0.0.1:%d/devstoreaccount1", blob_port);
	ASSERT_INT_EQ(bd_storage_account_parse(conn, &a, &cause), 0);
	ASSERT_INT_EQ(bd_blob_container_from_account(&loop, http, a, "test",
	    NULL, &c, &cause), 0);
	ASSERT_INT_EQ(bd_blob_get_props_start(c, "dir/small.bin", on_done, &d,
	    NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, BD_EDENIED);
	check_secret_free(d.detail);
	ASSERT(strstr(d.detail, "a2V5a2V5a2V5") == NULL);
	done_clear(&d);
	bd_blob_container_free(c);
	bd_storage_account_free(a);
	free(conn);
}

/* Progress hook: kills Azurite once a fifth of the blob is in. */
static bool killed;
static uv_timer_t restart_timer;

static void
on_restart(uv_timer_t *t)
{
	ASSERT_INT_EQ(az_harness("restart"), blob_port);
}

static void
kill_midway(struct done *d)
{
	if (killed || d->progress < LARGE / 5)
		return;
	killed = true;
	az_harness("kill9");
	uv_timer_start(&restart_timer, on_restart, 700, 0);
}

TEST(resume)
{
	struct bd_blob_container *c;
	struct done d = { 0 };
	char *dst = xasprintf("%s/resume.dst", az_work_dir()), *url;
	int pass;

	/* Azurite saves its metadata every 5 s: a clean stop saves now. */
	az_harness("stop");
	ASSERT_INT_EQ(az_harness("restart"), blob_port);
	uv_timer_init(&loop, &restart_timer);
	url = tool(NULL, "sas-container r 3600");
	remember_sig(url);
	for (pass = 0; pass < 2; pass++) {
		/* Shared Key resumes here; a SAS through http's resume. */
		c = pass == 0 ? shared : container_url(url, NULL);
		killed = false;
		d.on_progress = kill_midway;
		get(c, "big.bin", dst, &d);
		ASSERT(killed);
		ASSERT_INT_EQ(d.status, 0);
		ASSERT_INT_EQ(d.bytes, LARGE);
		ASSERT(d.md5_checked);
		assert_file(dst, large, LARGE);
		done_clear(&d);
		if (c != shared)
			bd_blob_container_free(c);
	}
	uv_close((uv_handle_t *)&restart_timer, NULL);
	free(url);
	free(dst);
}

/* Cancels: at once, and in the middle. */
static struct bd_blob_op *cancel_op;

static void
cancel_midway(struct done *d)
{
	if (d->progress > LARGE / 3 && cancel_op != NULL) {
		bd_blob_cancel(cancel_op);
		cancel_op = NULL;
	}
}

TEST(cancel)
{
	struct done d = { 0 };
	char *dst = xasprintf("%s/cancel.dst", az_work_dir());
	int fd = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0644);

	ASSERT_INT_EQ(bd_blob_get_start(shared, "big.bin", fd, NULL, on_done,
	    &d, &cancel_op), 0);
	bd_blob_cancel(cancel_op);
	bd_blob_cancel(cancel_op);
	ASSERT_INT_EQ(d.calls, 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, -ECANCELED);
	done_clear(&d);

	d.on_progress = cancel_midway;
	ASSERT_INT_EQ(bd_blob_get_start(shared, "big.bin", fd, on_progress,
	    on_done, &d, &cancel_op), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, -ECANCELED);
	done_clear(&d);
	close(fd);
	free(dst);
}

TEST(container_delete)
{
	struct done d = { 0 };
	int rc;
	char *out;

	ASSERT_INT_EQ(bd_blob_container_delete_start(shared, on_done, &d,
	    NULL), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	out = az_run(&rc, "BLOBTOOL_CONTAINER=test node '%s/node/blobtool.js' "
	    "list 2>&1", az_lib_dir());
	ASSERT(rc != 0);
	free(out);
}

static void
on_http_closed(void *arg)
{
	*(bool *)arg = true;
}

int
main(void)
{
	struct az_ports ports;
	char *conn, *cause = NULL;
	bool closed = false;

	setvbuf(stderr, NULL, _IONBF, 0);
	az_setup("blob");
	az_use_node(NULL);
	az_start(&ports);
	blob_port = ports.blob;
	conn = az_connect(&ports, AZ_BLOB);
	ASSERT_INT_EQ(bd_storage_account_parse(conn, &account, &cause), 0);
	free(conn);

	ASSERT_INT_EQ(uv_loop_init(&loop), 0);
	ASSERT_INT_EQ(bd_http_new(&loop, NULL, &http), 0);
	shared = container("test", NULL);
	large = xmalloc(LARGE);
	fill(large, LARGE, 42);

	RUN(container_create);
	RUN(get_small);
	RUN(get_large);
	RUN(get_bad_md5);
	RUN(list_pages);
	RUN(get_listed);
	RUN(put);
	RUN(sas);
	RUN(not_found);
	RUN(bad_key);
	RUN(resume);
	RUN(cancel);
	RUN(container_delete);

	bd_blob_container_free(shared);
	bd_http_close(http, on_http_closed, &closed);
	while (!closed)
		uv_run(&loop, UV_RUN_ONCE);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	bd_storage_account_free(account);
	free(large);
	free(secret_sig);
	return 0;
}
