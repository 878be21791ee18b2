"""Option values that typer would leave as they are, converted without loading pydantic.

typer (0.29) converts each option's value through a pydantic ``TypeAdapter`` that it builds on
first use, and builds it even for a value that needs no conversion: an option not given
(``None``), or the ``--help`` flag of every group on the way to a command. Importing pydantic
and building the adapters costs about 70 ms of each command's start-up (README, "CLI
start-up"), as much as everything ``mode get`` does besides. ``defer_conversion`` gives each
parameter a stand-in that returns what typer returns for the values below, calling the same
code typer calls, and hands every other value, and every failure (so that error messages
stay typer's), to typer's own conversion, built at that moment:

- ``None``: ``()`` for a repeatable option or argument, else ``None`` (``RuntimeParam.coerce``);
- any value of an option with ``parser=``: the parser's result (typer's adapter for a parser
  is ``Annotated[Any, BeforeValidator(parser)]``: the parser's result, unchanged);
- a choice (``Literal``, ``Enum``): typer's ``coerce_cli_choice``, as its adapter calls it;
- a ``str`` for a ``str`` option: that string (typer's adapter returns ``str(value)``).

Repeatable, list, tuple and file parameters always go to typer, as does every value of a
parameter without ``_runtime_param`` (typer's lazily built conversion) to stand in for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typer._click import Context

if TYPE_CHECKING:
    from typer._coercion import RuntimeParam, TypeDescriptor

try:  # typer private conversion code (0.29): another typer keeps its own conversion
    from typer._coercion import build_runtime_param
    from typer._param_types import coerce_cli_choice
except ImportError:  # pragma: no cover - depends on the installed typer
    AVAILABLE = False
else:
    AVAILABLE = True


class _NotPlain(Exception):
    """The value needs typer's own conversion."""


class DeferredConversion:
    """Stands in for typer's runtime parameter (``_TyperParameter._runtime_param``)."""

    def __init__(self, descriptor: TypeDescriptor) -> None:
        self.descriptor = descriptor
        self.typer: RuntimeParam | None = None

    def coerce(self, value: Any, param: Any, ctx: Context) -> Any:
        """What typer's ``RuntimeParam.coerce`` returns for ``value``, or raises."""
        repeatable = bool(param.multiple or param.nargs == -1)
        if value is None:
            return () if repeatable else None
        if not repeatable:
            try:
                return self._plain(value, ctx)
            except Exception:  # typer converts it again, and reports any error its own way
                pass
        if self.typer is None:
            self.typer = build_runtime_param(self.descriptor)
        return self.typer.coerce(value, param=param, ctx=ctx)

    def _plain(self, value: Any, ctx: Context) -> Any:
        descriptor = self.descriptor
        if descriptor.file_annotation is not None or descriptor.is_list or descriptor.is_tuple:
            raise _NotPlain
        parser = descriptor.parameter_info.parser
        if parser is not None:
            return parser(value)
        choices = descriptor.choices
        if choices is not None:
            return coerce_cli_choice(
                value, choices=choices, case_sensitive=descriptor.case_sensitive, ctx=ctx
            )
        if descriptor.annotation is str and type(value) is str:
            return value
        raise _NotPlain


def defer_conversion(params: Any) -> None:
    """Give each typer parameter of ``params`` that has no conversion yet the stand-in
    (nothing when the installed typer lacks the code the stand-in calls: then typer converts
    every value itself, as it would without this module)."""
    if not AVAILABLE:
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is not None and getattr(param, "_runtime_param", False) is None:
            param._runtime_param = DeferredConversion(descriptor)
