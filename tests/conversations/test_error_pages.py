"""With DEBUG off (as in production), a missing page and a server error are the app's own
pages, in the reader's language, not Django's bare "Not Found"."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.utils import translation
from django.views.defaults import server_error

pytestmark = pytest.mark.django_db


def test_a_revoked_or_unknown_share_link_is_the_apps_404_page(client, settings):
    assert settings.DEBUG is False
    response = client.get("/s/no-such-link/", headers={"accept-language": "en"})
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>This page does not exist</h1>" in html
    assert 'href="/accounts/login/"' in html
    assert 'rel="stylesheet"' in html


def test_the_404_page_speaks_korean_and_leads_back_to_the_chat(client, owner):
    client.force_login(owner)
    response = client.get(
        "/c/00000000-0000-0000-0000-000000000000/", headers={"accept-language": "ko"}
    )
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>이 페이지는 없습니다</h1>" in html
    assert '<a href="/">채팅으로 돌아가기</a>' in html


def test_the_500_page_renders_without_a_request():
    """Django renders it with no context at all: nothing in it may need one."""
    with translation.override("ko"):
        html = render_to_string("500.html")
    assert "서버에서 문제가 생겼습니다" in html
    assert "<script" not in html.split("</head>")[1]


def test_djangos_server_error_view_answers_with_the_500_page(rf):
    with translation.override("en"):
        response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong on the server" in response.content.decode()
