/* SPDX-License-Identifier: MIT */
/*
 * Task cgroups: placeholder with the "none" mode only, so that callers can
 * be written against cgroup.h; the real module replaces it.
 */
#include "cgroup.h"

#include <errno.h>
#include <stddef.h>

int
bd_cgroup_setup(void)
{
	return 0;
}

bool
bd_cgroup_available(void)
{
	return false;
}

int
bd_cgroup_create(const char *name, const struct bd_cgroup_limits *lim,
    struct bd_cgroup **out)
{
	*out = NULL;
	return 0;
}

int
bd_cgroup_open(const char *name, struct bd_cgroup **out)
{
	*out = NULL;
	return -ENOENT;
}

const char *
bd_cgroup_name(const struct bd_cgroup *cg)
{
	return NULL;
}

int
bd_cgroup_join(const struct bd_cgroup *cg, pid_t pid)
{
	return 0;
}

int
bd_cgroup_signal(const struct bd_cgroup *cg, int sig)
{
	return 0;
}

bool
bd_cgroup_empty(const struct bd_cgroup *cg)
{
	return true;
}

int
bd_cgroup_stats(const struct bd_cgroup *cg, struct bd_cgroup_stats *out)
{
	out->memory_peak = out->cpu_user_usec = out->cpu_system_usec = -1;
	out->oom_kills = 0;
	return 0;
}

void
bd_cgroup_destroy(struct bd_cgroup *cg)
{
}

void
bd_cgroup_free(struct bd_cgroup *cg)
{
}
