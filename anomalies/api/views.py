
from django.conf import settings
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from anomalies.alerts import alert_acknowledge, alert_mark_false_positive, alert_resolve
from anomalies.api.serializers import AlertSerializer, AnomalyEventSerializer, DetectRequestSerializer
from anomalies.models import Alert, AlertRule, AnomalyEvent
from anomalies.detector import Settings as DetectorSettings
from anomalies.services import NoModel, points_score
from ingestion.models import Sensor, SensorReading
from ingestion.validation import parse_time, parse_value
from sensorhub.apikeys import restrict_to_key
from sensorhub.choices import Scope

MAX_POINTS = 10_000


class AnomalyEventFilter(filters.FilterSet):
    sensor = filters.CharFilter(field_name="sensor__slug")
    since = filters.IsoDateTimeFilter(field_name="time", lookup_expr="gte")
    until = filters.IsoDateTimeFilter(field_name="time", lookup_expr="lt")
    min_score = filters.NumberFilter(field_name="score", lookup_expr="gte")

    class Meta:
        model = AnomalyEvent
        fields = ["sensor", "kind", "since", "until", "min_score"]


class AnomalyEventViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = AnomalyEvent.objects.select_related("sensor", "model")
    serializer_class = AnomalyEventSerializer
    filterset_class = AnomalyEventFilter
    ordering = "-time"
    required_scopes = [Scope.READINGS_READ]

    def get_queryset(self):
        allowed = restrict_to_key(self.request, Sensor.objects.all())
        return super().get_queryset().filter(sensor__in=allowed)


class DetectAnomalyView(APIView):
    """Score points against a sensor's detector: given `values`, or the stored readings between `start` and `end`.
    Nothing is stored and the live detector is not advanced."""

    required_scopes = [Scope.ML_READ]

    @extend_schema(request=DetectRequestSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        query = DetectRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        sensor = get_object_or_404(restrict_to_key(request, Sensor.objects.all()), slug=q["sensor"])
        if "values" in q:
            if len(q["values"]) > MAX_POINTS:
                return Response({"detail": f"{len(q['values'])} points; at most {MAX_POINTS} per request."},
                                status=413)
            times, values, errors = [], [], []
            for index, point in enumerate(q["values"]):
                if not isinstance(point, dict):
                    errors.append({"index": index, "reason": f"expected an object {{time, value}}, got {point!r:.40}"})
                    continue
                at, value = parse_time(point.get("time")), parse_value(point.get("value"))
                if isinstance(at, str) or isinstance(value, str):
                    errors.append({"index": index, "reason": at if isinstance(at, str) else value})
                times.append(at)
                values.append(value)
            if errors:
                return Response({"detail": "Some points are malformed; nothing was scored.", "errors": errors},
                                status=400)
        else:
            rows = list(SensorReading.objects.filter(sensor=sensor, time__gte=q["start"], time__lt=q["end"])
                        .order_by("time").values_list("time", "value")[:MAX_POINTS + 1])
            if len(rows) > MAX_POINTS:
                return Response({"detail": f"More than {MAX_POINTS} stored readings in that range; narrow it."},
                                status=413)
            times, values = [r[0] for r in rows], [r[1] for r in rows]
        # Scored in time order (the detector reads the gaps between them), answered in the order sent.
        order = sorted(range(len(times)), key=times.__getitem__)
        try:
            model, scored = points_score(sensor=sensor, values=[values[i] for i in order],
                                         times=[times[i] for i in order])
        except NoModel:
            return Response({"detail": f"Sensor {sensor.slug!r} has no trained model yet. It trains by itself once it "
                                       f"has enough readings ({DetectorSettings().warmup}); post readings and retry."},
                            status=409)
        detections = [None] * len(order)
        for position, index in enumerate(order):
            detections[index] = scored[position]
        threshold = settings.SENSORHUB_ANOMALY_EVENT_THRESHOLD
        alert_threshold = (model.alert_threshold if model.alert_threshold is not None
                           else AlertRule._meta.get_field("threshold").default)
        return Response({
            "sensor": sensor.slug, "model_version": model.version, "trained_at": model.trained_at,
            # is_anomaly: the score would be recorded as an event; alert_threshold: what opens an alert for this
            # sensor (its alert rule, raised by false-positive marks)
            "threshold": threshold, "alert_threshold": alert_threshold,
            "points": [{"time": at, "value": value, "score": d.score,
                        "is_anomaly": not d.warming_up and d.score >= threshold, "kind": d.kind,
                        "explanation": d.explanation(value)} for at, value, d in zip(times, values, detections)],
        })


class AlertFilter(filters.FilterSet):
    sensor = filters.CharFilter(field_name="sensor__slug")
    since = filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")

    class Meta:
        model = Alert
        fields = ["sensor", "source", "status", "kind", "false_positive", "since"]


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts with who acknowledged and resolved them and who was notified. Actions need the `admin` scope
    (or a staff login)."""

    queryset = Alert.objects.select_related("sensor", "model", "forecast_model", "acknowledged_by", "resolved_by").prefetch_related(
        "deliveries__channel")
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering = "-opened_at"
    required_scopes = [Scope.READINGS_READ]
    required_scopes_by_method = {"POST": [Scope.ADMIN]}

    def get_queryset(self):
        return super().get_queryset().filter(sensor__in=restrict_to_key(self.request, Sensor.objects.all()))

    def _act(self, request, service, verb):
        alert = self.get_object()
        user = request.user if request.user.is_authenticated else None
        changed = service(alert=alert, user=user)
        alert.refresh_from_db()
        body = self.get_serializer(alert).data
        return Response(body if changed is not False else {**body, "detail": f"Alert was already {verb}."})

    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._act(request, alert_acknowledge, "acknowledged or resolved")

    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._act(request, alert_resolve, "resolved")

    @action(detail=True, methods=["post"], url_path="false_positive")
    def false_positive(self, request, pk=None):
        return self._act(request, alert_mark_false_positive, "marked")
