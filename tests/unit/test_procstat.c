/* SPDX-License-Identifier: MIT */
/*
 * /proc/PID/stat on real processes: this one, a zombie child, one whose
 * command name holds spaces and parentheses, and one that does not exist;
 * and the parse of texts that are not /proc/PID/stat.
 */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procstat.h"
#include "unit.h"

TEST(self)
{
	unsigned long long f[BD_PROC_STAT_FIELDS], g[BD_PROC_STAT_FIELDS];

	ASSERT(bd_proc_stat(0, f) >= 52);
	ASSERT_INT_EQ((int)f[3], 'R');
	ASSERT_INT_EQ((int)f[4], (int)getppid());
	ASSERT_INT_EQ((int)f[20], 1);		/* threads */
	ASSERT(f[22] > 0);			/* start time */
	ASSERT(bd_proc_stat(getpid(), g) >= 52);
	ASSERT(g[22] == f[22]);
	ASSERT_INT_EQ((int)f[1] + (int)f[2], 0);
}

/* A name such as "a) b (c" must not shift the fields. */
TEST(odd_command_name)
{
	unsigned long long f[BD_PROC_STAT_FIELDS];
	int p[2];
	pid_t pid;
	char c;

	ASSERT_INT_EQ(pipe(p), 0);
	if ((pid = fork()) == 0) {
		prctl(PR_SET_NAME, "a) b (c) 9 9");
		close(p[0]);
		(void)write(p[1], "x", 1);
		pause();
		_exit(0);
	}
	close(p[1]);
	ASSERT_INT_EQ(read(p[0], &c, 1), 1);
	ASSERT(bd_proc_stat(pid, f) >= 52);
	ASSERT(f[3] == 'S' || f[3] == 'R');
	ASSERT_INT_EQ((int)f[4], (int)getpid());
	ASSERT_INT_EQ((int)f[20], 1);
	kill(pid, SIGKILL);
	/* A zombie until reaped, then gone. */
	ASSERT_INT_EQ(waitid(P_PID, pid, NULL, WEXITED | WNOWAIT), 0);
	ASSERT(bd_proc_stat(pid, f) >= 4);
	ASSERT_INT_EQ((int)f[3], 'Z');
	ASSERT_INT_EQ(waitpid(pid, NULL, 0), pid);
	ASSERT_INT_EQ(bd_proc_stat(pid, f), -ESRCH);
	close(p[0]);
}

TEST(no_such_process)
{
	unsigned long long f[BD_PROC_STAT_FIELDS];

	ASSERT_INT_EQ(bd_proc_stat(-1, f), -ESRCH);
	ASSERT_INT_EQ(bd_proc_stat(0x3fffffff, f), -ESRCH);
}

TEST(parse)
{
	unsigned long long f[BD_PROC_STAT_FIELDS];

	ASSERT_INT_EQ(bd_proc_stat_parse("7 (x)) y) S 1 -1 3\n", f), 6);
	ASSERT_INT_EQ((int)f[3], 'S');
	ASSERT_INT_EQ((int)f[4], 1);
	ASSERT(f[5] == (unsigned long long)-1);
	ASSERT_INT_EQ((int)f[6], 3);
	ASSERT_INT_EQ(bd_proc_stat_parse("7 (x) Z", f), -EINVAL);
	ASSERT_INT_EQ(bd_proc_stat_parse("7 x S 1", f), -EINVAL);
	ASSERT_INT_EQ(bd_proc_stat_parse("7 (x)S 1", f), -EINVAL);
	ASSERT_INT_EQ(bd_proc_stat_parse("7 (x) S 1x 2", f), -EINVAL);
	ASSERT_INT_EQ(bd_proc_stat_parse("7 (x) S 1 2 3 4 5 6 7 8 9 10 11 "
	    "12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 "
	    "33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 "
	    "53 54", f), BD_PROC_STAT_FIELDS - 1);
	ASSERT_INT_EQ((int)f[52], 49);
}

int
main(void)
{
	RUN(self);
	RUN(odd_command_name);
	RUN(no_such_process);
	RUN(parse);
	printf("procstat: all passed\n");
	return 0;
}
