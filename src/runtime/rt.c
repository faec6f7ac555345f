/*
 * rt.c - the runtime's context (rt.h): one per process, set up before main.
 */
#include "runtime/rt.h"

#include <stdlib.h>
#include <string.h>

static struct scone_rt ctx;

const struct scone_rt *scone_rt(void)
{
	return &ctx;
}

enum scone_err scone_rt_init(const char *cas_addr, const uint8_t pin[32], struct scone_identity *id,
			     struct scone_runtime_config *cfg)
{
	char *addr = NULL;

	if (cas_addr && *cas_addr && !(addr = strdup(cas_addr)))
		return scone_err_set(SCONE_ERR_NOMEM, "runtime context");
	free(ctx.cas_addr);
	ctx.cas_addr = addr;
	memcpy(ctx.pin, pin, sizeof(ctx.pin));
	ctx.cfg = cfg;
	ctx.id = *id;
	scone_runtime_report_identity_moved(id, &ctx.id);
	*id = (struct scone_identity){0};
	return SCONE_ERR_OK;
}

static __thread int own_depth;

void scone_rt_own_enter(void)
{
	own_depth++;
}

void scone_rt_own_leave(void)
{
	own_depth--;
}

bool scone_rt_own(void)
{
	return own_depth != 0;
}
