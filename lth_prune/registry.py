"""One registry type for every extension point: models, data sets, methods, branches, rewind
policies; and the plugins, users' modules that register entries (:func:`load_plugins`).

A :class:`Registry` maps names to entries (a model builder, a data set reader, a search, a
branch, a rewind policy, a pruning criterion). Every entry carries its display title and a
one-line help text beside it, so the command line, tables and figures name it without a table
of their own. Lookups are live: the config and the command line ask the registry when they
validate and parse, so an entry registered from a user's module (``lth-prune --plugin MODULE``)
is a valid setting everywhere.

Example:
    >>> colours = Registry("colour")
    >>> @colours.register("sky-blue", title="Sky blue", help="the colour of a clear sky")
    ... def sky() -> str:
    ...     return "#87ceeb"
    >>> colours.names(), colours.get("sky-blue")(), colours.title("sky-blue")
    (['sky-blue'], '#87ceeb', 'Sky blue')
    >>> colours.get("grey")
    Traceback (most recent call last):
    ...
    ValueError: colour must be one of ['sky-blue'], got 'grey'.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

__all__ = ["Entry", "Registry", "load_plugins"]

T = TypeVar("T")
V = TypeVar("V")
_FROM_VALUE = object()


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered entry.

    Attributes:
        name: the name it is registered and chosen by (``"conv2"``, ``"random_reinit"``).
        value: what it registers (a builder function, a class).
        title: how tables, figures and ``--help`` name it (``"Conv-2"``); the name by default.
        help: one line on what it is, for ``--help`` and the docs.
    """

    name: str
    value: T
    title: str
    help: str


class Registry(Generic[T]):
    """Named entries of one kind, in the order they were registered.

    Args:
        kind: what an entry is, in messages (``"model"``, ``"method"``).
        normalize: look names up ignoring case, ``-`` and ``_`` (``"Conv-2"`` finds
            ``"conv2"``); a new name may then not collide with an old one in that form either.
        accepts: ``(check, what)``: a value is registered only where ``check(value)`` is true;
            otherwise a ``TypeError`` says it must be ``what`` (``"a Branch subclass"``).

    Example:
        >>> shapes = Registry("shape", normalize=True)
        >>> _ = shapes.register("Big-Square", 4, help="four equal sides")
        >>> shapes.get("big_square"), shapes.canonical("BIGSQUARE"), "big square" in shapes
        (4, 'Big-Square', False)
    """

    def __init__(self, kind: str, *, normalize: bool = False,
                 accepts: tuple[Callable[[Any], bool], str] | None = None) -> None:
        self.kind = kind
        self.normalize = normalize
        self.accepts = accepts
        self._entries: dict[str, Entry[T]] = {}
        self._followed: list[tuple[Registry[Any], Callable[[Any], T]]] = []

    def register(self, name: str | None = None, value: Any = _FROM_VALUE, *, title: str | None = None,
                 help: str = "") -> Any:
        """Register ``value`` under ``name``; without ``value``, a decorator that does.

        Args:
            name: the name to register under; ``None``: the value's own ``name`` attribute
                (a class that knows its name, such as a :class:`~lth_prune.imp.branches.Branch`).
            value: the entry; omit it to use ``register`` as a decorator.
            title: the display title; default: the name.
            help: one line on what the entry is.

        Returns:
            ``value`` (or, as a decorator, a function that registers and returns its argument).

        Raises:
            TypeError: if the name is not a str, or the value not what the registry accepts.
            ValueError: if the name is empty or already taken (here, or by a registry this one
                follows).
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"{self.kind} registry: name must be a str or None, got {type(name).__name__}; to register a "
                f"class under its own name, write @register() or register(value=...)."
            )
        if value is _FROM_VALUE:
            def decorator(decorated: V) -> V:
                self._add(name, decorated, title, help)
                return decorated

            return decorator
        self._add(name, value, title, help)
        return value

    def follow(self, other: Registry[Any], convert: Callable[[Any], T]) -> None:
        """Make every entry of ``other``, now and later, an entry here too, its value converted.

        The experiment's methods follow the pruning criteria: registering a criterion makes it a
        method, run by the search ``convert`` returns for it.
        """
        self._followed.append((other, convert))

    def names(self) -> list[str]:
        """The registered names: this registry's in registration order, then those it follows."""
        return [*self._entries, *(name for other, _ in self._followed for name in other.names())]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def entry(self, name: str, *, caller: str | None = None) -> Entry[T]:
        """The entry registered as ``name``.

        Args:
            name: the name (any spelling, where the registry normalizes).
            caller: who asks, to start the error message with (``"ExperimentConfig"``).

        Raises:
            ValueError: if there is none; the message lists the valid names.
        """
        found = self._find(name) if isinstance(name, str) else None
        if found is None:
            start = f"{caller}: " if caller else ""
            raise ValueError(f"{start}{self.kind} must be one of {self.names()}, got {name!r}.")
        return found

    def get(self, name: str, *, caller: str | None = None) -> T:
        """The value registered as ``name`` (see :meth:`entry`)."""
        return self.entry(name, caller=caller).value

    def title(self, name: str) -> str:
        """The display title of ``name``; a name not registered is its own title."""
        found = self._find(name) if isinstance(name, str) else None
        return name if found is None else found.title

    def canonical(self, name: str, *, caller: str | None = None) -> str:
        """The registered spelling of ``name`` (``"conv2"`` for ``"Conv-2"``)."""
        return self.entry(name, caller=caller).name

    def _find(self, name: str) -> Entry[T] | None:
        if name in self._entries:
            return self._entries[name]
        if self.normalize:
            key = _normalized(name)
            for entry in self._entries.values():
                if _normalized(entry.name) == key:
                    return entry
        for other, convert in self._followed:
            found = other._find(name)
            if found is not None:
                return Entry(found.name, convert(found.value), found.title, found.help)
        return None

    def _add(self, name: str | None, value: Any, title: str | None, help: str) -> None:
        if name is None:
            name = getattr(value, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} registry: name must be a str, got {type(name).__name__}.")
        if not name.strip("-_ "):
            raise ValueError(f"{self.kind} registry: name must not be empty, got {name!r}.")
        if self.accepts is not None and not self.accepts[0](value):
            raise TypeError(f"{self.kind} registry: {name!r} must be {self.accepts[1]}, got {value!r}.")
        taken = self._find(name)
        if taken is not None:
            raise ValueError(f"{self.kind} registry: name must be new, got {name!r}, which is taken by {taken.name!r}.")
        self._entries[name] = Entry(name, value, title or name, help)


def _normalized(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def load_plugins(plugins: Iterable[str], caller: str = "load_plugins()") -> list[ModuleType]:
    """Import the modules that register a user's entries, each once per process.

    A plugin is an importable module name (``"my_lab.tickets"``) or the path of a Python file
    (``"extensions/signed.py"``). Importing it runs its ``REGISTRY.register(...)`` calls, after
    which its models, data sets, methods, branches and rewind modes are valid settings.
    :class:`~lth_prune.imp.ExperimentConfig` calls this for its ``plugins`` before it checks the
    settings, so a run's workers, a resumed run and ``lth-prune report`` import them too.

    Args:
        plugins: module names or ``.py`` paths.
        caller: who asks, to start error messages with.

    Returns:
        The modules, in order.

    Raises:
        TypeError: if a plugin is not a str.
        ValueError: if a module cannot be found or a file does not exist; an error raised while
            importing one (a duplicate registration, say) propagates with its own message.
    """
    modules = []
    for plugin in plugins:
        if not isinstance(plugin, str) or not plugin:
            raise TypeError(f"{caller}: plugins must hold module names or .py paths, got {plugin!r}.")
        modules.append(_load_file(plugin, caller) if plugin.endswith(".py") else _load_module(plugin, caller))
    return modules


def _load_module(name: str, caller: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and name.startswith(error.name):
            raise ValueError(
                f"{caller}: plugin {name!r} must be an importable module, got {error}; put its directory on "
                "PYTHONPATH, or pass the path of its .py file."
            ) from None
        raise


def _load_file(path_text: str, caller: str) -> ModuleType:
    path = Path(path_text).resolve()
    if not path.is_file():
        raise ValueError(f"{caller}: plugin {path_text!r} must be an existing .py file, got no file at {path}.")
    # One module per file, whatever spelling of its path reaches it, so it registers once.
    name = f"lth_prune_plugin_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{caller}: plugin {path_text!r} must be a Python module, got {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
