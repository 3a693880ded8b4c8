"""``with`` for every object that owns something outside Python (a container, a VM, a session).

::

    class VmContainer(Closeable):
        def close(self) -> None: ...   # idempotent

    with VmContainer.start(...) as vm:   # __enter__ returns vm; leaving calls vm.close()
        ...
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closeable"]


class Closeable:
    """Mixin: ``__enter__`` returns the object, ``__exit__`` calls :meth:`close` (which
    subclasses define, idempotent). Exceptions are never swallowed."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
