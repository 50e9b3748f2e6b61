from django.urls import path
from rest_framework.routers import DefaultRouter

from ingestion.api.views import ReadingsIngestView, SensorViewSet, SiteViewSet

router = DefaultRouter()
router.register("sites", SiteViewSet)
router.register("sensors", SensorViewSet)

urlpatterns = [
    path("readings/", ReadingsIngestView.as_view(), name="readings-ingest"),
    *router.urls,
]
