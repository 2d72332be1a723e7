#pragma once
// Child processes of `rulelens run --jobs N` must not outlive the run that started them: an orphan still writing a
// step folder would race a restarted run. prctl is variadic, so Swift cannot call it; this wraps it.

/// Asks the kernel to send SIGTERM to this process when its parent exits (Linux; elsewhere it does nothing).
/// Returns 0, or -1 when the parent is already gone (the caller should stop).
int rl_die_with_parent(void);
