"""The benchmark's Markdown table and the facts about the machine it ran on."""

from __future__ import annotations

import math
import os
import platform
import shlex
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Row:
    size: int
    metric: str
    median: str = ""
    p99: str = ""
    target: str = ""
    ratio: str = ""
    result: str = ""  # "pass", "FAIL" or "" (no target at this size)

    @property
    def failed(self) -> bool:
        return self.result == "FAIL"


def ms(seconds: float) -> str:
    value = seconds * 1000
    if math.isnan(value):
        return "n/a"
    if value < 1:
        return f"{value:.3f} ms"
    if value < 100:
        return f"{value:.2f} ms"
    if value < 10_000:
        return f"{value:.0f} ms"
    return f"{seconds:.1f} s"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def verdict(ok: bool, gated: bool = True) -> str:
    if not gated:
        return ""
    return "pass" if ok else "FAIL"


def table(rows: Sequence[Row]) -> str:
    head = "| size | metric | median | p99 / max | target | ratio | result |"
    lines = [head, "|---:|---|---:|---:|---|---:|---|"]
    for row in rows:
        cells = (f"{row.size:,}", row.metric, row.median, row.p99, row.target, row.ratio)
        lines.append("| " + " | ".join(cells) + f" | {row.result or '—'} |")
    return "\n".join(lines)


def machine() -> str:
    mem_total = "?"
    cpu_model = platform.processor() or "?"
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    mem_total = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu_model}), {mem_total} RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def command_line(argv: Sequence[str]) -> str:
    command = "python -m benchmarks.run" + "".join(f" {shlex.quote(a)}" for a in argv)
    if os.environ.get("MAKELEVEL"):
        return f"make bench  ({command})"
    return command


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"
