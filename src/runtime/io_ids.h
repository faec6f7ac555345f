/*
 * io_ids.h - what the kernel would give the files a process creates: the
 * owner stat reports for volume and injected files (the process's user and
 * group, asked of the kernel once and again after a set*id call), and the
 * umask taken off the modes of files and directories created on a volume
 * (io_ids.c).
 */
#ifndef SCONE_RUNTIME_IO_IDS_H
#define SCONE_RUNTIME_IO_IDS_H

#include <sys/types.h>

void shield_ids(uid_t *uid, gid_t *gid);
/* A set*id call went through: ask again. */
void shield_ids_changed(void);
/* The process's umask (asked of the kernel once, then kept by umask()). */
mode_t shield_umask(void);
/* A umask set through syscall(SYS_umask). */
void shield_umask_set(mode_t mask);

#endif
