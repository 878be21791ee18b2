"""Planning on-sales: learn from past ones, plan the next, scale the whole vertical from the queue.

``learn`` reads past on-sales through the SLO engine's sources into a :class:`Profile` (a
versioned JSON file); ``plan_next`` recommends the exit-rate controller's warm start and the
replicas of every service; ``backtest`` predicts each on-sale from the earlier ones;
:class:`VerticalScaler` turns the queue into ``onsale_vertical_desired_replicas`` for ``serve``,
and ``render`` writes the KEDA or HPA manifests that read it.
"""

from onsale_obs.plan._forecast import (
    ONE_ONSALE,
    BacktestRow,
    NextPlan,
    ServicePlan,
    Spread,
    backtest,
    backtest_summary,
    plan_next,
)
from onsale_obs.plan._learn import GivenNumbers, PrometheusTimeline, Timeline, learn
from onsale_obs.plan._profile import (
    PROFILE_VERSION,
    Break,
    OnSaleProfile,
    Profile,
    ServiceProfile,
    load_profile,
)
from onsale_obs.plan._scalers import (
    ScalerTarget,
    adapter_rule,
    hpa,
    keda_scaled_object,
    render,
    scaler_query,
    targets,
)
from onsale_obs.plan._vertical import (
    DESIRED_METRIC,
    QUEUE_METRIC,
    ServiceSizing,
    VerticalScaler,
    observed,
    scaler_for,
    sizings_from_profile,
)

__all__ = [
    "DESIRED_METRIC",
    "ONE_ONSALE",
    "PROFILE_VERSION",
    "QUEUE_METRIC",
    "BacktestRow",
    "Break",
    "GivenNumbers",
    "NextPlan",
    "OnSaleProfile",
    "Profile",
    "PrometheusTimeline",
    "ScalerTarget",
    "ServicePlan",
    "ServiceProfile",
    "ServiceSizing",
    "Spread",
    "Timeline",
    "VerticalScaler",
    "adapter_rule",
    "backtest",
    "backtest_summary",
    "hpa",
    "keda_scaled_object",
    "learn",
    "load_profile",
    "observed",
    "plan_next",
    "render",
    "scaler_for",
    "scaler_query",
    "sizings_from_profile",
    "targets",
]
