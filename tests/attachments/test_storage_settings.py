"""Where attachments are stored is a setting: a folder that is not the static root, or an
S3-compatible bucket, refused with a sentence when it cannot work."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.test_settings import load_settings


def test_the_media_root_cannot_be_the_static_root(tmp_path):
    same = str(tmp_path / "files")
    result = load_settings(DJANGO_DEBUG="1", DJANGO_MEDIA_ROOT=same, DJANGO_STATIC_ROOT=same)
    assert result.returncode != 0
    assert "DJANGO_MEDIA_ROOT must not be DJANGO_STATIC_ROOT" in result.stderr


def test_s3_needs_a_bucket():
    result = load_settings(DJANGO_DEBUG="1", DJANGO_STORAGE_BACKEND="s3")
    assert result.returncode != 0
    assert "needs AWS_STORAGE_BUCKET_NAME" in result.stderr


def test_an_unknown_storage_is_refused():
    result = load_settings(DJANGO_DEBUG="1", DJANGO_STORAGE_BACKEND="ftp")
    assert result.returncode != 0
    assert "DJANGO_STORAGE_BACKEND must be filesystem or s3, not 'ftp'" in result.stderr


def test_s3_uses_django_storages_with_private_objects():
    script = (
        "import chatsite.settings as s; d = s.STORAGES['default']; "
        "print(d['BACKEND'], d['OPTIONS']['bucket_name'], d['OPTIONS']['endpoint_url'], "
        "d['OPTIONS']['default_acl'])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AWS_"))}
    env.update(
        DJANGO_DEBUG="1",
        DJANGO_STORAGE_BACKEND="s3",
        AWS_STORAGE_BUCKET_NAME="chat-files",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == [
        "storages.backends.s3.S3Storage",
        "chat-files",
        "http://127.0.0.1:9000",
        "private",
    ], result.stderr
