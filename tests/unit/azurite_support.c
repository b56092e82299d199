/* SPDX-License-Identifier: MIT */
/*
 * The plumbing the Azurite-based unit tests share: running a shell command
 * and capturing its output, the scratch directory under /tmp, finding (and
 * when needed installing) the Node.js packages, and starting, restarting
 * and stopping one Azurite through tests/lib/azurite-harness.sh.
 *
 * State is one per test program: az_setup() reads BATCHD_TEST_LIB, makes
 * the scratch directory, sets BATCHD_TEST_OWNER_PID (the harness's
 * watchdog stops Azurite should the program crash) and registers an
 * atexit handler; az_start() marks Azurite running so that the handler
 * stops it.  The handler then removes the scratch directory unless
 * TEST_<NAME>_KEEP is set.  This module owns lib_dir (from the
 * environment), work_dir, az_dir and keep_var until the program ends.
 */
#include <sys/wait.h>

#include <ctype.h>
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

#include "azurite_support.h"
#include "storage_auth.h"
#include "unit.h"
#include "xmalloc.h"

static const char *lib_dir;	/* tests/lib, from BATCHD_TEST_LIB */
static char *work_dir;		/* the scratch directory */
static char *az_dir;		/* Azurite's directory inside it */
static char *keep_var;		/* TEST_<NAME>_KEEP */
static bool az_running;

/*
 * Runs a shell command; returns its stdout without the last newline
 * (caller frees) and its exit status in *rc (128 when it did not exit).
 */
char *
az_run(int *rc, const char *fmt, ...)
{
	char *cmd, *out = xmalloc(1), buf[4096];
	size_t n = 0, got;
	va_list ap;
	FILE *f;
	int st;

	va_start(ap, fmt);
	cmd = xvasprintf(fmt, ap);
	va_end(ap);
	if ((f = popen(cmd, "r")) == NULL)
		UNIT_FAIL("popen %s: %s", cmd, strerror(errno));
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
		out = xrealloc(out, n + got + 1);
		memcpy(out + n, buf, got);
		n += got;
	}
	out[n] = '\0';
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
	st = pclose(f);
	*rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	free(cmd);
	return out;
}

/*
 * Runs tests/lib/node/<name>.js with the formatted arguments, after the
 * shell assignment env when not NULL; it must succeed.  Returns its output
 * (caller frees).
 */
char *
az_vtool(const char *name, const char *env, const char *fmt, va_list ap)
{
	char *args, *out;
	int rc;

	args = xvasprintf(fmt, ap);
	out = az_run(&rc, "%s%snode '%s/node/%s.js' %s", env != NULL ? env : "",
	    env != NULL ? " " : "", lib_dir, name, args);
	if (rc != 0)
		UNIT_FAIL("%s %s: exit %d", name, args, rc);
	free(args);
	return out;
}

/* Runs storagetool (the queue and table SDKs); it must succeed.  Returns
   its output (caller frees). */
char *
az_storagetool(const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = az_vtool("storagetool", NULL, fmt, ap);
	va_end(ap);
	return out;
}

/* atexit: stops Azurite and removes everything the test made. */
static void
cleanup(void)
{
	char *cmd;

	if (az_running) {
		az_running = false;
		cmd = xasprintf("bash '%s/azurite-harness.sh' stop '%s'",
		    lib_dir, az_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not stop Azurite in %s\n",
			    az_dir);
		free(cmd);
	}
	if (work_dir != NULL && getenv(keep_var) == NULL) {
		cmd = xasprintf("rm -rf '%s'", work_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", work_dir);
		free(cmd);
	}
}

/*
 * Prepares a test called name: reads BATCHD_TEST_LIB, makes the scratch
 * directory /tmp/test_<name>.XXXXXX, registers the atexit handler (which
 * keeps the directory when TEST_<NAME>_KEEP is set) and sets
 * BATCHD_TEST_OWNER_PID.  Call it once, before anything else here.
 */
void
az_setup(const char *name)
{
	char *pid;
	size_t i;

	if ((lib_dir = getenv("BATCHD_TEST_LIB")) == NULL)
		UNIT_FAIL("BATCHD_TEST_LIB is not set");
	work_dir = xasprintf("/tmp/test_%s.XXXXXX", name);
	ASSERT_NOT_NULL(mkdtemp(work_dir));
	az_dir = xasprintf("%s/azurite", work_dir);
	keep_var = xasprintf("TEST_%s_KEEP", name);
	for (i = 5; keep_var[i] != '\0'; i++)
		keep_var[i] = (char)toupper((unsigned char)keep_var[i]);
	atexit(cleanup);
	/* Should this program crash, the harness's watchdog stops Azurite. */
	pid = xasprintf("%ld", (long)getpid());
	setenv("BATCHD_TEST_OWNER_PID", pid, 1);
	free(pid);
}

/* Returns tests/lib (borrowed). */
const char *
az_lib_dir(void)
{
	return lib_dir;
}

/* Returns the scratch directory (borrowed). */
const char *
az_work_dir(void)
{
	return work_dir;
}

/* Writes n bytes to a new file in the scratch directory; returns its
   path (caller frees). */
char *
az_write_file(const char *name, const void *data, size_t n)
{
	char *path = xasprintf("%s/%s", work_dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ASSERT(fd >= 0);
	ASSERT_INT_EQ(write(fd, data, n), n);
	ASSERT_INT_EQ(close(fd), 0);
	return path;
}

/*
 * The directory whose node_modules holds Azurite and the SDKs: the
 * harness's, else tests/lib/node, installing there under a lock when
 * package (say "@azure/storage-queue") is missing.  Exits 77 when node or
 * npm is missing.  Caller frees.
 */
static char *
node_dir(const char *package)
{
	char *nd, *probe;
	int rc;

	nd = az_run(&rc, "bash '%s/azurite-harness.sh' node-dir", lib_dir);
	if (rc == 77) {
		fprintf(stderr, "node or npm missing: skipping\n");
		exit(77);
	}
	ASSERT_INT_EQ(rc, 0);
	if (package == NULL)
		return nd;
	probe = xasprintf("%s/node_modules/%s", nd, package);
	if (access(probe, F_OK) != 0) {
		free(nd);
		nd = xasprintf("%s/node", lib_dir);
		free(probe);
		probe = xasprintf("%s/node_modules/%s", nd, package);
	}
	if (access(probe, F_OK) != 0) {
		free(az_run(&rc, "command -v npm"));
		if (rc != 0) {
			fprintf(stderr, "npm missing: skipping\n");
			exit(77);
		}
		free(az_run(&rc, "cd '%s' && flock .install.lock npm install "
		    "--no-audit --no-fund --loglevel=error >&2 </dev/null",
		    nd));
		ASSERT_INT_EQ(rc, 0);
		ASSERT_INT_EQ(access(probe, F_OK), 0);
	}
	free(probe);
	return nd;
}

/*
 * Points NODE_PATH at the node_modules that holds Azurite and, when
 * package is not NULL, also that package, and then BATCHD_TEST_NODE_DIR at
 * its directory.  With package NULL the harness's answer is taken as it
 * is.  Exits 77 when node or npm is missing.
 */
void
az_use_node(const char *package)
{
	char *nd, *path;

	nd = node_dir(package);
	path = xasprintf("%s/node_modules", nd);
	setenv("NODE_PATH", path, 1);
	free(path);
	if (package != NULL)
		setenv("BATCHD_TEST_NODE_DIR", nd, 1);
	free(nd);
}

/* Runs azurite-harness.sh verb on this test's Azurite and returns its
   output (caller frees); exits 77 on the harness's skip. */
static char *
harness_run(const char *verb)
{
	char *out;
	int rc;

	out = az_run(&rc, "bash '%s/azurite-harness.sh' %s '%s'", lib_dir,
	    verb, az_dir);
	if (rc == 77) {
		fprintf(stderr, "node or npm missing: skipping\n");
		exit(77);
	}
	if (rc != 0)
		UNIT_FAIL("azurite-harness.sh %s: exit %d", verb, rc);
	return out;
}

/* Starts Azurite on free ports, which it puts in *ports, and marks it for
   the atexit handler to stop.  Exits 77 when node or npm is missing. */
void
az_start(struct az_ports *ports)
{
	char *out;

	out = harness_run("start");
	ASSERT_INT_EQ(sscanf(out, "%d %d %d", &ports->blob, &ports->queue,
	    &ports->table), 3);
	free(out);
	az_running = true;
}

/* Runs the harness with verb (stop, kill9, restart) on the running
   Azurite; returns the blob port after a restart, else 0. */
int
az_harness(const char *verb)
{
	char *out;
	int port = 0;

	out = harness_run(verb);
	if (strcmp(verb, "start") == 0 || strcmp(verb, "restart") == 0)
		port = atoi(out);
	free(out);
	return port;
}

/*
 * Builds the connection string for Azurite's account with an endpoint for
 * each service in services (AZ_BLOB, AZ_QUEUE, AZ_TABLE), and sets
 * AZURE_STORAGE_CONNECTION_STRING to it for the SDK tools.  Caller frees.
 */
char *
az_connect(const struct az_ports *ports, int services)
{
	char *conn, *more;

	conn = xstrdup("DefaultEndpointsProtocol=http;AccountName="
	    "devstoreaccount1;AccountKey=" BD_STORAGE_DEV_KEY ";");
	if (services & AZ_BLOB) {
		more = xasprintf("%sBlobEndpoint=http://127.0.0.1:%d/"
		    "devstoreaccount1;", conn, ports->blob);
		free(conn);
		conn = more;
	}
	if (services & AZ_QUEUE) {
		more = xasprintf("%sQueueEndpoint=http://127.0.0.1:%d/"
		    "devstoreaccount1;", conn, ports->queue);
		free(conn);
		conn = more;
	}
	if (services & AZ_TABLE) {
		more = xasprintf("%sTableEndpoint=http://127.0.0.1:%d/"
		    "devstoreaccount1;", conn, ports->table);
		free(conn);
		conn = more;
	}
	setenv("AZURE_STORAGE_CONNECTION_STRING", conn, 1);
	return conn;
}

/* Timer callback of az_sleep_ms(): the time is up. */
static void
on_sleep(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Close callback of az_sleep_ms()'s timer, which lives on its stack. */
static void
on_timer_closed(uv_handle_t *h)
{
	(void)h;
}

/* Runs loop for ms milliseconds. */
void
az_sleep_ms(uv_loop_t *loop, uint64_t ms)
{
	uv_timer_t t;
	bool fired = false;

	uv_timer_init(loop, &t);
	t.data = &fired;
	uv_timer_start(&t, on_sleep, ms, 0);
	while (!fired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, on_timer_closed);
	uv_run(loop, UV_RUN_NOWAIT);
}

/* Returns the wall clock in ms. */
int64_t
az_now_ms(void)
{
	uv_timeval64_t tv;

	ASSERT_INT_EQ(uv_gettimeofday(&tv), 0);
	return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}
