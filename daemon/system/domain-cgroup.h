/* Does a process sit in the cgroup that libvirt made for domain NAME?
 *
 * libvirt places QEMU in its domain cgroup before it execs the emulator, and only root
 * can move a process there, so this proves which domain a claiming process belongs to.
 * Forms accepted (ID is libvirt's domain id, MN the machine name libvirt derives from
 * NAME and ID, see libvirt_machine_name()):
 *   /machine[/...]/MN.libvirt-qemu[/libvirt][/emulator|/vcpuN|/iothreadN]
 *   /machine.slice[/...]/machine-ESC(MN).scope[/libvirt][/emulator|...]
 * on cgroup v1 (any controller line) and v2 (the 0:: line). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* libvirt's machine name for a QEMU domain: "qemu-ID-" plus the name reduced to
 * [A-Za-z0-9.-], runs of '.'/'-' collapsed, at most 64 bytes in all, no trailing '.'/'-'. */
char *libvirt_machine_name(unsigned long id, const char *name);

/* Pure matcher over the text of /proc/PID/cgroup. On no match *why says what was found. */
bool domain_cgroup_content_matches(const char *content, const char *domain, char **why);

/* 1: pid is in the domain's cgroup; 0: it is not (*why set); <0: /proc could not be read. */
int domain_cgroup_check_pid(pid_t pid, const char *domain, char **why);
/* /proc/PID/cgroup, opened once: it names that very process for as long as the fd is
 * open (a reused pid is another /proc entry), and each check is then one read.
 * Returns an fd or a negative errno. */
int domain_cgroup_open(pid_t pid);
/* As domain_cgroup_check_pid(), on an fd from domain_cgroup_open(). */
int domain_cgroup_check_fd(int fd, const char *domain, char **why);
