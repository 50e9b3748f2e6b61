from rest_framework import viewsets

from ingestion.api.serializers import SensorSerializer, SiteSerializer
from ingestion.models import Sensor, Site
from ingestion.selectors import sensors_with_latest


class SiteViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Site.objects.all()
    serializer_class = SiteSerializer
    lookup_field = "slug"
    filterset_fields = ["slug"]
    ordering = "name"


class SensorViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = sensors_with_latest(Sensor.objects.select_related("site"))
    serializer_class = SensorSerializer
    lookup_field = "slug"
    filterset_fields = {"type": ["exact"], "active": ["exact"], "site__slug": ["exact"]}
    ordering = "slug"
