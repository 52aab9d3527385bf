"""The packaging files that no other test touches: the PyInstaller spec, the desktop entry, the shell
scripts."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"


def spec_data_dirs() -> list[tuple[str, str]]:
    tree = ast.parse((PACKAGING / "voxtral-desk.spec").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DATA_DIRS" for t in node.targets):
            return [tuple(pair) for pair in ast.literal_eval(node.value)]
    raise AssertionError("DATA_DIRS not found in voxtral-desk.spec")


def test_spec_lists_the_data_folders():
    dirs = dict(spec_data_dirs())
    # Bundle destinations are where the code looks under sys._MEIPASS: voxtral_desk.gpu.shaders_dir,
    # voxtral_desk.app.resources.resources_dir, and the catalog inside the package.
    assert dirs == {"shaders": "shaders", "resources": "resources", "voxtral_desk/catalog": "voxtral_desk/catalog"}
    assert (ROOT / "shaders" / "q4_matvec.wgsl").is_file()  # the file shaders_dir() looks for
    assert (ROOT / "resources" / "voxtral-desk.svg").is_file()  # the app icon the build scripts use
    assert (ROOT / "voxtral_desk" / "catalog" / "models.json").is_file()
    spec = (PACKAGING / "voxtral-desk.spec").read_text()
    assert 'copy_metadata("mistral_common")' in spec  # mistral_common reads its version on import
    assert "NSMicrophoneUsageDescription" in spec


def test_desktop_entry():
    entry = dict(line.split("=", 1) for line in (PACKAGING / "linux" / "voxtral-desk.desktop").read_text().splitlines()
                 if "=" in line)
    assert entry["Type"] == "Application" and entry["Exec"] == "voxtral-desk" and entry["Icon"] == "voxtral-desk"
    assert entry["Categories"].endswith(";") and entry["Terminal"] == "false"


def test_shell_scripts_parse():
    for script in ("build_linux.sh", "linux/install.sh", "macos/build_macos.sh"):
        subprocess.run(["bash", "-n", str(PACKAGING / script)], check=True)


def test_install_sh_installs_and_uninstalls(tmp_path):
    """install.sh from an unpacked archive (with a stand-in for the bundle) into a scratch prefix."""
    archive = tmp_path / "voxtral-desk-0.0.0-linux-x86_64"
    (archive / "voxtral-desk").mkdir(parents=True)
    exe = archive / "voxtral-desk" / "voxtral-desk"
    exe.write_text("#!/bin/sh\necho bundled voxtral-desk \"$@\"\n")
    exe.chmod(0o755)
    shutil.copy(PACKAGING / "linux" / "install.sh", archive)
    shutil.copy(PACKAGING / "linux" / "voxtral-desk.desktop", archive)
    shutil.copy(ROOT / "resources" / "voxtral-desk.svg", archive)
    prefix = tmp_path / "prefix"
    env = {**os.environ, "HOME": str(tmp_path / "home")}

    subprocess.run(["bash", str(archive / "install.sh"), "--prefix", str(prefix)], check=True, env=env,
                   capture_output=True)
    link = prefix / "bin" / "voxtral-desk"
    assert link.is_symlink()
    assert subprocess.run([str(link), "--self-test"], capture_output=True, text=True).stdout.strip() == \
        "bundled voxtral-desk --self-test"
    desktop = (prefix / "share" / "applications" / "voxtral-desk.desktop").read_text()
    assert f"Exec={prefix}/lib/voxtral-desk/voxtral-desk\n" in desktop
    assert (prefix / "share" / "icons" / "hicolor" / "scalable" / "apps" / "voxtral-desk.svg").is_file()

    subprocess.run(["bash", str(archive / "install.sh"), "--prefix", str(prefix), "--uninstall"], check=True,
                   env=env, capture_output=True)
    assert not link.exists() and not link.is_symlink()
    assert not (prefix / "lib" / "voxtral-desk").exists()
    assert not (prefix / "share" / "applications" / "voxtral-desk.desktop").exists()
