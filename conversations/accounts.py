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
  refuses anyone else.
"""

from __future__ import annotations

import math
from typing import Any

from allauth.account import forms as allauth_forms
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.views import LoginView as AllauthLoginView
from allauth.account.views import signup as allauth_signup
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.forms.forms import NON_FIELD_ERRORS
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

THROTTLED = "too_many_login_attempts"


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
