from django.urls import path
from rest_framework.routers import DefaultRouter

from forecasting.api.views import ForecastModelViewSet, PredictView

router = DefaultRouter()
router.register("forecast_models", ForecastModelViewSet)

urlpatterns = [path("predict", PredictView.as_view(), name="predict"), *router.urls]
