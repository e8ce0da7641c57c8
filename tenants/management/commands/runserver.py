"""``runserver`` that receives the EMR API's underscore headers (see ``tenants/headers.py``)."""

from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesRunserver

from tenants.headers import UnderscoreHeaderWSGIServer


class Command(StaticfilesRunserver):
    server_cls = UnderscoreHeaderWSGIServer
