"""Hostile file systems and concurrent writers (issue 21 items 5, 6 and 8).

Every writing verb runs against: a read-only folder, an output path that is an existing file, a parent that is a file,
a missing parent, a full file system at several amounts of free space (a small tmpfs mounted by the test in a user
namespace when it can; otherwise only the size-limited cases run), a per-process file-size limit (RLIMIT_FSIZE, with
SIGXFSZ ignored so the write fails with EFBIG), an existing output replaced with --force on a full disk, and
concurrent writers (two dumps of one file, two trains into one folder), plus a stale temporary file left by a train
killed in its first instant. Each case must end in a clear `error:`/`fix:` paragraph (never a raw Foundation error,
never advice to --force a file another process is writing) or a correct success; after a failure nothing may be left
that looks like a result (no output file or folder; a pre-existing output byte-identical).

The cases run in one child process: under `unshare -rm` (so the test can mount tmpfs) when that works, else directly.
"""
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import rulelens_bin  # noqa: E402
import fuzzlib  # noqa: E402
from fuzzlib import Tally  # noqa: E402

TINY = ["--layers", "1", "--heads", "2", "--d-model", "16", "--ctx", "12", "--batch", "4", "--warmup", "1",
        "--lr", "0.01", "--threads", "1", "--quiet"]
VAE_TINY = ["--layers", "1", "--enc-layers", "1", "--d-model", "16", "--heads", "2", "--latent", "4", "--ctx", "12",
            "--batch", "4", "--threads", "1", "--quiet"]
RAW = ("NSCocoaErrorDomain", "Error Domain=", "NSPOSIXErrorDomain", "Foundation._GenericObjCError", "errno ")
DESTRUCTIVE = ("--force", "corrupt", "damaged")
FREE = [0, 8 << 10, 48 << 10]          # bytes left free on the full tmpfs
FSIZE = [0, 4 << 10, 40 << 10]         # RLIMIT_FSIZE limits


def run(args, cwd=None, timeout=fuzzlib.TIMEOUT, fsize=None):
    """fuzzlib.run, optionally under a file-size limit (SIGXFSZ ignored, so writes past it fail with EFBIG)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    try:
        p = subprocess.run([rulelens_bin(), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                           preexec_fn=limit if fsize is not None else None)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return "hang", "", ""


def digest(path: Path):
    """A fingerprint of a file or folder tree (names and bytes), None when absent."""
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def resumable_run(out: Path) -> bool:
    """A training folder with a complete save is a result kept on purpose (the error says so; --resume continues)."""
    return any((out / "checkpoints").glob("step-*/manifest.json")) if out.is_dir() else False


class Cases:
    """Builds the inputs once, then runs every case into `tally`."""

    def __init__(self, root: Path, mount: bool):
        self.root, self.mount, self.tally = root, mount, Tally()
        self.n = 0
        inp = root / "in"
        inp.mkdir(parents=True)
        lines = [json.dumps({"prompt": f"{a}+{b}=", "target": str(a + b), "a": a, "b": b, "rule": f"r{(a + b) % 3}",
                             "sources": [[0]] * len(str(a + b))})
                 for a in range(0, 40, 2) for b in (1, 8)]
        (inp / "data.jsonl").write_text("\n".join(lines) + "\n")
        self.data = inp / "data.jsonl"
        self.ckpt = inp / "run"
        self.must(["train", "--data", self.data, "--out", self.ckpt, "--steps", "2", *TINY])
        self.h5 = inp / "acts.h5"
        self.must(["dump", "--checkpoint", self.ckpt, "--data", self.data, "--hooks",
                   "blocks.0.hook_resid_post,blocks.0.hook_mlp_out", "--out", self.h5, "--quiet", "--threads", "1"])
        self.vae = inp / "vae"
        self.must(["vae", "train", "--data", self.data, "--out", self.vae, "--steps", "2", *VAE_TINY])
        big = [json.dumps({"prompt": f"{a}+{b}=", "target": str(a + b), "rule": f"r{(a + b) % 3}"})
               for a in range(100) for b in range(100)]
        (inp / "big.jsonl").write_text("\n".join(big) + "\n")
        self.big = inp / "big.jsonl"

    def must(self, args):
        code, _, err = run(args, timeout=120)
        assert code == 0, f"fixture {args[:2]} failed: {err}"

    # The writing verbs: name → argv with OUT as its output (a folder unless the verb's OUT names a file).
    def verbs(self):
        c, d, h, v = self.ckpt, self.data, self.h5, self.vae
        site = ["--site", "blocks.0.hook_resid_post"]
        return {
            "train": lambda o: ["train", "--data", d, "--out", o, "--steps", "2", *TINY],
            "vae train": lambda o: ["vae", "train", "--data", d, "--out", o, "--steps", "2", *VAE_TINY],
            "dump": lambda o: ["dump", "--checkpoint", c, "--data", d, "--hooks", "blocks.0.hook_resid_post", "--out", o,
                               "--quiet", "--threads", "1"],
            "dump h5": lambda o: ["dump", "--checkpoint", c, "--data", d, "--hooks", "blocks.0.hook_resid_post",
                                  "--out", o / "acts.h5", "--quiet", "--threads", "1"],
            "probe pca": lambda o: ["probe", "pca", "--file", h, *site, "--label", "rule", "--out", o, "--quiet"],
            "probe pca h5": lambda o: ["probe", "pca", "--file", h, *site, "--out", o / "p.h5", "--quiet"],
            "probe separability": lambda o: ["probe", "separability", "--file", h, *site, "--label", "rule", "--out", o,
                                             "--quiet"],
            "probe linear": lambda o: ["probe", "linear", "--file", h, *site, "--label", "rule", "--out", o, "--quiet"],
            "probe cka": lambda o: ["probe", "cka", "--file", h, "--site", "blocks.0.hook_resid_post",
                                    "--site", "blocks.0.hook_mlp_out", "--out", o, "--quiet"],
            "probe ntk": lambda o: ["probe", "ntk", "--checkpoint", c, "--data", d, "--label", "rule", "--out", o,
                                    "--quiet", "--threads", "1"],
            "data generate": lambda o: ["data", "generate", "--task", "addition", "--count", "200", "--out", o],
            "data pairs": lambda o: ["data", "pairs", "--task", "addition", "--limit", "8", "--out", o],
            "init": lambda o: ["init", "--out", o, "--layers", "1", "--heads", "2", "--d-model", "16", "--ctx", "12"],
            "ablate": lambda o: ["ablate", "--checkpoint", c, "--data", d, "--out", o, "--quiet",
                                 "--threads", "1"],
            "patch": lambda o: ["patch", "--checkpoint", c, "--task", "addition", "--limit", "8", "--out", o, "--quiet", "--threads", "1"],
            "lens": lambda o: ["lens", "--checkpoint", c, "--data", d, "--out", o, "--quiet", "--threads", "1"],
            "relabel": lambda o: ["relabel", "--file", h, "--data", d, "--columns", "carry", "--out", o, "--quiet"],
            "eval": lambda o: ["eval", "--checkpoint", c, "--data", d, "--out", o, "--quiet", "--threads", "1"],
            "logits": lambda o: ["logits", "--checkpoint", c, "--data", d, "--out", o, "--quiet", "--threads", "1"],
            "grad": lambda o: ["grad", "--checkpoint", c, "--data", d, "--out", o, "--quiet", "--threads", "1"],
            "retrieve": lambda o: ["retrieve", "--checkpoint", c, "--data", d, "--limit", "8", "--bootstrap", "10",
                                   "--alpha", "1", "--out", o, "--quiet", "--threads", "1"],
            "vae encode": lambda o: ["vae", "encode", "--checkpoint", v, "--data", d, "--out", o, "--quiet"],
            "vae eval": lambda o: ["vae", "eval", "--checkpoint", v, "--data", d, "--out", o, "--quiet"],
            "vae logits": lambda o: ["vae", "logits", "--checkpoint", v, "--data", d, "--out", o, "--quiet"],
        }

    def place(self, tag):
        self.n += 1
        p = self.root / "cases" / f"{self.n:03d}-{tag.replace(' ', '_')}"
        p.mkdir(parents=True)
        return p

    # MARK: - Judging one case

    def judge(self, verb, case, result, out: Path, before=None, may_succeed=True):
        """A clear error leaving `out` as it was (absent, or byte-identical to `before`), or — when `may_succeed` —
        a success that wrote `out`. A raw Foundation error counts as unclear even with a fix line."""
        code, stdout, err = result
        if code == 1 and any(r in err for r in RAW):
            self.tally.record(verb, case, "unclear", f"raw system error: {err[-300:]}")
            return
        if code == 0 and may_succeed:
            ok = out.exists() and (out.is_file() or any(not p.name.startswith(".") for p in out.iterdir()))
            self.tally.record(verb, case, "correct" if ok else "silent", "" if ok else f"no output in {out}")
            return
        leftovers = []
        if code == 1 and digest(out) != before and not resumable_run(out):
            leftovers = [out]
        self.tally.expect_error(verb, case, (code, stdout, err), leftovers)

    # MARK: - The families of cases

    def read_only(self):
        """OUT inside a folder that cannot be written (a read-only mount; chmod 555 when not root)."""
        if not self.mount and os.geteuid() == 0:
            return   # root ignores permission bits and cannot mount here: nothing to try
        for verb, argv in self.verbs().items():
            base = self.place("ro")
            ro = base / "ro"
            ro.mkdir()
            (ro / "keep.txt").write_text("x")
            if self.mount:
                subprocess.run(["mount", "--bind", ro, ro], check=True)
                subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
            else:
                ro.chmod(0o555)
            out = ro / "out"
            self.judge(verb, "read-only folder", run(argv(out)), out, may_succeed=False)
            if self.mount:
                subprocess.run(["umount", ro], check=True)
            else:
                ro.chmod(0o755)

    def out_is_file(self):
        """OUT is an existing regular file: refused, the file untouched."""
        for verb, argv in self.verbs().items():
            base = self.place("file")
            out = base / "out"
            out.write_text("precious\n")
            args = argv(out)
            if args[-1] != out and str(out) not in map(str, args):
                continue
            before = digest(out)
            self.judge(verb, "output is a file", run(args), out, before, may_succeed=False)

    def parent_is_file(self):
        """A component of OUT's path is a regular file (ENOTDIR)."""
        for verb, argv in self.verbs().items():
            base = self.place("notdir")
            (base / "f").write_text("precious\n")
            out = base / "f" / "out"
            before = digest(base / "f")
            code, so, err = run(argv(out))
            # The file that stands in the way must be untouched.
            self.judge(verb, "parent is a file", (code, so, err), base / "f", before, may_succeed=False)

    def missing_parent(self):
        """OUT's parent does not exist: created (success) or refused clearly, with nothing left."""
        for verb, argv in self.verbs().items():
            base = self.place("missing")
            out = base / "no" / "such" / "out"
            code, so, err = run(argv(out))
            if code == 0:
                self.judge(verb, "missing parent", (code, so, err), out)
            else:
                self.judge(verb, "missing parent", (code, so, err), base / "no", None, may_succeed=False)

    def full_disk(self):
        """A tmpfs with only FREE bytes left; and the same with an existing output replaced under --force."""
        if not self.mount:
            return
        verbs = self.verbs()
        for verb, argv in verbs.items():
            for free in FREE:
                base = self.place(f"full{free}")
                fs = base / "fs"
                fs.mkdir()
                subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", fs], check=True)
                try:
                    self.fill(fs, free)
                    out = fs / "out"
                    self.judge(verb, f"full disk ({free} B free)", run(argv(out)), out)
                finally:
                    subprocess.run(["umount", fs], check=True)
        for verb, argv in verbs.items():
            if verb in ("train", "vae train"):
                continue   # a run is never replaced (--force is refused)
            base = self.place("forcefull")
            fs = base / "fs"
            fs.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", fs], check=True)
            try:
                out = fs / "out"
                out.mkdir()   # the folder of an OUT/FILE.h5 output
                code, _, err = run(argv(out))
                if code != 0:
                    self.tally.record(verb, "force on a full disk", "unclear", f"could not make the first output: {err[-200:]}")
                    continue
                before = digest(out)
                self.fill(fs, 0)
                # Removing the old output may free the room the new one needs: success is fine, if complete.
                self.judge(verb, "--force on a full disk", run(argv(out) + ["--force"]), out, before)
            finally:
                subprocess.run(["umount", fs], check=True)

    @staticmethod
    def fill(fs: Path, free: int):
        st = os.statvfs(fs)
        left = st.f_bavail * st.f_frsize - free
        if left > 0:
            with open(fs / ".filler", "wb") as f:
                f.write(b"\0" * left)

    def file_size_limit(self):
        """RLIMIT_FSIZE: any write past the limit fails (EFBIG)."""
        for verb, argv in self.verbs().items():
            for limit in FSIZE:
                base = self.place(f"fsize{limit}")
                out = base / "out"
                self.judge(verb, f"file size limit {limit}", run(argv(out), fsize=limit), out)

    def concurrent(self):
        """A second writer while the first is still writing: told to wait for the other process, never to --force."""
        verbs = self.verbs()
        for flags in ([], ["--resume"], ["--force"]):
            base = self.place("dump2")
            out = base / "acts.h5"
            first = subprocess.Popen([rulelens_bin(), "dump", "--checkpoint", self.ckpt, "--data", self.big, "--hooks", "*",
                                      "--out", out, "--quiet", "--threads", "1", "--batch", "1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self.second_writer("dump", f"second dump {' '.join(flags) or 'fresh'}", first, out,
                               lambda: run(["dump", "--checkpoint", self.ckpt, "--data", self.big, "--hooks", "*",
                                            "--out", out, "--quiet", "--threads", "1", *flags]))
        for flags in ([], ["--resume"]):
            base = self.place("train2")
            out = base / "run"
            first = subprocess.Popen([rulelens_bin(), "train", "--data", self.big, "--out", out, "--steps", "100000",
                                      "--save-every", "1", *TINY], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self.second_writer("train", f"second train {' '.join(flags) or 'fresh'}", first, out / "train_config.json",
                               lambda: run(verbs["train"](out) + flags))

    def second_writer(self, verb, case, first, marker: Path, second):
        try:
            deadline = time.time() + 15
            while not marker.exists() and time.time() < deadline and first.poll() is None:
                time.sleep(0.05)
            time.sleep(0.3)
            if first.poll() is not None:
                self.tally.record(verb, case, "unclear", f"the first writer ended early: {first.stderr.read()[-300:]}")
                return
            code, so, err = second()
            alive = first.poll() is None
            if code == 1 and alive and "another" in err and str(first.pid) in err \
                    and not any(w in err.split("fix:")[-1] for w in DESTRUCTIVE):
                self.tally.record(verb, case, "clear")
            elif code == 0:
                self.tally.record(verb, case, "silent", "a second writer ran beside the first")
            else:
                self.tally.record(verb, case, "unclear", f"exit {code}, first alive {alive}: {err[-300:]}")
        finally:
            first.kill()
            first.wait()

    def stale_temporaries(self):
        """A train killed in its first instant leaves only a temporary config: --resume and a fresh run both work."""
        for verb in ("train", "vae train"):
            for flags in ([], ["--resume"]):
                base = self.place("stale")
                out = base / "run"
                out.mkdir()
                (out / ".train_config.json.tmp-999999-123").write_text("{")
                args = self.verbs()[verb](out) + flags
                self.tally.expect_success(verb, f"stale temporary config, {' '.join(flags) or 'fresh'}", run(args),
                                          lambda _: None if (out / "model.safetensors").exists() else "no checkpoint written")

    def all(self):
        for family in (self.concurrent, self.stale_temporaries, self.read_only, self.out_is_file, self.parent_is_file,
                       self.missing_parent, self.full_disk, self.file_size_limit):
            family()
        return self.tally


def can_mount() -> bool:
    try:
        p = subprocess.run(["unshare", "-rm", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d"],
                           capture_output=True, timeout=20)
        return p.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_fuzz_file_systems(tmp_path):
    result = tmp_path / "tally.json"
    mount = can_mount()
    cmd = [sys.executable, __file__, str(tmp_path / "work"), str(result), "mount" if mount else "plain"]
    if mount:
        cmd = ["unshare", "-rm"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    saved = json.loads(result.read_text())
    tally = Tally()
    for command, counts in saved["counts"].items():
        tally.counts[command].update(counts)
    tally.failures = saved["failures"]
    summary = tally.report("fs")
    if os.environ.get("RULELENS_FS_FAILURES"):
        Path(os.environ["RULELENS_FS_FAILURES"]).write_text("\n".join(tally.failures))
    # Without mounts (no user namespaces) the read-only mount and full-disk families cannot run.
    assert summary["total"]["tried"] >= (150 if mount else 100)
    assert not tally.failures, f"{len(tally.failures)} bad outcomes:\n" + "\n".join(tally.failures)


if __name__ == "__main__":
    work, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    tally = Cases(work, mode == "mount").all()
    out.write_text(json.dumps({"counts": {k: dict(v) for k, v in tally.counts.items()}, "failures": tally.failures}))
