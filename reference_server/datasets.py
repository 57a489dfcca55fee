"""The reference agent's bundled tables and what the planner knows about them.

The CSVs under ``data/`` are fixed (made once by ``make_data.py``) so that the
agent is deterministic. ``TABLES`` describes each table's roles (which columns
are categories, measures, time) so the planner can map words to columns without
guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from collections.abc import Mapping

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data"
ALL = "all"


@dataclass(frozen=True)
class TableInfo:
    """Roles of the columns of one bundled table."""

    name: str
    description: str
    id_column: str
    time_column: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    default_group: str = "service"


TABLES: Mapping[str, TableInfo] = MappingProxyType(
    {
        "incidents": TableInfo(
            name="incidents",
            description="Production incidents, January to June 2024: service, severity, root cause, duration, customers affected.",
            id_column="incident_id",
            time_column="opened_at",
            categorical=("service", "team", "severity", "root_cause", "status"),
            numeric=("duration_minutes", "customers_affected"),
        ),
        "deployments": TableInfo(
            name="deployments",
            description="Deployments over the same period: service, environment, lines changed, outcome, duration.",
            id_column="deploy_id",
            time_column="deployed_at",
            categorical=("service", "team", "environment", "outcome"),
            numeric=("lines_changed", "duration_seconds"),
        ),
    }
)
DATASET_NAMES: tuple[str, ...] = (*TABLES, ALL)
"""Every accepted value of the ``dataset`` parameter."""
JOIN_KEYS: tuple[str, ...] = ("service", "team")
"""Columns both tables share: what ``dataset=all`` can group by."""


@lru_cache(maxsize=1)
def load_frames() -> Mapping[str, pd.DataFrame]:
    """Read every bundled CSV once per process (read-only afterwards)."""
    return MappingProxyType({name: pd.read_csv(DATA_DIR / f"{name}.csv") for name in TABLES})


def frames_for(dataset: str) -> dict[str, pd.DataFrame]:
    """The frames a request for ``dataset`` may see (``all``: every table)."""
    frames = load_frames()
    names = list(TABLES) if dataset == ALL else [dataset]
    return {name: frames[name] for name in names}


def catalogue() -> list[dict[str, object]]:
    """What ``GET /datasets`` shows: each table with its columns and row count."""
    out: list[dict[str, object]] = []
    for name, frame in load_frames().items():
        info = TABLES[name]
        out.append(
            {
                "name": name,
                "description": info.description,
                "rows": int(len(frame)),
                "columns": [str(c) for c in frame.columns],
                "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
            }
        )
    return out
