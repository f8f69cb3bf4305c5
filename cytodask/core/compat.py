"""Deprecated spellings that keep working for one release, with a warning naming the new one."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def renamed_kwargs(**renames: str) -> Callable[[F], F]:
    """Accept ``old=`` keyword arguments of a renamed parameter (``@renamed_kwargs(block_cells="batch_size")``).

    The old name is passed on as the new one with a ``DeprecationWarning``; giving both is an error.
    """

    def deco(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__qualname__}() got both {old}= (deprecated) and {new}=; "
                                        f"pass only {new}=")
                    warnings.warn(f"{func.__qualname__}({old}=...) is deprecated; use {new}=... (one word "
                                  f"for one concept across cytodask; {old} goes in the next release)",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco
