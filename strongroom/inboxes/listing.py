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


def conversations_for(user: User, query: ConversationQuery, *, inbox: Inbox | None = None) -> QuerySet[Conversation]:
    """Conversations `user` may see that match `query`, newest activity first.

    An inbox, tag or assignee the person may not see simply matches nothing: the answer is
    the same as for one that does not exist. `inbox`, when given, is `query.inbox` already
    loaded (by id, the list is read straight off the (inbox, activity) index).
    """
    conversations = conversations_visible_to(user, Perm.VIEW)
    if query.view == "mine":
        conversations = conversations.filter(assignee=user)
    elif query.view == "unassigned":
        conversations = conversations.filter(assignee__isnull=True)
    if inbox is not None:
        conversations = conversations.filter(inbox_id=inbox.pk)
    elif query.inbox:
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


COUNT_CAP = 1000  # counts above this show as "999+": counting a huge queue exactly costs a scan


@dataclass(frozen=True)
class Sidebar:
    inboxes: list[Inbox]
    mine: int
    unassigned: int
    all_open: int


def capped_count(queryset: QuerySet[Conversation]) -> int:
    """The number of rows, or COUNT_CAP when there are at least that many."""
    return queryset.values("pk")[:COUNT_CAP].count()


def sidebar_for(user: User) -> Sidebar:
    """The inboxes a person may see, with open counts, and the counts of their views."""
    inboxes = list(inboxes_visible_to(user, Perm.VIEW).order_by("name"))
    open_counts = dict(
        Conversation.objects.filter(inbox__in=[i.pk for i in inboxes], status=Status.OPEN)
        .values("inbox")
        .annotate(n=Count("pk"))
        .values_list("inbox", "n")
    )
    for inbox in inboxes:
        inbox.open_count = open_counts.get(inbox.pk, 0)  # type: ignore[attr-defined]
    open_conversations = conversations_visible_to(user, Perm.VIEW).filter(status=Status.OPEN)
    return Sidebar(
        inboxes=inboxes,
        mine=capped_count(open_conversations.filter(assignee=user)),
        unassigned=capped_count(open_conversations.filter(assignee__isnull=True)),
        all_open=sum(open_counts.values()),
    )
