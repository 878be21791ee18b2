"""Exit-rate control for waiting rooms: how many users per minute to let through, and why.

``ExitRateController(config).recommend(signals)`` turns the on-sale's burn rates, latency,
utilisation and queue into a :class:`Recommendation` (a rate in users/min and its reason).
The simulation (:func:`simulate`, :func:`run_scenario`, scenario files under
``examples/scenarios/``) compares it with fixed rates, AIMD and an oracle.
"""

from onsale_obs.exitrate._baselines import AIMDRate, FixedRate, OracleRate
from onsale_obs.exitrate._config import ExitRateConfig
from onsale_obs.exitrate._controller import ExitRateController
from onsale_obs.exitrate._report import ControllerResult, evaluate, physical_limit
from onsale_obs.exitrate._run import (
    TARGET_DRAIN_RATIO,
    TARGET_SLO_SHARE,
    ScenarioReport,
    controller_names,
    make_controller,
    run_scenario,
)
from onsale_obs.exitrate._scenario import Scenario, load_scenario, scenario_from_data
from onsale_obs.exitrate._signals import ACTIONS, Action, RateController, Recommendation, Signals
from onsale_obs.exitrate._sim import Run, simulate

__all__ = [
    "ACTIONS",
    "TARGET_DRAIN_RATIO",
    "TARGET_SLO_SHARE",
    "AIMDRate",
    "Action",
    "ControllerResult",
    "ExitRateConfig",
    "ExitRateController",
    "FixedRate",
    "OracleRate",
    "RateController",
    "Recommendation",
    "Run",
    "Scenario",
    "ScenarioReport",
    "Signals",
    "controller_names",
    "evaluate",
    "load_scenario",
    "make_controller",
    "physical_limit",
    "run_scenario",
    "scenario_from_data",
    "simulate",
]
