from __future__ import annotations

from django.urls import path

from . import views, views_attachments, views_compare, views_export, views_share

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/new/", views.new_conversation, name="new_conversation"),
    path("c/list/", views.conversation_list, name="conversation_list"),
    path("c/<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("c/<uuid:conversation_id>/messages/", views.older_messages, name="older_messages"),
    path(
        "c/<uuid:conversation_id>/messages/<int:message_id>/logprobs/",
        views.message_logprobs,
        name="message_logprobs",
    ),
    path(
        "c/<uuid:conversation_id>/messages/<int:message_id>/rating/",
        views.rate_answer,
        name="rate_answer",
    ),
    path(
        "c/<uuid:conversation_id>/messages/<int:message_id>/branch/",
        views.branch,
        name="branch_conversation",
    ),
    # Attachments: upload one (before the message that carries it), take it back, its file.
    path(
        "c/<uuid:conversation_id>/attachments/",
        views_attachments.upload,
        name="upload_attachment",
    ),
    path(
        "c/<uuid:conversation_id>/attachments/<int:attachment_id>/",
        views_attachments.file,
        name="attachment_file",
    ),
    path(
        "c/<uuid:conversation_id>/attachments/<int:attachment_id>/discard/",
        views_attachments.discard,
        name="discard_attachment",
    ),
    path("c/<uuid:conversation_id>/rename/", views.rename, name="rename_conversation"),
    path("c/<uuid:conversation_id>/pin/", views.pin, name="pin_conversation"),
    path("c/<uuid:conversation_id>/archive/", views.archive, name="archive_conversation"),
    path("archived/", views.archived, name="archived_conversations"),
    path("c/<uuid:conversation_id>/delete/", views.delete, name="delete_conversation"),
    path("c/<uuid:conversation_id>/settings/", views.update_settings, name="conversation_settings"),
    path("c/<uuid:conversation_id>/model/", views.choose_model, name="conversation_model"),
    # Share links: make one, list and revoke them, the public page and continuing from it.
    path("c/<uuid:conversation_id>/share/", views_share.share, name="share_conversation"),
    path("shares/", views_share.share_links, name="share_links"),
    path("instructions/", views.custom_instructions, name="custom_instructions"),
    path("shares/<int:share_id>/revoke/", views_share.revoke, name="revoke_share"),
    path("s/<str:token>/", views_share.shared, name="shared"),
    path("s/<str:token>/continue/", views_share.continue_shared, name="continue_shared"),
    # Export and import.
    path(
        "c/<uuid:conversation_id>/export.<str:fmt>",
        views_export.export_conversation,
        name="export_conversation",
    ),
    path("c/import/", views_export.import_conversations, name="import_conversations"),
    # Compare: the form, starting one (async), and its columns.
    path("compare/", views_compare.compare_form, name="compare"),
    path("compare/start/", views_compare.start_compare, name="start_compare"),
    path("compare/view/", views_compare.compare_view, name="compare_view"),
]
