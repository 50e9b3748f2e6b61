from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from ingestion.models import Site
from ingestion.selectors import sensors_with_latest


@login_required
def dashboard(request):
    sensors = sensors_with_latest().select_related("site").order_by("site__name", "slug")
    return render(request, "reports/dashboard.html", {"sensors": sensors, "site_count": Site.objects.count()})
