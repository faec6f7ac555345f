/*
 * proc_vfork.c - vfork(), clone() and _Fork(): how the runtime knows,
 * without a system call, whether the calling thread is a vfork child.
 *
 * A vfork child runs in its parent's memory until it execs or exits, so it
 * must not change the parent's fd table (fdtab_foreign, asked at every open
 * and close of a served fd). Asking getpid() there was two system calls per
 * open and close. Here vfork() marks the calling thread (thread-local: the
 * parent's other threads go on unmarked) before the kernel's vfork; the
 * child runs with the mark, and the parent, which the kernel resumes only
 * after the child's exec or exit, puts the mark back as it was.
 *
 * What may share memory with a child without passing here (clone() with
 * CLONE_VM, raw clone/clone3/fork/vfork through syscall(), _Fork, which
 * skips the fork handlers that tell the table it changed hands) switches
 * the process to asking getpid() from then on (fdtab_pid_untracked). On
 * other architectures the runtime has no vfork() of its own and always
 * asks getpid().
 */
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdarg.h>

#include "runtime/shield_internal.h"

#if defined(__x86_64__)

/*
 * Before the kernel's vfork: the thread's mark (its value before is
 * returned), and a spawn window: every description alive may be the
 * child's too (it may exec with them while the parent's other threads
 * close theirs), so nothing released until the parent resumes is kept.
 */
__attribute__((visibility("hidden"), used)) int scone_vfork_enter(void);
int scone_vfork_enter(void)
{
	scone_shield_spawn_window(true);
	return fdtab_vfork_enter();
}

/* In the parent, resumed (the child exec'd or left): the mark as it was, the window closed. */
__attribute__((visibility("hidden"), used)) void scone_vfork_leave(int was);
void scone_vfork_leave(int was)
{
	fdtab_vfork_leave(was);
	scone_shield_spawn_window(false);
}

/* vfork's error: errno from the kernel's negative answer, and -1 (a tail call from vfork). */
__attribute__((visibility("hidden"), used)) long scone_vfork_failed(long neg);
long scone_vfork_failed(long neg)
{
	errno = (int)-neg;
	return -1;
}

/*
 * The return address is kept in a register across the system call (the
 * child's calls overwrite the stack below the caller's frame before the
 * parent resumes), as glibc's vfork does; so is the thread's mark before
 * (rsi: the kernel keeps it). Where a shadow stack is in use, the child
 * jumps back without popping it, so that the parent's return still
 * matches.
 */
__asm__(".text\n"
	".globl vfork\n"
	".globl __vfork\n"
	".type vfork, @function\n"
	".type __vfork, @function\n"
	".p2align 4\n"
	"vfork:\n"
	"__vfork:\n"
	"	endbr64\n"
	"	subq $8, %rsp\n"
	"	call scone_vfork_enter\n"
	"	addq $8, %rsp\n"
	"	movl %eax, %esi\n"
	"	popq %rdi\n"
	"	movl $58, %eax\n" /* __NR_vfork */
	"	syscall\n"
	"	pushq %rdi\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	pushq %rax\n"
	"	movl %esi, %edi\n"
	"	call scone_vfork_leave\n"
	"	popq %rax\n"
	"	cmpq $-4095, %rax\n"
	"	jae 3f\n"
	"	ret\n"
	"1:	xorl %edx, %edx\n"
	"	rdsspq %rdx\n"
	"	testq %rdx, %rdx\n"
	"	jz 2f\n"
	"	popq %rdi\n"
	"	jmp *%rdi\n"
	"2:	ret\n"
	"3:	movq %rax, %rdi\n"
	"	jmp scone_vfork_failed\n"
	".size vfork, .-vfork\n"
	".size __vfork, .-__vfork\n");

__attribute__((constructor)) static void vfork_is_ours(void)
{
	fdtab_vfork_tracked();
}

#endif

int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...) __attribute__((alias("scone_clone")));
int __clone(int (*fn)(void *), void *stack, int flags, void *arg, ...) __attribute__((alias("scone_clone")));
int scone_clone(int (*fn)(void *), void *stack, int flags, void *arg, ...);

int scone_clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	REAL(clone);
	void *ptid, *tls, *ctid;
	va_list ap;
	int r;

	/* (the optional arguments are read as glibc's clone reads them: always) */
	va_start(ap, arg);
	ptid = va_arg(ap, void *);
	tls = va_arg(ap, void *);
	ctid = va_arg(ap, void *);
	va_end(ap);
	/* (with CLONE_VM a child in this memory; without, a fork that runs no fork handler) */
	fdtab_pid_untracked();
	/* (the child may hold the fds: nothing released meanwhile is kept) */
	scone_shield_spawn_window(true);
	r = real_clone(fn, stack, flags, arg, ptid, tls, ctid);
	scone_shield_spawn_window(false);
	return r;
}

pid_t _Fork(void)
{
	REAL(_Fork);
	pid_t r;

	fdtab_pid_untracked(); /* (no fork handler tells the child's table it is its own) */
	scone_shield_spawn_window(true);
	r = real__Fork();
	scone_shield_spawn_window(false); /* (in the child too: its count starts as the parent's) */
	return r;
}
