/* SPDX-License-Identifier: MIT */
/*
 * Task users as root, with real accounts: the pool auto-users and the
 * configured accounts of this test have names of their own (_bdtest_*,
 * removed at the end); the auto-users' groups and the task-scope pool
 * (_azbatchtask_<n>) are the real ones, which batchd would make anyway.
 * Run as another user, the same calls give batchd's own user.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fsutil.h"
#include "task_user.h"
#include "unit.h"
#include "xmalloc.h"

#define POOL_USER	"_bdtest_pool"
#define ADMIN_USER	"_bdtest_admin"
#define ACCT		"_bdtest_acct"
#define ACCT_UID	61001

static struct bd_config_account accounts[2];
static struct bd_task_users *users;
static char *dir;

static bool
in_group(const struct bd_task_account *a, const char *group)
{
	struct group *gr = getgrnam(group);

	ASSERT_NOT_NULL(gr);
	for (size_t i = 0; i < a->id.ngroups; i++)
		if (a->id.groups[i] == gr->gr_gid)
			return true;
	return false;
}

static struct bd_task_account *
acquire(const struct bd_task_spec *t)
{
	struct bd_task_account *a = NULL;
	char *cause = NULL;

	if (bd_task_users_acquire(users, t, &a, &cause) != 0)
		UNIT_FAIL("acquire: %s", cause);
	ASSERT_NOT_NULL(a->process);
	return a;
}

TEST(labels)
{
	struct bd_user_identity ui = { 0 };

	ASSERT_STR_EQ(bd_task_user_identity_label(&ui), "PoolNonAdmin");
	ui.elevation = BD_ELEVATION_ADMIN;
	ASSERT_STR_EQ(bd_task_user_identity_label(&ui), "PoolAdmin");
	ui.scope = BD_AUTO_USER_SCOPE_TASK;
	ASSERT_STR_EQ(bd_task_user_identity_label(&ui), "TaskAdmin");
	ui.elevation = BD_ELEVATION_NONADMIN;
	ASSERT_STR_EQ(bd_task_user_identity_label(&ui), "TaskNonAdmin");
	ui.username = (char *)(uintptr_t)"render";
	ASSERT_STR_EQ(bd_task_user_identity_label(&ui), "render");
}

TEST(pool_users)
{
	struct bd_task_spec t = { .kind = BD_TASK_KIND_TASK };
	struct bd_task_account *a = acquire(&t);
	struct passwd *pw = getpwnam(POOL_USER);

	ASSERT_NOT_NULL(pw);
	ASSERT_STR_EQ(a->name, POOL_USER);
	ASSERT_STR_EQ(a->identity, "PoolNonAdmin");
	ASSERT_INT_EQ(a->id.uid, pw->pw_uid);
	ASSERT_INT_EQ(a->id.gid, getgrnam(BD_TASK_USER_GROUP)->gr_gid);
	ASSERT(!in_group(a, BD_TASK_USER_ADMIN_GROUP));
	bd_task_users_release(users, a, NULL);

	t.user_identity.elevation = BD_ELEVATION_ADMIN;
	a = acquire(&t);
	ASSERT_STR_EQ(a->name, ADMIN_USER);
	ASSERT_STR_EQ(a->identity, "PoolAdmin");
	ASSERT(in_group(a, BD_TASK_USER_ADMIN_GROUP));
	bd_task_users_release(users, a, NULL);
}

TEST(task_scope_pool)
{
	struct bd_task_spec t = { .kind = BD_TASK_KIND_TASK };
	struct bd_task_account *a, *b, *c;

	t.user_identity.scope = BD_AUTO_USER_SCOPE_TASK;
	a = acquire(&t);
	b = acquire(&t);
	ASSERT_STR_EQ(a->name, BD_TASK_USER_TASK_PREFIX "1");
	ASSERT_STR_EQ(b->name, BD_TASK_USER_TASK_PREFIX "2");
	ASSERT_STR_EQ(a->identity, "TaskNonAdmin");
	ASSERT(a->id.uid != b->id.uid);
	ASSERT_NOT_NULL(getpwnam(BD_TASK_USER_TASK_PREFIX "2"));
	bd_task_users_release(users, a, NULL);
	c = acquire(&t);	/* the freed one comes back */
	ASSERT_STR_EQ(c->name, BD_TASK_USER_TASK_PREFIX "1");
	bd_task_users_release(users, b, NULL);
	bd_task_users_release(users, c, NULL);

	t.user_identity.elevation = BD_ELEVATION_ADMIN;
	a = acquire(&t);
	ASSERT_STR_EQ(a->name, BD_TASK_USER_TASK_ADMIN_PREFIX "1");
	ASSERT_STR_EQ(a->identity, "TaskAdmin");
	ASSERT(in_group(a, BD_TASK_USER_ADMIN_GROUP));
	bd_task_users_release(users, a, NULL);

	t.kind = BD_TASK_KIND_START;
	t.user_identity.elevation = BD_ELEVATION_NONADMIN;
	a = acquire(&t);
	ASSERT_STR_EQ(a->name, BD_TASK_USER_TASK_PREFIX "start");
	bd_task_users_release(users, a, NULL);
}

TEST(task_scope_across_processes)
{
	struct bd_task_spec t = { .kind = BD_TASK_KIND_TASK };
	struct bd_task_account *a;
	int ready[2], done[2], status;
	char c;
	pid_t pid;

	t.user_identity.scope = BD_AUTO_USER_SCOPE_TASK;
	ASSERT_INT_EQ(pipe(ready), 0);
	ASSERT_INT_EQ(pipe(done), 0);
	/* Another batchd (a child with its own pool) holds user 1... */
	if ((pid = fork()) == 0) {
		struct bd_task_account *b = NULL;
		char *cause = NULL;
		if (bd_task_users_acquire(users, &t, &b, &cause) != 0 ||
		    strcmp(b->name, BD_TASK_USER_TASK_PREFIX "1") != 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1 || read(done[0], &c, 1) != 1)
			_exit(2);
		_exit(0);	/* its lock goes with it */
	}
	ASSERT_INT_EQ(read(ready[0], &c, 1), 1);
	/* ...so this one gets user 2. */
	a = acquire(&t);
	ASSERT_STR_EQ(a->name, BD_TASK_USER_TASK_PREFIX "2");
	ASSERT_INT_EQ(write(done[1], "d", 1), 1);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	bd_task_users_release(users, a, NULL);
	a = acquire(&t);
	ASSERT_STR_EQ(a->name, BD_TASK_USER_TASK_PREFIX "1");
	bd_task_users_release(users, a, NULL);
	close(ready[0]);
	close(ready[1]);
	close(done[0]);
	close(done[1]);
}

TEST(release_ends_processes_and_closes_the_dir)
{
	struct bd_task_spec t = { .kind = BD_TASK_KIND_TASK };
	struct bd_task_account *a;
	char *task_dir = bd_path_join(dir, "released");
	struct stat st;
	int status;
	pid_t pid;

	t.user_identity.scope = BD_AUTO_USER_SCOPE_TASK;
	a = acquire(&t);
	ASSERT_INT_EQ(bd_mkdir_p(task_dir, 0755), 0);
	ASSERT_INT_EQ(bd_task_users_own_dir(a, task_dir, BD_TASK_KIND_TASK,
	    true), 0);
	ASSERT_INT_EQ(stat(task_dir, &st), 0);
	ASSERT_INT_EQ(st.st_uid, a->id.uid);
	/* A process the task left behind, as its user. */
	if ((pid = fork()) == 0) {
		if (setgid(a->id.gid) == 0 && setuid(a->id.uid) == 0)
			pause();
		_exit(3);
	}
	ASSERT(pid > 0);
	bd_task_users_release(users, a, task_dir);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFSIGNALED(status));
	ASSERT_INT_EQ(WTERMSIG(status), SIGKILL);
	ASSERT_INT_EQ(stat(task_dir, &st), 0);
	ASSERT_INT_EQ(st.st_uid, 0);
	free(task_dir);
}

TEST(accounts)
{
	struct bd_task_spec t = { .kind = BD_TASK_KIND_TASK };
	struct bd_task_account *a = NULL;
	struct passwd *pw = getpwnam("nobody");
	char *cause = NULL;

	t.user_identity.username = (char *)(uintptr_t)ACCT;
	a = acquire(&t);
	ASSERT_STR_EQ(a->name, ACCT);
	ASSERT_STR_EQ(a->identity, ACCT);
	ASSERT_INT_EQ(a->id.uid, ACCT_UID);
	ASSERT_INT_EQ(a->id.gid, ACCT_UID);
	ASSERT(in_group(a, BD_TASK_USER_ADMIN_GROUP));
	bd_task_users_release(users, a, NULL);

	t.user_identity.username = (char *)(uintptr_t)"sys";
	a = acquire(&t);
	ASSERT_STR_EQ(a->name, "nobody");
	ASSERT_STR_EQ(a->identity, "sys");
	ASSERT_INT_EQ(a->id.uid, pw->pw_uid);
	bd_task_users_release(users, a, NULL);

	t.user_identity.username = (char *)(uintptr_t)"nosuch";
	a = NULL;
	ASSERT_INT_EQ(bd_task_users_acquire(users, &t, &a, &cause), -ENOENT);
	ASSERT_NULL(a);
	ASSERT_STR_CONTAINS(cause, "userIdentity.username nosuch");
	free(cause);
}

/* Without the walk only the three directories change hands. */
TEST(own_dir_without_walk)
{
	struct bd_task_spec t = { .kind = BD_TASK_KIND_TASK };
	struct bd_task_account *a = acquire(&t);
	char *task = bd_path_join(dir, "fresh"), *wd = bd_path_join(task, "wd");
	char *certs = bd_path_join(task, "certs"), *f = bd_path_join(wd, "f");
	char *gone = bd_path_join(dir, "gone");
	const char *const dirs[] = { task, wd, certs };
	struct stat st;

	ASSERT_INT_EQ(bd_mkdir_p(wd, 0775), 0);
	ASSERT_INT_EQ(bd_mkdir_p(certs, 0775), 0);
	ASSERT_INT_EQ(bd_write_file_atomic(f, "x", 1, 0644), 0);
	ASSERT_INT_EQ(bd_task_users_own_dir(a, task, BD_TASK_KIND_TASK, false),
	    0);
	for (size_t i = 0; i < 3; i++) {
		ASSERT_INT_EQ(stat(dirs[i], &st), 0);
		ASSERT_INT_EQ(st.st_uid, a->id.uid);
		ASSERT_INT_EQ(st.st_gid, a->id.gid);
		ASSERT_INT_EQ(st.st_mode & 07777, 0700);
	}
	ASSERT_INT_EQ(stat(f, &st), 0);
	ASSERT_INT_EQ(st.st_uid, 0);	/* not walked into */
	ASSERT_INT_EQ(bd_task_users_own_dir(a, gone, BD_TASK_KIND_TASK, false),
	    -ENOENT);
	bd_task_users_release(users, a, NULL);
	free(task);
	free(wd);
	free(certs);
	free(f);
	free(gone);
}

TEST(own_dir_modes)
{
	struct bd_task_spec t = { .kind = BD_TASK_KIND_TASK };
	struct bd_task_account *a = acquire(&t);
	char *task = bd_path_join(dir, "task"), *wd = bd_path_join(task, "wd");
	char *prep = bd_path_join(dir, "prep"), *f = bd_path_join(wd, "f");
	struct stat st;

	ASSERT_INT_EQ(bd_mkdir_p(wd, 0775), 0);
	ASSERT_INT_EQ(bd_write_file_atomic(f, "x", 1, 0644), 0);
	ASSERT_INT_EQ(bd_mkdir_p(prep, 0775), 0);
	ASSERT_INT_EQ(bd_task_users_own_dir(a, task, BD_TASK_KIND_TASK, true),
	    0);
	ASSERT_INT_EQ(bd_task_users_own_dir(a, prep,
	    BD_TASK_KIND_JOB_PREPARATION, true), 0);
	ASSERT_INT_EQ(stat(task, &st), 0);
	ASSERT_INT_EQ(st.st_uid, a->id.uid);
	ASSERT_INT_EQ(st.st_mode & 07777, 0700);
	ASSERT_INT_EQ(stat(wd, &st), 0);
	ASSERT_INT_EQ(st.st_mode & 07777, 0700);
	ASSERT_INT_EQ(stat(f, &st), 0);
	ASSERT_INT_EQ(st.st_uid, a->id.uid);
	ASSERT_INT_EQ(stat(prep, &st), 0);
	ASSERT_INT_EQ(st.st_mode & 07777, 0755);
	ASSERT_INT_EQ(bd_task_users_reclaim_dir(a, wd), 0);
	ASSERT_INT_EQ(stat(wd, &st), 0);
	ASSERT_INT_EQ(st.st_uid, 0);
	bd_task_users_release(users, a, NULL);
	free(task);
	free(wd);
	free(prep);
	free(f);
}

/* Parses a configuration with storage credentials, named path. */
static struct bd_config *
secret_config(const char *path, const char *state)
{
	char *text = xasprintf("{\"storage\": {\"accountName\": \"acct\", "
	    "\"accountKey\": \"c2VjcmV0\"}, \"stateDir\": \"%s\"}", state);
	struct bd_config *c = NULL;
	char *cause = NULL;

	ASSERT_INT_EQ(bd_write_file_atomic(path, text, strlen(text), 0644), 0);
	if (bd_config_parse(text, strlen(text), path, &c, &cause) != 0)
		UNIT_FAIL("config: %s", cause);
	free(text);
	return c;
}

TEST(guard)
{
	char *path = bd_path_join(dir, "batchd.json");
	char *state = bd_path_join(dir, "state");
	struct bd_config *c = secret_config(path, state);
	char *cause = NULL;
	struct stat st;

	/* World-readable with a key: refused. */
	ASSERT_INT_EQ(bd_task_users_guard(users, c, true, &cause), -EACCES);
	ASSERT_STR_CONTAINS(cause, "holds storage credentials");
	ASSERT_STR_CONTAINS(cause, POOL_USER);
	free(cause);
	cause = NULL;
	/* Private: fine; the state directory is made private too. */
	ASSERT_INT_EQ(chmod(path, 0600), 0);
	ASSERT_INT_EQ(bd_mkdir_p(state, 0755), 0);
	ASSERT_INT_EQ(chmod(state, 0755), 0);
	ASSERT_INT_EQ(bd_task_users_guard(users, c, true, &cause), 0);
	ASSERT_INT_EQ(stat(state, &st), 0);
	ASSERT_INT_EQ(st.st_mode & 07, 0);
	bd_config_free(c);
	free(path);
	free(state);
}

TEST(not_root_runs_as_itself)
{
	struct passwd *pw = getpwnam("nobody");
	int status;
	pid_t pid;

	if ((pid = fork()) == 0) {
		struct bd_task_users_options o = { 0 };
		struct bd_task_spec t = { .kind = BD_TASK_KIND_TASK };
		struct bd_task_users *u = NULL;
		struct bd_task_account *a = NULL;
		char *cause = NULL;

		t.user_identity.scope = BD_AUTO_USER_SCOPE_TASK;
		if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
			_exit(2);
		if (bd_task_users_new(&o, &u, &cause) != 0 ||
		    !bd_task_users_as_self(u) ||
		    bd_task_users_acquire(u, &t, &a, &cause) != 0 ||
		    a->process != NULL || strcmp(a->name, "nobody") != 0 ||
		    strcmp(a->identity, "TaskNonAdmin") != 0)
			_exit(1);
		bd_task_users_release(u, a, NULL);
		bd_task_users_free(u);
		_exit(0);
	}
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_INT_EQ(WEXITSTATUS(status), 0);
}

/* Removes the accounts of this test (not the real auto-users). */
static void
cleanup(void)
{
	static const char *const names[] = { POOL_USER, ADMIN_USER, ACCT };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *cmd = xasprintf("userdel %s 2>/dev/null", names[i]);
		if (system(cmd) == -1)
			perror("userdel");
		free(cmd);
	}
	if (system("groupdel " ACCT " 2>/dev/null") == -1)
		perror("groupdel");
}

int
main(void)
{
	struct bd_task_users_options o = {
		.pool_non_admin = POOL_USER,
		.pool_admin = ADMIN_USER,
		.accounts = accounts,
		.n_accounts = 2,
	};
	char *cause = NULL;

	RUN(labels);
	if (geteuid() != 0) {
		fprintf(stderr, "skipped: the rest needs root\n");
		return 0;
	}
	cleanup();
	accounts[0].name = xstrdup(ACCT);
	accounts[0].uid = accounts[0].gid = ACCT_UID;
	accounts[0].elevation = BD_ELEVATION_ADMIN;
	accounts[1].name = xstrdup("sys");
	accounts[1].system_user = xstrdup("nobody");
	accounts[1].uid = accounts[1].gid = -1;
	if (bd_task_users_new(&o, &users, &cause) != 0)
		UNIT_FAIL("new: %s", cause);
	dir = xstrdup("/tmp/bd-task-user-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(dir));
	ASSERT_INT_EQ(chmod(dir, 0755), 0);
	RUN(pool_users);
	RUN(task_scope_pool);
	RUN(task_scope_across_processes);
	RUN(release_ends_processes_and_closes_the_dir);
	RUN(accounts);
	RUN(own_dir_modes);
	RUN(own_dir_without_walk);
	RUN(guard);
	RUN(not_root_runs_as_itself);
	bd_task_users_free(users);
	ASSERT_INT_EQ(bd_rm_rf(dir), 0);
	free(dir);
	for (int i = 0; i < 2; i++) {
		free(accounts[i].name);
		free(accounts[i].system_user);
	}
	cleanup();
	return 0;
}
