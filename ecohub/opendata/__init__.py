"""Open data: the read model the public API and the portal share (sites, air quality,
water classes, rankings, series, enterprise disclosure), its routes and its pages."""
