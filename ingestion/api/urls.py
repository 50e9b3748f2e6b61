from rest_framework.routers import DefaultRouter

from ingestion.api.views import SensorViewSet, SiteViewSet

router = DefaultRouter()
router.register("sites", SiteViewSet)
router.register("sensors", SensorViewSet)

urlpatterns = router.urls
