/* SPDX-License-Identifier: MIT */
/*
 * /proc/PID/stat read once and split into its numbered fields (see
 * procstat.h), for the few callers that need a process's state, parent,
 * start time or memory layout.
 */
#include "procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
bd_proc_stat(pid_t pid, unsigned long long *f)
{
	char path[64], buf[2048];
	ssize_t len;
	int fd, i;

	memset(f, 0, BD_PROC_STAT_FIELDS * sizeof(*f));
	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/stat");
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? -ESRCH : -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	i = errno;
	close(fd);
	if (len < 0)
		return i == ESRCH ? -ESRCH : -i;
	if (len == 0)
		return -ESRCH;	/* the process went between open and read */
	buf[len] = '\0';
	return bd_proc_stat_parse(buf, f);
}

int
bd_proc_stat_parse(const char *text, unsigned long long *f)
{
	const char *rp;
	char *end;
	int i;

	memset(f, 0, BD_PROC_STAT_FIELDS * sizeof(*f));
	if ((rp = strrchr(text, ')')) == NULL || rp[1] != ' ' ||
	    rp[2] == '\0' || rp[3] != ' ')
		return -EINVAL;
	f[3] = (unsigned char)rp[2];
	rp += 3;
	for (i = 4; i < BD_PROC_STAT_FIELDS; i++) {
		while (*rp == ' ')
			rp++;
		if (*rp == '\0' || *rp == '\n')
			break;
		f[i] = strtoull(rp, &end, 10);
		if (end == rp || (*end != ' ' && *end != '\n' && *end != '\0'))
			return -EINVAL;
		rp = end;
	}
	return i - 1;
}
