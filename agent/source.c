/* SPDX-License-Identifier: MIT */
/* The backend-neutral part of the task source (see source.h). */
#include "source.h"

#include <stdlib.h>

void
bd_message_free(struct bd_message *m)
{
	if (m == NULL)
		return;
	free(m->id);
	free(m->pop_receipt);
	free(m->text);
	free(m);
}
