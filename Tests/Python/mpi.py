"""Launching rulelens under Open MPI's mpirun for the tests (2 ranks on a 2-core machine: --oversubscribe)."""
import os
import shutil
import subprocess

from conftest import rulelens_bin

MPIRUN = shutil.which("mpirun")


def mpirun_command(ranks, *args, per_rank_shell=None):
    """The mpirun command line for `rulelens ARGS` on `ranks` ranks (as root too: --allow-run-as-root).
    `per_rank_shell`: run this shell snippet per rank instead (it sees $OMPI_COMM_WORLD_RANK)."""
    cmd = [MPIRUN, "--oversubscribe", "-np", str(ranks)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    if per_rank_shell is not None:
        return cmd + ["sh", "-c", per_rank_shell]
    return cmd + [rulelens_bin(), *map(str, args)]


def run_mpi(ranks, *args, check=True, cwd=None, timeout=600, per_rank_shell=None):
    proc = subprocess.run(mpirun_command(ranks, *args, per_rank_shell=per_rank_shell), capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mpirun -np {ranks} rulelens {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc
