from django.urls import path
from rest_framework.routers import DefaultRouter

from anomalies.api.views import AlertViewSet, AnomalyEventViewSet, DetectAnomalyView

router = DefaultRouter()
router.register("anomalies", AnomalyEventViewSet)
router.register("alerts", AlertViewSet)

urlpatterns = [path("detect_anomaly", DetectAnomalyView.as_view(), name="detect-anomaly"), *router.urls]
