/* This process's fd table, grown once to its full size while the daemon has one thread.
 *
 * The kernel grows a process's fd table by doubling, and in a process with more than one
 * thread each doubling waits for an RCU grace period (expand_files, synchronize_rcu): a
 * restart that re-adopts thousands of leases (a region fd and a pidfd each) after the
 * region worker thread exists paid about 50 ms per doubling. An empty start makes its
 * memfds before that thread and paid nothing. */
#pragma once

/* Make room for fds 0 to n - 1 now (capped at RLIMIT_NOFILE): one dup at n - 1, closed
 * again; the table never shrinks. 0 or a negative errno (harmless: the table then grows
 * later, as before). */
int fd_table_reserve(unsigned n);
