"""The login and sign-up pages say what the app is and speak plainly: no Django help texts."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

DJANGO_HELP = "150 characters or fewer"


@pytest.mark.parametrize("name", ["login", "signup"])
def test_the_page_names_the_product_and_says_what_it_is(client, name):
    text = client.get(reverse(name), headers={"accept-language": "en"}).content.decode()
    assert "chatsite" in text
    assert "ChatGPT-style chat" in text
    assert DJANGO_HELP not in text and "@/./+/-/_" not in text


def test_the_sign_up_page_gives_one_short_hint_in_korean(client):
    text = client.get(reverse("signup"), headers={"accept-language": "ko"}).content.decode()
    assert "8자 이상" in text
    assert "Your password" not in text and "비밀번호는 최소" not in text


def test_a_refused_sign_up_still_says_why(client):
    response = client.post(
        reverse("signup"),
        {"username": "no spaces", "password1": "quiet-harbor-42x", "password2": "quiet-harbor-42x"},
        headers={"accept-language": "en"},
    )
    assert response.status_code == 200
    assert b"Enter a valid username" in response.content


def test_the_login_and_password_pages_speak_korean(client, make_user):
    login = client.get(reverse("login"), headers={"accept-language": "ko"}).content.decode()
    assert "사용자 이름 또는 이메일" in login and "비밀번호를 잊으셨나요?" in login
    client.force_login(make_user("bob"))
    url = reverse("account_change_password")
    page = client.get(url, headers={"accept-language": "ko"}).content.decode()
    assert "<h1>비밀번호 변경</h1>" in page and "채팅으로 돌아가기" in page


def test_the_password_reset_page_has_the_products_look(client):
    page = client.get(reverse("account_reset_password"), headers={"accept-language": "en"})
    text = page.content.decode()
    assert 'class="product"' in text and "ChatGPT-style chat" in text
    assert 'name="email"' in text
