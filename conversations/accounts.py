"""Accounts: django-allauth, fitted to this app.

allauth does the work: login by username or email, sign-up with an email, password reset and
change, email confirmation (EMAIL_VERIFICATION), single sign-on by OpenID Connect, and the
rate limits on failed logins (ACCOUNT_RATE_LIMITS, built from LOGIN_FAILURES_* in settings).
What is ours, and only that:

- the login form's field is named `username`, as Django's own login form names it (the
  CONTRACT's form fields, which scripts post to); it takes a username or an email address;
- a refused login answers 429 with `Retry-After` and says so in a sentence;
- sign-up can be closed (ALLOW_SIGNUP=0, or PASSWORD_LOGIN=0): the page is then a 404;
- single sign-on admits only the email domains in OIDC_ALLOWED_EMAIL_DOMAINS, and says why it
  refuses anyone else;
- a session that ends closes its chat sockets, in every tab and on every process: a logout,
  a new password (every other session of the user) or an account turned off (all of them).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from typing import Any

from allauth.account import forms as allauth_forms
from allauth.account import signals as allauth_signals
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.views import LoginView as AllauthLoginView
from allauth.account.views import password_change as allauth_password_change
from allauth.account.views import password_set as allauth_password_set
from allauth.account.views import signup as allauth_signup
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.signals import user_logged_out
from django.core.exceptions import ValidationError
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.forms.forms import NON_FIELD_ERRORS
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)

THROTTLED = "too_many_login_attempts"
# A logout does not wait longer than this for a channel layer that does not answer.
SESSION_END_TIMEOUT_SECONDS = 2.0


def throttled_message(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many failed attempts to log in. Try again in %(minutes)d minute.",
        "Too many failed attempts to log in. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


def signup_open() -> bool:
    return settings.ALLOW_SIGNUP and not settings.SOCIALACCOUNT_ONLY


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return signup_open()

    def validation_error(self, code: str, *args: Any) -> ValidationError:
        if code == THROTTLED:
            # A failure counts for the whole window (allauth's limits slide): by its end the
            # login is sure to be accepted again.
            message = throttled_message(settings.LOGIN_FAILURE_WINDOW_SECONDS)
            return ValidationError(message, code=code)
        return super().validation_error(code, *args)


class LoginForm(allauth_forms.LoginForm):
    """allauth's login form with its field named `username`, which takes a username or an
    email address."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.pop("login")
        field.label = _("Username or email")
        field.widget.attrs.update({"autocomplete": "username", "placeholder": ""})
        self.fields = {"username": field, **self.fields}

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip()

    def clean(self) -> dict[str, Any]:
        if "username" in self.cleaned_data:
            self.cleaned_data["login"] = self.cleaned_data["username"]
        return super().clean()


class PlainFieldsMixin:
    """The app's forms speak plainly: no placeholders repeating the labels, and one short
    hint instead of Django's long password rules (a password or a username that breaks them
    is still told which)."""

    fields: dict[str, Any]
    password_labels = (_("Password"), _("Password confirmation"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.help_text = ""
            field.widget.attrs.pop("placeholder", None)
        for name, label in zip(("password1", "password2"), self.password_labels, strict=True):
            if name in self.fields:
                self.fields[name].label = label
        if "password1" in self.fields:
            self.fields["password1"].help_text = _("At least 8 characters, not a common password.")


class SignupForm(PlainFieldsMixin, allauth_forms.SignupForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("Username")
        self.fields["email"].label = _("Email")


NEW_PASSWORD_LABELS = (_("New password"), _("New password confirmation"))


class ChangePasswordForm(PlainFieldsMixin, allauth_forms.ChangePasswordForm):
    password_labels = NEW_PASSWORD_LABELS


class SetPasswordForm(PlainFieldsMixin, allauth_forms.SetPasswordForm):
    password_labels = NEW_PASSWORD_LABELS


class ResetPasswordForm(PlainFieldsMixin, allauth_forms.ResetPasswordForm):
    pass


class ResetPasswordKeyForm(PlainFieldsMixin, allauth_forms.ResetPasswordKeyForm):
    password_labels = NEW_PASSWORD_LABELS


class LoginView(AllauthLoginView):
    """allauth's login page; while failed logins are refused it answers 429 and says so."""

    def form_invalid(self, form: LoginForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, THROTTLED):
            response.status_code = 429
            response.headers["Retry-After"] = str(settings.LOGIN_FAILURE_WINDOW_SECONDS)
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        if form is not None and form.has_error(NON_FIELD_ERRORS, THROTTLED):
            context["login_error"] = throttled_message(settings.LOGIN_FAILURE_WINDOW_SECONDS)
        return context


login = LoginView.as_view()


@login_not_required
def signup(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """allauth's sign-up page, or a 404 on a server that does not take sign-ups."""
    if not signup_open():
        raise Http404("Sign-up is closed.")
    return allauth_signup(request, *args, **kwargs)


def remembering_the_session(view: Any) -> Any:
    """allauth's page for a new password, which renews the session's key: the tabs of this
    browser know the session by the key it had (`close_other_sessions_on_new_password`)."""

    def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.session_tag_before = session_tag(request.session.session_key)  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return page


password_change = remembering_the_session(allauth_password_change)
password_set = remembering_the_session(allauth_password_set)


def email_domain_allowed(email: str) -> bool:
    domains = settings.OIDC_ALLOWED_EMAIL_DOMAINS
    if not domains:
        return True
    _, at, domain = email.rpartition("@")
    return bool(at) and domain.lower() in domains


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        # Who may come in by SSO is the identity provider's and OIDC_ALLOWED_EMAIL_DOMAINS'
        # to say, not ALLOW_SIGNUP's (which closes the local sign-up page).
        return True

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        if not settings.OIDC_ALLOWED_EMAIL_DOMAINS:
            return
        emails = [address.email for address in sociallogin.email_addresses if address.email]
        email = emails[0] if emails else (sociallogin.user.email if sociallogin.user else "")
        if email and email_domain_allowed(email):
            return
        domains = ", ".join(settings.OIDC_ALLOWED_EMAIL_DOMAINS)
        if email:
            reason = gettext(
                "%(email)s may not log in here: single sign-on accepts email addresses "
                "at %(domains)s only."
            ) % {"email": email, "domains": domains}
        else:
            reason = gettext(
                "Your identity provider gave no email address, and single sign-on here "
                "accepts email addresses at %(domains)s only."
            ) % {"domains": domains}
        response = render(request, "account/sso_refused.html", {"reason": reason}, status=403)
        raise ImmediateHttpResponse(response)


def user_group(user_id: Any) -> str:
    """Every chat socket of one user, on every process (consumers.py)."""
    return f"user.{user_id}"


def session_tag(session_key: str | None) -> str | None:
    """A session as its sockets know it: not its key, which the channel layer would carry."""
    if not session_key:
        return None
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def end_sessions(user_id: Any, *, session: str | None = None, keep: str | None = None) -> None:
    """Close the chat sockets of a user's session (`session`), or of all their sessions but
    `keep`, or of all of them. The session itself is over already: a socket that missed this
    (the layer was down) is refused at its next connect."""

    async def send() -> None:
        event = {"type": "session.ended", "session": session, "keep": keep}
        async with asyncio.timeout(SESSION_END_TIMEOUT_SECONDS):
            await get_channel_layer().group_send(user_group(user_id), event)

    try:
        async_to_sync(send)()
    except Exception as exc:  # the logout or the new password stands all the same
        logger.warning("could not close the chat sockets of user %s (%r)", user_id, exc)


def session_key_of(request: HttpRequest | None) -> str | None:
    session = getattr(request, "session", None)
    return session.session_key if session is not None else None


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any):
    tag = session_tag(session_key_of(request))
    if user is not None and tag is not None:
        end_sessions(user.pk, session=tag)


@receiver(allauth_signals.password_changed)
@receiver(allauth_signals.password_set)
def close_other_sessions_on_new_password(sender: Any, request: HttpRequest, user: Any, **kwargs):
    # The session that changed it stays logged in (allauth renews its key and auth hash); the
    # others are no longer valid, and their sockets close.
    keep = getattr(request, "session_tag_before", None) or session_tag(session_key_of(request))
    end_sessions(user.pk, keep=keep)


@receiver(allauth_signals.password_reset)
def close_all_sessions_on_reset(sender: Any, request: HttpRequest, user: Any, **kwargs: Any):
    end_sessions(user.pk)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def close_sockets_of_inactive_user(sender: Any, instance: Any, created: bool, **kwargs: Any):
    if not created and not instance.is_active:
        end_sessions(instance.pk)
