"""The file queue's states and their rules, without widgets; and the queue kept across restarts."""
from __future__ import annotations

import json

from voxtral_desk.app.file_queue import RESTARTED_NOTE, FileQueue, Status


def test_statuses_move_as_the_queue_allows(tmp_path):
    q = FileQueue()
    added, skipped = q.add(["/a.wav", "/b.wav", "/a.wav"])
    assert [j.path for j in added] == ["/a.wav", "/b.wav"] and skipped == ["/a.wav"]
    a, b = added
    assert q.next_job() is a
    q.set_status(a, Status.RUNNING)
    assert q.cancel(a) and a.status == Status.CANCELLING  # the worker must be told
    assert q.cancel(a) and a.status == Status.CANCELLING  # asking twice changes nothing
    q.set_status(a, Status.CANCELLED)
    assert not q.cancel(b) and b.status == Status.CANCELLED  # a queued file is cancelled at once
    assert q.retry(b) and b.status == Status.QUEUED and not q.retry(b)
    q.set_status(b, Status.RUNNING)
    b.progress = 0.4
    q.pause(b, "state")  # a dictation took the engine
    assert b.status == Status.PAUSED and b.progress == 0.4 and b.paused == "state"
    assert b.label == "Paused for dictation"
    q.add(["/c.wav"])
    assert q.next_job() is b  # a paused file continues before queued ones start
    q.set_status(b, Status.RUNNING)
    assert not q.remove(b)  # a running file stays
    q.finish(b, "transcript", 7)
    assert (b.status, b.progress, b.history_id, b.paused) == (Status.DONE, 1.0, 7, None)
    assert [j.path for j in q.clear_finished()] == ["/a.wav", "/b.wav"]
    assert [j.path for j in q.jobs] == ["/c.wav"]


def test_the_queue_comes_back_after_a_restart(tmp_path):
    path = tmp_path / "file_queue.json"
    q = FileQueue(path)
    done, failed, running, queued, gone = q.add(["/done.wav", "/bad.wav", "/run.wav", "/wait.wav", "/gone.wav"])[0]
    q.finish(done, "T1", 1)
    q.finish(gone, "T2", 2)
    q.set_status(failed, Status.FAILED, error="Not audio")
    q.set_status(running, Status.RUNNING)

    again = FileQueue(path)
    assert again.load({1: "T1"}.get) == []  # entry 2 was deleted from History: that file leaves the queue
    rows = [(j.path, j.status, j.transcript, j.error, j.note) for j in again.jobs]
    assert rows == [("/done.wav", Status.DONE, "T1", "", ""), ("/bad.wav", Status.FAILED, None, "Not audio", ""),
                    ("/run.wav", Status.QUEUED, None, "", RESTARTED_NOTE),
                    ("/wait.wav", Status.QUEUED, None, "", RESTARTED_NOTE)]


def test_an_unreadable_queue_file_is_set_aside(tmp_path):
    path = tmp_path / "file_queue.json"
    path.write_text("[" * 100000)
    q = FileQueue(path)
    messages = q.load(lambda _id: None)
    assert "could not be read" in messages[0] and q.jobs == []
    assert path.with_name("file_queue.json.bak").exists()
    path.write_text(json.dumps({"version": 1, "jobs": [{"path": "/a.wav", "status": "nonsense"},
                                                        {"path": "/b.wav", "status": "queued"}]}))
    q = FileQueue(path)
    assert q.load(lambda _id: None) == [] and [j.path for j in q.jobs] == ["/b.wav"]


def test_a_queue_that_cannot_be_saved_says_so(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    q = FileQueue(blocker / "file_queue.json")  # its folder is a file
    q.add(["/a.wav"])
    assert "could not be saved" in q.save_error and len(q.jobs) == 1
