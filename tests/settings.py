"""Settings for the test suite: the project's settings with a test key and fast hashing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production-use")

from chatsite.settings import *  # noqa: F403
from chatsite.settings import BASE_DIR, DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Attachments of one test run, in a directory of its own (the browser tests' daphne is told it).
MEDIA_ROOT = Path(tempfile.gettempdir()) / f"chatsite-test-media-{os.getpid()}"
# The suite's own process keeps the interpreter's collector as it comes.
CHAT_GC_TUNING = False
# A conversation keeps its first message, cut, as its title: no title request joins the ones a
# test counts or reads (tests/features/test_model_titles.py turns it on).
CHAT_MODEL_TITLES = False

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: the browser tests' daphne process must open the same database.
    # One file per test run, so two runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
else:
    # The pool keeps idle connections open, which stops pytest-django from dropping the test
    # database; the suite's own process connects directly. (Its daphne children pool.)
    DATABASES["default"].get("OPTIONS", {}).pop("pool", None)
