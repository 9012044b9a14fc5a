"""The agent's screens: conversation lists, a conversation, and the actions taken on it.

Views are thin: load through `access`, validate with a form, call one action, render or
redirect. Every POST answers with a redirect (works without JavaScript; htmx follows it).
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from strongroom import audit
from strongroom.audit.queries import access_history
from strongroom.blobs.store import blob_store
from strongroom.defense.html import embed_inline_images
from strongroom.errors import Invalid
from strongroom.identity.models import User
from strongroom.identity.permissions import Perm, has_global_perm
from strongroom.identity.reauth import recent_auth
from strongroom.inboxes import access, actions
from strongroom.inboxes.export import export_conversation
from strongroom.inboxes.forms import AssignForm, NoteForm, ReplyForm, StatusForm, TagsForm, split_addresses
from strongroom.inboxes.listing import VIEWS, ConversationQuery, conversations_for, sidebar_for
from strongroom.inboxes.models import Conversation, OutboxItem, Status
from strongroom.inboxes.timeline import timeline_of
from strongroom.publicids import parse_public_id
from strongroom.web.guards import needs, signed_in

PAGE_SIZE = 50
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
MAX_INLINE_IMAGE_BYTES = 5 * 1024 * 1024
LIST_URL_KEY = "strongroom:last_list"


# --- lists -----------------------------------------------------------------------------------


@signed_in
@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    view = request.GET.get("view", "all")
    if view not in VIEWS:
        view = "all"
    status = request.GET.get("status", Status.OPEN)
    query = ConversationQuery(
        view=view,
        inbox=parse_public_id(request.GET.get("inbox")),
        status=None if status == "any" else (status if status in Status.values else Status.OPEN),
        tag=request.GET.get("tag", "")[:50],
        q=request.GET.get("q", "")[:200],
    )
    # The current inbox comes from the sidebar: an inbox the person may not see is not found
    # there, and then the list is empty, exactly as for an inbox that does not exist.
    sidebar = sidebar_for(request.user)  # type: ignore[arg-type]
    inbox = next((i for i in sidebar.inboxes if i.public_id == query.inbox), None) if query.inbox else None
    page_number = max(1, min(_int(request.GET.get("page"), 1), 10_000))
    start = (page_number - 1) * PAGE_SIZE
    # Pages are counted by looking one row ahead, not with COUNT(*) over every conversation.
    rows = list(conversations_for(request.user, query, inbox=inbox)[start : start + PAGE_SIZE + 1])  # type: ignore[arg-type]
    has_next = len(rows) > PAGE_SIZE
    if request.session.get(LIST_URL_KEY) != request.get_full_path():
        request.session[LIST_URL_KEY] = request.get_full_path()  # "back to the list" returns here
    audit.record(
        "conversation.searched" if query.q else "conversation.listed",
        inbox=inbox,
        details={"page": page_number, "count": len(rows[:PAGE_SIZE])}
        | (
            {}
            if query.q
            else {
                "view": view,
                "status": status if status in {*Status.values, "any"} else "open",
                "tag": bool(query.tag),
            }
        ),
    )
    params = {k: v for k, v in request.GET.items() if k != "page"}
    title = {"mine": "Mine", "unassigned": "Unassigned", "all": inbox.name if inbox else "All inboxes"}[view]
    tags = list(access.tags_visible_to(request.user, inbox).values_list("name", flat=True)) if inbox else []  # type: ignore[arg-type]
    return render(
        request,
        "inboxes/list.html",
        dict(
            sidebar=sidebar,
            nav=str(inbox.public_id) if inbox else view,
            not_in_inbox=inbox is None,
            show_status=status == "any",
            conversations=rows[:PAGE_SIZE],
            query=query,
            status=status,
            title=title,
            current_inbox=inbox,
            inbox_tags=tags,
            page=page_number,
            has_next=has_next,
            prev_url=f"?{urlencode({**params, 'page': page_number - 1})}" if page_number > 1 else "",
            next_url=f"?{urlencode({**params, 'page': page_number + 1})}" if has_next else "",
            status_urls={
                s: f"?{urlencode({**{k: v for k, v in params.items() if k != 'status'}, 'status': s})}"
                for s in ("open", "pending", "closed", "any")
            },
        ),
    )


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _back_to_list(request: HttpRequest) -> str:
    url = request.session.get(LIST_URL_KEY, "")
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        return str(url)
    return reverse("inboxes:list")


# --- one conversation ------------------------------------------------------------------------


def _conversation_page(
    request: HttpRequest,
    conversation: Conversation,
    *,
    reply_form: ReplyForm | None = None,
    note_form: NoteForm | None = None,
    composer: str = "reply",
    status: int = 200,
) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    # Every rendering shows the whole conversation (a form with an error included): a read.
    audit.record("conversation.viewed", target=conversation, inbox=conversation.inbox, details={"channel": "web"})
    perms = access.inbox_perms(user, conversation.inbox)
    members = access.people_with(conversation.inbox, Perm.VIEW).order_by("name", "email")
    history = []
    if conversation.contact_id and Perm.SEE_CONTACT in perms:
        history = list(
            access.conversations_visible_to(user, Perm.SEE_CONTACT)
            .filter(contact_id=conversation.contact_id)
            .exclude(pk=conversation.pk)
            .select_related("inbox")
            .order_by("-last_activity_at")[:10]
        )
    recent_readers = _recent_readers(conversation) if has_global_perm(user, Perm.READ_AUDIT) else []
    timeline = timeline_of(conversation)
    initial_cc = ", ".join(actions.default_cc(conversation, [e.message for e in timeline if e.message]))
    inbox_tags = list(
        access.tags_visible_to(user, conversation.inbox)
        .annotate(on=Exists(Conversation.tags.through.objects.filter(tag=OuterRef("pk"), conversation=conversation)))
        .values_list("name", "on")
    )
    return render(
        request,
        "inboxes/conversation.html",
        dict(
            nav=str(conversation.inbox.public_id),
            conversation=conversation,
            timeline=timeline,
            tags=[name for name, on in inbox_tags if on],
            inbox_tags=[name for name, _ in inbox_tags],
            perms={p.name: p in perms for p in Perm},
            members=list(members),
            history=history,
            reply_form=reply_form or ReplyForm(initial={"cc": initial_cc}),
            note_form=note_form or NoteForm(),
            composer=composer,
            can_send=conversation.inbox.smtp_endpoint() is not None,
            statuses=Status.choices,
            back_url=_back_to_list(request),
            recent_readers=recent_readers,
        ),
        status=status,
    )


def _recent_readers(conversation: Conversation, limit: int = 5) -> list[dict[str, object]]:
    """The last people who opened the conversation (for people with the audit permission)."""
    seen: dict[str, object] = {}
    for entry in access_history("conversation", str(conversation.public_id), limit=200):
        if entry.actor_kind == "person" and entry.code == "conversation.viewed" and entry.actor_id not in seen:
            seen[entry.actor_id] = entry.at
            if len(seen) == limit:
                break
    names = {
        str(pid): name or email
        for pid, name, email in User.objects.filter(public_id__in=list(seen)).values_list("public_id", "name", "email")
    }
    return [{"name": names.get(pid, "someone removed"), "at": at} for pid, at in seen.items()]


@needs(Perm.VIEW)
@require_GET
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = access.get_conversation_for(request.user, conversation_id, Perm.VIEW)  # type: ignore[arg-type]
    return _conversation_page(request, conversation)


def _to_conversation(conversation: Conversation) -> HttpResponse:
    return redirect("inboxes:conversation", conversation_id=conversation.public_id)


@needs(Perm.REPLY)
@require_POST
def reply(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = access.get_conversation_for(request.user, conversation_id, Perm.REPLY)  # type: ignore[arg-type]
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        attachments = [
            actions.ReplyAttachment(f.name, f.content_type or "application/octet-stream", f.read())
            for f in form.cleaned_data["attachments"]
        ]
        try:
            actions.reply_to_conversation(
                conversation,
                actor=request.user,
                body=form.cleaned_data["body"],  # type: ignore[arg-type]
                cc=split_addresses(form.cleaned_data["cc"]),
                attachments=attachments,
                status_after=form.cleaned_data["status_after"] or None,
            )
        except Invalid as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Reply queued for sending.")
            if form.cleaned_data["status_after"] == Status.CLOSED:
                return redirect(_back_to_list(request))
            return _to_conversation(conversation)
    # Nothing typed is lost: the page comes back with the form as it was sent.
    return _conversation_page(request, conversation, reply_form=form, composer="reply", status=400)


@needs(Perm.NOTE)
@require_POST
def add_note(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = access.get_conversation_for(request.user, conversation_id, Perm.NOTE)  # type: ignore[arg-type]
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            actions.add_note(conversation, actor=request.user, body=form.cleaned_data["body"])  # type: ignore[arg-type]
        except Invalid as exc:
            form.add_error(None, str(exc))
        else:
            return _to_conversation(conversation)
    return _conversation_page(request, conversation, note_form=form, composer="note", status=400)


@needs(Perm.ASSIGN)
@require_POST
def assign(request: HttpRequest, conversation_id: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    conversation = access.get_conversation_for(user, conversation_id, Perm.ASSIGN)
    form = AssignForm(request.POST)
    if not form.is_valid():
        raise Invalid("choose a person to assign")
    choice = form.cleaned_data["assignee"]
    assignee: User | None = None
    if choice == "me":
        assignee = user
    elif choice:
        person_id = parse_public_id(choice)
        assignee = User.objects.filter(public_id=person_id).first() if person_id else None
        if assignee is None:
            raise Invalid("that person cannot be assigned")
    actions.assign_conversation(conversation, actor=user, assignee=assignee)
    return _to_conversation(conversation)


@needs(Perm.CHANGE_STATUS)
@require_POST
def change_status(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = access.get_conversation_for(request.user, conversation_id, Perm.CHANGE_STATUS)  # type: ignore[arg-type]
    form = StatusForm(request.POST)
    if not form.is_valid():
        raise Invalid("choose open, pending or closed")
    actions.change_status(conversation, actor=request.user, status=form.cleaned_data["status"])  # type: ignore[arg-type]
    if form.cleaned_data["status"] == Status.CLOSED and request.POST.get("next") == "list":
        return redirect(_back_to_list(request))
    return _to_conversation(conversation)


@needs(Perm.TAG)
@require_POST
def change_tags(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = access.get_conversation_for(request.user, conversation_id, Perm.TAG)  # type: ignore[arg-type]
    form = TagsForm(request.POST)
    if not form.is_valid():
        raise Invalid("tags are at most 50 characters")
    actions.tag_conversation(
        conversation,
        actor=request.user,  # type: ignore[arg-type]
        add=[t for t in form.cleaned_data["add"].split(",") if t.strip()],
        remove=[form.cleaned_data["remove"]] if form.cleaned_data["remove"] else [],
    )
    return _to_conversation(conversation)


@needs(Perm.VIEW)
@require_GET
def delivery_status(request: HttpRequest, message_id: str) -> HttpResponse:
    """The delivery badge of a reply (the conversation page polls it while the reply is queued)."""
    message = access.get_message_for(request.user, message_id, Perm.VIEW)  # type: ignore[arg-type]
    if not OutboxItem.objects.filter(message=message).exists():
        raise Http404("not a reply")
    audit.record("delivery.viewed", target=message.conversation, details={"message": str(message.public_id)})
    return render(request, "inboxes/_delivery.html", {"message": message})


@needs(Perm.EXPORT)
@recent_auth
@require_GET
def conversation_export(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """The conversation's mail as an mbox file (after a recent password: a bulk copy)."""
    conversation = access.get_conversation_for(request.user, conversation_id, Perm.EXPORT)  # type: ignore[arg-type]
    data, filename = export_conversation(conversation, channel="web")
    return safe_download(data, filename, "application/mbox")


@needs(Perm.DELETE)
@recent_auth
@require_POST
def conversation_delete(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = access.get_conversation_for(request.user, conversation_id, Perm.DELETE)  # type: ignore[arg-type]
    subject = conversation.subject or "(no subject)"
    actions.delete_conversation(conversation, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Deleted “{subject[:80]}”.")
    return redirect(f"{reverse('inboxes:list')}?inbox={conversation.inbox.public_id}")


@needs(Perm.REPLY)
@require_POST
def retry_delivery(request: HttpRequest, message_id: str) -> HttpResponse:
    message = access.get_message_for(request.user, message_id, Perm.REPLY)  # type: ignore[arg-type]
    item = OutboxItem.objects.filter(message=message).select_related("inbox").first()
    if item is None:
        raise Http404("no such reply")
    actions.retry_delivery(item, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, "The reply will be sent again now.")
    return _to_conversation(message.conversation)


# --- message content -------------------------------------------------------------------------


FRAME_CSP = (
    "default-src 'none'; img-src data:{remote}; style-src 'unsafe-inline'; font-src data:; "
    "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
FRAME_STYLE = (
    "html{color-scheme:light}body{margin:0;padding:2px 4px;font:14px/1.5 system-ui,-apple-system,'Segoe UI',"
    "Roboto,sans-serif;color:#1d2330;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
    "blockquote{margin:0 0 0 .5em;padding-left:.8em;border-left:3px solid #d5d9e2;color:#4a5264}"
    "table{max-width:100%}pre{white-space:pre-wrap}"
)


@needs(Perm.VIEW)
@require_GET
@xframe_options_sameorigin
def message_html(request: HttpRequest, message_id: str) -> HttpResponse:
    """The sanitized HTML of a received message, for the sandboxed frame of the conversation.

    Three locks: the HTML was sanitized when it arrived; this response's CSP allows no script
    and no remote load (remote images only when asked); the frame is sandboxed without scripts.
    """
    message = access.get_message_for(request.user, message_id, Perm.VIEW)  # type: ignore[arg-type]
    if not message.html_body:
        raise Http404("this message has no HTML part")
    images = {
        a.content_id: f"data:{a.content_type};base64,{_b64(blob_store().get(a.blob))}"
        for a in message.attachments.filter(is_inline=True, size__lte=MAX_INLINE_IMAGE_BYTES)
        if a.content_id and a.content_type in INLINE_IMAGE_TYPES
    }
    body = embed_inline_images(message.html_body, images) if images else message.html_body
    audit.record(
        "message.html.viewed",
        target=message.conversation,
        details={"message": str(message.public_id), "remote_images": request.GET.get("images") == "1"},
    )
    document = (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        f"<style>{FRAME_STYLE}</style></head><body>{body}</body></html>"
    )
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    remote = " https: http:" if request.GET.get("images") == "1" else ""
    response["Content-Security-Policy"] = FRAME_CSP.format(remote=remote)
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def safe_download(data: bytes, filename: str, content_type: str) -> HttpResponse:
    # Anything but a plain image is served as an opaque download, never rendered in our origin.
    safe_type = content_type if content_type in INLINE_IMAGE_TYPES else "application/octet-stream"
    response = HttpResponse(data, content_type=safe_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "no-store"
    return response


@needs(Perm.DOWNLOAD_ATTACHMENTS)
@require_GET
def attachment_download(request: HttpRequest, attachment_id: str) -> HttpResponse:
    attachment = access.get_attachment_for(request.user, attachment_id, Perm.DOWNLOAD_ATTACHMENTS)  # type: ignore[arg-type]
    audit.record(
        "attachment.downloaded",
        target=attachment.message.conversation,
        details={"attachment": str(attachment.public_id), "channel": "web"},
    )
    return safe_download(blob_store().get(attachment.blob), attachment.filename, attachment.content_type)


@needs(Perm.DOWNLOAD_ATTACHMENTS)
@require_GET
def message_source(request: HttpRequest, message_id: str) -> HttpResponse:
    """The raw message as received (or as sent): shown as text, or downloaded as .eml."""
    message = access.get_message_for(request.user, message_id, Perm.DOWNLOAD_ATTACHMENTS)  # type: ignore[arg-type]
    if not message.raw_blob:
        raise Http404("no raw source is kept for this message")
    raw = blob_store().get(message.raw_blob)
    audit.record("message.source.viewed", target=message.conversation, details={"message": str(message.public_id)})
    if request.GET.get("download") == "1":
        return safe_download(raw, f"message-{message.public_id}.eml", "message/rfc822")
    response = HttpResponse(raw.decode("utf-8", errors="replace"), content_type="text/plain; charset=utf-8")
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "no-store"
    return response


@needs(Perm.SEE_CONTACT)
@require_GET
def contact_detail(request: HttpRequest, contact_id: str) -> HttpResponse:
    contact = access.get_contact_for(request.user, contact_id)  # type: ignore[arg-type]
    conversations = (
        access.conversations_visible_to(request.user, Perm.SEE_CONTACT)  # type: ignore[arg-type]
        .filter(contact=contact)
        .select_related("inbox", "assignee")
        .order_by("-last_activity_at")
    )
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    audit.record("contact.viewed", target=contact)
    return render(request, "inboxes/contact.html", dict(contact=contact, page=page))
