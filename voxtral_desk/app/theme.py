"""The app's look in one place: the palette (every colour the app draws with), the style sheet on top of the
platform style, and the small styles of single widgets (banners, status pills, quiet labels)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from string import Template


@dataclass(frozen=True)
class Palette:
    # Surfaces and lines
    white: str = "#ffffff"
    window: str = "#f6f7f9"
    panel: str = "#eef0f3"  # status bar, the idle pill, the level meter's trough
    header: str = "#f3f4f6"
    button_hover: str = "#f0f2f5"
    button_pressed: str = "#e5e7eb"
    button_disabled: str = "#f4f5f7"
    border: str = "#d5d9e0"
    border_strong: str = "#c9ced6"
    border_disabled: str = "#e1e4e8"
    # Text
    text_strong: str = "#111827"
    text: str = "#1f2937"
    text_secondary: str = "#374151"
    text_muted: str = "#4b5563"
    text_faint: str = "#6b7280"
    text_hint: str = "#8a919c"
    text_disabled: str = "#a0a6b0"
    # Accent and selection
    accent: str = "#6d5dfc"
    selection: str = "#c7d2fe"
    selection_soft: str = "#e0e7ff"
    # What the app is doing
    idle: str = "#5b6472"
    recording: str = "#e5484d"
    recording_hover: str = "#d93d42"
    record_disabled: str = "#9aa0a8"
    stop: str = "#2f343b"
    stop_hover: str = "#1f2328"
    busy: str = "#e79d13"
    running: str = "#1d6fd8"
    done: str = "#2b8a3e"
    failed: str = "#c92a2a"
    paused: str = "#8a5a00"  # also the text of the amber "starting" pill
    paused_soft: str = "#fff3d6"
    level_ok: str = "#2fa84f"
    toast: str = "rgba(31, 35, 40, 230)"  # stop_hover, slightly see-through
    # Messages: background, border, text
    info_bg: str = "#eaf2ff"
    info_border: str = "#9dbcf0"
    info_text: str = "#1d3f73"
    warning_bg: str = "#fff6e0"
    warning_border: str = "#f0c96a"
    warning_text: str = "#5c4200"
    error_bg: str = "#fdecec"
    error_border: str = "#ee9a9a"
    error_text: str = "#6b1414"


PALETTE = Palette()

# The file queue's status colours (file_queue.Status values).
STATUS_COLORS = {"queued": PALETTE.idle, "waiting": PALETTE.idle, "running": PALETTE.running,
                 "paused": PALETTE.paused, "cancelling": PALETTE.paused, "done": PALETTE.done,
                 "failed": PALETTE.failed, "cancelled": PALETTE.paused}
# The app's states (tray icon, drawn fallback icons).
STATE_COLORS = {"idle": PALETTE.idle, "recording": PALETTE.recording, "busy": PALETTE.busy}
# Dictation states: (text, background) of the pill beside the record button.
DICTATION_COLORS = {"idle": (PALETTE.idle, PALETTE.panel), "starting": (PALETTE.paused, PALETTE.paused_soft),
                    "recording": (PALETTE.white, PALETTE.recording),
                    "finishing": (PALETTE.paused, PALETTE.paused_soft)}
# Message kinds: (background, border, text).
MESSAGE_COLORS = {"info": (PALETTE.info_bg, PALETTE.info_border, PALETTE.info_text),
                  "warning": (PALETTE.warning_bg, PALETTE.warning_border, PALETTE.warning_text),
                  "error": (PALETTE.error_bg, PALETTE.error_border, PALETTE.error_text)}

MUTED_LABEL = f"color: {PALETTE.text_muted};"
FAINT_LABEL = f"color: {PALETTE.text_faint};"
ERROR_LABEL = f"color: {PALETTE.failed};"
STATUS_BAR_LABEL = f"color: {PALETTE.text_muted}; padding: 0 6px;"
TOAST = (f"QLabel#toast {{ background: {PALETTE.toast}; color: {PALETTE.white}; border-radius: 8px;"
         " padding: 7px 14px; }")


def banner_style(kind: str) -> str:
    """A Banner (QFrame#banner) of one message kind: info, warning or error."""
    background, border, text = MESSAGE_COLORS[kind]
    return (f"QFrame#banner {{ background: {background}; border: 1px solid {border}; border-radius: 6px; }}"
            f"QFrame#banner QLabel {{ color: {text}; }}")


def note_style(object_name: str, kind: str) -> str:
    """A label that reads as a boxed message of one kind (a dialog's warning or error)."""
    background, border, text = MESSAGE_COLORS[kind]
    return (f"QLabel#{object_name} {{ background: {background}; border: 1px solid {border}; border-radius: 6px;"
            f" padding: 6px; color: {text}; font-weight: normal; }}")


def pill_style(state: str) -> str:
    """The dictation state pill (QLabel#stateLabel)."""
    text, background = DICTATION_COLORS[state]
    return (f"QLabel#stateLabel {{ color: {text}; background: {background}; border-radius: 13px; padding: 0 14px;"
            " font-weight: 600; }")



# A light, quiet look on top of the platform style: only buttons, text areas, tabs and the status bar
# are styled, so combo boxes and spin boxes keep their native arrows.
APP_STYLE = Template("""
QMainWindow, QDialog { background: $window; }
QTabWidget::pane { border: none; }
QTabBar::tab { padding: 7px 18px; margin-right: 2px; border: none; border-bottom: 2px solid transparent;
               color: $text_muted; background: transparent; }
QTabBar::tab:selected { color: $text_strong; border-bottom: 2px solid $accent; font-weight: 600; }
QTabBar::tab:hover:!selected { color: $text_strong; }
QPushButton { padding: 5px 14px; border: 1px solid $border_strong; border-radius: 6px; background: $white;
              color: $text; }
QPushButton:hover { background: $button_hover; }
QPushButton:pressed { background: $button_pressed; }
QPushButton:disabled { color: $text_disabled; background: $button_disabled; border-color: $border_disabled; }
QPushButton#recordButton { background: $recording; color: $white; border: none; font-weight: 600;
                           padding: 8px 20px; }
QPushButton#recordButton:hover { background: $recording_hover; }
QPushButton#recordButton[recording="true"] { background: $stop; }
QPushButton#recordButton[recording="true"]:hover { background: $stop_hover; }
QPushButton#recordButton:disabled { background: $record_disabled; }
QPlainTextEdit, QTreeWidget, QListWidget { background: $white; border: 1px solid $border; border-radius: 6px; }
QPlainTextEdit { padding: 6px; selection-background-color: $selection; selection-color: $text_strong; }
QTreeWidget::item, QListWidget::item { padding: 3px 2px; }
QTreeWidget::item:selected, QListWidget::item:selected { background: $selection_soft; color: $text_strong; }
QHeaderView::section { background: $header; border: none; border-bottom: 1px solid $border; padding: 5px 6px;
                       color: $text_secondary; font-weight: 600; }
QStatusBar { background: $panel; color: $text_secondary; }
QStatusBar::item { border: none; }
QGroupBox { font-weight: 600; border: 1px solid $border; border-radius: 6px; margin-top: 12px;
            padding: 10px 8px 6px 8px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; }
""").substitute(asdict(PALETTE))
