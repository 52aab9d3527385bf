"""Converting into a folder that holds an earlier conversion: the new set is written beside the old one and
swapped in whole. Killed at any step, the folder never holds a mix of old and new files that loads; the next
run finishes the swap or discards it, so the folder then holds exactly the old set or the new one, and no
temporary folder is left behind."""
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from voxtral_desk.config import ModelFileError
from voxtral_desk.convert import convert_checkpoint
from voxtral_desk.loader import load_model
from voxtral_desk.testmodel import make_test_model

SHARDS = 200 << 10  # four shards of the tiny model

# Re-converts into copies of the old folder, in forked children that die (os._exit, no clean-up) at the k-th
# rename or deletion, k = 1, 2, ... until one run gets through; after each, unless argv[5] is "once", a second
# run dies while writing tensors. Prints the exit codes.
CHILD = textwrap.dedent("""
    import json, os, shutil, sys
    from pathlib import Path
    from voxtral_desk.convert import convert_checkpoint

    old, src, base, shard = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]) or None
    twice = sys.argv[5] == "twice"

    def run_until(kill_at):
        steps = 0
        def step(real):
            def wrapped(*a, **k):
                nonlocal steps
                steps += 1
                if steps == kill_at:
                    os._exit(9)
                return real(*a, **k)
            return wrapped
        os.replace, os.unlink = step(os.replace), step(os.unlink)

    def die_writing(done, total):
        os._exit(8)

    codes = {}
    for k in range(1, 200):
        folder = base / f"k{k}"
        shutil.copytree(old, folder)
        pid = os.fork()
        if pid == 0:
            run_until(k)
            convert_checkpoint(src, folder / "tiny.gguf", shard)
            os._exit(0)
        first, second = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), 0
        if twice:
            pid = os.fork()
            if pid == 0:
                convert_checkpoint(src, folder / "tiny.gguf", shard, die_writing)
                os._exit(0)
            second = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        codes[k] = [first, second]
        if first == 0:
            break
    print(json.dumps(codes))
""")


def files_of(folder: Path) -> dict[str, str]:
    """Name -> SHA-256 of the files a loader sees (hidden temporary folders are not among them)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    base = tmp_path_factory.mktemp("convert-swap")
    make_test_model(base / "seed0" / "tiny", "tiny", seed=0)
    make_test_model(base / "seed1" / "tiny", "tiny", seed=1)
    return base


@pytest.mark.parametrize("new_shards", [SHARDS, 0], ids=["same file names", "one file instead of shards"])
def test_a_conversion_killed_at_any_step_leaves_the_old_set_or_the_new_one(sources, tmp_path, new_shards):
    old = tmp_path / "old"
    convert_checkpoint(sources / "seed0" / "tiny", old / "tiny.gguf", SHARDS)
    ref = tmp_path / "ref"
    convert_checkpoint(sources / "seed1" / "tiny", ref / "tiny.gguf", new_shards or None)
    old_set, new_set = files_of(old), files_of(ref)
    assert len(old_set) == 6 and ggufs(old_set).keys() & ggufs(new_set).keys() == (set() if new_shards == 0 else
                                                                                  ggufs(old_set).keys())
    assert set(ggufs(old_set).values()).isdisjoint(ggufs(new_set).values())  # every GGUF file differs
    base = tmp_path / "runs"
    base.mkdir()
    done = subprocess.run([sys.executable, "-c", CHILD, str(old), str(sources / "seed1" / "tiny"), str(base),
                           str(new_shards), "twice"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    codes = json.loads(done.stdout)
    assert len(codes) > 8 and list(codes.values())[-1][0] == 0  # every step was a kill point, the last run finished
    for k, (first, second) in codes.items():
        folder = base / f"k{k}"
        assert first in (0, 9) and second in (0, 8), (k, first, second, done.stderr)
        # After the second run (killed while writing), the first one's swap was finished or discarded.
        assert files_of(folder) in (old_set, new_set), k
        load_model(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert {e["name"]: e["sha256"] for e in manifest["files"]} == {n: h for n, h in files_of(folder).items()
                                                                        if n != "manifest.json"}
        # A run that gets through leaves the new set and nothing temporary.
        convert_checkpoint(sources / "seed1" / "tiny", folder / "tiny.gguf", new_shards or None)
        assert files_of(folder) == new_set and sorted(p.name for p in folder.iterdir()) == sorted(new_set)


def test_a_killed_swap_never_leaves_a_mix_that_loads(sources, tmp_path):
    """Right after the kill (before any further run), the folder opens as the old set or the new one, or not
    at all with a clear message."""
    old = tmp_path / "old"
    convert_checkpoint(sources / "seed0" / "tiny", old / "tiny.gguf", SHARDS)
    ref = tmp_path / "ref"
    convert_checkpoint(sources / "seed1" / "tiny", ref / "tiny.gguf", SHARDS)
    old_set, new_set = files_of(old), files_of(ref)
    base = tmp_path / "runs"
    base.mkdir()
    done = subprocess.run([sys.executable, "-c", CHILD, str(old), str(sources / "seed1" / "tiny"), str(base),
                           str(SHARDS), "once"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    refused = 0
    for k in json.loads(done.stdout):
        folder = base / f"k{k}"
        try:
            load_model(folder)
        except ModelFileError:
            refused += 1
            continue  # an incomplete set, refused with a message: the next run completes it
        assert ggufs(files_of(folder)) in (ggufs(old_set), ggufs(new_set)), k
    assert refused  # the kills did land inside the swap


def ggufs(files: dict[str, str]) -> dict[str, str]:
    return {n: h for n, h in files.items() if n.endswith(".gguf")}


def test_reconverting_with_fewer_shards_leaves_no_old_shard(sources, tmp_path):
    out = tmp_path / "out"
    convert_checkpoint(sources / "seed0" / "tiny", out, SHARDS)
    (out / "notes.txt").write_text("mine")  # not the converter's: stays
    files = convert_checkpoint(sources / "seed0" / "tiny", out, None)
    assert [f.name for f in files] == ["tiny.gguf", "tekken.json", "manifest.json"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt", "tekken.json", "tiny.gguf"]
    assert load_model(out).config.params == load_model(sources / "seed0" / "tiny").config.params


def test_a_failed_conversion_leaves_the_old_set_and_no_temporary_folder(sources, tmp_path):
    out = tmp_path / "out"
    convert_checkpoint(sources / "seed0" / "tiny", out, SHARDS)
    before = files_of(out)

    def fail(done, total):
        raise RuntimeError("stop")
    with pytest.raises(RuntimeError):
        convert_checkpoint(sources / "seed1" / "tiny", out, None, fail)
    assert files_of(out) == before and sorted(p.name for p in out.iterdir()) == sorted(before)
    shutil.rmtree(out)
