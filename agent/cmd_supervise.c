/* SPDX-License-Identifier: MIT */
/*
 * `batchd supervise`: turns the command line the agent built (process.c)
 * into supervisor options and runs the supervisor.  The task's environment
 * is this process's own environment, so it never shows in a command line.
 *
 *   --stdout PATH --stderr PATH --cwd DIR   (required)
 *   --stdout-cap N --stderr-cap N           bytes kept; 0: no cap
 *   --state PATH                            the state file
 *   --cgroup NAME                           task cgroup to join
 *   --uid N --gid N [--groups G,G,...]      the task's user
 *   --grace MS                              SIGTERM to SIGKILL
 *   --report-fd N                           the agent's pipe
 *   --tag N                                 of the agent's kill requests
 *   -- FILE ARGV0 ARGS...
 *
 * Exit status: the supervisor's (supervisor.h); 125 for a bad command line.
 */
#include "cmd_supervise.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "supervisor.h"
#include "xmalloc.h"

extern char **environ;

/* A decimal number in min..max, or -1 with a message. */
static int
supervise_number(const char *name, const char *s, int64_t min, int64_t max,
    int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "batchd supervise: --%s: bad number '%s'\n",
		    name, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* "1,2,3" into a malloc'd array. */
static int
supervise_groups(const char *s, gid_t **out, size_t *n)
{
	char *copy = xstrdup(s), *save = NULL;
	size_t cap = 0;
	int64_t v;

	*out = NULL;
	*n = 0;
	for (char *w = strtok_r(copy, ",", &save); w != NULL;
	    w = strtok_r(NULL, ",", &save)) {
		if (supervise_number("groups", w, 0, UINT_MAX - 1, &v) < 0) {
			free(copy);
			return -1;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xreallocarray(*out, cap, sizeof(gid_t));
		}
		(*out)[(*n)++] = (gid_t)v;
	}
	free(copy);
	return 0;
}

int
bd_cmd_supervise(int argc, char **argv)
{
	return bd_cmd_supervise_kept(argc, argv, -1, NULL);
}

int
bd_cmd_supervise_kept(int argc, char **argv, int keep_fd, bool *reusable)
{
	static const struct option longopts[] = {
		{ "stdout", required_argument, NULL, 'o' },
		{ "stderr", required_argument, NULL, 'e' },
		{ "cwd", required_argument, NULL, 'C' },
		{ "stdout-cap", required_argument, NULL, 'O' },
		{ "stderr-cap", required_argument, NULL, 'E' },
		{ "state", required_argument, NULL, 's' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "groups", required_argument, NULL, 'G' },
		{ "grace", required_argument, NULL, 'k' },
		{ "report-fd", required_argument, NULL, 'r' },
		{ "tag", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct bd_supervisor_options o;
	gid_t *groups = NULL;
	bool has_uid = false, has_gid = false;
	int64_t v;
	int c, rc;

	memset(&o, 0, sizeof(o));
	o.report_fd = -1;
	o.keep_fd = keep_fd;
	o.reusable = reusable;
	o.grace_ms = 5000;
	if (reusable != NULL)
		*reusable = false;
	/* 0: a full restart of getopt, for a process that parses again. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o.stdout_path = optarg; break;
		case 'e': o.stderr_path = optarg; break;
		case 'C': o.cwd = optarg; break;
		case 's': o.state_path = optarg; break;
		case 'c': o.cgroup = optarg; break;
		case 'O':
		case 'E':
			if (supervise_number(c == 'O' ? "stdout-cap" :
			    "stderr-cap", optarg, 0, INT64_MAX, &v) < 0)
				goto usage;
			*(c == 'O' ? &o.stdout_cap : &o.stderr_cap) = v;
			break;
		case 'u':
			if (supervise_number("uid", optarg, 0, UINT_MAX - 1,
			    &v) < 0)
				goto usage;
			o.uid = (uid_t)v;
			has_uid = true;
			break;
		case 'g':
			if (supervise_number("gid", optarg, 0, UINT_MAX - 1,
			    &v) < 0)
				goto usage;
			o.gid = (gid_t)v;
			has_gid = true;
			break;
		case 'G':
			free(groups);
			if (supervise_groups(optarg, &groups, &o.ngroups) < 0)
				goto usage;
			break;
		case 'k':
			if (supervise_number("grace", optarg, 0, INT64_MAX,
			    &o.grace_ms) < 0)
				goto usage;
			break;
		case 'r':
			if (supervise_number("report-fd", optarg, 0, INT_MAX,
			    &v) < 0)
				goto usage;
			o.report_fd = (int)v;
			break;
		case 't':
			if (supervise_number("tag", optarg, 0,
			    BD_SUPERVISOR_TAG_MAX, &v) < 0)
				goto usage;
			o.tag = (uint32_t)v;
			break;
		default:
			goto usage;
		}
	}
	if (o.stdout_path == NULL || o.stderr_path == NULL || o.cwd == NULL ||
	    argc - optind < 2 || has_uid != has_gid)
		goto usage;
	o.has_identity = has_uid;
	o.groups = groups;
	o.file = argv[optind];
	o.argv = argv + optind + 1;
	o.envp = environ;
	/* The agent made the task's cgroup: join it, change nothing else. */
	bd_cgroup_configure_joiner();
	rc = bd_supervisor_run(&o);
	free(groups);
	return rc;
usage:
	free(groups);
	fprintf(stderr, "usage: batchd supervise --stdout PATH --stderr PATH "
	    "--cwd DIR [OPTIONS] -- FILE ARGV0 [ARGS...]\n");
	return 125;
}
