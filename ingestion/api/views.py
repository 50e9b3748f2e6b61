import csv
import json
from datetime import UTC, datetime

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.api.serializers import (
    ReadingsQuerySerializer,
    SensorDetailSerializer,
    SensorSerializer,
    SiteSerializer,
)
from ingestion.models import Sensor, Site
from ingestion.parsing import BatchError, decode_body, parse
from ingestion.selectors import (
    BUCKETS,
    choose_bucket,
    readings_csv_rows,
    readings_series,
    sensor_stats,
    sensors_with_latest,
)
from ingestion.services import idempotency_cached, idempotency_for, readings_ingest
from sensorhub.apikeys import ApiKey, restrict_to_key
from sensorhub.choices import Scope

IDEMPOTENCY_KEY_MAX = 255


class SiteViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Site.objects.all()
    serializer_class = SiteSerializer
    lookup_field = "slug"
    filterset_fields = ["slug"]
    ordering = "slug"
    required_scopes = [Scope.READINGS_READ]


class SensorViewSet(viewsets.ModelViewSet):
    """Sensors by their stable id (slug). Reading needs `readings:read`; creating, changing and deactivating `admin`.
    DELETE deactivates: history is never deleted through the API."""

    queryset = Sensor.objects.select_related("site")
    serializer_class = SensorSerializer
    lookup_field = "slug"
    filterset_fields = {"type": ["exact"], "active": ["exact"], "site__slug": ["exact"]}
    ordering = "slug"
    required_scopes = [Scope.READINGS_READ]
    required_scopes_by_method = {m: [Scope.ADMIN] for m in ("POST", "PUT", "PATCH", "DELETE")}

    def get_queryset(self):
        return restrict_to_key(self.request, sensors_with_latest(super().get_queryset()))

    def get_serializer_class(self):
        return SensorDetailSerializer if self.action == "retrieve" else SensorSerializer

    def retrieve(self, request, *args, **kwargs):
        sensor = self.get_object()
        sensor.stats_24h = sensor_stats(sensor=sensor, since=timezone.now() - timezone.timedelta(days=1))
        return Response(self.get_serializer(sensor).data)

    def perform_destroy(self, instance):
        Sensor.objects.filter(pk=instance.pk).update(active=False, updated_at=timezone.now())

    def destroy(self, request, *args, **kwargs):
        self.perform_destroy(self.get_object())
        return Response({"detail": "Sensor deactivated; its history is kept."}, status=status.HTTP_200_OK)

    @extend_schema(
        parameters=[ReadingsQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
        description="Raw readings or buckets (date_bin, aligned to UTC midnight) with aggregates. Buckets of 1 minute "
                    "and more are read from the rollups when the aggregates allow it. `format=csv` streams raw rows.",
    )
    @action(detail=True, methods=["get"], url_path="readings")
    def readings(self, request, slug=None):
        sensor = self.get_object()
        query = ReadingsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        if q["format"] == "csv":
            return self._csv(sensor, q)
        bucket, auto = choose_bucket(requested=q.get("bucket"), start=q["start"], end=q["end"],
                                     max_points=q["max_points"], expected_interval=sensor.expected_interval)
        start, end = q["start"], q["end"]
        if bucket != "raw":
            start, end = _align(start, end, BUCKETS[bucket])
        series = readings_series(sensor=sensor, start=start, end=end, bucket=bucket, aggregates=q["agg"],
                                 max_points=q["max_points"])
        meta = {"sensor": sensor.slug, "unit": sensor.unit, "start": _iso(start), "end": _iso(end),
                "bucket": series.bucket, "auto_bucket": auto, "source": series.source, "points": series.points}
        # The columns arrive as JSON text from PostgreSQL; splice them in rather than decode and re-encode.
        body = json.dumps(meta)[:-1] + ", " + series.columns_json[1:]
        return HttpResponse(body, content_type="application/json")

    def _csv(self, sensor, q):
        class Echo:
            def write(self, value):
                return value

        writer = csv.writer(Echo())
        rows = readings_csv_rows(sensor=sensor, start=q["start"], end=q["end"])

        def stream():
            yield writer.writerow(["sensor", "time", "value"])
            for at, value in rows:
                yield writer.writerow([sensor.slug, at.isoformat(), repr(value)])

        response = StreamingHttpResponse(stream(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{sensor.slug}.csv"'
        return response


ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # the buckets' origin, as sensorhub.storage.BUCKET_ORIGIN


def _align(start, end, width):
    """Whole buckets only: start down and end up to bucket boundaries."""
    return ORIGIN + ((start - ORIGIN) // width) * width, ORIGIN - ((ORIGIN - end) // width) * width


class ReadingsIngestView(APIView):
    """POST a batch of readings: JSON rows, columnar JSON or CSV (sensor,time,value), optionally gzip-encoded."""

    required_scopes = [Scope.READINGS_WRITE]

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT, "text/csv": OpenApiTypes.STR},
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                     description="Replays with the same key and body return the first answer.")],
        responses={200: OpenApiTypes.OBJECT, 422: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        content_type = request.content_type or ""
        try:
            body = decode_body(request.body, request.headers.get("Content-Encoding", ""))
        except BatchError as exc:
            return Response({"detail": exc.message}, status=exc.status)
        idempotency = None
        raw_key = request.headers.get("Idempotency-Key")
        if raw_key is not None:
            if not raw_key.strip() or len(raw_key) > IDEMPOTENCY_KEY_MAX:
                return Response({"detail": f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters."},
                                status=400)
            scope = f"key:{request.auth.pk}" if isinstance(request.auth, ApiKey) else f"user:{request.user.pk}"
            idempotency = idempotency_for(scope=scope, key=raw_key, body=body, content_type=content_type)
            cached = idempotency_cached(idempotency)
            if cached is not None:
                return _respond(cached)
        try:
            columns = parse(body, content_type)
        except BatchError as exc:
            return Response({"detail": exc.message}, status=exc.status)
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        return _respond(readings_ingest(columns=columns, api_key=api_key, idempotency=idempotency))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()  # the same form as the times PostgreSQL writes into the columns


def _respond(result):
    response = Response(result.body, status=result.status)
    if result.replayed:
        response["Idempotent-Replayed"] = "true"
    return response
