"""Tray icon: menu actions and the idle / recording / busy state."""
from __future__ import annotations

from voxtral_desk.app.tray import Tray


def test_menu_actions_emit_their_signals(qtbot):
    tray = Tray()
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
    assert texts[0] == "Show window" and texts[1] == "Start dictation" and texts[-1] == "Quit Voxtral Desk"
    for action, signal in ((tray.show_action, tray.show_requested), (tray.toggle_action, tray.toggle_requested),
                           (tray.quit_action, tray.quit_requested)):
        with qtbot.waitSignal(signal, timeout=1000):
            action.trigger()


def test_states_change_icon_tooltip_and_menu(qtbot):
    tray = Tray()
    keys = {}
    for state in ("idle", "recording", "busy"):
        tray.set_state(state, "transcribing 2 files" if state == "busy" else "")
        keys[state] = tray.icon.icon().cacheKey()
        assert tray.state == state
    assert len(set(keys.values())) == 3
    assert tray.icon.toolTip() == "Voxtral Desk — working…\ntranscribing 2 files"
    assert tray.state_action.text() == "Busy — transcribing 2 files"
    tray.set_dictating(True)
    assert tray.toggle_action.text() == "Stop dictation"
    tray.set_dictating(False, enabled=False)
    assert tray.toggle_action.text() == "Start dictation" and not tray.toggle_action.isEnabled()


def test_tray_drives_the_window(qtbot, make_window, fake_mic, speech):
    window = make_window()
    tray = window.tray
    window.hide()
    tray.show_action.trigger()
    assert window.isVisible()
    tray.toggle_action.trigger()  # start dictation from the tray
    qtbot.waitUntil(lambda: window.dictation.state == "recording", timeout=10000)
    assert tray.state == "recording"
    assert tray.toggle_action.text() == "Stop dictation"
    fake_mic.last.push(speech)
    with qtbot.waitSignal(window.dictation.finished, timeout=30000):
        tray.toggle_action.trigger()
    assert tray.state == "idle" and tray.toggle_action.text() == "Start dictation"
    assert window.dictation.text()
