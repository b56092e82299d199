/* SPDX-License-Identifier: MIT */
#ifndef BD_NOTIFY_H
#define BD_NOTIFY_H

/*
 * Service notifications to systemd (sd_notify's datagram protocol on
 * $NOTIFY_SOCKET): READY=1 once the node has joined its pool, STATUS=
 * lines with the current activity, STOPPING=1 while draining, and
 * WATCHDOG=1 pings when the unit sets WatchdogSec.  Without
 * $NOTIFY_SOCKET (not started by systemd) every call does nothing.
 */

#include <stdint.h>

/* Sends one notification ("READY=1", "STATUS=..."); 0 or negative errno. */
int bd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The interval at which WATCHDOG=1 should be sent (half of WatchdogSec),
 * in milliseconds, or 0 when systemd does not watch this process.
 */
int64_t bd_notify_watchdog_ms(void);

#endif
