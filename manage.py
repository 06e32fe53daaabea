#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

A configuration error (a malformed or missing variable) is reported in one line naming the
variable, with exit status 2, instead of a traceback.
"""

from __future__ import annotations

import os
import sys

CONFIGURATION_ERROR_EXIT = 2


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sorcha_site.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        # Load (and so validate) the settings first: Django would otherwise swallow the error while it
        # lists the commands and raise it again later as a traceback.
        settings.INSTALLED_APPS  # noqa: B018
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        message = " ".join(str(exc).split())
        sys.stderr.write(f"{os.path.basename(sys.argv[0])}: configuration error: {message}\n")
        sys.exit(CONFIGURATION_ERROR_EXIT)


if __name__ == "__main__":
    main()
