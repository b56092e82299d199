/* SPDX-License-Identifier: MIT */
#ifndef BD_SOURCE_AZURE_H
#define BD_SOURCE_AZURE_H

/*
 * The task source on Azure Storage Queues (docs/protocol.md §2, §3): the
 * pool's task queue and its poison queue (<task queue>-poison) of one
 * storage account, through common/queue.  Semantics as source.h says;
 * message text goes out and comes back exactly as stored (the daemon
 * decodes base64).  Visibility times are whole seconds on the service:
 * milliseconds given are rounded up (receive: at least 1 s).  receive
 * asks for at most 32 messages (a larger max is cut to 32).
 */

#include <uv.h>

#include "http.h"
#include "source.h"
#include "storage_auth.h"

/*
 * The source on queue_name (3 to 56 of [a-z0-9-] as Azure allows, so that
 * the poison queue's name fits in 63) of account (borrowed: it must
 * outlive the source) over http (borrowed likewise, on loop).  Returns 0
 * and *out (free with bd_source_free(); no call may be in flight then),
 * or BD_EINVALID with *cause (caller frees).
 */
int bd_source_azure_new(uv_loop_t *loop, struct bd_http *http,
    const struct bd_storage_account *account, const char *queue_name,
    struct bd_source **out, char **cause);

#endif
