/* SPDX-License-Identifier: MIT */
/*
 * `batchd node list [--config FILE]`: the pool's nodes as their rows in
 * the node table say (docs/protocol.md §5): state, running tasks, free
 * and total slots, the age of the last heartbeat and the agent version.
 * A node whose heartbeat is older than three heartbeat intervals of this
 * configuration (and that did not say it went offline) is marked
 * "(stale)": it may have died without a word.
 */
#include "cmd_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"

/* Heartbeats this many intervals old mark a node stale. */
#define NODE_STALE_INTERVALS 3

static void
node_usage(FILE *f)
{
	fprintf(f, "usage: batchd node list [--config FILE]\n");
}

/* The heartbeat age column of row: "12s ago", "3m ago (stale)", "-". */
static const char *
node_heartbeat(const struct bd_client *c, const struct bd_entity *row,
    int64_t now, char *buf, size_t len)
{
	const char *hb = bd_client_prop(row, "lastHeartbeat");
	const char *state = bd_client_prop(row, "state");
	char age[32];
	int64_t ms, stale;

	if (hb == NULL || bd_clock_parse_iso(hb, &ms) < 0)
		return "-";
	stale = c->cfg->heartbeat_interval_ms * NODE_STALE_INTERVALS;
	snprintf(buf, len, "%s ago%s", bd_client_age(now - ms, age,
	    sizeof(age)), now - ms > stale && (state == NULL ||
	    strcmp(state, "offline") != 0) ? " (stale)" : "");
	return buf;
}

/* A number property as text, or NULL. */
static const char *
node_num(const struct bd_entity *row, const char *name, char *buf,
    size_t len)
{
	int64_t v;

	if (!bd_client_prop_int(row, name, &v))
		return NULL;
	snprintf(buf, len, "%lld", (long long)v);
	return buf;
}

/* A byte count property in binary units ("3.2G"), or NULL. */
static const char *
node_size(const struct bd_entity *row, const char *name, char *buf,
    size_t len)
{
	static const char units[] = "KMGTP";
	double v;
	int64_t n;
	int u = -1;

	if (!bd_client_prop_int(row, name, &n) || n < 0)
		return NULL;
	v = (double)n;
	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%lldB", (long long)n);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

/* `node list`: the node rows as a table. */
static int
node_list(int argc, char **argv)
{
	static const char *const head[] = { "ID", "STATE", "RUNNING",
	    "SLOTS", "HEARTBEAT", "VERSION", "RETAINED", "FREE", "REASON" };
	struct bd_client_args a;
	struct bd_client c;
	struct bd_client_table *t;
	struct bd_entity **rows = NULL;
	char *detail = NULL;
	size_t n = 0;
	int64_t now;
	int rc, status;

	if ((status = bd_client_parse(argc, argv, "node list", "",
	    node_usage, &a)) >= 0)
		return status;
	if (a.argc != 0) {
		node_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	if ((status = bd_client_open(&c, "node list", a.config)) !=
	    BD_CLIENT_OK)
		return status;
	if ((rc = bd_client_query(&c, BD_TABLE_NODES, c.cfg->pool_id, &rows,
	    &n, &detail)) < 0) {
		bd_client_error(c.cmd, "cannot read the nodes: %s", detail);
		free(detail);
		return bd_client_close(&c, bd_client_status(rc));
	}
	now = bd_clock_now_ms();
	t = bd_client_table_new(9, head);
	for (size_t i = 0; i < n; i++) {
		char running[24], free_slots[24], total[24], slots[64];
		char hb[64], retained[24], free_space[32];
		const char *reason = bd_client_prop(rows[i], "stateReason");
		const char *f = node_num(rows[i], "freeSlots", free_slots,
		    sizeof(free_slots));
		const char *tot = node_num(rows[i], "totalSlots", total,
		    sizeof(total));

		snprintf(slots, sizeof(slots), "%s/%s", f ? f : "?",
		    tot ? tot : "?");
		bd_client_table_add(t, (const char *const[]){
		    rows[i]->row_key, bd_client_prop(rows[i], "state"),
		    node_num(rows[i], "runningTasks", running,
		    sizeof(running)), slots,
		    node_heartbeat(&c, rows[i], now, hb, sizeof(hb)),
		    bd_client_prop(rows[i], "agentVersion"),
		    node_num(rows[i], "retainedTaskDirs", retained,
		    sizeof(retained)),
		    node_size(rows[i], "freeBytes", free_space,
		    sizeof(free_space)),
		    reason != NULL && *reason != '\0' ? reason : NULL });
	}
	bd_client_table_print(t, stdout);
	if (n == 0)
		fprintf(stderr, "pool %s has no nodes\n", c.cfg->pool_id);
	bd_client_table_free(t);
	bd_client_free_rows(rows, n);
	return bd_client_close(&c, BD_CLIENT_OK);
}

/* Picks the subcommand; see the header. */
int
bd_cmd_node(int argc, char **argv)
{
	if (argc < 2) {
		node_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		node_usage(stdout);
		return BD_CLIENT_OK;
	}
	if (strcmp(argv[1], "list") == 0)
		return node_list(argc - 1, argv + 1);
	bd_client_error("node", "unknown command '%s'", argv[1]);
	node_usage(stderr);
	return BD_CLIENT_FAIL;
}
