/*
 * fd_tls.h - the network shield's kind of fd (fdtab.h): a TCP or unix
 * stream socket the session names, wrapped in TLS inside the process.
 *
 * The placeholder is the socket itself: poll and epoll see the kernel's
 * readiness of the ciphertext, which io_net.c corrects through
 * tls_revents (a record not yet complete is not readable; bytes already
 * decrypted are). docs/network-shield.md.
 */
#ifndef SCONE_RUNTIME_FD_TLS_H
#define SCONE_RUNTIME_FD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "runtime/fdtab.h"
#include "runtime/netshield.h"

extern const struct fd_kind tls_kind;

/* Make fd (a connected or connecting socket) a TLS connection: 0, or -1 with errno (fd left open). */
int tls_install(int fd, const struct ns_decision *dec, bool server);
/* A blocking socket just connected: the handshake now. 0, or -1 with errno. */
int tls_handshake_now(struct fd_desc *d, int fd);

ssize_t tls_recv(struct fd_desc *d, int fd, void *buf, size_t n, int flags);
ssize_t tls_send(struct fd_desc *d, int fd, const void *buf, size_t n, int flags);
int tls_shutdown(struct fd_desc *d, int fd, int how);
/* readv/writev/recvmsg/sendmsg: the vector through one wiped buffer, at most 1 MiB per call. */
ssize_t tls_iov(struct fd_desc *d, int fd, const struct iovec *iov, size_t cnt, int flags, bool wr);
/* All n bytes, waiting only for the handshake (bytes the kernel does not take wait in the connection). */
ssize_t tls_send_all(struct fd_desc *d, int fd, const void *buf, size_t n);
/* splice(in, out) where out is a TLS connection: -2 when it is not one. */
ssize_t io_net_splice_to_tls(int in, int out, size_t len, unsigned flags);
/* The fds a message sends (SCM_RIGHTS) go to another process: volume placeholders are not kept. */
void io_net_rights_sent(const struct msghdr *m);

/* Readiness known without asking the kernel (decrypted bytes buffered, a failed connection): revents or 0. */
short tls_ready_now(struct fd_desc *d, short events);
/* The kernel said kernel_revents for fd: what the program may rely on (may pull a record in). */
short tls_revents(struct fd_desc *d, int fd, short events, short kernel_revents);
/* Events the kernel must be asked for on fd so that the connection makes progress (POLLOUT with unsent data).
 */
short tls_wait_events(struct fd_desc *d, short events);

/* Might some connection be readable without the kernel (else the waits need not look)? */
bool tls_maybe_ready(void);
/* Any TLS connection in this process (else the readiness calls pass straight through)? */
bool tls_any(void);
/*
 * Push every connection's ciphertext the kernel did not take yet; the fds
 * still holding some (up to max) go to fds. Returns how many.
 */
size_t tls_flush_all(int *fds, size_t max);

/* d is gone: forget its epoll registrations (io_net.c). */
void io_net_forget(const struct fd_desc *d);

#endif
