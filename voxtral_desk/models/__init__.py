"""The model manager, engine-free and Qt-free (the dialog lives in voxtral_desk.app.model_dialog):

    errors.py    what it reports to the user, and the one Cancelled
    jobs.py      pause / cancel (Control) and progress reports with speed and time left
    catalog.py   the catalog of downloadable models (a JSON file shipped in the package)
    download.py  fetching one file over HTTP(S), resumable and verified
    layout.py    the models folder on disk: names, locks, records, free space
    install.py   getting a model there: download, join, convert, import
    store.py     the installed models: find, default, verify, repair, remove (ModelStore)
    cli.py       `voxtral-desk models ...`

Import what you need from its module; this package imports nothing itself, so that a light module (errors,
jobs) never pulls in the rest."""
