"""The AGI hooks (route, promo, tag, lookup): the core behind the FastAGI and classic adapters."""
