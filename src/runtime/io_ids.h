/*
 * io_ids.h - the owner stat reports for volume and injected files: the
 * process's user and group, asked of the kernel once and again after a
 * set*id call (io_ids.c).
 */
#ifndef SCONE_RUNTIME_IO_IDS_H
#define SCONE_RUNTIME_IO_IDS_H

#include <sys/types.h>

void shield_ids(uid_t *uid, gid_t *gid);
/* A set*id call went through: ask again. */
void shield_ids_changed(void);

#endif
