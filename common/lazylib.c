/* SPDX-License-Identifier: MIT */
/*
 * Loading of shared libraries on first use (see lazylib.h).  A failure is
 * remembered, so a missing library is reported the same way every time
 * without retrying dlopen.
 */
#include "lazylib.h"

#include <dlfcn.h>
#include <errno.h>

#include "xmalloc.h"

int
bd_lazylib_load(struct bd_lazylib *lib, const char **cause)
{
	void *handle;

	if (lib->state == 0) {
		if ((handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL)) == NULL) {
			lib->error = xasprintf("cannot load %s: %s",
			    lib->soname, dlerror());
			lib->state = -1;
		}
		for (const struct bd_lazylib_symbol *s = lib->symbols;
		    lib->state == 0 && s->name != NULL; s++) {
			if ((*s->slot = dlsym(handle, s->name)) == NULL) {
				lib->error = xasprintf("%s has no symbol %s",
				    lib->soname, s->name);
				lib->state = -1;
			}
		}
		if (lib->state == 0)
			lib->state = 1;
		/* The handle stays open for the life of the process. */
	}
	if (lib->state < 0) {
		if (cause != NULL)
			*cause = lib->error;
		return -ELIBACC;
	}
	return 0;
}
