"""core.ids: public ids are distinct, of the documented shape, and never repeated across a fork."""

import os
import re
from collections import Counter

from cobrador.core.ids import new_public_id, random_token


def test_ids_have_their_prefix_and_22_base62_characters_and_do_not_repeat():
    ids = [new_public_id("evt") for _ in range(50_000)]
    assert all(re.fullmatch(r"evt_[0-9A-Za-z]{22}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert re.fullmatch(r"[0-9A-Za-z]{16}", random_token(16))


def test_every_character_is_equally_likely():
    counts = Counter("".join(random_token() for _ in range(50_000)))  # 1.1M characters, about 17,700 each
    assert len(counts) == 62
    mean = sum(counts.values()) / 62
    assert all(abs(n - mean) < 0.05 * mean for n in counts.values()), counts  # ~7 standard deviations


def test_a_forked_child_does_not_reuse_the_parents_buffered_random_bytes():
    random_token()  # the parent's buffer now holds unread bytes
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, random_token().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.close(write_end)
    assert child != random_token()
