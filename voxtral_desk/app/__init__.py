"""The Qt desktop app. The engine (voxtral_desk.session and below) never imports Qt; the QThread workers
in workers.py are the only bridge."""
