"""Loss-term adapters, one module per family; importing this package registers every term.

Each term wraps one pure loss of ``ucd.losses`` for the engine (see ``ucd.methods.base``).
Every module of this package is imported here, so a new term is one new module (its class
decorated with ``@register_term``) and an entry in methods.yaml: nothing else to edit.
"""

import importlib
import pkgutil

from ucd.methods.terms.common import labels_at  # noqa: F401

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
