import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sensorhub.settings")
application = get_wsgi_application()

# Import every view (and the ML libraries behind them) now, in each web worker as it starts, instead of inside the
# first request: that request otherwise waits about a second for pandas, statsmodels and Prophet to import.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns

# Everything loaded so far (Django, the views, NumPy, pandas, Prophet: ~200,000 objects) lives as long as the worker.
# Moved out of the collector's reach, a full garbage collection no longer walks it: ~90 ms per full collection
# before, a pause that landed on whichever request triggered it (P99 of /detect_anomaly under load).
import gc  # noqa: E402

gc.freeze()
