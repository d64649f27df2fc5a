"""A daemon's settings from flags, `CPUCOMPAT_*` variables and a TOML file, in that order.

Built once from a command's argparse parser, so every flag is a key and a variable
without a list to keep in step: the key is the long flag without its dashes and with
`-` as `_` (`--max-message-bytes` is `max_message_bytes`), the variable is
`CPUCOMPAT_` and the key in capitals (`CPUCOMPAT_MAX_MESSAGE_BYTES`). A value given
as a flag beats the environment, which beats the file (`--config FILE` or
`$CPUCOMPAT_CONFIG`), which beats the default. Both daemons use it; the agent side
owns it because the coordinator may import the agent, never the reverse.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import tomllib
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

ENV_PREFIX = "CPUCOMPAT_"


class ConfigError(InputError):
    """A setting the daemon cannot take (unknown key, wrong type, bad value): exit 2."""


_OWN = ("help", "config", "print_config", "json")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Setting:
    """One flag seen as a config key."""

    key: str
    flag: str
    action: argparse.Action
    default: Any
    required: bool

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper()

    @property
    def kind(self) -> str:
        """What a file must give: "bool", "list", "int", "number", "addresses" (one string
        of comma-separated addresses, or a list of them) or "string"."""
        if isinstance(self.action, argparse.BooleanOptionalAction) or (
            isinstance(self.action, argparse._StoreConstAction)
            and isinstance(self.action.const, bool)
        ):
            return "bool"
        if isinstance(self.action, argparse._AppendAction):
            return "list"
        if self.action.type is int:
            return "int"
        if self.action.type is float:
            return "number"
        return str(getattr(self.action.type, "expects", "string"))


_EXPECTED = {
    "bool": "true or false",
    "list": "a list of strings",
    "int": "a whole number",
    "number": "a number",
    "string": "a string",
    "addresses": 'a string "HOST:PORT[,HOST:PORT...]" or a list of such strings',
}


def add_config_options(p: argparse.ArgumentParser) -> None:
    """Turn every option already on ``p`` into a config key; add --config and --print-config.

    Call it last, after every other option: defaults move out of argparse so that a flag
    the operator typed can be told from one that was left alone.
    """
    settings: list[Setting] = []
    for action in p._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if not longs or action.dest in _OWN:
            continue
        key = longs[0][2:].replace("-", "_")
        settings.append(Setting(key, longs[0], action, action.default, action.required))
        action.default = argparse.SUPPRESS
        action.required = False
    g = p.add_argument_group("configuration")
    g.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of settings: each flag is a key (--max-message-bytes is "
        "max_message_bytes) and a CPUCOMPAT_* variable (CPUCOMPAT_MAX_MESSAGE_BYTES); "
        "flag beats variable beats file beats default (default $CPUCOMPAT_CONFIG)",
    )
    g.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective settings and where each came from, then exit",
    )
    g.add_argument("--json", action="store_true", help="with --print-config: print JSON")
    p.set_defaults(_settings=tuple(settings))


def resolve_config(
    args: argparse.Namespace, environ: dict[str, str] | None = None
) -> argparse.Namespace:
    """``args`` with every setting filled in; ``args._sources`` says where each came from."""
    env = dict(os.environ if environ is None else environ)
    settings: tuple[Setting, ...] = args._settings
    path = args.config or env.get(ENV_PREFIX + "CONFIG") or None
    table = _read_file(path, settings) if path else {}
    sources: dict[str, str] = {}
    for s in settings:
        if hasattr(args, s.action.dest):
            sources[s.key] = "flag " + s.flag
        elif env.get(s.env) is not None and not (env[s.env] == "" and s.kind != "bool"):
            setattr(args, s.action.dest, _from_env(s, env[s.env]))
            sources[s.key] = "environment " + s.env
        elif s.key in table:
            setattr(args, s.action.dest, _from_file(s, table[s.key], path or ""))
            sources[s.key] = f"file {path}"
        else:
            setattr(args, s.action.dest, s.default)
            sources[s.key] = "default"
    args._sources = sources
    args.config = path
    if not args.print_config:
        missing = [s for s in settings if s.required and getattr(args, s.action.dest) is None]
        if missing:
            s = missing[0]
            raise ConfigError(
                f"{s.flag} is required: give the flag, {s.env} or `{s.key}` in --config"
            )
    return args


def _read_file(path: str, settings: tuple[Setting, ...]) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    known = {s.key for s in settings}
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key.replace("-", "_"), sorted(known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"config file {path}: unknown key {key!r}{hint}")
    return table


def _convert(s: Setting, text: str, where: str) -> Any:
    """A string through the flag's own type and choices, as argparse would."""
    value: Any = text
    if s.action.type is not None:
        try:
            value = s.action.type(text)  # type: ignore[operator]
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if s.action.choices is not None and value not in s.action.choices:
        choices = ", ".join(str(c) for c in s.action.choices)
        raise ConfigError(f"{where}: {text!r} is not one of {choices}")
    return value


def _from_env(s: Setting, text: str) -> Any:
    where = f"environment {s.env}"
    if s.kind == "bool":
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise ConfigError(f"{where}: {text!r} is not true or false (1/0, yes/no, on/off)")
    if s.kind == "list":
        return [_convert(s, part, where) for part in text.replace(",", " ").split()]
    return _convert(s, text, where)


def _from_file(s: Setting, value: Any, path: str) -> Any:
    where = f"config file {path}: key {s.key!r}"
    wrong = ConfigError(
        f"{where} must be {_EXPECTED[s.kind]}, not {type(value).__name__} {value!r}"
    )
    if s.kind == "bool":
        if not isinstance(value, bool):
            raise wrong
        return value
    if s.kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong
        return [_convert(s, v, where) for v in value]
    if s.kind == "addresses":
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return _convert(s, ",".join(value), where)
        if not isinstance(value, str):
            raise wrong
        return _convert(s, value, where)
    if s.kind in ("int", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        if s.kind == "int" and not isinstance(value, int):
            raise wrong
        return _convert(s, str(value), where)
    if not isinstance(value, str):
        raise wrong
    return _convert(s, value, where)


def effective(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """{key: {"value", "source"}} for every setting, in the parser's order."""
    return {
        s.key: {"value": getattr(args, s.action.dest), "source": args._sources[s.key]}
        for s in args._settings
    }


def print_config(args: argparse.Namespace) -> int:
    """The effective settings as TOML (each line's source as a comment) or as JSON."""
    doc = effective(args)
    if args.json:
        json.dump({"config_file": args.config, "settings": doc}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    lines = [f"# effective settings; config file: {args.config or 'none'}"]
    for key, entry in doc.items():
        value, source = entry["value"], entry["source"]
        if value is None:
            lines.append(f"# {key} unset  ({source})")
        else:
            lines.append(f"{key} = {_toml(value)}  # {source}")
    print("\n".join(lines))
    return 0


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is JSON's string syntax
