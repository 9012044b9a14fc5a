"""REST endpoints for inboxes, conversations and messages (mounted under /api/v1/).

No `from __future__ import annotations` here: django-ninja reads the annotations at runtime,
and its paginator cannot resolve them as strings.
"""

import base64
import binascii
import uuid
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.pagination import LimitOffsetPagination, paginate

from strongroom import audit
from strongroom.api.router import declares
from strongroom.blobs.store import blob_store
from strongroom.errors import Invalid, NotFound
from strongroom.identity.models import User
from strongroom.identity.permissions import Perm
from strongroom.inboxes import access, actions, export
from strongroom.inboxes.listing import VIEWS, ConversationQuery, conversations_for
from strongroom.inboxes.models import Conversation, Inbox, Message, OutboxItem, Status
from strongroom.inboxes.views import safe_download

router = Router(tags=["conversations"])


# --- schemas ---------------------------------------------------------------------------------


class PersonOut(Schema):
    id: uuid.UUID
    name: str
    email: str


class AddressOut(Schema):
    name: str
    address: str


class InboxOut(Schema):
    id: uuid.UUID
    name: str
    address: str
    is_active: bool


class ConversationOut(Schema):
    id: uuid.UUID
    inbox: InboxOut
    subject: str
    status: str
    assignee: PersonOut | None
    contact: AddressOut | None
    tags: list[str]
    preview: str
    message_count: int
    created_at: datetime
    last_activity_at: datetime


class AttachmentOut(Schema):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    is_inline: bool
    content_id: str
    download_url: str


class DeliveryOut(Schema):
    state: str
    attempts: int
    last_error: str
    next_attempt_at: datetime | None
    sent_at: datetime | None
    refused: dict[str, str]


class MessageOut(Schema):
    id: uuid.UUID
    kind: str = Field(description="inbound (received), outbound (a reply) or note (internal)")
    author: PersonOut | None
    sender: AddressOut | None
    to: list[AddressOut]
    cc: list[AddressOut]
    reply_to: list[AddressOut]
    subject: str
    text_body: str
    html_body: str = Field(description="sanitized HTML; empty when the message had none")
    has_remote_images: bool
    date: datetime | None
    created_at: datetime
    message_id: str
    in_reply_to: str
    references: list[str]
    attachments: list[AttachmentOut]
    delivery: DeliveryOut | None
    problems: list[str]
    body_error: str


class ReplyAttachmentIn(Schema):
    filename: str = Field(max_length=255)
    content_type: str = Field("application/octet-stream", max_length=127)
    content_base64: str


class ReplyIn(Schema):
    body: str = Field(max_length=200_000)
    cc: list[str] = []
    status_after: str | None = Field(None, description="open, pending or closed after sending")
    attachments: list[ReplyAttachmentIn] = []


class NoteIn(Schema):
    body: str = Field(max_length=100_000)


class AssignIn(Schema):
    assignee: uuid.UUID | None = Field(None, description="a person's id, or null to unassign")


class StatusIn(Schema):
    status: str = Field(description="open, pending or closed")


class TagsIn(Schema):
    add: list[str] = []
    remove: list[str] = []


class ConversationFilters(Schema):
    inbox: uuid.UUID | None = None
    status: str | None = Field(None, description="open, pending or closed; omitted: every status")
    assignee: uuid.UUID | None = None
    tag: str = ""
    q: str = Field("", description="search subject and contact")
    view: str = Field("all", description="all, mine or unassigned")


# --- converters ------------------------------------------------------------------------------


def _person(user: User | None) -> PersonOut | None:
    return PersonOut(id=user.public_id, name=user.name, email=user.email) if user else None


def _inbox(inbox: Inbox) -> InboxOut:
    return InboxOut(id=inbox.public_id, name=inbox.name, address=inbox.address, is_active=inbox.is_active)


def _conversation(c: Conversation) -> ConversationOut:
    return ConversationOut(
        id=c.public_id,
        inbox=_inbox(c.inbox),
        subject=c.subject,
        status=c.status,
        assignee=_person(c.assignee),
        contact=AddressOut(name=c.contact.name, address=c.contact.email) if c.contact else None,
        tags=sorted(t.name for t in c.tags.all()),
        preview=c.preview,
        message_count=c.message_count,
        created_at=c.created_at,
        last_activity_at=c.last_activity_at,
    )


def _addresses(pairs: list[list[str]]) -> list[AddressOut]:
    return [AddressOut(name=name, address=address) for name, address in pairs]


def _message(request: HttpRequest, m: Message) -> MessageOut:
    item: OutboxItem | None = getattr(m, "outbox", None) if m.kind == "outbound" else None
    return MessageOut(
        id=m.public_id,
        kind=m.kind,
        author=_person(m.author),
        sender=AddressOut(name=m.sender_name, address=m.sender_address) if m.sender_address else None,
        to=_addresses(m.to_addresses),
        cc=_addresses(m.cc_addresses),
        reply_to=_addresses(m.reply_to_addresses),
        subject=m.subject,
        text_body=m.text_body,
        html_body=m.html_body if m.kind == "inbound" else "",
        has_remote_images=m.has_remote_images,
        date=m.sent_at,
        created_at=m.created_at,
        message_id=m.message_id,
        in_reply_to=m.in_reply_to,
        references=m.references.split(),
        attachments=[
            AttachmentOut(
                id=a.public_id,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                is_inline=a.is_inline,
                content_id=a.content_id,
                download_url=request.build_absolute_uri(f"/api/v1/attachments/{a.public_id}"),
            )
            for a in m.attachments.all()
        ],
        delivery=DeliveryOut(
            state=item.state,
            attempts=item.attempts,
            last_error=item.last_error,
            next_attempt_at=item.next_attempt_at if item.state == "queued" else None,
            sent_at=item.sent_at,
            refused=item.refused,
        )
        if item
        else None,
        problems=list(m.problems),
        body_error=m.body_error,
    )


def _me(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _reloaded(request: HttpRequest, conversation: Conversation) -> ConversationOut:
    return _conversation(access.get_conversation_for(_me(request), conversation.public_id, Perm.VIEW))


# --- endpoints -------------------------------------------------------------------------------


@router.get("/inboxes", response=list[InboxOut], tags=["inboxes"], openapi_extra=declares("signed-in"))
@paginate(LimitOffsetPagination)
def list_inboxes(request: HttpRequest) -> list[InboxOut]:
    """The inboxes you are a member of."""
    inboxes = [_inbox(i) for i in access.inboxes_visible_to(_me(request), Perm.VIEW).order_by("name")]
    audit.record("inbox.listed", details={"count": len(inboxes), "channel": "api"})
    return inboxes


@router.get("/conversations", response=list[ConversationOut], openapi_extra=declares("signed-in"))
@paginate(LimitOffsetPagination)
def list_conversations(request: HttpRequest, filters: Query[ConversationFilters]) -> list[ConversationOut]:
    """Conversations you may see, newest activity first. Without `status`, every status."""
    if filters.view not in VIEWS:
        raise Invalid("view must be all, mine or unassigned")
    if filters.status is not None and filters.status not in Status.values:
        raise Invalid("status must be open, pending or closed")
    query = ConversationQuery(
        view=filters.view,
        inbox=filters.inbox,
        status=filters.status,
        tag=filters.tag,
        q=filters.q[:200],
        assignee=filters.assignee,
    )
    audit.record(
        "conversation.searched" if query.q else "conversation.listed",
        inbox=filters.inbox,
        details={"channel": "api"}
        | ({} if query.q else {"view": query.view, "status": query.status or "any", "tag": bool(query.tag)}),
    )
    return _LazyConversations(conversations_for(_me(request), query))  # type: ignore[return-value]


class _LazyConversations:
    """Lets the paginator count and slice in the database, converting only the page it returns."""

    def __init__(self, queryset: object) -> None:
        self.queryset = queryset

    def count(self) -> int:
        return self.queryset.count()  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, item: slice) -> list[ConversationOut]:
        return [_conversation(c) for c in self.queryset[item]]  # type: ignore[index]


@router.get("/conversations/{conversation_id}", response=ConversationOut, openapi_extra=declares(Perm.VIEW.value))
def get_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> ConversationOut:
    conversation = access.get_conversation_for(_me(request), conversation_id, Perm.VIEW)
    audit.record("conversation.viewed", target=conversation, inbox=conversation.inbox, details={"channel": "api"})
    return _conversation(conversation)


@router.get(
    "/conversations/{conversation_id}/messages", response=list[MessageOut], openapi_extra=declares(Perm.VIEW.value)
)
@paginate(LimitOffsetPagination)
def list_messages(request: HttpRequest, conversation_id: uuid.UUID) -> list[MessageOut]:
    """Messages and notes in order, with attachment metadata and delivery state of replies."""
    conversation = access.get_conversation_for(_me(request), conversation_id, Perm.VIEW)
    messages = (
        conversation.messages.select_related("author", "outbox")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )
    result = [_message(request, m) for m in messages]
    audit.record(
        "conversation.messages.listed",
        target=conversation,
        inbox=conversation.inbox,
        details={"channel": "api", "count": len(result)},
    )
    return result


@router.post(
    "/conversations/{conversation_id}/reply", response={201: MessageOut}, openapi_extra=declares(Perm.REPLY.value)
)
def reply(request: HttpRequest, conversation_id: uuid.UUID, payload: ReplyIn) -> MessageOut:
    """Queue a reply to the customer; the worker sends it (see `delivery` in the message)."""
    conversation = access.get_conversation_for(_me(request), conversation_id, Perm.REPLY)
    attachments = []
    for a in payload.attachments:
        try:
            content = base64.b64decode(a.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"attachment {a.filename!r} is not valid base64") from None
        attachments.append(actions.ReplyAttachment(a.filename, a.content_type, content))
    message = actions.reply_to_conversation(
        conversation,
        actor=_me(request),
        body=payload.body,
        cc=payload.cc,
        attachments=attachments,
        status_after=payload.status_after,
    )
    message = Message.objects.select_related("author", "outbox").get(pk=message.pk)
    return _message(request, message)  # 201: the only status this operation declares


@router.post(
    "/conversations/{conversation_id}/notes", response={201: MessageOut}, openapi_extra=declares(Perm.NOTE.value)
)
def add_note(request: HttpRequest, conversation_id: uuid.UUID, payload: NoteIn) -> MessageOut:
    conversation = access.get_conversation_for(_me(request), conversation_id, Perm.NOTE)
    note = actions.add_note(conversation, actor=_me(request), body=payload.body)
    return _message(request, note)


@router.post(
    "/conversations/{conversation_id}/assign", response=ConversationOut, openapi_extra=declares(Perm.ASSIGN.value)
)
def assign(request: HttpRequest, conversation_id: uuid.UUID, payload: AssignIn) -> ConversationOut:
    conversation = access.get_conversation_for(_me(request), conversation_id, Perm.ASSIGN)
    assignee = None
    if payload.assignee is not None:
        assignee = User.objects.filter(public_id=payload.assignee).first()
        if assignee is None:
            raise Invalid("only a member of this inbox can be assigned")
    actions.assign_conversation(conversation, actor=_me(request), assignee=assignee)
    return _reloaded(request, conversation)


@router.post(
    "/conversations/{conversation_id}/status",
    response=ConversationOut,
    openapi_extra=declares(Perm.CHANGE_STATUS.value),
)
def change_status(request: HttpRequest, conversation_id: uuid.UUID, payload: StatusIn) -> ConversationOut:
    conversation = access.get_conversation_for(_me(request), conversation_id, Perm.CHANGE_STATUS)
    actions.change_status(conversation, actor=_me(request), status=payload.status)
    return _reloaded(request, conversation)


@router.post("/conversations/{conversation_id}/tags", response=ConversationOut, openapi_extra=declares(Perm.TAG.value))
def change_tags(request: HttpRequest, conversation_id: uuid.UUID, payload: TagsIn) -> ConversationOut:
    conversation = access.get_conversation_for(_me(request), conversation_id, Perm.TAG)
    actions.tag_conversation(conversation, actor=_me(request), add=payload.add, remove=payload.remove)
    return _reloaded(request, conversation)


@router.get(
    "/conversations/{conversation_id}/export",
    tags=["conversations"],
    openapi_extra=declares(Perm.EXPORT.value),
)
def export_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """The conversation's mail as an mbox file (internal notes stay out)."""
    conversation = access.get_conversation_for(_me(request), conversation_id, Perm.EXPORT)
    data, filename = export.export_conversation(conversation, channel="api")
    return safe_download(data, filename, "application/mbox")


@router.delete("/conversations/{conversation_id}", response={204: None}, openapi_extra=declares(Perm.DELETE.value))
def delete_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> None:
    """Delete the conversation for good (messages, notes, attachments, stored mail)."""
    conversation = access.get_conversation_for(_me(request), conversation_id, Perm.DELETE)
    actions.delete_conversation(conversation, actor=_me(request))
    return None  # 204: the only status this operation declares


@router.get(
    "/attachments/{attachment_id}", tags=["attachments"], openapi_extra=declares(Perm.DOWNLOAD_ATTACHMENTS.value)
)
def download_attachment(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponse:
    """The attachment's bytes, as a download."""
    attachment = access.get_attachment_for(_me(request), attachment_id, Perm.DOWNLOAD_ATTACHMENTS)
    try:
        data = blob_store().get(attachment.blob)
    except Exception:  # noqa: BLE001
        raise NotFound("attachment content is missing") from None
    audit.record(
        "attachment.downloaded",
        target=attachment.message.conversation,
        details={"attachment": str(attachment.public_id), "channel": "api"},
    )
    return safe_download(data, attachment.filename, attachment.content_type)
