/* SPDX-License-Identifier: MIT */
/*
 * Opening files with a task user's rights, as root, against real files
 * and the real user nobody: a file the user may not read stays closed,
 * also through a symlink; the switch holds for one thread only and is
 * undone by leave; chown_tree never follows a symlink out of the tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_access.h"
#include "fsutil.h"
#include "unit.h"
#include "xmalloc.h"

static char *dir;	/* 0755, so nobody can reach what is inside */
static struct bd_process_identity nobody;
static gid_t nobody_groups[1];

static char *
make(const char *name, const char *data, mode_t mode)
{
	char *p = bd_path_join(dir, name);

	ASSERT_INT_EQ(bd_write_file_atomic(p, data, strlen(data), mode), 0);
	return p;
}

TEST(null_identity_is_batchd)
{
	char *secret = make("secret0", "s", 0600);
	int fd = bd_file_access_open(NULL, secret, O_RDONLY, 0);

	ASSERT(fd >= 0);
	close(fd);
	ASSERT_INT_EQ(bd_file_access_can_read(NULL, secret), 1);
	free(secret);
}

TEST(denied_and_allowed)
{
	char *secret = make("secret", "root only", 0600);
	char *open_ = make("open", "anyone", 0644);
	char *link = bd_path_join(dir, "link-to-secret");
	int fd;

	ASSERT_INT_EQ(symlink(secret, link), 0);
	ASSERT_INT_EQ(bd_file_access_open(&nobody, secret, O_RDONLY, 0),
	    -EACCES);
	ASSERT_INT_EQ(bd_file_access_open(&nobody, link, O_RDONLY, 0),
	    -EACCES);
	ASSERT_INT_EQ(bd_file_access_open(&nobody, "/etc/shadow", O_RDONLY,
	    0), -EACCES);
	fd = bd_file_access_open(&nobody, open_, O_RDONLY, 0);
	ASSERT(fd >= 0);
	close(fd);
	ASSERT_INT_EQ(bd_file_access_can_read(&nobody, secret), 0);
	ASSERT_INT_EQ(bd_file_access_can_read(&nobody, open_), 1);
	ASSERT_INT_EQ(bd_file_access_can_read(&nobody, "/etc/shadow"), 0);
	/* Back with root's rights afterwards. */
	ASSERT_INT_EQ(setfsuid((uid_t)-1), 0);
	fd = open(secret, O_RDONLY);
	ASSERT(fd >= 0);
	close(fd);
	free(secret);
	free(open_);
	free(link);
}

TEST(files_created_belong_to_the_user)
{
	char *sub = bd_path_join(dir, "userdir");
	char *file = bd_path_join(sub, "made");
	struct stat st;
	int fd;

	ASSERT_INT_EQ(mkdir(sub, 0755), 0);
	ASSERT_INT_EQ(chown(sub, nobody.uid, nobody.gid), 0);
	fd = bd_file_access_open(&nobody, file, O_WRONLY | O_CREAT, 0644);
	ASSERT(fd >= 0);
	close(fd);
	ASSERT_INT_EQ(stat(file, &st), 0);
	ASSERT_INT_EQ(st.st_uid, nobody.uid);
	/* Not in a directory of root's. */
	char *rootfile = bd_path_join(dir, "not-yours");
	ASSERT_INT_EQ(bd_file_access_open(&nobody, rootfile, O_WRONLY |
	    O_CREAT, 0644), -EACCES);
	free(rootfile);
	free(file);
	free(sub);
}

TEST(directories)
{
	char *closed = bd_path_join(dir, "closed");
	char *searchable = bd_path_join(dir, "searchable");

	ASSERT_INT_EQ(mkdir(closed, 0700), 0);
	ASSERT_INT_EQ(mkdir(searchable, 0711), 0);
	ASSERT_INT_EQ(bd_file_access_can_read(&nobody, closed), 0);
	ASSERT_INT_EQ(bd_file_access_can_read(&nobody, searchable), 1);
	ASSERT_INT_EQ(bd_file_access_can_read(&nobody, dir), 1);
	free(closed);
	free(searchable);
}

struct other {
	const char *path;
	int go[2];	/* a pipe: the thread opens once it is written to */
	int fd;
};

static void *
other_thread(void *arg)
{
	struct other *o = arg;
	char c;

	if (read(o->go[0], &c, 1) == 1)
		o->fd = open(o->path, O_RDONLY);
	return NULL;
}

TEST(per_thread)
{
	char *secret = make("secret2", "root only", 0600);
	struct bd_file_access_saved saved;
	struct other o = { secret, { -1, -1 }, -1 };
	pthread_t t;

	/* A thread started before the switch (new ones inherit it)... */
	ASSERT_INT_EQ(pipe(o.go), 0);
	ASSERT_INT_EQ(pthread_create(&t, NULL, other_thread, &o), 0);
	ASSERT_INT_EQ(bd_file_access_enter(&nobody, &saved), 0);
	ASSERT_INT_EQ(open(secret, O_RDONLY), -1);
	ASSERT_INT_EQ(errno, EACCES);
	/* ...keeps root's rights meanwhile. */
	ASSERT_INT_EQ(write(o.go[1], "x", 1), 1);
	ASSERT_INT_EQ(pthread_join(t, NULL), 0);
	close(o.go[0]);
	close(o.go[1]);
	ASSERT(o.fd >= 0);
	close(o.fd);
	bd_file_access_leave(&saved);
	int fd = open(secret, O_RDONLY);
	ASSERT(fd >= 0);
	close(fd);
	free(secret);
}

TEST(chown_tree)
{
	char *tree = bd_path_join(dir, "tree");
	char *sub = bd_path_join(tree, "a/b");
	char *file = bd_path_join(tree, "a/b/f");
	char *outside = make("outside", "x", 0600);
	char *link = bd_path_join(tree, "a/link");
	char *dlink = bd_path_join(tree, "dirlink");
	struct stat st;

	ASSERT_INT_EQ(bd_mkdir_p(sub, 0755), 0);
	ASSERT_INT_EQ(bd_write_file_atomic(file, "f", 1, 0644), 0);
	ASSERT_INT_EQ(symlink(outside, link), 0);
	ASSERT_INT_EQ(symlink(dir, dlink), 0);
	ASSERT_INT_EQ(bd_file_access_chown_tree(tree, nobody.uid, nobody.gid),
	    0);
	ASSERT_INT_EQ(stat(tree, &st), 0);
	ASSERT_INT_EQ(st.st_uid, nobody.uid);
	ASSERT_INT_EQ(stat(sub, &st), 0);
	ASSERT_INT_EQ(st.st_uid, nobody.uid);
	ASSERT_INT_EQ(stat(file, &st), 0);
	ASSERT_INT_EQ(st.st_uid, nobody.uid);
	ASSERT_INT_EQ(lstat(link, &st), 0);
	ASSERT_INT_EQ(st.st_uid, nobody.uid);	/* the link itself */
	ASSERT_INT_EQ(stat(outside, &st), 0);
	ASSERT_INT_EQ(st.st_uid, 0);		/* not what it points at */
	ASSERT_INT_EQ(stat(dir, &st), 0);
	ASSERT_INT_EQ(st.st_uid, 0);
	ASSERT_INT_EQ(bd_file_access_chown_tree(link, 0, 0), -ENOTDIR);
	free(tree);
	free(sub);
	free(file);
	free(outside);
	free(link);
	free(dlink);
}

int
main(void)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		fprintf(stderr, "skipped: needs root\n");
		return 77;
	}
	if ((pw = getpwnam("nobody")) == NULL) {
		fprintf(stderr, "skipped: no user nobody\n");
		return 77;
	}
	nobody.uid = pw->pw_uid;
	nobody.gid = pw->pw_gid;
	nobody_groups[0] = pw->pw_gid;
	nobody.groups = nobody_groups;
	nobody.ngroups = 1;
	dir = xstrdup("/tmp/bd-file-access-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(dir));
	ASSERT_INT_EQ(chmod(dir, 0755), 0);
	RUN(null_identity_is_batchd);
	RUN(denied_and_allowed);
	RUN(files_created_belong_to_the_user);
	RUN(directories);
	RUN(per_thread);
	RUN(chown_tree);
	ASSERT_INT_EQ(bd_rm_rf(dir), 0);
	free(dir);
	return 0;
}
