"""Settings for chatsite: one module, every value read from the environment or `.env`.

Each variable goes through a small strict helper: a value that cannot be understood is an
`ImproperlyConfigured` error that says what to set, never a silent guess.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent

# `.env` fills in what the real environment leaves unset; it never overrides it.
load_dotenv(BASE_DIR / ".env", override=False)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0 (or true/false), not {raw!r}.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_mapping_int(name: str) -> dict[str, int]:
    """Read "key=number,key=number" into a dict."""
    mapping: dict[str, int] = {}
    for item in env_list(name, []):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip().isdigit():
            raise ImproperlyConfigured(
                f"{name} must look like 'gpt-4o-mini=16000,llama3=8000', not {item!r}."
            )
        mapping[key.strip()] = int(value)
    return mapping


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random string in the environment "
            "or in .env (for example the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DJANGO_DEBUG=1 for local development."
        )
    SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "conversations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatsite.middleware.ContentSecurityPolicyMiddleware",
    "chatsite.middleware.TimeZoneMiddleware",
]

ROOT_URLCONF = "chatsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "conversations.context_processors.chat",
            ],
        },
    },
]

ASGI_APPLICATION = "chatsite.asgi.application"

# Database: SQLite in the project root unless DATABASE_URL names another.
# CONN_MAX_AGE stays 0: persistent connections leak under ASGI.
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Replies are written from several threads while pages read: WAL lets readers and the
    # writer proceed together, IMMEDIATE transactions avoid "database is locked" on upgrade.
    # SQLite work runs on one thread (see conversations/replies.py), so a persistent
    # connection cannot multiply; it saves opening the file and its pragmas on every call.
    DATABASES["default"]["CONN_MAX_AGE"] = 600
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A connection pool: every database_sync_to_async call would otherwise open a connection.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": env_int("DATABASE_POOL_SIZE", 20, minimum=2),
        "timeout": 10,
    }
    # Parameters bound by the server, and each statement prepared once per connection after its
    # fifth run: PostgreSQL no longer plans a message's same ten statements every time (about
    # 2 to 4 ms of a first token, docs/benchmarks.md). Off behind a pooler that cannot keep
    # prepared statements (PgBouncer in transaction mode without max_prepared_statements).
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"].update(
            {"server_side_binding": True, "prepare_threshold": 5}
        )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channel layer: Redis when REDIS_URL is set (needed for several processes), else in memory.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: a group send is one PUBLISH and a process receives every message on one
            # connection, not a round trip each (conversations/layers.py).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # channels' in-memory layer's contract, in time that does not grow with the
            # process's sockets (conversations/layers.py); CHAT_LOCAL_LAYER=0: the stock one.
            "BACKEND": "conversations.layers.LocalChannelLayer"
            if env_bool("CHAT_LOCAL_LAYER", True)
            else "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 5000, "expiry": 60},
        }
    }

# Cache (login throttling counts live here): Redis when there is one, so every process shares
# it; otherwise this process's memory, which is enough for the one process that runs then.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # The channel layer's keys share the database under their own "asgi" prefix.
            "KEY_PREFIX": "chatsite",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"

# Accounts: django-allauth (conversations/accounts.py has the app's side of it).
# ModelBackend stays first: sessions made before allauth name it, and stay valid.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ALLOW_SIGNUP = env_bool("ALLOW_SIGNUP", True)
# 0: no local passwords at all, single sign-on only (then OIDC_SERVER_URL is required).
PASSWORD_LOGIN = env_bool("PASSWORD_LOGIN", True)
SOCIALACCOUNT_ONLY = not PASSWORD_LOGIN
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
# none: an email address is asked for but not checked; optional: a link to confirm it is sent;
# mandatory: nobody logs in before confirming it.
EMAIL_VERIFICATION = env_str("EMAIL_VERIFICATION", "none").lower()
if EMAIL_VERIFICATION not in {"none", "optional", "mandatory"}:
    raise ImproperlyConfigured(
        f"EMAIL_VERIFICATION must be none, optional or mandatory, not {EMAIL_VERIFICATION!r}."
    )
if SOCIALACCOUNT_ONLY and EMAIL_VERIFICATION != "none":
    raise ImproperlyConfigured(
        "EMAIL_VERIFICATION must be none with PASSWORD_LOGIN=0: without local accounts "
        "there is no address of ours to confirm (the identity provider vouches for it)."
    )
ACCOUNT_EMAIL_VERIFICATION = EMAIL_VERIFICATION
# A session lasts SESSION_COOKIE_AGE (two weeks), as before: no "remember me" box.
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_ADAPTER = "conversations.accounts.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "conversations.accounts.LoginForm",
    "signup": "conversations.accounts.SignupForm",
    "change_password": "conversations.accounts.ChangePasswordForm",
    "set_password": "conversations.accounts.SetPasswordForm",
    "reset_password": "conversations.accounts.ResetPasswordForm",
    "reset_password_from_key": "conversations.accounts.ResetPasswordKeyForm",
}
# Failed logins allowed per username (or email) and per address within the window; allauth
# counts them in the cache (Redis when REDIS_URL is set, so across processes).
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
ACCOUNT_RATE_LIMITS = {
    "login_failed": (
        f"{LOGIN_FAILURES_PER_ADDRESS}/{LOGIN_FAILURE_WINDOW_SECONDS}s/ip,"
        f"{LOGIN_FAILURES_PER_USERNAME}/{LOGIN_FAILURE_WINDOW_SECONDS}s/key"
    ),
}

# Single sign-on with OpenID Connect: on when OIDC_SERVER_URL is set.
OIDC_SERVER_URL = env_str("OIDC_SERVER_URL")
OIDC_NAME = env_str("OIDC_NAME", "SSO")
# Email domains whose people may log in by SSO (empty: any the provider vouches for).
OIDC_ALLOWED_EMAIL_DOMAINS = [
    d.lower().lstrip("@") for d in env_list("OIDC_ALLOWED_EMAIL_DOMAINS", [])
]
SOCIALACCOUNT_ADAPTER = "conversations.accounts.SocialAccountAdapter"
SOCIALACCOUNT_PROVIDERS: dict[str, dict] = {}
if OIDC_SERVER_URL:
    OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID")
    OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
    if not OIDC_CLIENT_ID or not OIDC_CLIENT_SECRET:
        raise ImproperlyConfigured(
            "OIDC_SERVER_URL is set, so OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be too: "
            "the client this site is registered as at the identity provider."
        )
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": "sso",
                "name": OIDC_NAME,
                "client_id": OIDC_CLIENT_ID,
                "secret": OIDC_CLIENT_SECRET,
                "settings": {"server_url": OIDC_SERVER_URL, "oauth_pkce_enabled": True},
            }
        ],
        "SCOPE": ["openid", "profile", "email"],
    }
elif SOCIALACCOUNT_ONLY:
    raise ImproperlyConfigured(
        "PASSWORD_LOGIN=0 turns local passwords off, so single sign-on is the only way in: "
        "set OIDC_SERVER_URL, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too."
    )
# The provider's verified email finds an existing account with that address (people who had
# a password before SSO keep their conversations); an unverified one never does.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_LOGIN_ON_GET = False

# Email (password reset, address confirmation): SMTP when EMAIL_HOST is set, else printed on
# the server's stdout (development).
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    # Unset or empty: STARTTLS on 587, TLS from the start on 465.
    EMAIL_USE_TLS = (
        env_bool("EMAIL_USE_TLS", False) if env_str("EMAIL_USE_TLS") else EMAIL_PORT == 587
    )
    EMAIL_USE_SSL = (
        env_bool("EMAIL_USE_SSL", False) if env_str("EMAIL_USE_SSL") else EMAIL_PORT == 465
    )
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on.")
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "chatsite <webmaster@localhost>")

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ko", _("Korean"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where `collectstatic` gathers the files whitenoise serves with hashed names.
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
# Uploaded attachments, stored with Django's storage API: files under MEDIA_ROOT (not the
# static root: each is served only to its owner, by `conversations.views_attachments`), or an
# S3-compatible bucket with DJANGO_STORAGE_BACKEND=s3 (django-storages, README "Attachments").
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT") or BASE_DIR / "media")
MEDIA_URL = "media/"
if MEDIA_ROOT.resolve() == STATIC_ROOT.resolve():
    raise ImproperlyConfigured("DJANGO_MEDIA_ROOT must not be DJANGO_STATIC_ROOT.")
_STORAGE_BACKEND = env_str("DJANGO_STORAGE_BACKEND", "filesystem")
if _STORAGE_BACKEND == "filesystem":
    _DEFAULT_STORAGE: dict = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif _STORAGE_BACKEND == "s3":
    # django-storages (`pip install django-storages[s3]`); boto3 reads AWS_ACCESS_KEY_ID and
    # AWS_SECRET_ACCESS_KEY from the environment itself. Objects stay private: the app serves
    # each file to its owner.
    if not env_str("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured(
            "DJANGO_STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME (and AWS_S3_ENDPOINT_URL "
            "for a bucket outside AWS)."
        )
    _DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    raise ImproperlyConfigured(
        f"DJANGO_STORAGE_BACKEND must be filesystem or s3, not {_STORAGE_BACKEND!r}."
    )
STORAGES = {
    "default": _DEFAULT_STORAGE,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "chatsite.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Security. Plain HTTP works unless DJANGO_HTTPS says the site is served over HTTPS.
HTTPS = env_bool("DJANGO_HTTPS", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# A load balancer's probe often speaks plain HTTP to the process itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# The model. With neither a key nor a base URL the built-in simulator answers (demo mode).
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_CONNECT_TIMEOUT = env_float("OPENAI_CONNECT_TIMEOUT", 10.0, minimum=0.1)
# Longest silence tolerated inside a stream before the reply is failed as stalled.
OPENAI_READ_TIMEOUT = env_float("OPENAI_READ_TIMEOUT", 60.0, minimum=0.1)
OPENAI_MAX_RETRIES = env_int("OPENAI_MAX_RETRIES", 1)
DEMO_MODE = not OPENAI_API_KEY and not OPENAI_BASE_URL

# Limits, each answered with a clear message.
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 20000, minimum=1)
# Longest system prompt of a persona or a conversation (it is sent with every message).
CHAT_MAX_SYSTEM_PROMPT_CHARS = env_int("CHAT_MAX_SYSTEM_PROMPT_CHARS", 20000, minimum=1)
CHAT_MAX_CONCURRENT_REPLIES = env_int("CHAT_MAX_CONCURRENT_REPLIES", 4, minimum=1)
# Chat sockets one user may hold open in one server process (a tab holds one).
CHAT_MAX_SOCKETS_PER_USER = env_int("CHAT_MAX_SOCKETS_PER_USER", 20, minimum=1)
CHAT_MESSAGES_PER_MINUTE = env_int("CHAT_MESSAGES_PER_MINUTE", 20, minimum=1)
# Tokens of context sent per call; per-model overrides as "model=tokens,model=tokens".
CHAT_CONTEXT_TOKENS = env_int("CHAT_CONTEXT_TOKENS", 16000, minimum=256)
CHAT_CONTEXT_TOKENS_PER_MODEL = env_mapping_int("CHAT_CONTEXT_TOKENS_PER_MODEL")
# How often a streaming reply's text is saved, and how long its lease lasts.
CHAT_FLUSH_SECONDS = env_float("CHAT_FLUSH_SECONDS", 1.0, minimum=0.05)
CHAT_LEASE_SECONDS = env_float("CHAT_LEASE_SECONDS", 15.0, minimum=1.0)
# The garbage collector tuned for many replies in flight at once (chatsite/asgi.py).
CHAT_GC_TUNING = env_bool("CHAT_GC_TUNING", True)
# daphne on uvloop's event loop (chatsite/serve.py); off, on asyncio's own.
CHAT_UVLOOP = env_bool("CHAT_UVLOOP", True)
# Messages sent at the same moment are stored together, one transaction a batch (group commit);
# off, each is stored alone (docs/benchmarks.md measures both).
CHAT_GROUP_COMMIT = env_bool("CHAT_GROUP_COMMIT", True)
# A server process's database work runs on one thread (channels' database thread), whatever
# the database. On, a database that takes several writers at once (PostgreSQL) gets it in
# several threads side by side: they contend with the event loop for Python's one core
# (docs/benchmarks.md measures both).
CHAT_DATABASE_THREADS = env_bool("CHAT_DATABASE_THREADS", False)
# How often a server process looks again at its chat sockets' sessions, closing those whose
# session ended without their hearing of it (the channel layer down at a logout, or the
# session run out: conversations/session_watch.py).
CHAT_SESSION_CHECK_SECONDS = env_float("CHAT_SESSION_CHECK_SECONDS", 60.0, minimum=0.05)
# On SIGTERM, how long a server process lets its streaming replies finish before it ends the
# rest as interrupted and exits.
CHAT_SHUTDOWN_GRACE_SECONDS = env_float("CHAT_SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0.0)
# Tokens that arrive within this many seconds travel to the browser as one delta.
CHAT_DELTA_SECONDS = env_float("CHAT_DELTA_SECONDS", 0.04, minimum=0.0)
# Deltas a server process sends per second, all its streaming replies together: with many
# replies at once each one sends less often (the first token always goes at once), so the
# channel layer never falls behind.
CHAT_DELTAS_PER_SECOND = env_float("CHAT_DELTAS_PER_SECOND", 2000.0, minimum=1.0)
# After a conversation's first answer, ask the model for a short title in the user's language
# (one more call, not counted against CHAT_MESSAGES_PER_MINUTE); off, the first message, cut,
# stays the title.
CHAT_MODEL_TITLES = env_bool("CHAT_MODEL_TITLES", True)
# Off, the admin shows other users' conversations by title and usage only: no message, no
# system prompt, no export of them (for teams whose admins should not read their chats).
CHAT_ADMIN_READS_MESSAGES = env_bool("CHAT_ADMIN_READS_MESSAGES", True)

# Attachments: images, text files and PDFs a message carries (README "Attachments").
# Largest upload, in bytes; files per message; pixels of an image before it is decoded at all
# (a small file can claim huge dimensions: a decompression bomb).
CHAT_ATTACHMENT_MAX_BYTES = env_int("CHAT_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
CHAT_ATTACHMENTS_PER_MESSAGE = env_int("CHAT_ATTACHMENTS_PER_MESSAGE", 5, minimum=1)
CHAT_IMAGE_MAX_PIXELS = env_int("CHAT_IMAGE_MAX_PIXELS", 40_000_000, minimum=1)
# Images are scaled down to fit these sides, as OpenAI does before its model reads them.
CHAT_IMAGE_MAX_LONG_SIDE = env_int("CHAT_IMAGE_MAX_LONG_SIDE", 2048, minimum=16)
CHAT_IMAGE_MAX_SHORT_SIDE = env_int("CHAT_IMAGE_MAX_SHORT_SIDE", 768, minimum=16)
# Attachment bytes a JSON export carries inside the file, all attachments together; past it
# the export lists the rest by name only.
CHAT_EXPORT_ATTACHMENT_BYTES = env_int("CHAT_EXPORT_ATTACHMENT_BYTES", 20 * 1024 * 1024)

# Share links: Share in a conversation's menu makes a read-only link anyone can open. Off, the
# button is gone and every share page answers 404 (the links are kept, and open again when on).
CHAT_SHARING = env_bool("CHAT_SHARING", True)

# One line per event on stdout (tracebacks folded into their line unless DJANGO_DEBUG is on),
# never the API key: see chatsite/logs.py. daphne's own messages take the same handler; its
# access log writes one line per request to stdout by itself.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {
            "()": "chatsite.logs.OneLineFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "fold": not DEBUG,
        },
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": sys.stdout, "formatter": "line"},
    },
    "root": {"handlers": ["stdout"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
    },
}
