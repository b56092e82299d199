/* SPDX-License-Identifier: MIT */
#ifndef BD_CMD_CHECK_CONFIG_H
#define BD_CMD_CHECK_CONFIG_H

/*
 * `batchd check-config [--config FILE] [--show] [--list]`: checks the node
 * configuration without starting.  Returns the process exit status: 0
 * when it is valid, 1 when it is not, 125 for a bad command line.
 */
int bd_cmd_check_config(int argc, char **argv);

#endif
