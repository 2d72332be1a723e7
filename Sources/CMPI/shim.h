#pragma once
// Open MPI's communicator, datatype, operation and MPI_IN_PLACE handles are macros over addresses of globals
// (&ompi_mpi_comm_world, &ompi_mpi_float, …) that Swift cannot import. RuleLens only ever talks to
// MPI_COMM_WORLD, so each call it makes is wrapped here as one static inline function with the handles filled in.
// Counts are int in MPI; the Swift side splits longer buffers.
#include <mpi.h>
#include <stdint.h>

static inline int rl_mpi_success(void) { return MPI_SUCCESS; }
static inline int rl_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }

/// MPI_Init_thread asking for MPI_THREAD_FUNNELED (only the main thread calls MPI; worker threads only compute).
static inline int rl_mpi_init(int *provided) { return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided); }
static inline int rl_mpi_initialized(void) { int flag = 0; MPI_Initialized(&flag); return flag; }
static inline int rl_mpi_finalized(void) { int flag = 0; MPI_Finalized(&flag); return flag; }
static inline int rl_mpi_finalize(void) { return MPI_Finalize(); }
static inline int rl_mpi_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }

static inline int rl_mpi_rank(void) { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
static inline int rl_mpi_size(void) { int s = 1; MPI_Comm_size(MPI_COMM_WORLD, &s); return s; }
static inline int rl_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static inline double rl_mpi_wtime(void) { return MPI_Wtime(); }

/// Sum over ranks, in place: every rank ends with the same sums.
static inline int rl_mpi_allreduce_sum_float(float *buffer, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static inline int rl_mpi_allreduce_sum_double(double *buffer, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static inline int rl_mpi_allreduce_max_int64(int64_t *buffer, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
}
static inline int rl_mpi_allreduce_min_int64(int64_t *buffer, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
}

/// Non-blocking sum in place (for bucketed reduction); `request` receives the handle for rl_mpi_wait.
static inline int rl_mpi_iallreduce_sum_float(float *buffer, int count, MPI_Request *request) {
    return MPI_Iallreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, request);
}
static inline int rl_mpi_wait(MPI_Request *request) { return MPI_Wait(request, MPI_STATUS_IGNORE); }
static inline int rl_mpi_test(MPI_Request *request, int *done) { return MPI_Test(request, done, MPI_STATUS_IGNORE); }
static inline MPI_Request rl_mpi_request_null(void) { return MPI_REQUEST_NULL; }

static inline int rl_mpi_bcast_bytes(void *buffer, int count, int root) {
    return MPI_Bcast(buffer, count, MPI_BYTE, root, MPI_COMM_WORLD);
}
/// Every rank's `count` bytes from `send`, concatenated in rank order into `receive` (size × count bytes).
static inline int rl_mpi_allgather_bytes(const void *send, void *receive, int count) {
    return MPI_Allgather(send, count, MPI_BYTE, receive, count, MPI_BYTE, MPI_COMM_WORLD);
}
/// Variable-length gather to every rank: rank r contributes counts[r] bytes placed at displacements[r].
static inline int rl_mpi_allgatherv_bytes(const void *send, int count, void *receive, const int *counts, const int *displacements) {
    return MPI_Allgatherv(send, count, MPI_BYTE, receive, counts, displacements, MPI_BYTE, MPI_COMM_WORLD);
}
