"""A pasted key is used and forgotten: gone from the log mask once its run or check has ended;
the log is still masked while a key is in use."""

from __future__ import annotations

import logging
import uuid

from skyreels_demo import keys
from skyreels_demo.keys import MASK, in_use, mask, remember


# --- the log mask holds a visitor's key only while it is in use -----------------------------


def test_a_visitors_key_is_masked_while_in_use_and_forgotten_after():
    key = f"fake-visitor-{uuid.uuid4().hex}"
    line = f"calling with {key} now"
    with in_use(key):
        assert mask(line) == f"calling with {MASK} now"
        with in_use(f"  {key}\n"):  # the same key, as pasted, by a second run at once
            assert mask(line) == f"calling with {MASK} now"
        assert mask(line) == f"calling with {MASK} now"  # the first run still uses it
    assert mask(line) == line  # nothing uses it: the mask no longer holds it
    assert key not in keys._held


def test_checking_a_keys_shape_keeps_nothing():
    key = f"fake-visitor-{uuid.uuid4().hex}"
    assert keys.checked_key(key) == key
    assert key not in keys._held


def test_the_owners_key_is_masked_for_good_even_after_a_visitor_pasted_it():
    owner = f"fake-owner-{uuid.uuid4().hex}"
    remember(owner)
    with in_use(owner):
        pass
    assert mask(owner) == MASK


def test_a_key_in_a_log_line_is_masked_while_its_run_uses_it(caplog):
    key = f"fake-visitor-{uuid.uuid4().hex}"
    logger = logging.getLogger("skyreels_demo.test_keys")
    caplog.set_level(logging.INFO, logger="skyreels_demo.test_keys")
    keys.install_key_mask(logging.getLogger())  # as the app does at start, on every handler
    with in_use(key):
        logger.info("a failure quoting %s", key)
    assert key not in caplog.text and MASK in caplog.text
