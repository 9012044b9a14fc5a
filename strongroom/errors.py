"""Domain errors raised by actions. Views and the API turn them into responses."""


class DomainError(Exception):
    """Base for errors an action raises on purpose; the message is safe to show."""


class NotFound(DomainError):
    """The object does not exist or the person may not know that it does (both look the same)."""


class NotAllowed(DomainError):
    """The person can see the object but lacks the permission for this action."""


class Conflict(DomainError):
    """The action clashes with the current state (for example a duplicate address)."""


class Invalid(DomainError):
    """The input is not acceptable; the message says why."""
