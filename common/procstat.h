/* SPDX-License-Identifier: MIT */
#ifndef BD_PROCSTAT_H
#define BD_PROCSTAT_H

#include <sys/types.h>

/*
 * One read of /proc/PID/stat.  Fields are numbered from 1 as in proc(5):
 * f[3] is the state letter, f[4] the parent, f[20] the thread count,
 * f[22] the start time in clock ticks since boot; f[1] and f[2] (pid and
 * command name) are left 0, and a negative field reads as its two's
 * complement.  The command name may hold spaces and ')': fields are
 * counted after the last ')'.
 */
#define BD_PROC_STAT_FIELDS 53	/* proc(5) has 52; f[0] unused */

/*
 * Fills f (BD_PROC_STAT_FIELDS entries, zeroed first) from
 * /proc/<pid>/stat, pid 0 meaning this process.  Returns the number of
 * the last field read (at least 3), -ESRCH when there is no such process,
 * -EINVAL when the text does not parse, or another negative errno.
 */
int bd_proc_stat(pid_t pid, unsigned long long *f);

/* The parse of bd_proc_stat() on text (NUL-terminated): the last field's
 * number, or -EINVAL. */
int bd_proc_stat_parse(const char *text, unsigned long long *f);

#endif
