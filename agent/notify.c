/* SPDX-License-Identifier: MIT */
/*
 * sd_notify without libsystemd: the protocol is one datagram of
 * newline-separated assignments to the unix socket named by
 * $NOTIFY_SOCKET (a leading '@' means the abstract namespace), as
 * systemd's sd_notify(3) documents.  A socket per message keeps this
 * stateless; notifications are rare (state changes, a watchdog ping every
 * few seconds).
 */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
bd_notify(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	char msg[1024];
	socklen_t len;
	va_list ap;
	int fd, rc = 0;

	if (path == NULL || path[0] == '\0')
		return 0;
	if ((path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	    len) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

int64_t
bd_notify_watchdog_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	long long v;

	if (usec == NULL || (pid != NULL && atol(pid) != (long)getpid()))
		return 0;
	v = atoll(usec);
	return v > 0 ? v / 2000 : 0;
}
