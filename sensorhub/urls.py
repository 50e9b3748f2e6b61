from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from sensorhub import health

urlpatterns = [
    path("health", health.health, name="health"),
    path("health/", health.health),
    path("health/db", health.health_db, name="health-db"),
    path("health/ready", health.health_ready, name="health-ready"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/v1/", include("ingestion.api.urls")),
    path("api/v1/", include("anomalies.api.urls")),
    path("api/v1/", include("forecasting.api.urls")),
    path("", include("django_prometheus.urls")),
    path("", include("reports.urls")),
]
