// Public complaint statistics: density cells (about 2 km, at least 3 complaints each) as
// circles over the shipped city outlines, cities shaded by their counts, and charts by
// month and by kind (ECharts, vendored).
(function () {
  "use strict";
  const element = document.getElementById("density-map");
  if (!element) return;
  const data = JSON.parse(element.dataset.chart || "{}");
  const label = element.dataset.label || "";
  if (typeof L !== "undefined") {
    const map = L.map(element).setView([35, 105], 4);
    const regions = data.regions || {};
    const top = Math.max(1, ...Object.values(regions));
    fetch("/static/geo/cities.geojson").then((r) => (r.ok ? r.json() : null)).then((geo) => {
      if (!geo) return;
      L.geoJSON(geo, {
        style: (f) => {
          const n = regions[f.properties.code] || 0;
          return { color: "#889", weight: 1, fillColor: "#c62828", fillOpacity: n ? 0.1 + 0.5 * n / top : 0 };
        },
        onEachFeature: (f, layer) => {
          const n = regions[f.properties.code];
          if (n) layer.bindTooltip(document.createTextNode(f.properties.name + " · " + label + " " + n));
        },
      }).addTo(map);
    }).catch(() => {});
    const bounds = [];
    (data.cells || []).forEach((c) => {
      L.circleMarker([c.latitude, c.longitude], {
        radius: 4 + Math.sqrt(c.count), color: "#b71c1c", fillOpacity: 0.5, weight: 1, className: "density-cell",
      }).bindTooltip(document.createTextNode(label + " " + c.count)).addTo(map);
      bounds.push([c.latitude, c.longitude]);
    });
    if (bounds.length) map.fitBounds(bounds, { maxZoom: 11, padding: [20, 20] });
  }
  if (typeof echarts === "undefined") return;
  const months = document.getElementById("chart-months");
  if (months) {
    const keys = Object.keys(data.months || {});
    echarts.init(months).setOption({
      title: { text: months.dataset.title, textStyle: { fontSize: 14 } },
      tooltip: {}, xAxis: { type: "category", data: keys }, yAxis: { type: "value" },
      series: [{ type: "bar", data: keys.map((k) => data.months[k]), itemStyle: { color: "#2e7d32" } }],
    });
  }
  const media = document.getElementById("chart-media");
  if (media) {
    const names = JSON.parse(media.dataset.names || "{}");
    echarts.init(media).setOption({
      title: { text: media.dataset.title, textStyle: { fontSize: 14 } },
      tooltip: { trigger: "item" },
      series: [{ type: "pie", radius: "60%", data: Object.entries(data.media || {}).map(([k, v]) => ({ name: names[k] || k, value: v })) }],
    });
  }
})();
