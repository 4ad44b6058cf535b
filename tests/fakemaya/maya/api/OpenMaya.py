"""Fake maya.api.OpenMaya: just what the img2maya plug-in uses (MFnPlugin, MPxCommand, MSyntax,
MArgList, MArgDatabase, MDGModifier, MGlobal). tests/test_maya_plugin.py checks that every public name
here exists, with the same member names, in maya-stubs' api/OpenMaya.pyi."""

from __future__ import annotations

from typing import Any

REGISTERED_COMMANDS: dict[str, tuple[Any, Any]] = {}
MESSAGES: list[tuple[str, str]] = []


class MObject:
    """Stands for the plug-in MObject Maya passes to initializePlugin."""


class MGlobal:
    @staticmethod
    def displayInfo(msg: str) -> None:
        MESSAGES.append(("info", msg))

    @staticmethod
    def displayWarning(msg: str) -> None:
        MESSAGES.append(("warning", msg))

    @staticmethod
    def displayError(msg: str) -> None:
        MESSAGES.append(("error", msg))


class MFnPlugin:
    def __init__(self, obj: MObject | None = None, vendor: str = "", version: str = "", api: str = "") -> None:
        self.vendor, self.version_ = vendor, version

    def registerCommand(self, name: str, creator: Any, syntax: Any = None) -> None:
        if name in REGISTERED_COMMANDS:
            raise RuntimeError(f"fake maya: command {name} is already registered")
        REGISTERED_COMMANDS[name] = (creator, syntax)

    def deregisterCommand(self, name: str) -> None:
        if name not in REGISTERED_COMMANDS:
            raise RuntimeError(f"fake maya: command {name} is not registered")
        del REGISTERED_COMMANDS[name]


class MSyntax:
    kNoArg = 1
    kBoolean = 2
    kLong = 3
    kDouble = 4
    kString = 5

    def __init__(self) -> None:
        self.flags: dict[str, tuple[str, str, tuple[int, ...]]] = {}

    def addFlag(self, short: str, long: str, *types: int) -> None:
        for name in (short, long):
            if not name.startswith("-") or name in self.flags:
                raise RuntimeError(f"fake maya: bad or duplicate flag {name}")
        if len(short) > 4:
            raise RuntimeError(f"fake maya: short flag {short} longer than three letters")
        entry = (short, long, types)
        self.flags[short] = self.flags[long] = entry


class MArgList:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def addArg(self, value: Any) -> MArgList:
        self.items.append(value)
        return self

    def __len__(self) -> int:
        return len(self.items)


class MArgDatabase:
    def __init__(self, syntax: MSyntax, args: MArgList) -> None:
        self._values: dict[str, list[Any]] = {}
        items = list(args.items)
        while items:
            flag = str(items.pop(0))
            if flag not in syntax.flags:
                raise RuntimeError(f"fake maya: invalid flag {flag}")
            short, _, types = syntax.flags[flag]
            if types != (MSyntax.kNoArg,) and len(items) < len(types):
                raise RuntimeError(f"fake maya: flag {flag} needs {len(types)} argument(s)")
            values = [_typed(flag, kind, items.pop(0)) for kind in types if types != (MSyntax.kNoArg,)]
            self._values[short] = values
        self._syntax = syntax

    def _key(self, flag: str) -> str:
        return self._syntax.flags[flag][0]

    def isFlagSet(self, flag: str) -> bool:
        return self._key(flag) in self._values

    def flagArgumentString(self, flag: str, index: int) -> str:
        return str(self._values[self._key(flag)][index])

    def flagArgumentInt(self, flag: str, index: int) -> int:
        return int(self._values[self._key(flag)][index])

    def flagArgumentDouble(self, flag: str, index: int) -> float:
        return float(self._values[self._key(flag)][index])

    def flagArgumentBool(self, flag: str, index: int) -> bool:
        value = self._values[self._key(flag)][index]
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "on", "yes")


def _typed(flag: str, kind: int, value: Any) -> Any:
    """A flag argument as Maya's parser takes it: a kLong or kDouble flag refuses what is not a number
    (Maya: "Invalid argument"), a kDouble one takes an integer too."""
    if kind in (MSyntax.kLong, MSyntax.kDouble):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok and isinstance(value, str):
            try:
                value = int(value) if kind == MSyntax.kLong else float(value)
                ok = True
            except ValueError:
                ok = False
        if not ok or (kind == MSyntax.kLong and isinstance(value, float)):
            raise RuntimeError(f"fake maya: invalid argument for flag {flag}: {value!r}")
    return value


class MPxCommand:
    _result: Any = None

    def __init__(self) -> None:
        pass

    @staticmethod
    def setResult(value: Any) -> None:
        MPxCommand._result = value

    @staticmethod
    def clearResult() -> None:
        MPxCommand._result = None


class MDGModifier:
    """Runs the Python commands it was given; undoIt is modelled by the fake scene's undo of nothing,
    so tests only check what doIt executed (real Maya undoes the executed commands)."""

    def __init__(self) -> None:
        self.python_commands: list[str] = []
        self.executed = 0
        self.undone = 0

    def pythonCommandToExecute(self, source: str) -> MDGModifier:
        self.python_commands.append(source)
        return self

    def doIt(self) -> MDGModifier:
        for source in self.python_commands:
            exec(compile(source, "<MDGModifier>", "exec"), {})
        self.executed += 1
        return self

    def undoIt(self) -> MDGModifier:
        self.undone += 1
        return self
