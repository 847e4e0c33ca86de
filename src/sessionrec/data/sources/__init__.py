"""One adapter module per dataset; importing this package registers all of them."""

from sessionrec.data.sources import galaxus  # noqa: F401
from sessionrec.data.sources.base import Source, all_sources, get_source

__all__ = ["Source", "all_sources", "get_source"]
