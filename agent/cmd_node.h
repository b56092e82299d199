/* SPDX-License-Identifier: MIT */
#ifndef BD_CMD_NODE_H
#define BD_CMD_NODE_H

/*
 * `batchd node list`: the pool's nodes from the node table
 * (docs/commands.md).  argv[0] is "node".  Returns the exit status
 * (client.h).
 */
int bd_cmd_node(int argc, char **argv);

#endif
