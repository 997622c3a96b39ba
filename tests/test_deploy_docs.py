"""The deployment docs, followed literally by an operator, give a working server: each test
reads the README's and docs/deploy.md's own blocks as the program they are meant for would."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
DOCS = {name: (ROOT / name).read_text() for name in ("README.md", "docs/deploy.md")}
ENV_LINE = re.compile(r"^ {4}([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


Unit = dict[tuple[str, str], list[str]]


def units() -> dict[str, Unit]:
    """The systemd units of docs/deploy.md by file name: (section, key) -> its values, in order
    (systemd allows a key more than once)."""
    found = {}
    for block in fenced(DOCS["docs/deploy.md"], "ini"):
        name = re.match(r"# /etc/systemd/system/(\S+)", block)
        if not name:
            continue
        unit: Unit = {}
        section = ""
        for line in block.splitlines():
            if line.startswith("["):
                section = line.strip("[]")
            elif "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                unit.setdefault((section, key), []).append(value)
        found[name.group(1)] = unit
    return found


def values(unit: Unit, section: str, key: str) -> list[str]:
    return unit.get((section, key), [])


@pytest.mark.parametrize("name", DOCS)
def test_every_environment_line_means_the_same_to_the_app_and_to_systemd(name):
    """systemd's EnvironmentFile= (and a shell) keep `# comment` after a value as part of it,
    python-dotenv drops it: `DJANGO_HTTPS=1   # behind a proxy` was `1` for the app and
    `1   # behind a proxy` for systemd, which won and failed every process."""
    lines = ENV_LINE.findall(DOCS[name])
    assert len(lines) > 5
    for key, raw in lines:
        as_systemd = raw.strip()
        as_dotenv = dotenv_values(stream=io.StringIO(f"{key}={raw}\n"))[key]
        assert as_dotenv == as_systemd, f"{name}: {key}={raw}"


def test_the_readmes_production_settings_close_sign_up_and_name_the_model_key():
    production = DOCS["README.md"].split("## Production", 1)[1].split("\nthen", 1)[0]
    settings = dict(ENV_LINE.findall(production.split("Then\n")[0]))
    assert settings["ALLOW_SIGNUP"] == "0"
    assert settings["OPENAI_API_KEY"]
    assert "demo model" in production, "what happens without the key is said"


def test_the_units_read_no_environment_file_and_log_unbuffered():
    found = units()
    assert {"chatsite.service", "chatsite@.service", "chatsite-prepare.service"} <= set(found)
    for name, unit in found.items():
        if not values(unit, "Service", "ExecStart"):
            continue
        assert not values(unit, "Service", "EnvironmentFile"), name
        environment = " ".join(values(unit, "Service", "Environment")).split()
        assert "PYTHONUNBUFFERED=1" in environment, name
        assert "DJANGO_DEBUG=0" in environment, name


@pytest.mark.parametrize("name", ["chatsite.service", "chatsite@.service"])
def test_every_start_migrates_collects_the_static_files_and_bootstraps(name):
    found = units()
    unit = found[name]
    steps = values(unit, "Service", "ExecStartPre")
    for required in values(unit, "Unit", "Requires"):
        for other in required.split():
            if other in found and other != "chatsite.socket":
                assert other in " ".join(values(unit, "Unit", "After")), "and after it"
                steps += values(found[other], "Service", "ExecStart")
    commands = " / ".join(steps)
    assert "manage.py migrate" in commands
    assert "manage.py collectstatic --noinput" in commands
    # Not into the journal: the generated password goes to a file only the service user reads.
    assert "manage.py bootstrap --password-file " in commands


def test_the_port_80_server_answers_certbots_challenge_instead_of_redirecting_it():
    (nginx,) = fenced(DOCS["docs/deploy.md"], "nginx")
    plain = nginx.split("listen 80;", 1)[1].split("\n}\n", 1)[0]
    assert "location /.well-known/acme-challenge/" in plain
    challenge, redirect = plain.split("location / {")
    assert "return 301" in redirect and "return" not in challenge
    assert "certbot certonly --webroot" in DOCS["docs/deploy.md"]
    assert "inside nginx's `http { }`" in DOCS["docs/deploy.md"]


def test_the_caddyfile_is_as_caddy_fmt_writes_it():
    (caddy,) = fenced(DOCS["docs/deploy.md"], "caddyfile")
    for line in caddy.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        assert set(indent) <= {"\t"}, f"caddy fmt indents with tabs: {line!r}"
