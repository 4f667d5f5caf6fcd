"""Autobahn testsuite conformance (RFC 6455 cases 1-7, 9, 10; permessage-deflate 12.1, 13.1): no
case may fail. Installs `wstest` into a Python 2.7 virtualenv on first run (see tests/autobahn.py)."""

from __future__ import annotations

import pytest

from tests import autobahn


@pytest.mark.timeout(1800)
@pytest.mark.skipif(autobahn.python27() is None, reason="pyenv's Python 2.7.18 is not installed")
def test_autobahn_fuzzingclient_has_no_failed_case(start_server, tmp_path):
    srv = start_server("tests.apps.ws_app:app", "--no-access-log")
    results = autobahn.run_fuzzingclient(f"ws://127.0.0.1:{srv.port}/echo", tmp_path / "reports")
    assert len(results) > 300, f"only {len(results)} cases ran"
    assert autobahn.failures(results) == []
    print(autobahn.summary(results))
