#include "rulelens_guard.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t depth = 0;
static struct sigaction previous[65];
static int installed = 0;

void rl_guard_enter(void) { depth++; }
void rl_guard_leave(void) { depth--; }

static void handler(int sig) {
    if (depth > 0) {
        static const char message[] =
            "error: the HDF5 library crashed while reading an HDF5 file: the file is damaged in a way HDF5 does not check "
            "(for example its global heap, where variable-length strings and attributes live)\n"
            "fix: regenerate the file (rerun `rulelens dump ... --force`); `rulelens dump-info --verify FILE` checks a file\n";
        ssize_t ignored = write(2, message, sizeof message - 1);
        (void)ignored;
        _exit(1);
    }
    sigaction(sig, &previous[sig], 0);
    raise(sig);
}

void rl_guard_install(void) {
    if (installed) return;
    installed = 1;
    static char alternate_stack[1 << 16];
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = alternate_stack;
    ss.ss_size = sizeof alternate_stack;
    sigaltstack(&ss, 0);
    int signals[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = handler;
        sa.sa_flags = SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(signals[i], &sa, &previous[signals[i]]);
    }
}
