/* SPDX-License-Identifier: MIT */
#ifndef BD_CMD_DAEMON_H
#define BD_CMD_DAEMON_H

/* `batchd daemon`: the node agent; returns the process exit status. */
int bd_cmd_daemon(int argc, char **argv);

#endif
