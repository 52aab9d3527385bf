"""Voxtral Desk: local streaming speech-to-text with Voxtral Mini 4B Realtime."""

__version__ = "0.1.0"
