/* SPDX-License-Identifier: MIT */
#ifndef BD_EXT4_SUPPORT_H
#define BD_EXT4_SUPPORT_H

/*
 * Small ext4 file systems on loop devices, made and mounted for one test
 * (test_fsutil.c, test_store_local.c): the journal and its modes change
 * what batchd may do.  Needs root, loop devices and mkfs.ext4; where they
 * are missing a case is skipped with a note.  Include after unit.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include "xmalloc.h"

/*
 * A fresh 64 MiB ext4 made with mkfs.ext4 mkfs_opts, loop-mounted with
 * mount_opts ("" for the defaults) on dir/mnt, which is returned (caller
 * frees, then ext4_unmount()); NULL, with a note, where this machine
 * cannot (not root, no loop devices, no mkfs.ext4).
 */
static inline char *
ext4_mount(const char *dir, const char *mkfs_opts, const char *mount_opts)
{
	char *mnt = xasprintf("%s/mnt", dir);
	char *cmd = xasprintf("truncate -s 64M %s/ext4.img && "
	    "mkfs.ext4 -q -F %s %s/ext4.img >/dev/null 2>&1 && "
	    "mkdir -p %s && mount -o loop%s%s %s/ext4.img %s 2>/dev/null",
	    dir, mkfs_opts, dir, mnt, *mount_opts ? "," : "", mount_opts, dir,
	    mnt);
	int rc = geteuid() == 0 ? system(cmd) : -1;

	free(cmd);
	if (rc != 0) {
		fprintf(stderr, "   skipped: cannot loop-mount an ext4 "
		    "(%s%s) here\n", mkfs_opts, mount_opts);
		free(mnt);
		return NULL;
	}
	return mnt;
}

static inline void
ext4_unmount(const char *mnt)
{
	ASSERT_INT_EQ(umount2(mnt, MNT_DETACH), 0);
}

#endif
