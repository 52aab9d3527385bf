"""fileio's streaming SHA-256: the one function every file hash of the package goes through."""
from __future__ import annotations

import hashlib

import pytest

from voxtral_desk.fileio import HASH_BLOCK, sha256_file
from voxtral_desk.models.errors import Cancelled
from voxtral_desk.models.jobs import Control


@pytest.fixture
def data_file(tmp_path):
    data = bytes(range(256)) * (HASH_BLOCK // 256 * 2 + 3)  # two whole blocks and a bit
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize("upto", [None, 0, 1, HASH_BLOCK, HASH_BLOCK + 5, 10**12])
def test_hash_of_the_first_bytes_reported_block_by_block(data_file, upto):
    path, data = data_file
    seen = []
    assert sha256_file(path, upto, on_bytes=seen.append) == hashlib.sha256(data[:upto]).hexdigest()
    assert sum(seen) == len(data[:upto]) and all(n <= HASH_BLOCK for n in seen)


def test_a_digest_is_continued(data_file):
    path, data = data_file
    h = hashlib.sha256(b"before")
    assert sha256_file(path, 100, digest=h) == hashlib.sha256(b"before" + data[:100]).hexdigest() == h.hexdigest()


def test_a_cancel_stops_a_long_hash_after_one_block(data_file):
    path, _ = data_file
    control, seen = Control(), []
    control.cancel()
    with pytest.raises(Cancelled):
        sha256_file(path, control=control, on_bytes=seen.append)
    assert seen == []
