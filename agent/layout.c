/* SPDX-License-Identifier: MIT */
/* Paths of the node layout; the one place that knows directory names. */
#include "layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "xmalloc.h"

static const char *const layout_node_dirs[] = {
	"shared", "startup", "startup/wd", "startup/certs", "applications",
	"fsmounts", "volatile", "workitems",
};

int
bd_layout_prepare_node(const char *root)
{
	int rc;

	if ((rc = bd_mkdir_p(root, 0755)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(layout_node_dirs) /
	    sizeof(layout_node_dirs[0]); i++) {
		char *p = bd_path_join(root, layout_node_dirs[i]);
		rc = bd_mkdir_p(p, 0775);
		/*
		 * As root, tasks run as users of their own (task_user.h), and
		 * every one of them may write in shared (reference §3.2); the
		 * sticky bit keeps each one's files its own, as in /tmp.
		 */
		if (rc == 0 && geteuid() == 0 &&
		    strcmp(layout_node_dirs[i], "shared") == 0 &&
		    chmod(p, 01777) == -1)
			rc = -errno;
		free(p);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void
bd_layout_task_dirs(const char *root, const char *job_id,
    const struct bd_task_spec *task, struct bd_task_dirs *dirs)
{
	if (task->kind == BD_TASK_KIND_START)
		dirs->task_dir = bd_path_join(root, "startup");
	else
		dirs->task_dir = xasprintf("%s/workitems/%s/job-1/%s", root,
		    job_id, task->id);
	dirs->wd = bd_path_join(dirs->task_dir, "wd");
	dirs->certs = bd_path_join(dirs->task_dir, "certs");
}

void
bd_layout_dirs_free(struct bd_task_dirs *dirs)
{
	free(dirs->task_dir);
	free(dirs->wd);
	free(dirs->certs);
	dirs->task_dir = dirs->wd = dirs->certs = NULL;
}

char *
bd_layout_path(const char *root, const char *name)
{
	return bd_path_join(root, name);
}
