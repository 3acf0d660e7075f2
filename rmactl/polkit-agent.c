/* pkttyagent for the length of one rmactl command. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "polkit-agent.h"

/* pkttyagent registers with polkitd in milliseconds; a stuck one must not hold rmactl. */
#define AGENT_READY_TIMEOUT_MS 10000

static pid_t agent_pid;

bool polkit_agent_wanted(void) {
        return geteuid() != 0 && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && access(PKTTYAGENT_PATH, X_OK) == 0;
}

/* The child: the notify fd is the one fd it inherits beyond stdio. As systemctl's, the
 * agent answers for the caller's logind session: polkit 122 finds an agent by session
 * or process, never by bus name, and rmactl is a bus name to rma-brokerd. */
_Noreturn static void exec_agent(int notify_fd) {
        char fd_text[16];

        if (fcntl(notify_fd, F_SETFD, 0) < 0)
                _exit(127);
        snprintf(fd_text, sizeof(fd_text), "%d", notify_fd);
        execl(PKTTYAGENT_PATH, PKTTYAGENT_PATH, "--notify-fd", fd_text, "--fallback", (char *) NULL);
        _exit(127);
}

int polkit_agent_open(void) {
        _cleanup_close_ int ready_read = -EBADF, ready_write = -EBADF;
        struct pollfd pfd;
        int pipe_fds[2];
        pid_t pid;

        if (agent_pid > 0)
                return 0;
        if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                return -errno;
        ready_read = pipe_fds[0];
        ready_write = pipe_fds[1];
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                exec_agent(ready_write);
        agent_pid = pid;
        ready_write = safe_close(ready_write);
        /* pkttyagent closes its end once it is registered; its exit closes it too. */
        pfd = (struct pollfd) { .fd = ready_read, .events = POLLIN };
        if (poll(&pfd, 1, AGENT_READY_TIMEOUT_MS) <= 0) {
                polkit_agent_close();
                return -ETIMEDOUT;
        }
        return 0;
}

void polkit_agent_close(void) {
        if (agent_pid <= 0)
                return;
        (void) kill(agent_pid, SIGTERM);
        (void) kill(agent_pid, SIGCONT);
        while (waitpid(agent_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        agent_pid = 0;
}
