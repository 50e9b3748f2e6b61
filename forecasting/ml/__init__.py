"""Forecasting library: candidate models, backtest-based selection, calibrated intervals. No Django, no database."""
from forecasting.ml.base import ForecastModel
from forecasting.ml.selection import (
    CANDIDATES,
    TIE_TOLERANCE,
    BacktestMetrics,
    Selection,
    required_history,
    select_forecaster,
)

__all__ = [
    "CANDIDATES",
    "TIE_TOLERANCE",
    "BacktestMetrics",
    "ForecastModel",
    "Selection",
    "required_history",
    "select_forecaster",
]
