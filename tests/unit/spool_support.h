/* SPDX-License-Identifier: MIT */
#ifndef BD_SPOOL_SUPPORT_H
#define BD_SPOOL_SUPPORT_H

/*
 * Helpers shared by the unit tests of the local spool's queue and tables
 * (test_source_local.c, test_store_local.c, test_spool.c): a scratch
 * directory, the test's loop, and files planted or looked at by path
 * relative to a spool.  Include after unit.h.
 */

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "xmalloc.h"

/* The loop of the running test, between loop_begin() and loop_end(). */
static uv_loop_t *L;

/* A new scratch directory /tmp/<prefix>-XXXXXX; caller frees the path. */
static inline char *
spool_tmpdir(const char *prefix)
{
	char *d = xasprintf("/tmp/%s-XXXXXX", prefix);

	ASSERT_NOT_NULL(mkdtemp(d));
	return d;
}

static inline void
loop_begin(uv_loop_t *l)
{
	ASSERT_INT_EQ(uv_loop_init(l), 0);
	L = l;
}

/* Runs the loop dry and closes it: every handle must be gone. */
static inline void
loop_end(uv_loop_t *l)
{
	uv_run(l, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(l), 0);
	L = NULL;
}

static inline bool
exists(const char *spool, const char *rel)
{
	char *p = xasprintf("%s/%s", spool, rel);
	struct stat st;
	bool r = lstat(p, &st) == 0;

	free(p);
	return r;
}

/* Writes data to spool/rel with an mtime age_s seconds ago. */
static inline void
plant(const char *spool, const char *rel, const char *data, int age_s)
{
	char *p = xasprintf("%s/%s", spool, rel);
	struct timeval tv[2];
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0640);

	ASSERT(fd >= 0);
	ASSERT_INT_EQ(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age_s;
	tv[1] = tv[0];
	ASSERT_INT_EQ(utimes(p, tv), 0);
	free(p);
}

/* Monotonic seconds, for timing. */
static inline double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
