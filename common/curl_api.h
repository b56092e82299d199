/* SPDX-License-Identifier: MIT */
#ifndef BD_CURL_API_H
#define BD_CURL_API_H

/*
 * libcurl, loaded on first use through lazylib.  Include this instead of
 * <curl/curl.h>: the curl_* calls below then go through pointers that
 * bd_curl_api_load() fills.  Only the http module uses libcurl.
 */

/* The type-checking macros of curl.h would wrap the names we redefine. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

struct bd_curl_api {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_multi_init) *multi_init;
	__typeof__(curl_multi_setopt) *multi_setopt;
	__typeof__(curl_multi_add_handle) *multi_add_handle;
	__typeof__(curl_multi_remove_handle) *multi_remove_handle;
	__typeof__(curl_multi_assign) *multi_assign;
	__typeof__(curl_multi_socket_action) *multi_socket_action;
	__typeof__(curl_multi_info_read) *multi_info_read;
	__typeof__(curl_multi_cleanup) *multi_cleanup;
	__typeof__(curl_multi_strerror) *multi_strerror;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
	__typeof__(curl_getdate) *getdate;
};

extern struct bd_curl_api bd_curl;

/*
 * Loads libcurl and calls curl_global_init() once per process.  Returns 0,
 * or a negative errno with *cause (borrowed) saying what is missing.
 */
int bd_curl_api_load(const char **cause);

/* curl.h defines some of these names as macros of their own. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt

#define curl_global_init (*bd_curl.global_init)
#define curl_easy_init (*bd_curl.easy_init)
#define curl_easy_setopt (*bd_curl.easy_setopt)
#define curl_easy_getinfo (*bd_curl.easy_getinfo)
#define curl_easy_cleanup (*bd_curl.easy_cleanup)
#define curl_easy_strerror (*bd_curl.easy_strerror)
#define curl_multi_init (*bd_curl.multi_init)
#define curl_multi_setopt (*bd_curl.multi_setopt)
#define curl_multi_add_handle (*bd_curl.multi_add_handle)
#define curl_multi_remove_handle (*bd_curl.multi_remove_handle)
#define curl_multi_assign (*bd_curl.multi_assign)
#define curl_multi_socket_action (*bd_curl.multi_socket_action)
#define curl_multi_info_read (*bd_curl.multi_info_read)
#define curl_getdate (*bd_curl.getdate)
#define curl_multi_cleanup (*bd_curl.multi_cleanup)
#define curl_multi_strerror (*bd_curl.multi_strerror)
#define curl_slist_append (*bd_curl.slist_append)
#define curl_slist_free_all (*bd_curl.slist_free_all)

#endif
