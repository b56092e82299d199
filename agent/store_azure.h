/* SPDX-License-Identifier: MIT */
#ifndef BD_STORE_AZURE_H
#define BD_STORE_AZURE_H

/*
 * The state store on Azure Storage Tables (docs/protocol.md §4, §5): the
 * tables batchdtasks, batchdjobs and batchdnodes of one storage account,
 * through common/table.  Semantics as store.h says; remove with etag NULL
 * deletes whatever version is there.  Property types follow table.h:
 * integers beyond Int32 are stored as Edm.Int64, times (properties named
 * *Time and lastHeartbeat holding ISO 8601 UTC text) as Edm.DateTime.
 */

#include <uv.h>

#include "http.h"
#include "storage_auth.h"
#include "store.h"

/*
 * The store in account (borrowed: it must outlive the store) over http
 * (borrowed likewise, on loop).  Returns 0 and *out (free with
 * bd_store_free(); no call may be in flight then), or BD_EINVALID with
 * *cause (caller frees) when the account has no table endpoint.
 */
int bd_store_azure_new(uv_loop_t *loop, struct bd_http *http,
    const struct bd_storage_account *account, struct bd_store **out,
    char **cause);

#endif
