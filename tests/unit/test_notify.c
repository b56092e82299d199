/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "unit.h"

TEST(datagrams)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[] = "/tmp/bd-notify-XXXXXX", buf[256];
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	ssize_t n;

	ASSERT(mkdtemp(path) != NULL);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", path);
	ASSERT_INT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	unsetenv("NOTIFY_SOCKET");
	ASSERT_INT_EQ(bd_notify("READY=1"), 0); /* not under systemd: no-op */
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	ASSERT_INT_EQ(bd_notify("READY=1\nSTATUS=node %s", "n1"), 0);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	ASSERT(n > 0);
	buf[n] = '\0';
	ASSERT_STR_EQ(buf, "READY=1\nSTATUS=node n1");
	setenv("NOTIFY_SOCKET", "relative", 1);
	ASSERT(bd_notify("READY=1") < 0);

	unsetenv("WATCHDOG_USEC");
	ASSERT_INT_EQ(bd_notify_watchdog_ms(), 0);
	setenv("WATCHDOG_USEC", "60000000", 1);
	ASSERT_INT_EQ(bd_notify_watchdog_ms(), 30000);
	setenv("WATCHDOG_PID", "1", 1); /* another process is watched */
	ASSERT_INT_EQ(bd_notify_watchdog_ms(), 0);
	close(fd);
	unlink(sa.sun_path);
	rmdir(path);
}

int
main(void)
{
	RUN(datagrams);
	return 0;
}
