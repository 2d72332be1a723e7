#include "rulelens_process.h"

#include <signal.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

int rl_die_with_parent(void) {
#ifdef __linux__
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return 0;
    // The parent may have exited before prctl took effect: then we were re-parented already.
    if (getppid() != parent || parent == 1) return -1;
#endif
    return 0;
}
