from django.conf import settings
from django.core.cache import cache
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from forecasting.api.serializers import ForecastModelSerializer, PredictRequestSerializer
from forecasting.models import ForecastModel
from forecasting.services import NoModel, forecaster_history, prediction
from ingestion.models import Sensor
from sensorhub.apikeys import restrict_to_key
from sensorhub.choices import Scope


class PredictView(APIView):
    """Forecast a sensor: points (time, yhat, lower, upper) for the next `horizon` steps, with the model that made
    them, its backtest metrics and its realised accuracy so far. Served from the stored forecast while it is fresh."""

    required_scopes = [Scope.ML_READ]

    @extend_schema(request=PredictRequestSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        query = PredictRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        sensor = get_object_or_404(restrict_to_key(request, Sensor.objects.all()), slug=q["sensor"])
        try:
            body = prediction(sensor=sensor, horizon=q.get("horizon", settings.SENSORHUB_FORECAST_HORIZON),
                              interval=q.get("interval", settings.SENSORHUB_FORECAST_INTERVAL))
        except NoModel:
            return Response({"detail": _no_forecaster_yet(sensor)}, status=409)
        return Response(body)


def _no_forecaster_yet(sensor: Sensor) -> str:
    have, need = forecaster_history(sensor=sensor)
    hours = settings.SENSORHUB_FORECAST_STEP_SECONDS / 3600
    if have < need:
        return (f"Sensor {sensor.slug!r} has no forecaster yet: it has readings in {have} of the {need} "
                f"{hours:g}-hour steps (two days) a first forecaster needs. It trains by itself once it has them.")
    # One training queued per sensor every 10 minutes, however often clients ask (the creation time keeps a new
    # sensor that reuses an id from inheriting the mark).
    mark = f"sensorhub:forecast-train-queued:{sensor.pk}:{sensor.created_at.timestamp():.0f}"
    if cache.add(mark, 1, timeout=600):
        from forecasting.tasks import train_model

        try:
            train_model.delay(sensor.pk)
        except Exception:
            cache.delete(mark)  # not queued: the next request tries again
            raise
    return (f"Sensor {sensor.slug!r} has no forecaster yet. Its training has been queued ({have} steps of history); "
            "retry in a minute.")


class ForecastModelFilter(filters.FilterSet):
    sensor = filters.CharFilter(field_name="sensor__slug")

    class Meta:
        model = ForecastModel
        fields = ["sensor", "name"]


class ForecastModelViewSet(viewsets.ReadOnlyModelViewSet):
    """Every forecaster version: the backtest that chose it (all candidates) and how its forecasts turned out."""

    queryset = ForecastModel.objects.select_related("sensor")
    serializer_class = ForecastModelSerializer
    filterset_class = ForecastModelFilter
    ordering = "-trained_at"
    required_scopes = [Scope.ML_READ]

    def get_queryset(self):
        return super().get_queryset().filter(sensor__in=restrict_to_key(self.request, Sensor.objects.all()))
