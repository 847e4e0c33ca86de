"""Imports every model module so that each registers itself (see base.register_model)."""

import importlib
import pkgutil

import sessionrec.models as _pkg

for _info in pkgutil.walk_packages(_pkg.__path__, prefix="sessionrec.models."):
    if _info.name.rsplit(".", 1)[-1] not in {"base", "registry"}:
        importlib.import_module(_info.name)
