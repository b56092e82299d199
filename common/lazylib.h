/* SPDX-License-Identifier: MIT */
#ifndef BD_LAZYLIB_H
#define BD_LAZYLIB_H

/*
 * Shared libraries loaded on first use.  libcurl alone brings about thirty
 * dependent libraries whose loading costs ~10 ms at every start of batchd,
 * more than a whole short task; commands and tasks that never touch the
 * network should not pay it.  A wrapper module lists the symbols it needs
 * in a table of {name, &pointer}; bd_lazylib_load() resolves all of them
 * once per process, or none.
 */

struct bd_lazylib_symbol {
	const char *name;
	void **slot; /* where the address goes */
};

struct bd_lazylib {
	const char *soname;			 /* e.g. "libcurl.so.4" */
	const struct bd_lazylib_symbol *symbols; /* NULL-name terminated */
	int state;				 /* 0 unloaded, 1 loaded, <0 error */
	char *error;				 /* dlerror() text when state < 0 */
};

/*
 * Loads lib and resolves its symbols (thread-safe for the first call only
 * if callers serialise it; batchd calls it from the loop thread).  Returns
 * 0, or -ELIBACC with *cause (borrowed, lives as long as the process)
 * naming the library and what was missing.
 */
int bd_lazylib_load(struct bd_lazylib *lib, const char **cause);

#endif
