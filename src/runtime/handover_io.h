/*
 * handover_io.h - how the encoded handover (handover.h) travels to the
 * exec'd program without being readable by anyone else.
 *
 * A memfd can be opened by any process of the same user through
 * /proc/PID/fd/N while the new program is dumpable (from the exec until its
 * runtime starts, or for good in a program that never loads the runtime).
 * So the memfd holds only AES-256-GCM ciphertext (nonce, tag, ciphertext;
 * sealed against writes), and the fresh key travels in a socketpair whose
 * other end is closed at once: a socket cannot be opened through /proc, and
 * taking it from the process (pidfd_getfd) needs the right to ptrace it,
 * which gives the whole process anyway. SCONE_HANDOVER=<memfd>:<keyfd>
 * names both; the new program's runtime reads and closes them before main.
 *
 * All I/O goes through the table of real functions (sys.h): these fds are
 * the runtime's own and never pass through its interposers.
 */
#ifndef SCONE_RUNTIME_HANDOVER_IO_H
#define SCONE_RUNTIME_HANDOVER_IO_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

/* The memfd's name, as /proc/self/fd shows it: "memfd:scone-handover". */
#define SCONE_HANDOVER_MEMFD "scone-handover"

/*
 * The fds that travel with the key (SCM_RIGHTS, never inherited), in this
 * order: the volumes' shared state, then the two ends of the windows'
 * mailbox (shield_map.c).
 */
#define SCONE_HANDOVER_PASSED 3

/*
 * Seal encoded into a fresh memfd and key socket for the next program;
 * both are left without FD_CLOEXEC; the first n_pass fds of pass go along.
 * On failure nothing stays open.
 */
SCONE_MUST_CHECK enum scone_err scone_handover_send(const struct scone_wbuf *encoded, const int *pass,
						    size_t n_pass, int *memfd, int *keyfd);

/*
 * The next program's side: "<memfd>:<keyfd>" (SCONE_HANDOVER's value) to the
 * encoded bytes (*out malloc'd; wipe before free), the fds passed along in
 * pass (-1 where none came; close-on-exec). Both fds are closed, whatever
 * the outcome, once they have been checked to be the runtime's.
 */
SCONE_MUST_CHECK enum scone_err scone_handover_receive(const char *fds, uint8_t **out, size_t *out_size,
						       int pass[SCONE_HANDOVER_PASSED]);

#endif
