"""A conversation's timeline: its messages, notes and changes in the order they happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from strongroom.inboxes.models import Conversation, ConversationEvent, Message


@dataclass(frozen=True)
class Entry:
    at: datetime
    message: Message | None = None
    event: ConversationEvent | None = None

    @property
    def event_text(self) -> str:
        event = self.event
        if event is None:
            return ""
        data = event.data
        who = event.actor.display_name if event.actor else "Strongroom"
        kind = ConversationEvent.Kind
        if event.kind == kind.ASSIGNED:
            if event.actor and str(event.actor.public_id) == data.get("assignee"):
                return f"{who} took this conversation"
            return f"{who} assigned it to {data.get('name', 'someone')}"
        if event.kind == kind.UNASSIGNED:
            return f"{who} unassigned it"
        if event.kind == kind.STATUS:
            return f"{who} changed the status from {data.get('from')} to {data.get('to')}"
        if event.kind == kind.TAGGED:
            return f"{who} tagged it {data.get('tag')}"
        if event.kind == kind.UNTAGGED:
            return f"{who} removed the tag {data.get('tag')}"
        if event.kind == kind.REOPENED:
            return f"Reopened by a new message (was {data.get('from')})"
        if event.kind == kind.DELIVERY:
            if data.get("state") == "sent":
                return "Reply delivered to the mail server"
            return f"Reply could not be delivered: {data.get('error', '')}"
        return str(event.kind)


def timeline_of(conversation: Conversation) -> list[Entry]:
    messages = (
        conversation.messages.select_related("author", "outbox")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )
    events = conversation.events.select_related("actor")
    entries = [Entry(at=m.created_at, message=m) for m in messages]
    entries += [Entry(at=e.created_at, event=e) for e in events]
    entries.sort(key=lambda e: (e.at, 0 if e.message else 1))
    return entries
