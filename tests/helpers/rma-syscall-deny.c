/* Run a command with some socket options failing as an older kernel would fail them:
 * a seccomp filter at the syscall boundary, so the real, unmodified rma-brokerd takes
 * the code path it takes on such a kernel.
 *   rma-syscall-deny [getsockopt|setsockopt]:OPTNAME:ERRNO... -- COMMAND [ARGS...]
 * e.g. setsockopt:83:92 (SO_PASSRIGHTS, ENOPROTOOPT: Linux before 6.16),
 *      getsockopt:77:92 (SO_PEERPIDFD, ENOPROTOOPT: Linux before 6.5),
 *      getsockopt:77:22 (SO_PEERPIDFD, EINVAL: 6.5-6.15 for a peer already reaped). */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define THIS_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_ARCH AUDIT_ARCH_AARCH64
#else
#error "add this architecture's AUDIT_ARCH_*"
#endif

#define MAX_RULES 8

int main(int argc, char *argv[]) {
        struct sock_filter prog[3 + 6 * MAX_RULES + 1];
        size_t n = 0;
        int i;

        prog[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
        prog[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_ARCH, 1, 0);
        prog[n++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
                char call[16];
                unsigned optname, err;
                long nr;

                if (i > MAX_RULES || sscanf(argv[i], "%15[a-z]:%u:%u", call, &optname, &err) != 3)
                        goto usage;
                nr = strcmp(call, "getsockopt") == 0 ? SYS_getsockopt : strcmp(call, "setsockopt") == 0 ? SYS_setsockopt : -1;
                if (nr < 0 || err == 0 || err > 4095)
                        goto usage;
                /* nr == call && level == SOL_SOCKET && optname == OPTNAME: fail with err */
                prog[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
                prog[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned) nr, 0, 4);
                prog[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]));
                prog[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOL_SOCKET, 0, 2);
                prog[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]));
                prog[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, optname, 0, 1);
                /* Both jumps above land on the next rule; a match falls through to here. */
                prog[n - 5].jf = 5;
                prog[n - 3].jf = 3;
                prog[n++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA));
        }
        if (i >= argc - 1)
                goto usage;
        prog[n++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

        struct sock_fprog fprog = { .len = (unsigned short) n, .filter = prog };
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) < 0) {
                perror("rma-syscall-deny: seccomp");
                return 1;
        }
        execvp(argv[i + 1], argv + i + 1);
        perror("rma-syscall-deny: exec");
        return 127;
usage:
        fprintf(stderr, "usage: %s [getsockopt|setsockopt]:OPTNAME:ERRNO... -- COMMAND [ARGS...]\n", argv[0]);
        return 2;
}
