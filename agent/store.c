/* SPDX-License-Identifier: MIT */
/* The backend-neutral part of the state store (see store.h). */
#include "store.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "xmalloc.h"

const char *
bd_table_name(enum bd_table t)
{
	switch (t) {
	case BD_TABLE_TASKS:
		return "batchdtasks";
	case BD_TABLE_JOBS:
		return "batchdjobs";
	case BD_TABLE_NODES:
		return "batchdnodes";
	}
	return "batchdunknown";
}

struct bd_entity *
bd_entity_new(const char *pk, const char *rk)
{
	struct bd_entity *e = xcalloc(1, sizeof(*e));

	e->partition_key = xstrdup(pk);
	e->row_key = xstrdup(rk);
	e->props = cJSON_CreateObject();
	return e;
}

void
bd_entity_free(struct bd_entity *e)
{
	if (e == NULL)
		return;
	free(e->partition_key);
	free(e->row_key);
	free(e->etag);
	cJSON_Delete(e->props);
	free(e);
}
