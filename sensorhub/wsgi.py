import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sensorhub.settings")
application = get_wsgi_application()

# Import every view (and the ML libraries behind them) now, in each web worker as it starts, instead of inside the
# first request: that request otherwise waits about a second for pandas, statsmodels and Prophet to import.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns
