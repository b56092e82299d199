/* SPDX-License-Identifier: MIT */
#ifndef BD_STORAGE_REQUEST_H
#define BD_STORAGE_REQUEST_H

/*
 * One request to an Azure Storage service: the URL with the account's SAS
 * joined to its query, the x-ms-* headers and, for an account key, the
 * Shared Key signature, then the start on the shared HTTP module.  The
 * queue and table clients build every request through here.
 */

#include <stddef.h>

#include "http.h"
#include "storage_auth.h"

/*
 * endpoint followed by path, then "?" and query (NULL: none) joined by "&"
 * to the account's SAS when it has one.  Caller frees.
 */
char *bd_storage_url(const struct bd_storage_account *a, const char *endpoint,
    const char *path, const char *query);

/*
 * Adds the service's headers (extra first, then x-ms-date, x-ms-version
 * and, for an account key without SAS, Authorization) to req, whose
 * method, url and in-memory body are set, and starts it on http.  Returns
 * 0 (cb runs once, as http.h says) or the error of signing or of
 * bd_http_start() (cb never runs).  req is borrowed for the call.
 */
int bd_storage_request_start(struct bd_http *http,
    const struct bd_storage_account *a, enum bd_storage_service service,
    struct bd_http_request *req, const char *const *extra, size_t n_extra,
    bd_http_done_cb cb, void *arg);

#endif
