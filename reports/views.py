from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef
from django.shortcuts import render

from anomalies.choices import AlertStatus
from anomalies.models import Alert, AnomalyEvent
from ingestion.models import Site
from ingestion.selectors import sensors_with_latest


@login_required
def dashboard(request):
    active_alerts = Alert.objects.exclude(status=AlertStatus.RESOLVED)
    sensors = (sensors_with_latest().select_related("site")
               .annotate(alerting=Exists(active_alerts.filter(sensor=OuterRef("pk"))))
               .order_by("site__name", "slug"))
    return render(request, "reports/dashboard.html", {
        "sensors": sensors,
        "site_count": Site.objects.count(),
        "alerts": active_alerts.select_related("sensor").order_by("-opened_at")[:20],
        "events": AnomalyEvent.objects.select_related("sensor").order_by("-time")[:20],
    })
