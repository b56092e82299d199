/* SPDX-License-Identifier: MIT */
/*
 * Output-file uploads into file:// directories and to a real nginx
 * (tests/lib/nginx-harness.sh, PUT under /upload/, /status/NNN): blob
 * naming, uploadCondition, $VAR patterns, zero matches, the failure codes,
 * the two log files, and that no SAS signature reaches any of it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fsutil.h"
#include "nginx_support.h"
#include "upload.h"
#include "xmalloc.h"
#include "unit.h"

static char *root;
static char *ngdir;
static int port;
static int serial;

#define SAS "?sv=x&sig=SECRET"

static void
put_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name), *d = bd_path_dirname(path);

	ASSERT_INT_EQ(bd_mkdir_p(d, 0755), 0);
	ASSERT_INT_EQ(bd_write_file_atomic(path, text, strlen(text), 0644), 0);
	free(d);
	free(path);
}

/* Asserts that dir/name holds text. */
static void
check_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name), *data;
	size_t len;

	if (bd_read_file(path, 1 << 20, &data, &len) != 0)
		UNIT_FAIL("missing %s", path);
	ASSERT_STR_EQ(data, text);
	free(data);
	free(path);
}

static bool
exists(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	bool ok = access(path, F_OK) == 0;

	free(path);
	return ok;
}

/* A task directory with wd, stdout.txt, stderr.txt and some outputs. */
struct task {
	char *dir, *wd;
};

static struct task
task_new(void)
{
	struct task t;

	t.dir = xasprintf("%s/task%d", root, ++serial);
	t.wd = xasprintf("%s/wd", t.dir);
	put_file(t.dir, "stdout.txt", "out\n");
	put_file(t.dir, "stderr.txt", "err\n");
	put_file(t.wd, "a.txt", "A\n");
	put_file(t.wd, "b.log", "B\n");
	put_file(t.wd, ".hidden.txt", "H\n");
	put_file(t.wd, "sub/c.txt", "C\n");
	put_file(t.wd, "sub/deep/d.txt", "D\n");
	return t;
}

static void
task_free(struct task *t)
{
	free(t->dir);
	free(t->wd);
}

static struct bd_output_file
of_make(const char *pattern, const char *url, const char *path,
    enum bd_upload_condition cond)
{
	struct bd_output_file of = { 0 };

	of.file_pattern = xstrdup(pattern);
	of.container_url = xstrdup(url);
	of.path = path ? xstrdup(path) : NULL;
	of.upload_condition = cond;
	return of;
}

static void
of_clear(struct bd_output_file *of, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(of[i].file_pattern);
		free(of[i].container_url);
		free(of[i].path);
		for (size_t k = 0; k < of[i].upload_headers.count; k++) {
			free(of[i].upload_headers.items[k].name);
			free(of[i].upload_headers.items[k].value);
		}
		free(of[i].upload_headers.items);
	}
}

struct outcome {
	bool done;
	struct bd_failure_info *failure;
	int cancelled;
	char *out;	/* fileuploadout.txt */
	char *err;	/* fileuploaderr.txt */
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
on_closed(void *arg)
{
	*(bool *)arg = true;
}

static char *
read_log(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name), *data;
	size_t len;

	ASSERT_INT_EQ(bd_read_file(path, 1 << 20, &data, &len), 0);
	free(path);
	return data;
}

/* Uploads for task t; cancel at once when cancel is set. */
static struct outcome
run(struct task *t, struct bd_output_file *files, size_t n,
    const struct bd_env *env, bool succeeded, bool cancel)
{
	struct outcome o = { 0 };
	struct bd_upload *u;
	struct bd_http *http;
	uv_loop_t loop;
	bool closed = false;

	ASSERT_INT_EQ(uv_loop_init(&loop), 0);
	ASSERT_INT_EQ(bd_http_new(&loop, NULL, &http), 0);
	struct bd_upload_options opts = {
		.loop = &loop, .http = http, .files = files, .n_files = n,
		.wd = t->wd, .task_dir = t->dir, .env = env,
		.task_succeeded = succeeded, .max_parallel = 2,
	};
	ASSERT_INT_EQ(bd_upload_start(&opts, on_done, &o, &u), 0);
	if (cancel)
		bd_upload_cancel(u);
	ASSERT(!o.done);
	while (!o.done)
		uv_run(&loop, UV_RUN_ONCE);
	bd_upload_free(u);
	bd_http_close(http, on_closed, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT(closed);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	o.out = read_log(t->dir, "fileuploadout.txt");
	o.err = read_log(t->dir, "fileuploaderr.txt");
	ASSERT(strstr(o.out, "SECRET") == NULL);
	ASSERT(strstr(o.err, "SECRET") == NULL);
	if (o.failure != NULL) {
		ASSERT(strstr(o.failure->message, "SECRET") == NULL);
		fprintf(stderr, "   %s: %s\n", o.failure->code,
		    o.failure->message);
	}
	return o;
}

static void
outcome_free(struct outcome *o)
{
	bd_failure_info_free(o->failure);
	free(o->out);
	free(o->err);
}

TEST(blob_names)
{
	struct {
		bool wild;
		const char *path, *rel, *want;
	} c[] = {
		{ false, NULL, "a.txt", "a.txt" },
		{ false, "", "a.txt", "a.txt" },
		{ false, "x/y.bin", "a.txt", "x/y.bin" },
		{ false, "/x/y.bin", "a.txt", "x/y.bin" },
		{ false, "dir/", "a.txt", "dir/a.txt" },
		{ true, NULL, "a.txt", "a.txt" },
		{ true, "", "sub/c.txt", "sub/c.txt" },
		{ true, "mytask", "stdout.txt", "mytask/stdout.txt" },
		{ true, "mytask/", "sub/c.txt", "mytask/sub/c.txt" },
		{ true, "/a//", "c.txt", "a/c.txt" },
		{ true, "/", "c.txt", "c.txt" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *b = bd_upload_blob_name(c[i].wild, c[i].path, c[i].rel);
		ASSERT_STR_EQ(b, c[i].want);
		free(b);
	}
}

TEST(file_destination_naming)
{
	struct task t = task_new();
	char *dest = xasprintf("%s/dest%d", root, ++serial);
	char *url = xasprintf("file://%s" SAS, dest);
	struct bd_env *env = bd_env_new();
	struct bd_output_file of[7];

	bd_env_set(env, "OUT", "sub");
	of[0] = of_make("a.txt", url, NULL, BD_UPLOAD_TASK_COMPLETION);
	of[1] = of_make("a.txt", url, "named/x.bin", BD_UPLOAD_TASK_COMPLETION);
	of[2] = of_make("*.txt", url, "flat", BD_UPLOAD_TASK_COMPLETION);
	of[3] = of_make("**/*.txt", url, "tree", BD_UPLOAD_TASK_COMPLETION);
	of[4] = of_make("../std*.txt", url, "mytask", BD_UPLOAD_TASK_COMPLETION);
	of[5] = of_make("$OUT/*.txt", url, "var", BD_UPLOAD_TASK_COMPLETION);
	of[6] = of_make("${OUT}/deep/d.txt", url, NULL,
	    BD_UPLOAD_TASK_COMPLETION);
	struct outcome o = run(&t, of, 7, env, true, false);
	ASSERT_NULL(o.failure);
	check_file(dest, "a.txt", "A\n");
	check_file(dest, "named/x.bin", "A\n");
	check_file(dest, "flat/a.txt", "A\n");
	ASSERT(!exists(dest, "flat/.hidden.txt"));
	ASSERT(!exists(dest, "flat/b.log"));
	check_file(dest, "tree/a.txt", "A\n");
	check_file(dest, "tree/sub/c.txt", "C\n");
	check_file(dest, "tree/sub/deep/d.txt", "D\n");
	check_file(dest, "mytask/stdout.txt", "out\n");
	check_file(dest, "mytask/stderr.txt", "err\n");
	check_file(dest, "var/c.txt", "C\n");
	ASSERT(!exists(dest, "var/deep"));
	check_file(dest, "d.txt", "D\n");
	ASSERT_STR_CONTAINS(o.out, "Resolved mapping - base_path: ");
	ASSERT_STR_CONTAINS(o.out, "original_pattern: ../std*.txt");
	ASSERT_STR_CONTAINS(o.out, "Uploading 2 files matching pattern ");
	ASSERT_STR_CONTAINS(o.out, "sig=REDACTED");
	ASSERT_STR_CONTAINS(o.out, "/stdout.txt");
	ASSERT_STR_EQ(o.err, "");
	outcome_free(&o);
	of_clear(of, 7);
	bd_env_free(env);
	free(url);
	free(dest);
	task_free(&t);
}

TEST(conditions_and_zero_matches)
{
	struct task t = task_new();
	char *dest = xasprintf("%s/dest%d", root, ++serial);
	char *url = xasprintf("file://%s", dest);
	struct bd_output_file of[4];
	struct outcome o;

	of[0] = of_make("a.txt", url, "success", BD_UPLOAD_TASK_SUCCESS);
	of[1] = of_make("a.txt", url, "failure", BD_UPLOAD_TASK_FAILURE);
	of[2] = of_make("a.txt", url, "always", BD_UPLOAD_TASK_COMPLETION);
	of[3] = of_make("nothing/*.bin", url, NULL, BD_UPLOAD_TASK_COMPLETION);
	o = run(&t, of, 4, NULL, true, false);
	ASSERT_NULL(o.failure);
	ASSERT(exists(dest, "success"));
	ASSERT(!exists(dest, "failure"));
	ASSERT(exists(dest, "always"));
	ASSERT_STR_CONTAINS(o.out, "No files matched pattern ");
	ASSERT_STR_CONTAINS(o.out, "nothing/*.bin");
	ASSERT_STR_EQ(o.err, "");
	outcome_free(&o);
	ASSERT_INT_EQ(bd_rm_rf(dest), 0);

	o = run(&t, of, 4, NULL, false, false);
	ASSERT_NULL(o.failure);
	ASSERT(!exists(dest, "success"));
	ASSERT(exists(dest, "failure"));
	ASSERT(exists(dest, "always"));
	outcome_free(&o);

	/* Nothing selected: the logs still exist. */
	o = run(&t, of, 1, NULL, false, false);
	ASSERT_NULL(o.failure);
	ASSERT_STR_EQ(o.err, "");
	outcome_free(&o);
	of_clear(of, 4);
	free(url);
	free(dest);
	task_free(&t);
}

TEST(file_destination_errors)
{
	struct task t = task_new();
	char *dest = xasprintf("%s/dest%d", root, ++serial);
	char *url = xasprintf("file://%s" SAS, dest);
	struct bd_output_file of[3];
	struct outcome o;

	/* A directory where the blob must go, then a ".." blob name. */
	put_file(dest, "taken/x", "x");
	of[0] = of_make("a.txt", url, "taken", BD_UPLOAD_TASK_COMPLETION);
	of[1] = of_make("a.txt", url, "../escape", BD_UPLOAD_TASK_COMPLETION);
	of[2] = of_make("b.log", url, NULL, BD_UPLOAD_TASK_COMPLETION);
	o = run(&t, of, 3, NULL, true, false);
	ASSERT_NOT_NULL(o.failure);
	/* The bad name is found first, while planning. */
	ASSERT_STR_EQ(o.failure->code, "FileUploadMiscError");
	ASSERT_STR_CONTAINS(o.failure->message, "../escape");
	ASSERT_STR_CONTAINS(o.err, "\"code\":\"FileUploadConflict\"");
	/* The others still went. */
	check_file(dest, "b.log", "B\n");
	ASSERT(!exists(root, "escape"));
	ASSERT(!exists(dest, "../escape"));
	ASSERT_STR_CONTAINS(o.err, "\"code\":\"FileUploadMiscError\"");
	outcome_free(&o);
	of_clear(of, 3);

	/* A container directory the agent cannot write. */
	if (geteuid() != 0) {
		ASSERT_INT_EQ(chmod(dest, 0555), 0);
		of[0] = of_make("a.txt", url, "new/a.txt",
		    BD_UPLOAD_TASK_COMPLETION);
		o = run(&t, of, 1, NULL, true, false);
		ASSERT_NOT_NULL(o.failure);
		ASSERT_STR_EQ(o.failure->code, "FileUploadAccessDenied");
		outcome_free(&o);
		of_clear(of, 1);
		ASSERT_INT_EQ(chmod(dest, 0755), 0);
	}
	free(url);
	free(dest);
	task_free(&t);
}

/* Checks one line of fileuploaderr.txt. */
static void
check_err_line(const char *line, const char *code, const char *pattern)
{
	cJSON *j = cJSON_Parse(line);

	ASSERT_NOT_NULL(j);
	ASSERT_STR_EQ(cJSON_GetObjectItem(j, "code")->valuestring, code);
	ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(j, "user_error")));
	ASSERT_STR_EQ(cJSON_GetObjectItem(j, "pattern")->valuestring, pattern);
	ASSERT(cJSON_IsString(cJSON_GetObjectItem(j, "file")));
	ASSERT_STR_CONTAINS(cJSON_GetObjectItem(j, "destination")->valuestring,
	    "sig=REDACTED");
	ASSERT(cJSON_IsString(cJSON_GetObjectItem(j, "message")));
	cJSON_Delete(j);
}

TEST(http_destination)
{
	struct task t = task_new();
	char *cont = xasprintf("http://127.0.0.1:%d/upload/cont" SAS, port);
	char *status = xasprintf("http://127.0.0.1:%d/status" SAS, port);
	char *landed = xasprintf("%s/www/upload/cont", ngdir);
	struct bd_output_file of[3];
	struct outcome o;

	put_file(t.wd, "empty.dat", "");
	of[0] = of_make("**/*.txt", cont, "run1", BD_UPLOAD_TASK_COMPLETION);
	of[1] = of_make("b.log", cont, "logs/b log.txt",
	    BD_UPLOAD_TASK_COMPLETION);
	of[2] = of_make("empty.dat", cont, NULL, BD_UPLOAD_TASK_COMPLETION);
	of[1].upload_headers.count = 1;
	of[1].upload_headers.items = xcalloc(1,
	    sizeof(struct bd_name_value));
	of[1].upload_headers.items[0].name = xstrdup("Content-Type");
	of[1].upload_headers.items[0].value = xstrdup("text/plain");
	o = run(&t, of, 3, NULL, true, false);
	ASSERT_NULL(o.failure);
	check_file(landed, "empty.dat", "");
	check_file(landed, "run1/a.txt", "A\n");
	check_file(landed, "run1/sub/c.txt", "C\n");
	check_file(landed, "run1/sub/deep/d.txt", "D\n");
	check_file(landed, "logs/b log.txt", "B\n");
	ASSERT_STR_CONTAINS(o.out, "Uploaded ");
	ASSERT_STR_CONTAINS(o.out, "(2 bytes, Content-MD5 ");
	outcome_free(&o);
	of_clear(of, 3);

	/* 404 (the documented message), 403, 409; the good one still goes. */
	const char *codes[] = { "404", "403", "409" };
	const char *names[] = { "FileUploadContainerNotFound",
	    "FileUploadAccessDenied", "FileUploadConflict" };
	for (int i = 0; i < 3; i++) {
		of[0] = of_make("a.txt", status, codes[i],
		    BD_UPLOAD_TASK_COMPLETION);
		of[1] = of_make("../stdout.txt", cont, "again/stdout.txt",
		    BD_UPLOAD_TASK_COMPLETION);
		o = run(&t, of, 2, NULL, true, false);
		ASSERT_NOT_NULL(o.failure);
		ASSERT_STR_EQ(o.failure->code, names[i]);
		ASSERT_INT_EQ(o.failure->category, BD_CATEGORY_USER_ERROR);
		if (i == 0)
			ASSERT_STR_CONTAINS(o.failure->message, "One of the "
			    "specified Azure container(s) was not found while "
			    "attempting to upload an output file");
		ASSERT_STR_CONTAINS(o.failure->message, "/a.txt");
		check_err_line(o.err, names[i], "a.txt");
		ASSERT(strchr(o.err, '\n') == o.err + strlen(o.err) - 1);
		check_file(landed, "again/stdout.txt", "out\n");
		outcome_free(&o);
		of_clear(of, 2);
	}
	free(landed);
	free(cont);
	free(status);
	task_free(&t);
}

/* A one-request server that keeps the request it got. */
struct capture {
	int lfd, port;
	char req[16384];
	size_t len;
};

static void *
capture_serve(void *arg)
{
	struct capture *c = arg;
	const char *reply = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n"
	    "Connection: close\r\n\r\n";
	int fd = accept(c->lfd, NULL, NULL);
	char *end = NULL;
	size_t want = 0;
	ssize_t n;

	if (fd == -1)
		return NULL;
	while (c->len < sizeof(c->req) - 1) {
		n = read(fd, c->req + c->len, sizeof(c->req) - 1 - c->len);
		if (n <= 0)
			break;
		c->len += (size_t)n;
		c->req[c->len] = '\0';
		if (end == NULL && (end = strstr(c->req, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(c->req, "Content-Length:");
			want = (size_t)(end + 4 - c->req) +
			    (cl ? strtoul(cl + 15, NULL, 10) : 0);
		}
		if (end != NULL && c->len >= want)
			break;
	}
	(void)!write(fd, reply, strlen(reply));
	close(fd);
	return NULL;
}

TEST(put_headers)
{
	struct task t = task_new();
	struct capture c = { 0 };
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	struct bd_output_file of[1];
	pthread_t th;
	char *url;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT((c.lfd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	ASSERT_INT_EQ(bind(c.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ASSERT_INT_EQ(listen(c.lfd, 1), 0);
	ASSERT_INT_EQ(getsockname(c.lfd, (struct sockaddr *)&sa, &sl), 0);
	ASSERT_INT_EQ(pthread_create(&th, NULL, capture_serve, &c), 0);
	url = xasprintf("http://127.0.0.1:%d/cont" SAS, ntohs(sa.sin_port));
	of[0] = of_make("b.log", url, "run/b.log", BD_UPLOAD_TASK_COMPLETION);
	of[0].upload_headers.count = 4;
	of[0].upload_headers.items = xcalloc(4, sizeof(struct bd_name_value));
	of[0].upload_headers.items[0].name = xstrdup("content-type");
	of[0].upload_headers.items[0].value = xstrdup("text/plain");
	of[0].upload_headers.items[1].name = xstrdup("x-ms-meta-a");
	of[0].upload_headers.items[1].value = xstrdup("b");
	of[0].upload_headers.items[2].name = xstrdup("x-ms-blob-type");
	of[0].upload_headers.items[2].value = xstrdup("PageBlob");
	/* batchd sends the MD5 of what it sends, never a given one. */
	of[0].upload_headers.items[3].name = xstrdup("Content-MD5");
	of[0].upload_headers.items[3].value = xstrdup("Ym9ndXM=");
	struct outcome o = run(&t, of, 1, NULL, true, false);
	ASSERT_INT_EQ(pthread_join(th, NULL), 0);
	close(c.lfd);
	ASSERT_NULL(o.failure);
	ASSERT_STR_CONTAINS(c.req, "PUT /cont/run/b.log" SAS " HTTP/1.1\r\n");
	ASSERT_STR_CONTAINS(c.req, "\r\nx-ms-blob-type: BlockBlob\r\n");
	ASSERT_STR_CONTAINS(c.req, "\r\nx-ms-version: 2023-11-03\r\n");
	/* The blob's own type, as a Put Block List would need it too. */
	ASSERT_STR_CONTAINS(c.req,
	    "\r\nx-ms-blob-content-type: text/plain\r\n");
	ASSERT_STR_CONTAINS(c.req, "\r\nx-ms-meta-a: b\r\n");
	/* MD5 of "B\n", computed by batchd. */
	ASSERT_STR_CONTAINS(c.req,
	    "\r\nContent-MD5: MM89fRM7CFQ8tsiTPCnf1w==\r\n");
	ASSERT_STR_CONTAINS(c.req, "\r\n\r\nB\n");
	ASSERT(strstr(c.req, "PageBlob") == NULL);
	ASSERT(strstr(c.req, "Ym9ndXM=") == NULL);
	ASSERT(strstr(c.req, "octet-stream") == NULL);
	outcome_free(&o);
	of_clear(of, 1);
	free(url);
	task_free(&t);
}

TEST(cancel)
{
	struct task t = task_new();
	char *dest = xasprintf("%s/dest%d", root, ++serial);
	char *url = xasprintf("file://%s", dest);
	struct bd_output_file of[1];
	struct outcome o;

	of[0] = of_make("**/*", url, NULL, BD_UPLOAD_TASK_COMPLETION);
	o = run(&t, of, 1, NULL, true, true);
	ASSERT_INT_EQ(o.cancelled, 1);
	ASSERT_NULL(o.failure);
	outcome_free(&o);
	of_clear(of, 1);
	free(url);
	free(dest);
	task_free(&t);
}

TEST(bad_task_dir)
{
	struct bd_upload_options opts = { 0 };
	struct bd_upload *u;
	uv_loop_t loop;

	ASSERT_INT_EQ(uv_loop_init(&loop), 0);
	opts.loop = &loop;
	opts.wd = "/nonexistent/wd";
	opts.task_dir = "/nonexistent";
	ASSERT_INT_EQ(bd_upload_start(&opts, on_done, NULL, &u), -ENOENT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
}

int
main(void)
{
	char tmpl[] = "/tmp/test_upload.XXXXXX";

	ASSERT_NOT_NULL(mkdtemp(tmpl));
	root = tmpl;
	ngdir = xasprintf("%s/nginx", root);
	port = ng_start(ngdir, false);
	RUN(blob_names);
	RUN(file_destination_naming);
	RUN(conditions_and_zero_matches);
	RUN(file_destination_errors);
	if (port != 0)
		RUN(http_destination);
	RUN(put_headers);
	RUN(cancel);
	RUN(bad_task_dir);
	ng_stop();
	free(ngdir);
	ASSERT_INT_EQ(bd_rm_rf(root), 0);
	return 0;
}
