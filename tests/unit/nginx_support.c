/* SPDX-License-Identifier: MIT */
/*
 * The nginx plumbing the HTTP unit tests share (test_http, test_download,
 * test_upload): starting one nginx through tests/lib/nginx-harness.sh,
 * restarting or killing it, stopping it at exit, and reading its access
 * log (the harness's "harness" format: connection, request count, status,
 * request line, range="...", ua="...", sent=N, ifr="..." the If-Range,
 * expect="...").
 *
 * State is one per test program: ng_start() copies the directory, reads
 * BATCHD_TEST_LIB and registers the atexit handler once; the handler stops
 * nginx if it still runs.  This module owns lib_dir and ng_prefix until
 * the program ends.
 */
#include <sys/wait.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "nginx_support.h"
#include "unit.h"
#include "xmalloc.h"

#define NG_BIN		"/usr/sbin/nginx"
#define NG_MAX_LOG	(64 << 20)

static char *lib_dir;		/* tests/lib, from BATCHD_TEST_LIB */
static char *ng_prefix;		/* nginx's directory; www/ inside */
static bool ng_running;
static bool ng_registered;

/*
 * Runs the harness with verb on our nginx and an optional argument;
 * returns the port it prints (start, start PORT) or 0.  Exit 77 (no
 * nginx) ends the program with 77.
 */
int
ng_harness(const char *verb, const char *arg)
{
	char *cmd, line[64] = "";
	FILE *f;
	int rc;

	cmd = xasprintf("bash '%s/nginx-harness.sh' %s '%s' %s", lib_dir, verb,
	    ng_prefix, arg != NULL ? arg : "");
	if ((f = popen(cmd, "r")) == NULL)
		UNIT_FAIL("popen %s: %s", cmd, strerror(errno));
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	rc = pclose(f);
	if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
		fprintf(stderr, "nginx not usable: skipping\n");
		exit(77);
	}
	if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
		UNIT_FAIL("%s: failed (%d)", cmd, rc);
	free(cmd);
	if (strcmp(verb, "start") == 0)
		ng_running = true;
	else if (strcmp(verb, "stop") == 0 || strcmp(verb, "kill") == 0)
		ng_running = false;
	return atoi(line);
}

/* Stops nginx if it runs; also the atexit handler. */
void
ng_stop(void)
{
	char *cmd;

	if (!ng_running)
		return;
	ng_running = false;
	cmd = xasprintf("bash '%s/nginx-harness.sh' stop '%s'", lib_dir,
	    ng_prefix);
	if (system(cmd) != 0)
		fprintf(stderr, "could not stop nginx in %s\n", ng_prefix);
	free(cmd);
}

/*
 * Starts nginx in dir; returns its port, or 0 when nginx is missing and
 * not required.
 */
int
ng_start(const char *dir, bool required)
{
	const char *lib = getenv("BATCHD_TEST_LIB");
	int port;

	if (access(NG_BIN, X_OK) != 0 || lib == NULL) {
		fprintf(stderr, "%s: skipping the nginx cases\n", lib == NULL ?
		    "BATCHD_TEST_LIB is not set" : NG_BIN " not installed");
		if (required)
			exit(77);
		return 0;
	}
	free(lib_dir);
	free(ng_prefix);
	lib_dir = xstrdup(lib);
	ng_prefix = xstrdup(dir);
	if (!ng_registered) {
		ng_registered = true;
		atexit(ng_stop);
	}
	port = ng_harness("start", NULL);
	if (port <= 0)
		UNIT_FAIL("nginx-harness.sh start printed no port");
	return port;
}

/* nginx's directory (borrowed). */
const char *
ng_dir(void)
{
	return ng_prefix;
}

/* The whole access log; caller frees. */
char *
ng_access_log(void)
{
	char *path = xasprintf("%s/logs/access.log", ng_prefix), *log;
	size_t len;

	ASSERT_INT_EQ(bd_read_file(path, NG_MAX_LOG, &log, &len), 0);
	free(path);
	return log;
}

/*
 * How many lines of the access log hold both needles; *sent (may be NULL)
 * gets the sum of their body bytes sent.
 */
int
ng_access_count(const char *a, const char *b, long long *sent)
{
	char *log = ng_access_log(), *line, *save = NULL;
	const char *s;
	int n = 0;

	if (sent != NULL)
		*sent = 0;
	for (line = strtok_r(log, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strstr(line, a) != NULL && strstr(line, b) != NULL) {
			n++;
			if (sent != NULL && (s = strstr(line, " sent=")) != NULL)
				*sent += atoll(s + 6);
		}
	free(log);
	return n;
}
