#pragma once
// Crash guard for reads of damaged files. Some damage HDF5 does not detect before dereferencing it — above all a
// corrupt global heap, where variable-length strings (RuleLens's root attributes) live — and the library then
// faults or aborts inside a read. RuleLens counts how deep it is inside HDF5 calls (HDF5.locked); a SIGSEGV, SIGBUS,
// SIGABRT, SIGFPE or SIGILL raised while the count is positive is reported as an `error:`/`fix:` paragraph with exit
// code 1, since nothing but the damaged file can be at fault there. Outside HDF5 the previous handler (Swift's
// backtracer) runs as before.

/// Enters / leaves a region where a crash means a damaged file (nests).
void rl_guard_enter(void);
void rl_guard_leave(void);
/// Installs the handlers (once per process; later calls do nothing).
void rl_guard_install(void);
