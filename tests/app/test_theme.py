"""The app's colours live in theme.py alone, and it has one for every state the app shows."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from voxtral_desk.app import theme
from voxtral_desk.app.dictation import STATE_TEXT
from voxtral_desk.app.file_queue import Status

APP = Path(theme.__file__).parent
HEX = re.compile(r"#[0-9a-fA-F]{6}\b")
COLOUR = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|rgba?\(")


@pytest.mark.parametrize("module", sorted(p.name for p in APP.glob("*.py") if p.name != "theme.py"))
def test_no_colour_outside_the_theme(module):
    found = [f"{module}:{n}: {line.strip()}" for n, line in enumerate((APP / module).read_text().splitlines(), 1)
             if COLOUR.search(line)]
    assert not found, "colours belong in theme.py:\n" + "\n".join(found)


def test_every_state_has_its_colours():
    assert set(theme.STATUS_COLORS) == {s.value for s in Status}
    assert set(theme.DICTATION_COLORS) == set(STATE_TEXT)
    assert set(theme.STATE_COLORS) == {"idle", "recording", "busy"}  # Tray.set_state's states
    for kind in ("info", "warning", "error"):
        assert len(HEX.findall(theme.banner_style(kind))) == len(HEX.findall(theme.note_style("note", kind))) == 3


def test_the_style_sheet_names_only_palette_colours():
    palette = set(vars(theme.PALETTE).values())
    used = set(HEX.findall(theme.APP_STYLE))
    assert used and used <= palette and "$" not in theme.APP_STYLE
