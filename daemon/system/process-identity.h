/* Finding a process and a region again after a restart: the pieces re-adoption needs.
 *
 * A pid alone names nothing after a restart (pids are reused), so a process is known by
 * its pid and its start time. Its region is found among its fds by inode, and taken with
 * pidfd_getfd() (CAP_SYS_PTRACE over other users' processes): the region fd that the
 * broker held died with the old broker unless the fd store kept it. Which process holds
 * which inode is read from /proc once per restart (proc-index.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Start time of pid (field 22 of /proc/PID/stat, clock ticks after boot). */
int proc_start_time(pid_t pid, uint64_t *ret);
/* A pidfd for pid, if it is still the process that started at start_time: 0, or -ESRCH
 * when it is gone (or another process has its pid now). start_time 0: not known, any
 * process with that pid (the caller checks what it holds). */
int pidfd_open_checked(pid_t pid, uint64_t start_time, int *ret_pidfd);
/* Is the process behind pidfd still running? Checks made on its pid in /proc between
 * pidfd_open and this call were about this very process only if it is. */
bool pidfd_is_alive(int pidfd);
/* A copy of fd fdnum of the process behind pidfd (close-on-exec). */
int pidfd_take_fd(int pidfd, int fdnum, int *ret_fd);
/* The effective uid of the process behind pidfd (pid, for kernels before 6.13, whose
 * checks pidfd_is_alive() then confirms). -ESRCH when it is gone. */
int process_effective_uid(pid_t pid, int pidfd, uid_t *ret);
