"""Generate the reference agent's bundled data sets (run once; the CSVs are committed).

The reference server must be deterministic, so its data are fixed files rather
than something drawn at start-up. This script is kept so that anyone can see how
the data were made and regenerate exactly the same bytes:

    python -m reference_server.make_data

Two tables share the ``service`` column so that ``dataset=all`` can join them:
``incidents.csv`` (production incidents) and ``deployments.csv`` (releases).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240601
DATA_DIR = Path(__file__).resolve().parent / "data"

SERVICES = [
    ("api-gateway", "platform"),
    ("auth", "identity"),
    ("checkout", "payments"),
    ("payments", "payments"),
    ("search", "discovery"),
    ("recommendations", "discovery"),
    ("inventory", "fulfilment"),
    ("notifications", "platform"),
]
# relative incident and deployment rates per service
INCIDENT_WEIGHTS = np.array([1.4, 0.8, 1.6, 1.3, 1.0, 0.7, 0.9, 0.5])
DEPLOY_WEIGHTS = np.array([1.2, 0.7, 1.5, 0.9, 1.3, 1.1, 0.8, 0.6])
SEVERITIES = ["SEV1", "SEV2", "SEV3", "SEV4"]
SEVERITY_WEIGHTS = np.array([0.06, 0.18, 0.43, 0.33])
ROOT_CAUSES = ["deployment", "configuration", "capacity", "dependency", "hardware", "unknown"]
CAUSE_WEIGHTS = np.array([0.31, 0.22, 0.16, 0.17, 0.06, 0.08])
ENVIRONMENTS = ["production", "staging"]
START = pd.Timestamp("2024-01-01")
DAYS = 182  # half a year


def _incidents(rng: np.random.Generator, n: int = 360) -> pd.DataFrame:
    svc_idx = rng.choice(len(SERVICES), size=n, p=INCIDENT_WEIGHTS / INCIDENT_WEIGHTS.sum())
    sev = rng.choice(SEVERITIES, size=n, p=SEVERITY_WEIGHTS)
    cause = rng.choice(ROOT_CAUSES, size=n, p=CAUSE_WEIGHTS)
    opened = START + pd.to_timedelta(np.sort(rng.uniform(0, DAYS * 24 * 60, size=n)).round(), unit="min")
    # worse incidents last longer and touch more customers
    scale = {"SEV1": 180.0, "SEV2": 95.0, "SEV3": 45.0, "SEV4": 20.0}
    duration = np.array([max(3.0, rng.gamma(2.0, scale[s] / 2.0)) for s in sev]).round().astype(int)
    reach = {"SEV1": 9000, "SEV2": 2500, "SEV3": 400, "SEV4": 40}
    customers = np.array([int(rng.poisson(reach[s])) for s in sev])
    status = np.where(rng.uniform(size=n) < 0.94, "resolved", "open")
    return pd.DataFrame(
        {
            "incident_id": [f"INC-{1000 + i}" for i in range(n)],
            "opened_at": opened.strftime("%Y-%m-%d %H:%M"),
            "service": [SERVICES[i][0] for i in svc_idx],
            "team": [SERVICES[i][1] for i in svc_idx],
            "severity": sev,
            "root_cause": cause,
            "status": status,
            "duration_minutes": duration,
            "customers_affected": customers,
        }
    )


def _deployments(rng: np.random.Generator, n: int = 420) -> pd.DataFrame:
    svc_idx = rng.choice(len(SERVICES), size=n, p=DEPLOY_WEIGHTS / DEPLOY_WEIGHTS.sum())
    deployed = START + pd.to_timedelta(np.sort(rng.uniform(0, DAYS * 24 * 60, size=n)).round(), unit="min")
    env = rng.choice(ENVIRONMENTS, size=n, p=[0.7, 0.3])
    lines = rng.lognormal(mean=5.0, sigma=1.1, size=n).round().astype(int) + 1
    # bigger changes fail more often
    p_fail = np.clip(0.03 + lines / 6000.0, 0.0, 0.4)
    u = rng.uniform(size=n)
    outcome = np.where(u < p_fail * 0.6, "failed", np.where(u < p_fail * 1.6, "rolled_back", "success"))
    duration_s = (rng.gamma(3.0, 60.0, size=n) + lines * 0.05).round().astype(int)
    return pd.DataFrame(
        {
            "deploy_id": [f"DEP-{5000 + i}" for i in range(n)],
            "deployed_at": deployed.strftime("%Y-%m-%d %H:%M"),
            "service": [SERVICES[i][0] for i in svc_idx],
            "team": [SERVICES[i][1] for i in svc_idx],
            "environment": env,
            "lines_changed": lines,
            "outcome": outcome,
            "duration_seconds": duration_s,
        }
    )


def main() -> None:
    """Write both CSVs into ``reference_server/data``."""
    rng = np.random.default_rng(SEED)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    incidents = _incidents(rng)
    deployments = _deployments(rng)
    incidents.to_csv(DATA_DIR / "incidents.csv", index=False, lineterminator="\n")
    deployments.to_csv(DATA_DIR / "deployments.csv", index=False, lineterminator="\n")
    print(f"wrote {len(incidents)} incidents and {len(deployments)} deployments to {DATA_DIR}")


if __name__ == "__main__":
    main()
