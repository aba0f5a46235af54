// The agency's supervision dashboard: enterprises on the map as circles sized and
// coloured by risk score (0-100), over the shipped province outlines (no tiles: agency
// networks are closed).
(function () {
  "use strict";
  const element = document.getElementById("risk-map");
  if (!element || typeof L === "undefined") return;
  const markers = JSON.parse(element.dataset.markers || "[]");
  const map = L.map(element).setView([35, 105], 4);
  fetch("/static/geo/provinces.geojson").then((r) => (r.ok ? r.json() : null)).then((geo) => {
    if (geo) L.geoJSON(geo, { interactive: false, style: { color: "#888", weight: 1, fill: false } }).addTo(map);
  }).catch(() => {});
  const colour = (score) => (score >= 60 ? "#b71c1c" : score >= 30 ? "#ef6c00" : score >= 10 ? "#f9a825" : "#2e7d32");
  const bounds = [];
  markers.forEach((m) => {
    L.circleMarker([m.lat, m.lon], {
      radius: 5 + m.score / 10, color: colour(m.score), fillOpacity: 0.7, weight: 1, className: "risk-marker",
    }).bindPopup(
      document.createTextNode(m.name + " · " + element.dataset.score + " " + m.score.toFixed(1))
    ).addTo(map);
    bounds.push([m.lat, m.lon]);
  });
  if (bounds.length) map.fitBounds(bounds, { maxZoom: 10, padding: [20, 20] });
})();
