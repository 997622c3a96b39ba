"""The browser journeys' daphne and Chromium (tests/browser/conftest.py), for attacks that
only a browser can judge: does a script run?"""

from __future__ import annotations

from tests.browser.conftest import (  # noqa: F401  (fixtures, by name)
    app_server,
    browser,
    fast_model,
    login,
    new_context,
    personas_in_db,
    pytest_runtest_makereport,
    test_database_url,
)
