/* SPDX-License-Identifier: MIT */
/*
 * Task cgroups; see cgroup.h for the model.
 *
 * bd_cgroup_setup() reads /proc/self/mountinfo and /proc/self/cgroup once,
 * picks a mode and fills cg_state with the directories under which task
 * cgroups are made:
 *
 *   v2      OWN is batchd's delegated cgroup (OWN/batchd when batchd sits
 *           in the root of its hierarchy; the directory tasks.cgroupDir
 *           names, when set; the parent when batchd starts in OWN/agent).
 *           batchd moves itself into OWN/agent (a cgroup with controllers
 *           may hold no processes of its own), enables what it can of
 *           memory, pids and cpu for OWN's children and for OWN/tasks,
 *           and makes OWN/tasks/NAME per task.  A limit whose controller
 *           is missing is said once in the mode line and not applied.
 *           A task's supervisor (bd_cgroup_configure_joiner()) finds this
 *           layout from its own place in OWN/agent and changes nothing:
 *           it moves no process and enables no controller.
 *   hybrid  the memory and pids controllers are bound to cgroup v1, and
 *           the v2 hierarchy has none: OWN2/batchd/NAME in v2 holds the
 *           task's processes (cgroup.events, cgroup.kill, cpu.stat) and
 *           OWN1/batchd/NAME in the v1 memory and pids hierarchies (and
 *           cpu, for a weight other than the default) holds its limits.
 *           A v1 hierarchy has a file called "tasks" in every cgroup, so
 *           the parent is "batchd" in both.
 *   none    neither can be used: every function accepts the NULL cgroup
 *           that bd_cgroup_create() then gives.
 *
 * cg_state is written by setup only and read by everything else.  A
 * struct bd_cgroup owns the paths of its directories.
 */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "xmalloc.h"

/* The v1 hierarchies used in the hybrid mode. */
enum cg_v1 {
	CG_MEMORY,
	CG_PIDS,
	CG_CPU,
	CG_NV1,
};

static const char *const cg_v1_names[CG_NV1] = { "memory", "pids", "cpu" };

/* The cgroup v2 default weight, and cgroup v1's cpu.shares for it. */
#define CG_WEIGHT_DEFAULT	100
#define CG_SHARES_DEFAULT	1024

/* Most bytes read from a cgroup.procs file (a fork bomb's pids). */
#define CG_PROCS_MAX		(1024 * 1024)

/* Counter files of a task cgroup, read through cg_counter(). */
enum cg_counter {
	CG_EVENTS,	/* v2 cgroup.events: populated */
	CG_CPU_STAT,	/* v2 cpu.stat: user_usec, system_usec */
	CG_OOM,		/* v2 memory.events or v1 memory.oom_control */
	CG_MEM_NOW,	/* v2 memory.current or v1 memory.usage_in_bytes */
	CG_PEAK,	/* v2 memory.peak or v1 memory.max_usage_in_bytes */
	CG_NCOUNTERS
};

struct bd_cgroup {
	char *name;
	char *v2;		/* its v2 directory */
	char *v1[CG_NV1];	/* hybrid: its v1 directories, or NULL */
	struct bd_cgroup_limits lim;	/* as applied */
	/* A reused cgroup's counters when it was taken: its statistics are
	   what grew since. */
	int64_t base_user_usec, base_system_usec, base_oom_kills;
	/* The same counters read by bd_cgroup_stats() once it was empty:
	   an empty cgroup's CPU time and OOM kills stay as they are, so
	   they are the next use's base without reading them again. */
	int64_t end_user_usec, end_system_usec, end_oom_kills;
	bool end_known;
	/* A read found no process in it, and it has not been handed out or
	   joined since: only batchd puts processes in (tasks cannot write
	   its cgroup.procs), so it is still empty. */
	bool empty_known;
	/* Reused: the peak opened read-write and reset through it at each
	   reuse (v2 memory.peak: Linux 6.12, the reset holds for reads
	   through this descriptor; v1 memory.max_usage_in_bytes); -1. */
	int peak_fd;
	/* The counter files read at every task's start and end, opened
	   once (a kernfs open costs more than the read); descriptor + 1,
	   0 when not open, so that a zeroed handle has none. */
	int counter_fd1[CG_NCOUNTERS];
};

/*
 * Empty task cgroups kept for the next task.  A task's start then costs a
 * few writes instead of a mkdir and rmdir of each of its cgroups, whose
 * kernel set-up and tear-down (per-CPU memory cgroup state, controller
 * files, offlining) cost more than the rest of a short task's start.
 */
#define CG_SPARES_MAX	8
/* Most memory still charged to a spare for it to be used again. */
#define CG_REUSE_MAX_CHARGE	(2 * 1024 * 1024)
static struct bd_cgroup *cg_spares[CG_SPARES_MAX];
static int cg_nspares;

static struct {
	bool done;
	bool configured_off;
	bool joiner;			/* bd_cgroup_configure_joiner() */
	char dir[PATH_MAX];		/* bd_cgroup_configure_dir(), or "" */
	struct bd_cgroup_limits limits;
	enum bd_cgroup_mode mode;
	char v2[PATH_MAX];		/* the parent of task cgroups */
	char v1[CG_NV1][PATH_MAX];	/* hybrid: parents, "" if unused */
	bool v2_memory, v2_pids;	/* v2: memory.max, pids.max can be set */
	bool v2_cpu;			/* v2: cpu.weight can be set */
} cg_state;

/* What setup found in /proc/self/{mountinfo,cgroup}. */
struct cg_found {
	char v2[PATH_MAX];		/* batchd's v2 cgroup directory */
	char v2_path[PATH_MAX];		/* ... as /proc/self/cgroup has it */
	char v1[CG_NV1][PATH_MAX];	/* its v1 directories, or "" */
};

void
bd_cgroup_configure(bool enabled, const struct bd_cgroup_limits *lim)
{
	cg_state.configured_off = !enabled;
	if (lim != NULL)
		cg_state.limits = *lim;
}

int
bd_cgroup_configure_dir(const char *dir)
{
	size_t n = dir != NULL ? strlen(dir) : 0;

	if (n == 0) {
		cg_state.dir[0] = '\0';
		return 0;
	}
	if (dir[0] != '/' || n >= sizeof(cg_state.dir))
		return -EINVAL;
	memcpy(cg_state.dir, dir, n + 1);
	while (n > 1 && cg_state.dir[n - 1] == '/')
		cg_state.dir[--n] = '\0';
	return 0;
}

void
bd_cgroup_configure_joiner(void)
{
	cg_state.joiner = true;
}

const struct bd_cgroup_limits *
bd_cgroup_node_limits(void)
{
	return &cg_state.limits;
}

enum bd_cgroup_mode
bd_cgroup_mode(void)
{
	return cg_state.mode;
}

const char *
bd_cgroup_mode_name(enum bd_cgroup_mode mode)
{
	switch (mode) {
	case BD_CGROUP_MODE_V2:
		return "v2";
	case BD_CGROUP_MODE_HYBRID:
		return "hybrid";
	default:
		return "none";
	}
}

bool
bd_cgroup_available(void)
{
	return cg_state.mode != BD_CGROUP_MODE_NONE;
}

/* Joins dir and file into buf; -ENAMETOOLONG if it does not fit. */
static int
cg_path(char *buf, size_t size, const char *dir, const char *file)
{
	int n = snprintf(buf, size, "%s/%s", dir, file);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Writes value to dir/file in one write(2).  0 or a negative errno. */
static int
cg_write(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	size_t len = strlen(value);
	int fd, rc = 0;

	if ((rc = cg_path(path, sizeof(path), dir, file)) < 0)
		return rc;
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return -errno;
	if (write(fd, value, len) != (ssize_t)len)
		rc = -errno;
	close(fd);
	return rc;
}

/* cg_write() of a number. */
static int
cg_write_int(const char *dir, const char *file, int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return cg_write(dir, file, buf);
}

/*
 * Reads dir/file (cgroup files have no size) into a malloc'd string of at
 * most max bytes.  Returns it or NULL with errno set.
 */
static char *
cg_read(const char *dir, const char *file, size_t max)
{
	char path[PATH_MAX], *buf;
	size_t used = 0, cap = 4096;
	ssize_t n;
	int fd, err;

	if ((err = cg_path(path, sizeof(path), dir, file)) < 0) {
		errno = -err;
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	buf = xmalloc(cap);
	for (;;) {
		if (used + 1 == cap) {
			if (cap > max) {
				err = EFBIG;
				goto fail;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = errno;
			goto fail;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	buf[used] = '\0';
	return buf;
fail:
	close(fd);
	free(buf);
	errno = err;
	return NULL;
}

/* The value of key (NULL: the first word) in text, or -1. */
static int64_t
cg_parse_value(const char *text, const char *key)
{
	size_t klen = key != NULL ? strlen(key) : 0;

	if (key == NULL)
		return text[0] >= '0' && text[0] <= '9' ?
		    strtoll(text, NULL, 10) : -1;
	for (const char *l = text; *l != '\0'; ) {
		if (strncmp(l, key, klen) == 0 && l[klen] == ' ')
			return strtoll(l + klen + 1, NULL, 10);
		if ((l = strchr(l, '\n')) == NULL)
			break;
		l++;
	}
	return -1;
}

/* The directory and file of counter c of cg, or NULL. */
static const char *
cg_counter_file(const struct bd_cgroup *cg, enum cg_counter c,
    const char **dir)
{
	bool v2 = cg_state.mode == BD_CGROUP_MODE_V2;

	*dir = cg->v2;
	switch (c) {
	case CG_EVENTS:
		return "cgroup.events";
	case CG_CPU_STAT:
		return "cpu.stat";
	case CG_OOM:
	case CG_MEM_NOW:
	case CG_PEAK:
		if (!v2 && (*dir = cg->v1[CG_MEMORY]) == NULL)
			return NULL;
		if (c == CG_OOM)
			return v2 ? "memory.events" : "memory.oom_control";
		if (c == CG_PEAK)
			return v2 ? "memory.peak" : "memory.max_usage_in_bytes";
		return v2 ? "memory.current" : "memory.usage_in_bytes";
	default:
		return NULL;
	}
}

/*
 * Reads counter c of cg (kept open for the next read; a read at offset 0
 * shows the counters of now) into buf.  Returns buf, or NULL when the
 * file is missing or unreadable.
 */
static const char *
cg_counter(struct bd_cgroup *cg, enum cg_counter c, char *buf, size_t size)
{
	char path[PATH_MAX];
	const char *dir, *file = cg_counter_file(cg, c, &dir);
	ssize_t n;
	int fd;

	if (file == NULL || dir == NULL)
		return NULL;
	if (cg->counter_fd1[c] == 0) {
		if (cg_path(path, sizeof(path), dir, file) < 0 ||
		    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			return NULL;
		cg->counter_fd1[c] = fd + 1;
	}
	do
		n = pread(cg->counter_fd1[c] - 1, buf, size - 1, 0);
	while (n == -1 && errno == EINTR);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

/* The value of key in counter c of cg (NULL key: the file's number). */
static int64_t
cg_counter_value(struct bd_cgroup *cg, enum cg_counter c, const char *key)
{
	char buf[1024];

	return cg_counter(cg, c, buf, sizeof(buf)) != NULL ?
	    cg_parse_value(buf, key) : -1;
}

/* Closes the counter files of cg. */
static void
cg_counters_close(struct bd_cgroup *cg)
{
	for (int i = 0; i < CG_NCOUNTERS; i++) {
		if (cg->counter_fd1[i] != 0)
			close(cg->counter_fd1[i] - 1);
		cg->counter_fd1[i] = 0;
	}
}

/* Whether the space-separated list has word. */
static bool
cg_list_has(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == ',' ||
		    p[n] == '\n'))
			return true;
	return false;
}

/* Undoes the octal escapes (\040) of a mountinfo field, in place. */
static void
cg_unescape(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
			    (s[3] - '0'));
			s += 3;
		} else
			*w++ = *s;
	}
	*w = '\0';
}

/* A mount of a cgroup hierarchy: where it is and which part it shows. */
struct cg_mount {
	char point[PATH_MAX];
	char root[PATH_MAX];
};

/*
 * Finds the cgroup2 mount (controller NULL) or the v1 mount of
 * controller in /proc/self/mountinfo.  0 or -ENOENT.
 */
static int
cg_find_mount(const char *controller, struct cg_mount *m)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (f == NULL)
		return -errno;
	while (rc != 0 && getline(&line, &cap, f) != -1) {
		char *fields[6], *save = NULL, *p, *sep, *fstype, *opts;
		int i;

		/* id parent dev root point options [optional...] - fstype
		 * source superoptions */
		if ((sep = strstr(line, " - ")) == NULL)
			continue;
		*sep = '\0';
		p = line;
		for (i = 0; i < 6; i++)
			if ((fields[i] = strtok_r(p, " ", &save)) == NULL)
				break;
			else
				p = NULL;
		if (i < 5)
			continue;
		save = NULL;
		fstype = strtok_r(sep + 3, " ", &save);
		(void)strtok_r(NULL, " ", &save);	/* source */
		opts = strtok_r(NULL, " \n", &save);
		if (fstype == NULL)
			continue;
		if (controller == NULL ? strcmp(fstype, "cgroup2") != 0 :
		    strcmp(fstype, "cgroup") != 0 || opts == NULL ||
		    !cg_list_has(opts, controller))
			continue;
		cg_unescape(fields[3]);
		cg_unescape(fields[4]);
		if (strlen(fields[3]) >= sizeof(m->root) ||
		    strlen(fields[4]) >= sizeof(m->point))
			continue;
		strcpy(m->root, fields[3]);
		strcpy(m->point, fields[4]);
		rc = 0;
	}
	free(line);
	fclose(f);
	return rc;
}

/*
 * batchd's cgroup in the hierarchy of controller (NULL: the v2 one) as
 * /proc/self/cgroup says, into path.  0 or -ENOENT.
 */
static int
cg_own_path(const char *controller, char *path, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (f == NULL)
		return -errno;
	while (rc != 0 && getline(&line, &cap, f) != -1) {
		char *ctrls = strchr(line, ':'), *p;

		if (ctrls == NULL || (p = strchr(++ctrls, ':')) == NULL)
			continue;
		*p++ = '\0';
		p[strcspn(p, "\n")] = '\0';
		if (controller == NULL ? strcmp(line, "0:") != 0 ||
		    ctrls[0] != '\0' : !cg_list_has(ctrls, controller))
			continue;
		if (strlen(p) < size) {
			strcpy(path, p);
			rc = 0;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

/*
 * The directory of batchd's own cgroup in a hierarchy into dir, and its
 * path in the hierarchy into path (may be NULL).  0 or -ENOENT.
 */
static int
cg_own_dir(const char *controller, char *dir, size_t size, char *path,
    size_t psize)
{
	struct cg_mount m;
	char own[PATH_MAX];
	const char *rel;
	size_t rlen;
	int n;

	if (cg_find_mount(controller, &m) < 0 ||
	    cg_own_path(controller, own, sizeof(own)) < 0)
		return -ENOENT;
	/* A mount may show a part of the hierarchy (its root field). */
	rlen = strcmp(m.root, "/") == 0 ? 0 : strlen(m.root);
	if (strncmp(own, m.root, rlen) != 0 ||
	    (own[rlen] != '/' && own[rlen] != '\0'))
		return -ENOENT;
	rel = own + rlen;
	n = snprintf(dir, size, "%s%s", m.point, strcmp(rel, "/") == 0 ?
	    "" : rel);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	if (path != NULL) {
		if (strlen(own) >= psize)
			return -ENAMETOOLONG;
		strcpy(path, own);
	}
	return 0;
}

/*
 * Whether batchd may make cgroups under dir (path in its hierarchy):
 * systemd marks what it delegates with the trusted.delegate attribute
 * (Delegate=yes); without systemd, or at the root of a cgroup namespace (a
 * container), nobody else manages the tree.  Sets *why when not.
 */
static bool
cg_delegated(const char *dir, const char *path, char *why, size_t size)
{
	char v[8];

	if (getxattr(dir, "trusted.delegate", v, sizeof(v)) > 0 ||
	    getxattr(dir, "user.delegate", v, sizeof(v)) > 0)
		return true;
	if (strcmp(path, "/") == 0 || access("/run/systemd/system", F_OK) != 0)
		return true;
	snprintf(why, size, "batchd's cgroup %s belongs to systemd, which has "
	    "not delegated it (run batchd as batchd.service, Delegate=yes)",
	    path);
	return false;
}

/* mkdir that accepts an existing directory. */
static int
cg_mkdir(const char *dir)
{
	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Which of the memory, pids and cpu controllers the list in dir/file has
 * (cgroup.controllers: what dir's children may get; cgroup.subtree_control:
 * what they have), into cg_state's v2 flags.
 */
static void
cg_v2_available(const char *dir, const char *file)
{
	char *avail = cg_read(dir, file, 4096);

	cg_state.v2_memory = avail != NULL && cg_list_has(avail, "memory");
	cg_state.v2_pids = avail != NULL && cg_list_has(avail, "pids");
	cg_state.v2_cpu = avail != NULL && cg_list_has(avail, "cpu");
	free(avail);
}

/* The "+memory +pids +cpu" of what cg_state's v2 flags allow, into buf. */
static void
cg_v2_enable_list(char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", cg_state.v2_memory ? " +memory" : "",
	    cg_state.v2_pids ? " +pids" : "", cg_state.v2_cpu ? " +cpu" : "");
}

/*
 * The v2 mode under own, batchd's delegated cgroup (path in the
 * hierarchy, for messages): batchd moves itself into own/agent, so that
 * own holds no process of its own (a cgroup whose children have
 * controllers may not), and enables what it can of memory, pids and cpu
 * for own's children and for own/tasks, the parent of task cgroups.
 * 0, or a negative errno with *why set.
 */
static int
cg_setup_v2(const char *own, const char *path, char *why, size_t size)
{
	char base[PATH_MAX], agent[PATH_MAX], ctrl[64];
	int rc;

	snprintf(base, sizeof(base), "%s", own);
	if (strcmp(path, "/") == 0) {
		/* Not the root's own files: a subtree of batchd's. */
		if ((rc = cg_path(base, sizeof(base), own, "batchd")) < 0 ||
		    (rc = cg_mkdir(base)) < 0) {
			snprintf(why, size, "cannot create %s/batchd: %s", own,
			    strerror(-rc));
			return rc;
		}
	}
	if ((rc = cg_path(agent, sizeof(agent), base, "agent")) < 0 ||
	    (rc = cg_mkdir(agent)) < 0 ||
	    (rc = cg_write(agent, "cgroup.procs", "0")) < 0) {
		snprintf(why, size, "cannot move batchd into %s/agent: %s",
		    base, strerror(-rc));
		return rc;
	}
	cg_v2_available(base, "cgroup.controllers");
	if ((rc = cg_path(cg_state.v2, sizeof(cg_state.v2), base,
	    "tasks")) < 0 || (rc = cg_mkdir(cg_state.v2)) < 0) {
		snprintf(why, size, "cannot create %s/tasks: %s", base,
		    strerror(-rc));
		return rc;
	}
	cg_v2_enable_list(ctrl, sizeof(ctrl));
	for (int i = 0; i < 2 && ctrl[0] != '\0'; i++) {
		const char *dir = i == 0 ? base : cg_state.v2;
		if ((rc = cg_write(dir, "cgroup.subtree_control",
		    ctrl + 1)) < 0 && cg_state.v2_cpu) {
			/* cpu refuses while a realtime thread runs: go on
			 * without weights rather than without cgroups. */
			cg_state.v2_cpu = false;
			cg_v2_enable_list(ctrl, sizeof(ctrl));
			i = -1;
			continue;
		}
		if (rc < 0) {
			snprintf(why, size, "cannot enable the%s controllers "
			    "in %s: %s%s", ctrl, dir, strerror(-rc),
			    rc == -EBUSY ? " (other processes are in it)" : "");
			return rc;
		}
	}
	return 0;
}

/*
 * For a process that only joins task cgroups (bd_cgroup_configure_joiner()):
 * the v2 layout the agent made, when this process sits in its agent leaf
 * (own is the leaf's parent) and own/tasks exists.  Writes nothing.
 */
static bool
cg_join_v2(const char *own)
{
	struct stat st;

	if (cg_path(cg_state.v2, sizeof(cg_state.v2), own, "tasks") < 0 ||
	    stat(cg_state.v2, &st) == -1 || !S_ISDIR(st.st_mode)) {
		cg_state.v2[0] = '\0';
		return false;
	}
	cg_v2_available(cg_state.v2, "cgroup.subtree_control");
	return true;
}

/* The hybrid mode from what setup found.  0, or -errno with *why set. */
static int
cg_setup_hybrid(const struct cg_found *f, char *why, size_t size)
{
	int rc;

	if ((rc = cg_path(cg_state.v2, sizeof(cg_state.v2), f->v2,
	    "batchd")) < 0 || (rc = cg_mkdir(cg_state.v2)) < 0) {
		snprintf(why, size, "cannot create %s/batchd: %s", f->v2,
		    strerror(-rc));
		return rc;
	}
	for (int i = 0; i < CG_NV1; i++) {
		char *dir = cg_state.v1[i];

		if (f->v1[i][0] == '\0')
			continue;
		if ((rc = cg_path(dir, PATH_MAX, f->v1[i], "batchd")) == 0)
			rc = cg_mkdir(dir);
		if (rc < 0 && i != CG_CPU) {
			snprintf(why, size, "cannot create %s/batchd: %s",
			    f->v1[i], strerror(-rc));
			return rc;
		}
		if (rc < 0)
			dir[0] = '\0'; /* no weights, still limits */
	}
	return 0;
}

/*
 * What bd_cgroup_setup() chose and why, for the agent to log once
 * (bd_cgroup_setup_config()); a task's supervisor sets up silently.
 */
static char cg_report[3 * PATH_MAX + 512];

static void __attribute__((format(printf, 1, 2)))
cg_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cg_report, sizeof(cg_report), fmt, ap);
	va_end(ap);
}

/*
 * What the v2 mode cannot limit, for the mode line (said once, since a
 * missing controller is the host's choice, not a task's fault): "" or
 * "; ..." into buf.
 */
static void
cg_v2_missing(char *buf, size_t size)
{
	bool both = !cg_state.v2_memory && !cg_state.v2_pids;

	buf[0] = '\0';
	if (cg_state.v2_memory && cg_state.v2_pids)
		return;
	snprintf(buf, size, "; the%s%s%s controller%s not available there, "
	    "so %s%s%s %s not applied%s", cg_state.v2_memory ? "" : " memory",
	    both ? " and" : "", cg_state.v2_pids ? "" : " pids",
	    both ? "s are" : " is",
	    cg_state.v2_memory ? "" : "tasks.limits.memoryMaxBytes",
	    both ? " and " : "", cg_state.v2_pids ? "" : "tasks.limits.pidsMax",
	    both ? "are" : "is", cg_state.v2_memory ? "" :
	    " and peak memory is not measured");
}

/*
 * The v2 mode in the directory tasks.cgroupDir names instead of batchd's
 * own cgroup: made if missing; delegated by the configuration's word.
 */
static int
cg_setup_dir(char *why, size_t size)
{
	char missing[256], probe[PATH_MAX];
	int rc;

	if ((rc = cg_mkdir(cg_state.dir)) < 0) {
		snprintf(why, size, "tasks.cgroupDir %s: %s", cg_state.dir,
		    strerror(-rc));
		return rc;
	}
	if (access(cg_state.dir, W_OK) != 0) {
		rc = -errno;
		snprintf(why, size, "tasks.cgroupDir %s is not writable: %s",
		    cg_state.dir, strerror(-rc));
		return rc;
	}
	if (cg_path(probe, sizeof(probe), cg_state.dir, "cgroup.procs") < 0 ||
	    access(probe, F_OK) != 0) {
		snprintf(why, size, "tasks.cgroupDir %s is not a cgroup v2 "
		    "directory", cg_state.dir);
		return -ENOTDIR;
	}
	if ((rc = cg_setup_v2(cg_state.dir, cg_state.dir, why, size)) < 0)
		return rc;
	cg_state.mode = BD_CGROUP_MODE_V2;
	cg_v2_missing(missing, sizeof(missing));
	cg_say("cgroup: v2: tasks.cgroupDir %s is delegated to batchd; "
	    "task cgroups go under %s with cgroup.kill%s%s%s%s", cg_state.dir,
	    cg_state.v2, cg_state.v2_memory ? ", memory.max" : "",
	    cg_state.v2_pids ? ", pids.max" : "",
	    cg_state.v2_cpu ? ", cpu.weight" : "", missing);
	return 0;
}

/*
 * batchd's delegated cgroup is the parent of the agent leaf it sits in:
 * one that systemd started it in (DelegateSubgroup=agent), an earlier
 * setup moved it to (a re-exec), or, for a task's supervisor, the agent
 * started it in.  Strips the leaf from f's v2 paths.
 */
static void
cg_leave_agent_leaf(struct cg_found *f)
{
	char *slash = strrchr(f->v2_path, '/');

	if (slash == NULL || slash == f->v2_path ||
	    strcmp(slash, "/agent") != 0)
		return;
	*slash = '\0';
	if ((slash = strrchr(f->v2, '/')) != NULL)
		*slash = '\0';
}

/*
 * Said with the v2 mode when batchd runs in the root of its systemd unit's
 * cgroup (systemd before 254 starts ExecStartPre= and the main process
 * there; DelegateSubgroup=agent puts them in agent/): once batchd has made
 * it an inner cgroup with controllers, the kernel refuses a process there
 * (EBUSY), so the unit's next start fails with status 219/CGROUP while
 * supervisors or tasks of the old batchd still run.
 */
#define CG_UNIT_ROOT_WARNING "; batchd started in the root of its " \
	"systemd unit's cgroup, which now holds task cgroups: while tasks " \
	"of this batchd run, systemd cannot start the unit again " \
	"(status 219/CGROUP) unless it has DelegateSubgroup=agent " \
	"(systemd 254 or later)"

/* Whether path, batchd's own v2 cgroup, is the root of a systemd unit. */
static bool
cg_unit_root(const char *path)
{
	size_t n = strlen(path);

	return n > 8 && strcmp(path + n - 8, ".service") == 0 &&
	    access("/run/systemd/system", F_OK) == 0;
}

int
bd_cgroup_setup(void)
{
	struct cg_found f;
	char why[PATH_MAX + 256], v2why[PATH_MAX + 256] = "", missing[256];
	char own_path[PATH_MAX];
	char *ctrls = NULL;
	bool v2_ok, v1_ok;
	int i;

	if (cg_state.done)
		return 0;
	cg_state.done = true;
	cg_state.mode = BD_CGROUP_MODE_NONE;
	if (cg_state.configured_off) {
		cg_say("cgroup: none: tasks.cgroups is false; tasks are "
		    "contained by process groups and a sweep of descendants");
		return 0;
	}
	memset(&f, 0, sizeof(f));
	if (cg_state.dir[0] != '\0' && !cg_state.joiner) {
		if (cg_setup_dir(why, sizeof(why)) == 0)
			return 0;
		goto none;
	}
	if (cg_own_dir(NULL, f.v2, sizeof(f.v2), f.v2_path,
	    sizeof(f.v2_path)) < 0) {
		snprintf(why, sizeof(why), "no cgroup v2 hierarchy is mounted");
		goto none;
	}
	snprintf(own_path, sizeof(own_path), "%s", f.v2_path);
	cg_leave_agent_leaf(&f);
	for (i = 0; i < CG_NV1; i++)
		if (cg_own_dir(cg_v1_names[i], f.v1[i], sizeof(f.v1[i]), NULL,
		    0) < 0)
			f.v1[i][0] = '\0';
	/* A supervisor takes the agent's layout as it is (no moves). */
	if (cg_state.joiner && cg_join_v2(f.v2)) {
		cg_state.mode = BD_CGROUP_MODE_V2;
		return 0;
	}
	if (access(f.v2, W_OK) != 0) {
		snprintf(why, sizeof(why), "batchd's cgroup %s is not writable "
		    "(%s)", f.v2, geteuid() != 0 ? "batchd does not run as "
		    "root" : strerror(errno));
		goto none;
	}
	if (!cg_delegated(f.v2, f.v2_path, why, sizeof(why)))
		goto none;

	ctrls = cg_read(f.v2, "cgroup.controllers", 4096);
	v2_ok = ctrls != NULL && cg_list_has(ctrls, "memory") &&
	    cg_list_has(ctrls, "pids");
	free(ctrls);
	if (v2_ok && !cg_state.joiner &&
	    cg_setup_v2(f.v2, f.v2_path, v2why, sizeof(v2why)) == 0) {
		cg_state.mode = BD_CGROUP_MODE_V2;
		cg_v2_missing(missing, sizeof(missing));
		cg_say("cgroup: v2: batchd's cgroup %s is delegated to it; "
		    "task cgroups go under %s with memory.max, pids.max%s and "
		    "cgroup.kill%s%s", f.v2_path, cg_state.v2,
		    cg_state.v2_cpu ? ", cpu.weight" : "", missing,
		    cg_unit_root(own_path) ? CG_UNIT_ROOT_WARNING : "");
		return 0;
	}
	if (!v2_ok)
		snprintf(v2why, sizeof(v2why), "the memory and pids "
		    "controllers are not available in cgroup v2");
	v1_ok = f.v1[CG_MEMORY][0] != '\0' && f.v1[CG_PIDS][0] != '\0' &&
	    access(f.v1[CG_MEMORY], W_OK) == 0 &&
	    access(f.v1[CG_PIDS], W_OK) == 0;
	if (v1_ok && cg_setup_hybrid(&f, why, sizeof(why)) == 0) {
		cg_state.mode = BD_CGROUP_MODE_HYBRID;
		cg_say("cgroup: hybrid: %s, but cgroup v1 has them: task "
		    "cgroups go under %s (membership, cgroup.kill, cpu.stat) "
		    "with limits under %s and %s%s%s", v2why, cg_state.v2,
		    cg_state.v1[CG_MEMORY], cg_state.v1[CG_PIDS],
		    cg_state.v1[CG_CPU][0] != '\0' ? " and " : "",
		    cg_state.v1[CG_CPU]);
		return 0;
	}
	if (!v1_ok)
		snprintf(why, sizeof(why), "%s, and the cgroup v1 memory and "
		    "pids controllers are not mounted or not writable", v2why);
none:
	for (i = 0; i < CG_NV1; i++)
		cg_state.v1[i][0] = '\0';
	cg_state.v2[0] = '\0';
	cg_say("cgroup: none: %s; tasks are contained by process groups and "
	    "a sweep of descendants", why);
	return 0;
}

int
bd_cgroup_setup_config(const struct bd_config *c)
{
	struct bd_cgroup_limits lim = {
		.memory_max = c->tasks.limits.memory_max_bytes,
		.pids_max = c->tasks.limits.pids_max,
		.cpu_weight = (int)c->tasks.limits.cpu_weight,
	};
	int rc;

	bd_cgroup_configure(c->tasks.cgroups, &lim);
	/* The checker made it an absolute path: it fits or it is refused. */
	if (bd_cgroup_configure_dir(c->tasks.cgroup_dir) < 0)
		fatalx("tasks.cgroupDir %s: too long", c->tasks.cgroup_dir);
	rc = bd_cgroup_setup();
	if (cg_report[0] != '\0')
		log_info("%s", cg_report);
	cg_report[0] = '\0';
	return rc;
}

/* Whether name can be a directory of ours: a word of [A-Za-z0-9._-]. */
static bool
cg_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 200 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '.' || name[i] == '_' || name[i] == '-'))
			return false;
	/* v1 cgroups hold a file called "tasks"; ours hold dots anyway. */
	return strcmp(name, "tasks") != 0 && strcmp(name, "agent") != 0;
}

/* A handle for name with the paths of the current mode. */
static struct bd_cgroup *
cg_handle(const char *name)
{
	struct bd_cgroup *cg = xcalloc(1, sizeof(*cg));

	cg->name = xstrdup(name);
	cg->v2 = bd_path_join(cg_state.v2, name);
	cg->peak_fd = -1;
	return cg;
}

/* Which v1 hierarchies a cgroup with lim needs (hybrid only). */
static bool
cg_v1_wanted(int i, const struct bd_cgroup_limits *lim)
{
	if (cg_state.v1[i][0] == '\0')
		return false;
	switch (i) {
	case CG_MEMORY:
		return true;	/* peak memory and OOM kills, limit or not */
	case CG_PIDS:
		return lim->pids_max > 0;
	default:
		return lim->cpu_weight > 0 &&
		    lim->cpu_weight != CG_WEIGHT_DEFAULT;
	}
}

/* mkdir of a task cgroup; one left by a crash is reused when empty. */
static int
cg_make(const char *dir)
{
	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (rmdir(dir) == -1)
		return -EEXIST;	/* still in use: not ours to take */
	return mkdir(dir, 0755) == -1 ? -errno : 0;
}

/* Writes the limits into a new cgroup's directories. */
static int
cg_apply(const struct bd_cgroup *cg, const struct bd_cgroup_limits *lim)
{
	int rc = 0;

	if (cg_state.mode == BD_CGROUP_MODE_V2) {
		/* A limit without its controller was reported at setup. */
		if (cg_state.v2_memory && lim->memory_max > 0) {
			rc = cg_write_int(cg->v2, "memory.max",
			    lim->memory_max);
			/* A limit that lets a task swap only slows it down. */
			if (rc == 0)
				(void)cg_write(cg->v2, "memory.swap.max", "0");
		}
		/* One OOM kill ends the whole task, not a random part. */
		if (rc == 0 && cg_state.v2_memory)
			(void)cg_write(cg->v2, "memory.oom.group", "1");
		if (rc == 0 && cg_state.v2_pids && lim->pids_max > 0)
			rc = cg_write_int(cg->v2, "pids.max", lim->pids_max);
		if (rc == 0 && cg_state.v2_cpu && lim->cpu_weight > 0 &&
		    lim->cpu_weight != CG_WEIGHT_DEFAULT)
			rc = cg_write_int(cg->v2, "cpu.weight",
			    lim->cpu_weight);
		return rc;
	}
	if (cg->v1[CG_MEMORY] != NULL && lim->memory_max > 0) {
		rc = cg_write_int(cg->v1[CG_MEMORY], "memory.limit_in_bytes",
		    lim->memory_max);
		/* memsw exists with swap accounting only. */
		if (rc == 0)
			(void)cg_write_int(cg->v1[CG_MEMORY],
			    "memory.memsw.limit_in_bytes", lim->memory_max);
	}
	if (rc == 0 && cg->v1[CG_PIDS] != NULL)
		rc = cg_write_int(cg->v1[CG_PIDS], "pids.max", lim->pids_max);
	if (rc == 0 && cg->v1[CG_CPU] != NULL) {
		/* v2 weight 100 is v1's 1024 shares; v1 allows 2..262144. */
		int64_t shares = (int64_t)lim->cpu_weight * CG_SHARES_DEFAULT /
		    CG_WEIGHT_DEFAULT;
		rc = cg_write_int(cg->v1[CG_CPU], "cpu.shares",
		    shares < 2 ? 2 : shares > 262144 ? 262144 : shares);
	}
	return rc;
}

/* Removes what exists of cg's directories; 0 or the first -errno. */
static int
cg_remove(struct bd_cgroup *cg)
{
	int rc = 0;

	cg_counters_close(cg);
	for (int i = 0; i < CG_NV1; i++)
		if (cg->v1[i] != NULL && rmdir(cg->v1[i]) == -1 &&
		    errno != ENOENT && rc == 0)
			rc = -errno;
	if (cg->v2 != NULL && rmdir(cg->v2) == -1 && errno != ENOENT &&
	    rc == 0)
		rc = -errno;
	return rc;
}

/* The OOM kills counted in cg, or -1. */
static int64_t
cg_oom_kills(struct bd_cgroup *cg)
{
	return cg_counter_value(cg, CG_OOM, "oom_kill");
}

/* User and system CPU time of cg from one read of cpu.stat, or -1s. */
static void
cg_cpu_usec(struct bd_cgroup *cg, int64_t *user, int64_t *system)
{
	char buf[1024];

	*user = *system = -1;
	if (cg_counter(cg, CG_CPU_STAT, buf, sizeof(buf)) == NULL)
		return;
	*user = cg_parse_value(buf, "user_usec");
	*system = cg_parse_value(buf, "system_usec");
}

static bool cg_read_empty(struct bd_cgroup *cg);

/*
 * Resets the peak memory of a spare: through a descriptor kept open from
 * its first reuse on (one write a task, not an open, write and close).
 * 0, or -EOPNOTSUPP when it cannot be reset (v2 before Linux 6.12).
 */
static int
cg_reset_peak(struct bd_cgroup *cg)
{
	char path[PATH_MAX];
	const char *dir = cg->v2, *file = "memory.peak";

	if (cg_state.mode != BD_CGROUP_MODE_V2) {
		if ((dir = cg->v1[CG_MEMORY]) == NULL)
			return 0;	/* no peak to reset */
		file = "memory.max_usage_in_bytes";
	}
	if (cg->peak_fd == -1 && (cg_path(path, sizeof(path), dir, file) < 0 ||
	    (cg->peak_fd = open(path, O_RDWR | O_CLOEXEC)) == -1))
		return -EOPNOTSUPP;
	return pwrite(cg->peak_fd, "0", 1, 0) == 1 ? 0 : -EOPNOTSUPP;
}

/*
 * Readies a spare for its next task: the same cgroups (a spare made for
 * other limits, or missing a hierarchy they need, is not used), the peak
 * reset and the counters taken as the new zero.  0 or a negative errno.
 */
static int
cg_reuse(struct bd_cgroup *cg, const struct bd_cgroup_limits *lim)
{
	int64_t v;
	int rc;

	for (int i = 0; i < CG_NV1; i++)
		if (cg_v1_wanted(i, lim) != (cg->v1[i] != NULL))
			return -EINVAL;
	if (cg->lim.memory_max != lim->memory_max ||
	    cg->lim.pids_max != lim->pids_max ||
	    cg->lim.cpu_weight != lim->cpu_weight)
		return -EINVAL;
	/* Read, not remembered: what is handed out must be empty now. */
	if (!cg_read_empty(cg))
		return -EBUSY;
	/* Memory the last task left charged (page cache, tmpfs files)
	 * would count against this one's limit and peak; a new cgroup
	 * starts at zero, so one that holds much is not used again. */
	v = cg_counter_value(cg, CG_MEM_NOW, NULL);
	if (v > CG_REUSE_MAX_CHARGE)
		return -EBUSY;
	if ((rc = cg_reset_peak(cg)) < 0)
		return rc;
	if (cg->end_known) {
		cg->base_user_usec = cg->end_user_usec;
		cg->base_system_usec = cg->end_system_usec;
		cg->base_oom_kills = cg->end_oom_kills > 0 ?
		    cg->end_oom_kills : 0;
	} else {
		cg_cpu_usec(cg, &cg->base_user_usec, &cg->base_system_usec);
		v = cg_oom_kills(cg);
		cg->base_oom_kills = v > 0 ? v : 0;
	}
	if (cg->base_user_usec < 0)
		cg->base_user_usec = 0;
	if (cg->base_system_usec < 0)
		cg->base_system_usec = 0;
	/* Handed out: its next task's processes go in. */
	cg->empty_known = cg->end_known = false;
	return 0;
}

int
bd_cgroup_create(const char *name, const struct bd_cgroup_limits *lim,
    struct bd_cgroup **out)
{
	struct bd_cgroup *cg;
	int rc;

	*out = NULL;
	if (!bd_cgroup_available())
		return 0;
	if (!cg_name_ok(name))
		return -EINVAL;
	while (cg_nspares > 0) {
		cg = cg_spares[--cg_nspares];
		if (cg_reuse(cg, lim) == 0) {
			*out = cg;
			return 0;
		}
		bd_cgroup_destroy(cg);
	}
	cg = cg_handle(name);
	if ((rc = cg_make(cg->v2)) < 0) {
		free(cg->v2);
		cg->v2 = NULL;
		goto fail;
	}
	for (int i = 0; i < CG_NV1; i++) {
		if (!cg_v1_wanted(i, lim))
			continue;
		cg->v1[i] = bd_path_join(cg_state.v1[i], name);
		if ((rc = cg_make(cg->v1[i])) < 0) {
			free(cg->v1[i]);
			cg->v1[i] = NULL;
			goto fail;
		}
	}
	if ((rc = cg_apply(cg, lim)) < 0)
		goto fail;
	cg->lim = *lim;
	*out = cg;
	return 0;
fail:
	(void)cg_remove(cg);
	bd_cgroup_free(cg);
	return rc;
}

int
bd_cgroup_open(const char *name, struct bd_cgroup **out)
{
	struct bd_cgroup *cg;

	*out = NULL;
	if (!bd_cgroup_available() || !cg_name_ok(name))
		return -ENOENT;
	cg = cg_handle(name);
	if (access(cg->v2, F_OK) != 0) {
		bd_cgroup_free(cg);
		return -ENOENT;
	}
	for (int i = 0; i < CG_NV1; i++) {
		if (cg_state.v1[i][0] == '\0')
			continue;
		cg->v1[i] = bd_path_join(cg_state.v1[i], name);
		if (access(cg->v1[i], F_OK) != 0) {
			free(cg->v1[i]);
			cg->v1[i] = NULL;
		}
	}
	*out = cg;
	return 0;
}

const char *
bd_cgroup_name(const struct bd_cgroup *cg)
{
	return cg != NULL ? cg->name : NULL;
}

const char *
bd_cgroup_path(const struct bd_cgroup *cg)
{
	return cg != NULL ? cg->v2 : NULL;
}

int
bd_cgroup_join(struct bd_cgroup *cg, pid_t pid)
{
	char buf[32];
	int rc;

	if (cg == NULL)
		return 0;
	cg->empty_known = cg->end_known = false;
	snprintf(buf, sizeof(buf), "%ld", (long)pid);
	/* v2 first: it is what the kill and the emptiness check see. */
	if ((rc = cg_write(cg->v2, "cgroup.procs", buf)) < 0)
		return rc;
	for (int i = 0; i < CG_NV1; i++)
		if (cg->v1[i] != NULL &&
		    (rc = cg_write(cg->v1[i], "cgroup.procs", buf)) < 0)
			return rc;
	return 0;
}

int
bd_cgroup_join_thread_v1(const struct bd_cgroup *cg)
{
	int rc;

	if (cg == NULL)
		return 0;
	/* "0" in a v1 tasks file is the calling thread. */
	for (int i = 0; i < CG_NV1; i++)
		if (cg->v1[i] != NULL &&
		    (rc = cg_write(cg->v1[i], "tasks", "0")) < 0)
			return rc;
	return 0;
}

int
bd_cgroup_open_dir(struct bd_cgroup *cg)
{
	int fd;

	if (cg == NULL)
		return -EINVAL;
	/* For a clone into it. */
	cg->empty_known = cg->end_known = false;
	if ((fd = open(cg->v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -errno;
	return fd;
}

/*
 * Signals each process in cgroup.procs once; returns how many, or -errno
 * when the file cannot be read.
 */
static int
cg_signal_listed(const struct bd_cgroup *cg, int sig)
{
	char *text = cg_read(cg->v2, "cgroup.procs", CG_PROCS_MAX), *p, *end;
	int n = 0;

	if (text == NULL)
		return errno == ENOENT ? 0 : -errno;
	for (p = text; *p != '\0'; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0 && kill((pid_t)pid, sig) == 0)
			n++;
	}
	free(text);
	return n;
}

int
bd_cgroup_signal(const struct bd_cgroup *cg, int sig)
{
	int n, more;

	if (cg == NULL)
		return 0;
	if ((n = cg_signal_listed(cg, sig)) <= 0 || sig != SIGKILL)
		return n;
	/* cgroup.kill (Linux 5.14) also catches what forks meanwhile. */
	if (cg_write(cg->v2, "cgroup.kill", "1") == 0)
		return n;
	/* Without it, again until nothing new shows up (a fork bomb). */
	for (int pass = 0; pass < 16; pass++) {
		if ((more = cg_signal_listed(cg, sig)) <= 0)
			break;
		n += more;
	}
	return n;
}

/* Whether no process is left in cg, as its files say now. */
static bool
cg_read_empty(struct bd_cgroup *cg)
{
	int64_t populated;
	char *procs;
	bool empty;

	if ((populated = cg_counter_value(cg, CG_EVENTS, "populated")) >= 0)
		empty = populated == 0;
	else if ((procs = cg_read(cg->v2, "cgroup.procs", CG_PROCS_MAX)) ==
	    NULL)
		empty = errno == ENOENT;
	else {
		empty = procs[0] == '\0';
		free(procs);
	}
	cg->empty_known = empty;
	return empty;
}

bool
bd_cgroup_empty(struct bd_cgroup *cg)
{
	if (cg == NULL)
		return true;
	return cg->empty_known || cg_read_empty(cg);
}

/* memory.peak through the descriptor a reuse reset; -1 if unreadable. */
static int64_t
cg_read_peak_fd(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return buf[0] >= '0' && buf[0] <= '9' ? strtoll(buf, NULL, 10) : -1;
}

/* Since the cgroup was taken: a counter minus its base, or -1. */
static int64_t
cg_since(int64_t v, int64_t base)
{
	return v < 0 ? -1 : v >= base ? v - base : 0;
}

int
bd_cgroup_stats(struct bd_cgroup *cg, struct bd_cgroup_stats *out)
{
	int64_t v, user, system, oom;

	out->memory_peak = out->cpu_user_usec = out->cpu_system_usec = -1;
	out->oom_kills = 0;
	if (cg == NULL)
		return 0;
	/* cpu.stat's usage lines are there without the cpu controller. */
	cg_cpu_usec(cg, &user, &system);
	/* A cgroup removed under its open files reads nothing. */
	if (user < 0 && access(cg->v2, F_OK) != 0)
		return -errno;
	out->cpu_user_usec = cg_since(user, cg->base_user_usec);
	out->cpu_system_usec = cg_since(system, cg->base_system_usec);
	if (cg->peak_fd != -1)
		out->memory_peak = cg_read_peak_fd(cg->peak_fd);
	else
		/* v2 memory.peak is Linux 5.19; before it, unknown. */
		out->memory_peak = cg_counter_value(cg, CG_PEAK, NULL);
	oom = cg_oom_kills(cg);
	v = cg_since(oom, cg->base_oom_kills);
	out->oom_kills = v > 0 ? v : 0;
	/* Empty: these stay until its next use, whose base they are. */
	if (cg->empty_known) {
		cg->end_user_usec = user;
		cg->end_system_usec = system;
		cg->end_oom_kills = oom;
		cg->end_known = true;
	}
	return 0;
}

/*
 * Kills what runs in the v2 task cgroup at path and waits up to a second
 * for it to empty.  Whether anything was there to kill.
 */
static bool
cg_sweep_kill(const char *path, const char *name)
{
	struct bd_cgroup cg = { .name = (char *)(uintptr_t)name,
	    .v2 = (char *)(uintptr_t)path };
	struct timespec pause = { 0, 5 * 1000 * 1000 };
	bool killed = false;

	if (!bd_cgroup_empty(&cg)) {
		(void)bd_cgroup_signal(&cg, SIGKILL);
		/* SIGKILLed processes go in milliseconds (unless in D
		 * state). */
		for (int i = 0; i < 200 && !bd_cgroup_empty(&cg); i++)
			nanosleep(&pause, NULL);
		killed = true;
	}
	cg_counters_close(&cg);
	return killed;
}

/*
 * Sweeps the task cgroups under parent (a v2 parent when v2 is true) as
 * stale() says: rmdir takes a cgroup only when no process is in it; in
 * v2, its v1 directories go with it, and what runs in a cgroup to kill is
 * killed first (its processes are the same in v1).  Returns how many
 * went; adds the killed ones to *killed.
 */
static int
cg_sweep_parent(const char *parent, bool v2, bd_cgroup_stale_fn stale,
    void *arg, int *killed)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if (parent[0] == '\0' || (d = opendir(parent)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		enum bd_cgroup_sweep_action act;
		char path[PATH_MAX];
		bool gone;

		if (de->d_type != DT_DIR || !cg_name_ok(de->d_name) ||
		    (act = stale(de->d_name, arg)) == BD_CGROUP_KEEP ||
		    cg_path(path, sizeof(path), parent, de->d_name) < 0)
			continue;
		/* A v1 directory goes with its v2 one, or alone when the
		 * v2 one is gone (a create that failed half way). */
		if (!v2 && cg_state.v2[0] != '\0') {
			char v2dir[PATH_MAX];
			if (cg_path(v2dir, sizeof(v2dir), cg_state.v2,
			    de->d_name) < 0 || access(v2dir, F_OK) == 0)
				continue;
		}
		if (v2 && act == BD_CGROUP_KILL && cg_sweep_kill(path,
		    de->d_name))
			(*killed)++;
		gone = rmdir(path) == 0;
		if (!gone && errno != ENOENT)
			continue;	/* EBUSY: a process still runs in it */
		n += gone;
		for (int i = 0; v2 && i < CG_NV1; i++) {
			if (cg_state.v1[i][0] != '\0' && cg_path(path,
			    sizeof(path), cg_state.v1[i], de->d_name) == 0)
				(void)rmdir(path);
		}
	}
	closedir(d);
	return n;
}

int
bd_cgroup_sweep(bd_cgroup_stale_fn stale, void *arg, int *killed)
{
	int n, k = 0;

	if (killed != NULL)
		*killed = 0;
	if (!bd_cgroup_available())
		return 0;
	n = cg_sweep_parent(cg_state.v2, true, stale, arg, &k);
	for (int i = 0; i < CG_NV1; i++)
		n += cg_sweep_parent(cg_state.v1[i], false, stale, arg, &k);
	if (killed != NULL)
		*killed = k;
	return n;
}

void
bd_cgroup_release(struct bd_cgroup *cg)
{
	if (cg == NULL)
		return;
	if (cg_nspares < CG_SPARES_MAX && bd_cgroup_empty(cg)) {
		cg_spares[cg_nspares++] = cg;
		return;
	}
	bd_cgroup_destroy(cg);
}

void
bd_cgroup_drop_spares(void)
{
	while (cg_nspares > 0)
		bd_cgroup_destroy(cg_spares[--cg_nspares]);
}

void
bd_cgroup_destroy(struct bd_cgroup *cg)
{
	int rc;

	if (cg == NULL)
		return;
	if ((rc = cg_remove(cg)) < 0)
		log_warnx("cgroup %s: cannot remove it: %s", cg->name,
		    strerror(-rc));
	bd_cgroup_free(cg);
}

void
bd_cgroup_free(struct bd_cgroup *cg)
{
	if (cg == NULL)
		return;
	if (cg->peak_fd != -1)
		close(cg->peak_fd);
	cg_counters_close(cg);
	free(cg->name);
	free(cg->v2);
	for (int i = 0; i < CG_NV1; i++)
		free(cg->v1[i]);
	free(cg);
}
