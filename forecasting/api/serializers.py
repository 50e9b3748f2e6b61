from django.conf import settings
from rest_framework import serializers

from forecasting.models import ForecastModel


class PredictRequestSerializer(serializers.Serializer):
    sensor = serializers.CharField(help_text="The sensor's slug.")
    horizon = serializers.IntegerField(required=False, min_value=1,
                                       help_text="Steps to forecast (SENSORHUB_FORECAST_STEP_SECONDS each, 1 h by "
                                                 "default); default SENSORHUB_FORECAST_HORIZON.")
    interval = serializers.FloatField(required=False, min_value=0.5, max_value=0.99,
                                      help_text="Coverage of the prediction interval, e.g. 0.9 for 5 %–95 %.")

    def validate_horizon(self, value):
        maximum = settings.SENSORHUB_FORECAST_MAX_HORIZON
        if value > maximum:
            hours = maximum * settings.SENSORHUB_FORECAST_STEP_SECONDS / 3600
            raise serializers.ValidationError(
                f"horizon {value} is beyond the maximum of {maximum} steps ({hours:g} h); ask for {maximum} or fewer.")
        return value


class ForecastModelSerializer(serializers.ModelSerializer):
    sensor = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = ForecastModel
        fields = ["id", "sensor", "version", "name", "trained_at", "fit_seconds", "params", "mase", "mae", "coverage",
                  "backtest", "data_start", "data_end", "points", "realised_forecasts", "realised_points",
                  "realised_mae", "realised_mape", "realised_coverage", "sha256"]
