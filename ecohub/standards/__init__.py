"""Official indicators exactly as the standards define them: pure functions over arrays.

- :mod:`.aqi` — HJ 633-2012 air quality index (IAQI, hourly and daily AQI, levels);
- :mod:`.air_assessment` — HJ 663-2013 with GB 3095-2012 limits (validity, daily means,
  O3 daily maximum 8-hour mean, percentiles, compliance, comprehensive index, day counts);
- :mod:`.water` — GB 3838-2002 surface water classes and the 2011 assessment method;
- :mod:`.emission` — pollution-source limits with reference-oxygen correction.

Every table is a CSV file in ``data/`` that names the standard and table it comes from.
Nothing here touches the store.
"""
