import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cobrador.settings")
application = get_wsgi_application()
# What is loaded by now lives as long as the process: keep the garbage collector from walking it on every
# full collection, which showed as latency spikes under load.
gc.freeze()
