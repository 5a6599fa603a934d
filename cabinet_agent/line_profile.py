"""Profiles of microcontroller boards that speak the line protocol (``docs/serial-line-protocol.md``).

Such a board is not register based: it sends one reading per line, by itself. Its profile names the
readings (``power.0`` … ``power.15``, ``door``, ``temperature``), their type and scale, and how old a
reading may be before it counts as unknown. Loaded through ``registers.load_profile`` like every
profile; a file says ``kind = "line"``.
"""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = ["LinePoint", "LineProfile", "LineSerial"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinePoint(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the key on the line")
    type: Literal["number", "bool"] = Field(default="number",
                                            description="bool points send 0 or 1")
    count: int = Field(default=1, ge=1, le=256,
                       description="channels; with count > 1 the key is sent as name.N, N from 0")
    scale: float = Field(default=1.0, description="value = number on the line × scale")
    decimals: int = Field(default=1, ge=0, le=6,
                          description="digits after the point the board sends (simulators use it)")
    unit: str = ""
    description: str = ""

    @property
    def is_bool(self) -> bool:
        return self.type == "bool"


class LineSerial(_Strict):
    baudrate: int = 115200
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class LineProfile(_Strict):
    kind: Literal["line"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    source: str = Field(default="", description="where the protocol comes from")
    serial: LineSerial = LineSerial()
    period_s: float = Field(default=1.0, gt=0, le=600,
                            description="the board sends every reading this often")
    max_age_s: float = Field(default=3.5, gt=0, le=3600,
                             description="a reading older than this is unknown, never stale")
    points: list[LinePoint] = Field(min_length=1)

    @field_validator("max_age_s")
    @classmethod
    def _not_shorter_than_the_period(cls, value: float, info: ValidationInfo) -> float:
        period = info.data.get("period_s")
        if period is not None and value < period:
            raise ValueError(f"must be >= period_s ({period:g}), or every reading is unknown")
        return value

    @model_validator(mode="after")
    def _unique(self) -> LineProfile:
        names = sorted(p.name for p in self.points)
        duplicates = {a for a, b in itertools.pairwise(names) if a == b}
        if duplicates:
            raise ValueError(f"duplicate point names: {sorted(duplicates)}")
        return self

    def point(self, name: str) -> LinePoint:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)
