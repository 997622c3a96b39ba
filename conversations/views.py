"""Pages. Each view parses, checks ownership and hands the write to `services`."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import services
from .forms import NewConversationForm, SignUpForm
from .models import Conversation, Persona


@login_not_required
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.ALLOW_SIGNUP:
        raise Http404("Sign-up is closed.")
    if request.user.is_authenticated:
        return redirect("chat")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat")
    return render(request, "registration/signup.html", {"form": form})


def chat(request: HttpRequest) -> HttpResponse:
    """The newest conversation, or a new one."""
    newest = Conversation.objects.owned_by(request.user).order_by("-updated_at").first()
    if newest is not None:
        return redirect("conversation", conversation_id=newest.pk)
    return new_chat_page(request)


def new_chat_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "conversations/chat.html",
        {
            "conversation": None,
            "personas": Persona.objects.active(),
            "default_persona": Persona.objects.default(),
            "conversations": Conversation.objects.owned_by(request.user)[:50],
        },
    )


def conversation(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    current = get_object_or_404(Conversation.objects.owned_by(request.user), pk=conversation_id)
    return render(
        request,
        "conversations/chat.html",
        {
            "conversation": current,
            "chat_messages": current.messages.all(),
            "personas": Persona.objects.active(),
            "conversations": Conversation.objects.owned_by(request.user)[:50],
        },
    )


@require_POST
def new_conversation(request: HttpRequest) -> HttpResponse:
    form = NewConversationForm(request.POST)
    persona = form.cleaned_data["persona"] if form.is_valid() else None
    created = services.start_conversation(user=request.user, persona=persona)
    return redirect("conversation", conversation_id=created.pk)
