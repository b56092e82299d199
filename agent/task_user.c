/* SPDX-License-Identifier: MIT */
/*
 * Task users: which OS account a task runs as, and making sure those
 * accounts exist; see task_user.h for the mapping.
 *
 * State: the resolved options, whether tasks run as batchd itself, and
 * the task-scope pool: per kind (admin or not) a growing array saying
 * which indices are held by a task and which users are known to exist.
 * Accounts are looked up in the user database when a task acquires one,
 * so a change made by an administrator is seen by the next task.
 *
 * Accounts are created with groupadd and useradd, spawned and waited for
 * (the shadow tools lock and update /etc/passwd, /etc/shadow and
 * /etc/group consistently; batchd never edits them itself).  That blocks
 * the loop for the tool's run, which happens at start and the first time
 * a task-scope index is used on the node, never again.
 */
#include "task_user.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "file_access.h"
#include "fsutil.h"
#include "log.h"
#include "xmalloc.h"

extern char **environ;

#define TASK_USER_MAX_GROUPS	64
/* How long a user's ids and groups, once looked up, are taken as they
 * were: the lookup (getgrouplist through NSS) costs more than the rest
 * of a task's start, and the users rarely change. */
#define TASK_USER_CACHE_MS	60000
/* Task-scope users of one kind that can be held at once. */
#define TASK_USER_MAX_POOL	4096

struct task_user_pool {
	bool *held;
	bool *made;	/* known to exist */
	size_t n;
	bool start_made;
};

/* A user as last looked up. */
struct task_user_cached {
	char *name;
	bool admin;
	uid_t uid;
	gid_t gid;
	gid_t groups[TASK_USER_MAX_GROUPS];
	int ngroups;
	int64_t at_ms;
	struct task_user_cached *next;
};

struct bd_task_users {
	struct task_user_cached *cache;
	bool self;
	char *self_name;
	char *pool_non_admin;
	char *pool_admin;
	const struct bd_config_account *accounts;
	size_t n_accounts;
	struct task_user_pool pool[2];	/* [admin] */
};

/*
 * Runs a shadow-utils tool (argv[0] found in PATH) and waits for it; 0, or
 * -1 with *cause holding the tool's own words.
 */
static int
task_user_run(const char *const argv[], char **cause)
{
	posix_spawn_file_actions_t fa;
	char buf[1024];
	size_t len = 0;
	ssize_t n;
	int pfd[2], status, rc;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) == -1) {
		*cause = xasprintf("%s: %s", argv[0], strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	/* posix_spawnp() does not write to argv; its prototype predates const. */
	rc = posix_spawnp(&pid, argv[0], &fa, NULL,
	    (char *const *)(uintptr_t)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		*cause = xasprintf("cannot run %s: %s", argv[0], strerror(rc));
		return -1;
	}
	while ((n = read(pfd[0], buf + len, sizeof(buf) - 1 - len)) > 0 ||
	    (n == -1 && errno == EINTR))
		if (n > 0)
			len += (size_t)n;
	close(pfd[0]);
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	while ((rc = waitpid(pid, &status, 0)) == -1 && errno == EINTR)
		;
	if (rc == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		*cause = xasprintf("%s %s failed%s%s", argv[0],
		    argv[1] != NULL ? argv[1] : "", len ? ": " : "", buf);
		return -1;
	}
	return 0;
}

/* The gid of group name, creating it (gid: -1 for any) if missing. */
static int
task_user_group(const char *name, int64_t gid, gid_t *out, char **cause)
{
	struct group *gr;
	char gids[32], *why = NULL;

	if ((gr = getgrnam(name)) == NULL) {
		snprintf(gids, sizeof(gids), "%lld", (long long)gid);
		const char *argv[] = { "groupadd", "--system", name, NULL,
		    NULL, NULL };
		if (gid >= 0) {
			argv[2] = "--gid";
			argv[3] = gids;
			argv[4] = name;
		}
		/* Another batchd on this machine may be making it too. */
		if (task_user_run(argv, &why) < 0 && getgrnam(name) == NULL) {
			*cause = why;
			return -EPERM;
		}
		free(why);
		log_info("task users: created group %s", name);
		if ((gr = getgrnam(name)) == NULL) {
			*cause = xasprintf("group %s: not found after "
			    "groupadd", name);
			return -ENOENT;
		}
	}
	*out = gr->gr_gid;
	return 0;
}

/*
 * Makes sure user name exists: with primary group gid, in the admin group
 * too when admin, with uid when uid >= 0 (an existing user of another uid
 * is an error).  0 or a negative errno with *cause.
 */
static int
task_user_make(const char *name, int64_t uid, gid_t gid, bool admin,
    char **cause)
{
	struct passwd *pw;
	char uids[32], gids[32], *why = NULL;
	const char *argv[16];
	int n = 0;

	if ((pw = getpwnam(name)) != NULL) {
		if (uid >= 0 && pw->pw_uid != (uid_t)uid) {
			*cause = xasprintf("user %s exists with uid %u, not "
			    "the configured %lld", name, (unsigned)pw->pw_uid,
			    (long long)uid);
			return -EEXIST;
		}
		return 0;
	}
	snprintf(uids, sizeof(uids), "%lld", (long long)uid);
	/* Another batchd on this machine may be making the same user. */
	snprintf(gids, sizeof(gids), "%u", (unsigned)gid);
	argv[n++] = "useradd";
	argv[n++] = "--system";
	argv[n++] = "--no-create-home";
	argv[n++] = "--home-dir";
	argv[n++] = "/nonexistent";
	argv[n++] = "--shell";
	argv[n++] = "/usr/sbin/nologin";
	argv[n++] = "--gid";
	argv[n++] = gids;
	if (uid >= 0) {
		argv[n++] = "--uid";
		argv[n++] = uids;
	}
	if (admin) {
		argv[n++] = "--groups";
		argv[n++] = BD_TASK_USER_ADMIN_GROUP;
	}
	argv[n++] = name;
	argv[n] = NULL;
	if (task_user_run(argv, &why) < 0) {
		if (getpwnam(name) == NULL) {
			*cause = why;
			return -EPERM;
		}
		free(why);	/* made meanwhile by another batchd */
		return 0;
	}
	log_info("task users: created user %s%s", name,
	    admin ? " (admin)" : "");
	return 0;
}

/*
 * Looks up linux_name's uid, gid and groups (its own, plus the admin group
 * when admin) into c.
 */
static int
task_user_lookup(const char *linux_name, bool admin,
    struct task_user_cached *c, char **cause)
{
	struct passwd *pw;
	struct group *gr;

	c->ngroups = TASK_USER_MAX_GROUPS - 1; /* room for the admin group */
	if ((pw = getpwnam(linux_name)) == NULL) {
		*cause = xasprintf("user %s does not exist", linux_name);
		return -ENOENT;
	}
	if (getgrouplist(linux_name, pw->pw_gid, c->groups, &c->ngroups) ==
	    -1) {
		*cause = xasprintf("user %s is in more than %d groups",
		    linux_name, TASK_USER_MAX_GROUPS - 1);
		return -E2BIG;
	}
	if (admin && (gr = getgrnam(BD_TASK_USER_ADMIN_GROUP)) != NULL) {
		bool in = false;
		for (int i = 0; i < c->ngroups; i++)
			in = in || c->groups[i] == gr->gr_gid;
		if (!in)
			c->groups[c->ngroups++] = gr->gr_gid;
	}
	c->uid = pw->pw_uid;
	c->gid = pw->pw_gid;
	return 0;
}

/*
 * Fills a's name, uid, gid and groups for linux_name, from u's cache when
 * it looked the user up less than TASK_USER_CACHE_MS ago.
 */
static int
task_user_resolve(struct bd_task_users *u, const char *linux_name,
    bool admin, struct bd_task_account *a, char **cause)
{
	struct task_user_cached *c;
	int64_t now = bd_clock_mono_ms();
	int rc;

	for (c = u->cache; c != NULL; c = c->next)
		if (c->admin == admin && strcmp(c->name, linux_name) == 0)
			break;
	if (c == NULL || now - c->at_ms >= TASK_USER_CACHE_MS) {
		struct task_user_cached fresh;
		if ((rc = task_user_lookup(linux_name, admin, &fresh,
		    cause)) < 0)
			return rc;
		if (c == NULL) {
			c = xcalloc(1, sizeof(*c));
			c->name = xstrdup(linux_name);
			c->admin = admin;
			c->next = u->cache;
			u->cache = c;
		}
		c->uid = fresh.uid;
		c->gid = fresh.gid;
		c->ngroups = fresh.ngroups;
		memcpy(c->groups, fresh.groups, sizeof(c->groups));
		c->at_ms = now;
	}
	a->name = xstrdup(linux_name);
	a->id.uid = c->uid;
	a->id.gid = c->gid;
	a->groups = xreallocarray(NULL, (size_t)c->ngroups, sizeof(gid_t));
	memcpy(a->groups, c->groups, (size_t)c->ngroups * sizeof(gid_t));
	a->id.groups = a->groups;
	a->id.ngroups = (size_t)c->ngroups;
	a->process = &a->id;
	a->admin = admin;
	return 0;
}

/* The configured account called name, or NULL. */
static const struct bd_config_account *
task_user_account(const struct bd_task_users *u, const char *name)
{
	for (size_t i = 0; i < u->n_accounts; i++)
		if (strcmp(u->accounts[i].name, name) == 0)
			return &u->accounts[i];
	return NULL;
}

/* Installs the admin group's sudo rule where sudo would read it. */
static void
task_user_sudoers(void)
{
	static const char rule[] = "# Written by batchd: Azure Batch admin "
	    "task users may use sudo.\n%" BD_TASK_USER_ADMIN_GROUP
	    " ALL=(ALL) NOPASSWD:ALL\n";
	struct stat st;
	int rc;

	if (stat("/etc/sudoers.d", &st) == -1 || !S_ISDIR(st.st_mode) ||
	    access(BD_TASK_USER_SUDOERS, F_OK) == 0)
		return;
	if ((rc = bd_write_file_atomic(BD_TASK_USER_SUDOERS, rule,
	    sizeof(rule) - 1, 0440)) < 0)
		log_warnx("task users: %s: %s", BD_TASK_USER_SUDOERS,
		    strerror(-rc));
}

/* As root: the groups, the pool users and the configured accounts. */
static int
task_user_setup(struct bd_task_users *u, char **cause)
{
	gid_t grp, admin_grp;
	int rc;

	if ((rc = task_user_group(BD_TASK_USER_GROUP, -1, &grp, cause)) < 0 ||
	    (rc = task_user_group(BD_TASK_USER_ADMIN_GROUP, -1, &admin_grp,
	    cause)) < 0 ||
	    (rc = task_user_make(u->pool_non_admin, -1, grp, false,
	    cause)) < 0 ||
	    (rc = task_user_make(u->pool_admin, -1, grp, true, cause)) < 0)
		return rc;
	for (size_t i = 0; i < u->n_accounts; i++) {
		const struct bd_config_account *a = &u->accounts[i];
		gid_t gid;

		if (a->system_user != NULL) {
			if (getpwnam(a->system_user) == NULL) {
				*cause = xasprintf("users.accounts.%s: "
				    "systemUser %s does not exist", a->name,
				    a->system_user);
				return -ENOENT;
			}
			continue;
		}
		if (getgrgid((gid_t)a->gid) != NULL)
			gid = (gid_t)a->gid;
		else if ((rc = task_user_group(a->name, a->gid, &gid,
		    cause)) < 0)
			return rc;
		if ((rc = task_user_make(a->name, a->uid, gid,
		    a->elevation == BD_ELEVATION_ADMIN, cause)) < 0)
			return rc;
	}
	task_user_sudoers();
	return 0;
}

int
bd_task_users_new(const struct bd_task_users_options *o,
    struct bd_task_users **out, char **cause)
{
	static bool said;
	struct bd_task_users *u = xcalloc(1, sizeof(*u));
	struct passwd *pw;
	int rc;

	u->pool_non_admin = xstrdup(o->pool_non_admin != NULL ?
	    o->pool_non_admin : "_azbatch");
	u->pool_admin = xstrdup(o->pool_admin != NULL ? o->pool_admin :
	    "_azbatchadmin");
	u->accounts = o->accounts;
	u->n_accounts = o->n_accounts;
	if (geteuid() != 0) {
		u->self = true;
		pw = getpwuid(geteuid());
		u->self_name = xstrdup(pw != NULL ? pw->pw_name : "batchd");
		if (!said)
			log_info("task users: batchd runs as %s (uid %u), not "
			    "root: every task runs as %s, whatever its "
			    "userIdentity", u->self_name,
			    (unsigned)geteuid(), u->self_name);
		said = true;
		*out = u;
		return 0;
	}
	if ((rc = task_user_setup(u, cause)) < 0) {
		bd_task_users_free(u);
		return rc;
	}
	if (o->node_root != NULL && access(o->node_root, F_OK) == 0) {
		struct bd_task_account *a = NULL;
		struct bd_task_spec probe = { .kind = BD_TASK_KIND_TASK };
		char *why = NULL;
		if (bd_task_users_acquire(u, &probe, &a, &why) == 0 &&
		    bd_file_access_can_read(a->process, o->node_root) == 0)
			log_warnx("task users: %s cannot reach the node root "
			    "%s: tasks will not start; let others search "
			    "its parent directories (chmod o+x)", a->name,
			    o->node_root);
		bd_task_users_release(u, a, NULL);
		free(why);
	}
	*out = u;
	return 0;
}

void
bd_task_users_free(struct bd_task_users *u)
{
	if (u == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		free(u->pool[k].held);
		free(u->pool[k].made);
	}
	while (u->cache != NULL) {
		struct task_user_cached *next = u->cache->next;
		free(u->cache->name);
		free(u->cache);
		u->cache = next;
	}
	free(u->self_name);
	free(u->pool_non_admin);
	free(u->pool_admin);
	free(u);
}

bool
bd_task_users_as_self(const struct bd_task_users *u)
{
	return u == NULL || u->self;
}

const char *
bd_task_user_identity_label(const struct bd_user_identity *ui)
{
	bool admin = ui->elevation == BD_ELEVATION_ADMIN;

	if (ui->username != NULL)
		return ui->username;
	if (ui->scope == BD_AUTO_USER_SCOPE_TASK)
		return admin ? "TaskAdmin" : "TaskNonAdmin";
	return admin ? "PoolAdmin" : "PoolNonAdmin";
}

/*
 * Locks task-scope user name for this process (several batchd on one
 * machine, as in tests, share the users): an open descriptor holding the
 * lock, -1 when another process holds it, or -2 when locks cannot be
 * taken here (then the index is used unlocked).
 */
static int
task_user_lock(const char *name)
{
	char *path;
	int fd;

	if (bd_mkdir_p(BD_TASK_USER_LOCK_DIR, 0700) < 0)
		return -2;
	path = xasprintf("%s/%s.lock", BD_TASK_USER_LOCK_DIR, name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	free(path);
	if (fd == -1)
		return -2;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int busy = errno == EWOULDBLOCK;
		close(fd);
		return busy ? -1 : -2;
	}
	return fd;
}

/*
 * Takes a free task-scope user of kind admin for task (the start task has
 * one of its own), creating it on first use.  0 with a's name set, or a
 * negative errno with *cause.
 */
static int
task_user_take(struct bd_task_users *u, const struct bd_task_spec *task,
    bool admin, struct bd_task_account *a, char **cause)
{
	struct task_user_pool *p = &u->pool[admin];
	const char *prefix = admin ? BD_TASK_USER_TASK_ADMIN_PREFIX :
	    BD_TASK_USER_TASK_PREFIX;
	struct group *gr;
	char *name;
	bool *made;
	size_t i = 0;
	int rc;

	if (task->kind == BD_TASK_KIND_START) {
		name = xasprintf("%sstart", prefix);
		made = &p->start_made;
		a->pool_index = -1;
	} else {
		for (;;) {
			while (i < p->n && p->held[i])
				i++;
			if (i == TASK_USER_MAX_POOL)
				break;
			name = xasprintf("%s%zu", prefix, i + 1);
			a->lock_fd = task_user_lock(name);
			free(name);
			if (a->lock_fd != -1)
				break;
			i++;	/* another batchd's task has it */
		}
		if (a->lock_fd < 0)
			a->lock_fd = -1;
		if (i == TASK_USER_MAX_POOL) {
			*cause = xasprintf("more than %d task-scope users in "
			    "use", TASK_USER_MAX_POOL);
			return -EBUSY;
		}
		while (i >= p->n) {
			p->held = xreallocarray(p->held, p->n + 1,
			    sizeof(*p->held));
			p->made = xreallocarray(p->made, p->n + 1,
			    sizeof(*p->made));
			p->held[p->n] = p->made[p->n] = false;
			p->n++;
		}
		name = xasprintf("%s%zu", prefix, i + 1);
		made = &p->made[i];
		a->pool_index = (int)i;
	}
	rc = 0;
	if (!*made && (gr = getgrnam(BD_TASK_USER_GROUP)) == NULL) {
		*cause = xasprintf("group %s does not exist",
		    BD_TASK_USER_GROUP);
		rc = -ENOENT;
	} else if (!*made && (rc = task_user_make(name, -1, gr->gr_gid, admin,
	    cause)) == 0)
		*made = true;
	if (rc == 0)
		rc = task_user_resolve(u, name, admin, a, cause);
	free(name);
	if (rc == 0 && a->pool_index >= 0)
		p->held[a->pool_index] = true;
	if (rc < 0 && a->lock_fd >= 0) {
		close(a->lock_fd);
		a->lock_fd = -1;
	}
	return rc;
}

int
bd_task_users_acquire(struct bd_task_users *u, const struct bd_task_spec *task,
    struct bd_task_account **out, char **cause)
{
	const struct bd_user_identity *ui = &task->user_identity;
	const struct bd_config_account *ca;
	struct bd_task_account *a = xcalloc(1, sizeof(*a));
	bool admin = ui->elevation == BD_ELEVATION_ADMIN;
	struct passwd *pw;
	int rc;

	a->pool_index = -1;
	a->lock_fd = -1;
	a->identity = xstrdup(bd_task_user_identity_label(ui));
	if (bd_task_users_as_self(u)) {
		pw = u == NULL ? getpwuid(geteuid()) : NULL;
		a->name = xstrdup(u != NULL ? u->self_name : pw != NULL ?
		    pw->pw_name : "batchd");
		*out = a;
		return 0;
	}
	if (ui->username != NULL) {
		if ((ca = task_user_account(u, ui->username)) == NULL) {
			*cause = xasprintf("userIdentity.username %s is not an "
			    "account of this node (users.accounts in its "
			    "configuration)", ui->username);
			rc = -ENOENT;
		} else
			rc = task_user_resolve(u, ca->system_user != NULL ?
			    ca->system_user : ca->name,
			    ca->elevation == BD_ELEVATION_ADMIN, a, cause);
	} else if (ui->scope == BD_AUTO_USER_SCOPE_TASK) {
		rc = task_user_take(u, task, admin, a, cause);
		a->admin = admin;
		if (rc == 0)
			a->pool_index = a->pool_index >= 0 ? a->pool_index :
			    -2; /* the start task's: swept, not pooled */
	} else
		rc = task_user_resolve(u, admin ? u->pool_admin :
		    u->pool_non_admin, admin, a, cause);
	if (rc < 0) {
		free(a->name);
		free(a->groups);
		free(a->identity);
		free(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* Kills every process whose uid is uid (from a child that takes it on). */
static void
task_user_sweep(uid_t uid, gid_t gid)
{
	pid_t pid;
	int status;

	if ((pid = fork()) == -1) {
		log_warn("task users: cannot end the processes of uid %u",
		    (unsigned)uid);
		return;
	}
	if (pid == 0) {
		/* As the user, kill(-1) reaches exactly its processes. */
		if (setgroups(0, NULL) == 0 && setgid(gid) == 0 &&
		    setuid(uid) == 0)
			kill(-1, SIGKILL);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
}

void
bd_task_users_release(struct bd_task_users *u, struct bd_task_account *a,
    const char *task_dir)
{
	if (a == NULL)
		return;
	if (a->process != NULL && a->pool_index != -1) {
		task_user_sweep(a->id.uid, a->id.gid);
		if (a->pool_index >= 0 && task_dir != NULL &&
		    bd_task_users_reclaim_dir(a, task_dir) < 0)
			log_warn("task users: %s: cannot take %s back",
			    a->name, task_dir);
		if (a->pool_index >= 0 && u != NULL &&
		    (size_t)a->pool_index < u->pool[a->admin].n)
			u->pool[a->admin].held[a->pool_index] = false;
	}
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	free(a->name);
	free(a->identity);
	free(a->groups);
	free(a);
}

int
bd_task_users_reclaim_dir(const struct bd_task_account *a, const char *dir)
{
	int fd, rc = 0;

	if (a == NULL || a->process == NULL)
		return 0;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (fchown(fd, 0, 0) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

int
bd_task_users_own_dir(const struct bd_task_account *a, const char *task_dir,
    enum bd_task_kind kind, bool walk)
{
	static const char *const subdirs[] = { "", "wd", "certs" };
	mode_t mode = kind == BD_TASK_KIND_START ||
	    kind == BD_TASK_KIND_JOB_PREPARATION ? 0755 : 0700;
	int rc;

	if (a == NULL || a->process == NULL)
		return 0;
	if (walk && (rc = bd_file_access_chown_tree(task_dir, a->id.uid,
	    a->id.gid)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		char *p = bd_path_join(task_dir, subdirs[i]);
		int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC), err = errno;

		free(p);
		if (fd == -1 && i == 0 && !walk)
			return -err;	/* the walk would have said so too */
		if (fd == -1)
			continue;
		if ((!walk && fchown(fd, a->id.uid, a->id.gid) == -1) ||
		    fchmod(fd, mode) == -1)
			rc = -errno;
		close(fd);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Makes sure the task user cannot read or search dir: removes others'
 * access (with a warning) when it can.  0 or -EACCES with *cause.
 */
static int
task_user_close_dir(const struct bd_task_account *probe, const char *what,
    const char *dir, char **cause)
{
	struct stat st;

	if (stat(dir, &st) == -1 || bd_file_access_can_read(probe->process,
	    dir) != 1)
		return 0;
	if (chmod(dir, st.st_mode & 07770 & ~(mode_t)07) == 0)
		log_warnx("task users: %s %s was open to other users; "
		    "removed their access (chmod o-rwx)", what, dir);
	if (bd_file_access_can_read(probe->process, dir) == 1) {
		*cause = xasprintf("%s %s can be read by task user %s "
		    "(through its group); make it private to batchd "
		    "(chmod 700)", what, dir, probe->name);
		return -EACCES;
	}
	return 0;
}

int
bd_task_users_guard(struct bd_task_users *u, const struct bd_config *c,
    bool dirs, char **cause)
{
	struct bd_task_spec probe = { .kind = BD_TASK_KIND_TASK };
	struct bd_task_account *a = NULL;
	int rc = 0;

	if (bd_task_users_as_self(u))
		return 0;
	if ((rc = bd_task_users_acquire(u, &probe, &a, cause)) < 0)
		return rc;
	if (c->path != NULL && c->storage.kind != BD_CONFIG_STORAGE_LOCAL &&
	    bd_file_access_can_read(a->process, c->path) == 1) {
		*cause = xasprintf("the configuration %s holds storage "
		    "credentials and task user %s can read it; make it "
		    "readable by root only (chmod 600)", c->path, a->name);
		rc = -EACCES;
	}
	if (rc == 0 && dirs && c->state_dir != NULL) {
		/* Private itself, its parents as they would be anyway. */
		char *parent = bd_path_dirname(c->state_dir);
		if ((rc = bd_mkdir_p(parent, 0755)) == 0 &&
		    mkdir(c->state_dir, 0700) == -1 && errno != EEXIST)
			rc = -errno;
		free(parent);
		if (rc < 0)
			*cause = xasprintf("stateDir %s: %s", c->state_dir,
			    strerror(-rc));
		else
			rc = task_user_close_dir(a, "stateDir", c->state_dir,
			    cause);
	}
	if (rc == 0 && dirs && c->spool_dir != NULL &&
	    c->storage.kind == BD_CONFIG_STORAGE_LOCAL)
		rc = task_user_close_dir(a, "spoolDir", c->spool_dir, cause);
	bd_task_users_release(u, a, NULL);
	return rc;
}
