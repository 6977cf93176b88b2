"""Build aiogram's pydantic models when a process first uses them, not when it imports aiogram.

`import aiogram` built a validator and a serializer for each of its ~400 Telegram types and ~190
Bot API methods: `aiogram.types` calls `model_rebuild()` on every type, which undoes their
`defer_build=True`, and the methods never defer. Every kadr process (api, worker, tests) paid
for models it never touches, since one uses a few dozen (Update, Message, CallbackQuery, the
methods it calls and their `Response[...]`). Measured (VmRSS, fresh process): `import aiogram`
166 MB -> 58 MB and 4.6 s -> 0.9 s of CPU; with kadr's bot imported 213 MB -> 105 MB; after
handling a first update 213 MB -> 116 MB. The price: the first use of each model in a process
builds it (the first `Update.model_validate` takes ~0.25 s of CPU).

`install()` must run before the first `import aiogram`: `core/infra/patches/__init__.py`'s
`apply()` calls it, first thing in `kadr`'s commands and in the tests' plugin. It relies on
aiogram's private `_types_namespace` argument and on the closing loop of `aiogram/types/
__init__.py` (written for aiogram 3.31.0; `tests/core/infra/test_lazy_aiogram.py` fails when they
change). Upstream: aiogram/aiogram#1513 (memory of `import aiogram`, open) and #1891 (start-up
time, open); PR #1861 made the rebuild cheaper but still eager. Drop this once aiogram defers
its models itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import inspect
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

_TYPES = "aiogram.types"
_METHODS = "aiogram.methods"
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")

# The namespace that aiogram.types passes to model_rebuild() (every type by name, and Optional,
# Union, Literal, List, Default) and the types it was meant for; set once aiogram.types is in.
_namespace: Mapping[str, Any] | None = None
_types: frozenset[type[Any]] = frozenset()


def install() -> None:
    """Make `import aiogram` leave its types and methods unbuilt; a no-op when called again.

    How: a meta path finder wraps the loaders of `aiogram.types` and `aiogram.methods`; each
    wrapper imports the package's base module, adjusts the base class, then runs the package.

    - `TelegramObject` (types) already has `defer_build=True`. While `aiogram.types` runs, the
      `model_rebuild(_types_namespace=...)` calls of its closing loop only record that
      namespace, so each type keeps the mock validator and serializer that pydantic gives a
      deferred model. Pydantic rebuilds a type on its first use (validation, construction,
      `model_dump`, JSON schema) by calling `model_rebuild()`, which `TelegramObject` now fills
      in with the recorded namespace: the call aiogram would have made at import, made later for
      that type only, and never resolving a name in the caller's frame (pydantic's default: a
      local `User` in the function that first builds a `Message` would become its `from_user`).
    - A type can also be built inside another model before it is used itself (`SendMessage`,
      `Response[Message]`, a field of one of our models); pydantic then resolves its forward
      references in the globals of its module. So the names each type module's annotations take
      from the namespace (imported there only under TYPE_CHECKING, against import cycles) are
      bound in that module, as if it had imported them.
    - `TelegramMethod` (methods) gets `defer_build=True` before any method class is created,
      and its `model_rebuild()` resolves in the methods' own modules only, as their import-time
      build did, not in the caller's frame.
    """
    if any(isinstance(finder, _Finder) for finder in sys.meta_path):
        return
    if _TYPES in sys.modules or _METHODS in sys.modules:
        warnings.warn(
            "aiogram was imported before core.infra.patches.lazy_aiogram.install(); "
            "its models are built eagerly",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    sys.meta_path.insert(0, _Finder())


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the two packages through the other finders and wraps their loaders."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        run = _RUN.get(fullname)
        if run is None:
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec: ModuleSpec | None = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader, run)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, loader: Any, run: Callable[[Callable[[], None]], None]) -> None:
        self._loader = loader
        self._run = run

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, is_package...
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._run(lambda: self._loader.exec_module(module))


def _run_types(exec_package: Callable[[], None]) -> None:
    global _namespace, _types
    # The package is in sys.modules with its __path__ set, so its base module can be imported
    # ahead of the package body (whose first submodule imports it anyway).
    telegram_object: type[Any] = importlib.import_module(f"{_TYPES}.base").TelegramObject
    recorded: list[Mapping[str, Any]] = []

    def model_rebuild(cls: type[Any], **kwargs: Any) -> bool | None:
        if _namespace is None and kwargs.get("_types_namespace") is not None:
            recorded[:] = [kwargs["_types_namespace"]]  # aiogram.types' own loop: defer
            return None
        if cls in _types and kwargs.get("_types_namespace") is None:
            kwargs["_types_namespace"] = _namespace
        result: bool | None = super(telegram_object, cls).model_rebuild(**kwargs)
        return result

    telegram_object.model_rebuild = classmethod(model_rebuild)
    exec_package()
    if recorded:
        _types = _own_types(recorded[0], telegram_object)
        _bind_annotation_names(recorded[0], _types)
        _namespace = recorded[0]


def _run_methods(exec_package: Callable[[], None]) -> None:
    telegram_method: type[Any] = importlib.import_module(f"{_METHODS}.base").TelegramMethod
    # Subclasses merge their bases' model_config when they are created, after this.
    telegram_method.model_config["defer_build"] = True

    def model_rebuild(cls: type[Any], **kwargs: Any) -> bool | None:
        if kwargs.get("_types_namespace") is None:
            kwargs["_types_namespace"] = {}
        result: bool | None = super(telegram_method, cls).model_rebuild(**kwargs)
        return result

    telegram_method.model_rebuild = classmethod(model_rebuild)
    exec_package()


_RUN: dict[str, Callable[[Callable[[], None]], None]] = {_TYPES: _run_types, _METHODS: _run_methods}


def _own_types(namespace: Mapping[str, Any], telegram_object: type[Any]) -> frozenset[type[Any]]:
    """The types in the namespace and their bases (`MenuButton` is not exported, for one)."""
    return frozenset(
        cls
        for value in namespace.values()
        if isinstance(value, type) and issubclass(value, telegram_object)
        for cls in value.__mro__
        if issubclass(cls, telegram_object)
    )


def _bind_annotation_names(namespace: Mapping[str, Any], types: frozenset[type[Any]]) -> None:
    """Binds, in the module of each type, the namespace's names that the annotations of the type
    and of its bases use and the module lacks. Bases count because pydantic evaluates an
    inherited field in the subclass's module (`MenuButtonCommands` inherits `web_app: WebAppInfo`
    from `MenuButton`). A name that a module binds already is left as it is; the test checks that
    it is the namespace's object."""
    names_of: dict[type[Any], set[str]] = {}
    for typ in types:
        module_globals = vars(sys.modules[typ.__module__])
        for cls in typ.__mro__:
            if cls not in names_of:
                names_of[cls] = _annotation_names(cls) & namespace.keys()
            for name in names_of[cls]:
                if name not in module_globals:
                    module_globals[name] = namespace[name]


def _annotation_names(cls: type[Any]) -> set[str]:
    """Every identifier in the class's own annotations (a superset of the names they use)."""
    names: set[str] = set()
    for annotation in inspect.get_annotations(cls).values():
        text = annotation if isinstance(annotation, str) else repr(annotation)
        names.update(_IDENTIFIER.findall(text))
    return names
