/* SPDX-License-Identifier: MIT */
/* Text for batchd's own error codes; errno values go to strerror(). */
#include "error.h"

#include <string.h>

const char *
bd_strerror(int err)
{
	switch (err) {
	case BD_EJSON:
		return "malformed JSON";
	case BD_EINVALID:
		return "invalid value";
	case BD_EHTTP:
		return "HTTP error status";
	case BD_ENET:
		return "network error";
	case BD_ETIMEDOUT:
		return "timed out";
	case BD_ETOOBIG:
		return "over the configured limit";
	case BD_EESCAPE:
		return "path leaves its directory";
	case BD_ENOTFOUND:
		return "not found";
	case BD_EDENIED:
		return "access denied";
	case BD_ECHECKSUM:
		return "checksum mismatch";
	case BD_EUNSUPPORTED:
		return "not supported";
	}
	if (err < 0 && err > BD_EFIRST)
		return strerror(-err);
	return "unknown error";
}
