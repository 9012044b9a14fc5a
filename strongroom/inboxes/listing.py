"""Which conversations a list shows: one filter used by the web UI and the REST API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from strongroom.identity.models import User
from strongroom.identity.permissions import Perm
from strongroom.inboxes.access import assigned_only_inboxes, conversations_visible_to, inboxes_visible_to
from strongroom.inboxes.models import Contact, Conversation, Inbox, Status

VIEWS = ("mine", "unassigned", "all")
# What a list shows, and no more: fewer columns to read and convert on every row.
LIST_COLUMNS = (
    "public_id",
    "inbox_id",
    "contact_id",
    "assignee_id",
    "subject",
    "status",
    "preview",
    "message_count",
    "created_at",
    "last_activity_at",
    "contact__public_id",
    "contact__name",
    "contact__email",
    "assignee__public_id",
    "assignee__name",
    "assignee__email",
    "inbox__public_id",
    "inbox__name",
    "inbox__address",
    "inbox__is_active",
)


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
        # Matching contacts first, then conversations: the list can still be read in index
        # order and filtered, instead of joining every conversation to its contact.
        contacts = Contact.objects.filter(Q(email__icontains=text) | Q(name__icontains=text)).values("pk")
        conversations = conversations.filter(Q(subject__icontains=text) | Q(contact_id__in=contacts))
    return (
        conversations.select_related("contact", "assignee", "inbox")
        .only(*LIST_COLUMNS)
        .prefetch_related("tags")
        .order_by("-last_activity_at", "-id")
    )


COUNT_CAP = 1000  # counts above this show as "999+": counting a huge queue exactly costs a scan
# Templates for the sidebar's one query (see _sidebar_counts); only the quoted table name and
# numbered placeholders are filled in, every value is a parameter.
PER_INBOX_SQL = (
    "SELECT inbox_id AS k FROM (SELECT inbox_id FROM {table} WHERE inbox_id = %s AND status = %s LIMIT %s) AS i{n}"  # noqa: S608, E501
)
PER_INBOX_OWN_SQL = "SELECT inbox_id AS k FROM (SELECT inbox_id FROM {table} WHERE inbox_id = %s AND status = %s AND assignee_id = %s LIMIT %s) AS i{n}"  # noqa: S608, E501
MINE_SQL = "SELECT -1 AS k FROM (SELECT id FROM {table} WHERE inbox_id IN ({inboxes}) AND status = %s AND assignee_id = %s LIMIT %s) AS mine"  # noqa: S608, E501
UNASSIGNED_SQL = "SELECT -2 AS k FROM (SELECT id FROM {table} WHERE inbox_id IN ({inboxes}) AND status = %s AND assignee_id IS NULL LIMIT %s) AS unassigned"  # noqa: S608, E501


@dataclass(frozen=True)
class Sidebar:
    inboxes: list[Inbox]
    mine: int
    unassigned: int
    all_open: int


def _sidebar_counts(inbox_ids: list[int], user: User, own_only: set[int]) -> tuple[dict[int, int], int, int]:
    """Open conversations per inbox, open ones assigned to `user`, open unassigned ones: all in
    one query, each count capped at COUNT_CAP so its cost does not grow with the backlog (an
    index is read for at most COUNT_CAP entries per count). In the inboxes of `own_only` (where
    the person sees only conversations assigned to them) only theirs count, and none of their
    unassigned ones.

    Plain SQL because the ORM cannot put a LIMIT inside a UNION on SQLite. Every value is a
    query parameter; the table name comes from the model.
    """
    counts = dict.fromkeys(inbox_ids, 0)
    if not inbox_ids:
        return counts, 0, 0
    table = connection.ops.quote_name(Conversation._meta.db_table)
    parts: list[str] = []
    params: list[object] = []
    for n, inbox_id in enumerate(inbox_ids):
        if inbox_id in own_only:
            parts.append(PER_INBOX_OWN_SQL.format(table=table, n=n))
            params += [inbox_id, Status.OPEN.value, user.pk, COUNT_CAP]
        else:
            parts.append(PER_INBOX_SQL.format(table=table, n=n))
            params += [inbox_id, Status.OPEN.value, COUNT_CAP]
    parts.append(MINE_SQL.format(table=table, inboxes=", ".join(["%s"] * len(inbox_ids))))
    params += [*inbox_ids, Status.OPEN.value, user.pk, COUNT_CAP]
    shared = [i for i in inbox_ids if i not in own_only]
    if shared:
        parts.append(UNASSIGNED_SQL.format(table=table, inboxes=", ".join(["%s"] * len(shared))))
        params += [*shared, Status.OPEN.value, COUNT_CAP]
    sql = "SELECT k, COUNT(*) FROM (" + " UNION ALL ".join(parts) + ") AS capped GROUP BY k"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = dict(cursor.fetchall())
    counts.update({k: v for k, v in found.items() if k > 0})
    return counts, found.get(-1, 0), found.get(-2, 0)


def sidebar_for(user: User) -> Sidebar:
    """The inboxes a person may see, with open counts, and the counts of their views."""
    inboxes = list(inboxes_visible_to(user, Perm.VIEW).order_by("name"))
    counts, mine, unassigned = _sidebar_counts([i.pk for i in inboxes], user, assigned_only_inboxes(user, Perm.VIEW))
    for inbox in inboxes:
        inbox.open_count = counts[inbox.pk]  # type: ignore[attr-defined]
    return Sidebar(inboxes=inboxes, mine=mine, unassigned=unassigned, all_open=sum(counts.values()))
