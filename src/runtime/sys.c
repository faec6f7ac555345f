/*
 * sys.c - the table of real libc functions (sys.h), filled once with
 * dlsym(RTLD_NEXT): the next definition after libscone.so, libc's.
 */
#include "runtime/sys.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

struct scone_sys scone_sys_table;
bool scone_sys_ready;

static pthread_once_t fill_once = PTHREAD_ONCE_INIT;

static void fill(void)
{
#define SCONE_SYS_FILL(name, type) scone_sys_table.name = (type)dlsym(RTLD_NEXT, #name);
	SCONE_SYS_FUNCS(SCONE_SYS_FILL)
#undef SCONE_SYS_FILL
	__atomic_store_n(&scone_sys_ready, true, __ATOMIC_RELEASE);
}

void scone_sys_init(void)
{
	pthread_once(&fill_once, fill);
}

/* Before any other constructor of the library: the table is full before main and before the program's
 * threads. */
__attribute__((constructor(101))) static void sys_constructor(void)
{
	scone_sys_init();
}

bool scone_sys_set(const char *name, void *fn, void **old)
{
	scone_sys_init();
#define SCONE_SYS_SET(fname, type)                                                                           \
	if (strcmp(name, #fname) == 0) {                                                                     \
		if (old)                                                                                     \
			*old = (void *)scone_sys_table.fname;                                                \
		scone_sys_table.fname = (type)fn;                                                            \
		return true;                                                                                 \
	}
	SCONE_SYS_FUNCS(SCONE_SYS_SET)
#undef SCONE_SYS_SET
	return false;
}
