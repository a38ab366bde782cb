"""Typed errors of the task layer. Callers map them to file/line messages (training) or HTTP 400 (serving)."""


class RecordError(ValueError):
    """One record (a training row or a request record) is not valid for the task.

    ``field`` names the offending field (``text``, ``labels``, ``bbox``) so that callers can point at it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class SpecError(ValueError):
    """A task spec (``task_spec.json``) is missing a field, has a wrong value or an unknown schema version."""
