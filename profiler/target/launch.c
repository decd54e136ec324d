#include "profiler/target/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "profiler/target/ptstop.h"

int launch_start(char *const argv[], pid_t *pid, struct pserr *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return pserr_set(err, errno, "cannot start %s: %s", argv[0], strerror(errno));
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return pserr_set(err, e, "cannot start %s: %s", argv[0], strerror(e));
    }
    if (child == 0) {
        /* Signals pystrobe handles go back to their defaults in the command. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGUSR1, SIG_DFL);
        signal(SIGUSR2, SIG_DFL);
        signal(SIGXFSZ, SIG_DFL);
        close(fds[0]);
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(fds[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    close(fds[1]);
    int e = 0;
    ssize_t r;
    do {
        r = read(fds[0], &e, sizeof(e));
    } while (r < 0 && errno == EINTR);
    close(fds[0]);
    if (r == (ssize_t)sizeof(e)) {
        /* The exec failed: reap the child, report why. */
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
            ;
        return pserr_set(err, e, "cannot run '%s': %s", argv[0], strerror(e));
    }
    *pid = child;
    return 0;
}

int launch_reap(pid_t pid, int *status)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    /* Its end only: a ptrace stop of a thread held for native frames must
     * stay for the code that waits for it (profiler/target/ptstop.c). */
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return errno == ECHILD ? -ECHILD : -errno;
    /* A tracer is told of its tracee's stops whatever the flags ask. */
    if (si.si_pid != pid ||
        (si.si_code != CLD_EXITED && si.si_code != CLD_KILLED && si.si_code != CLD_DUMPED))
        return -EAGAIN;
    return waitpid(pid, status, WNOHANG) == pid ? 0 : -EAGAIN;
}

static int wait_for(pid_t pid, int ms, int *status)
{
    for (int waited = 0;; waited += 10) {
        int r = launch_reap(pid, status);
        if (r == 0 || r == -ECHILD)
            return r;
        if (waited >= ms)
            return -ETIMEDOUT;
        /* A thread of it held for native frames that stopped only now
         * would wait for us as we wait for it. */
        ptstop_sweep();
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int launch_finish(pid_t pid, int grace_ms, int *terminated)
{
    int status = 0;
    *terminated = 0;
    if (wait_for(pid, grace_ms, &status) != -ETIMEDOUT)
        return status;
    *terminated = 1;
    kill(pid, SIGTERM);
    if (wait_for(pid, grace_ms, &status) != -ETIMEDOUT)
        return status;
    kill(pid, SIGKILL);
    wait_for(pid, 10000, &status);
    return status;
}

void launch_describe(int status, struct strbuf *out)
{
    if (WIFEXITED(status))
        sb_addf(out, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        sb_addf(out, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        sb_addf(out, "wait status %d", status);
}
