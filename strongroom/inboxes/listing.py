"""Which conversations a list shows: one filter used by the web UI and the REST API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from strongroom.identity.models import User
from strongroom.identity.permissions import Perm
from strongroom.inboxes.access import conversations_visible_to, inboxes_visible_to
from strongroom.inboxes.models import Conversation, Inbox, Status

VIEWS = ("mine", "unassigned", "all")


@dataclass(frozen=True)
class ConversationQuery:
    view: str = "all"
    inbox: uuid.UUID | None = None
    status: str | None = Status.OPEN  # None: every status
    tag: str = ""
    q: str = ""
    assignee: uuid.UUID | None = None


def conversations_for(user: User, query: ConversationQuery) -> QuerySet[Conversation]:
    """Conversations `user` may see that match `query`, newest activity first.

    An inbox, tag or assignee the person may not see simply matches nothing: the answer is
    the same as for one that does not exist.
    """
    conversations = conversations_visible_to(user, Perm.VIEW)
    if query.view == "mine":
        conversations = conversations.filter(assignee=user)
    elif query.view == "unassigned":
        conversations = conversations.filter(assignee__isnull=True)
    if query.inbox:
        conversations = conversations.filter(inbox__public_id=query.inbox)
    if query.status:
        conversations = conversations.filter(status=query.status)
    if query.tag:
        conversations = conversations.filter(tags__name=query.tag.strip().lower())
    if query.assignee:
        conversations = conversations.filter(assignee__public_id=query.assignee)
    text = query.q.strip()
    if text:
        conversations = conversations.filter(
            Q(subject__icontains=text) | Q(contact__email__icontains=text) | Q(contact__name__icontains=text)
        )
    return (
        conversations.select_related("contact", "assignee", "inbox")
        .prefetch_related("tags")
        .order_by("-last_activity_at", "-id")
    )


@dataclass(frozen=True)
class Sidebar:
    inboxes: list[Inbox]
    mine: int
    unassigned: int
    all_open: int


def sidebar_for(user: User) -> Sidebar:
    """The inboxes a person may see, with open counts, and the counts of their views."""
    inboxes = list(
        inboxes_visible_to(user, Perm.VIEW)
        .annotate(open_count=Count("conversations", filter=Q(conversations__status=Status.OPEN)))
        .order_by("name")
    )
    open_conversations = conversations_visible_to(user, Perm.VIEW).filter(status=Status.OPEN)
    return Sidebar(
        inboxes=inboxes,
        mine=open_conversations.filter(assignee=user).count(),
        unassigned=open_conversations.filter(assignee__isnull=True).count(),
        all_open=sum(i.open_count for i in inboxes),
    )
