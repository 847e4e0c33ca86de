"""One adapter module per dataset; importing this package registers all of them."""

from sessionrec.data.sources import (  # noqa: F401
    amazon,
    bytedance,
    diginetica,
    diginetica_srgnn,
    events,
    galaxus,
    otto,
    rees46,
    retailrocket,
    taobao,
    trivago,
    yoochoose,
)
from sessionrec.data.sources.base import Source, all_sources, get_source

__all__ = ["Source", "all_sources", "get_source"]
